"""Which files ``prepare`` reads: files, directories and glob patterns expanded into an ordered list
of inputs, their kind, and their identity (size + sha256) for the cache.

Kinds: ``jsonl``, ``jsonl.gz``, ``jsonl.zst``, ``txt`` (read as lines), ``parquet`` and ``arrow``
(columnar: Arrow IPC files or streams, which is what ``datasets.save_to_disk`` writes). A
``save_to_disk`` directory is just a directory of ``.arrow`` shards, named so that their sorted
order is their order in the dataset. Parquet, Arrow and zstd need optional packages; a missing one
is one line saying what to install, before any work starts.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from minimind.errors import PrepareError
from minimind.files import sha256_file

SUFFIXES = (".jsonl.gz", ".jsonl.zst", ".jsonl", ".txt", ".parquet", ".arrow")
COLUMNAR = ("parquet", "arrow")
FORMATS_TEXT = ".jsonl, .jsonl.gz, .jsonl.zst, .txt, .parquet or .arrow"
# The module each kind needs beyond the core dependencies, and the extra that installs it.
NEEDS = {"parquet": "pyarrow", "arrow": "pyarrow", "jsonl.zst": "zstandard"}
EXTRA_HINT = "pip install 'minimind[formats]'"
_GLOB_CHARS = set("*?[")


def kind(path: Path) -> str | None:
    """The input kind from the file name (case-insensitive: ``jsonl``, ``parquet``, ...), else None."""
    name = path.name.lower()
    return next((s.lstrip(".") for s in SUFFIXES if name.endswith(s)), None)


def location(file_kind: str | None, path: Path | str, row: int) -> str:
    """Where a document is: ``file:line`` for line-based inputs, ``file: row N`` for columnar ones."""
    return f"{path}: row {row}" if file_kind in COLUMNAR else f"{path}:{row}"


DATASET_DICT_FILE = "dataset_dict.json"  # what DatasetDict.save_to_disk writes at its root


def _dataset_dict_splits(root: Path) -> list[str]:
    """The splits of a ``DatasetDict.save_to_disk`` root, in its own order (its ``dataset_dict.json``,
    else the sub-directories that hold data)."""
    try:
        splits = json.loads((root / DATASET_DICT_FILE).read_text()).get("splits")
    except (OSError, ValueError, AttributeError):
        splits = None
    if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
        splits = sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.arrow")))
    return splits


def _refuse_dataset_dicts(path: Path) -> None:
    """A directory holding a ``DatasetDict`` of several splits (train, test, ...) is refused: reading
    it whole would merge the splits (in sorted order: test before train). Naming the split
    directories, one or several, is how to read them."""
    for marker in sorted(path.rglob(DATASET_DICT_FILE)):
        root = marker.parent
        splits = _dataset_dict_splits(root)
        if len(splits) > 1:
            raise PrepareError(
                f"{root}: a DatasetDict with {len(splits)} splits ({', '.join(splits)}); "
                "reading it whole would mix them",
                hint=f"name the split to read, e.g. {root / splits[0]} (or several, in the order wanted: "
                     f"{' '.join(str(root / s) for s in splits)})")


def _in_directory(path: Path) -> list[Path]:
    _refuse_dataset_dicts(path)
    # Sorted, so the same directory always gives the same dataset; hidden files are editor noise.
    return sorted(p for p in path.rglob("*") if p.is_file() and kind(p)
                  and not any(part.startswith(".") for part in p.relative_to(path).parts))


def _expand(item: str | Path) -> list[Path]:
    path = Path(item)
    if path.is_dir():
        found = _in_directory(path)
        if not found:
            raise PrepareError(f"{path}: no {FORMATS_TEXT} files in this directory")
        return found
    if path.is_file():
        if not kind(path):
            raise PrepareError(f"{path}: unsupported file type (expected {FORMATS_TEXT})")
        return [path]
    if path.exists():
        raise PrepareError(f"{path}: not a regular file or directory")
    if _GLOB_CHARS & set(str(item)):
        # A quoted pattern ('shards/*.parquet') the shell left alone; ** matches any depth.
        matches = [Path(m) for m in sorted(glob.glob(str(item), recursive=True))]
        found = [f for m in matches for f in (_in_directory(m) if m.is_dir() else [m] if kind(m) else [])]
        if not found:
            raise PrepareError(f"{item}: the pattern matches no {FORMATS_TEXT} files")
        return found
    raise PrepareError(f"{path}: no such file or directory")


def missing_packages(files: list[Path]) -> PrepareError | None:
    """The error for the first input whose reader needs a package that is not installed."""
    for f in files:
        module = NEEDS.get(kind(f) or "")
        if module and importlib.util.find_spec(module) is None:
            return PrepareError(f"{f}: reading .{kind(f)} files needs the {module} package, which is not installed",
                                hint=EXTRA_HINT)
    return None


def collect_inputs(inputs: list[str | Path]) -> list[Path]:
    """Expand files, directories and glob patterns into the ordered list of input files; refuse
    unusable paths and inputs whose optional reader is not installed."""
    if not inputs:
        raise PrepareError(f"no input given: name {FORMATS_TEXT} files, or a directory of them")
    files = [f for item in inputs for f in _expand(item)]
    # A file named twice (directly and through its directory) is read once, at its first place.
    unique: dict[Path, Path] = {}
    for f in files:
        unique.setdefault(f.resolve(), f)
    files = list(unique.values())
    if (error := missing_packages(files)) is not None:
        raise error
    return files


def describe_sources(files: list[Path]) -> list[dict[str, Any]]:
    """The ``sources`` entries of meta.json: path, format, size and sha256 of each input file."""
    return [{"path": str(f), "format": kind(f), "size": f.stat().st_size, "sha256": sha256_file(f)}
            for f in files]


def prepared_path_for(inputs: list[str | Path], cache_root: str | Path) -> Path:
    """The cache directory for these inputs, named by their content: the same files map to the same place."""
    h = hashlib.sha256()
    for source in describe_sources(collect_inputs(inputs)):
        h.update(f"{source['format']}:{source['size']}:{source['sha256']}\n".encode())
    return Path(cache_root) / h.hexdigest()[:20]
