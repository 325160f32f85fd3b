"""What `pushcut bench all` runs: each benchmark's command, its full and quick sizes, and the metrics read from its
JSON output with the goals stated in docs/benchmarks.md (from the issues).

A benchmark is a command that prints one JSON object on stdout when given ``--json``; ``params`` become its
options (``rollout_envs=4`` → ``--rollout-envs 4``), so the recorded parameters are exactly the command line.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pushcut.train.presets import MICRO_OVERRIDES

CHECKPOINT_PLACEHOLDER = "CKPT"  # shown in reproducing commands instead of a temporary checkpoint path


@dataclass(frozen=True)
class Goal:
    """A target such as ``<= 1.15``; ``met`` says whether a measured value reaches it."""

    op: str  # "<=" or ">="
    value: float
    unit: str = ""

    def met(self, measured: float) -> bool:
        compare = {"<=": operator.le, ">=": operator.ge}[self.op]
        return bool(math.isfinite(measured) and compare(measured, self.value))

    def __str__(self) -> str:
        return f"{self.op} {self.value:g}{' ' + self.unit if self.unit else ''}"


@dataclass(frozen=True)
class Metric:
    """One number of a benchmark's JSON result: ``read(result)``, shown with ``unit`` and ``digits`` decimals."""

    label: str
    read: Callable[[dict[str, Any]], float]
    unit: str
    digits: int = 2
    goal: Goal | None = None


@dataclass(frozen=True)
class Benchmark:
    """A benchmark command (``python ARGV...``, shown to users as ``shown``) and what to read from its output."""

    name: str
    argv: tuple[str, ...]  # after the Python executable, e.g. ("-m", "pushcut", "sim", "bench")
    shown: str  # how a user types it, e.g. "pushcut sim bench"
    full: dict[str, Any]
    quick: dict[str, Any]
    metrics: tuple[Metric, ...]
    checkpoint: str = "none"  # "required": always --checkpoint; "optional": the user's, or with --quick the built one
    timeout_s: float = 3600.0
    notes: str = ""
    extra_args: tuple[str, ...] = field(default=("--json",))

    def params(self, quick: bool) -> dict[str, Any]:
        return dict(self.quick if quick else self.full)

    def takes_checkpoint(self, quick: bool, user_gave_one: bool) -> bool:
        return self.checkpoint == "required" or (self.checkpoint == "optional" and (quick or user_gave_one))


def options(params: dict[str, Any]) -> list[str]:
    """``{"rollout_envs": 4, "step_limit": None}`` → ``["--rollout-envs", "4"]`` (None values are left out)."""
    out: list[str] = []
    for key, value in params.items():
        if value is not None:
            out += [f"--{key.replace('_', '-')}", str(value)]
    return out


def _raw_1_camera(result: dict[str, Any]) -> dict[str, float]:
    """The latency row of the smallest camera count sent raw (the row the serving goals are stated for)."""
    return next(row for name, row in result["latency"].items() if name.endswith("raw"))


def _loop_at(hz: float) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda r: next(loop for loop in r["executor"] if loop["servo_hz"] == hz)


_at_200 = _loop_at(200.0)

BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        name="sim",
        argv=("-m", "pushcut", "sim", "bench"),
        shown="pushcut sim bench",
        full={"task": "click_bell", "steps": 400, "rounds": 3},
        quick={"task": "click_bell", "steps": 50, "rounds": 1},
        metrics=(
            Metric(
                "env overhead over raw MuJoCo, rendered",
                lambda r: r["env_overhead_render"],
                "x",
                3,
                Goal("<=", 1.15, "x"),
            ),
            Metric("DualPiperEnv.step, head camera rendered", lambda r: r["env_render_sps"], "steps/s", 1),
            Metric(
                "EnvPool.step_chunk speed-up, 2 vs 1 workers",
                lambda r: r["pool_chunk_speedup"],
                "x",
                2,
                Goal(">=", 1.8, "x"),
            ),
            Metric("this machine's ceiling, 2 vs 1 processes", lambda r: r["machine_ceiling_speedup"], "x", 2),
        ),
    ),  # fmt: skip
    Benchmark(
        name="sim-sapien",
        argv=("-m", "pushcut", "sim", "bench"),
        shown="pushcut sim bench",
        full={"task": "click_bell", "steps": 400, "rounds": 3, "sim": "sapien"},
        quick={"task": "click_bell", "steps": 50, "rounds": 1, "sim": "sapien"},
        metrics=(
            Metric(
                "env overhead over raw SAPIEN, rendered",
                lambda r: r["env_overhead_render"],
                "x",
                3,
                Goal("<=", 1.15, "x"),
            ),
            Metric("DualPiperEnv.step in SAPIEN, head camera rendered", lambda r: r["env_render_sps"], "steps/s", 1),
            Metric("SAPIEN / MuJoCo env rate, rendered", lambda r: r["sapien_vs_mujoco_render"], "x", 2),
            Metric("SAPIEN EnvPool.step_chunk speed-up, 2 vs 1 workers", lambda r: r["pool_chunk_speedup"], "x", 2),
        ),
        notes="raw SAPIEN: scene.step with gravity compensation + the head camera's take_picture / get_picture on "
        "the env's own scene; lavapipe with 1 render thread per process on a CPU-only machine",
    ),  # fmt: skip
    Benchmark(
        name="ray",
        argv=("-m", "pushcut.sim.ray_bench"),
        shown="python -m pushcut.sim.ray_bench",
        full={"envs": 4, "workers": 2, "actions": 400, "chunk": 8, "rounds": 5},
        quick={"envs": 2, "workers": 2, "actions": 24, "chunk": 8, "rounds": 1},
        metrics=(
            Metric("Ray actors vs worker processes, env steps/s (best rounds)", lambda r: r["ratio"], "x", 2),
            Metric("Ray vs processes, lowest round", lambda r: r["ratio_min"], "x", 2),
            Metric("Ray vs processes, highest round", lambda r: r["ratio_max"], "x", 2),
            Metric("env workers as Ray actors", lambda r: r["env_steps_per_s"]["ray"], "env steps/s", 0),
            Metric("env workers as processes", lambda r: r["env_steps_per_s"]["process"], "env steps/s", 0),
            Metric("Ray start-up: import ray", lambda r: r["ray_import_s"], "s", 1),
            Metric("Ray start-up: a local instance (ray.init)", lambda r: r["ray_start_s"], "s", 1),
            Metric("pool start, 2 Ray actors", lambda r: r["pool_start_s"]["ray"], "s", 1),
            Metric("pool start, 2 processes", lambda r: r["pool_start_s"]["process"], "s", 1),
            Metric("round trip of an empty call, Ray actors", lambda r: r["call_ms"]["ray"], "ms", 2),
            Metric("round trip of an empty call, processes", lambda r: r["call_ms"]["process"], "ms", 2),
        ),
        notes="issue 28: the same chunks on the same seeds, head camera 320x240 sent back per chunk; the backends "
        "alternate and each counts its best round (the machine is shared), the round ratios give the spread",
    ),  # fmt: skip
    Benchmark(
        name="train",
        argv=("-m", "pushcut", "train", "bench"),
        shown="pushcut train bench",
        full={"repeats": 10, "sft_batch": 32, "sft_steps": 5},
        quick={"repeats": 1, "sft_batch": 4, "sft_steps": 1},
        metrics=tuple(
            metric
            for preset in ("tiny", "small")
            for metric in (
                Metric(
                    f"{preset}: chunk latency, batch 1, end to end",
                    lambda r, p=preset: r["presets"][p]["latency_ms"]["1"],
                    "ms",
                    1,
                ),
                Metric(
                    f"{preset}: chunk latency, batch 16, end to end",
                    lambda r, p=preset: r["presets"][p]["latency_ms"]["16"],
                    "ms",
                    1,
                ),
                Metric(
                    f"{preset}: SFT samples/s", lambda r, p=preset: r["presets"][p]["sft_samples_per_s"], "samples/s", 1
                ),
            )
        ),  # fmt: skip
    ),
    Benchmark(
        name="rollout",
        argv=("-m", "pushcut", "train", "bench-rollout"),
        shown="pushcut train bench-rollout",
        full={"task": "click_bell", "groups": 4, "group_size": 8, "rollout_envs": 16, "env_workers": 2, "rounds": 3},
        quick={
            "task": "click_bell",
            "groups": 1,
            "group_size": 4,
            "rollout_envs": 4,
            "env_workers": 1,
            "step_limit": 12,
            "rounds": 1,
        },
        metrics=(
            Metric(
                "GRPO rollout speed-up over a SimpleVLA-RL-style loop",
                lambda r: r["speedup"],
                "x",
                2,
                Goal(">=", 3.0, "x"),
            ),
            Metric("our rollout", lambda r: r["ours_episodes_per_s"], "episodes/s", 2),
            Metric("the SimpleVLA-RL-style loop", lambda r: r["simplevla_style_episodes_per_s"], "episodes/s", 2),
            Metric("sampled success of the checkpoint", lambda r: 100 * r["success_rate"], "%", 0),
        ),
        checkpoint="required",
        notes="each loop's best of 3 alternating rounds on warmed-up pools (issue 25); the speed-up depends on the "
        "checkpoint's success rate (early exit); a few-step SFT one succeeds ~never",
    ),  # fmt: skip
    Benchmark(
        name="grpo",
        argv=("-m", "pushcut", "train", "bench-grpo"),
        shown="pushcut train bench-grpo",
        full={
            "task": "click_bell",
            "steps": 3,
            "groups_per_step": 8,
            "group_size": 8,
            "rollout_envs": 16,
            "env_workers": 2,
            "step_limit": 48,
        },
        quick={
            "task": "click_bell",
            "steps": 2,
            "groups_per_step": 1,
            "group_size": 4,
            "rollout_envs": 4,
            "env_workers": 1,
            "step_limit": 8,
        },
        metrics=(
            Metric("GRPO step (full size: 8 groups of 8)", lambda r: r["step_s"], "s", 1),
            Metric("of which rollout", lambda r: r["rollout_s"], "s", 1),
            Metric("of which update", lambda r: r["update_s"], "s", 1),
        ),
        checkpoint="required",
        notes="the benchmark checkpoint (the small preset); dynamic sampling off, so every step trains on 8 groups",
    ),  # fmt: skip
    Benchmark(
        name="serve",
        argv=("-m", "pushcut", "serve", "bench"),
        shown="pushcut serve bench",
        full={"requests": 300, "warmup": 20, "clients": 4, "seconds": 10.0},
        quick={"requests": 20, "warmup": 3, "clients": 4, "seconds": 1.5},
        metrics=(
            Metric(
                "server overhead p50, 1 camera raw",
                lambda r: _raw_1_camera(r)["server_overhead_p50"],
                "ms",
                2,
                Goal("<=", 2.0, "ms"),
            ),
            Metric(
                "server overhead p99, 1 camera raw",
                lambda r: _raw_1_camera(r)["server_overhead_p99"],
                "ms",
                2,
                Goal("<=", 5.0, "ms"),
            ),
            Metric("round trip p50, 1 camera raw", lambda r: _raw_1_camera(r)["round_trip_p50"], "ms", 1),
            Metric("throughput, 4 clients vs 1 (micro-batching)", lambda r: r["throughput"]["ratio"], "x", 2),
            Metric("the model alone, batch 4 vs 1 (ceiling)", lambda r: r["throughput"]["ceiling"]["ratio"], "x", 2),
            Metric(
                "4 clients vs 1, fraction of the ceiling",
                lambda r: r["throughput"]["of_ceiling"],
                "x",
                2,
                Goal(">=", 0.9, "x"),
            ),
        ),
        checkpoint="optional",
        notes="full size without --checkpoint: random-weight tiny checkpoints, 1 and 3 cameras; quick: the built one",
    ),  # fmt: skip
    Benchmark(
        name="robot",
        argv=("-m", "pushcut.robot.bench"),
        shown="python -m pushcut.robot.bench",
        full={"seconds": 5.0, "ticks": 20000},
        quick={"seconds": 0.5, "ticks": 400},
        metrics=(
            Metric(
                "executor period error p99 @ 200 Hz",
                lambda r: _at_200(r)["period_error_ms"]["p99"],
                "ms",
                2,
                Goal("<=", 1.0, "ms"),
            ),
            Metric(
                "safety filter p50, both arms apart",
                lambda r: r["safety_filter"]["open space"]["wall_us"]["p50"],
                "µs",
                0,
                Goal("<=", 100.0, "µs"),
            ),
            Metric(
                "safety filter p50, arms 2-6 cm apart, no FK cache",
                lambda r: r["safety_filter"]["arms 2-6 cm apart, no cache"]["wall_us"]["p50"],
                "µs",
                0,
                Goal("<=", 100.0, "µs"),
            ),
        ),
    ),  # fmt: skip
)

NAMES = tuple(b.name for b in BENCHMARKS)

# The checkpoint built for benchmarks that need one: speed depends on the model's size, not on its skill.
QUICK_IMAGES = {"image_width": 64, "image_height": 48}
QUICK_POLICY = MICRO_OVERRIDES


def build_bench_checkpoint(out: Path, quick: bool, device: str = "cpu") -> dict[str, Any]:
    """Expert demos of click_bell and a few SFT steps on ``device`` (quick: 2 demos at 64x48, the micro model, 2
    steps; else 4 demos at 320x240, the small preset, 20 steps). Returns the checkpoint's path and how it was made."""
    from pushcut.sim.demos import generate_demos
    from pushcut.train.sft import SFTConfig, train_sft

    preset, episodes, images, policy, steps = ("tiny", 2, QUICK_IMAGES, QUICK_POLICY, 2) if quick else \
        ("small", 4, None, {}, 20)  # fmt: skip
    summary = generate_demos("click_bell", episodes, out / "demos", seed=0, workers=1, env_overrides=images,
                             progress=False)  # fmt: skip
    if summary.kept < episodes:
        raise RuntimeError(f"the expert kept only {summary.kept} of {episodes} demonstrations")
    config = SFTConfig(data=str(out / "demos"), out=str(out / "sft"), preset=preset, preset_overrides=policy,
                       max_steps=steps, batch_size=8, lr=1e-3, warmup_steps=1, num_workers=0, seed=0, log_every=1,
                       progress=False, device=device)  # fmt: skip
    trained = train_sft(config)
    made = {"task": "click_bell", "demos": episodes, "images": images or "320x240", "preset_overrides": policy}
    return {"checkpoint": str(trained["checkpoint"]), **made, "preset": preset, "sft_steps": steps}
