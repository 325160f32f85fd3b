"""Stand-in of RoboTwin 2.0's ``Base_Task`` (envs/_base_task.py) for pushcut's contract tests, written from the facts
in shared/reference/robotwin_sapien.md and robotwin_and_piper.md, pinned to RoboTwin RLinf_support @ 0008ae6800df
(its task API is that of stable_2.0 @ 13c3c47ff431). Not RoboTwin's code; the scene is pushcut's own SAPIEN world
(``pushcut.sim.registry.make(task, engine="sapien")``, the task of the same name), as RoboTwin's runs on SAPIEN: each
``setup_demo`` builds one SAPIEN scene for the instance and ``close_env`` frees it, as RoboTwin's do. SAPIEN renders
with Vulkan; pushcut finds the device itself (``pushcut.sim.sapien.device``), and its worker's client sets the same
variables for RoboTwin's interpreter. A task config with ``random_background`` gives pushcut's "randomized" preset,
else "clean".

The quirks it reproduces, because pushcut's worker must get each right:
- ``setup_demo`` seeds numpy's *global* generator, pauses (RoboTwin's set-up is long), then draws from it: the
  layout, whether the seed is unstable and whether the expert's planner fails. Two set-ups at once in one process
  interleave their draws unless a lock serialises them;
- ``UnStableError`` at the end of set-up on some seeds (UNSTABLE_RATE); the expert fails on others (EXPERT_FAIL_RATE,
  ``plan_success`` False; pushcut's scripted expert also fails on its own on a few): RoboTwin's seed rule matters;
- ``setup_scene`` selects SAPIEN's ray-tracing shader ("rt"); cameras take the shader in effect when they are loaded,
  and ``get_obs`` refuses to render through "rt" (the real one takes about 5.5 s a frame on a CPU);
- ``step_lim`` is read from task_config/_eval_step_limit.yml in eval mode only (None otherwise);
- ``take_action(qpos)`` counts one step per call (a planner move) and runs as many action periods of physics as the
  move needs at the Piper's joint speed (a retimed path: a move has no fixed duration), checking success after each
  and stopping on it; at the step limit or after success it returns without doing anything;
- ``joint_action`` holds the drive targets, grippers as the [0, 1] opening; a gripper outside [0, 1] is refused;
- ``close_env`` ends an episode: its SAPIEN scene is freed and the instance is unusable until the next
  ``setup_demo``.

Not RoboTwin's: with ``SETUP_RECORD_ENV`` naming a file, every set-up appends its keyword arguments there as one JSON
line (what the worker passed: embodiment, planner, ...), for the tests to read from outside the worker's interpreter.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import numpy as np
import yaml

from pushcut.common.conventions import DEFAULT_ACTION_HZ
from pushcut.sim import piper_spec as spec
from pushcut.sim.env import DualPiperEnv
from pushcut.sim.registry import make
from pushcut.sim.sapien.device import import_sapien

from .robot.robot import Robot
from .utils.create_actor import UnStableError

UNSTABLE_RATE = 0.15
EXPERT_FAIL_RATE = 0.2
SETUP_PAUSE_S = 0.01
MAX_PERIODS_PER_MOVE = 40
ENGINE = "sapien"  # RoboTwin's simulator
SETUP_RECORD_ENV = "ROBOTWIN_STANDIN_SETUP_RECORD"  # a file for each set-up's keyword arguments (module docstring)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sapien = import_sapien()  # the Vulkan loader pointed at a device first


def _world(task: str, randomized: bool, width: int, height: int) -> DualPiperEnv:
    """A new SAPIEN scene of ``task`` (RoboTwin builds one in every set-up)."""
    return make(task, engine=ENGINE, cameras=(), image_width=width, image_height=height,
                randomization="randomized" if randomized else "clean", step_limit=10**9)  # fmt: skip


class Base_Task:  # noqa: N801 (RoboTwin's name)
    def _init_task_env_(self, **kwargs: Any) -> None:
        if os.environ.get(SETUP_RECORD_ENV):
            with open(os.environ[SETUP_RECORD_ENV], "a", encoding="utf-8") as f:
                f.write(json.dumps(kwargs, default=str) + "\n")
        self.world = None
        np.random.seed(kwargs.get("seed", 0))
        time.sleep(SETUP_PAUSE_S)
        unstable = np.random.rand() < UNSTABLE_RATE
        self.expert_fails = bool(np.random.rand() < EXPERT_FAIL_RATE)
        self.layout_seed = layout_seed = int(np.random.randint(2**31 - 1))
        self.task_name = kwargs["task_name"]
        self.eval_mode = kwargs.get("eval_mode", False)
        self.save_freq = kwargs.get("save_freq")
        self.setup_scene()
        randomized = bool(kwargs["domain_randomization"].get("random_background"))
        self.world = _world(self.task_name, randomized, int(kwargs["head_camera_w"]), int(kwargs["head_camera_h"]))
        self.robot = Robot(self.world, **kwargs)
        self.load_camera(**kwargs)
        self.world.reset(seed=layout_seed)
        self.info: dict[str, Any] = {"info": {"{" + k + "}": v for k, v in self.world.instruction_slots.items()}}
        self.plan_success, self.eval_success, self.take_action_cnt = True, False, 0
        self.instruction: str | None = None
        self.step_lim = None
        if unstable:
            raise UnStableError(f"Objects is unstable in seed({kwargs.get('seed', 0)}) (stand-in)")
        if self.eval_mode:
            with open(os.path.join(ROOT, "task_config", "_eval_step_limit.yml"), encoding="utf-8") as f:
                self.step_lim = yaml.safe_load(f).get(self.task_name, 1000)

    def setup_scene(self, **kwargs: Any) -> None:
        sapien.render.set_camera_shader_dir("rt")

    def load_camera(self, **kwargs: Any) -> None:
        self.camera_shader = os.path.basename(sapien.render.get_camera_shader_dir().rstrip("/"))
        wrist = kwargs["camera"].get("collect_wrist_camera", True)
        self.camera_names = ["head_camera"] + (["left_camera", "right_camera"] if wrist else [])

    def _live(self):
        if self.world is None:
            raise RuntimeError("stand-in: this task instance was closed (close_env); set up a new one")
        return self.world

    def get_obs(self) -> dict[str, Any]:
        world = self._live()
        if self.camera_shader == "rt":
            raise RuntimeError("stand-in: the cameras use the ray-tracing shader 'rt' (seconds a frame on a CPU)")
        views = {c: {"rgb": world.render_camera(c), **world.camera_matrices(c)} for c in self.camera_names}
        left, right = self.robot.get_left_arm_jointState(), self.robot.get_right_arm_jointState()
        joint_action = {"left_arm": left[:6], "left_gripper": left[6], "right_arm": right[:6],
                        "right_gripper": right[6], "vector": np.array(left + right)}  # fmt: skip
        ends = {"left_endpose": world.tcp_pose("left").as_pos_quat(), "left_gripper": left[6],
                "right_endpose": world.tcp_pose("right").as_pos_quat(), "right_gripper": right[6]}  # fmt: skip
        return {"observation": views, "joint_action": joint_action, "endpose": ends, "pointcloud": []}

    def _move(self, target: np.ndarray) -> bool:
        """Physics toward ``target`` for as many action periods as the Piper needs at full speed; success checked
        after each period (stops on it)."""
        world, start = self._live(), self.robot.target
        self.robot.set_targets(target)
        distance = float(np.max(np.abs(target - start)[[*range(6), *range(7, 13)]]))
        periods = min(
            MAX_PERIODS_PER_MOVE, max(1, math.ceil(distance * DEFAULT_ACTION_HZ / spec.MAX_JOINT_SPEED_RAD_S))
        )
        for _ in range(periods):
            world.step_chunk(target[None, :])
            if world.success:
                return True
        return False

    def take_action(self, action: Any, action_type: str = "qpos") -> None:
        if self.take_action_cnt == self.step_lim or self.eval_success:
            return
        if action_type != "qpos":
            raise NotImplementedError("stand-in: only qpos actions are modelled")
        target = np.asarray(action, dtype=float)
        if target.shape != (14,):
            raise ValueError(f"stand-in: a qpos action is 14 values, got shape {target.shape}")
        grippers = target[[spec.LEFT_GRIPPER_INDEX, spec.RIGHT_GRIPPER_INDEX]]
        if np.any(grippers < 0.0) or np.any(grippers > 1.0):
            raise ValueError(f"stand-in: grippers are an opening in [0, 1], got {grippers}")
        self.take_action_cnt += 1
        self.eval_success = self._move(target)

    def play_once(self) -> dict[str, Any]:
        """pushcut's scripted expert for this task, through uncounted moves; a recorder frame before each move."""
        world = self._live()
        if self.expert_fails:
            self.plan_success = False
            return self.info
        from pushcut.sim.expert import UnreachableError

        try:
            for action in world.task.expert(world):
                if self.save_freq is not None:
                    self._take_picture()
                self.robot.set_targets(np.asarray(action, dtype=float))
                world.step_chunk(np.asarray(action, dtype=float)[None, :])
                if world.success:
                    break
        except UnreachableError:
            self.plan_success = False
        if self.save_freq is not None:
            self._take_picture()
        return self.info

    def _take_picture(self) -> None:
        """RoboTwin pickles a get_obs() into its data cache here; the stand-in keeps nothing."""

    def check_success(self) -> bool:
        return bool(self._live().success)

    def set_instruction(self, instruction: str | None = None) -> None:
        self.instruction = instruction

    def get_instruction(self) -> str | None:
        return self.instruction

    def close_env(self, clear_cache: bool = False) -> None:
        """Frees the episode's SAPIEN scene (nothing is cached between episodes, so ``clear_cache`` changes nothing)."""
        if self.world is not None:
            self.world.close()
        self.world = self.robot = None  # the robot reads its joints from the scene: it goes with it
