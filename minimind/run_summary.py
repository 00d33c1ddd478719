"""What a run directory says about its run: status, progress, losses and last checkpoint.

``summarize(RUN)`` reads only files: ``events.jsonl`` (the contract), the run lock, ``config.yaml``
and the ``meta.json`` of each checkpoint. It never loads torch, so ``minimind runs`` starts fast.

Status is one of ``running``, ``paused`` (running, held by the dashboard's pause), ``finished``, ``stopped``, ``failed`` or ``never started``.
"Running" is read from the live process, never guessed from how recent the events are: the
trainer's flock on ``RUN/trainer.lock`` (``runlock.live_owner``), or, for a run without a lock
file, the pid in its ``run_started`` event when that process runs ``minimind.train``. Everything else
is ``events.run_outcome``, the rule ``pretrain``, ``resume`` and ``watch`` use too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import yaml

from minimind.checkpoint import list_checkpoints
from minimind.events import (
    Checkpoint,
    Eval,
    Event,
    Heartbeat,
    Paused,
    Resumed,
    RunFailed,
    RunFinished,
    RunStarted,
    RunStopped,
    Sample,
    Step,
    parse_event,
    read_events,
    run_outcome,
)
from minimind.files import pid_alive
from minimind.run_dir import (
    CONFIG_FILE,
    EVENTS_FILE,
    LOCK_FILE,
    META_FILE,
    is_run_dir,
    runs_dir,
    runs_listing_dir,
)
from minimind.runlock import live_owner

STATUSES = ("running", "paused", "finished", "stopped", "failed", "never started")
# Events whose ``step`` is the run's position (info and warning notes may carry an older one).
_PROGRESS = (Step, Heartbeat, Eval, Sample, Checkpoint, Paused, Resumed, RunFinished, RunStopped, RunFailed)


def find_runs(root: str | os.PathLike) -> list[Path]:
    """The run directories of ``root``: ``root/runs/*`` when it is an output directory, ``root``
    itself when it is a run directory, else the directories of ``root`` that are runs."""
    root = Path(root)
    if is_run_dir(root) and not runs_dir(root).is_dir():
        return [root]
    listed = runs_listing_dir(root)
    if not listed.is_dir():
        return []
    found = [p for p in listed.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if listed == root:
        found = [p for p in found if is_run_dir(p)]
    return found


def summarize_all(root: str | os.PathLike, now: float | None = None) -> list[dict[str, Any]]:
    """``summarize`` of every run of ``root``, oldest first."""
    now = time.time() if now is None else now
    rows = [summarize(p, now) for p in find_runs(root)]
    return sorted(rows, key=lambda r: (r["started"] is None, r["started"] or 0.0, r["name"]))


def _paused_at(events: list[Event]) -> int | None:
    """The step a live run is paused at (its newest ``paused`` not followed by ``resumed`` in the
    current process's events), else None."""
    paused = None
    for e in events:
        if isinstance(e, (RunStarted, Resumed)):
            paused = None
        elif isinstance(e, Paused):
            paused = e.step
    return paused


def summarize(run_dir: str | os.PathLike, now: float | None = None,
              events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One run as plain JSON values (see the keys below; None where the run does not say).
    ``events``: the run's events when the caller has read them already."""
    run_dir = Path(run_dir)
    now = time.time() if now is None else now
    events = read_events(run_dir / EVENTS_FILE) if events is None else events
    typed: list[Event] = [parse_event(e, lenient=True) for e in events]  # type: ignore[misc]  # never None
    started = [e for e in typed if isinstance(e, RunStarted)]
    last_start = started[-1] if started else None
    alive, pid = _live_process(run_dir, last_start)
    if not events and not alive:
        status, message = "never started", "no events yet"
    else:
        outcome = run_outcome(events, process_gone=not alive)
        status, message = outcome.status, outcome.message
        if status == "running":
            message = ("starting" if not started else "training") + (f" (pid {pid})" if pid else "")
            paused_at = _paused_at(typed)
            if paused_at is not None:
                status = "paused"
                message = (f"paused at step {paused_at}" + (f" (pid {pid})" if pid else "")
                           + f": continue with `minimind watch {run_dir}`, then p")
    row: dict[str, Any] = {
        "name": run_dir.name, "path": str(run_dir.resolve()), "status": status, "message": message,
        "pid": pid if status in ("running", "paused") else None,
        "profile": (last_start.profile if last_start else None) or _config_profile(run_dir),
        "params_total": last_start.params_total if last_start else None,
        "params_active": last_start.params_active if last_start else None,
        "step": last_start.start_step if last_start else None,
        "total_steps": last_start.total_steps if last_start else None,
        "loss": None, "val_loss": None, "tokens_seen": None, "elapsed_s": None,
        "started": started[0].time if started else (typed[0].time if typed else None),
        "updated": typed[-1].time if typed else None,
    }
    elapsed_at = None
    for e in typed:
        if isinstance(e, RunStarted):  # a resume goes back to its checkpoint's step
            row["step"], row["total_steps"] = e.start_step, e.total_steps
        if isinstance(e, _PROGRESS) and isinstance(e.step, int):
            row["step"] = e.step
        if isinstance(e, (Step, Heartbeat)) and e.total_steps:
            row["total_steps"] = e.total_steps
        if isinstance(e, Step) and e.loss is not None:
            row["loss"] = e.loss
        if isinstance(e, RunFinished) and e.final_loss is not None:
            row["loss"] = e.final_loss
        if isinstance(e, Eval):
            row["val_loss"] = e.val_loss
        if isinstance(e, (Step, RunFinished)) and e.tokens_seen is not None:
            row["tokens_seen"] = e.tokens_seen
        if isinstance(e, (Step, Heartbeat, RunFinished)) and e.elapsed_s is not None:
            row["elapsed_s"], elapsed_at = float(e.elapsed_s), e.time
    if status == "running" and row["elapsed_s"] is not None and elapsed_at:
        row["elapsed_s"] += max(0.0, now - float(elapsed_at))  # the clock keeps running between events
    row["checkpoint"] = _last_checkpoint(run_dir, now)
    return row


def _live_process(run_dir: Path, run_started: RunStarted | None) -> tuple[bool, int | None]:
    """Whether a process trains ``run_dir`` now, and its pid when known."""
    owner = live_owner(run_dir)
    if owner is not None:
        return True, owner.pid
    if (run_dir / LOCK_FILE).exists():
        return False, None  # a lock file nobody holds: its trainer died
    pid = run_started.pid if run_started is not None else None  # runs of versions without the lock file
    if isinstance(pid, int) and pid > 0 and pid_alive(pid) and _is_trainer(pid):
        return True, pid
    return False, None


def _is_trainer(pid: int) -> bool:
    """Whether ``pid`` runs minimind's trainer (a reused pid does not); True where it cannot tell."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"minimind.train" in cmdline  # python -m minimind.train, alone or under torchrun


def _config_profile(run_dir: Path) -> str | None:
    try:
        data = yaml.safe_load((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
        return (data.get("run") or {}).get("profile")
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return None


def _last_checkpoint(run_dir: Path, now: float) -> dict[str, Any] | None:
    """The newest complete checkpoint (meta.json written, every file present) and its age."""
    rows = checkpoint_rows(run_dir, now)
    return rows[-1] if rows else None


def checkpoint_rows(run_dir: str | os.PathLike, now: float | None = None) -> list[dict[str, Any]]:
    """Every complete checkpoint of a run, oldest first: step, path, time saved and age in seconds."""
    now = time.time() if now is None else now
    rows = []
    for info in list_checkpoints(Path(run_dir)):
        saved = info.meta.get("time")
        if not isinstance(saved, (int, float)):
            saved = (info.path / META_FILE).stat().st_mtime
        rows.append({"step": info.step, "path": str(info.path), "time": saved, "age_s": max(0.0, now - saved)})
    return rows
