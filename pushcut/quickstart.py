"""`pushcut quickstart`: the README's main job on embedded defaults.

Today it runs the simulation stage of the loop: expert demonstrations for one task, a rollout video of the expert
and a picture of the three cameras. Later stages (SFT, GRPO, serving, trials, dashboard) extend this command.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer


def quickstart(
    out: Annotated[Path, typer.Option("--out", help="Where every artefact goes.")] = Path("runs/quickstart"),
    task: Annotated[str, typer.Option("--task")] = "click_bell",
    episodes: Annotated[int, typer.Option("--episodes", help="Expert demonstrations to record.")] = 20,
    workers: Annotated[int, typer.Option("--workers")] = 2,
    fast: Annotated[bool, typer.Option("--fast", help="A few episodes only.")] = False,
) -> None:
    """Run the whole pipeline that exists today on embedded defaults and print where the artefacts are."""
    import imageio.v3 as iio
    import numpy as np

    from pushcut.sim.demos import generate_demos, run_expert
    from pushcut.sim.registry import make
    from pushcut.sim.video import write_mp4

    episodes = 4 if fast else episodes
    out.mkdir(parents=True, exist_ok=True)

    start = time.time()
    typer.echo(f"[1/3] expert demonstrations: {episodes} x {task}")
    summary = generate_demos(task, episodes, out / "demos" / task, workers=workers)
    typer.echo(
        f"      kept {summary.kept}, seeds tried {summary.seeds_tried}, expert success "
        f"{summary.expert_success_rate:.0%} ({time.time() - start:.1f} s)"
    )

    start = time.time()
    typer.echo("[2/3] rollout video of the expert (head camera)")
    env = make(task, cameras=("head_camera", "left_camera", "right_camera"))
    frames: list = []
    try:
        result = run_expert(env, seed=0, frames=frames)
        obs, _ = env.reset(seed=0)
        picture = np.concatenate([obs["observation"][c]["rgb"] for c in env.config.cameras], axis=1)
    finally:
        env.close()
    write_mp4(out / f"{task}_expert.mp4", frames, fps=env.config.action_hz)
    typer.echo(
        f"      {len(frames)} frames, expert {'succeeded' if result.success else 'failed'} "
        f"({time.time() - start:.1f} s)"
    )

    typer.echo("[3/3] picture of the head, left and right cameras")
    iio.imwrite(out / f"{task}_cameras.png", picture)
    typer.echo(f"done: {out}/demos/{task}/index.json, {out}/{task}_expert.mp4, {out}/{task}_cameras.png")
