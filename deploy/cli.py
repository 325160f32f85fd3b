"""`pushcut serve --checkpoint CKPT ...` (the policy server), `pushcut serve keys`, `pushcut serve robotwin` (the
policy folder of a RoboTwin checkout) and `pushcut serve bench`."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, invoke_without_command=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _shape(text: str) -> tuple[int, int]:
    try:
        height, width = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise typer.BadParameter(f"expected HEIGHTxWIDTH such as 240x320, got {text!r}") from None
    return height, width


def checkpoint_camera_shape(checkpoint: Path) -> tuple[int, int]:
    """(H, W) of the frames the checkpoint was trained on (recorded by SFT); RoboTwin's 240x320 for older ones."""
    from pushcut.train.checkpoint import read_metadata

    shape = read_metadata(checkpoint).get("extra", {}).get("camera_shape")
    return (int(shape[0]), int(shape[1])) if shape else (240, 320)


@app.callback()
def serve(
    ctx: typer.Context,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Checkpoint directory (e.g. RUN/latest).")
    ] = None,
    bind: Annotated[str, typer.Option("--bind", help="ZeroMQ endpoint; other than loopback only if you say so.")] = (
        "tcp://127.0.0.1:5555"
    ),
    max_batch: Annotated[int, typer.Option("--max-batch", help="Requests per forward pass.")] = 8,
    max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", help="Wait for other active clients' requests.")] = 5.0,
    device: Annotated[str | None, typer.Option("--device", help="torch device, e.g. cuda:0 (default: cpu).")] = None,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile the model's forward.")] = False,
    curve_dir: Annotated[
        Path | None, typer.Option("--curve-dir", help="Keys from `pushcut serve keys`: encrypt, allow listed clients.")
    ] = None,
    image_shape: Annotated[
        str | None,
        typer.Option("--image-shape", help="Camera HxW announced by hello (default: the training frames)."),
    ] = None,
    max_image_shape: Annotated[str, typer.Option("--max-image-shape", help="Larger images are refused.")] = "720x1280",
    max_message_mb: Annotated[float, typer.Option("--max-message-mb", help="Largest request accepted.")] = 16.0,
    log_level: Annotated[str, typer.Option("--log-level", help="debug logs every request's timings.")] = "info",
) -> None:
    """Serve a checkpoint to robots over ZeroMQ (docs/protocol.md); stop with Ctrl-C or SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    if checkpoint is None:
        _fail("--checkpoint is required (or use a sub-command: keys, robotwin, bench)")
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pushcut.deploy.server.allocator import keep_freed_memory
    from pushcut.deploy.server.backend import TorchBackend
    from pushcut.deploy.server.policy_server import PolicyServer, ServerConfig

    keep_freed_memory()  # forward passes reuse freed memory instead of faulting fresh pages in (allocator.py)
    try:
        config = ServerConfig(
            bind=bind, max_batch=max_batch, max_wait_ms=max_wait_ms,
            image_shape=_shape(image_shape) if image_shape else checkpoint_camera_shape(checkpoint),
            max_image_shape=_shape(max_image_shape), max_message_bytes=int(max_message_mb * 2**20),
            curve_dir=str(curve_dir) if curve_dir else None,
        )  # fmt: skip
        backend = TorchBackend.from_checkpoint(checkpoint, device=device, compile=compile)
        if compile:
            logging.getLogger("pushcut.deploy").info("compiling the forward pass (batch 1 and %d)", max(2, max_batch))
            backend.warm_up((1, max(2, max_batch)))
        server = PolicyServer(backend, config)
    except (ValueError, FileNotFoundError, KeyError) as error:
        _fail(str(error))
    previous = {sig: signal.signal(sig, lambda *_: server.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever()
    except Exception as error:  # noqa: BLE001 — e.g. address in use: one clear line
        _fail(f"cannot serve on {bind}: {error}")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@app.command()
def keys(
    out: Annotated[Path, typer.Option("--out", help="Directory for the key files (created).")],
    client: Annotated[list[str] | None, typer.Option("--client", help="Client name; repeat for several.")] = None,
) -> None:
    """Generate CURVE key pairs: the server's, one per client, and the server's allow-list."""
    from pushcut.deploy.client.security import AUTHORIZED_DIR, generate_keys

    try:
        written = generate_keys(out, tuple(client or ["client"]))
    except (ValueError, FileExistsError) as error:
        _fail(str(error))
    typer.echo(f"server: {written.pop('server')} (keep on the server; `pushcut serve --curve-dir {out}`)")
    for name, path in written.items():
        typer.echo(f"client {name}: {path} and {out / 'server.key'} go to the robot")
    typer.echo(f"allowed clients: {out / AUTHORIZED_DIR}/*.key")


@app.command()
def robotwin(
    robotwin_dir: Annotated[Path, typer.Option("--robotwin-dir", help="The RoboTwin checkout (has script/, policy/).")],
    name: Annotated[str, typer.Option("--name", help="Policy folder name: RoboTwin's policy_name.")] = "pushcut_policy",
    server: Annotated[str, typer.Option("--server", help="Where `pushcut serve` listens.")] = "tcp://127.0.0.1:5555",
    force: Annotated[bool, typer.Option("--force", help="Rewrite the folder's files if it exists.")] = False,
) -> None:
    """Write the policy folder through which RoboTwin evaluates a served checkpoint (policy/NAME/ in the checkout)."""
    from pushcut.deploy.client.robotwin_folder import write_policy_folder

    try:
        folder = write_policy_folder(robotwin_dir, name, server, overwrite=force)
    except (ValueError, FileExistsError) as error:
        _fail(str(error))
    typer.echo(f"wrote {folder}/ (__init__.py, deploy_policy.py, deploy_policy.yml, eval.sh)")
    typer.echo(f"then: pushcut serve --checkpoint CKPT; cd {folder}; bash eval.sh click_bell demo_clean CKPT 0 0")


@app.command()
def bench(
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Default: random tiny, 1 and 3 cameras.")
    ] = None,
    requests: Annotated[int, typer.Option(help="Timed requests per latency row.")] = 300,
    warmup: int = 20,
    clients: Annotated[int, typer.Option(help="Concurrent clients in the throughput test.")] = 4,
    seconds: Annotated[float, typer.Option(help="Duration of each throughput measurement.")] = 10.0,
    max_wait_ms: Annotated[float, typer.Option("--max-wait-ms", help="The server's batching wait.")] = 5.0,
    device: Annotated[str | None, typer.Option("--device")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Loopback latency (p50/p99) and server overhead beyond the forward pass; throughput N clients vs 1."""
    from pushcut.deploy.bench import BenchConfig, format_table, run_bench

    cfg = BenchConfig(checkpoint=str(checkpoint) if checkpoint else None, requests=requests, warmup=warmup,
                      clients=clients, seconds=seconds, max_wait_ms=max_wait_ms, device=device)  # fmt: skip
    results = run_bench(cfg)
    typer.echo(json.dumps(results, indent=1) if as_json else format_table(results))
