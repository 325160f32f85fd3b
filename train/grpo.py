"""Outcome-reward GRPO for the token VLA in simulation (SimpleVLA-RL's recipe); the whole loop, top to bottom.

    for step in 1..steps:                                   (_train; each phase is a function below it, in order)
        rollout   sample_groups: waves of G = 8 sampled episodes per initial state (temperature 1.6, log-probs kept
                  from sampling, early exit); reward 1 on success else 0; keep groups whose success rate is inside
                  ``filter_band`` (dynamic sampling); sample more waves until ``groups_per_step`` groups are kept or
                  the retry cap
        advantage (R - mean_group) / (std_group + 1e-6) on every executed action token (``mask_idle_arm``: only
                  the tokens of the arms the task needs)
        update    _update: ``ppo_epochs`` x ``mini_batches`` AdamW steps on the asymmetric clipped loss (0.2 / 0.28)
                  of the log-probs from ``VLAPolicy.log_probs_from_logits`` (the path sampling's log-probs are
                  tested against); no KL, no reference model; token-level mean over the mini-batch (all ranks)
        validate  validate: every ``val_every`` steps, greedy success on held-out seeds (EVAL_SEED_START..), split
                  over ranks
        save      save_step: a checkpoint every step (the server loads it as is); ``keep_every`` of them are kept

Multi-process: ``torchrun --nproc_per_node N -m pushcut train grpo ...``. Every rank owns its env pools and rolls
out its own share (groups_per_step / N groups); gradients are averaged by DDP (gloo on CPU, NCCL on GPU); rank 0
writes checkpoints and logs. Initial states and sampling noise are pure functions of (seed, step, rank, wave), so a
resumed run (``resume=True``: weights + optimizer of ``out/latest``) continues exactly where it stopped, losing at
most the step that was running. The batch arithmetic is checked at start-up (grpo_math.plan_batches).

Metrics (metrics.jsonl + TensorBoard under ``out``; one row per step, ``val/*`` only on validation steps):

    rollout/success_rate      success rate of all episodes sampled this step (before the group filter)
    rollout/groups_sampled    groups rolled out this step (this rank x world size)
    rollout/groups_kept       groups that passed the filter and were trained on
    rollout/batch_filled      groups_kept / groups_per_step (< 1: the retry cap was hit; also printed)
    rollout/resample_rounds   waves sampled beyond those a full batch needs without filtering
    rollout/episode_length    mean actions per sampled episode
    rollout/push_fraction     of this step's successful sampled episodes, the fraction that pushed the object to its
                              goal without ever holding it (sim/strategy.py; 0 when none succeeded) — the behaviour
                              RL discovered in SimpleVLA-RL
    actor/pg_loss             clipped surrogate loss (token mean, averaged over optimizer steps)
    actor/clipfrac            fraction of trained tokens where the clip was active
    actor/approx_kl           mean (r - 1) - log r over trained tokens (policy change per step)
    actor/entropy             mean per-token entropy (nats) of the rollout-temperature distribution, trained tokens
    actor/grad_norm           gradient L2 norm before clipping (mean over optimizer steps)
    actor/lr                  learning rate of this step's update (``lr_schedule``, ``lr_warmup_steps``)
    actor/tokens              action tokens trained on (all ranks)
    val/success_rate          greedy held-out success (per task: val/<task>/success_rate)
    val/wilson_low, val/wilson_high   its 95 % Wilson interval
    timing_s/rollout, timing_s/update, timing_s/val, timing_s/step   wall time of each phase on rank 0
    timing_s/elapsed          wall time of the run at the end of the step (resumes included, slowest rank)
    dist/param_spread         (several ranks) max - min over ranks of a weight fingerprint; must be 0
    perf/episodes_per_s       sampled episodes / rollout time, all ranks
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pushcut.common.conventions import EVAL_SEED_START, RL_SEED_START
from pushcut.common.stats import wilson_interval
from pushcut.sim.camera_calibration import summary_of
from pushcut.sim.piper_spec import ARM_ACTION_SLICES
from pushcut.sim.ray_session import check_backend_name, check_env_backend
from pushcut.train.checkpoint import (
    LoadedCheckpoint,
    find_checkpoints,
    load_checkpoint,
    load_training_state,
    read_metadata,
    save_checkpoint,
    update_link,
)
from pushcut.train.distributed import (
    PARALLEL_MODES,
    DistInfo,
    Parallel,
    all_reduce,
    barrier,
    init_distributed,
    shutdown,
    wrap_for_training,
)
from pushcut.train.evaluate import policy_env_overrides
from pushcut.train.grpo_math import (
    LR_SCHEDULES,
    clipped_policy_loss,
    group_advantages,
    keep_groups,
    plan_batches,
    scheduled_lr,
)
from pushcut.train.inference import ChunkPolicy
from pushcut.train.model import VLAPolicy
from pushcut.train.openvla.training import TrainSwitches, prepare_for_training
from pushcut.train.provenance import training_world, worlds_seen
from pushcut.train.rollout import Episode, rollout_groups

if TYPE_CHECKING:  # the env pools import mujoco: loaded by _train
    from pushcut.sim.vector import VectorEnv

METRICS_FILE = "metrics.jsonl"
STATE_KEYS = ("optimizer", "step")


@dataclass(frozen=True)
class GRPOConfig:
    init: str  # SFT (or GRPO) checkpoint directory
    tasks: tuple[str, ...]
    out: str
    steps: int = 100
    groups_per_step: int = 8  # kept groups per step, all ranks together
    group_size: int = 8  # G
    mini_batches: int = 2  # optimizer steps per epoch
    ppo_epochs: int = 1
    micro_batch: int = 64  # chunk-samples per forward/backward
    lr: float = 2e-5
    lr_schedule: str = "constant"  # | "cosine" (grpo_math.scheduled_lr)
    lr_warmup_steps: int = 0  # GRPO steps of linear lr warm-up (0: full lr from step 1, the paper's)
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    temperature: float = 1.6
    clip_low: float = 0.2
    clip_high: float = 0.28
    dynamic_sampling: bool = True
    # train only the action tokens of the arms the task needs (Task.acting_arms): the idle arm's tokens carry no
    # outcome signal, and without the mask they drift under GRPO (docs/results.md, "A policy that sees")
    mask_idle_arm: bool = False
    filter_band: tuple[float, float] = (0.1, 0.9)  # kept: band[0] <= successes / G <= band[1]
    max_resample_rounds: int = 4  # extra waves per step when filtered groups leave the batch short
    rollout_envs: int = 16  # envs per task per rank, a multiple of group_size
    env_workers: int = 2  # env processes (or Ray actors) per task per rank
    env_backend: str = "process"  # | "ray": env workers as Ray actors on a cluster (sim/ray_pool.py, docs/ray.md)
    ray_address: str | None = None  # the Ray head's HOST:PORT (None: a local Ray instance)
    env_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {"step_limit": 80}
    val_every: int = 10  # 0: never
    val_episodes: int = 50
    save_every: int = 1
    keep_every: int = 10  # checkpoints kept for good (the newest is always kept)
    seed: int = 0
    resume: bool = False
    allow_new_tasks: bool = False  # RL on tasks the init checkpoint was not fine-tuned on
    parallel: str = "ddp"  # "ddp" (replicated weights) | "fsdp" (FSDP2 shards + a full rollout copy per rank)
    # OpenVLA-OFT checkpoints (train/openvla/training.py): LoRA rank (0: full fine-tuning; RLinf's recipe: 32 with
    # lr 1e-4), alpha (None: min(rank, 16)), "merged" | "adapter" checkpoints, activation recomputation
    lora_rank: int = 0
    lora_alpha: float | None = None
    lora_save: str = "merged"
    gradient_checkpointing: bool = False
    max_minutes: float | None = None  # stop after the step at which the run (resumes included) reached this wall time
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        if not self.tasks:
            raise ValueError("at least one task is needed")
        if self.steps < 1 or self.ppo_epochs < 1 or self.lr <= 0 or self.temperature <= 0:
            raise ValueError("steps and ppo_epochs must be >= 1, lr and temperature > 0")
        if self.rollout_envs % self.group_size or self.rollout_envs < self.group_size:
            raise ValueError(
                f"rollout_envs={self.rollout_envs} must be a positive multiple of group_size={self.group_size} "
                "(a wave holds whole groups)"
            )
        if not 1 <= self.env_workers <= self.rollout_envs:
            raise ValueError(f"env_workers={self.env_workers} must be between 1 and rollout_envs={self.rollout_envs}")
        if self.mini_batches > self.group_size:
            raise ValueError(
                f"mini_batches={self.mini_batches} > group_size={self.group_size}: with a single kept group some "
                "optimizer steps would have no data"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule={self.lr_schedule!r} not in {LR_SCHEDULES}")
        if not 0 <= self.lr_warmup_steps <= self.steps:
            raise ValueError(f"lr_warmup_steps={self.lr_warmup_steps} must be between 0 and steps={self.steps}")
        check_backend_name(self.env_backend, self.ray_address)
        if self.parallel not in PARALLEL_MODES:
            raise ValueError(f"parallel={self.parallel!r} not in {PARALLEL_MODES}")
        if self.save_every < 1 or self.keep_every < 1 or self.val_every < 0 or self.val_episodes < 1:
            raise ValueError("save_every, keep_every, val_episodes must be >= 1 and val_every >= 0")
        self.switches()  # validates the LoRA fields

    def switches(self) -> TrainSwitches:
        return TrainSwitches(self.lora_rank, self.lora_alpha, self.lora_save, self.gradient_checkpointing)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["tasks"], d["betas"], d["filter_band"] = list(self.tasks), list(self.betas), list(self.filter_band)
        return d


def _stream(*parts: int) -> int:
    """A 63-bit seed that is a pure function of ``parts`` (initial states and sampling noise per step/rank/wave)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(2, np.uint32).view(np.uint64)[0] >> 1)


def check_init(init: str | Path, tasks: tuple[str, ...], allow_new_tasks: bool = False) -> dict[str, Any]:
    """Fail before any rollout when the checkpoint cannot act in these tasks."""
    from pushcut.sim import piper_spec
    from pushcut.sim.registry import get_task

    meta = read_metadata(init)
    for task in tasks:
        get_task(task)
    cfg = meta["_policy_config"]
    if cfg.action_dim != piper_spec.ACTION_DIM or cfg.proprio_dim != piper_spec.ACTION_DIM:
        raise ValueError(
            f"--init {init}: action_dim {cfg.action_dim} / proprio_dim {cfg.proprio_dim}, the dual-Piper sim needs "
            f"{piper_spec.ACTION_DIM} / {piper_spec.ACTION_DIM}"
        )
    unknown = [t for t in tasks if t not in meta["tasks"]]
    if unknown and not allow_new_tasks:
        raise ValueError(
            f"--init {init} was trained on tasks {meta['tasks']}; task(s) {unknown} are not among them (its action "
            "statistics come from those tasks' demonstrations); set allow_new_tasks=true to train on them anyway"
        )
    return meta


def train_grpo(config: GRPOConfig) -> dict[str, Any]:
    info = init_distributed(config.device)
    try:
        return _train(config, info)
    finally:
        shutdown(info)


def _train(config: GRPOConfig, info: DistInfo) -> dict[str, Any]:
    from tqdm import tqdm

    from pushcut.sim.robotwin.backend import open_pool  # every world: RoboTwin's workers or sim/vector's pool

    check_env_backend(config.env_backend, config.ray_address)  # Ray missing, no cluster there: before anything runs
    out = Path(config.out)
    plan = plan_batches(config.groups_per_step, config.group_size, config.mini_batches, config.micro_batch,
                        info.world_size)  # fmt: skip
    meta = check_init(config.init, config.tasks, config.allow_new_tasks)
    start_dir, start_step, state = Path(config.init), 0, None
    if config.resume:
        if not (out / "latest").exists():
            raise FileNotFoundError(f"resume=True but {out / 'latest'} does not exist (no checkpoint to resume from)")
        start_dir = (out / "latest").resolve()
        state = load_training_state(start_dir, required=STATE_KEYS)
        start_step = int(state["step"])
    loaded = load_checkpoint(start_dir, device=str(info.device))
    policy: VLAPolicy = loaded.policy  # full weights: rollouts, validation, checkpoints
    prepare_for_training(policy, config.switches())
    runner = ChunkPolicy(loaded)
    par = wrap_for_training(policy, info, config.parallel)
    optimizer = torch.optim.AdamW(par.train_policy.parameters(), lr=config.lr, betas=config.betas,
                                  weight_decay=config.weight_decay)  # fmt: skip
    if state is not None:
        par.load_optimizer_state(optimizer, state["optimizer"])
    use_bf16 = info.device.type == "cuda"

    overrides = policy_env_overrides(runner, config.env_overrides)
    pools = {t: open_pool(t, config.rollout_envs, overrides, config.env_workers, config.env_backend,
                          config.ray_address) for t in config.tasks}  # fmt: skip
    waves = WavePlan.of(config, plan.groups_per_rank)
    metrics = MetricsLog(out, start_step, resumed=state is not None) if info.is_main else None
    if info.is_main:
        print(f"grpo: {plan.describe()}; {waves.groups_per_wave} group(s) per rollout wave per task", flush=True)
    bar = tqdm(total=config.steps, initial=start_step, disable=not config.progress or not info.is_main, desc="grpo",
               dynamic_ncols=True)  # fmt: skip

    history: list[dict[str, float]] = []
    last_ckpt: Path | None = None
    t_start = time.perf_counter() - (float(state.get("elapsed_s", 0.0)) if state is not None else 0.0)  # resumes count
    try:
        if config.val_every and state is None:
            t0 = time.perf_counter()
            row = {**validate(policy, runner, pools, config, info), "timing_s/val": time.perf_counter() - t0}
            if metrics is not None:
                metrics.write(0, row)
            history.append({"step": 0, **row})
        for step in range(start_step + 1, config.steps + 1):
            t_step = time.perf_counter()
            # ---------------------------------------------------------------- rollout + dynamic sampling
            policy.eval()
            rollout = sample_groups(runner, pools, config, info, step, waves)
            t_rollout = time.perf_counter() - t_step
            row, n_kept = rollout_metrics(rollout, config, info, waves, t_rollout)
            fewest_kept = all_reduce([len(rollout.kept)], "min", info)[0]
            if n_kept < config.groups_per_step and info.is_main:
                tqdm.write(f"step {step}: only {int(n_kept)}/{config.groups_per_step} informative groups after "
                           f"{rollout.waves} wave(s) (retry cap {waves.cap}); "
                           f"rollout success {row['rollout/success_rate']:.1%}")  # fmt: skip

            # ---------------------------------------------------------------- update
            t_update = time.perf_counter()
            if fewest_kept == 0:
                if info.is_main:
                    tqdm.write(
                        f"step {step}: no update — a rank has no group with mixed outcomes (all groups were "
                        "all-success or all-fail); the policy gets no learning signal from such groups"
                    )
            else:
                lr = scheduled_lr(config.lr, config.lr_schedule, step, config.steps, config.lr_warmup_steps)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                row.update(_update(par, optimizer, rollout.kept, config, info, step, use_bf16))
                par.sync()
            if info.enabled:  # DDP keeps replicas bit-identical; check it every step (two numbers per rank)
                row["dist/param_spread"] = check_replicas(policy, info, step)
            row["timing_s/update"] = time.perf_counter() - t_update

            # ---------------------------------------------------------------- validate, save, log
            if config.val_every and step % config.val_every == 0:
                t0 = time.perf_counter()
                row.update(validate(policy, runner, pools, config, info))
                row["timing_s/val"] = time.perf_counter() - t0
            elapsed = all_reduce([time.perf_counter() - t_start], "max", info)[0]
            out_of_time = config.max_minutes is not None and elapsed >= 60.0 * config.max_minutes
            if step % config.save_every == 0 or step == config.steps or out_of_time:
                optimizer_state = par.optimizer_state(optimizer)  # collective under fsdp
                if info.is_main:
                    last_ckpt = save_step(out, step, policy, loaded, meta, config, optimizer_state,
                                          time.perf_counter() - t_start)  # fmt: skip
            barrier(info)  # no rank runs ahead of the checkpoint
            row["timing_s/step"] = time.perf_counter() - t_step
            row["timing_s/elapsed"] = elapsed
            if metrics is not None:
                metrics.write(step, row)
            history.append({"step": step, **row})
            post = {"succ": f"{row['rollout/success_rate']:.2f}", "kept": int(n_kept)}
            if "val/success_rate" in row:
                post["val"] = f"{row['val/success_rate']:.2f}"
            bar.set_postfix(post)
            bar.update(1)
            if out_of_time:
                if info.is_main:
                    tqdm.write(f"stopping after step {step}: max_minutes={config.max_minutes} reached")
                break
    except FloatingPointError as e:
        good = (out / "latest").resolve() if (out / "latest").exists() else Path(config.init)
        raise FloatingPointError(f"{e}; the run stopped, the last good checkpoint is {good}") from None
    finally:
        for pool in pools.values():
            pool.close()
        bar.close()
        if metrics is not None:
            metrics.close()
    return {
        "steps": history[-1]["step"] if history else start_step,
        # a resumed run that was already complete trains nothing: report the checkpoint it ended on
        "checkpoint": str(last_ckpt) if last_ckpt else (str((out / "latest").resolve()) if config.resume else None),
        "history": history,
    }


# ---------------------------------------------------------------------------- the loop's phases, in its order
@dataclass(frozen=True)
class WavePlan:
    """How a step's rollouts are sampled on this rank: ``groups_per_rank`` groups are wanted; a wave runs
    ``groups_per_wave`` groups per task on the env pools; ``needed`` waves fill the share without filtering, at most
    ``cap`` are run (dynamic sampling's retries); ``band`` is the group filter (all kept without dynamic sampling)."""

    groups_per_rank: int
    groups_per_wave: int
    needed: int
    cap: int
    band: tuple[float, float]

    @classmethod
    def of(cls, config: GRPOConfig, groups_per_rank: int) -> WavePlan:
        per_wave = config.rollout_envs // config.group_size
        needed = math.ceil(groups_per_rank / (per_wave * len(config.tasks)))
        band = config.filter_band if config.dynamic_sampling else (0.0, 1.0)
        return cls(groups_per_rank, per_wave, needed, needed + config.max_resample_rounds, band)


@dataclass
class Rollout:
    """One step's sampled episodes on this rank: the kept groups (mixed outcomes) and everything sampled."""

    kept: list[list[Episode]]
    sampled: list[Episode]
    waves: int


def sample_groups(runner: ChunkPolicy, pools: dict[str, VectorEnv], config: GRPOConfig, info: DistInfo, step: int,
                  waves: WavePlan) -> Rollout:  # fmt: skip
    """Dynamic sampling: waves of G sampled episodes per initial state until this rank has its share of groups
    inside the filter band, or the retry cap. Initial states and sampling noise are pure functions of
    (seed, step, rank, wave, task)."""
    kept: list[list[Episode]] = []
    sampled: list[Episode] = []
    wave = 0
    while len(kept) < waves.groups_per_rank and wave < waves.cap:
        for k, task in enumerate(config.tasks):
            rng = np.random.default_rng(_stream(config.seed, step, info.rank, wave, k))
            seeds = rng.integers(RL_SEED_START, EVAL_SEED_START, waves.groups_per_wave).tolist()
            gen = torch.Generator().manual_seed(_stream(config.seed, step, info.rank, wave, k, 1))
            for group in rollout_groups(runner, pools[task], seeds, config.group_size, config.temperature, gen):
                sampled += group
                successes = torch.tensor([sum(ep.success for ep in group)])
                if keep_groups(successes, config.group_size, waves.band).item():
                    kept.append(group)
        wave += 1
    return Rollout(kept[: waves.groups_per_rank], sampled, wave)


def rollout_metrics(rollout: Rollout, config: GRPOConfig, info: DistInfo, waves: WavePlan,
                    seconds: float) -> tuple[dict[str, float], float]:  # fmt: skip
    """The step's rollout/* and perf/* metrics over all ranks, and the number of groups kept on all ranks."""
    sampled = rollout.sampled
    n_sampled, n_success, n_kept, length_sum, n_groups, n_push = all_reduce(
        [len(sampled), sum(ep.success for ep in sampled), len(rollout.kept), sum(ep.length for ep in sampled),
         len(sampled) // config.group_size, sum(ep.strategy == "push" for ep in sampled)],
        "sum", info)  # fmt: skip
    row = {
        "rollout/success_rate": n_success / n_sampled,
        "rollout/groups_sampled": n_groups,
        "rollout/groups_kept": n_kept,
        "rollout/batch_filled": n_kept / config.groups_per_step,
        "rollout/resample_rounds": max(0, rollout.waves - waves.needed),
        "rollout/episode_length": length_sum / n_sampled,
        "rollout/push_fraction": n_push / n_success if n_success else 0.0,
        "perf/episodes_per_s": n_sampled / max(seconds, 1e-9),
        "timing_s/rollout": seconds,
    }
    return row, n_kept


def check_replicas(policy: VLAPolicy, info: DistInfo, step: int) -> float:
    """max - min over ranks of a weight fingerprint (0 when DDP kept the replicas identical); RuntimeError if not."""
    with torch.no_grad():
        fingerprint = sum(float(p.double().sum() + p.double().abs().sum()) for p in policy.parameters())
    low, high = all_reduce([fingerprint], "min", info)[0], all_reduce([fingerprint], "max", info)[0]
    if high != low:
        raise RuntimeError(f"step {step}: the ranks' weights differ (fingerprints {low!r} .. {high!r})")
    return high - low


def validate(policy: VLAPolicy, runner: ChunkPolicy, pools: dict[str, VectorEnv], config: GRPOConfig,
             info: DistInfo) -> dict[str, float]:  # fmt: skip
    """Greedy success on held-out seeds; each rank runs its contiguous share of the seeds."""
    from pushcut.train.evaluate import evaluate_policy

    policy.eval()
    row: dict[str, float] = {}
    total_s = total_n = 0.0
    share = math.ceil(config.val_episodes / info.world_size)
    first = info.rank * share
    n_here = max(0, min(share, config.val_episodes - first))
    for task in config.tasks:
        s = evaluate_policy(runner, pools[task], n_here, EVAL_SEED_START + first)["successes"] if n_here else 0
        successes, n = all_reduce([s, n_here], "sum", info)
        row[f"val/{task}/success_rate"] = successes / n
        total_s, total_n = total_s + successes, total_n + n
    low, high = wilson_interval(int(total_s), int(total_n))
    row.update({"val/success_rate": total_s / total_n, "val/wilson_low": low, "val/wilson_high": high})
    return row


def save_step(out: Path, step: int, policy: VLAPolicy, loaded: LoadedCheckpoint, meta: dict[str, Any],
              config: GRPOConfig, optimizer_state: dict[str, Any], elapsed_s: float) -> Path:  # fmt: skip
    """Checkpoint ``step`` in the SFT format (the server loads it as is), point ``out/latest`` at it, and delete the
    older ones that ``keep_every`` does not keep."""
    ckpt = save_checkpoint(
        out / "checkpoints" / f"step_{step}", policy, loaded.tokenizer, loaded.proprio_stats,
        preset=meta["preset"], action_hz=meta["action_hz"], step=step,
        tasks=list(dict.fromkeys([*meta["tasks"], *config.tasks])), action_names=meta["action_names"],
        training_state={"optimizer": optimizer_state, "step": step, "elapsed_s": elapsed_s},
        extra={"grpo_config": config.to_dict(), "init": str(config.init), "init_step": meta["step"],
               "camera_shape": meta.get("extra", {}).get("camera_shape"),
               "camera_calibration": summary_of(config.env_overrides.get("camera_calibration")),
               "world": training_world(config.env_overrides),
               "start_worlds": worlds_seen(meta.get("extra", {}))},  # the worlds the start learned from
    )  # fmt: skip
    update_link(out / "latest", ckpt)
    for old in find_checkpoints(out / "checkpoints"):
        n = int(old.name.split("_")[1])
        if n != step and n % config.keep_every:
            shutil.rmtree(old, ignore_errors=True)
    return ckpt


class MetricsLog:
    """Rank 0's metrics: one JSON row per step in ``metrics.jsonl`` and TensorBoard scalars under ``out/tb``; a
    resumed run first drops the rows after its checkpoint."""

    def __init__(self, out: Path, start_step: int, resumed: bool) -> None:
        from torch.utils.tensorboard import SummaryWriter

        out.mkdir(parents=True, exist_ok=True)
        if resumed:
            _trim_metrics(out / METRICS_FILE, start_step)
        self.writer = SummaryWriter(str(out / "tb"), purge_step=start_step + 1 if resumed else None)
        self.file = (out / METRICS_FILE).open("a" if resumed else "w")

    def write(self, step: int, row: dict[str, float]) -> None:
        for k, v in row.items():
            self.writer.add_scalar(k, v, step)
        self.file.write(json.dumps({"step": step, **row}) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.writer.close()
        self.file.close()


def _update(par: Parallel, optimizer, kept, config: GRPOConfig, info: DistInfo, step: int, use_bf16: bool):
    """``ppo_epochs`` x ``mini_batches`` optimizer steps on the kept groups of this rank; returns actor/* metrics.

    Every rank runs the same number of micro-batches per mini-batch (the most any rank needs; a rank with fewer
    samples repeats its first slice with zero weight), so sharded forwards and gradient syncs stay in lock-step."""
    model, policy = par.model, par.train_policy
    episodes, advantages = [], []
    for group in kept:
        adv = group_advantages(torch.tensor([[ep.reward for ep in group]]))[0]
        episodes += group
        advantages += adv.tolist()
    rng = np.random.default_rng(_stream(config.seed, step, info.rank, 99))
    sums = {"loss": 0.0, "clip": 0.0, "kl": 0.0, "entropy": 0.0, "tokens": 0.0, "gnorm": 0.0, "opt_steps": 0}
    policy.train()
    device = info.device
    for _epoch in range(config.ppo_epochs):
        order = rng.permutation(len(episodes))
        for part in np.array_split(order, config.mini_batches):
            eps = [episodes[i] for i in part]
            images = np.concatenate([e.images for e in eps])
            proprio = np.concatenate([e.proprio for e in eps])
            texts = [e.instruction for e in eps for _ in range(e.chunks)]
            tokens = torch.from_numpy(np.concatenate([e.tokens for e in eps]))
            old = torch.from_numpy(np.concatenate([e.log_probs for e in eps]))
            valid = torch.from_numpy(np.concatenate([trained_tokens(e, config.mask_idle_arm) for e in eps]))
            adv = torch.tensor([advantages[i] for i in part for _ in range(episodes[i].chunks)])[:, None, None]
            local_tokens = int(valid.sum())
            global_tokens = all_reduce([local_tokens], "sum", info)[0]
            slices = [slice(s, s + config.micro_batch) for s in range(0, len(texts), config.micro_batch)]
            n_micro = int(all_reduce([len(slices)], "max", info)[0])
            step_loss = 0.0
            for j in range(n_micro):
                sl = slices[j] if j < len(slices) else slices[0]
                weight = 1.0 if j < len(slices) else 0.0  # padding micro-batch: same graph, no contribution
                with par.grad_sync(j == n_micro - 1):  # gradients are reduced on the last micro-batch only
                    batch = policy.make_batch(images[sl], texts[sl], proprio[sl])
                    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                        logits = model(batch).float()
                    logp = VLAPolicy.log_probs_from_logits(logits, tokens[sl].to(device), config.temperature)
                    mask = valid[sl].to(device) & (weight > 0)
                    out = clipped_policy_loss(logp, old[sl].to(device), adv[sl].to(device), mask,
                                              config.clip_low, config.clip_high, normaliser=global_tokens)  # fmt: skip
                    (out.loss * info.world_size).backward()  # ranks' gradients are averaged; the normaliser is global
                step_loss += out.loss.item()
                sums["clip"] += out.clipfrac_sum
                sums["kl"] += out.approx_kl_sum
                with torch.no_grad():
                    ent = VLAPolicy.entropy_from_logits(logits.detach(), config.temperature)
                    sums["entropy"] += float(ent[mask].sum())
            gnorm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
            gnorm = gnorm.full_tensor() if hasattr(gnorm, "full_tensor") else gnorm  # DTensor under fsdp
            total_loss, finite = all_reduce([step_loss, float(torch.isfinite(gnorm))], "sum", info)
            if finite < info.world_size or not math.isfinite(total_loss):
                raise FloatingPointError(
                    f"step {step}: non-finite loss ({total_loss}) or gradient norm, not applied (try a lower lr than "
                    f"{config.lr})"
                )
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            sums["loss"] += total_loss
            sums["gnorm"] += float(gnorm)
            sums["tokens"] += global_tokens
            sums["opt_steps"] += 1
    clip, kl, entropy = all_reduce([sums["clip"], sums["kl"], sums["entropy"]], "sum", info)
    n_tok = max(1.0, sums["tokens"])
    return {
        "actor/pg_loss": sums["loss"] / sums["opt_steps"],
        "actor/clipfrac": clip / n_tok,
        "actor/approx_kl": kl / n_tok,
        "actor/entropy": entropy / n_tok,
        "actor/grad_norm": sums["gnorm"] / sums["opt_steps"],
        "actor/lr": optimizer.param_groups[0]["lr"],
        "actor/tokens": sums["tokens"],
    }


def trained_tokens(episode: Episode, mask_idle_arm: bool) -> np.ndarray:
    """bool (T, chunk, action_dim): the tokens the loss sees — executed rows, and with ``mask_idle_arm`` only the
    dimensions of the arms the episode's task needs."""
    assert episode.valid is not None and episode.tokens is not None
    mask = np.broadcast_to(episode.valid[..., None], episode.tokens.shape).copy()
    if mask_idle_arm:
        if not episode.acting_arms:
            raise ValueError(f"mask_idle_arm: episode {episode.task}/{episode.seed} does not say which arms act")
        arms = np.zeros(episode.tokens.shape[-1], dtype=bool)
        for arm in episode.acting_arms:
            arms[ARM_ACTION_SLICES[arm]] = True
        mask &= arms
    return mask


def _trim_metrics(path: Path, step: int) -> None:
    if path.is_file():
        kept = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["step"] <= step]
        path.write_text("".join(ln + "\n" for ln in kept))
