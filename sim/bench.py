"""`pushcut sim bench`: how fast the simulation runs, against raw MuJoCo on the same scene.

Measured (control steps = actions of 1/action_hz s of physics each):
- raw_render_sps: the same model stepped by `mujoco.mj_step(nstep=substeps)` + `Renderer.render` of the head camera;
- env_render_sps: `DualPiperEnv.step` with the head camera rendered (target ramp, speed limit, success check,
  observation dict with camera matrices and end poses); overhead = raw time / env time per step;
- raw_physics_sps / env_physics_sps: the same without rendering;
- pool_1_sps / pool_2_sps: `EnvPool.step` with 1 and 2 worker processes (head camera rendered), and the speed-up.
The arms track a slow sinusoid so the physics has work to do.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pushcut.sim import piper_spec as spec


def _actions(start: np.ndarray, steps: int) -> np.ndarray:
    t = np.arange(steps)[:, None]
    wave = 0.15 * np.sin(2 * np.pi * t / 40.0)
    actions = np.repeat(start[None], steps, axis=0)
    actions[:, spec.LEFT_ARM_SLICE] += wave
    actions[:, spec.RIGHT_ARM_SLICE] -= wave
    return actions


def _rate(fn, steps: int) -> float:
    start = time.perf_counter()
    for i in range(steps):
        fn(i)
    return steps / (time.perf_counter() - start)


def run_benchmarks(task: str, steps: int = 200, seed: int = 0) -> dict[str, Any]:
    import mujoco
    from pushcut.sim.registry import make
    from pushcut.sim.vector import EnvPool

    results: dict[str, Any] = {"task": task, "steps": steps, "image": "320x240 head_camera"}
    env = make(task, cameras=("head_camera",))
    env.reset(seed=seed)
    actions = _actions(env.commanded_action, steps)
    model, data = env.model, env.data
    renderer = mujoco.Renderer(model, env.config.image_height, env.config.image_width)
    camera = env.camera_ids["head_camera"]

    def raw_step(i: int, render: bool) -> None:
        data.ctrl[:] = env._ctrl_from_action(actions[i])
        mujoco.mj_step(model, data, nstep=env.substeps)
        if render:
            renderer.update_scene(data, camera)
            renderer.render()

    try:
        _rate(lambda i: env.step(actions[i]), 10)  # warm-up (GL context, caches)
        results["env_render_sps"] = _rate(lambda i: env.step(actions[i]), steps)
        env.reset(seed=seed)
        results["raw_render_sps"] = _rate(lambda i: raw_step(i, True), steps)
        env.reset(seed=seed)
        results["raw_physics_sps"] = _rate(lambda i: raw_step(i, False), steps)
        env.reset(seed=seed)
        results["env_physics_sps"] = _rate(lambda i: env._advance(env.validate_action(actions[i])), steps)
    finally:
        renderer.close()
        env.close()
    results["env_overhead_render"] = results["raw_render_sps"] / results["env_render_sps"]
    results["env_overhead_physics"] = results["raw_physics_sps"] / results["env_physics_sps"]

    for workers in (1, 2):
        with EnvPool(task, workers, env_overrides={"cameras": ("head_camera",)}) as pool:
            pool.reset(list(range(seed, seed + workers)))
            batch = np.repeat(actions[:, None], workers, axis=1)
            pool.step(batch[0])
            start = time.perf_counter()
            for i in range(steps):
                pool.step(batch[i])
            results[f"pool_{workers}_sps"] = workers * steps / (time.perf_counter() - start)
    results["pool_speedup_2_vs_1"] = results["pool_2_sps"] / results["pool_1_sps"]
    return results


def format_table(results: dict[str, Any]) -> str:
    rows = [
        ("raw MuJoCo mj_step + Renderer.render (head 320x240)", f"{results['raw_render_sps']:.1f} steps/s"),
        ("DualPiperEnv.step, head camera rendered", f"{results['env_render_sps']:.1f} steps/s"),
        ("env overhead with rendering (goal <= 1.15x)", f"{results['env_overhead_render']:.3f}x"),
        ("raw MuJoCo mj_step, no rendering", f"{results['raw_physics_sps']:.1f} steps/s"),
        ("DualPiperEnv physics only (no observation)", f"{results['env_physics_sps']:.1f} steps/s"),
        ("env overhead without rendering", f"{results['env_overhead_physics']:.3f}x"),
        ("EnvPool, 1 worker process (head rendered)", f"{results['pool_1_sps']:.1f} steps/s"),
        ("EnvPool, 2 worker processes (head rendered)", f"{results['pool_2_sps']:.1f} steps/s"),
        ("speed-up 2 vs 1 workers (goal >= 1.8x)", f"{results['pool_speedup_2_vs_1']:.2f}x"),
    ]
    width = max(len(r[0]) for r in rows)
    header = f"task {results['task']}, {results['steps']} control steps per measurement"
    return "\n".join([header] + [f"| {name:<{width}} | {value:>16} |" for name, value in rows])
