"""`pushcut robot`: the operator's tools for the real arms; each tool module adds its command with ``register``."""

from __future__ import annotations

import typer

from pushcut.robot.tools import check

app = typer.Typer(help="Operator tools for the real arms (they work on the twin too): pre-flight check.",
                  no_args_is_help=True, add_completion=False)  # fmt: skip
check.register(app)
