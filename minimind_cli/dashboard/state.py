"""What the dashboard knows about a run: events folded into plain Python state.

No Textual and no torch here, so the folding is testable on its own. Numbers are taken as the
trainer wrote them; the only arithmetic is the MoE alert rule (documented below) and the elapsed
offsets of log lines (event time minus run start, so a replay renders the same every time).
"""

from __future__ import annotations

import shlex
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minimind.events import END_TYPES, RunOutcome, run_outcome
from minimind_cli.dashboard import format as fmt

# MoE alert thresholds, relative to what an expert can get. With E experts and top-k routing an
# expert's fair share of the picks is 1/E and the most it can take is 1/k (every token picks it).
STARVED_FRACTION_OF_FAIR = 0.05  # "almost no tokens": under 5% of the fair share
DOMINANT_FRACTION_OF_MAX = 0.80  # "almost all": over 80% of the picks it could possibly take

# Panels a change can touch; the app redraws only these.
PANELS = ("header", "loss", "lr", "progress", "memory", "moe", "log", "failure")
LOG_LIMIT = 500
HISTORY_LIMIT = 240  # memory sparkline points


@dataclass
class LogLine:
    offset_s: float | None  # seconds since the run started (None before run_started)
    kind: str  # "info" | "checkpoint" | "eval" | "warning" | "error" | "control"
    text: str


@dataclass
class MoeAlert:
    layer: int
    expert: int
    kind: str  # "starved" | "dominant"
    share: float


@dataclass
class RunState:
    started: dict[str, Any] | None = None
    last_step: dict[str, Any] | None = None
    steps: list[int] = field(default_factory=list)
    losses: list[float | None] = field(default_factory=list)
    loss_emas: list[float | None] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    last_eval: dict[str, Any] | None = None
    memory_history: list[float] = field(default_factory=list)
    log: list[LogLine] = field(default_factory=list)
    paused: bool = False
    finished: dict[str, Any] | None = None
    failed: dict[str, Any] | None = None
    stopped: dict[str, Any] | None = None  # the run_stopped event (version 2)
    last_checkpoint: dict[str, Any] | None = None
    run_dir: Path | None = None  # where the run lives, for the resume command in the log
    # Set by the app, not by events: the trainer process's fate.
    returncode: int | None = None
    process_gone: bool = False
    trainer_log_tail: str | None = None
    stopping: bool = False
    # What ``minimind.events.run_outcome`` needs of the events since the last run_started: that
    # event, the last end event and the last two events other than info (a version-1 stop).
    _end: dict[str, Any] | None = None
    _last_two: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=2))

    # ------------------------------------------------------------------ events
    def apply_all(self, events: list[dict[str, Any]]) -> set[str]:
        changed: set[str] = set()
        for event in events:
            changed |= self.apply(event)
        return changed

    def apply(self, event: dict[str, Any]) -> set[str]:
        handler = getattr(self, f"_on_{event.get('type')}", None)
        if handler is None:
            return set()
        try:
            return handler(event)
        except (KeyError, TypeError, ValueError, IndexError):
            # A malformed event (older/newer schema) must not take the dashboard down.
            self._log(event, "warning", f"unreadable {event.get('type')} event skipped")
            return {"log"}
        finally:
            self._remember(event)

    def _remember(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "run_started":
            self._end = None
            self._last_two.clear()
        if kind in END_TYPES:
            self._end = event
        if kind != "info":
            self._last_two.append(event)

    def _on_run_started(self, e: dict[str, Any]) -> set[str]:
        start_step = int(e.get("start_step") or 0)
        if self.started is not None:
            # A resumed run appends to the same file: drop history past the checkpoint it resumed.
            keep = sum(1 for s in self.steps if s <= start_step)
            del self.steps[keep:], self.losses[keep:], self.loss_emas[keep:]
            keep_val = sum(1 for s in self.val_steps if s <= start_step)
            del self.val_steps[keep_val:], self.val_losses[keep_val:]
        self.started = e
        self.finished = self.failed = self.stopped = None
        self.paused = False
        self.returncode = None
        self.process_gone = False
        if e.get("resumed_from"):
            source = e["resumed_from"]
            if isinstance(source, dict):  # the trainer records {"path": checkpoint dir, "step": N}
                source = Path(str(source.get("path", "?"))).name
            self._log(e, "info", f"resumed from {source} at step {start_step}")
            if e.get("schedule_changed_at") == start_step:
                self._log(e, "info", f"lr schedule re-planned at step {start_step} for {e.get('total_steps')} steps")
        else:
            self._log(e, "info", f"run started: {e.get('total_steps')} steps on {e.get('device')}")
        return set(PANELS)

    def _on_step(self, e: dict[str, Any]) -> set[str]:
        self.last_step = e
        self.steps.append(int(e["step"]))
        self.losses.append(e.get("loss"))
        self.loss_emas.append(e.get("loss_ema"))
        memory = e.get("memory") or {}
        sample = _memory_sample(memory)
        if sample is not None:
            self.memory_history.append(sample)
            del self.memory_history[:-HISTORY_LIMIT]
        changed = {"loss", "lr", "progress", "memory", "header"}
        if e.get("moe"):
            changed.add("moe")
        return changed

    def _on_eval(self, e: dict[str, Any]) -> set[str]:
        self.last_eval = e
        if e.get("val_loss") is not None:
            self.val_steps.append(int(e["step"]))
            self.val_losses.append(float(e["val_loss"]))
        self._log(e, "eval", f"eval @ step {e['step']}: val loss {fmt.fixed(e.get('val_loss'))}, "
                             f"perplexity {fmt.number(e.get('perplexity'))}")
        return {"loss", "log", "progress"}

    def _on_checkpoint(self, e: dict[str, Any]) -> set[str]:
        self.last_checkpoint = e
        self._log(e, "checkpoint", f"checkpoint @ step {e['step']} ({e.get('reason')}, "
                                   f"{fmt.fixed(e.get('seconds'), 1)} s): {e['path']}")
        return {"log", "progress"}

    def _on_info(self, e: dict[str, Any]) -> set[str]:
        where = f" (step {e['step']})" if e.get("step") is not None else ""
        self._log(e, "info", f"{e['message']}{where}")
        return {"log"}

    def _on_warning(self, e: dict[str, Any]) -> set[str]:
        where = f" (step {e['step']})" if e.get("step") is not None else ""
        self._log(e, "warning", f"{e['message']}{where}")
        return {"log", "header", "progress"}  # it may complete a version-1 stop

    def _on_paused(self, e: dict[str, Any]) -> set[str]:
        self.paused = True
        self._log(e, "control", f"paused at step {e['step']}")
        return {"log", "header", "progress"}

    def _on_resumed(self, e: dict[str, Any]) -> set[str]:
        self.paused = False
        self._log(e, "control", f"continued at step {e['step']}")
        return {"log", "header", "progress"}

    def _on_run_finished(self, e: dict[str, Any]) -> set[str]:
        self.finished = e
        self.paused = False
        parts = [f"run finished at step {e['step']}"]
        if e.get("final_loss") is not None:
            parts.append(f"loss {fmt.fixed(e['final_loss'])}")
        if e.get("val_loss") is not None:
            parts.append(f"val loss {fmt.fixed(e['val_loss'])}")
        if e.get("weights_path"):
            parts.append(f"weights {e['weights_path']}")
        self._log(e, "info", ", ".join(parts))
        return {"log", "header", "progress"}

    def _on_run_stopped(self, e: dict[str, Any]) -> set[str]:
        self.stopped = e
        self.paused = False
        run_dir = self.run_dir
        if run_dir is None and e.get("checkpoint"):  # RUN/checkpoints/step_N
            run_dir = Path(str(e["checkpoint"])).parent.parent
        resume = f"minimind resume {shlex.quote(str(run_dir))}" if run_dir is not None else "minimind resume RUN"
        self._log(e, "control", f"stopped at step {e['step']} ({e.get('reason')}) after saving "
                                f"{e.get('checkpoint')}; resume with: {resume}")
        return {"log", "header", "progress"}

    def _on_run_failed(self, e: dict[str, Any]) -> set[str]:
        self.failed = e
        self._log(e, "error", f"run failed: {e['error']}")
        return {"log", "header", "progress", "failure"}

    # ----------------------------------------------------- the process, seen by the app
    def trainer_exited(self, returncode: int | None, log_tail: str | None = None) -> set[str]:
        """The trainer process is gone (``returncode`` None when only its pid vanished)."""
        self.returncode = returncode
        self.process_gone = True
        self.trainer_log_tail = log_tail
        self.stopping = False
        outcome = self.outcome
        if outcome.event is None or (outcome.status != "failed" and returncode not in (0, None)):
            # No end event says how it ended (or the exit contradicts it): say what we saw.
            text = f"trainer ended: {fmt.exit_status(returncode)}"
            if self.finished is None:
                text += " without a run_finished event"
            self._log(None, "error" if self.status == "failed" else "info", text)
        return {"log", "header", "progress", "failure"}

    def note(self, kind: str, text: str) -> set[str]:
        """A line from the dashboard itself (e.g. 'save requested')."""
        self._log(None, kind, text)
        return {"log"}

    def _log(self, event: dict[str, Any] | None, kind: str, text: str) -> None:
        offset = None
        if event is not None and self.started is not None and event.get("time") is not None:
            offset = float(event["time"]) - float(self.started.get("time", event["time"]))
        elif event is None and self.started is not None and self.started.get("time") is not None:
            offset = max(0.0, time.time() - float(self.started["time"]))  # a live note: now
        self.log.append(LogLine(offset, kind, text))
        del self.log[:-LOG_LIMIT]

    # ------------------------------------------------------------------ views
    @property
    def is_moe(self) -> bool:
        if self.last_step is not None and self.last_step.get("moe"):
            return True
        config = (self.started or {}).get("config") or {}
        return bool((config.get("model") or {}).get("use_moe"))

    @property
    def outcome(self) -> RunOutcome:
        """How the run ended, by the rule every command uses (``minimind.events.run_outcome``);
        status "running" while the process may still be alive and no end event was written."""
        events = [self.started] if self.started is not None else []
        if self._end is not None and not any(e is self._end for e in self._last_two):
            events.append(self._end)
        events.extend(self._last_two)
        return run_outcome(events, self.returncode, self.process_gone)

    @property
    def status(self) -> str:
        """waiting | running | paused | stopping | finished | stopped | interrupted | failed."""
        outcome = self.outcome
        if outcome.status != "running":
            if outcome.status == "failed" and outcome.event is None and self.returncode == 130:
                return "interrupted"  # exit code 130 without a word: killed by a SIGINT of its own
            return outcome.status
        if self.started is None:
            return "waiting"
        if self.stopping:
            return "stopping"
        return "paused" if self.paused else "running"

    @property
    def has_failure(self) -> bool:
        return self.status == "failed"

    @property
    def ended(self) -> bool:
        return self.process_gone or self.finished is not None or self.failed is not None

    @property
    def lr_schedule(self) -> list[tuple[int, float]]:
        raw = (self.started or {}).get("lr_schedule") or []
        return [(int(s), float(lr)) for s, lr in raw]

    @property
    def experts_per_token(self) -> int:
        config = (self.started or {}).get("config") or {}
        return int((config.get("model") or {}).get("num_experts_per_tok") or 1)

    def moe_alerts(self) -> list[MoeAlert]:
        moe = (self.last_step or {}).get("moe")
        if not moe:
            return []
        return moe_alerts(moe.get("load") or [], self.experts_per_token)


def moe_alerts(load: list[list[float]], experts_per_token: int) -> list[MoeAlert]:
    """Experts that get almost nothing or almost everything in the last interval.

    Shares are normalised per layer so the rule holds whether the trainer reports fractions of
    picks (rows sum to 1) or of tokens (rows sum to k).
    """
    alerts = []
    for layer, row in enumerate(load):
        total = sum(x for x in row if x is not None)
        if not row or total <= 0:
            continue
        fair = 1.0 / len(row)
        most = 1.0 / max(1, min(experts_per_token, len(row)))
        for expert, value in enumerate(row):
            share = (value or 0.0) / total
            if share < STARVED_FRACTION_OF_FAIR * fair:
                alerts.append(MoeAlert(layer, expert, "starved", share))
            elif len(row) > experts_per_token and share > DOMINANT_FRACTION_OF_MAX * most:
                alerts.append(MoeAlert(layer, expert, "dominant", share))
    return alerts


def _memory_sample(memory: dict[str, Any]) -> float | None:
    """The number the memory sparkline follows: device 0's allocated MiB, else process RSS."""
    gpus = memory.get("gpu") or []
    if gpus and gpus[0].get("allocated_mib") is not None:
        return float(gpus[0]["allocated_mib"])
    if memory.get("cpu_rss_mib") is not None:
        return float(memory["cpu_rss_mib"])
    return None


def trainer_log_tail(run_dir: Path, lines: int = 20) -> str | None:
    """The last lines of ``<run_dir>/trainer.log`` (where the CLI sends the trainer's output)."""
    path = Path(run_dir) / "trainer.log"
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 16384))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    tail = data.splitlines()[-lines:]
    return "\n".join(tail) if tail else None
