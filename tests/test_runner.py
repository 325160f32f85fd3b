"""`pushcut trial run` on the MuJoCo twin with the real policy server (micro checkpoint), the real executor and
safety filter: whole sessions, operator judging, resuming after kill -9, Ctrl-C, and the start-up checks."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("mujoco")

from pushcut.common.conventions import DEFAULT_ACTION_HZ, EVAL_SEED_START  # noqa: E402
from pushcut.robot.trials.config import RunnerConfig, RunnerError  # noqa: E402
from pushcut.robot.trials.operators import ScriptedOperator  # noqa: E402
from pushcut.robot.trials.runner import TrialRunner  # noqa: E402
from pushcut.trials_db.database import TrialsDB  # noqa: E402

IMAGE_SHAPE = (48, 64)


@pytest.fixture(scope="module")
def server(micro_checkpoint):
    from pushcut.deploy.server.backend import TorchBackend
    from pushcut.deploy.server.policy_server import PolicyServer, ServerConfig

    backend = TorchBackend.from_checkpoint(micro_checkpoint)
    server = PolicyServer(backend, ServerConfig(bind="tcp://127.0.0.1:*", image_shape=IMAGE_SHAPE)).start()
    yield server
    server.stop()


def _config(server, tmp_path: Path, **overrides) -> RunnerConfig:
    values = dict(task="click_bell", server=server.address, checkpoint_label="micro", operator="ada", robot="sim",
                  trials=2, db=tmp_path / "trials.db", max_actions=8, server_timeout_s=60.0)  # fmt: skip
    return RunnerConfig(**{**values, **overrides})


def test_sim_session_records_every_trial_and_resumes_when_extended(server, tmp_path):
    from pushcut.sim.video import read_mp4

    operator = ScriptedOperator()
    session = TrialRunner(_config(server, tmp_path), operator).run()
    assert (session.attempts, session.judged, session.planned_trials) == (2, 2, 2) and session.complete
    with TrialsDB(tmp_path / "trials.db") as db:
        trials = db.trials(session.id)
        assert [t["seed"] for t in trials] == [EVAL_SEED_START, EVAL_SEED_START + 1]
        moved = 0.0
        for t in trials:
            assert t["outcome"] in ("success", "failure") and t["judged_by"] == "predicate"
            # Actions played can be fewer than 8 action periods: the executor drops actions made stale by latency.
            assert t["end_reason"] in ("done", "max_actions") and 0 <= t["actions"] <= 8 + 1
            assert t["chunks"] >= 1 and t["latency_p50_ms"] > 0 and t["instruction"]
            with np.load(db.resolve(t["data_path"])) as data:
                assert data["commanded"].shape[1] == 14 and len(data["measured"]) == len(data["t"]) > 10
                arms = np.r_[0:6, 7:13]  # (grippers snap open/shut: their lag can be the whole range)
                assert np.abs(data["measured"] - data["commanded"])[:, arms].max() < 0.4  # the twin followed
                moved = max(moved, np.ptp(data["commanded"], axis=0).max())
            video = db.resolve(db.trial_videos(t["id"])["head_camera"])
            assert read_mp4(video).shape[1:] == (*IMAGE_SHAPE, 3)
        assert moved > 1e-3, "the policy's chunks never moved the arms"
        stored = db.session(session.id)
        assert stored.checkpoint_hash == server.backend.info.checkpoint_hash

    again = TrialRunner(_config(server, tmp_path), operator).run()  # complete: nothing to do
    assert again.id == session.id and again.attempts == 2
    assert "is complete" in operator.transcript[-1]

    extended = TrialRunner(_config(server, tmp_path, trials=3), operator).run()
    assert (extended.id, extended.attempts, extended.planned_trials) == (session.id, 3, 3)
    with TrialsDB(tmp_path / "trials.db") as db:
        assert db.trials(session.id)[-1]["seed"] == EVAL_SEED_START + 2


def test_operator_judges_and_aborted_trials_are_redone_on_the_same_seed(server, tmp_path):
    judgements = [("failure", "missed the bell"), ("aborted", ""), ("success", "")]
    operator = ScriptedOperator(ready=[True, True, True, False], judgements=judgements)
    session = TrialRunner(_config(server, tmp_path, judge="operator", trials=5), operator).run()
    assert (session.attempts, session.judged, session.successes, session.aborted) == (3, 2, 1, 1)
    assert not session.complete  # the operator ended it at the fourth prompt
    with TrialsDB(tmp_path / "trials.db") as db:
        rows = db.trials(session.id)
    assert [(r["outcome"], r["judged_by"]) for r in rows] == [
        ("failure", "operator"), ("aborted", "operator"), ("success", "operator")]  # fmt: skip
    assert rows[0]["note"] == "missed the bell"
    assert [r["seed"] for r in rows] == [EVAL_SEED_START, EVAL_SEED_START + 1, EVAL_SEED_START + 1]
    assert any("the task predicate says" in line for line in operator.transcript)


def test_server_unreachable_leaves_robot_and_database_untouched(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = _config(SimpleNamespace(address=f"tcp://127.0.0.1:{port}"), tmp_path, server_timeout_s=0.3)
    with pytest.raises(RunnerError, match=r"no policy server answers .*\(the robot was not touched\)"):
        TrialRunner(config, ScriptedOperator()).run()
    assert not (tmp_path / "trials.db").exists()


def test_the_operators_typos_are_named_before_the_server_is_asked(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = SimpleNamespace(address=f"tcp://127.0.0.1:{sock.getsockname()[1]}")
    cases = [
        ({"task": "click_bel"}, r"--task: unknown task 'click_bel'; registered tasks: .* Did you mean 'click_bell'"),
        ({"task": "click_bel", "robot": "piper", "instruction": "press it"}, r"--task: unknown task 'click_bel'"),
        ({"robot": "virtual-piper"}, "--instruction is required with --robot virtual-piper"),
        ({"camera_calibration": tmp_path / "nowhere.json"}, "nowhere.json"),
    ]
    for overrides, message in cases:
        start = time.monotonic()
        with pytest.raises(RunnerError, match=message):
            TrialRunner(_config(nobody, tmp_path, server_timeout_s=30.0, **overrides), ScriptedOperator()).run()
        assert time.monotonic() - start < 10.0, "it waited for the server"
    assert not (tmp_path / "trials.db").exists()
    for option, overrides in (("--servo-hz", {"servo_hz": 0.0}), ("--timeout", {"server_timeout_s": -1.0})):
        with pytest.raises(RunnerError, match=f"{option} must be a positive number"):
            _config(nobody, tmp_path, **overrides)


def test_policy_that_does_not_fit_the_robot_is_refused_before_it_moves(server, tmp_path):
    from pushcut.deploy.client.policy_client import ProtocolMismatch
    from pushcut.robot.trials.rig import build_robot

    class WrongStateClient:
        def hello(self, **kwargs):
            raise ProtocolMismatch("bad_input", "the robot sends 14-D states, the policy needs 7")

    runner = TrialRunner(_config(server, tmp_path), ScriptedOperator())
    with pytest.raises(RunnerError, match="cannot drive this robot: .*needs 7"):
        runner._hello(WrongStateClient())
    info = SimpleNamespace(cameras={"wrist_camera": (48, 64, 3)}, action_hz=DEFAULT_ACTION_HZ)
    with pytest.raises(RunnerError, match=r"needs camera\(s\) \['wrist_camera'\]"):
        build_robot(_config(server, tmp_path), info)
    piper = _config(server, tmp_path, robot="piper")
    with pytest.raises(RunnerError, match="--instruction is required"):
        build_robot(piper, info)
    with pytest.raises(RunnerError, match="RealSense serial with --camera"):
        build_robot(_config(server, tmp_path, robot="piper", instruction="press the bell"), info)
    with pytest.raises(RunnerError, match="judged by the operator"):
        _config(server, tmp_path, robot="piper", judge="predicate")


def test_go_ready_walks_the_twin_back_to_the_ready_pose_through_the_executor():
    import threading

    from pushcut.robot.drivers.sim_robot import SimRobot, SimRobotConfig
    from pushcut.robot.trials.play import go_ready
    from pushcut.robot.trials.rig import Rig
    from pushcut.sim.piper_spec import READY_ACTION as READY

    sim = SimRobot(SimRobotConfig("click_bell"))
    rig = Rig(sim, [], sim=sim)
    try:
        sim.reset(EVAL_SEED_START)
        sim.connect()
        away = READY.copy()
        away[[0, 1, 9]] += [0.4, 0.3, -0.3]
        sim.send_action(away)
        time.sleep(0.5)
        report = go_ready(rig, threading.Event(), action_hz=DEFAULT_ACTION_HZ, speed=1.0)
        assert report.reason == "done", report
        np.testing.assert_allclose(sim.get_state().vector[:6], READY[:6], atol=0.03)
        np.testing.assert_allclose(sim.get_state().vector[7:13], READY[7:13], atol=0.03)
    finally:
        rig.close()


def _cli(server, db: Path, trials: int, max_actions: int) -> list[str]:
    return [sys.executable, "-m", "pushcut", "trial", "run", "--task", "click_bell", "--server", server.address,
            "--checkpoint-label", "micro", "--operator", "ada", "--robot", "sim", "--trials", str(trials),
            "--max-actions", str(max_actions), "--db", str(db), "--timeout", "60"]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "MUJOCO_GL": "osmesa", "PYTHONUNBUFFERED": "1"}


def _wait_for(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _committed(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    except sqlite3.OperationalError:  # the schema is being created
        return 0
    finally:
        conn.close()


def test_kill_9_mid_session_then_rerun_resumes(server, tmp_path):
    db = tmp_path / "trials.db"
    runner = subprocess.Popen(_cli(server, db, 3, 25), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: _committed(db) >= 1 or runner.poll() is not None, 120, "the first trial")
        runner.send_signal(signal.SIGKILL)
    finally:
        runner.kill()
        output = runner.communicate(timeout=30)[0].decode()
    assert runner.returncode == -signal.SIGKILL, output
    with TrialsDB(db) as database:
        before = [dict(r) for r in database.trials(1)]
    assert 1 <= len(before) < 3

    rerun = subprocess.run(_cli(server, db, 3, 25), env=_env(), capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"resuming session #1 at {len(before)}/3" in rerun.stdout
    with TrialsDB(db) as database:
        after = [dict(r) for r in database.trials(1)]
        assert [r["k"] for r in after] == [1, 2, 3] and after[: len(before)] == before  # nothing lost or redone
        assert [r["seed"] for r in after] == [EVAL_SEED_START + i for i in range(3)]
        assert all(database.resolve(r["data_path"]).exists() for r in after)
    assert "3/3 judged" in rerun.stdout


def test_ctrl_c_stops_the_trial_and_a_second_one_ends_the_session_after_saving(server, tmp_path):
    db = tmp_path / "trials.db"
    out = tmp_path / "trials"
    runner = subprocess.Popen(_cli(server, db, 3, 400), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: any(out.glob("session_0001/trial_001_*.part.mp4")), 120, "the first trial to start")
        time.sleep(1.0)
        runner.send_signal(signal.SIGINT)  # stops trial 1, the session goes on
        _wait_for(lambda: any(out.glob("session_0001/trial_002_*.part.mp4")), 60, "the second trial to start")
        time.sleep(1.0)
        runner.send_signal(signal.SIGINT)
        time.sleep(0.3)
        runner.send_signal(signal.SIGINT)  # ends the session once trial 2 is saved
        output = runner.communicate(timeout=60)[0].decode()
    finally:
        runner.kill()
    assert runner.returncode == 130, output
    assert "rerun the same command to resume" in output and "Traceback" not in output
    with TrialsDB(db) as database:
        rows = database.trials(1)
    assert [(r["k"], r["outcome"], r["end_reason"]) for r in rows] == [
        (1, "aborted", "operator_stop"), (2, "aborted", "operator_stop")]  # fmt: skip
    assert rows[0]["seed"] == rows[1]["seed"] == EVAL_SEED_START  # an aborted trial's seed is run again
