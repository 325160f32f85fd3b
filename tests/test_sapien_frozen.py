"""SAPIEN's world is frozen (issue 26 §3): every task's scene parameters, read back from SAPIEN
(sim/sapien/fingerprint.py), are the ones recorded at the freeze (tests/data/sapien_frozen.json), so transfer numbers
measured in SAPIEN cannot be tuned to afterwards. A deliberate change re-freezes (scripts/freeze_sapien.py) and
re-measures the SAPIEN numbers of docs/results.md."""

import json
from pathlib import Path

import pytest

from pushcut.sim.registry import task_names

RECORD = Path(__file__).parent / "data" / "sapien_frozen.json"

pytestmark = pytest.mark.usefixtures("restore_render_variables")


@pytest.fixture(scope="module")
def frozen():
    return json.loads(RECORD.read_text())


@pytest.fixture(scope="module")
def render_system():
    """One SAPIEN render system held for the module: SAPIEN compiles its shaders once per render context (~7 s on
    lavapipe) and frees the context with its last scene, so each task's env would compile them again."""
    from pushcut.sim.sapien.device import import_sapien, require_vulkan

    sapien = import_sapien()
    require_vulkan()
    return sapien.render.RenderSystem()


def test_every_task_is_recorded(frozen):
    assert sorted(frozen["tasks"]) == sorted(task_names())


@pytest.mark.parametrize("task", task_names())
def test_scene_parameters_are_the_frozen_ones(frozen, render_system, task):
    from pushcut.sim.sapien.fingerprint import differences, fingerprint, task_parameters

    parameters = task_parameters(task)
    recorded = frozen["tasks"][task]
    changed = differences(recorded["parameters"], json.loads(json.dumps(parameters)))
    assert not changed, (
        f"SAPIEN's {task} scene changed since the freeze at {frozen['frozen_commit']} "
        f"({len(changed)} parameters, first: {changed[:5]}); see this module's docstring"
    )
    assert fingerprint(parameters) == recorded["fingerprint"]


def test_a_changed_parameter_is_named():
    from pushcut.sim.sapien.fingerprint import differences

    recorded = {"joints": {"left/joint1": {"damping": 15.5, "stiffness": 400.0}}, "lights": [1, 2]}
    now = {"joints": {"left/joint1": {"damping": 16.0, "stiffness": 400.0}}, "lights": [1, 2, 3]}
    assert differences(recorded, now) == ["joints/left/joint1/damping: 15.5 -> 16.0", "lights: [1, 2] -> [1, 2, 3]"]
