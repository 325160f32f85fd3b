"""An outage is never a policy failure: a real `pushcut serve` process is killed (SIGKILL) in the middle of a trial on
the twin; the trial is stored aborted with the fault, the session stops with one line, and the same command, once
the server is back, resumes and redoes that trial on the same seed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("mujoco")

from pushcut.common.conventions import EVAL_SEED_START  # noqa: E402
from pushcut.deploy.client.policy_client import PolicyClient, PolicyTimeout  # noqa: E402
from pushcut.trials_db.database import TrialsDB  # noqa: E402


def _free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _serve(checkpoint: Path, address: str, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "pushcut", "serve", "--checkpoint", str(checkpoint), "--bind", address]
    process = subprocess.Popen(command, stderr=open(log, "w"), stdout=subprocess.DEVNULL)  # noqa: SIM115
    with PolicyClient(address, timeout_s=1.0, retries=0) as probe:
        deadline = time.monotonic() + 180
        while True:
            try:
                probe.ping()
                return process
            except PolicyTimeout:
                assert process.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "the server did not start"


def _trial_run(address: str, db: Path) -> list[str]:
    return [sys.executable, "-m", "pushcut", "trial", "run", "--task", "click_bell", "--server", address,
            "--checkpoint-label", "micro", "--operator", "ada", "--robot", "sim", "--trials", "1",
            "--max-actions", "60", "--db", str(db), "--timeout", "5"]  # fmt: skip


def test_a_server_killed_mid_trial_aborts_it_stops_the_session_and_the_rerun_redoes_it(micro_checkpoint, tmp_path):
    address, db = _free_address(), tmp_path / "trials.db"
    env = {**os.environ, "MUJOCO_GL": "osmesa", "PYTHONUNBUFFERED": "1"}
    server = _serve(micro_checkpoint, address, tmp_path / "serve1.log")
    runner = subprocess.Popen(_trial_run(address, db), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not any((tmp_path / "trials" / "session_0001").glob("trial_001_*.part.mp4")):
            assert runner.poll() is None and time.monotonic() < deadline, "the first trial did not start"
            time.sleep(0.05)
        time.sleep(0.5)  # the policy is driving the twin
        server.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        out, err = runner.communicate(timeout=120)
    finally:
        server.kill()
        runner.kill()
    assert runner.returncode == 3, out + err
    assert time.monotonic() - killed_at < 60, "the session did not stop promptly"
    lines = [line for line in err.splitlines() if line.startswith("session stopped")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "trial 1 aborted, not judged: the policy stopped answering" in lines[0]
    assert f"rerun the same command: the session resumes and redoes this trial on seed {EVAL_SEED_START}" in lines[0]
    with TrialsDB(db) as database:
        (row,) = database.trials(1)
        assert (row["outcome"], row["end_reason"], row["seed"]) == ("aborted", "watchdog", EVAL_SEED_START)
        assert "no chunk" in row["fault"] and row["note"].startswith("not judged: the policy stopped answering")
        assert database.session(1).judged == 0

    server = _serve(micro_checkpoint, address, tmp_path / "serve2.log")  # the operator brings the server back
    try:
        rerun = subprocess.run(_trial_run(address, db), env=env, capture_output=True, text=True, timeout=300)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "resuming session #1 at 0/1" in rerun.stdout and "1/1 judged" in rerun.stdout
    with TrialsDB(db) as database:
        rows = database.trials(1)
    assert [(r["k"], r["seed"]) for r in rows] == [(1, EVAL_SEED_START), (2, EVAL_SEED_START)]
    assert rows[1]["outcome"] in ("success", "failure") and rows[1]["judged_by"] == "predicate"


# ---------------------------------------------------------------------- in-process server: a stall, a robot fault
class StallingBackend:
    """The micro checkpoint's real backend, except that the next inference after :meth:`stall` takes ``seconds``
    longer (a server that is alive but stopped answering for a while: a GC pause, a swapping host)."""

    def __init__(self, inner) -> None:
        self.inner, self.seconds, self.after = inner, 0.0, 0

    def stall(self, seconds: float, after: int = 0) -> None:
        """Stall the inference that follows ``after`` more."""
        self.seconds, self.after = seconds, after

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def infer(self, prepared, temperature: float = 0.0, seed: int | None = None):
        if self.after:
            self.after -= 1
        elif self.seconds:
            delay, self.seconds = self.seconds, 0.0
            time.sleep(delay)
        return self.inner.infer(prepared, temperature=temperature, seed=seed)


@pytest.fixture(scope="module")
def stalling_server(micro_checkpoint):
    from pushcut.deploy.server.backend import TorchBackend
    from pushcut.deploy.server.policy_server import PolicyServer, ServerConfig

    backend = StallingBackend(TorchBackend.from_checkpoint(micro_checkpoint))
    server = PolicyServer(backend, ServerConfig(bind="tcp://127.0.0.1:*", image_shape=(48, 64))).start()
    yield server, backend
    server.stop()


def _config(address: str, db: Path, **overrides):
    from pushcut.robot.trials.config import RunnerConfig

    values = dict(task="click_bell", server=address, checkpoint_label="micro", operator="ada", robot="sim", trials=1,
                  db=db, max_actions=30, server_timeout_s=30.0)  # fmt: skip
    return RunnerConfig(**{**values, **overrides})


def test_a_stalled_server_that_answers_again_aborts_the_trial_and_redoes_it_on_the_same_seed(stalling_server,
                                                                                             tmp_path):  # fmt: skip
    from pushcut.robot.trials.operators import ScriptedOperator
    from pushcut.robot.trials.runner import TrialRunner

    server, backend = stalling_server
    backend.stall(2.5, after=1)  # the second request: the arms move, the watchdog (1 s) fires, the server lives
    operator = ScriptedOperator()
    session = TrialRunner(_config(server.address, tmp_path / "t.db"), operator).run()
    assert (session.attempts, session.judged, session.aborted) == (2, 1, 1) and session.complete
    with TrialsDB(tmp_path / "t.db") as database:
        first, second = database.trials(session.id)
    assert (first["outcome"], first["end_reason"], first["seed"]) == ("aborted", "watchdog", EVAL_SEED_START)
    assert first["note"].startswith("not judged: the policy stopped answering: no chunk")
    assert second["seed"] == EVAL_SEED_START and second["outcome"] in ("success", "failure")
    said = [line for line in operator.transcript if "answers again" in line]
    assert len(said) == 1 and said[0].endswith(f"redoing this trial on seed {EVAL_SEED_START}")


def test_a_robot_fault_mid_trial_aborts_it_and_stops_the_session_until_rerun(stalling_server, tmp_path,
                                                                            monkeypatch):  # fmt: skip
    import threading

    from pushcut.robot.trials import runner as runner_module
    from pushcut.robot.trials.operators import ScriptedOperator
    from pushcut.robot.trials.runner import SessionStopped, TrialRunner

    server, _ = stalling_server
    real_execute, injected = runner_module.execute, []

    def execute_with_a_collision(rig, *args, **kwargs):  # the twin reports a collision 0.5 s into the first trial
        if not injected:
            injected.append(threading.Timer(0.5, rig.sim.inject_fault, ("collision detected (arm status 0x04)",)))
            injected[0].start()
        return real_execute(rig, *args, **kwargs)

    monkeypatch.setattr(runner_module, "execute", execute_with_a_collision)
    db = tmp_path / "t.db"
    with pytest.raises(SessionStopped) as stopped:
        TrialRunner(_config(server.address, db, max_actions=200), ScriptedOperator()).run()
    message = str(stopped.value)
    assert "\n" not in message and message.startswith("trial 1 aborted, not judged: robot fault: ")
    assert "collision detected" in message and "Fix the robot" in message
    assert message.endswith(f"rerun the same command: the session resumes and redoes this trial on seed "
                            f"{EVAL_SEED_START}")  # fmt: skip
    with TrialsDB(db) as database:
        (row,) = database.trials(1)
        assert (row["outcome"], row["end_reason"], row["seed"]) == ("aborted", "fault", EVAL_SEED_START)
        assert "collision detected" in row["fault"] and database.session(1).judged == 0

    monkeypatch.setattr(runner_module, "execute", real_execute)
    session = TrialRunner(_config(server.address, db, max_actions=8), ScriptedOperator()).run()
    assert (session.id, session.judged, session.attempts) == (1, 1, 2)
    with TrialsDB(db) as database:
        assert [r["seed"] for r in database.trials(1)] == [EVAL_SEED_START, EVAL_SEED_START]
