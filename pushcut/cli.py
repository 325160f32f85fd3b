"""The `pushcut` command. Each part of the stack adds a sub-command group; heavy imports happen inside commands."""

from __future__ import annotations

import typer

from pushcut.bench.run_all import app as bench_app
from pushcut.dashboard.cli import dashboard
from pushcut.deploy.cli import app as serve_app
from pushcut.quickstart import quickstart
from pushcut.robot.cli import app as trial_app
from pushcut.robot.tools.cli import app as robot_app
from pushcut.sim.cli import app as sim_app
from pushcut.train.cli import app as train_app
from pushcut.train.cli import eval_app
from pushcut.train.openvla.cli import app as openvla_app
from pushcut.twin_parity import twin

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="pushcut: VLA policies trained with SFT and GRPO in a dual-Piper MuJoCo world, served to real Piper arms.",
)
app.add_typer(sim_app, name="sim", help="Simulation: tasks, expert demonstrations, renders, videos, benchmarks.")
app.add_typer(train_app, name="train", help="Training: supervised fine-tuning of the token VLA.")
eval_app.command("twin")(twin)
app.add_typer(eval_app, name="eval", help="Evaluation: success in simulation; the twin vs simulation, paired.")
app.add_typer(openvla_app, name="openvla", help="Published OpenVLA-OFT checkpoints: inspect one, write a tiny one.")
app.add_typer(
    serve_app, name="serve", help="Serving: the ZeroMQ policy server for robots, CURVE keys, RoboTwin, benchmark."
)
app.add_typer(trial_app, name="trial", help="Trials: sessions of N trials on the Piper pair or its twin, to SQLite.")
app.add_typer(
    robot_app, name="robot", help="The real arms: pre-flight check, RealSense discovery, demo replay, camera alignment."
)
app.add_typer(bench_app, name="bench", help="Benchmarks: all of them in one run, the table of docs/benchmarks.md.")
app.command("quickstart")(quickstart)
app.command("dashboard")(dashboard)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
