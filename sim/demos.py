"""Expert demonstrations: run a task's scripted expert over a stream of seeds, keep the successful episodes.

Seeds on which the expert fails (or asks for an unreachable pose) are filtered out, as RoboTwin does. Episodes are
recorded while the expert runs (observation before each action, then the action) and written one file per episode;
workers run disjoint seeds in parallel processes and the parent writes the index in seed order.

Seeds: demonstrations use seeds from TRAIN_SEED_START upwards, below the held-out evaluation seeds (the split is in
:mod:`pushcut.common.conventions`).
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import os
import shutil
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pushcut.common.conventions import TRAIN_SEED_START
from pushcut.sim.dataset import FORMAT_VERSION, INDEX_FILE, EpisodeRecorder, atomic_write_text


@dataclass
class ExpertResult:
    seed: int
    success: bool
    steps: int
    error: str | None = None
    strategy: str | None = None  # how a successful episode moved its object (sim/strategy.py)


def run_expert(env, seed: int, recorder: EpisodeRecorder | None = None, frames: list | None = None) -> ExpertResult:
    """Reset `env` on `seed` and run its task's expert until success or the step limit."""
    from pushcut.sim.expert import UnreachableError

    obs, _ = env.reset(seed=seed)
    steps = 0
    try:
        for action in env.task.expert(env):
            if recorder is not None:
                recorder.add(obs, action, env.object_positions())
            if frames is not None:
                frames.append(obs["observation"]["head_camera"]["rgb"])
            obs, _, terminated, truncated, _ = env.step(action)
            steps += 1
            if terminated or truncated:
                break
    except UnreachableError as error:
        return ExpertResult(seed, False, steps, str(error))
    if frames is not None:
        frames.append(obs["observation"]["head_camera"]["rgb"])
    return ExpertResult(seed, env.success, steps, strategy=env.strategy)


# ---------------------------------------------------------------- worker processes
_worker_env = None
_worker_out: Path | None = None


def _init_worker(task: str, overrides: dict[str, Any], out_dir: str) -> None:
    global _worker_env, _worker_out
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("LP_NUM_THREADS", "1")
    from pushcut.sim.registry import make

    _worker_env = make(task, **overrides)
    _worker_out = Path(out_dir)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop the workers now, like ``multiprocessing.Pool.terminate``: episodes still running are not needed."""
    processes = list((pool._processes or {}).values())  # CPython's worker table; shutdown() alone would wait
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(5)


def _record_seed(seed: int) -> tuple[ExpertResult, str | None]:
    """Run the expert on one seed; on success write `seed<S>.hdf5` (atomically) and return its name."""
    env = _worker_env
    recorder = EpisodeRecorder(env.config.cameras)
    result = run_expert(env, seed, recorder)
    if not result.success:
        return result, None
    name = f"seed{seed}.hdf5"
    attrs = {
        "task": env.task.name,
        "seed": seed,
        "instruction": env.instruction,
        "slots": json.dumps(env.instruction_slots),
        "action_hz": env.config.action_hz,
        "privileged_bodies": json.dumps(list(env.task.privileged_bodies())),
    }
    if env.config.camera_calibration is not None:  # the head camera's provenance, for the checkpoints trained on it
        attrs["camera_calibration"] = json.dumps(env.config.camera_calibration.summary())
    recorder.write(_worker_out / "data" / name, attrs)
    return result, name


def _fits(template: str, slots: dict[str, str]) -> bool:
    try:
        template.format(**slots)
        return True
    except KeyError:
        return False


@dataclass
class DemoSummary:
    """What a `generate_demos` call did; seeds_tried and expert_success_rate count this call's seeds only."""

    task: str
    out_dir: str
    requested: int
    kept: int
    seeds_tried: int
    expert_success_rate: float
    failed_seeds: list[int]
    wall_time_s: float
    strategies: dict[str, int] = dataclasses.field(default_factory=dict)  # of all kept episodes (sim/strategy.py)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _strategy_counts(episodes: list[dict[str, Any]]) -> dict[str, int]:
    """How many kept episodes succeeded by each strategy; datasets written before strategies were recorded count as
    'unrecorded'."""
    return dict(Counter(e.get("strategy") or "unrecorded" for e in episodes).most_common())


def check_output_dir(out_dir: Path) -> None:
    """Fail before any work if `out_dir` cannot be created or written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise PermissionError(f"output directory {out_dir} is not writable: {error.strerror or error}") from error


def generate_demos(
    task: str,
    episodes: int,
    out_dir: str | Path,
    seed: int = TRAIN_SEED_START,
    workers: int = 1,
    env_overrides: dict[str, Any] | None = None,
    max_seeds: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> DemoSummary:
    """Write `episodes` successful expert episodes of `task` to `out_dir`; returns what happened.

    A directory that already holds a dataset of the same task and env config is resumed: its episodes are kept and
    the seed stream continues after the last seed tried (an interrupted run loses at most the episode in flight).
    A dataset of another task or config is an error unless `overwrite` is set, which deletes it first."""
    import time

    from tqdm import tqdm

    from pushcut.sim.registry import get_task, make_config

    task_cls = get_task(task)
    overrides = dict(env_overrides or {})
    overrides.setdefault("cameras", ("head_camera", "left_camera", "right_camera"))
    config = make_config(**overrides)
    out = Path(out_dir)
    check_output_dir(out)
    if episodes < 1:
        raise ValueError(f"episodes={episodes} must be at least 1")
    if workers < 1:
        raise ValueError(f"workers={workers} must be at least 1")
    env_config = json.loads(json.dumps(dataclasses.asdict(config)))
    previous = _existing_index(out, task, env_config, overwrite)
    (out / "data").mkdir(exist_ok=True)
    (out / "instructions").mkdir(exist_ok=True)
    for stale in list((out / "data").glob("*.tmp")) + list((out / "data").glob("seed*.hdf5")):
        stale.unlink()  # leftovers of an interrupted run are never complete episodes
    max_seeds = max_seeds or max(4 * episodes, episodes + 50)
    start = time.time()
    kept: list[dict[str, Any]] = previous["episodes"] if previous else []
    failed: list[int] = []
    tried = 0
    seed = previous["next_seed"] if previous else seed
    index = {
        "format_version": FORMAT_VERSION,
        "task": task,
        "env_config": env_config,
        "seed_start": previous["seed_start"] if previous else seed,
        "next_seed": seed,
        "episodes": kept,
    }
    already = len(kept)
    if already >= episodes:
        return DemoSummary(task, str(out), episodes, already, 0, 1.0, [], 0.0, _strategy_counts(kept))
    ctx = mp.get_context("forkserver")
    worker_overrides = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    bar = tqdm(total=episodes, initial=already, desc=f"demos {task}", unit="ep", disable=not progress)
    # A worker that dies (even while starting) breaks the pool with an error, where multiprocessing.Pool would
    # respawn it forever; seeds are submitted a few at a time, in order.
    pool = ProcessPoolExecutor(
        workers, mp_context=ctx, initializer=_init_worker, initargs=(task, worker_overrides, str(out))
    )
    seeds = iter(range(seed, seed + max_seeds))
    pending: deque[Future] = deque()

    def top_up() -> None:
        while len(pending) < 2 * workers and (next_seed := next(seeds, None)) is not None:
            pending.append(pool.submit(_record_seed, next_seed))

    try:
        top_up()
        while pending:
            try:
                result, name = pending.popleft().result()
            except BrokenProcessPool as error:
                raise RuntimeError(
                    f"a demonstration worker process died ({error}); rerun with --workers 1 to see why"
                ) from None
            top_up()
            tried += 1
            index["next_seed"] = result.seed + 1
            if name is None:
                failed.append(result.seed)
                continue
            if len(kept) >= episodes:
                (out / "data" / name).unlink(missing_ok=True)
                continue
            i = len(kept)
            final = out / "data" / f"episode{i}.hdf5"
            os.replace(out / "data" / name, final)
            instruction = _read_instruction(final)
            kept.append(
                {
                    "file": f"data/episode{i}.hdf5",
                    "seed": result.seed,
                    "length": result.steps,
                    "instruction": instruction,
                    "strategy": result.strategy,
                }
            )
            atomic_write_text(
                out / "instructions" / f"episode{i}.json", json.dumps(_episode_instructions(task_cls, final), indent=1)
            )
            atomic_write_text(out / INDEX_FILE, json.dumps(index, indent=1))
            bar.update(1)
            if len(kept) >= episodes:
                break
    finally:
        _terminate(pool)
        bar.close()
        for leftover in list((out / "data").glob("seed*.hdf5")) + list((out / "data").glob("*.tmp")):
            leftover.unlink()
    atomic_write_text(out / INDEX_FILE, json.dumps(index, indent=1))
    atomic_write_text(out / "seed.txt", "".join(f"{e['seed']}\n" for e in kept))
    new = len(kept) - already
    return DemoSummary(
        task,
        str(out),
        episodes,
        len(kept),
        tried,
        new / max(tried, 1),
        failed,
        round(time.time() - start, 2),
        _strategy_counts(kept),
    )


def _existing_index(out: Path, task: str, env_config: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """The index of a dataset to resume, None for a fresh directory; refuses to mix tasks or configs."""
    index_path = out / INDEX_FILE
    if not index_path.is_file():
        return None
    if overwrite:
        for sub in ("data", "instructions"):
            shutil.rmtree(out / sub, ignore_errors=True)
        index_path.unlink()
        return None
    previous = json.loads(index_path.read_text())
    from pushcut.sim.env import EnvConfig

    defaults = json.loads(json.dumps(dataclasses.asdict(EnvConfig())))
    stored = {**defaults, **previous.get("env_config", {})}  # a field newer than the index: it had its default
    if previous.get("task") != task or stored != env_config:
        raise ValueError(
            f"{out} already holds a dataset of task {previous.get('task')!r} with a different env config; "
            "choose another --out or pass --overwrite"
        )
    previous["episodes"] = [e for e in previous["episodes"] if (out / e["file"]).is_file()]
    previous.setdefault("next_seed", max((e["seed"] for e in previous["episodes"]), default=-1) + 1)
    return previous


def _read_instruction(path: Path) -> str:
    import h5py

    with h5py.File(path, "r") as f:
        return str(f.attrs["instruction"])


def _episode_instructions(task_cls, path: Path) -> dict[str, list[str]]:
    """All seen / unseen templates that fit the episode, filled as in the recorded instruction's slots."""
    import h5py

    with h5py.File(path, "r") as f:
        slots = json.loads(f.attrs.get("slots", "{}"))
    return {
        "seen": sorted({t.format(**slots) for t in task_cls.seen_instructions if _fits(t, slots)}),
        "unseen": sorted({t.format(**slots) for t in task_cls.unseen_instructions if _fits(t, slots)}),
    }
