"""The batcher's waiting policy with a backend that only sleeps (no model, no sockets): who shares a forward pass."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import numpy as np

from pushcut.deploy.server.batcher import Batcher, Job

PASS_S = 0.6  # one forward pass; longer than the wait, so a job that arrived during it has waited longer than that
WAIT_MS = 300.0


class SleepingBackend:
    """``infer`` takes PASS_S whatever the batch; ``ended`` is set when a pass ends."""

    info = SimpleNamespace(chunk=2, action_dim=14)

    def __init__(self) -> None:
        self.ended = threading.Event()

    def infer(self, prepared, temperature=0.0, seed=None):
        time.sleep(PASS_S)
        self.ended.set()
        return np.zeros((len(prepared), 2, 14), np.float32)


def job(client: bytes, active: int) -> Job:
    return Job(client, [], client.decode(), None, 0.0, None, time.perf_counter(), 0.0, active)


def test_a_request_queued_during_a_pass_waits_for_the_clients_that_pass_answers():
    """Robots a and b run in step, but b's request arrived during a's pass (they were split once). When the pass
    ends, b's request must wait for a's next one (a has its reply now) rather than run alone: else the two stay
    split, a forward pass each, for good."""
    backend = SleepingBackend()
    done: list[Job] = []
    batcher = Batcher(backend, max_batch=8, max_wait_ms=WAIT_MS, done=done.append)
    batcher.start()
    try:
        batcher.submit(job(b"a", active=1))  # a alone: runs at once
        time.sleep(PASS_S / 6)
        batcher.submit(job(b"b", active=2))  # during a's pass
        assert backend.ended.wait(10.0)
        time.sleep(0.05)  # a gets its reply and asks again
        batcher.submit(job(b"a", active=2))
        deadline = time.monotonic() + 10.0
        while len(done) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        batcher.stop()
    assert batcher.batch_sizes == [1, 2]
    assert [j.result["batch_size"] for j in done] == [1, 2, 2]


def test_a_lone_client_never_waits():
    backend = SleepingBackend()
    done: list[Job] = []
    batcher = Batcher(backend, max_batch=8, max_wait_ms=10_000.0, done=done.append)
    batcher.start()
    try:
        start = time.perf_counter()
        batcher.submit(job(b"a", active=1))
        assert backend.ended.wait(10.0)
        elapsed = time.perf_counter() - start
    finally:
        batcher.stop()
    assert elapsed < PASS_S + 2.0 and batcher.batch_sizes == [1]
