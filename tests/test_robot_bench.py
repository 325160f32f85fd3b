"""Smoke tests of the robot benchmark, and the safety filter's worst case against the geometric layer it replaced
(excluded by default: run with -m benchmark; -s prints the numbers)."""

import numpy as np
import pytest
import safety_reference

from pushcut.robot import bench
from pushcut.robot.bench import run_robot_benchmarks
from pushcut.robot.control import safety


@pytest.mark.benchmark
def test_robot_benchmark_runs_and_reports_every_row():
    lines = []
    table = run_robot_benchmarks(seconds=0.5, ticks=400, out=lines.append)
    assert lines == [table]
    rows = table.splitlines()[2:]
    assert len(rows) == 6
    assert sum("period error" in r for r in rows) == 2 and sum("safety filter" in r for r in rows) == 2
    assert "nan" not in table


@pytest.mark.benchmark
def test_worst_case_filter_against_the_reference_geometry(monkeypatch, ticks=5000, rounds=5):
    """The "arms 2-6 cm apart, no cache" row of the robot benchmark with the geometric layer of today and with the
    one before issue 25 (tests/safety_reference.py), in turns in one process; prints the p50 of each round."""
    config = safety.SafetyConfig.piper_default()
    dt = 0.005
    wave = (1 - np.cos(2 * np.pi * 0.25 * np.arange(ticks) * dt))[:, None] * bench.ARMS
    proposals = bench._arms_close(config) + 0.002 * wave
    p50 = {"reference (before issue 25)": [], "today": []}
    for _ in range(rounds):
        for name, guard in (("reference (before issue 25)", safety_reference.guard), ("today", safety.guard)):
            monkeypatch.setattr(safety, "guard", guard)
            p50[name].append(bench._time_filter(proposals, dt, config, uncached=True).wall_us.p50)
    for name, values in p50.items():
        print(f"safety filter, arms 2-6 cm apart, no cache, {name}: p50 {np.median(values):.1f} us "
              f"(rounds: {', '.join(f'{v:.0f}' for v in values)})")  # fmt: skip
    assert all(np.isfinite(v).all() for v in p50.values())
