"""`pushcut sim replay` (sim/replay.py, issue 26 B): MuJoCo demonstrations replayed open loop. In MuJoCo, the engine
that recorded them, every episode succeeds again and nothing drifts (the control); in SAPIEN the replay runs and
reports; bad input is refused in one line. The SAPIEN bench's keys are checked at a tiny size (behaviour, not speed).
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pushcut.cli import app
from pushcut.sim.dataset import DemoDataset
from pushcut.sim.randomization import RandomizationConfig
from pushcut.sim.replay import replay_dataset, replay_overrides

runner = CliRunner()


def test_mujoco_replay_reproduces_every_demonstration(click_bell_demos):
    summary = replay_dataset(click_bell_demos, "mujoco")
    assert (summary.episodes, summary.successes, summary.failed_seeds) == (2, 2, [])
    assert summary.recorded_engine == "mujoco" and summary.wilson_low < 1.0 == summary.wilson_high
    data = DemoDataset(click_bell_demos)
    for replay, entry in zip(summary.replays, data.entries, strict=True):
        assert replay.seed == entry["seed"] and replay.steps == replay.length == entry["length"]
        assert (
            max(replay.joint_drift_rad, replay.gripper_drift) < 1e-9
            and replay.body_drift_m is not None
            and replay.body_drift_m < 1e-9
        )


def test_replay_rebuilds_the_recorded_settings(click_bell_demos, tmp_path):
    index = json.loads((click_bell_demos / "index.json").read_text())
    index["env_config"]["randomization"]["distractors"] = True
    index["env_config"]["step_limit"] = 77
    (tmp_path / "index.json").write_text(json.dumps(index))
    overrides = replay_overrides(DemoDataset(tmp_path), "sapien")
    assert overrides["randomization"] == RandomizationConfig(distractors=True)
    assert (overrides["step_limit"], overrides["engine"], overrides["cameras"]) == (77, "sapien", ())


def test_cli_replays_and_reports_as_json(click_bell_demos, tmp_path):
    out = tmp_path / "replay.json"
    result = runner.invoke(app, ["sim", "replay", "--data", str(click_bell_demos), "--episodes", "1", "--json",
                                 "--json-out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)
    assert (summary["task"], summary["engine"], summary["episodes"], summary["successes"]) == ("click_bell", "mujoco",
                                                                                                1, 1)  # fmt: skip
    assert json.loads(out.read_text()) == [summary]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--sim", "bullet"], "--sim mujoco or sapien, got 'bullet'"),
        (["--sim", "robotwin"], "--sim mujoco or sapien, got 'robotwin'"),
        (["--episodes", "0"], "episodes=0 must be at least 1"),
    ],
)
def test_cli_refuses_a_bad_engine_or_count_in_one_line(click_bell_demos, argv, expected):
    result = runner.invoke(app, ["sim", "replay", "--data", str(click_bell_demos), *argv])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ") and expected in result.stderr


def test_cli_names_a_missing_data_dir_in_one_line(tmp_path):
    result = runner.invoke(app, ["sim", "replay", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "nowhere/index.json not found: not a pushcut demonstration directory" in result.stderr


@pytest.mark.usefixtures("restore_render_variables")
def test_sapien_replay_of_a_mujoco_demonstration_runs_and_reports(click_bell_demos):
    summary = replay_dataset(click_bell_demos, "sapien", episodes=1)
    assert (summary.task, summary.engine, summary.recorded_engine, summary.episodes) == ("click_bell", "sapien",
                                                                                         "mujoco", 1)  # fmt: skip
    (replay,) = summary.replays
    assert summary.successes == int(replay.success) and 1 <= replay.steps <= replay.length
    assert replay.joint_drift_rad > 0.0  # another engine: the same commands move the arms a little differently
    assert summary.wilson_low <= summary.success_rate <= summary.wilson_high


@pytest.mark.usefixtures("restore_render_variables")
def test_sapien_bench_reports_every_row():
    from pushcut.sim.bench import format_table, run_benchmarks

    results = run_benchmarks("click_bell", steps=1, rounds=1, engine="sapien")
    rates = ("raw_render_sps", "env_render_sps", "raw_physics_sps", "env_physics_sps", "pool_step_1_sps",
             "pool_step_2_sps", "pool_chunk_1_sps", "pool_chunk_2_sps", "mujoco_env_render_sps")  # fmt: skip
    assert all(results[key] > 0 for key in rates) and results["engine"] == "sapien"
    for ratio in ("env_overhead_render", "env_overhead_physics", "sapien_vs_mujoco_render", "pool_chunk_speedup"):
        assert results[ratio] > 0
    table = format_table(results)
    assert "raw SAPIEN scene.step" in table and "SAPIEN / MuJoCo env rate, rendered" in table
    with pytest.raises(ValueError, match="unknown engine 'bullet'"):
        run_benchmarks("click_bell", steps=1, engine="bullet")
