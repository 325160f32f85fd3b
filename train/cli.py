"""`pushcut train ...` (supervised fine-tuning) and `pushcut eval ...` (closed-loop evaluation in simulation)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from pushcut.sim.world_options import (
    PiperUrdfOption,
    RandomizationOption,
    RobotwinDir,
    RobotwinPython,
    SimOption,
    piper_urdf_overrides,
)
from pushcut.train.augment import COLOR_JITTER

app = typer.Typer(no_args_is_help=True, add_completion=False)

EnvBackend = Annotated[
    str,
    typer.Option("--env-backend", help="Env workers: process (local processes) or ray (Ray actors: pushcut[ray], "
                 "docs/ray.md)."),
]  # fmt: skip
RayAddress = Annotated[
    str | None, typer.Option("--ray-address", help="With --env-backend ray: the Ray head's HOST:PORT (default: local).")
]


def _parse_overrides(pairs: list[str]) -> dict:
    """`key=value` pairs; values are JSON when they parse (numbers, lists, objects), else strings."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--set expects key=value, got {pair!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


@app.command()
def sft(
    data: Annotated[Path, typer.Option("--data", help="Demonstrations from `pushcut sim demo`.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory (checkpoints/, latest, metrics.jsonl, tb/).")],
    preset: Annotated[
        str, typer.Option("--preset", help="Model preset: tiny, small (ignored with an OpenVLA-OFT --init).")
    ] = "tiny",
    max_episodes: Annotated[
        int | None, typer.Option("--max-episodes", help="Demonstration budget: use the first N episodes.")
    ] = None,
    extra_data: Annotated[
        Path | None, typer.Option(help="A second demonstration directory of the task, mixed in (e.g. clean scenes).")
    ] = None,
    extra_episodes: Annotated[int | None, typer.Option(help="Use the first N episodes of --extra-data.")] = None,
    epochs: int = 10,
    max_steps: Annotated[int | None, typer.Option(help="Overrides --epochs when set.")] = None,
    batch_size: int = 32,
    lr: float = 3e-4,
    warmup_steps: int = 100,
    num_workers: int = 2,
    augment: Annotated[bool, typer.Option(help="Random 90% crops in training (else the centre crop).")] = True,
    color_jitter: Annotated[
        bool,
        typer.Option(
            help=f"Per training image random {COLOR_JITTER.summary()} (train/augment.py); never at evaluation."
        ),
    ] = False,
    save_every: Annotated[int, typer.Option(help="Checkpoint every N steps (0: final only).")] = 0,
    label_sigma: Annotated[
        float, typer.Option(help="HL-Gauss ordinal targets of this std in bins (0: one-hot cross-entropy).")
    ] = 0.0,
    aux_position_weight: Annotated[
        float,
        typer.Option(
            help="Weight of the auxiliary loss reading the objects' positions from the action slots (0: off)."
        ),
    ] = 0.0,
    aux_vision_weight: Annotated[
        float,
        typer.Option(help="Weight of the auxiliary loss reading the objects' positions from the vision tokens."),
    ] = 0.0,
    vision_init: Annotated[
        Path | None, typer.Option(help="Start the vision encoder from a `pushcut train localiser` directory.")
    ] = None,
    freeze_vision: Annotated[bool, typer.Option(help="Keep the vision encoder's weights fixed.")] = False,
    seed: int = 0,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out exactly where it stopped.")] = False,
    init: Annotated[
        Path | None,
        typer.Option(
            "--init",
            help="Start from this checkpoint (weights + norm stats), fresh optimizer; may be a published "
            "OpenVLA-OFT directory.",
        ),
    ] = None,
    max_minutes: Annotated[float | None, typer.Option(help="Stop (and save) after this much wall time.")] = None,
    lora_rank: Annotated[int, typer.Option(help="OpenVLA-OFT: LoRA rank (0: full fine-tuning).")] = 0,
    lora_alpha: Annotated[float | None, typer.Option(help="OpenVLA-OFT: LoRA alpha (default min(rank, 16)).")] = None,
    lora_save: Annotated[str, typer.Option(help="OpenVLA-OFT: checkpoints 'merged' or 'adapter' (peft).")] = "merged",
    gradient_checkpointing: Annotated[
        bool, typer.Option(help="OpenVLA-OFT: recompute activations in the backward pass.")
    ] = False,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Preset override key=value (JSON values), repeatable.")
    ] = None,
) -> None:
    """Supervised fine-tuning of a token VLA on expert demonstrations."""
    from pushcut.train.sft import SFTConfig, train_sft

    try:
        config = SFTConfig(
            data=str(data),
            max_episodes=max_episodes,
            extra_data=str(extra_data) if extra_data else None,
            extra_episodes=extra_episodes,
            out=str(out),
            preset=preset,
            preset_overrides=_parse_overrides(set_ or []),
            epochs=epochs,
            max_steps=max_steps,
            batch_size=batch_size,
            lr=lr,
            warmup_steps=warmup_steps,
            num_workers=num_workers,
            augment=augment,
            color_jitter=color_jitter,
            label_sigma=label_sigma,
            aux_position_weight=aux_position_weight,
            aux_vision_weight=aux_vision_weight,
            vision_init=str(vision_init) if vision_init else None,
            freeze_vision=freeze_vision,
            save_every=save_every,
            seed=seed,
            resume=resume,
            init=str(init) if init else None,
            max_minutes=max_minutes,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            lora_save=lora_save,
            gradient_checkpointing=gradient_checkpointing,
        )
        summary = train_sft(config)
    except (ValueError, FileNotFoundError, KeyError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"trained {summary['step']} steps, final loss {summary['final_loss']:.4f}, "
        f"{summary['samples_per_s']:.1f} samples/s -> {summary['checkpoint']}"
    )


eval_app = typer.Typer(no_args_is_help=True, add_completion=False)


@eval_app.command("sim")
def eval_sim(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Checkpoint directory (e.g. RUN/latest).")],
    task: Annotated[str, typer.Option("--task", help="Task to evaluate on.")],
    episodes: Annotated[int, typer.Option("--episodes", help="Number of held-out episodes.")] = 50,
    workers: Annotated[int, typer.Option("--workers", help="Parallel environments (worker processes).")] = 1,
    video_dir: Annotated[Path | None, typer.Option("--video-dir", help="mp4s of the first episodes.")] = None,
    max_videos: int = 3,
    seed_start: Annotated[int | None, typer.Option(help="First seed (default: EVAL_SEED_START).")] = None,
    step_limit: Annotated[int | None, typer.Option(help="Override the task's step limit.")] = None,
    randomization: RandomizationOption = "clean",
    instructions: Annotated[
        str, typer.Option(help="Instruction templates: seen (training) or unseen (held out from training).")
    ] = "seen",
    device: Annotated[str | None, typer.Option("--device", help="torch device, e.g. cuda:0 (default: cpu).")] = None,
    camera_calibration: Annotated[
        Path | None, typer.Option("--camera-calibration", help="Head camera pose from `pushcut robot align`.")
    ] = None,
    env_backend: EnvBackend = "process",
    ray_address: RayAddress = None,
    sim: SimOption = "mujoco",
    robotwin_dir: RobotwinDir = None,
    robotwin_python: RobotwinPython = None,
    piper_urdf: PiperUrdfOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")] = False,
) -> None:
    """Closed-loop evaluation of a checkpoint in simulation (greedy decoding, held-out seeds)."""
    from pushcut.common.conventions import EVAL_SEED_START
    from pushcut.sim.robotwin.backend import ROBOTWIN_ERRORS, world_overrides
    from pushcut.train.evaluate import evaluate

    overrides = {"randomization": randomization, "instruction_split": instructions}
    if step_limit is not None:
        overrides["step_limit"] = step_limit
    if camera_calibration is not None:
        overrides["camera_calibration"] = str(camera_calibration)
    try:
        overrides.update(world_overrides(sim, robotwin_dir, robotwin_python))
        overrides.update(piper_urdf_overrides(sim, piper_urdf))
        result = evaluate(
            checkpoint,
            task,
            episodes,
            workers=workers,
            video_dir=video_dir,
            seed_start=EVAL_SEED_START if seed_start is None else seed_start,
            max_videos=max_videos,
            env_overrides=overrides,
            device=device,
            env_backend=env_backend,
            ray_address=ray_address,
        )
    except (ValueError, FileNotFoundError, KeyError, *ROBOTWIN_ERRORS) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if result["world_note"]:
        typer.echo(result["world_note"], err=True)  # on stderr: --json output stays one JSON document
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    low, high = result["wilson_95"]
    typer.echo(
        f"{task}: success {result['successes']}/{result['episodes']} = {result['success_rate']:.1%} "
        f"(Wilson 95% [{low:.1%}, {high:.1%}]), mean length {result['mean_episode_length']:.1f} actions, "
        f"{result['wall_time_s']:.1f} s"
    )
    if result["strategies"]:
        typer.echo("strategies of the successes: " + ", ".join(f"{k} {v}" for k, v in result["strategies"].items()))
    for path in result["videos"]:
        typer.echo(f"video: {path}")


@app.command()
def bench(
    preset: Annotated[
        list[str] | None, typer.Option("--preset", help="CPU preset(s) to time; default tiny and small.")
    ] = None,
    repeats: Annotated[int, typer.Option(help="Timed calls per latency measurement (median reported).")] = 10,
    sft_batch: Annotated[int, typer.Option(help="Samples per timed SFT step.")] = 32,
    sft_steps: Annotated[int, typer.Option(help="Timed SFT steps (median reported).")] = 5,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """CPU presets: chunk latency at batch 1 and 16, SFT samples/s; 7B preset: parameters, FLOPs, memory."""
    from pushcut.train.bench import CPU_PRESETS, format_table, run_benchmarks

    presets = tuple(preset or CPU_PRESETS)
    if not set(presets) <= set(CPU_PRESETS):
        typer.echo(f"error: --preset must be among {list(CPU_PRESETS)} (the 7B preset is costed on paper)", err=True)
        raise typer.Exit(2)
    results = run_benchmarks(presets, repeats=repeats, sft_batch=sft_batch, sft_steps=sft_steps)
    typer.echo(json.dumps(results, indent=1) if as_json else format_table(results))


@app.command()
def grpo(
    init: Annotated[
        Path, typer.Option("--init", help="SFT checkpoint to start from (RUN/latest, or a published OpenVLA-OFT dir).")
    ],
    task: Annotated[list[str], typer.Option("--task", help="Task to train on; repeat for several.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory (checkpoints/, latest, metrics.jsonl, tb/).")],
    steps: int = 100,
    groups_per_step: Annotated[int, typer.Option(help="Kept groups per step (all ranks).")] = 8,
    group_size: Annotated[int, typer.Option(help="Trajectories per initial state (G).")] = 8,
    lr: float = 2e-5,
    temperature: Annotated[float, typer.Option(help="Rollout sampling temperature.")] = 1.6,
    rollout_envs: Annotated[int, typer.Option(help="Envs per task per rank (a multiple of G).")] = 16,
    env_workers: Annotated[int, typer.Option(help="Env processes (or Ray actors) per task per rank.")] = 2,
    env_backend: EnvBackend = "process",
    ray_address: RayAddress = None,
    sim: SimOption = "mujoco",
    robotwin_dir: RobotwinDir = None,
    robotwin_python: RobotwinPython = None,
    piper_urdf: PiperUrdfOption = None,
    val_every: Annotated[int, typer.Option(help="Greedy held-out validation every N steps (0: never).")] = 10,
    val_episodes: int = 50,
    seed: int = 0,
    max_minutes: Annotated[float | None, typer.Option(help="Stop (and save) after this much wall time.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its latest checkpoint.")] = False,
    lora_rank: Annotated[int, typer.Option(help="OpenVLA-OFT: LoRA rank (0: full fine-tuning).")] = 0,
    lora_save: Annotated[str, typer.Option(help="OpenVLA-OFT: checkpoints 'merged' or 'adapter' (peft).")] = "merged",
    gradient_checkpointing: Annotated[
        bool, typer.Option(help="OpenVLA-OFT: recompute activations in the backward pass.")
    ] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Any other GRPOConfig field key=value (JSON values), e.g. clip_high=0.2."),
    ] = None,
) -> None:
    """Outcome-reward GRPO in simulation from an SFT checkpoint (run under torchrun for several processes)."""
    from pushcut.sim.robotwin.backend import ROBOTWIN_ERRORS, world_overrides
    from pushcut.train.grpo import GRPOConfig, train_grpo

    try:
        extra = _parse_overrides(set_ or [])
        world = {**world_overrides(sim, robotwin_dir, robotwin_python), **piper_urdf_overrides(sim, piper_urdf)}
        if world:
            extra["env_overrides"] = {**extra.get("env_overrides", {}), **world}
        config = GRPOConfig(
            init=str(init), tasks=tuple(task), out=str(out), steps=steps, groups_per_step=groups_per_step,
            group_size=group_size, lr=lr, temperature=temperature, rollout_envs=rollout_envs,
            env_workers=env_workers, env_backend=env_backend, ray_address=ray_address, val_every=val_every,
            val_episodes=val_episodes, seed=seed, resume=resume,
            max_minutes=max_minutes, lora_rank=lora_rank, lora_save=lora_save,
            gradient_checkpointing=gradient_checkpointing,
            **extra,
        )  # fmt: skip
        summary = train_grpo(config)
    except (ValueError, FileNotFoundError, KeyError, TypeError, FloatingPointError, *ROBOTWIN_ERRORS) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun only rank 0 reports (it alone writes checkpoints)
    vals = [h["val/success_rate"] for h in summary["history"] if "val/success_rate" in h]
    typer.echo(f"trained {summary['steps']} steps -> {summary['checkpoint']}")
    if vals:
        typer.echo("validation success: " + ", ".join(f"{v:.1%}" for v in vals))


@app.command()
def probe(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Checkpoint directory (e.g. RUN/latest).")],
    task: Annotated[str, typer.Option("--task", help="Task whose scenes are probed.")],
    fit_scenes: Annotated[int, typer.Option(help="Scenes the ridge readouts are fitted on.")] = 400,
    test_scenes: Annotated[int, typer.Option(help="Held-out scenes they are scored on (evaluation seeds).")] = 200,
    workers: Annotated[int, typer.Option(help="Environment processes rendering the scenes.")] = 2,
    randomization: RandomizationOption = "clean",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Does a policy see? Read the object's position out of its vision tokens, action slots and actions."""
    from pushcut.train.probe import probe_policy

    try:
        result = probe_policy(
            checkpoint, task, fit_scenes, test_scenes, workers, env_overrides={"randomization": randomization}
        )
    except (ValueError, FileNotFoundError, KeyError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(result.as_dict(), indent=1) if as_json else result.table())


@app.command()
def localiser(
    data: Annotated[Path, typer.Option("--data", help="Demonstrations with privileged positions (sim demo).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for vision.pt and localiser.json.")],
    preset: Annotated[str, typer.Option(help="The policy preset whose encoder is trained (keypoints).")] = "small",
    steps: int = 1500,
    batch_size: int = 64,
    lr: float = 3e-4,
    holdout_episodes: Annotated[int, typer.Option(help="The last N episodes are held out and scored.")] = 100,
    color_jitter: Annotated[bool, typer.Option(help="Random colour jitter per training image.")] = False,
    seed: int = 0,
    num_workers: int = 1,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Preset override key=value (JSON values), as for train sft.")
    ] = None,
) -> None:
    """Train the policy's vision encoder to find the task's objects (start SFT from it with --vision-init)."""
    from pushcut.train.localiser import LocaliserConfig, train_localiser

    try:
        config = LocaliserConfig(str(data), str(out), preset, _parse_overrides(set_ or []), steps, batch_size, lr,
                                 holdout_episodes=holdout_episodes, color_jitter=color_jitter, seed=seed,
                                 num_workers=num_workers)  # fmt: skip
        report = train_localiser(config)
    except (ValueError, FileNotFoundError, KeyError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(report, indent=1))


@app.command("bench-grpo")
def bench_grpo(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Policy to train (e.g. an SFT checkpoint).")],
    task: Annotated[str, typer.Option("--task")] = "click_bell",
    steps: Annotated[int, typer.Option(help="GRPO steps; the first is warm-up, the rest are timed.")] = 3,
    groups_per_step: int = 8,
    group_size: int = 8,
    rollout_envs: int = 16,
    env_workers: int = 2,
    step_limit: Annotated[int | None, typer.Option(help="Episode length in actions (the experiments' 48).")] = 48,
    env_backend: EnvBackend = "process",
    ray_address: RayAddress = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """GRPO step time split into rollout and update, for the recipe's batch (dynamic sampling off)."""
    from pushcut.train.rollout_bench import grpo_step_timing

    try:
        r = grpo_step_timing(str(checkpoint), task, steps, groups_per_step, group_size, rollout_envs, env_workers,
                             step_limit, env_backend=env_backend, ray_address=ray_address)  # fmt: skip
    except (ValueError, FileNotFoundError, KeyError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(r, indent=1))
        return
    typer.echo(
        f"{task}: GRPO step of {r['trajectories_per_step']} trajectories {r['step_s']:.1f} s = rollout "
        f"{r['rollout_s']:.1f} s + update {r['update_s']:.1f} s (median of {r['steps_timed']} steps; sampled success "
        f"{r['sampled_success_rate']:.0%})"
    )


@app.command("bench-rollout")
def bench_rollout(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Policy to roll out (e.g. an SFT checkpoint).")],
    task: Annotated[str, typer.Option("--task")] = "click_bell",
    groups: Annotated[int, typer.Option(help="Initial states (groups of G episodes) per loop.")] = 4,
    group_size: int = 8,
    rollout_envs: Annotated[int, typer.Option(help="Envs of our rollout pool (a multiple of G).")] = 16,
    env_workers: int = 2,
    step_limit: Annotated[int | None, typer.Option(help="Override the task's step limit.")] = None,
    rounds: Annotated[int, typer.Option(help="Alternating rounds of the two loops; each counts its best.")] = 3,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """GRPO rollout episodes/s: ours (early exit, log-probs kept) vs a SimpleVLA-RL-style loop."""
    from pushcut.train.rollout_bench import format_split, rollout_comparison

    overrides = {"step_limit": step_limit} if step_limit else None
    r = rollout_comparison(
        str(checkpoint), task, groups, group_size, rollout_envs, env_workers, env_overrides=overrides, rounds=rounds
    )
    if as_json:
        typer.echo(json.dumps(r, indent=1))
        return
    typer.echo(
        f"{task} (step limit {r['step_limit']}, {r['episodes']} episodes, sampled success {r['success_rate']:.0%}, "
        f"mean length {r['mean_length']:.1f}): ours {r['ours_episodes_per_s']:.2f} episodes/s, SimpleVLA-RL-style "
        f"{r['simplevla_style_episodes_per_s']:.2f} episodes/s, speed-up {r['speedup']:.2f}x (best of {r['rounds']} "
        f"rounds each; of the medians {r['speedup_of_medians']:.2f}x)\n"
        f"  ours               {r['ours_s']:.2f} s: {format_split(r['ours_split_s'])}\n"
        f"  SimpleVLA-RL-style {r['simplevla_style_s']:.2f} s: {format_split(r['simplevla_style_split_s'])}"
    )
