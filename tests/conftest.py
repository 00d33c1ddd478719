import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def default_sigint() -> None:
    """``preexec_fn`` for a child that a test interrupts with SIGINT: a shell that starts jobs in the
    background (CI runners can) leaves SIGINT ignored, the child inherits that, and Python then never
    raises KeyboardInterrupt. Ctrl-C in a terminal is what the tests mean, so restore the default."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, cwd: str | os.PathLike | None = None, timeout: float = 600,
            env: dict | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m minimind_cli ARGS`` as a real subprocess (the way a user runs it)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                "COLUMNS": "120", "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "minimind_cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=input)


@pytest.fixture(autouse=True)
def _fast_dashboard_polling(monkeypatch):
    """A dashboard built in a test follows its run every 0.05 s instead of every 0.5 s: the same code,
    ten times the pace, so tests wait for events a tenth as long."""
    from minimind_cli.dashboard import tailer

    monkeypatch.setattr(tailer, "POLL_INTERVAL_S", 0.05)


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """A small real dataset directory (patterned token documents, 256-token vocabulary)."""
    from tests.helpers import random_docs, write_dataset

    return write_dataset(tmp_path_factory.mktemp("data") / "ds", random_docs(1500, seed=0),
                         random_docs(60, seed=1))


def pytest_collection_modifyitems(items):
    """Everything under tests/e2e runs real trainer processes: slow by definition."""
    for item in items:
        if "/tests/e2e/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def text_dataset(tmp_path_factory) -> Path:
    """A small real text dataset with its own tokenizer (320 tokens), so the trainer can write text."""
    from tests.helpers import story_texts, write_text_dataset

    return write_text_dataset(tmp_path_factory.mktemp("text") / "ds", story_texts(600), story_texts(30, seed=1))
