"""What a report page shows, read from run directories: plain Python, no torch, no plotting.

A run is read with the readers the commands use: ``events.read_events`` (a half-written last line
is left out), ``run_summary.summarize`` (status by ``run_outcome`` and the live trainer's lock,
progress, losses) and ``run_summary.checkpoint_rows``. Numbers are the trainer's own; the only
arithmetic here is where an eval or a marker lies in tokens or wall time (between step events,
linear), the drawing budget of ``downsample`` and the spread of the MoE router bias.
"""

from __future__ import annotations

import bisect
import os
import time
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from minimind.config import differing_settings, flatten_config
from minimind.errors import ReportError
from minimind.events import (
    Checkpoint,
    Eval,
    Event,
    Info,
    Paused,
    Resumed,
    RunFailed,
    RunFinished,
    RunStarted,
    RunStopped,
    Sample,
    Step,
    WarningEvent,
    parse_event,
    read_events,
)
from minimind.run_dir import EVENTS_FILE, TRAINER_LOG
from minimind.run_summary import checkpoint_rows, summarize

X_AXES = ("step", "tokens", "time")
MAX_POINTS = 1500  # drawn points per series; min and max of each bucket are kept
MOE_FRAMES = 30  # snapshots of the MoE load heat map on its slider
LOG_LIMIT = 3000  # events-log rows shown (the newest; the page says how many were left out)
# Event types that are not log lines: they are plotted or listed on their own.
_NOT_LOGGED = ("step", "heartbeat", "sample")


@dataclass
class Marker:
    """A vertical line on a plot: a curriculum phase change, an out-of-memory retry, a re-plan of
    the lr schedule, a resume."""

    kind: str  # "phase" | "oom" | "replan" | "resume"
    step: int
    text: str


@dataclass
class LogRow:
    offset_s: float | None  # seconds since the first run_started
    step: int | None
    kind: str  # info | warning | error | eval | checkpoint | control
    text: str


@dataclass
class RunData:
    """One run as the page needs it."""

    path: Path
    name: str
    summary: dict[str, Any]  # run_summary.summarize
    started: RunStarted | None  # the last run_started (None when the run never started)
    steps: list[Step] = field(default_factory=list)  # step events in step order (resumes applied)
    evals: list[Eval] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    planned_lr: list[tuple[str, list[tuple[int, float]]]] = field(default_factory=list)  # (label, [(step, lr)])
    log: list[LogRow] = field(default_factory=list)
    log_dropped: int = 0
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    end: RunFinished | RunStopped | RunFailed | None = None  # how the last process ended
    truncated_line: bool = False  # events.jsonl ends in a half-written line (left out)
    read_at: float = 0.0
    _known: dict[str, Any] = field(default_factory=dict, repr=False)  # x_of's (step, x) pairs per axis

    # ------------------------------------------------------------------ views
    @property
    def config(self) -> dict[str, Any]:
        return (self.started.config if self.started is not None else None) or {}

    @property
    def is_moe(self) -> bool:
        return any(e.moe for e in self.steps[-1:]) or bool((self.config.get("model") or {}).get("use_moe"))

    @property
    def status(self) -> str:
        return str(self.summary.get("status"))

    @property
    def is_snapshot(self) -> bool:
        """Still training: the page shows the run as it was at ``read_at``."""
        return self.status == "running"

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of a step-event field, ``a.b`` reaching into a nested one (``moe.imbalance``);
        None left out."""
        steps, values = [], []
        for e in self.steps:
            value = _dig(e, key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                steps.append(int(e.step))
                values.append(float(value))
        return steps, values

    def val_series(self) -> tuple[list[int], list[float]]:
        pairs = [(int(e.step), float(e.val_loss)) for e in self.evals if e.val_loss is not None]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def x_of(self, axis: str, steps: list[int]) -> list[float | None]:
        """Where each step lies on ``axis`` (step | tokens | time): the step events' tokens_seen or
        elapsed_s, linear between two step events; past the last one tokens go on at tokens_per_step."""
        if axis == "step":
            return [float(s) for s in steps]
        if axis not in self._known:
            xs = [(e, e.tokens_seen if axis == "tokens" else e.elapsed_s) for e in self.steps]
            pairs = [(0, 0.0)] + [(int(e.step), float(x)) for e, x in xs
                                  if isinstance(x, (int, float)) and int(e.step) > 0]
            self._known[axis] = (pairs, [k[0] for k in pairs])
        known, at = self._known[axis]
        per_step = self.started.tokens_per_step if axis == "tokens" and self.started is not None else None
        out: list[float | None] = []
        for step in steps:
            i = bisect.bisect_left(at, step)
            if i < len(known) and at[i] == step:
                out.append(known[i][1])
            elif i < len(known):
                (s0, v0), (s1, v1) = known[i - 1], known[i]
                out.append(v0 + (v1 - v0) * (step - s0) / (s1 - s0))
            elif per_step:
                out.append(known[-1][1] + (step - at[-1]) * float(per_step))
            else:
                out.append(None)
        return out

    def memory(self) -> dict[str, tuple[list[int], list[float]]]:
        """Memory series by label (GPU allocated/reserved/peak per device, else process RSS)."""
        out: dict[str, tuple[list[int], list[float]]] = {}
        for e in self.steps:
            memory = e.memory
            points: list[tuple[str, Any]] = []
            for i, gpu in enumerate((memory.gpu if memory is not None else None) or []):
                device = gpu.device if "device" in gpu.raw else i
                points += [(f"gpu {device} allocated", gpu.allocated_mib), (f"gpu {device} reserved", gpu.reserved_mib),
                           (f"gpu {device} peak", gpu.peak_mib)]
            if memory is not None and memory.cpu_rss_mib is not None:
                points.append(("process RSS", memory.cpu_rss_mib))
            for label, value in points:
                if isinstance(value, (int, float)):
                    steps, values = out.setdefault(label, ([], []))
                    steps.append(int(e.step))
                    values.append(float(value))
        return out

    def memory_total(self) -> tuple[float | None, float | None]:
        """The device's memory (MiB, RAM on a CPU) and the fraction a run keeps free, when recorded."""
        for e in reversed(self.steps):
            memory = e.memory
            if memory is None:
                continue
            gpus = memory.gpu or []
            total = memory.total_mib or (gpus[0].total_mib if gpus else None)
            if total:
                return float(total), memory.safety_margin
        estimate = self.started.memory_estimate if self.started is not None else None
        return (estimate.device_total_mib, estimate.safety_margin) if estimate is not None else (None, None)

    def moe_frames(self, limit: int = MOE_FRAMES) -> list[tuple[int, list[list[float]]]]:
        """(step, load[layer][expert]) snapshots over training, evenly spaced, the last one always."""
        frames = [(int(e.step), e.moe.load) for e in self.steps if e.moe is not None and e.moe.load]
        if len(frames) <= limit:
            return frames
        picks = sorted({round(i * (len(frames) - 1) / (limit - 1)) for i in range(limit)})
        return [frames[i] for i in picks]

    def router_bias_spread(self) -> dict[str, tuple[list[int], list[float]]]:
        """Per layer, the router bias's max minus min over the experts at each step (bias balancing)."""
        out: dict[str, tuple[list[int], list[float]]] = {}
        for e in self.steps:
            bias = e.moe.router_bias if e.moe is not None else None
            for layer, row in enumerate(bias or []):
                if row:
                    steps, values = out.setdefault(f"layer {layer}", ([], []))
                    steps.append(int(e.step))
                    values.append(float(max(row) - min(row)))
        return out

    def samples_by_prompt(self) -> dict[str, list[tuple[int, str]]]:
        """Each prompt (in the order first seen) and its continuations by step (the newest per step)."""
        by_prompt: dict[str, dict[int, str]] = {}
        for s in self.samples:
            by_prompt.setdefault(_text(s.prompt), {})[int(s.step)] = _text(s.text)
        return {p: sorted(texts.items()) for p, texts in by_prompt.items()}

    def header(self) -> dict[str, Any]:
        """The numbers at the top of the page, exact (never from a downsampled series)."""
        s, st, end = self.summary, self.started, self.end
        dataset = st.dataset if st is not None else None
        last = self.steps[-1] if self.steps else None
        finished = end if isinstance(end, RunFinished) else None
        failed = end if isinstance(end, RunFailed) else None
        val = next((e.val_loss for e in reversed(self.evals) if e.val_loss is not None), None)
        return {
            "name": self.name, "status": s.get("status"), "message": s.get("message"),
            "profile": s.get("profile"), "params_total": st and st.params_total,
            "params_active": st and st.params_active, "device": st and st.device,
            "devices": st and st.devices, "dtype": st and st.dtype, "world_size": st and st.world_size,
            "optimizer": st and st.optimizer,
            "dataset_documents": dataset and dataset.documents, "dataset_tokens": dataset and dataset.tokens,
            "dataset_fingerprint": dataset and dataset.fingerprint, "dataset_path": dataset and dataset.path,
            "step": s.get("step"), "total_steps": s.get("total_steps"),
            "elapsed_s": s.get("elapsed_s"), "tokens_seen": s.get("tokens_seen"),
            "final_loss": finished.final_loss if finished and finished.final_loss is not None else last and last.loss,
            "loss_ema": last and last.loss_ema,
            "val_loss": finished.val_loss if finished and finished.val_loss is not None else val,
            "perplexity": next((e.perplexity for e in reversed(self.evals) if e.perplexity is not None), None),
            # Bits per byte need the text's bytes: events carry them only when the trainer wrote them
            # (no field of the schema yet: read as written).
            "bits_per_byte": end.raw.get("bits_per_byte") if end is not None else None,
            "started": s.get("started"), "updated": s.get("updated"),
            "error": failed and failed.error,
            "traceback": failed and failed.traceback,
        }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _dig(event: Step, key: str) -> Any:
    """The field ``key`` of a step event (``a.b``: field b of its field a), None where it has none."""
    value: Any = event
    for part in key.split("."):
        if not is_dataclass(value):
            return None
        value = getattr(value, part, None)
    return value


# ---------------------------------------------------------------------------------- reading
def load_run(path: str | os.PathLike, now: float | None = None) -> RunData:
    """Read one run directory. ``ReportError`` when it is not a run or holds no events."""
    path = Path(path)
    now = time.time() if now is None else now
    events_path = path / EVENTS_FILE
    if not path.is_dir():
        raise ReportError(f"{path}: no such run directory", "pass a directory under out/runs/")
    if not events_path.is_file():
        raise ReportError(f"{path}: no {EVENTS_FILE} here, so this is not a minimind run directory",
                          "pass a directory under out/runs/ made by `minimind pretrain`")
    events = read_events(events_path)
    if not events:
        raise ReportError(f"{path}: {EVENTS_FILE} holds no events yet, so there is nothing to show",
                          f"wait until the trainer has started, or check {TRAINER_LOG}")
    run = RunData(path=path, name=path.resolve().name, summary=summarize(path, now, events), started=None,
                  read_at=now)
    run.truncated_line = _ends_mid_line(events_path)
    fold(run, events)
    run.checkpoints = checkpoint_rows(path, now)
    return run


def _ends_mid_line(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            if f.tell() == 0:
                return False
            f.seek(-1, 2)
            return f.read(1) != b"\n"
    except OSError:
        return False


def fold(run: RunData, events: list[dict[str, Any]]) -> None:
    """Fold ``events`` into ``run``. A resume appends a run_started to the same file: what was
    recorded past the checkpoint it resumed from is dropped, as the dashboard does."""
    t0: float | None = None
    rows: list[LogRow] = []
    seq_len: int | None = None
    for e in (parse_event(raw, lenient=True) for raw in events):
        assert e is not None  # lenient: an unknown type is a plain Event
        step = _step_of(e)
        at = e.time if isinstance(e.time, (int, float)) else None
        if t0 is None and isinstance(e, RunStarted) and at is not None:
            t0 = float(at)
        offset = float(at) - t0 if t0 is not None and at is not None else None
        if isinstance(e, RunStarted):
            start = int(e.start_step or 0)
            if run.started is not None:
                run.steps = [s for s in run.steps if int(s.step) <= start]
                run.evals = [v for v in run.evals if int(v.step) <= start]
                run.samples = [s for s in run.samples if int(s.step) <= start]
                run.markers = [m for m in run.markers if m.step <= start]
                run.markers.append(Marker("resume", start, f"resumed at step {start}"))
            run.started, run.end = e, None
            schedule = [(int(s), float(lr)) for s, lr in e.lr_schedule or []]
            replanned = e.schedule_changed_at
            if not run.planned_lr:
                run.planned_lr.append(("planned lr", schedule))
            elif replanned is not None:
                run.planned_lr.append((f"re-planned at step {replanned}",
                                       [p for p in schedule if p[0] >= int(replanned)]))
                run.markers.append(Marker("replan", int(replanned), f"lr re-planned at step {replanned} "
                                                                     f"for {e.total_steps} steps"))
            for phase_step, length in (e.seq_len_schedule or [])[1:]:
                marker = Marker("phase", int(phase_step), f"sequence length {length} after step {phase_step}")
                if marker not in run.markers:
                    run.markers.append(marker)
            text = (f"resumed at step {start}" if e.resumed_from else
                    f"run started: {e.total_steps} steps on {e.device}")
            rows.append(LogRow(offset, start, "info", text))
            continue
        if isinstance(e, Step) and step is not None:
            run.steps.append(e)
            new_len = e.seq_len
            planned = bool(run.started is not None and run.started.seq_len_schedule)
            if new_len is not None and seq_len is not None and new_len != seq_len and not planned:
                run.markers.append(Marker("phase", step, f"sequence length {seq_len} -> {new_len} at step {step}"))
            seq_len = new_len if new_len is not None else seq_len
        elif isinstance(e, Eval) and step is not None:
            run.evals.append(e)
        elif isinstance(e, Sample) and step is not None:
            run.samples.append(e)
        elif isinstance(e, WarningEvent) and e.kind == "oom_retry" and step is not None:
            run.markers.append(Marker("oom", step, f"out of memory at step {step}: retried with micro-batch "
                                                   f"{e.batch_size} x {e.accumulation_steps}"))
        if isinstance(e, (RunFinished, RunStopped, RunFailed)):
            run.end = e
        if e.type not in _NOT_LOGGED:
            rows.append(LogRow(offset, step, *_log_text(e)))
    run.log_dropped = max(0, len(rows) - LOG_LIMIT)
    run.log = rows[-LOG_LIMIT:]


def _step_of(e: Event) -> int | None:
    """The step an event names (info and warning notes may name none), as an int."""
    # Every known type but run_started has a step field; one this version does not know: as written.
    value = e.raw.get("step") if type(e) is Event else getattr(e, "step", None)
    try:
        return int(value) if isinstance(value, (int, float)) else None
    except (TypeError, ValueError):
        return None


def _log_text(e: Event) -> tuple[str, str]:
    """(kind, text) of an event's line in the events log."""
    if isinstance(e, Eval):
        return "eval", f"eval: val loss {_num(e.val_loss)}, perplexity {_num(e.perplexity, 2)}"
    if isinstance(e, Checkpoint):
        return "checkpoint", f"checkpoint ({e.reason}): {e.path}"
    if isinstance(e, WarningEvent):
        return "warning", _text(e.message)
    if isinstance(e, Info):
        return "info", _text(e.message)
    if isinstance(e, (Paused, Resumed)):
        return "control", e.type
    if isinstance(e, RunFinished):
        return "info", (f"run finished: loss {_num(e.final_loss)}" +
                        (f", weights {e.weights_path}" if e.weights_path else ""))
    if isinstance(e, RunStopped):
        return "control", f"stopped ({e.reason}) after saving {e.checkpoint}"
    if isinstance(e, RunFailed):
        return "error", f"run failed (exit code {e.exit_code}): {e.error}"
    return "info", f"{e.type}"


def _num(value: Any, digits: int = 4) -> str:
    return "—" if not isinstance(value, (int, float)) else f"{value:.{digits}f}"


# ------------------------------------------------------------------------------- shaping
def downsample(xs: list[float], ys: list[float], max_points: int = MAX_POINTS) -> list[int]:
    """Indices of the points to draw: all of them when there are at most ``max_points``; else the
    series is cut into buckets of equal length and each keeps its first, lowest, highest and last
    point (in order), so spikes and the ends survive any zoom-out."""
    n = len(xs)
    if n <= max_points:
        return list(range(n))
    buckets = max(1, max_points // 4)
    keep: set[int] = {0, n - 1}
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        if hi <= lo:
            continue
        chunk = range(lo, hi)
        keep |= {lo, hi - 1, min(chunk, key=ys.__getitem__), max(chunk, key=ys.__getitem__)}
    return sorted(keep)


def config_rows(runs: list[RunData]) -> tuple[list[str], list[list[Any]]]:
    """The config table: for one run every resolved setting, for several only those that differ.
    Returns (dotted keys, per run the values in key order)."""
    configs = [r.config for r in runs]
    if len(runs) == 1:
        flat = flatten_config(configs[0])
        return list(flat), [list(flat.values())]
    flats, names = differing_settings(configs)
    return list(names), [[flat.get(k) for k in names] for flat in flats]


def load_runs(paths: list[str | os.PathLike], now: float | None = None) -> list[RunData]:
    """Every run named, in order; ``ReportError`` for the first that cannot be read."""
    resolved = [Path(p).resolve() for p in paths]
    if len(set(resolved)) < len(resolved):
        raise ReportError("the same run is named twice", "name each run directory once")
    now = time.time() if now is None else now
    return [load_run(p, now) for p in paths]
