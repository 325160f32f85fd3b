"""Rollouts (train/rollout.py): groups share initial states, kept log-probs equal a fresh forward pass, masks; the
pool's workers (several envs stepped at once) give exactly the episodes of envs stepped the per-tick way."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from chunk_reference import PerTickEnvs  # noqa: E402
from conftest import SMALL_IMAGES  # noqa: E402

from pushcut.sim.vector import EnvPool  # noqa: E402
from pushcut.train.evaluate import policy_env_overrides  # noqa: E402
from pushcut.train.inference import ChunkPolicy  # noqa: E402
from pushcut.train.rollout import rollout_groups, run_episodes  # noqa: E402

STEP_LIMIT = 10  # not a multiple of the micro policy's chunk (4): the last chunk is cut short


@pytest.fixture(scope="module")
def policy(micro_checkpoint):
    return ChunkPolicy.from_checkpoint(micro_checkpoint)


@pytest.fixture(scope="module")
def pool(policy):
    overrides = policy_env_overrides(policy, {**SMALL_IMAGES, "step_limit": STEP_LIMIT})
    with EnvPool("click_bell", 4, env_overrides=overrides, num_workers=2) as p:
        yield p


def test_groups_share_their_initial_state_and_keep_exact_log_probs(policy, pool):
    gen = torch.Generator().manual_seed(0)
    groups = rollout_groups(policy, pool, seeds=[10, 11, 12], group_size=2, temperature=1.6, generator=gen)
    assert [[ep.seed for ep in g] for g in groups] == [[10, 10], [11, 11], [12, 12]]  # 2 waves: 2 groups + 1
    for group in groups:
        assert len({ep.instruction for ep in group}) == 1
        assert not np.array_equal(group[0].tokens[0], group[1].tokens[0])  # sampled independently
        for ep in group:
            assert 1 <= ep.length <= STEP_LIMIT and ep.chunks == len(ep.images) == len(ep.valid)
            assert int(ep.valid.sum()) == ep.length  # executed action rows, the rest masked
            assert ep.valid[:-1].all()
            if not ep.success:
                assert ep.length == STEP_LIMIT and not ep.valid[-1].all()  # 10 = 4 + 4 + 2
            batch = policy.policy.make_batch(ep.images, [ep.instruction] * ep.chunks, ep.proprio)
            with torch.no_grad():
                fresh = policy.policy.log_probs(batch, torch.from_numpy(ep.tokens), temperature=1.6).numpy()
            np.testing.assert_allclose(ep.log_probs, fresh, atol=1e-5)


def test_greedy_episodes_are_reproducible_and_record_video(policy, pool):
    first = run_episodes(policy, pool, [20, 21, 22], record_camera="head_camera", record=[True, False, False])
    second = run_episodes(policy, pool, [20, 21, 22])
    assert [(e.success, e.length) for e in first] == [(e.success, e.length) for e in second]
    assert first[0].images is None and first[0].log_probs is None
    assert len(first[0].frames) == -(-first[0].length // policy.chunk) + 1 and not first[1].frames
    with pytest.raises(ValueError, match="temperature must be > 0"):
        run_episodes(policy, pool, [1], keep_inputs=True)
    with pytest.raises(ValueError, match="need 1..4 seeds"):
        run_episodes(policy, pool, [1] * 5)
    with pytest.raises(ValueError, match="cannot hold one group"):
        rollout_groups(policy, pool, [1], group_size=8, temperature=1.0)


def test_rollouts_are_those_of_envs_stepped_per_tick(policy, pool):
    """Same seeds and generator: the pool (workers stepping their envs' chunks together) and in-process envs stepped
    the per-tick way sample the same tokens, see the same images and end the same way."""
    overrides = policy_env_overrides(policy, {**SMALL_IMAGES, "step_limit": STEP_LIMIT})
    reference = PerTickEnvs("click_bell", pool.num_envs, overrides)
    try:
        runs = [rollout_groups(policy, envs, [30, 31], 2, 1.6, torch.Generator().manual_seed(5)) for envs in
                (pool, reference)]  # fmt: skip
    finally:
        reference.close()
    (ours, per_tick) = ([ep for g in run for ep in g] for run in runs)
    for a, b in zip(ours, per_tick, strict=True):
        assert (a.success, a.length) == (b.success, b.length)
        for key in ("images", "proprio", "tokens", "log_probs", "valid"):
            np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
