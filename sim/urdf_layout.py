"""Is a URDF the Piper's joint layout? The check every URDF passes before an engine loads it (standard library only).

A Piper arm is, in this order: revolute joint1..joint6, each joint's parent link the previous one's child, then the
prismatic finger_a and finger_b on joint6's child link (the flange); fixed joints may hang anywhere. The limits must
contain piper_spec's envelope (commands inside it must be reachable; wider is fine, the execution clamps to
piper_spec). A file holds one arm (no prefix) or two prefixed `left_` and `right_` (`pushcut sim urdf --dual`).
Anything else is refused with one line naming what is expected.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pushcut.sim import piper_spec as spec
from pushcut.sim.piper_urdf import DUAL_PREFIXES, FINGER_NAMES, LAYOUT

LIMIT_TOLERANCE = 1e-4  # rad or m: limits written with fewer digits still contain the envelope


class PiperURDFError(ValueError):
    """A URDF that is not the Piper's joint layout; the message is one line naming what is expected."""


@dataclass(frozen=True)
class Joint:
    name: str
    kind: str
    parent: str
    child: str
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class PiperLayout:
    """The arms of a checked URDF: their name prefixes ("" for a single arm) and flange link per prefix."""

    source: str
    prefixes: tuple[str, ...]
    flanges: dict[str, str]

    def movable_joints(self, prefix: str) -> tuple[str, ...]:
        return movable_joint_names(prefix)


def movable_joint_names(prefix: str = "") -> tuple[str, ...]:
    """joint1..joint6, finger_a, finger_b of one arm, with its prefix."""
    return tuple(f"{prefix}{name}" for name in (*spec.ARM_JOINT_NAMES, *FINGER_NAMES))


def _joints(root: ET.Element, source: str) -> dict[str, Joint]:
    joints = {}
    for element in root.iter("joint"):
        parent, child, limit = element.find("parent"), element.find("child"), element.find("limit")
        name = element.get("name", "")
        if parent is None or child is None:
            raise PiperURDFError(f"{source}: joint {name!r} lacks a parent or child link; expected {LAYOUT}")
        try:
            bounds = (float(limit.get("lower", 0)), float(limit.get("upper", 0))) if limit is not None else (None, None)
        except ValueError as error:
            raise PiperURDFError(f"{source}: joint {name!r} has a non-numeric limit ({error})") from error
        joints[name] = Joint(name, element.get("type", ""), parent.get("link", ""), child.get("link", ""), *bounds)
    return joints


def _check_limits(joint: Joint, low: float, high: float, unit: str, source: str) -> None:
    if joint.lower is None or joint.upper is None:
        raise PiperURDFError(f"{source}: joint {joint.name!r} has no <limit>; expected one containing [{low:g}, "
                             f"{high:g}] {unit}")  # fmt: skip
    if joint.lower > low + LIMIT_TOLERANCE or joint.upper < high - LIMIT_TOLERANCE:
        raise PiperURDFError(
            f"{source}: joint {joint.name!r} limits [{joint.lower:g}, {joint.upper:g}] {unit} do not contain the "
            f"Piper's [{low:g}, {high:g}] {unit} (piper_spec)"
        )


def _check_arm(joints: dict[str, Joint], prefix: str, source: str) -> str:
    """Checks one arm's joints; returns its flange link."""
    expected = [(f"{prefix}{n}", "revolute") for n in spec.ARM_JOINT_NAMES]
    expected += [(f"{prefix}{n}", "prismatic") for n in FINGER_NAMES]
    for name, kind in expected:
        if name not in joints:
            raise PiperURDFError(f"{source}: no joint {name!r}; expected {LAYOUT}")
        if joints[name].kind != kind:
            raise PiperURDFError(f"{source}: joint {name!r} is {joints[name].kind!r}, expected {kind!r}; "
                                 f"expected {LAYOUT}")  # fmt: skip
    chain = [joints[name] for name, _ in expected[:6]]
    for before, after in zip(chain, chain[1:]):
        if after.parent != before.child:
            raise PiperURDFError(
                f"{source}: joint {after.name!r} hangs off link {after.parent!r}, expected {before.child!r} "
                f"(the child of {before.name!r}); expected {LAYOUT}"
            )
    flange = chain[-1].child
    for name, _ in expected[6:]:
        if joints[name].parent != flange:
            raise PiperURDFError(f"{source}: finger joint {name!r} hangs off {joints[name].parent!r}, expected "
                                 f"the flange {flange!r}; expected {LAYOUT}")  # fmt: skip
    for joint, (low, high) in zip(chain, spec.JOINT_LIMITS_RAD):
        _check_limits(joint, low, high, "rad", source)
    for name, _ in expected[6:]:
        _check_limits(joints[name], 0.0, spec.FINGER_STROKE_M, "m", source)
    return flange


def check_piper_urdf(urdf: str | Path) -> PiperLayout:
    """Parse a URDF file and check that it is one or two Piper arms; raises PiperURDFError (one line) if not."""
    path = Path(urdf)
    source = f"URDF {path}"
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError as error:
        raise PiperURDFError(f"{source}: no such file; write one with `pushcut sim urdf --out {path}`") from error
    except ET.ParseError as error:
        raise PiperURDFError(f"{source}: not well-formed XML ({error}); expected a URDF <robot>") from error
    except OSError as error:
        raise PiperURDFError(f"{source}: cannot be read ({error.strerror}); expected a URDF file") from error
    if root.tag != "robot":
        raise PiperURDFError(f"{source}: the root element is <{root.tag}>, expected a URDF <robot>")
    joints = _joints(root, source)
    if "joint1" not in joints and f"{DUAL_PREFIXES[0]}joint1" not in joints:
        raise PiperURDFError(f"{source}: no joint 'joint1' (one arm) or '{DUAL_PREFIXES[0]}joint1' (two arms); "
                             f"expected {LAYOUT}")  # fmt: skip
    prefixes = ("",) if "joint1" in joints else DUAL_PREFIXES
    flanges = {prefix: _check_arm(joints, prefix, source) for prefix in prefixes}
    wanted = {name for prefix in prefixes for name in movable_joint_names(prefix)}
    extra = sorted(j.name for j in joints.values() if j.kind != "fixed" and j.name not in wanted)
    if extra:
        raise PiperURDFError(f"{source}: movable joints {extra} are not the Piper's; expected {LAYOUT}")
    return PiperLayout(source, prefixes, flanges)


def check_single_arm_urdf(urdf: str | Path) -> PiperLayout:
    """:func:`check_piper_urdf`, and one arm: the SAPIEN env loads one single-arm file at each of its mounts
    (``EnvConfig.piper_urdf``); a dual file is refused in one line."""
    layout = check_piper_urdf(urdf)
    if layout.prefixes != ("",):
        raise PiperURDFError(
            f"{layout.source}: holds two arms ({', '.join(layout.prefixes)}); the SAPIEN env loads one single-arm "
            "Piper at each mount: expected one arm, joint1..joint6, finger_a, finger_b without a prefix "
            "(`pushcut sim urdf --out F.urdf`, without --dual)"
        )
    return layout
