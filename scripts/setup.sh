#!/usr/bin/env bash
# Set up everything from nothing, idempotently: Debian packages (only those missing), .venv, torch==2.13.0 (CPU
# wheel, installed before anything that depends on torch), then pushcut editable with all extras.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium + chromium-driver: the dashboard's real-browser test (tests/test_dashboard_browser.py).
APT_PACKAGES=(libosmesa6 libegl1 libgl1 libglib2.0-0 libusb-1.0-0 chromium chromium-driver)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
fresh_venv=0
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
  fresh_venv=1
fi
# pip, quiet; on failure its whole log is shown (without the index's harmless "Location ... ignored" lines).
pip_install() {
  local log=.venv/pip-install.log
  if ! .venv/bin/python -m pip install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2
    echo "setup: pip install $* failed (log: $log)" >&2
    exit 1
  fi
}
[ "$fresh_venv" = 1 ] && pip_install --upgrade pip

if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "setup: installing torch==2.13.0 (CPU)"
  pip_install torch==2.13.0
fi

# Reinstall the project only when its dependency list changed.
stamp=.venv/.pushcut-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! .venv/bin/python -c "import pushcut.sim" 2>/dev/null; then
  echo "setup: installing pushcut[all] (editable)"
  pip_install -e ".[all]"
  .venv/bin/python -c "import pushcut.sim, mujoco, torch" # fail loudly if the install did not work
  echo "$want" > "$stamp"
fi

# timm (OpenVLA-OFT's vision towers) without its dependencies: its torchvision requirement would install a CUDA
# wheel that cannot import beside the CPU torch (pyproject.toml, train/openvla/timm_import.py).
if ! .venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('timm') is None)"; then
  echo "setup: installing timm (--no-deps)"
  pip_install --no-deps "timm>=1.0.29,<1.1"
fi

# SAPIEN's share (issue 26): the Vulkan device its renderer needs (Mesa >= 24's lavapipe) and one cv2 (headless).
bash scripts/setup_sapien.sh
