"""minimind.weights.layouts: the earlier MiniMind key layout, and q/k row regrouping for RoPE."""

from __future__ import annotations

import pytest
import torch

from minimind import weights
from minimind.model import MiniMindLM, apply_rope, rope_tables
from tests.checkpoint_fakes import tiny_model, to_earlier_layout


@pytest.mark.parametrize("moe", [False, True])
def test_earlier_layout_recognised_inferred_same_logits(tmp_path, moe):
    model = tiny_model(use_moe=moe, num_attention_heads=2, num_key_value_heads=1)  # head_dim 32
    v1 = to_earlier_layout(model.state_dict(), head_dim=32)
    assert "tok_embeddings.weight" in v1 and "layers.0.attention.wq.weight" in v1
    torch.save(v1, tmp_path / "minimind_v1.pth")
    loaded = weights.load_weights(tmp_path / "minimind_v1.pth", head_dim=32)
    assert loaded.layout == "minimind-v1"
    cfg = loaded.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads,
            cfg.vocab_size, cfg.use_moe) == (64, 2, 2, 1, 300, moe)
    if moe:
        assert (cfg.n_routed_experts, cfg.n_shared_experts) == (4, 1)
    mapped = MiniMindLM(cfg).eval()
    mapped.load_state_dict(loaded.state_dict, strict=True)
    x = torch.randint(0, 300, (2, 12))
    with torch.no_grad():
        assert torch.allclose(mapped(x).logits, model(x).logits, atol=1e-5)


def test_earlier_layout_attention_scores_match_interleaved_rope():
    """The q/k regrouping is right: the earlier release's complex (interleaved-pair) RoPE on the v1
    rows gives the same q.k as our rotate-half RoPE on the mapped rows."""
    torch.manual_seed(1)
    hd, heads, hidden, T, theta = 16, 2, 32, 7, 1e6
    wq, wk = torch.randn(heads * hd, hidden), torch.randn(heads * hd, hidden)
    x = torch.randn(1, T, hidden)

    def interleaved_rope(v):  # (1, T, H, hd), pairs (2j, 2j+1) rotated by angle t * theta^(-2j/hd)
        freqs = 1.0 / theta ** (torch.arange(0, hd, 2).float() / hd)
        angles = torch.outer(torch.arange(T).float(), freqs)
        c = torch.view_as_complex(v.reshape(*v.shape[:-1], -1, 2))
        return torch.view_as_real(c * torch.polar(torch.ones_like(angles), angles)[None, :, None]).flatten(3)

    q1 = interleaved_rope((x @ wq.T).view(1, T, heads, hd))
    k1 = interleaved_rope((x @ wk.T).view(1, T, heads, hd))
    native = weights.v1_to_native({"layers.0.attention.wq.weight": wq, "layers.0.attention.wk.weight": wk}, hd)
    cos, sin = rope_tables(hd, T, theta)
    q2 = apply_rope((x @ native["model.layers.0.self_attn.q_proj.weight"].T).view(1, T, heads, hd), cos, sin)
    k2 = apply_rope((x @ native["model.layers.0.self_attn.k_proj.weight"].T).view(1, T, heads, hd), cos, sin)
    scores1 = torch.einsum("bthd,bshd->bhts", q1, k1)
    scores2 = torch.einsum("bthd,bshd->bhts", q2, k2)
    assert torch.allclose(scores1, scores2, atol=1e-4)


def test_native_to_v1_round_trip_and_saved_mask_gives_context_length(tmp_path):
    model = tiny_model(use_moe=True)
    v1 = weights.native_to_v1(model.state_dict(), head_dim=32)
    assert v1.keys() == to_earlier_layout(model.state_dict(), 32).keys()
    v1["layers.0.attention.mask"] = torch.full((1, 1, 128, 128), float("-inf")).triu(1)
    v1["layers.1.attention.mask"] = v1["layers.0.attention.mask"]
    torch.save(v1, tmp_path / "old.pth")
    loaded = weights.load_weights(tmp_path / "old.pth", head_dim=32)
    assert loaded.config.max_position_embeddings == 128
    assert "max_position_embeddings" not in loaded.inferred
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict[key], value), key
