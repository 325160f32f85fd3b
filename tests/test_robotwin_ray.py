"""``--sim robotwin --env-backend ray`` (sim/robotwin/actor_envs.py) against the stand-in checkout on a local two-node
Ray cluster (tests/ray_cluster.py): each actor starts and owns one RoboTwin worker interpreter; the same seeds and
actions give the process pool's episodes; an actor killed mid-rollout takes its worker with it, and the replacement
(a fresh worker) replays its envs so no episode is lost or counted twice; closing leaves no actor and no worker. One
cluster and one Ray pool for the module; the last test closes the pool and shuts the cluster down."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from ray_cluster import ClusterHandle  # noqa: E402

from pushcut.sim.ray_pool import RayEnvPool  # noqa: E402
from pushcut.sim.robotwin.actor_envs import RobotwinEnvs  # noqa: E402
from pushcut.sim.robotwin.backend import open_pool, world_overrides  # noqa: E402
from pushcut.sim.robotwin.pool import RobotwinPool  # noqa: E402

STANDIN = Path(__file__).parent / "robotwin_standin"
OVERRIDES = {**world_overrides("robotwin", STANDIN, sys.executable), "image_width": 32, "image_height": 24,
             "step_limit": 6}  # fmt: skip
SEEDS = [5, 5, 7, 7]  # two groups of two, as GRPO lays them out
CHUNK = 2
OFFSETS = np.linspace(-0.2, 0.2, 8)  # per action: a left joint-1 offset from the env's start target


def actions_from(observations: list[dict[str, Any]]) -> list[np.ndarray]:
    """Per env, open-loop moves around its start target (a group's envs get opposite sweeps)."""
    out = []
    for i, obs in enumerate(observations):
        moves = np.tile(obs["joint_target"], (len(OFFSETS), 1))
        moves[:, 0] += OFFSETS if i % 2 == 0 else -OFFSETS
        out.append(moves)
    return out


def play(pool: Any, on_chunk: Any = None) -> list[dict[str, Any]]:
    """Every env's episode chunk by chunk until it ends (the step limit ends each); ``on_chunk(k, pool)`` runs
    before chunk k is sent."""
    observations = pool.reset(SEEDS)
    actions = actions_from(observations)
    episodes = [{"reset": obs, "results": []} for obs in observations]
    active, k = set(range(len(SEEDS))), 0
    while active:
        if on_chunk is not None:
            on_chunk(k, pool)
        chunks = [actions[i][k * CHUNK : (k + 1) * CHUNK] if i in active else None for i in range(len(SEEDS))]
        for i, result in enumerate(pool.step_chunk(chunks)):
            if result is not None:
                episodes[i]["results"].append(result)
                if result.terminated or result.truncated or result.steps_executed == 0:
                    active.discard(i)
        k += 1
    return episodes


def summary(episodes: list[dict[str, Any]]) -> list[tuple]:
    """Per episode what GRPO counts and what the policy saw: RoboTwin seed, moves, success, joints and images."""
    rows = []
    for e in episodes:
        last = e["results"][-1]
        seen = [e["reset"], *(r.observation for r in e["results"])]
        rows.append((last.info["robotwin_seed"], sum(r.steps_executed for r in e["results"]), bool(last.terminated),
                     [o["joint_action"]["vector"].tolist() for o in seen],
                     [o["observation"]["head_camera"]["rgb"].tobytes() for o in seen]))  # fmt: skip
    return rows


def worker_pids(pool: RayEnvPool) -> list[int]:
    """The RoboTwin worker interpreters: the actors' child processes."""
    return [c.pid for info in pool.worker_info for c in psutil.Process(info["pid"]).children()]


@pytest.fixture(scope="module")
def cluster():
    handle = ClusterHandle()
    yield handle
    handle.shutdown()


@pytest.fixture(scope="module")
def reference() -> list[tuple]:
    with open_pool("click_bell", len(SEEDS), OVERRIDES, num_workers=2) as pool:
        assert isinstance(pool, RobotwinPool)
        return summary(play(pool))


@pytest.fixture(scope="module")
def pool(cluster):
    with open_pool("click_bell", len(SEEDS), OVERRIDES, num_workers=2, backend="ray") as ray_pool:
        yield ray_pool


def test_each_actor_owns_one_robotwin_worker_on_its_node(pool) -> None:
    assert isinstance(pool, RayEnvPool) and pool.envs_kind is RobotwinEnvs
    assert len({info["node_id"] for info in pool.worker_info}) == 2  # SPREAD: one actor on each node
    for info in pool.worker_info:
        (worker,) = psutil.Process(info["pid"]).children()
        assert "worker.py" in " ".join(worker.cmdline()) and str(STANDIN) in " ".join(worker.cmdline())


def test_same_seeds_and_actions_give_the_process_pools_episodes(pool, reference) -> None:
    assert summary(play(pool)) == reference
    assert [s // 100 for s, *_ in reference] == [5, 5, 7, 7] and all(moves > 0 for _, moves, *_ in reference)


def test_a_killed_actor_takes_its_worker_along_and_its_envs_are_replayed_on_a_fresh_one(pool, reference) -> None:
    before = pool.worker_info[0]["pid"]
    (old_worker,) = psutil.Process(before).children()

    def kill(k: int, pool: RayEnvPool) -> None:
        if k == 2:
            ray.kill(pool.actor(0))

    assert summary(play(pool, kill)) == reference  # no episode lost, none counted twice, the same outcomes
    (replaced,) = pool.replacements
    assert replaced.worker == 0 and replaced.envs == (0, 2) and replaced.replayed == 2 * 3  # a reset + two chunks
    _, alive = psutil.wait_procs([old_worker], timeout=10.0)
    assert not alive  # the dead actor's RoboTwin worker died with it
    (new_worker,) = psutil.Process(pool.worker_info[0]["pid"]).children()
    assert pool.worker_info[0]["pid"] != before and new_worker.pid != old_worker.pid


@pytest.mark.slow
def test_eval_sim_and_train_grpo_run_robotwin_on_ray_from_the_command_line(cluster, micro_checkpoint, tmp_path) -> None:
    """``pushcut eval sim`` and ``pushcut train grpo`` with ``--sim robotwin --env-backend ray`` (on the module's
    cluster: Ray is initialised, so the commands join it)."""
    import json

    from typer.testing import CliRunner

    from pushcut.cli import app

    world = ["--sim", "robotwin", "--robotwin-dir", str(STANDIN), "--robotwin-python", sys.executable,
             "--env-backend", "ray"]  # fmt: skip
    runner = CliRunner()
    evaluate = ["eval", "sim", "--checkpoint", str(micro_checkpoint), "--task", "click_bell", "--episodes", "2",
                "--workers", "2", "--step-limit", "3", "--json", *world]  # fmt: skip
    evaluated = runner.invoke(app, evaluate)
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads(evaluated.stdout)
    assert result["world"]["engine"] == "robotwin" and result["episodes"] == 2
    assert all(o["length"] <= 3 for o in result["per_seed"])
    out = tmp_path / "grpo"
    trained = runner.invoke(app, ["train", "grpo", "--init", str(micro_checkpoint), "--task", "click_bell", "--out",
                                  str(out), "--steps", "1", "--groups-per-step", "1", "--group-size", "2",
                                  "--rollout-envs", "2", "--env-workers", "2", "--val-every", "0", *world,
                                  "--set", "mini_batches=1", "--set", "micro_batch=8", "--set", "progress=false",
                                  "--set", "dynamic_sampling=false", "--set", 'device="cpu"',
                                  "--set", 'env_overrides={"step_limit": 3}'])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 1 and rows[-1]["rollout/groups_sampled"] == 1
    assert 0 < rows[-1]["rollout/episode_length"] <= 3


def test_closing_leaves_no_actor_and_no_robotwin_worker(cluster, pool) -> None:
    processes = [psutil.Process(info["pid"]) for info in pool.worker_info]
    processes += [psutil.Process(pid) for pid in worker_pids(pool)]
    assert len(processes) == 4
    pool.close()
    _, alive = psutil.wait_procs(processes, timeout=15.0)
    assert not alive
    cluster.shutdown()


def test_robotwin_options_it_cannot_do_are_refused_before_any_actor_starts() -> None:
    with pytest.raises(ValueError, match="not shared by pushcut and RoboTwin"):
        open_pool("no_such_task", 1, OVERRIDES, backend="ray")
    with pytest.raises(ValueError, match="unknown env backend"):
        open_pool("click_bell", 1, OVERRIDES, backend="dask")
