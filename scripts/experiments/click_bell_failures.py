"""Why do click_bell episodes fail? Classify each held-out episode of a checkpoint (docs/results.md, issue 4).

    python scripts/experiments/click_bell_failures.py CHECKPOINT [--episodes 40] [--temperature 0] [--step-limit 48]
                                                             [--randomization randomized]

Runs the checkpoint closed-loop on held-out seeds 1,000,000.. (one env, the same inference path as `pushcut eval
sim`) and sorts every failure into:
  wrong arm      the arm on the bell's side never moved (< 5 cm), the other one did
  no motion      neither arm moved 5 cm
  both arms      both arms moved 5 cm or more (and the bell-side arm missed)
  missed         only the bell-side arm moved; reported with its closest approach of its gripper TCP to the button
Prints one line per failure (seed, bell x, instruction, closest approach) and a summary line as JSON.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from pushcut import sim
from pushcut.common.conventions import EVAL_SEED_START
from pushcut.train.evaluate import policy_env_overrides
from pushcut.train.inference import ChunkPolicy

MOVED_M = 0.05  # an arm whose TCP never got this far from its start did not take part


def run_episode(policy: ChunkPolicy, env, seed: int, temperature: float, generator: torch.Generator) -> dict:
    obs, _ = env.reset(seed=seed)
    arm = env.task.arm
    other = "right" if arm == "left" else "left"
    button = env.task.button(env)
    start = {a: env.tcp_pose(a).position.copy() for a in (arm, other)}
    travel = {arm: 0.0, other: 0.0}
    closest, steps, success = np.inf, 0, False
    while steps < env.step_limit and not success:
        chunk = policy.predict(policy.prepare_observations([obs]), temperature, generator).actions[0]
        for action in chunk:
            obs, _, success, truncated, _ = env.step(action)
            steps += 1
            closest = min(closest, float(np.linalg.norm(env.tcp_pose(arm).position - button)))
            for a in travel:
                travel[a] = max(travel[a], float(np.linalg.norm(env.tcp_pose(a).position - start[a])))
            if success or truncated:
                break
    if success:
        kind = "success"
    elif travel[arm] < MOVED_M:
        kind = "wrong arm" if travel[other] >= MOVED_M else "no motion"
    else:
        kind = "both arms" if travel[other] >= MOVED_M else "missed"
    return {
        "seed": seed,
        "kind": kind,
        "bell_x": round(float(button[0]), 3),
        "closest_m": round(closest, 3),
        "steps": steps,
        "instruction": obs["instruction"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy, as in evaluation")
    parser.add_argument("--step-limit", type=int, default=48)
    parser.add_argument("--randomization", default="clean", help="scene preset: clean, randomized or one factor")
    args = parser.parse_args()
    if args.episodes < 1 or args.step_limit < 1 or args.temperature < 0:
        parser.error("--episodes and --step-limit must be >= 1 and --temperature >= 0 (0 = greedy)")

    policy = ChunkPolicy.from_checkpoint(args.checkpoint)
    env = sim.make(
        "click_bell",
        **policy_env_overrides(policy, {"step_limit": args.step_limit, "randomization": args.randomization}),
    )
    generator = torch.Generator().manual_seed(0)
    episodes = [
        run_episode(policy, env, EVAL_SEED_START + i, args.temperature, generator) for i in range(args.episodes)
    ]
    for ep in episodes:
        if ep["kind"] != "success":
            print(
                f"{ep['seed']}  {ep['kind']:9s}  bell x {ep['bell_x']:+.3f}  closest {ep['closest_m']:.3f} m  "
                f"{ep['instruction']!r}"
            )
    kinds = [ep["kind"] for ep in episodes]
    missed = [ep["closest_m"] for ep in episodes if ep["kind"] in ("missed", "both arms")]
    print(
        json.dumps(
            {
                "checkpoint": args.checkpoint,
                "temperature": args.temperature,
                "episodes": args.episodes,
                **{kind: kinds.count(kind) for kind in ("success", "wrong arm", "no motion", "both arms", "missed")},
                "missed_or_both_closest_m_quartiles": [
                    round(float(q), 3) for q in np.quantile(missed, [0.25, 0.5, 0.75])
                ]
                if missed
                else None,
            }
        )
    )


if __name__ == "__main__":
    main()
