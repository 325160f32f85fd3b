"""`pushcut sim bench`: how fast the simulation runs, against raw MuJoCo on the same scene.

Measured (a control step = one action = 1/action_hz s of physics):
- raw_render_sps: the same model stepped by `mujoco.mj_step(nstep=substeps)` + `Renderer.render` of the head camera
  at 320x240 — the baseline;
- env_render_sps: `DualPiperEnv.step` with the head camera rendered (target ramp, speed limit, success check,
  observation dict with camera matrices and end poses); env_overhead_render = raw rate / env rate;
- raw_physics_sps / env_physics_sps: the same without rendering (env: `_advance`, no observation);
- machine_ceiling_speedup: the same pure-Python loop in 2 processes vs 1, what this machine allows right now;
- pool_step_{1,2}_sps: `EnvPool.step` (one action per call, head camera rendered every step) with 1 and 2 worker
  processes; pool_chunk_{1,2}_sps: `EnvPool.step_chunk` with 25-action chunks and the head camera rendered once per
  chunk, the way rollouts use the pool. Speed-ups are 2 workers vs 1.
Each rate is the best of `rounds` interleaved measurements, so that a burst of load from elsewhere on a shared
machine does not decide the ratio. The arms track a slow sinusoid so the physics has work to do.

With engine "sapien" the same keys measure SAPIEN (raw: SAPIEN's own calls on the env's scene, sim/sapien/bench.py)
and the pool runs SAPIEN workers; mujoco_env_{render,physics}_sps add MuJoCo's env on the same task, and
sapien_vs_mujoco_{render,physics} are SAPIEN's env rate over MuJoCo's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from pushcut.sim import piper_spec as spec
from pushcut.sim.env import DualPiperEnv
from pushcut.sim.world import ENGINES

CHUNK = 25
NO_STEP_LIMIT = 10**9  # no episode may end inside a measurement


def wave_actions(start: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` actions from ``start``: the arms follow a slow sinusoid (opposite on the two sides)."""
    t = np.arange(steps)[:, None]
    wave = 0.15 * np.sin(2 * np.pi * t / 40.0)
    actions = np.repeat(start[None], steps, axis=0)
    actions[:, spec.LEFT_ARM_SLICE] += wave
    actions[:, spec.RIGHT_ARM_SLICE] -= wave
    return actions


def steps_per_second(fn: Callable[[int], object], steps: int) -> float:
    """Control steps per second of `fn(i)` over i in range(steps)."""
    start = time.perf_counter()
    for i in range(steps):
        fn(i)
    return steps / (time.perf_counter() - start)


def _raw_mujoco(env: DualPiperEnv, closers: list[Callable[[], None]]) -> Callable[[np.ndarray, bool], None]:
    """MuJoCo's own calls on the env's model: ``mj_step(nstep=substeps)`` and the head camera's ``Renderer``."""
    import mujoco

    model, data = env.model, env.data
    renderer = mujoco.Renderer(model, env.config.image_height, env.config.image_width)
    closers.append(renderer.close)
    camera = env.camera_ids["head_camera"]

    def step(action: np.ndarray, render: bool) -> None:
        data.ctrl[:] = env.actuator_controls(action)
        mujoco.mj_step(model, data, nstep=env.substeps)
        if render:
            renderer.update_scene(data, camera)
            renderer.render()

    return step


def _single_process(task: str, steps: int, rounds: int, seed: int, engine: str) -> dict[str, float]:
    from pushcut.sim.registry import make

    env = make(task, cameras=("head_camera",), step_limit=NO_STEP_LIMIT, engine=engine)
    headless = make(task, cameras=(), step_limit=NO_STEP_LIMIT, engine=engine)  # the same step, nothing rendered
    closers = [env.close, headless.close]
    try:
        env.reset(seed=seed)
        actions = wave_actions(env.commanded_action, steps)
        if engine == "sapien":
            from pushcut.sim.sapien.bench import RawSapien

            raw = RawSapien(env).step
        else:
            raw = _raw_mujoco(env, closers)
        measures = {
            "raw_render_sps": lambda i: raw(actions[i], True),
            "env_render_sps": lambda i: env.step(actions[i]),
            "raw_physics_sps": lambda i: raw(actions[i], False),
            "env_physics_sps": lambda i: headless.step(actions[i]),
        }
        best = dict.fromkeys(measures, 0.0)
        steps_per_second(measures["env_render_sps"], 10)  # warm-up: GL context, shader compilation
        steps_per_second(measures["raw_render_sps"], 10)
        for _ in range(rounds):
            for name, fn in measures.items():
                env.reset(seed=seed)
                headless.reset(seed=seed)
                best[name] = max(best[name], steps_per_second(fn, steps))
    finally:
        for close in reversed(closers):
            close()
    return best


def _pool(task: str, steps: int, rounds: int, seed: int, engine: str) -> dict[str, float]:
    from pushcut.sim.vector import EnvPool

    best: dict[str, float] = {}
    for workers in (1, 2):
        overrides = {"cameras": ("head_camera",), "step_limit": NO_STEP_LIMIT, "engine": engine}
        with EnvPool(task, workers, env_overrides=overrides) as pool:
            observations = pool.reset([seed] * workers)  # identical workloads: measures parallelism
            start_action = observations[0]["joint_action"]["vector"]
            actions = wave_actions(start_action, steps)
            batch = [np.repeat(a[None], workers, axis=0) for a in actions]
            chunks = [actions[i : i + CHUNK] for i in range(0, steps - CHUNK + 1, CHUNK)]
            for _ in range(10):
                pool.step(batch[0])  # warm-up
            step_rate = chunk_rate = 0.0
            for _ in range(rounds):
                pool.reset([seed] * workers)
                step_rate = max(step_rate, workers * steps_per_second(lambda i, b=batch: pool.step(b[i]), steps))
                pool.reset([seed] * workers)
                rate = steps_per_second(lambda i, c=chunks, n=workers: pool.step_chunk([c[i]] * n), len(chunks))
                chunk_rate = max(chunk_rate, workers * CHUNK * rate)
            best[f"pool_step_{workers}_sps"] = step_rate
            best[f"pool_chunk_{workers}_sps"] = chunk_rate
    return best


def _busy_loop(iterations: int) -> float:
    start = time.perf_counter()
    total = 0.0
    for i in range(iterations):
        total += i * 0.5
    return time.perf_counter() - start


def machine_ceiling(iterations: int = 10_000_000) -> float:
    """Speed-up of the same pure-Python work in 2 processes vs 1 on this machine right now (2.0 = two free cores).

    A shared virtual machine rarely gives 2.0; the pool's speed-up should be read against this number."""
    import multiprocessing as mp

    single = _busy_loop(iterations)
    with mp.get_context("spawn").Pool(2) as pool:
        start = time.perf_counter()
        pool.map(_busy_loop, [iterations, iterations])
        double = time.perf_counter() - start
    return 2 * single / double


def run_benchmarks(
    task: str, steps: int = 200, seed: int = 0, rounds: int = 3, engine: str = "mujoco"
) -> dict[str, Any]:
    """All measurements of ``engine``, as a flat dict of rates (control steps per second) and ratios."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {', '.join(ENGINES)}")
    steps = max(steps, 2 * CHUNK)
    results: dict[str, Any] = {"task": task, "engine": engine, "steps": steps, "rounds": rounds,
                               "image": "320x240 head_camera"}  # fmt: skip
    if engine == "sapien":
        from pushcut.sim.sapien.bench import use_one_render_thread

        use_one_render_thread()  # before SAPIEN starts and the pool's workers inherit the environment
        results.update(_single_process(task, steps, rounds, seed, engine))
        mujoco = _single_process(task, steps, rounds, seed, "mujoco")
        results["mujoco_env_render_sps"] = mujoco["env_render_sps"]
        results["mujoco_env_physics_sps"] = mujoco["env_physics_sps"]
        results["sapien_vs_mujoco_render"] = results["env_render_sps"] / mujoco["env_render_sps"]
        results["sapien_vs_mujoco_physics"] = results["env_physics_sps"] / mujoco["env_physics_sps"]
    else:
        results.update(_single_process(task, steps, rounds, seed, engine))
    results.update(_pool(task, steps, rounds, seed, engine))
    results["machine_ceiling_speedup"] = machine_ceiling()
    results["env_overhead_render"] = results["raw_render_sps"] / results["env_render_sps"]
    results["env_overhead_physics"] = results["raw_physics_sps"] / results["env_physics_sps"]
    results["pool_step_speedup"] = results["pool_step_2_sps"] / results["pool_step_1_sps"]
    results["pool_chunk_speedup"] = results["pool_chunk_2_sps"] / results["pool_chunk_1_sps"]
    return results


# How each engine's raw baseline is named in the table.
RAW_STEP = {"mujoco": "raw MuJoCo mj_step", "sapien": "raw SAPIEN scene.step + gravity compensation"}
RAW_RENDER = {"mujoco": "Renderer.render", "sapien": "take_picture + get_picture"}


def format_table(results: dict[str, Any]) -> str:
    engine = results.get("engine", "mujoco")
    raw, picture = RAW_STEP[engine], RAW_RENDER[engine]
    on = "" if engine == "mujoco" else f" ({engine})"
    rows = [
        (f"{raw} + {picture} (head 320x240)", f"{results['raw_render_sps']:.1f} steps/s"),
        (f"DualPiperEnv.step{on}, head camera rendered", f"{results['env_render_sps']:.1f} steps/s"),
        ("env overhead with rendering (goal <= 1.15x)", f"{results['env_overhead_render']:.3f}x"),
        (f"{raw}, no rendering", f"{results['raw_physics_sps']:.1f} steps/s"),
        (f"DualPiperEnv.step{on}, no camera", f"{results['env_physics_sps']:.1f} steps/s"),
        ("env overhead without rendering", f"{results['env_overhead_physics']:.3f}x"),
        (f"EnvPool.step{on}, 1 worker (head rendered every step)", f"{results['pool_step_1_sps']:.1f} steps/s"),
        ("EnvPool.step, 2 workers", f"{results['pool_step_2_sps']:.1f} steps/s"),
        ("  speed-up 2 vs 1 workers, per-step calls", f"{results['pool_step_speedup']:.2f}x"),
        (
            f"EnvPool.step_chunk{on} ({CHUNK} actions, head rendered per chunk), 1 worker",
            f"{results['pool_chunk_1_sps']:.1f} steps/s",
        ),
        ("EnvPool.step_chunk, 2 workers", f"{results['pool_chunk_2_sps']:.1f} steps/s"),
        ("  speed-up 2 vs 1 workers, chunked (goal >= 1.8x)", f"{results['pool_chunk_speedup']:.2f}x"),
        ("pure-Python work, 2 vs 1 processes (this machine's ceiling)", f"{results['machine_ceiling_speedup']:.2f}x"),
    ]
    if engine == "sapien":
        rows += [
            ("DualPiperEnv.step (mujoco), head camera rendered", f"{results['mujoco_env_render_sps']:.1f} steps/s"),
            ("  SAPIEN / MuJoCo env rate, rendered", f"{results['sapien_vs_mujoco_render']:.2f}x"),
            ("DualPiperEnv.step (mujoco), no camera", f"{results['mujoco_env_physics_sps']:.1f} steps/s"),
            ("  SAPIEN / MuJoCo env rate, no camera", f"{results['sapien_vs_mujoco_physics']:.2f}x"),
        ]
    width = max(len(r[0]) for r in rows)
    header = (
        f"task {results['task']} ({engine}): {results['steps']} control steps per measurement, best of "
        f"{results['rounds']} interleaved rounds"
    )
    return "\n".join([header] + [f"| {name:<{width}} | {value:>16} |" for name, value in rows])
