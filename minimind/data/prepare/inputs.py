"""Which files ``prepare`` reads: files and directories expanded into an ordered list of inputs,
their kind (``jsonl``, ``jsonl.gz``, ``txt``), and their identity (size + sha256) for the cache."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from minimind.errors import MinimindError
from minimind.files import sha256_file

SUFFIXES = (".jsonl.gz", ".jsonl", ".txt")


class PrepareError(MinimindError, ValueError):
    """Bad input for ``prepare``: the message is one line, ``file:line: reason`` where it applies."""


def kind(path: Path) -> str | None:
    """``jsonl``, ``jsonl.gz`` or ``txt`` from the file name (case-insensitive), else None."""
    name = path.name.lower()
    return next((s.lstrip(".") for s in SUFFIXES if name.endswith(s)), None)


def collect_inputs(inputs: list[str | Path]) -> list[Path]:
    """Expand files and directories into the ordered list of input files; refuse unusable paths."""
    if not inputs:
        raise PrepareError("no input given: name .jsonl, .jsonl.gz or .txt files, or a directory of them")
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            # Sorted, so the same directory always gives the same dataset; hidden files are editor noise.
            found = sorted(p for p in path.rglob("*") if p.is_file() and kind(p)
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise PrepareError(f"{path}: no .jsonl, .jsonl.gz or .txt files in this directory")
            files.extend(found)
        elif path.is_file():
            if not kind(path):
                raise PrepareError(f"{path}: unsupported file type (expected .jsonl, .jsonl.gz or .txt)")
            files.append(path)
        elif path.exists():
            raise PrepareError(f"{path}: not a regular file or directory")
        else:
            raise PrepareError(f"{path}: no such file or directory")
    # A file named twice (directly and through its directory) is read once, at its first place.
    unique: dict[Path, Path] = {}
    for f in files:
        unique.setdefault(f.resolve(), f)
    return list(unique.values())


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
