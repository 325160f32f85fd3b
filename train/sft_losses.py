"""The SFT objective's two optional terms, each a switch of :class:`pushcut.train.sft.SFTConfig`.

**Ordinal token targets** (``label_sigma`` > 0, HL-Gauss, Imani & White 2018 / Farebrother et al. 2024): the target
of an action slot is not one bin but a Gaussian of standard deviation ``label_sigma`` bins around the continuous
target, integrated over each bin — neighbouring bins get credit, so the 256 classes learn their order. The policy
stays a token policy: the same logits, sampling and exact log-probs for GRPO.

**Auxiliary position loss** (``aux_position_weight`` > 0): a linear head reads the positions of the task's privileged
bodies (``Task.privileged_bodies``, recorded with the demonstrations) out of every action slot's final hidden
state; its mean squared error (positions z-scored with the dataset's statistics) is added to the loss. The
simulator's state is privileged: the head exists only in training (its weights live in the SFT training state,
never in the policy), nothing at inference or on the robot needs it. It makes the action slots carry where the object
is, which the plain cross-entropy on 100 demonstrations does not (docs/results.md, "A policy that sees").
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

MIN_POSITION_STD_M = 0.01  # coordinates that barely vary (a static object's height) are scaled by 1 cm, not ~0


def soft_bin_targets(unit: torch.Tensor, n_bins: int, sigma: float) -> torch.Tensor:
    """HL-Gauss targets (..., n_bins) for continuous targets ``unit`` in [0, 1] (the normalised action):
    the mass of N(unit * n_bins, sigma²) over each bin [i, i + 1), renormalised over [0, n_bins)."""
    if sigma <= 0:
        raise ValueError(f"label_sigma must be > 0 bins, got {sigma}")
    mu = unit.float().clamp(0.0, 1.0)[..., None] * n_bins
    edges = torch.arange(n_bins + 1, dtype=torch.float32, device=unit.device)
    cdf = 0.5 * (1.0 + torch.erf((edges - mu) / (sigma * math.sqrt(2.0))))
    mass = cdf[..., 1:] - cdf[..., :-1]
    return mass / mass.sum(-1, keepdim=True).clamp_min(1e-12)


def action_loss(
    logits: torch.Tensor, tokens: torch.Tensor, unit: torch.Tensor | None = None, label_sigma: float = 0.0
) -> torch.Tensor:
    """Mean cross-entropy over action slots: against the target bins ``tokens`` (one-hot), or against HL-Gauss
    targets around ``unit`` (the normalised continuous actions in [0, 1]) when ``label_sigma`` > 0."""
    flat = logits.reshape(-1, logits.shape[-1])
    if label_sigma <= 0:
        return F.cross_entropy(flat, tokens.reshape(-1).long())
    if unit is None:
        raise ValueError("label_sigma > 0 needs the continuous targets (unit)")
    target = soft_bin_targets(unit.reshape(-1), logits.shape[-1], label_sigma)
    return -(target * torch.log_softmax(flat, -1)).sum(-1).mean()


class PositionHead(nn.Module):
    """Linear readout of the privileged positions (K bodies × xyz) from each action slot's hidden state."""

    def __init__(self, hidden_size: int, n_bodies: int, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        if np.shape(mean) != (n_bodies * 3,) or np.shape(std) != (n_bodies * 3,):
            raise ValueError(f"position statistics must have shape ({n_bodies * 3},)")
        self.n_bodies = n_bodies
        self.linear = nn.Linear(hidden_size, n_bodies * 3)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(np.maximum(std, MIN_POSITION_STD_M), dtype=torch.float32))

    def loss(self, action_hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Mean squared error in z-scored units; ``action_hidden`` (B, slots, D), ``positions`` (B, K, 3) metres."""
        target = (positions.reshape(len(positions), -1).float() - self.mean) / self.std
        pred = self.linear(action_hidden.float())
        return F.mse_loss(pred, target[:, None].expand_as(pred))

    def predict_m(self, action_hidden: torch.Tensor) -> torch.Tensor:
        """The slot-averaged prediction of every body's position, metres, (B, 3K)."""
        return self.linear(action_hidden.float()).mean(1) * self.std + self.mean

    def error_m(self, action_hidden: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Mean Euclidean error (metres) of the slot-averaged prediction of the first body's position."""
        return (self.predict_m(action_hidden)[:, :3] - positions[:, 0].float()).norm(dim=-1).mean()


def position_statistics(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-coordinate mean and std of (N, K, 3) positions, flattened to (3K,)."""
    flat = np.asarray(positions, dtype=np.float64).reshape(len(positions), -1)
    return flat.mean(0), flat.std(0)
