"""Reading one weights file safely: every tensor file goes through here.

``torch.load(weights_only=True)`` or safetensors only, so a pickle that would run code is refused,
never executed; every failure (missing, empty, truncated, not weights at all) becomes one
``CheckpointError`` line naming the file and the reason. torch files go through
``minimind.safe_load`` (which ``minimind.checkpoint`` uses too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from minimind.errors import CheckpointError
from minimind.safe_load import safe_torch_load, short_reason


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, on the CPU."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes)")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupt safetensors file ({short_reason(exc)})") from None


def extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a loaded object: a state dict, or one wrapped as {"model": ...} (MiniMind's
    resume files), with DDP / torch.compile key prefixes stripped."""
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


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The state dict stored in one file, whatever its format (.safetensors or torch)."""
    if path.suffix == ".safetensors":
        return read_safetensors(path)
    return extract_state_dict(safe_torch_load(path), path)


def read_json(path: Path) -> dict:
    """A JSON object from a file, or one CheckpointError line."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: invalid JSON ({short_reason(exc)})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def dtype_counts(raw: dict[str, torch.Tensor]) -> dict[str, int]:
    """dtype name -> number of tensors stored with it (e.g. {"float16": 75})."""
    counts: dict[str, int] = {}
    for v in raw.values():
        name = str(v.dtype).replace("torch.", "")
        counts[name] = counts.get(name, 0) + 1
    return counts
