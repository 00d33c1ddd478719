"""Read any MiniMind checkpoint safely, describe it, and convert it (DESIGN.md 3.1-3.4, 9).

Accepted inputs: a ``.pth``/``.pt`` weights file (ours, or MiniMind's in either key layout), a run
directory (its latest complete checkpoint), a checkpoint directory, or an exported Hugging Face
directory. Every load is ``torch.load(weights_only=True)`` or safetensors: a pickle that would run
code is refused, never executed.

Key layouts:
  native       MiniMind2 / HF-Llama names (``model.layers.0.self_attn.q_proj.weight``), ours.
  minimind-v1  the earlier MiniMind names (``layers.0.attention.wq.weight``). That release applied
               RoPE to interleaved pairs (complex multiplication), ours and HF's rotate halves, so
               q/k rows are regrouped per head when mapping (same attention scores, see
               ``_deinterleave_rows``).
  hf-llama     an exported ``LlamaForCausalLM`` directory (native keys, head possibly omitted).
  hf-minimind-moe  an exported MoE directory (``minimind.hf``).
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import re
import shutil
import warnings
import zipfile
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from minimind.config import ConfigError, ModelConfig
from minimind.errors import MinimindError

EMBED = "model.embed_tokens.weight"
HEAD = "lm_head.weight"
DEFAULT_HEAD_DIM = 64
DEFAULT_TOP_K = 2
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
CHECKPOINT_DIR_RE = re.compile(r"^step_(\d+)$")


class CheckpointError(MinimindError, ValueError):
    """A checkpoint that cannot be read or used: one line naming the file and the reason."""


@dataclass
class LoadedWeights:
    """A checkpoint brought to the native layout, with what is known about it."""

    state_dict: dict[str, torch.Tensor]  # native keys, float32, both EMBED and HEAD (one tensor)
    config: ModelConfig
    inferred: set[str]  # config fields not read from a stored config
    layout: str  # native | minimind-v1 | hf-llama | hf-minimind-moe
    source_kind: str  # pth | run | checkpoint | hf
    training: dict | None = None  # meta.json of a checkpoint
    path: Path = field(default_factory=Path)  # what the user named
    weights_file: Path = field(default_factory=Path)  # the file the tensors came from
    config_source: str | None = None  # the file the stored config came from
    file_dtypes: dict[str, int] = field(default_factory=dict)  # dtype name -> tensor count, as stored
    stored_keys: list[str] = field(default_factory=list)  # keys as stored (before mapping)
    notes: list[str] = field(default_factory=list)  # assumptions and oddities, for the user
    head_dim_assumed: bool = False  # heads were counted with the default head size
    checkpoint: dict[str, Any] | None = None  # checkpoint/run facts (complete, files, siblings)
    tokenizer_hint: Path | None = None  # a dataset/tokenizer directory recorded with the run


# ---------------------------------------------------------------------------------------------
# Safe reading of one file

def safe_torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into one CheckpointError line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before failing; we say why
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        found = re.search(r"GLOBAL (\S+)", str(exc))
        if found:
            detail = f"it references {found.group(1)}"
            raise CheckpointError(
                f"{path}: refused to load: the file contains Python objects other than tensors "
                f"(unpickling it could run code); only weights files are accepted [{detail[:100]}]") from None
        reason = next((line for line in lines if line.startswith("Unsupported")), _short(exc))
        raise CheckpointError(f"{path}: not a PyTorch weights file or corrupt ({reason[:100]})") from None
    except (EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: truncated or corrupt file ({_short(exc)})") from None
    except RuntimeError as exc:
        text = str(exc)
        if any(s in text for s in ("central directory", "PytorchStreamReader", "zip archive", "file read")):
            raise CheckpointError(f"{path}: truncated or corrupt file ({_short(exc)})") from None
        raise CheckpointError(f"{path}: cannot read ({_short(exc)})") from None
    except (ValueError, TypeError, AttributeError, ImportError, KeyError, IndexError, OSError) as exc:
        raise CheckpointError(f"{path}: not a PyTorch weights file ({_short(exc)})") from None


def _short(exc: BaseException) -> str:
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return line[:160]


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes)")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupt safetensors file ({_short(exc)})") from None


def extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a loaded object: a state dict, or one wrapped as {"model": ...} (MiniMind's
    resume files, DDP/compile prefixes stripped)."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors (a state dict), found {type(obj).__name__}")
    if obj and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("model", "state_dict", "model_state_dict", "module"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    tensors = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        kinds = sorted({type(v).__name__ for v in obj.values()}) or ["nothing"]
        raise CheckpointError(f"{path}: holds no tensors (a dict of {', '.join(kinds)}); not a model weights file")
    for prefix in ("module.", "_orig_mod."):
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix):]: v for k, v in tensors.items()}
    return tensors


# ---------------------------------------------------------------------------------------------
# Key layouts

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

_NATIVE_RE = re.compile(
    r"^(model\.embed_tokens\.weight|model\.norm\.weight|lm_head\.weight|"
    r"model\.layers\.\d+\.(input_layernorm|post_attention_layernorm)\.weight|"
    r"model\.layers\.\d+\.self_attn\.[qkvo]_proj\.weight|"
    r"model\.layers\.\d+\.mlp\.(gate|up|down)_proj\.weight|"
    r"model\.layers\.\d+\.mlp\.gate\.weight|"
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


def _check_keys(state_dict: dict[str, torch.Tensor], where: str) -> None:
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
    return w.transpose(1, 2).reshape(out, inp)


def _interleave_rows(w: torch.Tensor, head_dim: int) -> torch.Tensor:
    out, inp = w.shape
    w = w.view(out // head_dim, 2, head_dim // 2, inp)  # (heads, halves, pairs, in)
    return w.transpose(1, 2).reshape(out, inp)


def v1_to_native(state_dict: dict[str, torch.Tensor], head_dim: int) -> dict[str, torch.Tensor]:
    """Earlier MiniMind layout (DESIGN 3.2) -> native keys, q/k rows regrouped for rotate-half RoPE."""
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
    inverse = [
        (r"^model\.embed_tokens\.weight$", "tok_embeddings.weight"), (r"^lm_head\.weight$", "output.weight"),
        (r"^model\.norm\.weight$", "norm.weight"),
        (r"^model\.layers\.(\d+)\.self_attn\.([qkvo])_proj\.weight$", r"layers.\1.attention.w\2.weight"),
        (r"^model\.layers\.(\d+)\.input_layernorm\.weight$", r"layers.\1.attention_norm.weight"),
        (r"^model\.layers\.(\d+)\.post_attention_layernorm\.weight$", r"layers.\1.ffn_norm.weight"),
        (r"^model\.layers\.(\d+)\.mlp\.gate\.weight$", r"layers.\1.feed_forward.gate.weight"),
        (r"^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.", r"layers.\1.feed_forward.experts.\2."),
        (r"^model\.layers\.(\d+)\.mlp\.shared_experts\.0\.", r"layers.\1.feed_forward.shared_experts."),
        (r"^model\.layers\.(\d+)\.mlp\.", r"layers.\1.feed_forward."),
    ]
    ffn = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}
    out = {}
    for key, value in state_dict.items():
        if ".shared_experts." in key and ".shared_experts.0." not in key:
            raise CheckpointError("the earlier MiniMind layout holds one shared expert only")
        new = key
        for pattern, repl in inverse:
            if re.match(pattern, new):
                new = re.sub(pattern, repl, new)
                break
        for name, short in ffn.items():
            new = new.replace(f".{name}.", f".{short}.")
        if re.search(r"attention\.w[qk]\.weight$", new):
            value = _interleave_rows(value, head_dim)
        out[new] = value
    return out


# ---------------------------------------------------------------------------------------------
# Config inference and parameter accounting

def infer_config(state_dict: dict[str, torch.Tensor], head_dim: int | None = None,
                 max_position_embeddings: int | None = None) -> tuple[ModelConfig, set[str], list[str]]:
    """A ModelConfig from the shapes of a native state dict: (config, inferred fields, notes)."""
    sd = state_dict
    notes: list[str] = []
    vocab, hidden = sd[EMBED].shape
    layer_ids = sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.layers\.(\d+)\.", k))})
    if not layer_ids:
        raise CheckpointError("no transformer blocks (model.layers.N.*) in the state dict")
    n_layers = layer_ids[-1] + 1
    if layer_ids != list(range(n_layers)):
        missing = sorted(set(range(n_layers)) - set(layer_ids))
        raise CheckpointError(f"blocks {missing} are missing from the state dict (found up to layer {n_layers - 1})")
    hd = head_dim or DEFAULT_HEAD_DIM
    q_out = sd["model.layers.0.self_attn.q_proj.weight"].shape[0]
    k_out = sd["model.layers.0.self_attn.k_proj.weight"].shape[0]
    if q_out != hidden:
        raise CheckpointError(f"q_proj has {q_out} outputs for hidden size {hidden}; this model "
                              f"(heads x head_dim != hidden) is not supported")
    if q_out % hd or k_out % hd:
        raise CheckpointError(f"q_proj ({q_out}) / k_proj ({k_out}) outputs are not multiples of "
                              f"head_dim={hd}; pass --head-dim with the model's head size")
    heads, kv_heads = q_out // hd, k_out // hd
    if head_dim is None:
        notes.append(f"head_dim {hd} assumed (MiniMind's default; pass --head-dim if it differs): "
                     f"{heads} query / {kv_heads} key-value heads")
    experts = sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.layers\.0\.mlp\.experts\.(\d+)\.", k))})
    shared = sorted({int(m.group(1)) for k in sd
                     if (m := re.match(r"model\.layers\.0\.mlp\.shared_experts\.(\d+)\.", k))})
    use_moe = bool(experts)
    gate_key = ("model.layers.0.mlp.experts.0.gate_proj.weight" if use_moe
                else "model.layers.0.mlp.gate_proj.weight")
    if gate_key not in sd:
        raise CheckpointError(f"missing {gate_key}: cannot tell the feed-forward size")
    ffn = sd[gate_key].shape[0]
    rule = 64 * math.ceil((8 * hidden / 3) / 64)
    kwargs: dict[str, Any] = dict(hidden_size=hidden, num_hidden_layers=n_layers, num_attention_heads=heads,
                                  num_key_value_heads=kv_heads, vocab_size=vocab,
                                  intermediate_size=None if ffn == rule else ffn, use_moe=use_moe)
    inferred = {"hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size",
                "intermediate_size", "use_moe", "rope_theta", "rms_norm_eps", "max_position_embeddings"}
    notes.append("rope_theta 1e6 assumed (not stored in a weights file; MiniMind's earliest release used 1e4)")
    if max_position_embeddings:
        kwargs["max_position_embeddings"] = max_position_embeddings
    if use_moe:
        n_routed = len(experts)
        top_k = min(DEFAULT_TOP_K, n_routed)
        kwargs.update(n_routed_experts=n_routed, n_shared_experts=len(shared), num_experts_per_tok=top_k,
                      norm_topk_prob=top_k > 1)
        inferred |= {"n_routed_experts", "n_shared_experts", "num_experts_per_tok"}
        notes.append(f"MoE top-k {top_k} assumed (experts per token cannot be read from shapes)")
    cfg = ModelConfig(**kwargs)
    try:
        cfg.validate()
    except ConfigError as exc:
        raise CheckpointError(f"inferred config is invalid: {exc}") from None
    return cfg, inferred, notes


def count_parameters(state_dict: dict[str, torch.Tensor], cfg: ModelConfig) -> dict[str, Any]:
    """Exact counts from the tensors (the tied head counted once)."""
    def numel(prefix: str) -> int:
        return sum(v.numel() for k, v in state_dict.items() if k.startswith(prefix))

    embedding = state_dict[EMBED].numel()
    blocks = [numel(f"model.layers.{i}.") for i in range(cfg.num_hidden_layers)]
    final_norm = numel("model.norm.")
    total = embedding + sum(blocks) + final_norm
    out: dict[str, Any] = {"total": total, "active": total, "embedding": embedding,
                           "per_block": blocks[0] if len(set(blocks)) == 1 else blocks,
                           "blocks": sum(blocks), "final_norm": final_norm, "tied_head": True}
    if cfg.use_moe:
        per_expert = numel("model.layers.0.mlp.experts.0.")
        idle = cfg.n_routed_experts - cfg.num_experts_per_tok
        out["active"] = total - idle * per_expert * cfg.num_hidden_layers
        out["moe"] = {"per_expert": per_expert, "router_per_block": numel("model.layers.0.mlp.gate."),
                      "routed_experts_total": per_expert * cfg.n_routed_experts * cfg.num_hidden_layers,
                      "shared_experts_total": numel("model.layers.0.mlp.shared_experts.") * cfg.num_hidden_layers}
    return out


def _validate_shapes(state_dict: dict[str, torch.Tensor], cfg: ModelConfig, where: str) -> None:
    """Strict load into a meta-device model: missing/unexpected keys and wrong shapes, one line."""
    from minimind.model import MiniMindLM

    with torch.device("meta"):
        model = MiniMindLM(cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing:
        raise CheckpointError(f"{where}: missing {missing[0]}"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                              + " for the config " + _config_brief(cfg))
    if unexpected:
        raise CheckpointError(f"{where}: unexpected key {unexpected[0]}"
                              + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
                              + " for the config " + _config_brief(cfg))
    for key, value in expected.items():
        if tuple(state_dict[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{where}: {key} has shape {tuple(state_dict[key].shape)}, the config "
                                  f"{_config_brief(cfg)} expects {tuple(value.shape)}")


def _config_brief(cfg: ModelConfig) -> str:
    moe = f", MoE {cfg.n_routed_experts}x top-{cfg.num_experts_per_tok}" if cfg.use_moe else ""
    return (f"(hidden {cfg.hidden_size}, {cfg.num_hidden_layers} layers, {cfg.num_attention_heads}/"
            f"{cfg.num_key_value_heads} heads, vocab {cfg.vocab_size}{moe})")


# ---------------------------------------------------------------------------------------------
# Loading any source

def load_weights(path: str | Path, head_dim: int | None = None, rope_theta: float | None = None,
                 max_position_embeddings: int | None = None) -> LoadedWeights:
    """Load a .pth/.pt file, a run dir, a checkpoint dir or an exported HF dir (native keys, fp32).

    ``head_dim`` / ``rope_theta`` / ``max_position_embeddings`` override values that a bare state
    dict cannot tell (they are ignored when a stored config gives them)."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "config.json").is_file():
            loaded = _load_hf_dir(path)
        elif (path / "checkpoints").is_dir() or (path / "events.jsonl").is_file():
            loaded = _load_run_dir(path, head_dim)
        elif (path / "model.pt").is_file() or (path / "meta.json").is_file():
            loaded = _load_checkpoint_dir(path, head_dim, "checkpoint")
        else:
            raise CheckpointError(f"{path}: not a run, checkpoint or Hugging Face directory "
                                  f"(no checkpoints/, model.pt or config.json)")
    else:
        loaded = _load_weights_file(path, head_dim, max_position_embeddings)
    if rope_theta is not None and "rope_theta" in loaded.inferred:
        loaded.config = replace(loaded.config, rope_theta=float(rope_theta))
        loaded.inferred.discard("rope_theta")
        loaded.notes = [n for n in loaded.notes if not n.startswith("rope_theta")]
    if max_position_embeddings is not None and "max_position_embeddings" in loaded.inferred:
        loaded.config = replace(loaded.config, max_position_embeddings=int(max_position_embeddings))
        loaded.inferred.discard("max_position_embeddings")
    return loaded


def _finish_state_dict(raw: dict[str, torch.Tensor], where: str, head_dim: int | None,
                       hf: bool = False) -> tuple[dict[str, torch.Tensor], str, list[str]]:
    """Map to native keys, tie the head, convert to float32."""
    notes: list[str] = []
    layout = detect_layout(raw.keys())
    sd = dict(raw)
    if layout == "minimind-v1":
        sd = v1_to_native(sd, head_dim or DEFAULT_HEAD_DIM)
        notes.append("earlier MiniMind layout: keys renamed to the native layout, q/k rows regrouped "
                     "for rotate-half RoPE")
    _check_keys(sd, where)
    non_float = sorted(k for k, v in sd.items() if not v.is_floating_point())
    if non_float:
        raise CheckpointError(f"{where}: {non_float[0]} has dtype {sd[non_float[0]].dtype}, expected floats")
    embed = sd[EMBED]
    if HEAD in sd and not (sd[HEAD].shape == embed.shape and torch.equal(sd[HEAD], embed)):
        notes.append("lm_head.weight differs from the embedding; this model ties them, the embedding is used")
    sd = {k: v.float() for k, v in sd.items() if k != HEAD}
    sd[HEAD] = sd[EMBED]
    return sd, layout, notes


def _dtype_counts(raw: dict[str, torch.Tensor]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in raw.values():
        name = str(v.dtype).replace("torch.", "")
        counts[name] = counts.get(name, 0) + 1
    return counts


def _load_weights_file(path: Path, head_dim: int | None, max_pos: int | None) -> LoadedWeights:
    if path.suffix == ".safetensors":
        raw = read_safetensors(path)
    else:
        raw = extract_state_dict(safe_torch_load(path), path)
    # The earliest MiniMind saved its causal mask: its size is the training context length.
    mask = raw.get("layers.0.attention.mask")
    sd, layout, notes = _finish_state_dict(raw, str(path), head_dim)
    run_config = _matching_run_config(path, sd) if head_dim is None and layout == "native" else None
    if run_config is not None:
        cfg, config_source = run_config
        _validate_shapes(sd, cfg, str(path))
        notes.append(f"config read from {config_source}: the run next to this file whose shapes match")
        return LoadedWeights(state_dict=sd, config=cfg, inferred=set(), layout=layout, source_kind="pth",
                             path=path, weights_file=path, config_source=str(config_source),
                             file_dtypes=_dtype_counts(raw), stored_keys=list(raw), notes=notes,
                             tokenizer_hint=_tokenizer_hint_of(config_source))
    cfg, inferred, more = infer_config(sd, head_dim, max_pos or (int(mask.shape[-1]) if mask is not None else None))
    if mask is not None and not max_pos:
        notes.append(f"max_position_embeddings {cfg.max_position_embeddings} read from the saved attention mask")
        inferred.discard("max_position_embeddings")
    _validate_shapes(sd, cfg, str(path))
    return LoadedWeights(state_dict=sd, config=cfg, inferred=inferred, layout=layout, source_kind="pth",
                         path=path, weights_file=path, file_dtypes=_dtype_counts(raw), stored_keys=list(raw),
                         notes=notes + more, head_dim_assumed=head_dim is None)


def _shape_signature(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v) for k, v in shapes.items() if k != HEAD}


def _matching_run_config(pth: Path, state_dict: dict[str, torch.Tensor]) -> tuple[ModelConfig, Path] | None:
    """``out/pretrain_*.pth`` carries no config, but the run that wrote it (``out/runs/*/config.yaml``)
    does: the most recent run whose model has exactly these shapes gives heads, RoPE theta, etc.,
    which shapes alone cannot (e.g. the tiny profile's head_dim 32)."""
    from minimind.config import load_config
    from minimind.model import MiniMindLM

    runs = pth.parent / "runs"
    if not runs.is_dir():
        return None
    wanted = _shape_signature({k: tuple(v.shape) for k, v in state_dict.items()})
    configs = sorted(runs.glob("*/config.yaml"), key=lambda p: p.stat().st_mtime, reverse=True)
    for config_path in configs[:50]:
        try:
            cfg = load_config(config_path).model
        except (ConfigError, OSError):
            continue
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in MiniMindLM(cfg).state_dict().items()}
        if _shape_signature(shapes) == wanted:
            return cfg, config_path
    return None


def _tokenizer_hint_of(config_path: Path) -> Path | None:
    from minimind.config import load_config

    data_path = load_config(config_path).data.path
    if not data_path:
        return None
    run_dir = config_path.parent
    for cand in (Path(data_path), run_dir.parent.parent / data_path):
        if cand.is_dir():
            return cand
    return None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: invalid JSON ({_short(exc)})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path, bool]]:
    """(step, dir, complete) for each ``checkpoints/step_N`` of a run, by step."""
    found = []
    ckpt_root = run_dir / "checkpoints"
    if ckpt_root.is_dir():
        for d in ckpt_root.iterdir():
            m = CHECKPOINT_DIR_RE.match(d.name)
            if m and d.is_dir():
                found.append((int(m.group(1)), d, (d / "meta.json").is_file()))
    return sorted(found)


def _load_run_dir(run_dir: Path, head_dim: int | None) -> LoadedWeights:
    ckpts = list_checkpoints(run_dir)
    complete = [c for c in ckpts if c[2]]
    if not complete:
        detail = f"{len(ckpts)} incomplete" if ckpts else "none"
        raise CheckpointError(f"{run_dir}: the run has no complete checkpoint yet ({detail} under checkpoints/)")
    step, ckpt_dir, _ = complete[-1]
    loaded = _load_checkpoint_dir(ckpt_dir, head_dim, "run")
    loaded.path = run_dir
    assert loaded.checkpoint is not None
    loaded.checkpoint.update({"run_dir": str(run_dir), "checkpoints_total": len(ckpts),
                              "checkpoints_complete": len(complete), "steps": [c[0] for c in complete]})
    return loaded


def _load_checkpoint_dir(ckpt_dir: Path, head_dim: int | None, kind: str) -> LoadedWeights:
    from minimind.config import load_config

    model_file = ckpt_dir / "model.pt"
    meta_path = ckpt_dir / "meta.json"
    meta = _read_json(meta_path) if meta_path.is_file() else None
    raw = extract_state_dict(safe_torch_load(model_file), model_file)
    sd, layout, notes = _finish_state_dict(raw, str(model_file), head_dim)
    config_path = ckpt_dir / "config.yaml"
    if not config_path.is_file() and (ckpt_dir.parent.parent / "config.yaml").is_file():
        config_path = ckpt_dir.parent.parent / "config.yaml"  # the run's own config
    tokenizer_hint = None
    if config_path.is_file():
        config = load_config(config_path)
        cfg, inferred, more = config.model, set(), []
        if config.data.path:
            tokenizer_hint = _resolve_data_path(config.data.path, ckpt_dir)
        config_source = str(config_path)
    else:
        cfg, inferred, more = infer_config(sd, head_dim)
        config_source = None
    _validate_shapes(sd, cfg, str(model_file))
    head_dim_assumed = config_source is None and head_dim is None
    files = {}
    for name in ("model.pt", "optimizer.pt", "state.pt", "config.yaml", "meta.json"):
        p = ckpt_dir / name
        files[name] = p.stat().st_size if p.is_file() else None
    info: dict[str, Any] = {"dir": str(ckpt_dir), "complete": meta is not None, "files": files}
    if meta is None:
        notes.append("incomplete checkpoint: meta.json is missing (it is written last)")
    else:
        info["verified"] = _verify_files(ckpt_dir, meta.get("files") or {})
        bad = [name for name, ok in info["verified"].items() if ok is False]
        if bad:
            notes.append(f"sha256 mismatch for {', '.join(bad)}: the checkpoint was modified or damaged")
    state_path = ckpt_dir / "state.pt"
    if state_path.is_file():
        info["state_keys"] = _state_keys(state_path)
    return LoadedWeights(state_dict=sd, config=cfg, inferred=inferred, layout=layout, source_kind=kind,
                         training=meta, path=ckpt_dir, weights_file=model_file, config_source=config_source,
                         file_dtypes=_dtype_counts(raw), stored_keys=list(raw), notes=notes + more,
                         checkpoint=info, tokenizer_hint=tokenizer_hint, head_dim_assumed=head_dim_assumed)


def _resolve_data_path(data_path: str, ckpt_dir: Path) -> Path | None:
    """The dataset dir recorded in a run's config, as given or relative to the out dir / cwd."""
    candidates = [Path(data_path)]
    run_dir = ckpt_dir.parent.parent
    candidates += [run_dir.parent.parent / data_path, run_dir / data_path]
    for c in candidates:
        if c.is_dir():
            return c
    return None


def _verify_files(ckpt_dir: Path, digests: dict[str, str]) -> dict[str, bool | None]:
    out: dict[str, bool | None] = {}
    for name, digest in digests.items():
        p = ckpt_dir / name
        if not p.is_file():
            out[name] = False
            continue
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out[name] = h.hexdigest() == digest
    return out


def _state_keys(path: Path) -> list[str] | None:
    """Top-level keys of state.pt (rng, scaler, data position), or None if it cannot be read safely."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - only used to report what is there
        return None
    return sorted(str(k) for k in obj) if isinstance(obj, dict) else None


def _load_hf_dir(path: Path) -> LoadedWeights:
    conf = _read_json(path / "config.json")
    model_type = conf.get("model_type")
    if model_type not in ("llama", "minimind_moe"):
        raise CheckpointError(f"{path / 'config.json'}: model_type {model_type!r} is not llama or minimind_moe")
    single = path / "model.safetensors"
    index = path / "model.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        files = sorted({path / f for f in _read_json(index).get("weight_map", {}).values()})
    elif (path / "pytorch_model.bin").is_file():
        files = [path / "pytorch_model.bin"]
    else:
        raise CheckpointError(f"{path}: no model.safetensors (or index / pytorch_model.bin) next to config.json")
    raw: dict[str, torch.Tensor] = {}
    for f in files:
        raw.update(read_safetensors(f) if f.suffix == ".safetensors"
                   else extract_state_dict(safe_torch_load(f), f))
    sd, _, notes = _finish_state_dict(raw, str(files[0]), None)
    cfg = _config_from_hf(conf, path)
    _validate_shapes(sd, cfg, str(files[0]))
    layout = "hf-llama" if model_type == "llama" else "hf-minimind-moe"
    tok = path if any((path / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json")) else None
    return LoadedWeights(state_dict=sd, config=cfg, inferred=set(), layout=layout, source_kind="hf", path=path,
                         weights_file=files[0], config_source=str(path / "config.json"),
                         file_dtypes=_dtype_counts(raw), stored_keys=list(raw), notes=notes, tokenizer_hint=tok)


def _config_from_hf(conf: dict, path: Path) -> ModelConfig:
    where = path / "config.json"
    try:
        rope = conf.get("rope_parameters") or {}
        theta = rope.get("rope_theta", conf.get("rope_theta", 1e6))
        hidden, heads = int(conf["hidden_size"]), int(conf["num_attention_heads"])
        if int(conf.get("head_dim") or hidden // heads) * heads != hidden:
            raise CheckpointError(f"{where}: head_dim x heads != hidden_size is not supported")
        if not conf.get("tie_word_embeddings", False):
            raise CheckpointError(f"{where}: tie_word_embeddings is false; MiniMind ties the output head")
        kwargs = dict(hidden_size=hidden, num_hidden_layers=int(conf["num_hidden_layers"]),
                      num_attention_heads=heads,
                      num_key_value_heads=int(conf.get("num_key_value_heads") or heads),
                      vocab_size=int(conf["vocab_size"]), intermediate_size=int(conf["intermediate_size"])
                      if conf.get("intermediate_size") else None, rope_theta=float(theta),
                      rms_norm_eps=float(conf.get("rms_norm_eps", 1e-5)),
                      max_position_embeddings=int(conf.get("max_position_embeddings", 32768)))
        if conf.get("model_type") == "minimind_moe":
            for name in ("use_moe", "n_routed_experts", "num_experts_per_tok", "n_shared_experts",
                         "aux_loss_alpha", "seq_aux", "norm_topk_prob"):
                if name in conf:
                    kwargs[name] = conf[name]
        if kwargs["intermediate_size"] == 64 * math.ceil((8 * hidden / 3) / 64):
            kwargs["intermediate_size"] = None  # MiniMind's rule, as our own configs store it
        cfg = ModelConfig(**kwargs)
        cfg.validate()
    except KeyError as exc:
        raise CheckpointError(f"{where}: missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{where}: {_short(exc)}") from None
    return cfg


# ---------------------------------------------------------------------------------------------
# Using loaded weights

def build_model(loaded: LoadedWeights):
    """A MiniMindLM (eval mode, float32) holding the loaded weights."""
    from minimind.model import MiniMindLM

    model = MiniMindLM(loaded.config)
    model.load_state_dict(loaded.state_dict, strict=True)
    return model.eval()


def describe(loaded: LoadedWeights) -> dict[str, Any]:
    """Everything inspect shows, as plain JSON-able data."""
    cfg = loaded.config
    wf = loaded.weights_file
    size = wf.stat().st_size if wf.is_file() else None
    arch = {}
    for f in fields(ModelConfig):
        value = getattr(cfg, f.name)
        arch[f.name] = {"value": value, "source": "inferred" if f.name in loaded.inferred else "stored"}
    arch["intermediate_size"]["value"] = cfg.ffn_size
    arch["head_dim"] = {"value": cfg.head_dim,
                        "source": "assumed" if loaded.head_dim_assumed
                        else "inferred" if "num_attention_heads" in loaded.inferred else "stored"}
    if not cfg.use_moe:
        for name in ("n_routed_experts", "num_experts_per_tok", "n_shared_experts", "aux_loss_alpha",
                     "seq_aux", "norm_topk_prob"):
            arch.pop(name)
    if loaded.inferred:
        for name in ("aux_loss_alpha", "seq_aux", "norm_topk_prob", "dropout"):
            if name in arch:
                arch[name]["source"] = "default"
    for name in ("rope_theta", "rms_norm_eps", "max_position_embeddings", "num_experts_per_tok"):
        if name in arch and name in loaded.inferred:
            arch[name]["source"] = "assumed"
    out: dict[str, Any] = {
        "file": {"path": str(loaded.path), "weights_file": str(wf), "size_bytes": size,
                 "source_kind": loaded.source_kind, "format": _format_name(wf), "layout": loaded.layout,
                 "dtypes": loaded.file_dtypes, "tensors": len(loaded.stored_keys),
                 "config_source": loaded.config_source},
        "architecture": arch,
        "parameters": count_parameters(loaded.state_dict, cfg),
        "notes": loaded.notes,
    }
    if loaded.checkpoint is not None or loaded.training is not None:
        out["training"] = training_summary(loaded)
    return out


def _format_name(path: Path) -> str:
    if path.suffix == ".safetensors":
        return "safetensors"
    return "torch zip (weights_only)" if zipfile.is_zipfile(path) else "torch legacy pickle (weights_only)"


def training_summary(loaded: LoadedWeights) -> dict[str, Any]:
    meta = loaded.training or {}
    info = loaded.checkpoint or {}
    files = info.get("files") or {}
    state_keys = info.get("state_keys") or []
    out = {
        "complete": bool(info.get("complete", loaded.training is not None)),
        "checkpoint_dir": info.get("dir"),
        **{k: meta.get(k) for k in ("step", "epoch", "tokens_seen", "loss", "loss_ema", "val_loss", "profile",
                                    "run", "reason", "dtype", "world_size", "elapsed_s", "time")},
        "dataset_fingerprint": (meta.get("dataset") or {}).get("fingerprint"),
        "dataset_path": (meta.get("dataset") or {}).get("path"),
        "optimizer_state": files.get("optimizer.pt") is not None,
        "rng_state": files.get("state.pt") is not None and (not state_keys or any("rng" in k for k in state_keys)),
        "scaler_state": any("scaler" in k for k in state_keys) if state_keys else None,
        "state_keys": state_keys or None,
        "files_verified": info.get("verified"),
    }
    if "checkpoints_total" in info:
        out.update({k: info[k] for k in ("run_dir", "checkpoints_total", "checkpoints_complete", "steps")})
    return out


def tensor_table(loaded: LoadedWeights) -> list[dict[str, Any]]:
    """Every stored tensor: name (as stored), shape, stored dtype, L2 norm."""
    # Re-reading keeps the stored names and dtypes; the mapped state dict has native names.
    rows = []
    raw = _raw_tensors(loaded)
    for name, t in raw.items():
        rows.append({"name": name, "shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""),
                     "norm": float(t.float().norm()) if t.is_floating_point() else None})
    return rows


def _raw_tensors(loaded: LoadedWeights) -> dict[str, torch.Tensor]:
    wf = loaded.weights_file
    if loaded.source_kind == "hf":
        raw: dict[str, torch.Tensor] = {}
        index = wf.parent / "model.safetensors.index.json"
        files = ([wf] if not index.is_file()
                 else sorted({wf.parent / f for f in _read_json(index)["weight_map"].values()}))
        for f in files:
            raw.update(read_safetensors(f) if f.suffix == ".safetensors" else extract_state_dict(safe_torch_load(f), f))
        return raw
    if wf.suffix == ".safetensors":
        return read_safetensors(wf)
    return extract_state_dict(safe_torch_load(wf), wf)


# ---------------------------------------------------------------------------------------------
# Tokenizer lookup and generation

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                   "merges.txt", "tokenizer.model", "chat_template.jinja")


def _tokenizer_dir_of(path: Path) -> Path | None:
    for cand in (path, path / "tokenizer"):
        if cand.is_dir() and any((cand / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json")):
            return cand
    return None


def find_tokenizer(loaded: LoadedWeights, explicit: str | Path | None = None) -> Path | None:
    """--tokenizer, then the run's dataset, the HF dir itself, then <pth dir>/data/tokenizer."""
    if explicit is not None:
        found = _tokenizer_dir_of(Path(explicit))
        if found is None:
            raise CheckpointError(f"{explicit}: not a tokenizer directory (no tokenizer.json or tokenizer_config.json)")
        return found
    candidates: list[Path] = []
    if loaded.tokenizer_hint is not None:
        candidates.append(loaded.tokenizer_hint)
    if loaded.source_kind == "pth":
        candidates.append(loaded.path.parent / "data")
    elif loaded.source_kind in ("run", "checkpoint"):
        ckpt = Path((loaded.checkpoint or {}).get("dir") or loaded.path)
        candidates.append(ckpt.parent.parent.parent.parent / "data")  # <out>/runs/<run>/checkpoints/step_N
    for c in candidates:
        found = _tokenizer_dir_of(c)
        if found is not None:
            return found
    return None


def generate_text(loaded: LoadedWeights, tokenizer_dir: Path, prompt: str, max_new_tokens: int = 64,
                  temperature: float = 0.0, top_p: float = 1.0, seed: int = 0) -> dict[str, Any]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = build_model(loaded)
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else 1
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 2
    ids = [bos] + tokenizer.encode(prompt, add_special_tokens=False)
    input_ids = torch.tensor([ids], dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    out = model.generate(input_ids, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                         eos_token_id=eos, generator=gen)
    new = out[0, len(ids):].tolist()
    return {"prompt": prompt, "completion": tokenizer.decode(new, skip_special_tokens=True),
            "new_tokens": len(new), "tokenizer": str(tokenizer_dir), "temperature": temperature, "top_p": top_p}


# ---------------------------------------------------------------------------------------------
# Export

_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def check_export_target(out: str | Path, to: str, force: bool = False) -> None:
    """Refuse an output that would overwrite something, before any slow work."""
    out = Path(out)
    if to == "pth":
        if out.suffix not in (".pth", ".pt"):
            raise CheckpointError(f"{out}: the output of --to pth should end in .pth")
        if out.exists() and not force:
            raise CheckpointError(f"{out}: file exists (pass --force to replace it)")
        return
    if out.exists():
        if not out.is_dir():
            raise CheckpointError(f"{out}: exists and is not a directory")
        if any(out.iterdir()) and not force:
            raise CheckpointError(f"{out}: directory exists and is not empty (pass --force to replace it)")


def _prepare_target(out_dir: Path, force: bool) -> Path:
    check_export_target(out_dir, "hf", force)
    tmp = out_dir.with_name(out_dir.name + ".tmp-export")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def _commit_target(tmp: Path, out_dir: Path) -> None:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)


def hf_llama_config(cfg: ModelConfig, dtype: str = "fp32"):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.ffn_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads, head_dim=cfg.head_dim, hidden_act="silu",
        max_position_embeddings=cfg.max_position_embeddings, rms_norm_eps=cfg.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.rope_theta)},
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        attention_bias=False, mlp_bias=False, attention_dropout=0.0, dtype=_DTYPES[dtype],
        architectures=["LlamaForCausalLM"])


def export_hf(loaded: LoadedWeights, out_dir: str | Path, tokenizer_dir: Path | None = None,
              dtype: str = "fp32", force: bool = False) -> dict[str, Any]:
    """Write a Hugging Face directory: stock Llama for dense models, ``minimind_moe`` for MoE."""
    out_dir = Path(out_dir)
    if dtype not in _DTYPES:
        raise CheckpointError(f"--dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
    cfg = loaded.config
    tmp = _prepare_target(out_dir, force)
    try:
        sd = {k: v.to(_DTYPES[dtype]) for k, v in loaded.state_dict.items()}
        if cfg.use_moe:
            from minimind.hf import MiniMindMoEConfig, MiniMindMoEForCausalLM

            hf_cfg = MiniMindMoEConfig.from_model_config(cfg, dtype=_DTYPES[dtype],
                                                         architectures=["MiniMindMoEForCausalLM"])
            with torch.device("meta"):
                model = MiniMindMoEForCausalLM(hf_cfg)
            kind = "minimind_moe"
        else:
            from transformers import LlamaForCausalLM

            hf_cfg = hf_llama_config(cfg, dtype)
            with torch.device("meta"):
                model = LlamaForCausalLM(hf_cfg)
            kind = "llama"
        model.load_state_dict(sd, strict=True, assign=True)
        model.tie_weights()
        model.save_pretrained(str(tmp))
        copied = []
        if tokenizer_dir is not None:
            for f in sorted(Path(tokenizer_dir).iterdir()):
                if f.is_file() and f.name != "config.json":
                    shutil.copy2(f, tmp / f.name)
                    copied.append(f.name)
        _commit_target(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out_dir), "model_type": kind, "dtype": dtype, "tokenizer_files": copied,
            "files": sorted(p.name for p in out_dir.iterdir())}


def export_pth(loaded: LoadedWeights, out_path: str | Path, force: bool = False) -> dict[str, Any]:
    """MiniMind-compatible weights: native keys, half precision, both tied keys (strict loader)."""
    out_path = Path(out_path)
    check_export_target(out_path, "pth", force)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    embed = loaded.state_dict[EMBED].half()
    sd = {k: (embed if k in (EMBED, HEAD) else v.half()) for k, v in loaded.state_dict.items()}
    tmp = out_path.with_name(out_path.name + ".tmp")
    torch.save(sd, tmp)
    tmp.replace(out_path)
    return {"out": str(out_path), "dtype": "float16", "tensors": len(sd), "size_bytes": out_path.stat().st_size}
