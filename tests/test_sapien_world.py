"""Every task in SAPIEN's world from the same task code (issue 26 §2-3): `make(task, engine="sapien")` gives the
same initial scene as MuJoCo for a seed (object poses within 1 mm, the instruction), the click_bell expert's actions
are tracked alike, the randomisation switches give MuJoCo's scene (textures and light tints:
test_sapien_appearance.py), and the commands take `--sim sapien`.

Envs are module-scoped: SAPIEN's first picture of a scene compiles shaders (about 8 s on lavapipe)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from typer.testing import CliRunner

from pushcut.cli import app
from pushcut.sim import make
from pushcut.sim.demos import run_expert
from pushcut.sim.randomization import RandomizationConfig
from pushcut.sim.registry import task_names
from pushcut.sim.robotwin.backend import split_overrides, world_overrides
from pushcut.sim.sapien.world import SapienWorld
from pushcut.sim.world import World
from pushcut.train.provenance import training_world, world_differences

SEED = 7
SHOWN = RandomizationConfig(object_colors=True, table_height=True, distractors=True, head_camera_jitter=True)


pytestmark = pytest.mark.usefixtures("restore_render_variables")


def _pair(task: str, **overrides):
    return make(task, engine="mujoco", **overrides), make(task, engine="sapien", **overrides)


def _touching(env) -> set[frozenset[str]]:
    """The pairs of bodies in contact that involve a task object."""
    objects = {body.name for body in env.description.objects.bodies}
    return {frozenset((c.body_a, c.body_b)) for c in env.world.contacts() if {c.body_a, c.body_b} & objects}


@pytest.mark.parametrize("task", task_names())
def test_same_seed_same_initial_scene(task):
    mujoco_env, sapien_env = _pair(task, cameras=())
    assert isinstance(sapien_env.world, SapienWorld) and isinstance(sapien_env.world, World)
    try:
        _, mujoco_info = mujoco_env.reset(seed=SEED)
        _, sapien_info = sapien_env.reset(seed=SEED)
        assert sapien_info["instruction"] == mujoco_info["instruction"]
        for body in mujoco_env.description.objects.bodies:
            gap = np.abs(sapien_env.body_position(body.name) - mujoco_env.body_position(body.name)).max()
            assert gap <= 1e-3, f"{task}: {body.name} starts {gap * 1000:.2f} mm from MuJoCo's"
        np.testing.assert_allclose(sapien_env.measured_joints(), mujoco_env.measured_joints(), atol=2e-3)
        assert _touching(sapien_env) == _touching(mujoco_env)  # resting objects report their contacts
        with pytest.raises(AttributeError, match="exists only in the MuJoCo world; this env runs sapien"):
            sapien_env.camera_ids  # noqa: B018
    finally:
        mujoco_env.close()
        sapien_env.close()


@pytest.fixture(scope="module")
def bell_pair():
    mujoco_env, sapien_env = _pair("click_bell", cameras=("head_camera",), randomization=SHOWN)
    yield mujoco_env, sapien_env
    mujoco_env.close()
    sapien_env.close()


def test_shown_randomisation_gives_mujocos_scene(bell_pair):
    mujoco_env, sapien_env = bell_pair
    for seed in (1, 2):
        mujoco_env.reset(seed=seed)
        sapien_env.reset(seed=seed)
        assert sapien_env.table_z == mujoco_env.table_z
        np.testing.assert_allclose(sapien_env.body_position("table"), mujoco_env.body_position("table"), atol=1e-6)
        for slot in mujoco_env.description.distractors:
            np.testing.assert_allclose(sapien_env.body_position(slot.name), mujoco_env.body_position(slot.name),
                                       atol=1e-3)  # fmt: skip
        colours = sapien_env.appearance.group_colours
        assert colours is not None and colours.keys() == mujoco_env.appearance.group_colours.keys()
        for group, shapes in sapien_env.world.group_shapes.items():
            for shape in shapes:
                materials = [part.material for part in shape.parts] if hasattr(shape, "parts") else [shape.material]
                for material in materials:
                    np.testing.assert_allclose(material.base_color, colours[group], atol=1e-6)
        for camera, atol in (("head_camera", 1e-6), ("left_camera", 3e-3)):  # a wrist camera rides its settled arm
            for key, value in mujoco_env.camera_matrices(camera).items():
                np.testing.assert_allclose(sapien_env.camera_matrices(camera)[key], value, atol=atol, err_msg=key)


def test_click_bell_expert_steps_track_mujocos(bell_pair):
    mujoco_env, sapien_env = bell_pair
    mujoco_env.reset(seed=0)
    obs, _ = sapien_env.reset(seed=0)
    image = obs["observation"]["head_camera"]["rgb"]
    assert image.shape == (240, 320, 3) and image.std() > 5.0  # a picture of the scene, not a blank
    for step, action in enumerate(mujoco_env.task.expert(mujoco_env)):
        mujoco_env.step(action)
        obs, _, _, _, _ = sapien_env.step(action)
        if step == 4:
            break
    for arm in ("left", "right"):
        gap = np.linalg.norm(sapien_env.tcp_pose(arm).position - mujoco_env.tcp_pose(arm).position)
        assert gap < 2e-3, f"{arm} TCP {gap * 1000:.2f} mm from MuJoCo's after the same actions"
    assert obs["observation"]["head_camera"]["rgb"].shape == (240, 320, 3)


def test_click_bell_expert_episode_in_sapien():
    """The success predicate in SAPIEN over one full expert episode (the expert plans from SAPIEN's state)."""
    env = make("click_bell", engine="sapien", cameras=())
    start = time.perf_counter()
    result = run_expert(env, 0)
    print(f"click_bell expert in SAPIEN: success={result.success} steps={result.steps} "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    env.close()
    assert result.success and result.strategy == "press"


def test_unknown_engine_refused_in_one_line():
    with pytest.raises(ValueError, match="unknown engine 'bullet'; expected one of mujoco, sapien") as error:
        make("click_bell", engine="bullet")
    assert "\n" not in str(error.value)


def test_commands_take_sim_sapien():
    runner = CliRunner()
    shown = runner.invoke(app, ["eval", "sim", "--sim", "sapien", "--help"])
    assert shown.exit_code == 0 and "sapien" in shown.output
    refused = runner.invoke(app, ["sim", "experts", "--sim", "bullet", "--task", "click_bell", "--seeds", "1"])
    assert refused.exit_code == 2
    assert refused.output.strip() == "error: --sim 'bullet'; expected one of mujoco, sapien, robotwin"


def test_sim_sapien_becomes_the_engine_override_that_checkpoints_record():
    overrides = world_overrides("sapien", None, None)
    assert overrides == {"engine": "sapien"} and split_overrides(overrides) == (None, overrides)
    trained = training_world({"randomization": "clean"})
    evaluated = training_world({**overrides, "randomization": "clean"})
    assert evaluated["engine"] == "sapien"
    assert (
        world_differences(trained, evaluated) == "note: the checkpoint's world differs: trained in mujoco, "
        "evaluated in sapien"
    )
