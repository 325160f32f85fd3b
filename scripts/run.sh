#!/usr/bin/env bash
# The main job on embedded defaults, from nothing: set-up (idempotent), then `pushcut quickstart`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL="${MUJOCO_GL:-osmesa}"
exec .venv/bin/pushcut quickstart "$@"
