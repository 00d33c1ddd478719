"""``prepare``: validated, streaming, parallel corpus -> dataset directory.

Inputs are ``.jsonl`` (one JSON object per line, text under ``text_key``), ``.jsonl.gz`` and ``.txt``
(one document per paragraph: paragraphs are separated by one or more blank lines), given as files
or directories (searched recursively, in sorted order).

The package, in the order the data flows: ``inputs`` (which files, their identity), ``parse``
(blocks of lines into documents), ``encode`` (tokenizing blocks in worker processes), ``write``
(the split files, meta.json, installing the directory) and ``pipeline`` (``prepare_dataset``).
Nothing here draws on a terminal: progress is reported through ``on_progress``.
"""

from minimind.data.prepare.inputs import PrepareError, collect_inputs, describe_sources, prepared_path_for
from minimind.data.prepare.pipeline import (
    DEFAULT_CHUNK_BYTES,
    TOKENIZER_SAMPLE_BYTES,
    PrepareResult,
    ProgressCallback,
    ProgressUpdate,
    default_workers,
    prepare_dataset,
)

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
