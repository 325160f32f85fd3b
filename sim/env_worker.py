"""What every env pool's workers share, whatever runs them (`EnvPool`'s processes, `RayEnvPool`'s actors): the
environment a worker sets before importing mujoco, how it builds its envs, how it answers a batch of per-env
requests, how a pool's arguments are checked and how the workers' replies become one list in env order.

`WorkerEnvs` is the seam between a Ray actor and the envs it holds: `EngineEnvs` for pushcut's own worlds (each env
built by `pushcut.sim.make`), `pushcut.sim.robotwin.actor_envs.RobotwinEnvs` for RoboTwin's (one RoboTwin worker
interpreter per actor).
"""

from __future__ import annotations

import os
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np


class EnvWorkerError(RuntimeError):
    """An env call failed in worker `index`: the env raised (`worker_traceback` set), or the worker died or hung."""

    def __init__(self, index: int, message: str, worker_traceback: str | None = None) -> None:
        self.index = index
        self.worker_traceback = worker_traceback
        text = f"env {index}: {message}"
        if worker_traceback:
            text += f"\n--- traceback in worker {index} ---\n{worker_traceback.rstrip()}"
        super().__init__(text)


def worker_environment(mujoco_gl: str) -> None:
    """What every env worker (a process of `EnvPool`, an actor of `RayEnvPool`) sets before it imports mujoco: the
    parent's GL backend, and one thread per worker (OMP, llvmpipe), so that W workers scale on W cores."""
    os.environ.update(MUJOCO_GL=mujoco_gl, PYOPENGL_PLATFORM=mujoco_gl, OMP_NUM_THREADS="1", LP_NUM_THREADS="1")


def build_envs(envs_spec: Sequence[tuple[int, str]], overrides: dict) -> dict[int, Any]:
    """A worker's envs ``[(env index, task)]``, each built the way every pool builds them (`pushcut.sim.make`)."""
    from pushcut.sim import make

    return {index: make(task, **overrides) for index, task in envs_spec}


class WorkerEnvs(Protocol):
    """The envs of one worker, built from ``[(env index, task)]`` and the pool's env overrides: `check` refuses bad
    tasks or options in the driver before any worker starts; `serve` answers a batch of per-env requests
    ``[(env index, method, args)]`` with ``[(env index, "ok" | "error", result | traceback)]`` (as `serve_requests`)."""

    def __init__(self, envs_spec: Sequence[tuple[int, str]], overrides: dict) -> None: ...

    @staticmethod
    def check(tasks: Sequence[str], overrides: dict) -> None: ...

    def serve(self, payload: list[tuple[int, str, tuple]]) -> list[tuple[int, str, Any]]: ...

    def close(self) -> None: ...


class EngineEnvs:
    """A worker's envs in pushcut's own worlds (MuJoCo, SAPIEN): `build_envs`, answered by `serve_requests`."""

    def __init__(self, envs_spec: Sequence[tuple[int, str]], overrides: dict) -> None:
        self.envs = build_envs(envs_spec, overrides)

    @staticmethod
    def check(tasks: Sequence[str], overrides: dict) -> None:
        check_engine_envs(tasks, overrides)

    def serve(self, payload: list[tuple[int, str, tuple]]) -> list[tuple[int, str, Any]]:
        return serve_requests(self.envs, payload)

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
        self.envs = {}


def serve_requests(envs: dict[int, Any], payload: list[tuple[int, str, tuple]]) -> list[tuple[int, str, Any]]:
    """One batch of per-env requests ``[(env index, method, args)]`` on a worker's envs, answered with
    ``[(env index, "ok" | "error", result | traceback)]``; step_chunk requests are stepped together (`_step_chunks`)."""
    replies: list[tuple[int, str, Any]] = []
    stepped = _step_chunks(envs, payload)
    for index, method, args in payload:
        env = envs[index]
        try:
            if index in stepped:
                result: Any = stepped[index]
                if isinstance(result, Exception):
                    raise result
            elif method == "reset":
                result = env.reset(seed=args[0])[0]
            else:
                attribute = getattr(env, method)
                result = attribute(*args) if callable(attribute) else attribute
            replies.append((index, "ok", result))
        except Exception:
            replies.append((index, "error", traceback.format_exc()))
    return replies


def _step_chunks(envs: dict[int, Any], payload: list[tuple[int, str, tuple]]) -> dict[int, Any]:
    """The worker's step_chunk requests, all its envs together (pushcut.sim.chunk_step: the servo work of all envs
    in one go, results exactly those of env.step_chunk per env): env index -> ChunkResult or the exception."""
    from pushcut.sim.chunk_step import step_chunks

    stepped: dict[int, Any] = {}
    for flag in (True, False):  # images_if_ended: one value per EnvPool.step_chunk call
        requests = [(i, args[0]) for i, method, args in payload if method == "step_chunk" and args[1:] == (flag,)]
        if not requests:
            continue
        try:
            results = step_chunks([envs[i] for i, _ in requests], [chunk for _, chunk in requests], flag)
        except Exception as error:  # not an env's own error (those come back per env): every request gets it
            results = [error] * len(requests)
        stepped.update((index, result) for (index, _), result in zip(requests, results, strict=True))
    return stepped


def check_engine_envs(tasks: Sequence[str], overrides: dict) -> None:
    """An unknown task or env option of pushcut's worlds is a clear error here, before a worker starts."""
    from pushcut.sim.registry import get_task, make_config

    for name in set(tasks):
        get_task(name)
    make_config(**overrides)


def pool_layout(
    task: str | Sequence[str],
    num_envs: int,
    num_workers: int | None,
    env_overrides: dict | None,
    check: Callable[[Sequence[str], dict], None] = check_engine_envs,
) -> tuple[list[str], int]:
    """Every pool's arguments checked before a worker starts: the task of each env and the number of workers
    (default one per env); ``check`` refuses the tasks and env options its worlds do not know."""
    tasks = [task] * num_envs if isinstance(task, str) else list(task)
    if num_envs < 1 or len(tasks) != num_envs:
        raise ValueError(f"num_envs={num_envs} must be >= 1 and match the number of tasks ({len(tasks)})")
    num_workers = num_envs if num_workers is None else num_workers
    if not 1 <= num_workers <= num_envs:
        raise ValueError(f"num_workers={num_workers} must be between 1 and num_envs={num_envs}")
    check(tasks, dict(env_overrides or {}))
    return tasks, num_workers


def results_in_env_order(replies: dict[int, list[tuple[int, str, Any]]], num_envs: int) -> list[Any]:
    """The replies of every worker (`serve_requests`) as one list in env order, None for an env not asked; the
    first env error (lowest env index) is raised once every reply is in, so that the workers stay in step."""
    results: dict[int, Any] = {}
    errors = []
    for w in sorted(replies):
        for index, status, payload in replies[w]:
            if status == "ok":
                results[index] = payload
            else:
                errors.append(EnvWorkerError(index, payload.strip().splitlines()[-1], worker_traceback=payload))
    if errors:
        raise min(errors, key=lambda e: e.index)
    return [results.get(i) for i in range(num_envs)]


class PoolRequests(ABC):
    """The per-env API every pool offers (`reset`, `step`, `step_chunk`, `call`), written once over the pool's own
    `_run`: requests ``{env index: (method, args)}`` in, results in env order out (None where an env was skipped)."""

    num_envs: int
    _closed: bool
    _broken: str | None

    @abstractmethod
    def _run(self, requests: dict[int, tuple[str, tuple]]) -> list[Any]:
        """Send the requests to the workers that hold those envs and return the results in env order."""

    def reset(self, seeds: Sequence[int | None]) -> list[dict[str, Any]]:
        """Reset every env with its own seed; returns the observations."""
        self._check_length(seeds, "seeds")
        return self._run({i: ("reset", (seed,)) for i, seed in enumerate(seeds)})

    def step(self, actions: np.ndarray | Sequence[np.ndarray]) -> list[tuple]:
        """One action per env, shape (N, 14); returns (obs, reward, terminated, truncated, info) per env."""
        self._check_length(actions, "actions")
        return self._run({i: ("step", (np.asarray(a),)) for i, a in enumerate(actions)})

    def step_chunk(self, chunks: Sequence[np.ndarray | None], images_if_ended: bool = True) -> list[Any]:
        """`DualPiperEnv.step_chunk` per env, (k, 14) each; a None chunk leaves that env alone and returns None.
        ``images_if_ended=False``: an episode that ends in this chunk renders no last observation."""
        self._check_length(chunks, "chunks")
        flag = bool(images_if_ended)
        return self._run({i: ("step_chunk", (np.asarray(c), flag)) for i, c in enumerate(chunks) if c is not None})

    def call(self, method_name: str, per_env_args: Sequence[tuple | None] | None = None) -> list[Any]:
        """Call `env.<method_name>(*args)` per env (None args: skip that env, result None); a non-callable attribute
        is returned as is. Arguments and results must pickle."""
        if method_name in ("close", "reset"):
            raise ValueError(f"use {type(self).__name__}.{method_name}() instead of call({method_name!r})")
        args = [()] * self.num_envs if per_env_args is None else per_env_args
        self._check_length(args, "per_env_args")
        return self._run({i: (method_name, tuple(a)) for i, a in enumerate(args) if a is not None})

    def __len__(self) -> int:
        return self.num_envs

    def _check_length(self, items: Sequence, what: str) -> None:
        if self._closed or self._broken:
            reason = self._broken or "it was closed"
            raise RuntimeError(f"{type(self).__name__} is unusable: {reason}; create a new one")
        if len(items) != self.num_envs:
            raise ValueError(f"{what} must have one entry per env ({self.num_envs}), got {len(items)}")
