"""The event stream: the only contract between the trainer and anything that watches it.

``out/runs/<run>/events.jsonl`` holds one JSON object per line, appended and flushed per line
by rank 0 of the trainer. Every event has:

    v      schema version (int, currently 2; readers also accept 1, see below)
    type   one of EVENT_TYPES
    time   unix time in seconds (float)

and the fields below (``?`` = may be null/absent). Numbers are plain JSON numbers, computed once
by the trainer so that readers do no arithmetic of their own.

run_started   run, profile, config (resolved, sections model/data/train/run), params_total,
              params_active, device, devices (list of names), dtype, world_size, total_steps,
              start_step, tokens_per_step, dataset (path, fingerprint, tokens, documents),
              lr_schedule (list of [step, lr] samples of the whole planned schedule),
              schedule_changed_at? (the step of the last re-plan on a length change), resumed_from?,
              pid, batch_size?, accumulation_steps? (the split the run starts with),
              batch_size_auto? ({"chosen", "accumulation_steps", "global_batch",
              "requested_global_batch", "note"}: what batch_size auto chose),
              memory_estimate? ({"batch_size", "params_mib", "grads_mib", "optimizer_mib",
              "activations_mib", "runtime_mib", "total_mib", "available_mib", "device_total_mib",
              "safety_margin"}), optimizer? ("adamw" | "muon")
              seq_len_schedule? ([[first step, seq_len], ...]: a sequence-length curriculum's phases;
                                 a phase starts after "first step" optimizer steps; null = none)
              peak_flops?, peak_flops_source? (MFU denominator of one device, FLOP/s, and where it
              came from: "table: NVIDIA H200 bf16" or "measured matmul: ...")
step          step, total_steps, epoch, loss, loss_ema, lr, grad_norm, tokens_seen,
              tokens_per_s, step_time_s, elapsed_s, eta_s?, mfu?,
              memory: {"cpu_rss_mib": float} or {"gpu": [{"device", "allocated_mib",
                       "reserved_mib", "peak_mib", "total_mib"?}], "cpu_rss_mib"?}
                      plus "total_mib"? (the device's memory, RAM on a CPU) and "safety_margin"?
                      (the fraction a run keeps free),
              batch_size?, accumulation_steps? (the current split; changes after an OOM retry),
              moe?: {"aux_loss", "load": [[fraction per expert] per layer], "imbalance",
                     "router_bias"?: [[bias per expert] per layer] (router_balance bias/both)}
              seq_len? (the window length this step trained on; data.max_seq_len without a curriculum)
eval          step, val_loss, perplexity, seconds
checkpoint    step, path, seconds, reason ("interval" | "final" | "signal" | "request")
sample        step, prompt, text, seconds, new_tokens?, stopped? ("eos" | "max_new_tokens" | "time" |
              "context"): one greedy continuation of one prompt, at every eval and on the control
              command "sample"; text is the continuation only
heartbeat     step (the last completed step), total_steps, elapsed_s: between step events, at most
              every ~2 s, so watchers can tick (no numbers that need a device sync)
info          message, step?        (a note worth showing, e.g. "initialised weights from X")
warning       message, step?        (something the user should look at; training goes on)
              kind? "oom_retry": out of memory, the same step retried with a smaller micro-batch;
                    then also batch_size, accumulation_steps (the new split), peak_mib, total_mib
paused        step
resumed       step
run_finished  step, tokens_seen, elapsed_s, final_loss?, val_loss?, weights_path? (the file with
              this run's weights), run_weights_path? (the run's own copy, RUN/pretrain_*.pth),
              shared_weights_path?, shared_weights_run? (OUT/pretrain_*.pth and the run it now
              comes from: null when it holds weights from outside any run)
run_stopped   step, reason ("request" | "signal"), checkpoint (path of the checkpoint it saved)
run_failed    error, traceback (tail, str), exit_code, step?, recorded_by? ("cli": the trainer was
              killed or exited without a word, and the ``pretrain``/``resume`` that started it
              recorded what it saw, e.g. exit code 137 for SIGKILL)

Every process that trains ends its stream with exactly one of run_finished, run_stopped or
run_failed (unless it is killed). ``run_outcome`` turns a stream into the status and exit code
that every command reports, so ``pretrain``, ``resume`` and ``watch`` agree.

Version 1 (before run_stopped and info existed) marked a clean stop as a ``checkpoint`` with
reason request/signal followed by a ``warning`` at the same step; ``run_outcome`` still reads that.

In code this table is one frozen dataclass per type (``RunStarted``, ``Step``, ... below):
``EVENT_FIELDS`` is read from them, a test checks them against the README's events table, and
readers take ``parse_event(raw)`` (either version) and use fields.

This module is stdlib only: the dashboard imports it without torch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TextIO

from minimind.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from minimind.run_dir import EVENTS_FILE

SCHEMA_VERSION = 2


class EventError(ValueError):
    pass


# ---------------------------------------------------------------------------- typed events
# One frozen dataclass per event type (toolong's small typed messages): a field without a default
# is required (``EVENT_FIELDS`` is read from these), one with a default may be null or absent.
# ``parse_event`` builds them from a raw dict of either schema version; unknown fields are ignored
# (``raw`` keeps the dict as read). Nested objects (memory, moe, ...) get small dataclasses too.


def _nested(cls: type) -> dict[str, Any]:
    """Field metadata: parse a nested object into ``cls`` (an empty or missing one is None)."""
    return {"parse": lambda value: _from_dict(cls, value) if isinstance(value, dict) and value else None}


def _nested_list(cls: type) -> dict[str, Any]:
    return {"parse": lambda value: [_from_dict(cls, v) if isinstance(v, dict) else v for v in value]
            if isinstance(value, list) else []}


def _from_dict(cls: type, data: dict[str, Any], missing: Iterable[str] = ()) -> Any:
    """``cls`` from ``data``: absent fields take their defaults (None; ``missing``: required ones
    that are absent, None too), unknown ones are dropped."""
    kwargs: dict[str, Any] = dict.fromkeys(missing)
    for f in fields(cls):
        if f.name == "raw":
            kwargs["raw"] = data
        elif f.name in data:
            parse = f.metadata.get("parse")
            kwargs[f.name] = parse(data[f.name]) if parse is not None else data[f.name]
    return cls(**kwargs)


@dataclass(frozen=True)
class GpuMemory:
    device: Any = None
    allocated_mib: float | None = None
    reserved_mib: float | None = None
    peak_mib: float | None = None
    total_mib: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as read


@dataclass(frozen=True)
class Memory:
    """A step's memory: the process RSS (CPU), or per-GPU figures, and the device's total."""

    cpu_rss_mib: float | None = None
    gpu: list[GpuMemory] = field(default_factory=list, metadata=_nested_list(GpuMemory))
    total_mib: float | None = None
    safety_margin: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as read


@dataclass(frozen=True)
class MoeStats:
    aux_loss: float | None = None
    load: list[list[float]] = field(default_factory=list)  # fraction per expert, per layer
    imbalance: float | None = None
    router_bias: list[list[float]] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as read


@dataclass(frozen=True)
class Dataset:
    path: str | None = None
    fingerprint: str | None = None
    tokens: int | None = None
    documents: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as read


@dataclass(frozen=True)
class BatchSizeAuto:
    chosen: int | None = None
    accumulation_steps: int | None = None
    global_batch: int | None = None
    requested_global_batch: int | None = None
    note: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as read


@dataclass(frozen=True)
class MemoryEstimate:
    batch_size: int | None = None
    params_mib: float | None = None
    grads_mib: float | None = None
    optimizer_mib: float | None = None
    activations_mib: float | None = None
    runtime_mib: float | None = None
    total_mib: float | None = None
    available_mib: float | None = None
    device_total_mib: float | None = None
    safety_margin: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # as read


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event has: the schema version (1 when absent), its type, its unix time."""

    TYPE: ClassVar[str] = ""
    v: int = 1
    time: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def type(self) -> str:
        return self.TYPE or str(self.raw.get("type"))  # a type this version does not know: as read


@dataclass(frozen=True, kw_only=True)
class RunStarted(Event):
    TYPE: ClassVar[str] = "run_started"
    run: str
    config: dict[str, Any] | None
    params_total: int | None
    params_active: int | None
    device: str | None
    dtype: str | None
    world_size: int | None
    total_steps: int | None
    start_step: int | None
    lr_schedule: list[list[float]] | None
    profile: str | None = None
    devices: list[str] | None = None
    tokens_per_step: int | None = None
    dataset: Dataset | None = field(default=None, metadata=_nested(Dataset))
    schedule_changed_at: int | None = None
    resumed_from: Any = None  # a checkpoint path, or {"path", "step"}
    pid: int | None = None
    batch_size: int | None = None
    accumulation_steps: int | None = None
    batch_size_auto: BatchSizeAuto | None = field(default=None, metadata=_nested(BatchSizeAuto))
    memory_estimate: MemoryEstimate | None = field(default=None, metadata=_nested(MemoryEstimate))
    optimizer: str | None = None
    seq_len_schedule: list[list[int]] | None = None
    peak_flops: float | None = None
    peak_flops_source: str | None = None


@dataclass(frozen=True, kw_only=True)
class Step(Event):
    TYPE: ClassVar[str] = "step"
    step: int
    total_steps: int | None
    epoch: int | None
    loss: float | None
    loss_ema: float | None
    lr: float | None
    grad_norm: float | None
    tokens_seen: int | None
    tokens_per_s: float | None
    step_time_s: float | None
    elapsed_s: float | None
    eta_s: float | None
    mfu: float | None
    memory: Memory | None = field(metadata=_nested(Memory))
    batch_size: int | None = None
    accumulation_steps: int | None = None
    moe: MoeStats | None = field(default=None, metadata=_nested(MoeStats))
    seq_len: int | None = None


@dataclass(frozen=True, kw_only=True)
class Eval(Event):
    TYPE: ClassVar[str] = "eval"
    step: int
    val_loss: float | None
    perplexity: float | None
    seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class Checkpoint(Event):
    TYPE: ClassVar[str] = "checkpoint"
    step: int
    path: str
    seconds: float | None
    reason: str  # interval | final | signal | request


@dataclass(frozen=True, kw_only=True)
class Sample(Event):
    TYPE: ClassVar[str] = "sample"
    step: int
    prompt: str
    text: str
    seconds: float | None
    new_tokens: int | None = None
    stopped: str | None = None  # eos | max_new_tokens | time | context


@dataclass(frozen=True, kw_only=True)
class Heartbeat(Event):
    TYPE: ClassVar[str] = "heartbeat"
    step: int
    total_steps: int | None
    elapsed_s: float | None


@dataclass(frozen=True, kw_only=True)
class Info(Event):
    TYPE: ClassVar[str] = "info"
    message: str
    step: int | None = None


@dataclass(frozen=True, kw_only=True)
class WarningEvent(Event):
    TYPE: ClassVar[str] = "warning"
    message: str
    step: int | None = None
    kind: str | None = None  # "oom_retry": then the new split and the memory figures below
    batch_size: int | None = None
    accumulation_steps: int | None = None
    peak_mib: float | None = None
    total_mib: float | None = None


@dataclass(frozen=True, kw_only=True)
class Paused(Event):
    TYPE: ClassVar[str] = "paused"
    step: int


@dataclass(frozen=True, kw_only=True)
class Resumed(Event):
    TYPE: ClassVar[str] = "resumed"
    step: int


@dataclass(frozen=True, kw_only=True)
class RunFinished(Event):
    TYPE: ClassVar[str] = "run_finished"
    step: int
    tokens_seen: int | None
    elapsed_s: float | None
    final_loss: float | None = None
    val_loss: float | None = None
    weights_path: str | None = None
    run_weights_path: str | None = None
    shared_weights_path: str | None = None
    shared_weights_run: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunStopped(Event):
    TYPE: ClassVar[str] = "run_stopped"
    step: int
    reason: str  # request | signal
    checkpoint: str | None


@dataclass(frozen=True, kw_only=True)
class RunFailed(Event):
    TYPE: ClassVar[str] = "run_failed"
    error: str
    traceback: str
    exit_code: int | None
    step: int | None = None
    recorded_by: str | None = None  # "cli": the pretrain/resume that saw the trainer die


EVENT_CLASSES: dict[str, type[Event]] = {cls.TYPE: cls for cls in (
    RunStarted, Step, Eval, Checkpoint, Sample, Heartbeat, Info, WarningEvent, Paused, Resumed,
    RunFinished, RunStopped, RunFailed)}
_BASE_FIELDS = {f.name for f in fields(Event)}

# Required fields per type (beyond v/type/time): those of the dataclasses above without a default.
EVENT_FIELDS: dict[str, tuple[str, ...]] = {
    type_: tuple(f.name for f in fields(cls) if f.name not in _BASE_FIELDS
                 and f.default is MISSING and f.default_factory is MISSING)
    for type_, cls in EVENT_CLASSES.items()}
END_TYPES = ("run_finished", "run_stopped", "run_failed")
EVENT_TYPES = tuple(EVENT_FIELDS)


def parse_event(raw: dict[str, Any], *, lenient: bool = False) -> Event | None:
    """The typed event of a raw dict (schema version 1 or 2): None for a type this version does not
    know (a newer trainer's), EventError when it lacks one of its type's required fields.

    ``lenient``: never fails, for readers that show whatever a stream says (``minimind runs``):
    a missing required field is None too, and an unknown type is a plain ``Event`` (its time)."""
    type_ = raw.get("type")
    cls = EVENT_CLASSES.get(type_) if isinstance(type_, str) else None
    if cls is None:
        return _from_dict(Event, raw) if lenient else None
    missing = [k for k in EVENT_FIELDS[cls.TYPE] if k not in raw]
    if missing and not lenient:
        raise EventError(f"{cls.TYPE} event lacks {', '.join(missing)}")
    return _from_dict(cls, raw, missing)


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
        if self._fsync or type_ == "checkpoint" or type_ in END_TYPES:
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


@dataclass(frozen=True)
class RunOutcome:
    """How a run's last process ended: ``status`` is finished | stopped | failed | running, and
    ``exit_code`` is what the CLI exits with (0 finished, 130 stopped after saving, the recorded
    code of a failure, 128+N when killed by signal N, 1 when it vanished without a word)."""

    status: str
    exit_code: int
    event: dict[str, Any] | None = None
    message: str = ""


def stop_of_v1(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A version-1 clean stop (checkpoint with reason request/signal, then a warning at the same
    step as the stream's last two events), as the run_stopped event version 2 writes for it."""
    if len(events) < 2:
        return None
    ckpt, warn = events[-2], events[-1]
    if (ckpt.get("type") == "checkpoint" and warn.get("type") == "warning" and int(warn.get("v", 1)) < 2
            and ckpt.get("reason") in ("request", "signal") and warn.get("step") == ckpt.get("step")):
        return {"v": 1, "type": "run_stopped", "time": warn.get("time"), "step": ckpt.get("step"),
                "reason": ckpt.get("reason"), "checkpoint": ckpt.get("path")}
    return None


def refused_attempt(event: dict[str, Any]) -> bool:
    """A ``run_failed`` with exit code 2 (the trainer refused its input, e.g. a checkpoint file safe
    loading refuses). After an earlier end event with no ``run_started`` between, it is an attempt
    that never started, and it does not change how the run ended (the attempt's own command reports it)."""
    return event.get("type") == "run_failed" and event.get("exit_code") == EXIT_USAGE


def run_outcome(events: Iterable[dict[str, Any]], returncode: int | None = None,
                process_gone: bool = True) -> RunOutcome:
    """The one rule for how a run ended, from its events (those after its last ``run_started``
    decide) and, when known, its process's return code (negative: killed by that signal).

    ``process_gone=False`` says the process is still alive: without an end event the run is running.
    """
    since_start: list[dict[str, Any]] = []
    for event in events:
        if event.get("type") == "run_started":
            since_start = []
        since_start.append(event)
    end = None
    for event in since_start:
        if event.get("type") in END_TYPES and not (end is not None and refused_attempt(event)):
            end = event
    if end is None:
        end = stop_of_v1([e for e in since_start if e.get("type") not in ("info",)])
    if end is not None and end["type"] == "run_finished":
        return RunOutcome("finished", EXIT_OK, end, f"finished at step {end.get('step')}")
    if end is not None and end["type"] == "run_stopped":
        return RunOutcome("stopped", EXIT_INTERRUPTED, end,
                          f"stopped at step {end.get('step')} after saving a checkpoint")
    if end is not None and end["type"] == "run_failed":
        return RunOutcome("failed", int(end.get("exit_code") or EXIT_FAILED), end, str(end.get("error", "")))
    if not process_gone:
        return RunOutcome("running", EXIT_OK)
    if returncode is not None and returncode < 0:
        import signal

        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return RunOutcome("failed", 128 - returncode, None, f"the trainer was killed by {name}")
    if returncode:
        return RunOutcome("failed", returncode, None, f"the trainer exited with code {returncode}")
    if returncode is None:  # only its pid was watched: nobody saw its exit status
        return RunOutcome("failed", EXIT_FAILED, None,
                          "the trainer is gone without recording how it ended (exit code unknown)")
    return RunOutcome("failed", EXIT_FAILED, None, "the trainer ended without recording how")


def record_silent_end(run_dir: str | os.PathLike, returncode: int | None, events_before: int = 0) -> dict[str, Any] | None:
    """The parent of a trainer (``pretrain``/``resume``) saw it end without an end event (killed,
    or gone without a word): record that as ``run_failed`` (``recorded_by: "cli"``), so every later
    reader (``watch``, ``runs``) gets the same status and exit code from the events alone. Only when
    that trainer wrote its ``run_started`` (after ``events_before``); returns the event written."""
    if returncode is None:
        return None
    events = read_events(Path(run_dir) / EVENTS_FILE)[events_before:]
    if not any(e.get("type") == "run_started" for e in events):
        return None
    outcome = run_outcome(events, returncode)
    if outcome.event is not None or outcome.status != "failed":
        return None
    steps = [e["step"] for e in events if e.get("type") in ("step", "heartbeat") and "step" in e]
    with EventWriter(run_dir) as writer:
        return writer.emit("run_failed", error=outcome.message, traceback="", exit_code=outcome.exit_code,
                           step=steps[-1] if steps else None, recorded_by="cli")
