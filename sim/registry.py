"""Task registry: `make(task, **overrides)` and the list of registered tasks (MuJoCo Playground style)."""

from __future__ import annotations

import dataclasses
import difflib

from pushcut.sim.env import DualPiperEnv, EnvConfig
from pushcut.sim.randomization import RandomizationConfig
from pushcut.sim.tasks.base import Task
from pushcut.sim.tasks.click_bell import ClickBell
from pushcut.sim.tasks.handover_block import HandoverBlock
from pushcut.sim.tasks.move_can_pot import MoveCanPot
from pushcut.sim.tasks.pick_dual_bottles import PickDualBottles
from pushcut.sim.tasks.place_a2b_left import PlaceA2BLeft
from pushcut.sim.tasks.stack_bowls_two import StackBowlsTwo

TASKS: dict[str, type[Task]] = {
    cls.name: cls for cls in (ClickBell, HandoverBlock, MoveCanPot, PickDualBottles, PlaceA2BLeft, StackBowlsTwo)
}


def task_names() -> list[str]:
    return sorted(TASKS)


def get_task(name: str) -> type[Task]:
    if name not in TASKS:
        hint = difflib.get_close_matches(name, TASKS, n=1)
        suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"unknown task {name!r}; registered tasks: {', '.join(task_names())}.{suggestion}")
    return TASKS[name]


def make_config(**overrides) -> EnvConfig:
    """EnvConfig from keyword overrides; `randomization` may be a preset name ('clean' or 'randomized')."""
    fields = {f.name for f in dataclasses.fields(EnvConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown env option(s) {unknown}; expected some of {sorted(fields)}")
    if isinstance(overrides.get("randomization"), str):
        overrides["randomization"] = RandomizationConfig.preset(overrides["randomization"])
    if "cameras" in overrides:
        overrides["cameras"] = tuple(overrides["cameras"])
    return EnvConfig(**overrides)


def make(task: str, **overrides) -> DualPiperEnv:
    """Create a task's environment, e.g. `make("click_bell", cameras=("head_camera",), image_width=128)`."""
    task_cls = get_task(task)
    return DualPiperEnv(task_cls(), make_config(**overrides))
