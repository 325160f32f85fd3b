"""``RobotwinEnvs``: the RoboTwin envs of one Ray actor, for ``--sim robotwin --env-backend ray``
(``RayEnvPool(..., envs_kind=RobotwinEnvs)``, sim/ray_pool.py; the seam is sim/env_worker.py's ``WorkerEnvs``).

The actor starts and owns one RoboTwin worker interpreter on its node: a :class:`RobotwinPool` of the actor's envs
with one worker, so the client code is the process pool's (sim/robotwin/client.py: the interpreter from
``--robotwin-python``, else the checkout's own environment as that node has it; the Vulkan variables of
``worker_environment`` for that node's device). RayEnvPool's batches of per-env requests become the pool's calls,
and observations are mapped to pushcut's in the actor: the driver receives what a process pool returns, the same
image bytes a step (only the frames of the worker's own pipe stay on the node).

A killed actor takes its worker with it (the worker's stdin closes, it exits: sim/robotwin/worker.py); the
replacement actor starts a fresh worker and RayEnvPool replays the envs' requests on it. Seeds: each actor applies
RoboTwin's seed rule (the expert run) once per pushcut seed and reuses the resolution for its other envs and later
resets; envs of one GRPO group in different actors each resolve the seed, in parallel, to the same RoboTwin seed.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import Any

from pushcut.sim.robotwin.pool import RobotwinPool, RobotwinSettings, check_tasks, env_options, split_overrides


class RobotwinEnvs:
    """One actor's RoboTwin envs ``[(env index, task)]`` in one RoboTwin worker interpreter (module docstring)."""

    def __init__(self, envs_spec: Sequence[tuple[int, str]], overrides: dict) -> None:
        settings, rest = _settings(overrides)
        self.local = {index: k for k, (index, _) in enumerate(envs_spec)}  # env index -> index in self.pool
        self.pool = RobotwinPool([task for _, task in envs_spec], len(envs_spec), settings, rest, num_workers=1)

    @staticmethod
    def check(tasks: Sequence[str], overrides: dict) -> None:
        """What the process pool refuses before its workers start: tasks RoboTwin lacks, options it cannot do."""
        settings, rest = _settings(overrides)
        check_tasks(tasks)
        env_options(settings, rest)

    def serve(self, payload: list[tuple[int, str, tuple]]) -> list[tuple[int, str, Any]]:
        """RayEnvPool's requests, one pool call per (method, images flag): ``[(env index, status, payload)]``."""
        groups: dict[tuple[str, Any], list[tuple[int, tuple]]] = {}
        for index, method, args in payload:
            flag = args[1] if method == "step_chunk" else None
            groups.setdefault((method, flag), []).append((index, args))
        replies: dict[int, tuple[int, str, Any]] = {}
        for (method, flag), requests in groups.items():
            try:
                results = self._answer(method, flag, {self.local[i]: args for i, args in requests})
                replies.update((i, (i, "ok", results[self.local[i]])) for i, _ in requests)
            except Exception:  # the pool's call failed for the group: each of its envs gets the traceback
                text = traceback.format_exc()
                replies.update((i, (i, "error", text)) for i, _ in requests)
        return [replies[index] for index, _, _ in payload]

    def _answer(self, method: str, flag: Any, args: dict[int, tuple]) -> list[Any]:
        """One pool call for the local envs in ``args``; the results by local index."""
        every = range(self.pool.num_envs)
        if method == "reset":
            if len(args) != self.pool.num_envs:
                raise ValueError("the RoboTwin envs of one worker are reset together: send every env a seed")
            return self.pool.reset([args[k][0] for k in every])
        if method == "step_chunk":
            return self.pool.step_chunk([args[k][0] if k in args else None for k in every], bool(flag))
        return self.pool.call(method, [args.get(k) for k in every])  # RoboTwin's episode facts by name

    def close(self) -> None:
        self.pool.close()


def _settings(overrides: dict) -> tuple[RobotwinSettings, dict[str, Any]]:
    settings, rest = split_overrides(overrides)
    if settings is None:
        raise ValueError("RobotwinEnvs needs env overrides with engine 'robotwin' (--sim robotwin --robotwin-dir DIR)")
    return settings, rest
