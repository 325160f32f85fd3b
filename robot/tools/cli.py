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


@app.command("replay")
def replay(
    demo: Annotated[Path, typer.Option("--demo", help="An episode of `pushcut sim demo` (DIR/data/episodeN.hdf5).")],
    speed: Annotated[float, typer.Option("--speed", help="Fraction of the demonstration's speed, in (0, 1].")] = 0.5,
    robot: Annotated[str, typer.Option("--robot", help="'sim' (the MuJoCo twin) or 'piper' (the real pair).")] = "sim",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Play it on the twin only (nothing real moves).")] = False,
    task: Annotated[str | None, typer.Option("--task", help="The task set up on the table (checked).")] = None,
    safety: Annotated[str, typer.Option("--safety", help="Safety preset: 'first_run' (slow) or 'default'.")] = (
        "first_run"
    ),
    servo_hz: Annotated[float, typer.Option("--servo-hz", help="Executor loop rate.")] = 100.0,
    can_left: Annotated[str, typer.Option("--can-left", help="piper: CAN interface of the left arm.")] = "can_left",
    can_right: Annotated[str, typer.Option("--can-right", help="piper: CAN interface of the right arm.")] = (
        "can_right"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Play a simulated demonstration on the arms (after the pre-flight and homing, through the trial executor and
    safety filter) and report the tracking error per joint and the timing. Exit 1 when it did not play to the end."""
    from pushcut.robot.drivers.interface import RobotFault
    from pushcut.robot.tools import replay as replay_tool
    from pushcut.robot.tools.demo_file import ReplayError, check_speed, load_demo
    from pushcut.robot.tools.robots import RobotChoice, open_robot

    try:
        check_speed(speed)
        if safety not in ("first_run", "default"):
            raise ReplayError(f"--safety must be 'first_run' or 'default', got {safety!r}")
        episode = load_demo(demo, task)
        choice = RobotChoice("sim" if dry_run else robot, episode.task, episode.action_hz, can_left, can_right,
                             seed=episode.seed)  # fmt: skip
        with open_robot(choice) as opened:
            report = replay_tool.replay(opened.robot, episode, speed, safety, servo_hz, choice.label,
                                        success=opened.success)  # fmt: skip
    except (ReplayError, RobotFault, ValueError) as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=1))
    else:
        for line in replay_tool.format_report(report):
            typer.echo(line)
    if not report.completed:
        raise typer.Exit(1)
