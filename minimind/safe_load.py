"""Loading a torch file safely, and the one-line reason of a failure: the leaf that both
``minimind.checkpoint`` and ``minimind.weights.read`` stand on.

``torch.load(weights_only=True)`` only, so a pickle that would run code is refused, never
executed; every failure (missing, empty, truncated, not weights at all) becomes one
``CheckpointError`` line naming the file and the reason. torch is imported only when a file is
loaded, so ``minimind.checkpoint`` can import this without torch.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

from minimind.errors import CheckpointError


def short_reason(exc: BaseException) -> str:
    """The first line of an exception, bounded, for a one-line error message."""
    line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return line[:160]


def safe_torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into one CheckpointError line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes)")
    import torch

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
        reason = next((line for line in lines if line.startswith("Unsupported")), short_reason(exc))
        raise CheckpointError(f"{path}: not a PyTorch weights file or corrupt ({reason[:100]})") from None
    except (EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: truncated or corrupt file ({short_reason(exc)})") from None
    except RuntimeError as exc:
        text = str(exc)
        if any(s in text for s in ("central directory", "PytorchStreamReader", "zip archive", "file read")):
            raise CheckpointError(f"{path}: truncated or corrupt file ({short_reason(exc)})") from None
        raise CheckpointError(f"{path}: cannot read ({short_reason(exc)})") from None
    except (ValueError, TypeError, AttributeError, ImportError, KeyError, IndexError, OSError) as exc:
        raise CheckpointError(f"{path}: not a PyTorch weights file ({short_reason(exc)})") from None
