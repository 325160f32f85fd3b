"""The token VLA policy, OpenVLA-OFT style, built from transformers configs.

Sequence fed to the Llama backbone (one forward pass per action chunk)::

    [vision tokens, per camera] [proprio token] [prompt tokens, padded] [chunk × action_dim action slots]

* Vision: a transformers vision encoder (``SiglipVisionModel`` / ``ViTModel``) over each camera image (shared
  weights), its last hidden states projected into the LM width by a 2-layer GELU MLP (OpenVLA's projector).
* Proprio: the 14-D normalised state → one token by a linear projection.
* Action slots: a learned input embedding per slot position (no ground truth is ever fed in), so all
  ``chunk × action_dim`` slots are predicted in ONE forward pass (parallel decoding).
* Attention is fully **bidirectional** (as in OpenVLA-OFT's patched LLaMA, recipe §1.2): every token attends to every
  non-padding token. We pass a ready 4-D additive mask (B, 1, S, S) that masks only padded keys; transformers uses a
  4-D mask as-is and SDPA then runs with ``is_causal=False``. Prompt padding sits in the middle of the sequence;
  position ids skip it (cumulative count of valid tokens), which under bidirectional attention is exactly equivalent
  to OpenVLA-OFT's right-shifted layout.
* Head: the LM head restricted to the ``n_bins`` action ids (rows ``action_token_begin … +n_bins`` of ``lm_head``),
  for both presets — the tiny vocabulary simply contains 256 action tokens after the bytes. Only those rows are
  multiplied, so the 7B preset never materialises 32k-wide logits. Logits: (B, chunk, action_dim, n_bins), float32.

Bin indices 0…n_bins-1 are what :mod:`pushcut.train.action_tokenizer` maps to / from continuous actions.

Batch (a dict of tensors, what a DataLoader collates)::

    images          uint8 (B, H, W, 3) for one camera, or (B, n_cameras, H, W, 3) in ``config.cameras`` order
    input_ids       int64 (B, L)   from ``policy.tokenizer.encode(instructions)``
    attention_mask  int64/bool (B, L), 1 = real token
    proprio         float (B, proprio_dim), normalised to [-1, 1]   (only if ``config.use_proprio``)

Sampling: logits / temperature → softmax → an independent categorical per slot (recipe §1.2); the returned
log-probs are of that temperature-scaled distribution, which is what :meth:`VLAPolicy.log_probs` recomputes.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .presets import PolicyConfig

EXTRAS_FILE = "policy_extras.safetensors"
POLICY_CONFIG_FILE = "policy_config.json"


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' per-shard progress bars while saving / loading (they clutter training logs)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


# ----------------------------------------------------------------------------------------------------------- text
class ByteTokenizer:
    """UTF-8 bytes → ids. 0 = pad, 1 = BOS, 2 = EOS, byte b → 3 + b. Built locally, nothing to download."""

    PAD, BOS, EOS, OFFSET = 0, 1, 2, 3
    vocab_size = 3 + 256
    pad_token_id = PAD

    def __init__(self, template: str = "{instruction}", max_length: int = 128) -> None:
        self.template = template
        self.max_length = max_length

    def ids(self, text: str) -> list[int]:
        return [self.BOS] + [self.OFFSET + b for b in text.encode("utf-8")]

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(i - self.OFFSET for i in ids if i >= self.OFFSET).decode("utf-8", errors="replace")

    def encode(self, instructions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts → (input_ids, attention_mask), both int64 (B, L), right-padded to the longest, truncated."""
        if isinstance(instructions, str):
            raise TypeError("encode takes a sequence of instructions, not one string")
        seqs = [self.ids(self.template.format(instruction=s.lower()))[: self.max_length] for s in instructions]
        length = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), length), self.PAD, dtype=torch.long)
        mask = torch.zeros((len(seqs), length), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, : len(s)] = 1
        return ids, mask


class PretrainedTokenizer:
    """A transformers tokenizer from a local directory, with the same ``encode`` interface as ByteTokenizer."""

    def __init__(self, directory: str | os.PathLike, template: str, max_length: int) -> None:
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.unk_token or self.tok.eos_token
        self.tok.padding_side = "right"
        self.template = template
        self.max_length = max_length
        self.pad_token_id = self.tok.pad_token_id

    def encode(self, instructions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(instructions, str):
            raise TypeError("encode takes a sequence of instructions, not one string")
        prompts = [self.template.format(instruction=s.lower()) for s in instructions]
        out = self.tok(prompts, padding="longest", truncation=True, max_length=self.max_length, return_tensors="pt")
        return out["input_ids"].long(), out["attention_mask"].long()

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        self.tok.save_pretrained(str(directory))


# --------------------------------------------------------------------------------------------------------- vision
def build_vision(config: PolicyConfig) -> nn.Module:
    """A randomly initialised vision encoder of ``config.vision_class`` at ``config.image_size``."""
    if config.vision_class == "keypoints":
        from pushcut.train.vision import KeypointEncoder, KeypointEncoderConfig

        return KeypointEncoder(KeypointEncoderConfig.from_dict({**config.vision, "image_size": config.image_size}))
    cfg_cls, vis_cls, vis_kwargs = _transformers_vision(config.vision_class)
    vcfg = cfg_cls(**{**config.vision, "image_size": config.image_size})
    vcfg._attn_implementation = "sdpa"
    return vis_cls(vcfg, **vis_kwargs)


def _load_vision(kind: str, directory: Path, dtype: torch.dtype) -> nn.Module:
    if kind == "keypoints":
        from pushcut.train.vision import KeypointEncoder

        return KeypointEncoder.from_pretrained(directory, dtype=dtype)
    _, vis_cls, vis_kwargs = _transformers_vision(kind)
    return vis_cls.from_pretrained(
        str(directory), local_files_only=True, dtype=dtype, attn_implementation="sdpa", **vis_kwargs
    )


def _transformers_vision(kind: str):
    import transformers

    if kind == "siglip":
        return transformers.SiglipVisionConfig, transformers.SiglipVisionModel, {}
    if kind == "vit":
        return transformers.ViTConfig, transformers.ViTModel, {"add_pooling_layer": False}
    raise ValueError(f"unknown vision_class {kind!r}")


def _torch_dtype(name: str) -> torch.dtype:
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}") from None


# ---------------------------------------------------------------------------------------------------------- model
@dataclass
class PolicyOutput:
    logits: torch.Tensor  # (B, chunk, action_dim, n_bins) float32
    action_hidden: torch.Tensor  # (B, chunk * action_dim, D) the action slots' final hidden states (after the norm)
    vision_tokens: torch.Tensor  # (B, n_vision_tokens, D) the projected vision tokens, as fed to the LLM
    layer_action_hidden: list[torch.Tensor] | None = None  # per layer (0 = input embeddings), (B, slots, D)


class VLAPolicy(nn.Module):
    """Vision encoder + projector + Llama with bidirectional attention + 256-bin action head (see module doc)."""

    def __init__(self, config: PolicyConfig, *, _load: bool = True) -> None:
        super().__init__()
        from transformers import LlamaConfig, LlamaForCausalLM

        self.config = config
        wdir = Path(config.weights_dir) if (config.weights_dir and _load) else None
        dtype = _torch_dtype(config.dtype)

        if wdir is not None:
            for sub in ("vision", "llm"):
                if not (wdir / sub / "config.json").is_file():
                    raise FileNotFoundError(f"missing {wdir / sub / 'config.json'} (policy weights_dir layout)")
            with _quiet_transformers():
                self.vision = _load_vision(config.vision_class, wdir / "vision", dtype)
                self.llm = LlamaForCausalLM.from_pretrained(
                    str(wdir / "llm"), local_files_only=True, dtype=dtype, attn_implementation="sdpa"
                )
            vis_size = self.vision.config.image_size
            if vis_size != config.image_size:
                raise ValueError(
                    f"{wdir / 'vision' / 'config.json'}: image_size {vis_size} != policy image_size {config.image_size}"
                )
        else:
            self.vision = build_vision(config)
            lcfg = LlamaConfig(**config.llm)
            lcfg._attn_implementation = "sdpa"
            self.llm = LlamaForCausalLM(lcfg)

        # The OFT fork sets is_causal=False in every layer; we also pass an explicit 4-D mask (which alone suffices).
        for layer in self.llm.model.layers:
            layer.self_attn.is_causal = False

        vdim = self.vision.config.hidden_size
        d = self.llm.config.hidden_size
        vocab = self.llm.config.vocab_size
        self.action_token_begin = (
            config.action_token_begin if config.action_token_begin is not None else vocab - config.n_bins
        )
        if not 0 <= self.action_token_begin <= vocab - config.n_bins:
            raise ValueError(f"action ids {self.action_token_begin}…+{config.n_bins} outside the vocabulary ({vocab})")

        self.projector = nn.Sequential(nn.Linear(vdim, d), nn.GELU(), nn.Linear(d, d))
        self.proprio_proj = nn.Linear(config.proprio_dim, d) if config.use_proprio else None
        self.action_queries = nn.Parameter(torch.randn(config.n_action_tokens, d) * 0.02)
        for mod in (self.projector, self.proprio_proj):
            if mod is not None:
                for m in mod.modules() if isinstance(mod, nn.Sequential) else [mod]:
                    if isinstance(m, nn.Linear):
                        nn.init.normal_(m.weight, std=0.02)
                        nn.init.zeros_(m.bias)
        self.projector.to(dtype)
        if self.proprio_proj is not None:
            self.proprio_proj.to(dtype)
        self.action_queries.data = self.action_queries.data.to(dtype)

        if wdir is not None and (wdir / EXTRAS_FILE).is_file():
            from safetensors.torch import load_file

            state = load_file(str(wdir / EXTRAS_FILE))
            missing, unexpected = self._extras_module().load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ValueError(f"{wdir / EXTRAS_FILE}: missing {missing}, unexpected {unexpected}")

        self.register_buffer(
            "image_mean", torch.tensor(config.image_mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "image_std", torch.tensor(config.image_std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False
        )
        if config.tokenizer == "byte":
            self.tokenizer: ByteTokenizer | PretrainedTokenizer = ByteTokenizer(
                config.prompt_template, config.max_instruction_tokens
            )
            if vocab < ByteTokenizer.vocab_size + config.n_bins and config.action_token_begin is None:
                raise ValueError(f"vocab_size {vocab} too small for bytes + {config.n_bins} action tokens")
        else:
            if wdir is None:
                raise ValueError("tokenizer='pretrained' needs weights_dir (with a tokenizer/ folder)")
            if not (wdir / "tokenizer").is_dir():
                raise FileNotFoundError(f"missing {wdir / 'tokenizer'} (policy weights_dir layout)")
            self.tokenizer = PretrainedTokenizer(
                wdir / "tokenizer", config.prompt_template, config.max_instruction_tokens
            )

    # ------------------------------------------------------------------------------------------------ plumbing
    def _extras_module(self) -> nn.Module:
        m = nn.Module()
        m.projector = self.projector
        if self.proprio_proj is not None:
            m.proprio_proj = self.proprio_proj
        m.action_queries = self.action_queries
        return m

    @property
    def device(self) -> torch.device:
        return self.action_queries.device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def make_batch(self, images, instructions: Sequence[str], proprio=None) -> dict[str, torch.Tensor]:
        """Raw inputs → a batch dict on the policy's device (images uint8 numpy/torch, proprio normalised)."""
        ids, mask = self.tokenizer.encode(instructions)
        batch = {
            "images": torch.as_tensor(images).to(self.device),
            "input_ids": ids.to(self.device),
            "attention_mask": mask.to(self.device),
        }
        if proprio is not None:
            batch["proprio"] = torch.as_tensor(proprio, dtype=torch.float32).to(self.device)
        return batch

    def _pixel_values(self, images: torch.Tensor) -> tuple[torch.Tensor, int]:
        cfg = self.config
        if images.dtype != torch.uint8:
            raise ValueError(f"images must be uint8 (B, [n_cameras,] H, W, 3), got dtype {images.dtype}")
        if images.ndim == 4:
            images = images[:, None]
        if images.ndim != 5 or images.shape[-1] != 3:
            raise ValueError(f"images must be (B, [n_cameras,] H, W, 3), got shape {tuple(images.shape)}")
        b, n_cam, h, w, _ = images.shape
        if n_cam != len(cfg.cameras):
            raise ValueError(f"got {n_cam} camera image(s), config expects {len(cfg.cameras)}: {cfg.cameras}")
        if (h, w) != (cfg.image_size, cfg.image_size):
            raise ValueError(
                f"images are {h}x{w}, the model expects {cfg.image_size}x{cfg.image_size} (preprocess them first)"
            )
        x = images.reshape(b * n_cam, h, w, 3).permute(0, 3, 1, 2).float().div_(255.0)
        x = (x - self.image_mean) / self.image_std
        return x.to(self.projector[0].weight.dtype), n_cam

    def vision_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Projected vision tokens (B, n_cameras * P, D) of uint8 ``images`` (B, [n_cameras,] S, S, 3), as the LLM
        receives them (what SFT's and the localiser's vision position readouts read)."""
        pix, n_cam = self._pixel_values(images)
        vis = self.vision(pixel_values=pix).last_hidden_state  # (B*n_cam, P, Dv)
        return self.projector(vis).reshape(pix.shape[0] // n_cam, -1, self.llm.config.hidden_size)

    def _embed(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Input embeddings (B, S, D), the validity mask (B, S) of the whole sequence, the number of vision tokens."""
        cfg = self.config
        vis = self.vision_tokens(batch["images"])
        b = vis.shape[0]
        parts = [vis]
        if self.proprio_proj is not None:
            if "proprio" not in batch:
                raise ValueError("batch has no 'proprio' but the config uses proprio")
            prop = batch["proprio"]
            if prop.shape != (b, cfg.proprio_dim):
                raise ValueError(f"proprio must be ({b}, {cfg.proprio_dim}), got {tuple(prop.shape)}")
            parts.append(self.proprio_proj(prop.to(vis.dtype))[:, None])
        ids = batch["input_ids"]
        if ids.shape[0] != b:
            raise ValueError(f"input_ids batch {ids.shape[0]} != images batch {b}")
        mask = batch.get("attention_mask")
        mask = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
        parts.append(self.llm.get_input_embeddings()(ids))
        parts.append(self.action_queries[None].expand(b, -1, -1))
        x = torch.cat(parts, dim=1)
        n_prefix = x.shape[1] - ids.shape[1] - cfg.n_action_tokens
        valid = torch.cat(
            [
                torch.ones(b, n_prefix, dtype=torch.bool, device=x.device),
                mask,
                torch.ones(b, cfg.n_action_tokens, dtype=torch.bool, device=x.device),
            ],
            dim=1,
        )
        return x, valid, vis.shape[1]

    # ------------------------------------------------------------------------------------------------- forward
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Action logits (B, chunk, action_dim, n_bins), float32, from one bidirectional forward pass."""
        return self.run(batch).logits

    def run(self, batch: dict[str, torch.Tensor], all_layers: bool = False) -> PolicyOutput:
        """The forward pass with what it computed on the way: logits, the action slots' last hidden states, the
        vision tokens fed to the LLM and, with ``all_layers``, the action slots' states after every layer (probes,
        auxiliary losses)."""
        cfg = self.config
        x, valid, n_vision = self._embed(batch)
        b, s, _ = x.shape
        position_ids = (valid.long().cumsum(-1) - 1).clamp_(min=0)
        # 4-D additive mask: 0 where the key is a real token, dtype-min where it is padding; no causal part.
        neg = torch.finfo(x.dtype).min
        attn = torch.zeros(b, 1, 1, s, dtype=x.dtype, device=x.device).masked_fill(~valid[:, None, None, :], neg)
        attn = attn.expand(b, 1, s, s)
        out = self.llm.model(
            inputs_embeds=x,
            attention_mask=attn,
            position_ids=position_ids,
            use_cache=False,
            output_hidden_states=all_layers,
        )
        h = out.last_hidden_state[:, -cfg.n_action_tokens :]
        w = self.llm.lm_head.weight[self.action_token_begin : self.action_token_begin + cfg.n_bins]
        logits = F.linear(h, w).float()
        if getattr(self.llm.lm_head, "bias", None) is not None:
            logits = logits + self.llm.lm_head.bias[self.action_token_begin : self.action_token_begin + cfg.n_bins]
        if cfg.reverse_action_ids:  # OpenVLA: the highest id is bin 0
            logits = logits.flip(-1)
        layers = None
        if all_layers:  # embeddings, then the output of each layer (the last one before the final norm)
            layers = [hs[:, -cfg.n_action_tokens :] for hs in out.hidden_states]
        return PolicyOutput(
            logits=logits.reshape(b, cfg.chunk, cfg.action_dim, cfg.n_bins),
            action_hidden=h,
            vision_tokens=x[:, :n_vision],
            layer_action_hidden=layers,
        )

    # ------------------------------------------------------------------------------------- distributions
    @staticmethod
    def _check_temperature(temperature: float) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 (use greedy() for argmax), got {temperature}")

    @staticmethod
    def log_probs_from_logits(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """log p(tokens) under softmax(logits / temperature); shapes (..., n_bins) and (...)."""
        VLAPolicy._check_temperature(temperature)
        logp = torch.log_softmax(logits.float() / temperature, dim=-1)
        return logp.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1)

    @staticmethod
    def entropy_from_logits(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Per-slot entropy (nats) of softmax(logits / temperature)."""
        VLAPolicy._check_temperature(temperature)
        logp = torch.log_softmax(logits.float() / temperature, dim=-1)
        return -(logp.exp() * logp).sum(-1)

    @torch.no_grad()
    def sample(
        self, batch: dict[str, torch.Tensor], temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Independent per-slot categorical samples at ``temperature``: (tokens int64, log_probs float32), both
        (B, chunk, action_dim). The log-probs are of the temperature-scaled distribution."""
        self._check_temperature(temperature)
        logits = self._finite(self.forward(batch))
        logp = torch.log_softmax(logits / temperature, dim=-1)
        flat = logp.reshape(-1, logp.shape[-1]).exp()
        tokens = torch.multinomial(flat, 1, generator=generator).reshape(logits.shape[:-1])
        return tokens, logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def greedy(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Argmax bin per slot, int64 (B, chunk, action_dim)."""
        return self._finite(self.forward(batch)).argmax(-1)

    @staticmethod
    def _finite(logits: torch.Tensor) -> torch.Tensor:
        """Logits unchanged; FloatingPointError when any is NaN/inf (diverged weights must never become actions)."""
        if not torch.isfinite(logits).all():
            raise FloatingPointError("the policy produced non-finite action logits (NaN/inf weights or inputs)")
        return logits

    def log_probs(self, batch: dict[str, torch.Tensor], tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """Differentiable per-token log-probs (B, chunk, action_dim) of given bin indices at ``temperature``."""
        return self.log_probs_from_logits(self.forward(batch), tokens, temperature)

    def entropy(self, batch: dict[str, torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
        """Per-slot entropy (B, chunk, action_dim) at ``temperature``."""
        return self.entropy_from_logits(self.forward(batch), temperature)

    def loss(self, batch: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of target bins (B, chunk, action_dim) — the SFT objective."""
        logits = self.forward(batch)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1).long())

    # ---------------------------------------------------------------------------------------------- save/load
    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write the local-directory layout that ``weights_dir`` loads::

        vision/       save_pretrained of the vision encoder (config.json + safetensors)
        llm/          save_pretrained of LlamaForCausalLM
        tokenizer/    (tokenizer='pretrained' only)
        policy_extras.safetensors   projector, proprio projection, action-slot embeddings
        policy_config.json          the PolicyConfig (weights_dir set to this directory)
        """
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        with _quiet_transformers():
            self.vision.save_pretrained(str(d / "vision"))
            self.llm.save_pretrained(str(d / "llm"))
        if isinstance(self.tokenizer, PretrainedTokenizer):
            self.tokenizer.save_pretrained(d / "tokenizer")
        state = {k: v.detach().contiguous().cpu() for k, v in self._extras_module().state_dict().items()}
        save_file(state, str(d / EXTRAS_FILE))
        cfg = self.config.to_dict()
        cfg["weights_dir"] = str(d)
        (d / POLICY_CONFIG_FILE).write_text(json.dumps(cfg, indent=2))

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, **overrides: Any) -> VLAPolicy:
        """Load a directory written by :meth:`save_pretrained` (its policy_config.json + weights)."""
        d = Path(directory)
        path = d / POLICY_CONFIG_FILE
        for required in (path, d / EXTRAS_FILE):
            if not required.is_file():
                raise FileNotFoundError(f"policy directory {d} is incomplete: missing {required.name}")
        cfg = PolicyConfig.from_dict({**json.loads(path.read_text()), "weights_dir": str(d)})
        return cls(cfg.replace(**overrides) if overrides else cfg)


def build_policy(config: PolicyConfig) -> VLAPolicy:
    """Random init from the config, or the weights in ``config.weights_dir`` when set."""
    return VLAPolicy(config)
