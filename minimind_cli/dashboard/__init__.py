"""The live Textual dashboard. Reads only ``events.jsonl``; never imports torch.

``run_dashboard(run_dir, process)`` is what ``minimind pretrain`` / ``resume`` call after
starting the trainer, and what ``minimind watch`` calls with ``process=None``.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from minimind.events import EVENTS_FILE, read_events

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

    Attached: the trainer's exit code (0 finished, 1 failed, 130 interrupted after saving;
    killed by signal N -> 128+N). Detached: 0. Watch mode: 0, or the run's exit code if it failed.
    """
    run_dir, process, state = app.run_dir, app.process, app.state
    watch = watch_command(run_dir)
    if result.action == "detached":
        pid = process.pid if process is not None else (state.started or {}).get("pid")
        echo(f"Training continues in the background{f' (pid {pid})' if pid else ''}. "
             f"Watch it again with: {watch}")
        return 0
    if result.action == "stop_timeout":
        echo(f"The trainer did not exit within {app.stop_timeout:.0f} s of the stop request; it is "
             f"still running. Watch it with: {watch}")
        return 1
    if process is not None:
        # The caller (``minimind pretrain`` / ``resume``) reports how the trainer ended.
        code = result.returncode if result.returncode is not None else process.poll()
        return 0 if code is None else _signal_code(code)
    if state.failed is not None:
        code = int(state.failed.get("exit_code") or 1)
    else:
        code = 1 if state.status == "failed" else 0
    if code != 0:
        error = (state.failed or {}).get("error")
        echo(f"Training failed ({_status_words(code)}){f': {error}' if error else ''}. "
             f"Log: {run_dir / 'trainer.log'}")
    return code


def watch_command(run_dir: Path) -> str:
    return f"minimind watch {shlex.quote(str(run_dir))}"


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
    from minimind.control import send_command

    if process is None or process.poll() is not None:
        return 130 if process is None else _signal_code(process.returncode)
    print(f"Dashboard {why}: asking the trainer to save and stop (up to {timeout:.0f} s)...", file=sys.stderr)
    send_command(run_dir, "stop")
    try:
        return _signal_code(process.wait(timeout=timeout))
    except subprocess.TimeoutExpired:
        print(f"The trainer is still running. Watch it with: {watch_command(run_dir)}", file=sys.stderr)
        return 1


def _signal_code(code: int) -> int:
    return 128 - code if code < 0 else code


def run_is_live(run_dir: Path) -> bool:
    """True when the run's latest ``run_started`` pid is alive and the run has not ended."""
    from minimind_cli.dashboard.tailer import pid_alive

    pid = None
    ended = False
    for event in read_events(Path(run_dir) / EVENTS_FILE):
        if event.get("type") == "run_started":
            pid, ended = event.get("pid"), False
        elif event.get("type") in ("run_finished", "run_failed"):
            ended = True
    return bool(pid) and not ended and pid_alive(int(pid))


