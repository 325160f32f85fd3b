"""`pushcut trial run` (a session of trials on the Piper pair, its twin or the virtual pair) and `pushcut trial list`
(sessions with progress, success rate and Wilson 95 % interval). Errors are one line and exit code 2; a session
stopped by an outage (the policy server stopped answering, a robot fault) is one line and exit code 3: rerun to
resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pushcut.sim.world_options import SimOption

app = typer.Typer(no_args_is_help=True, add_completion=False)

DbOption = Annotated[Path, typer.Option("--db", help="The SQLite trial database (created if missing).")]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _pairs(values: list[str], option: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in values:
        name, sep, serial = value.partition("=")
        if not sep or not name or not serial:
            _fail(f"{option} takes NAME=SERIAL, e.g. head_camera=123456789012; got {value!r}")
        pairs.append((name, serial))
    return tuple(pairs)


@app.command("run")
def run(
    task: Annotated[str, typer.Option("--task", help="Task name (see `pushcut sim tasks`).")],
    checkpoint_label: Annotated[str, typer.Option("--checkpoint-label", help="Name of the served checkpoint.")],
    operator: Annotated[str, typer.Option("--operator", help="Who runs (and judges) the trials.")],
    server: Annotated[str, typer.Option("--server", help="Policy server address.")] = "tcp://127.0.0.1:5555",
    robot: Annotated[
        str,
        typer.Option(
            "--robot",
            help="'sim' (the twin, in --sim's engine), 'piper' (the real pair) or 'virtual-piper' (the real "
            "driver on the virtual Piper pair in this process, cameras on its twin: a rehearsal; README).",
        ),
    ] = "sim",
    trials: Annotated[int, typer.Option("--trials", help="Judged trials wanted (aborted ones are redone).")] = 50,
    db: DbOption = Path("trials.db"),
    out: Annotated[Path | None, typer.Option("--out", help="Videos and npz (default: DB folder/trials).")] = None,
    seed_start: Annotated[int | None, typer.Option("--seed-start", help="sim: first held-out seed.")] = None,
    max_actions: Annotated[
        int | None, typer.Option("--max-actions", help="Per trial (default: the task's step limit).")
    ] = None,
    judge: Annotated[str | None, typer.Option("--judge", help="'predicate' (sim default) or 'operator'.")] = None,
    instruction: Annotated[
        str | None, typer.Option("--instruction", help="piper, virtual-piper: what the policy is told.")
    ] = None,
    camera: Annotated[list[str] | None, typer.Option("--camera", help="piper: NAME=REALSENSE_SERIAL, per camera.")] = (
        None
    ),
    video_camera: Annotated[
        list[str] | None, typer.Option("--video-camera", help="Cameras to record (default: the head camera).")
    ] = None,
    no_video: Annotated[bool, typer.Option("--no-video", help="Record no video.")] = False,
    safety: Annotated[str, typer.Option("--safety", help="Safety preset: 'default' or 'first_run' (slow).")] = (
        "default"
    ),
    servo_hz: Annotated[float, typer.Option("--servo-hz", help="Executor loop rate.")] = 100.0,
    chunking: Annotated[
        str,
        typer.Option(
            "--chunking",
            help="'sync': play each chunk, then ask (as simulation executes; default); "
            "'async': ask while playing, drop stale actions, crossfade.",
        ),
    ] = "sync",
    no_home: Annotated[
        bool, typer.Option("--no-home", help="piper: do not move to the ready pose before each trial.")
    ] = False,
    can_left: Annotated[str, typer.Option("--can-left", help="piper: CAN interface of the left arm.")] = "can_left",
    can_right: Annotated[str, typer.Option("--can-right", help="piper: CAN interface of the right arm.")] = (
        "can_right"
    ),
    timeout_s: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the policy server.")] = 5.0,
    new_session: Annotated[bool, typer.Option("--new-session", help="Do not resume the matching session.")] = False,
    camera_calibration: Annotated[
        Path | None,
        typer.Option("--camera-calibration", help="Head camera calibration (`pushcut robot align`); sim: the twin's."),
    ] = None,
    sim: SimOption = "mujoco",
) -> None:
    """Run (or resume) a session of trials of a served policy; every finished trial is saved at once."""
    from pushcut.common.conventions import EVAL_SEED_START
    from pushcut.robot.drivers.interface import RobotFault
    from pushcut.robot.trials.config import RunnerConfig, RunnerError
    from pushcut.robot.trials.operators import ConsoleOperator
    from pushcut.robot.trials.runner import SessionStopped, TrialRunner
    from pushcut.trials_db.database import TrialsDBError

    try:
        config = RunnerConfig(
            task=task, server=server, checkpoint_label=checkpoint_label, operator=operator, robot=robot,
            trials=trials, db=db, out=out, seed_start=EVAL_SEED_START if seed_start is None else seed_start,
            max_actions=max_actions, judge=judge, instruction=instruction,
            video_cameras=() if no_video else (tuple(video_camera) if video_camera else None),
            server_timeout_s=timeout_s, new_session=new_session, can_left=can_left, can_right=can_right,
            safety=safety, servo_hz=servo_hz, chunking=chunking, home=not no_home,
            camera_serials=_pairs(camera or [], "--camera"), camera_calibration=camera_calibration, sim=sim,
        )  # fmt: skip
        runner = TrialRunner(config, ConsoleOperator())
        session = runner.run()
    except SessionStopped as stopped:  # an outage: saved as aborted, the rerun redoes the trial
        typer.echo(f"session stopped: {stopped}", err=True)
        raise typer.Exit(3) from None
    except (RunnerError, TrialsDBError, RobotFault) as error:
        _fail(str(error))
    low, high = session.interval
    rate = f"{session.rate:.0%} (Wilson 95% {low:.0%}-{high:.0%})" if session.judged else "-"
    twin = f" (twin in {config.engine})" if config.engine else ""
    typer.echo(f"session #{session.id}{twin}: {session.judged}/{session.planned_trials} judged, "
               f"{session.successes} successes, {session.aborted} aborted; success rate {rate}")  # fmt: skip
    if runner.interrupts.quit:
        typer.echo("session ended early; rerun the same command to resume it")
        raise typer.Exit(130)


@app.command("list")
def list_sessions(
    db: DbOption = Path("trials.db"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Sessions with progress k/N, successes, success rate and its Wilson 95 % interval."""
    from pushcut.trials_db.database import TrialsDB, TrialsDBError

    if not db.exists():
        _fail(f"no trial database at {db} (`pushcut trial run --db {db} ...` creates it)")
    try:
        with TrialsDB(db) as database:
            sessions = database.sessions()
    except TrialsDBError as error:
        _fail(str(error))
    rows = []
    for s in sessions:
        low, high = s.interval
        rows.append({"id": s.id, "task": s.task, "checkpoint": s.checkpoint_label, "robot": s.robot,
                     "operator": s.operator, "judged": s.judged, "planned": s.planned_trials, "successes": s.successes,
                     "aborted": s.aborted, "rate": s.rate, "wilson_95": [low, high]})  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        typer.echo(f"{db}: no sessions yet")
        return
    typer.echo(f"{'id':>4}  {'task':<18} {'checkpoint':<16} {'robot':<6} {'operator':<10} {'k/N':>7}  "
               f"{'succ':>4}  {'rate':>5}  {'Wilson 95%':<13}")  # fmt: skip
    for r in rows:
        rate = f"{r['rate']:.0%}" if r["rate"] is not None else "-"
        ci = f"{r['wilson_95'][0]:.0%}-{r['wilson_95'][1]:.0%}"
        typer.echo(f"{r['id']:>4}  {r['task']:<18} {r['checkpoint']:<16} {r['robot']:<6} {r['operator']:<10} "
                   f"{r['judged']:>3}/{r['planned']:<3}  {r['successes']:>4}  {rate:>5}  {ci:<13}")  # fmt: skip
