"""Tokenizing blocks of input, in this process or in worker processes.

Workers decode, validate and tokenize a whole block and send back one flat token array, so the
main process only reads, splits and writes. Processes, not threads or ``encode_batch``: on a
2-core machine the Rust batch encoder gains nothing, while independent processes scale. At most
``2 * workers`` blocks are in flight, so memory stays flat whatever the input size.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from minimind.data.prepare.dedup import TextHasher, text_hash
from minimind.data.prepare.parse import EMPTY, SURROGATE, HugeLine, Parsed, huge_document, parse


@dataclass
class Encoded:
    tokens: np.ndarray  # every document as bos + ids + eos, concatenated
    lengths: np.ndarray  # int64, tokens per document (including bos and eos)
    skipped: Counter
    error: tuple[int, str] | None
    hashes: np.ndarray | None = None  # uint64 per document: dedup.text_hash (only with dedup)


def encode_chunk(encode: Callable[[str], list[int]], bos: int, eos: int, dtype: str, kind: str, chunk,
                 line0: int, text_key: str, strict: bool,
                 encode_many: Callable[[list[str]], list[list[int]]] | None = None, dedup: bool = False) -> Encoded:
    """Parse one block and tokenize its documents (``encode_many`` first, ``encode`` as the fallback);
    with ``dedup`` also hash each document's normalised text."""
    parsed = parse(kind, chunk, line0, text_key, strict)
    flat: list[int] = []
    lengths: list[int] = []
    hashes: list[int] | None = [] if dedup else None
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
        if hashes is not None:
            hashes.append(text_hash(text))
    return Encoded(np.array(flat, dtype=dtype), np.array(lengths, dtype=np.int64), parsed.skipped, parsed.error,
                   None if hashes is None else np.array(hashes, dtype=np.uint64))


def encode_huge(tok, dtype: str, huge: HugeLine, line: int, text_key: str, strict: bool,
                dedup: bool = False) -> Encoded:
    """Tokenize one huge .jsonl line as it is read: memory holds a block of text and the tokens,
    never the whole line. The text is encoded in parts cut where the ids do not change (see
    ``SafeCutter``), or whole for a tokenizer that cannot be cut (a normalizer, say)."""
    from minimind.data.tokenizer import SafeCutter, _splits_safely

    cutter = SafeCutter() if _splits_safely(tok.tokenizer) else None
    hasher = TextHasher() if dedup else None
    parts: list[np.ndarray] = [np.array([tok.bos_id], dtype=dtype)]
    whole: list[str] = []
    blank = True
    texts = huge_document(huge, line, text_key, strict)
    try:
        while True:
            try:
                text = next(texts)
            except StopIteration as stop:
                parsed = stop.value
                break
            blank = blank and not text.strip()
            if hasher is not None:
                hasher.feed(text)
            if cutter is None:
                whole.append(text)
            elif piece := cutter.feed(text):
                parts.append(np.array(tok.encode(piece), dtype=dtype))
        last = cutter.finish() if cutter is not None else "".join(whole)
        parts.append(np.array(tok.encode(last), dtype=dtype))
    except TypeError:  # lone surrogate (the Reader drains the rest of the line)
        parsed = Parsed([], [], Counter())
        if strict:
            parsed.error = (line, "lone surrogate in text (an unpaired \\ud800-\\udfff escape)")
        else:
            parsed.skipped[SURROGATE] += 1
    empty = (np.zeros(0, dtype=dtype), np.zeros(0, dtype=np.int64))
    if parsed.error or not parsed.lines:
        return Encoded(*empty, parsed.skipped, parsed.error)
    if blank:
        parsed.skipped[EMPTY] += 1
        return Encoded(*empty, parsed.skipped, None)
    parts.append(np.array([tok.eos_id], dtype=dtype))
    tokens = np.concatenate(parts)
    hashes = None if hasher is None else np.array([hasher.digest()], dtype=np.uint64)
    return Encoded(tokens, np.array([tokens.size], dtype=np.int64), parsed.skipped, None, hashes)


_WORKER: dict[str, Any] = {}


def serve_parent(ppid: int, poll_s: float = 0.5) -> None:
    """Set up a child process of prepare (an encode worker, the tokenizer trainer). Ctrl-C reaches
    the whole process group, and the parent decides what happens (it terminates its children), so
    the child ignores it. A SIGKILLed parent can stop nothing: the child exits once it is orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def exit_with_parent() -> None:
        while os.getppid() == ppid:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()


def _worker_init(tokenizer_file: str, bos: int, eos: int, dtype: str, parent_pid: int, dedup: bool) -> None:
    from tokenizers import Tokenizer

    from minimind.data.tokenizer import make_batch_encoder, make_encoder

    serve_parent(ppid=parent_pid)
    # Each worker process already has a core of its own: no extra tokenizer threads.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    tok = Tokenizer.from_file(tokenizer_file)
    encode = make_encoder(tok)
    _WORKER.update(encode=encode, encode_many=make_batch_encoder(tok, encode), bos=bos, eos=eos, dtype=dtype,
                   dedup=dedup)


def _worker_encode(kind: str, chunk, line0: int, text_key: str, strict: bool) -> Encoded:
    w = _WORKER
    return encode_chunk(w["encode"], w["bos"], w["eos"], w["dtype"], kind, chunk, line0, text_key, strict,
                        w["encode_many"], w["dedup"])


class BlockEncoder:
    """Tokenizes the blocks of input files in order; a context manager that owns the worker pool.

    ``tok`` is a loaded tokenizer (encode/encode_many/bos_id/eos_id), ``tokenizer_file`` its
    ``tokenizer.json`` for the workers to load. With one worker everything runs in this process.
    """

    def __init__(self, tok, tokenizer_file: str, dtype: str, text_key: str, strict: bool, workers: int,
                 dedup: bool = False):
        self.tok, self.dtype, self.text_key, self.strict, self.workers = tok, dtype, text_key, strict, workers
        self.dedup = dedup
        self.pool: ProcessPoolExecutor | None = None
        if workers > 1:
            # spawn, not fork: the parent may hold rayon threads (tokenizer training) or a progress
            # bar's refresh thread, and a forked child would inherit them half-alive.
            self.pool = ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                initargs=(tokenizer_file, tok.bos_id, tok.eos_id, dtype, os.getpid(), dedup))

    def __enter__(self) -> BlockEncoder:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.pool is not None:
            if exc_type is not None:
                # On failure or Ctrl-C nothing more is wanted from the workers: stop them now rather
                # than let each finish its block (seconds), which would hold up the exit.
                for proc in list((getattr(self.pool, "_processes", None) or {}).values()):
                    proc.terminate()
            self.pool.shutdown(wait=True, cancel_futures=exc_type is not None)
            self.pool = None
        return False

    def _huge(self, chunk: HugeLine, line0: int) -> Encoded:
        return encode_huge(self.tok, self.dtype, chunk, line0, self.text_key, self.strict, self.dedup)

    def encode_file(self, reader) -> Iterator[tuple[Encoded, int]]:
        """(encoded block, bytes of the file consumed up to its end), in file order. ``reader`` is a
        ``parse.Reader`` or a ``columnar.ColumnReader``."""
        if self.pool is None:
            tok = self.tok
            for line0, chunk in reader.chunks():
                if isinstance(chunk, HugeLine):
                    yield self._huge(chunk, line0), reader.position()
                    continue
                yield (encode_chunk(tok.encode, tok.bos_id, tok.eos_id, self.dtype, reader.kind, chunk, line0,
                                    self.text_key, self.strict, tok.encode_many, self.dedup), reader.position())
            return
        pending: deque = deque()
        for line0, chunk in reader.chunks():
            if isinstance(chunk, HugeLine):  # encoded here, in order, as it is read
                while pending:
                    fut, pos = pending.popleft()
                    yield fut.result(), pos
                yield self._huge(chunk, line0), reader.position()
                continue
            pending.append((self.pool.submit(_worker_encode, reader.kind, chunk, line0, self.text_key, self.strict),
                            reader.position()))
            # A bounded queue keeps memory flat: reading never runs far ahead of encoding.
            while len(pending) > 2 * self.workers:
                fut, pos = pending.popleft()
                yield fut.result(), pos
        while pending:
            fut, pos = pending.popleft()
            yield fut.result(), pos
