"""A small convolutional encoder whose tokens state where things are: spatial-softmax keypoints.

The ViT of the ``tiny`` preset keeps an object's position only implicitly, spread over 64 patch tokens, and the
policy's action slots fail to read it back (docs/results.md, "A policy that sees"). This encoder hands the language
model the position plainly, as numbers (Levine et al.'s deep spatial autoencoders / spatial-softmax keypoints):

    image (3, S, S) → 4 conv layers (GroupNorm, SiLU; stride 2, 1, 2, 1) → feature map F (C, S/4, S/4)
    keypoint k: a 1×1 conv gives a heat map, softmax over the map (learned temperature) → a distribution a_k
        position   (x_k, y_k) = Σ a_k(p) · p   over pixel centres p in [-1, 1]²  (sub-pixel precise, differentiable)
        appearance f_k = Σ a_k(p) · F(p)      (what is there)
    token_k = Linear([x_k, y_k, sin/cos(2^j π x_k), sin/cos(2^j π y_k) for j < n_frequencies, f_k]) + e_k
        (``appearance=False`` drops f_k: with ``grid=0`` the tokens say only where the keypoints are, nothing a policy
        could use to recognise a training scene by its colours and textures)
    grid tokens (optional): F average-pooled to g × g cells, Linear(C) + a learned embedding per cell (the scene's
        layout around the keypoints)

Output: ``last_hidden_state`` (B, keypoints + grid², hidden_size), the interface of a transformers vision model, so
:class:`pushcut.train.model.VLAPolicy` uses either. GroupNorm, not BatchNorm: the encoder behaves identically in
train and eval mode, so GRPO's recomputed log-probs equal the rollout's. Saved as ``config.json`` +
``model.safetensors`` (:meth:`save_pretrained` / :meth:`from_pretrained`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class KeypointEncoderConfig:
    image_size: int = 64
    channels: tuple[int, ...] = (32, 64, 64, 128)  # one conv layer each; strides 2, 1, 2, 1, ...
    groups: int = 8  # GroupNorm groups
    keypoints: int = 32
    grid: int = 4  # g: g × g pooled layout tokens (0: none)
    n_frequencies: int = 4  # Fourier features of each keypoint coordinate
    hidden_size: int = 128  # token width (the policy's projector maps it to the LM width)
    appearance: bool = True  # keypoint tokens carry the features under them too (False: where, not what)

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if not self.channels or self.keypoints < 1 or self.grid < 0 or self.n_frequencies < 0:
            raise ValueError("keypoint encoder: need >= 1 conv layer and >= 1 keypoint; grid, n_frequencies >= 0")
        if any(c % self.groups for c in self.channels):
            raise ValueError(
                f"keypoint encoder: every channel count {self.channels} must divide by groups={self.groups}"
            )
        if self.image_size % self.stride or self.grid > self.image_size // self.stride:
            raise ValueError(
                f"keypoint encoder: image_size {self.image_size} must be a multiple of the total stride {self.stride} "
                f"and leave at least grid={self.grid} cells per side"
            )

    @property
    def stride(self) -> int:
        return 2 ** ((len(self.channels) + 1) // 2)

    @property
    def num_tokens(self) -> int:
        return self.keypoints + self.grid * self.grid

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KeypointEncoderConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown keypoint encoder fields: {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "channels": list(self.channels)}


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor  # (B, num_tokens, hidden_size)
    keypoints: torch.Tensor = field(default=None)  # (B, keypoints, 2) image coordinates in [-1, 1] (x right, y down)


class KeypointEncoder(nn.Module):
    """Conv trunk + spatial-softmax keypoints (+ pooled grid) → tokens; see the module docstring."""

    def __init__(self, config: KeypointEncoderConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = 3
        for i, c_out in enumerate(config.channels):
            stride = 2 if i % 2 == 0 else 1
            kernel = 5 if i == 0 else 3
            layers += [
                nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2),
                nn.GroupNorm(config.groups, c_out),
                nn.SiLU(),
            ]
            c_in = c_out
        self.trunk = nn.Sequential(*layers)
        side = config.image_size // config.stride
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
        self.register_buffer("coords", torch.stack([xs.flatten(), ys.flatten()], -1), persistent=False)  # (HW, 2)
        self.heatmaps = nn.Conv2d(c_in, config.keypoints, 1)
        self.log_temperature = nn.Parameter(torch.zeros(()))
        n_pos = 2 + 4 * config.n_frequencies
        self.register_buffer(
            "frequencies", math.pi * 2.0 ** torch.arange(config.n_frequencies, dtype=torch.float32), persistent=False
        )
        self.keypoint_proj = nn.Linear(n_pos + (c_in if config.appearance else 0), config.hidden_size)
        self.keypoint_embed = nn.Parameter(torch.randn(config.keypoints, config.hidden_size) * 0.02)
        if config.grid:
            self.pool = nn.AdaptiveAvgPool2d(config.grid)
            self.grid_proj = nn.Linear(c_in, config.hidden_size)
            self.grid_embed = nn.Parameter(torch.randn(config.grid * config.grid, config.hidden_size) * 0.02)

    def forward(self, pixel_values: torch.Tensor) -> EncoderOutput:
        feats = self.trunk(pixel_values)  # (B, C, h, w)
        b, c, h, w = feats.shape
        logits = self.heatmaps(feats).flatten(2)  # (B, K, hw)
        attn = torch.softmax(logits / self.log_temperature.exp(), dim=-1)
        xy = attn @ self.coords  # (B, K, 2)
        appearance = attn @ feats.flatten(2).transpose(1, 2)  # (B, K, C)
        angles = xy[..., None] * self.frequencies  # (B, K, 2, F)
        position = torch.cat([xy, angles.sin().flatten(2), angles.cos().flatten(2)], -1)
        described = torch.cat([position, appearance], -1) if self.config.appearance else position
        tokens = self.keypoint_proj(described) + self.keypoint_embed
        if self.config.grid:
            grid = self.pool(feats).flatten(2).transpose(1, 2)  # (B, g², C)
            tokens = torch.cat([tokens, self.grid_proj(grid) + self.grid_embed], 1)
        return EncoderOutput(last_hidden_state=tokens, keypoints=xy)

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / CONFIG_FILE).write_text(json.dumps({"model_type": "pushcut_keypoints", **self.config.to_dict()}, indent=2))
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(d / WEIGHTS_FILE))

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, dtype: torch.dtype = torch.float32) -> KeypointEncoder:
        """Strict load: a missing file, a missing or unexpected tensor, or a wrong shape is a ValueError naming it."""
        from safetensors.torch import load_file

        d = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (d / name).is_file():
                raise FileNotFoundError(f"{d / name} is missing (keypoint encoder directory)")
        raw = json.loads((d / CONFIG_FILE).read_text())
        if raw.pop("model_type", None) != "pushcut_keypoints":
            raise ValueError(
                f"{d / CONFIG_FILE}: not a pushcut keypoint encoder (model_type must be pushcut_keypoints)"
            )
        model = cls(KeypointEncoderConfig.from_dict(raw))
        state = load_file(str(d / WEIGHTS_FILE))
        own = model.state_dict()
        missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        shapes = [
            f"{k}: {tuple(state[k].shape)} != {tuple(v.shape)}"
            for k, v in own.items()
            if k in state and state[k].shape != v.shape
        ]
        if missing or unexpected or shapes:
            raise ValueError(f"{d / WEIGHTS_FILE}: missing {missing}, unexpected {unexpected}, mis-shaped {shapes}")
        model.load_state_dict(state)
        return model.to(dtype)
