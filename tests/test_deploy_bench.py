"""deploy/bench.py: the serving benchmark runs end to end (marker `benchmark`; numbers go to docs/benchmarks.md)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from pushcut.deploy.bench import BenchConfig, format_table, run_bench  # noqa: E402


@pytest.mark.benchmark
def test_serve_benchmark_prints_latency_and_throughput():
    results = run_bench(BenchConfig(requests=20, warmup=3, seconds=2.0))
    table = format_table(results)
    print(table)
    throughput = results["throughput"]
    assert len(results["latency"]) == 4 and throughput["ratio"] > 0 and throughput["ceiling"]["ratio"] > 0
    assert throughput["of_ceiling"] == throughput["ratio"] / throughput["ceiling"]["ratio"]
    for row in results["latency"].values():
        assert 0 < row["model_ms_p50"] < row["round_trip_p50"] <= row["round_trip_p99"]
