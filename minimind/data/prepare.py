"""``prepare``: validated, streaming, parallel corpus -> dataset directory (DESIGN.md section 4).

Inputs are ``.jsonl`` (one JSON object per line, text under ``text_key``), ``.jsonl.gz`` and ``.txt``
(one document per paragraph: paragraphs are separated by one or more blank lines), given as files
or directories (searched recursively, in sorted order).

How it runs, and why:
- The input is read in blocks of about ``chunk_bytes`` cut at line (paragraph) boundaries; worker
  processes decode, validate and tokenize each block and send back a flat token array. The main
  process only reads, splits and writes, so memory stays flat whatever the input size: at most a
  few blocks are in flight. Processes, not threads or ``encode_batch``: on a 2-core machine the
  Rust batch encoder gains nothing, while independent processes scale.
- The validation split is chosen per document from a hash of its index, so one pass suffices and
  the split is the same on every run.
- Without ``tokenizer``, a byte-level BPE is trained first on the first ``TOKENIZER_SAMPLE_BYTES``
  of text (training time and memory grow with the sample, not with the corpus).
- Everything is written into ``<out>.tmp-<pid>`` and renamed into place when complete; a failure or
  Ctrl-C removes it, and a later run removes the leftovers of a killed one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from minimind.data import format as fmt
from minimind.errors import MinimindError

TOKENIZER_SAMPLE_BYTES = 64 << 20
DEFAULT_CHUNK_BYTES = 1 << 20
SUFFIXES = (".jsonl.gz", ".jsonl", ".txt")
TXT_RULE = "one document per paragraph (paragraphs are separated by blank lines)"

# Reasons a line is skipped; the first three are never errors.
BLANK, EMPTY = "blank line", "empty text"
INVALID_JSON, NOT_OBJECT, INVALID_UTF8, NOT_STRING, SURROGATE = (
    "invalid JSON", "not a JSON object", "invalid UTF-8", "text is not a string", "lone surrogate in text")
NOT_ERRORS = (BLANK, EMPTY)


class PrepareError(MinimindError, ValueError):
    """Bad input for ``prepare``: the message is one line, ``file:line: reason`` where it applies."""


@dataclass
class PrepareResult:
    path: Path
    meta: dict[str, Any]
    reused: bool
    seconds: float
    tokenizer_seconds: float = 0.0
    workers: int = 1
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------- inputs

def _kind(path: Path) -> str | None:
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
            found = sorted(p for p in path.rglob("*") if p.is_file() and _kind(p)
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise PrepareError(f"{path}: no .jsonl, .jsonl.gz or .txt files in this directory")
            files.extend(found)
        elif path.is_file():
            if not _kind(path):
                raise PrepareError(f"{path}: unsupported file type (expected .jsonl, .jsonl.gz or .txt)")
            files.append(path)
        elif path.exists():
            raise PrepareError(f"{path}: not a regular file or directory")
        else:
            raise PrepareError(f"{path}: no such file or directory")
    unique: dict[Path, Path] = {}
    for f in files:
        unique.setdefault(f.resolve(), f)
    return list(unique.values())


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _describe_sources(files: list[Path]) -> list[dict[str, Any]]:
    return [{"path": str(f), "format": _kind(f), "size": f.stat().st_size, "sha256": file_sha256(f)}
            for f in files]


def prepared_path_for(inputs: list[str | Path], cache_root: str | Path) -> Path:
    """The cache directory for these inputs, named by their content: the same files map to the same place."""
    h = hashlib.sha256()
    for source in _describe_sources(collect_inputs(inputs)):
        h.update(f"{source['format']}:{source['size']}:{source['sha256']}\n".encode())
    return Path(cache_root) / h.hexdigest()[:20]


# ------------------------------------------------------------------------------- reading in blocks

class _Reader:
    """Blocks of whole lines (jsonl) or whole paragraphs (txt) from one file, with their first line number."""

    def __init__(self, path: Path, chunk_bytes: int):
        self.path, self.kind, self.chunk_bytes = path, _kind(path), chunk_bytes
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


# ----------------------------------------------------------------------------- parsing (in workers)

@dataclass
class _Parsed:
    texts: list[str]
    lines: list[int]
    skipped: Counter
    error: tuple[int, str] | None = None  # (line, message) of the first invalid line in strict mode


def _parse_jsonl(chunk: bytes, line0: int, text_key: str, strict: bool) -> _Parsed:
    out = _Parsed([], [], Counter())
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
                msg = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
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
                    kind = "null" if value is None else type(value).__name__
                    reason, detail = NOT_STRING, f"{text_key!r} is a {kind}, not a string"
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


def _parse_txt(chunk: bytes, line0: int, strict: bool) -> _Parsed:
    out = _Parsed([], [], Counter())
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


def _parse(kind: str, chunk: bytes, line0: int, text_key: str, strict: bool) -> _Parsed:
    return _parse_txt(chunk, line0, strict) if kind == "txt" else _parse_jsonl(chunk, line0, text_key, strict)


@dataclass
class _Encoded:
    tokens: np.ndarray  # every document as bos + ids + eos, concatenated
    lengths: np.ndarray  # int64, tokens per document (including bos and eos)
    skipped: Counter
    error: tuple[int, str] | None


def _encode_chunk(encode: Callable[[str], list[int]], bos: int, eos: int, dtype: str, kind: str, chunk: bytes, line0: int,
                  text_key: str, strict: bool,
                  encode_many: Callable[[list[str]], list[list[int]]] | None = None) -> _Encoded:
    parsed = _parse(kind, chunk, line0, text_key, strict)
    flat: list[int] = []
    lengths: list[int] = []
    batch: list[list[int]] | None = None
    if encode_many is not None:
        try:
            batch = encode_many(parsed.texts)
        except TypeError:
            batch = None  # a refused text somewhere: the per-text loop below finds and reports it
    for i, (text, line) in enumerate(zip(parsed.texts, parsed.lines, strict=True)):
        try:
            ids = batch[i] if batch is not None else encode(text)
        except TypeError:  # the Rust side refuses str with lone surrogates ("\ud800" escapes in JSON)
            if strict:
                parsed.error = (line, "lone surrogate in text (an unpaired \\ud800-\\udfff escape)")
                break
            parsed.skipped[SURROGATE] += 1
            continue
        flat.append(bos)
        flat.extend(ids)
        flat.append(eos)
        lengths.append(len(ids) + 2)
    return _Encoded(np.array(flat, dtype=dtype), np.array(lengths, dtype=np.int64), parsed.skipped, parsed.error)


_WORKER: dict[str, Any] = {}


def _worker_init(tokenizer_file: str, bos: int, eos: int, dtype: str, parent_pid: int) -> None:
    from tokenizers import Tokenizer

    from minimind.data.tokenizer import make_batch_encoder, make_encoder

    # Ctrl-C goes to the whole process group: the parent decides, workers just finish their block.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Each worker process already has a core of its own: no extra tokenizer threads.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    tok = Tokenizer.from_file(tokenizer_file)
    encode = make_encoder(tok)
    _WORKER.update(encode=encode, encode_many=make_batch_encoder(tok, encode), bos=bos, eos=eos, dtype=dtype)

    def exit_with_parent() -> None:
        # A SIGKILLed parent cannot stop its pool; without this the workers would wait forever.
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()


def _worker_encode(kind: str, chunk: bytes, line0: int, text_key: str, strict: bool) -> _Encoded:
    w = _WORKER
    return _encode_chunk(w["encode"], w["bos"], w["eos"], w["dtype"], kind, chunk, line0, text_key, strict,
                         w["encode_many"])


# ------------------------------------------------------------------------------------------- output

class _SplitWriter:
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


def _val_mask(first_index: int, n: int, val_fraction: float) -> np.ndarray:
    """Which of documents first_index..first_index+n-1 go to validation: splitmix64 of the index."""
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


# -------------------------------------------------------------------------------------- housekeeping

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(out_dir: Path) -> list[Path]:
    """Remove ``<out>.tmp-<pid>`` / ``<out>.old-<pid>`` left by a prepare that was killed."""
    removed = []
    if not out_dir.parent.is_dir():
        return removed
    pattern = re.compile(re.escape(out_dir.name) + r"\.(?:tmp|old)-(\d+)$")
    for p in out_dir.parent.iterdir():
        m = pattern.match(p.name)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


class _SigtermAsInterrupt:
    """SIGTERM during prepare behaves like Ctrl-C (clean up, then stop), if nobody else handles it."""

    def __enter__(self):
        self.installed = (threading.current_thread() is threading.main_thread()
                          and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
        if self.installed:
            signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return False


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


# ----------------------------------------------------------------------------------------- progress

class _Progress:
    """A rich progress bar (MB done, MB/s, ETA), or nothing: the core library never needs a terminal."""

    def __init__(self, enabled: bool, console=None):
        self.bar = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                TransferSpeedColumn(), TimeRemainingColumn(),
                                console=console or Console(stderr=True), transient=False)

    def __enter__(self):
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.stop()
        return False

    def add(self, description: str, total: float) -> int | None:
        return self.bar.add_task(description, total=total) if self.bar else None

    def update(self, task, **kwargs) -> None:
        if self.bar and task is not None:
            self.bar.update(task, **kwargs)


# ------------------------------------------------------------------------------------------- prepare

def _reusable(out_dir: Path, sources: list[dict], options: dict) -> dict | None:
    if not fmt.is_dataset(out_dir):
        return None
    try:
        meta = fmt.read_meta(out_dir)
        fmt.open_split(out_dir, "train")
        fmt.open_split(out_dir, "val")
    except (fmt.DatasetFormatError, ValueError, KeyError, TypeError, OSError):
        return None
    same_sources = ([(s.get("size"), s.get("sha256")) for s in meta.get("sources", [])]
                    == [(s["size"], s["sha256"]) for s in sources])
    return meta if same_sources and meta.get("options") == options else None


def _tokenizer_texts(files: list[Path], text_key: str, strict: bool, limit: int, chunk_bytes: int,
                     on_bytes: Callable[[int], None]) -> Iterator[str]:
    """Texts of the first ``limit`` bytes of the corpus, for training the tokenizer (validated as they go)."""
    seen = 0
    for path in files:
        reader = _Reader(path, chunk_bytes)
        position = 0
        for line0, chunk in reader.chunks():
            parsed = _parse(_kind(path), chunk, line0, text_key, strict)
            if parsed.error:
                raise PrepareError(f"{path}:{parsed.error[0]}: {parsed.error[1]}")
            yield from parsed.texts
            seen += len(chunk)
            on_bytes(reader.position() - position)  # bytes on disk, like the bar's total
            position = reader.position()
            if seen >= limit:
                return


def prepare_dataset(inputs: list[str | Path], out_dir: str | Path, *, tokenizer: str | Path | None = None,
                    vocab_size: int = 6400, text_key: str = "text", val_fraction: float = 0.005,
                    skip_invalid: bool = False, workers: int | None = None, force: bool = False,
                    progress: bool = True, console=None, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                    source_names: list[str] | None = None) -> PrepareResult:
    """Validate and tokenize ``inputs`` into the dataset directory ``out_dir`` (see the module docstring).

    Reuses ``out_dir`` when it already holds the dataset of the same inputs (size + sha256) and
    options, unless ``force``. Raises ``PrepareError`` for bad input, leaving nothing behind.
    ``source_names`` replaces the recorded paths (the sample corpus is built in a temporary file).
    """
    from minimind.data.tokenizer import (
        TokenizerError,
        copy_tokenizer,
        load_tokenizer,
        tokenizer_fingerprint,
        train_tokenizer,
    )

    start = time.perf_counter()
    out_dir = Path(out_dir)
    if not 0 <= val_fraction < 1:
        raise PrepareError(f"val fraction {val_fraction} must be at least 0 and below 1")
    if workers is not None and workers < 1:
        raise PrepareError(f"workers must be at least 1 (got {workers})")
    if not text_key:
        raise PrepareError("text key must not be empty")
    files = collect_inputs(inputs)
    sources = _describe_sources(files)
    if source_names is not None:
        for source, name in zip(sources, source_names, strict=True):
            source["path"] = name
    given_tok = None
    if tokenizer is not None:
        try:
            given_tok = load_tokenizer(tokenizer)
            given_fp = tokenizer_fingerprint(tokenizer)
        except TokenizerError as exc:
            raise PrepareError(str(exc)) from None
    options = {"tokenizer": given_fp if given_tok else "trained", "vocab_size": None if given_tok else vocab_size,
               "text_key": text_key, "val_fraction": val_fraction, "skip_invalid": skip_invalid}

    notes = [f"removed leftovers of an interrupted prepare: {p}" for p in _clean_stale(out_dir)]
    if out_dir.exists():
        if not out_dir.is_dir() or (any(out_dir.iterdir()) and not fmt.is_dataset(out_dir)):
            raise PrepareError(f"{out_dir}: exists and is not a minimind dataset; choose another output "
                               f"directory or remove it")
        if not force and (meta := _reusable(out_dir, sources, options)) is not None:
            return PrepareResult(out_dir, meta, True, time.perf_counter() - start, notes=notes)

    total_bytes = sum(s["size"] for s in sources)
    n_workers = workers or _default_workers()
    # Spawning workers costs about a second; an input of one or two blocks is quicker in-process.
    n_workers = max(1, min(n_workers, -(-total_bytes // chunk_bytes)))
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    strict = not skip_invalid
    executor = None
    try:
        with _SigtermAsInterrupt(), _Progress(progress, console) as bar:
            tok_dir = tmp / fmt.TOKENIZER_DIR
            tok_seconds = 0.0
            trained_on = None
            if given_tok is None:
                t0 = time.perf_counter()
                limit = min(TOKENIZER_SAMPLE_BYTES, total_bytes)  # on disk: a .gz sample is larger
                task = bar.add("training tokenizer", total=limit)
                texts = _tokenizer_texts(files, text_key, strict, TOKENIZER_SAMPLE_BYTES, chunk_bytes,
                                         lambda n: bar.update(task, advance=n))
                seen = 0

                def counted(it):
                    nonlocal seen
                    for text in it:
                        try:
                            text.encode("utf-8")
                        except UnicodeEncodeError:  # lone surrogate: reported by the main pass
                            continue
                        seen += len(text)
                        yield text

                try:
                    train_tokenizer(counted(texts), vocab_size, tok_dir)
                except TokenizerError as exc:
                    raise PrepareError(str(exc)) from None
                bar.update(task, completed=limit)
                tok_seconds = time.perf_counter() - t0
                trained_on = seen
            else:
                copy_tokenizer(tokenizer, tok_dir)
            tok = load_tokenizer(tok_dir)
            tok_fp = tokenizer_fingerprint(tok_dir)
            dtype = fmt.token_dtype(tok.vocab_size)

            train = _SplitWriter(tmp / fmt.TOKENS_FILE, tmp / fmt.DOCS_FILE)
            val = _SplitWriter(tmp / fmt.VAL_TOKENS_FILE, tmp / fmt.VAL_DOCS_FILE)
            skipped: Counter = Counter()
            task = bar.add("tokenizing", total=total_bytes)
            done_before = 0  # bytes of the files already finished
            for path in files:
                reader = _Reader(path, chunk_bytes)
                kind = _kind(path)

                def handle(result: _Encoded, position: int, path=path, done_before=done_before) -> None:
                    if result.error:
                        raise PrepareError(f"{path}:{result.error[0]}: {result.error[1]}")
                    skipped.update(result.skipped)
                    is_val = _val_mask(train.n_docs + val.n_docs, len(result.lengths), val_fraction)
                    if is_val.any():
                        per_token = np.repeat(is_val, result.lengths)
                        train.write(result.tokens[~per_token], result.lengths[~is_val])
                        val.write(result.tokens[per_token], result.lengths[is_val])
                    else:
                        train.write(result.tokens, result.lengths)
                    bar.update(task, completed=done_before + position)

                if n_workers == 1:
                    for line0, chunk in reader.chunks():
                        handle(_encode_chunk(tok.encode, tok.bos_id, tok.eos_id, dtype.name, kind, chunk,
                                             line0, text_key, strict, tok.encode_many), reader.position())
                else:
                    if executor is None:
                        import multiprocessing
                        from concurrent.futures import ProcessPoolExecutor

                        # spawn, not fork: the parent may hold rayon threads (tokenizer training) or
                        # rich's refresh thread, and a forked child would inherit them half-alive.
                        executor = ProcessPoolExecutor(
                            n_workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                            initargs=(str(tok_dir / "tokenizer.json"), tok.bos_id, tok.eos_id, dtype.name,
                                      os.getpid()))
                    pending: deque = deque()
                    for line0, chunk in reader.chunks():
                        pending.append((executor.submit(_worker_encode, kind, chunk, line0, text_key, strict),
                                        reader.position()))
                        # A bounded queue keeps memory flat: reading never runs far ahead of encoding.
                        while len(pending) > 2 * n_workers:
                            fut, pos = pending.popleft()
                            handle(fut.result(), pos)
                    while pending:
                        fut, pos = pending.popleft()
                        handle(fut.result(), pos)
                done_before += path.stat().st_size
            train.close()
            val.close()
            if executor is not None:
                executor.shutdown(wait=True)
                executor = None

            if train.n_docs + val.n_docs == 0:
                detail = (", ".join(f"{n} {r}" for r, n in sorted(skipped.items())) if skipped
                          else "the input is empty")
                raise PrepareError(f"{', '.join(map(str, files))}: no documents to train on ({detail})")
            digests = {fmt.TOKENS_FILE: train.tokens_hash.hexdigest(), fmt.DOCS_FILE: train.docs_hash.hexdigest(),
                       fmt.VAL_TOKENS_FILE: val.tokens_hash.hexdigest(),
                       fmt.VAL_DOCS_FILE: val.docs_hash.hexdigest()}
            meta = {
                "format_version": fmt.FORMAT_VERSION,
                "dtype": dtype.name,
                "vocab_size": tok.vocab_size,
                "bos_id": tok.bos_id,
                "eos_id": tok.eos_id,
                "pad_id": tok.pad_id,
                "tokenizer_fingerprint": tok_fp,
                "tokenizer": {"source": str(tokenizer) if given_tok else "trained",
                              "trained_on_chars": trained_on, "seconds": round(tok_seconds, 3)},
                "sources": sources,
                "documents": train.n_docs,
                "tokens": train.n_tokens,
                "val_documents": val.n_docs,
                "val_tokens": val.n_tokens,
                "skipped": dict(sorted(skipped.items())),
                "text_key": text_key,
                "txt_documents": TXT_RULE,
                "options": options,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "fingerprint": fmt.combine_fingerprint(digests, tok_fp),
            }
            with open(tmp / fmt.META_FILE, "w", encoding="utf-8") as f:
                f.write(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
            _install(tmp, out_dir)
    except BaseException:
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PrepareResult(out_dir, meta, False, time.perf_counter() - start, tokenizer_seconds=tok_seconds,
                         workers=n_workers, notes=notes)


def _install(tmp: Path, out_dir: Path) -> None:
    """Move the finished dataset into place; an older dataset there is replaced as a whole."""
    if out_dir.exists():
        old = out_dir.with_name(f"{out_dir.name}.old-{os.getpid()}")
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        fd = os.open(out_dir.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


if __name__ == "__main__":  # pragma: no cover - handy for profiling: python -m minimind.data.prepare IN OUT
    r = prepare_dataset(sys.argv[1:-1], sys.argv[-1])
    print(json.dumps({k: r.meta[k] for k in ("documents", "tokens", "skipped")}), f"{r.seconds:.1f}s")
