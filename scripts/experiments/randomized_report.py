"""Issue 27 §1: gather the randomised-training runs' validation evaluations, factor breakdowns and probes into one
JSON (docs/results/click_bell_randomized_sft.json) and print them. Reads what randomized_results.sh and
`pushcut train probe --json > CKPT/probe_click_bell_PRESET.json` wrote beside each checkpoint.

    python scripts/experiments/randomized_report.py --runs runs/exp27/sft/rand1000_aux_hl_3600 ... --json OUT
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from pushcut.common.stats import wilson_interval

EVAL = re.compile(r"eval_click_bell_(?P<preset>[a-z_]+)_val\.json")
PROBE_ROWS = {"vision_tokens": "(a) vision tokens", "action_slots_last_layer": "(b) action slots, after layer 4",
              "decoded_tcp": "(c) decoded actions (tool-centre points)"}  # fmt: skip


def evaluations(checkpoint: Path) -> dict[str, Any]:
    found = {}
    for path in sorted(checkpoint.glob("eval_click_bell_*_val.json")):
        match = EVAL.fullmatch(path.name)
        if match:
            result = json.loads(path.read_text())
            k, n = result["successes"], result["episodes"]
            found[match["preset"]] = {"successes": k, "episodes": n, "wilson_95": list(wilson_interval(k, n))}
    return found


def probes(checkpoint: Path) -> dict[str, Any]:
    found = {}
    for path in sorted(checkpoint.glob("probe_click_bell_*.json")):
        result = json.loads(path.read_text())
        rows = {row["representation"]: row for row in result["rows"]}
        found[path.stem.removeprefix("probe_click_bell_")] = {
            **{key: {"median_cm": rows[name]["median_cm"], "side_accuracy": rows[name]["side_accuracy"]}
               for key, name in PROBE_ROWS.items() if name in rows},
            "moving_arm_accuracy": result["moving_arm_accuracy"],
        }  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="SFT run folders (RUN/checkpoints/step_*)")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    runs = {}
    for run in args.runs:
        latest = run / "latest" / "pushcut_checkpoint.json"
        config = json.loads(latest.read_text()) if latest.exists() else {}
        world = config.get("extra", {}).get("world", {})
        steps = sorted(run.glob("checkpoints/step_*"), key=lambda p: int(p.name.split("_")[1]))
        runs[run.name] = {"trained_on": world.get("randomization"), "checkpoints": {
            p.name: {"validation": evaluations(p), "probes": probes(p)} for p in steps}}  # fmt: skip
        for name, checkpoint in runs[run.name]["checkpoints"].items():
            evals = checkpoint["validation"].items()
            cells = ", ".join(f"{preset} {e['successes']}/{e['episodes']}" for preset, e in evals)
            print(f"{run.name} {name}: {cells}")
    result = {"experiment": "click_bell SFT on randomised vs clean demonstrations: validation, factors, probes",
              "command": "bash scripts/experiments/randomized_results.sh (demos, sft, factors); pushcut train probe",
              "validation_seeds": [1_000_000, 1_000_099], "step_limit": 48, "greedy": True,
              "randomization": "randomized", "runs": runs}  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
