"""Issue 27 §0: the claimed numbers, measured once on the test seeds that nothing was tuned on.

Reads the `eval sim --json` outputs of a start checkpoint, of the GRPO runs' fixed final checkpoints and of the
continued-SFT runs' fixed final checkpoints (all on the same seeds), and writes the result JSON (the keys of the
clean result docs/results/click_bell_grpo_T07_cosine.json, plus per-seed outcomes, Wilson intervals and churn) and a
markdown table on stdout. Pairing: GRPO seed k against continued-SFT seed k, for the seeds both arms have (no run
is used twice); discordant pairs are summed over those pairs for the pooled exact McNemar test, as in the earlier
results; every GRPO run is also compared with every continued-SFT run on its own.

    python scripts/experiments/test_seed_report.py --start S.json --grpo G0.json G1.json G2.json \
        --cont C0.json --json docs/results/click_bell_test_seeds.json [--validation-curves RUN ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

from pushcut.common.stats import wilson_interval
from pushcut.train.evaluate import compare_paired, mcnemar_exact_p


def load(path: Path) -> dict[str, Any]:
    result = json.loads(path.read_text())
    return {"path": str(path), "checkpoint": result["checkpoint"], "successes": result["successes"],
            "episodes": result["episodes"], "per_seed": result["per_seed"]}  # fmt: skip


def rate(result: dict[str, Any]) -> float:
    return result["successes"] / result["episodes"]


def summary(result: dict[str, Any]) -> dict[str, Any]:
    low, high = wilson_interval(result["successes"], result["episodes"])
    return {"checkpoint": result["checkpoint"], "successes": result["successes"], "episodes": result["episodes"],
            "success_rate": rate(result), "wilson_95": [low, high],
            "per_seed": {str(o["seed"]): bool(o["success"]) for o in result["per_seed"]}}  # fmt: skip


def pooled(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> tuple[int, int, float]:
    """(only the second solved, only the first solved, exact McNemar p) summed over (first, second) pairs."""
    comparisons = [compare_paired(a["per_seed"], b["per_seed"]) for a, b in pairs]
    only_b, only_a = sum(c.only_b for c in comparisons), sum(c.only_a for c in comparisons)
    return only_b, only_a, mcnemar_exact_p(only_a, only_b)


def churn(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Fraction of the seeds whose outcome differs between two checkpoints."""
    comparison = compare_paired(a["per_seed"], b["per_seed"])
    return (comparison.only_a + comparison.only_b) / comparison.n


def validation_curve(run: Path) -> dict[str, list]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "val/success_rate" in r]
    return {"steps": [r["step"] for r in rows], "success": [r["val/success_rate"] for r in rows]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=Path, required=True)
    parser.add_argument("--grpo", type=Path, nargs="+", required=True, help="one eval JSON per GRPO seed, in order")
    parser.add_argument("--grpo-seeds", type=int, nargs="+", required=True)
    parser.add_argument("--cont", type=Path, nargs="*", default=[], help="one eval JSON per continued-SFT seed")
    parser.add_argument("--cont-seeds", type=int, nargs="*", default=[])
    parser.add_argument("--validation-curves", type=Path, nargs="*", default=[], help="GRPO run dirs, same order")
    parser.add_argument("--experiment", default="click_bell GRPO vs SFT start and continued SFT on test seeds")
    parser.add_argument("--command", default="")
    parser.add_argument("--randomization", default="clean", help="the scenes trained and evaluated on")
    parser.add_argument("--grpo-step", type=int, default=80, help="the GRPO runs' fixed final step")
    parser.add_argument("--cont-step", type=int, default=1800, help="the continued-SFT runs' fixed final step")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    if len(args.grpo) != len(args.grpo_seeds) or len(args.cont) != len(args.cont_seeds):
        parser.error("give one seed number per eval JSON (--grpo-seeds, --cont-seeds)")

    start, grpo, cont = load(args.start), [load(p) for p in args.grpo], [load(p) for p in args.cont]
    vs_start = pooled([(start, g) for g in grpo])
    cont_pairs = list(zip(cont, grpo))  # seed k with seed k, as far as both arms go
    vs_cont = pooled(cont_pairs) if cont else None
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    seeds = [o["seed"] for o in start["per_seed"]]
    result: dict[str, Any] = {
        "experiment": args.experiment,
        "command": args.command,
        "task": "click_bell",
        "randomization": args.randomization,
        "test_seeds": [seeds[0], seeds[-1]],
        "episodes": len(seeds),
        "step_limit": 48,
        "start": summary(start),
        "seeds": {"grpo": args.grpo_seeds, "cont": args.cont_seeds},
        "final_definition": f"fixed before any test evaluation: GRPO step {args.grpo_step}, "
        f"continued SFT step {args.cont_step}",
        "grpo_final": [rate(g) for g in grpo],
        "sft_continued_final": [rate(c) for c in cont],
        "greedy_gain_vs_start_points": 100 * (mean([rate(g) for g in grpo]) - rate(start)),
        "greedy_gain_vs_sft_continued_points": 100 * (mean([rate(g) for g in grpo]) - mean([rate(c) for c in cont]))
        if cont
        else None,
        "pooled_mcnemar_p_vs_start": vs_start[2],
        "pooled_discordant_vs_start": {"grpo_only": vs_start[0], "start_only": vs_start[1]},
        "pooled_mcnemar_p": vs_cont[2] if vs_cont else None,
        "pooled_discordant": {"grpo_only": vs_cont[0], "sft_continued_only": vs_cont[1]} if vs_cont else None,
        "pooled_pairs": [[f"grpo_s{g}", f"cont_s{c}"] for c, g in zip(args.cont_seeds, args.grpo_seeds)],
        "grpo_vs_each_sft_continued": {
            f"grpo_s{gs}_vs_cont_s{cs}": dict(zip(("grpo_only", "sft_continued_only", "p"), pooled([(c, g)])))
            for (gs, g), (cs, c) in itertools.product(zip(args.grpo_seeds, grpo), zip(args.cont_seeds, cont))
        },
        "paired_test": "exact McNemar on the test seeds, discordant pairs summed over the seed pairs",
        "churn_vs_start": [churn(start, g) for g in grpo],
        "churn_between_grpo_seeds": [churn(a, b) for a, b in itertools.combinations(grpo, 2)],
        "grpo": [summary(g) for g in grpo],
        "sft_continued": [summary(c) for c in cont],
        "validation_curves": {
            f"grpo_s{s}": validation_curve(run) for s, run in zip(args.grpo_seeds, args.validation_curves)
        },  # fmt: skip
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")

    def row(name: str, r: dict[str, Any], against: dict[str, Any] | None) -> str:
        low, high = wilson_interval(r["successes"], r["episodes"])
        paired = "–"
        if against is not None:
            c = compare_paired(against["per_seed"], r["per_seed"])
            paired = f"{c.only_b} / {c.only_a}, p = {c.p:.2g}, churn {churn(against, r):.0%}"
        return (f"| {name} | {r['successes']}/{r['episodes']} = {rate(r):.1%} [{low:.0%}, {high:.0%}] | "
                f"{100 * (rate(r) - rate(start)):+.1f} | {paired} |")  # fmt: skip

    print("| checkpoint | test success [Wilson 95 %] | vs start (points) | vs start: only it / only start, p |")
    print("|---|---|---|---|")
    print(row("SFT start", start, None))
    for s, g in zip(args.grpo_seeds, grpo):
        print(row(f"GRPO seed {s}, step {args.grpo_step}", g, start))
    for s, c in zip(args.cont_seeds, cont):
        print(row(f"SFT continued seed {s}, step {args.cont_step}", c, start))
    print(f"\npooled vs start: {vs_start[0]} / {vs_start[1]}, p = {vs_start[2]:.2g}")
    for name, c in result["grpo_vs_each_sft_continued"].items():
        print(f"{name}: {c['grpo_only']} / {c['sft_continued_only']}, p = {c['p']:.2g}")
    if vs_cont:
        print(f"pooled vs continued SFT (seed k with seed k): {vs_cont[0]} / {vs_cont[1]}, p = {vs_cont[2]:.2g}; gain "
              f"{result['greedy_gain_vs_sft_continued_points']:+.1f} points")  # fmt: skip
    print(f"mean gain vs start {result['greedy_gain_vs_start_points']:+.1f} points; churn vs start "
          f"{', '.join(f'{c:.0%}' for c in result['churn_vs_start'])}")  # fmt: skip


if __name__ == "__main__":
    main()
