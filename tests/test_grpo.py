"""GRPO (train/grpo.py): the update raises the advantage-weighted log-likelihood, the loop writes documented
metrics and loadable checkpoints, resume is exact, two DDP ranks stay identical, bad input fails early.

Runs on `test_lower_toward_bell` (tests/lenient_tasks.py): a near-random micro policy succeeds in about half of its
episodes there, so groups have mixed outcomes within seconds."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

TESTS = Path(__file__).parent
from conftest import SMALL_IMAGES  # noqa: E402

from pushcut.sim.piper_spec import ARM_ACTION_SLICES  # noqa: E402
from pushcut.train.checkpoint import find_checkpoints, load_checkpoint  # noqa: E402
from pushcut.train.distributed import DistInfo, wrap_for_training  # noqa: E402
from pushcut.train.grpo import GRPOConfig, _update, check_init, train_grpo, trained_tokens  # noqa: E402
from pushcut.train.grpo_math import scheduled_lr  # noqa: E402
from pushcut.train.inference import ChunkPolicy  # noqa: E402
from pushcut.train.provenance import worlds_seen  # noqa: E402

TASK = "test_lower_toward_bell"
ENV = {**SMALL_IMAGES, "step_limit": 8}
METRICS = [
    "rollout/success_rate", "rollout/groups_sampled", "rollout/groups_kept", "rollout/batch_filled",
    "rollout/resample_rounds", "rollout/episode_length", "actor/pg_loss", "actor/clipfrac", "actor/approx_kl",
    "actor/entropy", "actor/grad_norm", "actor/lr", "actor/tokens", "timing_s/rollout", "timing_s/update",
    "timing_s/step", "perf/episodes_per_s",
]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def lenient_test_tasks():
    """Register tests/lenient_tasks.py here and, through PUSHCUT_TASK_MODULES, in every env worker and torchrun rank
    started by this module; undone afterwards so that other test modules see only the real tasks."""
    import importlib

    from pushcut.sim.registry import TASK_MODULES_ENV, TASKS

    before, old_env = dict(TASKS), os.environ.get(TASK_MODULES_ENV)
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    os.environ[TASK_MODULES_ENV] = "lenient_tasks"
    module = importlib.reload(sys.modules["lenient_tasks"]) if "lenient_tasks" in sys.modules else None
    module = module or importlib.import_module("lenient_tasks")
    yield module
    TASKS.clear()
    TASKS.update(before)
    if old_env is None:
        os.environ.pop(TASK_MODULES_ENV, None)
    else:
        os.environ[TASK_MODULES_ENV] = old_env


def small_config(init, out, **overrides) -> GRPOConfig:
    base = dict(
        init=str(init), tasks=(TASK,), out=str(out), steps=2, groups_per_step=2, group_size=4, mini_batches=2,
        micro_batch=8, lr=1e-3, rollout_envs=8, env_workers=2, env_overrides=ENV, val_every=2, val_episodes=4,
        allow_new_tasks=True, progress=False, device="cpu",
    )  # fmt: skip
    return GRPOConfig(**{**base, **overrides})


def weights(directory) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in load_checkpoint(directory).policy.state_dict().items()}


def test_update_raises_the_advantage_weighted_log_likelihood(micro_checkpoint):
    from pushcut.sim.vector import EnvPool
    from pushcut.train.evaluate import policy_env_overrides
    from pushcut.train.rollout import rollout_groups

    runner = ChunkPolicy.from_checkpoint(micro_checkpoint)
    with EnvPool(TASK, 8, policy_env_overrides(runner, ENV), num_workers=2) as pool:
        groups = rollout_groups(runner, pool, [5, 6], 4, 1.6, torch.Generator().manual_seed(0))
    for group in groups:  # make each group mixed, whatever happened: the update is under test here
        group[0].success, group[1].success = True, False
    episodes = [ep for g in groups for ep in g]

    def objective() -> float:
        from pushcut.train.grpo_math import group_advantages

        total = 0.0
        with torch.no_grad():
            for g in groups:
                adv = group_advantages(torch.tensor([[ep.reward for ep in g]]))[0]
                for a, ep in zip(adv.tolist(), g, strict=True):
                    batch = runner.policy.make_batch(ep.images, [ep.instruction] * ep.chunks, ep.proprio)
                    logp = runner.policy.log_probs(batch, torch.from_numpy(ep.tokens), 1.6)
                    total += a * float(logp[torch.from_numpy(ep.valid)].sum())
        return total

    before = objective()
    config = small_config(micro_checkpoint, "unused", mini_batches=1, lr=3e-4, weight_decay=0.0)
    optimizer = torch.optim.AdamW(runner.policy.parameters(), lr=3e-4, weight_decay=0.0)
    info = DistInfo(0, 1, 0, torch.device("cpu"))
    metrics = _update(wrap_for_training(runner.policy, info), optimizer, groups, config, info, 1, False)
    assert objective() > before
    assert metrics["actor/clipfrac"] == 0.0  # one optimizer step: the ratio is exactly 1 when the loss is taken
    assert metrics["actor/tokens"] == sum(int(ep.valid.sum()) * 14 for ep in episodes)
    assert metrics["actor/entropy"] > 0 and np.isfinite(metrics["actor/pg_loss"])

    # the idle-arm mask: only the acting arm's 7 dims of each executed row are trained
    masked = dataclasses.replace(config, mask_idle_arm=True)
    for ep in episodes:
        assert len(ep.acting_arms) == 1
        mask = trained_tokens(ep, True)
        idle = [a for a in ("left", "right") if a not in ep.acting_arms][0]
        assert not mask[..., ARM_ACTION_SLICES[idle]].any()
        np.testing.assert_array_equal(mask[..., ARM_ACTION_SLICES[ep.acting_arms[0]]].all(-1), ep.valid)
    runner.policy.zero_grad(set_to_none=True)
    metrics = _update(wrap_for_training(runner.policy, info), optimizer, groups, masked, info, 2, False)
    assert metrics["actor/tokens"] == sum(int(ep.valid.sum()) * 7 for ep in episodes)
    with pytest.raises(ValueError, match="does not say which arms act"):
        trained_tokens(dataclasses.replace(episodes[0], acting_arms=()), True)


def test_loop_writes_metrics_and_checkpoints_and_resumes_exactly(micro_checkpoint, tmp_path):
    cosine = {"lr_schedule": "cosine", "lr_warmup_steps": 2}  # functions of the step: resumes get the same rates
    full = train_grpo(small_config(micro_checkpoint, tmp_path / "full", steps=3, **cosine))
    rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert "val/success_rate" in rows[0] and "val/success_rate" in rows[2] and "val/success_rate" not in rows[1]
    trained = [r for r in rows[1:] if "actor/pg_loss" in r]
    assert trained, "no step had a mixed group; the lenient test task should give some"
    for name in METRICS:
        assert name in trained[0], name
    for r in trained:
        assert r["actor/lr"] == pytest.approx(scheduled_lr(1e-3, "cosine", r["step"], 3, warmup_steps=2))
    assert full["checkpoint"].endswith("step_3")
    assert [p.name for p in find_checkpoints(tmp_path / "full" / "checkpoints")] == ["step_3"]  # keep_every=10
    runner = ChunkPolicy.from_checkpoint(tmp_path / "full" / "latest")  # what the server loads
    assert TASK in runner.metadata["tasks"] and runner.metadata["extra"]["grpo_config"]["steps"] == 3
    assert runner.metadata["extra"]["world"]["randomization"] == "clean"  # the rollouts' scenes, for eval's note
    start_extra = ChunkPolicy.from_checkpoint(micro_checkpoint).metadata["extra"]
    assert runner.metadata["extra"]["start_worlds"] == worlds_seen(start_extra)  # what the start learned from

    # max_minutes=0 stops the 3-step run after its first step, as a time budget would
    train_grpo(small_config(micro_checkpoint, tmp_path / "cut", steps=3, max_minutes=0.0, **cosine))
    assert (tmp_path / "cut" / "latest").resolve().name == "step_1"
    train_grpo(small_config(micro_checkpoint, tmp_path / "cut", steps=3, resume=True, **cosine))
    resumed_rows = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in resumed_rows] == [0, 1, 2, 3]
    for a, b in zip(rows, resumed_rows, strict=True):
        assert {k: v for k, v in a.items() if not k.startswith(("timing", "perf"))} == pytest.approx(
            {k: v for k, v in b.items() if not k.startswith(("timing", "perf"))}
        )
    w_full, w_cut = weights(tmp_path / "full" / "latest"), weights(tmp_path / "cut" / "latest")
    assert all(torch.equal(w_full[k], w_cut[k]) for k in w_full)
    assert not all(torch.equal(w_full[k], v) for k, v in weights(micro_checkpoint).items())


def _torchrun_grpo(init, out, parallel: str) -> list[dict]:
    args = [
        "--init", str(init), "--task", TASK, "--out", str(out), "--steps", "2", "--groups-per-step", "2",
        "--group-size", "4", "--lr", "1e-3", "--rollout-envs", "4", "--env-workers", "1", "--val-every", "2",
        "--val-episodes", "4", "--set", "allow_new_tasks=true", "--set", "mini_batches=2", "--set", "micro_batch=8",
        "--set", f"env_overrides={json.dumps(ENV)}", "--set", "progress=false", "--set", f"parallel={parallel}",
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pushcut", "train", "grpo", *args]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_two_ranks_stay_identical_and_fsdp_matches_ddp(micro_checkpoint, tmp_path):
    rows = _torchrun_grpo(micro_checkpoint, tmp_path / "ddp", "ddp")
    assert [r["step"] for r in rows] == [0, 1, 2]
    assert all(r["dist/param_spread"] == 0.0 for r in rows[1:])
    assert rows[1]["rollout/groups_sampled"] >= 2  # both ranks rolled out (1 group per wave each)
    assert any("actor/pg_loss" in r for r in rows[1:])
    assert rows[0]["val/success_rate"] * 4 == pytest.approx(round(rows[0]["val/success_rate"] * 4))
    # FSDP2 shards (gloo on CPU) + a full rollout copy per rank: same rollouts, same updates as DDP
    fsdp_rows = _torchrun_grpo(micro_checkpoint, tmp_path / "fsdp", "fsdp")
    assert all(r["dist/param_spread"] == 0.0 for r in fsdp_rows[1:])
    for a, b in zip(rows, fsdp_rows, strict=True):
        for key in ("rollout/success_rate", "rollout/groups_kept", "actor/tokens", "val/success_rate"):
            assert a.get(key) == b.get(key), key
    ddp_w, fsdp_w = weights(tmp_path / "ddp" / "latest"), weights(tmp_path / "fsdp" / "latest")
    for key, value in ddp_w.items():
        torch.testing.assert_close(fsdp_w[key], value, atol=1e-5, rtol=1e-4)
    start = weights(micro_checkpoint)
    assert not all(torch.equal(start[k], v) for k, v in ddp_w.items())


def test_bad_init_fails_before_any_rollout(micro_checkpoint, tmp_path):
    with pytest.raises(ValueError, match=r"not among them.*allow_new_tasks"):
        check_init(micro_checkpoint, (TASK,))
    with pytest.raises(ValueError, match="registered tasks"):
        check_init(micro_checkpoint, ("no_such_task",))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train_grpo(small_config(tmp_path / "missing", tmp_path / "x"))
    with pytest.raises(ValueError, match="multiple of group_size"):
        small_config(micro_checkpoint, tmp_path, rollout_envs=6)
    with pytest.raises(ValueError, match=r"lr_schedule='linear' not in \('constant', 'cosine'\)"):
        small_config(micro_checkpoint, tmp_path, lr_schedule="linear")
    with pytest.raises(ValueError, match="lr_warmup_steps=-1 must be between 0 and steps="):
        small_config(micro_checkpoint, tmp_path, lr_warmup_steps=-1)
    with pytest.raises(ValueError, match="not divisible by world_size"):
        from pushcut.train.grpo_math import plan_batches as plan

        plan(3, 4, 1, 8, world_size=2)


def test_env_worker_crash_stops_the_step_with_its_traceback_and_the_run_resumes(
    micro_checkpoint, tmp_path, lenient_test_tasks
):
    lenient_tasks = lenient_test_tasks
    from pushcut.common.conventions import EVAL_SEED_START, RL_SEED_START
    from pushcut.sim.vector import EnvWorkerError
    from pushcut.train.grpo import _stream

    crash_task = "test_crash_on_listed_seeds"
    config = small_config(micro_checkpoint, tmp_path / "run", tasks=(crash_task,), steps=3, val_every=0)
    step2 = np.random.default_rng(_stream(config.seed, 2, 0, 0, 0)).integers(RL_SEED_START, EVAL_SEED_START, 2)
    fault_file = tmp_path / "fault_seeds.txt"
    fault_file.write_text(" ".join(str(s) for s in step2))
    os.environ[lenient_tasks.FAULT_FILE_ENV] = str(fault_file)
    try:
        with pytest.raises(EnvWorkerError, match="injected fault") as info:
            train_grpo(config)
        assert "Traceback" in info.value.worker_traceback and "initialize_episode" in info.value.worker_traceback
        assert (tmp_path / "run" / "latest").resolve().name == "step_1"
        fault_file.unlink()  # the fault is gone: the run continues from step 1
        summary = train_grpo(dataclasses.replace(config, resume=True))
    finally:
        os.environ.pop(lenient_tasks.FAULT_FILE_ENV, None)
    assert summary["checkpoint"].endswith("step_3")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]


def test_diverged_weights_stop_the_run_and_keep_the_last_good_checkpoint(micro_checkpoint, tmp_path):
    out = tmp_path / "nan"
    train_grpo(small_config(micro_checkpoint, out, steps=1, val_every=0))
    good = weights(out / "latest")
    policy = load_checkpoint(out / "latest").policy
    with torch.no_grad():
        next(policy.parameters()).fill_(float("nan"))
    from pushcut.train.checkpoint import save_checkpoint

    loaded = load_checkpoint(micro_checkpoint)
    bad_init = save_checkpoint(tmp_path / "bad_init", policy, loaded.tokenizer, loaded.proprio_stats,
                               preset="tiny", action_hz=loaded.metadata["action_hz"], tasks=[TASK], step=0)  # fmt: skip
    with pytest.raises(FloatingPointError, match="non-finite.*last good checkpoint is .*step_1"):
        train_grpo(small_config(bad_init, out, steps=3, val_every=0))
    assert all(torch.equal(good[k], v) for k, v in weights(out / "latest").items())
