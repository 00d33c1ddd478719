"""Load any MiniMind weights into one form: native keys, float32, with what is known about them.

Accepted inputs: a ``.pth``/``.pt``/``.safetensors`` weights file (ours, or MiniMind's in either key
layout), a run directory (its latest complete checkpoint), a checkpoint directory, or an exported
Hugging Face directory. Tensors are read only through ``minimind.weights.read`` (weights_only
torch.load or safetensors); which checkpoints are complete, and whether their files match their
recorded sha256, is ``minimind.checkpoint``'s answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from minimind import checkpoint
from minimind.config import ModelConfig, load_config
from minimind.errors import CheckpointError
from minimind.run_dir import (
    CHECKPOINT_FILES,
    CONFIG_FILE,
    EVENTS_FILE,
    META_FILE,
    MODEL_FILE,
    STATE_FILE,
    checkpoints_dir,
    dataset_of,
    default_data_dir,
    out_dir_of_checkpoint,
    run_of,
)
from minimind.safe_load import safe_torch_load
from minimind.weights.infer import (
    config_from_hf,
    infer_config,
    matching_run_config,
    sidecar_config,
    validate_shapes,
)
from minimind.weights.layouts import (
    DEFAULT_HEAD_DIM,
    Q_NORM,
    assumed_head_dim,
    generation,
    qk_rows,
    to_native,
)
from minimind.weights.read import dtype_counts, read_json, read_tensors

TOKENIZER_MARKERS = ("tokenizer.json", "tokenizer_config.json")  # either makes a directory a tokenizer
HEADS_MINIMIND = "MiniMind's default"  # 8 query / 2 key-value heads, head_dim = hidden / 8
HEADS_FALLBACK = f"head_dim {DEFAULT_HEAD_DIM}"  # where MiniMind's head counts do not fit the shapes
# model_type of an exported Hugging Face directory -> its layout name
HF_LAYOUTS = {"llama": "hf-llama", "qwen3": "hf-qwen3", "qwen3_moe": "hf-qwen3-moe", "minimind_moe": "hf-minimind-moe"}


@dataclass
class LoadedWeights:
    """A checkpoint brought to the native layout, with what is known about it."""

    state_dict: dict[str, torch.Tensor]  # native keys, float32, both EMBED and HEAD (one tensor)
    config: ModelConfig
    inferred: set[str]  # config fields not read from a stored config
    layout: str  # native | minimind-v1 | hf-llama | hf-qwen3 | hf-qwen3-moe | hf-minimind-moe
    source_kind: str  # pth | run | checkpoint | hf
    training: dict | None = None  # meta.json of a checkpoint
    path: Path = field(default_factory=Path)  # what the user named
    weights_file: Path = field(default_factory=Path)  # the file the tensors came from
    config_source: str | None = None  # the file the stored config came from
    file_dtypes: dict[str, int] = field(default_factory=dict)  # dtype name -> tensor count, as stored
    stored_keys: list[str] = field(default_factory=list)  # keys as stored (before mapping)
    notes: list[str] = field(default_factory=list)  # assumptions and oddities, for the user
    heads_assumed: str | None = None  # how heads were counted without a config: HEADS_MINIMIND or HEADS_FALLBACK
    checkpoint: dict[str, Any] | None = None  # checkpoint/run facts (complete, files, siblings)
    tokenizer_hint: Path | None = None  # a dataset/tokenizer directory recorded with the run

    @property
    def generation(self) -> str:
        """Which MiniMind the weights are: MiniMind2, MiniMind-3 (QK-norm) or the earlier release."""
        return generation(self.layout, self.state_dict)

    def data_candidates(self) -> list[Path]:
        """Where the weights' dataset may be, most exact first: the one recorded with their run,
        then the output directory's ``data/`` (beside a .pth, or above a run's checkpoint)."""
        candidates = [self.tokenizer_hint] if self.tokenizer_hint is not None else []
        if self.source_kind == "pth":
            candidates.append(default_data_dir(self.path.parent))
        elif self.source_kind in ("run", "checkpoint"):
            ckpt = Path((self.checkpoint or {}).get("dir") or self.path)
            candidates.append(default_data_dir(out_dir_of_checkpoint(ckpt)))
        return candidates


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
        elif checkpoints_dir(path).is_dir() or (path / EVENTS_FILE).is_file():
            loaded = _load_run_dir(path, head_dim)
        elif (path / MODEL_FILE).is_file() or (path / META_FILE).is_file():
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


def _load_weights_file(path: Path, head_dim: int | None, max_pos: int | None) -> LoadedWeights:
    raw = read_tensors(path)
    # The earliest MiniMind saved its causal mask: its size is the training context length.
    mask = raw.get("layers.0.attention.mask")
    sd, layout, notes = to_native(raw, str(path), head_dim)
    # What tells the config, most exact first: --head-dim (the user), the sidecar config written
    # with the file, the run beside it with the same shapes, and only then the shapes themselves.
    sidecar = sidecar_config(path, sd) if layout == "native" else None
    if isinstance(sidecar, str):
        notes.append(sidecar)
    elif sidecar is not None and head_dim is not None:
        notes.append(f"{sidecar[1]} not used: --head-dim {head_dim} was given")
    elif sidecar is not None:
        cfg, config_source, inferred = sidecar
        notes.append(f"config read from {config_source}, written beside this file")
        if inferred:
            notes.append(f"that config records these fields as inferred, not known, when it was written: "
                         f"{', '.join(sorted(inferred))}")
        return LoadedWeights(state_dict=sd, config=cfg, inferred=inferred, layout=layout, source_kind="pth",
                             path=path, weights_file=path, config_source=str(config_source),
                             file_dtypes=dtype_counts(raw), stored_keys=list(raw), notes=notes)
    run_config = matching_run_config(path, sd) if head_dim is None and layout == "native" else None
    if run_config is not None:
        cfg, config_source = run_config
        validate_shapes(sd, cfg, str(path))
        notes.append(f"config read from {config_source}: the run next to this file whose shapes match")
        return LoadedWeights(state_dict=sd, config=cfg, inferred=set(), layout=layout, source_kind="pth",
                             path=path, weights_file=path, config_source=str(config_source),
                             file_dtypes=dtype_counts(raw), stored_keys=list(raw), notes=notes,
                             tokenizer_hint=_data_dir_of_run(config_source))
    cfg, inferred, more = infer_config(sd, head_dim, max_pos or (int(mask.shape[-1]) if mask is not None else None))
    if mask is not None and not max_pos:
        notes.append(f"max_position_embeddings {cfg.max_position_embeddings} read from the saved attention mask")
        inferred.discard("max_position_embeddings")
    validate_shapes(sd, cfg, str(path))
    return LoadedWeights(state_dict=sd, config=cfg, inferred=inferred, layout=layout, source_kind="pth",
                         path=path, weights_file=path, file_dtypes=dtype_counts(raw), stored_keys=list(raw),
                         notes=notes + more, heads_assumed=None if head_dim else _heads_rule(sd))


def _heads_rule(sd: dict[str, torch.Tensor]) -> str | None:
    """Which rule counted the heads of a state dict read without a config or --head-dim."""
    if Q_NORM in sd:  # MiniMind-3: head_dim is the size of q_norm.weight, no rule needed
        return None
    rows = qk_rows(sd)
    return HEADS_MINIMIND if rows and assumed_head_dim(*rows)[1] else HEADS_FALLBACK


def _data_dir_of_run(config_path: Path) -> Path | None:
    """The dataset directory a run's config names, as given or relative to the out dir."""
    data_path = load_config(config_path).data.path
    if not data_path:
        return None
    return dataset_of(config_path.parent, data_path, in_run=False)


def _load_run_dir(run_dir: Path, head_dim: int | None) -> LoadedWeights:
    every = checkpoint.checkpoint_dirs(run_dir)
    complete = checkpoint.list_checkpoints(run_dir)
    if not complete:
        detail = f"{len(every)} incomplete" if every else "none"
        raise CheckpointError(f"{run_dir}: the run has no complete checkpoint yet ({detail} under checkpoints/)")
    loaded = _load_checkpoint_dir(complete[-1].path, head_dim, "run")
    loaded.path = run_dir
    assert loaded.checkpoint is not None
    loaded.checkpoint.update({"run_dir": str(run_dir), "checkpoints_total": len(every),
                              "checkpoints_complete": len(complete), "steps": [c.step for c in complete]})
    return loaded


def _load_checkpoint_dir(ckpt_dir: Path, head_dim: int | None, kind: str) -> LoadedWeights:
    model_file = ckpt_dir / MODEL_FILE
    meta = checkpoint.read_checkpoint_meta(ckpt_dir)
    raw = read_tensors(model_file)
    sd, layout, notes = to_native(raw, str(model_file), head_dim)
    config_path = ckpt_dir / CONFIG_FILE
    if not config_path.is_file() and (run_of(ckpt_dir) / CONFIG_FILE).is_file():
        config_path = run_of(ckpt_dir) / CONFIG_FILE  # the run's own config
    tokenizer_hint = None
    if config_path.is_file():
        config = load_config(config_path)
        cfg, inferred, more = config.model, set(), []
        if config.data.path:
            tokenizer_hint = dataset_of(run_of(ckpt_dir), config.data.path)
        config_source = str(config_path)
    else:
        cfg, inferred, more = infer_config(sd, head_dim)
        config_source = None
    validate_shapes(sd, cfg, str(model_file))
    heads_assumed = _heads_rule(sd) if config_source is None and head_dim is None else None
    files = {}
    for name in CHECKPOINT_FILES:
        p = ckpt_dir / name
        files[name] = p.stat().st_size if p.is_file() else None
    info: dict[str, Any] = {"dir": str(ckpt_dir), "complete": meta is not None, "files": files}
    if meta is None:
        why = ("meta.json is missing (it is written last)" if not (ckpt_dir / META_FILE).is_file()
               else "meta.json is unreadable or names a file that is not there")
        notes.append(f"incomplete checkpoint: {why}")
    else:
        step = meta.get("step")
        info["verified"] = checkpoint.verify_files(
            checkpoint.CheckpointInfo(ckpt_dir, int(step) if isinstance(step, int) else -1, meta))
        bad = [name for name, ok in info["verified"].items() if not ok]
        if bad:
            notes.append(f"sha256 mismatch for {', '.join(bad)}: the checkpoint was modified or damaged")
    state_path = ckpt_dir / STATE_FILE
    if state_path.is_file():
        info["state_keys"] = _state_keys(state_path)
    return LoadedWeights(state_dict=sd, config=cfg, inferred=inferred, layout=layout, source_kind=kind,
                         training=meta, path=ckpt_dir, weights_file=model_file, config_source=config_source,
                         file_dtypes=dtype_counts(raw), stored_keys=list(raw), notes=notes + more,
                         checkpoint=info, tokenizer_hint=tokenizer_hint, heads_assumed=heads_assumed)


def _state_keys(path: Path) -> list[str] | None:
    """Top-level keys of state.pt (rng, scaler, data position), or None if it cannot be read safely."""
    try:
        obj = safe_torch_load(path)
    except CheckpointError:  # only used to report what is there
        return None
    return sorted(str(k) for k in obj) if isinstance(obj, dict) else None


def hf_weight_files(path: Path) -> list[Path]:
    """The tensor files of an HF directory: one safetensors file, the shards of its index, or a .bin."""
    single = path / "model.safetensors"
    index = path / "model.safetensors.index.json"
    if single.is_file():
        return [single]
    if index.is_file():
        return sorted({path / f for f in read_json(index).get("weight_map", {}).values()})
    if (path / "pytorch_model.bin").is_file():
        return [path / "pytorch_model.bin"]
    raise CheckpointError(f"{path}: no model.safetensors (or index / pytorch_model.bin) next to config.json")


def _load_hf_dir(path: Path) -> LoadedWeights:
    conf = read_json(path / "config.json")
    model_type = conf.get("model_type")
    if model_type not in HF_LAYOUTS:
        raise CheckpointError(f"{path / 'config.json'}: model_type {model_type!r} is not one of "
                              f"{', '.join(HF_LAYOUTS)}")
    files = hf_weight_files(path)
    raw: dict[str, torch.Tensor] = {}
    for f in files:
        raw.update(read_tensors(f))
    sd, _, notes = to_native(raw, str(files[0]), None)
    cfg = config_from_hf(conf, path)
    validate_shapes(sd, cfg, str(files[0]))
    layout = HF_LAYOUTS[model_type]
    tok = path if any((path / n).is_file() for n in TOKENIZER_MARKERS) else None
    return LoadedWeights(state_dict=sd, config=cfg, inferred=set(), layout=layout, source_kind="hf", path=path,
                         weights_file=files[0], config_source=str(path / "config.json"),
                         file_dtypes=dtype_counts(raw), stored_keys=list(raw), notes=notes, tokenizer_hint=tok)
