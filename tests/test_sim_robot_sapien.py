"""The twin in SAPIEN (issue 26): `SimRobot(SimRobotConfig(task, engine="sapien"))` steps and renders SAPIEN's world
in real time through the env's public API; `pushcut trial run --robot sim --sim sapien` records the engine with the
session, names it, and resumes only in it; `--sim` is refused in one line where it chooses nothing.

The robot is module-scoped: SAPIEN's first picture of a scene compiles shaders (about 8 s on lavapipe)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from typer.testing import CliRunner
from waiting import wait_until

from pushcut.common.conventions import EVAL_SEED_START
from pushcut.robot.drivers.sim_robot import SimCamera, SimRobot, SimRobotConfig
from pushcut.robot.trials.config import RunnerConfig, RunnerError
from pushcut.robot.trials.operators import ScriptedOperator
from pushcut.robot.trials.runner import TrialRunner
from pushcut.sim import make
from pushcut.trials_db.database import TrialsDB

pytestmark = pytest.mark.usefixtures("restore_render_variables")

SEED = 1_000_003
IMAGE_SHAPE = (48, 64)  # (height, width) of the micro policy's head camera


def _mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


def _mujoco_picture(seed: int, joints: np.ndarray) -> np.ndarray:
    """MuJoCo's head camera picture of the same scene with the arms at ``joints``."""
    env = make("click_bell", cameras=(), engine="mujoco")
    try:
        env.reset(seed=seed)
        env.pose_arms(joints)
        return env.render_camera("head_camera", IMAGE_SHAPE[1], IMAGE_SHAPE[0])
    finally:
        env.close()


@pytest.fixture(scope="module")
def robot():
    robot = SimRobot(SimRobotConfig("click_bell", engine="sapien"))
    robot.reset(SEED)
    robot.connect()
    yield robot
    robot.close()


def test_the_sapien_twin_follows_commands_and_its_cameras_draw_sapiens_world(robot):
    assert robot.engine == robot.env.world.engine == "sapien"
    camera = SimCamera(robot, "head_camera", width=IMAGE_SHAPE[1], height=IMAGE_SHAPE[0])
    camera.connect()
    try:
        first = camera.read()
        assert first.rgb.shape == (*IMAGE_SHAPE, 3) and first.rgb.dtype == np.uint8 and first.rgb.std() > 1.0
        started = robot.env.world.time()
        target = robot.get_state().vector
        target[7] -= 0.8  # swing the right arm through the view
        robot.send_action(target)
        frames: list = []

        def grab() -> None:  # a second reader (the recorder) beside this one (the policy), while the physics steps
            frames.extend(camera.read() for _ in range(4))

        reader = threading.Thread(target=grab)
        reader.start()
        frames.extend(camera.read() for _ in range(4))
        reader.join()
        assert wait_until(lambda: abs(robot.get_state().vector[7] - target[7]) < 0.05, 5.0), "the arm did not follow"
        assert robot.env.world.time() > started and robot.get_state().faults == ()
        last = camera.read()
        assert len({f.index for f in frames}) == 8 and last.index == 10 and last.timestamp > first.timestamp
        assert _mean_difference(last.rgb, first.rgb) > 1.0, "the moved arm is not visible"
        with robot.lock:  # the same state drawn by SAPIEN directly and by MuJoCo
            joints = robot.env.measured_joints()
            sapien = robot.env.world.render("head_camera", IMAGE_SHAPE[1], IMAGE_SHAPE[0])
        mujoco = _mujoco_picture(SEED, joints)
        now = camera.read().rgb
        assert _mean_difference(now, sapien) < 0.5 * _mean_difference(now, mujoco), "not SAPIEN's picture"
    finally:
        camera.close()


@pytest.fixture(scope="module")
def server(micro_checkpoint):
    from pushcut.deploy.server.backend import TorchBackend
    from pushcut.deploy.server.policy_server import PolicyServer, ServerConfig

    backend = TorchBackend.from_checkpoint(micro_checkpoint)
    server = PolicyServer(backend, ServerConfig(bind="tcp://127.0.0.1:*", image_shape=IMAGE_SHAPE)).start()
    yield server
    server.stop()


def _config(server, tmp_path, **overrides) -> RunnerConfig:
    values = dict(task="click_bell", server=server.address, checkpoint_label="micro", operator="ada", robot="sim",
                  sim="sapien", trials=1, db=tmp_path / "trials.db", max_actions=4, server_timeout_s=60.0)  # fmt: skip
    return RunnerConfig(**{**values, **overrides})


def test_a_trial_session_in_sapien_records_and_names_its_engine(server, tmp_path):
    from pushcut.sim.video import read_mp4

    operator = ScriptedOperator()
    session = TrialRunner(_config(server, tmp_path), operator).run()
    assert (session.judged, session.robot) == (1, "sim")
    assert any("1 trials on sim (sapien)" in line for line in operator.transcript), operator.transcript
    with TrialsDB(tmp_path / "trials.db") as db:
        assert db.session_settings(session.id)["engine"] == "sapien"
        (trial,) = db.trials(session.id)
        video = read_mp4(db.resolve(db.trial_videos(trial["id"])["head_camera"]))
    assert trial["seed"] == EVAL_SEED_START and video.shape[1:] == (*IMAGE_SHAPE, 3)
    sapien_env = make("click_bell", cameras=(), engine="sapien")
    try:  # the trial's first frame: its seed's scene with the arms at the ready pose, as SAPIEN draws it
        sapien_env.reset(seed=EVAL_SEED_START)
        sapien = sapien_env.render_camera("head_camera", IMAGE_SHAPE[1], IMAGE_SHAPE[0])
        joints = sapien_env.measured_joints()
    finally:
        sapien_env.close()
    mujoco = _mujoco_picture(EVAL_SEED_START, joints)
    assert _mean_difference(video[0], sapien) < 0.5 * _mean_difference(video[0], mujoco), "not SAPIEN's frames"

    with pytest.raises(RunnerError, match=r"ran its trials in sapien, not mujoco: rerun with --sim sapien"):
        TrialRunner(_config(server, tmp_path, sim="mujoco", trials=2), ScriptedOperator()).run()


def test_sim_is_refused_where_it_chooses_no_twin_engine(tmp_path):
    from pushcut.cli import app

    with pytest.raises(ValueError, match="unknown twin engine 'bullet'; expected one of mujoco, sapien"):
        SimRobotConfig("click_bell", engine="bullet")
    base = dict(task="click_bell", server="tcp://127.0.0.1:1", checkpoint_label="micro", operator="ada")
    with pytest.raises(RunnerError, match=r"--sim must be one of mujoco, sapien \(the twin's engine\), got 'robotwin'"):
        RunnerConfig(**base, sim="robotwin")
    with pytest.raises(RunnerError, match="--sim sapien chooses the twin's engine: it goes with --robot sim"):
        RunnerConfig(**base, robot="piper", sim="sapien", instruction="press the bell")
    assert RunnerConfig(**base, robot="piper").engine is None and RunnerConfig(**base).engine == "mujoco"
    result = CliRunner().invoke(app, ["trial", "run", "--task", "click_bell", "--checkpoint-label", "micro",
                                      "--operator", "ada", "--robot", "virtual-piper", "--sim", "sapien",
                                      "--db", str(tmp_path / "t.db")])  # fmt: skip
    assert result.exit_code == 2 and "--sim sapien chooses the twin's engine" in result.output
    assert not (tmp_path / "t.db").exists()
