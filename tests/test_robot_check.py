"""`pushcut robot check` on the virtual Piper pair (our CAN emulator under the real piper_sdk code path), a sysfs
tree and an `ip` of the test's own (the code reads them exactly as on a robot computer), replay cameras, the twin,
and a real policy server: every PASS and the FAIL paths (interface down, wrong bit rate, arm silent, swapped buses,
e-stop latched, camera missing, server mismatch, bad input). Nothing ever moves: no enable or motion frame reaches
the arms."""

from __future__ import annotations

import json
import math
import os
import stat
import time
import uuid
from pathlib import Path

import can
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pushcut.cli import app
from pushcut.robot.drivers.virtual_piper import VirtualPiper, VirtualPiperConfig
from pushcut.robot.tools.check import joints_outside
from pushcut.sim.piper_spec import JOINT_LIMITS_RAD

PORTS = {"left": "3-1.4:1.0", "right": "3-1.3:1.0"}
MOTION_IDS = (0x471, 0x151, 0x155, 0x156, 0x157, 0x159)  # enable, mode, joints, gripper: none may be sent


class Bench:
    """Two emulated arms on fresh virtual channels, their interfaces in a sysfs tree and an `ip` of our own."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        tag = uuid.uuid4().hex[:6]
        self.can = {side: f"vp{tag}-{side[0]}" for side in ("left", "right")}
        self.arms = {side: VirtualPiper(VirtualPiperConfig(channel=ch)).start() for side, ch in self.can.items()}
        self.sysfs, self.tmp = tmp_path / "sys" / "class" / "net", tmp_path
        (tmp_path / "bin").mkdir()
        ip = tmp_path / "bin" / "ip"  # `ip -details -json link show NAME` -> the JSON kept beside the interface
        ip.write_text('#!/bin/sh\ncat "$PUSHCUT_TEST_SYSFS/$5/ip.json" 2>/dev/null || '
                      '{ echo "Device \\"$5\\" does not exist." >&2; exit 1; }\n')  # fmt: skip
        ip.chmod(ip.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("PUSHCUT_TEST_SYSFS", str(self.sysfs))
        for side, name in self.can.items():
            self.interface(name, PORTS[side])

    def interface(self, name: str, usb_port: str, up: bool = True, bitrate: int = 1_000_000) -> None:
        folder = self.sysfs / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "type").write_text("280\n")
        (folder / "operstate").write_text("up\n" if up else "down\n")
        (folder / "flags").write_text("0x40081\n" if up else "0x80\n")
        usb = self.tmp / "devices" / usb_port
        usb.mkdir(parents=True, exist_ok=True)
        if not (folder / "device").is_symlink():
            (folder / "device").symlink_to(usb)
        link = {"ifname": name, "linkinfo": {"info_kind": "can", "info_data": {
            "state": "ERROR-ACTIVE" if up else "STOPPED", "bittiming": {"bitrate": bitrate}}}}  # fmt: skip
        (folder / "ip.json").write_text(json.dumps([link]))

    def check(self, *args: str) -> tuple[int, str]:
        base = ["robot", "check", "--bustype", "virtual", "--sysfs-root", str(self.sysfs),
                "--can-left", self.can["left"], "--can-right", self.can["right"]]  # fmt: skip
        result = CliRunner().invoke(app, [*base, *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.exit_code, result.output

    def nothing_moved(self) -> bool:
        return all(not arm.received(i) for arm in self.arms.values() for i in MOTION_IDS)

    def close(self) -> None:
        for arm in self.arms.values():
            arm.close()


@pytest.fixture
def bench(tmp_path, monkeypatch):
    bench = Bench(tmp_path, monkeypatch)
    yield bench
    bench.close()


def _replay(path: Path, width: int = 64, height: int = 48, frames: int = 20) -> str:
    rgb = np.random.default_rng(0).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)
    np.savez(path, frames=rgb, timestamps=np.arange(frames) / 30.0)
    return str(path)


def _line(output: str, name: str) -> str:
    (line,) = [line for line in output.splitlines() if line.split("  ", 1)[-1].startswith(f"{name}:")]
    return line


def test_everything_passes_on_the_virtual_pair_and_the_rig_file_is_recorded_then_checked(bench):
    camera = _replay(bench.tmp / "head.npz")
    rig = bench.tmp / "rig.json"
    code, out = bench.check("--camera", f"head_camera={camera}", "--camera-mode", "64x48@30", "--save-rig", str(rig))
    assert code == 0, out
    left = _line(out, "left arm answers")
    assert left.startswith("PASS") and "firmware S-V1.6-3" in left and "ctrl_mode standby" in left
    assert "arm status normal (0x00)" in left and "errors none" in left and "gripper 0.0 mm" in left
    assert _line(out, f"{bench.can['left']} interface").startswith("PASS  ")
    assert "1000000 bit/s, ERROR-ACTIVE, USB 3-1.4:1.0" in _line(out, f"{bench.can['left']} interface")
    assert _line(out, "left/right buses").startswith("SKIP")
    assert _line(out, "camera head_camera").startswith("PASS  camera head_camera: 64x48 at ")
    assert json.loads(rig.read_text())["right"]["usb_port"] == PORTS["right"]

    code, out = bench.check("--rig", str(rig), "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and {c["status"] for c in report["checks"]} == {"PASS"}
    assert bench.nothing_moved()


def test_an_interface_down_or_at_the_wrong_bit_rate_fails_with_the_command_that_fixes_it(bench):
    left, right = bench.can["left"], bench.can["right"]
    bench.interface(left, PORTS["left"], up=False)
    bench.interface(right, PORTS["right"], bitrate=500_000)
    code, out = bench.check()
    assert code == 1
    assert _line(out, f"{left} interface") == (f"FAIL  {left} interface: is down -> sudo ip link set {left} down && "
                                               f"sudo ip link set {left} up type can bitrate 1000000")  # fmt: skip
    assert "is up at 500000 bit/s, the Piper needs 1000000" in _line(out, f"{right} interface")
    assert _line(out, "left arm answers") == f"SKIP  left arm answers: not tried: {left} is not usable"
    assert bench.nothing_moved()


def test_an_unknown_interface_is_named_and_nothing_is_opened(bench):
    code, out = bench.check("--can-left", "can9")  # the later option wins
    assert code == 1
    assert _line(out, "can9 interface").startswith("FAIL  can9 interface: 'can9' does not exist -> plug in")
    assert _line(out, "left arm answers").startswith("SKIP")
    assert _line(out, "right arm answers").startswith("PASS")
    assert bench.nothing_moved()


def test_a_silent_arm_fails_with_what_to_check(bench):
    bench.arms["right"].stop_feedback()
    code, out = bench.check()
    line = _line(out, "right arm answers")
    assert code == 1 and line.startswith(f"FAIL  right arm answers: no arm answers on {bench.can['right']}")
    assert "not answering" in line and "-> power the arm on" in line
    assert _line(out, "left arm answers").startswith("PASS")


def test_swapped_buses_name_the_bus_answering_where_the_other_arm_is_expected(bench):
    rig = bench.tmp / "rig.json"
    rig.write_text(json.dumps({"left": {"usb_port": PORTS["right"]}, "right": {"usb_port": PORTS["left"]}}))
    code, out = bench.check("--rig", str(rig))
    line = _line(out, "left/right buses")
    left, right = bench.can["left"], bench.can["right"]
    assert code == 1 and line.startswith("FAIL  left/right buses: swapped: ")
    assert (f"{left} (expected: the left arm) answers from USB {PORTS['left']}, the adapter recorded for the right "
            "arm") in line  # fmt: skip
    assert f"-> swap the names: --can-left {right} --can-right {left}" in line
    rig.write_text(json.dumps({"left": {"usb_port": PORTS["left"]}, "right": {"usb_port": "1-2:1.0"}}))
    line = _line(bench.check("--rig", str(rig))[1], "left/right buses")
    assert f"{right} (expected: the right arm) answers from USB {PORTS['right']}, not the recorded 1-2:1.0" in line


def test_a_latched_emergency_stop_and_error_codes_fail(bench):
    with can.Bus(interface="virtual", channel=bench.can["left"]) as bus:  # the e-stop frame, as a pendant sends it
        bus.send(can.Message(arbitration_id=0x150, data=[0x01] + [0] * 7, is_extended_id=False))
    bench.arms["right"].set_comm_errors((3,))
    deadline = time.monotonic() + 2.0
    while not bench.arms["left"].state().estopped and time.monotonic() < deadline:
        time.sleep(0.01)
    code, out = bench.check()
    assert code == 1
    assert _line(out, "left arm e-stop").startswith("FAIL  left arm e-stop: emergency stop latched")
    assert "THE ARM DROPS" in _line(out, "left arm e-stop")
    assert _line(out, "right arm e-stop").startswith("PASS")
    assert _line(out, "right arm errors").startswith("FAIL  right arm errors: joint 3 communication error")
    assert bench.arms["left"].state().power_cuts == 0 and bench.nothing_moved()


def test_a_missing_camera_fails_naming_what_is_connected(bench):
    code, out = bench.check("--camera", f"head_camera={bench.tmp / 'none.mp4'}", "--camera", "left_camera=000000",
                            "--camera", f"right_camera={_replay(bench.tmp / 'small.npz', 32, 24)}",
                            "--camera-mode", "64x48@30")  # fmt: skip
    assert code == 1
    assert "none.mp4 does not exist" in _line(out, "camera head_camera")
    assert _line(out, "camera left_camera").startswith("FAIL  camera left_camera: missing or not streaming: ")
    assert "no RealSense with serial 000000" in _line(out, "camera left_camera")
    assert _line(out, "camera right_camera").startswith("FAIL  camera right_camera: delivers 32x24, expected 64x48")


@pytest.mark.parametrize(("args", "message"), [
    (["--can-left", "../../etc"], "'../../etc' is not a CAN interface name"),
    (["--can-right", "can_left", "--can-left", "can_left"], "are both 'can_left'"),
    (["--camera", "head_camera"], "--camera takes NAME=SERIAL"),
    (["--camera-mode", "640x480"], "--camera-mode takes WIDTHxHEIGHT@FPS"),
    (["--robot", "ur5"], "--robot must be 'piper', 'sim' or 'virtual-piper'"),
    (["--rig", "/nonexistent/rig.json"], "no such file"),
])  # fmt: skip
def test_bad_input_is_one_line_and_nothing_is_opened(args, message):
    result = CliRunner().invoke(app, ["robot", "check", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--can-left", "nocan9", "--can-left nocan9: 'nocan9' does not exist (CAN interfaces present: "),
    ("--can-right", "x/../y", "--can-right: 'x/../y' is not a CAN interface name"),
    ("--can-right", "can_left", "--can-left and --can-right are both 'can_left'"),
])  # fmt: skip
def test_a_trial_session_on_an_unknown_interface_is_one_line_before_anything_is_asked_or_moved(option, value, message,
                                                                                             tmp_path):  # fmt: skip
    args = ["trial", "run", "--task", "click_bell", "--checkpoint-label", "x", "--operator", "ada", "--robot", "piper",
            "--instruction", "press the bell", "--server", "tcp://127.0.0.1:1", "--timeout", "30",
            "--db", str(tmp_path / "t.db"), option, value]  # fmt: skip
    started = time.monotonic()
    result = CliRunner().invoke(app, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert time.monotonic() - started < 10  # the (unreachable) server was never waited for
    assert not (tmp_path / "t.db").exists()


def test_a_socketcan_interface_name_longer_than_the_kernel_allows_is_refused():
    result = CliRunner().invoke(app, ["robot", "check", "--can-left", "a_very_long_can_name"])
    assert result.exit_code == 2 and "at most 15 characters" in result.output


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-4.0, 4.0), min_size=6, max_size=6), st.floats(-0.1, 0.2))
def test_joints_outside_names_exactly_the_joints_beyond_the_shrunk_table(joints, margin):
    found = joints_outside(np.array(joints), margin)
    low, high = JOINT_LIMITS_RAD[:, 0] + margin, JOINT_LIMITS_RAD[:, 1] - margin
    assert [i for i, *_ in found] == [i for i in range(6) if joints[i] < low[i] or joints[i] > high[i]]
    for i, q, lo, hi in found:
        assert q == joints[i] and math.isclose(lo, low[i]) and math.isclose(hi, high[i])
    wider = {i for i, *_ in joints_outside(np.array(joints), margin - 0.05)}
    assert wider <= {i for i, *_ in found}  # a smaller margin never adds a joint


# ---------------------------------------------------------------------- the twin and a real policy server
@pytest.fixture(scope="module")
def server(micro_checkpoint):
    pytest.importorskip("torch")
    from pushcut.deploy.server.backend import TorchBackend
    from pushcut.deploy.server.policy_server import PolicyServer, ServerConfig

    backend = TorchBackend.from_checkpoint(micro_checkpoint)
    server = PolicyServer(backend, ServerConfig(bind="tcp://127.0.0.1:*", image_shape=(48, 64))).start()
    yield server
    server.stop()


def test_the_server_must_answer_and_fit_the_cameras(bench, server):
    code, out = bench.check("--server", server.address, "--camera", f"head_camera={_replay(bench.tmp / 'h.npz')}")
    assert code == 0, out
    line = _line(out, "policy server")
    assert line.startswith(f"PASS  policy server: {server.address}: checkpoint ") and "head_camera 64x48" in line
    assert "action_hz 16.67" in line
    assert _line(out, "camera head_camera").startswith("PASS  camera head_camera: 64x48 at ")  # the policy's size

    big = _replay(bench.tmp / "big.npz", 128, 96)
    code, out = bench.check("--server", server.address, "--camera", f"head_camera={big}")
    assert code == 1 and "delivers 128x96, expected 64x48" in _line(out, "camera head_camera")
    code, out = bench.check("--server", server.address)
    assert code == 1 and "the policy needs camera(s) ['head_camera']" in _line(out, "policy server")
    code, out = bench.check("--server", "tcp://127.0.0.1:1", "--timeout", "0.3")
    assert code == 1 and _line(out, "policy server").startswith("FAIL  policy server: no answer from tcp://127")


def test_the_twin_passes_with_the_policy_server_and_names_a_camera_it_lacks(server):
    pytest.importorskip("mujoco")
    runner = CliRunner()
    result = runner.invoke(app, ["robot", "check", "--robot", "sim", "--server", server.address, "--json"])
    report = json.loads(result.output)
    assert result.exit_code == 0 and report["ok"], result.output
    names = [c["name"] for c in report["checks"]]
    assert names[:4] == ["left arm answers", "left arm e-stop", "left arm errors", "left arm joints"]
    assert "camera head_camera" in names and "policy server" in names
    result = runner.invoke(app, ["robot", "check", "--robot", "sim", "--camera", "wrist_camera=twin"])
    assert result.exit_code == 1 and "unknown sim camera 'wrist_camera'" in result.output
