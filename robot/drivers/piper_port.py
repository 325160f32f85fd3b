"""The CAN port of one Piper arm: checked against the system, opened through piper_sdk once per process.

``C_PiperInterface_V2`` is a singleton per CAN name and ``DisconnectPort`` neither stops its monitor threads nor
joins its reader (a port reopened too soon gets no reader), so a port is opened once per process and reused;
only ``release_port`` (tests on the virtual bus) disconnects it, for good.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from pushcut.robot.drivers.can_link import can_interfaces, read_can_link, setup_command
from pushcut.robot.drivers.interface import RobotFault

if TYPE_CHECKING:
    from pushcut.robot.drivers.piper_arm import PiperArmConfig

CAN_SETUP_HINT = (
    "bring it up at 1 Mbit/s with piper_sdk's `bash can_activate.sh {can} 1000000 <usb bus-info>` (two arms: "
    "`find_all_can_port.sh`, then `can_muti_activate.sh`) and check with `ip -details link show {can}`"
)

_PORTS: dict[str, Any] = {}  # can name -> connected C_PiperInterface_V2 (one per process, see module docstring)
_RELEASED: set[str] = set()
_PORTS_LOCK = threading.Lock()


def _check_socketcan(can: str) -> None:
    """Fail fast, naming what to check, when a socketcan interface is missing or down."""
    link = read_can_link(can)
    if not link.exists:
        present = can_interfaces()
        raise RobotFault(
            f"CAN interface '{can}' does not exist (CAN interfaces present: {', '.join(present) or 'none'}). "
            f"Check the USB-CAN adapter is plugged in and named {can}; " + CAN_SETUP_HINT.format(can=can)
        )
    if not link.up:
        raise RobotFault(f"CAN interface '{can}' is {link.operstate}, not up: `{setup_command(can)}`; "
                         + CAN_SETUP_HINT.format(can=can))  # fmt: skip


def open_port(config: PiperArmConfig) -> Any:
    """The SDK interface of ``config.can_name``, opened and reading once per process."""
    from piper_sdk import C_PiperInterface_V2  # imported here: the SDK writes log folders on import

    can = config.can_name
    with _PORTS_LOCK:
        if can in _PORTS:
            return _PORTS[can]
        if can in _RELEASED:
            raise RobotFault(f"CAN port '{can}' was released in this process; piper_sdk cannot reopen it, restart")
        socketcan = config.bustype == "socketcan"
        if socketcan:
            _check_socketcan(can)
        try:
            sdk = C_PiperInterface_V2(can_name=can, judge_flag=False, can_auto_init=False)
            sdk.CreateCanBus(can_name=can, bustype=config.bustype, expected_bitrate=1_000_000, judge_flag=socketcan)
        except Exception as e:  # the SDK wraps the reason (e.g. the bitrate) as the exception's context
            reason = e.__context__ or e
            raise RobotFault(f"cannot open CAN port '{can}': {reason}; " + CAN_SETUP_HINT.format(can=can)) from e
        port = sdk.GetCanBus()
        if port is None or port.recv_bus is None or port.send_bus is None:  # the SDK swallows python-can errors
            raise RobotFault(f"cannot open CAN port '{can}' ({config.bustype}); " + CAN_SETUP_HINT.format(can=can))
        sdk.ConnectPort()
        _PORTS[can] = sdk
        return sdk


def release_port(can: str) -> None:
    with _PORTS_LOCK:
        sdk = _PORTS.pop(can, None)
        if sdk is not None:
            sdk.DisconnectPort()
            _RELEASED.add(can)
