"""Reading an input file of any kind: the reader for its kind, and the corpus's first texts.

Above both ``parse`` (line-based files) and ``columnar`` (Parquet, Arrow IPC), which know nothing
of each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from minimind.data.prepare.columnar import ColumnReader
from minimind.data.prepare.inputs import COLUMNAR, kind
from minimind.data.prepare.parse import HugeLine, Reader, huge_texts, invalid_input, parse


def open_reader(path: Path, chunk_bytes: int, text_key: str) -> Reader | ColumnReader:
    """The reader for one input file: ``chunks()`` gives (first line or row, block), ``position()``
    the bytes of the file consumed so far."""
    if kind(path) in COLUMNAR:
        return ColumnReader(path, chunk_bytes, text_key)
    return Reader(path, chunk_bytes)


def leading_texts(files: list[Path], text_key: str, strict: bool, limit: int, chunk_bytes: int,
                  on_bytes: Callable[[int], None]) -> Iterator[str]:
    """Texts of the first ``limit`` bytes of the corpus, for training the tokenizer (validated as they go).

    ``on_bytes`` gets the bytes on disk consumed by each block, the measure the progress total uses.
    """
    seen = 0
    for path in files:
        reader = open_reader(path, chunk_bytes, text_key)
        position = 0
        for line0, chunk in reader.chunks():
            if isinstance(chunk, HugeLine):
                parsed = yield from huge_texts(chunk, line0, text_key, strict)
            else:
                parsed = parse(reader.kind, chunk, line0, text_key, strict)
                yield from parsed.texts
            if parsed.error:
                raise invalid_input(reader.kind, path, parsed.error)
            seen += reader.position() - position
            on_bytes(reader.position() - position)
            position = reader.position()
            if seen >= limit:
                return
