"""The SimpleVLA-RL-style rollout loop that `pushcut train bench-rollout` compares GRPO's rollout against.

FROZEN as of issue 25 (commit 7514f45): this function is the baseline of the benchmark's speed-up, so it must stay
exactly as it is — neither faster nor slower. Improvements go into :mod:`pushcut.train.rollout` (our loop) or into
the shared simulator and policy, which both loops use. It was moved here unchanged from train/bench.py.

What it does (recipe.md §1.1, §1.4): one group of G envs at a time; at every chunk step all envs are re-encoded,
finished or not (a finished env is not stepped any more, but its last observation still goes through the policy);
the loop always runs to the step limit; the old log-probs are recomputed in a second forward pass afterwards.
"""

from __future__ import annotations

import math

import torch


def _simplevla_style_rollout(runner, pool, seeds: list[int], temperature: float, generator, step_limit: int) -> int:
    """The reference loop (recipe.md §1.1, §1.4): every chunk step re-encodes all envs, done or not, the loop always
    runs to the step limit, and the old log-probs are recomputed in a second forward pass afterwards."""
    obs = pool.reset(seeds)
    done = [False] * len(seeds)
    stored = []
    for _ in range(math.ceil(step_limit / runner.chunk)):
        inputs = runner.prepare_observations(obs)
        pred = runner.predict(inputs, temperature=temperature, generator=generator)
        stored.append((inputs, pred.tokens))
        results = pool.step_chunk([None if d else a for d, a in zip(done, pred.actions, strict=True)])
        for i, res in enumerate(results):
            if res is not None:
                obs[i] = res.observation
                done[i] = done[i] or res.terminated or res.truncated
    with torch.no_grad():
        for inputs, tokens in stored:
            runner.policy.log_probs(runner.batch(inputs), torch.from_numpy(tokens), temperature)
    return len(seeds)
