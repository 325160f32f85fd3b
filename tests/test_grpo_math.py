"""GRPO maths (train/grpo_math.py): advantages, the dynamic-sampling filter, the clipped loss, batch arithmetic."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pushcut.train.grpo_math import clipped_policy_loss, group_advantages, keep_groups, plan_batches  # noqa: E402


def test_group_advantages_known_values():
    adv = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]]))
    # row 0: mean 0.25, unbiased std 0.5 → (1 - 0.25) / 0.5 = 1.5 and -0.5
    torch.testing.assert_close(adv[0], torch.tensor([1.5, -0.5, -0.5, -0.5]), atol=1e-5, rtol=0)
    assert torch.all(adv[1] == 0)  # no signal in an all-success group
    assert adv[2].sum().abs() < 1e-6 and adv[2, 1] > 0 > adv[2, 0]
    assert torch.all(group_advantages(torch.tensor([[1.0], [0.0]])) == 0)
    with pytest.raises(ValueError, match="n_groups, group_size"):
        group_advantages(torch.zeros(8))


@given(st.lists(st.lists(st.sampled_from([0.0, 1.0]), min_size=8, max_size=8), min_size=1, max_size=6))
@settings(max_examples=50, deadline=None)
def test_advantages_are_zero_mean_and_order_preserving(rows):
    rewards = torch.tensor(rows)
    adv = group_advantages(rewards)
    assert torch.allclose(adv.sum(1), torch.zeros(len(rows)), atol=1e-5)
    for r, a in zip(rewards, adv, strict=True):
        if r.min() < r.max():
            assert a[r == 1].min() > 0 > a[r == 0].max()


def test_keep_groups_band():
    successes = torch.arange(9)  # 0..8 successes out of G = 8
    assert keep_groups(successes, 8).tolist() == [False] + [True] * 7 + [False]
    assert keep_groups(successes, 8, band=(0.0, 1.0)).all()  # dynamic sampling off
    assert keep_groups(successes, 8, band=(0.5, 0.5)).tolist() == [k == 4 for k in range(9)]
    with pytest.raises(ValueError, match="band"):
        keep_groups(successes, 8, band=(0.9, 0.1))


def _grad(logp_value, old, adv, **kw):
    logp = torch.tensor([logp_value], requires_grad=True)
    out = clipped_policy_loss(logp, torch.tensor([old]), torch.tensor([adv]), torch.tensor([True]), **kw)
    out.loss.backward()
    return out, float(logp.grad)


def test_clip_is_asymmetric_and_stops_gradients_only_where_it_binds():
    old = -2.0
    # ratio 1: loss = -A, gradient -A, nothing clipped, KL 0
    out, g = _grad(old, old, 0.5)
    assert out.loss.item() == pytest.approx(-0.5) and g == pytest.approx(-0.5)
    assert out.clipfrac_sum == 0 and out.approx_kl_sum == pytest.approx(0.0)
    # positive advantage: clipped above 1 + 0.28, not at 1.25
    inside, g_in = _grad(old + torch.log(torch.tensor(1.25)).item(), old, 1.0)
    above, g_above = _grad(old + torch.log(torch.tensor(1.30)).item(), old, 1.0)
    assert g_in < 0 and inside.clipfrac_sum == 0
    assert g_above == 0 and above.clipfrac_sum == 1 and above.loss.item() == pytest.approx(-1.28)
    # negative advantage: clipped below 1 - 0.2; a large ratio is never clipped (pessimistic bound)
    below, g_below = _grad(old + torch.log(torch.tensor(0.75)).item(), old, -1.0)
    big, g_big = _grad(old + torch.log(torch.tensor(2.0)).item(), old, -1.0)
    assert g_below == 0 and below.clipfrac_sum == 1 and below.loss.item() == pytest.approx(0.8)
    assert g_big > 0 and big.clipfrac_sum == 0
    # symmetric clip 0.2 / 0.2 clips 1.25 for a positive advantage
    sym, g_sym = _grad(old + torch.log(torch.tensor(1.25)).item(), old, 1.0, clip_high=0.2)
    assert g_sym == 0 and sym.clipfrac_sum == 1


def test_masked_tokens_do_not_count_and_micro_batches_add_up():
    torch.manual_seed(0)
    logp = torch.randn(6, 4, 3) - 3.0
    old = logp + 0.1 * torch.randn_like(logp)
    adv = torch.randn(6, 1, 1).expand(6, 4, 3)
    mask = torch.rand(6, 4, 1).expand(6, 4, 3) > 0.3
    whole = clipped_policy_loss(logp, old, adv, mask)
    changed = logp.clone()
    changed[~mask] = 99.0  # values under the mask are ignored
    assert clipped_policy_loss(changed, old, adv, mask).loss.item() == pytest.approx(whole.loss.item())
    n = int(mask.sum())
    parts = [clipped_policy_loss(logp[s], old[s], adv[s], mask[s], normaliser=n) for s in (slice(0, 2), slice(2, 6))]
    assert sum(p.loss.item() for p in parts) == pytest.approx(whole.loss.item(), rel=1e-5)
    assert sum(p.tokens for p in parts) == whole.tokens == n
    assert whole.approx_kl_sum >= 0


def test_batch_plan_arithmetic_and_messages():
    plan = plan_batches(groups_per_step=8, group_size=8, mini_batches=2, micro_batch=32, world_size=2)
    assert plan.trajectories_per_step == 64 and plan.groups_per_rank == 4
    assert plan.trajectories_per_mini_batch_per_rank == 16
    assert "64 trajectories" in plan.describe()
    with pytest.raises(ValueError, match="not divisible by world_size=2"):
        plan_batches(3, 8, 1, 16, world_size=2)
    with pytest.raises(ValueError, match=r"mini_batches=3 does not divide; choose mini_batches among \[1, 2, 4"):
        plan_batches(2, 8, 3, 16)
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        plan_batches(2, 1, 1, 16)
    with pytest.raises(ValueError, match="micro_batch must be a positive integer"):
        plan_batches(2, 8, 1, 0)


def test_lr_schedules():
    from pushcut.train.grpo_math import scheduled_lr

    assert [scheduled_lr(1e-4, "constant", s, 80) for s in (1, 40, 80)] == [1e-4] * 3
    cosine = [scheduled_lr(1e-4, "cosine", s, 80) for s in range(1, 81)]
    assert cosine[0] == pytest.approx(1e-4)
    assert cosine[40] == pytest.approx(5e-5)  # step 41: half way
    assert 0 < cosine[-1] < 1e-6
    assert all(a > b for a, b in zip(cosine, cosine[1:], strict=False))
    with pytest.raises(ValueError, match="lr_schedule='linear' not in"):
        scheduled_lr(1e-4, "linear", 1, 80)
    with pytest.raises(ValueError, match="step=81 outside 1..steps=80"):
        scheduled_lr(1e-4, "cosine", 81, 80)
    # a 4-step warm-up scales the first steps by 1/4, 2/4, 3/4 and leaves every later rate as it was
    warm = [scheduled_lr(1e-4, "cosine", s, 80, warmup_steps=4) for s in range(1, 81)]
    assert warm[:4] == pytest.approx([c * k / 4 for c, k in zip(cosine[:4], (1, 2, 3, 4), strict=True)])
    assert warm[4:] == cosine[4:]
    assert scheduled_lr(1e-4, "constant", 1, 80, warmup_steps=5) == pytest.approx(2e-5)
    with pytest.raises(ValueError, match="lr_warmup_steps=81 outside 0..steps=80"):
        scheduled_lr(1e-4, "constant", 1, 80, warmup_steps=81)
