#!/usr/bin/env bash
# Issue 27 §1: click_bell trained on randomised scenes (the `randomized` preset on every stage), one stage per argument:
#   bash scripts/experiments/randomized_results.sh demos [N]      # N (1000) expert demonstrations on randomised scenes
#   bash scripts/experiments/randomized_results.sh sft NAME STEPS [ARGS]  # SFT on them (small preset, aux + HL-Gauss),
#                                                                 # saved every STEPS/6, each evaluated on validation
#   bash scripts/experiments/randomized_results.sh localiser NAME STEPS [ARGS]  # the encoder trained to find the bell
#                                                                 # (train/localiser.py), scored on 100 held-out demos;
#                                                                 # SFT starts from it with --vision-init R/loc/NAME
#   bash scripts/experiments/randomized_results.sh val CKPT       # greedy, 100 randomised validation seeds (1,000,000+)
#   bash scripts/experiments/randomized_results.sh factors CKPT   # the same, one randomisation factor at a time
#   bash scripts/experiments/randomized_results.sh test CKPT      # greedy, 200 randomised test seeds (2,000,000+), once
#   START=CKPT bash scripts/experiments/randomized_results.sh grpo SEED  # GRPO on randomised scenes from START, the
#                                                                 # clean headline's recipe (T 0.7, cosine, idle arm masked)
#   START=CKPT bash scripts/experiments/randomized_results.sh cont SEED  # SFT continued from START (the comparison arm)
#   START=CKPT bash scripts/experiments/randomized_results.sh plateau SEED  # the same, each save validated: START is at
#                                                                 # its plateau unless the last save's validation beats
#                                                                 # START's by more than MARGIN (5) points
#   START=CKPT bash scripts/experiments/randomized_results.sh verdict SEED...  # the stricter check, over several
#                                                                 # continuation seeds (cont SEED first): pooled over
#                                                                 # them, on VAL_EPISODES (300) validation seeds
# VAL_EPISODES=N sets the validation episodes (100; verdict 300); files are tagged valN when N is not 100.
# PRESET=clean runs the same stages on clean scenes (the control: more demonstrations without randomisation).
# Checkpoints are chosen on validation seeds only; test seeds are evaluated once per claimed checkpoint. Budgets are in
# steps (each run logs its wall time); every stage resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export MUJOCO_GL=${MUJOCO_GL:-osmesa}
R=${R:-runs/exp27}
PRESET=${PRESET:-randomized}
DEMOS=$R/demos/click_bell_$PRESET
WORKERS=${WORKERS:-2}
VERDICT_EPISODES=${VAL_EPISODES:-300}  # the pooled plateau verdict validates on 300 seeds unless told otherwise
VAL_EPISODES=${VAL_EPISODES:-100}
VAL_TAG=val$([ "$VAL_EPISODES" = 100 ] || echo "$VAL_EPISODES")

eval_on() {  # checkpoint, seed start, episodes, tag[, preset]: greedy, step limit 48, per-seed outcomes as JSON
  local ckpt=$1 start=$2 n=$3 tag=$4 preset=${5:-$PRESET}
  local out="$1/eval_click_bell_${preset}_$4.json"
  if [ ! -s "$out" ]; then
    pushcut eval sim --checkpoint "$ckpt" --task click_bell --episodes "$n" --workers "$WORKERS" --step-limit 48 \
      --seed-start "$start" --randomization "$preset" --json > "$out.tmp"
    mv "$out.tmp" "$out"
  fi
  python -c "import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[1], r['successes'], '/', r['episodes'])" "$out"
}

continued_dir() {  # seed: where SFT continued from START with that seed writes
  echo "$R/sft_continued/$(basename "$(dirname "$(dirname "$START")")")_$(basename "$START")_s$1"
}

continue_sft() {  # seed: CONT_STEPS (1800) more SFT steps from START with its own recipe's switches (SFT_ARGS)
  local out args
  out=$(continued_dir "$1")
  args=(--init "$START" --data "$DEMOS" --out "$out" --max-steps "${CONT_STEPS:-1800}" --save-every 600
        --warmup-steps 50 --num-workers 1 --preset small --aux-position-weight 1.0 --label-sigma 1.5 --seed "$1"
        ${SFT_ARGS:-})
  if [ -e "$out/checkpoints/step_${CONT_STEPS:-1800}" ]; then echo "$out: done"
  elif [ -e "$out/latest" ]; then pushcut train sft "${args[@]}" --resume
  else pushcut train sft "${args[@]}"; fi
}

plateau_verdict() {  # episodes, seed...: START vs each seed's continuation (last save) on validation seeds, pooled;
                     # START is at its plateau unless the mean rise exceeds MARGIN (5) points
  local n=$1 tag seed last files=()
  shift
  tag=val$([ "$n" = 100 ] || echo "$n")
  eval_on "$START" 1000000 "$n" "$tag"
  for seed in "$@"; do
    last=$(continued_dir "$seed")/checkpoints/step_${CONT_STEPS:-1800}
    [ -e "$last" ] || { echo "verdict: $last is missing: run 'cont $seed' first" >&2; exit 2; }
    eval_on "$last" 1000000 "$n" "$tag"
    files+=("$last/eval_click_bell_${PRESET}_$tag.json")
  done
  python - "${MARGIN:-5}" "$START/eval_click_bell_${PRESET}_$tag.json" "${files[@]}" <<'PY'
import json, sys
from pushcut.train.evaluate import compare_paired, mcnemar_exact_p
margin, start_path, *cont_paths = sys.argv[1:]
start = json.load(open(start_path))["per_seed"]
only_cont = only_start = 0
rises = []
for path in cont_paths:
    c = compare_paired(start, json.load(open(path))["per_seed"])
    rises.append((c.successes_b - c.successes_a) * 100 / c.n)
    only_cont, only_start = only_cont + c.only_b, only_start + c.only_a
    print(f"{path}: start {c.successes_a} / {c.n}, continued {c.successes_b} ({rises[-1]:+.1f} points, "
          f"{c.only_b} / {c.only_a}, p = {c.p:.2g})")
mean_rise = sum(rises) / len(rises)
verdict = "NOT at its plateau" if mean_rise > float(margin) else "at its plateau"
pooled_p = mcnemar_exact_p(only_start, only_cont)
print(f"pooled over {len(rises)} seed(s): {only_cont} / {only_start} (p = {pooled_p:.2g}), mean {mean_rise:+.1f} "
      f"points: the start is {verdict} (margin {margin} points)")
PY
}

case "${1:-}" in
  demos)
    n=${2:-1000}
    [ -e "$DEMOS/index.json" ] || pushcut sim demo --task click_bell --episodes "$n" --randomization "$PRESET" \
      --out "$DEMOS" --workers "$WORKERS" ;;
  sft)  # sft NAME MAX_STEPS [extra train-sft args]: saved every MAX_STEPS/6 steps, each evaluated on validation seeds
    name=$2 n=$3; shift 3
    out=$R/sft/$name
    args=(--data "$DEMOS" --out "$out" --max-steps "$n" --save-every $((n / 6)) --warmup-steps 50 --num-workers 1
          --preset small --aux-position-weight 1.0 --label-sigma 1.5 "$@")
    if [ -e "$out/latest" ] && [ ! -e "$out/checkpoints/step_$n" ]; then pushcut train sft "${args[@]}" --resume
    elif [ ! -e "$out/checkpoints/step_$n" ]; then pushcut train sft "${args[@]}"; fi
    for ckpt in "$out"/checkpoints/step_*; do eval_on "$ckpt" 1000000 "$VAL_EPISODES" "$VAL_TAG"; done ;;
  localiser)
    name=$2 n=$3; shift 3
    [ -s "$R/loc/$name/localiser.json" ] || pushcut train localiser --data "$DEMOS" --out "$R/loc/$name" --steps "$n" \
      --holdout-episodes 100 "$@" > /dev/null
    python -c "import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[1], 'held-out cm: all frames',
      r['all_frames_cm'], 'first frames', r['first_frame_cm'])" "$R/loc/$name/localiser.json" ;;
  grpo)  # GRPO_STEPS (80) steps; rollouts and validation (100 seeds 1,000,000+) on $PRESET scenes
    out=$R/grpo/$(basename "$(dirname "$(dirname "$START")")")_$(basename "$START")${GRPO_LR:+_lr$GRPO_LR}_s$2
    env="{\"step_limit\": 48, \"randomization\": \"$PRESET\"}"
    args=(--init "$START" --task click_bell --steps "${GRPO_STEPS:-80}" --val-every 10 --val-episodes 100
          --lr "${GRPO_LR:-5e-5}" --set mini_batches=4 --set "env_overrides=$env" --seed "$2" --temperature 0.7
          --set mask_idle_arm=true --set lr_schedule=cosine --env-workers "$WORKERS")
    if [ -e "$out/latest" ]; then pushcut train grpo "${args[@]}" --out "$out" --resume
    else pushcut train grpo "${args[@]}" --out "$out"; fi ;;
  cont) continue_sft "$2" ;;
  plateau)
    continue_sft "$2"
    for ckpt in "$(continued_dir "$2")"/checkpoints/step_*; do eval_on "$ckpt" 1000000 "$VAL_EPISODES" "$VAL_TAG"; done
    plateau_verdict "$VAL_EPISODES" "$2" ;;
  verdict)  # verdict SEED...: the stricter check, pooled over several continuation seeds, on 300 validation seeds
    shift
    [ $# -ge 1 ] || { echo "verdict: name the continuation seeds (run 'cont SEED' for each first)" >&2; exit 2; }
    plateau_verdict "$VERDICT_EPISODES" "$@" ;;
  val) eval_on "$2" 1000000 "$VAL_EPISODES" "$VAL_TAG" ;;
  factors)
    for preset in clean object_colors table_texture lighting table_height distractors head_camera_jitter randomized; do
      eval_on "$2" 1000000 100 val "$preset"
    done ;;
  test) eval_on "$2" 2000000 200 test ;;
  *) sed -n 2,20p "$0"; exit 2 ;;
esac
