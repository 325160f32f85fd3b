"""RayEnvPool (sim/ray_pool.py) on a local two-node Ray cluster made with Ray's own cluster utilities (a head and
one more node, two logical CPUs each, no dashboard, small object stores; one cluster and one pool for the module,
~15 s to start): the same seeds and actions give bit for bit the episodes of the process pool; an actor killed
mid-rollout is replaced and its envs replayed, so no episode (no group) is lost or counted twice; closing the pool
ends its actors and shutting the cluster down leaves no process of it behind. The last test closes the module's
pool and shuts its cluster down (pytest runs a module's tests in file order)."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
pytest.importorskip("mujoco")

from ray_cluster import ClusterHandle  # noqa: E402
from tests_support import click_bell_expert_actions  # noqa: E402

from pushcut.sim.ray_pool import RayEnvPool  # noqa: E402
from pushcut.sim.replay_log import image_bytes  # noqa: E402
from pushcut.sim.vector import EnvPool, open_pool  # noqa: E402

OVERRIDES = {"image_width": 64, "image_height": 48, "cameras": ("head_camera",)}
SEEDS = [3, 3, 7, 7]  # two groups of two episodes, as GRPO lays them out (a group's envs share the seed)
CHUNK = 8


@pytest.fixture(scope="module")
def cluster():
    handle = ClusterHandle()
    yield handle
    handle.shutdown()


@pytest.fixture(scope="module")
def actions() -> list[np.ndarray]:
    """Per env, open-loop actions: the expert of the group's seed for the first env, the other seed's for the
    second (a press for one, most likely a miss for the other); held still after, so every episode ends."""
    expert = {seed: click_bell_expert_actions(seed, still=120) for seed in set(SEEDS)}
    return [expert[3], expert[7], expert[7], expert[3]]


def play(pool: Any, actions: list[np.ndarray], on_chunk: Any = None) -> list[dict[str, Any]]:
    """Every env's episode from its seed, chunk by chunk until it ends, as a rollout drives the pool; per env the
    reset observation and each chunk's result. ``on_chunk(k, pool)`` runs before chunk k is sent."""
    n = len(SEEDS)
    episodes = [{"seed": s, "reset": obs, "results": []} for s, obs in zip(SEEDS, pool.reset(SEEDS), strict=True)]
    active, k = set(range(n)), 0
    while active:
        if on_chunk is not None:
            on_chunk(k, pool)
        chunks = [actions[i][k * CHUNK : (k + 1) * CHUNK] if i in active else None for i in range(n)]
        for i, result in enumerate(pool.step_chunk(chunks, images_if_ended=False)):
            if result is not None:
                episodes[i]["results"].append(result)
                if result.terminated or result.truncated:
                    active.discard(i)
        k += 1
    return episodes


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Exact equality of nested results (arrays bit for bit, dataclasses field by field)."""
    if hasattr(a, "__dataclass_fields__"):
        for name in a.__dataclass_fields__:
            assert_same(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, where


def outcomes(episodes: list[dict[str, Any]]) -> list[tuple[int, bool, int]]:
    """(seed, success, actions played) per episode: what GRPO counts per group."""
    return [(e["seed"], bool(e["results"][-1].terminated), sum(r.steps_executed for r in e["results"]))
            for e in episodes]  # fmt: skip


@pytest.fixture(scope="module")
def reference(actions) -> list[dict[str, Any]]:
    with EnvPool("click_bell", len(SEEDS), OVERRIDES, num_workers=2) as pool:
        return play(pool, actions)


@pytest.fixture(scope="module")
def pool(cluster):
    """The module's Ray pool: four envs in two actors (played, killed, closed by the tests below, in turn)."""
    with open_pool("click_bell", len(SEEDS), OVERRIDES, num_workers=2, backend="ray") as ray_pool:
        yield ray_pool


def test_same_seeds_and_actions_give_the_process_pools_episodes_bit_for_bit(pool, actions, reference):
    assert isinstance(pool, RayEnvPool)
    assert len({info["node_id"] for info in pool.worker_info}) == 2  # one actor on each node
    before = pool.image_bytes
    episodes = play(pool, actions)
    moved = sum(image_bytes(e["reset"]) + sum(image_bytes(r) for r in e["results"]) for e in episodes)
    assert pool.image_bytes - before == moved > 0
    assert_same(episodes, reference)
    assert {success for _, success, _ in outcomes(reference)} == {True, False}  # both outcomes among them


def test_an_actor_killed_mid_rollout_is_replaced_and_no_episode_is_lost_or_counted_twice(pool, actions, reference):
    killed: dict[int, int] = {}

    def kill(k: int, pool: RayEnvPool) -> None:
        if k == 2:  # between two chunks: the next call finds the actor dead
            killed[0] = pool.worker_info[0]["pid"]
            ray.kill(pool.actor(0))
        elif k == 4:  # while the chunk is being stepped (or just before or after: any moment must do)
            killed[1] = pool.worker_info[1]["pid"]
            threading.Timer(0.02, ray.kill, [pool.actor(1)]).start()

    already = len(pool.replacements)
    episodes = play(pool, actions, on_chunk=kill)
    time.sleep(0.1)
    pool.call("success")  # finds worker 1's actor dead if the kill came after the last chunk
    assert_same(episodes, reference)
    assert outcomes(episodes) == outcomes(reference)  # every group complete, each episode counted once
    replaced = pool.replacements[already:]
    assert sorted(r.worker for r in replaced) == [0, 1]
    assert all(r.replayed > 0 and r.envs == tuple(range(r.worker, len(SEEDS), 2)) for r in replaced)
    for w, pid in killed.items():
        assert pool.worker_info[w]["pid"] != pid and not psutil.pid_exists(pid)


class KillingPolicy:
    """The real policy, killing actor 0 of ``pool`` in the middle of the ``at``-th forward pass of a rollout."""

    def __init__(self, policy: Any, at: int) -> None:
        self.policy, self.at, self.calls, self.pool = policy, at, 0, None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.policy, name)

    def predict(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.at:
            ray.kill(self.pool.actor(0))
        return self.policy.predict(*args, **kwargs)


@pytest.mark.slow
def test_grpo_groups_sampled_on_ray_with_an_actor_killed_are_the_process_pools(cluster, micro_checkpoint, tmp_path):
    torch = pytest.importorskip("torch")
    from pushcut.train.evaluate import policy_env_overrides
    from pushcut.train.grpo import GRPOConfig, train_grpo
    from pushcut.train.inference import ChunkPolicy
    from pushcut.train.rollout import rollout_groups

    policy = ChunkPolicy.from_checkpoint(micro_checkpoint)
    overrides = policy_env_overrides(policy, {"image_width": 64, "image_height": 48, "step_limit": 10})

    def groups(runner: Any, pool: Any) -> list:
        gen = torch.Generator().manual_seed(0)
        return rollout_groups(runner, pool, seeds=[10, 11, 12], group_size=2, temperature=1.6, generator=gen)

    with EnvPool("click_bell", 4, overrides, num_workers=2) as pool:
        expected = groups(policy, pool)
    killing = KillingPolicy(policy, at=2)
    with RayEnvPool("click_bell", 4, overrides, num_workers=2) as pool:
        killing.pool = pool
        got = groups(killing, pool)
        assert [r.worker for r in pool.replacements] == [0]
    assert [[e.seed for e in g] for g in got] == [[10, 10], [11, 11], [12, 12]]  # every group, once
    for mine, theirs in zip(sum(got, []), sum(expected, []), strict=True):
        assert (mine.seed, mine.success, mine.length) == (theirs.seed, theirs.success, theirs.length)
        for name in ("images", "proprio", "tokens", "log_probs", "valid"):
            np.testing.assert_array_equal(getattr(mine, name), getattr(theirs, name), err_msg=name)

    # a whole GRPO step with its env workers on the cluster (the driver is this process, connected to it)
    config = GRPOConfig(init=str(micro_checkpoint), tasks=("click_bell",), out=str(tmp_path / "grpo"), steps=1,
                        groups_per_step=2, group_size=2, mini_batches=2, micro_batch=8, rollout_envs=4, env_workers=2,
                        env_overrides={"image_width": 64, "image_height": 48, "step_limit": 8}, val_every=0,
                        dynamic_sampling=False, progress=False, device="cpu", env_backend="ray")  # fmt: skip
    summary = train_grpo(config)
    assert summary["steps"] == 1 and summary["history"][-1]["rollout/groups_sampled"] == 2


def test_closing_ends_the_actors_and_shutdown_leaves_no_process_of_the_cluster_behind(cluster, pool):
    pool.reset([0] * len(SEEDS))
    processes = cluster.processes()
    actor_pids = [info["pid"] for info in pool.worker_info]
    assert {"raylet", "gcs_server"} <= {p.name() for p in processes}
    assert set(actor_pids) <= {p.pid for p in processes}
    pool.close()
    _, alive = psutil.wait_procs([p for p in processes if p.pid in actor_pids], timeout=10.0)
    assert not alive  # the pool's actors end with it; the cluster stays up
    with pytest.raises(RuntimeError, match="it was closed"):
        pool.reset([0] * len(SEEDS))
    cluster.shutdown()
    _, alive = psutil.wait_procs(processes, timeout=15.0)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive
