"""RoboTwin as a world for pushcut's commands: ``--sim robotwin --robotwin-dir DIR [--robotwin-python PY]``.

The commands put the choice into their env overrides (``engine: "sapien"`` for SAPIEN's world in pushcut's own envs;
``engine: "robotwin"``, ``robotwin_dir``, ``robotwin_python``,
so checkpoints record the engine they were trained in); :func:`open_pool` opens a :class:`RobotwinPool` for them and
the ordinary pool (sim/vector.py's ``open_pool``) otherwise. :func:`expert_rates` (``sim experts``) and
:func:`write_demos` (``sim demo``) run RoboTwin's own expert.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pushcut.sim.robotwin.client import RobotwinInstallError, RobotwinWorkerError
from pushcut.sim.robotwin.env import RobotwinEnv
from pushcut.sim.robotwin.pool import ENGINE, RobotwinPool, RobotwinSettings, split_overrides

SIMS: tuple[str, ...] = ("mujoco", "sapien", ENGINE)  # the seam's engines (sim/world.py's ENGINES), then RoboTwin
ROBOTWIN_KEYS: tuple[str, ...] = ("robotwin_dir", "robotwin_python")
# What a command reports as one line (beside its ValueError): an install RoboTwin cannot run on, a failed worker.
ROBOTWIN_ERRORS: tuple[type[Exception], ...] = (RobotwinInstallError, RobotwinWorkerError)


def world_overrides(sim: str, robotwin_dir: str | Path | None, robotwin_python: str | None) -> dict[str, Any]:
    """The env overrides a command adds for ``--sim`` (ValueError in one line for an inconsistent choice)."""
    if sim not in SIMS:
        raise ValueError(f"--sim {sim!r}; expected one of {', '.join(SIMS)}")
    if sim != ENGINE:
        if robotwin_dir is not None or robotwin_python is not None:
            raise ValueError("--robotwin-dir / --robotwin-python need --sim robotwin")
        return {} if sim == "mujoco" else {"engine": sim}
    if robotwin_dir is None:
        raise ValueError("--sim robotwin needs --robotwin-dir DIR (a RoboTwin 2.0 checkout, docs/robotwin_protocol.md)")
    overrides: dict[str, Any] = {"engine": ENGINE, "robotwin_dir": str(Path(robotwin_dir).expanduser())}
    if robotwin_python is not None:
        overrides["robotwin_python"] = robotwin_python
    return overrides


def open_pool(
    task: str | Sequence[str],
    num_envs: int,
    env_overrides: dict | None = None,
    num_workers: int | None = None,
    backend: str = "process",
    ray_address: str | None = None,
) -> Any:
    """sim/vector.py's ``open_pool`` for every world: RoboTwin's envs in RoboTwin workers where the overrides choose
    it — local worker processes, or with ``backend="ray"`` Ray actors that each own one RoboTwin worker on their
    node (sim/robotwin/actor_envs.py) — else the ordinary pool."""
    settings, rest = split_overrides(env_overrides)
    if settings is None:
        from pushcut.sim.vector import open_pool as open_engine_pool

        return open_engine_pool(task, num_envs, rest, num_workers, backend, ray_address)
    from pushcut.sim.ray_session import check_env_backend

    check_env_backend(backend, ray_address)
    if backend == "ray":
        from pushcut.sim.ray_pool import RayEnvPool
        from pushcut.sim.robotwin.actor_envs import RobotwinEnvs

        return RayEnvPool(task, num_envs, env_overrides, num_workers=num_workers, address=ray_address,
                          envs_kind=RobotwinEnvs)  # fmt: skip
    return RobotwinPool(task, num_envs, settings, rest, num_workers=num_workers)


def expert_rates(task: str, seeds: int, settings: RobotwinSettings, seed_start: int = 0) -> dict[str, Any]:
    """RoboTwin's expert on pushcut seeds ``seed_start ..`` (no cameras): how many RoboTwin seeds each took, and why
    seeds were skipped; the expert's success rate over the seeds it was tried on (stable ones)."""
    with RobotwinEnv(task, settings, cameras=()) as env:
        runs = [env.expert(s) for s in range(seed_start, seed_start + seeds)]
    skipped = [why for run in runs for _, why in run["skipped"]]
    unstable = sum(why == "unstable" for why in skipped)
    failed = len(skipped) - unstable
    return {"task": task, "seeds": seeds, "expert_success": seeds / max(seeds + failed, 1), "unstable": unstable,
            "expert_failed": failed, "robotwin_seeds": [run["robotwin_seed"] for run in runs]}  # fmt: skip


def write_demos(
    task: str, episodes: int, out: Path, settings: RobotwinSettings, seed: int, env_overrides: dict[str, Any]
) -> dict[str, Any]:
    """``episodes`` recordings of RoboTwin's expert (pushcut seeds ``seed ..``, each on its first counting RoboTwin
    seed) as a pushcut dataset (sim/dataset.py: HDF5 episodes, index.json), actions at RoboTwin's recording rate."""
    from pushcut.common.conventions import DEFAULT_ACTION_HZ
    from pushcut.sim.dataset import FORMAT_VERSION, INDEX_FILE, EpisodeRecorder, atomic_write_text
    from pushcut.sim.demos import check_output_dir

    cameras = tuple(env_overrides.get("cameras", ("head_camera", "left_camera", "right_camera")))
    check_output_dir(out)
    if (out / INDEX_FILE).exists():
        raise ValueError(f"{out} already holds a dataset: choose a new --out")
    (out / "data").mkdir(parents=True, exist_ok=True)
    (out / "instructions").mkdir(exist_ok=True)
    env_config = {**{k: v for k, v in env_overrides.items() if k not in ROBOTWIN_KEYS}, "engine": ENGINE,
                  "cameras": list(cameras), "action_hz": DEFAULT_ACTION_HZ}  # fmt: skip
    index = {"format_version": FORMAT_VERSION, "task": task, "env_config": env_config, "seed_start": seed,
             "next_seed": seed + episodes, "episodes": []}  # fmt: skip
    start = time.time()
    with RobotwinEnv(task, settings, **{**env_overrides, "cameras": cameras}) as env:
        for i, run in enumerate(env.expert(s, record=True) for s in range(seed, seed + episodes)):
            recorder = EpisodeRecorder(cameras)
            for obs, action in run["steps"]:
                recorder.add(obs, action)
            attrs = {"task": task, "seed": run["seed"], "robotwin_seed": run["robotwin_seed"],
                     "instruction": run["instruction"], "action_hz": DEFAULT_ACTION_HZ, "engine": ENGINE}  # fmt: skip
            recorder.write(out / "data" / f"episode{i}.hdf5", attrs)
            index["episodes"].append({"file": f"data/episode{i}.hdf5", "seed": run["seed"], "length": len(recorder),
                                      "instruction": run["instruction"], "strategy": None,
                                      "robotwin_seed": run["robotwin_seed"], "skipped": run["skipped"]})  # fmt: skip
            text = json.dumps({"seen": [run["instruction"]], "unseen": [run["instruction"]]}, indent=1)
            atomic_write_text(out / "instructions" / f"episode{i}.json", text)
            atomic_write_text(out / INDEX_FILE, json.dumps(index, indent=1))
    atomic_write_text(out / "seed.txt", "".join(f"{e['seed']}\n" for e in index["episodes"]))
    return {"task": task, "out": str(out), "kept": len(index["episodes"]), "wall_time_s": round(time.time() - start, 2),
            "skipped": sum(len(e["skipped"]) for e in index["episodes"])}  # fmt: skip
