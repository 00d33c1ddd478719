"""Columnar inputs: Parquet files and Arrow IPC files or streams (the shards ``datasets.save_to_disk``
writes), read one record batch at a time with pyarrow, only the text column, never a whole file.

The texts are cut into blocks of about ``chunk_bytes`` of UTF-8, each carrying the bytes and offsets
of its texts (what a worker decodes, as it decodes the lines of a ``.jsonl`` block). A missing column
or a column that does not hold strings is reported like a bad ``.jsonl`` line: ``file: row N:
reason``, or counted per row with ``--skip-invalid``; a null value is a bad row of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minimind.data.prepare.inputs import kind
from minimind.data.prepare.parse import EMPTY, INVALID_UTF8, NOT_STRING, Parsed, available_keys
from minimind.errors import PrepareError

# Rows per record batch asked of pyarrow: a few hundred kB of short documents; big batches are cut.
BATCH_ROWS = 1024


@dataclass
class ColumnBlock:
    """The texts of ``rows`` consecutive rows: ``data[offsets[i]:offsets[i + 1]]`` is row i in UTF-8."""

    rows: int
    data: bytes = b""
    offsets: np.ndarray | None = None  # int64, rows + 1 entries, offsets[0] == 0
    valid: np.ndarray | None = None  # bool per row; None when no value is null
    problem: tuple[str, str] | None = None  # (reason, detail) true of every row: no such column, not strings

    def parse(self, row0: int, text_key: str, strict: bool) -> Parsed:
        """The documents of this block, with their row numbers; bad rows as in ``parse.parse_jsonl``."""
        out = Parsed([], [], Counter())
        if self.problem is not None:
            if strict:
                out.error = (row0, self.problem[1])
            else:
                out.skipped[self.problem[0]] += self.rows
            return out
        data, offs = self.data, self.offsets.tolist()
        valid = self.valid.tolist() if self.valid is not None else None
        for i in range(self.rows):
            if valid is not None and not valid[i]:
                reason, detail = NOT_STRING, f"{text_key!r} is null, not a string"
            else:
                try:
                    text = data[offs[i]:offs[i + 1]].decode("utf-8")
                except UnicodeDecodeError as exc:  # Parquet writers do not all check
                    reason, detail = INVALID_UTF8, f"invalid UTF-8 (byte 0x{data[offs[i] + exc.start]:02x})"
                else:
                    if not text.strip():
                        out.skipped[EMPTY] += 1
                    else:
                        out.texts.append(text)
                        out.lines.append(row0 + i)
                    continue
            if strict:
                out.error = (row0 + i, detail)
                return out
            out.skipped[reason] += 1
        return out


def _strings_type(pa, t) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return (pa.types.is_string(t) or pa.types.is_large_string(t)
            or (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t)))


def _column_problem(schema, text_key: str) -> tuple[str, str] | None:
    import pyarrow as pa

    if text_key not in schema.names:
        names = available_keys(schema.names, [f.name for f in schema if _strings_type(pa, f.type)])
        return f"missing key {text_key!r}", f"missing column {text_key!r} (columns: {names})"
    t = schema.field(text_key).type
    if not _strings_type(pa, t):
        return "text is not a string", f"column {text_key!r} holds {t} values, not strings"
    return None


def _offsets(arr) -> np.ndarray:
    """The int64 offsets of a large_string array (``len + 1`` entries, not rebased)."""
    return np.frombuffer(arr.buffers()[1], dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)


def _block(arr) -> ColumnBlock:
    offs = _offsets(arr)
    data_buf = arr.buffers()[2]
    start, end = int(offs[0]), int(offs[-1])
    data = data_buf.slice(start, end - start).to_pybytes() if data_buf is not None and end > start else b""
    valid = arr.is_valid().to_numpy(zero_copy_only=False) if arr.null_count else None
    return ColumnBlock(len(arr), data, offs - start, valid)


class ColumnReader:
    """Blocks of whole rows from one Parquet or Arrow file, with the number of their first row."""

    def __init__(self, path: Path, chunk_bytes: int, text_key: str):
        self.path, self.kind, self.chunk_bytes, self.text_key = path, kind(path), chunk_bytes, text_key
        self.size = path.stat().st_size
        self._position = 0
        self.problem: tuple[str, str] | None = None  # known once the schema is read

    def position(self) -> int:
        """Bytes of the file consumed so far (estimated within a row group or IPC file), the progress measure."""
        return self._position

    def _batches(self) -> Iterator[tuple[object, int]]:
        """(record batch, file position after it)."""
        import pyarrow as pa

        try:
            if self.kind == "parquet":
                yield from self._parquet_batches()
                return
            source = pa.OSFile(str(self.path))
            try:
                if source.read(6) == b"ARROW1":  # the IPC file format; else the stream format (datasets)
                    reader = pa.ipc.open_file(source)
                    self.problem = _column_problem(reader.schema, self.text_key)
                    n = reader.num_record_batches
                    for i in range(n):
                        yield reader.get_batch(i), self.size * (i + 1) // n
                else:
                    source.seek(0)
                    reader = pa.ipc.open_stream(source)
                    self.problem = _column_problem(reader.schema, self.text_key)
                    for batch in reader:
                        yield batch, source.tell()
            finally:
                source.close()
        except (pa.ArrowException, OSError) as exc:
            raise PrepareError(f"{self.path}: cannot read as {self.kind} ({str(exc).splitlines()[0]})") from None

    def _parquet_batches(self) -> Iterator[tuple[object, int]]:
        import pyarrow.parquet as pq

        with pq.ParquetFile(str(self.path)) as pf:
            self.problem = _column_problem(pf.schema_arrow, self.text_key)
            columns = [] if self.problem else [self.text_key]
            meta, done = pf.metadata, 0
            for rg in range(meta.num_row_groups):
                group = meta.row_group(rg)
                size = sum(group.column(c).total_compressed_size for c in range(group.num_columns))
                rows = 0
                for batch in pf.iter_batches(batch_size=BATCH_ROWS, row_groups=[rg], columns=columns,
                                             use_threads=False):
                    rows += batch.num_rows
                    yield batch, min(self.size, done + size * rows // max(1, group.num_rows))
                done += size

    def chunks(self) -> Iterator[tuple[int, ColumnBlock]]:
        """(number of the first row, counted from 1; block of whole rows), in file order."""
        import pyarrow as pa

        row, carry = 1, None
        for batch, position in self._batches():
            if self.problem:
                self._position = position
                if batch.num_rows:
                    yield row, ColumnBlock(batch.num_rows, problem=self.problem)
                row += batch.num_rows
                continue
            arr = batch.column(batch.schema.get_field_index(self.text_key))
            if pa.types.is_dictionary(arr.type):
                arr = arr.dictionary_decode()
            arr = arr.cast(pa.large_string())
            if carry is not None:
                arr = pa.concat_arrays([carry, arr])
            offs, start, carry = _offsets(arr), 0, None
            while start < len(arr):  # cut into pieces of about chunk_bytes; a short last one waits for more
                end = int(np.searchsorted(offs, offs[start] + self.chunk_bytes, side="left"))
                end = min(max(end, start + 1), len(arr))
                if end == len(arr) and offs[end] - offs[start] < self.chunk_bytes:
                    carry = arr.slice(start)
                    break
                yield row, _block(arr.slice(start, end - start))
                row += end - start
                start = end
            self._position = position
        self._position = self.size
        if carry is not None and len(carry):
            yield row, _block(carry)


