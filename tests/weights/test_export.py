"""Export to Hugging Face (stock Llama for dense, registered minimind_moe for MoE) and to .pth."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from minimind import weights
from minimind.model import MiniMindLM
from tests.checkpoint_fakes import tiny_model, write_checkpoint, write_run, write_tokenizer


@pytest.mark.slow  # several seconds: real subprocesses or a full-size model
def test_dense_export_round_trip_through_plain_transformers(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = tiny_model(seed=3)
    torch.save(model.state_dict(), tmp_path / "pretrain_64.pth")
    tok_dir = write_tokenizer(tmp_path / "data" / "tokenizer")
    loaded = weights.load_weights(tmp_path / "pretrain_64.pth", head_dim=32)
    assert weights.find_tokenizer(loaded) == tok_dir  # <pth dir>/data/tokenizer
    result = weights.export_hf(loaded, tmp_path / "hf", tokenizer_dir=tok_dir)
    assert result["model_type"] == "llama" and "tokenizer.json" in result["tokenizer_files"]

    conf = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert conf["model_type"] == "llama" and conf["tie_word_embeddings"] is True
    assert conf["architectures"] == ["LlamaForCausalLM"] and "auto_map" not in conf
    assert (conf["bos_token_id"], conf["eos_token_id"], conf["pad_token_id"]) == (1, 2, 0)
    assert conf["rope_parameters"]["rope_theta"] == 1e6 and conf["head_dim"] == 32
    with safe_open(str(tmp_path / "hf" / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "lm_head.weight" not in keys and "model.embed_tokens.weight" in keys  # tied: stored once

    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"), dtype=torch.float32).eval()
    assert type(hf).__name__ == "LlamaForCausalLM"
    x = torch.randint(3, 300, (2, 20))
    with torch.no_grad():
        diff = (hf(x).logits - model(x).logits).abs().max().item()
    assert diff < 1e-4

    prompt = torch.tensor([[1, 40, 41, 42]])
    ours = model.generate(prompt, max_new_tokens=12, eos_token_id=2)
    theirs = hf.generate(prompt, max_new_tokens=12, do_sample=False, eos_token_id=2, pad_token_id=0)
    assert theirs.tolist() == ours.tolist()
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert tok.eos_token_id == 2
    # The exported tokenizer adds bos like training did: plain transformers writes what inspect --generate does.
    ids = tok("the quick brown", return_tensors="pt").input_ids
    assert ids[0, 0].item() == 1
    theirs = hf.generate(ids, max_new_tokens=10, do_sample=False, eos_token_id=2, pad_token_id=0)
    ours = weights.generate_text(loaded, tok_dir, "the quick brown", max_new_tokens=10)
    assert tok.decode(theirs[0, ids.shape[1]:], skip_special_tokens=True) == ours["completion"]

    # An exported directory reads back as the same model.
    again = weights.load_weights(tmp_path / "hf")
    assert again.layout == "hf-llama" and again.inferred == set() and again.config == loaded.config
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict[key], value)


def test_moe_export_loads_through_registered_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    import minimind.hf  # noqa: F401  (registers minimind_moe)

    model = tiny_model(seed=4, use_moe=True)
    ckpt = write_checkpoint(tmp_path / "runs" / "moe" / "checkpoints" / "step_00000050", model, step=50)
    weights.export_hf(weights.load_weights(ckpt), tmp_path / "hf_moe")
    conf = AutoConfig.from_pretrained(str(tmp_path / "hf_moe"))
    assert conf.model_type == "minimind_moe" and conf.n_routed_experts == 4 and conf.num_experts_per_tok == 2
    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf_moe")).eval()
    assert type(hf).__name__ == "MiniMindMoEForCausalLM"
    x = torch.randint(3, 300, (2, 16))
    with torch.no_grad():
        assert (hf(x).logits - model(x).logits).abs().max().item() < 1e-5
    prompt = torch.tensor([[1, 50, 60]])
    theirs = hf.generate(prompt, max_new_tokens=8, do_sample=False, eos_token_id=2, pad_token_id=0)
    assert theirs.tolist() == model.generate(prompt, max_new_tokens=8, eos_token_id=2).tolist()
    assert weights.load_weights(tmp_path / "hf_moe").layout == "hf-minimind-moe"


def test_export_pth_is_half_precision_with_both_tied_keys(tmp_path):
    model = tiny_model(seed=5)
    ckpt = write_checkpoint(tmp_path / "runs" / "r" / "checkpoints" / "step_00000010", model, step=10)
    weights.export_pth(weights.load_weights(ckpt), tmp_path / "pretrain_64.pth")
    sd = torch.load(tmp_path / "pretrain_64.pth", weights_only=True)
    assert set(sd) == set(model.state_dict())
    assert all(v.dtype == torch.float16 for v in sd.values())
    assert torch.equal(sd["lm_head.weight"], sd["model.embed_tokens.weight"])
    strict = MiniMindLM(model.config)
    strict.load_state_dict(sd, strict=True)  # MiniMind's loader is strict
    with pytest.raises(weights.CheckpointError, match="exists"):
        weights.export_pth(weights.load_weights(ckpt), tmp_path / "pretrain_64.pth")


def test_export_refuses_non_empty_target_and_leaves_no_temp(tmp_path):
    torch.save(tiny_model().state_dict(), tmp_path / "m.pth")
    loaded = weights.load_weights(tmp_path / "m.pth", head_dim=32)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "keep.txt").write_text("mine")
    with pytest.raises(weights.CheckpointError, match="not empty"):
        weights.export_hf(loaded, tmp_path / "hf")
    assert (tmp_path / "hf" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "m.pth"]


def test_force_never_replaces_the_source_being_exported(tmp_path):
    model = tiny_model(seed=6)
    run = write_run(tmp_path / "runs" / "r1", model, steps=(10,), incomplete_step=None)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    loaded = weights.load_weights(run)
    for target in (run, run / "checkpoints", tmp_path / "runs"):  # the run itself and its ancestors
        with pytest.raises(weights.CheckpointError, match="holds the source being exported") as exc:
            weights.export_hf(loaded, target, force=True)
        assert "\n" not in str(exc.value) and exc.value.hint
    ckpt_model = run / "checkpoints" / "step_00000010" / "model.pt"
    with pytest.raises(weights.CheckpointError, match="part of the source"):
        weights.export_pth(loaded, ckpt_model, force=True)
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # nothing deleted or rewritten
    assert weights.load_weights(run).training["step"] == 10
    assert not list(tmp_path.glob("**/.*tmp-export*"))


def test_force_refuses_a_directory_that_is_not_an_export(tmp_path):
    torch.save(tiny_model().state_dict(), tmp_path / "m.pth")
    loaded = weights.load_weights(tmp_path / "m.pth", head_dim=32)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(weights.CheckpointError, match="not a previous minimind export") as exc:
        weights.export_hf(loaded, tmp_path / "mine", force=True)
    assert "\n" not in str(exc.value) and "remove it yourself" in exc.value.hint
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pth", "mine"]


def test_force_replaces_a_previous_export(tmp_path):
    first, second = tiny_model(seed=7), tiny_model(seed=8)
    torch.save(first.state_dict(), tmp_path / "a.pth")
    torch.save(second.state_dict(), tmp_path / "b.pth")
    out = tmp_path / "hf"
    weights.export_hf(weights.load_weights(tmp_path / "a.pth", head_dim=32), out)
    marker = json.loads((out / weights.EXPORT_MARKER).read_text())
    assert marker["format"] == "hf" and marker["source"] == str(tmp_path / "a.pth") and marker["time"] > 0
    with pytest.raises(weights.CheckpointError, match="not empty"):  # still needs --force
        weights.export_hf(weights.load_weights(tmp_path / "b.pth", head_dim=32), out)
    result = weights.export_hf(weights.load_weights(tmp_path / "b.pth", head_dim=32), out, force=True)
    assert weights.EXPORT_MARKER not in result["files"] and "model.safetensors" in result["files"]
    assert json.loads((out / weights.EXPORT_MARKER).read_text())["source"] == str(tmp_path / "b.pth")
    again = weights.load_weights(out)
    for key, value in second.state_dict().items():
        assert torch.equal(again.state_dict[key], value), key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pth", "b.pth", "hf"]  # no temp, no old copy


def test_every_exported_file_honours_the_umask(tmp_path):
    import os
    import stat

    loaded = weights.load_weights(write_run(tmp_path / "run", tiny_model(seed=1), incomplete_step=None))
    old = os.umask(0o022)
    try:
        weights.export_hf(loaded, tmp_path / "hf", tokenizer_dir=write_tokenizer(tmp_path / "tok"))
        weights.export_pth(loaded, tmp_path / "w" / "pretrain_64.pth")
    finally:
        os.umask(old)
    files = [p for p in [*(tmp_path / "hf").iterdir(), *(tmp_path / "w").iterdir()] if p.is_file()]
    assert "model.safetensors" in {p.name for p in files}
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
    assert set(modes.values()) == {0o644}, modes
