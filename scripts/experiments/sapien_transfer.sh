#!/usr/bin/env bash
# Issue 26 §4: the click_bell SFT start and the GRPO runs' final checkpoints (trained in MuJoCo, issue 27 §0), greedy,
# step limit 48, on the 200 test seeds in MuJoCo and in SAPIEN; then the transfer table, and a short GRPO run in SAPIEN.
#   bash scripts/experiments/sapien_transfer.sh eval     # evaluations (kept beside each checkpoint; resumable)
#   bash scripts/experiments/sapien_transfer.sh report   # docs/results/click_bell_sapien_transfer.json + table
#   bash scripts/experiments/sapien_transfer.sh grpo     # GRPO trained in SAPIEN from the same start, 10 steps
#   SAPIEN_GRPO_LR=2e-5 bash scripts/experiments/sapien_transfer.sh grpo   # the same at lr 2e-5 (5e-5: the recipe's)
# R: the issue-27 §0 run folder (scripts/experiments/execution_results.sh writes it).
# Issue 27 §2, the randomised-trained checkpoints on randomised scenes in both engines (`eval` and `report`):
#   PRESET=randomized START=runs/exp27/sft/NAME/checkpoints/step_1800 GRPO_RUN=runs/exp27/grpo/NAME_step_1800_lr2e-5 \
#     JSON=docs/results/click_bell_randomized_sapien_transfer.json bash scripts/experiments/sapien_transfer.sh eval
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export MUJOCO_GL=${MUJOCO_GL:-osmesa}
R=${R:-runs/exp25}
PRESET=${PRESET:-clean}  # the scenes of both engines' evaluations (randomized: the randomised-trained checkpoints)
START=${START:-$R/sft/small100_aux_hl_1800/checkpoints/step_1800}
GRPO_RUN=${GRPO_RUN:-$R/grpo/masked_T0.7_cosine}  # the GRPO runs are ${GRPO_RUN}_s<seed>, compared at step 80
GRPO_SEEDS=${GRPO_SEEDS:-0 1 2}
JSON=${JSON:-docs/results/click_bell_sapien_transfer.json}
TEST_SEEDS=2000000
TAG=$([ "$PRESET" = clean ] || echo "_$PRESET")  # eval file names: clean as issue 26 wrote them

ckpts() { echo "$START"; for s in $GRPO_SEEDS; do echo "${GRPO_RUN}_s$s/checkpoints/step_80"; done; }

eval_in() {  # engine checkpoint: 200 test seeds, greedy, step limit 48
  local engine=$1 ckpt=$2 out
  out=$ckpt/eval_click_bell${TAG}_test$([ "$engine" = mujoco ] || echo "_$engine").json
  if [ ! -s "$out" ]; then
    pushcut eval sim --checkpoint "$ckpt" --task click_bell --episodes 200 --workers "${WORKERS:-2}" --step-limit 48 \
      --seed-start $TEST_SEEDS --sim "$engine" --randomization "$PRESET" --json > "$out.tmp"
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}

case "${1:-}" in
  eval) for ckpt in $(ckpts); do for engine in mujoco sapien; do eval_in $engine "$ckpt"; done; done ;;
  report)
    names=(start); for s in $GRPO_SEEDS; do names+=("grpo_s$s"); done
    mapfile -t cks < <(ckpts)
    experiment="click_bell: SFT start and GRPO trained in MuJoCo, run in MuJoCo and SAPIEN"
    [ "$PRESET" = clean ] || experiment="$experiment, both on $PRESET scenes (trained on them)"
    python scripts/experiments/transfer_report.py --names "${names[@]}" --checkpoints "${cks[@]}" \
      --mujoco $(for c in "${cks[@]}"; do echo "$c/eval_click_bell${TAG}_test.json"; done) \
      --sapien $(for c in "${cks[@]}"; do echo "$c/eval_click_bell${TAG}_test_sapien.json"; done) \
      --randomization "$PRESET" --experiment "$experiment" --frozen-commit "${FROZEN_COMMIT:-}" --json "$JSON" ;;
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
