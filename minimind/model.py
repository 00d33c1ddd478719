"""The MiniMind language model, dense and Mixture-of-Experts, in one file.

Read top to bottom in the order data flows: RMSNorm -> RoPE -> Attention -> FeedForward / MoE
-> Block -> MiniMindLM (with ``generate``). Module attribute names give exactly MiniMind's
state-dict keys, so ``pretrain_*.pth`` loads strictly into MiniMind's own model: MiniMind2's, or
MiniMind-3's with ``qk_norm`` (``self_attn.q_norm`` / ``k_norm``) and no shared experts.

Shape suffixes in the MoE code: B batch, T time, D hidden, N = B*T tokens, E routed experts,
K experts per token (top-k).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from minimind.config import ModelConfig
from minimind.losses import linear_cross_entropy
from minimind.moe_dispatch import dispatch


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in float32 whatever the autocast dtype: bf16 loses too much in the mean square.
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.type_as(x)


def rope_tables(head_dim: int, max_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of shape (max_len, head_dim): the half-frequency table concatenated twice."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)  # (max_len, head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (max_len, head_dim)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE. x: (B, T, H, hd); cos/sin: (T, hd), or (B, T, hd) for per-row positions."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    if cos.dim() == 2:
        cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    else:
        cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    return (x * cos + rotated * sin).to(x.dtype)


def document_mask(position_ids: torch.Tensor) -> torch.Tensor:
    """(B, 1, T, T) boolean attention mask of packed documents (True = may attend): causal, and
    inside the query's document, which starts ``position_ids[b, q]`` tokens before the query."""
    T = position_ids.shape[1]
    idx = torch.arange(T, device=position_ids.device)
    doc_start = (idx - position_ids)[:, :, None]  # (B, T, 1): the first key of each query's document
    return ((idx[None, None, :] <= idx[None, :, None]) & (idx[None, None, :] >= doc_start))[:, None]


KVCache = tuple[torch.Tensor, torch.Tensor]


class Attention(nn.Module):
    """Grouped-query causal self-attention through ``scaled_dot_product_attention``; with
    ``qk_norm`` every query and key head is RMS-normalised over head_dim before RoPE."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads = cfg.num_attention_heads
        self.n_kv_heads = cfg.num_key_value_heads
        self.head_dim = cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, self.n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, self.n_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, cfg.hidden_size, bias=False)
        self.q_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps) if cfg.qk_norm else None
        self.k_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps) if cfg.qk_norm else None
        self.dropout = cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, past: KVCache | None = None,
                doc_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, KVCache]:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim)  # (B, T, H, hd)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim)  # (B, T, Hkv, hd)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim)
        if self.q_norm is not None and self.k_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if past is not None:
            k = torch.cat([past[0], k], dim=1)  # (B, T_past + T, Hkv, hd)
            v = torch.cat([past[1], v], dim=1)
        present = (k, v)

        groups = self.n_heads // self.n_kv_heads
        q = q.transpose(1, 2)  # (B, H, T, hd)
        k = k.transpose(1, 2).repeat_interleave(groups, dim=1)  # (B, H, S, hd)
        v = v.transpose(1, 2).repeat_interleave(groups, dim=1)
        S = k.shape[2]
        mask, causal = None, True
        if doc_mask is not None:  # packed documents (no cache): block-diagonal causal
            mask, causal = doc_mask, False
        elif S != T:
            causal = False
            if T > 1:  # several new tokens after a cache: each sees the past and its own prefix
                mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal,
            dropout_p=self.dropout if self.training else 0.0)  # (B, H, T, hd)
        y = y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim)
        return self.resid_dropout(self.o_proj(y)), present


class FeedForward(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.ffn_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.ffn_size, bias=False)
        self.down_proj = nn.Linear(cfg.ffn_size, cfg.hidden_size, bias=False)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x)))


def picks_per_choice(topk_idx_NK: torch.Tensor, valid_BT: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """One count per (token, chosen expert), 0 for padding, in ``like``'s dtype: what ``index_add_``
    adds to a per-expert counter. No ``bincount``: that reads its size back from the device (a host
    sync on CUDA) and breaks a compiled graph."""
    if valid_BT is None:
        return torch.ones(topk_idx_NK.numel(), dtype=like.dtype, device=topk_idx_NK.device)
    return valid_BT.reshape(-1, 1).expand_as(topk_idx_NK).reshape(-1).to(like.dtype)


class MoEGate(nn.Module):
    """Softmax router choosing the top-k experts per token, with the balance loss (router_balance
    aux_loss/both) and/or a per-expert bias that shifts which experts are chosen (bias/both).

    The bias (``expert_bias``, a saved buffer) is added to the scores for the top-k *selection*
    only; the mixing weights are the unbiased scores of the chosen experts. The trainer moves it
    after each optimizer step (``minimind.training.balance``) from the loads counted here."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.top_k = cfg.num_experts_per_tok
        self.n_experts = cfg.n_routed_experts
        self.norm_topk_prob = cfg.norm_topk_prob
        self.alpha = cfg.aux_loss_alpha if cfg.router_balance != "bias" else 0.0
        self.seq_aux = cfg.seq_aux
        self.weight = nn.Parameter(torch.empty(self.n_experts, cfg.hidden_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        biased = cfg.router_balance != "aux_loss"
        self.expert_bias: torch.Tensor | None
        self.register_buffer("expert_bias", torch.zeros(self.n_experts) if biased else None)
        # Picks per expert since the last bias update (training mode; non-padding tokens).
        self.register_buffer("bias_load", torch.zeros(self.n_experts) if biased else None, persistent=False)

    def forward(self, x_BTD: torch.Tensor, valid_BT: torch.Tensor | None = None):
        """Returns (topk_idx_NK, topk_weight_NK, aux_loss). ``valid_BT`` masks out padding."""
        B, T, D = x_BTD.shape
        E, K = self.n_experts, self.top_k
        logits_NE = F.linear(x_BTD.reshape(-1, D).float(), self.weight.float())
        scores_NE = logits_NE.softmax(dim=-1)
        if self.expert_bias is None:
            topk_weight_NK, topk_idx_NK = torch.topk(scores_NE, K, dim=-1, sorted=False)
        else:
            _, topk_idx_NK = torch.topk(scores_NE + self.expert_bias, K, dim=-1, sorted=False)
            topk_weight_NK = scores_NE.gather(1, topk_idx_NK)  # the bias never enters the mixing weights
            if self.training:
                self._count_load(topk_idx_NK, valid_BT)
        if self.norm_topk_prob:  # top-1: the chosen weight becomes 1 (MiniMind-3, Qwen3-MoE)
            topk_weight_NK = topk_weight_NK / (topk_weight_NK.sum(dim=-1, keepdim=True) + 1e-20)

        aux_loss = scores_NE.new_zeros(())
        if self.training and self.alpha > 0:
            valid_N = (torch.ones(B * T, device=x_BTD.device) if valid_BT is None
                       else valid_BT.reshape(-1).to(scores_NE.dtype))
            picks_NE = torch.zeros_like(scores_NE).scatter_(1, topk_idx_NK, 1.0) * valid_N[:, None]
            masked_scores_NE = scores_NE * valid_N[:, None]
            if self.seq_aux:
                n_valid_B = valid_N.view(B, T).sum(1).clamp(min=1)  # tokens per sequence
                # ce[b, e] = picks of e in sequence b / (T * K / E): 1 for a perfectly even router
                ce_BE = picks_NE.view(B, T, E).sum(1) / (n_valid_B[:, None] * K / E)
                mean_score_BE = masked_scores_NE.view(B, T, E).sum(1) / n_valid_B[:, None]
                aux_loss = (ce_BE * mean_score_BE).sum(dim=1).mean() * self.alpha
            else:
                n_valid = valid_N.sum().clamp(min=1)
                fraction_E = picks_NE.sum(0) / (n_valid * K)  # share of all picks per expert
                mean_score_E = masked_scores_NE.sum(0) / n_valid
                aux_loss = (mean_score_E * fraction_E * E).sum() * self.alpha
        return topk_idx_NK, topk_weight_NK.to(x_BTD.dtype), aux_loss

    @torch.no_grad()
    def _count_load(self, topk_idx_NK: torch.Tensor, valid_BT: torch.Tensor | None) -> None:
        self.bias_load.index_add_(0, topk_idx_NK.reshape(-1), picks_per_choice(topk_idx_NK, valid_BT, self.bias_load))


class MoEFeedForward(nn.Module):
    """Routed experts plus always-on shared experts: the gate chooses (``MoEGate``), ``dispatch``
    runs the chosen experts as grouped matmuls (``minimind.moe_dispatch``)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.experts = nn.ModuleList(FeedForward(cfg) for _ in range(cfg.n_routed_experts))
        self.gate = MoEGate(cfg)
        self.shared_experts = nn.ModuleList(FeedForward(cfg) for _ in range(cfg.n_shared_experts))
        # Tokens routed to each expert since the trainer last read them (training mode only).
        self.register_buffer("expert_counts", torch.zeros(cfg.n_routed_experts), persistent=False)
        self.aux_loss: torch.Tensor | None = None

    def forward(self, x_BTD: torch.Tensor, valid_BT: torch.Tensor | None = None) -> torch.Tensor:
        B, T, D = x_BTD.shape
        topk_idx_NK, topk_weight_NK, self.aux_loss = self.gate(x_BTD, valid_BT)
        if self.training:
            self._count(topk_idx_NK, valid_BT)
        out_BTD = dispatch(x_BTD.reshape(-1, D), topk_idx_NK, topk_weight_NK, self.experts).view(B, T, D)
        for shared in self.shared_experts:
            out_BTD = out_BTD + shared(x_BTD)
        return out_BTD

    @torch.no_grad()
    def _count(self, topk_idx_NK: torch.Tensor, valid_BT: torch.Tensor | None) -> None:
        """Routing statistics on the device (no sync): padding positions do not count."""
        self.expert_counts.index_add_(0, topk_idx_NK.reshape(-1),
                                      picks_per_choice(topk_idx_NK, valid_BT, self.expert_counts))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MoEFeedForward(cfg) if cfg.use_moe else FeedForward(cfg)

    def forward(self, x, cos, sin, past=None, valid=None, doc_mask=None):
        attn_out, present = self.self_attn(self.input_layernorm(x), cos, sin, past, doc_mask)
        x = x + attn_out
        h = self.post_attention_layernorm(x)
        x = x + (self.mlp(h, valid) if isinstance(self.mlp, MoEFeedForward) else self.mlp(h))
        return x, present


class Backbone(nn.Module):
    """``model.*`` in the state dict: embeddings, blocks, final norm."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        cos, sin = rope_tables(cfg.head_dim, cfg.max_position_embeddings, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)


@dataclass
class ModelOutput:
    logits: torch.Tensor | None  # (B, T, vocab); None when targets were given (the loss never builds them)
    loss: torch.Tensor | None  # masked-mean cross entropy (without the aux loss)
    aux_loss: torch.Tensor  # MoE balance loss summed over layers (0 for dense)
    past: list[KVCache] | None = None


class MiniMindLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.model = Backbone(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)
        self.lm_head.weight = self.model.embed_tokens.weight  # tied: one tensor, two names

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor | None = None,
                loss_mask: torch.Tensor | None = None, past: list[KVCache] | None = None,
                use_cache: bool = False, position_ids: torch.Tensor | None = None,
                reduction: str = "mean") -> ModelOutput:
        """input_ids (B, T). targets (B, T) enable the loss: the mean over the masked tokens, or with
        ``reduction="sum"`` their sum (the trainer divides by the step's tokens, all micro-batches and
        ranks together); loss_mask (B, T) weights it and marks
        the positions that count for MoE routing statistics (padding = 0). position_ids (B, T), each
        token's position in its document (packed documents, no cache), select the RoPE angles and
        keep attention inside each document; None = one sequence per row, the causal fast path."""
        B, T = input_ids.shape
        start = past[0][0].shape[1] if past else 0
        if start + T > self.config.max_position_embeddings:
            raise ValueError(f"sequence of {start + T} tokens exceeds max_position_embeddings="
                             f"{self.config.max_position_embeddings}")
        doc_mask = None
        if position_ids is None:
            cos = self.model.rope_cos[start:start + T]
            sin = self.model.rope_sin[start:start + T]
        else:
            cos, sin = self.model.rope_cos[position_ids], self.model.rope_sin[position_ids]  # (B, T, hd)
            doc_mask = document_mask(position_ids)
        x = self.model.dropout(self.model.embed_tokens(input_ids))  # (B, T, D)
        valid = loss_mask.bool() if loss_mask is not None else None
        presents = []
        for i, layer in enumerate(self.model.layers):
            x, present = layer(x, cos, sin, past[i] if past else None, valid, doc_mask)
            presents.append(present)
        h = self.model.norm(x)
        if targets is None:
            return ModelOutput(self.lm_head(h), None, self.aux_loss(), presents if use_cache else None)
        # The loss never materialises the (B, T, vocab) fp32 logits: chunked fused cross-entropy.
        if loss_mask is None:
            weights = torch.full((B * T,), 1.0 if reduction == "sum" else 1.0 / (B * T), device=h.device)
        else:
            weights = loss_mask.reshape(-1).float()
            if reduction != "sum":
                weights = weights / weights.sum().clamp(min=1)
        loss = linear_cross_entropy(h.reshape(B * T, -1), self.lm_head.weight, targets.reshape(-1), weights)
        return ModelOutput(None, loss, self.aux_loss(), presents if use_cache else None)

    def moe_layers(self) -> list[MoEFeedForward]:
        return [layer.mlp for layer in self.model.layers if isinstance(layer.mlp, MoEFeedForward)]

    def aux_loss(self) -> torch.Tensor:
        device = self.model.embed_tokens.weight.device
        losses = [m.aux_loss for m in self.moe_layers() if m.aux_loss is not None]
        return torch.stack(losses).sum() if losses else torch.zeros((), device=device)

    @torch.no_grad()
    def forget_routing(self) -> None:
        """Zero every routing counter (the dashboard's expert loads and bias balancing's loads), so
        passes that are not training, such as a memory probe, leave no trace in either."""
        for m in self.moe_layers():
            m.expert_counts.zero_()
            if m.gate.bias_load is not None:
                m.gate.bias_load.zero_()

    def router_biases(self) -> list[list[float]]:
        """Per-layer per-expert routing bias (router_balance bias/both; empty otherwise)."""
        return [m.gate.expert_bias.tolist() for m in self.moe_layers() if m.gate.expert_bias is not None]

    def read_expert_counts(self, reset: bool = True) -> list[list[float]]:
        """Per-layer per-expert token counts since the last read (training mode only)."""
        counts = [m.expert_counts.tolist() for m in self.moe_layers()]
        if reset:
            for m in self.moe_layers():
                m.expert_counts.zero_()
        return counts

    def num_parameters(self, detail: bool = False) -> dict[str, Any]:
        """Unique parameters (the tied head counts once); ``active`` = used per token.

        ``detail`` adds the breakdown ``inspect`` shows: embedding, per block (one number when all
        blocks are alike), final norm, and for MoE the expert, router and shared-expert sizes. It
        works on a meta-device model, so a checkpoint's counts need no real weights."""
        def numel(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        total = numel(self)
        active = total
        cfg = self.config
        for moe in self.moe_layers():
            active -= numel(moe.experts[0]) * (cfg.n_routed_experts - cfg.num_experts_per_tok)
        if not detail:
            return {"total": total, "active": active}
        blocks = [numel(layer) for layer in self.model.layers]
        out: dict[str, Any] = {"total": total, "active": active, "embedding": numel(self.model.embed_tokens),
                               "per_block": blocks[0] if len(set(blocks)) == 1 else blocks,
                               "blocks": sum(blocks), "final_norm": numel(self.model.norm), "tied_head": True}
        moes = self.moe_layers()
        if moes:
            per_expert = numel(moes[0].experts[0])
            out["moe"] = {"per_expert": per_expert, "router_per_block": numel(moes[0].gate),
                          "routed_experts_total": per_expert * cfg.n_routed_experts * len(moes),
                          "shared_experts_total": sum(numel(m.shared_experts) for m in moes)}
        return out

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (6 x active matmul params + attention), PaLM appendix B."""
        cfg = self.config
        matmul_params = self.num_parameters()["active"]
        attn_width = cfg.num_attention_heads * cfg.head_dim  # hidden_size unless head_dim is set
        attn = 12 * cfg.num_hidden_layers * attn_width * seq_len / 2  # causal: half the scores
        return 6 * matmul_params + attn

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int = 64, temperature: float = 0.0,
                 top_p: float = 1.0, eos_token_id: int | None = None,
                 generator: torch.Generator | None = None, deadline: float | None = None) -> torch.Tensor:
        """Sample with a KV cache. temperature 0 = greedy. Returns prompt + new tokens (B, T').
        ``deadline`` (a ``time.perf_counter()`` value) stops after the first token past it."""
        was_training = self.training
        self.eval()
        try:
            out = input_ids
            past = None
            next_input = input_ids
            for _ in range(max_new_tokens):
                if out.shape[1] >= self.config.max_position_embeddings:
                    break
                result = self(next_input, past=past, use_cache=True)
                past = result.past
                logits = result.logits[:, -1, :].float()
                if temperature <= 0:
                    next_token = logits.argmax(dim=-1, keepdim=True)
                else:
                    probs = (logits / temperature).softmax(dim=-1)
                    if top_p < 1.0:
                        sorted_probs, sorted_idx = probs.sort(dim=-1, descending=True)
                        drop = sorted_probs.cumsum(dim=-1) - sorted_probs > top_p
                        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
                        probs = torch.zeros_like(probs).scatter_(-1, sorted_idx, sorted_probs)
                    next_token = torch.multinomial(probs, 1, generator=generator)
                out = torch.cat([out, next_token], dim=1)
                next_input = next_token
                if eos_token_id is not None and bool((next_token == eos_token_id).all()):
                    break
                if deadline is not None and time.perf_counter() >= deadline:
                    break
            return out
        finally:
            self.train(was_training)
