"""Micro-batching: the model thread that turns queued infer requests from many clients into few forward passes.

The I/O thread submits prepared requests (:class:`Job`). The batcher takes the oldest and keeps collecting until it has
``max_batch`` jobs, or every active client has one in the batch (``Job.active_clients``, see
:mod:`pushcut.deploy.server.client_table`), or ``max_wait_ms`` has passed since the first job arrived or, when it
arrived during a forward pass, since that pass ended — so a lone robot never waits, and robots running in step share
one forward pass. Requests that arrive while a batch runs are queued and form the next batch, which still waits for
the active clients whose replies that pass has just sent: counting the wait from the arrival instead would close
that batch at once, and a group of robots split once (one late request) would stay split, each part with its own
forward pass, for good.

Within a batch, greedy requests run together; sampled requests without a seed run together per temperature;
a sampled request with a seed runs alone, so its actions depend only on its own inputs, temperature and seed.
A backend failure answers every job of that forward pass with ``internal`` and the batcher keeps going.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pushcut.deploy.server.backend import InferenceBackend

log = logging.getLogger("pushcut.deploy.server.batcher")


@dataclass
class Job:
    client: bytes  # ZeroMQ routing id
    envelope: list[bytes]  # frames between the routing id and the payload ([] for DEALER, [b""] for REQ)
    request_id: str | int
    prepared: Any
    temperature: float
    seed: int | None
    t_received: float  # perf_counter() when the frame arrived
    decode_ms: float
    active_clients: int = 1
    result: dict[str, Any] = field(default_factory=dict)


def _groups(jobs: list[Job]) -> list[list[Job]]:
    greedy = [j for j in jobs if j.temperature == 0.0]
    seeded = [[j] for j in jobs if j.temperature > 0.0 and j.seed is not None]
    by_temperature: dict[float, list[Job]] = {}
    for j in jobs:
        if j.temperature > 0.0 and j.seed is None:
            by_temperature.setdefault(j.temperature, []).append(j)
    return [g for g in (greedy, *seeded, *by_temperature.values()) if g]


class Batcher(threading.Thread):
    """Runs ``backend.infer`` on batches; ``done(job)`` is called for every job with ``job.result`` filled in."""

    def __init__(
        self, backend: InferenceBackend, max_batch: int, max_wait_ms: float, done: Callable[[Job], None]
    ) -> None:
        super().__init__(name="pushcut-batcher", daemon=True)
        self.backend = backend
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.done = done
        self.queue: queue.Queue[Job | None] = queue.Queue()
        self.batch_sizes: list[int] = []  # of every forward pass, for tests and statistics

    def submit(self, job: Job) -> None:
        self.queue.put(job)

    def stop(self) -> None:
        """Finish the queued jobs, then exit."""
        self.queue.put(None)
        self.join()

    def run(self) -> None:
        stopping = False
        free_since = time.perf_counter()  # when the last forward pass ended
        while not stopping:
            first = self.queue.get()
            if first is None:
                break
            batch = [first]
            deadline = max(first.t_received, free_since) + self.max_wait_s
            while len(batch) < self.max_batch:
                wanted = min(self.max_batch, max(j.active_clients for j in batch))
                timeout = deadline - time.perf_counter() if len(batch) < wanted else 0.0
                try:
                    job = self.queue.get(timeout=timeout) if timeout > 0 else self.queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            for group in _groups(batch):
                self._run(group)
            free_since = time.perf_counter()

    def _run(self, group: list[Job]) -> None:
        start = time.perf_counter()
        try:
            actions = np.asarray(
                self.backend.infer([j.prepared for j in group], temperature=group[0].temperature, seed=group[0].seed),
                dtype=np.float32,
            )
            expected = (len(group), self.backend.info.chunk, self.backend.info.action_dim)
            if actions.shape != expected:
                raise RuntimeError(f"backend returned actions of shape {actions.shape}, expected {expected}")
        except Exception as error:  # noqa: BLE001 — one failed forward pass must not end the server
            log.exception("forward pass of %d request(s) failed", len(group))
            for job in group:
                job.result = {"error": "internal", "message": f"inference failed: {type(error).__name__}: {error}"}
                self.done(job)
            return
        model_ms = (time.perf_counter() - start) * 1000.0
        self.batch_sizes.append(len(group))
        for job, chunk in zip(group, actions):
            job.result = {"actions": chunk, "model_ms": model_ms, "batch_size": len(group)}
            self.done(job)
