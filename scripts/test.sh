#!/usr/bin/env bash
# The test suite from nothing: set-up (idempotent), then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL="${MUJOCO_GL:-osmesa}"
exec .venv/bin/python -m pytest -q "$@"
