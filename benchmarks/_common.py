"""What the benchmark scripts share: the repository on ``sys.path``, the sample dataset.

Each script runs as ``python benchmarks/NAME.py``, so this directory is first on ``sys.path`` and
``from _common import ...`` finds this module before the repository is on the path.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def use_repo() -> Path:
    """Put the repository first on ``sys.path``, so ``minimind`` (and ``tests.helpers``) import from
    this checkout; returns its root."""
    sys.path.insert(0, str(REPO))
    return REPO


def ensure_data(path: Path | None, name: str = "minimind-bench-sample", val_fraction: float | None = None) -> Path:
    """``--data``, or the built-in sample corpus prepared once into ``<tmp>/<name>`` (with
    ``val_fraction`` as its validation split when given, else prepare's default)."""
    if path is not None:
        return path
    from minimind.data.sample import prepare_sample

    target = Path(tempfile.gettempdir()) / name
    if val_fraction is None:
        return Path(prepare_sample(target).path)
    return Path(prepare_sample(target, val_fraction=val_fraction).path)
