"""MiniMind-3: its key names and shapes, reading its weights, our forward against an independent
reference of its architecture, the parameter counts of the minimind3 profiles, and the stock
Qwen3 / Qwen3-MoE exports."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from minimind import weights
from minimind.checkpoint import save_weights
from minimind.config import ModelConfig, default_ffn_size, resolve
from minimind.model import MiniMindLM
from minimind.training.optim import muon_params
from tests.checkpoint_fakes import write_tokenizer

# A tiny MiniMind-3: head_dim 24 set on its own (4 x 24 = 96 query rows for a 64-wide model).
TINY3 = dict(hidden=64, layers=2, heads=4, kv_heads=2, head_dim=24, vocab=300, ffn=default_ffn_size(64, "pi"))


# ---------------------------------------------------------------------------------------------
# An independent reference of MiniMind-3's architecture, written from its description: attribute
# names give its state-dict keys; eager attention, a per-expert loop, nothing shared with ours.

class RefNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return self.weight * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + self.eps))


class RefMLP(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.gate_proj, self.up_proj = nn.Linear(d, f, bias=False), nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class RefMoE(nn.Module):
    """Softmax router, top-k, the chosen weights renormalised; whole-batch balance loss."""

    def __init__(self, d, f, n_experts, top_k, coef):
        super().__init__()
        self.gate = nn.Linear(d, n_experts, bias=False)
        self.experts = nn.ModuleList(RefMLP(d, f) for _ in range(n_experts))
        self.top_k, self.coef = top_k, coef

    def forward(self, x):
        flat = x.reshape(-1, x.shape[-1])
        probs = self.gate(flat).softmax(-1)
        w, idx = probs.topk(self.top_k, dim=-1)
        w = w / w.sum(-1, keepdim=True)
        out = torch.zeros_like(flat)
        for n in range(flat.shape[0]):
            for j in range(self.top_k):
                out[n] += w[n, j] * self.experts[int(idx[n, j])](flat[n])
        share = torch.zeros(len(self.experts))  # fraction of tokens sent to each expert
        for e in idx.reshape(-1).tolist():
            share[e] += 1.0 / flat.shape[0]
        self.aux = (share * probs.mean(0)).sum() * len(self.experts) * self.coef
        return out.view_as(x)


class RefAttention(nn.Module):
    def __init__(self, d, heads, kv_heads, hd, eps):
        super().__init__()
        self.h, self.kv, self.hd = heads, kv_heads, hd
        self.q_proj, self.k_proj = nn.Linear(d, heads * hd, bias=False), nn.Linear(d, kv_heads * hd, bias=False)
        self.v_proj, self.o_proj = nn.Linear(d, kv_heads * hd, bias=False), nn.Linear(heads * hd, d, bias=False)
        self.q_norm, self.k_norm = RefNorm(hd, eps), RefNorm(hd, eps)

    def forward(self, x, theta):
        B, T, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(B, T, self.h, self.hd))
        k = self.k_norm(self.k_proj(x).view(B, T, self.kv, self.hd))
        v = self.v_proj(x).view(B, T, self.kv, self.hd)
        # RoPE on halves: dimension i pairs with i + hd/2, angle t * theta^(-2i/hd)
        half = self.hd // 2
        ang = torch.arange(T).float()[:, None] * theta ** (-torch.arange(half).float() * 2 / self.hd)
        c, s = ang.cos()[None, :, None], ang.sin()[None, :, None]

        def rope(z):
            a, b = z[..., :half], z[..., half:]
            return torch.cat([a * c - b * s, b * c + a * s], dim=-1)

        q, k = rope(q), rope(k)
        rep = self.h // self.kv
        k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
        scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(self.hd)
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        y = torch.einsum("bhts,bshd->bthd", scores.softmax(-1), v).reshape(B, T, -1)
        return self.o_proj(y)


class RefBlock(nn.Module):
    def __init__(self, p, moe):
        super().__init__()
        d, eps = p["hidden"], 1e-6
        self.self_attn = RefAttention(d, p["heads"], p["kv_heads"], p["head_dim"], eps)
        self.input_layernorm, self.post_attention_layernorm = RefNorm(d, eps), RefNorm(d, eps)
        self.mlp = RefMoE(d, p["ffn"], 4, 1, 5e-4) if moe else RefMLP(d, p["ffn"])

    def forward(self, x, theta):
        x = x + self.self_attn(self.input_layernorm(x), theta)
        return x + self.mlp(self.post_attention_layernorm(x))


class RefBody(nn.Module):
    def __init__(self, p, moe):
        super().__init__()
        self.embed_tokens = nn.Embedding(p["vocab"], p["hidden"])
        self.layers = nn.ModuleList(RefBlock(p, moe) for _ in range(p["layers"]))
        self.norm = RefNorm(p["hidden"], 1e-6)


class RefMiniMind3(nn.Module):
    def __init__(self, p=TINY3, moe=False):
        super().__init__()
        self.model = RefBody(p, moe)
        self.lm_head = nn.Linear(p["hidden"], p["vocab"], bias=False)
        self.lm_head.weight = self.model.embed_tokens.weight  # tie_word_embeddings

    def forward(self, ids, theta=1e6):
        x = self.model.embed_tokens(ids)
        for layer in self.model.layers:
            x = layer(x, theta)
        return self.lm_head(self.model.norm(x))

    def aux_loss(self):
        return sum(layer.mlp.aux for layer in self.model.layers)


def reference_state_dict(moe: bool, seed: int = 0) -> tuple[RefMiniMind3, dict[str, torch.Tensor]]:
    """A reference model with random weights (norms too), rounded to fp16 as MiniMind-3 saves them."""
    torch.manual_seed(seed)
    ref = RefMiniMind3(moe=moe)
    with torch.no_grad():
        for p in ref.parameters():
            p.copy_((torch.randn_like(p) * (0.3 if p.dim() == 1 else 0.08) + (1.0 if p.dim() == 1 else 0.0))
                    .half().float())
    return ref.eval(), {k: v.half() for k, v in ref.state_dict().items()}


def expected_parameters(hidden, layers, heads, kv_heads, head_dim, vocab, ffn, experts=0, top_k=0) -> tuple[int, int]:
    """(total, active) parameters of a MiniMind-3 from its shapes, by hand; the head is tied."""
    attention = hidden * heads * head_dim * 2 + hidden * kv_heads * head_dim * 2 + 2 * head_dim
    mlp = 3 * hidden * ffn
    norms = 2 * hidden
    ffn_total = mlp * experts + hidden * experts if experts else mlp
    ffn_active = mlp * top_k + hidden * experts if experts else mlp
    base = vocab * hidden + hidden
    return base + layers * (attention + norms + ffn_total), base + layers * (attention + norms + ffn_active)


# ---------------------------------------------------------------------------------------------

def test_profiles_have_minimind3_shapes_and_its_own_parameter_counts():
    dense, moe = resolve("minimind3").model, resolve("minimind3-moe").model
    assert (dense.hidden_size, dense.num_hidden_layers, dense.num_attention_heads, dense.num_key_value_heads,
            dense.head_dim, dense.ffn_size, dense.rms_norm_eps, dense.rope_theta) == (768, 8, 8, 4, 96, 2432, 1e-6, 1e6)
    assert dense.qk_norm and not dense.use_moe
    assert (moe.n_routed_experts, moe.num_experts_per_tok, moe.n_shared_experts, moe.seq_aux, moe.aux_loss_alpha,
            moe.norm_topk_prob, moe.router_balance) == (4, 1, 0, False, 5e-4, True, "aux_loss")
    full = dict(hidden=768, layers=8, heads=8, kv_heads=4, head_dim=96, vocab=6400, ffn=2432)
    assert weights.parameter_counts(dense)["total"] == expected_parameters(**full)[0] == 63_912_192
    counts = weights.parameter_counts(moe)
    assert (counts["total"], counts["active"]) == expected_parameters(**full, experts=4, top_k=1)
    assert counts["total"] == 198_416_640
    # The reference itself, on the meta device, agrees: MiniMind-3's sum(p.numel()).
    with torch.device("meta"):
        for cfg, is_moe in ((dense, False), (moe, True)):
            ref = RefMiniMind3(full, moe=is_moe)
            assert sum(p.numel() for p in ref.parameters()) == weights.parameter_counts(cfg)["total"]
            ours = MiniMindLM(cfg).state_dict()
            assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in
                                                                    ref.state_dict().items()}


def test_ffn_rules_and_explicit_head_dim():
    assert default_ffn_size(768, "pi") == 2432 and default_ffn_size(512) == 1408
    cfg = ModelConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=24, qk_norm=True)
    cfg.validate()
    attn = MiniMindLM(cfg).model.layers[0].self_attn
    assert attn.q_proj.weight.shape == (96, 64) and attn.q_norm.weight.shape == (24,)
    assert ModelConfig(hidden_size=64, num_attention_heads=4).head_dim == 16  # null: hidden / heads


@pytest.mark.parametrize("moe", [False, True])
def test_minimind3_weights_read_with_generation_config_and_reference_logits(tmp_path, moe):
    ref, sd = reference_state_dict(moe)
    name = "pretrain_64_moe.pth" if moe else "pretrain_64.pth"
    torch.save(sd, tmp_path / name)
    loaded = weights.load_weights(tmp_path / name)
    assert loaded.layout == "native" and loaded.generation == "MiniMind-3"
    cfg = loaded.config
    assert (cfg.hidden_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.qk_norm,
            cfg.ffn_size, cfg.ffn_rule, cfg.intermediate_size, cfg.rms_norm_eps) == (
        64, 4, 2, 24, True, TINY3["ffn"], "pi", None, 1e-6)
    assert loaded.heads_assumed is None  # head_dim came from q_norm.weight, not a rule
    if moe:
        assert (cfg.n_routed_experts, cfg.num_experts_per_tok, cfg.n_shared_experts, cfg.norm_topk_prob,
                cfg.seq_aux, cfg.aux_loss_alpha) == (4, 1, 0, True, False, 5e-4)
    info = weights.describe(loaded)
    assert info["file"]["generation"] == "MiniMind-3"
    assert info["architecture"]["head_dim"] == {"value": 24, "source": "inferred"}

    ours = MiniMindLM(cfg).eval()
    ours.load_state_dict(loaded.state_dict, strict=True)
    x = torch.randint(0, 300, (2, 11))
    with torch.no_grad():
        diff = (ours(x).logits - ref(x)).abs().max().item()
    assert diff < 1e-4

    if moe:  # the whole-batch balance loss, in training mode
        ours.train()
        ref.train()
        ours(x)
        ref(x)
        assert torch.allclose(ours.aux_loss(), ref.aux_loss(), rtol=1e-5, atol=1e-9)


def test_our_minimind3_weights_load_strictly_into_the_reference(tmp_path):
    for moe in (False, True):
        cfg = resolve("minimind3-moe" if moe else "minimind3",
                      ["model.hidden_size=64", "model.num_hidden_layers=2", "model.num_attention_heads=4",
                       "model.num_key_value_heads=2", "model.head_dim=24", "model.vocab_size=300"]).model
        torch.manual_seed(1)
        model = MiniMindLM(cfg).eval()
        path = save_weights(tmp_path / f"pretrain_64{'_moe' if moe else ''}.pth", model.state_dict(), cfg)
        ref = RefMiniMind3(moe=moe).eval()
        ref.load_state_dict(torch.load(path, weights_only=True), strict=True)  # fp16 -> fp32 copies
        x = torch.randint(0, 300, (1, 9))
        with torch.no_grad():
            rounded = MiniMindLM(cfg).eval()
            rounded.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
            assert (rounded(x).logits - ref(x)).abs().max().item() < 1e-4


def test_qk_norm_weights_go_to_adamw_under_muon():
    model = MiniMindLM(ModelConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, qk_norm=True,
                                   vocab_size=300, num_hidden_layers=2))
    chosen = {id(p) for p in muon_params(model)}
    norms = [p for n, p in model.named_parameters() if n.endswith(("q_norm.weight", "k_norm.weight"))]
    assert len(norms) == 4 and not any(id(p) in chosen for p in norms)


@pytest.mark.parametrize("moe", [False, True])
def test_qwen3_export_round_trip_through_plain_transformers(tmp_path, moe):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    _, sd = reference_state_dict(moe, seed=2)
    torch.save(sd, tmp_path / "w.pth")
    loaded = weights.load_weights(tmp_path / "w.pth")
    tok_dir = write_tokenizer(tmp_path / "tok")
    result = weights.export_hf(loaded, tmp_path / "hf", tokenizer_dir=tok_dir)
    family = "qwen3_moe" if moe else "qwen3"
    assert result["model_type"] == family and "tokenizer.json" in result["tokenizer_files"]
    conf = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert conf["model_type"] == family and "auto_map" not in conf and conf["tie_word_embeddings"] is True
    assert (conf["head_dim"], conf["rms_norm_eps"]) == (24, 1e-6)
    if moe:  # transformers 5 writes num_experts as num_local_experts; AutoConfig reads either
        hf_conf = AutoConfig.from_pretrained(str(tmp_path / "hf"))
        assert (hf_conf.num_experts, hf_conf.num_experts_per_tok, hf_conf.moe_intermediate_size,
                hf_conf.norm_topk_prob, hf_conf.decoder_sparse_step, hf_conf.mlp_only_layers) == (
            4, 1, TINY3["ffn"], True, 1, [])

    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf"), dtype=torch.float32).eval()
    assert type(hf).__name__ == ("Qwen3MoeForCausalLM" if moe else "Qwen3ForCausalLM")
    ours = MiniMindLM(loaded.config).eval()
    ours.load_state_dict(loaded.state_dict)
    x = torch.randint(3, 300, (2, 14))
    with torch.no_grad():
        assert (hf(x).logits - ours(x).logits).abs().max().item() < 1e-4
    prompt = torch.tensor([[1, 40, 41, 42]])
    theirs = hf.generate(prompt, max_new_tokens=8, do_sample=False, eos_token_id=2, pad_token_id=0)
    assert theirs.tolist() == ours.generate(prompt, max_new_tokens=8, eos_token_id=2).tolist()
    assert AutoTokenizer.from_pretrained(str(tmp_path / "hf")).eos_token_id == 2

    again = weights.load_weights(tmp_path / "hf")
    assert again.layout == f"hf-{family.replace('_', '-')}" and again.generation == "MiniMind-3"
    assert again.config == loaded.config and again.inferred == set()
    for key, value in loaded.state_dict.items():
        assert torch.equal(again.state_dict[key], value), key


def test_minimind2_exports_stay_llama_and_biased_moe_stays_minimind_moe():
    from minimind.weights.export import hf_family

    assert hf_family(resolve("default").model) == "llama"
    assert hf_family(resolve("moe").model) == "minimind_moe"
    assert hf_family(resolve("minimind3").model) == "qwen3"
    assert hf_family(resolve("minimind3-moe").model) == "qwen3_moe"
    assert hf_family(resolve("minimind3-moe", ["model.router_balance=both"]).model) == "minimind_moe"


def test_fused_qwen3_moe_experts_split_back_into_our_keys():
    from minimind.weights.export import fuse_experts
    from minimind.weights.layouts import unfuse_experts

    cfg = resolve("minimind3-moe", ["model.hidden_size=64", "model.num_hidden_layers=2", "model.vocab_size=300",
                                    "model.num_attention_heads=4", "model.num_key_value_heads=2"]).model
    sd = MiniMindLM(cfg).state_dict()
    fused = fuse_experts(sd, cfg, {"model.layers.0.mlp.experts.gate_up_proj"})
    assert fused["model.layers.1.mlp.experts.gate_up_proj"].shape == (4, 2 * cfg.ffn_size, 64)
    assert fused["model.layers.1.mlp.experts.down_proj"].shape == (4, 64, cfg.ffn_size)
    back = unfuse_experts(fused)
    assert back.keys() == sd.keys() and all(torch.equal(back[k], v) for k, v in sd.items())


def test_init_from_minimind3_weights_needs_a_minimind3_config(tmp_path):
    from minimind.config import ConfigError
    from minimind.training.policy import check_init_from

    _, sd = reference_state_dict(moe=True)
    torch.save(sd, tmp_path / "pretrain_64_moe.pth")
    tiny = ["model.hidden_size=64", "model.num_hidden_layers=2", "model.num_attention_heads=4",
            "model.num_key_value_heads=2", "model.vocab_size=300"]
    loaded = check_init_from(resolve("minimind3-moe", [*tiny, "model.head_dim=24"]).model, tmp_path / "pretrain_64_moe.pth")
    assert loaded.generation == "MiniMind-3"
    with pytest.raises(ConfigError, match="--init-from"):  # MiniMind2's MoE: no q/k norms, a shared expert
        check_init_from(resolve("moe", tiny).model, tmp_path / "pretrain_64_moe.pth")


def test_a_minimind3_moe_with_a_routing_bias_exports_as_minimind_moe(tmp_path):
    from transformers import AutoModelForCausalLM

    import minimind.hf  # noqa: F401  (registers minimind_moe)

    cfg = resolve("minimind3-moe", ["model.hidden_size=64", "model.num_hidden_layers=2", "model.vocab_size=300",
                                    "model.num_attention_heads=4", "model.num_key_value_heads=2",
                                    "model.head_dim=24", "model.router_balance=both"]).model
    torch.manual_seed(3)
    model = MiniMindLM(cfg).eval()
    with torch.no_grad():
        model.moe_layers()[0].gate.expert_bias.copy_(torch.tensor([0.3, -0.1, 0.0, -0.2]))
    save_weights(tmp_path / "w.pth", model.state_dict(), cfg)
    assert weights.export_hf(weights.load_weights(tmp_path / "w.pth"), tmp_path / "hf")["model_type"] == "minimind_moe"
    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
    x = torch.randint(3, 300, (2, 10))
    with torch.no_grad():
        rounded = MiniMindLM(cfg).eval()
        rounded.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
        assert (hf(x).logits - rounded(x).logits).abs().max().item() < 1e-4
    assert weights.load_weights(tmp_path / "hf").config == cfg
