"""Per-dimension normalisation to [-1, 1] and uniform binning of continuous actions into discrete tokens.

The token VLA predicts each action dimension as one of ``n_bins`` (256) classes. This module maps between
continuous joint targets and those class indices; the model maps a bin index to its vocabulary id itself.

    normalise   x = 2 (a - low) / (high - low) - 1, clipped to [-1, 1]   (bounds: min/max or 1st/99th percentile)
    encode      bin i = floor((x + 1) / 2 * n_bins), clipped to [0, n_bins)
    decode      a = the centre of bin i, un-normalised

Guarantees (tests/test_action_tokenizer.py): for an action inside [low, high], |decode(encode(a)) - a| is at most
half a bin, (high - low) / n_bins / 2 per dimension, up to float64 rounding (~1e-15 of the bounds' magnitude);
decode(encode(decode(t))) == decode(t) exactly for every token; values outside [low, high] land in the edge bins.

A dimension whose range is zero, e.g. an unused gripper, is *constant*: it normalises to 0, encodes to bin
n_bins // 2 and decodes to the middle of its range, whatever the input. Nothing divides by zero. A range narrower
than ``CONSTANT_SPAN_REL`` of its magnitude (float64 could not tell its bins apart) is treated the same way; there
the round-trip error is at most (high - low) / 2 instead of half a bin.

The same class normalises the 14-D proprio state that the model takes as input (``normalize`` / ``unnormalize``).
NumPy only, so the policy server and tools can use it without torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

NormMode = Literal["minmax", "percentile"]
NORM_MODES: tuple[str, ...] = ("minmax", "percentile")
PERCENTILES: tuple[float, float] = (1.0, 99.0)
CONSTANT_SPAN_REL = 1e-9
"""A dimension is constant when high - low <= CONSTANT_SPAN_REL * max(1, |low|, |high|)."""


@dataclass(frozen=True, eq=False)
class NormStats:
    """Per-dimension bounds that map to -1 (``low``) and +1 (``high``); read-only float64 arrays of shape (D,)."""

    low: np.ndarray
    high: np.ndarray
    mode: NormMode = "minmax"

    def __post_init__(self) -> None:
        if self.mode not in NORM_MODES:
            raise ValueError(f"mode must be one of {NORM_MODES}, got {self.mode!r}")
        arrays = {name: _as_float_vector(getattr(self, name), name) for name in ("low", "high")}
        low, high = arrays["low"], arrays["high"]
        if low.shape != high.shape:
            raise ValueError(f"low and high must have the same shape, got low {low.shape} and high {high.shape}")
        if np.any(low > high):
            bad = np.flatnonzero(low > high).tolist()
            raise ValueError(f"low must be <= high in every dimension; low > high in dimensions {bad}")
        for name, arr in arrays.items():
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @classmethod
    def from_data(cls, data: ArrayLike, mode: NormMode = "minmax") -> NormStats:
        """Bounds of ``data`` (N, D) per dimension: min/max, or the 1st/99th percentiles (ignores outliers)."""
        arr = np.asarray(data, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(f"data must have shape (N, D) with N, D >= 1, got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("data must be finite (no NaN or inf)")
        if mode == "minmax":
            low, high = arr.min(axis=0), arr.max(axis=0)
        elif mode == "percentile":
            low, high = np.percentile(arr, PERCENTILES, axis=0)
        else:
            raise ValueError(f"mode must be one of {NORM_MODES}, got {mode!r}")
        return cls(low=low, high=high, mode=mode)

    @property
    def dim(self) -> int:
        """Number of dimensions D."""
        return int(self.low.shape[0])

    @property
    def constant(self) -> np.ndarray:
        """Boolean mask (D,) of dimensions too narrow to bin; they normalise to 0."""
        scale = np.maximum(1.0, np.maximum(np.abs(self.low), np.abs(self.high)))
        return (self.high - self.low) <= CONSTANT_SPAN_REL * scale

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; ``from_dict`` restores it bit for bit."""
        return {"mode": self.mode, "low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NormStats:
        """Inverse of ``to_dict``; a missing or malformed field raises ValueError naming it."""
        if not isinstance(d, Mapping):
            raise ValueError(f"norm stats must be a mapping with fields low, high, mode; got {type(d).__name__}")
        missing = [k for k in ("low", "high", "mode") if k not in d]
        if missing:
            raise ValueError(f"norm stats are missing field(s) {missing}")
        return cls(low=d["low"], high=d["high"], mode=d["mode"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NormStats):
            return NotImplemented
        return self.mode == other.mode and np.array_equal(self.low, other.low) and np.array_equal(self.high, other.high)


class ActionTokenizer:
    """Normalises D-dim vectors to [-1, 1] and maps them to ``n_bins`` uniform bins (token indices) and back."""

    def __init__(self, stats: NormStats, n_bins: int = 256) -> None:
        if not isinstance(stats, NormStats):
            raise ValueError(f"stats must be a NormStats, got {type(stats).__name__}")
        if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
            raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
        self.stats = stats
        self.n_bins = int(n_bins)
        self._constant = stats.constant
        # Span with constant dimensions replaced by 1 so that nothing divides by zero; those are masked anyway.
        self._span = np.where(self._constant, 1.0, stats.high - stats.low)

    @property
    def dim(self) -> int:
        """Number of dimensions D."""
        return self.stats.dim

    @property
    def bin_width(self) -> np.ndarray:
        """Width of one bin in original units, per dimension: (high - low) / n_bins."""
        return (self.stats.high - self.stats.low) / self.n_bins

    def normalize(self, values: ArrayLike) -> np.ndarray:
        """Map (..., D) values to [-1, 1]: low -> -1, high -> +1, outside clipped, constant dimensions -> 0."""
        return 2.0 * self._unit(values, "values") - 1.0

    def unnormalize(self, normalized: ArrayLike) -> np.ndarray:
        """Inverse of ``normalize`` for (..., D) values in [-1, 1] (outside: linear extrapolation)."""
        x = self._check_values(normalized, "normalized")
        return self._from_unit((x + 1.0) / 2.0)

    def encode(self, actions: ArrayLike) -> np.ndarray:
        """Token indices (int64, in [0, n_bins)) of (..., D) actions; values outside [low, high] -> edge bins."""
        u = self._unit(actions, "actions")
        return np.minimum(np.floor(u * self.n_bins), self.n_bins - 1).astype(np.int64)

    def decode(self, tokens: ArrayLike) -> np.ndarray:
        """Continuous (..., D) actions at the centres of the bins ``tokens``; constant dimensions -> their midpoint."""
        t = self._check_tokens(tokens)
        return self._from_unit((t + 0.5) / self.n_bins)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form for the checkpoint config."""
        return {"n_bins": self.n_bins, "stats": self.stats.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionTokenizer:
        """Inverse of ``to_dict``."""
        if not isinstance(d, Mapping) or "n_bins" not in d or "stats" not in d:
            raise ValueError("action tokenizer config must be a mapping with fields n_bins and stats")
        return cls(NormStats.from_dict(d["stats"]), n_bins=d["n_bins"])

    def __repr__(self) -> str:
        return f"ActionTokenizer(dim={self.dim}, n_bins={self.n_bins}, mode={self.stats.mode!r})"

    # -- helpers ------------------------------------------------------------------------------------------------

    def _from_unit(self, u: np.ndarray) -> np.ndarray:
        """Original units of fractions ``u`` of [low, high]; the midpoint on constant dimensions."""
        low, high = self.stats.low, self.stats.high
        return np.where(self._constant, low + (high - low) / 2.0, low + u * self._span)

    def _unit(self, values: ArrayLike, name: str) -> np.ndarray:
        """Position of the values in [low, high] as a fraction in [0, 1] (clipped); 0.5 on constant dimensions."""
        a = self._check_values(values, name)
        u = np.clip((a - self.stats.low) / self._span, 0.0, 1.0)
        return np.where(self._constant, 0.5, u)

    def _check_values(self, values: ArrayLike, name: str) -> np.ndarray:
        try:
            a = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name} must be a numeric array of shape (..., {self.dim}): {e}") from None
        if a.ndim == 0 or a.shape[-1] != self.dim:
            raise ValueError(f"{name} must have shape (..., {self.dim}), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} of shape (..., {self.dim}) must be finite (no NaN or inf)")
        return a

    def _check_tokens(self, tokens: ArrayLike) -> np.ndarray:
        t = np.asarray(tokens)
        if t.dtype == np.bool_ or not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"tokens must be integers of shape (..., {self.dim}), got dtype {t.dtype}")
        if t.ndim == 0 or t.shape[-1] != self.dim:
            raise ValueError(f"tokens must have shape (..., {self.dim}), got {t.shape}")
        if t.size and (t.min() < 0 or t.max() >= self.n_bins):
            raise ValueError(f"tokens must lie in [0, {self.n_bins}), got range [{t.min()}, {t.max()}]")
        return t.astype(np.int64)


def _as_float_vector(value: Any, name: str) -> np.ndarray:
    """``value`` as a fresh finite float64 array of shape (D,), D >= 1, or ValueError naming ``name``."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a numeric vector of shape (D,): {e}") from None
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape (D,) with D >= 1, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = [i for i, v in enumerate(arr) if not math.isfinite(v)]
        raise ValueError(f"{name} must be finite; non-finite in dimensions {bad}")
    return arr
