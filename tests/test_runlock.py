"""The run lock on its own: a live owner in another process, a stale one, release."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from minimind.errors import MinimindError
from minimind.runlock import LOCK_FILE, RunLock, live_owner, refuse_if_training
from tests.conftest import REPO

HOLD = ("import sys, time; from minimind.runlock import RunLock; "
        "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)")


def _holder(run_dir):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_of_a_live_process_refuses_and_its_death_frees_it(tmp_path):
    holder = _holder(tmp_path)
    try:
        owner = live_owner(tmp_path)
        assert owner is not None and owner.pid == holder.pid and owner.host == socket.gethostname()
        content = (tmp_path / LOCK_FILE).read_bytes()
        with pytest.raises(MinimindError, match=f"already being trained \\(pid {holder.pid}"):
            RunLock(tmp_path).acquire()
        with pytest.raises(MinimindError, match=f"is training \\(pid {holder.pid}") as info:
            refuse_if_training(tmp_path)
        assert "minimind watch" in info.value.hint
        assert (tmp_path / LOCK_FILE).read_bytes() == content  # a refused taker changes nothing
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert live_owner(tmp_path) is None  # the kernel dropped the dead owner's lock
    lock = RunLock(tmp_path)
    note = lock.acquire()
    assert note is not None and f"pid {holder.pid}" in note and "stale" in note
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists() and live_owner(tmp_path) is None


def test_lock_file_with_a_dead_pid_is_stale(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": 1.0}))
    assert live_owner(tmp_path) is None
    refuse_if_training(tmp_path)  # no error
    with RunLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
        with pytest.raises(MinimindError):  # one owner, even within one process
            RunLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_FILE).exists()


def test_no_lock_file_means_not_training(tmp_path):
    assert live_owner(tmp_path) is None and live_owner(tmp_path / "missing") is None
    assert not (tmp_path / LOCK_FILE).exists()
