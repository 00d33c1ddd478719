"""A thread that follows ``events.jsonl`` and the trainer process, posting messages to the app.

It wakes every ``interval`` seconds (at most two screen updates a second), reads only the bytes
appended since the last wake, and never touches the trainer: a watch is a read, a stop is a file.
"""

from __future__ import annotations

import subprocess
import threading
import time
from functools import partial
from pathlib import Path

from textual.message_pump import MessagePump

from minimind.events import EventTail, RunFailed, RunFinished, RunStarted, parse_event
from minimind.files import pid_alive
from minimind.run_dir import EVENTS_FILE
from minimind_cli.dashboard.messages import EventsRead, TrainerExited
from minimind_cli.dashboard.state import trainer_log_tail

POLL_INTERVAL_S = 0.5


class Tailer(threading.Thread):
    """Follows a run. With ``process`` it reports that process's exit; without, it follows the
    ``pid`` of the latest ``run_started`` event and stops once the run has ended."""

    def __init__(self, target: MessagePump, run_dir: Path, process: subprocess.Popen | None = None,
                 interval: float | None = None, key: int = 0):
        super().__init__(name="minimind-dashboard-tailer", daemon=True)
        self.target = target
        self.run_dir = Path(run_dir)
        self.process = process
        self.interval = POLL_INTERVAL_S if interval is None else interval  # read now, not at import
        self.key = key  # passed back in every message: which run of a comparison
        self._seen_alive = process is not None  # a process of ours was alive when we started
        self._stop_event = threading.Event()
        self._tail = EventTail(self.run_dir / EVENTS_FILE)
        self._pid: int | None = None
        self._ended_by_event = False

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        while True:
            self._read()
            if self.process is not None:
                returncode = self.process.poll()
                if returncode is not None:
                    self._finish(returncode)
                    return
            elif self._ended_by_event:
                return  # a replay, or a live run that has written its last event
            elif self._pid is not None:
                if not pid_alive(self._pid):
                    self._finish(None)
                    return
                self._seen_alive = True
            if self._stop_event.wait(self.interval):
                return

    def _read(self) -> None:
        events = list(self._tail.read_new())
        for event in map(partial(parse_event, lenient=True), events):
            if isinstance(event, RunStarted):
                self._pid = event.pid
                self._ended_by_event = False
            elif isinstance(event, (RunFinished, RunFailed)):
                self._ended_by_event = True
            # After run_stopped the trainer exits at once: its pid vanishing tells the app it is gone.
        if events:
            self.target.post_message(EventsRead(events, self.key))

    def _finish(self, returncode: int | None) -> None:
        self._read()  # the last lines a dying trainer managed to write
        when = time.time() if self._seen_alive else None  # None: gone before we looked (a replay)
        self.target.post_message(TrainerExited(returncode, trainer_log_tail(self.run_dir), when, self.key))
