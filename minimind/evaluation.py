"""Scoring any MiniMind weights on text: mean loss (nats/token), perplexity and bits per byte.

What is scored (``load_eval_text``):

* a prepared dataset's split (``val`` by default): its token stream, as the trainer reads it; the
  bytes come from decoding each document with the dataset's tokenizer;
* a raw ``.jsonl``/``.jsonl.gz``/``.txt`` file, read with ``prepare``'s rules (one document per
  line / paragraph) and tokenized with the checkpoint's tokenizer, each document as bos + text + eos.

Three modes:

* ``val`` (the default for a run's weights on their own dataset): the run's validation set, built
  and scored exactly as the trainer does (``validation_set_result``): its first
  ``train.eval_samples`` samples, with the run's window, packing, doc_mask and precision. The
  result is the run's ``val_loss`` of these weights.
* ``packed``: every window of the text: the token stream cut into non-overlapping windows of
  ``seq_len + 1`` tokens (input = window[:-1], target = window[1:]), plus the shorter tail, plain
  causal attention, in fp32 on a CPU. Any text, any window length; the whole split, not a sample.
* ``document``: one document per row, the way MiniMind trains; a document longer than one window
  continues in the next row (rows overlap by one token), so every token after bos is scored once.

Every mode scores with the trainer's own function (``minimind.scoring``): a mean over tokens.

Bits per byte = loss (nats/token) x tokens / UTF-8 bytes / ln 2, where tokens counts the tokens a
model predicts for the text (each document's text tokens and eos): models with different
tokenizers compare on it. In ``document`` mode every such token is scored, so it is the exact sum
of the losses over the bytes; in ``packed`` mode the first token of each window goes unscored and
the mean stands in for it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minimind.config import ConfigError
from minimind.data.dataset import Batch
from minimind.errors import EvalError, MinimindError
from minimind.scoring import score_batches

MODES = ("packed", "document")
VAL_MODE = "val"  # a run's own validation set (``validation_set_result``)
ProgressFn = Callable[[int, int], None]  # (tokens scored so far, tokens to score)


@dataclass
class EvalText:
    """Documents to score: token ids (bos + text + eos each) and what is known of the text."""

    docs: list[np.ndarray]
    bytes: int | None  # UTF-8 bytes of the documents' text; None when no tokenizer can decode them
    source: str  # "dataset" | "file"
    path: str
    split: str | None = None
    tokenizer: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def predicted_tokens(self) -> int:
        """Tokens a model predicts for the text: every token after each document's bos."""
        return int(sum(len(d) - 1 for d in self.docs))

    @property
    def stream(self) -> np.ndarray:
        return np.concatenate(self.docs) if self.docs else np.zeros(0, dtype=np.int64)


@dataclass
class EvalResult:
    loss: float  # mean cross-entropy, nats per scored token
    perplexity: float
    bits_per_byte: float | None
    mode: str
    seq_len: int
    scored_tokens: int
    rows: int
    documents: int
    bytes: int | None
    seconds: float
    source: str
    data: str
    split: str | None
    tokenizer: str | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------- rows

def packed_rows(stream: np.ndarray, seq_len: int) -> list[np.ndarray]:
    """The trainer's packed windows of ``seq_len + 1`` tokens, plus the shorter tail (>= 2 tokens)."""
    window = seq_len + 1
    rows = [stream[i:i + window] for i in range(0, len(stream) - 1, window)]
    return [r for r in rows if len(r) >= 2]


def document_rows(docs: list[np.ndarray], seq_len: int) -> list[np.ndarray]:
    """One document per row; a longer one goes on in the next row from its last target, so every
    token after the document's first is a target exactly once."""
    rows = []
    for doc in docs:
        for start in range(0, max(len(doc) - 1, 1), seq_len):
            row = doc[start:start + seq_len + 1]
            if len(row) >= 2:
                rows.append(row)
    return rows


def make_rows(text: EvalText, mode: str, seq_len: int) -> list[np.ndarray]:
    if mode == "packed":
        return packed_rows(text.stream, seq_len)
    if mode == "document":
        return document_rows(text.docs, seq_len)
    raise ConfigError(f"unknown eval mode {mode!r}", f"use one of: {', '.join(MODES)}")


# ------------------------------------------------------------------------------------- scoring

def row_batches(rows: list[np.ndarray], batch_size: int, pad_id: int = 0) -> list[Batch]:
    """Rows of different lengths as batches, longest first, each padded to its longest row
    (padding targets are masked)."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    batches = []
    for b in range(0, len(order), batch_size):
        batch = [rows[i] for i in order[b:b + batch_size]]
        width = len(batch[0])
        ids = np.full((len(batch), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width - 1), dtype=np.float32)
        for r, row in enumerate(batch):
            ids[r, :len(row)] = row
            mask[r, :len(row) - 1] = 1.0
        batches.append(Batch(ids[:, :-1].copy(), ids[:, 1:].copy(), mask))
    return batches


def score_rows(model: torch.nn.Module, rows: list[np.ndarray], *, batch_size: int = 8,
               device: torch.device | str = "cpu", autocast_dtype: torch.dtype | None = None,
               pad_id: int = 0, progress: ProgressFn | None = None) -> tuple[float, int]:
    """(sum of the cross-entropy in nats, number of scored targets) over ``rows``, by the trainer's
    own scoring function (``minimind.scoring``)."""
    return score(model, row_batches(rows, batch_size, pad_id), sum(len(r) - 1 for r in rows),
                 device=device, autocast_dtype=autocast_dtype, progress=progress)


def score(model: torch.nn.Module, batches: Iterable[Batch], total: int, *, device: torch.device | str = "cpu",
          autocast_dtype: torch.dtype | None = None, progress: ProgressFn | None = None) -> tuple[float, int]:
    done = [0]

    def advance(targets: int) -> None:
        done[0] += targets
        if progress is not None:
            progress(done[0], total)

    nats, scored = score_batches(model, batches, torch.device(device), autocast_dtype, advance).tolist()
    return nats, int(scored)


def summarize(nats: float, scored: int, text: EvalText, mode: str, seq_len: int, rows: int,
              seconds: float) -> EvalResult:
    if scored == 0:
        raise EvalError(f"{text.path}: nothing to score (no document has a token after its bos)")
    loss = nats / scored
    bpb = None
    if text.bytes:
        bpb = loss * text.predicted_tokens / text.bytes / math.log(2)
    return EvalResult(loss=loss, perplexity=math.exp(min(loss, 700.0)), bits_per_byte=bpb, mode=mode,
                      seq_len=seq_len, scored_tokens=scored, rows=rows, documents=len(text.docs),
                      bytes=text.bytes, seconds=seconds, source=text.source, data=text.path, split=text.split,
                      tokenizer=text.tokenizer, notes=list(text.notes))


def evaluate_model(model: torch.nn.Module, text: EvalText, *, mode: str = "packed", seq_len: int = 512,
                   batch_size: int = 8, device: torch.device | str = "cpu",
                   autocast_dtype: torch.dtype | None = None, pad_id: int = 0,
                   progress: ProgressFn | None = None) -> EvalResult:
    """Score ``text`` with a model in one mode (the benchmarks call this with a model in memory)."""
    t0 = time.perf_counter()
    max_pos = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if max_pos is not None and seq_len > max_pos:
        raise ConfigError(f"--seq-len {seq_len} is longer than the model's max_position_embeddings {max_pos}",
                          f"use --seq-len {max_pos} or less")
    if seq_len < 1:
        raise ConfigError(f"--seq-len must be at least 1, got {seq_len}")
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab is not None and text.docs:
        top = max(int(d.max()) for d in text.docs if len(d))
        if top >= vocab:
            raise EvalError(f"{text.path}: token id {top} is outside the model's vocabulary ({vocab} tokens)",
                            "the text was tokenized with a different tokenizer than the model's")
    rows = make_rows(text, mode, seq_len)
    nats, scored = score_rows(model, rows, batch_size=batch_size, device=device, autocast_dtype=autocast_dtype,
                              pad_id=pad_id, progress=progress)
    return summarize(nats, scored, text, mode, seq_len, len(rows), time.perf_counter() - t0)


# --------------------------------------------------------------------------------- the text

def dataset_text(path: Path, split: str = "val", max_docs: int | None = None) -> EvalText:
    """The documents of a prepared dataset's split; their bytes from the dataset's tokenizer."""
    from minimind.data import format as fmt

    if split not in ("train", "val"):
        raise ConfigError(f"unknown split {split!r}", "use train or val")
    meta = fmt.read_meta(path)
    data = fmt.open_split(path, split)
    if data.n_docs == 0:
        raise EvalError(f"{path}: the {split} split holds no documents",
                        "use --split train, or score a .jsonl/.txt file with --data FILE")
    n = data.n_docs if max_docs is None else min(max_docs, data.n_docs)
    docs = [np.asarray(data.doc(i), dtype=np.int64) for i in range(n)]
    tok_dir = path / fmt.TOKENIZER_DIR
    n_bytes, notes, tok_name = None, [], None
    if (tok_dir / "tokenizer.json").is_file():
        from minimind.data.tokenizer import load_tokenizer

        tok = load_tokenizer(tok_dir)
        tok_name = str(tok_dir)
        bos, eos = int(meta.get("bos_id", tok.bos_id)), int(meta.get("eos_id", tok.eos_id))
        bodies = [d[1 if len(d) and d[0] == bos else 0:len(d) - 1 if len(d) and d[-1] == eos else len(d)].tolist()
                  for d in docs]
        texts = tok.tokenizer.decode_batch(bodies, skip_special_tokens=False)
        n_bytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
    else:
        notes.append("the dataset has no tokenizer/ directory: bits per byte unknown")
    return EvalText(docs=docs, bytes=n_bytes, source="dataset", path=str(path), split=split, tokenizer=tok_name,
                    notes=notes)


def file_text(path: Path, tokenizer_dir: Path, text_key: str = "text", max_docs: int | None = None) -> EvalText:
    """A .jsonl/.jsonl.gz/.txt file, read with prepare's rules and tokenized with ``tokenizer_dir``."""
    from minimind.data.prepare.inputs import kind
    from minimind.data.prepare.readers import leading_texts
    from minimind.data.tokenizer import load_tokenizer
    from minimind.errors import PrepareError

    if not path.is_file():
        raise EvalError(f"{path}: no such file or dataset directory")
    if kind(path) is None:
        raise PrepareError(f"{path}: unsupported file type (expected a dataset directory, .jsonl, .jsonl.gz "
                           f"or .txt)")
    tok = load_tokenizer(tokenizer_dir)
    texts: list[str] = []
    for t in leading_texts([path], text_key, True, 1 << 62, 1 << 20, lambda _n: None):
        texts.append(t)
        if max_docs is not None and len(texts) >= max_docs:
            break
    if not texts:
        raise EvalError(f"{path}: no documents in this file")
    ids = tok.encode_many(texts)
    docs = [np.asarray([tok.bos_id, *d, tok.eos_id], dtype=np.int64) for d in ids]
    n_bytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
    return EvalText(docs=docs, bytes=n_bytes, source="file", path=str(path), tokenizer=str(tokenizer_dir))


# ------------------------------------------------------------------------------ any weights

def _readable_config(path: str | Path):
    """The resolved config in the file ``path`` (a run's ``config.yaml``), or None when it is
    missing or cannot be read: what the weights' run recorded helps, but is never required."""
    from minimind.config import load_config

    if not Path(path).is_file():
        return None
    try:
        return load_config(Path(path))
    except MinimindError:
        return None


def run_config(loaded):
    """The resolved config of the run the weights come from (its ``config.yaml``), or None."""
    src = loaded.config_source
    return _readable_config(src) if src and src.endswith((".yaml", ".yml")) else None


def default_seq_len(loaded) -> tuple[int, str | None]:
    """The window the weights were trained with, and a note on where it was read when that is not
    their own run directory: their run's ``data.max_seq_len`` (a run or checkpoint, or the run a
    .pth's sidecar names), else 512 capped at the model's context."""
    from minimind.checkpoint import weights_run
    from minimind.run_dir import CONFIG_FILE

    cfg = run_config(loaded)
    if cfg is not None:
        return int(cfg.data.max_seq_len), None
    run = weights_run(loaded.weights_file) if loaded.source_kind == "pth" else None
    cfg = _readable_config(Path(run) / CONFIG_FILE) if run is not None else None
    if cfg is not None:
        n = int(cfg.data.max_seq_len)
        return n, f"window {n} tokens: data.max_seq_len of {run}, the run its sidecar names"
    n = min(512, loaded.config.max_position_embeddings)
    return n, f"window {n} tokens: the run of these weights is not recorded or not found (--seq-len sets another)"


def default_data(loaded) -> Path | None:
    """The dataset recorded with the weights' run, else ``data/`` beside a .pth (``out/data``)."""
    from minimind.data.format import is_dataset

    return next((c for c in loaded.data_candidates() if is_dataset(c)), None)


def trained_tokenizer(loaded) -> Path | None:
    """The tokenizer the weights were trained with, where it is recorded (their run's dataset, the
    weights' sidecar, an HF directory); None for a bare .pth with nothing beside it."""
    from minimind.weights import find_tokenizer

    if loaded.source_kind == "pth" and loaded.tokenizer_hint is None:
        return None
    return find_tokenizer(loaded)


def check_tokenizer(loaded, used: Path, what: str, force: bool, notes: list[str]) -> None:
    """Text tokenized with another tokenizer than the weights' gives a meaningless loss, even with
    the same vocabulary size: an error, or with ``force`` a note on the result."""
    trained = trained_tokenizer(loaded)
    if trained is None or _same_tokenizer(trained, used):
        return
    message = (f"{what} ({used}) is not the tokenizer these weights were trained with ({trained}): "
               f"the same ids mean other text, so the loss would not mean anything")
    if not force:
        raise EvalError(message, f"score text tokenized with {trained}, or pass --force to score anyway")
    notes.append(message + " (--force)")


def load_eval_text(loaded, data: str | Path | None, *, split: str = "val", tokenizer: str | Path | None = None,
                   text_key: str = "text", max_docs: int | None = None, force: bool = False) -> EvalText:
    """The text to score for loaded weights: ``data`` (a dataset directory or a raw file), or the
    dataset their run trained on. Text tokenized with another tokenizer than the weights' is refused
    unless ``force`` (``check_tokenizer``)."""
    from minimind.data.format import is_dataset
    from minimind.weights import find_tokenizer

    if data is None:
        found = default_data(loaded)
        if found is None:
            raise EvalError(f"{loaded.path}: no dataset recorded with these weights",
                            "pass --data DATASET_DIR or --data FILE.jsonl")
        data = found
    data = Path(data)
    if data.is_dir():
        if not is_dataset(data):
            raise EvalError(f"{data}: not a prepared dataset (no meta.json)",
                            "prepare it with `minimind prepare`, or pass a .jsonl/.txt file")
        text = dataset_text(data, split, max_docs)
        if text.tokenizer is not None:
            check_tokenizer(loaded, Path(text.tokenizer), f"the dataset {data} was tokenized with", force,
                            text.notes)
        return text
    tok_dir = find_tokenizer(loaded, tokenizer)
    if tok_dir is None:
        raise EvalError(f"{loaded.path}: no tokenizer found to tokenize {data}",
                        "pass --tokenizer DIR (a tokenizer directory, e.g. out/data/tokenizer)")
    notes: list[str] = []
    if tokenizer is not None:
        check_tokenizer(loaded, tok_dir, "--tokenizer", force, notes)
    text = file_text(data, tok_dir, text_key, max_docs)
    text.notes.extend(notes)
    return text


def _same_tokenizer(a: Path, b: Path) -> bool:
    from minimind.files import sha256_file

    fa, fb = a / "tokenizer.json", b / "tokenizer.json"
    return not (fa.is_file() and fb.is_file()) or sha256_file(fa) == sha256_file(fb)


def pick_eval_device(requested: str = "auto") -> tuple[torch.device, torch.dtype | None]:
    """(device, autocast dtype): bf16 autocast on a CUDA device with bf16, float32 elsewhere."""
    from minimind.training.build import pick_device

    device = pick_device(requested)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return device, torch.bfloat16
    return device, None


def validation_set_result(model: torch.nn.Module, cfg, text: EvalText, *, batch_size: int, device: torch.device,
                          autocast_dtype: torch.dtype | None, progress: ProgressFn | None = None) -> EvalResult:
    """Mode ``val``: the run's own validation set, built and scored exactly as the trainer does
    (``train.eval_samples`` samples of the split, with the run's window, packing and doc_mask, by
    ``minimind.scoring``): the run's ``val_loss`` of these weights."""
    from minimind.data.dataset import PretrainDataset, validation_batches

    t0 = time.perf_counter()
    d = cfg.data
    dataset = PretrainDataset(text.path, d.max_seq_len, d.packing, text.split or "val", d.doc_mask)
    batches = list(validation_batches(dataset, cfg.train.eval_samples, batch_size))
    nats, scored = score(model, batches, sum(b.trained_tokens for b in batches), device=device,
                         autocast_dtype=autocast_dtype, progress=progress)
    rows = sum(len(b.input_ids) for b in batches)
    text.notes.append(f"the run's validation set: the first {rows} {'windows' if d.packing else 'documents'} of "
                      f"the split (train.eval_samples), {d.max_seq_len}-token rows"
                      + (", doc_mask" if dataset.doc_mask else "") + ", as its val_loss")
    return summarize(nats, scored, text, VAL_MODE, d.max_seq_len, rows, time.perf_counter() - t0)


def evaluate_weights(path: str | Path, data: str | Path | None = None, *, modes: tuple[str, ...] | None = None,
                     split: str = "val", seq_len: int | None = None, batch_size: int = 8, device: str = "auto",
                     tokenizer: str | Path | None = None, text_key: str = "text", max_docs: int | None = None,
                     head_dim: int | None = None, force: bool = False,
                     progress: Callable[[str], ProgressFn | None] | None = None) -> list[EvalResult]:
    """Score any weights ``inspect`` reads, once per mode. ``progress(mode)`` may return a callback
    for that mode's progress. Without ``modes``: ``val`` (the run's validation set, in the run's
    precision: its ``val_loss``) for weights of a run scored on their own dataset's validation split,
    else ``packed``."""
    from minimind.weights import build_model, load_weights

    loaded = load_weights(path, head_dim=head_dim)
    cfg = run_config(loaded)
    own_val = data is None and split == "val" and max_docs is None and cfg is not None
    modes = modes or ((VAL_MODE,) if own_val else ("packed",))
    if VAL_MODE in modes and not own_val:
        raise ConfigError("--mode val scores a run's own validation set: it needs the weights of a run (a run or "
                          "checkpoint directory), no --data, --split val and no --max-docs",
                          "use --mode packed or document for other text")
    if VAL_MODE in modes and seq_len is not None and seq_len != cfg.data.max_seq_len:
        raise ConfigError(f"--seq-len {seq_len}: the run's validation set has {cfg.data.max_seq_len}-token rows",
                          "drop --seq-len, or use --mode packed for other windows")
    text = load_eval_text(loaded, data, split=split, tokenizer=tokenizer, text_key=text_key, max_docs=max_docs,
                          force=force)
    text.notes[:0] = loaded.notes
    if seq_len is None:
        seq_len, where = default_seq_len(loaded)
        if where is not None:
            text.notes.append(where)
    dev, amp = pick_eval_device(device)
    model = build_model(loaded).to(dev)
    results = []
    for mode in modes:
        report = progress(mode) if progress else None
        if mode == VAL_MODE:
            run_amp = run_precision(loaded, amp)
            results.append(validation_set_result(model, cfg, text, batch_size=batch_size, device=dev,
                                                 autocast_dtype=run_amp, progress=report))
        else:
            results.append(evaluate_model(model, text, mode=mode, seq_len=seq_len, batch_size=batch_size,
                                          device=dev, autocast_dtype=amp, progress=report))
    return results


def run_precision(loaded, default: torch.dtype | None) -> torch.dtype | None:
    """The autocast dtype the run validated in (its checkpoint's ``dtype``), so ``val`` mode gives
    the run's own number; ``default`` when it is not recorded."""
    from minimind.training.build import DTYPES

    recorded = (loaded.training or {}).get("dtype")
    if recorded not in DTYPES:
        return default
    return None if recorded == "fp32" else DTYPES[recorded]
