"""Small real datasets for tests, written in the dataset directory format (no tokenizer needed)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from minimind.data import format as fmt


def write_dataset(path: Path, docs: list[list[int]], val_docs: list[list[int]] | None = None,
                  vocab_size: int = 256) -> Path:
    """Write documents (token lists, without bos/eos) as a dataset directory; returns it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    dtype = fmt.token_dtype(vocab_size)
    digest = hashlib.sha256()
    for tokens_name, docs_name, split in ((fmt.TOKENS_FILE, fmt.DOCS_FILE, docs),
                                          (fmt.VAL_TOKENS_FILE, fmt.VAL_DOCS_FILE, val_docs or [])):
        rows = [np.array([1, *d, 2], dtype=dtype) for d in split]
        flat = np.concatenate(rows) if rows else np.zeros(0, dtype=dtype)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(r) for r in rows])
        flat.tofile(path / tokens_name)
        offsets.tofile(path / docs_name)
        digest.update(flat.tobytes())
        digest.update(offsets.tobytes())
    meta = {
        "format_version": fmt.FORMAT_VERSION, "dtype": dtype.name, "vocab_size": vocab_size,
        "bos_id": 1, "eos_id": 2, "pad_id": 0, "tokenizer_fingerprint": "test", "sources": [],
        "documents": len(docs), "tokens": int(sum(len(d) + 2 for d in docs)),
        "val_documents": len(val_docs or []), "val_tokens": int(sum(len(d) + 2 for d in val_docs or [])),
        "skipped": {}, "fingerprint": digest.hexdigest(),
    }
    (path / fmt.META_FILE).write_text(json.dumps(meta))
    return path


def random_docs(n: int, seed: int = 0, vocab_size: int = 256, min_len: int = 5, max_len: int = 60,
                pattern: bool = True) -> list[list[int]]:
    """Documents with learnable structure (repeating arithmetic runs) so a model can lower its loss."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        length = int(rng.integers(min_len, max_len))
        if pattern:
            start, stride = int(rng.integers(3, vocab_size)), int(rng.integers(1, 4))
            docs.append([3 + (start + stride * i) % (vocab_size - 3) for i in range(length)])
        else:
            docs.append(rng.integers(3, vocab_size, length).tolist())
    return docs


def write_text_dataset(path: Path, texts: list[str], val_texts: list[str], vocab_size: int = 320) -> Path:
    """A dataset directory of real text with its own byte-level BPE tokenizer (``tokenizer/``), as
    ``prepare`` makes it, so the trainer can write text (live samples)."""
    from minimind.data.format import TOKENIZER_DIR
    from minimind.data.tokenizer import load_tokenizer, train_tokenizer

    tok_dir = train_tokenizer(texts + val_texts, vocab_size, Path(path) / TOKENIZER_DIR)
    tok = load_tokenizer(tok_dir)
    return write_dataset(path, tok.encode_many(texts), tok.encode_many(val_texts), vocab_size=vocab_size)


def story_texts(n: int, seed: int = 0) -> list[str]:
    """Short English-like documents with a repeated structure a tiny model learns within a few steps."""
    rng = np.random.default_rng(seed)
    names, animals, verbs = ["Ann", "Bob", "Cleo", "Dan"], ["cat", "dog", "fox", "owl"], ["sees", "finds", "likes"]
    return [" ".join(f"{names[rng.integers(4)]} {verbs[rng.integers(3)]} the {animals[rng.integers(4)]}."
                     for _ in range(int(rng.integers(3, 8)))) for _ in range(n)]
