"""Key layouts of MiniMind state dicts, and the mapping of each to ours.

  native       MiniMind2's key names, which are also Hugging Face Llama's
               (``model.layers.0.self_attn.q_proj.weight``); the trainer writes these. MiniMind-3
               uses the same names plus ``self_attn.q_norm.weight`` / ``k_norm.weight`` (QK-norm),
               which are also Qwen3's; ``generation`` tells the two apart by those keys.
  minimind-v1  the earlier MiniMind names (``layers.0.attention.wq.weight``). That release applied
               RoPE to interleaved pairs (complex multiplication); ours and HF's rotate halves, so
               q/k rows are regrouped per head when mapping (same attention scores, see
               ``_deinterleave_rows``).
  hf-llama / hf-qwen3 / hf-qwen3-moe / hf-minimind-moe  exported Hugging Face directories: native
               keys, head possibly omitted; Qwen3-MoE's experts may be stored fused
               (``mlp.experts.gate_up_proj``, transformers >= 5), split here (``unfuse_experts``).
"""

from __future__ import annotations

import re

import torch

from minimind.errors import CheckpointError

EMBED = "model.embed_tokens.weight"
HEAD = "lm_head.weight"
# A state dict stored without its config cannot tell how q_proj's rows split into heads. MiniMind
# uses 8 query and 2 key/value heads at every width (head_dim = hidden / 8: 32 at 256 wide, 96 at
# 768), so that is read first; a 64-wide head is the fallback when those counts do not fit.
MINIMIND_HEADS = (8, 2)  # MiniMind's (query, key/value) heads
DEFAULT_HEAD_DIM = 64  # the fallback head size, used only where MINIMIND_HEADS do not fit the shapes
_QK_KEYS = {"native": ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight"),
            "minimind-v1": ("layers.0.attention.wq.weight", "layers.0.attention.wk.weight")}


def assumed_head_dim(q_rows: int, k_rows: int) -> tuple[int, bool]:
    """The head size a bare state dict is read with: (head_dim, whether MiniMind's 8 query / 2
    key/value heads fit). They fit when q_proj's rows split into 8 even-sized heads and k_proj
    has exactly 2 of them; otherwise the 64-wide head of ``DEFAULT_HEAD_DIM``."""
    q_heads, kv_heads = MINIMIND_HEADS
    head_dim, rest = divmod(q_rows, q_heads)
    if not rest and head_dim % 2 == 0 and head_dim > 0 and k_rows == kv_heads * head_dim:
        return head_dim, True
    return DEFAULT_HEAD_DIM, False


def qk_rows(state_dict: dict[str, torch.Tensor]) -> tuple[int, int] | None:
    """Output rows of the first block's q and k projections, in either key layout."""
    for q_key, k_key in _QK_KEYS.values():
        if q_key in state_dict and k_key in state_dict:
            return int(state_dict[q_key].shape[0]), int(state_dict[k_key].shape[0])
    return None

_V1_RENAMES = [  # (earlier MiniMind regex, native replacement)
    (r"^tok_embeddings\.weight$", EMBED),
    (r"^output\.weight$", HEAD),
    (r"^norm\.weight$", "model.norm.weight"),
    (r"^layers\.(\d+)\.attention\.wq\.weight$", r"model.layers.\1.self_attn.q_proj.weight"),
    (r"^layers\.(\d+)\.attention\.wk\.weight$", r"model.layers.\1.self_attn.k_proj.weight"),
    (r"^layers\.(\d+)\.attention\.wv\.weight$", r"model.layers.\1.self_attn.v_proj.weight"),
    (r"^layers\.(\d+)\.attention\.wo\.weight$", r"model.layers.\1.self_attn.o_proj.weight"),
    (r"^layers\.(\d+)\.attention_norm\.weight$", r"model.layers.\1.input_layernorm.weight"),
    (r"^layers\.(\d+)\.ffn_norm\.weight$", r"model.layers.\1.post_attention_layernorm.weight"),
    (r"^layers\.(\d+)\.feed_forward\.gate\.weight$", r"model.layers.\1.mlp.gate.weight"),
    (r"^layers\.(\d+)\.feed_forward\.gate\.expert_bias$", r"model.layers.\1.mlp.gate.expert_bias"),
    (r"^layers\.(\d+)\.feed_forward\.experts\.(\d+)\.w1\.weight$", r"model.layers.\1.mlp.experts.\2.gate_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.experts\.(\d+)\.w2\.weight$", r"model.layers.\1.mlp.experts.\2.down_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.experts\.(\d+)\.w3\.weight$", r"model.layers.\1.mlp.experts.\2.up_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.shared_experts\.w1\.weight$", r"model.layers.\1.mlp.shared_experts.0.gate_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.shared_experts\.w2\.weight$", r"model.layers.\1.mlp.shared_experts.0.down_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.shared_experts\.w3\.weight$", r"model.layers.\1.mlp.shared_experts.0.up_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.w1\.weight$", r"model.layers.\1.mlp.gate_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.w2\.weight$", r"model.layers.\1.mlp.down_proj.weight"),
    (r"^layers\.(\d+)\.feed_forward\.w3\.weight$", r"model.layers.\1.mlp.up_proj.weight"),
]
_V1_RENAMES_RE = [(re.compile(pattern), repl) for pattern, repl in _V1_RENAMES]
# Buffers some MiniMind releases saved (causal mask, RoPE table): not weights.
_V1_BUFFERS_RE = re.compile(r"^(layers\.\d+\.attention\.mask|pos_cis|freqs_cis)$")

_NATIVE_TO_V1 = [  # the inverse of _V1_RENAMES, before the w1/w2/w3 renames
    (r"^model\.embed_tokens\.weight$", "tok_embeddings.weight"), (r"^lm_head\.weight$", "output.weight"),
    (r"^model\.norm\.weight$", "norm.weight"),
    (r"^model\.layers\.(\d+)\.self_attn\.([qkvo])_proj\.weight$", r"layers.\1.attention.w\2.weight"),
    (r"^model\.layers\.(\d+)\.input_layernorm\.weight$", r"layers.\1.attention_norm.weight"),
    (r"^model\.layers\.(\d+)\.post_attention_layernorm\.weight$", r"layers.\1.ffn_norm.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.gate\.(weight|expert_bias)$", r"layers.\1.feed_forward.gate.\2"),
    (r"^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.", r"layers.\1.feed_forward.experts.\2."),
    (r"^model\.layers\.(\d+)\.mlp\.shared_experts\.0\.", r"layers.\1.feed_forward.shared_experts."),
    (r"^model\.layers\.(\d+)\.mlp\.", r"layers.\1.feed_forward."),
]
_V1_FFN_NAMES = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}

_NATIVE_RE = re.compile(
    r"^(model\.embed_tokens\.weight|model\.norm\.weight|lm_head\.weight|"
    r"model\.layers\.\d+\.(input_layernorm|post_attention_layernorm)\.weight|"
    r"model\.layers\.\d+\.self_attn\.[qkvo]_proj\.weight|"
    r"model\.layers\.\d+\.self_attn\.[qk]_norm\.weight|"
    r"model\.layers\.\d+\.mlp\.(gate|up|down)_proj\.weight|"
    r"model\.layers\.\d+\.mlp\.gate\.(weight|expert_bias)|"
    r"model\.layers\.\d+\.mlp\.(experts|shared_experts)\.\d+\.(gate|up|down)_proj\.weight)$")


def detect_layout(keys: list[str] | set[str]) -> str:
    """"native" or "minimind-v1" from the key names, or CheckpointError naming an unknown key."""
    keys = list(keys)
    if "tok_embeddings.weight" in keys:
        return "minimind-v1"
    if EMBED in keys:
        return "native"
    sample = ", ".join(sorted(keys)[:3])
    raise CheckpointError(f"unrecognised key layout: no token embedding (model.embed_tokens.weight or "
                          f"tok_embeddings.weight); first keys: {sample}")


MINIMIND2, MINIMIND3, MINIMIND_V1 = "MiniMind2", "MiniMind-3", "MiniMind (earlier release)"
Q_NORM = "model.layers.0.self_attn.q_norm.weight"


def generation(layout: str, keys: list[str] | set[str] | dict) -> str:
    """Which MiniMind a state dict is from: the earlier layout, else MiniMind-3 when its blocks
    carry QK-norm weights (``self_attn.q_norm.weight``), else MiniMind2."""
    if layout == "minimind-v1":
        return MINIMIND_V1
    return MINIMIND3 if any(k.endswith("self_attn.q_norm.weight") for k in keys) else MINIMIND2


def unfuse_experts(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Qwen3-MoE's fused expert tensors (transformers >= 5) as one gate/up/down matrix per expert:
    ``experts.gate_up_proj`` (E, 2F, D) is gate rows then up rows; ``experts.down_proj`` (E, D, F)."""
    out = {}
    for key, value in sd.items():
        m = re.match(r"^(model\.layers\.\d+\.mlp\.experts)\.(gate_up_proj|down_proj)$", key)
        if not m:
            out[key] = value
            continue
        prefix = m.group(1)
        if m.group(2) == "down_proj":
            for e, w in enumerate(value):
                out[f"{prefix}.{e}.down_proj.weight"] = w
        else:
            gate, up = value.chunk(2, dim=1)
            for e in range(value.shape[0]):
                out[f"{prefix}.{e}.gate_proj.weight"] = gate[e]
                out[f"{prefix}.{e}.up_proj.weight"] = up[e]
    return out


def check_native_keys(state_dict: dict[str, torch.Tensor], where: str) -> None:
    """Every key is one a MiniMind model has (before any shape check)."""
    unknown = sorted(k for k in state_dict if not _NATIVE_RE.match(k))
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise CheckpointError(f"{where}: unexpected key {unknown[0]!r}{more}; not a MiniMind model")


def _deinterleave_rows(w: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Rows of a q/k projection from interleaved-pair RoPE order (x0,y0,x1,y1,...) to rotate-half
    order (x0,x1,...,y0,y1,...) within each head. Rotating pair j by angle t_j is the same map
    in both conventions, and q and k get the same permutation, so q.k is unchanged."""
    out, inp = w.shape
    if out % head_dim:
        raise CheckpointError(f"projection of {out} rows is not a multiple of head_dim={head_dim}")
    w = w.view(out // head_dim, head_dim // 2, 2, inp)  # (heads, pairs, 2, in)
    return w.transpose(1, 2).reshape(out, inp)  # (heads, 2, pairs, in) -> (out, in)


def _interleave_rows(w: torch.Tensor, head_dim: int) -> torch.Tensor:
    """The inverse of ``_deinterleave_rows``."""
    out, inp = w.shape
    w = w.view(out // head_dim, 2, head_dim // 2, inp)  # (heads, halves, pairs, in)
    return w.transpose(1, 2).reshape(out, inp)  # (heads, pairs, halves, in) -> (out, in)


def v1_to_native(state_dict: dict[str, torch.Tensor], head_dim: int) -> dict[str, torch.Tensor]:
    """Earlier MiniMind layout -> native keys, q/k rows regrouped for rotate-half RoPE."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if _V1_BUFFERS_RE.match(key):
            continue
        for pattern, repl in _V1_RENAMES_RE:
            if pattern.match(key):
                new = pattern.sub(repl, key)
                if new.endswith(("self_attn.q_proj.weight", "self_attn.k_proj.weight")):
                    value = _deinterleave_rows(value, head_dim)
                out[new] = value
                break
        else:
            raise CheckpointError(f"unexpected key {key!r} in an earlier-MiniMind (tok_embeddings) state dict")
    return out


def native_to_v1(state_dict: dict[str, torch.Tensor], head_dim: int) -> dict[str, torch.Tensor]:
    """Native -> earlier MiniMind layout (the inverse of ``v1_to_native``)."""
    out = {}
    for key, value in state_dict.items():
        if ".shared_experts." in key and ".shared_experts.0." not in key:
            raise CheckpointError("the earlier MiniMind layout holds one shared expert only")
        new = key
        for pattern, repl in _NATIVE_TO_V1:
            if re.match(pattern, new):
                new = re.sub(pattern, repl, new)
                break
        for name, short in _V1_FFN_NAMES.items():
            new = new.replace(f".{name}.", f".{short}.")
        if re.search(r"attention\.w[qk]\.weight$", new):
            value = _interleave_rows(value, head_dim)
        out[new] = value
    return out


def to_native(raw: dict[str, torch.Tensor], where: str,
              head_dim: int | None) -> tuple[dict[str, torch.Tensor], str, list[str]]:
    """A stored state dict in our form: native keys, float32, the head tied to the embedding (one
    tensor under both names). Returns (state dict, layout, notes for the user)."""
    notes: list[str] = []
    layout = detect_layout(raw.keys())
    sd = unfuse_experts(dict(raw))
    if layout == "minimind-v1":
        rows = qk_rows(sd)
        sd = v1_to_native(sd, head_dim or (assumed_head_dim(*rows)[0] if rows else DEFAULT_HEAD_DIM))
        notes.append("earlier MiniMind layout: keys renamed to the native layout, q/k rows regrouped "
                     "for rotate-half RoPE")
    check_native_keys(sd, where)
    non_float = sorted(k for k, v in sd.items() if not v.is_floating_point())
    if non_float:
        raise CheckpointError(f"{where}: {non_float[0]} has dtype {sd[non_float[0]].dtype}, expected floats")
    embed = sd[EMBED]
    if HEAD in sd and not (sd[HEAD].shape == embed.shape and torch.equal(sd[HEAD], embed)):
        notes.append("lm_head.weight differs from the embedding; this model ties them, the embedding is used")
    sd = {k: v.float() for k, v in sd.items() if k != HEAD}
    sd[HEAD] = sd[EMBED]
    return sd, layout, notes
