"""Another Piper URDF in SAPIEN's world (issue 26 §2): `EnvConfig.piper_urdf` / `--piper-urdf` loads a URDF of the
Piper's joint layout at both mounts instead of pushcut's; a URDF of another layout, a dual file or the MuJoCo engine is
refused in one line when the config is made, before any scene is built; checkpoints record the file's sha256."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pushcut.cli import app
from pushcut.sim import make
from pushcut.sim.dataset import INDEX_FILE
from pushcut.sim.demos import generate_demos
from pushcut.sim.piper_urdf import write_urdf
from pushcut.sim.urdf_layout import PiperURDFError
from pushcut.train.provenance import training_world, world_differences

pytestmark = pytest.mark.usefixtures("restore_render_variables")

WIDE_JOINT1 = (-3.0, 3.0)  # wider than piper_spec's envelope: still the Piper's layout, and visibly this file's


def _edited(source: Path, out: Path, edit) -> Path:
    """``source`` with ``edit(root)`` applied, written to ``out``."""
    tree = ET.parse(source)
    edit(tree.getroot())
    tree.write(out)
    return out


def _joint(root: ET.Element, name: str) -> ET.Element:
    return next(j for j in root.iter("joint") if j.get("name") == name)


def _widen_joint1(root: ET.Element) -> None:
    limit = _joint(root, "joint1").find("limit")
    limit.set("lower", str(WIDE_JOINT1[0]))
    limit.set("upper", str(WIDE_JOINT1[1]))


def _rename_joint3(root: ET.Element) -> None:
    _joint(root, "joint3").set("name", "elbow")


def _drop_finger_b(root: ET.Element) -> None:
    root.remove(_joint(root, "finger_b"))


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """pushcut's Piper as `pushcut sim urdf --out` writes it."""
    path = tmp_path_factory.mktemp("urdf") / "piper.urdf"
    result = CliRunner().invoke(app, ["sim", "urdf", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path


def _forbid_scene(monkeypatch) -> None:
    def built(*args, **kwargs):
        raise AssertionError("a world was built for a refused URDF")

    monkeypatch.setattr("pushcut.sim.env.build_world", built)


def test_a_swapped_in_urdf_starts_where_pushcuts_does(written, tmp_path):
    swapped = _edited(written, tmp_path / "wide.urdf", _widen_joint1)
    default = make("click_bell", engine="sapien", cameras=())
    other = make("click_bell", engine="sapien", cameras=(), piper_urdf=swapped)
    try:
        assert other.config.piper_urdf == str(swapped)
        for arm in ("left", "right"):  # the file is what SAPIEN loaded, at both mounts
            joint1 = other.world.rig.arms[arm].articulation.get_active_joints()[0]
            np.testing.assert_allclose(np.asarray(joint1.get_limits()).ravel(), WIDE_JOINT1, atol=1e-6)
        default_obs, _ = default.reset(seed=0)
        other_obs, _ = other.reset(seed=0)
        np.testing.assert_allclose(other_obs["joint_action"]["vector"], default_obs["joint_action"]["vector"],
                                   atol=1e-6)  # fmt: skip
        for key in ("left_endpose", "right_endpose"):
            np.testing.assert_allclose(other_obs["endpose"][key], default_obs["endpose"][key], atol=1e-6)
    finally:
        default.close()
        other.close()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_rename_joint3, "no joint 'joint3'; expected the Piper's layout"),
        (_drop_finger_b, "no joint 'finger_b'; expected the Piper's layout"),
    ],  # fmt: skip
    ids=["renamed_joint", "missing_finger"],
)
def test_a_urdf_of_another_layout_is_refused_before_any_scene(written, tmp_path, monkeypatch, edit, message):
    _forbid_scene(monkeypatch)
    bad = _edited(written, tmp_path / "bad.urdf", edit)
    with pytest.raises(PiperURDFError) as error:
        make("click_bell", engine="sapien", cameras=(), piper_urdf=str(bad))
    assert str(error.value).startswith(f"URDF {bad}: {message}") and "\n" not in str(error.value)


def test_a_dual_urdf_is_refused_in_one_line(tmp_path, monkeypatch):
    _forbid_scene(monkeypatch)
    dual = write_urdf(tmp_path / "dual.urdf", dual=True)
    with pytest.raises(PiperURDFError) as error:
        make("click_bell", engine="sapien", cameras=(), piper_urdf=str(dual))
    assert "holds two arms (left_, right_)" in str(error.value) and "without --dual" in str(error.value)
    assert "\n" not in str(error.value)


def test_piper_urdf_with_mujoco_is_refused_in_one_line(written):
    with pytest.raises(ValueError) as error:
        make("click_bell", piper_urdf=str(written))
    assert "is loaded by SAPIEN only" in str(error.value) and "set engine='sapien'" in str(error.value)
    assert "\n" not in str(error.value)


def test_sim_render_refuses_a_bad_urdf_in_one_line(written, tmp_path):
    bad = _edited(written, tmp_path / "bad.urdf", _rename_joint3)
    runner = CliRunner()
    args = ["sim", "render", "--task", "click_bell", "--out", str(tmp_path / "scene.png")]
    refused = runner.invoke(app, [*args, "--sim", "sapien", "--piper-urdf", str(bad)])
    assert refused.exit_code == 2
    (line,) = refused.output.strip().splitlines()
    assert line.startswith(f"error: URDF {bad}: no joint 'joint3'")
    assert not (tmp_path / "scene.png").exists()
    mujoco = runner.invoke(app, [*args, "--piper-urdf", str(written)])
    assert mujoco.exit_code == 2
    assert mujoco.output.strip() == f"error: --piper-urdf {written} needs --sim sapien (got --sim mujoco); the other " \
                                    "worlds build their own Piper"  # fmt: skip


def test_eval_and_grpo_take_the_option():
    runner = CliRunner()
    for command in (["eval", "sim"], ["train", "grpo"], ["sim", "experts"], ["sim", "demo"], ["sim", "video"]):
        shown = runner.invoke(app, [*command, "--help"])
        assert shown.exit_code == 0 and "--piper-urdf" in shown.output, command


def test_checkpoints_record_the_urdf_and_evaluation_notes_another(written, tmp_path):
    other = _edited(written, tmp_path / "wide.urdf", _widen_joint1)
    default = training_world({"engine": "sapien"})
    trained = training_world({"engine": "sapien", "piper_urdf": str(written)})
    assert "piper_urdf" not in default
    assert trained["piper_urdf"]["path"] == str(written) and len(trained["piper_urdf"]["sha256"]) == 64
    assert world_differences(trained, training_world({"engine": "sapien", "piper_urdf": str(written)})) is None
    note = world_differences(trained, training_world({"engine": "sapien", "piper_urdf": str(other)}))
    assert note.startswith("note: the checkpoint's world differs: trained with Piper URDF ")
    assert f"evaluated with Piper URDF {other} (" in note and "\n" not in note
    assert world_differences(trained, default).endswith("evaluated with pushcut's Piper URDF")


def test_a_dataset_recorded_before_the_field_still_resumes(tmp_path):
    out = tmp_path / "d"
    small = {"image_width": 64, "image_height": 48}
    assert generate_demos("click_bell", 1, out, env_overrides=small, progress=False).kept == 1
    index_path = out / INDEX_FILE
    index = json.loads(index_path.read_text())
    assert index["env_config"].pop("piper_urdf") is None  # as an index written before piper_urdf existed
    index_path.write_text(json.dumps(index))
    again = generate_demos("click_bell", 1, out, env_overrides=small, progress=False)
    assert again.kept == 1 and again.seeds_tried == 0
