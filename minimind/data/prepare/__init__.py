"""``prepare``: validated, streaming, parallel corpus -> dataset directory.

Inputs are ``.jsonl`` (one JSON object per line, text under ``text_key``), ``.jsonl.gz``,
``.jsonl.zst``, ``.parquet`` and ``.arrow`` (the column ``text_key``) and ``.txt`` (one document per
paragraph: paragraphs are separated by one or more blank lines), given as files, directories
(searched recursively, in sorted order) or glob patterns.

The package, in the order the data flows: ``inputs`` (which files, their identity), ``parse``
(blocks of lines into documents) and ``columnar`` (record batches into blocks of texts), ``encode``
(tokenizing blocks in worker processes), ``select`` with ``dedup`` (which documents are kept),
``write`` (the split files, meta.json, installing the directory) and ``pipeline`` (``prepare_dataset``).
Nothing here draws on a terminal: progress is reported through ``on_progress``.
"""

from minimind.data.prepare.inputs import collect_inputs, describe_sources, prepared_path_for
from minimind.data.prepare.pipeline import (
    DEFAULT_CHUNK_BYTES,
    TOKENIZER_SAMPLE_BYTES,
    PrepareResult,
    ProgressCallback,
    ProgressUpdate,
    default_workers,
    prepare_dataset,
)
from minimind.errors import PrepareError

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "TOKENIZER_SAMPLE_BYTES",
    "PrepareError",
    "PrepareResult",
    "ProgressCallback",
    "ProgressUpdate",
    "collect_inputs",
    "default_workers",
    "describe_sources",
    "prepare_dataset",
    "prepared_path_for",
]
