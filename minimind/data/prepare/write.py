"""Writing the dataset directory: the token and offset files of each split (hashed as they are
written, so the dataset fingerprint costs no second read), meta.json, and the install step.

Everything is written into ``<out>.tmp-<pid>`` beside the output and moved into place only when
complete, replacing an older dataset there as a whole; a later run removes the temporary
directories of runs that were killed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from minimind.data import format as fmt
from minimind.data.prepare.encode import Encoded
from minimind.files import pid_alive, replace_dir, write_durably


class SplitWriter:
    """Appends documents to one split (tokens + offsets), hashing the bytes as they are written."""

    def __init__(self, tokens_path: Path, docs_path: Path):
        self.tokens_file = open(tokens_path, "wb")  # noqa: SIM115 - closed in close()
        self.docs_file = open(docs_path, "wb")  # noqa: SIM115
        self.tokens_hash, self.docs_hash = hashlib.sha256(), hashlib.sha256()
        self.n_tokens = self.n_docs = 0
        self._write_offsets(np.zeros(1, dtype=np.int64))

    def _write_offsets(self, offsets: np.ndarray) -> None:
        data = offsets.astype(np.int64).tobytes()
        self.docs_file.write(data)
        self.docs_hash.update(data)

    def write(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        if len(lengths) == 0:
            return
        data = tokens.tobytes()
        self.tokens_file.write(data)
        self.tokens_hash.update(data)
        self._write_offsets(self.n_tokens + np.cumsum(lengths))
        self.n_tokens += int(tokens.size)
        self.n_docs += len(lengths)

    def close(self) -> None:
        for f in (self.tokens_file, self.docs_file):
            if not f.closed:
                f.flush()
                os.fsync(f.fileno())
                f.close()


def val_mask(first_index: int, n: int, val_fraction: float) -> np.ndarray:
    """Which of documents first_index..first_index+n-1 go to validation: splitmix64 of the index.

    A hash of the index rather than a random draw: one pass suffices, and every run splits alike.
    """
    if val_fraction <= 0 or n == 0:
        return np.zeros(n, dtype=bool)
    z = np.arange(first_index, first_index + n, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    mask = (z >> np.uint64(11)).astype(np.float64) < val_fraction * float(1 << 53)
    if first_index == 0:
        mask[0] = False  # the first document always trains, so a tiny corpus never has an empty train split
    return mask


class DatasetWriter:
    """The train and validation splits of one dataset directory, fed with encoded blocks in order."""

    def __init__(self, directory: Path, val_fraction: float):
        self.val_fraction = val_fraction
        self.train = SplitWriter(directory / fmt.TOKENS_FILE, directory / fmt.DOCS_FILE)
        self.val = SplitWriter(directory / fmt.VAL_TOKENS_FILE, directory / fmt.VAL_DOCS_FILE)

    @property
    def n_docs(self) -> int:
        return self.train.n_docs + self.val.n_docs

    def add(self, block: Encoded) -> None:
        is_val = val_mask(self.n_docs, len(block.lengths), self.val_fraction)
        if is_val.any():
            per_token = np.repeat(is_val, block.lengths)
            self.train.write(block.tokens[~per_token], block.lengths[~is_val])
            self.val.write(block.tokens[per_token], block.lengths[is_val])
        else:
            self.train.write(block.tokens, block.lengths)

    def close(self) -> None:
        self.train.close()
        self.val.close()

    def digests(self) -> dict[str, str]:
        """sha256 of each data file, by file name (what ``format.combine_fingerprint`` takes)."""
        return {fmt.TOKENS_FILE: self.train.tokens_hash.hexdigest(), fmt.DOCS_FILE: self.train.docs_hash.hexdigest(),
                fmt.VAL_TOKENS_FILE: self.val.tokens_hash.hexdigest(),
                fmt.VAL_DOCS_FILE: self.val.docs_hash.hexdigest()}


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    # No rename of its own: the whole directory is renamed into place afterwards.
    text = json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
    write_durably(directory / fmt.META_FILE, lambda f: f.write(text.encode("utf-8")))


def temp_dir_for(out_dir: Path) -> Path:
    """A fresh, empty ``<out>.tmp-<pid>`` beside ``out_dir`` (same filesystem, so the install is a rename)."""
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def install(tmp: Path, out_dir: Path) -> None:
    """Move the finished dataset into place; an older dataset there is replaced as a whole."""
    replace_dir(tmp, out_dir, markers=(fmt.META_FILE,))


def clean_stale(out_dir: Path) -> list[Path]:
    """Remove the temporary (``<out>.tmp-<pid>``) and replaced (``.<out>.old-<pid>``, or the older
    ``<out>.old-<pid>``) directories left by a prepare that was killed; a live process's are kept."""
    removed: list[Path] = []
    if not out_dir.parent.is_dir():
        return removed
    pattern = re.compile(r"\.?" + re.escape(out_dir.name) + r"\.(?:tmp|old)-(\d+)$")
    for p in out_dir.parent.iterdir():
        m = pattern.match(p.name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed
