"""minimind.weights loading: safe reading, config inference, parameter accounting, sources."""

from __future__ import annotations

import pickle

import pytest
import torch

from minimind import weights
from minimind.config import ModelConfig
from minimind.model import MiniMindLM
from tests.checkpoint_fakes import tiny_model, write_checkpoint, write_run


def _save_half(model: MiniMindLM, path):
    torch.save({k: v.half() for k, v in model.state_dict().items()}, path)
    return path


def test_default_dense_counts_and_inference_from_bare_state_dict(tmp_path):
    path = _save_half(MiniMindLM(ModelConfig()), tmp_path / "pretrain_512.pth")
    loaded = weights.load_weights(path)
    params = weights.parameter_counts(loaded.config)
    assert params["total"] == params["active"] == 25_829_888
    assert params["embedding"] == 3_276_800
    assert params["per_block"] == 2_819_072
    assert params["final_norm"] == 512
    cfg = loaded.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads,
            cfg.vocab_size, cfg.ffn_size, cfg.use_moe) == (512, 8, 8, 2, 6400, 1408, False)
    assert loaded.layout == "native" and loaded.source_kind == "pth" and loaded.training is None
    assert {"hidden_size", "num_attention_heads", "rope_theta"} <= loaded.inferred
    assert loaded.state_dict[weights.HEAD] is loaded.state_dict[weights.EMBED]
    assert loaded.state_dict[weights.EMBED].dtype == torch.float32
    assert loaded.file_dtypes == {"float16": 75}


@pytest.mark.slow  # a full-size MoE model
def test_default_moe_counts_from_bare_state_dict(tmp_path):
    path = _save_half(MiniMindLM(ModelConfig(use_moe=True)), tmp_path / "pretrain_512_moe.pth")
    info = weights.describe(weights.load_weights(path))  # what `inspect --json` prints
    assert (info["parameters"]["total"], info["parameters"]["active"]) == (95_052_288, 60_449_280)
    arch = info["architecture"]
    assert arch["use_moe"] == {"value": True, "source": "inferred"}
    assert arch["n_routed_experts"] == {"value": 4, "source": "inferred"}
    assert arch["n_shared_experts"] == {"value": 1, "source": "inferred"}
    assert arch["num_experts_per_tok"] == {"value": 2, "source": "assumed"}
    assert any("top-k 2 assumed" in n for n in info["notes"])


def test_head_dim_override_and_wrong_head_dim(tmp_path):
    model = tiny_model(hidden_size=96, num_attention_heads=4, num_key_value_heads=2)  # head_dim 24
    torch.save(model.state_dict(), tmp_path / "m.pth")
    with pytest.raises(weights.CheckpointError, match="--head-dim"):
        weights.load_weights(tmp_path / "m.pth")
    loaded = weights.load_weights(tmp_path / "m.pth", head_dim=24, rope_theta=1e4)
    assert (loaded.config.num_attention_heads, loaded.config.num_key_value_heads) == (4, 2)
    assert loaded.config.rope_theta == 1e4 and "rope_theta" not in loaded.inferred


def test_run_dir_uses_latest_complete_checkpoint(tmp_path):
    model = tiny_model()
    run = write_run(tmp_path / "runs" / "r1", model, steps=(100, 200), incomplete_step=300)
    loaded = weights.load_weights(run)
    assert loaded.source_kind == "run" and loaded.training["step"] == 200
    assert loaded.inferred == set() and loaded.config == model.config
    summary = weights.describe(loaded)["training"]
    assert summary["complete"] and summary["checkpoints_total"] == 3 and summary["checkpoints_complete"] == 2
    assert summary["optimizer_state"] and summary["rng_state"] and summary["scaler_state"]
    assert all(summary["files_verified"].values())

    incomplete = weights.load_weights(run / "checkpoints" / "step_00000300")
    assert incomplete.training is None
    assert weights.describe(incomplete)["training"]["complete"] is False
    assert any("incomplete" in n for n in incomplete.notes)


def test_checkpoint_sha_mismatch_is_reported(tmp_path):
    ckpt = write_checkpoint(tmp_path / "runs" / "r" / "checkpoints" / "step_00000010", tiny_model(), step=10)
    (ckpt / "optimizer.pt").write_bytes((ckpt / "optimizer.pt").read_bytes() + b"x")
    loaded = weights.load_weights(ckpt)
    assert weights.describe(loaded)["training"]["files_verified"]["optimizer.pt"] is False
    assert any("sha256 mismatch" in n for n in loaded.notes)


class _WritesMarker:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save({"model.embed_tokens.weight": torch.zeros(2, 2), "x": _WritesMarker(marker)}, evil)
    # The file really is malicious: a plain unpickler would create the marker.
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_WritesMarker(control))).close()
    assert control.exists()
    with pytest.raises(weights.CheckpointError, match="refused"):
        weights.load_weights(evil)
    assert not marker.exists()


def test_bad_files_give_one_line_errors(tmp_path):
    good = tmp_path / "good.pth"
    torch.save(tiny_model().state_dict(), good)
    data = good.read_bytes()
    cases = {
        "truncated.pth": (data[: len(data) // 2], "truncated or corrupt"),
        "empty.pth": (b"", "empty"),
        "random.pth": (bytes(range(256)) * 40, "not a PyTorch weights file|truncated or corrupt"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(weights.CheckpointError, match=message) as exc:
            weights.load_weights(tmp_path / name)
        assert "\n" not in str(exc.value)
    for name, obj, message in (("list.pth", [torch.zeros(1)], "found list"), ("str.pth", "hello", "found str"),
                               ("nontensors.pth", {"a": 1, "b": "x"}, "holds no tensors")):
        torch.save(obj, tmp_path / name)
        with pytest.raises(weights.CheckpointError, match=message):
            weights.load_weights(tmp_path / name)


def test_generate_text_greedy_and_seeded_sampling(tmp_path):
    from tests.checkpoint_fakes import write_tokenizer

    model = tiny_model(seed=2)
    torch.save(model.state_dict(), tmp_path / "m.pth")
    tok_dir = write_tokenizer(tmp_path / "tok")
    loaded = weights.load_weights(tmp_path / "m.pth", head_dim=32)
    assert weights.find_tokenizer(loaded) is None
    assert weights.find_tokenizer(loaded, tmp_path / "tok") == tok_dir
    greedy = [weights.generate_text(loaded, tok_dir, "the fox", max_new_tokens=5) for _ in range(2)]
    assert greedy[0] == greedy[1] and greedy[0]["new_tokens"] <= 5
    sampled = [weights.generate_text(loaded, tok_dir, "the fox", max_new_tokens=5, temperature=1.5,
                                     top_p=0.9, seed=s) for s in (1, 1, 2, 3)]
    assert sampled[0] == sampled[1]
    assert len({s["completion"] for s in sampled}) > 1  # a random model sampled hot varies by seed


def test_bare_pth_next_to_runs_takes_the_matching_run_config(tmp_path):
    """out/pretrain_*.pth has no config; the run beside it that has the same shapes tells the head
    count that shapes cannot (head_dim 16 here, where 64 would be assumed)."""
    model = tiny_model(num_attention_heads=4, num_key_value_heads=2, rope_theta=1e4)  # head_dim 16
    write_run(tmp_path / "out" / "runs" / "other", tiny_model(hidden_size=32, num_attention_heads=2),
              steps=(10,), incomplete_step=None)
    write_run(tmp_path / "out" / "runs" / "mine", model, steps=(10,), incomplete_step=None)
    torch.save(model.state_dict(), tmp_path / "out" / "pretrain_64.pth")
    loaded = weights.load_weights(tmp_path / "out" / "pretrain_64.pth")
    assert loaded.config == model.config and loaded.inferred == set()
    assert loaded.config_source.endswith("runs/mine/config.yaml")
    alone = tmp_path / "elsewhere.pth"
    torch.save(model.state_dict(), alone)
    with pytest.raises(weights.CheckpointError, match="--head-dim"):  # k_proj 32 rows: not 64-sized heads
        weights.load_weights(alone)
    assert weights.load_weights(alone, head_dim=16).config.num_attention_heads == 4
