"""The `pushcut robot` command group: operator tools for the real arms. Each command's logic lives in its own module
(this file only parses options and prints); errors are one line on stderr. Exit codes: 0 done, 1 the check itself
failed (no camera found, replay tracking not done, ...), 2 bad input or a setup that cannot run."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from pushcut.robot.tools import check

app = typer.Typer(no_args_is_help=True, add_completion=False)
VIRTUAL = "or 'virtual-piper' (the real driver on the virtual Piper pair in this process: a rehearsal; README)."
check.register(app)  # `pushcut robot check`: the pre-flight (robot/tools/check.py)


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def show(as_json: bool, data: object, lines: Iterable[str]) -> None:
    """Print ``data`` as JSON, or the human-readable ``lines``."""
    if as_json:
        typer.echo(json.dumps(data, indent=1))
    else:
        for line in lines:
            typer.echo(line)


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
    show(as_json, [c.as_dict() for c in result.cameras], format_report(result))
    if not result.cameras:
        fail(NONE_FOUND, 1)
    if not result.ok:
        raise typer.Exit(1)


@app.command("replay")
def replay(
    demo: Annotated[Path, typer.Option("--demo", help="An episode of `pushcut sim demo` (DIR/data/episodeN.hdf5).")],
    speed: Annotated[float, typer.Option("--speed", help="Fraction of the demonstration's speed, in (0, 1].")] = 0.5,
    robot: Annotated[
        str, typer.Option("--robot", help=f"'sim' (the MuJoCo twin), 'piper' (the real pair) {VIRTUAL}")
    ] = "sim",
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
    yes: Annotated[bool, typer.Option("--yes", help="piper: do not ask before the arms move.")] = False,
    rig: Annotated[Path | None, typer.Option("--rig", help="piper: rig file of `robot check --save-rig`.")] = None,
    can_bus: Annotated[str, typer.Option("--can-bus", hidden=True, help="socketcan, or virtual (tests).")] = (
        "socketcan"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Play a simulated demonstration on the arms (after `robot check`'s bus and arm checks pass, the pre-flight and
    homing; through the trial executor and safety filter) and report the tracking error per joint and the timing.
    Exit 1 when a check failed or it did not play to the end."""
    from pushcut.robot.drivers.interface import RobotFault
    from pushcut.robot.tools import replay as replay_tool
    from pushcut.robot.tools.check import read_rig, validate_interface
    from pushcut.robot.tools.demo_file import ReplayError, check_speed, load_demo
    from pushcut.robot.tools.preflight import check_before_connecting
    from pushcut.robot.tools.robots import RobotChoice, bring_up, open_robot

    try:
        check_speed(speed)
        if safety not in ("first_run", "default"):
            raise ReplayError(f"--safety must be 'first_run' or 'default', got {safety!r}")
        episode = load_demo(demo, task)
        wanted = RobotChoice("sim" if dry_run else robot, episode.task, episode.action_hz, can_left, can_right,
                             seed=episode.seed, can_bus=can_bus)  # fmt: skip
        if wanted.kind == "piper":
            validate_interface(can_left, can_bus)
            validate_interface(can_right, can_bus)
        with bring_up(wanted) as choice:  # virtual-piper: the pair runs until the replay ends
            failed = check_before_connecting(choice, read_rig(rig) if rig is not None else None)
            for result in failed:
                typer.echo(result.line(), err=True)
            if failed:
                fail("`pushcut robot check` failed (above): nothing moved", 1)
            if choice.kind == "piper" and not yes:
                question = (f"The arms ({choice.label}) will walk to the ready pose, then play "
                            f"{len(episode.actions)} actions of {episode.task} at speed {speed}. Is the workspace "
                            "clear and the e-stop at hand?")  # fmt: skip
                if not typer.confirm(question, default=False, err=True):
                    fail("not confirmed: nothing moved", 1)
            with open_robot(choice) as opened, _ctrl_c_sets() as stop:
                typer.echo(f"homing, then {len(episode.actions)} actions at speed {speed} on {choice.label} "
                           "(Ctrl-C stops: the arms hold where they are)", err=True)  # fmt: skip
                report = replay_tool.replay(opened.robot, episode, speed, safety, servo_hz, choice.label, stop=stop,
                                            success=opened.success,
                                            feedback_timeout_s=opened.feedback_timeout_s)  # fmt: skip
    except (ReplayError, RobotFault, ValueError) as error:  # CheckInputError is a ValueError
        fail(str(error))
    show(as_json, report.as_dict(), replay_tool.format_report(report))
    if not report.completed:
        raise typer.Exit(1)


@app.command("align")
def align(
    camera: Annotated[
        str,
        typer.Option("--camera", help="head_camera=SERIAL (or =replay:FRAMES.npz; =twin: the virtual pair's twin)."),
    ],
    robot: Annotated[
        str, typer.Option("--robot", help=f"'sim' (the twin at the ready pose), 'piper' {VIRTUAL}")
    ] = "sim",
    out: Annotated[Path, typer.Option("--out", help="Folder for the blended images.")] = Path("align"),
    nudge: Annotated[
        list[str] | None, typer.Option("--nudge", help="dx,dy,dz,droll,dpitch,dyaw (m, deg); repeatable, in order.")
    ] = None,
    calibration: Annotated[Path | None, typer.Option("--calibration", help="Start from this calibration.")] = None,
    write_calibration: Annotated[
        Path | None, typer.Option("--write-calibration", help="Write the final pose to this JSON file.")
    ] = None,
    width: Annotated[int, typer.Option("--width", help="Camera resolution: the policy's image size.")] = 320,
    height: Annotated[int, typer.Option("--height", help="Camera resolution: the policy's image size.")] = 240,
    estimate: Annotated[
        bool, typer.Option("--estimate", help="Then search the pose from the arms' outline (within 5 cm / 5 deg).")
    ] = False,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Then keep re-rendering OUT/live.png for the dashboard (--align-dir OUT), "
            "taking its nudges, until Ctrl-C.",
        ),  # fmt: skip
    ] = False,
    live_seconds: Annotated[float | None, typer.Option("--live-seconds", help="--live: stop after this long.")] = None,
    task: Annotated[str, typer.Option("--task", help="The twin's scene (only the arms are scored).")] = "click_bell",
    seed: Annotated[int, typer.Option("--seed", help="The twin's scene layout.")] = 0,
    operator: Annotated[str | None, typer.Option("--operator", help="Who aligned (default: the login).")] = None,
    can_left: Annotated[str, typer.Option("--can-left", help="piper: CAN interface of the left arm.")] = "can_left",
    can_right: Annotated[str, typer.Option("--can-right", help="piper: CAN interface of the right arm.")] = (
        "can_right"
    ),
    can_bus: Annotated[str, typer.Option("--can-bus", hidden=True, help="socketcan, or virtual (tests).")] = (
        "socketcan"
    ),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Blend the twin's head camera (at the arms' measured joints) over the real frame, nudge its pose, and write
    the calibration file `pushcut sim ... --camera-calibration` uses. The arms are only read, never moved."""
    from pushcut.robot.drivers.interface import RobotFault
    from pushcut.robot.tools import align as align_tool
    from pushcut.robot.tools.robots import RobotChoice

    try:
        name, serial = align_tool.parse_camera(camera)
        choice = RobotChoice(robot, task, 30.0, can_left, can_right, seed=seed, can_bus=can_bus)
        if live_seconds is not None and not (live and live_seconds > 0):
            raise ValueError(f"--live-seconds must be > 0 and goes with --live, got {live_seconds}")
        request = align_tool.AlignRequest(name, serial, width, height, choice, out, tuple(nudge or ()), calibration,
                                          write_calibration, operator, estimate, live, live_seconds)  # fmt: skip
        if live:
            typer.echo(f"live view in {out}/live.png: `pushcut dashboard --db DB --align-dir {out}` shows it and "
                       "takes nudges; Ctrl-C ends it (and writes --write-calibration)", err=True)  # fmt: skip
        with _ctrl_c_sets() as stop:
            result = align_tool.run(request, stop)
    except (RobotFault, ValueError) as error:
        fail(str(error))
    except ModuleNotFoundError as error:  # pushcut[robot] alone: the twin cannot be rendered
        fail(f"robot align renders the twin: {error.name} is not installed, pip install 'pushcut[sim]'")
    show(as_json, result.as_dict(), align_tool.format_result(result))


@contextmanager
def _ctrl_c_sets() -> Iterator[threading.Event]:
    """An event that Ctrl-C sets (instead of raising KeyboardInterrupt) while the block runs in the main thread."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
