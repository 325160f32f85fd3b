"""`pushcut eval twin`: does the deployment path execute what simulation measured? One checkpoint, the same seeds,
twice: ``pushcut eval sim`` (the simulator's own loop) and ``pushcut trial run --robot sim`` through a policy server
on loopback, the ZeroMQ client, the chunk executor and the safety filter, on the twin in real time. Both sides run
in one engine (``--sim``: MuJoCo by default, or SAPIEN; results default to ``CHECKPOINT/twin`` and
``CHECKPOINT/twin_sapien``). Paired per seed: agreement, the seeds only one side solved, the exact McNemar p; and
what the deployment path did on the way (ticks the safety filter's rate limits reshaped, ticks the execution's
profile limited, latency, actions).

Both runs are the commands a user would type (their logs and outputs in ``--out``); a rerun reuses a finished
evaluation and resumes the trial session.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from pushcut.common.conventions import EVAL_SEED_START
from pushcut.local_server import local_server
from pushcut.sim.world import ENGINES
from pushcut.sim.world_options import SimOption
from pushcut.stages import StageError, pushcut_command, run_logged

LABEL, OPERATOR = "parity", "eval-twin"


@dataclass(frozen=True)
class TwinStats:
    """What the deployment path did over the judged trials (sums and means over trials)."""

    ticks: int
    smoothed_ticks: int  # ticks the safety filter's rate limits reshaped (routine)
    actions_mean: float
    latency_p50_ms_mean: float | None
    chunking: str
    seconds_per_action: float  # trial wall time / actions played (the simulator's: 1 / action_hz)
    interventions: int  # safety events (joint limit, workspace, arm distance, holds, faults) over all trials

    @property
    def smoothed_share(self) -> float:
        return self.smoothed_ticks / self.ticks if self.ticks else 0.0


def run_sim(checkpoint: Path, task: str, episodes: int, seed_start: int, step_limit: int | None, workers: int,
            engine: str, out: Path) -> dict[str, Any]:  # fmt: skip
    result = out / "sim.json"
    if not result.exists():
        command = ["eval", "sim", "--checkpoint", str(checkpoint), "--task", task, "--episodes", str(episodes),
                   "--workers", str(workers), "--seed-start", str(seed_start), "--sim", engine, "--json"]  # fmt: skip
        if step_limit is not None:
            command += ["--step-limit", str(step_limit)]
        run_logged(pushcut_command(command), out / "logs" / "eval_sim.log", "eval sim", stdout_to=result)
    evaluation = json.loads(result.read_text())
    evaluated = evaluation.get("world", {}).get("engine", "mujoco")
    if evaluated != engine:
        raise StageError(f"{result} was evaluated in {evaluated}, not {engine}: give this engine its own --out")
    return evaluation


def run_twin(checkpoint: Path, task: str, episodes: int, seed_start: int, step_limit: int | None, port: int,
             chunking: str, engine: str, out: Path) -> tuple[list[dict[str, Any]], TwinStats]:  # fmt: skip
    from pushcut.trials_db.database import TrialsDB

    db = out / "twin.db"
    command = ["trial", "run", "--robot", "sim", "--sim", engine, "--task", task, "--checkpoint-label", LABEL,
               "--operator", OPERATOR, "--trials", str(episodes), "--seed-start", str(seed_start), "--db", str(db),
               "--no-video", "--chunking", chunking, "--timeout", "30"]  # fmt: skip
    if step_limit is not None:
        command += ["--max-actions", str(step_limit)]
    if not _finished(db, task, episodes):  # otherwise the runner resumes the session where it stopped
        with local_server(checkpoint, port, out / "logs" / "server.log") as server:
            argv = pushcut_command(command + ["--server", server.address])
            run_logged(argv, out / "logs" / "trial_run.log", "trials")
    with TrialsDB(db) as database:
        session = database.find_session(task, LABEL, OPERATOR, "sim")
        if session is None:
            raise StageError(f"the trial run left no session in {db}")
        trials = [t for t in database.trials(session.id) if t["outcome"] in ("success", "failure")]
    per_seed = [{"seed": t["seed"], "success": t["outcome"] == "success", "actions": t["actions"]} for t in trials]
    latencies = [t["latency_p50_ms"] for t in trials if t["latency_p50_ms"] is not None]
    stats = TwinStats(
        ticks=sum(t["ticks"] for t in trials), smoothed_ticks=sum(t["smoothed_ticks"] for t in trials),
        actions_mean=sum(t["actions"] for t in trials) / max(1, len(trials)),
        latency_p50_ms_mean=sum(latencies) / len(latencies) if latencies else None, chunking=chunking,
        seconds_per_action=sum(t["duration_s"] for t in trials) / max(1, sum(t["actions"] for t in trials)),
        interventions=sum(t["safety_event_count"] for t in trials),
    )  # fmt: skip
    return per_seed, stats


def _finished(db: Path, task: str, episodes: int) -> bool:
    from pushcut.trials_db.database import TrialsDB

    if not db.exists():
        return False
    with TrialsDB(db) as database:
        session = database.find_session(task, LABEL, OPERATOR, "sim")
    return session is not None and session.judged >= episodes


def twin(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="Checkpoint directory (e.g. runs/grpo/latest).")],
    task: Annotated[str, typer.Option("--task", help="Task name (see `pushcut sim tasks`).")] = "click_bell",
    episodes: Annotated[int, typer.Option("--episodes", help="Seeds, run once each way.")] = 100,
    seed_start: Annotated[int, typer.Option("--seed-start", help="First seed (default: EVAL_SEED_START).")] = (
        EVAL_SEED_START
    ),
    step_limit: Annotated[
        int | None, typer.Option("--step-limit", help="Actions per episode (default: the task's).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Results and logs (default: CHECKPOINT/twin).")] = None,
    port: Annotated[int, typer.Option("--port", help="Loopback port of the policy server.")] = 5556,
    workers: Annotated[int, typer.Option("--workers", help="eval sim's worker processes.")] = 2,
    chunking: Annotated[str, typer.Option("--chunking", help="The twin's executor: 'sync' or 'async'.")] = "sync",
    sim: SimOption = "mujoco",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """The twin vs simulation on the same seeds, paired: does deployment execute what evaluation measured?"""
    from pushcut.sim.registry import task_names
    from pushcut.train.evaluate import compare_paired

    def fail(message: str) -> None:
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2)

    if task not in task_names():
        fail(f"unknown task {task!r}; expected one of {', '.join(task_names())}")
    if not (checkpoint / "pushcut_checkpoint.json").exists() and not (checkpoint / "config.json").exists():
        fail(f"{checkpoint} is not a checkpoint directory (no pushcut_checkpoint.json or config.json)")
    if episodes < 1 or (step_limit is not None and step_limit < 1):
        fail(f"--episodes and --step-limit must be positive, got {episodes}, {step_limit}")
    if chunking not in ("sync", "async"):
        fail(f"--chunking must be 'sync' or 'async', got {chunking!r}")
    if sim not in ENGINES:
        fail(f"--sim must be one of {', '.join(ENGINES)}: the twin runs its engine in this process, got {sim!r}")
    out = out or checkpoint / ("twin" if sim == "mujoco" else f"twin_{sim}")
    out.mkdir(parents=True, exist_ok=True)
    try:  # with --json the stages' progress goes to stderr, the result alone to stdout
        with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
            evaluation = run_sim(checkpoint, task, episodes, seed_start, step_limit, workers, sim, out)
            twin_seeds, stats = run_twin(checkpoint, task, episodes, seed_start, step_limit, port, chunking, sim, out)
    except StageError as error:
        fail(str(error))
    paired = compare_paired(evaluation["per_seed"], twin_seeds)
    result = {
        "checkpoint": str(checkpoint), "task": task, "engine": sim, "episodes": episodes, "seed_start": seed_start,
        "step_limit": step_limit, "sim_successes": paired.successes_a, "twin_successes": paired.successes_b,
        "agreement": paired.n - paired.only_a - paired.only_b, "only_sim": paired.only_a, "only_twin": paired.only_b,
        "mcnemar_p": paired.p, "twin": {**asdict(stats), "smoothed_share": stats.smoothed_share},
        "per_seed": [{"seed": s["seed"], "sim": s["success"], "twin": t["success"], "twin_actions": t["actions"]}
                     for s, t in zip(sorted(evaluation["per_seed"], key=lambda o: o["seed"]),
                                     sorted(twin_seeds, key=lambda o: o["seed"]))],
    }  # fmt: skip
    (out / "parity.json").write_text(json.dumps(result, indent=2) + "\n")
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    n = paired.n
    latency = "-" if stats.latency_p50_ms_mean is None else f"{stats.latency_p50_ms_mean:.0f} ms"
    typer.echo(f"{task} in {sim}, {n} seeds from {seed_start}, step limit {step_limit or 'the task default'}, "
               f"{checkpoint}")  # fmt: skip
    typer.echo(f"  eval sim            {paired.successes_a}/{n}")
    typer.echo(f"  twin ({chunking:5s})        {paired.successes_b}/{n}   mean {stats.actions_mean:.1f} actions, "
               f"latency p50 {latency}, {1000 * stats.seconds_per_action:.0f} ms per action, filter reshaped "
               f"{stats.smoothed_share:.1%} of {stats.ticks} ticks, {stats.interventions} interventions")  # fmt: skip
    typer.echo(f"  paired              agree on {result['agreement']}, only sim {paired.only_a}, only twin "
               f"{paired.only_b}, exact McNemar p = {paired.p:.3g}")  # fmt: skip
    typer.echo(f"  written to {out / 'parity.json'}")
