"""A published OpenVLA-OFT directory: what its config.json says and what pushcut needs beyond it (no torch here).

Files of a directory as SimpleVLA-RL / openvla-oft publish it (read as they are, nothing converted or downloaded)::

    config.json                     Prismatic/OpenVLA config: model_type "openvla", vision_backbone_id, timm ids,
                                    image sizes, act-layer overrides, llm_backbone_id, text_config, n_action_bins,
                                    pad_to_multiple_of, norm_stats, (SimpleVLA-RL) use_proprio / proprio_dim
    model.safetensors, or model-0000k-of-0000n.safetensors + model.safetensors.index.json
    tokenizer.json / tokenizer.model, tokenizer_config.json, special_tokens_map.json, added_tokens.json
    dataset_statistics.json         action / proprio statistics per unnorm key (else config.json's norm_stats)
    preprocessor_config.json        optional: the towers' input sizes and mean / std (checked against config.json)
    proprio_projector--*checkpoint.pt   optional: openvla-oft's separately saved proprio projector
    pushcut_openvla.json            optional, ours (other tools ignore it): chunk, cameras, action_hz, unnorm_key,
                                    norm_type, tasks, step, extra

What the published format leaves to code constants (openvla-oft's ``constants.py`` picks them per robot platform) is
resolved from the action dimension of the statistics: 14-D is RoboTwin / ALOHA (chunk 25, min/max "bounds"), 7-D is
LIBERO (chunk 8, 1st/99th percentile "bounds_q99"); ``pushcut_openvla.json`` overrides them.

A LoRA adapter directory (``adapter_config.json`` + ``adapter_model.safetensors``, peft's format) whose
``base_model_name_or_path`` is such a directory is an OpenVLA-OFT checkpoint too (see lora.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pushcut.common.conventions import DEFAULT_ACTION_HZ

CONFIG_FILE = "config.json"
STATS_FILE = "dataset_statistics.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
SIDECAR_FILE = "pushcut_openvla.json"
INDEX_FILE = "model.safetensors.index.json"
SINGLE_WEIGHTS_FILE = "model.safetensors"
ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
PROPRIO_FILE_RE = re.compile(r"proprio_projector.*checkpoint.*\.pt$")
TOKENIZER_WEIGHT_FILES = ("tokenizer.json", "tokenizer.model")
MODEL_TYPE = "openvla"
MODEL_NAME = "openvla-oft"

PROMPT = "In: What action should the robot take to {instruction}?\nOut:"
EMPTY_TOKEN_ID = 29871  # Llama-2's "▁": appended when the prompt does not already end with it (as in training)
STOP_TOKEN_ID = 2  # "</s>": closes the action slots (it was there at training time, attention is bidirectional)
NORM_TYPES = ("bounds", "bounds_q99")
# openvla-oft constants.py per platform, keyed by action dimension: (chunk, normalisation)
PLATFORMS: dict[int, tuple[int, str]] = {14: (25, "bounds"), 7: (8, "bounds_q99")}

JsonDict = dict[str, object]


class CheckpointFormatError(ValueError):
    """A directory that is not a loadable OpenVLA-OFT checkpoint; the message names the file and the mismatch."""


def read_json(path: Path) -> JsonDict:
    """A JSON object from ``path``; CheckpointFormatError naming the file otherwise."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing") from None
    except json.JSONDecodeError as e:
        raise CheckpointFormatError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise CheckpointFormatError(f"{path}: expected a JSON object")
    return data


def config_model_type(directory: Path) -> str | None:
    """``model_type`` of ``directory/config.json`` (None when there is no readable config.json)."""
    path = directory / CONFIG_FILE
    if not path.is_file():
        return None
    try:
        value = read_json(path).get("model_type")
    except (ValueError, OSError):
        return None
    return str(value) if value is not None else None


def adapter_base(directory: Path) -> Path | None:
    """The base directory a peft adapter in ``directory`` names (None when ``directory`` holds no adapter)."""
    path = directory / ADAPTER_CONFIG_FILE
    if not path.is_file():
        return None
    base = read_json(path).get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise CheckpointFormatError(f"{path}: no base_model_name_or_path (the OpenVLA-OFT directory it adapts)")
    base_path = Path(base)
    return base_path if base_path.is_absolute() else (directory / base_path).resolve()


def is_openvla_dir(directory: str | Path) -> bool:
    """True for a published OpenVLA-OFT directory (config.json with model_type "openvla") or a LoRA adapter of one."""
    d = Path(directory)
    if not d.is_dir():
        return False
    if config_model_type(d) == MODEL_TYPE:
        return True
    try:
        base = adapter_base(d)
    except (ValueError, OSError):
        return False
    return base is not None and config_model_type(base) == MODEL_TYPE


def _str_list(raw: JsonDict, key: str, path: Path, allow_none: bool = False) -> tuple:
    value = raw.get(key)
    if not isinstance(value, list) or not value:
        raise CheckpointFormatError(f"{path}: {key} must be a non-empty list, got {value!r}")
    for v in value:
        if not (isinstance(v, str) or (allow_none and v is None)):
            raise CheckpointFormatError(f"{path}: {key} must hold strings, got {v!r}")
    return tuple(value)


@dataclass(frozen=True)
class PrismaticConfig:
    """The architecture part of config.json (Prismatic / OpenVLA schema), validated."""

    vision_backbone_id: str
    fused: bool  # DINOv2 + SigLIP, features concatenated per patch
    image_sizes: tuple[int, ...]
    timm_model_ids: tuple[str, ...]
    timm_act_layers: tuple[str | None, ...]
    timm_kwargs: tuple[JsonDict, ...]  # pushcut extension "pushcut_timm_kwargs" (small test towers); () if published
    resize_strategy: str
    llm_backbone_id: str
    text_config: JsonDict
    n_action_bins: int
    pad_to_multiple_of: int
    dtype: str  # "bfloat16" in published checkpoints
    use_proprio: bool | None  # SimpleVLA-RL writes it; None: decided by the presence of proprio weights
    raw: JsonDict = field(repr=False)  # the whole config.json, re-written on save with updated statistics

    @classmethod
    def read(cls, directory: Path) -> PrismaticConfig:
        path = directory / CONFIG_FILE
        raw = read_json(path)
        model_type = raw.get("model_type")
        if model_type != MODEL_TYPE:
            raise CheckpointFormatError(
                f"{path}: model_type {model_type!r} is not an OpenVLA-OFT checkpoint (expected {MODEL_TYPE!r})"
            )
        ids = _str_list(raw, "timm_model_ids", path)
        acts = _str_list(raw, "timm_override_act_layers", path, allow_none=True)
        sizes = raw.get("image_sizes")
        if not isinstance(sizes, list) or not all(isinstance(s, int) and s > 0 for s in sizes):
            raise CheckpointFormatError(f"{path}: image_sizes must be a list of positive integers, got {sizes!r}")
        fused = bool(raw.get("use_fused_vision_backbone", len(ids) == 2))
        if len(ids) != (2 if fused else 1) or len(acts) != len(ids) or len(sizes) != len(ids):
            raise CheckpointFormatError(
                f"{path}: use_fused_vision_backbone={fused} needs {2 if fused else 1} tower(s); got timm_model_ids "
                f"{list(ids)}, timm_override_act_layers {list(acts)}, image_sizes {sizes}"
            )
        if len(set(sizes)) != 1:
            raise CheckpointFormatError(f"{path}: the towers' image_sizes {sizes} differ; pushcut needs one size")
        kwargs = raw.get("pushcut_timm_kwargs", [{} for _ in ids])
        if not isinstance(kwargs, list) or len(kwargs) != len(ids) or not all(isinstance(k, dict) for k in kwargs):
            raise CheckpointFormatError(f"{path}: pushcut_timm_kwargs must be one object per tower, got {kwargs!r}")
        text = raw.get("text_config")
        if not isinstance(text, dict) or "vocab_size" not in text:
            raise CheckpointFormatError(f"{path}: text_config with vocab_size is required, got {text!r}")
        llm_id = str(raw.get("llm_backbone_id", ""))
        if text.get("model_type", "llama") != "llama" or not llm_id.startswith(("llama2", "vicuna")):
            raise CheckpointFormatError(
                f"{path}: llm_backbone_id {llm_id!r} / text_config.model_type {text.get('model_type')!r}: only "
                "Llama-2 language models are supported"
            )
        use_proprio = raw.get("use_proprio")
        return cls(
            vision_backbone_id=str(raw.get("vision_backbone_id", "")),
            fused=fused,
            image_sizes=tuple(sizes),
            timm_model_ids=ids,
            timm_act_layers=acts,
            timm_kwargs=tuple(kwargs),
            resize_strategy=str(raw.get("image_resize_strategy", "resize-naive")),
            llm_backbone_id=llm_id,
            text_config=dict(text),
            n_action_bins=int(raw.get("n_action_bins", 256)),
            pad_to_multiple_of=int(raw.get("pad_to_multiple_of", 64)),
            dtype=str(raw.get("torch_dtype") or raw.get("dtype") or "bfloat16"),
            use_proprio=None if use_proprio is None else bool(use_proprio),
            raw=raw,
        )

    @property
    def image_size(self) -> int:
        return self.image_sizes[0]

    @property
    def vocab_size(self) -> int:
        """The padded vocabulary of the LM head (32064 for Llama-2)."""
        return int(self.text_config["vocab_size"])

    @property
    def action_token_end(self) -> int:
        """One past the last action id: the unpadded vocabulary (32000); the action ids are the n_bins before it."""
        return self.vocab_size - self.pad_to_multiple_of


@dataclass(frozen=True)
class Sidecar:
    """``pushcut_openvla.json``: what a published directory does not say (all optional)."""

    chunk: int | None = None
    cameras: tuple[str, ...] = ("head_camera",)  # SimpleVLA-RL's RoboTwin models see the head camera only
    action_hz: float = DEFAULT_ACTION_HZ
    unnorm_key: str | None = None
    norm_type: str | None = None
    tasks: tuple[str, ...] | None = None
    step: int = 0
    extra: JsonDict = field(default_factory=dict)

    @classmethod
    def read(cls, directory: Path) -> Sidecar:
        path = directory / SIDECAR_FILE
        if not path.is_file():
            return cls()
        raw = read_json(path)
        unknown = set(raw) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise CheckpointFormatError(f"{path}: unknown field(s) {sorted(unknown)}")
        try:
            for key in ("cameras", "tasks"):
                if raw.get(key) is not None:
                    raw[key] = tuple(raw[key])
            sidecar = cls(**raw)
        except TypeError as e:
            raise CheckpointFormatError(f"{path}: {e}") from None
        if sidecar.norm_type is not None and sidecar.norm_type not in NORM_TYPES:
            raise CheckpointFormatError(f"{path}: norm_type {sidecar.norm_type!r} not in {NORM_TYPES}")
        if not sidecar.cameras or (sidecar.chunk is not None and sidecar.chunk < 1) or sidecar.action_hz <= 0:
            raise CheckpointFormatError(f"{path}: cameras must be non-empty, chunk >= 1 and action_hz > 0")
        return sidecar

    def write(self, directory: Path) -> None:
        d = asdict(self)
        d["cameras"] = list(self.cameras)
        d["tasks"] = None if self.tasks is None else list(self.tasks)
        (directory / SIDECAR_FILE).write_text(json.dumps(d, indent=2))


@dataclass(frozen=True)
class OFTPolicyConfig:
    """What the rest of pushcut reads from a policy's config (the fields :class:`PolicyConfig` shares)."""

    chunk: int
    action_dim: int
    proprio_dim: int  # the state the policy takes (= action_dim when the checkpoint has no proprio projector)
    use_proprio: bool
    n_bins: int
    cameras: tuple[str, ...]
    image_size: int
    norm_type: str
    unnorm_key: str
    name: str = MODEL_NAME

    @property
    def n_action_tokens(self) -> int:
        return self.chunk * self.action_dim

    def to_dict(self) -> JsonDict:
        d = asdict(self)
        d["cameras"] = list(self.cameras)
        return d


def select_unnorm_key(stats: Mapping[str, object], wanted: str | None, source: Path) -> str:
    """The statistics entry to use: ``wanted``, else the only one; the error lists the available keys."""
    keys = sorted(stats)
    if wanted is not None:
        if wanted not in stats:
            raise CheckpointFormatError(f"{source}: unnorm key {wanted!r} not found; available unnorm keys: {keys}")
        return wanted
    if len(keys) != 1:
        raise CheckpointFormatError(
            f"{source} holds statistics for {len(keys)} datasets {keys}: choose one with "
            f'{{"unnorm_key": ...}} in {SIDECAR_FILE} (or `pushcut openvla info DIR --unnorm-key KEY --write`)'
        )
    return keys[0]


def tasks_from_unnorm_key(key: str) -> tuple[str, ...]:
    """SimpleVLA-RL's RoboTwin statistics are named ``{task}_1k`` (``robotwin2_`` prefixed in its scripts)."""
    name = key.removeprefix("robotwin2_").removeprefix("robotwin_")
    return (name.removesuffix("_1k").removesuffix("_no_noops"),)
