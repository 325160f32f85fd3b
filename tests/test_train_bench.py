"""train/bench.py: the on-paper cost model agrees with real models; the speed benchmark runs (marker)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from conftest import MICRO_POLICY  # noqa: E402

from pushcut.train.bench import format_table, model_cost, run_benchmarks  # noqa: E402
from pushcut.train.model import VLAPolicy  # noqa: E402
from pushcut.train.presets import get_preset  # noqa: E402


@pytest.mark.parametrize("overrides", [{}, MICRO_POLICY, {"cameras": ["head_camera", "left_camera"], "chunk": 4}])
def test_parameter_count_matches_the_built_model(overrides):
    config = get_preset("tiny", **overrides)
    cost = model_cost(config, prompt_tokens=10)
    assert cost.params_total == VLAPolicy(config).num_parameters()
    patches = (config.image_size // config.vision["patch_size"]) ** 2
    assert cost.tokens_per_forward == len(config.cameras) * patches + 1 + 10 + config.chunk * 14
    # dense matmuls dominate: FLOPs are at least 2 x (LLM body parameters) x tokens
    body = cost.params_llm - 2 * config.llm["vocab_size"] * config.llm["hidden_size"]
    assert cost.flops_per_chunk > 2 * body * cost.tokens_per_forward
    assert cost.weight_bytes == 4 * cost.params_total and cost.train_bytes == 16 * cost.params_total


def test_small_preset_cost_counts_the_keypoint_encoder():
    config = get_preset("small")
    cost = model_cost(config, prompt_tokens=10)
    assert cost.params_total == VLAPolicy(config).num_parameters()
    vision = config.vision
    assert cost.tokens_per_forward == vision["keypoints"] + vision["grid"] ** 2 + 1 + 10 + config.chunk * 14
    body = cost.params_llm - 2 * config.llm["vocab_size"] * config.llm["hidden_size"]
    conv = 2 * 3 * 3 * 64 * 128 * 16 * 16  # the last conv layer alone
    assert cost.flops_per_chunk > 2 * body * cost.tokens_per_forward + conv


def test_7b_preset_on_paper():
    cost = model_cost(get_preset("openvla-oft-7b", weights_dir="unused"))
    assert 6.73e9 < cost.params_llm < 6.75e9  # LLaMA-2-7B (6.738 B) with OpenVLA's 32064-entry vocabulary
    assert 0.39e9 < cost.params_vision < 0.43e9  # SigLIP so400m
    assert cost.weight_bytes == 2 * cost.params_total  # bf16


@pytest.mark.benchmark
def test_train_benchmark_prints_numbers():
    results = run_benchmarks(repeats=3, sft_steps=2)
    print("\n" + format_table(results))
    for preset in ("tiny", "small"):
        speed = results["presets"][preset]
        assert speed["latency_ms"][1] > 0 and speed["sft_samples_per_s"] > 0


@pytest.mark.benchmark
def test_rollout_comparison_prints_speedup(micro_checkpoint):
    from pushcut.train.rollout_bench import rollout_comparison

    r = rollout_comparison(str(micro_checkpoint), "click_bell", groups=2, group_size=4, rollout_envs=8, rounds=2,
                           env_overrides={"image_width": 64, "image_height": 48, "step_limit": 16})  # fmt: skip
    print(f"\nours {r['ours_episodes_per_s']:.2f} ep/s, reference loop {r['simplevla_style_episodes_per_s']:.2f} "
          f"ep/s, speed-up {r['speedup']:.2f}x")  # fmt: skip
    assert r["episodes"] == 8 and r["speedup"] > 0 and len(r["ours_s_rounds"]) == 2
    assert r["ours_s"] == min(r["ours_s_rounds"]) and r["simplevla_style_s"] == min(r["simplevla_style_s_rounds"])
    for split, total in ((r["ours_split_s"], r["ours_s"]), (r["simplevla_style_split_s"], r["simplevla_style_s"])):
        assert split["forward"] > 0 and split["env"] > 0 and abs(sum(split.values()) - total) < 1e-6
