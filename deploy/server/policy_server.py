"""The ZeroMQ policy server: one ROUTER socket, many robots, micro-batched forward passes (docs/protocol.md).

Threads: the I/O thread (``serve_forever``) owns the socket. It parses and validates every frame, answers
``hello``/``ping``/``reset`` at once, preprocesses ``infer`` requests (a bad one is answered with its own error and
never reaches a batch) and hands them to the :class:`~pushcut.deploy.server.batcher.Batcher`, whose thread runs the
model. Finished jobs come back through a queue plus a wake-up pipe and are sent by the I/O thread. Sends never block: a
client that stops reading loses its own replies (ZeroMQ high-water mark), nobody else is slowed down.

Exactly-once answers: each client (ZeroMQ routing id; the client keeps it across reconnects and the socket hands the
route over to the newest connection) has a set of request ids in flight and a small cache of its latest replies. A
resent request that is still running is not run again (its reply goes to the new connection when ready); one that
is finished is answered from the cache.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import zmq

from pushcut import __version__
from pushcut.deploy.client.protocol import (
    IMAGE_FORMATS,
    PROTOCOL_VERSION,
    ProtocolError,
    encode_array,
    error_reply,
    packb,
)
from pushcut.deploy.server.backend import InferenceBackend
from pushcut.deploy.server.batcher import Batcher, Job
from pushcut.deploy.server.client_table import ClientState, ClientTable, client_name
from pushcut.deploy.server.request_parsing import Limits, Request, parse_infer, parse_request

log = logging.getLogger("pushcut.deploy.server.policy_server")
DEFAULT_BIND = "tcp://127.0.0.1:5555"


@dataclass(frozen=True)
class ServerConfig:
    """How the server listens and batches; the limits it enforces are announced by ``hello``."""

    bind: str = DEFAULT_BIND
    max_batch: int = 8  # requests per forward pass
    max_wait_ms: float = 5.0  # how long the first request of a batch may wait for other active clients (batcher.py)
    image_shape: tuple[int, int] = (240, 320)  # (H, W) announced as expected (RoboTwin's D435); others are resized
    max_image_shape: tuple[int, int] = (720, 1280)  # larger images are refused before decoding
    max_message_bytes: int = 16 * 2**20
    max_inflight_per_client: int = 2  # more concurrent requests from one client are answered "busy"
    reply_cache: int = 16  # replies kept per client for resent requests
    max_clients: int = 1024  # least recently seen idle clients are forgotten beyond this
    active_window_s: float = 10.0  # longest gap after which a client no longer counts as active for batching
    curve_dir: str | None = None  # CURVE keys (pushcut serve keys); None = no encryption, no authentication

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_wait_ms < 0 or self.max_inflight_per_client < 1 or self.reply_cache < 1:
            raise ValueError("max_batch, max_inflight_per_client, reply_cache must be >= 1 and max_wait_ms >= 0")
        if self.max_message_bytes < 1024:
            raise ValueError(f"max_message_bytes={self.max_message_bytes} is too small (>= 1024)")
        if not all(0 < s <= m for s, m in zip(self.image_shape, self.max_image_shape)):
            raise ValueError(f"image_shape {self.image_shape} must be positive and within {self.max_image_shape}")


def is_loopback(address: str) -> bool:
    """True for ipc://, inproc:// and tcp:// on 127.0.0.0/8, ::1 or localhost."""
    if not address.startswith("tcp://"):
        return address.startswith(("ipc://", "inproc://"))
    host = address[len("tcp://") :].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a host name


class PolicyServer:
    """Serve ``backend`` on ``config.bind``: ``start()`` in a thread, or ``serve_forever()`` in this one (once per
    instance); ``stop()`` ends it. ``stats`` counts frames, request kinds, error codes, replays, dropped duplicates."""

    def __init__(self, backend: InferenceBackend, config: ServerConfig = ServerConfig()) -> None:
        self.backend = backend
        self.config = config
        info = backend.info
        self.limits = Limits(info.cameras, info.state_dim, config.max_image_shape, config.max_message_bytes)
        self.stats: Counter[str] = Counter()
        self.address: str | None = None
        self.curve = None
        self.clients = ClientTable(
            config.max_clients, config.reply_cache, config.active_window_s, tolerance_s=config.max_wait_ms / 1000.0
        )
        self._finished: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()  # the batcher's "replies ready" signal to the I/O thread
        os.set_blocking(self._wake_w, False)
        self._wake_lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._startup_error: BaseException | None = None
        self.batcher = Batcher(backend, config.max_batch, config.max_wait_ms, self._job_done)
        self._started = time.time()
        self._hello = self._hello_reply()

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout: float = 30.0) -> PolicyServer:
        """Serve in a background thread; returns once the socket is bound (``address`` is set)."""
        self._thread = threading.Thread(target=self._serve_in_thread, name="pushcut-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the server did not bind {self.config.bind} within {timeout} s")
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def _serve_in_thread(self) -> None:
        try:
            self.serve_forever()
        except BaseException:
            if self._startup_error is None:  # a startup error is raised by start() instead
                log.exception("the policy server failed")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving: queued requests are still answered, then the socket closes. Safe from any thread."""
        self._stop.set()
        self._wake()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _wake(self) -> None:
        with self._wake_lock:
            if self._wake_w is not None:
                with contextlib.suppress(BlockingIOError):  # a full pipe already means "wake up"
                    os.write(self._wake_w, b"x")

    def serve_forever(self) -> None:
        """Serve until :meth:`stop` (e.g. from a signal handler); a bind failure raises here."""
        context = zmq.Context()
        router = None
        try:
            try:
                router = self._bind(context)
                self.batcher.start()
            except BaseException as error:
                self._startup_error = error
                raise
            finally:
                self._ready.set()
            self._loop(router)
        finally:
            if self.batcher.is_alive():
                self.batcher.stop()
                if router is not None:
                    self._send_finished(router)
            if router is not None:
                router.close(linger=500)
            if self.curve is not None:
                self.curve.stop()
            context.term()
            with self._wake_lock:
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._wake_w = None
            if self.address is not None:
                log.info("policy server on %s stopped", self.address)

    def _bind(self, context: zmq.Context) -> zmq.Socket:
        router = context.socket(zmq.ROUTER)
        router.router_handover = 1  # a reconnected client (same routing id) takes over its route
        router.maxmsgsize = 4 * self.config.max_message_bytes  # beyond this the peer is disconnected unread
        router.rcvhwm = 100
        try:
            if self.config.curve_dir is not None:
                from pushcut.deploy.client.security import CurveServer

                self.curve = CurveServer(context, self.config.curve_dir)
                self.curve.apply(router)
            router.bind(self.config.bind)
        except BaseException:
            router.close(linger=0)  # else the context cannot terminate
            raise
        self.address = router.getsockopt_string(zmq.LAST_ENDPOINT)
        if not is_loopback(self.address) and self.curve is None:
            log.warning("serving on %s without CURVE: anyone who can reach it can use the policy", self.address)
        info = self.backend.info
        log.info(
            "serving %s (%s, %s) on %s: max batch %d, max wait %.1f ms%s",
            info.checkpoint_id, info.checkpoint_hash[:19], info.backend, self.address, self.config.max_batch,
            self.config.max_wait_ms, ", CURVE" if self.curve else "",
        )  # fmt: skip
        return router

    def _loop(self, router: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        while not self._stop.is_set():
            events = dict(poller.poll(500))
            if self._wake_r in events:
                os.read(self._wake_r, 4096)
            self._send_finished(router)
            for _ in range(64 if router in events else 0):  # then serve finished replies again
                try:
                    frames = router.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._handle(router, frames, time.perf_counter())

    # ------------------------------------------------------------------ requests
    def _handle(self, router: zmq.Socket, frames: list[bytes], t_received: float) -> None:
        identity, rest = frames[0], frames[1:]
        if len(rest) == 1:
            envelope, payload = [], rest[0]
        elif len(rest) == 2 and rest[0] == b"":
            envelope, payload = [b""], rest[1]
        else:
            frames_error = f"expected one frame (DEALER) or an empty frame and one frame (REQ), got {len(rest)} frames"
            self._reply_error(router, identity, [], ProtocolError("bad_message", frames_error))
            return
        client = self.clients.get(identity)
        self.stats["frames"] += 1
        try:
            request = parse_request(payload, self.limits)
        except ProtocolError as error:
            self._reply_error(router, identity, envelope, error, client)
            return
        if request.id in client.inflight:
            self.stats["duplicates_dropped"] += 1
            log.debug("request %r from %s is already running; its reply will follow", request.id, client_name(identity))
            return
        cached = client.replies.get(request.id)
        if cached is not None:
            self.stats["replayed"] += 1
            self._send(router, identity, envelope, cached)
            return
        self.stats[f"kind/{request.kind}"] += 1
        if request.kind == "infer":
            self._submit(router, identity, envelope, client, request, t_received)
            return
        if request.kind == "hello":
            reply = dict(self._hello)
        elif request.kind == "ping":
            reply = {"time": time.time(), "uptime_s": time.time() - self._started}
        else:  # reset: a new episode; the model is stateless, so only the client's reply cache is dropped
            client.episode += 1
            client.replies.clear()
            reply = {"episode": client.episode}
        self._answer(router, identity, envelope, client, request, reply)

    def _submit(self, router: zmq.Socket, identity: bytes, envelope: list[bytes], client: ClientState,
                request: Request, t_received: float) -> None:  # fmt: skip
        try:
            if len(client.inflight) >= self.config.max_inflight_per_client:
                raise ProtocolError("busy", f"{len(client.inflight)} requests of this client are still running")
            infer = parse_infer(request, self.limits)
            try:
                prepared = self.backend.prepare(infer.images, infer.state, infer.instruction)
            except (ValueError, KeyError) as error:
                raise ProtocolError("bad_input", str(error).strip("\"'")) from None
        except ProtocolError as error:
            error.kind, error.request_id = request.kind, request.id
            self._reply_error(router, identity, envelope, error, client)
            return
        except Exception as error:  # noqa: BLE001 — an unexpected failure answers this request only
            log.exception("preparing request %r failed", request.id)
            self.stats["error/internal"] += 1
            reply = error_reply("internal", f"{type(error).__name__}: {error}", "infer", request.id)
            self._send(router, identity, envelope, packb(reply))
            return
        now = time.perf_counter()
        active = self.clients.mark_infer(client)
        client.inflight.add(request.id)
        self.batcher.submit(Job(identity, envelope, request.id, prepared, infer.temperature, infer.seed, t_received,
                                (now - t_received) * 1000.0, active))  # fmt: skip

    def _job_done(self, job: Job) -> None:  # batcher thread
        self._finished.put(job)
        self._wake()

    def _send_finished(self, router: zmq.Socket) -> None:
        while True:
            try:
                job = self._finished.get_nowait()
            except queue.Empty:
                return
            result = job.result
            if "error" in result:
                reply = error_reply(result["error"], result["message"], "infer", job.request_id)
                self.stats[f"error/{result['error']}"] += 1
            else:
                server_ms = (time.perf_counter() - job.t_received) * 1000.0
                reply = {"v": PROTOCOL_VERSION, "kind": "infer", "id": job.request_id,
                         "actions": encode_array(result["actions"]), "server_ms": server_ms,
                         "model_ms": result["model_ms"], "decode_ms": job.decode_ms,
                         "batch_size": result["batch_size"]}  # fmt: skip
                log.debug(
                    "infer %r from %s: batch %d, decode %.2f ms, model %.2f ms, server %.2f ms", job.request_id,
                    client_name(job.client), result["batch_size"], job.decode_ms, result["model_ms"], server_ms,
                )  # fmt: skip
            payload = packb(reply)
            client = self.clients.get(job.client)
            client.inflight.discard(job.request_id)
            if "error" not in result:  # a failed forward pass may be retried with the same id
                self.clients.remember(client, job.request_id, payload)
            self._send(router, job.client, job.envelope, payload)

    # ------------------------------------------------------------------ replies
    def _answer(self, router: zmq.Socket, identity: bytes, envelope: list[bytes], client: ClientState,
                request: Request, body: dict[str, Any]) -> None:  # fmt: skip
        payload = packb({"v": PROTOCOL_VERSION, "kind": request.kind, "id": request.id, **body})
        self.clients.remember(client, request.id, payload)
        self._send(router, identity, envelope, payload)

    def _reply_error(self, router: zmq.Socket, identity: bytes, envelope: list[bytes], error: ProtocolError,
                     client: ClientState | None = None) -> None:  # fmt: skip
        self.stats[f"error/{error.code}"] += 1
        log.debug("refused a request from %s: %s", client_name(identity), error)
        payload = packb(error_reply(error.code, error.message, error.kind, error.request_id))
        if client is not None and error.request_id is not None and error.code != "busy":  # busy may pass on retry
            self.clients.remember(client, error.request_id, payload)
        self._send(router, identity, envelope, payload)

    def _send(self, router: zmq.Socket, identity: bytes, envelope: list[bytes], payload: bytes) -> None:
        try:
            router.send_multipart([identity, *envelope, payload], zmq.NOBLOCK)
        except zmq.Again:
            self.stats["replies_dropped"] += 1
            log.warning("client %s is not reading its replies; one was dropped", client_name(identity))

    def _hello_reply(self) -> dict[str, Any]:
        info, cfg = self.backend.info, self.config
        return {
            "protocol_version": PROTOCOL_VERSION,
            "server": f"pushcut {__version__}",
            "backend": info.backend,
            "checkpoint": {
                "id": info.checkpoint_id,
                "hash": info.checkpoint_hash,
                "step": info.step,
                "preset": info.preset,
                "tasks": list(info.tasks),
            },  # fmt: skip
            "action_dim": info.action_dim,
            "action_names": list(info.action_names),
            "action_units": "joint radians; grippers 0 (closed) .. 1 (open)",
            "state_dim": info.state_dim,
            "chunk": info.chunk,
            "action_hz": info.action_hz,
            "cameras": [{"name": c, "shape": [*cfg.image_shape, 3]} for c in info.cameras],
            "image_formats": list(IMAGE_FORMATS),
            "max_image_shape": [*cfg.max_image_shape, 3],
            "model_image_size": info.image_size,
            "instruction_required": True,
            "max_message_bytes": cfg.max_message_bytes,
            "max_batch": cfg.max_batch,
            "camera_calibration": info.camera_calibration,
        }
