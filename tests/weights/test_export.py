"""Export to Hugging Face (stock Llama for dense, registered minimind_moe for MoE) and to .pth."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from minimind import convert
from minimind.model import MiniMindLM
from tests.checkpoint_fakes import tiny_model, write_checkpoint, write_tokenizer


def test_dense_export_round_trip_through_plain_transformers(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = tiny_model(seed=3)
    torch.save(model.state_dict(), tmp_path / "pretrain_64.pth")
    tok_dir = write_tokenizer(tmp_path / "data" / "tokenizer")
    loaded = convert.load_weights(tmp_path / "pretrain_64.pth", head_dim=32)
    assert convert.find_tokenizer(loaded) == tok_dir  # <pth dir>/data/tokenizer
    result = convert.export_hf(loaded, tmp_path / "hf", tokenizer_dir=tok_dir)
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
    assert AutoTokenizer.from_pretrained(str(tmp_path / "hf")).eos_token_id == 2

    # An exported directory reads back as the same model.
    again = convert.load_weights(tmp_path / "hf")
    assert again.layout == "hf-llama" and again.inferred == set() and again.config == loaded.config
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict[key], value)


def test_moe_export_loads_through_registered_auto_classes(tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    import minimind.hf  # noqa: F401  (registers minimind_moe)

    model = tiny_model(seed=4, use_moe=True)
    ckpt = write_checkpoint(tmp_path / "runs" / "moe" / "checkpoints" / "step_00000050", model, step=50)
    convert.export_hf(convert.load_weights(ckpt), tmp_path / "hf_moe")
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
    assert convert.load_weights(tmp_path / "hf_moe").layout == "hf-minimind-moe"


def test_export_pth_is_half_precision_with_both_tied_keys(tmp_path):
    model = tiny_model(seed=5)
    ckpt = write_checkpoint(tmp_path / "runs" / "r" / "checkpoints" / "step_00000010", model, step=10)
    convert.export_pth(convert.load_weights(ckpt), tmp_path / "pretrain_64.pth")
    sd = torch.load(tmp_path / "pretrain_64.pth", weights_only=True)
    assert set(sd) == set(model.state_dict())
    assert all(v.dtype == torch.float16 for v in sd.values())
    assert torch.equal(sd["lm_head.weight"], sd["model.embed_tokens.weight"])
    strict = MiniMindLM(model.config)
    strict.load_state_dict(sd, strict=True)  # MiniMind's loader is strict
    with pytest.raises(convert.CheckpointError, match="exists"):
        convert.export_pth(convert.load_weights(ckpt), tmp_path / "pretrain_64.pth")


def test_export_refuses_non_empty_target_and_leaves_no_temp(tmp_path):
    torch.save(tiny_model().state_dict(), tmp_path / "m.pth")
    loaded = convert.load_weights(tmp_path / "m.pth", head_dim=32)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "keep.txt").write_text("mine")
    with pytest.raises(convert.CheckpointError, match="not empty"):
        convert.export_hf(loaded, tmp_path / "hf")
    assert (tmp_path / "hf" / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "m.pth"]
