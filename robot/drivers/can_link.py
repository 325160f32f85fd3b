"""What the operating system says about a CAN interface, read before piper_sdk opens it.

Sources (the same ones piper_sdk's own checks and its ``find_all_can_port.sh`` use):

- ``/sys/class/net/<if>/`` — existence, ``operstate``, ``flags`` (bit 0 = IFF_UP), ``type`` (280 = ARPHRD_CAN),
  and the ``device`` link, whose target's name is the adapter's USB interface (``3-1.4:1.0``, what
  ``ethtool -i <if>`` calls bus-info and ``can_muti_activate.sh`` maps to a name);
- ``ip -details -json link show <if>`` — the bit rate and the CAN controller state (ERROR-ACTIVE ... BUS-OFF),
  which sysfs does not expose.

Nothing here opens a socket or needs root. Tests point ``sysfs_root`` at a folder of their own and put a stand-in
``ip`` first on ``PATH``: the code path is the one a real machine runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

SYSFS_NET = Path("/sys/class/net")
PIPER_BITRATE = 1_000_000  # fixed by the arm (piper_sdk README)
ARPHRD_CAN = 280
IFF_UP = 0x1
IFNAMSIZ = 16  # the kernel's limit, with the terminating NUL
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


@dataclass(frozen=True)
class CanLink:
    """One interface as the system reports it; ``exists`` False leaves the other fields None."""

    name: str
    exists: bool
    up: bool = False
    operstate: str | None = None
    bitrate: int | None = None  # None: unknown (not a CAN interface, or `ip` unavailable)
    controller_state: str | None = None  # ERROR-ACTIVE, ERROR-WARNING, ERROR-PASSIVE, BUS-OFF, STOPPED
    usb_port: str | None = None  # the adapter's USB interface, e.g. "3-1.4:1.0"
    kind: str | None = None  # ip's info_kind: "can", "vcan", ...
    ip_error: str | None = None  # why `ip` could not say


def setup_command(name: str, bitrate: int = PIPER_BITRATE) -> str:
    """The command that brings ``name`` up at ``bitrate`` (an interface must be down to change its bit rate)."""
    return f"sudo ip link set {name} down && sudo ip link set {name} up type can bitrate {bitrate}"


def name_problem(name: str, socketcan: bool = True) -> str | None:
    """Why ``name`` cannot be a CAN interface name (a path, spaces, too long for the kernel), or None."""
    if not _NAME.match(name) or (socketcan and len(name) >= IFNAMSIZ):
        return (f"{name!r} is not a CAN interface name: expected a name such as can_left or can0 (letters, digits, "
                f"'_', '-', '.', ':'; at most {IFNAMSIZ - 1} characters)")  # fmt: skip
    return None


def link_problem(link: CanLink) -> tuple[str, str] | None:
    """(what is wrong, what to do) when ``link`` cannot carry a Piper: missing, down, another bit rate, bus-off."""
    setup = setup_command(link.name)
    if not link.exists:
        return (
            f"'{link.name}' does not exist",
            "plug in the USB-CAN adapter and name it (piper_sdk's "
            "can_activate.sh / can_muti_activate.sh), or give the right name with --can-left / --can-right",
        )
    if not link.up:
        return f"is {link.operstate or 'not up'}", setup
    if link.bitrate is not None and link.bitrate != PIPER_BITRATE:
        return f"is up at {link.bitrate} bit/s, the Piper needs {PIPER_BITRATE}", setup
    if link.controller_state == "BUS-OFF":
        return (
            "the CAN controller is BUS-OFF (wiring, termination, or a wrong bit rate)",
            f"check the cable and the 120 ohm termination, then {setup}",
        )
    return None


def can_interfaces(sysfs_root: Path = SYSFS_NET) -> list[str]:
    """Names of the CAN interfaces present (type ARPHRD_CAN, or 'can' in the name when the type is unreadable)."""
    if not sysfs_root.is_dir():
        return []
    found = []
    for entry in sorted(sysfs_root.iterdir()):
        kind = _read(entry / "type")
        if (kind is not None and kind.isdigit() and int(kind) == ARPHRD_CAN) or (kind is None and "can" in entry.name):
            found.append(entry.name)
    return found


def read_can_link(name: str, sysfs_root: Path = SYSFS_NET, ip: str = "ip") -> CanLink:
    """The interface ``name`` as sysfs and ``ip`` report it."""
    folder = sysfs_root / name
    if not folder.is_dir():
        return CanLink(name, exists=False)
    operstate = _read(folder / "operstate")
    flags = _read(folder / "flags")
    flag_up = flags is not None and bool(int(flags, 16) & IFF_UP)
    # A CAN adapter reports "up"; virtual interfaces (vcan) report "unknown" while their IFF_UP flag is set.
    up = operstate == "up" or (operstate == "unknown" and flag_up)
    device = folder / "device"
    usb_port = Path(os.path.realpath(device)).name if device.exists() else None
    bitrate, state, kind, error = _ip_details(name, ip)
    return CanLink(name, True, up, operstate, bitrate, state, usb_port, kind, error)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _ip_details(name: str, ip: str) -> tuple[int | None, str | None, str | None, str | None]:
    """(bit rate, controller state, link kind, error) from ``ip -details -json link show``."""
    try:
        result = subprocess.run([ip, "-details", "-json", "link", "show", name], capture_output=True, text=True,
                                timeout=5.0, check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, None, None, f"`{ip}` failed: {error}"
    if result.returncode != 0:
        return None, None, None, f"`{ip} -details link show {name}` failed: {result.stderr.strip()}"
    try:
        link = json.loads(result.stdout)[0]
        info = link.get("linkinfo", {})
        data = info.get("info_data", {})
        bitrate = data.get("bittiming", {}).get("bitrate")
        return (int(bitrate) if bitrate is not None else None), data.get("state"), info.get("info_kind"), None
    except (ValueError, IndexError, KeyError, TypeError, AttributeError) as error:
        return None, None, None, f"unreadable `{ip}` output ({error!r})"
