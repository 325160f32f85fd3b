"""A policy server on loopback for the length of a ``with`` block: ``pushcut serve`` in its own process, as a user
would start it, answered ``hello`` before the block runs, stopped (SIGINT, then kill) after it.

    with local_server(checkpoint, port=5555, log=out / "server.log") as server:
        run(["trial", "run", "--server", server.address, ...])
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pushcut.stages import StageError, pushcut_command, require_free_port

HOST = "127.0.0.1"
SERVER_START_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class LocalServer:
    address: str  # tcp://127.0.0.1:PORT
    checkpoint_hash: str  # what the server's hello announced
    log: Path


@contextmanager
def local_server(checkpoint: Path, port: int, log: Path) -> Iterator[LocalServer]:
    """Serve ``checkpoint`` on ``127.0.0.1:port`` (its output appended to ``log``) until the block ends."""
    require_free_port(HOST, port)
    log.parent.mkdir(parents=True, exist_ok=True)
    address = f"tcp://{HOST}:{port}"
    with open(log, "ab") as out:
        server = subprocess.Popen(pushcut_command(["serve", "--checkpoint", str(checkpoint), "--bind", address]),
                                  stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield LocalServer(address, wait_for_server(server, address, log), log)
    finally:
        stop_server(server)


def wait_for_server(server: subprocess.Popen, address: str, log: Path) -> str:
    """Poll ``hello`` until the server answers; its checkpoint hash. StageError with its log if it exits first."""
    from pushcut.deploy.client.policy_client import PolicyClient, PolicyTimeout

    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace").strip()[-600:]
            raise StageError(f"the policy server exited (code {server.returncode}) before answering; its log "
                             f"{log}:\n{tail}")  # fmt: skip
        client = PolicyClient(address, timeout_s=2.0, retries=0)
        try:
            return client.hello(state_dim=14).checkpoint_hash
        except PolicyTimeout:
            continue
        finally:
            client.close()
    raise StageError(
        f"the policy server did not answer at {address} within {SERVER_START_TIMEOUT_S:.0f} s; its log: {log}"
    )


def stop_server(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
