"""--sim robotwin on the commands, against the stand-in checkout: the overrides, the pool they open, RoboTwin's expert
rates and demonstrations as a pushcut dataset, a pushcut checkpoint trained further (GRPO) and evaluated in RoboTwin."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pushcut.cli import app
from pushcut.sim.robotwin.backend import expert_rates, open_pool, split_overrides, world_overrides, write_demos
from pushcut.sim.robotwin.pool import RobotwinPool, RobotwinSettings

STANDIN = Path(__file__).parent / "robotwin_standin"
SETTINGS = RobotwinSettings(str(STANDIN), python=sys.executable, task_config="demo_standin_small", timeout_s=120)


def test_sim_robotwin_becomes_env_overrides_that_name_the_engine_and_split_back_into_settings() -> None:
    overrides = world_overrides("robotwin", STANDIN, sys.executable)
    assert overrides == {"engine": "robotwin", "robotwin_dir": str(STANDIN), "robotwin_python": sys.executable}
    settings, rest = split_overrides({**overrides, "step_limit": 7})
    assert settings == RobotwinSettings(str(STANDIN), sys.executable) and rest == {"step_limit": 7}
    assert split_overrides({"step_limit": 7}) == (None, {"step_limit": 7})
    assert world_overrides("mujoco", None, None) == {}
    for sim, folder, message in [("robotwin", None, "needs --robotwin-dir"), ("mujoco", STANDIN, "need --sim robotwin"),
                                 ("bullet", None, "expected one of")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            world_overrides(sim, folder, None)


def test_open_pool_gives_robotwin_workers_for_the_robotwin_engine() -> None:
    """(Its Ray actors: tests/test_robotwin_ray.py.)"""
    overrides = {**world_overrides("robotwin", STANDIN, sys.executable), "image_width": 64, "image_height": 48}
    with pytest.raises(ValueError, match="unknown env backend 'dask'"):
        open_pool("click_bell", 1, overrides, backend="dask")
    with open_pool("click_bell", 1, overrides) as pool:
        assert isinstance(pool, RobotwinPool) and pool.size == (64, 48)
        (obs,) = pool.reset([5])
        assert obs["observation"]["head_camera"]["rgb"].shape == (48, 64, 3)


def test_robotwin_expert_rates_count_the_seeds_the_rule_skipped() -> None:
    rates = expert_rates("click_bell", 3, SETTINGS)
    assert len(rates["robotwin_seeds"]) == 3 and 0 < rates["expert_success"] <= 1
    assert [s // 100 for s in rates["robotwin_seeds"]] == [0, 1, 2]


def test_robotwin_expert_demos_are_a_dataset_pushcut_trains_on(tmp_path: Path) -> None:
    from pushcut.sim.dataset import DemoDataset

    out = tmp_path / "rt_demos"
    summary = write_demos("click_bell", 2, out, SETTINGS, 10, {"image_width": 64, "image_height": 48,
                                                                "cameras": ("head_camera",)})  # fmt: skip
    assert summary["kept"] == 2
    data = DemoDataset(out)
    assert data.task == "click_bell" and data.cameras == ("head_camera",) and len(data.entries) == 2
    assert data.index["env_config"]["engine"] == "robotwin"
    episode = data.episode(0)
    assert episode.actions.shape[1] == 14 and len(episode.actions) == data.entries[0]["length"] > 3
    # action t = the targets of frame t + 1; the states are the measured joints, which follow them closely
    assert not np.array_equal(episode.actions[:-1], episode.states[1:])
    arms = [*range(6), *range(7, 13)]  # the grippers' fingers take longer than one action to follow
    assert np.abs(episode.actions[:-1, arms] - episode.states[1:, arms]).max() < 0.3


def test_the_cli_names_a_missing_install_in_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["sim", "experts", "--task", "click_bell", "--seeds", "1", "--sim", "robotwin",
                                 "--robotwin-dir", str(tmp_path / "RoboTwin")])  # fmt: skip
    assert result.exit_code == 2
    assert "error: --robotwin-dir" in result.output and "git clone -b RLinf_support" in result.output


@pytest.mark.slow
def test_a_pushcut_checkpoint_is_evaluated_in_robotwin(micro_checkpoint) -> None:
    from pushcut.train.evaluate import evaluate

    overrides = {**world_overrides("robotwin", STANDIN, sys.executable), "step_limit": 6}
    result = evaluate(micro_checkpoint, "click_bell", 2, workers=2, env_overrides=overrides)
    assert result["world"]["engine"] == "robotwin" and "evaluated in robotwin" in result["world_note"]
    assert result["episodes"] == 2 and all(o["length"] <= 6 for o in result["per_seed"])


def test_a_pushcut_checkpoint_is_trained_further_in_robotwin(micro_checkpoint, tmp_path: Path) -> None:
    """One GRPO step whose rollouts run in the stand-in's worker; the checkpoint records RoboTwin as its world."""
    import json

    from pushcut.train.checkpoint import read_metadata
    from pushcut.train.grpo import GRPOConfig, train_grpo

    out = tmp_path / "grpo_rt"
    overrides = {**world_overrides("robotwin", STANDIN, sys.executable), "step_limit": 3}
    config = GRPOConfig(init=str(micro_checkpoint), tasks=("click_bell",), out=str(out), steps=1, groups_per_step=1,
                        group_size=2, mini_batches=1, micro_batch=8, rollout_envs=2, env_workers=1,
                        env_overrides=overrides, dynamic_sampling=False, val_every=0, progress=False,
                        device="cpu")  # fmt: skip
    train_grpo(config)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 1 and rows[-1]["rollout/groups_sampled"] == 1
    assert 0 < rows[-1]["rollout/episode_length"] <= 3
    assert read_metadata(out / "latest")["extra"]["world"]["engine"] == "robotwin"
