#!/usr/bin/env bash
# Issue 26 §4: the click_bell SFT start and the GRPO runs' final checkpoints (trained in MuJoCo, issue 27 §0), greedy,
# step limit 48, on the 200 test seeds in MuJoCo and in SAPIEN; then the transfer table, and a short GRPO run in SAPIEN.
#   bash scripts/experiments/sapien_transfer.sh eval     # evaluations (kept beside each checkpoint; resumable)
#   bash scripts/experiments/sapien_transfer.sh report   # docs/results/click_bell_sapien_transfer.json + table
#   bash scripts/experiments/sapien_transfer.sh grpo     # GRPO trained in SAPIEN from the same start, 10 steps
#   SAPIEN_GRPO_LR=2e-5 bash scripts/experiments/sapien_transfer.sh grpo   # the same at lr 2e-5 (5e-5: the recipe's)
# R: the issue-27 §0 run folder (scripts/experiments/execution_results.sh writes it).
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export MUJOCO_GL=${MUJOCO_GL:-osmesa}
R=${R:-runs/exp25}
START=$R/sft/small100_aux_hl_1800/checkpoints/step_1800
GRPO_SEEDS=${GRPO_SEEDS:-0 1 2}
TEST_SEEDS=2000000

ckpts() { echo "$START"; for s in $GRPO_SEEDS; do echo "$R/grpo/masked_T0.7_cosine_s$s/checkpoints/step_80"; done; }

eval_in() {  # engine checkpoint: 200 test seeds, greedy, step limit 48
  local engine=$1 ckpt=$2 out
  out=$ckpt/eval_click_bell_test$([ "$engine" = mujoco ] || echo "_$engine").json
  if [ ! -s "$out" ]; then
    pushcut eval sim --checkpoint "$ckpt" --task click_bell --episodes 200 --workers 2 --step-limit 48 \
      --seed-start $TEST_SEEDS --sim "$engine" --json > "$out.tmp"
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}

case "${1:-}" in
  eval) for ckpt in $(ckpts); do for engine in mujoco sapien; do eval_in $engine "$ckpt"; done; done ;;
  report)
    names=(start); for s in $GRPO_SEEDS; do names+=("grpo_s$s"); done
    mapfile -t cks < <(ckpts)
    python scripts/experiments/transfer_report.py --names "${names[@]}" --checkpoints "${cks[@]}" \
      --mujoco $(for c in "${cks[@]}"; do echo "$c/eval_click_bell_test.json"; done) \
      --sapien $(for c in "${cks[@]}"; do echo "$c/eval_click_bell_test_sapien.json"; done) \
      --frozen-commit "${FROZEN_COMMIT:-}" --json docs/results/click_bell_sapien_transfer.json ;;
  grpo)  # the trainer in SAPIEN: the issue-27 §0 recipe, 10 steps, validation at the end only
    lr=${SAPIEN_GRPO_LR:-5e-5}
    out=$R/grpo_sapien/masked_T0.7_cosine$([ "$lr" = 5e-5 ] || echo "_lr$lr")_s0
    args=(--init "$START" --task click_bell --sim sapien --steps "${SAPIEN_GRPO_STEPS:-10}" --val-every 10
          --val-episodes 50 --lr "$lr" --set mini_batches=4 --set 'env_overrides={"step_limit": 48}' --seed 0
          --temperature 0.7 --set mask_idle_arm=true --set lr_schedule=cosine)
    if [ -e "$out/latest" ]; then pushcut train grpo "${args[@]}" --out "$out" --resume
    else pushcut train grpo "${args[@]}" --out "$out"; fi ;;
  *) sed -n 2,7p "$0"; exit 2 ;;
esac
