"""Inference backends: the one interface between the policy server and a model.

A backend validates and preprocesses one request (``prepare``, in the server's I/O thread, so a bad request fails
alone) and runs a batch of prepared requests in one forward pass (``infer``, in the batching thread). The protocol
never sees the backend: anything that implements :class:`InferenceBackend` can be served.

- :class:`TorchBackend` (now): :class:`pushcut.train.inference.ChunkPolicy` — the same preprocessing, normalisation
  and decoding as evaluation and GRPO — in eager mode, or with ``torch.compile`` on the model's forward.
- A vLLM backend for autoregressive token VLAs on GPU (later) would implement the same two methods: ``prepare``
  builds the multimodal prompt (images + instruction + state tokens), ``infer`` submits the batch to a
  ``vllm.LLM``/``AsyncLLMEngine`` with ``SamplingParams(temperature, seed, max_tokens=chunk*14)`` restricted to
  the action-token ids, and de-tokenises the bins with the checkpoint's action tokenizer. vLLM's own continuous
  batching would then replace the server's micro-batching (``max_batch`` = engine capacity, ``max_wait_ms`` = 0).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:  # torch and transformers load with the checkpoint, not with this module
    from pushcut.train.inference import ChunkPolicy, PolicyInput


@dataclass(frozen=True)
class ModelInfo:
    """What ``hello`` reports about the served model."""

    checkpoint_id: str
    checkpoint_hash: str
    step: int
    preset: str
    tasks: tuple[str, ...]
    cameras: tuple[str, ...]
    image_size: int  # the model's square input side; any camera resolution is centre-cropped and resized to it
    chunk: int
    action_hz: float
    state_dim: int
    action_dim: int
    backend: str
    action_names: tuple[str, ...] = ()  # from the checkpoint (pushcut.train.checkpoint); empty when unnamed
    # provenance of the head-camera calibration the policy was trained with (name, sha256); None: the nominal view
    camera_calibration: dict[str, str] | None = None


class InferenceBackend(Protocol):
    """``prepare`` returns the backend's own request object, which the server only hands back to ``infer``."""

    info: ModelInfo

    def prepare(self, images: Mapping[str, np.ndarray], state: np.ndarray, instruction: str) -> Any:
        """One validated, preprocessed request; ValueError/KeyError naming the problem otherwise."""
        ...

    def infer(self, prepared: Sequence[Any], temperature: float = 0.0, seed: int | None = None) -> np.ndarray:
        """Actions float32 (len(prepared), chunk, action_dim) from one forward pass."""
        ...


@lru_cache(maxsize=16)
def _hash_files(files: tuple[tuple[str, int, int], ...], root: str) -> str:
    digest = hashlib.sha256()
    for rel, _, _ in files:
        digest.update(rel.encode() + b"\0")
        with open(Path(root) / rel, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


METADATA_FILES = ("pushcut_checkpoint.json", "config.json", "dataset_statistics.json", "pushcut_openvla.json",
                  "adapter_config.json")  # fmt: skip


def checkpoint_hash(directory: str | os.PathLike) -> str:
    """sha256 over the weights (``model/**/*.safetensors``; a published OpenVLA-OFT directory's ``*.safetensors``)
    and the metadata files present, with their relative paths; cached per (path, size, mtime) so a restarted server
    in the same process does not re-read the weights."""
    root = Path(directory).resolve()
    metadata = [root / name for name in METADATA_FILES if (root / name).is_file()]
    paths = sorted([*root.glob("model/**/*.safetensors"), *root.glob("*.safetensors"), *metadata])
    files = tuple((p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    return _hash_files(files, str(root))


class TorchBackend:
    """A :class:`ChunkPolicy` on CPU or GPU; ``compile=True`` wraps the model's forward in ``torch.compile``."""

    def __init__(self, policy: ChunkPolicy, checkpoint_id: str, checkpoint_hash: str, *, compile: bool = False,
                 compile_backend: str = "inductor") -> None:  # fmt: skip
        import torch

        self.policy = policy
        self._torch = torch
        model = policy.policy
        if compile:
            # greedy/sample call self.forward, so an instance attribute routes them through the compiled graph.
            model.forward = torch.compile(model.forward, backend=compile_backend, dynamic=True)
        meta = policy.metadata
        self.info = ModelInfo(
            checkpoint_id=checkpoint_id,
            checkpoint_hash=checkpoint_hash,
            step=int(meta.get("step", -1)),
            preset=str(meta.get("preset", "")),
            tasks=tuple(meta.get("tasks", ())),
            cameras=tuple(policy.cameras),
            image_size=policy.image_size,
            chunk=policy.chunk,
            action_hz=policy.action_hz,
            state_dim=policy.state_dim,
            action_dim=policy.action_dim,
            backend=f"torch-{'compile' if compile else 'eager'} ({next(model.parameters()).device})",
            action_names=tuple(meta.get("action_names", ())),
            camera_calibration=(meta.get("extra") or {}).get("camera_calibration"),
        )

    @classmethod
    def from_checkpoint(
        cls, directory: str | os.PathLike, device: str | None = None, *, compile: bool = False
    ) -> TorchBackend:
        from pushcut.train.inference import ChunkPolicy

        path = Path(directory)
        policy = ChunkPolicy.from_checkpoint(path, device=device)
        resolved = path.resolve()  # RUN/latest -> RUN/checkpoints/step_N, reported as "RUN/step_N"
        run = resolved.parent.parent if resolved.parent.name == "checkpoints" else resolved.parent
        checkpoint_id = f"{run.name}/{resolved.name}" if run.name else resolved.name
        return cls(policy, checkpoint_id, checkpoint_hash(path), compile=compile)

    def prepare(self, images: Mapping[str, np.ndarray], state: np.ndarray, instruction: str) -> PolicyInput:
        return self.policy.prepare([images], state[None], [instruction])

    def warm_up(self, batch_sizes: Sequence[int] = (1, 2)) -> None:
        """Run dummy batches once (with ``compile=True`` this compiles the graphs before the first robot waits)."""
        black = {c: np.zeros((self.info.image_size, self.info.image_size, 3), np.uint8) for c in self.info.cameras}
        one = self.prepare(black, np.zeros(self.info.state_dim), "warm up")
        for size in batch_sizes:
            self.infer([one] * size)

    def infer(self, prepared: Sequence[PolicyInput], temperature: float = 0.0, seed: int | None = None) -> np.ndarray:
        from pushcut.train.inference import PolicyInput

        batch = PolicyInput(
            images=np.concatenate([p.images for p in prepared]),
            proprio=np.concatenate([p.proprio for p in prepared]),
            instructions=[text for p in prepared for text in p.instructions],
        )
        generator = None
        if seed is not None:
            generator = self._torch.Generator(device=self.policy.policy.device).manual_seed(seed)
        return self.policy.predict(batch, temperature=temperature, generator=generator).actions
