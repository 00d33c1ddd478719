"""What ``minimind inspect`` shows about loaded weights, as plain JSON-able data.

``describe`` gives the file, the architecture (each field marked stored / inferred / assumed /
default), the parameter breakdown and, for checkpoints, the training state; ``tensor_table``
lists every tensor as stored. The CLI only formats these.
"""

from __future__ import annotations

import zipfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from minimind.config import ModelConfig
from minimind.run_dir import OPTIMIZER_FILE, STATE_FILE
from minimind.weights.infer import parameter_counts
from minimind.weights.load import LoadedWeights, hf_weight_files
from minimind.weights.read import read_tensors

_MOE_FIELDS = ("n_routed_experts", "num_experts_per_tok", "n_shared_experts", "aux_loss_alpha", "seq_aux",
               "norm_topk_prob", "router_balance", "router_bias_coeff")


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
                        "source": "inferred" if "num_attention_heads" in loaded.inferred else "stored"}
    if loaded.heads_assumed:
        # Shapes cannot split q_proj's rows into heads: the counts are a rule, named here.
        for name in ("num_attention_heads", "num_key_value_heads", "head_dim"):
            arch[name] = {"value": arch[name]["value"], "source": "assumed", "rule": loaded.heads_assumed}
    if not cfg.use_moe:
        for name in _MOE_FIELDS:
            arch.pop(name)
    if loaded.inferred:
        # Shapes cannot tell these; a bare state dict gets the ModelConfig defaults.
        for name in ("aux_loss_alpha", "seq_aux", "norm_topk_prob", "dropout"):
            if name in arch:
                arch[name]["source"] = "default"
    for name in ("rope_theta", "rms_norm_eps", "max_position_embeddings", "num_experts_per_tok"):
        if name in arch and name in loaded.inferred:
            arch[name]["source"] = "assumed"
    out: dict[str, Any] = {
        "file": {"path": str(loaded.path), "weights_file": str(wf), "size_bytes": size,
                 "source_kind": loaded.source_kind, "format": _format_name(wf), "layout": loaded.layout,
                 "generation": loaded.generation,
                 "dtypes": loaded.file_dtypes, "tensors": len(loaded.stored_keys),
                 "config_source": loaded.config_source},
        "architecture": arch,
        "parameters": parameter_counts(cfg),
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
    """The training state of a checkpoint or run: progress, what can be resumed, file checks."""
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
        "optimizer_state": files.get(OPTIMIZER_FILE) is not None,
        "rng_state": files.get(STATE_FILE) is not None and (not state_keys or any("rng" in k for k in state_keys)),
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
    for name, t in _stored_tensors(loaded).items():
        rows.append({"name": name, "shape": list(t.shape), "dtype": str(t.dtype).replace("torch.", ""),
                     "norm": float(t.float().norm()) if t.is_floating_point() else None})
    return rows


def _stored_tensors(loaded: LoadedWeights) -> dict[str, torch.Tensor]:
    if loaded.source_kind != "hf":
        return read_tensors(loaded.weights_file)
    raw: dict[str, torch.Tensor] = {}
    for f in hf_weight_files(loaded.weights_file.parent):
        raw.update(read_tensors(f))
    return raw
