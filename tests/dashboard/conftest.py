import asyncio
import inspect
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FAKE_TRAINER = Path(__file__).resolve().parent / "fake_trainer.py"


def copy_run(tmp_path: Path, name: str, lines: int | None = None) -> Path:
    """A run directory holding the recorded ``events.jsonl`` of ``name`` (its first ``lines``)."""
    run_dir = tmp_path / name
    run_dir.mkdir()
    if lines is None:
        shutil.copy(FIXTURES / f"{name}.jsonl", run_dir / "events.jsonl")
    else:
        text = (FIXTURES / f"{name}.jsonl").read_text().splitlines(keepends=True)
        (run_dir / "events.jsonl").write_text("".join(text[:lines]))
    return run_dir


def fixture_lines(name: str) -> list[str]:
    return (FIXTURES / f"{name}.jsonl").read_text().splitlines(keepends=True)


async def wait_for(pilot, predicate, timeout: float = 10.0) -> None:
    """Let the app run until ``predicate()`` holds (the tailer wakes every 0.5 s)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(0.05)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run ``async def`` tests on a fresh asyncio loop (no async plugin needed for Pilot tests)."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True


@pytest.fixture
def fake_trainer(tmp_path):
    """Start ``fake_trainer.py`` like the CLI starts the trainer (own session, output to trainer.log)."""
    procs: list[subprocess.Popen] = []

    def start(run_dir: Path, name: str, lines: int | None = None) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(run_dir / "trainer.log", "ab") as log:
            argv = [sys.executable, str(FAKE_TRAINER), str(run_dir), str(FIXTURES / f"{name}.jsonl")]
            proc = subprocess.Popen(argv + ([str(lines)] if lines else []), stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
