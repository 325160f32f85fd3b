"""The quickstart's stage runner (pushcut/stages.py) on small stand-in stages: reuse, continue, start over,
failures and their messages. The real stages run end to end in test_quickstart.py."""

import json
import socket
import sys

import pytest

from pushcut.stages import Pipeline, Stage, StageError, require_free_port, require_free_space, run_logged


def recording_stages(tmp_path, calls, commands=("a", "b", "c"), fail=None):
    def runner(stage, log, fresh):
        calls.append((stage.name, fresh))
        if stage.name == fail:
            raise StageError(f"{stage.name} failed")
        (tmp_path / stage.name).mkdir(exist_ok=True)
        (tmp_path / stage.name / "artefact").write_text(stage.command[0])
        return {"made": stage.command[0]}

    return [Stage(name, name, [command], outputs=[tmp_path / name], run=runner)
            for name, command in zip(("one", "two", "three"), commands)]  # fmt: skip


def test_finished_stages_are_reused_with_their_summaries(tmp_path):
    calls, lines = [], []
    Pipeline(tmp_path, recording_stages(tmp_path, calls)).run(echo=lines.append)
    assert calls == [("one", True), ("two", True), ("three", True)]
    results = Pipeline(tmp_path, recording_stages(tmp_path, calls)).run(echo=lines.append)
    assert len(calls) == 3 and all(r.reused for r in results)
    assert [r.summary["made"] for r in results] == ["a", "b", "c"]


def test_changed_settings_start_that_stage_and_later_ones_over(tmp_path):
    calls, lines = [], []
    Pipeline(tmp_path, recording_stages(tmp_path, calls)).run(echo=lines.append)
    (tmp_path / "two" / "stale").write_text("from the old settings")
    calls.clear()
    Pipeline(tmp_path, recording_stages(tmp_path, calls, commands=("a", "B", "c"))).run(echo=lines.append)
    assert calls == [("two", True), ("three", True)]
    assert not (tmp_path / "two" / "stale").exists(), "the old outputs must be removed"
    assert "[2/3] two (settings changed: starting over)" in lines


def test_a_failed_stage_is_continued_by_the_rerun_and_nothing_before_it_runs_again(tmp_path):
    calls, lines = [], []
    with pytest.raises(StageError, match="two failed"):
        Pipeline(tmp_path, recording_stages(tmp_path, calls, fail="two")).run(echo=lines.append)
    assert json.loads((tmp_path / "stages" / "two.json").read_text())["status"] == "started"
    assert not (tmp_path / "stages" / "three.json").exists()
    calls.clear()
    Pipeline(tmp_path, recording_stages(tmp_path, calls)).run(echo=lines.append)
    assert calls == [("two", False), ("three", True)]  # two resumes (not fresh); its outputs were kept
    assert "[2/3] two (continuing where it was stopped)" in lines


def test_redo_runs_the_stage_again_from_scratch(tmp_path):
    calls = []
    Pipeline(tmp_path, recording_stages(tmp_path, calls)).run(echo=lambda _: None)
    calls.clear()
    Pipeline(tmp_path, recording_stages(tmp_path, calls), redo={"three"}).run(echo=lambda _: None)
    assert calls == [("three", True)]
    with pytest.raises(StageError, match="no such stage"):
        Pipeline(tmp_path, recording_stages(tmp_path, calls), redo={"four"})


def test_a_failing_command_names_the_stage_its_log_and_its_last_lines(tmp_path):
    log = tmp_path / "logs" / "x.log"
    with pytest.raises(StageError) as error:
        run_logged([sys.executable, "-c", "print('checkpoint mismatch: expected 14-D'); raise SystemExit(3)"], log, "x")
    message = str(error.value)
    assert "stage x failed (exit code 3)" in message and str(log) in message
    assert "checkpoint mismatch: expected 14-D" in message and "finished stages are kept" in message


def test_a_full_disk_is_named_as_such(tmp_path):
    with pytest.raises(StageError, match="the disk is full"):
        run_logged([sys.executable, "-c", "raise OSError(28, 'No space left on device')"], tmp_path / "d.log", "d")


def test_captured_stdout_is_written_only_when_the_command_succeeds(tmp_path):
    result = tmp_path / "eval" / "r.json"
    run_logged([sys.executable, "-c", "print('{\"ok\": 1}')"], tmp_path / "r.log", "r", stdout_to=result)
    assert json.loads(result.read_text()) == {"ok": 1}
    broken = tmp_path / "eval" / "s.json"
    with pytest.raises(StageError):
        run_logged([sys.executable, "-c", "print('{\"half'); raise SystemExit(1)"], tmp_path / "s.log", "s",
                   stdout_to=broken)  # fmt: skip
    assert not broken.exists()


def test_preflight_checks_name_what_is_missing(tmp_path):
    with pytest.raises(StageError, match=r"GB free under .*this run needs about 1000000000\.0 GB"):
        require_free_space(tmp_path, 1e18)
    require_free_space(tmp_path, 1.0)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(StageError, match=f"port {port} on 127.0.0.1 is in use.*--port"):
            require_free_port("127.0.0.1", port)
