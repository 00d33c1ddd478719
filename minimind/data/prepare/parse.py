"""Reading the input files into documents: blocks cut at line (or paragraph) boundaries, and the
rules that turn a block of ``.jsonl`` lines or ``.txt`` paragraphs into texts.

A line that is not a usable document has a reason (``invalid JSON``, ``missing key 'text'``, ...).
In strict mode the first such line stops the run as ``file:line: reason``; with ``--skip-invalid``
it is skipped and counted under its reason. Blank lines and empty texts are never errors.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from minimind.data.prepare.inputs import PrepareError, kind

TXT_RULE = "one document per paragraph (paragraphs are separated by blank lines)"

BLANK, EMPTY = "blank line", "empty text"
INVALID_JSON, NOT_OBJECT, INVALID_UTF8, NOT_STRING, SURROGATE = (
    "invalid JSON", "not a JSON object", "invalid UTF-8", "text is not a string", "lone surrogate in text")
NOT_ERRORS = (BLANK, EMPTY)


def json_error(exc: ValueError) -> str:
    """``json``'s message plus the column: some of its messages already end in "at" ("Invalid
    control character at", "Unterminated string starting at")."""
    if not isinstance(exc, json.JSONDecodeError):
        return str(exc)
    return f"{exc.msg.removesuffix(' at')} at column {exc.colno}"


def json_kind(value: object) -> str:
    """"null", "an int", "a list", ...: what a decoded JSON value is, with its article."""
    if value is None:
        return "null"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


class Reader:
    """Blocks of whole lines (jsonl) or whole paragraphs (txt) from one file, with their first line number."""

    def __init__(self, path: Path, chunk_bytes: int):
        self.path, self.kind, self.chunk_bytes = path, kind(path), chunk_bytes
        self.raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in chunks()
        self.stream: BinaryIO = gzip.GzipFile(fileobj=self.raw, mode="rb") if self.kind == "jsonl.gz" else self.raw

    def position(self) -> int:
        """Bytes of the file on disk consumed so far (compressed bytes for .gz): the progress measure."""
        return self.raw.tell()

    def _cut(self, block: bytes) -> int:
        if self.kind == "txt":
            i, j = block.rfind(b"\n\n"), block.rfind(b"\n\r\n")
            return max(i + 2 if i >= 0 else 0, j + 3 if j >= 0 else 0)
        return block.rfind(b"\n") + 1

    def chunks(self) -> Iterator[tuple[int, bytes]]:
        pieces: list[bytes] = []
        line, first = 1, True
        try:
            while True:
                try:
                    block = self.stream.read(self.chunk_bytes)
                except (OSError, EOFError, gzip.BadGzipFile) as exc:
                    raise PrepareError(f"{self.path}: cannot read ({exc})") from None
                if first:
                    first = False
                    if block.startswith(b"\xef\xbb\xbf"):
                        block = block[3:]
                if not block:
                    if pieces:
                        yield line, b"".join(pieces)
                    return
                # Only the newest block is searched for a boundary, so a 1 GB line costs linear time.
                cut = self._cut(block)
                if cut == 0:
                    pieces.append(block)
                    continue
                pieces.append(block[:cut])
                chunk = b"".join(pieces)
                pieces = [block[cut:]] if cut < len(block) else []
                yield line, chunk
                line += chunk.count(b"\n")
        finally:
            self.stream.close()
            self.raw.close()


@dataclass
class Parsed:
    texts: list[str]
    lines: list[int]
    skipped: Counter
    error: tuple[int, str] | None = None  # (line, message) of the first invalid line in strict mode


def parse_jsonl(chunk: bytes, line0: int, text_key: str, strict: bool) -> Parsed:
    out = Parsed([], [], Counter())
    rows = chunk.split(b"\n")
    if rows and rows[-1] == b"":
        rows.pop()
    for n, raw in enumerate(rows, line0):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw.strip():
            out.skipped[BLANK] += 1
            continue
        reason = detail = None
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            reason, detail = INVALID_UTF8, f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        else:
            try:
                obj = json.loads(line)
            except ValueError as exc:
                msg = json_error(exc)
                reason, detail = INVALID_JSON, f"invalid JSON ({msg})"
            except RecursionError:
                reason, detail = INVALID_JSON, "invalid JSON (nested too deeply)"
            else:
                if not isinstance(obj, dict):
                    reason, detail = NOT_OBJECT, f"not a JSON object (a JSON {type(obj).__name__})"
                elif text_key not in obj:
                    keys = ", ".join(map(repr, list(obj)[:5])) or "none"
                    reason, detail = f"missing key {text_key!r}", f"missing key {text_key!r} (keys: {keys})"
                elif not isinstance(obj[text_key], str):
                    value = obj[text_key]
                    reason, detail = NOT_STRING, f"{text_key!r} is {json_kind(value)}, not a string"
                elif not obj[text_key].strip():
                    out.skipped[EMPTY] += 1
                    continue
                else:
                    out.texts.append(obj[text_key])
                    out.lines.append(n)
                    continue
        if strict:
            out.error = (n, detail)
            return out
        out.skipped[reason] += 1
    return out


_PARAGRAPH_BREAK = re.compile(rb"\n(?:[ \t\r\f\v]*\n)+")


def parse_txt(chunk: bytes, line0: int, strict: bool) -> Parsed:
    out = Parsed([], [], Counter())
    start = 0
    for match in (*_PARAGRAPH_BREAK.finditer(chunk), None):
        end = match.start() if match else len(chunk)
        raw, begin = chunk[start:end], start
        start = match.end() if match else len(chunk)
        if not raw.strip():
            continue
        line = line0 + chunk.count(b"\n", 0, begin)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = line + raw.count(b"\n", 0, exc.start)
            col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            if strict:
                out.error = (bad, f"invalid UTF-8 (byte 0x{raw[exc.start]:02x} at column {col})")
                return out
            out.skipped[INVALID_UTF8] += 1
            continue
        out.texts.append(text.replace("\r\n", "\n").strip("\r\n"))
        out.lines.append(line)
    return out


def parse(file_kind: str, chunk: bytes, line0: int, text_key: str, strict: bool) -> Parsed:
    """The documents of one block (``line0`` is the line number of its first line)."""
    if file_kind == "txt":
        return parse_txt(chunk, line0, strict)
    return parse_jsonl(chunk, line0, text_key, strict)


def leading_texts(files: list[Path], text_key: str, strict: bool, limit: int, chunk_bytes: int,
                  on_bytes: Callable[[int], None]) -> Iterator[str]:
    """Texts of the first ``limit`` bytes of the corpus, for training the tokenizer (validated as they go).

    ``on_bytes`` gets the bytes on disk consumed by each block, the measure the progress total uses.
    """
    seen = 0
    for path in files:
        reader = Reader(path, chunk_bytes)
        position = 0
        for line0, chunk in reader.chunks():
            parsed = parse(reader.kind, chunk, line0, text_key, strict)
            if parsed.error:
                raise PrepareError(f"{path}:{parsed.error[0]}: {parsed.error[1]}")
            yield from parsed.texts
            seen += len(chunk)
            on_bytes(reader.position() - position)
            position = reader.position()
            if seen >= limit:
                return
