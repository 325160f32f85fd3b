"""The dual Piper in SAPIEN against MuJoCo (issue 26 §2 cameras, §3 parity of arms): MuJoCo's servos as PhysX drives,
the same forward kinematics for both mounted arms, the same servo targets (pushcut's one execution, tick for tick)
tracked alike by both engines' physics, and the same cameras (matrices and what they see of the arms).

One rendering SAPIEN rig for the module: its first picture compiles SAPIEN's shaders (about 8 s on lavapipe)."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
from tests_support import click_bell_expert_actions

from pushcut.robot.control import kinematics
from pushcut.sim import make, piper_geometry, scene
from pushcut.sim import piper_spec as spec
from pushcut.sim.camera_calibration import CameraCalibration, Nudge
from pushcut.sim.execution import PIPER_MOTION, ChunkServo
from pushcut.sim.expert import IKSolver
from pushcut.sim.geometry import Pose, tool_rotation
from pushcut.sim.sapien.cameras import HEAD_CAMERA, NEAR_M, RigCameras
from pushcut.sim.sapien.rig import SapienRig

_PAD = piper_geometry.finger_shape("finger_a", 1.0)
PAD_REACH_M = spec.FINGER_BASE_OFFSET_M + _PAD.pos[2] + _PAD.size[2] - spec.TCP_OFFSET_M  # pad tips beyond the TCP
CAMERAS = ("head_camera", "left_camera", "right_camera")
MUJOCO_CAMERAS = {"head_camera": "head_camera", "left_camera": "left/camera", "right_camera": "right/camera"}
PARKED = (0.0, 0.0, -5.0)  # the bell, out of the way: the rig has no task objects yet


pytestmark = pytest.mark.usefixtures("restore_render_variables")


@pytest.fixture(scope="module")
def rig():
    return SapienRig()


@pytest.fixture(scope="module")
def cameras(rig):
    return RigCameras(rig, CAMERAS)


@pytest.fixture(scope="module")
def env():
    env = make("click_bell", cameras=CAMERAS)
    env.reset(seed=0)
    env.set_static_body("bell", PARKED)
    yield env
    env.close()


def tick_steps(env) -> list[int]:
    """Physics steps per servo tick within one action, as the env splits them."""
    return [len(block) for block in np.array_split(np.arange(env.substeps), env.ticks_per_action)]


def track(env, rig: SapienRig, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Play ``actions`` through one ChunkServo; each servo tick's command goes to both engines. Returns per action
    boundary the TCP distance (m, worse arm) and the finger-travel difference (m, worse finger)."""
    start = spec.READY_ACTION
    env.pose_arms(start)
    env.apply_servo_target(start)
    env.advance_physics(0)
    rig.set_joint_state(start)
    rig.apply_servo_target(start)
    servo, clock, steps = ChunkServo(start, 1.0 / env.control_dt, PIPER_MOTION), 0.0, tick_steps(env)
    tcp, fingers = [], []
    for action in actions:
        servo.play(action[None], clock)
        for nstep in steps:
            command = servo.command(clock)
            env.apply_servo_target(command)
            env.advance_physics(nstep)
            rig.apply_servo_target(command)
            rig.advance_physics(nstep)
            clock += nstep * rig.timestep
        tcp.append(max(np.linalg.norm(env.tcp_pose(a).position - rig.tcp_pose(a).position) for a in spec.ARMS))
        grippers = [spec.LEFT_GRIPPER_INDEX, spec.RIGHT_GRIPPER_INDEX]
        opening = np.abs(env.measured_joints()[grippers] - rig.measured_joints()[grippers])
        fingers.append(opening.max() * spec.FINGER_STROKE_M)
    return np.array(tcp), np.array(fingers)


def workspace_sweep(seed: int = 0, waypoints: int = 6, move: int = 12, hold: int = 4) -> np.ndarray:
    """Actions through random joint waypoints that keep every link 6 cm above the table, each reached in ``move``
    actions and held for ``hold``; the grippers open and close in turn."""
    rng, bases = np.random.default_rng(seed), kinematics.mount_frames()
    low, high = spec.JOINT_LIMITS_RAD[:, 0] + 0.1, spec.JOINT_LIMITS_RAD[:, 1] - 0.1
    actions, previous, opening = [], spec.READY_ACTION.copy(), 1.0
    while len(actions) < waypoints * (move + hold):
        joints = rng.uniform(low, high, size=(2, 6))
        if kinematics.chain_points(joints, bases)[:, 1:, 2].min() < spec.TABLE_TOP_Z + 0.06:
            continue
        opening = 1.0 - opening
        target = np.concatenate([joints[0], [opening], joints[1], [1.0 - opening]])
        actions += [previous + (target - previous) * k / move for k in range(1, move + 1)] + [target] * hold
        previous = target
    return np.array(actions)


def test_drives_are_mujocos_servos(rig):
    model = scene.build_model()
    for arm, drives in rig.drives.items():
        for drive in drives[:7]:  # joint1..6 and finger_a carry the servos
            name = "gripper" if drive.joint == "finger_a" else drive.joint
            actuator = model.actuator(f"{arm}/{name}")
            joint = model.joint(f"{arm}/{drive.joint}")
            kv = -actuator.biasprm[2]
            assert drive.stiffness == pytest.approx(actuator.gainprm[0])
            assert drive.damping == pytest.approx(kv + joint.damping[0], rel=1e-4)
            assert drive.force_limit == pytest.approx(actuator.forcerange[1])
            assert drive.armature == pytest.approx(joint.armature[0])
        assert drives[7].joint == "finger_b" and drives[7].stiffness == 0.0


def test_both_mounted_arms_have_mujocos_tool_poses(rig, env):
    rng, worst = np.random.default_rng(1), 0.0
    for _ in range(30):
        state = np.concatenate([rng.uniform(*spec.JOINT_LIMITS_RAD.T), [rng.uniform()],
                                rng.uniform(*spec.JOINT_LIMITS_RAD.T), [rng.uniform()]])  # fmt: skip
        env.pose_arms(state)
        rig.set_joint_state(state)
        for arm in spec.ARMS:
            mj, sp = env.tcp_pose(arm), rig.tcp_pose(arm)
            worst = max(worst, np.abs(mj.position - sp.position).max(), 0.1 * np.abs(mj.rotation - sp.rotation).max())
        np.testing.assert_allclose(rig.measured_joints(), env.measured_joints(), atol=1e-5)
    print(f"TCP pose, SAPIEN vs MuJoCo, both mounted arms: {worst * 1e3:.4f} mm")
    assert worst < 1e-3


def test_the_click_bell_experts_targets_are_tracked_alike(rig, env):
    tcp, fingers = track(env, rig, click_bell_expert_actions(0, still=5))
    print(f"click_bell expert, TCP difference at action boundaries: max {tcp.max() * 1e3:.3f} mm, mean "
          f"{tcp.mean() * 1e3:.3f} mm; fingers max {fingers.max() * 1e3:.3f} mm")  # fmt: skip
    assert tcp.max() < 1e-3 and fingers.max() < 1e-3


def test_a_workspace_sweep_with_gripper_cycles_is_tracked_alike(rig, env):
    tcp, fingers = track(env, rig, workspace_sweep())
    print(f"workspace sweep, TCP difference at action boundaries: max {tcp.max() * 1e3:.3f} mm, mean "
          f"{tcp.mean() * 1e3:.3f} mm; fingers max {fingers.max() * 1e3:.3f} mm")  # fmt: skip
    assert tcp.max() < 3e-3 and tcp.mean() < 2e-3 and fingers.max() < 1e-3


def press_and_drag(engine, start: np.ndarray, pressed: np.ndarray, dragged: np.ndarray) -> np.ndarray:
    """From rest at ``start``, press for 0.5 s, then drag for 0.3 s; the left TCP at the end (MuJoCo's env or the
    rig: the same servo calls)."""
    engine.apply_servo_target(start)
    for target, nstep in ((pressed, 250), (dragged, 150)):
        engine.apply_servo_target(target)
        engine.advance_physics(nstep)
    return engine.tcp_pose("left").position.copy()


def test_fingers_dragged_along_the_table_are_held_back_alike(rig, env):
    """The left gripper points down with its pads commanded 3 mm into the table, then 3 cm sideways: the table's
    friction on the pads holds the gripper back in MuJoCo, and it must in SAPIEN by as much (with PhysX's default
    material, friction 0.3, the pads slid the whole way and the TCP ended about 2 cm from MuJoCo's)."""
    ik, down = IKSolver(), tool_rotation(np.array([0.0, 0.0, -1.0]), np.array([0.0, 1.0, 0.0]))
    touch = np.array([-0.25, -0.15, spec.TABLE_TOP_Z + PAD_REACH_M])
    states = []
    for offset in ([0.0, 0.0, 0.01], [0.0, 0.0, -0.003], [0.03, 0.0, -0.003]):  # above, pressed, dragged
        seed = states[-1][spec.LEFT_ARM_SLICE] if states else spec.READY_POSE
        joints, error, _ = ik.solve("left", Pose(touch + offset, down), seed, iterations=200)
        assert error < 1e-3
        state = spec.READY_ACTION.copy()
        state[spec.LEFT_ARM_SLICE] = joints
        states.append(state)
    env.pose_arms(states[0])
    env.advance_physics(0)
    rig.set_joint_state(states[0])
    mujoco_tcp, sapien_tcp = press_and_drag(env, *states), press_and_drag(rig, *states)
    commanded = touch[:2] + [0.03, 0.0]
    held_back = np.linalg.norm(mujoco_tcp[:2] - commanded)
    print(f"dragged pads, MuJoCo held back {held_back * 1e3:.1f} mm; SAPIEN's TCP "
          f"{np.linalg.norm(sapien_tcp - mujoco_tcp) * 1e3:.1f} mm from MuJoCo's")  # fmt: skip
    assert held_back > 5e-3  # friction matters here: the pads do not slide freely
    assert np.linalg.norm(sapien_tcp - mujoco_tcp) < 0.25 * held_back


def camera_state() -> np.ndarray:
    """Both arms turned towards the table centre, grippers half open: in all three cameras' views."""
    state = spec.READY_ACTION.copy()
    state[[0, 7]] = 0.3, -0.2
    state[[spec.LEFT_GRIPPER_INDEX, spec.RIGHT_GRIPPER_INDEX]] = 0.5
    return state


def test_cameras_have_mujocos_matrices(rig, cameras, env):
    state = camera_state()
    env.pose_arms(state)
    rig.set_joint_state(state)
    for name in CAMERAS:
        expected, got = env.camera_matrices(name), cameras.matrices(name)
        np.testing.assert_allclose(got["intrinsic_cv"], expected["intrinsic_cv"], atol=1e-3, err_msg=name)
        np.testing.assert_allclose(got["cam2world_gl"], expected["cam2world_gl"], atol=1e-5, err_msg=name)
        np.testing.assert_allclose(got["extrinsic_cv"], expected["extrinsic_cv"], atol=1e-5, err_msg=name)
    calibration = CameraCalibration("head_camera", "sim", 320, 240, scene.HEAD_CAMERA_POS, (1.0, 0.0, 0.0, 0.0), 40.0)
    calibration = calibration.nudged(Nudge(0.02, -0.01, 0.03, 2.0, -25.0, 3.0))
    calibrated = make("click_bell", cameras=(HEAD_CAMERA,), camera_calibration=calibration)
    try:
        cameras.place_head_camera(calibration)
        expected, got = calibrated.camera_matrices(HEAD_CAMERA), cameras.matrices(HEAD_CAMERA)
        for key in expected:
            np.testing.assert_allclose(got[key], expected[key], atol=1e-3 if key == "intrinsic_cv" else 1e-5)
    finally:
        calibrated.close()
        cameras.place_head_camera()


def mujoco_arm_masks(state: np.ndarray) -> dict[str, np.ndarray]:
    """Which pixels of each camera show an arm in MuJoCo (segmentation rendering of the bare scene)."""
    model = scene.build_model()
    data = mujoco.MjData(model)
    for arm, (arm_slice, gripper) in {"left": (spec.LEFT_ARM_SLICE, 6), "right": (spec.RIGHT_ARM_SLICE, 13)}.items():
        for joint, value in zip(spec.ARM_JOINT_NAMES, state[arm_slice]):
            data.qpos[model.joint(f"{arm}/{joint}").qposadr[0]] = value
        for finger in ("finger_a", "finger_b"):
            data.qpos[model.joint(f"{arm}/{finger}").qposadr[0]] = state[gripper] * spec.FINGER_STROKE_M
    mujoco.mj_forward(model, data)
    arm_geoms = [g for g in range(model.ngeom) if model.body(model.geom_bodyid[g]).name.split("/")[0] in spec.ARMS]
    renderer = mujoco.Renderer(model, 240, 320)
    renderer.enable_segmentation_rendering()
    masks = {}
    for name, mj_name in MUJOCO_CAMERAS.items():
        renderer.update_scene(data, mj_name)
        segmentation = renderer.render()
        masks[name] = (segmentation[..., 1] == mujoco.mjtObj.mjOBJ_GEOM) & np.isin(segmentation[..., 0], arm_geoms)
    renderer.close()
    return masks


def test_rendered_arms_match_mujocos_silhouettes(rig, cameras):
    state = camera_state()
    rig.set_joint_state(state)
    images = cameras.render()
    segmentation = cameras.render(segmentation=True)
    arm_ids = list(rig.arm_entity_ids("left") | rig.arm_entity_ids("right"))
    model = scene.build_model()
    assert pytest.approx(model.vis.map.znear * model.stat.extent, abs=1e-3) == NEAR_M  # MuJoCo's near clipping plane
    for name, expected in mujoco_arm_masks(state).items():
        image = images[name]
        assert image.shape == (240, 320, 3) and image.dtype == np.uint8 and image.std() > 10, name
        got = np.isin(segmentation[name], arm_ids)
        iou = (got & expected).sum() / (got | expected).sum()
        shift = np.abs(np.argwhere(got).mean(axis=0) - np.argwhere(expected).mean(axis=0)).max()
        print(f"{name}: arm pixels MuJoCo {expected.sum()}, SAPIEN {got.sum()}, IoU {iou:.3f}, "
              f"centroid shift {shift:.2f} px")  # fmt: skip
        assert expected.sum() > 500 and iou > 0.85 and shift < 2.0, name
