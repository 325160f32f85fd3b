"""The torch-free policy client the robot uses (numpy, pyzmq, msgpack; OpenCV only for optional JPEG).

    client = PolicyClient("tcp://gpu-box:5555", timeout_s=2.0)
    info = client.hello(cameras={"head_camera": (240, 320)}, state_dim=14)   # ProtocolMismatch if incompatible
    result = client.infer({"head_camera": rgb}, joints, "press the bell")   # result.actions: (chunk, 14) float32
    future = client.request_async(images, joints, instruction)              # background prefetch

Every call has a timeout, and no socket operation can block longer: the socket's send and receive timeouts
(``ZMQ_SNDTIMEO``, ``ZMQ_RCVTIMEO``) are the call's. Lazy Pirate: when no reply arrives in ``timeout_s`` the DEALER
socket is closed and reopened (same routing id, so the server hands the route over) and the request is resent once
with the *same* request id; the server never runs or answers an id twice, and stale replies are dropped here by id.
After the retries :class:`PolicyTimeout` is raised and the socket is fresh for the next call. Server refusals are
:class:`PolicyError` (with the protocol ``code``); an incompatible server or version is :class:`ProtocolMismatch`.

A client the server's CURVE allow-list rejects gets no reply and no error from ZeroMQ: the handshake fails, the
connection is dropped and never retried, and a send on that socket would wait for a peer forever without the send
timeout. So every call ends in :class:`PolicyTimeout` after ``timeout_s`` x (``retries`` + 1), like a server that is
down (docs/protocol.md, section 8).

The client is thread-safe: calls are serialised on one socket (``request_async`` runs them on one worker thread).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from pushcut.deploy.client.protocol import PROTOCOL_VERSION, decode_array, encode_array, encode_image, packb, unpackb
from pushcut.deploy.client.security import ClientKeys

DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"


class PolicyTimeout(TimeoutError):
    """No reply within the timeout, after the retries."""


class PolicyError(RuntimeError):
    """The server refused or failed a request; ``code`` is a protocol error code (docs/protocol.md)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ProtocolMismatch(PolicyError):
    """The server speaks another protocol version, or serves a policy this robot cannot feed."""


@dataclass(frozen=True)
class ServerInfo:
    """The ``hello`` reply, with the fields a robot checks typed out (``raw`` has everything)."""

    protocol_version: int
    checkpoint_id: str
    checkpoint_hash: str
    action_dim: int
    state_dim: int
    chunk: int
    action_hz: float
    cameras: dict[str, tuple[int, int, int]]  # expected camera -> (H, W, 3)
    max_image_shape: tuple[int, int, int]
    max_message_bytes: int
    raw: dict[str, Any] = field(repr=False)
    # provenance of the head-camera calibration the policy was trained with (file hash, camera serial, ...); None
    # when it was trained on the default simulated viewpoint or the server predates it
    camera_calibration: dict[str, Any] | None = None

    @classmethod
    def from_reply(cls, reply: dict[str, Any]) -> ServerInfo:
        try:
            return cls(
                protocol_version=int(reply["protocol_version"]),
                checkpoint_id=str(reply["checkpoint"]["id"]),
                checkpoint_hash=str(reply["checkpoint"]["hash"]),
                action_dim=int(reply["action_dim"]),
                state_dim=int(reply["state_dim"]),
                chunk=int(reply["chunk"]),
                action_hz=float(reply["action_hz"]),
                cameras={str(c["name"]): tuple(int(x) for x in c["shape"]) for c in reply["cameras"]},
                max_image_shape=tuple(int(x) for x in reply["max_image_shape"]),
                max_message_bytes=int(reply["max_message_bytes"]),
                raw=reply,
                camera_calibration=calibration if isinstance(calibration := reply.get("camera_calibration"), dict)
                else None,
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as error:
            raise ProtocolMismatch("version_mismatch", f"unexpected hello reply ({error!r})") from None

    def check(
        self, cameras: Mapping[str, tuple[int, int]] | Iterable[str] | None = None, state_dim: int | None = None
    ) -> None:
        """ProtocolMismatch unless the robot's cameras (names, or name -> (H, W)) and state fit this policy."""
        if self.action_dim != 14:
            raise ProtocolMismatch("bad_input", f"the policy outputs {self.action_dim}-D actions; Piper pairs need 14")
        if state_dim is not None and state_dim != self.state_dim:
            raise ProtocolMismatch(
                "bad_input", f"the robot sends {state_dim}-D states, the policy needs {self.state_dim}"
            )
        if cameras is None:
            return
        have = dict(cameras) if isinstance(cameras, Mapping) else dict.fromkeys(cameras)
        missing = [c for c in self.cameras if c not in have]
        if missing:
            raise ProtocolMismatch("bad_input", f"the policy needs camera(s) {missing}; the robot has {sorted(have)}")
        for name, hw in have.items():
            if hw is not None and (hw[0] > self.max_image_shape[0] or hw[1] > self.max_image_shape[1]):
                raise ProtocolMismatch(
                    "too_large", f"camera {name} is {hw[0]}x{hw[1]}; the server accepts at most "
                    f"{self.max_image_shape[0]}x{self.max_image_shape[1]}",
                )  # fmt: skip


@dataclass(frozen=True)
class InferResult:
    actions: np.ndarray  # float32 (chunk, 14): joint radians, grippers 0..1
    request_id: str
    server_ms: float  # frame received -> reply sent, on the server
    model_ms: float  # the forward pass of the batch this request was in
    round_trip_ms: float  # measured here, including any retry
    batch_size: int


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0  # resends after a timeout (each with a socket rebuild)
    stale_replies: int = 0  # replies to an earlier request id, dropped


def _set_timeouts(sock: zmq.Socket, timeout_s: float) -> None:
    """Bound every send and receive on ``sock`` by ``timeout_s`` (zmq.Again after it)."""
    sock.sndtimeo = sock.rcvtimeo = max(1, int(timeout_s * 1000))


class PolicyClient:
    def __init__(
        self,
        address: str = DEFAULT_ADDRESS,
        *,
        timeout_s: float = 5.0,
        retries: int = 1,
        jpeg_quality: int | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        if timeout_s <= 0 or retries < 0:
            raise ValueError(f"timeout_s must be > 0 and retries >= 0, got {timeout_s}, {retries}")
        if jpeg_quality is not None and not 1 <= jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in 1..100 or None (raw images), got {jpeg_quality}")
        self.address = address
        self.timeout_s = timeout_s
        self.retries = retries
        self.jpeg_quality = jpeg_quality
        self.curve = curve
        self.info: ServerInfo | None = None
        self.stats = ClientStats()
        self._session = os.urandom(6).hex()
        self._routing_id = b"pushcut-" + self._session.encode()
        self._counter = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()  # set by close(): a call waiting for a reply gives up at once
        self._context = zmq.Context()
        self._socket: zmq.Socket | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._connect()

    # ------------------------------------------------------------------ socket
    def _connect(self) -> None:
        sock = self._context.socket(zmq.DEALER)
        sock.routing_id = self._routing_id
        sock.linger = 0
        _set_timeouts(sock, self.timeout_s)
        if self.curve is not None:
            self.curve.apply(sock)
        sock.connect(self.address)
        self._socket = sock

    def _reconnect(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
        self._connect()

    def close(self) -> None:
        """Close the socket (pending replies are dropped; a call waiting for one raises PolicyTimeout at once, so a
        dead server never delays shutting down); safe to call twice."""
        if self._context.closed:
            return
        self._closing.set()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            if self._socket is not None:
                self._socket.close(linger=0)
                self._socket = None
        self._context.term()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls
    def _request(self, kind: str, body: dict[str, Any], timeout_s: float | None) -> dict[str, Any]:
        timeout = self.timeout_s if timeout_s is None else timeout_s
        with self._lock:
            if self._socket is None:
                raise RuntimeError("the client is closed")
            self._counter += 1
            request_id = f"{self._session}-{self._counter}"
            payload = packb({"v": PROTOCOL_VERSION, "kind": kind, "id": request_id, **body})
            if self.info is not None and len(payload) > self.info.max_message_bytes:
                raise ValueError(f"request of {len(payload)} bytes exceeds the server's {self.info.max_message_bytes}")
            self.stats.requests += 1
            for attempt in range(self.retries + 1):
                if attempt:
                    self.stats.retries += 1
                    self._reconnect()
                _set_timeouts(self._socket, timeout)
                try:
                    self._socket.send(payload)
                except zmq.Again:
                    continue
                reply = self._wait_for(request_id, time.monotonic() + timeout)
                if reply is not None:
                    return self._check(kind, reply)
            self._reconnect()  # a late reply must not sit in the next call's way
        raise PolicyTimeout(f"no reply from {self.address} to {kind} {request_id} within {timeout} s "
                            f"({self.retries + 1} attempt(s))")  # fmt: skip

    def _wait_for(self, request_id: str, deadline: float) -> dict[str, Any] | None:
        while (remaining := deadline - time.monotonic()) > 0:
            if self._closing.is_set():
                raise PolicyTimeout(f"the client was closed while waiting for {request_id} from {self.address}")
            if not self._socket.poll(max(1, int(min(remaining, 0.1) * 1000))):  # slices: notice close() quickly
                continue
            frame = self._socket.recv()
            try:
                reply = unpackb(frame, max_bytes=1 << 30)
            except Exception as error:  # noqa: BLE001
                raise ProtocolMismatch("bad_message", f"unreadable reply from the server: {error}") from None
            # A reply without id is the server's answer to a frame it could not read: ours, the only one in flight.
            if reply.get("id") == request_id or (reply.get("id") is None and "error" in reply):
                return reply
            self.stats.stale_replies += 1
        return None

    @staticmethod
    def _check(kind: str, reply: dict[str, Any]) -> dict[str, Any]:
        if "error" in reply:
            code, message = str(reply["error"]), str(reply.get("message", ""))
            raise (ProtocolMismatch if code == "version_mismatch" else PolicyError)(code, message)
        if reply.get("v") != PROTOCOL_VERSION:
            raise ProtocolMismatch(
                "version_mismatch", f"the server replied with protocol version {reply.get('v')!r}, "
                f"this client speaks {PROTOCOL_VERSION}",
            )  # fmt: skip
        if reply.get("kind") != kind:
            raise ProtocolMismatch("bad_message", f"expected a {kind} reply, got kind {reply.get('kind')!r}")
        return reply

    def hello(
        self, cameras: Mapping[str, tuple[int, int]] | Iterable[str] | None = None, state_dim: int | None = None,
        timeout_s: float | None = None,
    ) -> ServerInfo:  # fmt: skip
        """The server's metadata, checked against what this robot will send (see :meth:`ServerInfo.check`)."""
        info = ServerInfo.from_reply(self._request("hello", {}, timeout_s))
        if info.protocol_version != PROTOCOL_VERSION:
            raise ProtocolMismatch(
                "version_mismatch", f"server protocol {info.protocol_version}, ours {PROTOCOL_VERSION}"
            )
        info.check(cameras, state_dim)
        self.info = info
        return info

    def infer(
        self,
        images: Mapping[str, np.ndarray],
        state: np.ndarray,
        instruction: str,
        *,
        temperature: float = 0.0,
        seed: int | None = None,
        timeout_s: float | None = None,
    ) -> InferResult:
        """One action chunk for one observation (RGB uint8 (H, W, 3) per camera, 14-D joint state)."""
        start = time.perf_counter()
        body: dict[str, Any] = {
            "images": {name: encode_image(img, self.jpeg_quality) for name, img in images.items()},
            "state": encode_array(np.asarray(state, dtype=np.float64)),
            "instruction": instruction,
            "temperature": float(temperature),
        }
        if seed is not None:
            body["seed"] = int(seed)
        reply = self._request("infer", body, timeout_s)
        try:
            actions = decode_array(reply["actions"], "actions", dtypes=("<f4",), ndim=2).copy()
            return InferResult(actions, str(reply["id"]), float(reply["server_ms"]), float(reply["model_ms"]),
                               (time.perf_counter() - start) * 1000.0, int(reply["batch_size"]))  # fmt: skip
        except Exception as error:  # noqa: BLE001
            raise ProtocolMismatch("bad_message", f"malformed infer reply: {error}") from None

    def request_async(
        self, images: Mapping[str, np.ndarray], state: np.ndarray, instruction: str, **kwargs: Any
    ) -> Future[InferResult]:
        """:meth:`infer` on a background thread (prefetch the next chunk while this one executes)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pushcut-client")
        return self._executor.submit(self.infer, images, state, instruction, **kwargs)

    def reset(self, timeout_s: float | None = None) -> int:
        """Start a new episode; returns the episode number the server counts for this client."""
        return int(self._request("reset", {}, timeout_s)["episode"])

    def ping(self, timeout_s: float | None = None) -> float:
        """Round trip in milliseconds."""
        start = time.perf_counter()
        self._request("ping", {}, timeout_s)
        return (time.perf_counter() - start) * 1000.0
