"""The Piper's URDF (`pushcut sim urdf`): the joint layout and limits of piper_spec, the MuJoCo model's masses and
shapes, and the one-line refusal of a URDF that is not the Piper's. SAPIEN's side is in test_sapien.py."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from pushcut.sim import piper_geometry as geometry
from pushcut.sim import piper_spec as spec
from pushcut.sim import scene
from pushcut.sim.piper_urdf import piper_urdf, write_urdf
from pushcut.sim.urdf_layout import PiperURDFError, check_piper_urdf


def joints_of(text: str) -> dict[str, ET.Element]:
    return {joint.get("name"): joint for joint in ET.fromstring(text).iter("joint")}


@pytest.mark.parametrize("dual", [False, True], ids=["one-arm", "dual"])
def test_the_written_urdf_has_the_pipers_joints_and_limits(tmp_path, dual):
    path = write_urdf(tmp_path / "piper.urdf", dual)
    joints = joints_of(path.read_text())
    prefixes = ("left_", "right_") if dual else ("",)
    movable = {name: j for name, j in joints.items() if j.get("type") != "fixed"}
    assert len(movable) == 8 * len(prefixes)
    for prefix in prefixes:
        for i, name in enumerate(spec.ARM_JOINT_NAMES):
            joint = movable[f"{prefix}{name}"]
            limit = joint.find("limit")
            assert joint.get("type") == "revolute" and joint.find("axis").get("xyz") == "0 0 1"
            assert [float(limit.get("lower")), float(limit.get("upper"))] == pytest.approx(spec.JOINT_LIMITS_RAD[i])
            assert float(limit.get("velocity")) == spec.MAX_JOINT_SPEED_RAD_S
            parent = f"{prefix}base" if i == 0 else f"{prefix}link{i}"
            assert joint.find("parent").get("link") == parent
            assert joint.find("child").get("link") == f"{prefix}link{i + 1}"
        for finger in ("finger_a", "finger_b"):
            joint = movable[f"{prefix}{finger}"]
            limit = joint.find("limit")
            assert joint.get("type") == "prismatic" and joint.find("parent").get("link") == f"{prefix}link6"
            assert (float(limit.get("lower")), float(limit.get("upper"))) == (0.0, spec.FINGER_STROKE_M)
        assert movable[f"{prefix}finger_b"].find("mimic").get("joint") == f"{prefix}finger_a"
    layout = check_piper_urdf(path)
    assert layout.prefixes == prefixes and set(layout.flanges.values()) == {f"{p}link6" for p in prefixes}


def test_the_urdf_carries_the_mujoco_models_masses_shapes_and_damping():
    model = scene.build_model("")
    root = ET.fromstring(piper_urdf())
    links = {link.get("name"): link for link in root.iter("link")}
    for name in ("base", *(f"link{i}" for i in range(1, 7)), "finger_a", "finger_b"):
        body = model.body(f"left/{name}")
        inertial = links[name].find("inertial")
        inertia = inertial.find("inertia")
        assert float(inertial.find("mass").get("value")) == pytest.approx(body.mass[0], rel=1e-6), name
        moments = [float(inertia.get(k)) for k in ("ixx", "iyy", "izz")]
        assert sorted(moments) == pytest.approx(sorted(body.inertia), rel=1e-6), name
        xyz = [float(v) for v in inertial.find("origin").get("xyz").split()]
        np.testing.assert_allclose(xyz, body.ipos, atol=1e-9)
        geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] == body.id]
        urdf_sizes = []
        for visual in links[name].findall("visual"):
            shape = visual.find("geometry")[0]
            if shape.tag == "box":
                urdf_sizes.append(("box", *sorted(round(float(v) / 2, 9) for v in shape.get("size").split())))
            else:
                urdf_sizes.append(
                    (shape.tag, round(float(shape.get("radius")), 9), round(float(shape.get("length")) / 2, 9))
                )
        kinds = {int(mujoco.mjtGeom.mjGEOM_BOX): "box", int(mujoco.mjtGeom.mjGEOM_CYLINDER): "cylinder",
                 int(mujoco.mjtGeom.mjGEOM_CAPSULE): "capsule"}  # fmt: skip
        mj_sizes = []
        for g in geoms:
            size = [round(float(v), 9) for v in model.geom_size[g]]
            kind = kinds[int(model.geom_type[g])]
            mj_sizes.append((kind, *sorted(size)) if kind == "box" else (kind, size[0], size[1]))
        assert sorted(urdf_sizes) == sorted(mj_sizes), name
        collisions = len(links[name].findall("collision"))
        assert collisions == sum(model.geom_contype[g] != 0 for g in geoms), name
    joints = joints_of(piper_urdf())
    for name in (*spec.ARM_JOINT_NAMES, "finger_a", "finger_b"):
        damping = float(joints[name].find("dynamics").get("damping"))
        assert damping == pytest.approx(model.dof_damping[model.joint(f"left/{name}").dofadr[0]])
    assert (model.geom_contype[geoms[0]], model.geom_conaffinity[geoms[0]]) == geometry.ARM_COLLISION_BITS


BAD_EDITS = {
    "renamed joint": (' name="joint4"', ' name="elbow"', "no joint 'joint4'"),
    "revolute finger": ('type="prismatic"', 'type="revolute"', "'finger_a' is 'revolute', expected 'prismatic'"),
    "narrow limit": ('upper="3.14"', 'upper="2"', "joint 'joint2' limits [0, 2] rad do not contain"),
    "broken chain": ('<parent link="link3"/>', '<parent link="link2"/>', "hangs off link 'link2', expected 'link3'"),
    "extra joint": ('"fixed"><origin xyz="0 0 0.135"', '"revolute"><origin xyz="0 0 0.135"', "joints ['tcp'] are not"),
}


@pytest.mark.parametrize("edit", BAD_EDITS.values(), ids=BAD_EDITS.keys())
def test_a_urdf_that_is_not_the_pipers_is_refused_in_one_line(tmp_path, edit):
    old, new, message = edit
    text = piper_urdf()
    assert old in text
    path = tmp_path / "other.urdf"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(PiperURDFError) as error:
        check_piper_urdf(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_command_refuses_a_foreign_urdf_in_one_line(tmp_path):
    path = tmp_path / "arm.urdf"
    path.write_text('<robot name="other"><link name="a"/><link name="b"/><joint name="j" type="revolute">'
                    '<parent link="a"/><child link="b"/><limit lower="-1" upper="1"/></joint></robot>')  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "pushcut", "sim", "urdf", "--check", str(path)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: URDF {path}: no joint 'joint1'") and "expected the Piper's layout" in line
