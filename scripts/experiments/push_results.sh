#!/usr/bin/env bash
# Issue 27 §4: result 2 (move_can_pot) rerun on the changed task (the can at RoboTwin's friction 0.5, where a push can
# succeed), then GRPO seeds 0 and 1 with `rollout/push_fraction` per step. One stage per argument:
#   bash scripts/experiments/push_results.sh demos        # 100 grasp-expert demonstrations (the default strategy)
#   bash scripts/experiments/push_results.sh sft          # SFT (small preset, aux loss, HL-Gauss, 1,200 steps), saved
#                                                         # every 400 steps, each evaluated on the validation seeds
#   bash scripts/experiments/push_results.sh grpo SEED    # GRPO from step 1,200 with result 1's recipe (T 0.7, cosine
#                                                         # lr 5e-5, idle arm masked), GRPO_STEPS (40) steps;
#                                                         # GRPO_WARMUP=N: N steps of linear lr warm-up (run *_warmN_*)
#   bash scripts/experiments/push_results.sh test CKPT    # greedy on the 200 test seeds (2,000,000+), once
#   bash scripts/experiments/push_results.sh report [JSON] # push fractions per step, strategies, paired tests
#                                                         # (and all of it as JSON, e.g. docs/results/move_can_pot_push.json)
# Validation seeds 1,000,000+ (100) choose, test seeds 2,000,000+ (200) claim (issue 27 §0); step limit 110.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export MUJOCO_GL=${MUJOCO_GL:-osmesa}
R=${R:-runs/exp27_push}
WORKERS=${WORKERS:-2}
DEMOS=$R/demos/move_can_pot
SFT=$R/sft/mcp100_aux_hl
START=$SFT/checkpoints/step_1200
ENV='{"step_limit": 110}'

eval_on() {  # checkpoint, seed start, episodes, tag: greedy, step limit 110, per-seed outcomes and strategies as JSON
  local out="$1/eval_move_can_pot_$4.json"
  if [ ! -s "$out" ]; then
    pushcut eval sim --checkpoint "$1" --task move_can_pot --episodes "$3" --workers "$WORKERS" --step-limit 110 \
      --seed-start "$2" --json > "$out.tmp"
    mv "$out.tmp" "$out"
  fi
  python -c "import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[1], r['successes'], '/', r['episodes'],
    r['strategies'])" "$out"
}

case "${1:-}" in
  demos) [ -e "$DEMOS/index.json" ] || pushcut sim demo --task move_can_pot --episodes 100 --out "$DEMOS" \
           --workers "$WORKERS" ;;
  sft)
    args=(--data "$DEMOS" --out "$SFT" --preset small --aux-position-weight 1.0 --label-sigma 1.5 --max-steps 1200
          --save-every 400 --warmup-steps 50 --num-workers 1)
    if [ -e "$SFT/latest" ] && [ ! -e "$START" ]; then pushcut train sft "${args[@]}" --resume
    elif [ ! -e "$START" ]; then pushcut train sft "${args[@]}"; fi
    for ckpt in "$SFT"/checkpoints/step_*; do eval_on "$ckpt" 1000000 100 val; done ;;
  grpo)
    out=$R/grpo/mcp_T0.7_cosine${GRPO_WARMUP:+_warm$GRPO_WARMUP}_s$2
    args=(--init "$START" --task move_can_pot --steps "${GRPO_STEPS:-40}" --val-every 10 --val-episodes 100
          --lr 5e-5 --set mini_batches=4 --set "env_overrides=$ENV" --seed "$2" --temperature 0.7
          --set mask_idle_arm=true --set lr_schedule=cosine --set "lr_warmup_steps=${GRPO_WARMUP:-0}"
          --env-workers "$WORKERS")
    if [ -e "$out/latest" ]; then pushcut train grpo "${args[@]}" --out "$out" --resume
    else pushcut train grpo "${args[@]}" --out "$out"; fi ;;
  test) eval_on "$2" 2000000 200 test ;;
  report)
    python - "$R" "${2:-}" <<'PY'
import json, sys
from pathlib import Path
from pushcut.train.evaluate import compare_paired
runs = Path(sys.argv[1])
start = json.loads((runs / "sft/mcp100_aux_hl/checkpoints/step_1200/eval_move_can_pot_test.json").read_text())
print("start:", start["successes"], "/", start["episodes"], start["strategies"])
report = {"task": "move_can_pot", "test_seeds": "2,000,000+", "step_limit": 110, "start": {
    "checkpoint": start["checkpoint"], "successes": start["successes"], "episodes": start["episodes"],
    "strategies": start["strategies"], "per_seed": start["per_seed"]}, "grpo": []}
for run in sorted((runs / "grpo").glob("mcp_*_s*")):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    push = [r["rollout/push_fraction"] for r in rows if "rollout/push_fraction" in r]
    success = [r["rollout/success_rate"] for r in rows if "rollout/success_rate" in r]
    val = [(r["step"], r["val/success_rate"]) for r in rows if "val/success_rate" in r]
    kl = [r["actor/approx_kl"] for r in rows if "actor/approx_kl" in r]
    print(run.name, "push_fraction per step:", push)
    print(run.name, "sampled success per step:", [round(s, 2) for s in success])
    print(run.name, "validation:", val)
    print(run.name, "approx_kl per step:", [float(f"{k:.2g}") for k in kl])
    test = run / f"checkpoints/step_{len(push)}/eval_move_can_pot_test.json"
    if test.exists():
        final = json.loads(test.read_text())
        c = compare_paired(start["per_seed"], final["per_seed"])
        print(run.name, "test:", final["successes"], "/", final["episodes"], final["strategies"],
              f"vs start {c.gain_points:+.1f} points ({c.only_b} / {c.only_a}, p = {c.p:.2g})")
    report["grpo"].append({"run": run.name, "push_fraction_per_step": push, "sampled_success_per_step": success,
                           "approx_kl_per_step": kl,
                           "validation": val, "test": None if not test.exists() else {
                               "checkpoint": final["checkpoint"], "successes": final["successes"],
                               "episodes": final["episodes"], "strategies": final["strategies"],
                               "vs_start": {"gain_points": c.gain_points, "only_grpo": c.only_b,
                                            "only_start": c.only_a, "p": c.p},
                               "per_seed": final["per_seed"]}})
if sys.argv[2]:
    Path(sys.argv[2]).write_text(json.dumps(report, indent=1) + "\n")
    print("wrote", sys.argv[2])
PY
    ;;
  *) sed -n 2,12p "$0"; exit 2 ;;
esac
