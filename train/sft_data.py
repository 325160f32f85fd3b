"""Supervised fine-tuning samples over a demonstration directory (`pushcut sim demo`).

Every timestep t of every episode is one sample:

    images       the policy's cameras at t, preprocessed (train: random 90 % crop, eval: centre; with
                 ``color_jitter`` random brightness, contrast, saturation and hue) → uint8 (n_cameras, S, S, 3)
    instruction  the episode's instruction
    proprio      states[t], normalised to [-1, 1] with the proprio NormStats (float32, 14)
    actions      actions[t : t + chunk], padded to ``chunk`` by repeating the episode's last action (float32)
    tokens       ActionTokenizer.encode(actions) (int64, (chunk, 14))
    unit         the actions normalised to [0, 1] per dimension (float32, (chunk, 14)): ordinal (soft) targets
    positions    (only when every episode recorded them) the privileged bodies' positions at t (float32, (K, 3)),
                 the target of the auxiliary position loss; never a policy input

Validation happens in the constructor, before any training step: action/proprio dimensions, lengths and the
presence of every camera the policy needs in every episode file. The small arrays are cached; JPEG frames are
decoded lazily per item. The crop of item i in epoch e is drawn from ``default_rng([seed, e, i])`` and, with
``color_jitter``, camera c's photometric shifts from a generator keyed by (seed, e, i, c) (train/augment.py), so
batches do not depend on the number of DataLoader workers (call ``set_epoch`` before iterating; workers are
re-created per epoch unless ``persistent_workers``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from pushcut.sim.dataset import DemoDataset, Episode, decode_jpeg
from pushcut.train import augment
from pushcut.train.action_tokenizer import ActionTokenizer, NormMode, NormStats
from pushcut.train.preprocess import preprocess_images
from pushcut.train.presets import PolicyConfig


def load_episodes(dataset: DemoDataset, config: PolicyConfig, max_episodes: int | None = None) -> list[Episode]:
    """The first ``max_episodes`` (default: all) episodes of ``dataset``, validated against ``config``; ValueError
    naming the file on any mismatch."""
    if len(dataset) == 0:
        raise ValueError(f"{dataset.root} holds no episodes")
    if max_episodes is not None and not 1 <= max_episodes <= len(dataset):
        raise ValueError(f"max_episodes={max_episodes} but {dataset.root} holds {len(dataset)} episodes")
    episodes = []
    for i in range(len(dataset) if max_episodes is None else max_episodes):
        try:
            ep = dataset.episode(i)
        except ValueError as e:  # DemoDataset checks the (T, 14) layout itself
            raise ValueError(f"{e}; the policy needs action_dim {config.action_dim}") from None
        name = ep.path
        if ep.actions.ndim != 2 or ep.actions.shape[1] != config.action_dim:
            raise ValueError(f"{name}: actions have shape {ep.actions.shape}, expected (T, {config.action_dim})")
        if ep.states.shape != (len(ep.actions), config.proprio_dim):
            raise ValueError(
                f"{name}: joint_state/vector has shape {ep.states.shape}, expected ({len(ep.actions)}, "
                f"{config.proprio_dim})"
            )
        if len(ep) == 0 or not (np.all(np.isfinite(ep.actions)) and np.all(np.isfinite(ep.states))):
            raise ValueError(f"{name}: empty episode or non-finite actions/states")
        with h5py.File(ep.path, "r") as f:
            available = sorted(f["observation"].keys()) if "observation" in f else []
            for cam in config.cameras:
                if f"observation/{cam}/rgb" not in f:
                    raise ValueError(
                        f"{name}: camera {cam!r} needed by the policy is missing; available cameras: {available}"
                    )
                if len(f[f"observation/{cam}/rgb"]) != len(ep):
                    raise ValueError(
                        f"{name}: camera {cam!r} has {len(f[f'observation/{cam}/rgb'])} frames, expected {len(ep)}"
                    )
        episodes.append(ep)
    return episodes


def compute_norm_stats(dataset: DemoDataset | list[Episode], mode: NormMode = "minmax") -> tuple[NormStats, NormStats]:
    """(action stats, proprio stats) over every timestep of every episode."""
    episodes = list(dataset)
    actions = np.concatenate([ep.actions for ep in episodes])
    states = np.concatenate([ep.states for ep in episodes])
    return NormStats.from_data(actions, mode), NormStats.from_data(states, mode)


class SFTDataset(Dataset):
    """One sample per (episode, timestep) of a demonstration directory; see the module docstring."""

    def __init__(
        self,
        root: str | Path | DemoDataset,
        config: PolicyConfig,
        tokenizer: ActionTokenizer,
        proprio_stats: NormStats,
        *,
        train: bool = True,
        color_jitter: bool = False,
        seed: int = 0,
        max_episodes: int | None = None,
        image_fn: Callable[..., np.ndarray] | None = None,
        proprio_normalizer: ActionTokenizer | None = None,
    ) -> None:
        """``train``: random crops (else the centre crop); ``color_jitter``: photometric shifts after the crop.
        ``image_fn`` / ``proprio_normalizer``: a checkpoint format's own crop (signature of preprocess_images) and
        state normaliser (OpenVLA-OFT's); default pushcut's."""
        self.demos = root if isinstance(root, DemoDataset) else DemoDataset(root)
        self.config = config
        if tokenizer.dim != config.action_dim or proprio_stats.dim != config.proprio_dim:
            raise ValueError(
                f"tokenizer dim {tokenizer.dim} / proprio stats dim {proprio_stats.dim} do not match the config's "
                f"action_dim {config.action_dim} / proprio_dim {config.proprio_dim}"
            )
        self.tokenizer = tokenizer
        # only its normalize() is used
        self.proprio = proprio_normalizer or ActionTokenizer(proprio_stats, n_bins=config.n_bins)
        self.image_fn = image_fn or preprocess_images
        self.train = train
        self.color_jitter = color_jitter
        self.seed = int(seed)
        self.epoch = 0
        self.episodes = load_episodes(self.demos, config, max_episodes)
        self.has_positions = all(ep.object_positions is not None for ep in self.episodes)
        lengths = np.array([len(ep) for ep in self.episodes])
        self._offsets = np.concatenate([[0], np.cumsum(lengths)])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def set_epoch(self, epoch: int) -> None:
        """Select the crops and colour shifts of ``epoch`` (deterministic per (seed, epoch, index))."""
        self.epoch = int(epoch)

    def locate(self, index: int) -> tuple[int, int]:
        """(episode number, timestep) of sample ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample index {index} out of range [0, {len(self)})")
        e = int(np.searchsorted(self._offsets, index, side="right") - 1)
        return e, int(index - self._offsets[e])

    def target(self, episode: int, t: int) -> np.ndarray:
        """actions[t : t + chunk] of ``episode``, the last action repeated to ``chunk`` rows."""
        actions = self.episodes[episode].actions
        rows = np.minimum(np.arange(t, t + self.config.chunk), len(actions) - 1)
        return actions[rows]

    def __getitem__(self, index: int) -> dict[str, Any]:
        e, t = self.locate(int(index))
        ep = self.episodes[e]
        with h5py.File(ep.path, "r") as f:
            raw = np.stack([decode_jpeg(f[f"observation/{cam}/rgb"][t]) for cam in self.config.cameras])
        rng = np.random.default_rng([self.seed, self.epoch, int(index)]) if self.train else None
        images = self.image_fn(raw, self.config.image_size, train=self.train, rng=rng)
        if self.color_jitter:
            generators = augment.jitter_generators(self.seed, self.epoch, int(index), len(images))
            images = augment.color_jitter(images, generators)
        target = self.target(e, t)
        sample = {
            "images": images,
            "instruction": ep.instruction,
            "proprio": self.proprio.normalize(ep.states[t]).astype(np.float32),
            "actions": target.astype(np.float32),
            "tokens": self.tokenizer.encode(target),
            "unit": ((self.tokenizer.normalize(target) + 1.0) / 2.0).astype(np.float32),
            "episode": e,
            "t": t,
        }
        if self.has_positions:
            sample["positions"] = ep.object_positions[t].astype(np.float32)
        return sample

    def require_positions(self) -> np.ndarray:
        """Every timestep's privileged positions (N, K, 3); ValueError naming an episode recorded without them."""
        for ep in self.episodes:
            if ep.object_positions is None:
                raise ValueError(
                    f"{ep.path}: no privileged/object_positions (recorded before pushcut recorded them); the auxiliary "
                    "position loss needs them: record the demonstrations again with `pushcut sim demo`"
                )
        return np.concatenate([ep.object_positions for ep in self.episodes])


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples: images uint8 (B, n_cam, S, S, 3), instructions list[str], proprio float32 (B, 14),
    actions / unit float32 and tokens int64 (B, chunk, 14), episode / t int64 (B,), positions float32 (B, K, 3)
    when every sample has them. Feed the model with
    ``policy.make_batch(b["images"], b["instructions"], b["proprio"])`` and ``policy.loss(batch, b["tokens"])``."""
    batch = {
        "images": torch.from_numpy(np.stack([s["images"] for s in samples])),
        "instructions": [s["instruction"] for s in samples],
        "proprio": torch.from_numpy(np.stack([s["proprio"] for s in samples])),
        "actions": torch.from_numpy(np.stack([s["actions"] for s in samples])),
        "tokens": torch.from_numpy(np.stack([s["tokens"] for s in samples])),
        "unit": torch.from_numpy(np.stack([s["unit"] for s in samples])),
        "episode": torch.tensor([s["episode"] for s in samples], dtype=torch.int64),
        "t": torch.tensor([s["t"] for s in samples], dtype=torch.int64),
    }
    if all("positions" in s for s in samples):
        batch["positions"] = torch.from_numpy(np.stack([s["positions"] for s in samples]))
    return batch


class MixedSFTDataset(ConcatDataset):
    """SFT samples of several demonstration directories of one task, in order (e.g. randomised scenes with some clean
    ones beside them); sample indices run through the first directory's, then the next one's."""

    def __init__(self, parts: list[SFTDataset]) -> None:
        first = parts[0].demos
        for part in parts[1:]:
            other = part.demos
            same = (other.task, other.cameras, other.action_hz, other.image_shape)
            if same != (first.task, first.cameras, first.action_hz, first.image_shape):
                raise ValueError(f"{other.root} ({other.task}, cameras {other.cameras}, {other.action_hz:.2f} Hz, "
                                 f"{other.image_shape}) cannot be mixed with {first.root} ({first.task}, cameras "
                                 f"{first.cameras}, {first.action_hz:.2f} Hz, {first.image_shape}): the same task, "
                                 "cameras, rate and image size are needed")  # fmt: skip
        super().__init__(parts)
        self.parts = parts
        self.has_positions = all(part.has_positions for part in parts)

    def set_epoch(self, epoch: int) -> None:
        for part in self.parts:
            part.set_epoch(epoch)

    def require_positions(self) -> np.ndarray:
        return np.concatenate([part.require_positions() for part in self.parts])
