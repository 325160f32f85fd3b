"""The `pushcut robot` command group: operator tools for the real arms. Each command's logic lives in its own module
(this file only parses options and prints); errors are one line on stderr. Exit codes: 0 done, 1 the check itself
failed (no camera found, replay tracking not done, ...), 2 bad input or a setup that cannot run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command("cameras")
def cameras(
    out: Annotated[Path | None, typer.Option("--out", help="Folder for one snapshot per camera (SERIAL.png).")] = (
        Path("camera_snapshots")
    ),
    no_snapshots: Annotated[bool, typer.Option("--no-snapshots", help="List only; start no stream.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every connected RealSense: serial, model, USB type, colour modes, and a snapshot each (to assign NAME=SERIAL)."""
    from pushcut.robot.drivers.interface import RobotFault
    from pushcut.robot.tools.cameras import NONE_FOUND, discover, format_report

    try:
        result = discover(None if no_snapshots else out)
    except RobotFault as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps([c.as_dict() for c in result.cameras], indent=1))
    else:
        for line in format_report(result):
            typer.echo(line)
    if not result.cameras:
        fail(NONE_FOUND, 1)
    if not result.ok:
        raise typer.Exit(1)
