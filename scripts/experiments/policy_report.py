"""Tables, paired tests, the curve plot and docs/results/*.json behind "A policy that sees" in docs/results.md.

    python scripts/experiments/policy_report.py [--runs runs/exp15]

Reads what ``scripts/experiments/policy_results.sh`` wrote under ``--runs``:
  sft/<variant>/checkpoints/step_<N>/eval_click_bell.json   greedy on the 100 held-out seeds, step limit 48
  sft/<variant>/checkpoints/step_600/probe_click_bell.json  `pushcut train probe --json`
  grpo/<run>/metrics.jsonl                                  GRPO's own validation (the same seeds) every 5 steps
  grpo/<run>/checkpoints/step_<N>/eval_*.json              per-seed outcomes of the runs' last checkpoints
  sft/cont_s<k>/checkpoints/step_<N>/eval_click_bell.json   the continued-SFT baseline, every saved checkpoint

"Final" = mean of the last ``--last`` evaluations of a run (not its best). Paired comparisons: exact McNemar on the
held-out seeds where two checkpoints differ, per seed pair and pooled over seeds. Budgets are in steps; the x axis
converts them to quiet-machine minutes with the measured time per step (``--grpo-min-per-step``,
``--sft-min-per-step``); each run's measured wall time is printed too.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
from dataclasses import dataclass

from pushcut.train.evaluate import compare_paired, mcnemar_exact_p

SFT_VARIANTS = {
    "tiny100_aux": "tiny (ViT), aux loss",
    "small100": "small (keypoints), no aux loss",
    "small100_aux": "small, aux loss",
    "small100_aux_hl": "small, aux loss, HL-Gauss targets (sigma 1.5): the GRPO start",
    "small1000_aux": "small, aux loss, 1,000 demonstrations",
}


@dataclass
class Curve:
    name: str
    steps: list[int]
    success: list[float]
    wall_min: float

    def final(self, last: int) -> float:
        tail = self.success[-last:]
        return sum(tail) / len(tail)


def _json(path: str) -> dict | None:
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _rows(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _step(path: str) -> int:
    return int(re.search(r"step_(\d+)", path).group(1))


def grpo_curve(run: str, max_step: int | None = None) -> Curve:
    steps, success, elapsed = [], [], 0.0
    for row in _rows(os.path.join(run, "metrics.jsonl")):
        if max_step is not None and row["step"] > max_step:
            break
        elapsed = row.get("timing_s/elapsed", elapsed)
        if "val/success_rate" in row:
            steps.append(row["step"])
            success.append(row["val/success_rate"])
    return Curve(os.path.basename(run), steps, success, elapsed / 60)


def sft_curve(run: str, start: dict, task: str = "click_bell") -> Curve:
    evals = sorted(
        (_step(p), _json(p)) for p in glob.glob(os.path.join(run, "checkpoints/step_*", f"eval_{task}.json"))
    )
    rows = _rows(os.path.join(run, "metrics.jsonl"))
    wall = rows[-1].get("train/elapsed_s", 0.0) / 60 if rows else 0.0
    return Curve(
        os.path.basename(run),
        [0] + [s for s, _ in evals],
        [start["success_rate"]] + [e["success_rate"] for _, e in evals],
        wall,
    )


def push_fractions(run: str, max_step: int | None = None) -> list[float]:
    """`rollout/push_fraction` of every GRPO step: the share of sampled successes that pushed (train/grpo.py)."""
    rows = _rows(os.path.join(run, "metrics.jsonl"))
    return [r["rollout/push_fraction"] for r in rows
            if "rollout/push_fraction" in r and (max_step is None or r["step"] <= max_step)]  # fmt: skip


def last_eval(run: str, task: str = "click_bell", max_step: int | None = None) -> dict | None:
    paths = sorted(glob.glob(os.path.join(run, "checkpoints/step_*", f"eval_{task}.json")), key=_step)
    paths = [p for p in paths if max_step is None or _step(p) <= max_step]
    return {**_json(paths[-1]), "step": _step(paths[-1])} if paths else None


def probe_summary(ckpt: str) -> str:
    probe = _json(os.path.join(ckpt, "probe_click_bell.json"))
    if probe is None:
        return "| – | – | – | – |"
    rows = {r["representation"]: r for r in probe["rows"]}
    vision = rows["(a) vision tokens"]
    slots = [r for name, r in rows.items() if name.startswith("(b)")][-1]
    actions = rows["(c) decoded actions (tool-centre points)"]
    return (f"| {vision['median_cm']:.2f} | {slots['median_cm']:.2f} ({100 * slots['side_accuracy']:.0f} %) "
            f"| {actions['median_cm']:.2f} | {100 * probe['moving_arm_accuracy']:.0f} % |")  # fmt: skip


def sft_table(runs: str) -> None:
    print("| SFT variant (100 demos unless said, 600 steps of 32) | step 200 | 400 | 600 | probe: vision tokens cm "
          "| action slots cm (side) | decoded actions cm | moves the right arm |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, label in SFT_VARIANTS.items():
        run = os.path.join(runs, "sft", name)
        cells = []
        for step in (200, 400, 600):
            e = _json(os.path.join(run, f"checkpoints/step_{step}/eval_click_bell.json"))
            cells.append(f"{e['successes']} %" if e else "–")
        print(f"| {label} | {' | '.join(cells)} {probe_summary(os.path.join(run, 'checkpoints/step_600'))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="runs/exp15")
    parser.add_argument("--task", default="click_bell", help="the task of the runs (the eval files' names)")
    parser.add_argument("--step-limit", type=int, default=48, help="the held-out evaluations' step limit")
    parser.add_argument("--start", default="sft/small100_aux_hl/checkpoints/step_600")
    parser.add_argument("--grpo", default="recipe", help="GRPO run name prefix: grpo/<prefix>_s<seed>")
    parser.add_argument("--cont", default="cont", help="continued-SFT run name prefix: sft/<prefix>_s<seed>")
    parser.add_argument("--command", default=None, help="the command that reproduces the runs (for the JSON)")
    parser.add_argument("--grpo-steps", type=int, default=None, help="only the GRPO runs' first N steps")
    parser.add_argument("--last", type=int, default=3)
    parser.add_argument("--grpo-min-per-step", type=float, default=0.55, help="quiet-machine minutes per GRPO step")
    parser.add_argument("--sft-min-per-step", type=float, default=0.0275, help="quiet-machine minutes per SFT step")
    parser.add_argument("--png", default="docs/img/policy_click_bell.png")
    parser.add_argument("--json", default="docs/results/click_bell_grpo.json")
    args = parser.parse_args()
    runs = args.runs

    task = args.task
    if task == "click_bell":
        print("## SFT variants\n")
        sft_table(runs)
    start = _json(os.path.join(runs, args.start, f"eval_{task}.json"))
    if start is None:
        raise SystemExit(f"no eval_{task}.json for the start {args.start}: run its policy_results.sh stage first")
    print(f"\nstart {args.start}: {start['successes']} / {start['episodes']}")

    arms = {"grpo": [], "cont": []}
    for seed in range(4):
        grpo_run = os.path.join(runs, "grpo", f"{args.grpo}_s{seed}")
        cont_run = os.path.join(runs, "sft", f"{args.cont}_s{seed}")
        if os.path.isfile(os.path.join(grpo_run, "metrics.jsonl")):
            arms["grpo"].append((seed, grpo_curve(grpo_run, args.grpo_steps),
                                 last_eval(grpo_run, task, max_step=args.grpo_steps)))  # fmt: skip
        if os.path.isdir(os.path.join(cont_run, "checkpoints")):
            arms["cont"].append((seed, sft_curve(cont_run, start, task), last_eval(cont_run, task)))

    print(f"\n## GRPO ({args.grpo}) vs SFT continued; final = mean of the last {args.last} evaluations\n")
    print("| run | seed | steps | wall min | evaluations | final | vs start |")
    print("|---|---|---|---|---|---|---|")
    finals: dict[str, list[float]] = {"grpo": [], "cont": []}
    for arm, items in arms.items():
        for seed, curve, _ in items:
            final = curve.final(args.last)
            finals[arm].append(final)
            print(f"| {arm} | {seed} | {curve.steps[-1]} | {curve.wall_min:.0f} | {len(curve.success)} "
                  f"| {100 * final:.1f} % | {100 * (final - start['success_rate']):+.1f} |")  # fmt: skip

    pairs, start_pairs = [], []
    cont = {seed: ev for seed, _, ev in arms["cont"]}
    for seed, curve, ev in arms["grpo"]:
        if ev is None:
            continue
        if ev["step"] != curve.steps[-1]:  # the paired test must compare the run's last checkpoint
            raise SystemExit(f"grpo seed {seed}: last per-seed evaluation at step {ev['step']}, last validation at "
                             f"step {curve.steps[-1]}: run `policy_results.sh finals2` first")  # fmt: skip
        vs_start = compare_paired(start["per_seed"], ev["per_seed"])
        start_pairs.append(vs_start)
        line = f"seed {seed}: GRPO last vs start {vs_start.only_b} / {vs_start.only_a}, p = {vs_start.p:.3g}"
        if cont.get(seed) is not None:
            paired = compare_paired(cont[seed]["per_seed"], ev["per_seed"])
            pairs.append(paired)
            line += f"; vs SFT continued {paired.only_b} / {paired.only_a}, p = {paired.p:.3g}"
        print(line)
    pooled_p = pooled_start_p = None
    if start_pairs:
        gained, lost = sum(p.only_b for p in start_pairs), sum(p.only_a for p in start_pairs)
        pooled_start_p = mcnemar_exact_p(gained, lost)
        print(f"pooled over {len(start_pairs)} GRPO seed(s) vs the start: solves {gained} seed-runs the start does "
              f"not, loses {lost}, exact McNemar p = {pooled_start_p:.3g}")  # fmt: skip
    if pairs:
        gained, lost = sum(p.only_b for p in pairs), sum(p.only_a for p in pairs)
        pooled_p = mcnemar_exact_p(gained, lost)
        print(f"pooled over {len(pairs)} seed pair(s): GRPO solves {gained} seed-runs SFT continued does not, "
              f"loses {lost}, exact McNemar p = {pooled_p:.3g}")  # fmt: skip

    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    result = {
        "experiment": f"{task} GRPO vs SFT start and SFT continued (issue 15)",
        "command": args.command
        or (
            "bash scripts/experiments/policy_results.sh "
            + ("grpo SEED" if args.grpo == "recipe" else f"ablation {args.grpo}")
            + f"; ... cont SEED; python scripts/experiments/policy_report.py --grpo {args.grpo}"
        ),
        "task": task,
        "held_out_seeds": [int(o["seed"]) for o in start["per_seed"]],
        "step_limit": args.step_limit,
        "start": {
            "checkpoint": args.start,
            "greedy_success": start["success_rate"],
            "strategies": start.get("strategies", {}),
        },
        "seeds": {arm: [seed for seed, _, _ in items] for arm, items in arms.items()},
        "final_definition": f"mean of the last {args.last} greedy evaluations on the 100 held-out seeds",
        "grpo_final": finals["grpo"],
        "sft_continued_final": finals["cont"],
        "greedy_gain_vs_start_points": 100 * (mean(finals["grpo"]) - start["success_rate"]),
        "greedy_gain_vs_sft_continued_points": 100 * (mean(finals["grpo"]) - mean(finals["cont"])),
        "pooled_mcnemar_p": pooled_p,
        "pooled_discordant": {
            "grpo_only": sum(p.only_b for p in pairs),
            "sft_continued_only": sum(p.only_a for p in pairs),
        },
        "pooled_mcnemar_p_vs_start": pooled_start_p,
        "pooled_discordant_vs_start": {
            "grpo_only": sum(p.only_b for p in start_pairs),
            "start_only": sum(p.only_a for p in start_pairs),
        },
        "paired_test": "exact McNemar on the held-out seeds, each run's last checkpoint, pooled over seed pairs",
        "paired_steps": {f"{arm}_s{seed}": ev["step"] for arm, items in arms.items() for seed, _, ev in items if ev},
        "strategies_of_last_checkpoints": {
            f"{arm}_s{seed}": ev.get("strategies", {}) for arm, items in arms.items() for seed, _, ev in items if ev
        },
        "grpo_rollout_push_fraction": {
            f"grpo_s{seed}": push_fractions(os.path.join(runs, "grpo", f"{args.grpo}_s{seed}"), args.grpo_steps)
            for seed, _, _ in arms["grpo"]
        },
        "curves": {
            f"{arm}_s{seed}": {"steps": c.steps, "success": c.success, "wall_minutes": c.wall_min}
            for arm, items in arms.items()
            for seed, c, _ in items
        },  # fmt: skip
    }
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    print(f"\nJSON -> {args.json}")
    if arms["grpo"] or arms["cont"]:
        plot(arms, start["success_rate"], args)
        print(f"plot -> {args.png}")


def plot(arms: dict, start: float, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=120)
    for arm, style, per_step, label in (("grpo", "-", args.grpo_min_per_step, "GRPO"),
                                        ("cont", "--", args.sft_min_per_step, "SFT continued")):  # fmt: skip
        for seed, curve, _ in arms[arm]:
            ax.plot([s * per_step for s in curve.steps], [100 * v for v in curve.success], style, marker=".",
                    label=f"{label}, seed {seed}")  # fmt: skip
    ax.axhline(100 * start, color="grey", linestyle=":", label=f"SFT start ({100 * start:.0f} %)")
    ax.set_xlabel("budget: minutes of a quiet 2-core machine")
    ax.set_ylabel("greedy success, 100 held-out seeds (%)")
    ax.set_title(f"{args.task}, small preset: GRPO vs SFT continued from the same start")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(args.png) or ".", exist_ok=True)
    fig.savefig(args.png)


if __name__ == "__main__":
    main()
