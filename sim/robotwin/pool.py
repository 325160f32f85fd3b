"""``RobotwinPool``: N RoboTwin task environments in W worker interpreters, behind the pool interface rollouts use
(:class:`pushcut.sim.vector.VectorEnv`: per-env lists in, per-env lists out, None = skip).

Env i lives in worker i % W (default W = N: one RoboTwin scene per process, as RoboTwin runs); a worker runs the
requests of its envs in threads, set-up under its lock. Every call sends each worker its batch before reading any
reply, so workers run in parallel.

Seeds: ``reset(seeds)`` resolves each distinct pushcut seed once (RoboTwin's seed rule, in the worker: the first
candidate RoboTwin seed that is stable and whose expert succeeds), on the first env that has it; the pool keeps the
resolution, so the other envs of a GRPO group, and later resets on that seed, start from it without rerunning the
expert. ``skipped_seeds`` lists the RoboTwin seeds passed over, with why.

Step limit and time: one action of a chunk is one ``take_action`` (one planner move; RoboTwin retimes the move, so
it has no fixed duration), counted against RoboTwin's ``step_lim`` (task_config/_eval_step_limit.yml, or the env's
``step_limit``); ``action_hz`` does not change what an action does here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pushcut.sim.robotwin import mapping
from pushcut.sim.robotwin.client import RobotwinInstallError, WorkerProcess
from pushcut.sim.robotwin.worker_checks import TASK_OBJECTS
from pushcut.sim.vector import EnvWorkerError

# pushcut's randomisation presets and RoboTwin's task configs that match them.
TASK_CONFIGS: dict[str, str] = {"clean": "demo_clean", "randomized": "demo_randomized"}
ENGINE = "robotwin"


@dataclass(frozen=True)
class RobotwinSettings:
    """Where RoboTwin lives and how its episodes run (``--robotwin-dir``, ``--robotwin-python``)."""

    robotwin_dir: str
    python: str | None = None  # default: the checkout's own environment's python, else python3
    task_config: str | None = None  # RoboTwin's task config; default from the env's randomisation preset
    expert_check: bool = True  # RoboTwin's seed rule: a seed counts only where its expert succeeds
    max_tries: int = 20  # candidate RoboTwin seeds per pushcut seed
    state: str = "measured"  # the joints policies see: "measured" or RoboTwin's drive "target"s
    timeout_s: float = 600.0


def env_options(settings: RobotwinSettings, overrides: dict[str, Any]) -> tuple[dict[str, Any], tuple[int, int]]:
    """The worker's per-env options and the frame size (w, h) for pushcut env overrides; refuses what RoboTwin
    cannot do, in one line."""
    if overrides.get("camera_calibration") is not None:
        raise ValueError("RoboTwin's head camera is fixed by its embodiment config: drop the camera calibration")
    unknown = [c for c in overrides.get("cameras", ("head_camera",)) if c not in mapping.CAMERAS]
    if unknown:
        raise ValueError(f"unknown camera(s) {unknown}; RoboTwin has {list(mapping.CAMERAS)}")
    preset = overrides.get("randomization") or "clean"
    if settings.task_config is None and preset not in TASK_CONFIGS:
        raise ValueError(f"randomization {preset!r} has no RoboTwin task config; use {sorted(TASK_CONFIGS)}")
    options = {
        "cameras": list(overrides.get("cameras", ("head_camera",))),
        "task_config": settings.task_config or TASK_CONFIGS[preset],
        "step_limit": overrides.get("step_limit"),
        "split": overrides.get("instruction_split", "seen"),
        "expert_check": settings.expert_check,
        "max_tries": settings.max_tries,
    }
    return options, (int(overrides.get("image_width", 320)), int(overrides.get("image_height", 240)))


def split_overrides(overrides: dict[str, Any] | None) -> tuple[RobotwinSettings | None, dict[str, Any]]:
    """(the RoboTwin settings when the overrides choose RoboTwin, else None; the env overrides without them)."""
    overrides = dict(overrides or {})
    if overrides.get("engine") != ENGINE:
        return None, overrides
    del overrides["engine"]
    settings = RobotwinSettings(str(overrides.pop("robotwin_dir")), overrides.pop("robotwin_python", None))
    return settings, overrides


def check_tasks(tasks: Sequence[str]) -> None:
    """A task pushcut and RoboTwin do not share is refused in one line, before any worker starts."""
    unknown = sorted({t for t in tasks if t not in TASK_OBJECTS})
    if unknown:
        raise ValueError(f"task(s) {unknown} are not shared by pushcut and RoboTwin; shared: {sorted(TASK_OBJECTS)}")


class RobotwinPool:
    """N RoboTwin envs in W worker interpreters (module docstring)."""

    def __init__(
        self,
        task: str | Sequence[str],
        num_envs: int,
        settings: RobotwinSettings,
        env_overrides: dict[str, Any] | None = None,
        num_workers: int | None = None,
    ) -> None:
        self.tasks = [task] * num_envs if isinstance(task, str) else list(task)
        check_tasks(self.tasks)
        self.num_envs, self.settings = num_envs, settings
        self.num_workers = num_envs if num_workers is None else num_workers
        if not 1 <= self.num_workers <= num_envs or len(self.tasks) != num_envs:
            raise ValueError(f"num_envs={num_envs} (tasks {len(self.tasks)}) and num_workers={self.num_workers}")
        overrides = {k: v for k, v in (env_overrides or {}).items() if k != "engine"}
        self.options, self.size = env_options(settings, overrides)
        self.seed_resolutions: dict[int, dict[str, Any]] = {}  # pushcut seed -> robotwin_seed, episode_info
        self.skipped_seeds: dict[int, list[list]] = {}
        self.state: list[dict[str, Any]] = [{} for _ in range(num_envs)]
        self.workers: list[WorkerProcess] = []
        try:
            for _ in range(self.num_workers):
                self.workers.append(WorkerProcess(settings.robotwin_dir, settings.python, settings.timeout_s))
            randomized = self.options["task_config"] != TASK_CONFIGS["clean"]
            hellos = [w.send("hello", tasks=sorted(set(self.tasks)), randomized=randomized) for w in self.workers]
            self.install = [w.receive(i) for w, i in zip(self.workers, hellos, strict=True)][0]
            opened = []
            for w, worker in enumerate(self.workers):
                envs = [{"env": i, "task": self.tasks[i], "options": self.options} for i in self._envs_of(w)]
                opened.append(worker.send("open", envs=envs))
            for worker, request in zip(self.workers, opened, strict=True):
                worker.receive(request)
        except BaseException:
            self.close()
            raise

    def _envs_of(self, worker: int) -> list[int]:
        return [i for i in range(self.num_envs) if i % self.num_workers == worker]

    def _run(self, kind: str, entries: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
        """Send each worker its envs' entries, then gather; per-env replies by env index. The first env error (lowest
        index) is raised once every reply is in."""
        sent = {}
        for w, worker in enumerate(self.workers):
            batch = [{"env": i, **entries[i]} for i in self._envs_of(w) if i in entries]
            if batch:
                sent[w] = worker.send(kind, envs=batch)
        replies: dict[int, dict[str, Any]] = {}
        for w, request in sent.items():
            for reply in self.workers[w].receive(request)["envs"]:
                replies[int(reply["env"])] = reply
        errors = sorted(i for i, r in replies.items() if "error" in r)
        if errors:
            bad = replies[errors[0]]
            if bad["error"] == "install":
                raise RobotwinInstallError(bad["message"])
            raise EnvWorkerError(errors[0], f"RoboTwin: {bad['message']}", worker_traceback=bad.get("traceback"))
        return replies

    # ------------------------------------------------------------------ the pool interface
    def reset(self, seeds: Sequence[int | None]) -> list[dict[str, Any]]:
        """A new episode per env on its pushcut seed (module docstring: seed rule, shared resolutions)."""
        if len(seeds) != self.num_envs or any(s is None for s in seeds):
            raise ValueError(f"RoboTwin envs need one integer seed per env ({self.num_envs}), got {list(seeds)}")
        first: dict[int, int] = {}
        for i, seed in enumerate(seeds):
            if int(seed) not in self.seed_resolutions:
                first.setdefault(int(seed), i)
        replies = self._run("reset", {i: {"seed": s, "options": self.options} for s, i in first.items()})
        for seed, i in first.items():
            self.seed_resolutions[seed] = {k: replies[i][k] for k in ("robotwin_seed", "episode_info")}
            self.skipped_seeds[seed] = replies[i]["skipped"]
        rest = {i: {"seed": int(s), "options": {**self.options, **self.seed_resolutions[int(s)]}}
                for i, s in enumerate(seeds) if i not in first.values()}  # fmt: skip
        replies.update(self._run("reset", rest))
        observations = []
        for i, seed in enumerate(seeds):
            reply = replies[i]
            info = reply["episode_info"] or self.seed_resolutions[int(seed)]["episode_info"]
            self.state[i] = {"seed": int(seed), "robotwin_seed": reply["robotwin_seed"], "moves": 0, "success": False,
                             "step_limit": reply["step_limit"], "acting_arms": mapping.acting_arms(info),
                             "instruction": reply["instruction"] or default_instruction(self.tasks[i])}  # fmt: skip
            observations.append(self._observation(i, reply["observation"]))
        return observations

    def step_chunk(self, chunks: Sequence[np.ndarray | None], images_if_ended: bool = True) -> list[Any]:
        """Each chunk (k, 14) as k ``take_action`` calls, stopping on success or at the step limit; None skips."""
        from pushcut.sim.env import ChunkResult

        if len(chunks) != self.num_envs:
            raise ValueError(f"chunks must have one entry per env ({self.num_envs}), got {len(chunks)}")
        entries = {i: {"actions": mapping.to_robotwin_actions(c), "images": bool(images_if_ended)}
                   for i, c in enumerate(chunks) if c is not None}  # fmt: skip
        replies = self._run("step", entries)
        results: list[Any] = [None] * self.num_envs
        for i, reply in replies.items():
            self.state[i].update(moves=reply["moves"], success=reply["success"])
            results[i] = ChunkResult(self._observation(i, reply["observation"]), float(reply["success"]),
                                     bool(reply["success"]), bool(reply["truncated"]), int(reply["executed"]),
                                     self.info(i))  # fmt: skip
        return results

    def call(self, method_name: str, per_env_args: Sequence[tuple | None] | None = None) -> list[Any]:
        """An env's episode facts by name (``info`` keys: success, step_limit, elapsed_steps, instruction, ...)."""
        args = [()] * self.num_envs if per_env_args is None else per_env_args
        known = set(self.info(0)) | {"step_limit", "instruction"}
        if method_name not in known:
            raise ValueError(f"RoboTwin envs answer {sorted(known)}, not {method_name!r}")
        return [None if a is None else {**self.info(i), **self.state[i]}.get(method_name) for i, a in enumerate(args)]

    def expert(self, seeds: Sequence[int | None], record: bool = False) -> list[dict[str, Any] | None]:
        """RoboTwin's own expert per env on its pushcut seed (None: skip): the RoboTwin seed it counted on, the
        skipped ones, the instruction and, with ``record``, the episode as pushcut (observation, action) pairs."""
        entries = {i: {"seed": int(s), "record": record, "options": self.options}
                   for i, s in enumerate(seeds) if s is not None}  # fmt: skip
        out: list[dict[str, Any] | None] = [None] * self.num_envs
        for i, reply in self._run("expert", entries).items():
            instruction = reply["instruction"] or default_instruction(self.tasks[i])
            frames = [self._observation(i, f, instruction) for f in reply["frames"]]
            out[i] = {"seed": int(seeds[i]), "robotwin_seed": reply["robotwin_seed"], "skipped": reply["skipped"],
                      "instruction": instruction, "steps": mapping.demo_steps(frames),
                      "acting_arms": mapping.acting_arms(reply["episode_info"])}  # fmt: skip
        return out

    def info(self, i: int) -> dict[str, Any]:
        state = self.state[i]
        return {"success": bool(state.get("success")), "elapsed_steps": int(state.get("moves", 0)),
                "seed": state.get("seed"), "robotwin_seed": state.get("robotwin_seed"), "strategy": None,
                "acting_arms": tuple(state.get("acting_arms", ()))}  # fmt: skip

    def _observation(self, i: int, wire_obs: dict[str, Any], instruction: str | None = None) -> dict[str, Any]:
        text = instruction or self.state[i].get("instruction", "")
        return mapping.to_pushcut_observation(wire_obs, self.size, text, self.settings.state)

    def close(self) -> None:
        """Close every worker (their envs first). Idempotent."""
        for worker in self.workers:
            worker.close()
        self.workers = []

    def __enter__(self) -> RobotwinPool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __len__(self) -> int:
        return self.num_envs


def default_instruction(task: str) -> str:
    """pushcut's description of the task, where RoboTwin gave no instruction (no expert info, no generator)."""
    from pushcut.sim.registry import get_task

    return get_task(task).description
