"""OpenVLA-OFT checkpoints through the whole stack: save → reload (full, LoRA merged, LoRA adapter) gives the same
logits, one SFT step, one GRPO step with real rollouts, FSDP2 over two ranks, one request served over ZeroMQ."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
if importlib.util.find_spec("timm") is None:  # importorskip would import it (timm_import.py imports it specially)
    pytest.skip("timm is not installed (scripts/setup.sh installs it with --no-deps)", allow_module_level=True)

TESTS = Path(__file__).parent
from conftest import SMALL_IMAGES  # noqa: E402

from pushcut.train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from pushcut.train.inference import ChunkPolicy  # noqa: E402
from pushcut.train.openvla.training import TrainSwitches, prepare_for_training  # noqa: E402

TASK = "test_lower_toward_bell"
ENV = {**SMALL_IMAGES, "step_limit": 8}
RNG = np.random.default_rng(1)
FRAMES = [{"head_camera": RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)} for _ in range(2)]
STATES = RNG.uniform(-0.5, 0.5, (2, 14))
TEXTS = ["click the bell", "press the button"]


@pytest.fixture(scope="module", autouse=True)
def lenient_test_tasks():
    """tests/lenient_tasks.py in this process and, through PUSHCUT_TASK_MODULES, in env workers and torchrun ranks."""
    import importlib

    from pushcut.sim.registry import TASK_MODULES_ENV, TASKS

    before, old_env = dict(TASKS), os.environ.get(TASK_MODULES_ENV)
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    os.environ[TASK_MODULES_ENV] = "lenient_tasks"
    module = importlib.reload(sys.modules["lenient_tasks"]) if "lenient_tasks" in sys.modules else None
    yield module or importlib.import_module("lenient_tasks")
    TASKS.clear()
    TASKS.update(before)
    if old_env is None:
        os.environ.pop(TASK_MODULES_ENV, None)
    else:
        os.environ[TASK_MODULES_ENV] = old_env


@pytest.fixture
def tiny_copy(openvla_tiny, tmp_path) -> Path:
    return Path(shutil.copytree(openvla_tiny, tmp_path / "base"))


def logits(directory: Path) -> torch.Tensor:
    runner = ChunkPolicy.from_checkpoint(directory)
    with torch.no_grad():
        return runner.policy(runner.batch(runner.prepare(FRAMES, STATES, TEXTS)))


def trained_policy(directory: Path, switches: TrainSwitches):
    """The checkpoint's policy after one optimizer step on random targets (so saved weights differ from loaded)."""
    loaded = load_checkpoint(directory)
    policy = loaded.policy
    prepare_for_training(policy, switches)
    runner = ChunkPolicy(loaded)
    batch = runner.batch(runner.prepare(FRAMES, STATES, TEXTS))
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-2)
    policy.train()
    policy.loss(batch, torch.randint(0, 256, (2, 25, 14))).backward()
    optimizer.step()
    policy.eval()
    with torch.no_grad():
        return loaded, policy(batch)


@pytest.mark.parametrize("mode", ["full", "lora-merged", "lora-adapter"])
def test_save_then_reload_gives_the_same_logits(tiny_copy, tmp_path, mode):
    switches = TrainSwitches() if mode == "full" else TrainSwitches(lora_rank=4, lora_save=mode.split("-")[1])
    loaded, before = trained_policy(tiny_copy, switches)
    assert not torch.equal(before, logits(tiny_copy))
    out = save_checkpoint(tmp_path / "saved", loaded.policy, loaded.tokenizer, loaded.proprio_stats,
                          preset="ignored", action_hz=10.0, tasks=["click_bell"], step=7, extra={"k": 1})  # fmt: skip
    names = {p.name for p in out.iterdir()}
    side = json.loads((out / "pushcut_openvla.json").read_text())
    assert (side["step"], side["action_hz"], side["tasks"]) == (7, 10.0, ["click_bell"])
    assert side["unnorm_key"] == "click_bell_1k"
    if mode == "lora-adapter":  # peft's format beside the base: a few tensors, no copy of the published weights
        assert {"adapter_config.json", "adapter_model.safetensors"} <= names and "config.json" not in names
        adapter = json.loads((out / "adapter_config.json").read_text())
        assert adapter["base_model_name_or_path"] == str(tiny_copy.resolve()) and adapter["r"] == 4
        from safetensors import safe_open

        with safe_open(str(out / "adapter_model.safetensors"), "pt") as f:
            keys = list(f.keys())  # noqa: SIM118 — safe_open is not a mapping
        assert keys and all(k.startswith("base_model.model.") and k.endswith(("lora_A.weight", "lora_B.weight"))
                            for k in keys)  # fmt: skip
    else:  # the published layout, readable by other OpenVLA-OFT tools
        assert {"config.json", "dataset_statistics.json", "model.safetensors", "tokenizer.json",
                "preprocessor_config.json", "proprio_projector--7_checkpoint.pt"} <= names  # fmt: skip
        config = json.loads((out / "config.json").read_text())
        assert (config["model_type"], config["use_proprio"], config["proprio_dim"]) == ("openvla", True, 14)
        from safetensors import safe_open

        with safe_open(str(out / "model.safetensors"), "pt") as f:
            keys = set(f.keys())
        assert "vision_backbone.featurizer.blocks.0.ls1.scale_factor" in keys
        assert not any("lora" in k or "base_layer" in k for k in keys)
    reloaded = logits(out)
    if mode == "lora-merged":  # W + BA folded in: equal up to float rounding
        torch.testing.assert_close(reloaded, before, rtol=1e-4, atol=1e-4)
    else:
        torch.testing.assert_close(reloaded, before, rtol=0, atol=0)


def test_one_sft_step_full_and_lora(openvla_tiny, click_bell_demos, tmp_path):
    from pushcut.train.sft import SFTConfig, train_sft

    for name, extra in (("full", {}), ("lora", {"lora_rank": 4, "gradient_checkpointing": True})):
        config = SFTConfig(
            data=str(click_bell_demos), out=str(tmp_path / name), init=str(openvla_tiny), max_steps=1, batch_size=2,
            lr=1e-3, warmup_steps=0, num_workers=0, log_every=1, progress=False, device="cpu", **extra,
        )  # fmt: skip
        summary = train_sft(config)
        assert summary["step"] == 1 and np.isfinite(summary["final_loss"])
        ckpt = Path(summary["checkpoint"])
        assert (ckpt / "config.json").is_file() and (ckpt / "training_state.pt").is_file()
        assert not torch.equal(logits(ckpt), logits(openvla_tiny))
        meta = load_checkpoint(ckpt).metadata
        assert meta["extra"]["camera_shape"] == [48, 64] and meta["tasks"] == ["click_bell"]


def test_one_lora_grpo_step_with_real_rollouts(openvla_tiny, tmp_path):
    from pushcut.train.grpo import GRPOConfig, train_grpo
    from pushcut.train.openvla.lora import adapter_state_dict

    config = GRPOConfig(
        init=str(openvla_tiny), tasks=(TASK,), out=str(tmp_path / "grpo"), steps=1, groups_per_step=1, group_size=4,
        mini_batches=1, micro_batch=8, lr=1e-3, temperature=1.6, rollout_envs=4, env_workers=1, env_overrides=ENV,
        val_every=0, allow_new_tasks=True, progress=False, device="cpu", lora_rank=4, lora_save="adapter",
        gradient_checkpointing=True,
    )  # fmt: skip
    summary = train_grpo(config)
    row = summary["history"][-1]
    assert row["rollout/groups_kept"] == 1 and "actor/pg_loss" in row, row
    ckpt = Path(summary["checkpoint"])
    assert (ckpt / "adapter_model.safetensors").is_file()
    policy = load_checkpoint(ckpt).policy
    lora_b = [v for k, v in adapter_state_dict(policy).items() if "lora_B" in k]
    assert any(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: the update moved it
    assert TASK in load_checkpoint(ckpt).metadata["tasks"]


def test_fsdp2_over_two_ranks_trains_the_full_model(openvla_tiny, tmp_path):
    out = tmp_path / "fsdp"
    args = [
        "--init", str(openvla_tiny), "--task", TASK, "--out", str(out), "--steps", "1", "--groups-per-step", "2",
        "--group-size", "4", "--lr", "1e-3", "--rollout-envs", "4", "--env-workers", "1", "--val-every", "0",
        "--set", "allow_new_tasks=true", "--set", "mini_batches=1", "--set", "micro_batch=8",
        "--set", "dynamic_sampling=false", "--set", f"env_overrides={json.dumps(ENV)}", "--set", "progress=false",
        "--set", "parallel=fsdp",
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pushcut", "train", "grpo", *args]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 1 and rows[-1]["dist/param_spread"] == 0.0 and "actor/pg_loss" in rows[-1]
    assert (out / "latest" / "config.json").is_file()  # the published format, full weights
    assert not torch.equal(logits(out / "latest"), logits(openvla_tiny))


def test_serve_one_request_over_zeromq(openvla_tiny):
    from pushcut.deploy.client.policy_client import PolicyClient
    from pushcut.deploy.server.backend import TorchBackend
    from pushcut.deploy.server.policy_server import PolicyServer, ServerConfig

    backend = TorchBackend.from_checkpoint(openvla_tiny)
    server = PolicyServer(backend, ServerConfig(bind="tcp://127.0.0.1:*")).start()
    try:
        with PolicyClient(server.address, timeout_s=120.0) as client:
            info = client.hello(cameras={"head_camera": (48, 64)}, state_dim=14)
            assert (info.chunk, info.action_dim, info.state_dim) == (25, 14, 14)
            assert info.action_hz == pytest.approx(250.0 / 15.0) and info.raw["model_image_size"] == 28
            assert info.raw["checkpoint"]["preset"] == "openvla-oft" and set(info.cameras) == {"head_camera"}
            result = client.infer(FRAMES[0], STATES[0], TEXTS[0])
    finally:
        server.stop()
    runner = backend.policy
    expected = runner.predict(runner.prepare(FRAMES[:1], STATES[:1], TEXTS[:1])).actions[0]
    np.testing.assert_array_equal(result.actions, expected)


def test_a_7d_checkpoint_is_refused_by_the_piper_client_at_hello(tmp_path):
    from pushcut.deploy.client.policy_client import PolicyClient, ProtocolMismatch
    from pushcut.deploy.server.backend import TorchBackend
    from pushcut.deploy.server.policy_server import PolicyServer, ServerConfig
    from pushcut.train.openvla.tiny import write_tiny_checkpoint

    d = write_tiny_checkpoint(tmp_path / "libero", action_dim=7, proprio_dim=8, use_proprio=False,
                              unnorm_keys=("libero_spatial_no_noops",))  # fmt: skip
    server = PolicyServer(TorchBackend.from_checkpoint(d), ServerConfig(bind="tcp://127.0.0.1:*")).start()
    try:
        with PolicyClient(server.address, timeout_s=60.0) as client, pytest.raises(ProtocolMismatch, match="7-D"):
            client.hello(cameras={"head_camera": (48, 64)}, state_dim=14)  # "...7-D actions; Piper pairs need 14"
    finally:
        server.stop()


def test_gpu_check_script_tiny(tmp_path):
    """scripts/gpu_check.sh --tiny: every step of the GPU check (build, write, load, forward of 8, server round trip,
    one LoRA GRPO step with real rollouts, then demos + SFT + one GRPO step with env actors on a local Ray instance)
    on the tiny model on CPU."""
    root = TESTS.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    cmd = ["bash", str(root / "scripts" / "gpu_check.sh"), "--tiny", "--out", str(tmp_path), "--step-limit", "8",
           "--repeats", "1"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "forward, 8 obs, greedy" in result.stdout and "GRPO step: LoRA update" in result.stdout
    numbers = json.loads((tmp_path / "gpu_check.json").read_text())
    for key in ("build_and_write_s", "load_s", "forward_batch8_greedy_s", "server_round_trip_s",
                "grpo_timing_s_rollout", "grpo_timing_s_update"):  # fmt: skip
        assert numbers[key] > 0, key
    assert numbers["server_hello"]["chunk"] == 25 and numbers["grpo_actor_tokens"] > 0
    if importlib.util.find_spec("ray") is None:  # pushcut[ray] is an extra: the stage says why it did not run
        assert "GRPO on Ray                      skipped: --env-backend ray needs Ray" in result.stdout
        return
    assert "GRPO tiny on Ray: rollout" in result.stdout and "GRPO tiny on Ray: update" in result.stdout
    for key in ("ray_checkpoint_build_s", "ray_start_s", "ray_grpo_timing_s_rollout", "ray_grpo_timing_s_update",
                "ray_grpo_timing_s_step", "ray_grpo_total_s", "ray_grpo_actor_tokens"):  # fmt: skip
        assert numbers[key] > 0, key
    split = numbers["ray_grpo_timing_s_rollout"] + numbers["ray_grpo_timing_s_update"]
    assert numbers["ray_grpo_timing_s_step"] >= split  # the step's time holds both phases (and its checkpoint)
    assert numbers["ray_env_actors"] == 2 and numbers["ray_cluster_cpus"] >= 2 and numbers["ray_preset"] == "tiny"


def test_gpu_check_ray_stage_says_why_it_is_skipped(monkeypatch):
    """--no-ray, or Ray not installed: one line in the check's table instead of a failure; a failed stage is one
    line too (the check then exits non-zero after printing the 7B numbers)."""
    from pushcut.bench.gpu_check_ray import error_line, ray_lines, skip_reason

    assert skip_reason(no_ray=True) == "--no-ray"
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as where it is not installed
    reason = skip_reason(no_ray=False)
    assert reason == "--env-backend ray needs Ray, which is not installed here: pip install 'pushcut[ray]'"
    assert ray_lines({"ray_skipped": reason}) == [f"  GRPO on Ray                      skipped: {reason}"]
    line = error_line(RuntimeError("the Ray cluster has 2 free of 2\nTraceback ..."))
    assert line == "RuntimeError: the Ray cluster has 2 free of 2"
    assert ray_lines({"ray_error": line}) == [f"  GRPO on Ray                      failed: {line}"]
