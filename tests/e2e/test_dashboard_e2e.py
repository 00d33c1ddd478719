"""The dashboard on the real trainer, driven headless through Textual's Pilot: `s` saves, `q` ->
stop ends the run cleanly and resumably, and a SIGKILLed trainer shows as a failure."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from minimind.events import read_events
from minimind_cli.dashboard import exit_code_for
from minimind_cli.dashboard.app import DashboardApp, DashboardResult
from minimind_cli.dashboard.screens import QuitScreen
from minimind_cli.dashboard.widgets import FailurePanel
from tests.conftest import run_cli
from tests.dashboard.conftest import wait_for
from tests.e2e.conftest import make_run

try:
    from minimind.checkpoint import find_checkpoint
    from minimind_cli.launch import LaunchOptions, start_trainer

    trainer_available = True
except ImportError:  # the trainer lands separately from the dashboard
    trainer_available = False

pytestmark = pytest.mark.skipif(not trainer_available, reason="needs minimind.train")


def start(run_dir: Path, step_sleep: str = "0.3"):
    """The trainer as `minimind pretrain` starts it: own session, output in trainer.log."""
    return start_trainer(run_dir, LaunchOptions(extra_env={"MINIMIND_FAULT_STEP_SLEEP": step_sleep,
                                                           "OMP_NUM_THREADS": "1"}))


def test_save_then_quit_stop_ends_cleanly_and_resumes(tmp_path, small_dataset):
    run_dir = make_run(tmp_path, small_dataset, "dash")
    proc = start(run_dir)
    app = DashboardApp(run_dir, proc)

    async def drive():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.state.last_step is not None, timeout=120)
            await pilot.press("s")
            await wait_for(pilot, lambda: app.state.last_checkpoint is not None and app.state.last_checkpoint.reason == "request", timeout=60)
            saved = Path(app.state.last_checkpoint.path)
            assert saved.is_dir() and any(saved.iterdir())
            await pilot.press("q")
            assert isinstance(app.screen, QuitScreen)
            await pilot.press("s")  # stop: save, then end
            await wait_for(pilot, lambda: app.return_value is not None, timeout=60)

    try:
        asyncio.run(drive())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert app.return_value == DashboardResult("ended", 0)  # the trainer exits 0 on a clean stop
    assert exit_code_for(app.return_value, app) == 130  # run_outcome: stopped after saving
    events = read_events(run_dir / "events.jsonl")
    reasons = [e["reason"] for e in events if e["type"] == "checkpoint"]
    assert reasons.count("request") == 2  # `s`, then the save before stopping
    assert not any(e["type"] == "run_failed" for e in events)
    stopped_at = [e for e in events if e["type"] == "checkpoint"][-1]["step"]
    assert find_checkpoint(run_dir).step == stopped_at < 16
    resumed = run_cli("resume", str(run_dir), "--no-tui", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"from step {stopped_at}" in resumed.stdout and "done: 16 steps" in resumed.stdout


def test_sigkilled_trainer_shows_failure_and_exits_nonzero(tmp_path, small_dataset):
    run_dir = make_run(tmp_path, small_dataset, "killed")
    proc = start(run_dir)
    app = DashboardApp(run_dir, proc)

    async def drive():
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.state.last_step is not None, timeout=120)
            os.killpg(proc.pid, signal.SIGKILL)
            await wait_for(pilot, lambda: app.query_one(FailurePanel).display, timeout=5)
            await pilot.pause()
            text = str(app.query_one(FailurePanel).content)
            assert "killed by SIGKILL (exit code 137)" in text
            await pilot.press("q")

    try:
        asyncio.run(drive())
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert app.return_value == DashboardResult("ended", -9)
    assert exit_code_for(app.return_value, app) == 137


def test_watch_and_pretrain_agree_on_a_sigkilled_trainer(tmp_path, small_dataset):
    """`pretrain` sees the trainer's exit status (SIGKILL: 137) and records it in the events, so the
    dashboard of `watch` (a replay: it never saw the process) and `runs` say the same."""
    import subprocess
    import sys

    from minimind.run_summary import summarize
    from tests.cli.test_pretrain_cli import ARGS
    from tests.conftest import REPO
    from tests.e2e.conftest import wait_for as wait_until

    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "MINIMIND_FAULT_STEP_SLEEP": "0.3", "NO_COLOR": "1"}
    cli = subprocess.Popen([sys.executable, "-m", "minimind_cli", "pretrain", *ARGS, "--data", str(small_dataset),
                            "--out", str(out), "--run", "r"], env=env, cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = out / "runs" / "r"
    try:
        started = wait_until(lambda: next((e for e in read_events(run_dir / "events.jsonl")
                                           if e["type"] == "step"), None) if run_dir.is_dir() else None)
        assert started
        pid = next(e["pid"] for e in read_events(run_dir / "events.jsonl") if e["type"] == "run_started")
        os.kill(pid, signal.SIGKILL)
        _, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 137, err
    assert "killed by SIGKILL" in err
    end = read_events(run_dir / "events.jsonl")[-1]
    assert end["type"] == "run_failed" and end["exit_code"] == 137 and end["recorded_by"] == "cli"

    app = DashboardApp(run_dir)  # what `minimind watch RUN` opens
    echoed: list[str] = []

    async def drive():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.query_one(FailurePanel).display, timeout=30)
            await pilot.pause()
            text = str(app.query_one(FailurePanel).content)
            assert "killed by SIGKILL" in text and "exit code unknown" not in text
            await pilot.press("q")
            await wait_for(pilot, lambda: app.return_value is not None, timeout=10)

    asyncio.run(drive())
    assert exit_code_for(app.return_value, app, echo=echoed.append) == 137
    assert "exit code 137" in echoed[0] and "killed by SIGKILL" in echoed[0]
    row = summarize(run_dir)
    assert row["status"] == "failed" and "killed by SIGKILL" in row["message"]


def test_detach_while_paused_says_paused_and_runs_shows_paused(tmp_path, small_dataset):
    from minimind.run_summary import summarize

    run_dir = make_run(tmp_path, small_dataset, "paused")
    proc = start(run_dir)
    app = DashboardApp(run_dir, proc)

    async def drive():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.state.last_step is not None, timeout=120)
            await pilot.press("p")
            await wait_for(pilot, lambda: app.state.paused, timeout=60)
            await pilot.press("q")
            assert isinstance(app.screen, QuitScreen)
            await pilot.press("d")
            await wait_for(pilot, lambda: app.return_value is not None, timeout=10)

    try:
        asyncio.run(drive())
        echoed: list[str] = []
        assert exit_code_for(app.return_value, app, echo=echoed.append) == 0
        assert "paused" in echoed[0] and "continues" not in echoed[0] and f"minimind watch {run_dir}" in echoed[0]
        row = summarize(run_dir)
        assert row["status"] == "paused" and row["pid"] == proc.pid and "then p" in row["message"]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
