"""Resumable pipeline stages for `pushcut quickstart`: each stage is one `pushcut ...` command in a subprocess.

A stage writes ``OUT/stages/<name>.json`` when it starts (status "started", its command) and again when it ends
(status "done", its seconds and summary). A rerun reuses a "done" stage whose command is unchanged; a stage that
was killed midway (status "started") runs again with its own resume (demos, SFT, GRPO and trial sessions all
resume); a stage whose command changed starts over, and every later stage with it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

NO_SPACE = "No space left on device"


class StageError(RuntimeError):
    """A stage failed or cannot start; the message says what to do (finished stages are kept)."""


@dataclass
class Stage:
    name: str
    title: str  # what the progress line says
    command: list[str]  # arguments after `pushcut`; compared between runs
    outputs: list[Path] = field(default_factory=list)  # removed when the command changed
    stdout_to: Path | None = None  # capture stdout into this file (written atomically) instead of showing it
    resume_if: Path | None = None  # when this exists at run time, "--resume" is added (not part of `command`)
    # custom runner (default: run the command): (stage, log, fresh) -> summary; fresh: not continuing a stopped run
    run: Callable[[Stage, Path, bool], dict[str, Any]] | None = None
    summarize: Callable[[], dict[str, Any]] = dict  # what the stage produced, stored in its marker


@dataclass
class StageResult:
    name: str
    reused: bool
    seconds: float
    summary: dict[str, Any]


def pushcut_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "pushcut", *args]


class Pipeline:
    """Runs stages in order, each at most once per invocation, with markers under ``out/stages``."""

    def __init__(self, out: Path, stages: list[Stage], redo: set[str] = frozenset()) -> None:
        unknown = set(redo) - {s.name for s in stages}
        if unknown:
            raise StageError(f"--redo {sorted(unknown)}: no such stage; stages are {[s.name for s in stages]}")
        self.out, self.stages, self.redo = out, stages, set(redo)
        self.markers = out / "stages"
        self.logs = out / "logs"

    def marker(self, name: str) -> dict[str, Any] | None:
        path = self.markers / f"{name}.json"
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):  # never written, or cut short by a full disk
            return None

    def _write_marker(self, name: str, record: dict[str, Any]) -> None:
        self.markers.mkdir(parents=True, exist_ok=True)
        write_atomic(self.markers / f"{name}.json", json.dumps(record, indent=1).encode())

    def run(self, echo: Callable[[str], None] = print) -> list[StageResult]:
        results: list[StageResult] = []
        invalid = False  # an earlier stage ran again: later ones cannot be reused
        for index, stage in enumerate(self.stages, start=1):
            head = f"[{index}/{len(self.stages)}] {stage.title}"
            marker = self.marker(stage.name)
            same = marker is not None and marker.get("command") == stage.command
            if same and marker["status"] == "done" and not invalid and stage.name not in self.redo:
                echo(f"{head}: reused ({marker['seconds']:.0f} s when it ran; --redo {stage.name} runs it again)")
                results.append(StageResult(stage.name, True, marker["seconds"], marker.get("summary", {})))
                continue
            reason, fresh = "", True
            stopped = marker is not None and same and marker["status"] == "started"
            if stopped and not invalid and stage.name not in self.redo:
                reason, fresh = " (continuing where it was stopped)", False
            elif marker is not None:  # start over: the old outputs belong to other settings or an older input
                reason = "" if same else " (settings changed: starting over)"
                for path in stage.outputs:
                    if path.is_dir():
                        shutil.rmtree(path)
                    else:
                        path.unlink(missing_ok=True)
            echo(head + reason)
            invalid = True
            self._write_marker(stage.name, {"status": "started", "command": stage.command, "started_at": time.time()})
            start = time.monotonic()
            summary = (stage.run or self._run_command)(stage, self.logs / f"{stage.name}.log", fresh)
            summary = {**summary, **stage.summarize()}
            seconds = time.monotonic() - start
            self._write_marker(stage.name, {"status": "done", "command": stage.command, "seconds": seconds,
                                            "summary": summary})  # fmt: skip
            echo(f"      done in {seconds:.0f} s")
            results.append(StageResult(stage.name, False, seconds, summary))
        return results

    def _run_command(self, stage: Stage, log: Path, fresh: bool) -> dict[str, Any]:
        resume = ["--resume"] if stage.resume_if is not None and stage.resume_if.exists() else []
        run_logged(pushcut_command(stage.command + resume), log, stage.name, stdout_to=stage.stdout_to)
        return {}


def run_logged(argv: list[str], log: Path, stage: str, stdout_to: Path | None = None) -> None:
    """Run ``argv``, showing its output live and keeping it in ``log``; StageError with the log's tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as log_file:
        log_file.write(f"\n$ {' '.join(argv)}\n".encode())
        log_file.flush()
        capture = stdout_to.with_name(stdout_to.name + ".partial") if stdout_to else None
        if capture:  # stdout (the result) to a file; stderr (progress, messages) shown and logged
            capture.parent.mkdir(parents=True, exist_ok=True)
            with open(capture, "wb") as captured:
                proc = subprocess.Popen(argv, stdout=captured, stderr=subprocess.PIPE)
                _relay(proc.stderr, [sys.stdout.buffer, log_file])
                code = proc.wait()
        else:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            _relay(proc.stdout, [sys.stdout.buffer, log_file])
            code = proc.wait()
    if code == 0 and capture:
        capture.replace(stdout_to)
        return
    if code != 0:
        tail = log.read_text(errors="replace")[-1500:]
        if NO_SPACE in tail or free_bytes(log.parent) < 50e6:
            raise StageError(
                f"stage {stage} stopped: the disk is full ({free_bytes(log.parent) / 1e6:.0f} MB free "
                f"under {log.parent.parent}); free some space and rerun: finished stages are kept"
            )
        raise StageError(
            f"stage {stage} failed (exit code {code}); its log: {log}\n--- last lines ---\n"
            f"{tail.strip()[-800:]}\nfix the cause and rerun: finished stages are kept"
        )


def _relay(source: BinaryIO, sinks: list[BinaryIO]) -> None:
    """Copy the child's output as it comes (progress bars included) to every sink."""
    fd = source.fileno()
    while chunk := os.read(fd, 65536):
        for sink in sinks:
            sink.write(chunk)
            sink.flush()


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def free_bytes(path: Path) -> int:
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def require_free_space(path: Path, need_bytes: float) -> None:
    """Refuse to start with less free disk than the run needs (a full disk midway wastes the stages before it)."""
    free = free_bytes(path)
    if free < need_bytes:
        raise StageError(
            f"only {free / 1e9:.2f} GB free under {path}; this run needs about {need_bytes / 1e9:.1f} "
            "GB (demonstrations, checkpoints, trial videos): free some space or choose --out elsewhere"
        )


def require_free_port(host: str, port: int) -> None:
    """The policy server's port must be free; say which port and how to choose another."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise StageError(
                f"port {port} on {host} is in use ({error.strerror}); another `pushcut serve` may be "
                f"running there: stop it, or pass --port with a free port (e.g. --port {port + 1})"
            ) from None
