"""``prepare_dataset``: validated, streaming, parallel corpus -> dataset directory.

The steps, in order: check the options and inputs; reuse the output when it already holds the
dataset of the same inputs (size + sha256) and options; otherwise, in a temporary directory beside
the output, train a tokenizer (or copy the given one), tokenize every input block by block, write
meta.json, and move the directory into place. A failure or Ctrl-C/SIGTERM removes the temporary
directory; nothing is left half-written.

Without a tokenizer, a byte-level BPE is trained on the first ``TOKENIZER_SAMPLE_BYTES`` of text:
training time and memory grow with that sample, not with the corpus.

Progress goes to an optional callback (``on_progress``), never to a terminal: drawing is the
caller's business.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from minimind.data import format as fmt
from minimind.data.prepare.encode import BlockEncoder
from minimind.data.prepare.inputs import collect_inputs, describe_sources
from minimind.data.prepare.parse import TXT_RULE, invalid_input
from minimind.data.prepare.readers import open_reader
from minimind.data.prepare.select import Selection
from minimind.data.prepare.tokenizer_job import TrainJob, train_for_prepare
from minimind.data.prepare.write import DatasetWriter, clean_stale, install, temp_dir_for, write_meta
from minimind.errors import PrepareError
from minimind.files import absolute, refuse_replacing_cwd, writing

TOKENIZER_SAMPLE_BYTES = 64 << 20
DEFAULT_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class ProgressUpdate:
    """Where a prepare stands. ``done`` and ``total`` are bytes of input on disk (compressed bytes
    for .gz), so both phases share one measure; ``documents`` are the documents read so far."""

    phase: str  # "tokenizer" (training the tokenizer on the first part of the corpus) or "encode"
    done: int
    total: int
    documents: int = 0


ProgressCallback = Callable[[ProgressUpdate], None]


@dataclass
class PrepareResult:
    path: Path
    meta: dict[str, Any]
    reused: bool
    seconds: float
    tokenizer_seconds: float = 0.0
    workers: int = 1
    notes: list[str] = field(default_factory=list)


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


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


class _Reporter:
    """Sends ``ProgressUpdate``s to the callback, if there is one."""

    def __init__(self, on_progress: ProgressCallback | None):
        self.on_progress = on_progress

    def __call__(self, phase: str, done: int, total: int, documents: int) -> None:
        if self.on_progress is not None:
            # Blocks end past the tokenizer's byte budget: done never claims more than the total.
            self.on_progress(ProgressUpdate(phase, min(done, total), total, documents))


@dataclass
class _Job:
    """What the build steps share: the inputs and the options of one prepare."""

    files: list[Path]
    sources: list[dict[str, Any]]
    options: dict[str, Any]
    tokenizer: str | Path | None
    vocab_size: int
    text_key: str
    val_fraction: float
    strict: bool
    chunk_bytes: int
    workers: int
    total_bytes: int
    report: _Reporter
    dedup: str | None = None
    max_documents: int | None = None
    max_tokens: int | None = None


def _check_options(val_fraction: float, workers: int | None, text_key: str, dedup: str | None,
                   max_documents: int | None, max_tokens: int | None) -> None:
    if dedup not in (None, "exact"):
        raise PrepareError(f"dedup {dedup!r} is not known (use 'exact', or leave it off)")
    for name, value in (("max documents", max_documents), ("max tokens", max_tokens)):
        if value is not None and value < 1:
            raise PrepareError(f"{name} must be at least 1 (got {value})")
    if not 0 <= val_fraction < 1:
        raise PrepareError(f"val fraction {val_fraction} must be at least 0 and below 1")
    if workers is not None and workers < 1:
        raise PrepareError(f"workers must be at least 1 (got {workers})")
    if not text_key:
        raise PrepareError("text key must not be empty")


def _given_tokenizer_fingerprint(tokenizer: str | Path) -> str:
    """Fingerprint of a usable tokenizer directory; checked before any work starts."""
    from minimind.data.tokenizer import load_tokenizer, tokenizer_fingerprint
    from minimind.errors import TokenizerError

    try:
        load_tokenizer(tokenizer)
        return tokenizer_fingerprint(tokenizer)
    except TokenizerError as exc:
        raise PrepareError(str(exc)) from None


def _reusable(out_dir: Path, sources: list[dict], options: dict) -> dict | None:
    """The meta of ``out_dir`` when it is a readable dataset of the same inputs and options."""
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


def _existing_output(out_dir: Path, sources: list[dict], options: dict, force: bool) -> dict | None:
    """Refuse to overwrite what is not a dataset; the meta of a dataset that can be reused as is."""
    if not out_dir.exists():
        return None
    if not out_dir.is_dir() or (any(out_dir.iterdir()) and not fmt.is_dataset(out_dir)):
        raise PrepareError(f"{out_dir}: exists and is not a minimind dataset; choose another output "
                           f"directory or remove it")
    meta = None if force else _reusable(out_dir, sources, options)
    if meta is None and any(out_dir.iterdir()):
        refuse_replacing_cwd(out_dir)  # it is about to be replaced
    return meta


def _make_tokenizer(job: _Job, tok_dir: Path) -> tuple[dict[str, Any], float]:
    """Train the tokenizer into ``tok_dir`` (or copy the given one); its meta.json entry and seconds."""
    from minimind.data.tokenizer import copy_tokenizer

    if job.tokenizer is not None:
        copy_tokenizer(job.tokenizer, tok_dir)
        return {"source": str(job.tokenizer), "trained_on_chars": None, "seconds": 0.0}, 0.0
    t0 = time.perf_counter()
    limit = min(TOKENIZER_SAMPLE_BYTES, job.total_bytes)  # on disk: a .gz sample is larger
    job.report("tokenizer", 0, limit, 0)
    docs = [0]

    def on_progress(done: int, documents: int) -> None:
        docs[0] = documents
        job.report("tokenizer", done, limit, documents)

    chars = train_for_prepare(
        TrainJob(job.files, job.text_key, job.strict, limit, job.chunk_bytes, job.vocab_size, tok_dir,
                 job.max_documents), on_progress)
    job.report("tokenizer", limit, limit, docs[0])
    seconds = time.perf_counter() - t0
    return {"source": "trained", "trained_on_chars": chars, "seconds": round(seconds, 3)}, seconds


def _encode_corpus(job: _Job, out: DatasetWriter, tok, tok_dir: Path, dtype: np.dtype) -> tuple[Counter, Selection]:
    """Tokenize the inputs into ``out``, in order, until a limit is reached; the skipped lines by
    reason, and what dedup and the limits took out."""
    skipped: Counter = Counter()
    select = Selection(job.dedup == "exact", job.max_documents, job.max_tokens)
    done_before = 0  # bytes of the files already finished
    job.report("encode", 0, job.total_bytes, 0)
    # The worker pool lives exactly as long as this block: shut down when all is encoded, at a limit or on failure.
    with BlockEncoder(tok, str(tok_dir / "tokenizer.json"), dtype.name, job.text_key, job.strict,
                      job.workers, dedup=select.dedup) as encoder:
        for path in job.files:
            reader = open_reader(path, job.chunk_bytes, job.text_key)
            for block, position in encoder.encode_file(reader):
                if block.error:
                    raise invalid_input(reader.kind, path, block.error)
                skipped.update(block.skipped)
                out.add(select.admit(block))
                job.report("encode", done_before + position, job.total_bytes, out.n_docs)
                if select.limit_reached:
                    break
            if select.limit_reached:
                break
            done_before += path.stat().st_size
    job.report("encode", job.total_bytes, job.total_bytes, out.n_docs)
    return skipped, select


def _build(job: _Job, tmp: Path) -> tuple[dict[str, Any], float]:
    """Write the complete dataset into ``tmp``; its meta and the tokenizer's seconds."""
    from minimind.data.tokenizer import load_tokenizer, tokenizer_fingerprint

    tok_dir = tmp / fmt.TOKENIZER_DIR
    tok_info, tok_seconds = _make_tokenizer(job, tok_dir)
    tok = load_tokenizer(tok_dir)
    tok_fp = tokenizer_fingerprint(tok_dir)
    dtype = fmt.token_dtype(tok.vocab_size)

    out = DatasetWriter(tmp, job.val_fraction)
    skipped, select = _encode_corpus(job, out, tok, tok_dir, dtype)
    out.close()
    if out.n_docs == 0:
        detail = (", ".join(f"{n} {r}" for r, n in sorted(skipped.items())) if skipped
                  else "the input is empty")
        if select.limit_reached == "max_tokens":
            detail = f"the first document has more than max tokens {job.max_tokens} (bos and eos included)"
        raise PrepareError(f"{', '.join(map(str, job.files))}: no documents to train on ({detail})")
    meta = {
        "format_version": fmt.FORMAT_VERSION,
        "dtype": dtype.name,
        "vocab_size": tok.vocab_size,
        "bos_id": tok.bos_id,
        "eos_id": tok.eos_id,
        "pad_id": tok.pad_id,
        "tokenizer_fingerprint": tok_fp,
        "tokenizer": tok_info,
        "sources": job.sources,
        "documents": out.train.n_docs,
        "tokens": out.train.n_tokens,
        "val_documents": out.val.n_docs,
        "val_tokens": out.val.n_tokens,
        "skipped": dict(sorted(skipped.items())),
        **select.meta(),
        "text_key": job.text_key,
        "txt_documents": TXT_RULE,
        "options": job.options,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fingerprint": fmt.combine_fingerprint(out.digests(), tok_fp),
    }
    write_meta(tmp, meta)
    return meta, tok_seconds


def prepare_dataset(inputs: list[str | Path], out_dir: str | Path, *, tokenizer: str | Path | None = None,
                    vocab_size: int = 6400, text_key: str = "text", val_fraction: float = 0.005,
                    skip_invalid: bool = False, workers: int | None = None, force: bool = False,
                    on_progress: ProgressCallback | None = None, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                    source_names: list[str] | None = None, dedup: str | None = None,
                    max_documents: int | None = None, max_tokens: int | None = None) -> PrepareResult:
    """Validate and tokenize ``inputs`` into the dataset directory ``out_dir`` (see the module docstring).

    Reuses ``out_dir`` when it already holds the dataset of the same inputs (size + sha256) and
    options, unless ``force``. Raises ``PrepareError`` for bad input, leaving nothing behind.
    ``on_progress`` receives a ``ProgressUpdate`` as each block is done (in this thread).
    ``source_names`` replaces the recorded paths (the sample corpus is built in a temporary file).
    ``dedup="exact"`` drops repeated documents (see ``dedup``); ``max_documents`` and ``max_tokens``
    keep whole documents from the start of the corpus up to that many (see ``select``).
    """
    start = time.perf_counter()
    out_dir = absolute(out_dir)  # `-o .` has a name to put temporary siblings beside
    _check_options(val_fraction, workers, text_key, dedup, max_documents, max_tokens)
    files = collect_inputs(inputs)
    sources = describe_sources(files)
    if source_names is not None:
        for source, name in zip(sources, source_names, strict=True):
            source["path"] = name
    given_fp = _given_tokenizer_fingerprint(tokenizer) if tokenizer is not None else None
    options = {"tokenizer": given_fp or "trained", "vocab_size": None if given_fp else vocab_size,
               "text_key": text_key, "val_fraction": val_fraction, "skip_invalid": skip_invalid}
    # Only when set: a dataset prepared before these options existed is still reused.
    options.update({k: v for k, v in (("dedup", dedup), ("max_documents", max_documents),
                                      ("max_tokens", max_tokens)) if v is not None})

    notes = [f"removed leftovers of an interrupted prepare: {p}" for p in clean_stale(out_dir)]
    if (meta := _existing_output(out_dir, sources, options, force)) is not None:
        return PrepareResult(out_dir, meta, True, time.perf_counter() - start, notes=notes)

    total_bytes = sum(s["size"] for s in sources)
    # Spawning workers costs about a second; an input of one or two blocks is quicker in-process.
    n_workers = max(1, min(workers or default_workers(), -(-total_bytes // chunk_bytes)))
    job = _Job(files, sources, options, tokenizer, vocab_size, text_key, val_fraction, not skip_invalid,
               chunk_bytes, n_workers, total_bytes, _Reporter(on_progress), dedup, max_documents, max_tokens)
    with writing(out_dir):  # an unwritable output: one line naming it, before any work
        tmp = temp_dir_for(out_dir)
    try:
        with _SigtermAsInterrupt():
            meta, tok_seconds = _build(job, tmp)
            install(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PrepareResult(out_dir, meta, False, time.perf_counter() - start, tokenizer_seconds=tok_seconds,
                         workers=n_workers, notes=notes)
