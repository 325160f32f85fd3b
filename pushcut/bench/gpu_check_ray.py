"""The GPU check's Ray stage (scripts/gpu_check.sh, issue 28 §3): one GRPO step of the ``small`` preset with the env
workers as Ray actors on a local Ray instance and the learner on the check's device, timed phase by phase.

    1. checkpoint  expert demos of click_bell and a few SFT steps on the device (specs.build_bench_checkpoint: 4
                   demos at 320x240 and 20 steps of ``small``; ``--tiny``: 2 demos at 64x48, 2 steps of the micro model)
    2. Ray         a local instance started by pushcut's Ray session (sim/ray_session.py), timed on its own
    3. GRPO        one step, 1 group of G = 8 episodes in env actors (sim/ray_pool.py), the full update on the device:
                   timing_s/rollout, timing_s/update and timing_s/step of the step's metrics row

Results carry the prefix ``ray_``; without Ray (``pushcut[ray]`` is an extra) or with ``--no-ray`` the stage is
skipped and ``ray_skipped`` says why.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

TINY_ENV_ACTORS = 2  # a dry run on this 2-core machine: the local instance has 2 CPUs
MAX_ENV_ACTORS = 8  # one per env of the group
GROUP_SIZE = 8
STEP_KEYS = ("timing_s/rollout", "timing_s/update", "timing_s/step", "actor/tokens", "rollout/episode_length")


def skip_reason(no_ray: bool) -> str | None:
    """Why the stage does not run (``--no-ray``, Ray not installed), or None when it does."""
    from pushcut.sim.ray_session import EnvBackendError, check_env_backend

    if no_ray:
        return "--no-ray"
    try:
        check_env_backend("ray")
    except EnvBackendError as error:
        return str(error)
    return None


def run_ray_stage(out: Path, *, tiny: bool, device: str, task: str, step_limit: int) -> dict[str, object]:
    """Build the checkpoint, start Ray, run one GRPO step with env actors; the ``ray_*`` results."""
    from pushcut.bench.specs import QUICK_IMAGES, build_bench_checkpoint
    from pushcut.sim.ray_session import acquire_session, release_session, session_start_seconds
    from pushcut.train.grpo import GRPOConfig, train_grpo

    t0 = time.perf_counter()
    built = build_bench_checkpoint(out / "ray_checkpoint", quick=tiny, device=device)
    results: dict[str, object] = {"ray_preset": built["preset"], "ray_checkpoint_build_s": time.perf_counter() - t0,
                                  "ray_sft_steps": built["sft_steps"], "ray_demos": built["demos"]}  # fmt: skip
    actors = TINY_ENV_ACTORS if tiny else min(MAX_ENV_ACTORS, os.cpu_count() or 1)
    config = GRPOConfig(
        init=built["checkpoint"], tasks=(task,), out=str(out / "ray_grpo"), steps=1, groups_per_step=1,
        group_size=GROUP_SIZE, mini_batches=1, micro_batch=GROUP_SIZE, lr=1e-4, temperature=1.6,
        rollout_envs=GROUP_SIZE, env_workers=actors, env_backend="ray",
        env_overrides={**(QUICK_IMAGES if tiny else {}), "step_limit": step_limit}, val_every=0,
        dynamic_sampling=False, allow_new_tasks=True, device=device, progress=False,
    )  # fmt: skip
    acquire_session(None)  # held over the run: its start-up is timed here, not inside the GRPO step
    try:
        import ray
        import torch

        results["ray_start_s"] = session_start_seconds()  # 0.0 where Ray was already initialised in this process
        results["ray_cluster_cpus"] = float(ray.cluster_resources().get("CPU", 0.0))
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        summary = train_grpo(config)
        results["ray_grpo_total_s"] = time.perf_counter() - t0  # includes loading the checkpoint, starting actors
        results["ray_grpo_peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    finally:
        release_session()
    row = summary["history"][-1]
    for key in STEP_KEYS:
        results[f"ray_grpo_{key.replace('/', '_')}"] = row.get(key)
    results["ray_env_actors"] = config.env_workers * len(config.tasks)  # RayEnvPool starts exactly env_workers
    results["ray_grpo_checkpoint"] = summary["checkpoint"]
    return results


def error_line(error: BaseException) -> str:
    """A failure of the stage in one line for the table: the exception's name and its first line."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def ray_lines(r: dict[str, object]) -> list[str]:
    """The stage's lines of the check's table."""
    if "ray_skipped" in r:
        return [f"  GRPO on Ray                      skipped: {r['ray_skipped']}"]
    if "ray_error" in r:
        return [f"  GRPO on Ray                      failed: {r['ray_error']}"]

    def s(key: str, unit: str = "s") -> str:
        v = r.get(key)
        return "n/a" if v is None else f"{float(v):,.3f} {unit}"

    name = f"GRPO {r['ray_preset']} on Ray"
    episodes = f"{GROUP_SIZE} episodes of {float(r['ray_grpo_rollout_episode_length']):.1f} actions"
    return [
        f"  {name + ': checkpoint':<32} {s('ray_checkpoint_build_s')} ({r['ray_demos']} demos, "
        f"{r['ray_sft_steps']} SFT steps)",
        f"  {name + ': Ray start':<32} {s('ray_start_s')} (local instance, {r['ray_cluster_cpus']:g} CPUs)",
        f"  {name + ': rollout':<32} {s('ray_grpo_timing_s_rollout')} ({r['ray_env_actors']} env actors, {episodes})",
        f"  {name + ': update':<32} {s('ray_grpo_timing_s_update')} ({r['ray_grpo_actor_tokens']} tokens trained)",
        f"  {name + ': step':<32} {s('ray_grpo_timing_s_step')} (run incl. load, actors {s('ray_grpo_total_s')})",
        f"  {name + ': peak memory':<32} {s('ray_grpo_peak_gib', 'GiB')}",
    ]
