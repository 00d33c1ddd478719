"""Ctrl-C in any command that is not following a trainer: one line, ``interrupted; nothing written``,
and exit 3, never typer's silent 130 (the code that says a checkpoint was saved)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minimind.errors import EXIT_ABORTED
from tests.cli.cli_helpers import run_main
from tests.cli.test_prepare_cli import varied_lines
from tests.conftest import REPO, default_sigint


def test_every_command_turns_ctrl_c_into_one_line_and_exit_3(capsys, monkeypatch):
    from minimind_cli import app as app_module

    names = [c.name for c in app_module.app.registered_commands]
    assert {"prepare", "pretrain", "resume", "inspect", "eval", "watch", "runs", "export"} <= set(names)
    assert all(hasattr(c.callback, "__wrapped__") for c in app_module.app.registered_commands)

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("minimind.evaluation.evaluate_weights", interrupted)
    proc = run_main(capsys, "eval", "whatever.pth")
    assert proc.returncode == EXIT_ABORTED
    assert proc.stderr.strip() == "interrupted; nothing written"


def _interrupt(args: list[str], cwd: Path, ready, timeout: float = 120) -> subprocess.CompletedProcess:
    """Start ``minimind ARGS``, wait until ``ready()``, send SIGINT (what Ctrl-C sends)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "minimind_cli", *args], cwd=cwd, env=env,
                            preexec_fn=default_sigint, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready(proc.pid):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "never got to the point to interrupt"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _torch_loaded(pid: int) -> bool:
    try:
        return "libtorch_cpu" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """About 8 MB of jsonl: preparing it takes seconds on 2 cores."""
    path = tmp_path_factory.mktemp("interrupt") / "big.jsonl"
    lines = varied_lines(2_000)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(3):
            f.writelines(lines)
    return path


@pytest.mark.slow  # a real pretrain that prepares a corpus, interrupted
def test_ctrl_c_while_pretrain_prepares_its_data_is_exit_3_with_one_line(tmp_path, corpus):
    out = tmp_path / "out"

    def preparing(_pid: int) -> bool:
        return any(".tmp-" in p.name for p in (out / "cache").glob("*")) if (out / "cache").is_dir() else False

    proc = _interrupt(["pretrain", "--profile", "tiny", "--no-tui", "--data", str(corpus), "--out", str(out)],
                      tmp_path, preparing)
    assert proc.returncode == EXIT_ABORTED, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "interrupted; nothing written"
    assert "Traceback" not in proc.stderr
    assert not (out / "runs").exists() and list((out / "cache").iterdir()) == []


@pytest.mark.slow  # a real eval, interrupted
def test_ctrl_c_in_eval_is_exit_3_with_one_line(tmp_path, corpus):
    from tests.checkpoint_fakes import tiny_model, write_run, write_tokenizer

    run = write_run(tmp_path / "run", tiny_model(seed=1), incomplete_step=None)
    tok = write_tokenizer(tmp_path / "tok")
    proc = _interrupt(["eval", str(run), "--data", str(corpus), "--tokenizer", str(tok), "--device", "cpu"],
                      tmp_path, _torch_loaded)
    assert proc.returncode == EXIT_ABORTED, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "interrupted; nothing written"
    assert "Traceback" not in proc.stderr and proc.stdout == ""
