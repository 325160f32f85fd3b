#!/usr/bin/env bash
# Issue 26 B: the physics gap between MuJoCo and SAPIEN, measured by replaying MuJoCo expert demonstrations open loop
# (same seed, same recorded actions) in SAPIEN, with MuJoCo itself as the control (it must reproduce ~100 %).
#   bash scripts/experiments/sapien_replay.sh demos    # 20 MuJoCo demos per task into $D (resumes)
#   bash scripts/experiments/sapien_replay.sh replay   # replay them in MuJoCo and in SAPIEN; JSON next to the demos
#   bash scripts/experiments/sapien_replay.sh          # both
# Images do not take part in a replay, so the demos are rendered small (64x48) to save time; the physics is the same.
# On a shared machine every stage runs under the CPU lock, at low priority, one thread per process.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .venv/bin/activate
export MUJOCO_GL=${MUJOCO_GL:-osmesa}
D=${D:-/tmp/replay_demos}
EPISODES=${EPISODES:-20}
TASKS=${TASKS:-"click_bell handover_block move_can_pot pick_dual_bottles place_a2b_left stack_bowls_two"}
RUN=(flock /tmp/pushcut-cpu.lock nice -n 19 env OMP_NUM_THREADS=1)

demos() {
  for task in $TASKS; do
    "${RUN[@]}" pushcut sim demo --task "$task" --episodes "$EPISODES" --out "$D/$task" --workers 1 \
      --image-width 64 --image-height 48 --json > "$D/$task.demo.json.tmp"
    mv "$D/$task.demo.json.tmp" "$D/$task.demo.json"
  done
}

replay() {
  local data=()
  for task in $TASKS; do data+=(--data "$D/$task"); done
  echo "commit $(git rev-parse --short HEAD)"
  for sim in mujoco sapien; do
    "${RUN[@]}" pushcut sim replay "${data[@]}" --sim "$sim" --json-out "$D/replay_$sim.json"
  done
}

mkdir -p "$D"
case "${1:-all}" in
  demos) demos ;;
  replay) replay ;;
  all) demos; replay ;;
  *) echo "usage: $0 [demos|replay|all]" >&2; exit 2 ;;
esac
