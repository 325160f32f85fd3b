"""The command-line options that choose a world, defined once for every command that takes them (sim/cli.py,
train/cli.py): ``--sim mujoco|sapien|robotwin``, for RoboTwin its checkout and interpreter, and ``--randomization``
(a preset of sim/randomization.py)."""

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
