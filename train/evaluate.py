"""Closed-loop evaluation of a checkpoint in simulation: greedy decoding on held-out seeds.

``evaluate(checkpoint_dir, task, episodes)`` runs the episodes in waves of ``workers`` environments on an
:class:`~pushcut.sim.vector.EnvPool` (seed of episode i: ``seed_start + i``, ``seed_start`` defaults to
:data:`~pushcut.sim.demos.EVAL_SEED_START`, so evaluation never reuses demonstration seeds). At every chunk boundary
each active env's observation goes through :class:`~pushcut.train.inference.ChunkPolicy` (centre crop, proprio
normalisation, greedy decoding), and the chunk goes to ``step_chunk``; finished envs get
None. Returns the success rate with a Wilson 95 % interval, the mean episode length (actions), per-seed outcomes
and wall time. Videos of the first ``max_videos`` episodes (first policy camera, head camera preferred, one frame
per chunk boundary) are written with :func:`pushcut.sim.video.write_mp4`.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from pushcut.sim.demos import EVAL_SEED_START


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (``successes`` out of ``n``); (0, 1) for n == 0."""
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _video_camera(cameras: list[str]) -> str:
    return "head_camera" if "head_camera" in cameras else cameras[0]


def evaluate(
    checkpoint_dir: str | os.PathLike,
    task: str,
    episodes: int,
    workers: int = 1,
    video_dir: str | os.PathLike | None = None,
    seed_start: int = EVAL_SEED_START,
    max_videos: int = 3,
    env_overrides: dict[str, Any] | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint greedily on ``episodes`` seeds ``seed_start ..``; see the module docstring.

    ``env_overrides`` go to the env config (e.g. ``step_limit``, ``image_width``/``image_height``); the cameras
    and action rate always come from the checkpoint."""
    from pushcut.sim.env import CAMERA_NAMES
    from pushcut.sim.registry import get_task
    from pushcut.sim.vector import EnvPool
    from pushcut.train.checkpoint import read_metadata
    from pushcut.train.inference import ChunkPolicy

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    ckpt = Path(checkpoint_dir)
    if not ckpt.is_dir():
        raise FileNotFoundError(f"checkpoint directory {ckpt} does not exist")
    get_task(task)  # unknown task: clear error before loading anything
    meta = read_metadata(ckpt)
    cameras = list(meta["cameras"])
    unknown = [c for c in cameras if c not in CAMERA_NAMES]
    if unknown:
        raise ValueError(
            f"checkpoint {ckpt} needs camera(s) {unknown} that the simulator cannot provide "
            f"(available: {sorted(CAMERA_NAMES)})"
        )
    policy = ChunkPolicy.from_checkpoint(ckpt, device=device)
    meta = policy.metadata
    chunk_len = policy.chunk
    overrides = {**(env_overrides or {}), "cameras": tuple(cameras), "action_hz": float(meta["action_hz"])}
    video_cam = _video_camera(cameras)
    fps = max(1.0, float(meta["action_hz"]) / chunk_len)
    if video_dir is not None:
        Path(video_dir).mkdir(parents=True, exist_ok=True)

    seeds = [seed_start + i for i in range(episodes)]
    outcomes: list[dict[str, Any]] = []
    videos: list[str] = []
    start = time.perf_counter()
    n_envs = min(workers, episodes)
    with EnvPool(task, n_envs, env_overrides=overrides) as pool:
        for wave_start in range(0, episodes, n_envs):
            wave = seeds[wave_start : wave_start + n_envs]
            # a last, smaller wave leaves the spare envs alone (reset with their own seed but never stepped)
            obs = pool.reset(wave + [wave[-1]] * (n_envs - len(wave)))
            active = [i < len(wave) for i in range(n_envs)]
            lengths = [0] * n_envs
            success = [False] * n_envs
            record = [video_dir is not None and wave_start + i < max_videos for i in range(len(wave))]
            frames: list[list[np.ndarray]] = [[] for _ in range(n_envs)]
            for i in range(len(wave)):
                if record[i]:
                    frames[i].append(obs[i]["observation"][video_cam]["rgb"])
            while any(active):
                idx = [i for i in range(n_envs) if active[i]]
                actions = policy.predict(policy.prepare_observations([obs[i] for i in idx])).actions
                chunks: list[np.ndarray | None] = [None] * n_envs
                for k, i in enumerate(idx):
                    chunks[i] = actions[k]
                results = pool.step_chunk(chunks)
                for i in idx:
                    res = results[i]
                    obs[i] = res.observation
                    lengths[i] += int(res.steps_executed)
                    if i < len(wave) and record[i]:
                        frames[i].append(res.observation["observation"][video_cam]["rgb"])
                    if res.terminated or res.truncated or res.steps_executed == 0:
                        active[i] = False
                        success[i] = bool(res.terminated)
            for i, seed in enumerate(wave):
                outcomes.append({"seed": seed, "success": success[i], "length": lengths[i]})
                if record[i]:
                    from pushcut.sim.video import write_mp4

                    path = Path(video_dir) / f"{task}_seed{seed}_{'success' if success[i] else 'fail'}.mp4"
                    write_mp4(path, frames[i], fps)
                    videos.append(str(path))
    wall = time.perf_counter() - start
    n_success = sum(o["success"] for o in outcomes)
    low, high = wilson_interval(n_success, episodes)
    return {
        "checkpoint": str(ckpt),
        "task": task,
        "episodes": episodes,
        "successes": n_success,
        "success_rate": n_success / episodes,
        "wilson_95": [low, high],
        "mean_episode_length": float(np.mean([o["length"] for o in outcomes])),
        "per_seed": outcomes,
        "videos": videos,
        "wall_time_s": wall,
        "workers": n_envs,
    }
