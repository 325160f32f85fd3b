"""`pushcut dashboard --db trials.db`: the Streamlit dashboard of trial outcomes (dashboard/app.py), headless.
Errors (no database, port taken, a database the dashboard cannot read) are one line and exit code 2."""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

APP = Path(__file__).with_name("app.py")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def port_problem(host: str, port: int) -> str | None:
    """Why Streamlit could not listen on ``host:port`` (None when it can)."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Streamlit's server: TIME_WAIT is fine
            sock.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            return f"port {port} on {host} is already in use (another dashboard?); pick another with --port"
        return f"cannot listen on {host}:{port} ({error.strerror or error})"
    return None


def streamlit_command(db: Path, host: str, port: int, align_dir: Path | None = None) -> list[str]:
    """The `streamlit run` command line: headless, no usage statistics, the database (and the camera-alignment
    folder) after `--`."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host, "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
        "--", "--db", str(db.resolve()),
    ] + (["--align-dir", str(align_dir.resolve())] if align_dir is not None else [])  # fmt: skip


def dashboard(
    db: Annotated[Path, typer.Option("--db", help="The SQLite trial database written by `pushcut trial run`.")],
    port: Annotated[int, typer.Option("--port", help="Port to serve the page on.")] = 8501,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (loopback by default).")] = "127.0.0.1",
    align_dir: Annotated[
        Path | None,
        typer.Option("--align-dir", help="Also show the live camera alignment of `pushcut robot align --live --out`."),
    ] = None,
) -> None:
    """The dashboard of trial outcomes: sessions, success rates with Wilson intervals, comparisons, trial videos."""
    from pushcut.dashboard.data import database_problem

    if not db.exists():
        _fail(f"no trial database at {db} (`pushcut trial run --db {db} ...` creates it)")
    problem = database_problem(db)
    if problem:
        _fail(problem)
    problem = port_problem(host, port)
    if problem:
        _fail(problem)
    typer.echo(f"dashboard of {db} on http://{host}:{port} (Ctrl+C stops it)")
    sys.stdout.flush()
    if align_dir is not None and not align_dir.is_dir():
        _fail(f"--align-dir {align_dir} is not a folder (`pushcut robot align --live --out {align_dir}` makes it)")
    command = streamlit_command(db, host, port, align_dir)
    os.execv(command[0], command)  # Streamlit replaces this process: signals (Ctrl+C, SIGTERM) reach it directly
