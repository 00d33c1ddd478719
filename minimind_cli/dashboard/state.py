"""What the dashboard knows about a run: events folded into plain Python state.

No Textual and no torch here, so the folding is testable on its own. Each raw event is parsed into
its typed form (``minimind.events.parse_event``) and folded into three parts: the curves
(``series.Series``: a typed point per step event), the events log (``loglines``: its lines and
their wording) and the lifecycle (``lifecycle.Lifecycle``: started, paused, how it ended, the
process). Numbers are taken as the trainer wrote them; the only arithmetic is the MoE alert and
spike rules (``signals.py``), the elapsed offsets of log lines (event time minus run start, so a
replay renders the same every time) and the ticking of elapsed time between events of a live run.
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

from minimind.events import (
    Checkpoint,
    Eval,
    Heartbeat,
    Info,
    Memory,
    Paused,
    Resumed,
    RunFailed,
    RunFinished,
    RunOutcome,
    RunStarted,
    RunStopped,
    Sample,
    Step,
    WarningEvent,
    parse_event,
)
from minimind.run_dir import CONFIG_FILE, TRAINER_LOG
from minimind_cli.dashboard import loglines as say
from minimind_cli.dashboard.lifecycle import Lifecycle
from minimind_cli.dashboard.loglines import LOG_LIMIT, LogBook, LogLine, Wording
from minimind_cli.dashboard.series import HISTORY_LIMIT, Series, StepPoint, ValPoint
from minimind_cli.dashboard.signals import MoeAlert, SpikeDetector, moe_alerts

__all__ = ["HISTORY_LIMIT", "LOG_LIMIT", "PANELS", "LogLine", "Notice", "RunState", "trainer_log_tail"]

# Panels a change can touch; the app redraws only these.
PANELS = ("header", "loss", "lr", "progress", "memory", "moe", "log", "failure", "samples", "notice")
SAMPLE_LIMIT = 2000  # sample events kept (a few prompts per eval)
NOTICE_STEPS = 10  # a notice stays up for this many step events after it was raised
T = TypeVar("T")


class Part(Generic[T]):
    """A ``RunState`` attribute that lives in one of its parts (``series``, ``life``, ``logbook``),
    under the same name or ``name``."""

    def __init__(self, part: str, name: str | None = None) -> None:
        self.part, self.name = part, name or ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = self.name or name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Part[T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> T: ...
    def __get__(self, obj: object | None, objtype: type | None = None) -> Part[T] | T:
        if obj is None:
            return self
        return getattr(getattr(obj, self.part), self.name)

    def __set__(self, obj: object, value: T) -> None:
        setattr(getattr(obj, self.part), self.name, value)


@dataclass
class Notice:
    """A highlighted one-line notice (a spike, an out-of-memory retry)."""

    step: int | None
    kind: str  # "loss_spike" | "grad_spike" | "oom_retry"
    text: str
    age: int = 0  # step events since it was raised


@dataclass
class RunState:
    series: Series = field(default_factory=Series)
    logbook: LogBook = field(default_factory=LogBook)
    life: Lifecycle = field(default_factory=Lifecycle)
    last_step: Step | None = None
    samples: list[Sample] = field(default_factory=list)  # in file order
    heartbeat: Heartbeat | None = None  # the newest heartbeat after the last step event
    notice: Notice | None = None
    alerts: list[Notice] = field(default_factory=list)
    last_time: float | None = None  # the newest event time seen
    # When (local clock) the newest step/heartbeat event was read, and how old it was then: the
    # elapsed time ticks from there (an age beyond a minute means an old recording: not counted).
    _read_at: float | None = None
    _age_when_read: float = 0.0
    last_eval: Eval | None = None
    last_checkpoint: Checkpoint | None = None
    run_dir: Path | None = None  # where the run lives, for the resume command in the log
    _loss_spikes: SpikeDetector = field(default_factory=SpikeDetector)
    _grad_spikes: SpikeDetector = field(default_factory=SpikeDetector)

    # ------------------------------------------------------------------ events
    def apply_all(self, events: list[dict[str, Any]]) -> set[str]:
        changed: set[str] = set()
        for event in events:
            changed |= self.apply(event)
        return changed

    def apply(self, raw: dict[str, Any]) -> set[str]:
        """Fold one raw event (as read from events.jsonl); returns the panels it changed."""
        handler = getattr(self, f"_on_{raw.get('type')}", None)
        if handler is None:
            return set()  # a type this version does not know (a newer trainer's)
        try:
            event = parse_event(raw)
            return handler(event)
        except (KeyError, TypeError, ValueError, IndexError):
            # A malformed event (older/newer schema) must not take the dashboard down.
            self._log(raw.get("time"), say.unreadable(raw.get("type")))
            return {"log"}
        finally:
            self._remember(raw)

    def _remember(self, raw: dict[str, Any]) -> None:
        at = raw.get("time")
        if isinstance(at, (int, float)):
            self.last_time = max(self.last_time or 0.0, float(at))
        self.life.remember(raw)

    def _on_run_started(self, e: RunStarted) -> set[str]:
        start_step = int(e.start_step or 0)
        if self.started is not None:
            # A resumed run appends to the same file: drop history past the checkpoint it resumed.
            self.series.rewind(start_step)
            self.samples = [s for s in self.samples if int(s.step or 0) <= start_step]
            self._loss_spikes, self._grad_spikes = SpikeDetector(), SpikeDetector()
            for point in self.series.points:
                self._loss_spikes.feed(point.loss)
                self._grad_spikes.feed(point.grad_norm)
        self.life.start(e)
        self.heartbeat = None
        self.notice = None
        for wording in say.started(e, start_step):
            self._log(e.time, wording)
        return set(PANELS)

    def _on_step(self, e: Step) -> set[str]:
        step = int(e.step)
        self.last_step = e
        self.heartbeat = None
        self._mark_read(e)
        self.series.points.append(StepPoint.of(e))
        sample = _memory_sample(e.memory)
        if sample is not None:
            self.series.add_memory(sample)
        changed = {"loss", "lr", "progress", "memory", "header"}
        seq_lens = self.series.seq_lens
        if e.seq_len is not None:
            seq_len = int(e.seq_len)
            if seq_lens and seq_lens[-1][1] != seq_len:
                self._log(e.time, say.seq_len_change(seq_lens[-1][1], seq_len, step))
                changed.add("log")
            if not seq_lens or seq_lens[-1][1] != seq_len:
                seq_lens.append((step, seq_len))
        if self.notice is not None:
            self.notice.age += 1
            if self.notice.age > NOTICE_STEPS:
                self.notice = None
                changed.add("notice")
        spike = self._loss_spikes.feed(e.loss)
        if spike is not None:
            self._alert(e, "loss_spike", say.loss_spike(step, spike))
            changed |= {"log", "notice"}
        spike = self._grad_spikes.feed(e.grad_norm)
        if spike is not None:
            self._alert(e, "grad_spike", say.grad_spike(step, spike))
            changed |= {"log", "notice"}
        if e.moe:
            changed.add("moe")
        return changed

    def _on_heartbeat(self, e: Heartbeat) -> set[str]:
        if self.last_step is not None and int(e.step) < int(self.last_step.step):
            return set()  # an old beat (a resumed run rewinds through run_started, not here)
        self.heartbeat = e
        self._mark_read(e)
        return {"progress"}

    def _mark_read(self, e: Step | Heartbeat) -> None:
        self._read_at = time.time()
        age = self._read_at - float(e.time or self._read_at)
        self._age_when_read = age if 0.0 <= age <= 60.0 else 0.0

    def _on_sample(self, e: Sample) -> set[str]:
        self.samples.append(dataclasses.replace(e, step=int(e.step)))  # no step: logged as unreadable
        del self.samples[:-SAMPLE_LIMIT]
        return {"samples"}

    def _alert(self, e: Step | WarningEvent, kind: str, text: str) -> None:
        notice = Notice(e.step, kind, text)
        self.notice = notice
        self.alerts.append(notice)
        self._log(e.time, Wording("alert", text))

    def _on_eval(self, e: Eval) -> set[str]:
        self.last_eval = e
        if e.val_loss is not None:
            self.series.val.append(ValPoint(int(e.step), float(e.val_loss)))
        self._log(e.time, say.evaluated(e))
        return {"loss", "log", "progress"}

    def _on_checkpoint(self, e: Checkpoint) -> set[str]:
        self.last_checkpoint = e
        self._log(e.time, say.checkpoint(e))
        return {"log", "progress", "failure"}

    def _on_info(self, e: Info) -> set[str]:
        self._log(e.time, say.info(e))
        return {"log"}

    def _on_warning(self, e: WarningEvent) -> set[str]:
        if e.kind == "oom_retry":
            self._alert(e, "oom_retry", say.oom_retry(e))
            return {"log", "notice", "header", "progress"}
        self._log(e.time, say.warning(e))
        return {"log", "header", "progress"}  # it may complete a version-1 stop

    def _on_paused(self, e: Paused) -> set[str]:
        self.life.paused = True
        self._log(e.time, say.paused(e))
        return {"log", "header", "progress"}

    def _on_resumed(self, e: Resumed) -> set[str]:
        self.life.paused = False
        self._log(e.time, say.resumed(e))
        return {"log", "header", "progress"}

    def _on_run_finished(self, e: RunFinished) -> set[str]:
        self.life.finished = e
        self.life.paused = False
        self._log(e.time, say.finished(e))
        return {"log", "header", "progress"}

    def _on_run_stopped(self, e: RunStopped) -> set[str]:
        self.life.stopped = e
        self.life.paused = False
        self._log(e.time, say.stopped(e, self.run_dir))
        return {"log", "header", "progress"}

    def _on_run_failed(self, e: RunFailed) -> set[str]:
        self.life.failed = e
        self._log(e.time, say.failed(e))
        return {"log", "header", "progress", "failure"}

    # ----------------------------------------------------- the process, seen by the app
    def trainer_exited(self, returncode: int | None, log_tail: str | None = None,
                       when: float | None = None) -> set[str]:
        """The trainer process is gone (``returncode`` None when only its pid vanished).

        ``when`` is the unix time it was seen to go; None for a replay (it was gone before the
        dashboard looked), where a line about it is stamped with the run's last event instead."""
        self.life.trainer_exited(returncode, log_tail)
        if not self.life.said_how_it_ended(returncode):
            # No end event says how it ended (or the exit contradicts it): say what we saw.
            at = when if when is not None else self.last_time
            wording = say.trainer_ended(returncode, self.finished is not None, self.status == "failed")
            self._log(at, wording, now=at is None)
        return {"log", "header", "progress", "failure"}

    def note(self, kind: str, text: str) -> set[str]:
        """A line from the dashboard itself (e.g. 'save requested')."""
        self._log(None, Wording(kind, text), now=True)
        return {"log"}

    def _log(self, at: Any, wording: Wording, now: bool = False) -> None:
        start = None
        if self.started is not None:
            start = self.started.time if self.started.time is not None or now else at
        self.logbook.add(wording, start, at, now)

    # ------------------------------------------------------------------ the parts, by name
    # (so readers and tests say ``state.finished``, ``state.losses``: each lives in one part)
    log = Part[list[LogLine]]("logbook", "lines")
    started = Part[RunStarted | None]("life")
    finished = Part[RunFinished | None]("life")
    failed = Part[RunFailed | None]("life")
    stopped = Part[RunStopped | None]("life")
    paused = Part[bool]("life")
    returncode = Part[int | None]("life")
    process_gone = Part[bool]("life")
    trainer_log_tail = Part[str | None]("life")
    stopping = Part[bool]("life")  # set by the app when it asked the trainer to stop
    outcome = Part[RunOutcome]("life")
    status = Part[str]("life")  # waiting | running | paused | stopping | finished | stopped | interrupted | failed
    ended = Part[bool]("life")
    steps = Part[list[int]]("series")
    losses = Part[list[float | None]]("series")
    loss_emas = Part[list[float | None]]("series")
    tokens = Part[list[float | None]]("series")
    elapsed = Part[list[float | None]]("series")
    grad_norms = Part[list[float | None]]("series")
    tokens_per_s = Part[list[float | None]]("series")
    val_steps = Part[list[int]]("series")
    val_losses = Part[list[float]]("series")
    seq_lens = Part[list[tuple[int, int]]]("series")
    memory_history = Part[list[float]]("series", "memory")

    # ------------------------------------------------------------------ views
    @property
    def config(self) -> dict[str, Any]:
        """The run's resolved config (plain data: sections model/data/train/run)."""
        return (self.started.config if self.started is not None else None) or {}

    @property
    def is_moe(self) -> bool:
        if self.last_step is not None and self.last_step.moe:
            return True
        return bool((self.config.get("model") or {}).get("use_moe"))

    @property
    def has_failure(self) -> bool:
        return self.status == "failed"

    @property
    def lr_schedule(self) -> list[tuple[int, float]]:
        raw = (self.started.lr_schedule if self.started is not None else None) or []
        return [(int(s), float(lr)) for s, lr in raw]

    def resume_hint(self) -> str | None:
        """How to go on after a failure: resume from the newest checkpoint, or start again."""
        if self.run_dir is None:
            return None
        run = shlex.quote(str(self.run_dir))
        failed = self.failed
        if failed is not None and failed.recorded_by != "cli" and (
                failed.exit_code == 2 or "out of memory" in str(failed.error)):
            return None  # the trainer refused its input or ran out of memory: a plain resume fails again
        if self.last_checkpoint is not None:
            return f"Resume from step {self.last_checkpoint.step}: minimind resume {run}"
        return f"No checkpoint was saved; start again with: minimind pretrain (see {run}/{CONFIG_FILE})"

    @property
    def completed_step(self) -> int | None:
        """The last completed step: from the newest step event or a heartbeat after it."""
        if self.last_step is not None:
            step = self.last_step.step
        else:
            step = self.started.start_step if self.started is not None else None
        later = [e.step for e in (self.heartbeat, self.stopped, self.finished) if e is not None]
        for other in later:  # a heartbeat after the last step event, or where the run ended
            if other is not None:
                step = max(int(step or 0), int(other))
        return step

    @property
    def total_steps(self) -> int | None:
        return ((self.heartbeat.total_steps if self.heartbeat is not None else None)
                or (self.last_step.total_steps if self.last_step is not None else None)
                or (self.started.total_steps if self.started is not None else None))

    def elapsed_at(self, now: float | None = None) -> float | None:
        """Seconds the run has trained: the newest figure the trainer wrote (the final one once
        it ended) plus, with ``now`` (local clock) and while it runs, the time since that event."""
        if self.finished is not None and self.finished.elapsed_s is not None:
            return float(self.finished.elapsed_s)
        latest = max((e for e in (self.last_step, self.heartbeat) if e and e.elapsed_s is not None),
                     key=lambda e: float(e.time or 0), default=None)
        if latest is None:
            return None
        elapsed = float(latest.elapsed_s)
        if now is not None and self.status == "running" and self._read_at is not None:
            elapsed += self._age_when_read + max(0.0, now - self._read_at)
        return elapsed

    def sample_steps(self) -> list[int]:
        return sorted({int(s.step) for s in self.samples})

    def samples_at(self, step: int) -> list[Sample]:
        """The continuations written at ``step``, one per prompt (the newest), in prompt order."""
        by_prompt: dict[str, Sample] = {}
        for s in self.samples:
            if int(s.step) == step:
                by_prompt[str(s.prompt)] = s
        return list(by_prompt.values())

    def x_of(self, axis: str, step: float) -> float | None:
        """Where ``step`` lies on the x-axis ``axis`` ("step" | "tokens" | "time"): read from the
        step events around it (linear in between; beyond the last one, tokens per step)."""
        return self.series.x_of(axis, step, self.started.tokens_per_step if self.started is not None else None)

    @property
    def phase_changes(self) -> list[tuple[int, int]]:
        """(step, new sequence length) of each curriculum phase change: as planned in
        run_started's seq_len_schedule (a phase starts after that many steps), else where the
        step events' seq_len changed."""
        planned = (self.started.seq_len_schedule if self.started is not None else None) or []
        if planned:
            return [(int(s), int(n)) for s, n in planned][1:]
        return list(self.series.seq_lens[1:])

    @property
    def experts_per_token(self) -> int:
        return int((self.config.get("model") or {}).get("num_experts_per_tok") or 1)

    def moe_alerts(self) -> list[MoeAlert]:
        moe = self.last_step.moe if self.last_step is not None else None
        if not moe:
            return []
        return moe_alerts(moe.load or [], self.experts_per_token)


def _memory_sample(memory: Memory | None) -> float | None:
    """The number the memory sparkline follows: device 0's allocated MiB, else process RSS."""
    if memory is None:
        return None
    gpus = memory.gpu or []
    if gpus and gpus[0].allocated_mib is not None:
        return float(gpus[0].allocated_mib)
    if memory.cpu_rss_mib is not None:
        return float(memory.cpu_rss_mib)
    return None


def trainer_log_tail(run_dir: Path, lines: int = 20) -> str | None:
    """The last lines of ``<run_dir>/trainer.log`` (where the CLI sends the trainer's output)."""
    path = Path(run_dir) / TRAINER_LOG
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
