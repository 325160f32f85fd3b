"""Supervised fine-tuning of the token VLA on a demonstration directory, with exact resume.

``train_sft(SFTConfig(...))`` trains ``VLAPolicy`` with cross-entropy on the action tokens: AdamW (no weight
decay on biases / norms / 1-D parameters), linear warm-up then cosine decay to ``min_lr_ratio * lr`` (or constant),
gradient clipping, bf16 autocast on CUDA (fp32 on CPU), a DataLoader whose sample order in epoch ``e`` is
``randperm(len, generator=seed(seed, e))``.

Outputs under ``out``::

    metrics.jsonl              one JSON object per log step: {"step", "epoch", <metric name>: value, ...}
    tb/                        TensorBoard scalars with the same names
    checkpoints/step_<N>/      checkpoint directories (train/checkpoint.py), every ``save_every`` steps + the last
    latest                     atomic symlink to the newest checkpoint

Metric names (documented, stable):

    train/loss            mean training loss over the steps since the last log: the action tokens' cross-entropy
                          (+ aux_position_weight x the auxiliary position loss when that is on)
    train/action_loss     the action tokens' cross-entropy alone (one-hot, or HL-Gauss with label_sigma > 0)
    train/aux_position_loss    (aux_position_weight > 0) z-scored MSE of the privileged positions read from the
                          action slots (train/sft_losses.py)
    train/aux_position_error_cm  (aux_position_weight > 0) mean error of that readout for the first privileged body
    train/aux_vision_loss      (aux_vision_weight > 0) the same positions read linearly from the flattened vision
                          tokens (train/localiser.py's readout): trains the encoder itself to find the objects
    train/aux_vision_error_cm  (aux_vision_weight > 0) mean error of that readout for the first privileged body
    train/lr              learning rate of the last step
    train/grad_norm       total L2 norm of the gradients before clipping (mean since the last log)
    train/samples_per_s   training throughput since the last log (data loading included)
    train/token_accuracy  fraction of action tokens whose argmax bin equals the target (mean since the last log)
    train/elapsed_s       wall time of the run so far, resumes included (to compare runs at equal wall time)

Exact resume (``resume=True``): the newest checkpoint ``out/latest`` supplies the weights, the optimizer and
scheduler states, the python / numpy / torch (and CUDA) RNG states and the data position (epoch + batches consumed
in it); the epoch's permutation is regenerated from its seed and the consumed batches are skipped, so the resumed
run sees exactly the batches an uninterrupted one would. Crop augmentation is a function of (seed, epoch, index),
colour jitter (``color_jitter``) of (seed, epoch, index, camera) (train/sft_data.py, train/augment.py), independent
of workers. ``metrics.jsonl`` lines beyond the resumed step are dropped and
TensorBoard is purged from that step on.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from pushcut.sim.dataset import DemoDataset
from pushcut.sim.piper_spec import ACTION_NAMES
from pushcut.train.action_tokenizer import ActionTokenizer
from pushcut.train.checkpoint import (
    load_checkpoint,
    load_training_state,
    read_metadata,
    save_checkpoint,
    update_link,
)
from pushcut.train.localiser import load_localiser, read_vision, vision_readout
from pushcut.train.model import VLAPolicy
from pushcut.train.openvla.layout import is_openvla_dir
from pushcut.train.openvla.training import TrainSwitches, prepare_for_training
from pushcut.train.presets import PolicyConfig, get_preset
from pushcut.train.provenance import training_world, worlds_seen
from pushcut.train.sft_data import MixedSFTDataset, SFTDataset, collate, compute_norm_stats, load_episodes
from pushcut.train.sft_losses import PositionHead, action_loss, position_statistics

METRICS_FILE = "metrics.jsonl"
METRIC_NAMES = (
    "train/loss",
    "train/action_loss",
    "train/lr",
    "train/grad_norm",
    "train/samples_per_s",
    "train/token_accuracy",
    "train/elapsed_s",
)
AUX_METRIC_NAMES = ("train/aux_position_loss", "train/aux_position_error_cm")  # only with aux_position_weight > 0
VISION_AUX_METRIC_NAMES = ("train/aux_vision_loss", "train/aux_vision_error_cm")  # only with aux_vision_weight > 0


@dataclass(frozen=True)
class SFTConfig:
    data: str  # demonstration directory (pushcut sim demo)
    out: str  # run directory
    max_episodes: int | None = None  # demonstration budget: the first N episodes of ``data`` (None: all)
    extra_data: str | None = None  # a second directory of the same task mixed in (e.g. clean scenes beside randomised)
    extra_episodes: int | None = None  # its first N episodes (None: all)
    preset: str = "tiny"
    preset_overrides: dict[str, Any] = field(default_factory=dict)  # get_preset(preset, **preset_overrides)
    epochs: int = 10
    max_steps: int | None = None  # overrides epochs when set
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 100
    schedule: str = "cosine"  # "cosine" | "constant" (after warm-up)
    min_lr_ratio: float = 0.1  # cosine floor as a fraction of lr
    grad_clip: float = 1.0  # <= 0: no clipping (norm still logged)
    num_workers: int = 2
    seed: int = 0
    log_every: int = 10
    save_every: int = 0  # 0: only the final checkpoint
    resume: bool = False
    stop_after: int | None = None  # end this invocation at this step (checkpoint saved), e.g. for job time limits
    max_minutes: float | None = None  # end after this much wall time of the run, resumes included (checkpoint saved)
    init: str | None = None  # start from this checkpoint's weights and norm stats (fresh optimizer and schedule)
    device: str = "auto"  # "auto" → cuda if available, else cpu
    norm_mode: str = "minmax"  # action / proprio normalisation: "minmax" | "percentile"
    augment: bool = True  # random 90 % crop per sample (False: the centre crop used at inference)
    color_jitter: bool = False  # random brightness, contrast, saturation and hue per training image (train/augment.py)
    label_sigma: float = 0.0  # > 0: HL-Gauss ordinal targets of this std (in bins) instead of one-hot
    aux_position_weight: float = 0.0  # > 0: auxiliary loss reading the privileged positions from the action slots
    aux_vision_weight: float = 0.0  # > 0: auxiliary loss reading them from the flattened vision tokens (the encoder)
    vision_init: str | None = None  # a localiser directory (`pushcut train localiser`): the encoder's start weights
    freeze_vision: bool = False  # the vision encoder's weights stay fixed (its projector still trains)
    # OpenVLA-OFT checkpoints (a published directory as init): LoRA rank (0: full fine-tuning), its alpha (None:
    # min(rank, 16)), how checkpoints keep it ("merged" | "adapter"), activation recomputation
    lora_rank: int = 0
    lora_alpha: float | None = None
    lora_save: str = "merged"
    gradient_checkpointing: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule {self.schedule!r} not in ('cosine', 'constant')")
        if self.batch_size < 1 or self.epochs < 1 or (self.max_steps is not None and self.max_steps < 1):
            raise ValueError("batch_size, epochs and max_steps must be >= 1")
        if self.lr <= 0 or self.warmup_steps < 0 or self.log_every < 1 or self.save_every < 0:
            raise ValueError("lr must be > 0, warmup_steps/save_every >= 0, log_every >= 1")
        if min(self.label_sigma, self.aux_position_weight, self.aux_vision_weight) < 0:
            raise ValueError("label_sigma, aux_position_weight and aux_vision_weight must be >= 0 (0: off)")
        if self.vision_init is not None and self.init is not None:
            raise ValueError("vision_init starts a new policy's encoder; init brings a whole policy: give one of them")
        self.switches()  # validates the LoRA fields

    def switches(self) -> TrainSwitches:
        return TrainSwitches(self.lora_rank, self.lora_alpha, self.lora_save, self.gradient_checkpointing)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(d["betas"])
        return d


class _EpochSampler(Sampler[int]):
    """The seeded permutation of one epoch, minus the first ``skip`` samples."""

    def __init__(self, n: int, seed: int, epoch: int, skip: int) -> None:
        g = torch.Generator().manual_seed(_epoch_seed(seed, epoch))
        self.order = torch.randperm(n, generator=g).tolist()[skip:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 17) % (2**63)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_lambda_factory(warmup: int, total: int, schedule: str, min_ratio: float):
    """LambdaLR multiplier: linear warm-up (step+1)/warmup, then cosine from 1 to ``min_ratio`` (or constant)."""

    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _param_groups(policy: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in policy.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "norm" in name.lower() or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def check_same_policy(path: str | Path, preset: str, found: PolicyConfig, wanted_preset: str,
                       wanted: PolicyConfig) -> None:  # fmt: skip
    """A checkpoint to resume or continue must be the architecture this run asks for; the error names both."""
    # compared as JSON: a checkpoint's config has lists where the preset has tuples
    found_dict = json.loads(json.dumps(dataclasses.replace(found, weights_dir=None).to_dict()))
    wanted_dict = json.loads(json.dumps(dataclasses.replace(wanted, weights_dir=None).to_dict()))
    if found_dict != wanted_dict:
        fields = sorted(k for k, v in wanted_dict.items() if found_dict.get(k) != v)
        raise ValueError(
            f"{path} is a {preset!r} checkpoint that differs from --preset {wanted_preset!r} (+ overrides) in "
            f"{fields}: pass --preset {preset} (and its overrides) to continue it"
        )


def _trim_metrics(path: Path, step: int) -> None:
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(line + "\n" for line in kept))


def train_sft(config: SFTConfig) -> dict[str, Any]:
    """Train (or resume) per ``config``; returns a summary dict (see the end of the function)."""
    device = resolve_device(config.device)
    use_bf16 = device.type == "cuda"
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    # an OpenVLA-OFT checkpoint (published directory, or this run's own) brings its architecture and statistics
    source = out / "latest" if config.resume else (Path(config.init) if config.init else None)
    oft = source is not None and is_openvla_dir(source)
    preset_cfg = None if oft else get_preset(config.preset, **dict(config.preset_overrides))
    policy_cfg = read_metadata(source)["_policy_config"] if oft else preset_cfg
    demos = DemoDataset(config.data)
    episodes = load_episodes(demos, policy_cfg, config.max_episodes)  # validates the whole dataset before anything else
    extra = DemoDataset(config.extra_data) if config.extra_data else None
    if extra is not None:
        episodes += load_episodes(extra, policy_cfg, config.extra_episodes)

    state: dict[str, Any] | None = None
    start_extra: dict[str, Any] = {}  # the metadata extra of the checkpoint this run starts from (resume or --init)
    if config.resume:
        latest = out / "latest"
        if not latest.exists():
            raise FileNotFoundError(f"resume=True but {latest} does not exist (no checkpoint to resume from)")
        loaded = load_checkpoint(latest, device=str(device))
        policy, tokenizer, proprio_stats, meta = loaded
        start_extra = meta.get("extra", {})
        if not oft:
            check_same_policy(latest, meta["preset"], policy.config, config.preset, policy_cfg)
        state = load_training_state(latest)
        policy.train()
    elif config.init is not None:  # continue training another run's weights in the same action space
        loaded = load_checkpoint(config.init, device=str(device))
        policy, tokenizer, proprio_stats, meta = loaded
        start_extra = meta.get("extra", {})
        if not oft:
            check_same_policy(config.init, meta["preset"], policy.config, config.preset, policy_cfg)
        policy.train()
    else:
        action_stats, proprio_stats = compute_norm_stats(episodes, config.norm_mode)
        tokenizer = ActionTokenizer(action_stats, n_bins=policy_cfg.n_bins)
        policy = VLAPolicy(policy_cfg).train()
        loaded = None
        if config.vision_init is not None:
            load_localiser(policy, config.vision_init, config.preset)
    # a resumed run keeps its own record; a run from --init adds the worlds its start learned from
    start_worlds = (start_extra.get("start_worlds") or []) if config.resume else worlds_seen(start_extra)
    if config.freeze_vision:
        policy.vision.requires_grad_(False)
    policy.to(device)
    prepare_for_training(policy, config.switches())

    def part(source: DemoDataset, max_episodes: int | None) -> SFTDataset:
        return SFTDataset(
            source,
            policy_cfg,
            tokenizer,
            proprio_stats,
            train=config.augment,
            color_jitter=config.color_jitter,
            seed=config.seed,
            max_episodes=max_episodes,
            image_fn=loaded.image_preprocessor if loaded is not None else None,
            proprio_normalizer=loaded.proprio_normalizer if loaded is not None else None,
        )

    dataset: SFTDataset | MixedSFTDataset = part(demos, config.max_episodes)
    if extra is not None:
        dataset = MixedSFTDataset([dataset, part(extra, config.extra_episodes)])
    steps_per_epoch = len(dataset) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{config.data}: {len(dataset)} samples < batch_size {config.batch_size}")
    total_steps = config.max_steps or config.epochs * steps_per_epoch

    head: PositionHead | None = None
    groups = _param_groups(policy, config.weight_decay)
    if config.aux_position_weight > 0:
        positions = dataset.require_positions()
        head = PositionHead(policy.llm.config.hidden_size, positions.shape[1], *position_statistics(positions))
        if state is not None:
            head.load_state_dict(state["position_head"])
        head.to(device)
        groups.append({"params": list(head.parameters()), "weight_decay": 0.0})
    vision_head: PositionHead | None = None
    if config.aux_vision_weight > 0:
        positions = dataset.require_positions()
        vision_head = vision_readout(policy, positions.shape[1], positions)
        if state is not None:
            vision_head.load_state_dict(state["vision_position_head"])
        vision_head.to(device)
        groups.append({"params": list(vision_head.parameters()), "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.betas), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda_factory(config.warmup_steps, total_steps, config.schedule, config.min_lr_ratio)
    )
    step, epoch, consumed = 0, 0, 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch, consumed = int(state["step"]), int(state["epoch"]), int(state["batches_consumed"])
        _set_rng_state(state["rng"])
        _trim_metrics(out / METRICS_FILE, step)

    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    writer = SummaryWriter(str(out / "tb"), purge_step=step if state is not None else None)
    metrics_f = (out / METRICS_FILE).open("a" if state is not None else "w")
    bar = tqdm(total=total_steps, initial=step, disable=not config.progress, desc="sft", dynamic_ncols=True)

    tasks = [demos.task]
    losses: list[float] = []
    window = {"loss": 0.0, "action": 0.0, "aux": 0.0, "aux_err": 0.0, "vis": 0.0, "vis_err": 0.0, "acc": 0.0,
              "gnorm": 0.0, "n": 0, "samples": 0, "t0": time.perf_counter()}  # fmt: skip
    total_samples, train_time = 0, 0.0
    last_ckpt: Path | None = None
    params = [p for group in groups for p in group["params"]]

    def save(step_now: int) -> Path:
        ts = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": _rng_state(),
            "epoch": epoch,
            "batches_consumed": consumed,
            "step": step_now,
            "elapsed_s": time.perf_counter() - t_start,
        }
        if head is not None:
            ts["position_head"] = head.state_dict()
        if vision_head is not None:
            ts["vision_position_head"] = vision_head.state_dict()
        path = save_checkpoint(
            out / "checkpoints" / f"step_{step_now}",
            policy,
            tokenizer,
            proprio_stats,
            preset=config.preset,
            action_hz=demos.action_hz,
            tasks=tasks,
            step=step_now,
            action_names=ACTION_NAMES,  # the dual-Piper simulation's actions, which the demonstrations record
            training_state=ts,
            extra={
                "sft_config": config.to_dict(),
                "dataset": str(config.data),
                "extra_dataset": config.extra_data,
                "extra_world": training_world(extra.index["env_config"]) if extra is not None else None,
                "episodes": len(episodes),
                "camera_shape": list(demos.image_shape),  # what the server announces to robots
                "camera_calibration": demos.camera_calibration,  # the head camera's provenance (None: nominal)
                "world": training_world(demos.index["env_config"]),  # engine, randomisation, calibration
                "start_worlds": start_worlds,  # those an --init checkpoint had learned from
            },
        )
        update_link(out / "latest", path)
        return path

    # wall time counts across resumes: max_minutes and train/elapsed_s refer to the whole run
    t_start = time.perf_counter() - (float(state.get("elapsed_s", 0.0)) if state is not None else 0.0)

    def stop_now() -> bool:
        by_step = config.stop_after is not None and step >= config.stop_after
        by_time = config.max_minutes is not None and time.perf_counter() - t_start >= 60.0 * config.max_minutes
        return by_step or by_time

    try:
        while step < total_steps:
            dataset.set_epoch(epoch)
            sampler = _EpochSampler(len(dataset), config.seed, epoch, consumed * config.batch_size)
            loader = DataLoader(
                dataset,
                batch_size=config.batch_size,
                sampler=sampler,
                collate_fn=collate,
                num_workers=config.num_workers,
                drop_last=True,
                pin_memory=device.type == "cuda",
                generator=torch.Generator().manual_seed(_epoch_seed(config.seed, epoch)),
            )
            for b in loader:
                t_step = time.perf_counter()
                batch = policy.make_batch(b["images"], b["instructions"], b["proprio"])
                tokens = b["tokens"].to(device)
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    fwd = policy.run(batch)
                logits = fwd.logits.float()
                # one-hot: identical to VLAPolicy.loss, computed once from the logits so accuracy needs no second pass
                a_loss = action_loss(logits, tokens, b["unit"].to(device), config.label_sigma)
                loss = a_loss
                if head is not None:
                    positions = b["positions"].to(device)
                    aux = head.loss(fwd.action_hidden, positions)
                    loss = loss + config.aux_position_weight * aux
                    window["aux"] += float(aux.detach())
                    with torch.no_grad():
                        window["aux_err"] += float(head.error_m(fwd.action_hidden, positions))
                if vision_head is not None:
                    positions = b["positions"].to(device)
                    seen = read_vision(fwd.vision_tokens)
                    vis = vision_head.loss(seen, positions)
                    loss = loss + config.aux_vision_weight * vis
                    window["vis"] += float(vis.detach())
                    with torch.no_grad():
                        window["vis_err"] += float(vision_head.error_m(seen, positions))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                max_norm = config.grad_clip if config.grad_clip > 0 else float("inf")
                gnorm = torch.nn.utils.clip_grad_norm_(params, max_norm)
                optimizer.step()
                scheduler.step()
                step += 1
                consumed += 1
                train_time += time.perf_counter() - t_step
                total_samples += len(tokens)
                loss_v = float(loss.detach())
                losses.append(loss_v)
                window["loss"] += loss_v
                window["action"] += float(a_loss.detach())
                window["acc"] += float((logits.detach().argmax(-1) == tokens).float().mean())
                window["gnorm"] += float(gnorm)
                window["n"] += 1
                window["samples"] += len(tokens)
                bar.update(1)
                bar.set_postfix(loss=f"{loss_v:.3f}")
                if consumed == steps_per_epoch:
                    epoch, consumed = epoch + 1, 0
                if step % config.log_every == 0 or step == total_steps:
                    elapsed = max(1e-9, time.perf_counter() - window["t0"])
                    n = window["n"]
                    row = {
                        "train/loss": window["loss"] / n,
                        "train/action_loss": window["action"] / n,
                        "train/lr": scheduler.get_last_lr()[0],
                        "train/grad_norm": window["gnorm"] / n,
                        "train/samples_per_s": window["samples"] / elapsed,
                        "train/token_accuracy": window["acc"] / n,
                        "train/elapsed_s": time.perf_counter() - t_start,
                    }
                    if head is not None:
                        row["train/aux_position_loss"] = window["aux"] / n
                        row["train/aux_position_error_cm"] = 100.0 * window["aux_err"] / n
                    if vision_head is not None:
                        row["train/aux_vision_loss"] = window["vis"] / n
                        row["train/aux_vision_error_cm"] = 100.0 * window["vis_err"] / n
                    for k, v in row.items():
                        writer.add_scalar(k, v, step)
                    metrics_f.write(json.dumps({"step": step, "epoch": epoch, **row}) + "\n")
                    metrics_f.flush()
                    window.update(loss=0.0, action=0.0, aux=0.0, aux_err=0.0, vis=0.0, vis_err=0.0, acc=0.0, gnorm=0.0,
                                  n=0, samples=0, t0=time.perf_counter())  # fmt: skip
                if (config.save_every and step % config.save_every == 0) or step == total_steps:
                    last_ckpt = save(step)
                    window["t0"] = time.perf_counter()  # checkpoint time is not training throughput
                if stop_now() and step < total_steps:
                    if last_ckpt is None or last_ckpt.name != f"step_{step}":
                        last_ckpt = save(step)
                    break
                if step >= total_steps:
                    break
            del loader
            if stop_now():
                break
    finally:
        bar.close()
        writer.close()
        metrics_f.close()

    wall = time.perf_counter() - t_start
    return {
        "step": step,
        "epoch": epoch,
        "total_steps": total_steps,
        "steps_per_epoch": steps_per_epoch,
        "final_loss": losses[-1] if losses else None,
        "losses": losses,  # per-step losses of this invocation
        "checkpoint": str(last_ckpt) if last_ckpt else None,
        "samples_per_s": total_samples / train_time if train_time > 0 else None,  # step compute only
        "samples_per_s_end_to_end": total_samples / wall if wall > 0 else None,  # incl. data loading + saving
        "wall_s": wall,
        "device": str(device),
        "num_parameters": policy.num_parameters(),
    }
