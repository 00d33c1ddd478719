"""The ModelConfig of loaded weights: read from the sidecar written beside a ``.pth``, an exported
``config.json`` or the run beside a bare ``.pth``, else inferred from tensor shapes (MiniMind's 8
query / 2 key-value heads where they fit), and always checked against the tensors.

Everything that needs a model's shapes or sizes builds it on the meta device (no memory, no
initialisation), so the model definition is the only place that knows them.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from minimind.checkpoint import WEIGHTS_CONFIG_FORMAT
from minimind.config import ConfigError, ModelConfig, default_ffn_size, load_config
from minimind.config_types import check_type, field_type
from minimind.errors import CheckpointError
from minimind.run_dir import CONFIG_FILE, runs_dir, weights_config_path
from minimind.safe_load import short_reason
from minimind.weights.layouts import EMBED, HEAD, MINIMIND_HEADS, Q_NORM, assumed_head_dim
from minimind.weights.read import read_json

DEFAULT_TOP_K = 2  # MiniMind2's experts per token: shapes cannot tell it
MINIMIND3_TOP_K = 1  # MiniMind-3's (its router: softmax, top-1, the chosen weight renormalised to 1)
MINIMIND3_AUX_ALPHA = 5e-4  # MiniMind-3's balance-loss coefficient (whole batch)
MINIMIND3_RMS_EPS = 1e-6


def meta_model(cfg: ModelConfig):
    """A MiniMindLM with every tensor on the meta device: shapes and counts, no memory."""
    from minimind.model import MiniMindLM

    with torch.device("meta"):
        return MiniMindLM(cfg)


def parameter_counts(cfg: ModelConfig) -> dict[str, Any]:
    """The breakdown ``inspect`` shows (the tied head counted once), from the model definition."""
    return meta_model(cfg).num_parameters(detail=True)


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
    q_out = sd["model.layers.0.self_attn.q_proj.weight"].shape[0]
    k_out = sd["model.layers.0.self_attn.k_proj.weight"].shape[0]
    qk_norm = Q_NORM in sd  # MiniMind-3: the norm's size is the head size
    if qk_norm:  # the weights carry their head size: it wins over a given one
        given, head_dim = head_dim, int(sd[Q_NORM].shape[0])
        notes.append(f"MiniMind-3 layout (QK-norm): head_dim {head_dim} read from self_attn.q_norm.weight"
                     + (f" (not the {given} given)" if given not in (None, head_dim) else ""))
    if q_out != hidden and head_dim is None:
        raise CheckpointError(f"q_proj has {q_out} outputs for hidden size {hidden}; pass --head-dim with "
                              f"the model's head size")
    hd, minimind_default = (head_dim, False) if head_dim else assumed_head_dim(q_out, k_out)
    if q_out % hd or k_out % hd:
        why = (f"MiniMind's {MINIMIND_HEADS[0]} query / {MINIMIND_HEADS[1]} key-value heads do not fit them "
               f"either; " if head_dim is None else "")
        raise CheckpointError(f"q_proj ({q_out}) / k_proj ({k_out}) outputs are not multiples of "
                              f"head_dim={hd}; {why}pass --head-dim with the model's head size")
    heads, kv_heads = q_out // hd, k_out // hd
    if qk_norm:
        pass
    elif head_dim is None and minimind_default:
        notes.append(f"{heads} query / {kv_heads} key-value heads assumed (MiniMind's default at every "
                     f"width), so head_dim {hd}; pass --head-dim if it differs")
    elif head_dim is None:
        notes.append(f"MiniMind's default {MINIMIND_HEADS[0]} query / {MINIMIND_HEADS[1]} key-value heads do "
                     f"not fit q_proj ({q_out} rows) / k_proj ({k_out} rows); head_dim {hd} assumed instead: "
                     f"{heads} query / {kv_heads} key-value heads; pass --head-dim if it differs")
    experts = sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.layers\.0\.mlp\.experts\.(\d+)\.", k))})
    shared = sorted({int(m.group(1)) for k in sd
                     if (m := re.match(r"model\.layers\.0\.mlp\.shared_experts\.(\d+)\.", k))})
    use_moe = bool(experts)
    gate_key = ("model.layers.0.mlp.experts.0.gate_proj.weight" if use_moe
                else "model.layers.0.mlp.gate_proj.weight")
    if gate_key not in sd:
        raise CheckpointError(f"missing {gate_key}: cannot tell the feed-forward size")
    ffn = sd[gate_key].shape[0]
    rule = "pi" if qk_norm else "8/3"
    kwargs: dict[str, Any] = dict(hidden_size=hidden, num_hidden_layers=n_layers, num_attention_heads=heads,
                                  num_key_value_heads=kv_heads, head_dim=hd, qk_norm=qk_norm, vocab_size=vocab,
                                  intermediate_size=_stored_ffn(ffn, hidden, rule), ffn_rule=rule,
                                  use_moe=use_moe)
    inferred = {"hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size",
                "intermediate_size", "use_moe", "rope_theta", "rms_norm_eps", "max_position_embeddings",
                "head_dim", "qk_norm", "ffn_rule"}
    notes.append("rope_theta 1e6 assumed (not stored in a weights file; MiniMind's earliest release used 1e4)")
    if qk_norm:
        kwargs["rms_norm_eps"] = MINIMIND3_RMS_EPS
        notes.append("rms_norm_eps 1e-6 assumed (MiniMind-3's; not stored in a weights file)")
    if max_position_embeddings:
        kwargs["max_position_embeddings"] = max_position_embeddings
    if use_moe:
        n_routed = len(experts)
        top_k = min(MINIMIND3_TOP_K if qk_norm else DEFAULT_TOP_K, n_routed)
        kwargs.update(n_routed_experts=n_routed, n_shared_experts=len(shared), num_experts_per_tok=top_k,
                      norm_topk_prob=top_k > 1 or qk_norm)
        if qk_norm:  # MiniMind-3's balance loss: over the whole batch, 5e-4
            kwargs.update(seq_aux=False, aux_loss_alpha=MINIMIND3_AUX_ALPHA)
        inferred |= {"n_routed_experts", "n_shared_experts", "num_experts_per_tok"}
        if "model.layers.0.mlp.gate.expert_bias" in sd:  # trained with bias balancing (bias or both)
            kwargs["router_balance"] = "bias"
            inferred.add("router_balance")
        notes.append(f"MoE top-k {top_k} assumed (experts per token cannot be read from shapes)")
    cfg = ModelConfig(**kwargs)
    try:
        cfg.validate()
    except ConfigError as exc:
        raise CheckpointError(f"inferred config is invalid: {exc}") from None
    return cfg, inferred, notes


def _stored_ffn(ffn: int, hidden: int, rule: str = "8/3") -> int | None:
    """``intermediate_size`` as our own configs store it: null when it is the ``ffn_rule``'s width."""
    return None if ffn == default_ffn_size(hidden, rule) else ffn


def config_from_hf(conf: dict, path: Path) -> ModelConfig:
    """The ModelConfig of an exported HF directory's ``config.json``: Llama (MiniMind2 dense), Qwen3
    / Qwen3-MoE (MiniMind-3) or minimind_moe."""
    where = path / "config.json"
    model_type = conf.get("model_type")
    try:
        rope = conf.get("rope_parameters") or {}
        theta = rope.get("rope_theta", conf.get("rope_theta", 1e6))
        hidden, heads = int(conf["hidden_size"]), int(conf["num_attention_heads"])
        if not conf.get("tie_word_embeddings", False):
            raise CheckpointError(f"{where}: tie_word_embeddings is false; MiniMind ties the output head")
        qwen = model_type in ("qwen3", "qwen3_moe")
        ffn = conf.get("moe_intermediate_size") if model_type == "qwen3_moe" else conf.get("intermediate_size")
        kwargs = dict(hidden_size=hidden, num_hidden_layers=int(conf["num_hidden_layers"]),
                      num_attention_heads=heads,
                      num_key_value_heads=int(conf.get("num_key_value_heads") or heads),
                      head_dim=int(conf.get("head_dim") or hidden // heads), qk_norm=qwen,
                      vocab_size=int(conf["vocab_size"]), intermediate_size=int(ffn) if ffn else None,
                      ffn_rule="pi" if qwen else "8/3", rope_theta=float(theta),
                      rms_norm_eps=float(conf.get("rms_norm_eps", 1e-5)),
                      max_position_embeddings=int(conf.get("max_position_embeddings", 32768)))
        if model_type == "minimind_moe":
            for name in ("use_moe", "n_routed_experts", "num_experts_per_tok", "n_shared_experts", "qk_norm",
                         "ffn_rule", "aux_loss_alpha", "seq_aux", "norm_topk_prob", "router_balance",
                         "router_bias_coeff"):
                if name in conf:
                    kwargs[name] = conf[name]
        if model_type == "qwen3_moe":
            if int(conf.get("decoder_sparse_step", 1)) != 1 or conf.get("mlp_only_layers"):
                raise CheckpointError(f"{where}: not every layer is MoE (decoder_sparse_step / mlp_only_layers); "
                                      f"MiniMind's MoE models have experts in every block")
            kwargs.update(use_moe=True, n_routed_experts=int(conf.get("num_experts") or conf["num_local_experts"]),
                          num_experts_per_tok=int(conf["num_experts_per_tok"]), n_shared_experts=0,
                          norm_topk_prob=bool(conf.get("norm_topk_prob", False)), seq_aux=False,
                          aux_loss_alpha=float(conf.get("router_aux_loss_coef", 5e-4)))
        if kwargs["intermediate_size"] is not None:
            kwargs["intermediate_size"] = _stored_ffn(kwargs["intermediate_size"], hidden, kwargs["ffn_rule"])
        cfg = ModelConfig(**kwargs)
        cfg.validate()
    except KeyError as exc:
        raise CheckpointError(f"{where}: missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{where}: {short_reason(exc)}") from None
    return cfg


def validate_shapes(state_dict: dict[str, torch.Tensor], cfg: ModelConfig, where: str) -> None:
    """Strict load into a meta-device model: missing/unexpected keys and wrong shapes, one line."""
    expected = meta_model(cfg).state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing:
        raise CheckpointError(f"{where}: missing {missing[0]}"
                              + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                              + " for the config " + config_brief(cfg))
    if unexpected:
        raise CheckpointError(f"{where}: unexpected key {unexpected[0]}"
                              + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
                              + " for the config " + config_brief(cfg))
    for key, value in expected.items():
        if tuple(state_dict[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{where}: {key} has shape {tuple(state_dict[key].shape)}, the config "
                                  f"{config_brief(cfg)} expects {tuple(value.shape)}")


def config_brief(cfg: ModelConfig) -> str:
    moe = f", MoE {cfg.n_routed_experts}x top-{cfg.num_experts_per_tok}" if cfg.use_moe else ""
    return (f"(hidden {cfg.hidden_size}, {cfg.num_hidden_layers} layers, {cfg.num_attention_heads}/"
            f"{cfg.num_key_value_heads} heads, vocab {cfg.vocab_size}{moe})")


def _shape_signature(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v) for k, v in shapes.items() if k != HEAD}


def matching_run_config(pth: Path, state_dict: dict[str, torch.Tensor]) -> tuple[ModelConfig, Path] | None:
    """``out/pretrain_*.pth`` carries no config, but the run that wrote it (``out/runs/*/config.yaml``)
    does: the most recent run whose model has exactly these shapes gives heads, RoPE theta, etc.,
    which shapes alone cannot (e.g. the tiny profile's head_dim 32)."""
    runs = runs_dir(pth.parent)
    if not runs.is_dir():
        return None
    wanted = _shape_signature({k: tuple(v.shape) for k, v in state_dict.items()})
    configs = sorted(runs.glob(f"*/{CONFIG_FILE}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for config_path in configs[:50]:  # a bound: an out dir with thousands of runs stays fast
        try:
            cfg = load_config(config_path).model
        except (ConfigError, OSError):
            continue
        shapes = {k: tuple(v.shape) for k, v in meta_model(cfg).state_dict().items()}
        if _shape_signature(shapes) == wanted:
            return cfg, config_path
    return None


def sidecar_config(pth: Path, state_dict: dict[str, torch.Tensor]) -> tuple[ModelConfig, Path, set[str]] | str | None:
    """The config ``checkpoint.save_weights`` wrote beside a weights file (``pretrain_256.json``):
    (config, its path, fields that were inferred when it was written). None when there is none;
    a note (str) when there is one that cannot be used (not ours, unreadable, other shapes)."""
    path = weights_config_path(pth)
    if not path.is_file():
        return None
    try:
        data = read_json(path)
    except CheckpointError as exc:
        return f"{exc}; the sidecar config is ignored"
    if data.get("format") != WEIGHTS_CONFIG_FORMAT or not isinstance(data.get("model"), dict):
        return f"{path} is not a minimind weights config (no \"format\": \"{WEIGHTS_CONFIG_FORMAT}\"); ignored"
    known = {f.name for f in fields(ModelConfig)}
    try:
        unknown = sorted(set(data["model"]) - known)
        if unknown:
            raise ConfigError(f"unknown key model.{unknown[0]}")
        cfg = ModelConfig(**{k: check_type(f"model.{k}", v, field_type(ModelConfig, k), str(path))
                             for k, v in data["model"].items()})
        cfg.validate()
        validate_shapes(state_dict, cfg, str(pth))
    except (ConfigError, CheckpointError) as exc:
        return f"{path} does not describe this file ({short_reason(exc)}); ignored"
    inferred = {str(x) for x in data.get("inferred") or () if x in known}
    return cfg, path, inferred
