"""The world a checkpoint was trained in, and one line when it is evaluated in another.

A checkpoint records ``extra["world"]``: the engine, the randomisation preset and the head camera's calibration of the
scenes it learned from (SFT: the demonstrations' env config; GRPO: its rollouts' env config), and the Piper URDF SAPIEN
loaded when it was not pushcut's own (``piper_urdf``: its path and the sha256 of its contents). Evaluating it under
another preset or calibration is allowed (that is what a transfer or robustness test is), but the output says so,
so that nobody reads a randomised-scene number as a clean-scene one by accident. A checkpoint that learned from
several worlds also records them: an SFT run's second dataset (``extra_world``) and the worlds its start had learned
from (``start_worlds``); an evaluation in any of them is not noted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pushcut.sim.camera_calibration import summary_of
from pushcut.sim.randomization import PRESET_NAMES, RandomizationConfig

DEFAULT_ENGINE = "mujoco"  # the only world before an env config names one


def randomization_name(value: str | RandomizationConfig | Mapping[str, Any] | None) -> str:
    """The preset's name ('clean', 'randomized', or one switch alone, e.g. 'lighting'), or 'custom (switch, ...)',
    for a preset name, a config, or its ``asdict`` copy."""
    if value is None:
        return "clean"
    if isinstance(value, str):
        RandomizationConfig.preset(value)  # an unknown name fails here, naming the presets
        return value
    config = value if isinstance(value, RandomizationConfig) else RandomizationConfig(**dict(value))
    for name in PRESET_NAMES:
        if config == RandomizationConfig.preset(name):
            return name
    return f"custom ({', '.join(config.switches_on()) or 'no switch on'})"


def urdf_summary(path: str | Path) -> dict[str, str | None]:
    """A Piper URDF's path and the sha256 of its contents (None when the file can no longer be read)."""
    try:
        digest: str | None = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        digest = None
    return {"path": str(path), "sha256": digest}


def training_world(env_config: Mapping[str, Any]) -> dict[str, Any]:
    """What a checkpoint keeps about its scenes, from env overrides or a dataset index's ``env_config``; the
    ``piper_urdf`` key only when the env loaded another Piper URDF than pushcut's."""
    world = {
        "engine": str(env_config.get("engine") or DEFAULT_ENGINE),
        "randomization": randomization_name(env_config.get("randomization")),
        "camera_calibration": summary_of(env_config.get("camera_calibration")),
    }
    if env_config.get("piper_urdf") is not None:
        world["piper_urdf"] = urdf_summary(env_config["piper_urdf"])
    return world


def _calibration_text(summary: Mapping[str, str] | None) -> str:
    return "the nominal head camera" if summary is None else f"calibration {summary['name']} ({summary['sha256'][:8]})"


def _same_urdf(a: Mapping[str, str | None] | None, b: Mapping[str, str | None] | None) -> bool:
    """Both pushcut's URDF, or files of the same contents (an unreadable one matches nothing)."""
    if a is None or b is None:
        return a is None and b is None
    return a["sha256"] is not None and a["sha256"] == b["sha256"]


def _urdf_text(summary: Mapping[str, str | None] | None) -> str:
    if summary is None:
        return "pushcut's Piper URDF"
    digest = summary["sha256"]
    return f"Piper URDF {summary['path']} ({digest[:8] if digest else 'unreadable'})"


def world_differences(trained: Mapping[str, Any] | None, evaluated: Mapping[str, Any]) -> str | None:
    """One line naming how the evaluation's world differs from the training's; None when it does not (or when the
    checkpoint predates the record)."""
    if not trained:
        return None
    differences = []
    engine, randomization = trained.get("engine", DEFAULT_ENGINE), trained.get("randomization")
    if engine != evaluated["engine"]:
        differences.append(f"trained in {engine}, evaluated in {evaluated['engine']}")
    if randomization != evaluated["randomization"]:
        differences.append(f"trained on {randomization} scenes, evaluated on {evaluated['randomization']}")
    trained_cal, evaluated_cal = trained.get("camera_calibration"), evaluated["camera_calibration"]
    if (trained_cal or {}).get("sha256") != (evaluated_cal or {}).get("sha256"):
        differences.append(f"trained with {_calibration_text(trained_cal)}, evaluated with "
                           f"{_calibration_text(evaluated_cal)}")  # fmt: skip
    trained_urdf, evaluated_urdf = trained.get("piper_urdf"), evaluated.get("piper_urdf")
    if not _same_urdf(trained_urdf, evaluated_urdf):
        differences.append(f"trained with {_urdf_text(trained_urdf)}, evaluated with {_urdf_text(evaluated_urdf)}")
    return "note: the checkpoint's world differs: " + "; ".join(differences) if differences else None


def worlds_seen(extra: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every world a checkpoint's ``extra`` says it learned from, its own ``world`` first, without repeats."""
    seen: list[dict[str, Any]] = []
    for world in [extra.get("world"), extra.get("extra_world"), *(extra.get("start_worlds") or [])]:
        if world and world not in seen:
            seen.append(dict(world))
    return seen


def evaluation_note(extra: Mapping[str, Any], evaluated: Mapping[str, Any]) -> str | None:
    """The one line an evaluation prints when its world is none of those the checkpoint learned from (naming how it
    differs from the checkpoint's own world); None when it is one of them or the checkpoint predates the record."""
    seen = worlds_seen(extra)
    if not seen or any(world_differences(world, evaluated) is None for world in seen):
        return None
    return world_differences(seen[0], evaluated)
