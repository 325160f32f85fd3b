#!/usr/bin/env bash
# OpenVLA-OFT on one GPU in well under 10 minutes (pushcut/bench/gpu_check.py): the 7B architecture with random
# weights written in the published layout and loaded back, a batched forward of 8 observations, a server round trip,
# one LoRA GRPO step with real rollouts of a sim task, then one GRPO step of the small preset with env workers as
# Ray actors and the learner on the GPU (its rollout / update split); prints the numbers (and OUT/gpu_check.json).
#
#   bash scripts/gpu_check.sh                     # on the GPU machine (needs ~20 GiB free disk for the weights)
#   bash scripts/gpu_check.sh --tiny              # the same steps on the tiny model on CPU (a dry run; the tests)
#   bash scripts/gpu_check.sh --no-ray            # without the Ray stage (skipped anyway where Ray is not installed)
#   bash scripts/gpu_check.sh --out /tmp/check --task click_bell --step-limit 50 --device cuda:0
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL="${MUJOCO_GL:-osmesa}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-$MUJOCO_GL}"
export PYTORCH_CUDA_ALLOC_CONF="${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}"
PYTHON=.venv/bin/python
[ -x "$PYTHON" ] || PYTHON=python3
exec "$PYTHON" -m pushcut.bench.gpu_check "$@"
