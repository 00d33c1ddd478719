"""A run's lifecycle as the dashboard sees it: started, paused, how it ended (by the events and
by ``minimind.events.run_outcome``), and the trainer process's fate as the app saw it."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from minimind.events import (
    END_TYPES,
    RunFailed,
    RunFinished,
    RunOutcome,
    RunStarted,
    RunStopped,
    refused_attempt,
    run_outcome,
)


@dataclass
class Lifecycle:
    started: RunStarted | None = None
    paused: bool = False
    finished: RunFinished | None = None
    failed: RunFailed | None = None
    stopped: RunStopped | None = None  # the run_stopped event (version 2)
    # Set by the app, not by events: the trainer process's fate.
    returncode: int | None = None
    process_gone: bool = False
    trainer_log_tail: str | None = None
    stopping: bool = False
    # What ``run_outcome`` needs of the raw events since the last run_started: the last end event
    # and the last two events other than info (a version-1 stop).
    _end: dict[str, Any] | None = None
    _last_two: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=2))

    def remember(self, raw: dict[str, Any]) -> None:
        """Every event the dashboard read, as written (``run_outcome`` reads raw events)."""
        kind = raw.get("type")
        if kind == "run_started":
            self._end = None
            self._last_two.clear()
        if kind in END_TYPES and not (self._end is not None and refused_attempt(raw)):
            self._end = raw
        if kind != "info":
            self._last_two.append(raw)

    def start(self, e: RunStarted) -> None:
        """A (re)start: what the previous process did no longer says how this one ends."""
        self.started = e
        self.finished = self.failed = self.stopped = None
        self.paused = False
        self.returncode = None
        self.process_gone = False

    def trainer_exited(self, returncode: int | None, log_tail: str | None) -> None:
        self.returncode = returncode
        self.process_gone = True
        self.trainer_log_tail = log_tail
        self.stopping = False

    @property
    def outcome(self) -> RunOutcome:
        """How the run ended, by the rule every command uses (``minimind.events.run_outcome``);
        status "running" while the process may still be alive and no end event was written."""
        events = [self.started.raw] if self.started is not None else []
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
    def ended(self) -> bool:
        return self.process_gone or self.finished is not None or self.failed is not None

    def said_how_it_ended(self, returncode: int | None) -> bool:
        """Whether an end event says how the process ended (and its exit does not contradict it)."""
        outcome = self.outcome
        return not (outcome.event is None or (outcome.status != "failed" and returncode not in (0, None)))
