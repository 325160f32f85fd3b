#!/usr/bin/env bash
# Reproduces the SFT results of docs/results.md: click_bell success vs demonstration budget (25 / 100 / 400 demos at
# equal compute), no crop augmentation, and move_can_pot. Every evaluation is greedy on 100 held-out
# seeds (1,000,000..). About 80 minutes on 2 CPU cores; finished runs and evaluations are skipped on a rerun.
# Usage: bash scripts/experiments/sft_results.sh [OUT_DIR] [start]   (default runs/exp; "start": only the demos and
# the cb100_a run that GRPO starts from, about 16 minutes)
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup.sh
source .venv/bin/activate
R=${1:-runs/exp}
EPISODES=100

sft() {  # name, args...
  local name=$1; shift
  [ -e "$R/sft/$name/latest" ] || pushcut train sft --out "$R/sft/$name" --num-workers 1 --warmup-steps 50 "$@"
}
evaluate() {  # run name, task: every saved checkpoint of the run
  local name=$1 task=$2
  for ckpt in "$R"/sft/"$name"/checkpoints/step_*; do
    local out="$R/eval/${name}_$(basename "$ckpt").json"
    mkdir -p "$R/eval"
    [ -s "$out" ] || pushcut eval sim --checkpoint "$ckpt" --task "$task" --episodes $EPISODES --workers 2 --json > "$out"
    python -c "import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[1], r['successes'], '/', r['episodes'])" "$out"
  done
}

pushcut sim demo --task click_bell --episodes 400 --out "$R/demos/click_bell" --workers 2
CB="--data $R/demos/click_bell --max-steps 600 --save-every 200"
sft cb100_a $CB --max-episodes 100 && evaluate cb100_a click_bell
[ "${2:-all}" = start ] && exit 0
sft cb25 $CB --max-episodes 25 && evaluate cb25 click_bell
sft cb400 $CB --max-episodes 400 && evaluate cb400 click_bell

pushcut sim demo --task move_can_pot --episodes 100 --out "$R/demos/move_can_pot" --workers 2
sft mcp100 --data "$R/demos/move_can_pot" --max-steps 1200 --save-every 400 && evaluate mcp100 move_can_pot

sft cb100_nocrop $CB --max-episodes 100 --no-augment && evaluate cb100_nocrop click_bell
