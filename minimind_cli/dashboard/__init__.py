"""The live Textual dashboard. Reads only ``events.jsonl``; never imports torch.

``run_dashboard(run_dir, process)`` is what ``minimind pretrain`` / ``resume`` call after
starting the trainer, and what ``minimind watch`` calls with ``process=None``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from minimind.errors import EXIT_INTERRUPTED
from minimind.events import RunFailed, RunStarted, parse_event, read_events, run_outcome
from minimind.files import pid_alive
from minimind.run_dir import EVENTS_FILE, TRAINER_LOG

if TYPE_CHECKING:
    from minimind_cli.dashboard.app import DashboardApp, DashboardResult

__all__ = ["run_dashboard", "exit_code_for"]


def run_dashboard(run_dir: Path, process: subprocess.Popen | None = None) -> int:
    """Show the dashboard until the user quits; returns the CLI's exit code (see ``exit_code_for``)."""
    from minimind_cli.dashboard.app import DashboardApp

    run_dir = Path(run_dir)
    app = DashboardApp(run_dir, process)
    try:
        result = app.run()
    except KeyboardInterrupt:
        # A SIGINT that reached us outside the app's key handling: treat it like ctrl+c (stop).
        return _stop_after_crash(run_dir, process, "interrupted")
    except Exception as exc:  # noqa: BLE001 - a dashboard bug must never take training down
        return _dashboard_crashed(run_dir, process, f"{type(exc).__name__}: {exc}")
    if result is None:
        return _dashboard_crashed(run_dir, process, "the dashboard stopped unexpectedly")
    return exit_code_for(result, app, echo=_echo)


def exit_code_for(result: DashboardResult, app: DashboardApp, echo: Callable[[str], None] = print) -> int:
    """The CLI's exit code for how the dashboard ended, printing what the user needs to know.

    Detached: 0 (training goes on). Asked to stop but the trainer did not exit: 1. Otherwise how
    the run ended, by the rule every command uses (``minimind.events.run_outcome``), so a Stop
    gives 130 under ``pretrain``, ``resume`` and ``watch`` alike: 0 finished, 130 stopped after
    saving, the recorded code of a failure, 128+N killed by signal N, 1 gone without a word.
    Under ``watch`` a stop or a failure is also printed (``pretrain``/``resume`` report the end themselves).
    """
    run_dir, process, state = app.run_dir, app.process, app.state
    watch = watch_command(run_dir)
    if result.action == "detached":
        pid = process.pid if process is not None else (state.started.pid if state.started is not None else None)
        where = f" (pid {pid})" if pid else ""
        if state.paused:  # detaching does not continue a paused run: say so, and how to
            echo(f"Training is paused in the background{where}; it waits until you continue it: "
                 f"{watch}, then p")
        else:
            echo(f"Training continues in the background{where}. Watch it again with: {watch}")
        return 0
    if result.action == "stop_timeout":
        echo(f"The trainer did not exit within {app.stop_timeout:.0f} s of the stop request; it is "
             f"still running. Watch it with: {watch}")
        return 1
    if process is not None:
        returncode = result.returncode if result.returncode is not None else process.poll()
        outcome = run_outcome(read_events(run_dir / EVENTS_FILE), returncode, process_gone=returncode is not None)
        return outcome.exit_code
    outcome = run_outcome(read_events(run_dir / EVENTS_FILE), state.returncode, process_gone=state.process_gone)
    if outcome.status == "stopped":  # exit 130 says stopped; this says where, and how to go on
        echo(stopped_message(run_dir, outcome.event.get("step") if outcome.event is not None else None))
    if outcome.status == "failed":
        failed = parse_event(outcome.event, lenient=True) if outcome.event is not None else None
        error = (failed.error if isinstance(failed, RunFailed) else None) or outcome.message
        words = _status_words(outcome.exit_code) if outcome.event is not None else f"exit code {outcome.exit_code}"
        echo(f"Training failed ({words}){f': {error}' if error else ''}. Log: {run_dir / TRAINER_LOG}")
    return outcome.exit_code


def watch_command(run_dir: Path) -> str:
    return f"minimind watch {shlex.quote(str(run_dir))}"


def stopped_message(run_dir: Path, step: int | None) -> str:
    """What every command says after a run stopped on request (exit 130): where, and how to go on."""
    at = f" at step {step}" if step is not None else ""
    return f"stopped after saving a checkpoint{at}. Resume with:\n  minimind resume {shlex.quote(str(run_dir))}"


def _status_words(code: int) -> str:
    from minimind_cli.dashboard.format import exit_status

    return exit_status(code)


def _echo(text: str) -> None:
    print(text, file=sys.stderr if text.startswith("Training failed") else sys.stdout, flush=True)


def _dashboard_crashed(run_dir: Path, process: subprocess.Popen | None, why: str) -> int:
    """The app died; the trainer (in its own session) is untouched. Say how to get back to it."""
    alive = process is None or process.poll() is None
    print(f"The dashboard stopped ({why}).", file=sys.stderr)
    if alive:
        print(f"Training is not affected and continues in the background. Watch it with: "
              f"{watch_command(run_dir)}", file=sys.stderr)
    return 1


def _stop_after_crash(run_dir: Path, process: subprocess.Popen | None, why: str,
                      timeout: float = 120.0) -> int:
    """Ask a live trainer to save and stop, wait for it, and return how the run ended."""
    from minimind.control import send_command

    if process is not None and process.poll() is not None:
        return run_outcome(read_events(Path(run_dir) / EVENTS_FILE), process.returncode).exit_code
    if process is None and not run_is_live(run_dir):
        return EXIT_INTERRUPTED  # only the watching was interrupted
    print(f"Dashboard {why}: asking the trainer to save and stop (up to {timeout:.0f} s)...", file=sys.stderr)
    send_command(run_dir, "stop")
    returncode = None
    try:
        if process is not None:
            returncode = process.wait(timeout=timeout)
        elif not _wait_until_gone(run_dir, timeout):
            raise subprocess.TimeoutExpired("trainer", timeout)
    except subprocess.TimeoutExpired:
        print(f"The trainer is still running. Watch it with: {watch_command(run_dir)}", file=sys.stderr)
        return 1
    return run_outcome(read_events(Path(run_dir) / EVENTS_FILE), returncode).exit_code


def _wait_until_gone(run_dir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while run_is_live(run_dir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def run_is_live(run_dir: Path) -> bool:
    """True when the run's latest ``run_started`` pid is alive and no end event followed it."""
    events = read_events(Path(run_dir) / EVENTS_FILE)
    typed = [parse_event(e, lenient=True) for e in events]
    pid = next((e.pid for e in reversed(typed) if isinstance(e, RunStarted)), None)
    return bool(pid) and run_outcome(events, process_gone=False).status == "running" and pid_alive(int(pid))
