"""Speed benchmarks (not part of the default run): `pytest -m benchmark -s` prints the numbers.

The goals (env overhead <= 1.15x raw MuJoCo, 2 workers >= 1.8x one worker) are reported, not asserted: timing on a
shared 2-core machine is not a behaviour. docs/benchmarks.md records the measured values and the command.
"""

import pytest

from pushcut.sim.bench import format_table, run_benchmarks


@pytest.mark.benchmark
def test_sim_benchmark_prints_rates():
    results = run_benchmarks("click_bell", steps=100)
    print("\n" + format_table(results))
    assert results["env_render_sps"] > 0 and results["pool_chunk_2_sps"] > 0
