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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minimind.config import differing_settings, flatten_config
from minimind.errors import ReportError
from minimind.events import read_events
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
    started: dict[str, Any]  # the last run_started ({} when the run never started)
    steps: list[dict[str, Any]] = field(default_factory=list)  # step events in step order (resumes applied)
    evals: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    planned_lr: list[tuple[str, list[tuple[int, float]]]] = field(default_factory=list)  # (label, [(step, lr)])
    log: list[LogRow] = field(default_factory=list)
    log_dropped: int = 0
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None  # run_finished / run_stopped / run_failed of the last process
    truncated_line: bool = False  # events.jsonl ends in a half-written line (left out)
    read_at: float = 0.0
    _known: dict[str, Any] = field(default_factory=dict, repr=False)  # x_of's (step, x) pairs per axis

    # ------------------------------------------------------------------ views
    @property
    def config(self) -> dict[str, Any]:
        return self.started.get("config") or {}

    @property
    def is_moe(self) -> bool:
        return any(e.get("moe") for e in self.steps[-1:]) or bool((self.config.get("model") or {}).get("use_moe"))

    @property
    def status(self) -> str:
        return str(self.summary.get("status"))

    @property
    def is_snapshot(self) -> bool:
        """Still training: the page shows the run as it was at ``read_at``."""
        return self.status == "running"

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of a step-event field, ``a.b`` reaching into a nested dict; None left out."""
        steps, values = [], []
        for e in self.steps:
            value = _dig(e, key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                steps.append(int(e["step"]))
                values.append(float(value))
        return steps, values

    def val_series(self) -> tuple[list[int], list[float]]:
        pairs = [(int(e["step"]), float(e["val_loss"])) for e in self.evals if e.get("val_loss") is not None]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def x_of(self, axis: str, steps: list[int]) -> list[float | None]:
        """Where each step lies on ``axis`` (step | tokens | time): the step events' tokens_seen or
        elapsed_s, linear between two step events; past the last one tokens go on at tokens_per_step."""
        if axis == "step":
            return [float(s) for s in steps]
        if axis not in self._known:
            key = "tokens_seen" if axis == "tokens" else "elapsed_s"
            pairs = [(0, 0.0)] + [(int(e["step"]), float(e[key])) for e in self.steps
                                  if isinstance(e.get(key), (int, float)) and int(e["step"]) > 0]
            self._known[axis] = (pairs, [k[0] for k in pairs])
        known, at = self._known[axis]
        per_step = self.started.get("tokens_per_step") if axis == "tokens" else None
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
            memory = e.get("memory") or {}
            points: list[tuple[str, Any]] = []
            for i, gpu in enumerate(memory.get("gpu") or []):
                device = gpu.get("device", i)
                points += [(f"gpu {device} {k.removesuffix('_mib')}", gpu.get(k))
                           for k in ("allocated_mib", "reserved_mib", "peak_mib")]
            if memory.get("cpu_rss_mib") is not None:
                points.append(("process RSS", memory["cpu_rss_mib"]))
            for label, value in points:
                if isinstance(value, (int, float)):
                    steps, values = out.setdefault(label, ([], []))
                    steps.append(int(e["step"]))
                    values.append(float(value))
        return out

    def memory_total(self) -> tuple[float | None, float | None]:
        """The device's memory (MiB, RAM on a CPU) and the fraction a run keeps free, when recorded."""
        for e in reversed(self.steps):
            memory = e.get("memory") or {}
            gpus = memory.get("gpu") or []
            total = memory.get("total_mib") or (gpus[0].get("total_mib") if gpus else None)
            if total:
                return float(total), memory.get("safety_margin")
        estimate = self.started.get("memory_estimate") or {}
        return estimate.get("device_total_mib"), estimate.get("safety_margin")

    def moe_frames(self, limit: int = MOE_FRAMES) -> list[tuple[int, list[list[float]]]]:
        """(step, load[layer][expert]) snapshots over training, evenly spaced, the last one always."""
        frames = [(int(e["step"]), e["moe"]["load"]) for e in self.steps
                  if isinstance(e.get("moe"), dict) and e["moe"].get("load")]
        if len(frames) <= limit:
            return frames
        picks = sorted({round(i * (len(frames) - 1) / (limit - 1)) for i in range(limit)})
        return [frames[i] for i in picks]

    def router_bias_spread(self) -> dict[str, tuple[list[int], list[float]]]:
        """Per layer, the router bias's max minus min over the experts at each step (bias balancing)."""
        out: dict[str, tuple[list[int], list[float]]] = {}
        for e in self.steps:
            bias = (e.get("moe") or {}).get("router_bias")
            for layer, row in enumerate(bias or []):
                if row:
                    steps, values = out.setdefault(f"layer {layer}", ([], []))
                    steps.append(int(e["step"]))
                    values.append(float(max(row) - min(row)))
        return out

    def samples_by_prompt(self) -> dict[str, list[tuple[int, str]]]:
        """Each prompt (in the order first seen) and its continuations by step (the newest per step)."""
        by_prompt: dict[str, dict[int, str]] = {}
        for s in self.samples:
            by_prompt.setdefault(str(s.get("prompt", "")), {})[int(s["step"])] = str(s.get("text", ""))
        return {p: sorted(texts.items()) for p, texts in by_prompt.items()}

    def header(self) -> dict[str, Any]:
        """The numbers at the top of the page, exact (never from a downsampled series)."""
        s, st = self.summary, self.started
        dataset = st.get("dataset") or {}
        last = self.steps[-1] if self.steps else {}
        end = self.end or {}
        val = next((e.get("val_loss") for e in reversed(self.evals) if e.get("val_loss") is not None), None)
        return {
            "name": self.name, "status": s.get("status"), "message": s.get("message"),
            "profile": s.get("profile"), "params_total": st.get("params_total"),
            "params_active": st.get("params_active"), "device": st.get("device"),
            "devices": st.get("devices"), "dtype": st.get("dtype"), "world_size": st.get("world_size"),
            "optimizer": st.get("optimizer"),
            "dataset_documents": dataset.get("documents"), "dataset_tokens": dataset.get("tokens"),
            "dataset_fingerprint": dataset.get("fingerprint"), "dataset_path": dataset.get("path"),
            "step": s.get("step"), "total_steps": s.get("total_steps"),
            "elapsed_s": s.get("elapsed_s"), "tokens_seen": s.get("tokens_seen"),
            "final_loss": end.get("final_loss") if end.get("final_loss") is not None else last.get("loss"),
            "loss_ema": last.get("loss_ema"),
            "val_loss": end.get("val_loss") if end.get("val_loss") is not None else val,
            "perplexity": next((e.get("perplexity") for e in reversed(self.evals)
                                if e.get("perplexity") is not None), None),
            # Bits per byte need the text's bytes: events carry them only when the trainer wrote them.
            "bits_per_byte": end.get("bits_per_byte"),
            "started": s.get("started"), "updated": s.get("updated"),
            "error": end.get("error") if end.get("type") == "run_failed" else None,
            "traceback": end.get("traceback") if end.get("type") == "run_failed" else None,
        }


def _dig(event: dict[str, Any], key: str) -> Any:
    value: Any = event
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
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
    run = RunData(path=path, name=path.resolve().name, summary=summarize(path, now, events), started={},
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
    for e in events:
        kind = e.get("type")
        try:
            step = int(e["step"]) if isinstance(e.get("step"), (int, float)) else None
        except (TypeError, ValueError):
            step = None
        if t0 is None and kind == "run_started" and isinstance(e.get("time"), (int, float)):
            t0 = float(e["time"])
        offset = float(e["time"]) - t0 if t0 is not None and isinstance(e.get("time"), (int, float)) else None
        if kind == "run_started":
            start = int(e.get("start_step") or 0)
            if run.started:
                run.steps = [s for s in run.steps if int(s["step"]) <= start]
                run.evals = [v for v in run.evals if int(v["step"]) <= start]
                run.samples = [s for s in run.samples if int(s["step"]) <= start]
                run.markers = [m for m in run.markers if m.step <= start]
                run.markers.append(Marker("resume", start, f"resumed at step {start}"))
            run.started, run.end = e, None
            schedule = [(int(s), float(lr)) for s, lr in e.get("lr_schedule") or []]
            replanned = e.get("schedule_changed_at")
            if not run.planned_lr:
                run.planned_lr.append(("planned lr", schedule))
            elif replanned is not None:
                run.planned_lr.append((f"re-planned at step {replanned}",
                                       [p for p in schedule if p[0] >= int(replanned)]))
                run.markers.append(Marker("replan", int(replanned), f"lr re-planned at step {replanned} "
                                                                     f"for {e.get('total_steps')} steps"))
            for phase_step, length in (e.get("seq_len_schedule") or [])[1:]:
                marker = Marker("phase", int(phase_step), f"sequence length {length} after step {phase_step}")
                if marker not in run.markers:
                    run.markers.append(marker)
            text = (f"resumed at step {start}" if e.get("resumed_from") else
                    f"run started: {e.get('total_steps')} steps on {e.get('device')}")
            rows.append(LogRow(offset, start, "info", text))
            continue
        if kind == "step" and step is not None:
            run.steps.append(e)
            new_len = e.get("seq_len")
            planned = bool(run.started.get("seq_len_schedule"))
            if new_len is not None and seq_len is not None and new_len != seq_len and not planned:
                run.markers.append(Marker("phase", step, f"sequence length {seq_len} -> {new_len} at step {step}"))
            seq_len = new_len if new_len is not None else seq_len
        elif kind == "eval" and step is not None:
            run.evals.append(e)
        elif kind == "sample" and step is not None:
            run.samples.append(e)
        elif kind == "warning" and e.get("kind") == "oom_retry" and step is not None:
            run.markers.append(Marker("oom", step, f"out of memory at step {step}: retried with micro-batch "
                                                   f"{e.get('batch_size')} x {e.get('accumulation_steps')}"))
        if kind in ("run_finished", "run_stopped", "run_failed"):
            run.end = e
        if kind not in _NOT_LOGGED:
            rows.append(LogRow(offset, step, *_log_text(e)))
    run.log_dropped = max(0, len(rows) - LOG_LIMIT)
    run.log = rows[-LOG_LIMIT:]


def _log_text(e: dict[str, Any]) -> tuple[str, str]:
    """(kind, text) of an event's line in the events log."""
    kind = e.get("type")
    if kind == "eval":
        return "eval", f"eval: val loss {_num(e.get('val_loss'))}, perplexity {_num(e.get('perplexity'), 2)}"
    if kind == "checkpoint":
        return "checkpoint", f"checkpoint ({e.get('reason')}): {e.get('path')}"
    if kind == "warning":
        return "warning", str(e.get("message", ""))
    if kind == "info":
        return "info", str(e.get("message", ""))
    if kind in ("paused", "resumed"):
        return "control", kind
    if kind == "run_finished":
        return "info", (f"run finished: loss {_num(e.get('final_loss'))}" +
                        (f", weights {e['weights_path']}" if e.get("weights_path") else ""))
    if kind == "run_stopped":
        return "control", f"stopped ({e.get('reason')}) after saving {e.get('checkpoint')}"
    if kind == "run_failed":
        return "error", f"run failed (exit code {e.get('exit_code')}): {e.get('error')}"
    return "info", f"{kind}"


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
