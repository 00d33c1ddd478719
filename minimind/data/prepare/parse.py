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

from minimind.data.prepare.inputs import kind, location
from minimind.errors import PrepareError

try:
    from zstandard import ZstdError as _ZstdError
except ImportError:  # optional: without it no .zst input gets this far
    class _ZstdError(Exception):
        pass

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


class ZstdFrames:
    """A ``.zst`` file read frame after frame (files made by concatenating compressed pieces,
    ``zstd -c a >> b``, read whole), refusing a frame cut short at the end of the file.

    zstandard's own ``stream_reader`` ends quietly at a truncated frame, so a cut file would give a
    shorter corpus, or an "invalid JSON" line where the cut fell. Here it is an ``EOFError`` naming
    the byte offsets, as ``gzip`` raises for a cut ``.gz``."""

    READ_BYTES = 1 << 20

    def __init__(self, raw: BinaryIO):
        import zstandard

        self.raw, self._dctx = raw, zstandard.ZstdDecompressor()
        self._obj = None  # the frame being decompressed; None between frames
        self._frame_start = 0  # offset in the file of that frame's first byte
        self._consumed = 0  # compressed bytes handed to decompress objects so far
        self._pending = b""  # compressed bytes read but not yet handed over (after a frame's end)
        self._out = bytearray()
        self._eof = False

    def _fill(self) -> None:
        data = self._pending or self.raw.read(self.READ_BYTES)
        self._pending = b""
        if not data:
            self._eof = True
            if self._obj is not None:  # input ended inside a frame
                raise EOFError(
                    f"truncated zstd data: the frame starting at byte {self._frame_start} is cut off "
                    f"at byte {self._consumed}, the end of the file")
            return
        if self._obj is None:
            self._obj, self._frame_start = self._dctx.decompressobj(), self._consumed
        before = self._consumed
        self._out += self._obj.decompress(data)
        if self._obj.eof:
            rest = self._obj.unused_data
            self._consumed = before + len(data) - len(rest)
            self._pending, self._obj = rest, None
        else:
            self._consumed = before + len(data)

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or len(self._out) < size):
            self._fill()
        size = len(self._out) if size < 0 else min(size, len(self._out))
        block = bytes(self._out[:size])
        del self._out[:size]
        return block

    def close(self) -> None:
        self.raw.close()


def _decompressed(kind_: str | None, raw: BinaryIO) -> BinaryIO:
    if kind_ == "jsonl.gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if kind_ == "jsonl.zst":
        return ZstdFrames(raw)  # type: ignore[return-value]
    return raw



def available_keys(names: list[str], string_names: list[str]) -> str:
    """The keys or columns a record has (the first five), and which to pass as ``--text-key`` when
    one of them holds text."""
    listed = ", ".join(map(repr, names[:5])) or "none"
    return f"{listed}; try --text-key {string_names[0]}" if string_names else listed

class Reader:
    """Blocks of whole lines (jsonl) or whole paragraphs (txt) from one file, with their first line number."""

    def __init__(self, path: Path, chunk_bytes: int, huge_line_bytes: int | None = None):
        self.path, self.kind, self.chunk_bytes = path, kind(path), chunk_bytes
        # .jsonl lines longer than this come as a HugeLine, read piece by piece (txt: never)
        self.huge_line_bytes = None if self.kind == "txt" else (huge_line_bytes or HUGE_LINE_BLOCKS * chunk_bytes)
        self.raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed in chunks()
        self.stream: BinaryIO = _decompressed(self.kind, self.raw)

    def position(self) -> int:
        """Bytes of the file on disk consumed so far (compressed bytes for .gz/.zst): the progress measure."""
        return self.raw.tell()

    def _cut(self, block: bytes) -> int:
        if self.kind == "txt":
            i, j = block.rfind(b"\n\n"), block.rfind(b"\n\r\n")
            return max(i + 2 if i >= 0 else 0, j + 3 if j >= 0 else 0)
        return block.rfind(b"\n") + 1

    def _read(self) -> bytes:
        try:
            return self.stream.read(self.chunk_bytes)
        except (OSError, EOFError, gzip.BadGzipFile, _ZstdError) as exc:
            raise PrepareError(f"{self.path}: cannot read ({exc})") from None

    def chunks(self) -> Iterator[tuple[int, bytes | HugeLine]]:
        """(first line number, block of whole lines), or (line number, HugeLine) for one huge line."""
        pieces: list[bytes] = []
        held = 0  # bytes in pieces
        line, first = 1, True
        try:
            while True:
                block = self._read()
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
                    held += len(block)
                    if self.huge_line_bytes is not None and held >= self.huge_line_bytes:
                        huge = HugeLine(pieces, self._read)
                        yield line, huge
                        huge.drain()
                        if huge.eof:
                            return
                        line += 1
                        pieces = [huge.rest] if huge.rest else []
                        held = len(huge.rest)
                    continue
                pieces.append(block[:cut])
                chunk = b"".join(pieces)
                pieces = [block[cut:]] if cut < len(block) else []
                held = len(pieces[0]) if pieces else 0
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
                    keys = available_keys(list(obj), [k for k, v in obj.items() if isinstance(v, str)])
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


def parse(file_kind: str, chunk, line0: int, text_key: str, strict: bool) -> Parsed:
    """The documents of one block (``line0`` is the number of its first line, or row for a columnar
    block, which parses itself)."""
    if not isinstance(chunk, bytes):
        return chunk.parse(line0, text_key, strict)
    if file_kind == "txt":
        return parse_txt(chunk, line0, strict)
    return parse_jsonl(chunk, line0, text_key, strict)


# ------------------------------------------------------------------------------ huge .jsonl lines

# A .jsonl line longer than this many blocks is streamed (see HugeLine) instead of read whole.
HUGE_LINE_BLOCKS = 8
_PLACEHOLDER = "\x00minimind: the streamed text\x00"


class HugeLine:
    """One .jsonl line too long to hold (and decode, and tokenize) at once, read block by block.

    ``pieces()`` yields its raw bytes (without the newline); the Reader drains what is not read.
    """

    def __init__(self, head: list[bytes], read: Callable[[], bytes]):
        self._head, self._read = head, read
        self.rest = b""  # bytes after the newline, for the Reader
        self.eof = False
        self._done = False

    def pieces(self) -> Iterator[bytes]:
        while not self._done:
            block = self._head.pop(0) if self._head else self._read()
            if not block:
                self._done = self.eof = True
                return
            cut = block.find(b"\n")
            if cut >= 0:
                # what follows the newline, with any blocks the Reader had already read (kept in order)
                self._done, self.rest = True, block[cut + 1:] + b"".join(self._head)
                self._head = []
                block = block[:cut]
                if block.endswith(b"\r"):
                    block = block[:-1]
            if block:
                yield block

    def drain(self) -> None:
        for _ in self.pieces():
            pass


def _complete(buf: bytes) -> int:
    """Length of the longest prefix of the raw JSON string body ``buf`` that decodes on its own: no
    UTF-8 sequence, escape or surrogate pair (\\ud83d\\ude00) cut in two."""
    p = len(buf)
    while p > 0 and 0x80 <= buf[p - 1] < 0xC0 and len(buf) - p < 3:
        p -= 1
    if p > 0 and buf[p - 1] >= 0xC0:
        p -= 1
    while (i := buf.rfind(b"\\", max(0, p - 6), p)) >= 0:  # again after each step back (surrogate pairs)
        start = i
        while start > 0 and buf[start - 1] == 0x5C:
            start -= 1
        if (i - start) % 2:  # an even run of backslashes: buf[i] ends an escaped backslash
            break
        is_u = buf[i + 1:i + 2] == b"u"
        end = i + (6 if is_u else 2)
        high = is_u and end <= p and buf[i + 2:i + 4].lower() in (b"d8", b"d9", b"da", b"db")
        if not (end > p or (high and end == p)):
            break
        p = i
    return p


def huge_line_text(pieces: Iterator[bytes], text_key: str):
    """The text of a huge .jsonl line whose text is its first key (``{"text": "...`` , any keys after),
    as a generator of decoded parts; it returns ``(None, None)`` when the whole line is a valid
    document, else ``(reason, detail)``. ``None`` at once (nothing yielded) when the line does not
    start that way: the caller reads it whole."""
    key = json.dumps(text_key).encode()
    buf = next(pieces, b"")  # a whole block: the head of the line, with the opening quote of the text
    m = re.compile(rb'\s*\{\s*' + re.escape(key) + rb'\s*:\s*"').match(buf)
    if m is None:
        return buf
    column, buf = m.end(), buf[m.end():]
    while True:  # the string body, up to its closing quote
        q = buf.find(b'"')
        while q >= 0:
            b = q
            while b > 0 and buf[b - 1] == 0x5C:
                b -= 1
            if (q - b) % 2 == 0:
                break
            q = buf.find(b'"', q + 1)
        body_end = q if q >= 0 else _complete(buf)
        try:
            yield json.loads(b'"' + buf[:body_end] + b'"')
        except UnicodeDecodeError as exc:
            col = column + exc.start
            return INVALID_UTF8, f"invalid UTF-8 (byte 0x{buf[exc.start - 1]:02x} at column {col})"
        except ValueError as exc:
            err = json_error(exc) if not isinstance(exc, json.JSONDecodeError) else (
                f"{exc.msg.removesuffix(' at')} at column {column + exc.pos}")
            return INVALID_JSON, f"invalid JSON ({err})"
        column += body_end
        if q >= 0:
            rest = buf[q + 1:]
            break
        buf = buf[body_end:]
        nxt = next(pieces, None)
        if nxt is None:
            return INVALID_JSON, f"invalid JSON (Unterminated string at column {column})"
        buf += nxt
    rest += b"".join(pieces)  # what follows the text: other keys, held whole
    try:
        obj = json.loads(b'{' + key + b': ' + json.dumps(_PLACEHOLDER).encode() + rest)
    except UnicodeDecodeError:
        return INVALID_UTF8, "invalid UTF-8 (after the text)"
    except ValueError as exc:
        return INVALID_JSON, f"invalid JSON ({json_error(exc)} after the text)"
    if not isinstance(obj, dict):
        return NOT_OBJECT, "not a JSON object"
    if obj.get(text_key) != _PLACEHOLDER:  # a second text key wins, as in json.loads
        return NOT_STRING, "the text key appears twice"
    return None, None


def huge_document(huge: HugeLine, line: int, text_key: str, strict: bool):
    """The text of a huge line as a generator of decoded parts; returns the line's ``Parsed`` verdict
    (``lines == [line]`` when it is a document, else its skip reason or error; ``texts`` stays empty)."""
    pieces = huge.pieces()
    verdict = yield from huge_line_text(pieces, text_key)
    out = Parsed([], [], Counter())
    if isinstance(verdict, bytes):  # not {"text": "... : read whole, the ordinary way
        parsed = parse_jsonl(verdict + b"".join(pieces), line, text_key, strict)
        if parsed.texts:
            yield parsed.texts[0]
            parsed.lines, parsed.texts = [line], []
        return parsed
    reason, detail = verdict
    if reason is None:
        out.lines.append(line)
    elif strict:
        out.error = (line, detail)
    else:
        out.skipped[reason] += 1
    return out


def huge_texts(huge: HugeLine, line: int, text_key: str, strict: bool):
    """The text of a huge line in parts cut where the tokenizer may cut (for training); its verdict."""
    from minimind.data.tokenizer import SafeCutter

    cutter = SafeCutter()
    parts = huge_document(huge, line, text_key, strict)
    while True:
        try:
            text = next(parts)
        except StopIteration as stop:
            if rest := cutter.finish():
                yield rest
            return stop.value
        if piece := cutter.feed(text):
            yield piece


def invalid_input(kind: str, path, error: tuple[int, str]) -> PrepareError:
    """The one-line error for the first invalid line or row (``file:line: reason``), with the way
    past it."""
    return PrepareError(f"{location(kind, path, error[0])}: {error[1]}",
                        "fix it, or pass --skip-invalid to skip invalid lines and count them per reason")
