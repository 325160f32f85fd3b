"""One RoboTwin task environment driven through its public API, inside the worker (RoboTwin's interpreter).

Standard library, numpy and RoboTwin only. What it gets right (docs/robotwin_protocol.md, section 4):
- set-up: ``setup_demo(now_ep_num, seed, is_test, **args)`` with the dual Piper ``[piper, piper, 0.6]``, the mplib
  planner where the branch offers it, eval mode (RoboTwin's step limit), and ``close_env`` before every new set-up;
- the rasterising camera shader: RoboTwin's ``setup_scene`` selects ray tracing; a subclass selects SAPIEN's
  ``default`` shader right after it, before any camera exists;
- one SAPIEN render system held for the worker's lifetime (:func:`render_context`), so that the shaders compiled by
  the first picture outlive ``close_env`` freeing the episode's scene;
- set-up holds ``SETUP_LOCK`` (RoboTwin seeds numpy's global generator), and so does the expert check;
- the seed rule: candidate k of pushcut seed s is RoboTwin seed ``s * SEED_STRIDE + k``; a candidate counts only
  where set-up is stable (``UnStableError`` moves to the next) and, with ``expert_check``, its expert succeeds;
- one ``take_action(qpos)`` per action row (one planner move, one count against ``step_lim``).
"""

from __future__ import annotations

import functools
import importlib
import random
import threading
from typing import Any

import numpy as np

SETUP_LOCK = threading.Lock()
SEED_STRIDE = 100  # candidates per pushcut seed: RoboTwin seeds s * 100 .. s * 100 + 99
RASTER_SHADER = "default"  # SAPIEN's rasterising camera shader (RoboTwin's own choice, "rt", ray-traces)
DUAL_PIPER = ["piper", "piper", 0.6]


@functools.cache
def render_context() -> Any:
    """A SAPIEN render system kept for the process. SAPIEN compiles its shaders once per render context (about 7 s
    on lavapipe) and frees the context with the last object that uses it: without a holder, every episode whose
    scene ``close_env`` freed would compile them again."""
    import sapien

    return sapien.render.RenderSystem()


def is_unstable(error: BaseException) -> bool:
    """RoboTwin's UnStableError (envs/utils/create_actor.py on stable_2.0, elsewhere on other branches)."""
    return type(error).__name__ == "UnStableError"


def pushcut_task_class(task: str) -> type:
    """RoboTwin's task class with two pushcut hooks: the rasterising shader, and frames (``get_obs()`` with the
    measured joints) kept in memory when a recording is on (RoboTwin's own recorder pickles them to disk)."""
    base = getattr(importlib.import_module(f"envs.{task}"), task)

    class PushcutTask(base):  # type: ignore[misc, valid-type]
        pushcut_frames: list | None = None

        def setup_scene(self, **kwargs: Any) -> None:
            super().setup_scene(**kwargs)
            import sapien

            sapien.render.set_camera_shader_dir(RASTER_SHADER)
            render_context()

        def _take_picture(self) -> None:
            if self.pushcut_frames is not None:
                measured = self.robot.get_left_arm_real_jointState() + self.robot.get_right_arm_real_jointState()
                self.pushcut_frames.append((self.get_obs(), measured))

    PushcutTask.__name__ = task
    return PushcutTask


def observation(task_env: Any, cameras: list[str], images: bool) -> dict[str, Any]:
    """What crosses the wire of ``get_obs()``: the requested cameras, joint targets (RoboTwin's ``joint_action``),
    measured joints (the robot's real joint state) and end poses."""
    raw = task_env.get_obs()
    views = raw.get("observation", {})
    out: dict[str, Any] = {"cameras": {}}
    for cam in cameras if images else []:
        view = views[cam]
        out["cameras"][cam] = {k: np.asarray(view[k]) for k in ("rgb", "intrinsic_cv", "extrinsic_cv", "cam2world_gl")}
    out["joint_target"] = np.asarray(raw["joint_action"]["vector"], dtype=np.float64)
    robot = task_env.robot
    measured = robot.get_left_arm_real_jointState() + robot.get_right_arm_real_jointState()
    out["joint_measured"] = np.asarray(measured, dtype=np.float64)
    ends = raw.get("endpose", {})
    out["endpose"] = {k: np.asarray(ends[k], dtype=np.float64) for k in ("left_endpose", "right_endpose") if k in ends}
    return out


class WorkerEpisode:
    """One env of the worker: its task instance (one for its lifetime, as RoboTwin's eval keeps one: the robot and
    its planners are built once), the set-up arguments, whether an episode is open."""

    def __init__(self, task: str, args: dict[str, Any], cameras: list[str], describe: Any) -> None:
        self.task = task
        self.args = args
        self.cameras = cameras
        self.describe = describe  # RoboTwin's generate_episode_descriptions, or None
        self.instance: Any = pushcut_task_class(task)()
        self.live = False  # an episode is set up (or its set-up failed) and not closed yet
        self.episodes = 0
        self.step_limit: int | None = None

    def _setup(self, seed: int) -> Any:
        """A new episode on ``seed`` (the previous one closed first); the caller holds SETUP_LOCK."""
        self.close()
        self.episodes += 1
        self.live = True  # close_env follows a failed set-up too, as in RoboTwin's eval
        self.instance.setup_demo(now_ep_num=self.episodes, seed=seed, is_test=True, **self.args)
        return self.instance

    def expert_run(self, seed: int, record: bool) -> tuple[bool, dict[str, Any], list | None, str]:
        """RoboTwin's expert (``play_once``) on ``seed``: (success, its info, recorded frames, why it failed)."""
        instance = self._setup(seed)
        instance.pushcut_frames = [] if record else None
        try:
            info = instance.play_once() or {}
            ok = bool(instance.plan_success and instance.check_success())
            return ok, info, instance.pushcut_frames, "" if ok else "expert failed"
        except Exception as error:  # a planner or TOPP error of RoboTwin's expert: this seed does not count
            if is_unstable(error):
                raise
            return False, {}, None, f"expert error: {type(error).__name__}: {error}"
        finally:
            instance.pushcut_frames = None  # the instance lives on: later episodes record nothing
            self.close()

    def resolve(
        self, seed: int, expert_check: bool, max_tries: int, record: bool = False
    ) -> tuple[int, dict[str, Any], list[list], list | None]:
        """The first RoboTwin seed of pushcut seed ``seed`` that counts: (that seed, the expert's info, the skipped
        candidates with why, the expert's frames when ``record``)."""
        skipped: list[list] = []
        frames: list | None = None
        if not 0 <= seed * SEED_STRIDE + max_tries < 2**32:  # numpy's global seed is a uint32
            raise ValueError(f"pushcut seed {seed} gives RoboTwin seeds beyond numpy's 0 .. 2**32 - 1")
        for k in range(min(max_tries, SEED_STRIDE)):
            candidate = seed * SEED_STRIDE + k
            try:
                with SETUP_LOCK:
                    if expert_check:
                        ok, info, frames, why = self.expert_run(candidate, record)
                    else:
                        self._setup(candidate)
                        ok, info, why = True, {}, ""
                        self.close()
            except Exception as error:
                if not is_unstable(error):
                    raise
                self.close()
                ok, info, why = False, {}, "unstable"
            if ok:
                return candidate, info, skipped, frames
            skipped.append([candidate, why])
        raise RuntimeError(f"no RoboTwin seed of pushcut seed {seed} counts in {max_tries} tries: {skipped}")

    def start(self, robotwin_seed: int, info: dict[str, Any], step_limit: int | None, split: str) -> dict[str, Any]:
        """The policy's episode on a resolved seed: set up, step limit, instruction; returns the reset reply."""
        with SETUP_LOCK:
            instance = self._setup(robotwin_seed)
            instruction = self.instruction(robotwin_seed, info, split)
        if step_limit is not None:
            instance.step_lim = int(step_limit)
        self.step_limit = int(instance.step_lim)
        if instruction is not None:
            instance.set_instruction(instruction=instruction)
        return {"robotwin_seed": robotwin_seed, "step_limit": self.step_limit, "instruction": instruction}

    def instruction(self, seed: int, info: dict[str, Any], split: str) -> str | None:
        """One of RoboTwin's instructions for this episode (its generator, seeded), or None without one."""
        if self.describe is None or not info.get("info"):
            return None
        random.seed(seed)
        found = self.describe(self.task, [info["info"]], 20)
        choices = found[0].get(split, []) if found else []
        return str(choices[np.random.default_rng(seed).integers(len(choices))]) if choices else None

    def step(self, actions: np.ndarray) -> dict[str, Any]:
        """``take_action`` per row until success or the step limit; what happened."""
        if not self.live:
            raise RuntimeError("no episode is open: reset this env first")
        instance, executed = self.instance, 0
        for action in np.asarray(actions, dtype=np.float64):
            if instance.eval_success or instance.take_action_cnt >= instance.step_lim:
                break
            instance.take_action(action, action_type="qpos")
            executed += 1
        success = bool(instance.eval_success)
        moves = int(instance.take_action_cnt)
        return {"executed": executed, "success": success, "moves": moves,
                "truncated": moves >= int(instance.step_lim) and not success}  # fmt: skip

    def close(self) -> None:
        """``close_env`` of the open episode (RoboTwin's cache cleared every ``clear_cache_freq`` episodes)."""
        if self.live:
            self.live = False
            clear = self.episodes % int(self.args.get("clear_cache_freq", 5) or 5) == 0
            self.instance.close_env(clear_cache=clear)
