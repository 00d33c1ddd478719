"""The control channel: how a dashboard (or any process) asks a running trainer to act.

A watcher writes ``<run_dir>/control.json`` atomically (temporary file + rename):

    {"seq": 7, "command": "save" | "pause" | "resume" | "stop" | "sample", "time": 1700000000.0}

``seq`` increases with every request. Rank 0 of the trainer polls the file once per optimizer
step (a stat call when nothing changed), acts on each new ``seq`` once, and broadcasts the command
to the other ranks. "stop" means: save a checkpoint, then exit 0 (resumable); "sample": write live
samples now (``sample`` events), also while paused. Stdlib only.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from minimind.files import atomic_write
from minimind.run_dir import CONTROL_FILE

COMMANDS = ("save", "pause", "resume", "stop", "sample")


def send_command(run_dir: str | os.PathLike, command: str) -> int:
    """Write a request for the trainer of ``run_dir``; returns its sequence number."""
    if command not in COMMANDS:
        raise ValueError(f"unknown control command {command!r} (one of {', '.join(COMMANDS)})")
    path = Path(run_dir) / CONTROL_FILE
    seq = 1
    try:
        seq = int(json.loads(path.read_text(encoding="utf-8")).get("seq", 0)) + 1
    except (OSError, ValueError, AttributeError):
        pass
    atomic_write(path, json.dumps({"seq": seq, "command": command, "time": time.time()}))
    return seq


class ControlReader:
    """Trainer side: ``poll()`` returns a new command or None. Requests written before the trainer
    started (an earlier run's leftovers) are ignored."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / CONTROL_FILE
        self._last_seq = self._read()[0] if self.path.exists() else 0
        self._last_mtime = self._mtime()

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return 0

    def _read(self) -> tuple[int, str | None]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return int(data.get("seq", 0)), data.get("command")
        except (OSError, ValueError, AttributeError):
            return self._last_seq if hasattr(self, "_last_seq") else 0, None

    def poll(self) -> str | None:
        mtime = self._mtime()
        if mtime == self._last_mtime:
            return None
        self._last_mtime = mtime
        seq, command = self._read()
        if seq <= self._last_seq or command not in COMMANDS:
            return None
        self._last_seq = seq
        return command
