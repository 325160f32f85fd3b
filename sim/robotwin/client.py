"""pushcut's side of the RoboTwin env protocol: start a worker in RoboTwin's interpreter and talk to it.

``WorkerProcess(robotwin_dir, python)`` starts ``python sim/robotwin/worker.py --robotwin-dir DIR`` (by path: pushcut
is not installed in RoboTwin's environment) with pipes for the frames of :mod:`pushcut.sim.robotwin.wire`, its
Vulkan loader pointed at a device as pushcut's own SAPIEN world finds one (:func:`worker_environment`); the
worker's stderr (RoboTwin's prints) goes to a log file whose tail is quoted when the worker fails. Every reply is
awaited with a timeout; a worker that dies or stays silent raises :class:`RobotwinWorkerError`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pushcut.sim.robotwin.wire import PROTOCOL_VERSION, WireError, read_message, write_message
from pushcut.sim.sapien.device import VulkanUnavailable, configure_vulkan

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
# Where a RoboTwin checkout's own environment usually keeps its interpreter, relative to the checkout.
PYTHON_CANDIDATES: tuple[str, ...] = (".venv/bin/python", "venv/bin/python", "env/bin/python")


class RobotwinInstallError(RuntimeError):
    """The install (or the interpreter) cannot run RoboTwin; the message is one line naming the fix."""


class RobotwinWorkerError(RuntimeError):
    """The worker failed a request, died, or did not answer in time."""

    def __init__(self, message: str, worker_traceback: str | None = None) -> None:
        self.worker_traceback = worker_traceback
        super().__init__(message)


def default_python(robotwin_dir: str | os.PathLike) -> str:
    """The interpreter of ``robotwin_dir``'s own environment where one lies in it, else ``python3``."""
    for candidate in PYTHON_CANDIDATES:
        path = Path(robotwin_dir) / candidate
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return "python3"


def worker_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: ``base`` (default: this process's), unbuffered, with the Vulkan loader and
    lavapipe's threads set as :func:`~pushcut.sim.sapien.device.configure_vulkan` sets them for pushcut's own SAPIEN
    (RoboTwin's SAPIEN renders with Vulkan too). Where no device is found the variables are left as they are:
    RoboTwin's own error then names what is missing."""
    env = {**(os.environ if base is None else base), "PYTHONUNBUFFERED": "1"}
    with contextlib.suppress(VulkanUnavailable):
        configure_vulkan(env)
    return env


class WorkerProcess:
    """One worker interpreter; ``call(kind, **fields)`` sends a request and returns its reply."""

    def __init__(self, robotwin_dir: str | os.PathLike, python: str | None = None, timeout_s: float = 600.0) -> None:
        self.robotwin_dir = Path(robotwin_dir)
        self.python = python or default_python(robotwin_dir)
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self.log = tempfile.NamedTemporaryFile(prefix="pushcut-robotwin-", suffix=".log", delete=False)  # noqa: SIM115
        env = worker_environment()
        try:
            self.proc = subprocess.Popen(
                [self.python, str(WORKER_SCRIPT), "--robotwin-dir", str(self.robotwin_dir)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, bufsize=0, env=env,
            )  # fmt: skip
        except OSError as error:
            self.log.close()
            raise RobotwinInstallError(
                f"cannot start the RoboTwin interpreter {self.python!r} ({error.strerror}): pass --robotwin-python "
                "with the python of RoboTwin's environment"
            ) from error

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, kind: str, **fields: Any) -> int:
        """Send a request; returns its id (the reply is read with :meth:`receive`)."""
        request_id = next(self._ids)
        try:
            write_message(self.proc.stdin, {"v": PROTOCOL_VERSION, "kind": kind, "id": request_id, **fields})
        except (BrokenPipeError, OSError) as error:
            raise RobotwinWorkerError(self._gone(f"cannot send {kind}: {error}")) from error
        return request_id

    def receive(self, request_id: int, timeout_s: float | None = None) -> dict[str, Any]:
        """The reply to ``request_id``; a reply with ``error`` raises (install errors as RobotwinInstallError)."""
        ready, _, _ = select.select([self.proc.stdout], [], [], self.timeout_s if timeout_s is None else timeout_s)
        if not ready:
            raise RobotwinWorkerError(self._gone(f"no reply within {timeout_s or self.timeout_s:.0f} s"))
        try:
            reply = read_message(self.proc.stdout)
        except (EOFError, WireError) as error:
            raise RobotwinWorkerError(self._gone(f"the worker's reply was cut off ({error})")) from error
        if reply.get("id") != request_id:
            raise RobotwinWorkerError(f"reply {reply.get('id')} to request {request_id}: the worker is out of step")
        if "error" in reply:
            if reply["error"] == "install":
                raise RobotwinInstallError(reply["message"])
            raise RobotwinWorkerError(f"RoboTwin worker: {reply['message']}", reply.get("traceback"))
        return reply

    def call(self, kind: str, timeout_s: float | None = None, **fields: Any) -> dict[str, Any]:
        return self.receive(self.send(kind, **fields), timeout_s)

    def log_tail(self, lines: int = 15) -> str:
        self.log.flush()
        text = Path(self.log.name).read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def _gone(self, what: str) -> str:
        code = self.proc.poll()
        state = f"exited with code {code}" if code is not None else f"pid {self.proc.pid} still running"
        tail = self.log_tail()
        if code is not None and "Error" in tail:  # an import error before the protocol began: its last line
            last = [line for line in tail.splitlines() if "Error" in line][-1].strip()
            return f"RoboTwin worker ({self.python}) {state}: {what}; {last}"
        return f"RoboTwin worker ({self.python}) {state}: {what}\n--- worker log {self.log.name} ---\n{tail}"

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the worker to close its envs and exit; kill it when it does not. Idempotent."""
        if self.proc.poll() is None:
            with contextlib.suppress(RobotwinWorkerError, RobotwinInstallError):  # a dead worker is closed already
                self.call("close", timeout_s=timeout_s)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.log.close()
