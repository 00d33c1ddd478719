"""The events log: its lines and their wording, one function per kind of line.

Offsets are event time minus run start, so a replay renders the same every time; a note of the
dashboard's own (``now``) is stamped with the local clock.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from minimind.events import (
    Checkpoint,
    Eval,
    Info,
    Paused,
    Resumed,
    RunFailed,
    RunFinished,
    RunStarted,
    RunStopped,
    WarningEvent,
)
from minimind.run_dir import run_of
from minimind_cli.dashboard import format as fmt
from minimind_cli.dashboard.signals import Spike

LOG_LIMIT = 500


@dataclass
class LogLine:
    offset_s: float | None  # seconds since the run started (None before run_started)
    kind: str  # "info" | "checkpoint" | "eval" | "warning" | "alert" | "error" | "control"
    text: str
    path: str = ""  # shown after text; a line too long is cut in the middle of the path
    after: str = ""  # shown after the path

    @property
    def full(self) -> str:
        return self.text + self.path + self.after


@dataclass(frozen=True)
class Wording:
    """A line before it is stamped: what ``LogBook.add`` takes."""

    kind: str
    text: str
    path: str = ""
    after: str = ""


@dataclass
class LogBook:
    lines: list[LogLine] = field(default_factory=list)

    def add(self, wording: Wording, start: float | None, at: float | None, now: bool = False) -> None:
        """Stamp ``wording`` with ``at`` (an event's time) relative to ``start`` (the run's start);
        ``now``: a line of the dashboard's own, stamped with the local clock."""
        offset = None
        if now:
            if start is not None:
                offset = max(0.0, time.time() - float(start))
        elif at is not None and start is not None:
            offset = float(at) - float(start)
        self.lines.append(LogLine(offset, wording.kind, wording.text, wording.path, wording.after))
        del self.lines[:-LOG_LIMIT]


# ---------------------------------------------------------------------------- the wording
def _where(step: int | None) -> str:
    return f" (step {step})" if step is not None else ""


def started(e: RunStarted, start_step: int) -> list[Wording]:
    lines = []
    if e.resumed_from:
        source = e.resumed_from
        if isinstance(source, dict):  # the trainer records {"path": checkpoint dir, "step": N}
            source = Path(str(source.get("path", "?"))).name
        lines.append(Wording("info", f"resumed from {source} at step {start_step}"))
        if e.schedule_changed_at == start_step:
            lines.append(Wording("info", f"lr schedule re-planned at step {start_step} for {e.total_steps} steps"))
    else:
        lines.append(Wording("info", f"run started: {e.total_steps} steps on {e.device}"))
    auto = e.batch_size_auto
    if auto is not None:
        text = (f"batch size auto: micro-batch {auto.chosen} x {auto.accumulation_steps} "
                f"accumulation = {auto.global_batch} per step")
        if auto.requested_global_batch not in (None, auto.global_batch):
            text += f" (asked for {auto.requested_global_batch})"
        lines.append(Wording("info", text + (f"; {auto.note}" if auto.note else "")))
    return lines


def seq_len_change(before: int, after: int, step: int) -> Wording:
    return Wording("info", f"sequence length {before} -> {after} at step {step}")


def loss_spike(step: int, spike: Spike) -> str:
    return (f"loss spike at step {step}: {fmt.fixed(spike.value)}, "
            f"{spike.sigmas:.1f} std above its average {fmt.fixed(spike.baseline)}")


def grad_spike(step: int, spike: Spike) -> str:
    return (f"grad-norm spike at step {step}: {fmt.number(spike.value, 3)}, "
            f"{spike.sigmas:.1f} std above its average {fmt.number(spike.baseline, 3)}")


def evaluated(e: Eval) -> Wording:
    return Wording("eval", f"eval @ step {e.step}: val loss {fmt.fixed(e.val_loss)}, "
                           f"perplexity {fmt.number(e.perplexity)}")


def checkpoint(e: Checkpoint) -> Wording:
    return Wording("checkpoint", f"checkpoint @ step {e.step} ({e.reason}, {fmt.fixed(e.seconds, 1)} s): ",
                   path=str(e.path))


def info(e: Info) -> Wording:
    return Wording("info", f"{e.message}{_where(e.step)}")


def warning(e: WarningEvent) -> Wording:
    return Wording("warning", f"{e.message}{_where(e.step)}")


def oom_retry(e: WarningEvent) -> str:
    split = f"micro-batch {e.batch_size} x {e.accumulation_steps} accumulation"
    peak = f", peak {fmt.mib(e.peak_mib)}" if e.peak_mib is not None else ""
    return f"out of memory at step {e.step}: retrying with {split}{peak}"


def paused(e: Paused) -> Wording:
    return Wording("control", f"paused at step {e.step}")


def resumed(e: Resumed) -> Wording:
    return Wording("control", f"continued at step {e.step}")


def finished(e: RunFinished) -> Wording:
    parts = [f"run finished at step {e.step}"]
    if e.final_loss is not None:
        parts.append(f"loss {fmt.fixed(e.final_loss)}")
    if e.val_loss is not None:
        parts.append(f"val loss {fmt.fixed(e.val_loss)}")
    text = ", ".join(parts)
    if e.weights_path:
        return Wording("info", text + ", weights ", path=str(e.weights_path))
    return Wording("info", text)


def stopped(e: RunStopped, run_dir: Path | None) -> Wording:
    if run_dir is None and e.checkpoint:  # RUN/checkpoints/step_N
        run_dir = run_of(str(e.checkpoint))
    resume = f"minimind resume {shlex.quote(str(run_dir))}" if run_dir is not None else "minimind resume RUN"
    return Wording("control", f"stopped at step {e.step} ({e.reason}) after saving ",
                   path=str(e.checkpoint), after=f"; resume with: {resume}")


def failed(e: RunFailed) -> Wording:
    return Wording("error", f"run failed: {e.error}")


def trainer_ended(returncode: int | None, finished: bool, failed: bool) -> Wording:
    text = f"trainer ended: {fmt.exit_status(returncode)}"
    if not finished:
        text += " without a run_finished event"
    return Wording("error" if failed else "info", text)


def unreadable(type_: object) -> Wording:
    return Wording("warning", f"unreadable {type_} event skipped")
