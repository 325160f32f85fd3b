"""Issue 26 §4: does RL's gain in MuJoCo survive in SAPIEN? The transfer table from `eval sim --json` outputs.

Each checkpoint (the SFT start and the GRPO runs' fixed final checkpoints) was evaluated greedily on the same test
seeds in both engines. Writes docs/results/<experiment>.json with ``success_by_engine`` per checkpoint, Wilson
intervals, per-seed outcomes, the paired test of every GRPO checkpoint against the start inside each engine (and
pooled over the GRPO seeds), the retained fraction (SAPIEN / MuJoCo success) and the cross-engine agreement per
checkpoint (the fraction of seeds with the same outcome in both engines); prints a markdown table.

    python scripts/experiments/transfer_report.py --names start grpo_s0 grpo_s1 \
        --mujoco S.json G0.json G1.json --sapien S_sapien.json G0_sapien.json G1_sapien.json \
        --json docs/results/click_bell_sapien_transfer.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pushcut.common.stats import wilson_interval
from pushcut.train.evaluate import compare_paired, mcnemar_exact_p

ENGINES = ("mujoco", "sapien")


def load(path: Path, engine: str, randomization: str) -> dict[str, Any]:
    result = json.loads(path.read_text())
    world = result.get("world") if isinstance(result.get("world"), dict) else {}  # older evaluations: MuJoCo, clean
    ran_in, scenes = world.get("engine", "mujoco"), world.get("randomization", "clean")
    if ran_in != engine or scenes != randomization:
        raise SystemExit(f"{path}: evaluated in engine {ran_in!r} on {scenes!r} scenes, expected {engine!r} on "
                         f"{randomization!r}")  # fmt: skip
    return result


def summary(result: dict[str, Any]) -> dict[str, Any]:
    low, high = wilson_interval(result["successes"], result["episodes"])
    return {"successes": result["successes"], "episodes": result["episodes"],
            "success_rate": result["successes"] / result["episodes"], "wilson_95": [low, high],
            "strategies": result.get("strategies", {}),
            "per_seed": {str(o["seed"]): bool(o["success"]) for o in result["per_seed"]}}  # fmt: skip


def paired(start: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    c = compare_paired(start["per_seed"], other["per_seed"])
    return {"grpo_only": c.only_b, "start_only": c.only_a, "p": c.p, "gain_points": c.gain_points}


def agreement(a: dict[str, Any], b: dict[str, Any]) -> float:
    c = compare_paired(a["per_seed"], b["per_seed"])
    return 1.0 - (c.only_a + c.only_b) / c.n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", nargs="+", required=True, help="the start first, then one name per GRPO run")
    parser.add_argument("--checkpoints", nargs="+", default=[], help="checkpoint paths, same order (recorded)")
    for engine in ENGINES:
        parser.add_argument(f"--{engine}", type=Path, nargs="+", required=True, help="eval JSONs, same order")
    experiment = "click_bell: SFT start and GRPO trained in MuJoCo, run in MuJoCo and SAPIEN"
    parser.add_argument("--experiment", default=experiment)
    parser.add_argument("--command", default="bash scripts/experiments/sapien_transfer.sh")
    parser.add_argument("--randomization", default="clean", help="the scenes every evaluation ran on (checked)")
    parser.add_argument("--frozen-commit", default="", help="the commit SAPIEN's scene was frozen at")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    if not len(args.names) == len(args.mujoco) == len(args.sapien) or len(args.names) < 2:
        parser.error("give the start and at least one GRPO run, one eval JSON per name in each engine")

    runs = {engine: [load(p, engine, args.randomization) for p in getattr(args, engine)] for engine in ENGINES}
    seeds = [o["seed"] for o in runs["mujoco"][0]["per_seed"]]
    checkpoints: dict[str, Any] = {}
    for k, name in enumerate(args.names):
        by_engine = {engine: summary(runs[engine][k]) for engine in ENGINES}
        checkpoints[name] = {
            "checkpoint": args.checkpoints[k] if k < len(args.checkpoints) else runs["mujoco"][k]["checkpoint"],
            "success_by_engine": {engine: by_engine[engine]["success_rate"] for engine in ENGINES},
            "retained_fraction": by_engine["sapien"]["success_rate"] / max(by_engine["mujoco"]["success_rate"], 1e-9),
            "same_outcome_both_engines": agreement(runs["mujoco"][k], runs["sapien"][k]),
            **{engine: by_engine[engine] for engine in ENGINES},
        }
    grpo_vs_start: dict[str, Any] = {}
    for engine in ENGINES:
        start, grpo = runs[engine][0], runs[engine][1:]
        per_run = {name: paired(start, g) for name, g in zip(args.names[1:], grpo)}
        only_g = sum(r["grpo_only"] for r in per_run.values())
        only_s = sum(r["start_only"] for r in per_run.values())
        grpo_vs_start[engine] = {"per_run": per_run, "pooled": {"grpo_only": only_g, "start_only": only_s,
                                                                "p": mcnemar_exact_p(only_s, only_g)}}  # fmt: skip
    result = {
        "experiment": args.experiment,
        "command": args.command,
        "task": "click_bell",
        "randomization": args.randomization,
        "test_seeds": [seeds[0], seeds[-1]],
        "episodes": len(seeds),
        "step_limit": 48,
        "greedy": True,
        "sapien_frozen_commit": args.frozen_commit,
        "success_by_engine": {name: c["success_by_engine"] for name, c in checkpoints.items()},
        "grpo_vs_start": grpo_vs_start,
        "paired_test": "exact McNemar on the same test seeds inside one engine; pooled: discordant pairs summed",
        "checkpoints": checkpoints,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")

    print("| checkpoint | MuJoCo [Wilson 95 %] | SAPIEN [Wilson 95 %] | SAPIEN / MuJoCo | same outcome |")
    print("|---|---|---|---|---|")
    for name, c in checkpoints.items():
        cells = []
        for engine in ENGINES:
            s = c[engine]
            cells.append(f"{s['successes']}/{s['episodes']} = {s['success_rate']:.1%} "
                         f"[{s['wilson_95'][0]:.0%}, {s['wilson_95'][1]:.0%}]")  # fmt: skip
        kept, same = c["retained_fraction"], c["same_outcome_both_engines"]
        print(f"| {name} | {cells[0]} | {cells[1]} | {kept:.2f} | {same:.0%} |")
    for engine in ENGINES:
        g = grpo_vs_start[engine]
        per_run = g["per_run"].items()
        runs_text = "; ".join(f"{n} {r['grpo_only']} / {r['start_only']}, p = {r['p']:.2g}" for n, r in per_run)
        print(f"\n{engine}: GRPO vs start (only GRPO / only start): {runs_text}; pooled {g['pooled']['grpo_only']} / "
              f"{g['pooled']['start_only']}, p = {g['pooled']['p']:.2g}")  # fmt: skip


if __name__ == "__main__":
    main()
