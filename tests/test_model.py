"""The token VLA policy (train/model.py): shapes, bidirectional parallel decoding, sampling maths, learning, and
the local-directory loading path of the 7B preset (exercised with tiny configs)."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from pushcut.train.model import ByteTokenizer, VLAPolicy  # noqa: E402
from pushcut.train.presets import PRESETS, get_preset  # noqa: E402

INSTRUCTIONS = ["Click the bell with the left arm.", "Hand the block over"]


def _batch(policy: VLAPolicy, b: int = 2, seed: int = 0, instructions=None):
    g = torch.Generator().manual_seed(seed)
    cfg = policy.config
    shape = (
        (b, cfg.image_size, cfg.image_size, 3)
        if len(cfg.cameras) == 1
        else (b, len(cfg.cameras), cfg.image_size, cfg.image_size, 3)
    )
    images = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    proprio = torch.rand(b, cfg.proprio_dim, generator=g) * 2 - 1
    instructions = instructions or [INSTRUCTIONS[i % len(INSTRUCTIONS)] for i in range(b)]
    return policy.make_batch(images, instructions, proprio)


@pytest.fixture(scope="module")
def tiny() -> VLAPolicy:
    torch.manual_seed(0)
    return VLAPolicy(get_preset("tiny")).eval()


def test_byte_tokenizer_pads_and_masks():
    tok = ByteTokenizer(max_length=10)
    ids, mask = tok.encode(["ab", "a very long instruction"])
    assert ids.shape == mask.shape == (2, 10)
    assert ids[0, :3].tolist() == [ByteTokenizer.BOS, 3 + ord("a"), 3 + ord("b")]
    assert mask[0].tolist() == [1, 1, 1] + [0] * 7 and (ids[0, 3:] == ByteTokenizer.PAD).all()
    assert mask[1].all()
    assert tok.decode(ids[0].tolist()) == "ab"


def test_shapes_and_parameter_count(tiny):
    n = tiny.num_parameters()
    print(f"tiny preset: {n:,} parameters")
    assert 1_000_000 <= n <= 10_000_000
    cfg = tiny.config
    with torch.no_grad():
        logits = tiny(_batch(tiny, b=3))
    assert logits.shape == (3, cfg.chunk, cfg.action_dim, 256) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()


def test_bad_images_are_rejected(tiny):
    batch = _batch(tiny, b=1)
    with pytest.raises(ValueError, match="uint8"):
        tiny({**batch, "images": batch["images"].float()})
    with pytest.raises(ValueError, match="expects 64x64"):
        tiny({**batch, "images": torch.zeros(1, 32, 32, 3, dtype=torch.uint8)})
    with pytest.raises(ValueError, match="proprio"):
        tiny({k: v for k, v in batch.items() if k != "proprio"})


def test_action_slots_are_bidirectional(tiny):
    """Perturbing the LAST action slot's input embedding must change the FIRST slot's logits (impossible causally),
    and perturbing a vision-independent prefix token changes everything as usual."""
    batch = _batch(tiny, b=1)
    with torch.no_grad():
        base = tiny(batch)
        saved = tiny.action_queries.data.clone()
        try:
            tiny.action_queries.data[-1] += 1.0
            changed = tiny(batch)
        finally:
            tiny.action_queries.data.copy_(saved)
        again = tiny(batch)
    torch.testing.assert_close(again, base)
    first_slot_delta = (changed[0, 0, 0] - base[0, 0, 0]).abs().max().item()
    assert first_slot_delta > 1e-4, first_slot_delta


def test_prompt_padding_is_masked(tiny):
    """A sample's logits do not depend on how much padding its batch-mates force on it."""
    short = "push"
    b2 = _batch(tiny, b=2, instructions=[short, "a much much longer instruction than the first one"])
    b1 = {k: v[:1] for k, v in b2.items()}
    b1["input_ids"], b1["attention_mask"] = tiny.tokenizer.encode([short])
    assert b1["input_ids"].shape[1] < b2["input_ids"].shape[1]
    with torch.no_grad():
        torch.testing.assert_close(tiny(b1)[0], tiny(b2)[0], atol=1e-4, rtol=1e-4)


def test_sample_log_probs_match_recomputed(tiny):
    batch = _batch(tiny, b=2)
    for temp in (0.7, 1.6):
        tokens, logp = tiny.sample(batch, temperature=temp, generator=torch.Generator().manual_seed(1))
        assert tokens.shape == logp.shape == (2, tiny.config.chunk, tiny.config.action_dim)
        assert tokens.dtype == torch.int64 and tokens.min() >= 0 and tokens.max() < 256
        recomputed = tiny.log_probs(batch, tokens, temperature=temp)
        assert recomputed.requires_grad
        torch.testing.assert_close(recomputed.detach(), logp, atol=1e-5, rtol=1e-5)
    # same generator seed → same samples
    t1, _ = tiny.sample(batch, 1.0, generator=torch.Generator().manual_seed(3))
    t2, _ = tiny.sample(batch, 1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(t1, t2)


def test_entropy_grows_with_temperature(tiny):
    batch = _batch(tiny, b=1)
    with torch.no_grad():
        logits = tiny(batch)
        ents = [VLAPolicy.entropy_from_logits(logits, t) for t in (0.25, 1.0, 4.0)]
        torch.testing.assert_close(tiny.entropy(batch, 1.0), ents[1])
    assert (ents[0] <= ents[1] + 1e-6).all() and (ents[1] <= ents[2] + 1e-6).all()
    assert ents[0].mean() < ents[1].mean() < ents[2].mean() <= torch.log(torch.tensor(256.0)) + 1e-5


def test_greedy_is_argmax(tiny):
    batch = _batch(tiny, b=2)
    with torch.no_grad():
        logits = tiny(batch)
    greedy = tiny.greedy(batch)
    assert torch.equal(greedy, logits.argmax(-1))
    cold, _ = tiny.sample(batch, temperature=1e-4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(cold, greedy)
    with pytest.raises(ValueError):
        tiny.sample(batch, temperature=0.0)


def test_cross_entropy_decreases():
    torch.manual_seed(0)
    small = get_preset("tiny", chunk=4, llm={"num_hidden_layers": 2}, vision={"num_hidden_layers": 1})
    policy = VLAPolicy(small).train()
    batch = _batch(policy, b=2)
    target = torch.randint(0, 256, (2, 4, 14), generator=torch.Generator().manual_seed(5))
    opt = torch.optim.AdamW(policy.parameters(), lr=2e-3)
    losses = []
    for _ in range(6):
        loss = policy.loss(batch, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5, losses


def test_multi_camera_and_vit():
    torch.manual_seed(0)
    cfg = dataclasses.replace(
        get_preset("tiny", cameras=("head_camera", "left_camera"), chunk=2),
        vision_class="vit",
        vision=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2, patch_size=16),
    )
    policy = VLAPolicy(cfg).eval()
    with torch.no_grad():
        logits = policy(_batch(policy, b=2))
    assert logits.shape == (2, 2, 14, 256)


def test_presets_are_frozen_and_7b_needs_weights():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["tiny"].chunk = 3
    with pytest.raises(ValueError, match="weights_dir"):
        get_preset("openvla-oft-7b")
    with pytest.raises(ValueError, match="unknown"):
        get_preset("tiny", chnk=3)
    assert get_preset("tiny", llm={"num_hidden_layers": 2}).llm["hidden_size"] == PRESETS["tiny"].llm["hidden_size"]


def _write_small_pretrained_dir(path):
    """A stand-in for a converted OpenVLA-OFT directory: vision/ + llm/ + tokenizer/ from save_pretrained of small
    configs (the LLM keeps the 32064-wide vocabulary so the 7B preset's action ids 31744…31999 exist)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        SiglipVisionConfig,
        SiglipVisionModel,
    )

    SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            patch_size=14,
            image_size=28,
            vision_use_head=False,
        )
    ).save_pretrained(path / "vision")
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=32064,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            pad_token_id=32000,
            tie_word_embeddings=False,
        )
    ).save_pretrained(path / "llm")
    words = "<unk> <s> </s> in : what action should the robot take to click bell ? out".split()  # noqa: SIM905
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", bos_token="<s>", eos_token="</s>").save_pretrained(
        path / "tokenizer"
    )


def test_7b_preset_loads_from_local_directory(tmp_path):
    base = tmp_path / "base"
    _write_small_pretrained_dir(base)
    cfg = get_preset("openvla-oft-7b", weights_dir=str(base), image_size=28, chunk=2, dtype="float32")
    torch.manual_seed(0)
    policy = VLAPolicy(cfg).eval()
    assert policy.llm.config.hidden_size == 32 and policy.action_token_begin == 31744
    batch = _batch(policy, b=2, instructions=["Click the bell", "click"])
    with torch.no_grad():
        logits = policy(batch)
    assert logits.shape == (2, 2, 14, 256)
    # reversed OpenVLA order: bin 0 is token 31999 (only that action row non-zero → only bin 0 non-zero)
    saved = policy.llm.lm_head.weight.data.clone()
    with torch.no_grad():
        policy.llm.lm_head.weight.data[31744:31999] = 0
        only_bin0 = policy(batch)
    policy.llm.lm_head.weight.data.copy_(saved)
    assert (only_bin0[..., 1:] == 0).all() and (only_bin0[..., 0] != 0).all()

    # round trip through save_pretrained / from_pretrained (projector, proprio, action slots included)
    ckpt = tmp_path / "ckpt"
    policy.save_pretrained(ckpt)
    loaded = VLAPolicy.from_pretrained(ckpt).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), logits)

    # a missing file is named in the error
    (ckpt / "vision" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="vision/config.json"):
        VLAPolicy.from_pretrained(ckpt)


def test_tiny_round_trip(tmp_path, tiny):
    batch = _batch(tiny, b=1)
    tiny.save_pretrained(tmp_path / "t")
    loaded = VLAPolicy.from_pretrained(tmp_path / "t").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), tiny(batch))


def test_from_pretrained_names_a_missing_file(tmp_path):
    from pushcut.train.model import EXTRAS_FILE, VLAPolicy
    from pushcut.train.presets import get_preset

    policy = VLAPolicy(get_preset("tiny"))
    policy.save_pretrained(tmp_path / "p")
    (tmp_path / "p" / EXTRAS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=EXTRAS_FILE):
        VLAPolicy.from_pretrained(tmp_path / "p")
