"""`pushcut robot replay`: a real demonstration of `pushcut sim demo` played through the trial executor and safety
filter on the MuJoCo twin (CLI) and on the virtual Piper pair (real piper_sdk over a virtual CAN bus); bad input and
a failing pre-flight move nothing."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import can
import h5py
import numpy as np
import pytest
from typer.testing import CliRunner
from waiting import wait_until

from pushcut.cli import app
from pushcut.robot.drivers.bimanual import VirtualBimanual
from pushcut.robot.drivers.virtual_piper import VirtualPiper, VirtualPiperConfig
from pushcut.robot.tools.demo_file import ReplayError, load_demo
from pushcut.robot.tools.preflight import preflight
from pushcut.robot.tools.replay import SETTLE_S, TimelineSource, replay
from pushcut.sim import piper_spec as spec
from pushcut.sim.demos import generate_demos
from pushcut.testing.robot_doubles import RecordingRobot

pytestmark = pytest.mark.filterwarnings("ignore:The 'bustype' argument is deprecated:DeprecationWarning")
JOINT_FRAMES = (0x155, 0x156, 0x157)


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("demos")
    generate_demos("click_bell", 1, out, progress=False,
                   env_overrides={"cameras": ("head_camera",), "image_width": 32, "image_height": 24})  # fmt: skip
    return out / "data" / "episode0.hdf5"


def invoke(*args):
    return CliRunner().invoke(app, ["robot", "replay", *args])


def test_dry_run_plays_the_demo_on_the_twin_and_reports_tracking_and_timing(demo_path):
    demo = load_demo(demo_path)
    result = invoke(
        "--demo", str(demo_path), "--speed", "0.5", "--robot", "piper", "--can-left", "absent0", "--dry-run", "--json"
    )  # fmt: skip  (--dry-run: the CAN interfaces are never opened)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["completed"] and report["end_reason"] == "done" and report["robot"] == "sim"
    assert report["safety"] == "first_run" and report["sim_success"] is True
    assert math.isclose(report["planned_s"], len(demo.actions) / (demo.action_hz * 0.5))
    # arrival at the last action: about at the plan's end (the smoothed command eases into it), within the settling
    assert report["planned_s"] - 0.1 < report["actual_s"] < report["planned_s"] + SETTLE_S
    joints = {j["name"]: j for j in report["joints"]}
    assert list(joints) == list(spec.ACTION_NAMES)
    assert joints["right_joint1"]["unit"] == "deg" and joints["right_gripper"]["unit"] == "mm"
    # click_bell presses with the right arm: it moved and the twin tracked it to within a few degrees
    assert 0.05 < joints["right_joint2"]["max"] < 6.0 and joints["left_joint1"]["max"] < 0.5
    assert all(j["rms"] <= j["max"] for j in joints.values())
    assert report["ticks"] > report["planned_s"] * 25  # a 100 Hz servo loop (a loaded machine skips ticks)


def test_the_text_report_has_one_line_per_joint(demo_path):
    result = invoke("--demo", str(demo_path), "--speed", "1")
    assert result.exit_code == 0, result.output
    assert "click_bell on sim at speed 1.0 (first_run safety): done" in result.stdout
    assert sum(line.startswith(("left_", "right_")) for line in result.stdout.splitlines()) == 14


def write_variant(src, dst, actions=None, task=None):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        if task is not None:
            f.attrs["task"] = task
        if actions is not None:
            del f["joint_action/vector"]
            f["joint_action/vector"] = actions
    return dst


@pytest.mark.parametrize("case", ["missing", "speed0", "speed2", "task", "dim", "nan"])
def test_bad_input_is_one_line_and_nothing_connects(demo_path, tmp_path, case):
    path, speed, extra = demo_path, "0.5", []
    if case == "missing":
        path = tmp_path / "nope.hdf5"
    elif case in ("speed0", "speed2"):
        speed = {"speed0": "0", "speed2": "2"}[case]
    elif case == "task":
        extra = ["--task", "move_can_pot"]
    elif case == "dim":
        path = write_variant(demo_path, tmp_path / "d7.hdf5", actions=np.zeros((5, 7)))
    else:
        actions = load_demo(demo_path).actions.copy()
        actions[3, 2] = np.nan
        path = write_variant(demo_path, tmp_path / "nan.hdf5", actions=actions)
    # --robot piper on interfaces that do not exist: the input is rejected before anything is opened
    result = invoke("--demo", str(path), "--speed", speed, "--robot", "piper", "--can-left", "absent0",
                    "--can-right", "absent1", *extra)  # fmt: skip
    assert result.exit_code == 2
    expected = {"missing": "does not exist", "speed0": "must be within (0, 1]", "speed2": "must be within (0, 1]",
                "task": "is a demonstration of 'click_bell', but the task set up is 'move_can_pot'",
                "dim": "actions have shape (5, 7)", "nan": "NaN or inf"}[case]  # fmt: skip
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and expected in line and "absent" not in line


def test_a_demo_of_an_unknown_task_is_refused_on_the_twin(demo_path, tmp_path):
    path = write_variant(demo_path, tmp_path / "other.hdf5", task="fold_towel")
    result = invoke("--demo", str(path))
    assert result.exit_code == 2 and "unknown task 'fold_towel'" in result.stderr


def test_timeline_source_answers_the_demo_at_the_executor_action_times():
    actions = np.cumsum(np.full((6, 14), 0.01), axis=0)
    source = TimelineSource(actions, rate_hz=10.0, chunk=4)
    first = source.request_async({}, actions[0], "").result()
    np.testing.assert_allclose(first, actions[:4])
    np.testing.assert_allclose(source.at(np.array([source.t0 + 0.25])), [(actions[1] + actions[2]) / 2])
    np.testing.assert_allclose(source.at(np.array([source.t0 + 9.0])), [actions[-1]])  # held after the end
    assert math.isclose(source.end, source.t0 + 0.6)


def test_preflight_names_joints_outside_the_limits_and_lost_feedback():
    start = spec.READY_ACTION.copy()
    start[8] = math.radians(-5.0)  # right joint2, lower limit 0
    robot = RecordingRobot(start=start)
    assert preflight(RecordingRobot()) == []
    (problem,) = preflight(robot)
    assert "the right arm joints: beyond the joint limits: joint 2 at -5.0 deg (limits -1.0..180.9)" in problem
    robot = RecordingRobot()
    robot.feedback_frozen_at = 0.0
    robot.faults = ("left: arm status collision",)
    problems = preflight(robot)
    assert problems[0] == "fault: left: arm status collision" and "feedback lost" in problems[1]


@pytest.fixture
def emulators():
    prefix = f"vpiper-{uuid.uuid4().hex[:8]}"
    pipers = {side: VirtualPiper(VirtualPiperConfig(channel=f"{prefix}-{side}")).start() for side in ("left", "right")}
    yield prefix, pipers
    for piper in pipers.values():
        piper.close()


def test_cli_replay_on_the_virtual_piper_homes_then_plays_and_tracks(demo_path, emulators):
    prefix, pipers = emulators
    demo = load_demo(demo_path)
    result = invoke("--demo", str(demo_path), "--speed", "1", "--robot", "piper", "--can-left", f"{prefix}-left",
                    "--can-right", f"{prefix}-right", "--can-bus", "virtual", "--json", "--yes")  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["completed"] and report["robot"] == f"piper ({prefix}-left, {prefix}-right)"
    assert report["sim_success"] is None
    assert report["planned_s"] - 0.1 < report["actual_s"] < report["planned_s"] + SETTLE_S
    right = pipers["right"].state()
    np.testing.assert_allclose(right.joints, demo.actions[-1, 7:13], atol=0.02)  # homed from rest, then played
    assert len(pipers["right"].received(0x155)) > 100 and right.power_cuts == 0
    joints = {j["name"]: j for j in report["joints"]}
    # the emulated arm follows at its speed limit: a lag of a few degrees while the right arm moves, none on the left
    assert 0.05 < joints["right_joint2"]["max"] < 10.0 and joints["left_joint2"]["max"] < 1.0


def test_real_arms_move_only_after_the_operator_confirms(demo_path, emulators):
    prefix, pipers = emulators
    result = CliRunner().invoke(app, ["robot", "replay", "--demo", str(demo_path), "--robot", "piper", "--can-left",
                                      f"{prefix}-left", "--can-right", f"{prefix}-right", "--can-bus", "virtual"],
                                input="n\n")  # fmt: skip
    assert result.exit_code == 1 and "Is the workspace clear" in result.stderr
    assert result.stderr.strip().endswith("error: not confirmed: nothing moved")
    assert all(len(piper.received(0x471)) == 0 and len(piper.received(0x155)) == 0 for piper in pipers.values())


@pytest.mark.parametrize("problem", ["silent", "estop"])
def test_replay_never_starts_unless_robot_check_passes(demo_path, emulators, problem):
    prefix, pipers = emulators
    if problem == "silent":
        pipers["right"].stop_feedback()
    else:  # the e-stop frame, as a pendant sends it
        with can.Bus(interface="virtual", channel=f"{prefix}-left") as bus:
            bus.send(can.Message(arbitration_id=0x150, data=[0x01] + [0] * 7, is_extended_id=False))
        assert wait_until(lambda: pipers["left"].state().estopped)
    result = invoke("--demo", str(demo_path), "--robot", "piper", "--can-left", f"{prefix}-left", "--can-right",
                    f"{prefix}-right", "--can-bus", "virtual", "--yes")  # fmt: skip
    assert result.exit_code == 1, result.output
    expected = "FAIL  right arm answers: no arm answers" if problem == "silent" else "FAIL  left arm e-stop"
    assert expected in result.stderr
    assert result.stderr.strip().endswith("error: `pushcut robot check` failed (above): nothing moved")
    assert "homing" not in result.stderr
    for piper in pipers.values():  # not enabled, not one joint frame
        assert len(piper.received(0x471)) == 0 and all(len(piper.received(i)) == 0 for i in JOINT_FRAMES)


def test_ctrl_c_stops_the_replay_and_the_arms_hold(demo_path):
    env = {**os.environ, "MUJOCO_GL": "osmesa"}
    process = subprocess.Popen([sys.executable, "-m", "pushcut", "robot", "replay", "--demo", str(demo_path),
                                "--speed", "0.1", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)  # fmt: skip
    try:
        line = process.stderr.readline()
        assert line.startswith("homing, then") and "Ctrl-C stops" in line, line
        time.sleep(2.0)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1, stderr
    report = json.loads(stdout)
    assert report["end_reason"] == "operator_stop" and not report["completed"] and report["fault"] is None
    assert report["actual_s"] is None  # stopped half-way: never arrived at the last action


def test_replay_refuses_an_arm_in_fault_and_sends_no_joint_frame(demo_path):
    demo = load_demo(demo_path)
    with VirtualBimanual() as rig:
        rig.robot.connect()
        before = {side: sum(len(e.received(i)) for i in JOINT_FRAMES) for side, e in rig.emulators.items()}
        rig.emulators["left"].force_arm_status(0x07)  # collision
        assert wait_until(lambda: rig.robot.get_state().faults != ())
        with pytest.raises(ReplayError, match=r"^pre-flight failed, nothing moved: fault: left: .*collision"):
            replay(rig.robot, demo)
        after = {side: sum(len(e.received(i)) for i in JOINT_FRAMES) for side, e in rig.emulators.items()}
        assert after == before
