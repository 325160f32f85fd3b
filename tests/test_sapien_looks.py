"""MuJoCo's colour model mapped into SAPIEN's (`pushcut.sim.sapien.looks`): SAPIEN's shading formulas evaluated with
the mapped lights give MuJoCo's, and the MuJoCo lighting the module computes is what MuJoCo renders. No SAPIEN
needed; tests/test_sapien_appearance.py compares the two engines' pictures."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from pushcut.sim import mujoco_scene
from pushcut.sim.sapien import looks
from pushcut.sim.sapien.textures import tinted_atlas
from pushcut.sim.scene import describe
from pushcut.sim.scene_description import TABLE_TOP_GEOM


def _sapien_spot_fade(light: looks.SapienLight, towards_light: np.ndarray) -> float:
    """SAPIEN's spot visibility (common/lights.glsl computeSpotLight) for a unit vector from a point to the light."""
    inner, outer = math.cos(light.inner_fov / 2) + 1e-6, math.cos(light.outer_fov / 2)
    return float(np.clip((-towards_light @ np.asarray(light.direction) - outer) / (inner - outer), 0.0, 1.0))


def test_lights_are_mujocos_in_sapiens_units():
    description = describe()
    lights = looks.sapien_lights(description)
    assert [light.name for light in lights] == [*(light.name for light in description.lights), looks.HEADLIGHT]
    for light, source in zip(lights, description.lights):
        if source.directional:  # SAPIEN's Lambert term is emission x n.l / pi; MuJoCo's diffuse x n.l
            np.testing.assert_allclose(np.asarray(light.colour) / math.pi, source.diffuse)
        else:  # where the spot's axis meets the table: SAPIEN's emission / d^2 x fade equals MuJoCo's diffuse
            assert light.kind == "spot"
            position = np.asarray(light.position)
            axis = np.asarray(light.direction)
            point = position + axis * (looks.table_top_z(description) - position[2]) / axis[2]
            distance = np.linalg.norm(point - position)
            fade = _sapien_spot_fade(light, -axis)
            shown = np.asarray(light.colour) / math.pi / distance**2 * fade
            np.testing.assert_allclose(shown, source.diffuse, rtol=1e-4)  # SAPIEN's cone has a 1e-6 in its cos
    headlight = lights[-1]
    np.testing.assert_allclose(np.asarray(headlight.colour) / math.pi, description.headlight)
    assert headlight.kind == "directional" and headlight.direction[2] < 0.0  # along the head camera, down


def test_spot_cone_halves_where_mujocos_spot_does():
    outer = looks.spot_outer_fov(10.0)
    half_angle_cos = 0.5 ** (1 / 10.0)  # MuJoCo: cos^exponent = 0.5
    light = looks.SapienLight("spot", "spot", (0.0, 0.0, 1.0), (0.0, 0.0, -1.0), (1.0, 1.0, 1.0), 0.0, outer)
    towards = np.array([math.sqrt(1 - half_angle_cos**2), 0.0, half_angle_cos])
    assert _sapien_spot_fade(light, towards) == pytest.approx(0.5, abs=1e-5)
    assert math.degrees(outer) == pytest.approx(60.0, abs=0.01)
    assert math.degrees(looks.spot_outer_fov(0.5)) == pytest.approx(2 * looks.MUJOCO_SPOT_CUTOFF_DEG)  # the cutoff
    with pytest.raises(ValueError, match="spot exponent must be > 0"):
        looks.spot_outer_fov(0.0)


def test_table_light_is_what_mujoco_renders():
    """The bare scene's table where the head camera's axis meets it (the image centre): rgba x the module's light."""
    description = describe()
    model = mujoco_scene.build_model(description)
    with mujoco.Renderer(model, 240, 320) as renderer:
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        renderer.update_scene(data, camera="head_camera")
        centre = renderer.render()[119:121, 159:161].reshape(-1, 3).mean(axis=0)
    rgba = next(g.rgba for g in description.table.geoms if g.name == TABLE_TOP_GEOM)
    light = looks.mujoco_table_light(description, [1.0] * (len(description.lights) + 1))
    np.testing.assert_allclose(centre, np.minimum(1.0, np.asarray(rgba[:3]) * light) * 255, atol=2.0)
    with pytest.raises(ValueError, match="light gains"):
        looks.mujoco_table_light(description, [1.0])


def test_texture_tint_undoes_sapiens_missing_clamp():
    np.testing.assert_allclose(looks.texture_tint(np.array([2.0, 1.0, 0.5])), [0.5, 1.0, 1.0])
    atlas = np.full((3, 4, 4), 200, dtype=np.uint8)
    tinted = tinted_atlas(atlas, np.array([0.5, 1.0, 0.25]))
    assert tinted[0, 0].tolist() == [100, 200, 50, 200]  # alpha kept
    with pytest.raises(ValueError, match="3 positive numbers"):
        looks.texture_tint(np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="3 factors in"):
        tinted_atlas(atlas, np.array([1.5, 1.0, 1.0]))


def test_display_image_decodes_sapiens_gamma():
    picture = np.zeros((2, 2, 4), dtype=np.float32)
    picture[0, 0, :3] = 0.4 ** (1 / looks.SAPIEN_GAMMA)  # SAPIEN's picture of a linear 0.4
    picture[1, 1, :3] = 1.0
    shown = looks.display_image(picture)
    assert shown.dtype == np.uint8 and shown.shape == (2, 2, 3)
    assert shown[0, 0].tolist() == [102, 102, 102] and shown[1, 1].tolist() == [255, 255, 255]
    with pytest.raises(ValueError, match="SAPIEN colour picture"):
        looks.display_image(np.zeros((2, 2, 4), dtype=np.uint8))
