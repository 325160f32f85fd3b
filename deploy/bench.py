"""`pushcut serve bench`: what the policy server costs on loopback, beyond the model's forward pass.

The server runs as its own process (``python -m pushcut serve``), as in deployment; the clients run here.
For 1 and 3 cameras at 320x240 (sim renders of click_bell, so JPEG sizes are realistic), raw and JPEG (quality 90):

- round trip p50/p99: ``PolicyClient.infer`` wall time, one client, sequential requests after a warm-up;
- server overhead p50/p99: ``server_ms - model_ms`` (frame received → reply sent, minus the forward pass: parsing,
  JPEG decoding, preprocessing, queueing, encoding);
- client overhead p50/p99: ``round trip - model_ms`` (adds client-side encoding and the loopback transport);
- throughput: requests/s of 1 client vs ``clients`` concurrent clients (1 camera, raw) for ``seconds`` each;
  the ratio is what micro-batching buys;
- its ceiling: the model's own requests/s at batch ``clients`` vs batch 1 (the served backend's forward pass on the
  same checkpoint and request, in this process while the server idles): no batching policy can gain more on this
  machine, and the server's gain is reported as a fraction of it. The three are measured in turns (4 rounds of
  ``seconds / 4`` each), so that a shared machine's changing load weighs on them alike.

Without ``--checkpoint`` the model is the ``tiny`` preset with random weights (speed does not depend on them),
saved as a checkpoint with 1 or 3 cameras. With ``--checkpoint`` only its own camera count is measured.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pushcut.deploy.client.policy_client import PolicyClient, PolicyTimeout
from pushcut.deploy.server.allocator import keep_freed_memory

CAMERAS = ("head_camera", "left_camera", "right_camera")
INSTRUCTION = "use the arm closest to the bell to press it once, then pull back"


@dataclass(frozen=True)
class BenchConfig:
    checkpoint: str | None = None
    requests: int = 300  # timed requests per latency row
    warmup: int = 20
    clients: int = 4
    seconds: float = 10.0  # per throughput measurement
    jpeg_quality: int = 90
    max_wait_ms: float = 5.0
    device: str | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_checkpoint(directory: Path, n_cameras: int) -> Path:
    """A random-weight ``tiny`` checkpoint that reads the first ``n_cameras`` of head/left/right."""
    import torch

    from pushcut.common.conventions import DEFAULT_ACTION_HZ
    from pushcut.sim.piper_spec import ACTION_NAMES
    from pushcut.train.action_tokenizer import ActionTokenizer, NormStats
    from pushcut.train.checkpoint import save_checkpoint
    from pushcut.train.model import VLAPolicy
    from pushcut.train.presets import get_preset

    torch.manual_seed(0)
    config = get_preset("tiny", cameras=CAMERAS[:n_cameras])
    stats = NormStats(low=-np.ones(config.action_dim), high=np.ones(config.action_dim))
    return save_checkpoint(directory / f"tiny_{n_cameras}cam", VLAPolicy(config), ActionTokenizer(stats, config.n_bins),
                           stats, preset="tiny", action_hz=DEFAULT_ACTION_HZ, tasks=["click_bell"], step=0,
                           action_names=ACTION_NAMES)  # fmt: skip


def sim_frames() -> dict[str, np.ndarray]:
    """320x240 RGB frames of click_bell from the three cameras."""
    from pushcut.sim import make

    env = make("click_bell", cameras=CAMERAS, image_width=320, image_height=240)
    obs, _ = env.reset(seed=0)
    env.close()
    return {c: obs["observation"][c]["rgb"] for c in CAMERAS}


class ServerProcess:
    """``python -m pushcut serve`` on a free loopback port, stopped with SIGTERM."""

    def __init__(self, checkpoint: Path, cfg: BenchConfig) -> None:
        self.address = f"tcp://127.0.0.1:{free_port()}"
        cmd = [sys.executable, "-m", "pushcut", "serve", "--checkpoint", str(checkpoint), "--bind", self.address,
               "--max-batch", str(max(8, cfg.clients)), "--max-wait-ms", str(cfg.max_wait_ms)]  # fmt: skip
        if cfg.device:
            cmd += ["--device", cfg.device]
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 — closed by stop(); a file, so the server never blocks
        self.process = subprocess.Popen(cmd, stderr=self.log, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        with PolicyClient(self.address, timeout_s=2.0, retries=0) as client:
            while True:
                try:
                    client.ping()
                    return
                except PolicyTimeout:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        self.log.seek(0)
                        output = self.log.read()[-2000:]
                        self.stop()
                        raise RuntimeError(f"the server did not start: {output}") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self.log.close()


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def latency(address: str, frames: dict[str, np.ndarray], state: np.ndarray, cfg: BenchConfig, jpeg: bool) -> dict:
    with PolicyClient(address, timeout_s=30.0, jpeg_quality=cfg.jpeg_quality if jpeg else None) as client:
        client.hello(cameras={c: f.shape[:2] for c, f in frames.items()})
        for _ in range(cfg.warmup):
            client.infer(frames, state, INSTRUCTION)
        results = [client.infer(frames, state, INSTRUCTION) for _ in range(cfg.requests)]
    rtt = [r.round_trip_ms for r in results]
    server = [r.server_ms - r.model_ms for r in results]
    client_side = [r.round_trip_ms - r.model_ms for r in results]
    return {
        "round_trip_p50": _pct(rtt, 50), "round_trip_p99": _pct(rtt, 99),
        "server_overhead_p50": _pct(server, 50), "server_overhead_p99": _pct(server, 99),
        "client_overhead_p50": _pct(client_side, 50), "client_overhead_p99": _pct(client_side, 99),
        "model_ms_p50": statistics.median(r.model_ms for r in results),
    }  # fmt: skip


def throughput(address: str, frames: dict[str, np.ndarray], state: np.ndarray, n_clients: int, seconds: float) -> dict:
    """Requests/s of ``n_clients`` threads, each with its own client, sending back to back for ``seconds``."""
    counts, results = [0] * n_clients, []
    start_barrier = threading.Barrier(n_clients + 1)
    stop_at: list[float] = []

    def worker(i: int) -> None:
        with PolicyClient(address, timeout_s=30.0) as client:
            client.infer(frames, state, INSTRUCTION)  # warm-up and connect
            start_barrier.wait()
            while time.perf_counter() < stop_at[0]:
                results.append(client.infer(frames, state, INSTRUCTION))
                counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n_clients)]
    for t in threads:
        t.start()
    stop_at.append(time.perf_counter() + 1e9)
    start_barrier.wait()
    begin = time.perf_counter()
    stop_at[0] = begin + seconds
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    return {"requests": sum(counts), "seconds": elapsed, "requests_per_s": sum(counts) / elapsed,
            "mean_batch": float(np.mean([r.batch_size for r in results])) if results else 0.0,
            "model_ms_p50": float(np.median([r.model_ms for r in results])) if results else 0.0}  # fmt: skip


class ModelAlone:
    """The server's backend (:class:`TorchBackend`: the same checkpoint, prepared request and torch settings) in this
    process, its forward pass timed at batch 1 and batch ``batch`` in turns: the model's own batching gain."""

    def __init__(self, checkpoint: Path, frames: dict[str, np.ndarray], state: np.ndarray, batch: int,
                 device: str | None) -> None:  # fmt: skip
        from pushcut.deploy.server.backend import TorchBackend

        self.backend = TorchBackend.from_checkpoint(checkpoint, device=device)
        self.prepared = self.backend.prepare(frames, state, INSTRUCTION)
        self.busy = {1: 0.0, batch: 0.0}
        self.rounds = 0
        for size in self.busy:  # warm-up
            self.backend.infer([self.prepared] * size)

    def run(self, seconds: float) -> None:
        end = time.perf_counter() + seconds
        while True:
            for size in self.busy:
                start = time.perf_counter()
                self.backend.infer([self.prepared] * size)
                self.busy[size] += time.perf_counter() - start
            self.rounds += 1
            if time.perf_counter() >= end:
                return

    def result(self) -> dict[str, Any]:
        batch = max(self.busy)
        one_s, many_s = self.busy[1], self.busy[batch]
        one, many = self.rounds / one_s, self.rounds * batch / many_s
        return {"batch": batch, "rounds": self.rounds, "forward_ms": {1: 1000 * one_s / self.rounds,
                batch: 1000 * many_s / self.rounds}, "one": {"requests_per_s": one},
                "many": {"requests_per_s": many}, "ratio": many / one}  # fmt: skip


def batching(address: str, checkpoint: Path, frames: dict[str, np.ndarray], state: np.ndarray, cfg: BenchConfig,
             rounds: int = 4) -> dict[str, Any]:  # fmt: skip
    """Throughput of 1 client vs ``cfg.clients`` and the model's own gain (:class:`ModelAlone`, while the server
    idles), in ``rounds`` turns of ``cfg.seconds / rounds`` each, so that a change of load on a shared machine
    weighs on all three alike; the server's gain as a fraction of the model's."""
    keep_freed_memory()  # as `pushcut serve` does: the same allocator settings for the model here
    alone = ModelAlone(checkpoint, frames, state, cfg.clients, cfg.device)
    windows: dict[str, list[dict]] = {"one": [], "many": []}
    for _ in range(rounds):
        alone.run(cfg.seconds / rounds)
        windows["one"].append(throughput(address, frames, state, 1, cfg.seconds / rounds))
        windows["many"].append(throughput(address, frames, state, cfg.clients, cfg.seconds / rounds))
    total = {}
    for name, runs in windows.items():
        requests = sum(w["requests"] for w in runs)
        total[name] = {"requests_per_s": requests / sum(w["seconds"] for w in runs),
                       "mean_batch": sum(w["mean_batch"] * w["requests"] for w in runs) / max(1, requests),
                       "model_ms_p50": float(np.median([w["model_ms_p50"] for w in runs]))}  # fmt: skip
    ceiling = alone.result()
    ratio = total["many"]["requests_per_s"] / total["one"]["requests_per_s"]
    return {"clients": cfg.clients, "rounds": rounds, **total, "ratio": ratio, "ceiling": ceiling,
            "of_ceiling": ratio / ceiling["ratio"]}  # fmt: skip


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    frames_all = sim_frames()
    state = np.zeros(14)
    results: dict[str, Any] = {"latency": {}, "throughput": {}}
    with tempfile.TemporaryDirectory(prefix="pushcut-serve-bench-") as tmp:
        if cfg.checkpoint:
            from pushcut.train.checkpoint import read_metadata

            checkpoints = {len(read_metadata(cfg.checkpoint)["cameras"]): Path(cfg.checkpoint)}
        else:
            checkpoints = {n: tiny_checkpoint(Path(tmp), n) for n in (1, 3)}
        for n, checkpoint in checkpoints.items():
            frames = {c: frames_all[c] for c in CAMERAS[:n]}
            server = ServerProcess(checkpoint, cfg)
            try:
                for jpeg in (False, True):
                    results["latency"][f"{n} camera(s), {'JPEG q' + str(cfg.jpeg_quality) if jpeg else 'raw'}"] = (
                        latency(server.address, frames, state, cfg, jpeg)
                    )
                if n == min(checkpoints):
                    results["throughput"] = {"cameras": n, **batching(server.address, checkpoint, frames, state, cfg)}
            finally:
                server.stop()
    return results


def format_table(r: dict[str, Any]) -> str:
    lines = [
        "| 320x240 frames | round trip p50 / p99 | server overhead p50 / p99 | client overhead p50 / p99 | model p50 |",
        "|---|---|---|---|---|",
    ]
    for name, x in r["latency"].items():
        lines.append(
            f"| {name} | {x['round_trip_p50']:.2f} / {x['round_trip_p99']:.2f} ms "
            f"| {x['server_overhead_p50']:.2f} / {x['server_overhead_p99']:.2f} ms "
            f"| {x['client_overhead_p50']:.2f} / {x['client_overhead_p99']:.2f} ms | {x['model_ms_p50']:.2f} ms |"
        )
    t = r["throughput"]
    if t:
        lines += [
            "",
            "| clients | requests/s | mean batch | forward pass p50 (server) |",
            "|---|---|---|---|",
            *(
                f"| {clients} | {x['requests_per_s']:.1f} | {x['mean_batch']:.2f} | {x['model_ms_p50']:.1f} ms |"
                for clients, x in ((1, t["one"]), (t["clients"], t["many"]))
            ),
            "",
            f"throughput {t['clients']} clients vs 1: {t['ratio']:.2f}x ({t['cameras']} camera(s), raw)",
            f"the model alone, batch {t['clients']} vs 1: {t['ceiling']['ratio']:.2f}x "
            f"({t['ceiling']['many']['requests_per_s']:.1f} vs {t['ceiling']['one']['requests_per_s']:.1f} "
            f"requests/s): the server reaches {t['of_ceiling']:.2f} of it",
        ]
    return "\n".join(lines)
