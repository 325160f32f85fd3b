"""The command-line options that choose a world, defined once for every command that takes them (sim/cli.py,
train/cli.py): ``--sim mujoco|sapien|robotwin``, for RoboTwin its checkout and interpreter, for SAPIEN another Piper
URDF (``--piper-urdf``), and ``--randomization`` (a preset of sim/randomization.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pushcut.sim.randomization import SWITCHES

SimOption = Annotated[
    str,
    typer.Option(
        "--sim",
        help="World: mujoco, sapien (RoboTwin's engine), or robotwin (a RoboTwin 2.0 install; "
        "docs/robotwin_protocol.md).",
    ),
]
RobotwinDir = Annotated[Path | None, typer.Option("--robotwin-dir", help="With --sim robotwin: the RoboTwin checkout.")]
RobotwinPython = Annotated[
    str | None, typer.Option("--robotwin-python", help="With --sim robotwin: its python (default: the checkout's env).")
]
RandomizationOption = Annotated[
    str,
    typer.Option(
        "--randomization",
        help="Scenes: clean (no randomisation), randomized (every switch on), or one factor alone: "
        f"{', '.join(SWITCHES)}.",
    ),
]
PiperUrdfOption = Annotated[
    Path | None,
    typer.Option(
        "--piper-urdf",
        help="With --sim sapien: load this Piper URDF instead of pushcut's (same joint layout; "
        "`pushcut sim urdf --out` writes pushcut's).",
    ),
]


def piper_urdf_overrides(sim: str, piper_urdf: Path | None) -> dict[str, str]:
    """The env override of ``--piper-urdf`` (``{}`` without it), its layout checked now, before any model loads or
    episode runs; ValueError in one line when it is not a single-arm Piper URDF or --sim is not sapien."""
    if piper_urdf is None:
        return {}
    if sim != "sapien":
        raise ValueError(f"--piper-urdf {piper_urdf} needs --sim sapien (got --sim {sim}); the other worlds build "
                         "their own Piper")  # fmt: skip
    from pushcut.sim.urdf_layout import check_single_arm_urdf

    check_single_arm_urdf(piper_urdf)
    return {"piper_urdf": str(piper_urdf)}
