"""Tokenizing blocks of input, in this process or in worker processes.

Workers decode, validate and tokenize a whole block and send back one flat token array, so the
main process only reads, splits and writes. Processes, not threads or ``encode_batch``: on a
2-core machine the Rust batch encoder gains nothing, while independent processes scale. One block
is in flight per worker, so memory stays flat whatever the input size.

The workers are plain processes with one pipe each, not a ``ProcessPoolExecutor``: on Ctrl-C they
are killed at once, and the executor's helper threads would then wait forever on the half-written
result of a killed worker (seen as a hang on exit). Here nothing reads a pipe after an abort.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from minimind.data.prepare.dedup import TextHasher, text_hash
from minimind.data.prepare.parse import EMPTY, SURROGATE, HugeLine, Parsed, huge_document, parse
from minimind.errors import PrepareError


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


def _worker_main(conn, tokenizer_file: str, bos: int, eos: int, dtype: str, parent_pid: int, dedup: bool) -> None:
    """An encode worker: answer each block sent on ``conn`` with ("ok", Encoded) until told to stop (None)."""
    from tokenizers import Tokenizer

    from minimind.data.tokenizer import make_batch_encoder, make_encoder

    serve_parent(ppid=parent_pid)
    # Each worker process already has a core of its own: no extra tokenizer threads.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    tok = Tokenizer.from_file(tokenizer_file)
    encode = make_encoder(tok)
    encode_many = make_batch_encoder(tok, encode)
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the parent is gone
            return
        if task is None:
            return
        kind, chunk, line0, text_key, strict = task
        try:
            reply = ("ok", encode_chunk(encode, bos, eos, dtype, kind, chunk, line0, text_key, strict,
                                        encode_many, dedup))
        except BaseException:  # noqa: BLE001 - a bug: its traceback goes to the parent
            reply = ("crash", traceback.format_exc())
        conn.send(reply)


def stop_process(proc, grace_s: float = 5.0) -> None:
    """Stop a child process now: SIGTERM, then SIGKILL if it is still there after ``grace_s``
    (``grace_s=0``: SIGKILL at once, for a child that may be deep in native code)."""
    if proc.is_alive() and grace_s > 0:
        proc.terminate()
        proc.join(grace_s)
    if proc.is_alive():
        proc.kill()
    proc.join()


class _Workers:
    """Worker processes that encode blocks. Block ``i`` goes to worker ``i % n``, and its result is
    taken before that worker gets another block, so neither side can block the other on a full pipe."""

    def __init__(self, n: int, tokenizer_file: str, bos: int, eos: int, dtype: str, dedup: bool):
        # spawn, not fork: the parent may hold rayon threads (tokenizer training) or a progress
        # bar's refresh thread, and a forked child would inherit them half-alive.
        ctx = multiprocessing.get_context("spawn")
        self.procs, self.conns = [], []
        self.outstanding = 0  # blocks sent whose result has not been taken
        try:
            for _ in range(n):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker_main, name="minimind-encode", daemon=True,
                                   args=(child, tokenizer_file, bos, eos, dtype, os.getpid(), dedup))
                proc.start()
                child.close()
                self.procs.append(proc)
                self.conns.append(parent)
        except BaseException:
            self.close(abort=True)
            raise

    def _died(self, k: int) -> PrepareError:
        self.procs[k].join(5)
        code = self.procs[k].exitcode
        why = f"killed by signal {-code}, e.g. out of memory" if code is not None and code < 0 else f"exit code {code}"
        return PrepareError(f"an encode worker process died ({why}); nothing was written. "
                            "Run prepare again, with fewer --workers if memory is short.")

    def send(self, i: int, task: tuple) -> None:
        k = i % len(self.conns)
        try:
            self.conns[k].send(task)
        except OSError:  # broken pipe: the worker is gone
            raise self._died(k) from None
        self.outstanding += 1

    def result(self, i: int) -> Encoded:
        k = i % len(self.conns)
        try:
            status, value = self.conns[k].recv()
        except EOFError:
            raise self._died(k) from None
        self.outstanding -= 1
        if status == "crash":
            raise RuntimeError(f"encoding a block failed in a worker:\n{value}")
        return value

    def close(self, abort: bool) -> None:
        """Let idle workers exit or, on ``abort`` or with blocks still out (a limit was reached), kill
        them whatever they are doing."""
        if not abort and not self.outstanding:
            for conn in self.conns:
                try:
                    conn.send(None)
                except OSError:  # that worker is already gone
                    pass
            for proc in self.procs:
                proc.join(5)
        for proc in self.procs:
            stop_process(proc)
        for conn in self.conns:
            conn.close()


class BlockEncoder:
    """Tokenizes the blocks of input files in order; a context manager that owns the worker processes.

    ``tok`` is a loaded tokenizer (encode/encode_many/bos_id/eos_id), ``tokenizer_file`` its
    ``tokenizer.json`` for the workers to load. With one worker everything runs in this process.
    """

    def __init__(self, tok, tokenizer_file: str, dtype: str, text_key: str, strict: bool, workers: int,
                 dedup: bool = False):
        self.tok, self.dtype, self.text_key, self.strict, self.workers = tok, dtype, text_key, strict, workers
        self.dedup = dedup
        self.pool = (_Workers(workers, tokenizer_file, tok.bos_id, tok.eos_id, dtype, dedup)
                     if workers > 1 else None)
        self.sent = 0  # blocks sent to the workers so far: the index of the next one

    def __enter__(self) -> BlockEncoder:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.pool is not None:
            # On failure or Ctrl-C nothing more is wanted from the workers: stop them now rather
            # than let each finish its block (seconds), which would hold up the exit.
            self.pool.close(abort=exc_type is not None)
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
        pending: deque = deque()  # (block index, file position after it), oldest first

        def oldest() -> tuple[Encoded, int]:
            i, pos = pending.popleft()
            return self.pool.result(i), pos

        for line0, chunk in reader.chunks():
            if isinstance(chunk, HugeLine):  # encoded here, in order, as it is read
                while pending:
                    yield oldest()
                yield self._huge(chunk, line0), reader.position()
                continue
            # All busy: the worker this block goes to answers first, and gets the block before the
            # answer is handed on, so it encodes while the caller writes.
            done = oldest() if len(pending) == self.workers else None
            self.pool.send(self.sent, (reader.kind, chunk, line0, self.text_key, self.strict))
            pending.append((self.sent, reader.position()))
            self.sent += 1
            if done is not None:
                yield done
        while pending:
            yield oldest()
