"""Closed-loop evaluation of a checkpoint in simulation: greedy decoding on held-out seeds.

``evaluate(checkpoint_dir, task, episodes)`` runs the episodes in waves of ``workers`` environments on an
:class:`~pushcut.sim.vector.EnvPool` with :func:`pushcut.train.rollout.run_episodes` (seed of episode i:
``seed_start + i``, ``seed_start`` defaults to :data:`~pushcut.common.conventions.EVAL_SEED_START`, so evaluation never
reuses demonstration seeds). At every chunk boundary each active env's observation goes through
:class:`~pushcut.train.inference.ChunkPolicy` (centre crop, proprio normalisation, greedy decoding), and the chunk goes
to ``step_chunk``; finished envs get None. ``evaluate_policy`` does the same for an in-memory policy on an open pool
(GRPO's periodic validation). Returns the success rate with a Wilson 95 % interval, the mean episode length (actions),
per-seed outcomes and wall time. Videos of the first ``max_videos`` episodes (first policy camera, head camera
preferred, one frame per chunk boundary) are written with :func:`pushcut.sim.video.write_mp4`.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pushcut.common.conventions import EVAL_SEED_START
from pushcut.common.stats import wilson_interval


@dataclass(frozen=True)
class PairedComparison:
    """Two policies evaluated on the same seeds: the exact McNemar test on the seeds where they differ."""

    n: int  # seeds
    successes_a: int
    successes_b: int
    only_a: int  # seeds only policy a solved
    only_b: int
    p: float  # two-sided exact McNemar (binomial) p-value

    @property
    def gain_points(self) -> float:
        """b - a in percentage points."""
        return 100.0 * (self.successes_b - self.successes_a) / self.n


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Two-sided exact binomial (McNemar) p-value of ``only_a`` vs ``only_b`` discordant seeds."""
    n, k = only_a + only_b, min(only_a, only_b)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0


def compare_paired(per_seed_a: Iterable[dict[str, Any]], per_seed_b: Iterable[dict[str, Any]]) -> PairedComparison:
    """Per-seed outcomes ``{"seed", "success"}`` of two evaluations (e.g. the ``per_seed`` of :func:`evaluate`) on
    the same seeds → a :class:`PairedComparison`; ValueError when the seeds differ."""
    a = {int(o["seed"]): bool(o["success"]) for o in per_seed_a}
    b = {int(o["seed"]): bool(o["success"]) for o in per_seed_b}
    if a.keys() != b.keys() or not a:
        raise ValueError(f"paired comparison needs the same non-empty seeds: {len(a)} vs {len(b)} seeds, "
                         f"{len(a.keys() ^ b.keys())} not in both")  # fmt: skip
    only_a = sum(a[s] and not b[s] for s in a)
    only_b = sum(b[s] and not a[s] for s in a)
    return PairedComparison(len(a), sum(a.values()), sum(b.values()), only_a, only_b, mcnemar_exact_p(only_a, only_b))


def strategy_counts(strategies: Iterable[str | None]) -> dict[str, int]:
    """How many successful episodes used each strategy (sim/strategy.py), most frequent first."""
    return dict(Counter(s or "unknown" for s in strategies).most_common())


def _video_camera(cameras: list[str]) -> str:
    return "head_camera" if "head_camera" in cameras else cameras[0]


def _check_cameras(cameras: list[str], owner: str) -> None:
    from pushcut.sim.env import CAMERA_NAMES

    unknown = [c for c in cameras if c not in CAMERA_NAMES]
    if unknown:
        raise ValueError(
            f"{owner} needs camera(s) {unknown} that the simulator cannot provide (available: {sorted(CAMERA_NAMES)})"
        )


def check_checkpoint_cameras(checkpoint: str | os.PathLike) -> None:
    """Fail before any weights are loaded when the checkpoint wants cameras the simulator cannot render, or acts in
    another action space than the dual-Piper sim's (e.g. a 7-D LIBERO OpenVLA-OFT checkpoint)."""
    from pushcut.sim.piper_spec import ACTION_DIM
    from pushcut.train.checkpoint import read_metadata

    meta = read_metadata(checkpoint)
    _check_cameras(list(meta["cameras"]), f"checkpoint {checkpoint}")
    action_dim = meta["_policy_config"].action_dim
    if action_dim != ACTION_DIM:
        raise ValueError(
            f"checkpoint {checkpoint} outputs {action_dim}-D actions; the dual-Piper sim needs {ACTION_DIM}-D joint "
            "targets"
        )


def policy_env_overrides(policy, env_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Env options for running ``policy`` (a ChunkPolicy): its cameras and action rate win over ``env_overrides``."""
    _check_cameras(policy.cameras, "the policy")
    return {**(env_overrides or {}), "cameras": tuple(policy.cameras), "action_hz": policy.action_hz}


def evaluate_policy(
    policy,
    pool,
    episodes: int,
    seed_start: int = EVAL_SEED_START,
    video_dir: str | os.PathLike | None = None,
    max_videos: int = 3,
) -> dict[str, Any]:
    """Greedy episodes of an in-memory ChunkPolicy on seeds ``seed_start ..`` in waves over ``pool`` (whose envs
    were made with :func:`policy_env_overrides`); the result dict of :func:`evaluate` without the checkpoint."""
    from pushcut.train.rollout import run_episodes

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    task = pool.tasks[0]
    video_cam = _video_camera(policy.cameras)
    fps = max(1.0, policy.action_hz / policy.chunk)
    if video_dir is not None:
        Path(video_dir).mkdir(parents=True, exist_ok=True)
    seeds = [seed_start + i for i in range(episodes)]
    outcomes: list[dict[str, Any]] = []
    videos: list[str] = []
    start = time.perf_counter()
    n_envs = pool.num_envs
    for wave_start in range(0, episodes, n_envs):
        wave = seeds[wave_start : wave_start + n_envs]
        record = [video_dir is not None and wave_start + i < max_videos for i in range(len(wave))]
        for ep in run_episodes(policy, pool, wave, record_camera=video_cam, record=record):
            outcomes.append({"seed": ep.seed, "success": ep.success, "length": ep.length, "strategy": ep.strategy})
            if ep.frames:
                from pushcut.sim.video import write_mp4

                path = Path(video_dir) / f"{task}_seed{ep.seed}_{'success' if ep.success else 'fail'}.mp4"
                write_mp4(path, ep.frames, fps)
                videos.append(str(path))
    wall = time.perf_counter() - start
    n_success = sum(o["success"] for o in outcomes)
    low, high = wilson_interval(n_success, episodes)
    return {
        "task": task,
        "episodes": episodes,
        "successes": n_success,
        "success_rate": n_success / episodes,
        "wilson_95": [low, high],
        "mean_episode_length": float(np.mean([o["length"] for o in outcomes])),
        "strategies": strategy_counts(o["strategy"] for o in outcomes if o["success"]),
        "per_seed": outcomes,
        "videos": videos,
        "wall_time_s": wall,
        "workers": n_envs,
    }


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
    env_backend: str = "process",
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint greedily on ``episodes`` seeds ``seed_start ..``; see the module docstring.

    ``env_overrides`` go to the env config (e.g. ``step_limit``, ``image_width``/``image_height``); the cameras
    and action rate always come from the checkpoint."""
    from pushcut.sim.ray_session import check_env_backend
    from pushcut.sim.registry import get_task
    from pushcut.sim.robotwin.backend import open_pool  # every world: RoboTwin's workers or sim/vector's pool
    from pushcut.train.checkpoint import read_metadata
    from pushcut.train.inference import ChunkPolicy
    from pushcut.train.provenance import evaluation_note, training_world

    check_env_backend(env_backend, ray_address)  # a bad backend or address: one line, before anything loads
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    ckpt = Path(checkpoint_dir)
    if not ckpt.is_dir():
        raise FileNotFoundError(f"checkpoint directory {ckpt} does not exist")
    get_task(task)  # unknown task: clear error before loading anything
    check_checkpoint_cameras(ckpt)
    extra = read_metadata(ckpt).get("extra", {})
    world = training_world(env_overrides or {})
    policy = ChunkPolicy.from_checkpoint(ckpt, device=device)
    overrides = policy_env_overrides(policy, env_overrides)
    with open_pool(task, min(workers, episodes), overrides, backend=env_backend, ray_address=ray_address) as pool:
        result = evaluate_policy(policy, pool, episodes, seed_start, video_dir, max_videos)
    return {"checkpoint": str(ckpt), **result, "world": world, "trained_world": extra.get("world"),
            "world_note": evaluation_note(extra, world)}  # fmt: skip
