"""SAPIEN's Vulkan device, found by pushcut itself; every SAPIEN import in pushcut goes through :func:`import_sapien`.

SAPIEN renders with Vulkan. A machine with a GPU has its vendor's driver; a CPU-only machine has Mesa's lavapipe,
which SAPIEN accepts from Mesa 24 on (Debian 12's own Mesa 22.3 is refused: "failed to find a rendering device";
scripts/setup_sapien.sh installs Mesa 25 from bookworm-backports). Before SAPIEN is imported, pushcut points the
Vulkan loader at the device, so that nothing depends on the shell's variables:

1. a user's own VK_DRIVER_FILES / VK_ICD_FILENAMES are kept as they are;
2. with a GPU (an NVIDIA ICD file, or a DRM render node under /dev/dri) the loader picks among all drivers;
3. otherwise the lavapipe ICD file (lvp_icd*.json) in the standard ICD folders becomes the only driver the loader
   reads, which also spares probing Mesa's hardware drivers for absent GPUs.

lavapipe rasterises on LP_NUM_THREADS threads (default: one per core). Unless set, pushcut gives each process half the
cores (at least one), so the 2-worker env pool fills a machine without oversubscribing it.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ICD_DIRS: tuple[str, ...] = ("/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d")
LOADER_VARIABLES: tuple[str, ...] = ("VK_DRIVER_FILES", "VK_ICD_FILENAMES")  # newer loaders read the first
FIX = (
    "install Mesa >= 24's lavapipe (Debian 12: `apt-get install mesa-vulkan-drivers/bookworm-backports`, which "
    "scripts/setup.sh does) or a GPU driver with Vulkan, or run with --sim mujoco"
)


class VulkanUnavailable(RuntimeError):
    """No Vulkan device SAPIEN can render with; the message is one line naming the fix."""


class SapienUnavailable(RuntimeError):
    """SAPIEN is not installed; the message is one line naming the fix."""


@dataclass(frozen=True)
class VulkanDevice:
    """How the device was chosen: ``source`` is "environment", "gpu" or "lavapipe"; ``icd`` the ICD file(s) the loader
    reads (None: the loader's own choice); ``render_threads`` lavapipe's threads (None: not set by pushcut)."""

    source: str
    icd: str | None
    render_threads: int | None
    summary: str = ""  # SAPIEN's device summary, once require_vulkan() has opened the device

    def describe(self) -> str:
        if self.icd is None:
            return "the Vulkan loader's choice of GPU driver"
        where = "set in the environment" if self.source == "environment" else "(lavapipe)"
        return f"Vulkan driver file {self.icd} {where}, {icd_api_version(self.icd)}"


def icd_files(dirs: tuple[str, ...] = ICD_DIRS) -> list[Path]:
    """The Vulkan ICD files installed, in folder order."""
    return [path for folder in dirs if Path(folder).is_dir() for path in sorted(Path(folder).glob("*.json"))]


def icd_api_version(icd: str) -> str:
    """The Vulkan version an ICD file declares (Mesa 22.3's lavapipe: 1.1.230, Mesa 25's: 1.4.305), as words."""
    try:
        return f"Vulkan {json.loads(Path(icd.split(os.pathsep)[0]).read_text())['ICD']['api_version']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "no readable ICD file"


def _has_gpu(files: list[Path], dri: Path) -> bool:
    return any("nvidia" in path.name.lower() for path in files) or any(dri.glob("renderD*"))


def default_render_threads() -> int:
    """Half the cores this process may run on, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // 2)


def configure_vulkan(
    env: MutableMapping[str, str] | None = None, dirs: tuple[str, ...] = ICD_DIRS, dri: Path = Path("/dev/dri")
) -> VulkanDevice:
    """Point the Vulkan loader at a device in ``env`` (default: this process's environment, before SAPIEN starts);
    raises VulkanUnavailable when there is none."""
    env = os.environ if env is None else env
    chosen = [env[name] for name in LOADER_VARIABLES if env.get(name)]
    if chosen:
        return VulkanDevice("environment", chosen[0], None)
    files = icd_files(dirs)
    if _has_gpu(files, dri):
        return VulkanDevice("gpu", None, None)
    lavapipe = [path for path in files if path.name.startswith("lvp_icd")]
    if not lavapipe:
        found = ", ".join(p.name for p in files) or "none"
        raise VulkanUnavailable(f"no Vulkan device for SAPIEN: no lavapipe ICD in {', '.join(dirs)} (ICD files: "
                                f"{found}); {FIX}")  # fmt: skip
    for name in LOADER_VARIABLES:
        env[name] = str(lavapipe[0])
    threads = int(env.setdefault("LP_NUM_THREADS", str(default_render_threads())))
    return VulkanDevice("lavapipe", str(lavapipe[0]), threads)


_device: VulkanDevice | None = None


def import_sapien() -> ModuleType:
    """``import sapien``, with the Vulkan loader configured first (once per process)."""
    global _device
    if _device is None:
        _device = configure_vulkan()
    try:
        import sapien
    except ImportError as error:
        fix = "pip install 'pushcut[sapien]' (scripts/setup.sh installs every extra) or run with --sim mujoco"
        raise SapienUnavailable(f"SAPIEN is not installed ({error}); {fix}") from error
    return sapien


def require_vulkan() -> VulkanDevice:
    """Open SAPIEN's render device now (cheap after the first call); raises VulkanUnavailable with the fix in one
    line when SAPIEN finds no device it can render with (e.g. Mesa < 24's lavapipe)."""
    global _device
    sapien = import_sapien()
    assert _device is not None
    if not _device.summary:
        try:
            sapien.render.RenderSystem()
        except RuntimeError as error:
            raise VulkanUnavailable(f"SAPIEN cannot render ({error} with {_device.describe()}); {FIX}") from error
        summary = sapien.render.get_device_summary().strip().splitlines()
        _device = VulkanDevice(_device.source, _device.icd, _device.render_threads, summary[0] if summary else "?")
    return _device
