"""`RayEnvPool`: `EnvPool`'s API (the `VectorEnv` protocol) with the env workers as Ray actors on a cluster.

    with RayEnvPool("click_bell", num_envs=16, num_workers=4, address="head:6379") as pool:  # --env-backend ray
        results = pool.step_chunk(chunks)  # after pool.reset(seeds); a None chunk leaves that env alone
W actors of one CPU each, spread over the cluster's nodes (Ray's SPREAD strategy); env i lives in actor i % W.
What an actor holds is its ``envs_kind`` (`env_worker.WorkerEnvs`): by default `EngineEnvs`, envs built by
`pushcut.sim.make` exactly as a process worker builds them and answering the same batches (`serve_requests`: a
worker's chunks stepped together); for RoboTwin, `RobotwinEnvs` (sim/robotwin/actor_envs.py: the actor starts and
owns one RoboTwin worker interpreter on its node). Every call sends each actor one batch before any reply is read;
the caller gets one list in env order.

Inference stays in the caller: rollouts (train/rollout.py) batch the observations of all running envs, over all
actors, into one forward pass in the learner process (one per torchrun rank, each with its own actors), then send
each actor the chunks of its envs. Actors hold no model and move observations only (docs/ray.md: the bytes).

A dead actor (killed, out of memory, its node gone) is replaced and its envs replayed, so the caller never notices:
the pool keeps, per env, the seed of its last reset and every request since (chunks, calls: a few KB an episode),
starts a new actor, resets its envs on those seeds and plays the requests again, checks that each replayed result
has the fingerprint of the original (joints, rewards, flags; the simulation is deterministic for a seed and the
actions, tests/test_ray_pool.py), then reruns the batch that was lost. Replaying the actions, not rerunning the
episodes, is what keeps rollouts exact: the policy's samples (tokens, log-probs) and the generator's stream are
already spent on the actions played, so an episode rerun from its seed would need new samples — another episode,
and its group would differ from the one a run without the failure produces. With replay a group is neither lost nor
counted twice, and a resumed run stays a pure function of its seeds. ``max_replacements`` bounds the replacements
of a pool's life; beyond them, a reply that does not come within ``step_timeout``, or a replay that diverges, the
pool is broken like a process pool whose worker died: `EnvWorkerError`, actors killed, every later call refused.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from collections.abc import Sequence
from typing import Any

from pushcut.sim.env_worker import (
    EngineEnvs,
    EnvWorkerError,
    PoolRequests,
    WorkerEnvs,
    pool_layout,
    results_in_env_order,
    worker_environment,
)
from pushcut.sim.ray_session import acquire_session, release_session, require_cpus
from pushcut.sim.replay_log import Replacement, RequestLog, image_bytes

MAX_REPLACEMENTS = 8
RAISED_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception): ")  # a traceback's last line: "ValueError: ..."
CLOSE_TIMEOUT_S = 5.0


class EnvWorkerActor:
    """The body of one actor: a worker's envs of ``envs_kind``, built and served as a process worker's are."""

    def __init__(
        self,
        envs_kind: type[WorkerEnvs],
        envs_spec: list[tuple[int, str]],
        overrides: dict,
        driver_env: dict[str, str],
    ) -> None:
        # the node's own renderer when `ray start` was given one (MUJOCO_GL=egl ray start ...), else the driver's
        worker_environment(os.environ.get("MUJOCO_GL") or driver_env["MUJOCO_GL"])
        os.environ.update({k: v for k, v in driver_env.items() if v and k != "MUJOCO_GL"})  # the driver's own tasks
        self.envs = envs_kind(envs_spec, overrides)

    def where(self) -> dict[str, Any]:
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid()}

    def run(self, payload: list[tuple[int, str, tuple]]) -> list[tuple[int, str, Any]]:
        return self.envs.serve(payload)

    def close(self) -> None:
        self.envs.close()


class RayEnvPool(PoolRequests):
    """N environments in W Ray actors (default W = N), each holding its envs as ``envs_kind``; module docstring."""

    def __init__(
        self,
        task: str | Sequence[str],
        num_envs: int,
        env_overrides: dict | None = None,
        num_workers: int | None = None,
        address: str | None = None,
        cpus_per_worker: float = 1.0,
        start_timeout: float = 300.0,
        step_timeout: float = 300.0,
        max_replacements: int = MAX_REPLACEMENTS,
        envs_kind: type[WorkerEnvs] = EngineEnvs,
    ) -> None:
        tasks, num_workers = pool_layout(task, num_envs, num_workers, env_overrides, check=envs_kind.check)
        self.envs_kind = envs_kind
        self.num_envs, self.num_workers, self.tasks = num_envs, num_workers, tasks
        self.env_worker = [i % num_workers for i in range(num_envs)]
        self.start_timeout, self.step_timeout, self.max_replacements = start_timeout, step_timeout, max_replacements
        self.replacements: list[Replacement] = []
        self.image_bytes = 0  # camera images (uint8 arrays) received from the actors since the pool started
        self.log = RequestLog(num_envs)
        self._specs = [[(i, tasks[i]) for i in range(num_envs) if self.env_worker[i] == w] for w in range(num_workers)]
        self._overrides = dict(env_overrides or {})
        from pushcut.sim.registry import TASK_MODULES_ENV

        self._env = {
            "MUJOCO_GL": os.environ.get("MUJOCO_GL", "osmesa"),
            TASK_MODULES_ENV: os.getenv(TASK_MODULES_ENV, ""),
        }
        self._actors: list[Any] = []
        self._broken: str | None = None
        self._closed = False
        self._session = False
        acquire_session(address)
        self._session = True
        try:
            import ray

            require_cpus(num_workers * cpus_per_worker, f"{num_workers} env worker(s) of {cpus_per_worker:g} CPU")
            self._actor_class = ray.remote(EnvWorkerActor).options(
                num_cpus=cpus_per_worker, scheduling_strategy="SPREAD", max_restarts=0
            )
            self._actors = [self._new_actor(w) for w in range(num_workers)]
            self.worker_info: list[dict[str, Any]] = [{} for _ in range(num_workers)]
            for w in range(num_workers):
                self.worker_info[w] = self._started(w)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------- public API (reset, step, step_chunk and call: PoolRequests)
    def actor(self, worker: int) -> Any:
        """The Ray actor handle of a worker (for tests and operators: `ray.kill(pool.actor(0))`)."""
        return self._actors[worker]

    def close(self) -> None:
        """Close the envs, end the actors and release this process's Ray session. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._actors:
            import ray

            with contextlib.suppress(Exception):
                ray.wait([a.close.remote() for a in self._actors], num_returns=len(self._actors),
                         timeout=CLOSE_TIMEOUT_S)  # fmt: skip
            for actor in self._actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor)
            self._actors = []
        if self._session:
            self._session = False
            release_session()

    def __enter__(self) -> RayEnvPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True):
            with contextlib.suppress(Exception):
                self.close()

    # ------------------------------------------------------------------ plumbing
    def _run(self, requests: dict[int, tuple[str, tuple]]) -> list[Any]:
        batches: dict[int, list[tuple[int, str, tuple]]] = {}
        for i, (method, args) in requests.items():
            batches.setdefault(self.env_worker[i], []).append((i, method, args))
        replies = self._gather(batches)
        for reply in replies.values():
            for index, status, payload in reply:
                method, args = requests[index]
                self.log.record(index, method, args, status, payload)
                self.image_bytes += image_bytes(payload) if status == "ok" else 0
        return results_in_env_order(replies, self.num_envs)

    def _gather(self, batches: dict[int, list[tuple[int, str, tuple]]]) -> dict[int, list]:
        """Every actor's batch in flight at once; a dead actor is replaced, replayed and sent its batch again."""
        import ray
        from ray.exceptions import RayActorError, RayError

        refs = {w: self._actors[w].run.remote(batch) for w, batch in batches.items()}
        replies: dict[int, list] = {}
        deadline = time.monotonic() + self.step_timeout
        while refs:
            worker_of = {ref: w for w, ref in refs.items()}
            ready, _ = ray.wait(list(worker_of), num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                self._fail(min(refs), f"no reply within {self.step_timeout:.0f} s (actor hung, or its node is lost)")
            w = worker_of[ready[0]]
            try:
                replies[w] = ray.get(ready[0])
                del refs[w]
            except RayActorError as error:
                self._replace(w, error)
                refs[w] = self._actors[w].run.remote(batches[w])
                deadline = time.monotonic() + self.step_timeout
            except RayError as error:
                self._fail(w, f"the actor failed: {_first_line(error)}")
        return replies

    def _new_actor(self, w: int) -> Any:
        return self._actor_class.remote(self.envs_kind, self._specs[w], self._overrides, self._env)

    def _started(self, w: int) -> dict[str, Any]:
        """Wait until actor ``w`` has built its envs; where it runs."""
        import ray
        from ray.exceptions import GetTimeoutError, RayError

        try:
            return ray.get(self._actors[w].where.remote(), timeout=self.start_timeout)
        except GetTimeoutError:
            self._fail(w, f"the actor did not start within {self.start_timeout:.0f} s (no free CPU on the cluster?)")
        except RayError as error:
            self._fail(w, f"the actor could not build its envs: {_raised_line(error)}")
        raise AssertionError("unreachable")  # _fail raises

    def _replace(self, w: int, error: Exception) -> None:
        """A new actor for worker ``w`` with its envs replayed to where the dead one left them."""
        import ray
        from ray.exceptions import RayActorError

        envs = tuple(i for i, _ in self._specs[w])
        cause, start = _first_line(error), time.perf_counter()
        while True:
            if len(self.replacements) >= self.max_replacements:
                self._fail(w, f"its actor died ({cause}) after {self.max_replacements} replacements in this pool")
            with contextlib.suppress(Exception):
                ray.kill(self._actors[w])
            self._actors[w] = self._new_actor(w)
            try:
                self.worker_info[w] = self._started(w)
                replayed = self._replay(w, envs)
            except RayActorError as again:  # died again while replaying: another replacement
                self.replacements.append(Replacement(w, envs, 0, time.perf_counter() - start, cause))
                cause = _first_line(again)
                continue
            self.replacements.append(Replacement(w, envs, replayed, time.perf_counter() - start, cause))
            return

    def _replay(self, w: int, envs: tuple[int, ...]) -> int:
        """Play each env's logged requests again on the new actor, in rounds (request k of every env together);
        any result that differs from the original breaks the pool. Returns the number of requests replayed."""
        import ray
        from ray.exceptions import GetTimeoutError

        rounds = self.log.rounds(envs)
        for k, batch in enumerate(rounds):
            try:
                replies = ray.get(self._actors[w].run.remote(batch), timeout=self.step_timeout)
            except GetTimeoutError:
                self._fail(w, f"replaying its envs on a new actor took over {self.step_timeout:.0f} s")
            methods = {index: method for index, method, _ in batch}
            for index, status, payload in replies:
                if not self.log.matches(index, k, status, payload):
                    self._fail(w, f"replaying env {index} on a new actor gave another result at its request {k} "
                                  f"({methods[index]}): the episode cannot be resumed exactly")  # fmt: skip
        return sum(len(batch) for batch in rounds)

    def _fail(self, w: int, message: str) -> None:
        """Mark the pool broken, end its actors and raise, naming the worker's first env."""
        first = self._specs[w][0][0]
        if self.num_workers < self.num_envs:
            message = f"worker {w} (envs {[i for i, _ in self._specs[w]]}): {message}"
        self._broken = f"env {first}: {message}"
        self.close()
        raise EnvWorkerError(first, f"{message}; the pool is broken and was closed")


def _raised_line(error: BaseException) -> str:
    """The line naming what an actor's constructor raised (``RobotwinInstallError: ... --robotwin-python``), from
    the traceback Ray's error quotes; its first line where it quotes none."""
    raised = [line for line in str(error).splitlines() if RAISED_LINE.match(line)]
    return raised[-1].strip() if raised else _first_line(error)


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
