#!/usr/bin/env bash
# The test suite from nothing: set-up (idempotent), the wheel checks (scripts/test_wheel.sh: the wheel installed in
# fresh virtual environments, pushcut[robot] alone and every extra; about 7 minutes on 2 cores), then pytest.
# Extra arguments go to pytest; with them the wheel checks run only if PUSHCUT_WHEEL_CHECK=1 (=0 skips them always).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export MUJOCO_GL="${MUJOCO_GL:-osmesa}"
wheel_check="${PUSHCUT_WHEEL_CHECK:-$([ $# -eq 0 ] && echo 1 || echo 0)}"
wheel_status=0
if [ "$wheel_check" = 1 ]; then
  bash scripts/test_wheel.sh || wheel_status=$?
fi
status=0
.venv/bin/python -m pytest -q "$@" || status=$?
if [ "$wheel_status" != 0 ]; then
  echo "test.sh: the wheel checks failed (above: test_wheel: FAILED)" >&2
  exit "$wheel_status"
fi
exit "$status"
