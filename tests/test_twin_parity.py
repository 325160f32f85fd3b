"""`pushcut eval twin`: the same checkpoint and seeds through `eval sim` and through the server, executor and
safety filter on the twin, paired per seed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from pushcut.trials_db.database import TrialsDB

PUSHCUT = [sys.executable, "-m", "pushcut"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PUSHCUT, *args], capture_output=True, text=True, timeout=600)


def test_the_twin_and_the_simulator_are_paired_seed_by_seed(micro_checkpoint, tmp_path):
    out = tmp_path / "parity"
    args = ["eval", "twin", "--checkpoint", str(micro_checkpoint), "--episodes", "3", "--step-limit", "6",
            "--seed-start", "1000000", "--out", str(out), "--port", "5591", "--workers", "1"]  # fmt: skip
    result = run(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "only sim" in result.stdout and "exact McNemar" in result.stdout
    parity = json.loads((out / "parity.json").read_text())
    sim = json.loads((out / "sim.json").read_text())
    assert [row["seed"] for row in parity["per_seed"]] == [1_000_000, 1_000_001, 1_000_002]
    assert parity["sim_successes"] == sim["successes"] == sum(row["sim"] for row in parity["per_seed"])
    assert parity["twin_successes"] == sum(row["twin"] for row in parity["per_seed"])
    assert parity["agreement"] + parity["only_sim"] + parity["only_twin"] == 3
    assert parity["twin"]["ticks"] > 0 and parity["twin"]["chunking"] == "sync"
    assert all(row["twin_actions"] <= 6 for row in parity["per_seed"])
    # A rerun reuses the evaluation and the finished trial session: nothing runs twice.
    stamp = (out / "sim.json").stat().st_mtime_ns
    again = run(*args, "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    assert (out / "sim.json").stat().st_mtime_ns == stamp
    assert json.loads(again.stdout)["per_seed"] == parity["per_seed"]


@pytest.mark.usefixtures("restore_render_variables")
def test_the_twin_and_the_simulator_both_run_in_sapien_with_sim_sapien(micro_checkpoint, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(micro_checkpoint, checkpoint)
    args = ["eval", "twin", "--checkpoint", str(checkpoint), "--episodes", "1", "--step-limit", "3",
            "--port", "5592", "--workers", "1", "--sim", "sapien"]  # fmt: skip
    out = checkpoint / "twin_sapien"  # the default --out of --sim sapien, beside MuJoCo's twin/
    result = run(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "click_bell in sapien, 1 seeds" in result.stdout and "1 trials on sim (sapien)" in result.stdout
    assert json.loads((out / "parity.json").read_text())["engine"] == "sapien"
    assert json.loads((out / "sim.json").read_text())["world"]["engine"] == "sapien"
    with TrialsDB(out / "twin.db") as db:
        (session,) = db.sessions()
        assert db.session_settings(session.id)["engine"] == "sapien" and session.judged == 1
    mixed = run(*args[:-1], "mujoco", "--out", str(out))  # one folder, one engine
    assert mixed.returncode == 2
    assert "was evaluated in sapien, not mujoco: give this engine its own --out" in mixed.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "ring_the_bell"], "unknown task 'ring_the_bell'"),
        (["--episodes", "0"], "--episodes and --step-limit must be positive"),
        (["--chunking", "later"], "--chunking must be 'sync' or 'async'"),
        (["--sim", "robotwin"], "--sim must be one of mujoco, sapien: the twin runs its engine in this process"),
    ],
)
def test_bad_options_are_refused_before_anything_runs(micro_checkpoint, tmp_path, args, message):
    result = run("eval", "twin", "--checkpoint", str(micro_checkpoint), "--out", str(tmp_path / "p"), *args)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "p").exists()


def test_a_directory_that_is_no_checkpoint_is_named(tmp_path):
    result = run("eval", "twin", "--checkpoint", str(tmp_path))
    assert result.returncode == 2 and f"{tmp_path} is not a checkpoint directory" in result.stderr
