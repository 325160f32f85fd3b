"""`pushcut serve` errors are one clear line and exit code 2."""

from __future__ import annotations

import pytest
import zmq
from typer.testing import CliRunner

pytest.importorskip("torch")

from pushcut.cli import app  # noqa: E402


def serve(*args: str):
    return CliRunner().invoke(app, ["serve", *args])


def test_serve_needs_a_checkpoint_that_exists(tmp_path):
    result = serve()
    assert result.exit_code == 2 and "--checkpoint is required" in result.output
    result = serve("--checkpoint", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "does not exist" in result.output
    result = serve("--checkpoint", str(tmp_path), "--image-shape", "big")
    assert result.exit_code == 2 and "HEIGHTxWIDTH" in result.output


def test_serve_reports_an_address_in_use(micro_checkpoint):
    context = zmq.Context()
    taken = context.socket(zmq.ROUTER)
    port = taken.bind_to_random_port("tcp://127.0.0.1")
    try:
        result = serve("--checkpoint", str(micro_checkpoint), "--bind", f"tcp://127.0.0.1:{port}")
    finally:
        taken.close(0)
        context.term()
    assert result.exit_code == 2 and "cannot serve on" in result.output and "in use" in result.output
