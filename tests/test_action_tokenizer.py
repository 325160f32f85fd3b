"""Action tokenizer: exact round trips over random stats, constant dims, clipping, stats (de)serialisation."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pushcut.sim import piper_spec
from pushcut.train.action_tokenizer import ActionTokenizer, NormStats

pytestmark = pytest.mark.filterwarnings("error")  # a division by zero or invalid value would fail the test

BIN_COUNTS = (1, 2, 7, 256, 1000)


@st.composite
def tokenizers(draw: st.DrawFn) -> ActionTokenizer:
    """Random bounds (some dimensions constant, the others well above the near-constant threshold) and bin counts."""
    dim = draw(st.integers(1, 14))
    lows = draw(st.lists(st.floats(-1e3, 1e3), min_size=dim, max_size=dim))
    widths = draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-5, 1e3)), min_size=dim, max_size=dim))
    low = np.array(lows)
    high = low + np.array(widths)
    return ActionTokenizer(
        NormStats(low, high, draw(st.sampled_from(["minmax", "percentile"]))), n_bins=draw(st.sampled_from(BIN_COUNTS))
    )


def float_slack(tok: ActionTokenizer) -> np.ndarray:
    """Float64 rounding allowance on top of the half-bin bound, relative to the bounds' magnitude."""
    return 1e-12 * np.maximum(1.0, np.maximum(np.abs(tok.stats.low), np.abs(tok.stats.high)))


@settings(max_examples=100, deadline=None)
@given(tok=tokenizers(), data=st.data())
def test_round_trip_within_half_a_bin(tok: ActionTokenizer, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 5))
    fractions = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=n * tok.dim, max_size=n * tok.dim)))
    low, high = tok.stats.low, tok.stats.high
    actions = np.clip(low + fractions.reshape(n, tok.dim) * (high - low), low, high)
    tokens = tok.encode(actions)
    assert tokens.dtype == np.int64 and tokens.shape == actions.shape
    assert tokens.min() >= 0 and tokens.max() < tok.n_bins
    err = np.abs(tok.decode(tokens) - actions)
    assert np.all(err <= (high - low) / tok.n_bins / 2 + float_slack(tok))
    assert np.all(err <= tok.bin_width / 2 + float_slack(tok))


@settings(max_examples=100, deadline=None)
@given(tok=tokenizers(), data=st.data())
def test_decode_encode_is_idempotent(tok: ActionTokenizer, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 5))
    tokens = np.array(
        data.draw(st.lists(st.integers(0, tok.n_bins - 1), min_size=n * tok.dim, max_size=n * tok.dim))
    ).reshape(n, tok.dim)
    decoded = tok.decode(tokens)
    assert np.array_equal(tok.decode(tok.encode(decoded)), decoded)
    varying = ~tok.stats.constant
    assert np.array_equal(tok.encode(decoded)[:, varying], tokens[:, varying])


def test_every_token_of_the_piper_action_space_is_idempotent() -> None:
    low, high = piper_spec.action_limits()
    tok = ActionTokenizer(NormStats(low, high))
    assert tok.dim == piper_spec.ACTION_DIM == len(piper_spec.ACTION_NAMES)
    tokens = np.repeat(np.arange(256)[:, None], tok.dim, axis=1)
    assert np.array_equal(tok.encode(tok.decode(tokens)), tokens)
    assert np.array_equal(tok.encode(low), np.zeros(tok.dim)) and np.array_equal(tok.encode(high), np.full(14, 255))


@settings(max_examples=100, deadline=None)
@given(tok=tokenizers(), data=st.data())
def test_normalize_unnormalize(tok: ActionTokenizer, data: st.DataObject) -> None:
    fractions = np.array(data.draw(st.lists(st.floats(0.0, 1.0), min_size=tok.dim, max_size=tok.dim)))
    low, high = tok.stats.low, tok.stats.high
    values = np.clip(low + fractions * (high - low), low, high)
    x = tok.normalize(values)
    assert np.all((x >= -1.0) & (x <= 1.0))
    assert np.all(x[tok.stats.constant] == 0.0)
    varying = ~tok.stats.constant
    assert np.allclose(tok.unnormalize(x)[varying], values[varying], rtol=0, atol=1e-9 * max(1.0, np.abs(values).max()))


def test_known_values() -> None:
    tok = ActionTokenizer(NormStats(np.array([-2.0, 0.0]), np.array([2.0, 1.0])), n_bins=4)
    assert np.array_equal(tok.normalize([[-2.0, 0.5], [2.0, 1.0]]), [[-1.0, 0.0], [1.0, 1.0]])
    assert np.array_equal(tok.encode([[-2.0, 0.0], [-0.1, 0.26], [2.0, 1.0]]), [[0, 0], [1, 1], [3, 3]])
    assert np.array_equal(tok.decode([[0, 0], [3, 3]]), [[-1.5, 0.125], [1.5, 0.875]])
    assert np.array_equal(tok.unnormalize([[0.0, 0.0]]), [[0.0, 0.5]])


def test_constant_dimension_does_not_divide_by_zero() -> None:
    data = np.column_stack([np.linspace(-1.0, 1.0, 50), np.full(50, 0.04)])  # e.g. an unused gripper
    stats = NormStats.from_data(data)
    assert stats.low[1] == stats.high[1] == 0.04 and stats.constant.tolist() == [False, True]
    tok = ActionTokenizer(stats)
    assert np.all(tok.normalize(data)[:, 1] == 0.0)
    assert np.all(tok.normalize([[0.0, 5.0], [0.0, -5.0]])[:, 1] == 0.0)
    assert np.all(tok.encode(data)[:, 1] == 128)
    assert np.all(tok.decode(np.array([[0, 0], [7, 255]]))[:, 1] == 0.04)
    assert np.all(tok.unnormalize([[0.0, -1.0], [0.0, 1.0]])[:, 1] == 0.04)
    assert tok.bin_width[1] == 0.0


def test_near_constant_dimension_is_treated_as_constant() -> None:
    """A range too narrow for float64 to tell 256 bins apart decodes to its midpoint and stays idempotent."""
    low, high = np.array([1e6, 0.0]), np.array([1e6 + 1e-4, 1e-12])
    tok = ActionTokenizer(NormStats(low, high))
    assert tok.stats.constant.tolist() == [True, True]
    tokens = np.array([[0, 255], [100, 3]])
    decoded = tok.decode(tokens)
    assert np.array_equal(decoded, np.broadcast_to(low + (high - low) / 2, decoded.shape))
    assert np.array_equal(tok.decode(tok.encode(decoded)), decoded)
    actions = low + np.array([[0.0, 0.0], [0.3, 0.9], [1.0, 1.0]]) * (high - low)
    assert np.all(np.abs(tok.decode(tok.encode(actions)) - actions) <= (high - low) / 2 + float_slack(tok))


def test_values_outside_the_bounds_clip_to_the_edge_bins() -> None:
    tok = ActionTokenizer(NormStats(np.array([0.0, -1.0]), np.array([1.0, 1.0])))
    actions = np.array([[-10.0, 1.5], [1.0 + 1e-9, -1e9]])
    assert np.array_equal(tok.encode(actions), [[0, 255], [255, 0]])
    assert np.array_equal(tok.normalize(actions), [[-1.0, 1.0], [1.0, -1.0]])


def test_percentile_mode_ignores_outliers() -> None:
    rng = np.random.default_rng(0)
    data = rng.uniform(0.0, 1.0, size=(2000, 3))
    data[0] = [1e6, -1e6, 0.5]
    robust, minmax = NormStats.from_data(data, "percentile"), NormStats.from_data(data, "minmax")
    assert robust.mode == "percentile" and minmax.mode == "minmax"
    assert np.allclose(robust.low[:2], 0.01, atol=0.01) and np.allclose(robust.high[:2], 0.99, atol=0.01)
    assert minmax.high[0] == 1e6 and minmax.low[1] == -1e6
    assert np.array_equal(robust.low, np.percentile(data, 1, axis=0))


def test_shapes_are_preserved_for_chunks() -> None:
    low, high = piper_spec.action_limits()
    tok = ActionTokenizer(NormStats(low, high))
    actions = np.random.default_rng(1).uniform(low, high, size=(2, 25, 14))
    assert tok.encode(actions).shape == (2, 25, 14)
    assert tok.decode(tok.encode(actions)).shape == (2, 25, 14)
    assert tok.normalize(actions[0, 0]).shape == (14,)


def test_dict_round_trip_is_exact_through_json() -> None:
    stats = NormStats.from_data(np.random.default_rng(2).normal(size=(100, 14)) / 3.0, "percentile")
    restored = NormStats.from_dict(json.loads(json.dumps(stats.to_dict())))
    assert restored == stats and restored.low.dtype == np.float64
    tok = ActionTokenizer(stats, n_bins=128)
    again = ActionTokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert again.n_bins == 128 and again.stats == stats
    with pytest.raises(ValueError):
        stats.low[0] = 0.0  # read-only


@pytest.mark.parametrize(
    ("d", "field"),
    [
        ({"low": [0.0], "mode": "minmax"}, "high"),
        ({"low": [0.0, 1.0], "high": [1.0], "mode": "minmax"}, "same shape"),
        ({"low": [2.0], "high": [1.0], "mode": "minmax"}, "low must be <= high"),
        ({"low": [float("nan")], "high": [1.0], "mode": "minmax"}, "low must be finite"),
        ({"low": [0.0], "high": [float("inf")], "mode": "minmax"}, "high must be finite"),
        ({"low": [0.0], "high": [1.0], "mode": "q99"}, "mode"),
        ({"low": "abc", "high": [1.0], "mode": "minmax"}, "low"),
        ({"low": [[0.0]], "high": [[1.0]], "mode": "minmax"}, "low must have shape (D,)"),
        ({"low": [], "high": [], "mode": "minmax"}, "low must have shape (D,)"),
    ],
)
def test_bad_stats_dict_names_the_field(d: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("(", r"\(").replace(")", r"\)")):
        NormStats.from_dict(d)


def test_bad_data_for_stats() -> None:
    for bad in (np.zeros(5), np.zeros((0, 3)), np.array([[0.0, np.nan]])):
        with pytest.raises(ValueError, match="data"):
            NormStats.from_data(bad)
    with pytest.raises(ValueError, match="mode"):
        NormStats.from_data(np.zeros((2, 2)), "q99")


def test_bad_inputs_raise_clear_errors() -> None:
    tok = ActionTokenizer(NormStats(*piper_spec.action_limits()))
    for bad in (np.zeros(7), np.zeros((3, 13)), 0.5):
        for fn in (tok.encode, tok.normalize, tok.unnormalize):
            with pytest.raises(ValueError, match=r"shape \(\.\.\., 14\)"):
                fn(bad)
    for value in (np.nan, np.inf, -np.inf):
        actions = np.zeros((2, 14))
        actions[1, 3] = value
        with pytest.raises(ValueError, match=r"\(\.\.\., 14\).*finite"):
            tok.encode(actions)
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        tok.decode(np.full((1, 14), 256))
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        tok.decode(np.full((1, 14), -1))
    with pytest.raises(ValueError, match="integers"):
        tok.decode(np.zeros((1, 14)))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 14\)"):
        tok.decode(np.zeros((1, 7), dtype=np.int64))
    for n_bins in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_bins"):
            ActionTokenizer(tok.stats, n_bins=n_bins)
