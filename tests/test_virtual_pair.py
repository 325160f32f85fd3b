"""The virtual Piper pair (`--robot virtual-piper`): two Piper emulators in the command's own process whose arms are the
MuJoCo twin's, driven by the real driver over the real piper_sdk. The arms move like the twin's and its cameras see
them; `robot check`, `robot replay`, `robot align` and `trial run` work on it from a shell; closing it leaves no
thread of ours and no open port; without mujoco the emulators move on their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from typer.testing import CliRunner
from waiting import wait_until

from pushcut.cli import app
from pushcut.robot.drivers import piper_port, sim_robot
from pushcut.robot.drivers.bimanual import BimanualConfig, PiperBimanual
from pushcut.robot.drivers.interface import RobotFault
from pushcut.robot.drivers.piper_arm import PiperArmConfig
from pushcut.robot.drivers.virtual_pair import REHEARSAL_FEEDBACK_TIMEOUT_S, VirtualPairConfig, VirtualPiperPair
from pushcut.sim import piper_spec as spec

pytestmark = pytest.mark.filterwarnings("ignore:The 'bustype' argument is deprecated:DeprecationWarning")
ARMS = np.r_[spec.LEFT_ARM_SLICE, spec.RIGHT_ARM_SLICE]


def driver(pair: VirtualPiperPair, **overrides: object) -> PiperBimanual:
    limit = REHEARSAL_FEEDBACK_TIMEOUT_S  # emulators in this process: feedback comes in bursts on a busy machine
    config = BimanualConfig(left=PiperArmConfig(can_name=pair.channels["left"], name="left", feedback_timeout_s=limit),
                            right=PiperArmConfig(can_name=pair.channels["right"], name="right",
                                                 feedback_timeout_s=limit))  # fmt: skip
    return PiperBimanual.from_config(config, bustype="virtual", release_port_on_close=True, **overrides)


def our_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("virtual-piper-", "pushcut-sim-physics"))]


def test_the_real_driver_moves_the_twin_and_its_camera_sees_it(tmp_path):
    with VirtualPiperPair() as pair:
        robot = driver(pair, speed_percent=100)
        robot.connect()
        start = robot.get_state().vector
        np.testing.assert_allclose(start, np.zeros(14), atol=0.01)  # folded at rest, grippers closed
        camera = pair.camera("head_camera", 160, 120)
        camera.connect()
        before = camera.read().rgb
        deadline = time.monotonic() + 5.0
        while np.abs(robot.get_state().vector - spec.READY_ACTION).max() > 0.02 and time.monotonic() < deadline:
            robot.send_action(spec.READY_ACTION)
            time.sleep(0.01)
        settled = time.monotonic() + 0.5  # at rest, so that "a few ms apart" below is no motion
        while time.monotonic() < settled:
            robot.send_action(spec.READY_ACTION)
            time.sleep(0.01)
        state = robot.get_state()
        np.testing.assert_allclose(state.vector, spec.READY_ACTION, atol=0.02)
        assert state.faults == ()
        # what the driver reads over CAN is what the twin measures (0.001 deg units, a few ms apart)
        np.testing.assert_allclose(state.vector, pair.twin.get_state().vector, atol=0.01)
        assert np.abs(camera.read().rgb.astype(int) - before).mean() > 2.0  # the arms rose into the head camera
        camera.close()
        robot.disconnect()
        channels = tuple(pair.channels.values())
    assert not our_threads()
    assert not set(channels) & set(piper_port._PORTS)


def test_the_measured_joints_lag_the_commands_as_the_twins_servos_do():
    with VirtualPiperPair() as pair:
        robot = driver(pair, speed_percent=100)
        robot.connect()
        lags = []
        for _ in range(60):
            robot.send_action(spec.READY_ACTION)
            time.sleep(0.01)
            servo = pair.emulators["right"].state().joints  # the speed-limited servo position
            lags.append(np.abs(servo - robot.get_state().vector[spec.RIGHT_ARM_SLICE]).max())
        robot.disconnect()
    assert max(lags) > 0.01  # the twin's arm follows its servo target, it is not the target


def test_without_mujoco_the_emulators_move_on_their_own_and_there_is_no_camera(monkeypatch):
    def no_mujoco(self, config):
        raise ModuleNotFoundError("No module named 'mujoco'", name="mujoco")

    monkeypatch.setattr(sim_robot.SimRobot, "__init__", no_mujoco)
    with VirtualPiperPair() as pair:
        assert pair.twin is None and "mujoco is not installed" in pair.describe()
        with pytest.raises(RobotFault, match=r"camera head_camera: .*no twin.*pip install 'pushcut\[sim\]'"):
            pair.camera("head_camera", 64, 48)
        robot = driver(pair, speed_percent=100)
        robot.connect()

        def arrived() -> bool:
            robot.send_action(spec.READY_ACTION)
            return np.abs(robot.get_state().vector - spec.READY_ACTION)[ARMS].max() < 0.01

        assert wait_until(arrived, timeout=5.0)
        robot.disconnect()
    with pytest.raises(RobotFault, match="twin cannot start: mujoco is not installed"):
        VirtualPiperPair(VirtualPairConfig(twin=True)).start()
    check = CliRunner().invoke(app, ["robot", "check", "--robot", "virtual-piper", "--camera", "head_camera=twin"])
    assert check.exit_code == 1, check.output  # the arms pass, the camera cannot exist
    assert "PASS  left arm answers" in check.output and "moving kinematically (no MuJoCo twin" in check.output
    assert "FAIL  camera head_camera: missing: " in check.output
    assert check.output.rstrip().endswith("-> install the simulator: pip install 'pushcut[sim]'")
    twin_check = CliRunner().invoke(app, ["robot", "check", "--robot", "sim"])
    assert twin_check.exit_code == 2 and "--robot sim needs the simulator: mujoco is not installed" in twin_check.output
    assert not our_threads()


def _pushcut(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    env = {**os.environ, "MUJOCO_GL": "osmesa"}
    return subprocess.run([sys.executable, "-m", "pushcut", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)  # fmt: skip


def test_robot_check_on_the_virtual_pair_passes_from_a_shell_and_exits():
    result = _pushcut("robot", "check", "--robot", "virtual-piper", "--camera", "head_camera=twin", "--camera-mode",
                      "160x120@30", "--json")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] and checks["virtual Piper pair"]["detail"].endswith("the MuJoCo twin of click_bell (seed 0)")
    assert checks["CAN interfaces"]["status"] == "SKIP"
    for side in ("left", "right"):
        assert checks[f"{side} arm answers"]["status"] == "PASS"
        assert "firmware S-V1.6-3" in checks[f"{side} arm answers"]["detail"]
    assert checks["camera head_camera"]["detail"].startswith("160x120, rendered on demand")


def test_robot_replay_on_the_virtual_pair_homes_plays_and_presses_the_bell(click_bell_demos):
    demo = click_bell_demos / "data" / "episode0.hdf5"
    result = CliRunner().invoke(app, ["robot", "replay", "--demo", str(demo), "--robot", "virtual-piper", "--speed",
                                      "1", "--safety", "default", "--yes", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["completed"] and report["robot"].startswith("virtual-piper (twin of click_bell")
    joints = {j["name"]: j for j in report["joints"]}
    assert 0.01 < joints["left_joint2"]["rms"] < 10.0  # degrees: the twin's arms lag (CAN rounds to 0.001)
    assert report["sim_success"] is True  # the expert's demonstration, through the real driver, presses the bell
    assert not our_threads()


def test_robot_align_on_the_virtual_pair_scores_its_own_twin_camera_well(tmp_path):
    out = tmp_path / "align"
    result = CliRunner().invoke(app, ["robot", "align", "--robot", "virtual-piper", "--camera", "head_camera=twin",
                                      "--width", "160", "--height", "120", "--out", str(out), "--nudge",
                                      "0.03,0,0,0,0,0", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    np.testing.assert_allclose(report["joints"], np.zeros(14), atol=0.01)  # read at rest, nothing commanded
    nominal, nudged = report["steps"]
    assert nominal["edge_distance_px"] < nudged["edge_distance_px"]  # the twin's own view fits its nominal pose
    bad = CliRunner().invoke(app, ["robot", "align", "--robot", "sim", "--camera", "head_camera=twin", "--out",
                                   str(out)])  # fmt: skip
    assert bad.exit_code == 2 and "use it with --robot virtual-piper" in bad.output


def test_a_trial_session_on_the_virtual_pair_runs_the_real_robot_path(micro_checkpoint, tmp_path):
    pytest.importorskip("torch")
    from pushcut.deploy.server.backend import TorchBackend
    from pushcut.deploy.server.policy_server import PolicyServer, ServerConfig
    from pushcut.robot.trials.config import RunnerConfig
    from pushcut.robot.trials.operators import ScriptedOperator
    from pushcut.robot.trials.runner import TrialRunner
    from pushcut.trials_db.database import TrialsDB

    backend = TorchBackend.from_checkpoint(micro_checkpoint)
    server = PolicyServer(backend, ServerConfig(bind="tcp://127.0.0.1:*", image_shape=(48, 64))).start()
    try:
        config = RunnerConfig(task="click_bell", server=server.address, checkpoint_label="micro", operator="ada",
                              robot="virtual-piper", trials=1, db=tmp_path / "trials.db", max_actions=4,
                              instruction="press the bell", server_timeout_s=60.0)  # fmt: skip
        operator = ScriptedOperator(judgements=[("failure", "rehearsal")])
        session = TrialRunner(config, operator).run()
    finally:
        server.stop()
    assert session.judged == 1 and session.robot == "virtual-piper"
    assert any("set the scene" in line for line in operator.transcript)  # the operator's prompts, as on the arms
    with TrialsDB(tmp_path / "trials.db") as db:
        stored = db.session(session.id)
        (trial,) = db.trials(session.id)
        with np.load(db.resolve(trial["data_path"])) as data:
            measured = data["measured"]
    assert stored.robot_kind == "sim" and trial["judged_by"] == "operator" and trial["outcome"] == "failure"
    np.testing.assert_allclose(measured[0][ARMS], spec.READY_ACTION[ARMS], atol=0.05)  # homed from rest first
    assert not our_threads()
