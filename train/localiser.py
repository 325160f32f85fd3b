"""A vision encoder trained to find the task's objects before SFT (``pushcut train localiser``).

On randomised scenes (colours, textures, lights, table height, clutter, a moved camera) SFT's encoder learns the
training scenes' looks instead of where the bell is: its vision tokens locate the bell in held-out scenes to ~7 cm
(docs/results.md). A conv keypoint encoder trained *to find the bell* on 1,000 such scenes does so to ~0.7 cm
(../shared/reference/localisation.md). This module trains exactly the policy's vision encoder and projector — the
preset's, fed by SFT's own data pipeline (crop augmentation, optional colour jitter) — with a linear readout of the
demonstrations' privileged object positions from the flattened vision tokens (the same readout as SFT's
``aux_vision_weight``), and measures it on held-out episodes. ``SFTConfig.vision_init`` starts a policy from it
(``freeze_vision`` keeps it as it is).

Outputs under ``out``: ``vision.pt`` (the encoder's and projector's weights, the preset and its vision config;
written atomically) and ``localiser.json`` (the config, training time, the z-scored training loss per 100 steps,
held-out error in cm: median / 90th percentile / mean over every held-out frame and over each episode's first frame,
and the fraction whose sign of x — which arm must act — is right).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from pushcut.sim.dataset import DemoDataset
from pushcut.train.action_tokenizer import ActionTokenizer
from pushcut.train.model import VLAPolicy
from pushcut.train.presets import get_preset
from pushcut.train.sft_data import SFTDataset, collate, compute_norm_stats, load_episodes
from pushcut.train.sft_losses import PositionHead, position_statistics

WEIGHTS_FILE = "vision.pt"
REPORT_FILE = "localiser.json"


@dataclass(frozen=True)
class LocaliserConfig:
    data: str  # demonstration directory recorded with privileged positions (pushcut sim demo)
    out: str
    preset: str = "small"  # the policy preset whose encoder is trained
    preset_overrides: dict[str, Any] = field(default_factory=dict)  # as SFT's: get_preset(preset, **overrides)
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 0.01
    holdout_episodes: int = 100  # the dataset's last N episodes are held out (never trained on)
    color_jitter: bool = False
    seed: int = 0
    num_workers: int = 1

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.holdout_episodes) < 1 or self.lr <= 0:
            raise ValueError("steps, batch_size and holdout_episodes must be >= 1 and lr > 0")


def vision_readout(policy: VLAPolicy, n_bodies: int, positions: np.ndarray) -> PositionHead:
    """A linear readout of ``n_bodies`` positions from the flattened vision tokens of ``policy``."""
    cfg = policy.config
    blank = torch.zeros((1, len(cfg.cameras), cfg.image_size, cfg.image_size, 3), dtype=torch.uint8)
    with torch.no_grad():
        width = policy.vision_tokens(blank).flatten(1).shape[1]
    return PositionHead(width, n_bodies, *position_statistics(positions))


def read_vision(vision_tokens: torch.Tensor) -> torch.Tensor:
    """``vision_tokens`` (B, N, D) as the readout's single slot (B, 1, N * D)."""
    return vision_tokens.flatten(1)[:, None]


def train_localiser(config: LocaliserConfig) -> dict[str, object]:
    torch.manual_seed(config.seed)
    policy_cfg = get_preset(config.preset, **dict(config.preset_overrides))
    if policy_cfg.vision_class != "keypoints":
        raise ValueError(f"the localiser trains the keypoint encoder; preset {config.preset!r} uses "
                         f"{policy_cfg.vision_class!r} (use --preset small)")  # fmt: skip
    demos = DemoDataset(config.data)
    episodes = load_episodes(demos, policy_cfg)
    if len(episodes) <= config.holdout_episodes:
        raise ValueError(f"{config.data}: {len(episodes)} episodes, not more than --holdout-episodes "
                         f"{config.holdout_episodes}: record more demonstrations or hold out fewer")  # fmt: skip
    action_stats, proprio_stats = compute_norm_stats(episodes)
    tokenizer = ActionTokenizer(action_stats, n_bins=policy_cfg.n_bins)

    def dataset(train: bool) -> SFTDataset:
        return SFTDataset(demos, policy_cfg, tokenizer, proprio_stats, train=train,
                          color_jitter=config.color_jitter and train, seed=config.seed)  # fmt: skip

    train_set, eval_set = dataset(True), dataset(False)
    first_held = len(episodes) - config.holdout_episodes
    owners = np.array([train_set.locate(i)[0] for i in range(len(train_set))])
    train_idx = np.flatnonzero(owners < first_held)
    held_idx = np.flatnonzero(owners >= first_held)
    positions = train_set.require_positions()

    policy = VLAPolicy(policy_cfg).train()
    head = vision_readout(policy, positions.shape[1], positions[: int(train_idx.max()) + 1])
    params = [*policy.vision.parameters(), *policy.projector.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, config.steps, eta_min=0.1 * config.lr)

    t0, step, epoch, losses = time.perf_counter(), 0, 0, []
    while step < config.steps:
        train_set.set_epoch(epoch)
        order = torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(config.seed * 1000 + epoch))
        loader = DataLoader(Subset(train_set, train_idx[order.numpy()].tolist()), batch_size=config.batch_size,
                            collate_fn=collate, num_workers=config.num_workers, drop_last=True)  # fmt: skip
        for batch in loader:
            loss = head.loss(read_vision(policy.vision_tokens(batch["images"])), batch["positions"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            step += 1
            if step >= config.steps:
                break
        epoch += 1
    train_s = time.perf_counter() - t0

    policy.eval()
    errors, first, sides = _held_out_errors(policy, head, eval_set, held_idx, config)
    report = {
        "config": dataclasses.asdict(config),
        "train_s": round(train_s, 1),
        "final_train_loss": float(np.mean(losses[-50:])),
        "train_loss_per_100_steps": [round(float(np.mean(losses[i : i + 100])), 5) for i in range(0, len(losses), 100)],
        "held_out_frames": len(errors),
        "held_out_episodes": config.holdout_episodes,
        "all_frames_cm": _summary(errors),
        "first_frame_cm": _summary(errors[first]),
        "side_correct": float(np.mean(sides)),
    }
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    weights = {"preset": config.preset, "vision": dict(policy_cfg.vision), "image_size": policy_cfg.image_size,
               "vision_state": policy.vision.state_dict(),
               "projector_state": policy.projector.state_dict()}  # fmt: skip
    tmp = out / (WEIGHTS_FILE + ".tmp")
    torch.save(weights, tmp)
    os.replace(tmp, out / WEIGHTS_FILE)
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _held_out_errors(policy: VLAPolicy, head: PositionHead, eval_set: SFTDataset, held_idx: np.ndarray,
                     config: LocaliserConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Per held-out frame: the first body's error (cm), whether it is its episode's first frame, side right."""
    errors, first, sides = [], [], []
    loader = DataLoader(Subset(eval_set, held_idx.tolist()), batch_size=config.batch_size, collate_fn=collate,
                        num_workers=config.num_workers)  # fmt: skip
    with torch.no_grad():
        for batch in loader:
            xyz = head.predict_m(read_vision(policy.vision_tokens(batch["images"])))[:, :3]
            truth = batch["positions"][:, 0].float()
            errors.append(100.0 * (xyz - truth).norm(dim=-1).numpy())
            first.append(batch["t"].numpy() == 0)
            sides.append(np.sign(xyz[:, 0].numpy()) == np.sign(truth[:, 0].numpy()))
    return np.concatenate(errors), np.concatenate(first), np.concatenate(sides)


def _summary(errors_cm: np.ndarray) -> dict[str, float]:
    return {"median": float(np.median(errors_cm)), "p90": float(np.percentile(errors_cm, 90)),
            "mean": float(np.mean(errors_cm)), "n": int(len(errors_cm))}  # fmt: skip


def load_localiser(policy: VLAPolicy, directory: str | Path, preset: str) -> None:
    """Copy a localiser's encoder and projector into ``policy`` (built from ``preset``); ValueError on a mismatch."""
    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train one with `pushcut train localiser --data DEMOS --out DIR`")
    weights = torch.load(path, map_location="cpu", weights_only=True)
    wanted = {"preset": preset, "vision": json.loads(json.dumps(policy.config.vision))}
    found = {"preset": weights["preset"], "vision": json.loads(json.dumps(weights["vision"]))}
    if wanted != found or weights["image_size"] != policy.config.image_size:
        raise ValueError(f"{path}: a localiser of preset {found['preset']!r} ({found['vision']}, "
                         f"{weights['image_size']} px); this run's policy is {preset!r} ({wanted['vision']}, "
                         f"{policy.config.image_size} px)")  # fmt: skip
    policy.vision.load_state_dict(weights["vision_state"])
    policy.projector.load_state_dict(weights["projector_state"])
