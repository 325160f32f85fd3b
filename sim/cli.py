"""`pushcut sim ...`: tasks, demo, render, video, bench. Errors are printed as one clear line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False)

TaskOption = Annotated[str, typer.Option("--task", help="Registered task name (see `pushcut sim tasks`).")]
SeedOption = Annotated[int, typer.Option("--seed", help="Episode seed.")]


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _check_task(task: str) -> None:
    from pushcut.sim.registry import get_task

    try:
        get_task(task)
    except ValueError as error:
        fail(str(error))


def _check_writable_file(path: Path, suffixes: tuple[str, ...]) -> None:
    if path.suffix.lower() not in suffixes:
        fail(f"output file {path} must end in {' or '.join(suffixes)}")
    from pushcut.sim.demos import check_output_dir

    try:
        check_output_dir(path.parent if str(path.parent) else Path("."))
    except PermissionError as error:
        fail(str(error))


@app.command()
def tasks(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the registered tasks with their step limits."""
    from pushcut.sim.registry import TASKS, task_names

    rows = [{"name": n, "step_limit": TASKS[n].step_limit, "description": TASKS[n].description} for n in task_names()]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    for row in rows:
        typer.echo(f"{row['name']:<20} step_limit={row['step_limit']:<5} {row['description']}")


@app.command()
def demo(
    task: TaskOption,
    episodes: Annotated[int, typer.Option("--episodes", help="Successful episodes to keep.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (RoboTwin HDF5 layout + index.json).")],
    seed: Annotated[int, typer.Option("--seed", help="First seed of the seed stream.")] = 0,
    workers: Annotated[int, typer.Option("--workers", help="Parallel expert processes.")] = 1,
    randomization: Annotated[str, typer.Option(help="'clean' or 'randomized'.")] = "clean",
    image_width: int = 320,
    image_height: int = 240,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Record expert demonstrations; seeds where the expert fails are filtered out."""
    from pushcut.sim.demos import generate_demos

    _check_task(task)
    try:
        summary = generate_demos(
            task, episodes, out, seed=seed, workers=workers, progress=not as_json,
            env_overrides={"randomization": randomization, "image_width": image_width, "image_height": image_height},
        )
    except (ValueError, PermissionError) as error:
        fail(str(error))
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=1))
    else:
        typer.echo(
            f"{summary.task}: kept {summary.kept}/{summary.requested} episodes, seeds tried {summary.seeds_tried}, "
            f"expert success rate {summary.expert_success_rate:.1%}, {summary.wall_time_s:.1f} s -> {summary.out_dir}"
        )
    if summary.kept < summary.requested:
        fail(f"only {summary.kept} of {summary.requested} episodes succeeded within {summary.seeds_tried} seeds")


@app.command()
def render(
    task: TaskOption,
    out: Annotated[Path, typer.Option("--out", help="PNG file.")],
    seed: SeedOption = 0,
    randomization: Annotated[str, typer.Option(help="'clean' or 'randomized'.")] = "clean",
) -> None:
    """Render the initial scene: head, left and right camera side by side."""
    import imageio.v3 as iio
    import numpy as np

    from pushcut.sim.registry import make

    _check_task(task)
    _check_writable_file(out, (".png",))
    env = make(task, cameras=("head_camera", "left_camera", "right_camera"), randomization=randomization)
    try:
        obs, _ = env.reset(seed=seed)
        views = [obs["observation"][c]["rgb"] for c in env.config.cameras]
        iio.imwrite(out, np.concatenate(views, axis=1))
    finally:
        env.close()
    typer.echo(f"wrote {out} ({env.instruction})")


@app.command()
def video(
    task: TaskOption,
    out: Annotated[Path, typer.Option("--out", help="MP4 file.")],
    seed: SeedOption = 0,
    randomization: Annotated[str, typer.Option(help="'clean' or 'randomized'.")] = "clean",
) -> None:
    """The expert's episode on one seed, from the head camera, as an mp4."""
    from pushcut.sim.demos import run_expert
    from pushcut.sim.registry import make
    from pushcut.sim.video import write_mp4

    _check_task(task)
    _check_writable_file(out, (".mp4",))
    env = make(task, cameras=("head_camera",), randomization=randomization)
    frames: list = []
    try:
        result = run_expert(env, seed, frames=frames)
    finally:
        env.close()
    write_mp4(out, frames, fps=env.config.action_hz)
    outcome = "success" if result.success else f"failure{': ' + result.error if result.error else ''}"
    typer.echo(f"wrote {out}: {len(frames)} frames, expert {outcome} after {result.steps} actions")


@app.command()
def bench(
    task: Annotated[str, typer.Option("--task")] = "click_bell",
    steps: Annotated[int, typer.Option(help="Control steps per measurement.")] = 200,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Control steps/s with and without rendering, env overhead over raw MuJoCo, 1 vs 2 worker processes."""
    from pushcut.sim.bench import format_table, run_benchmarks

    _check_task(task)
    results = run_benchmarks(task, steps)
    typer.echo(json.dumps(results, indent=1) if as_json else format_table(results))
