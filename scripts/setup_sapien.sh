#!/usr/bin/env bash
# SAPIEN's share of the set-up (issue 26), called by scripts/setup.sh after pushcut[all] is installed; idempotent and
# quiet when nothing is missing.
#   1. A Vulkan device for SAPIEN's renderer. On a CPU-only machine that is Mesa's lavapipe (`mesa-vulkan-drivers`),
#      and SAPIEN refuses the lavapipe of Mesa < 24 ("failed to find a rendering device"; Debian 12 ships 22.3). So on
#      bookworm the package comes from bookworm-backports (Mesa 25.x), whose apt source is added if absent. pushcut
#      then finds the ICD file itself (sim/sapien/device.py): nothing here sets Vulkan variables.
#   2. One cv2. SAPIEN's wheel requires `opencv-python` (the GUI build), pushcut uses `opencv-python-headless`; both
#      install the same `cv2` folder, so whichever pip wrote last wins and uninstalling either breaks the other.
#      SAPIEN imports cv2 only for its simulated stereo depth sensor, which headless serves; so the GUI build is
#      removed and the headless build reinstalled over it (pip check will name opencv-python as missing for sapien:
#      that is deliberate). tests/test_sapien_setup.py proves `import cv2` works and is the headless build.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
MIN_MESA=24

mesa_major() {  # the installed mesa-vulkan-drivers' major version, 0 if none
  local version
  version=$(dpkg-query -W -f='${Status} ${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [[ "$version" == "install ok installed "* ]] || { echo 0; return; }
  version=${version#install ok installed }
  version=${version#*:}  # an epoch, if any
  echo "${version%%.*}"
}

if command -v dpkg-query >/dev/null && [ "$(mesa_major)" -lt "$MIN_MESA" ]; then
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  package=mesa-vulkan-drivers
  if [ "$codename" = bookworm ]; then
    # Only this package (and the libdrm it needs) from backports: the GL stack that MuJoCo's osmesa uses stays.
    package=mesa-vulkan-drivers/bookworm-backports
    if ! grep -qs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
        /etc/apt/sources.list.d/*.sources; then
      echo "setup: adding the bookworm-backports apt source (Mesa >= $MIN_MESA for SAPIEN's Vulkan renderer)"
      printf '%s\n' "Types: deb" "URIs: http://deb.debian.org/debian" "Suites: bookworm-backports" \
        "Components: main" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" \
        | $SUDO tee /etc/apt/sources.list.d/pushcut-bookworm-backports.sources >/dev/null
    fi
  fi
  echo "setup: installing $package (lavapipe, SAPIEN's CPU Vulkan device)"
  log=$(mktemp)
  if ! { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "$package" libvulkan1; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: installing $package failed" >&2
    exit 1
  fi
  rm -f "$log"
  if [ "$(mesa_major)" -lt "$MIN_MESA" ]; then
    echo "setup: mesa-vulkan-drivers $(mesa_major).x installed, SAPIEN needs >= $MIN_MESA" >&2
    exit 1
  fi
fi

# One cv2: the headless build, over whatever opencv-python wrote (see 2. above).
py=.venv/bin/python
gui_opencv=$("$py" -c "import importlib.metadata as m
try: print(m.version('opencv-python'))
except m.PackageNotFoundError: pass")
if [ -n "$gui_opencv" ]; then
  headless=$("$py" -c "import importlib.metadata as m; print(m.version('opencv-python-headless'))")
  echo "setup: replacing opencv-python $gui_opencv (SAPIEN's requirement) by opencv-python-headless $headless"
  log=.venv/pip-install.log
  if ! { "$py" -m pip uninstall -y -q opencv-python \
      && "$py" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall \
        "opencv-python-headless==$headless"; } >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" >&2
    echo "setup: settling opencv failed (log: $log)" >&2
    exit 1
  fi
fi
"$py" -c "import cv2, sapien" # fail loudly if either cannot be imported
