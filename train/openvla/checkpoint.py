"""Published OpenVLA-OFT directories as pushcut checkpoints: inspect, load, save (see layout.py for the files).

``inspect_checkpoint(dir)`` resolves everything but the weights and fails first, with one line naming the file:
another model type, no tokenizer, no statistics, an unknown unnorm key (the error lists the available ones), an action
dimension without platform constants, towers configured for another image size than their preprocessor's; loading
then names towers whose weights have another width or image size than config.json says.
``load_openvla_checkpoint`` builds the architecture of config.json on the meta device, reads the safetensors strictly
(weights.py) and returns a :class:`LoadedCheckpoint` that ``ChunkPolicy``, ``eval sim``, ``train grpo``,
``train sft`` and ``serve`` use unchanged: the OFT action tokenizer, proprio normaliser and image crop ride along.
``save_openvla_checkpoint`` writes the same published format (LoRA merged, or a peft adapter naming its base),
plus ``pushcut_openvla.json`` and, for resuming, ``training_state.pt``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from pushcut.train.checkpoint_files import (
    FORMAT_VERSION,
    TRAINING_STATE_FILE,
    LoadedCheckpoint,
    legacy_action_names,
    write_dir_atomically,
)
from pushcut.train.openvla.actions import OFTActionTokenizer, read_stats
from pushcut.train.openvla.layout import (
    ADAPTER_CONFIG_FILE,
    CONFIG_FILE,
    INDEX_FILE,
    MODEL_NAME,
    PLATFORMS,
    PREPROCESSOR_FILE,
    PROPRIO_FILE_RE,
    SIDECAR_FILE,
    STATS_FILE,
    CheckpointFormatError,
    OFTPolicyConfig,
    PrismaticConfig,
    Sidecar,
    adapter_base,
    config_model_type,
    select_unnorm_key,
    tasks_from_unnorm_key,
)
from pushcut.train.openvla.model import OpenVLAOFT
from pushcut.train.openvla.preprocess import TowerNormalization, crop_and_resize
from pushcut.train.openvla.prompt import PromptTokenizer, check_tokenizer_files
from pushcut.train.openvla.weights import (
    has_proprio_weights,
    read_state,
    torch_dtype,
    weight_files,
    write_proprio_file,
    write_state,
)

_COPIED_SUFFIXES = (".json", ".py", ".model", ".txt", ".md")
_NOT_COPIED = {CONFIG_FILE, STATS_FILE, SIDECAR_FILE, INDEX_FILE, ADAPTER_CONFIG_FILE}


@dataclass(frozen=True)
class OpenVLACheckpoint:
    """Everything a directory says except the weights (the base directory's, for an adapter)."""

    directory: Path  # the checkpoint as given
    weights_dir: Path  # where config.json, the weights and the tokenizer live (the base of an adapter)
    adapter_dir: Path | None
    prismatic: PrismaticConfig
    policy: OFTPolicyConfig
    sidecar: Sidecar
    norm_stats: dict[str, dict[str, object]]
    action_tokenizer: OFTActionTokenizer
    proprio_normalizer: OFTActionTokenizer
    normalization: TowerNormalization

    def metadata(self) -> dict[str, object]:
        """The dict :func:`pushcut.train.checkpoint.read_metadata` returns for pushcut checkpoints."""
        side = self.sidecar
        tasks = side.tasks if side.tasks is not None else tasks_from_unnorm_key(self.policy.unnorm_key)
        return {
            "format": MODEL_NAME,
            "format_version": FORMAT_VERSION,
            "preset": MODEL_NAME,
            "policy_config": self.policy.to_dict(),
            "action_tokenizer": self.action_tokenizer.to_dict(),
            "proprio_stats": self.proprio_normalizer.stats.to_dict(),
            "action_hz": float(side.action_hz),
            "chunk": self.policy.chunk,
            "cameras": list(self.policy.cameras),
            "image_size": self.policy.image_size,
            "tasks": list(tasks),
            "step": int(side.step),
            "action_names": legacy_action_names(self.policy.action_dim),  # 14-D: the Piper pair's joint names
            "extra": dict(side.extra),
            "_policy_config": self.policy,
            "_tokenizer": self.action_tokenizer,
            "_proprio_stats": self.proprio_normalizer.stats,
        }


def inspect_checkpoint(directory: str | os.PathLike, unnorm_key: str | None = None) -> OpenVLACheckpoint:
    """Resolve a published (or adapter) directory without loading weights; see the module docstring."""
    d = Path(directory)
    base = adapter_base(d)
    weights_dir = base if base is not None else d
    if base is not None and config_model_type(base) is None:
        raise FileNotFoundError(f"{d / ADAPTER_CONFIG_FILE}: its base {base} has no {CONFIG_FILE}")
    prismatic = PrismaticConfig.read(weights_dir)
    check_tokenizer_files(weights_dir)
    sidecar = Sidecar.read(d) if (d / SIDECAR_FILE).is_file() else Sidecar.read(weights_dir)
    stats, source = read_stats(weights_dir, prismatic.raw.get("norm_stats"))
    key = select_unnorm_key(stats, unnorm_key or sidecar.unnorm_key, source)
    entry = stats[key]
    action = entry["action"]
    low = action.get("min", action.get("q01"))
    action_dim = len(low) if isinstance(low, list) else 0
    chunk, norm_type = PLATFORMS.get(action_dim, (None, None))
    chunk, norm_type = sidecar.chunk or chunk, sidecar.norm_type or norm_type
    if chunk is None or norm_type is None:
        raise CheckpointFormatError(
            f"{source}: {action_dim}-D actions have no known platform constants (14-D RoboTwin, 7-D LIBERO); set "
            f"chunk and norm_type in {d / SIDECAR_FILE}"
        )
    n_bins = prismatic.n_action_bins
    where = f"{source} [{key!r}]"
    action_tok = OFTActionTokenizer.from_entry(action, norm_type, n_bins, f"{where}['action']")
    use_proprio = prismatic.use_proprio if prismatic.use_proprio is not None else has_proprio_weights(weights_dir)
    if use_proprio:
        if not isinstance(entry.get("proprio"), dict):
            raise CheckpointFormatError(f"{where}: no 'proprio' statistics, but the checkpoint uses a proprio token")
        proprio = OFTActionTokenizer.from_entry(entry["proprio"], norm_type, n_bins, f"{where}['proprio']")
        declared = prismatic.raw.get("proprio_dim")
        if declared is not None and int(declared) != proprio.dim:
            raise CheckpointFormatError(
                f"{weights_dir / CONFIG_FILE}: proprio_dim {declared} != the {proprio.dim}-D proprio statistics"
            )
    else:  # the state is still accepted (same dimension as the actions) and ignored by the model
        proprio = action_tok
    if len(sidecar.cameras) > 1 and not prismatic.fused:
        raise CheckpointFormatError(f"{d / SIDECAR_FILE}: several cameras need a fused (DINOv2 + SigLIP) backbone")
    policy = OFTPolicyConfig(
        chunk=int(chunk),
        action_dim=action_dim,
        proprio_dim=proprio.dim,
        use_proprio=bool(use_proprio),
        n_bins=n_bins,
        cameras=tuple(sidecar.cameras),
        image_size=prismatic.image_size,
        norm_type=norm_type,
        unnorm_key=key,
    )
    return OpenVLACheckpoint(
        directory=d,
        weights_dir=weights_dir,
        adapter_dir=d if base is not None else None,
        prismatic=prismatic,
        policy=policy,
        sidecar=sidecar,
        norm_stats=stats,
        action_tokenizer=action_tok,
        proprio_normalizer=proprio,
        normalization=TowerNormalization.for_checkpoint(weights_dir, prismatic),
    )


def read_openvla_metadata(directory: str | os.PathLike) -> dict[str, object]:
    return inspect_checkpoint(directory).metadata()


def build_model(info: OpenVLACheckpoint, tokenizer: PromptTokenizer | None, meta: bool = False) -> OpenVLAOFT:
    """The architecture of the checkpoint, randomly initialised (or on the meta device, to be loaded into)."""
    with torch.device("meta") if meta else torch.device("cpu"):
        model = OpenVLAOFT(info.prismatic, info.policy, info.normalization, tokenizer)
    model.norm_stats = info.norm_stats
    model.source_dir = info.weights_dir
    return model


def _check_towers(info: OpenVLACheckpoint, expected: dict[str, tuple[torch.Size, torch.dtype]]) -> None:
    """The towers' position embeddings in the files, ``(1, tokens, width)``, must fit config.json: the width of its
    timm towers (a one-line error naming both widths), then the token count of its image size."""
    from safetensors import safe_open

    files = weight_files(info.weights_dir)
    config = info.weights_dir / CONFIG_FILE
    for k, tower in enumerate(("featurizer", "fused_featurizer")):
        name = f"vision_backbone.{tower}.pos_embed"
        if name not in files or name not in expected:
            continue
        with safe_open(str(files[name]), "pt") as f:
            shape = tuple(f.get_slice(name).get_shape())
        want = tuple(expected[name][0])
        if shape == want:
            continue
        if len(shape) != len(want) or shape[-1] != want[-1]:
            found = f"width {shape[-1]}" if len(shape) == len(want) else f"shape {shape}"
            tower_id = repr(info.prismatic.timm_model_ids[k])
            if info.prismatic.timm_kwargs and info.prismatic.timm_kwargs[k]:
                tower_id += f" with pushcut_timm_kwargs[{k}]"
            raise CheckpointFormatError(
                f"{config}: timm_model_ids[{k}] {tower_id} is a tower of width {want[-1]}, "
                f"but {files[name].name} has {name} of {found}: the weights are of another vision tower than "
                "config.json says"
            )
        raise CheckpointFormatError(
            f"{config}: image_sizes {list(info.prismatic.image_sizes)} need {name} of shape {want} ({want[1]} tokens), "
            f"but {files[name].name} has {shape}: the towers were built for another image size"
        )


def load_openvla_checkpoint(
    directory: str | os.PathLike, *, device: str | None = None, dtype: str | None = None, unnorm_key: str | None = None
) -> LoadedCheckpoint:
    """The checkpoint ready for ChunkPolicy / training. ``dtype``: float32 on CPU, config.json's on CUDA, by default."""
    from pushcut.train.openvla.lora import load_adapter

    info = inspect_checkpoint(directory, unnorm_key)
    dev = torch.device(device or "cpu")
    file_dtype = torch_dtype(info.prismatic.dtype)
    target = torch_dtype(dtype) if dtype is not None else (file_dtype if dev.type == "cuda" else torch.float32)
    pad_id = int(info.prismatic.raw.get("pad_token_id", 32000))
    tokenizer = PromptTokenizer(info.weights_dir, pad_id)
    model = build_model(info, tokenizer, meta=True)
    expected = {k: (v.shape, target) for k, v in model.state_dict().items()}
    _check_towers(info, expected)
    state = read_state(info.weights_dir, expected, file_dtype)
    model.load_state_dict(state, strict=True, assign=True)
    del state
    model.reset_rotary()  # RoPE's buffers are not in the checkpoint: computed again
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"tensors left unloaded on the meta device: {left[:5]}")
    model.to(dev)
    model.freeze_unused()  # loading replaced the parameters objects
    if info.adapter_dir is not None:
        load_adapter(model, info.adapter_dir)
    meta = info.metadata()
    return LoadedCheckpoint(
        model.eval(),
        info.action_tokenizer,
        info.proprio_normalizer.stats,
        meta,
        image_preprocessor=crop_and_resize,
        proprio_normalizer=info.proprio_normalizer,
    )


def _copy_small_files(source: Path, target: Path) -> None:
    """Tokenizer, processor, remote-code and other small files of the source directory, byte for byte."""
    for path in sorted(source.iterdir()):
        if (
            path.is_file()
            and path.suffix in _COPIED_SUFFIXES
            and path.name not in _NOT_COPIED
            and not PROPRIO_FILE_RE.search(path.name)
        ):
            shutil.copy2(path, target / path.name)


def save_openvla_checkpoint(
    directory: str | os.PathLike,
    policy: OpenVLAOFT,
    *,
    action_hz: float,
    tasks: Sequence[str],
    step: int,
    training_state: dict[str, object] | None = None,
    extra: dict[str, object] | None = None,
    max_shard_bytes: int | None = None,
) -> Path:
    """Write ``policy`` in the published format, atomically; returns the directory."""
    from pushcut.train.openvla.lora import merged_state_dict, save_adapter
    from pushcut.train.openvla.weights import MAX_SHARD_BYTES

    if policy.source_dir is None:
        raise ValueError("the policy has no source directory (tokenizer and processor files to write beside it)")
    source = policy.source_dir
    cfg = policy.config
    sidecar = Sidecar(
        chunk=cfg.chunk, cameras=cfg.cameras, action_hz=float(action_hz), unnorm_key=cfg.unnorm_key,
        norm_type=cfg.norm_type, tasks=tuple(tasks), step=int(step), extra=dict(extra or {}),
    )  # fmt: skip
    dtype = torch_dtype(policy.prismatic.dtype)

    def fill(tmp: Path) -> None:
        if policy.lora is not None and policy.lora.save == "adapter":
            save_adapter(policy, tmp, source)
        else:
            state = merged_state_dict(policy) if policy.lora is not None else policy.state_dict()
            write_state(tmp, state, dtype, max_shard_bytes or MAX_SHARD_BYTES)
            _copy_small_files(source, tmp)
            raw = dict(policy.prismatic.raw)
            raw.update(use_proprio=cfg.use_proprio, proprio_dim=cfg.proprio_dim, torch_dtype=policy.prismatic.dtype)
            raw["norm_stats"] = policy.norm_stats
            (tmp / CONFIG_FILE).write_text(json.dumps(raw, indent=2))
            (tmp / STATS_FILE).write_text(json.dumps(policy.norm_stats, indent=2))
            if not (tmp / PREPROCESSOR_FILE).is_file():
                processor = policy.normalization.to_preprocessor_config(policy.prismatic)
                (tmp / PREPROCESSOR_FILE).write_text(json.dumps(processor, indent=2))
            if cfg.use_proprio:  # openvla-oft (and SimpleVLA-RL before its first save) read this separate file
                write_proprio_file(tmp, state, step, dtype)
        sidecar.write(tmp)
        if training_state is not None:
            torch.save(training_state, tmp / TRAINING_STATE_FILE)

    return write_dir_atomically(Path(directory), fill)
