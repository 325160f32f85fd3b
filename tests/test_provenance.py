"""What a checkpoint records about its training world, and the one line an evaluation in another world prints."""

from __future__ import annotations

import dataclasses

import pytest

from pushcut.sim.randomization import RandomizationConfig
from pushcut.train.provenance import (
    evaluation_note,
    randomization_name,
    training_world,
    world_differences,
    worlds_seen,
)


def test_randomization_names_presets_configs_and_dataset_copies():
    assert randomization_name(None) == "clean"
    assert randomization_name("randomized") == "randomized"
    assert randomization_name(RandomizationConfig.preset("randomized")) == "randomized"
    as_stored = dataclasses.asdict(RandomizationConfig.preset("clean"))  # how a dataset index keeps it
    assert randomization_name(as_stored) == "clean"
    assert randomization_name(RandomizationConfig(lighting=True)) == "lighting"  # a factor preset
    assert randomization_name(dataclasses.asdict(RandomizationConfig.preset("distractors"))) == "distractors"
    assert randomization_name("table_height") == "table_height"
    two_switches = RandomizationConfig(lighting=True, distractors=True)
    assert randomization_name(two_switches) == "custom (lighting, distractors)"
    assert randomization_name(RandomizationConfig(lighting=True, max_table_drop=0.05)) == "custom (lighting)"
    with pytest.raises(ValueError, match="expected one of: clean, randomized, object_colors, .*head_camera_jitter"):
        randomization_name("noisy")


def test_a_factor_preset_evaluation_of_a_randomized_checkpoint_is_noted():
    trained, evaluated = training_world({"randomization": "randomized"}), training_world({"randomization": "lighting"})
    note = world_differences(trained, evaluated)
    assert note == "note: the checkpoint's world differs: trained on randomized scenes, evaluated on lighting"


def test_same_world_has_no_note_and_each_difference_is_named():
    trained = training_world({"randomization": "clean"})
    assert trained == {"engine": "mujoco", "randomization": "clean", "camera_calibration": None}
    assert world_differences(trained, training_world({})) is None
    assert world_differences(None, training_world({"randomization": "randomized"})) is None  # predates the record
    engine = world_differences(trained, {**trained, "engine": "sapien"})
    assert engine == "note: the checkpoint's world differs: trained in mujoco, evaluated in sapien"
    calibrated = {**trained, "camera_calibration": {"name": "rig_a", "sha256": "0123456789abcdef"}}
    note = world_differences(calibrated, training_world({"randomization": "randomized"}))
    assert "trained on clean scenes, evaluated on randomized" in note
    assert "trained with calibration rig_a (01234567), evaluated with the nominal head camera" in note
    assert "\n" not in note


def test_a_checkpoint_that_learned_from_several_worlds_is_not_noted_in_any_of_them():
    randomized, clean = training_world({"randomization": "randomized"}), training_world({})
    mixed_sft = {"world": randomized, "extra_world": clean, "start_worlds": []}
    assert worlds_seen(mixed_sft) == [randomized, clean]
    assert evaluation_note(mixed_sft, clean) is None and evaluation_note(mixed_sft, randomized) is None
    grpo = {"world": randomized, "start_worlds": worlds_seen(mixed_sft)}  # GRPO on randomised scenes from that start
    assert worlds_seen(grpo) == [randomized, clean] and evaluation_note(grpo, clean) is None
    note = evaluation_note(grpo, training_world({"randomization": "lighting"}))
    assert note == "note: the checkpoint's world differs: trained on randomized scenes, evaluated on lighting"
    only_randomized = {"world": randomized, "extra_world": None}
    assert "evaluated on clean" in evaluation_note(only_randomized, clean)
    assert evaluation_note({}, clean) is None  # predates the record
