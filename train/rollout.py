"""Closed-loop episodes of a token VLA in an EnvPool: the one loop behind evaluation and GRPO rollouts.

``run_episodes(policy, pool, seeds)`` resets env i of the pool with ``seeds[i]`` (fewer seeds than envs: the spare
envs are reset but never stepped), then repeats until every episode is over: the observations of the envs still
running go through :class:`~pushcut.train.inference.ChunkPolicy` in one batch (greedy at ``temperature=0``, else
sampled, keeping the sampling log-probs), and each env executes its chunk with early exit (``step_chunk``: stops on
success or at the step limit; the last observation of an episode that ended is not rendered unless it is recorded).
An env whose episode ended gets no more chunks, and the loop returns as soon as the last episode ends — nothing runs
to the step limit for nothing.

With ``keep_inputs=True`` every episode carries what GRPO needs to recompute log-probs later: the preprocessed
model inputs at each chunk boundary, the sampled tokens, their log-probs, and ``valid`` — which action rows of each
chunk were executed (the rows after success or the step limit were not, and get no gradient).

``rollout_groups(policy, pool, seeds, group_size)`` runs G episodes per seed (the envs of a group share the seed, so
the same initial state and instruction) in waves of ``pool.num_envs // group_size`` groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from pushcut.sim.vector import VectorEnv
from pushcut.train.inference import ChunkPolicy


@dataclass
class Episode:
    task: str
    seed: int
    success: bool
    length: int  # actions executed
    instruction: str = ""
    strategy: str | None = None  # how a successful episode did it (sim/strategy.py: grasp / push / drag / press)
    acting_arms: tuple[str, ...] = ()  # the arms the task needs this episode (Task.acting_arms; () before a step)
    # GRPO inputs (keep_inputs=True), one row per chunk boundary
    images: np.ndarray | None = None  # uint8 (T, n_cameras, S, S, 3)
    proprio: np.ndarray | None = None  # float32 (T, proprio_dim)
    tokens: np.ndarray | None = None  # int64 (T, chunk, action_dim)
    log_probs: np.ndarray | None = None  # float32 (T, chunk, action_dim), at the rollout temperature
    valid: np.ndarray | None = None  # bool (T, chunk): action rows that were executed
    frames: list[np.ndarray] = field(default_factory=list)  # raw video frames (record_camera), one per chunk

    @property
    def reward(self) -> float:
        return 1.0 if self.success else 0.0

    @property
    def chunks(self) -> int:
        return 0 if self.tokens is None else len(self.tokens)


def run_episodes(
    policy: ChunkPolicy,
    pool: VectorEnv,
    seeds: Sequence[int],
    *,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    keep_inputs: bool = False,
    record_camera: str | None = None,
    record: Sequence[bool] | None = None,
) -> list[Episode]:
    """One episode per seed on envs 0..len(seeds)-1 of ``pool``; see the module docstring."""
    n_envs, n = pool.num_envs, len(seeds)
    if not 1 <= n <= n_envs:
        raise ValueError(f"need 1..{n_envs} seeds for a pool of {n_envs} envs, got {n}")
    if keep_inputs and temperature <= 0:
        raise ValueError("keep_inputs=True is for sampled rollouts: temperature must be > 0")
    record = list(record) if record is not None else [record_camera is not None] * n
    obs = pool.reset(list(seeds) + [seeds[-1]] * (n_envs - n))
    episodes = [Episode(pool.tasks[i], int(s), False, 0, obs[i]["instruction"]) for i, s in enumerate(seeds)]
    steps: list[list[tuple]] = [[] for _ in range(n)]  # per episode: (images, proprio, tokens, log_probs, valid)
    for i in range(n):
        if record[i]:
            episodes[i].frames.append(obs[i]["observation"][record_camera]["rgb"])
    active = list(range(n))
    while active:
        inputs = policy.prepare_observations([obs[i] for i in active])
        pred = policy.predict(inputs, temperature=temperature, generator=generator)
        chunks: list[np.ndarray | None] = [None] * n_envs
        for k, i in enumerate(active):
            chunks[i] = pred.actions[k]
        results = pool.step_chunk(chunks, images_if_ended=any(record))  # an ended episode's last image is unused
        still = []
        for k, i in enumerate(active):
            res = results[i]
            obs[i] = res.observation
            ep = episodes[i]
            ep.length += int(res.steps_executed)
            ep.acting_arms = tuple(res.info.get("acting_arms", ()))
            if keep_inputs:
                valid = np.arange(policy.chunk) < int(res.steps_executed)
                steps[i].append((inputs.images[k], inputs.proprio[k], pred.tokens[k], pred.log_probs[k], valid))
            if record[i]:
                ep.frames.append(res.observation["observation"][record_camera]["rgb"])
            if res.terminated or res.truncated or res.steps_executed == 0:
                ep.success = bool(res.terminated)
                ep.strategy = res.info.get("strategy") if ep.success else None
            else:
                still.append(i)
        active = still
    if keep_inputs:
        for ep, rows in zip(episodes, steps, strict=True):
            images, proprio, tokens, log_probs, valid = (np.stack(col) for col in zip(*rows, strict=True))
            ep.images, ep.proprio, ep.tokens, ep.log_probs, ep.valid = images, proprio, tokens, log_probs, valid
    return episodes


def rollout_groups(
    policy: ChunkPolicy,
    pool: VectorEnv,
    seeds: Sequence[int],
    group_size: int,
    temperature: float,
    generator: torch.Generator | None = None,
) -> list[list[Episode]]:
    """``group_size`` sampled episodes per seed (with GRPO inputs), grouped per seed in the order of ``seeds``."""
    per_wave = pool.num_envs // group_size
    if per_wave < 1:
        raise ValueError(f"a pool of {pool.num_envs} envs cannot hold one group of {group_size}")
    groups: list[list[Episode]] = []
    for start in range(0, len(seeds), per_wave):
        wave = list(seeds[start : start + per_wave])
        flat = [s for s in wave for _ in range(group_size)]
        episodes = run_episodes(policy, pool, flat, temperature=temperature, generator=generator, keep_inputs=True)
        groups += [episodes[g * group_size : (g + 1) * group_size] for g in range(len(wave))]
    return groups
