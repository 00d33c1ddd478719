"""The event stream: the only contract between the trainer and anything that watches it.

``out/runs/<run>/events.jsonl`` holds one JSON object per line, appended and flushed per line
by rank 0 of the trainer. Every event has:

    v      schema version (int, currently 1)
    type   one of EVENT_TYPES
    time   unix time in seconds (float)

and the fields below (``?`` = may be null/absent). Numbers are plain JSON numbers, computed once
by the trainer so that readers do no arithmetic of their own.

run_started   run, profile, config (resolved, sections model/data/train/run), params_total,
              params_active, device, devices (list of names), dtype, world_size, total_steps,
              start_step, tokens_per_step, dataset (path, fingerprint, tokens, documents),
              lr_schedule (list of [step, lr] samples of the whole planned schedule), resumed_from?,
              pid
step          step, total_steps, epoch, loss, loss_ema, lr, grad_norm, tokens_seen,
              tokens_per_s, step_time_s, elapsed_s, eta_s?, mfu?,
              memory: {"cpu_rss_mib": float} or {"gpu": [{"device", "allocated_mib",
                       "reserved_mib", "peak_mib", "total_mib"?}], "cpu_rss_mib"?},
              moe?: {"aux_loss", "load": [[fraction per expert] per layer], "imbalance"}
eval          step, val_loss, perplexity, seconds
checkpoint    step, path, seconds, reason ("interval" | "final" | "signal" | "request")
warning       message, step?
paused        step
resumed       step
run_finished  step, tokens_seen, elapsed_s, final_loss?, val_loss?, weights_path?
run_failed    error, traceback (tail, str), exit_code, step?

This module is stdlib only: the dashboard imports it without torch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

SCHEMA_VERSION = 1
EVENTS_FILE = "events.jsonl"

# Required fields per type (beyond v/type/time). Optional fields are documented above.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    "run_started": ("run", "config", "params_total", "params_active", "device", "dtype", "world_size",
                    "total_steps", "start_step", "lr_schedule"),
    "step": ("step", "total_steps", "epoch", "loss", "loss_ema", "lr", "grad_norm", "tokens_seen",
             "tokens_per_s", "step_time_s", "elapsed_s", "eta_s", "mfu", "memory"),
    "eval": ("step", "val_loss", "perplexity"),
    "checkpoint": ("step", "path", "seconds", "reason"),
    "warning": ("message",),
    "paused": ("step",),
    "resumed": ("step",),
    "run_finished": ("step", "tokens_seen", "elapsed_s"),
    "run_failed": ("error", "traceback", "exit_code"),
}
EVENT_TYPES = tuple(EVENT_FIELDS)


class EventError(ValueError):
    pass


def make_event(type_: str, **fields: Any) -> dict[str, Any]:
    event = {"v": SCHEMA_VERSION, "type": type_, "time": time.time(), **fields}
    validate_event(event)
    return event


def validate_event(event: Any) -> None:
    """Raise EventError if ``event`` does not follow the schema above."""
    if not isinstance(event, dict):
        raise EventError(f"event is not an object: {event!r}")
    for key in ("v", "type", "time"):
        if key not in event:
            raise EventError(f"event lacks {key!r}: {event!r}")
    if event["type"] not in EVENT_FIELDS:
        raise EventError(f"unknown event type {event['type']!r}")
    missing = [k for k in EVENT_FIELDS[event["type"]] if k not in event]
    if missing:
        raise EventError(f"{event['type']} event lacks {', '.join(missing)}")
    if event["type"] == "step":
        memory = event["memory"]
        if not isinstance(memory, dict) or not ("cpu_rss_mib" in memory or "gpu" in memory):
            raise EventError(f"step event memory must hold cpu_rss_mib or gpu: {memory!r}")
        moe = event.get("moe")
        if moe is not None and not all(k in moe for k in ("aux_loss", "load", "imbalance")):
            raise EventError(f"step event moe must hold aux_loss, load and imbalance: {moe!r}")


class EventWriter:
    """Appends events to ``events.jsonl``, one line each, flushed so a reader sees it at once."""

    def __init__(self, run_dir: str | os.PathLike, *, fsync: bool = False):
        self.path = Path(run_dir) / EVENTS_FILE
        self._file: TextIO = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._fsync = fsync

    def emit(self, type_: str, **fields: Any) -> dict[str, Any]:
        event = make_event(type_, **fields)
        self._file.write(json.dumps(event, separators=(",", ":"), allow_nan=False, default=_json_default) + "\n")
        self._file.flush()
        if self._fsync or type_ in ("checkpoint", "run_finished", "run_failed"):
            os.fsync(self._file.fileno())
        return event

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy / torch scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def sanitize(value: Any) -> Any:
    """Replace NaN/inf by None (JSON has no NaN) in nested dicts/lists of numbers."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v) for v in value]
    return value


def read_events(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All complete events of a file (a trailing half-written line is ignored)."""
    return list(EventTail(path).read_new())


class EventTail:
    """Incremental reader for a growing events file: ``read_new()`` returns events appended since
    the last call. A line without its newline yet is held back until it is complete."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._offset = 0
        self._partial = b""

    def read_new(self) -> Iterator[dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return iter(())
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        events = []
        for line in lines:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a corrupt line (e.g. a crash mid-write) is skipped, never fatal
            if isinstance(event, dict) and "type" in event:
                events.append(event)
        return iter(events)
