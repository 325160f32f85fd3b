"""The maths of outcome-reward GRPO as pure functions (no model, no env): advantages, the group filter of dynamic
sampling, the clipped token-level policy loss, and the batch-size arithmetic.

    advantage     A_i = (R_i - mean(R_group)) / (std(R_group) + eps), std unbiased (torch.std), the same A_i on
                  every valid action token of trajectory i; a group of one gets A = 0
    keep group    lower <= successes / G <= upper (default [0.1, 0.9]: with G = 8, 1..7 successes are kept;
                  all-fail and all-success groups carry no signal, their advantages are all 0)
    ratio         r_t = exp(logp_t - logp_old_t) per action token, both at the rollout temperature
    loss          -sum_t mask_t * min(r_t A_t, clip(r_t, 1 - eps_low, 1 + eps_high) A_t) / normaliser
                  (token-level mean: the normaliser is the number of valid tokens in the optimizer mini-batch, over
                  all ranks and micro-batches, so gradient accumulation and DDP do not change the objective)
    clipfrac      fraction of valid tokens where the clipped term was the smaller one (the clip was active)
    approx_kl     mean over valid tokens of (r - 1) - log r  (k3 estimator of KL(old || new), >= 0)
    lr schedule   "constant" (the paper's), or "cosine": lr * (1 + cos(pi * (step - 1) / steps)) / 2, full at step 1
                  and near 0 at the last step; times min(1, step / warmup_steps) with a warm-up (a fresh AdamW's first
                  updates move every weight by about lr whatever the gradient's size); a function of the step alone,
                  so a resumed run gets the same rates
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LR_SCHEDULES = ("constant", "cosine")


def group_advantages(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(n_groups, G) rewards → (n_groups, G) group-normalised advantages (see the module docstring)."""
    if rewards.ndim != 2:
        raise ValueError(f"rewards must be (n_groups, group_size), got shape {tuple(rewards.shape)}")
    r = rewards.double()
    if r.shape[1] == 1:
        return torch.zeros_like(rewards, dtype=torch.float32)
    mean = r.mean(dim=1, keepdim=True)
    std = r.std(dim=1, unbiased=True, keepdim=True)
    return ((r - mean) / (std + eps)).float()


def keep_groups(successes: torch.Tensor, group_size: int, band: tuple[float, float] = (0.1, 0.9)) -> torch.Tensor:
    """Dynamic-sampling filter: bool (n_groups,) — True where ``band[0] <= successes / group_size <= band[1]``."""
    low, high = band
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"band must satisfy 0 <= low <= high <= 1, got {band}")
    rate = successes.double() / group_size
    return (rate >= low) & (rate <= high)


@dataclass
class PolicyLoss:
    loss: torch.Tensor  # scalar, differentiable: this micro-batch's share of the mini-batch objective
    clipfrac_sum: float  # clipped valid tokens (sum), divide by the token count for the fraction
    approx_kl_sum: float
    tokens: int  # valid tokens in this micro-batch


def clipped_policy_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    normaliser: float | None = None,
) -> PolicyLoss:
    """PPO-clip surrogate over action tokens; all tensors broadcast to one shape (e.g. (B, chunk, 14)).

    ``normaliser`` is the valid-token count of the whole mini-batch (default: this call's own count)."""
    if not 0 <= clip_low < 1 or clip_high < 0:
        raise ValueError(f"need 0 <= clip_low < 1 and clip_high >= 0, got {clip_low}, {clip_high}")
    mask = torch.broadcast_to(mask.bool(), log_probs.shape)
    n_tokens = int(mask.sum().item())
    norm = float(normaliser) if normaliser is not None else max(1, n_tokens)
    # masked tokens get ratio 1 (log-ratio 0) so that garbage there can never produce inf * 0 = NaN
    log_ratio = torch.where(mask, log_probs - old_log_probs, torch.zeros_like(log_probs))
    ratio = torch.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * advantages
    surrogate = torch.minimum(unclipped, clipped)
    loss = -torch.where(mask, surrogate, torch.zeros_like(surrogate)).sum() / norm
    with torch.no_grad():
        clip_active = (clipped < unclipped) & mask
        kl = ((ratio - 1.0) - log_ratio) * mask
    return PolicyLoss(loss, float(clip_active.sum()), float(kl.sum()), n_tokens)


@dataclass(frozen=True)
class BatchPlan:
    """How one GRPO step is cut up; every number a user sets is here, and :func:`plan_batches` checks them.

    groups_per_step     kept groups (initial states) trained on per step, over all ranks
    group_size          trajectories per group (G)
    mini_batches        optimizer steps per GRPO step and epoch (the trajectories are split into this many parts)
    micro_batch         chunk-samples per forward/backward (gradient accumulation; memory only, not the maths)
    world_size          DDP ranks; each rank rolls out and trains on groups_per_step / world_size groups
    """

    groups_per_step: int
    group_size: int
    mini_batches: int
    micro_batch: int
    world_size: int = 1

    @property
    def trajectories_per_step(self) -> int:
        return self.groups_per_step * self.group_size

    @property
    def groups_per_rank(self) -> int:
        return self.groups_per_step // self.world_size

    @property
    def trajectories_per_mini_batch_per_rank(self) -> int:
        return self.groups_per_rank * self.group_size // self.mini_batches

    def describe(self) -> str:
        return (
            f"each GRPO step trains on {self.groups_per_step} kept groups x G={self.group_size} = "
            f"{self.trajectories_per_step} trajectories ({self.groups_per_rank} groups on each of {self.world_size} "
            f"rank(s)), split into {self.mini_batches} optimizer step(s) of "
            f"{self.trajectories_per_mini_batch_per_rank} trajectories per rank; forward/backward in micro-batches "
            f"of {self.micro_batch} chunk-samples"
        )


def plan_batches(
    groups_per_step: int, group_size: int, mini_batches: int, micro_batch: int, world_size: int = 1
) -> BatchPlan:
    """Validate the batch arithmetic with a message that says what to change."""
    for name, value in (
        ("groups_per_step", groups_per_step),
        ("group_size", group_size),
        ("mini_batches", mini_batches),
        ("micro_batch", micro_batch),
        ("world_size", world_size),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (advantages are relative to the group), got {group_size}")
    if groups_per_step % world_size:
        raise ValueError(
            f"groups_per_step={groups_per_step} is not divisible by world_size={world_size}: every rank needs the "
            f"same number of groups; use a multiple of {world_size}"
        )
    per_rank = groups_per_step // world_size * group_size
    if per_rank % mini_batches:
        raise ValueError(
            f"each rank trains on {groups_per_step // world_size} groups x {group_size} = {per_rank} trajectories, "
            f"which mini_batches={mini_batches} does not divide; choose mini_batches among "
            f"{[d for d in range(1, per_rank + 1) if per_rank % d == 0]}"
        )
    return BatchPlan(groups_per_step, group_size, mini_batches, micro_batch, world_size)


def scheduled_lr(lr: float, schedule: str, step: int, steps: int, warmup_steps: int = 0) -> float:
    """The learning rate of GRPO step ``step`` (1-based) of a ``steps``-step run, ``warmup_steps`` of linear warm-up."""
    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule={schedule!r} not in {LR_SCHEDULES}")
    if not 1 <= step <= steps:
        raise ValueError(f"step={step} outside 1..steps={steps}")
    if not 0 <= warmup_steps <= steps:
        raise ValueError(f"lr_warmup_steps={warmup_steps} outside 0..steps={steps}")
    warm = min(1.0, step / warmup_steps) if warmup_steps else 1.0
    if schedule == "constant":
        return lr * warm
    return lr * warm * 0.5 * (1.0 + math.cos(math.pi * (step - 1) / steps))
