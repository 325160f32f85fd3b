"""Contract tests of the RoboTwin backend against the stand-in checkout (tests/robotwin_standin: RoboTwin's task API
and its quirks on pushcut's world), run like the real one: the worker in another interpreter, started by path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from pushcut.sim import piper_spec as spec
from pushcut.sim.robotwin.client import RobotwinWorkerError, worker_environment
from pushcut.sim.robotwin.pool import RobotwinPool, RobotwinSettings
from pushcut.sim.robotwin.worker_episode import SEED_STRIDE
from pushcut.sim.sapien.device import LOADER_VARIABLES, configure_vulkan
from pushcut.sim.vector import EnvWorkerError, VectorEnv

STANDIN = Path(__file__).parent / "robotwin_standin"
SETTINGS = RobotwinSettings(str(STANDIN), python=sys.executable, task_config="demo_standin_small", timeout_s=120)
SMALL = {"image_width": 64, "image_height": 48}
SETUP_RECORD_ENV = "ROBOTWIN_STANDIN_SETUP_RECORD"  # the stand-in's record of setup_demo's kwargs (envs/_base_task.py)


@pytest.fixture(scope="module")
def pool():
    """Two click_bell envs in one worker interpreter: its requests run in threads, set-up under the lock."""
    with RobotwinPool("click_bell", 2, SETTINGS, SMALL, num_workers=1) as opened:
        yield opened


def test_the_pool_is_a_vector_env_whose_worker_runs_in_another_interpreter(pool) -> None:
    assert isinstance(pool, VectorEnv)
    (worker,) = pool.workers
    assert worker.proc.poll() is None and worker.pid != os.getpid()
    assert pool.install["planner"] == "mplib" and pool.install["root"] == str(STANDIN.resolve())


def test_a_seed_counts_only_where_set_up_is_stable_and_the_expert_succeeds(pool) -> None:
    obs = pool.reset([6, 6])
    skipped = pool.skipped_seeds[6]
    reasons = {why for _, why in skipped}
    assert {"unstable", "expert failed"} <= reasons  # the stand-in's seeds 600..604: both kinds of skip
    resolved = pool.seed_resolutions[6]["robotwin_seed"]
    assert resolved == 6 * SEED_STRIDE + len(skipped) and [s for s, _ in skipped] == list(range(600, resolved))
    assert pool.call("robotwin_seed") == [resolved, resolved]  # the group's second env reused the resolution
    np.testing.assert_array_equal(
        obs[0]["observation"]["head_camera"]["rgb"], obs[1]["observation"]["head_camera"]["rgb"]
    )
    assert obs[0]["instruction"] == obs[1]["instruction"] and obs[0]["instruction"]
    assert obs[0]["observation"]["head_camera"]["rgb"].shape == (48, 64, 3)  # the env's size (RoboTwin's: 80 x 60)


def test_set_ups_at_once_in_one_worker_give_the_scenes_of_set_ups_alone(pool) -> None:
    together = pool.reset([5, 7])  # both envs set up in threads of one worker: the lock serialises them
    alone = [pool.reset([5, 5])[0], pool.reset([7, 7])[0]]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_array_equal(a["observation"]["head_camera"]["rgb"], b["observation"]["head_camera"]["rgb"])
        assert a["instruction"] == b["instruction"]


def test_the_standin_races_without_a_lock_and_renders_nothing_through_ray_tracing() -> None:
    """What the two tests above lean on: unlocked set-ups in threads draw each other's global numpy state, and the
    stand-in's cameras refuse RoboTwin's own ray-tracing shader (the worker selects the rasteriser). Its scenes are
    SAPIEN's, one per set-up, freed by close_env."""
    script = textwrap.dedent(f"""
        import gc, sys, threading, weakref
        sys.path.insert(0, {str(STANDIN)!r})
        import yaml
        from envs.click_bell import click_bell
        from envs.utils.create_actor import UnStableError
        args = yaml.safe_load(open({str(STANDIN / "task_config" / "demo_standin_small.yml")!r}))
        args.update(task_name="click_bell", embodiment=["piper", "piper", 0.6], dual_arm_embodied=False,
                    planner_backend="mplib", head_camera_w=80, head_camera_h=60)
        def setup(task, seed):
            try:
                task.setup_demo(seed=seed, **args)
            except UnStableError:
                pass
        alone = []
        for seed in (5, 7):
            task = click_bell(); setup(task, seed); alone.append(task.layout_seed)
        tasks = [click_bell(), click_bell()]
        threads = [threading.Thread(target=setup, args=(t, s)) for t, s in zip(tasks, (5, 7))]
        [t.start() for t in threads]; [t.join() for t in threads]
        print("RACED" if [t.layout_seed for t in tasks] != alone else "SAME")
        try:
            tasks[0].get_obs(); print("RENDERED")
        except RuntimeError as error:
            print("REFUSED", error)
        print("ENGINE", tasks[0].world.world.engine)
        scene = weakref.ref(tasks[0].world.world.rig.scene)
        tasks[0].close_env(); gc.collect()
        print("FREED" if scene() is None else "KEPT")
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert "RACED" in out.stdout, out.stdout + out.stderr
    assert "REFUSED" in out.stdout and "ray-tracing" in out.stdout
    assert "ENGINE sapien" in out.stdout and "FREED" in out.stdout, out.stdout + out.stderr


def test_joint_action_holds_the_drive_targets_with_grippers_in_0_1(pool) -> None:
    obs = pool.reset([5, 5])
    target = obs[0]["joint_target"].copy()
    target[0] += 0.4  # left joint1
    target[spec.RIGHT_GRIPPER_INDEX] = 1.3  # beyond open: clipped to 1 before RoboTwin sees it (the stand-in refuses)
    (result, skipped) = pool.step_chunk([target[None, :], None])
    assert skipped is None and result.steps_executed == 1
    sent = target.copy()
    sent[spec.RIGHT_GRIPPER_INDEX] = 1.0
    np.testing.assert_allclose(result.observation["joint_target"], sent)
    measured = result.observation["joint_action"]["vector"]
    assert np.all((measured[[6, 13]] >= 0.0) & (measured[[6, 13]] <= 1.0))
    assert not np.allclose(measured, sent, atol=1e-6)  # the observation's state is measured, not the target


def test_an_expert_replayed_as_chunks_succeeds_and_success_ends_the_chunk_early(pool) -> None:
    run = pool.expert([8, None], record=True)[0]
    assert run is not None and run["steps"] and run["robotwin_seed"] >= 8 * SEED_STRIDE
    assert run["steps"][0][0]["observation"]["head_camera"]["rgb"].shape == (48, 64, 3)
    actions = np.stack([action for _, action in run["steps"]])
    pool.reset([8, 8])
    chunk = np.vstack([actions, np.repeat(actions[-1:], 10, axis=0)])
    (result, _) = pool.step_chunk([chunk, None])
    assert result.terminated and not result.truncated
    assert result.steps_executed < len(chunk) and pool.call("elapsed_steps")[0] == result.steps_executed
    (again, _) = pool.step_chunk([chunk[:3], None])
    assert again.steps_executed == 0 and again.terminated


def test_each_action_is_one_planner_move_counted_against_the_step_limit() -> None:
    with RobotwinPool("click_bell", 1, SETTINGS, {**SMALL, "step_limit": 4}) as limited:
        (obs,) = limited.reset([5])
        assert limited.call("step_limit") == [4]
        hold = np.tile(obs["joint_target"], (3, 1))
        (first,) = limited.step_chunk([hold])
        assert (first.steps_executed, first.truncated) == (3, False)
        (second,) = limited.step_chunk([hold])
        assert (second.steps_executed, second.truncated, second.terminated) == (1, True, False)
        assert second.info["elapsed_steps"] == 4
        (third,) = limited.step_chunk([hold])
        assert third.steps_executed == 0


def test_a_dead_worker_is_an_error_naming_it_and_close_leaves_no_process() -> None:
    opened = RobotwinPool("click_bell", 1, SETTINGS, SMALL)
    (worker,) = opened.workers
    worker.proc.kill()
    worker.proc.wait(10)
    with pytest.raises((RobotwinWorkerError, EnvWorkerError), match="RoboTwin worker"):
        opened.reset([5])
    opened.close()
    assert worker.proc.poll() is not None
    with RobotwinPool("click_bell", 1, SETTINGS, SMALL) as closing:
        proc = closing.workers[0].proc
    assert proc.poll() == 0  # it closed its envs and exited on the close request


def test_the_worker_gets_the_vulkan_device_pushcut_finds_and_a_users_own_choice_is_kept() -> None:
    before = dict(os.environ)
    env = worker_environment({"PATH": "/usr/bin"})
    assert dict(os.environ) == before  # this process's variables are left alone
    found: dict[str, str] = {}
    configure_vulkan(found)  # the device pushcut's own SAPIEN world renders with on this machine
    names = (*LOADER_VARIABLES, "LP_NUM_THREADS")
    assert {n: env.get(n) for n in names} == {n: found.get(n) for n in names}
    assert env["PATH"] == "/usr/bin" and env["PYTHONUNBUFFERED"] == "1"
    own = worker_environment({"VK_ICD_FILENAMES": "/opt/vendor_icd.json"})
    assert own["VK_ICD_FILENAMES"] == "/opt/vendor_icd.json" and "VK_DRIVER_FILES" not in own


def test_the_worker_sets_up_the_dual_piper_with_the_mplib_planner(tmp_path, monkeypatch) -> None:
    """What the worker passes to every setup_demo (the stand-in records it): RoboTwin's dual-Piper embodiment
    ``[piper, piper, 0.6]``, one Piper file for both arms, and the mplib planner (curobo needs CUDA)."""
    record = tmp_path / "setups.jsonl"
    monkeypatch.setenv(SETUP_RECORD_ENV, str(record))  # the worker's environment is this process's
    with RobotwinPool("click_bell", 1, SETTINGS, {**SMALL, "cameras": ()}) as opened:
        opened.reset([5])
    setups = [json.loads(line) for line in record.read_text().splitlines()]
    assert setups and {s["task_name"] for s in setups} == {"click_bell"}
    for kwargs in setups:
        assert kwargs["embodiment"] == ["piper", "piper", 0.6] and kwargs["embodiment_dis"] == 0.6
        assert kwargs["dual_arm_embodied"] is False and kwargs["planner_backend"] == "mplib"
        assert kwargs["left_robot_file"] == kwargs["right_robot_file"] and "piper" in kwargs["left_robot_file"]
