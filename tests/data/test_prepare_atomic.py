"""An interrupted prepare leaves no half dataset: Ctrl-C/SIGTERM clean up, SIGKILL leftovers are removed
by the next run, and worker processes never outlive their parent."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from minimind.data.prepare import prepare_dataset
from minimind.data.tokenizer import train_tokenizer
from tests.conftest import REPO, default_sigint
from tests.data.test_prepare import topics_text, write_jsonl

SCRIPT = """
import sys
from minimind.data.prepare import prepare_dataset
prepare_dataset([sys.argv[1]], sys.argv[2], tokenizer=sys.argv[3], workers=2, chunk_bytes=128 << 10)
print("finished")
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("atomic")
    texts = topics_text(500_000)
    tok = train_tokenizer(iter(texts), 512, root / "tok")
    src = root / "big.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for _ in range(48):  # about 24 MB: far more work than the signal needs to arrive, even on a loaded machine
            f.writelines(json.dumps({"text": t}) + "\n" for t in texts)
    return src, tok


def start_and_wait_for_output(src: Path, out: Path, tok: Path) -> tuple[subprocess.Popen, list[psutil.Process]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(src), str(out), str(tok)], env=env,
                            preexec_fn=default_sigint,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tmp = list(out.parent.glob(out.name + ".tmp-*"))
        if tmp and (tmp[0] / "tokens.bin").is_file() and (tmp[0] / "tokens.bin").stat().st_size > 0:
            children = psutil.Process(proc.pid).children(recursive=True)
            if len(children) >= 2:
                return proc, children
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    pytest.fail("prepare never started writing")


def wait_gone(processes: list[psutil.Process], timeout: float = 10) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    return alive


def ended_leaving_nothing(proc: subprocess.Popen, out_dir: Path, children: list[psutil.Process]) -> str:
    """Wait for a prepare that was made to fail; check that it failed, wrote nothing (no dataset, no
    temporary directory beside it) and left no child process; its stderr."""
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "finished" not in stdout
    assert not out_dir.exists()
    assert list(out_dir.parent.iterdir()) == []
    assert wait_gone(children) == []
    return stderr


@pytest.mark.slow  # kills real prepare processes
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_removes_the_temporary_directory(tmp_path, corpus, sig):
    src, tok = corpus
    out = tmp_path / "data"
    proc, workers = start_and_wait_for_output(src, out, tok)
    proc.send_signal(sig)
    assert "KeyboardInterrupt" in ended_leaving_nothing(proc, out, workers)


@pytest.mark.slow  # kills real prepare processes
def test_a_killed_worker_stops_prepare_with_a_clear_error(tmp_path, corpus):
    """An encode worker killed from outside (the OOM killer) ends prepare with an explanation and
    no dataset: it neither hangs waiting for the lost block nor writes a corpus with a hole."""
    src, tok = corpus
    out = tmp_path / "data"
    proc, children = start_and_wait_for_output(src, out, tok)
    workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
    assert len(workers) == 2, [c.cmdline() for c in children]
    workers[0].kill()
    assert "an encode worker process died (killed by signal 9" in ended_leaving_nothing(proc, out, children)


@pytest.mark.slow  # kills real prepare processes
def test_sigkill_leftovers_are_cleaned_by_the_next_run(tmp_path, corpus):
    src, tok = corpus
    out = tmp_path / "data"
    proc, workers = start_and_wait_for_output(src, out, tok)
    proc.kill()
    proc.wait(timeout=30)
    assert not out.exists()
    leftovers = list(tmp_path.glob("data.tmp-*"))
    assert len(leftovers) == 1
    # The workers notice that their parent is gone and exit instead of waiting forever.
    assert wait_gone(workers) == []
    small = write_jsonl(tmp_path / "small.jsonl", ["a small corpus", "of two documents"])
    res = prepare_dataset([small], out, tokenizer=tok)
    assert not leftovers[0].exists()
    assert any("interrupted prepare" in note for note in res.notes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "small.jsonl"]
    assert res.meta["documents"] + res.meta["val_documents"] == 2


def test_a_running_prepare_is_not_disturbed_by_another(tmp_path, corpus):
    """The stale-directory cleanup only removes directories of processes that no longer exist."""
    src, tok = corpus
    out = tmp_path / "data"
    proc, _ = start_and_wait_for_output(src, out, tok)
    proc.send_signal(signal.SIGSTOP)  # alive but frozen: it cannot finish while we look
    try:
        small = write_jsonl(tmp_path / "small.jsonl", ["another corpus"])
        prepare_dataset([small], tmp_path / "other", tokenizer=tok)
        prepare_dataset([small], out, tokenizer=tok)  # same output, different process
        assert list(tmp_path.glob("data.tmp-*")), "the live run's directory must survive"
    finally:
        proc.kill()
        proc.wait(timeout=30)
