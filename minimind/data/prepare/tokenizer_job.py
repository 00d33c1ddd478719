"""Training the tokenizer of a ``prepare`` in a process of its own, so that Ctrl-C stops it at once.

The Rust BPE trainer never returns to Python while it merges (tens of seconds on a large sample),
so a Ctrl-C would wait for it. Instead a spawned child reads the first part of the corpus and
trains; the parent only waits for its messages (progress, done, or a one-line error) and kills it
when it is interrupted. A small sample is trained in this process: starting a child costs about a
second, more than training on it.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from minimind.data.prepare.encode import serve_parent, stop_process
from minimind.data.prepare.readers import leading_texts
from minimind.errors import PrepareError

# Below this many bytes of sample, training takes well under a second: no child process.
IN_PROCESS_BYTES = 2 << 20


@dataclass
class TrainJob:
    files: list[Path]
    text_key: str
    strict: bool
    limit: int  # bytes of input to train on
    chunk_bytes: int
    vocab_size: int
    out_dir: Path
    max_documents: int | None = None  # --max-documents: train on the documents that will be kept, no more


def _train(job: TrainJob, on_progress: Callable[[int, int], None]) -> int:
    """Train into ``job.out_dir``; ``on_progress(bytes, documents)`` as blocks are read. Characters trained on."""
    from minimind.data.tokenizer import train_tokenizer
    from minimind.errors import TokenizerError

    seen = {"bytes": 0, "docs": 0, "chars": 0}

    def on_bytes(n: int) -> None:
        seen["bytes"] += n
        on_progress(seen["bytes"], seen["docs"])

    def counted(texts: Iterator[str]) -> Iterator[str]:
        for text in texts:
            if job.max_documents is not None and seen["docs"] >= job.max_documents:
                return
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogate: reported by the main pass
                continue
            seen["chars"] += len(text)
            seen["docs"] += 1
            yield text

    texts = leading_texts(job.files, job.text_key, job.strict, job.limit, job.chunk_bytes, on_bytes)
    try:
        train_tokenizer(counted(texts), job.vocab_size, job.out_dir)
    except TokenizerError as exc:
        raise PrepareError(str(exc)) from None
    return seen["chars"]


def _child(conn, job: TrainJob, parent_pid: int) -> None:
    serve_parent(ppid=parent_pid)
    try:
        chars = _train(job, lambda done, docs: conn.send(("progress", done, docs)))
        conn.send(("done", chars))
    except PrepareError as exc:
        conn.send(("error", str(exc)))
    except BaseException:  # noqa: BLE001 - a bug: its traceback goes to the parent
        conn.send(("crash", traceback.format_exc()))
    finally:
        conn.close()


def train_for_prepare(job: TrainJob, on_progress: Callable[[int, int], None]) -> int:
    """Train the tokenizer of a prepare (in a child process for a large sample); characters trained on.

    Raises ``PrepareError`` for bad input; on ``KeyboardInterrupt`` (or any exception) in this
    process the child is killed before the exception goes on.
    """
    if job.limit <= IN_PROCESS_BYTES:
        return _train(job, on_progress)
    ctx = multiprocessing.get_context("spawn")  # no fork: this process may hold threads
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, job, os.getpid()), name="minimind-tokenizer", daemon=True)
    proc.start()
    child.close()
    try:
        while True:
            if not parent.poll(0.1):
                if not proc.is_alive() and not parent.poll(0):
                    raise RuntimeError(f"the tokenizer training process died (exit code {proc.exitcode})")
                continue
            try:
                message = parent.recv()
            except EOFError:
                proc.join(5)
                raise RuntimeError(f"the tokenizer training process died (exit code {proc.exitcode})") from None
            kind = message[0]
            if kind == "progress":
                on_progress(message[1], message[2])
            elif kind == "done":
                proc.join()
                return message[1]
            elif kind == "error":
                raise PrepareError(message[1])
            else:
                raise RuntimeError(f"training the tokenizer failed:\n{message[1]}")
    finally:
        stop_process(proc, grace_s=0)  # it may be deep in Rust: only SIGKILL stops it now
        parent.close()
