"""`pushcut train bench`: how fast the token VLA runs here, and what the 7B preset costs on paper.

Measured on the ``tiny`` preset (random weights; speed does not depend on the values):
- latency_ms[b]: one action chunk for b observations, end to end through :class:`ChunkPolicy` — preprocessing of
  raw 320x240 camera frames (centre crop + resize), proprio normalisation, instruction tokenisation, one forward
  pass, greedy decoding, de-normalisation. Median of ``repeats`` calls after one warm-up; ``model_ms[b]`` is the
  forward pass + argmax alone.
- sft_samples_per_s: forward + backward + AdamW step on batches of ``sft_batch`` preprocessed samples (what
  ``pushcut train sft`` does minus data loading, which runs in DataLoader workers).

The rollout and GRPO-step benchmarks (`bench-rollout`, `bench-grpo`) are in :mod:`pushcut.train.rollout_bench`.

Computed (no weights needed): :func:`model_cost` counts the parameters of a preset by building its transformers
sub-models on the ``meta`` device, and derives per-chunk forward FLOPs and memory from them:

- tokens per forward = n_cameras x (image_size / patch)^2 vision tokens + 1 proprio token + prompt tokens
  + chunk x 14 action slots (all in one bidirectional pass, no KV cache);
- FLOPs = 2 x (matmul parameters) x tokens for vision and LLM separately, plus attention scores and values
  4 x layers x tokens^2 x hidden; the embedding table is a lookup (no FLOPs) and the LM head is restricted to the
  256 action rows for the action slots only;
- memory: weights at the preset's dtype; full fine-tuning with AdamW in mixed precision needs about 16 bytes per
  parameter (bf16 weights and gradients 2 + 2, fp32 master weights 4, two fp32 moments 8) before activations.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pushcut.train.presets import PolicyConfig, get_preset

_DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
CPU_PRESETS = ("tiny", "small")
INSTRUCTION = "use the arm closest to the bell to press it once, then pull back"
TRAIN_BYTES_PER_PARAM = 16  # bf16 weights + grads (2 + 2), fp32 master (4), AdamW moments (4 + 4)


@dataclass(frozen=True)
class ModelCost:
    preset: str
    params_vision: int
    params_llm: int
    params_extra: int  # projector, proprio projection, action-slot embeddings
    tokens_per_forward: int
    flops_per_chunk: float
    weight_bytes: int
    train_bytes: int  # weights + gradients + AdamW state, no activations

    @property
    def params_total(self) -> int:
        return self.params_vision + self.params_llm + self.params_extra

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["params_total"] = self.params_total
        return d


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _vision_cost(config: PolicyConfig, vcfg: Any, params: int) -> tuple[int, float]:
    """(tokens, forward FLOPs) of one camera image: a ViT's matmuls and attention, or the keypoint encoder's
    convolutions (2 k² c_in c_out per output pixel) and readouts."""
    if config.vision_class == "keypoints":
        side, c_in, flops = config.image_size, 3, 0.0
        for i, c_out in enumerate(vcfg.channels):
            kernel = 5 if i == 0 else 3
            side //= 2 if i % 2 == 0 else 1
            flops += 2.0 * kernel * kernel * c_in * c_out * side * side
            c_in = c_out
        pixels = side * side
        flops += 2.0 * c_in * vcfg.keypoints * pixels + 2.0 * vcfg.keypoints * pixels * (c_in + 2)  # maps + pooling
        flops += 2.0 * (2 + 4 * vcfg.n_frequencies + c_in) * vcfg.hidden_size * vcfg.keypoints
        flops += 2.0 * c_in * vcfg.hidden_size * vcfg.grid**2
        return vcfg.num_tokens, flops
    patches = (config.image_size // vcfg.patch_size) ** 2
    matmul = params - patches * vcfg.hidden_size  # without the position table
    return patches, 2.0 * matmul * patches + 4.0 * vcfg.num_hidden_layers * patches**2 * vcfg.hidden_size


def model_cost(config: PolicyConfig, prompt_tokens: int = 24) -> ModelCost:
    """Parameters, tokens, FLOPs per chunk and memory of ``config`` (see the module docstring)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from pushcut.train.model import build_vision

    with torch.device("meta"):
        vision = build_vision(config)
        llm = LlamaForCausalLM(LlamaConfig(**config.llm))
    vcfg, lcfg = vision.config, llm.config
    d, dv = lcfg.hidden_size, vcfg.hidden_size
    params_vision, params_llm = _count(vision), _count(llm)
    params_extra = (dv * d + d + d * d + d) + (config.proprio_dim * d + d if config.use_proprio else 0)
    params_extra += config.n_action_tokens * d

    per_camera_tokens, vision_flops = _vision_cost(config, vcfg, params_vision)
    vision_tokens = len(config.cameras) * per_camera_tokens
    tokens = vision_tokens + int(config.use_proprio) + prompt_tokens + config.n_action_tokens
    vocab_params = lcfg.vocab_size * d
    llm_matmul = params_llm - 2 * vocab_params  # without the embedding table and the full LM head
    flops = vision_flops * len(config.cameras)
    flops += 2.0 * (dv * d + d * d) * vision_tokens  # projector
    flops += 2.0 * llm_matmul * tokens + 4.0 * lcfg.num_hidden_layers * tokens**2 * d
    flops += 2.0 * config.n_bins * d * config.n_action_tokens  # LM head restricted to the action ids
    total = params_vision + params_llm + params_extra
    return ModelCost(
        preset=config.name,
        params_vision=params_vision,
        params_llm=params_llm,
        params_extra=params_extra,
        tokens_per_forward=tokens,
        flops_per_chunk=flops,
        weight_bytes=total * _DTYPE_BYTES[config.dtype],
        train_bytes=total * TRAIN_BYTES_PER_PARAM,
    )


def _runner(config: PolicyConfig):
    from pushcut.train.action_tokenizer import ActionTokenizer, NormStats
    from pushcut.train.checkpoint import LoadedCheckpoint
    from pushcut.train.inference import ChunkPolicy
    from pushcut.train.model import VLAPolicy

    stats = NormStats(low=-np.ones(config.action_dim), high=np.ones(config.action_dim))
    meta = {"cameras": list(config.cameras), "image_size": config.image_size, "chunk": config.chunk, "action_hz": 16.7}
    loaded = LoadedCheckpoint(VLAPolicy(config).eval(), ActionTokenizer(stats, config.n_bins), stats, meta)
    return ChunkPolicy(loaded)


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def _preset_speed(config: PolicyConfig, batch_sizes: tuple[int, ...], repeats: int, sft_batch: int,
                  sft_steps: int) -> dict[str, Any]:  # fmt: skip
    """Chunk latency (end to end and model only) per batch size and the SFT step of one preset."""
    runner = _runner(config)
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {"latency_ms": {}, "model_ms": {}}
    for b in batch_sizes:
        frames = [{c: rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for c in config.cameras} for _ in range(b)]
        states = rng.uniform(-0.5, 0.5, (b, config.proprio_dim))
        texts = [INSTRUCTION] * b

        def end_to_end(frames=frames, states=states, texts=texts) -> None:
            runner.predict(runner.prepare(frames, states, texts))

        batch = runner.batch(runner.prepare(frames, states, texts))
        results["latency_ms"][b] = _median_ms(end_to_end, repeats)
        results["model_ms"][b] = _median_ms(lambda batch=batch: runner.policy.greedy(batch), repeats)

    policy = runner.policy.train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    inputs = runner.prepare(
        [{c: rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for c in config.cameras} for _ in range(sft_batch)],
        rng.uniform(-0.5, 0.5, (sft_batch, config.proprio_dim)),
        [INSTRUCTION] * sft_batch,
    )
    batch = runner.batch(inputs)
    targets = torch.randint(0, config.n_bins, (sft_batch, config.chunk, config.action_dim))

    def sft_step() -> None:
        loss = policy.loss(batch, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step_ms = _median_ms(sft_step, sft_steps)
    results.update(sft_batch=sft_batch, sft_step_ms=step_ms, sft_samples_per_s=sft_batch / (step_ms / 1000.0))
    results["cost"] = model_cost(config, prompt_tokens=len(INSTRUCTION) + 1).as_dict()
    return results


def run_benchmarks(
    presets: tuple[str, ...] = CPU_PRESETS,
    batch_sizes: tuple[int, ...] = (1, 16),
    repeats: int = 10,
    sft_batch: int = 32,
    sft_steps: int = 5,
) -> dict[str, Any]:
    """Speed of each CPU preset (random weights), and the 7B preset's cost on paper."""
    torch.manual_seed(0)
    results: dict[str, Any] = {"torch_threads": torch.get_num_threads(), "presets": {}}
    for name in presets:
        results["presets"][name] = _preset_speed(get_preset(name), batch_sizes, repeats, sft_batch, sft_steps)
    results["openvla_oft_7b_cost"] = model_cost(get_preset("openvla-oft-7b", weights_dir="(on paper)")).as_dict()
    return results


def _fmt_cost(c: dict[str, Any]) -> list[str]:
    return [
        f"| {c['preset']} | {c['params_total'] / 1e6:,.1f} M (vision {c['params_vision'] / 1e6:,.1f} M, "
        f"LLM {c['params_llm'] / 1e6:,.1f} M) | {c['tokens_per_forward']} | {c['flops_per_chunk'] / 1e9:,.1f} GFLOP "
        f"| {c['weight_bytes'] / 2**30:,.2f} GiB | {c['train_bytes'] / 2**30:,.1f} GiB |"
    ]


def format_table(r: dict[str, Any]) -> str:
    lines = [f"torch threads: {r['torch_threads']}", "", "| measurement | value |", "|---|---|"]
    for name, p in r["presets"].items():
        for b, ms in p["latency_ms"].items():
            lines.append(f"| {name}: chunk latency, batch {b}, end to end (320x240 frames in) | {ms:.1f} ms |")
            lines.append(f"| {name}: chunk latency, batch {b}, model forward only | {p['model_ms'][b]:.1f} ms |")
        lines.append(
            f"| {name}: SFT step, batch {p['sft_batch']} (fwd + bwd + AdamW) | {p['sft_step_ms']:.0f} ms = "
            f"{p['sft_samples_per_s']:.1f} samples/s |"
        )
    lines += [
        "",
        "| preset | parameters | tokens / forward | FLOPs / chunk | weights | training state (16 B/param) |",
        "|---|---|---|---|---|---|",
    ]
    for p in r["presets"].values():
        lines += _fmt_cost(p["cost"])
    lines += _fmt_cost(r["openvla_oft_7b_cost"])
    return "\n".join(lines)
