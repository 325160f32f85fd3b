"""Smoke test of the robot benchmark (excluded by default: run with -m benchmark)."""

import pytest

from pushcut.robot.bench import run_robot_benchmarks


@pytest.mark.benchmark
def test_robot_benchmark_runs_and_reports_every_row():
    lines = []
    table = run_robot_benchmarks(seconds=0.5, ticks=400, out=lines.append)
    assert lines == [table]
    rows = table.splitlines()[2:]
    assert len(rows) == 6
    assert sum("period error" in r for r in rows) == 2 and sum("safety filter" in r for r in rows) == 2
    assert "nan" not in table
