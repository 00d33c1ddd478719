"""What the dashboard knows about a run: events folded into plain Python state.

No Textual and no torch here, so the folding is testable on its own. Numbers are taken as the
trainer wrote them; the only arithmetic is the MoE alert and spike rules (``signals.py``), the elapsed offsets of log lines (event time minus run start, so a replay
renders the same every time) and the ticking of elapsed time between events of a live run.
"""

from __future__ import annotations

import bisect
import shlex
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minimind.events import END_TYPES, RunOutcome, refused_attempt, run_outcome
from minimind.run_dir import CONFIG_FILE, TRAINER_LOG, run_of
from minimind_cli.dashboard import format as fmt
from minimind_cli.dashboard.signals import MoeAlert, SpikeDetector, moe_alerts

# Panels a change can touch; the app redraws only these.
PANELS = ("header", "loss", "lr", "progress", "memory", "moe", "log", "failure", "samples", "notice")
LOG_LIMIT = 500
HISTORY_LIMIT = 240  # memory sparkline points
SAMPLE_LIMIT = 2000  # sample events kept (a few prompts per eval)
NOTICE_STEPS = 10  # a notice stays up for this many step events after it was raised


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


@dataclass
class Notice:
    """A highlighted one-line notice (a spike, an out-of-memory retry)."""

    step: int | None
    kind: str  # "loss_spike" | "grad_spike" | "oom_retry"
    text: str
    age: int = 0  # step events since it was raised


@dataclass
class RunState:
    started: dict[str, Any] | None = None
    last_step: dict[str, Any] | None = None
    steps: list[int] = field(default_factory=list)
    losses: list[float | None] = field(default_factory=list)
    loss_emas: list[float | None] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_losses: list[float] = field(default_factory=list)
    tokens: list[float | None] = field(default_factory=list)  # tokens_seen per step event
    elapsed: list[float | None] = field(default_factory=list)  # elapsed_s per step event
    grad_norms: list[float | None] = field(default_factory=list)
    tokens_per_s: list[float | None] = field(default_factory=list)
    seq_lens: list[tuple[int, int]] = field(default_factory=list)  # (step, seq_len) where it changed
    samples: list[dict[str, Any]] = field(default_factory=list)  # sample events, in file order
    heartbeat: dict[str, Any] | None = None  # the newest heartbeat after the last step event
    notice: Notice | None = None
    alerts: list[Notice] = field(default_factory=list)
    last_time: float | None = None  # the newest event time seen
    # When (local clock) the newest step/heartbeat event was read, and how old it was then: the
    # elapsed time ticks from there (an age beyond a minute means an old recording: not counted).
    _read_at: float | None = None
    _age_when_read: float = 0.0
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
    _loss_spikes: SpikeDetector = field(default_factory=SpikeDetector)
    _grad_spikes: SpikeDetector = field(default_factory=SpikeDetector)

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
        if isinstance(event.get("time"), (int, float)):
            self.last_time = max(self.last_time or 0.0, float(event["time"]))
        if kind == "run_started":
            self._end = None
            self._last_two.clear()
        if kind in END_TYPES and not (self._end is not None and refused_attempt(event)):
            self._end = event
        if kind != "info":
            self._last_two.append(event)

    def _on_run_started(self, e: dict[str, Any]) -> set[str]:
        start_step = int(e.get("start_step") or 0)
        if self.started is not None:
            # A resumed run appends to the same file: drop history past the checkpoint it resumed.
            keep = sum(1 for s in self.steps if s <= start_step)
            del self.steps[keep:], self.losses[keep:], self.loss_emas[keep:]
            del self.tokens[keep:], self.elapsed[keep:], self.grad_norms[keep:], self.tokens_per_s[keep:]
            keep_val = sum(1 for s in self.val_steps if s <= start_step)
            del self.val_steps[keep_val:], self.val_losses[keep_val:]
            self.samples = [s for s in self.samples if int(s.get("step") or 0) <= start_step]
            self.seq_lens = [c for c in self.seq_lens if c[0] <= start_step]
            self._loss_spikes, self._grad_spikes = SpikeDetector(), SpikeDetector()
            for loss, grad in zip(self.losses, self.grad_norms, strict=True):
                self._loss_spikes.feed(loss)
                self._grad_spikes.feed(grad)
        self.started = e
        self.heartbeat = None
        self.notice = None
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
        auto = e.get("batch_size_auto")
        if isinstance(auto, dict):
            text = (f"batch size auto: micro-batch {auto.get('chosen')} x {auto.get('accumulation_steps')} "
                    f"accumulation = {auto.get('global_batch')} per step")
            if auto.get("requested_global_batch") not in (None, auto.get("global_batch")):
                text += f" (asked for {auto['requested_global_batch']})"
            self._log(e, "info", text + (f"; {auto['note']}" if auto.get("note") else ""))
        return set(PANELS)

    def _on_step(self, e: dict[str, Any]) -> set[str]:
        step = int(e["step"])
        self.last_step = e
        self.heartbeat = None
        self._mark_read(e)
        self.steps.append(step)
        self.losses.append(e.get("loss"))
        self.loss_emas.append(e.get("loss_ema"))
        self.tokens.append(e.get("tokens_seen"))
        self.elapsed.append(e.get("elapsed_s"))
        self.grad_norms.append(e.get("grad_norm"))
        self.tokens_per_s.append(e.get("tokens_per_s"))
        memory = e.get("memory") or {}
        sample = _memory_sample(memory)
        if sample is not None:
            self.memory_history.append(sample)
            del self.memory_history[:-HISTORY_LIMIT]
        changed = {"loss", "lr", "progress", "memory", "header"}
        if e.get("seq_len") is not None:
            seq_len = int(e["seq_len"])
            if self.seq_lens and self.seq_lens[-1][1] != seq_len:
                self._log(e, "info", f"sequence length {self.seq_lens[-1][1]} -> {seq_len} at step {step}")
                changed.add("log")
            if not self.seq_lens or self.seq_lens[-1][1] != seq_len:
                self.seq_lens.append((step, seq_len))
        if self.notice is not None:
            self.notice.age += 1
            if self.notice.age > NOTICE_STEPS:
                self.notice = None
                changed.add("notice")
        spike = self._loss_spikes.feed(e.get("loss"))
        if spike is not None:
            self._alert(e, "loss_spike", f"loss spike at step {step}: {fmt.fixed(spike.value)}, "
                                         f"{spike.sigmas:.1f} std above its average {fmt.fixed(spike.baseline)}")
            changed |= {"log", "notice"}
        spike = self._grad_spikes.feed(e.get("grad_norm"))
        if spike is not None:
            self._alert(e, "grad_spike", f"grad-norm spike at step {step}: {fmt.number(spike.value, 3)}, "
                                         f"{spike.sigmas:.1f} std above its average "
                                         f"{fmt.number(spike.baseline, 3)}")
            changed |= {"log", "notice"}
        if e.get("moe"):
            changed.add("moe")
        return changed

    def _on_heartbeat(self, e: dict[str, Any]) -> set[str]:
        if self.last_step is not None and int(e["step"]) < int(self.last_step["step"]):
            return set()  # an old beat (a resumed run rewinds through run_started, not here)
        self.heartbeat = e
        self._mark_read(e)
        return {"progress"}

    def _mark_read(self, e: dict[str, Any]) -> None:
        self._read_at = time.time()
        age = self._read_at - float(e.get("time") or self._read_at)
        self._age_when_read = age if 0.0 <= age <= 60.0 else 0.0

    def _on_sample(self, e: dict[str, Any]) -> set[str]:
        self.samples.append({**e, "step": int(e["step"])})  # no step: logged as unreadable
        del self.samples[:-SAMPLE_LIMIT]
        return {"samples"}

    def _alert(self, e: dict[str, Any] | None, kind: str, text: str) -> None:
        notice = Notice(None if e is None else e.get("step"), kind, text)
        self.notice = notice
        self.alerts.append(notice)
        self._log(e, "alert", text)

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
                                   f"{fmt.fixed(e.get('seconds'), 1)} s): ", path=str(e["path"]))
        return {"log", "progress", "failure"}

    def _on_info(self, e: dict[str, Any]) -> set[str]:
        where = f" (step {e['step']})" if e.get("step") is not None else ""
        self._log(e, "info", f"{e['message']}{where}")
        return {"log"}

    def _on_warning(self, e: dict[str, Any]) -> set[str]:
        where = f" (step {e['step']})" if e.get("step") is not None else ""
        if e.get("kind") == "oom_retry":
            split = f"micro-batch {e.get('batch_size')} x {e.get('accumulation_steps')} accumulation"
            peak = f", peak {fmt.mib(e['peak_mib'])}" if e.get("peak_mib") is not None else ""
            self._alert(e, "oom_retry", f"out of memory at step {e.get('step')}: retrying with {split}{peak}")
            return {"log", "notice", "header", "progress"}
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
        text = ", ".join(parts)
        if e.get("weights_path"):
            self._log(e, "info", text + ", weights ", path=str(e["weights_path"]))
        else:
            self._log(e, "info", text)
        return {"log", "header", "progress"}

    def _on_run_stopped(self, e: dict[str, Any]) -> set[str]:
        self.stopped = e
        self.paused = False
        run_dir = self.run_dir
        if run_dir is None and e.get("checkpoint"):  # RUN/checkpoints/step_N
            run_dir = run_of(str(e["checkpoint"]))
        resume = f"minimind resume {shlex.quote(str(run_dir))}" if run_dir is not None else "minimind resume RUN"
        self._log(e, "control", f"stopped at step {e['step']} ({e.get('reason')}) after saving ",
                  path=str(e.get("checkpoint")), after=f"; resume with: {resume}")
        return {"log", "header", "progress"}

    def _on_run_failed(self, e: dict[str, Any]) -> set[str]:
        self.failed = e
        self._log(e, "error", f"run failed: {e['error']}")
        return {"log", "header", "progress", "failure"}

    # ----------------------------------------------------- the process, seen by the app
    def trainer_exited(self, returncode: int | None, log_tail: str | None = None,
                       when: float | None = None) -> set[str]:
        """The trainer process is gone (``returncode`` None when only its pid vanished).

        ``when`` is the unix time it was seen to go; None for a replay (it was gone before the
        dashboard looked), where a line about it is stamped with the run's last event instead."""
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
            at = when if when is not None else self.last_time
            self._log({"time": at} if at is not None else None, "error" if self.status == "failed" else "info",
                      text)
        return {"log", "header", "progress", "failure"}

    def note(self, kind: str, text: str) -> set[str]:
        """A line from the dashboard itself (e.g. 'save requested')."""
        self._log(None, kind, text)
        return {"log"}

    def _log(self, event: dict[str, Any] | None, kind: str, text: str, path: str = "", after: str = "") -> None:
        offset = None
        if event is not None and self.started is not None and event.get("time") is not None:
            offset = float(event["time"]) - float(self.started.get("time", event["time"]))
        elif event is None and self.started is not None and self.started.get("time") is not None:
            offset = max(0.0, time.time() - float(self.started["time"]))  # a live note: now
        self.log.append(LogLine(offset, kind, text, path, after))
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

    def resume_hint(self) -> str | None:
        """How to go on after a failure: resume from the newest checkpoint, or start again."""
        if self.run_dir is None:
            return None
        run = shlex.quote(str(self.run_dir))
        failed = self.failed or {}
        if failed.get("recorded_by") != "cli" and (
                failed.get("exit_code") == 2 or "out of memory" in str(failed.get("error", ""))):
            return None  # the trainer refused its input or ran out of memory: a plain resume fails again
        if self.last_checkpoint is not None:
            return f"Resume from step {self.last_checkpoint.get('step')}: minimind resume {run}"
        return f"No checkpoint was saved; start again with: minimind pretrain (see {run}/{CONFIG_FILE})"

    @property
    def completed_step(self) -> int | None:
        """The last completed step: from the newest step event or a heartbeat after it."""
        step = (self.last_step or {}).get("step", (self.started or {}).get("start_step"))
        later = [e.get("step") for e in (self.heartbeat, self.stopped, self.finished) if e is not None]
        for other in later:  # a heartbeat after the last step event, or where the run ended
            if other is not None:
                step = max(int(step or 0), int(other))
        return step

    @property
    def total_steps(self) -> int | None:
        return ((self.heartbeat or {}).get("total_steps") or (self.last_step or {}).get("total_steps")
                or (self.started or {}).get("total_steps"))

    def elapsed_at(self, now: float | None = None) -> float | None:
        """Seconds the run has trained: the newest figure the trainer wrote (the final one once
        it ended) plus, with ``now`` (local clock) and while it runs, the time since that event."""
        if self.finished is not None and self.finished.get("elapsed_s") is not None:
            return float(self.finished["elapsed_s"])
        latest = max((e for e in (self.last_step, self.heartbeat) if e and e.get("elapsed_s") is not None),
                     key=lambda e: float(e.get("time") or 0), default=None)
        if latest is None:
            return None
        elapsed = float(latest["elapsed_s"])
        if now is not None and self.status == "running" and self._read_at is not None:
            elapsed += self._age_when_read + max(0.0, now - self._read_at)
        return elapsed

    def sample_steps(self) -> list[int]:
        return sorted({int(s["step"]) for s in self.samples})

    def samples_at(self, step: int) -> list[dict[str, Any]]:
        """The continuations written at ``step``, one per prompt (the newest), in prompt order."""
        by_prompt: dict[str, dict[str, Any]] = {}
        for s in self.samples:
            if int(s["step"]) == step:
                by_prompt[str(s.get("prompt", ""))] = s
        return list(by_prompt.values())

    def x_of(self, axis: str, step: float) -> float | None:
        """Where ``step`` lies on the x-axis ``axis`` ("step" | "tokens" | "time"): read from the
        step events around it (linear in between; beyond the last one, tokens per step)."""
        if axis == "step":
            return float(step)
        values = self.tokens if axis == "tokens" else self.elapsed
        pairs = [(0, 0.0)] + [(s, float(v)) for s, v in zip(self.steps, values, strict=True)
                              if v is not None and s > 0]
        keys = [p[0] for p in pairs]
        i = bisect.bisect_left(keys, step)
        if i < len(pairs) and keys[i] == step:
            return pairs[i][1]
        if i < len(pairs):
            (s0, v0), (s1, v1) = pairs[i - 1], pairs[i]
            return v0 + (v1 - v0) * (step - s0) / (s1 - s0)
        per_step = (self.started or {}).get("tokens_per_step")
        if axis == "tokens" and per_step:
            return pairs[-1][1] + (step - keys[-1]) * float(per_step)
        return None

    @property
    def phase_changes(self) -> list[tuple[int, int]]:
        """(step, new sequence length) of each curriculum phase change: as planned in
        run_started's seq_len_schedule (a phase starts after that many steps), else where the
        step events' seq_len changed."""
        planned = (self.started or {}).get("seq_len_schedule") or []
        if planned:
            return [(int(s), int(n)) for s, n in planned][1:]
        return list(self.seq_lens[1:])

    @property
    def experts_per_token(self) -> int:
        config = (self.started or {}).get("config") or {}
        return int((config.get("model") or {}).get("num_experts_per_tok") or 1)

    def moe_alerts(self) -> list[MoeAlert]:
        moe = (self.last_step or {}).get("moe")
        if not moe:
            return []
        return moe_alerts(moe.get("load") or [], self.experts_per_token)


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
