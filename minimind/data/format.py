"""The dataset directory format: the contract between ``prepare`` (writer)
and the dataset reader / trainer. Stdlib + numpy only.

    <dataset>/
      meta.json            see META_KEYS
      tokens.bin           training tokens, flat, dtype uint16 (vocab <= 65536) or uint32;
                           each document is stored as bos + tokens + eos
      docs.idx             int64 array of n_docs + 1 offsets into tokens.bin (doc i = [idx[i], idx[i+1]))
      val_tokens.bin       validation split, same layout (may hold 0 documents)
      val_docs.idx
      tokenizer/           a Hugging Face tokenizer directory (AutoTokenizer.from_pretrained loads it)

meta.json keys: format_version, dtype ("uint16" | "uint32"), vocab_size, bos_id, eos_id, pad_id,
tokenizer_fingerprint (sha256 of the tokenizer's tokenizer.json), sources (list of {path, size, sha256}),
documents, tokens, val_documents, val_tokens, skipped ({reason: count}), text_key, created,
fingerprint (sha256 over tokens.bin/docs.idx/val files + tokenizer fingerprint: identifies the data
for resume).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minimind.errors import DatasetFormatError
from minimind.files import sha256_file

FORMAT_VERSION = 1
META_FILE = "meta.json"
TOKENS_FILE = "tokens.bin"
DOCS_FILE = "docs.idx"
VAL_TOKENS_FILE = "val_tokens.bin"
VAL_DOCS_FILE = "val_docs.idx"
TOKENIZER_DIR = "tokenizer"

META_KEYS = ("format_version", "dtype", "vocab_size", "bos_id", "eos_id", "pad_id", "tokenizer_fingerprint",
             "sources", "documents", "tokens", "val_documents", "val_tokens", "skipped", "fingerprint")


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 65536 else np.dtype(np.uint32)


FINGERPRINT_FILES = (TOKENS_FILE, DOCS_FILE, VAL_TOKENS_FILE, VAL_DOCS_FILE)


def combine_fingerprint(file_digests: dict[str, str], tokenizer_fingerprint: str) -> str:
    """The dataset fingerprint: sha256 over the sha256 of each data file (FINGERPRINT_FILES order) and
    the tokenizer fingerprint, one hex digest per line. ``prepare`` computes it while writing."""
    lines = [file_digests[name] for name in FINGERPRINT_FILES] + [tokenizer_fingerprint]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def dataset_fingerprint(path: str | Path) -> str:
    """Recompute the fingerprint of a dataset directory from its files (reads every byte)."""
    path = Path(path)
    digests = {name: sha256_file(path / name) for name in FINGERPRINT_FILES}
    tok = sha256_file(path / TOKENIZER_DIR / "tokenizer.json")
    return combine_fingerprint(digests, tok)


def is_dataset(path: str | Path) -> bool:
    return (Path(path) / META_FILE).is_file()


@dataclass
class Split:
    tokens: np.ndarray  # memmap, flat
    offsets: np.ndarray  # int64, n_docs + 1

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    def doc(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i]:self.offsets[i + 1]]


def read_meta(path: str | Path) -> dict[str, Any]:
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise DatasetFormatError(f"{path} is not a minimind dataset (no {META_FILE}); "
                                 f"create one with `minimind prepare`")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DatasetFormatError(f"{meta_path}: invalid JSON ({exc})") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise DatasetFormatError(f"{meta_path}: format_version {meta.get('format_version')!r} "
                                 f"is not {FORMAT_VERSION}; re-run `minimind prepare --force`")
    return meta


def open_split(path: str | Path, split: str = "train") -> Split:
    """Memory-map one split ("train" or "val") of a dataset directory."""
    path = Path(path)
    meta = read_meta(path)
    tokens_name, docs_name = (TOKENS_FILE, DOCS_FILE) if split == "train" else (VAL_TOKENS_FILE, VAL_DOCS_FILE)
    dtype = np.dtype(meta["dtype"])
    tokens_path, docs_path = path / tokens_name, path / docs_name
    for p in (tokens_path, docs_path):
        if not p.is_file():
            raise DatasetFormatError(f"dataset {path} is incomplete: {p.name} is missing")
    offsets = np.fromfile(docs_path, dtype=np.int64)
    size = tokens_path.stat().st_size // dtype.itemsize
    if len(offsets) == 0 or offsets[-1] != size:
        raise DatasetFormatError(f"dataset {path}: {docs_name} does not match {tokens_name}")
    tokens = np.memmap(tokens_path, dtype=dtype, mode="r") if size else np.zeros(0, dtype=dtype)
    return Split(tokens=tokens, offsets=offsets)
