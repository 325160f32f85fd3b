"""Task registry: `make(task, **overrides)` and the list of registered tasks (MuJoCo Playground style).

Tasks of your own: subclass `Task` in a module of yours and decorate it with `@register_task`; list that module in
the environment variable ``PUSHCUT_TASK_MODULES`` (comma-separated import paths), so that every process — env
workers, torchrun ranks — imports it together with this registry.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import os

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


TASK_MODULES_ENV = "PUSHCUT_TASK_MODULES"


def register_task(cls: type[Task]) -> type[Task]:
    """Add a Task subclass under ``cls.name`` (usable as a class decorator); a different class with a taken name is
    refused."""
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"register_task needs a Task subclass, got {cls!r}")
    if TASKS.get(cls.name, cls) is not cls:
        raise ValueError(f"a different task is already registered as {cls.name!r}: {TASKS[cls.name]!r}")
    TASKS[cls.name] = cls
    return cls


def _import_task_modules() -> None:
    for module in filter(None, (m.strip() for m in os.environ.get(TASK_MODULES_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise ImportError(f"{TASK_MODULES_ENV} lists {module!r}, which cannot be imported: {e}") from e


def task_names() -> list[str]:
    return sorted(TASKS)


def get_task(name: str) -> type[Task]:
    if name not in TASKS:
        hint = difflib.get_close_matches(name, TASKS, n=1)
        suggestion = f" Did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"unknown task {name!r}; registered tasks: {', '.join(task_names())}.{suggestion}")
    return TASKS[name]


def make_config(**overrides) -> EnvConfig:
    """EnvConfig from keyword overrides; `randomization` may be a preset name (randomization.PRESET_NAMES),
    `camera_calibration` a file of `pushcut robot align`."""
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


_import_task_modules()
