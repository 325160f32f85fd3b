"""Randomisation presets (sim/randomization.py): clean, randomized, and one factor at a time."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from pushcut.sim import make
from pushcut.sim.appearance import Appearance
from pushcut.sim.randomization import PRESET_NAMES, SWITCHES, DomainRandomizer, KeepOutZone, RandomizationConfig

# the Appearance fields each switch fills (the others stay nominal)
FIELDS_OF_SWITCH = {
    "object_colors": {"group_colours"},
    "table_texture": {"table_texture", "table_rgba"},
    "lighting": {"light_tints", "light_gains", "headlight_gain"},
    "table_height": {"table_drop"},
    "distractors": {"distractors"},
    "head_camera_jitter": {"camera_offset", "camera_turn"},
}


def _same(a: object, b: object) -> bool:
    if isinstance(a, dict) or isinstance(b, dict):
        return a == b if a is None or b is None else a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if a is None or b is None:
        return a is b
    if dataclasses.is_dataclass(a):
        return type(a) is type(b) and all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return bool(np.array_equal(a, b))


def _differing_fields(a: Appearance, b: Appearance) -> set[str]:
    return {f.name for f in dataclasses.fields(Appearance) if not _same(getattr(a, f.name), getattr(b, f.name))}


def test_the_factors_are_the_config_switches():
    assert set(SWITCHES) == set(FIELDS_OF_SWITCH)
    assert PRESET_NAMES[:2] == ("clean", "randomized") and PRESET_NAMES[2:] == SWITCHES
    assert RandomizationConfig.preset("clean").switches_on() == ()
    assert RandomizationConfig.preset("randomized").switches_on() == SWITCHES


@pytest.mark.parametrize("name", SWITCHES)
def test_a_factor_preset_turns_on_exactly_that_switch_with_ranges_unchanged(name):
    config = RandomizationConfig.preset(name)
    assert config.switches_on() == (name,)
    assert dataclasses.replace(config, **{name: False}) == RandomizationConfig.preset("clean")
    randomized = RandomizationConfig.preset("randomized")
    for field in ("max_table_drop", "camera_jitter_m", "camera_jitter_rad"):
        assert getattr(config, field) == getattr(randomized, field)


def test_an_unknown_preset_is_one_line_naming_every_accepted_name():
    with pytest.raises(ValueError) as error:
        RandomizationConfig.preset("lights")
    message = str(error.value)
    assert "\n" not in message and "'lights'" in message
    assert all(name in message for name in PRESET_NAMES)


@pytest.fixture(scope="module")
def clean_env():
    env = make("click_bell", cameras=(), randomization="clean")
    yield env
    env.close()


@pytest.mark.parametrize("name", SWITCHES)
def test_a_factor_draws_only_its_own_part_of_the_appearance(clean_env, name):
    randomizer = DomainRandomizer(clean_env.description, RandomizationConfig.preset(name))
    nominal = DomainRandomizer(clean_env.description, RandomizationConfig.preset("clean"))
    keep_out = [KeepOutZone.around(0.0, 0.0, 0.05)]
    changed = set()
    for seed in range(4):
        drawn = randomizer.draw(np.random.default_rng(seed))
        drawn = randomizer.draw_distractors(drawn, np.random.default_rng(seed), keep_out)
        plain = nominal.draw_distractors(nominal.draw(np.random.default_rng(seed)), np.random.default_rng(seed), [])
        changed |= _differing_fields(drawn, plain)
    assert changed and changed <= FIELDS_OF_SWITCH[name]


def test_a_lighting_episode_differs_from_a_clean_one_only_in_the_lights(clean_env):
    lit = make("click_bell", cameras=(), randomization="lighting")
    try:
        for seed in (0, 7):
            clean_env.reset(seed=seed)
            lit.reset(seed=seed)
            assert _differing_fields(lit.appearance, clean_env.appearance) == FIELDS_OF_SWITCH["lighting"]
            clean_model, lit_model = clean_env.world.model, lit.world.model
            assert not np.array_equal(lit_model.light_diffuse, clean_model.light_diffuse)
            for name in ("geom_rgba", "geom_matid", "cam_pos", "cam_quat"):  # colours, textures, the head camera
                np.testing.assert_array_equal(getattr(lit_model, name), getattr(clean_model, name), err_msg=name)
            assert lit.table_z == clean_env.table_z
    finally:
        lit.close()


def _pushcut(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pushcut", *args], capture_output=True, text=True, timeout=300)


def test_the_command_line_takes_a_factor_and_refuses_an_unknown_name_in_one_line(tmp_path):
    ok = _pushcut("sim", "experts", "--task", "click_bell", "--seeds", "1", "--randomization", "table_height")
    assert ok.returncode == 0, ok.stderr[-3000:]
    bad = _pushcut("sim", "experts", "--task", "click_bell", "--seeds", "1", "--randomization", "lights")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    line = bad.stderr.strip()
    assert "\n" not in line and "'lights'" in line and all(name in line for name in PRESET_NAMES)
