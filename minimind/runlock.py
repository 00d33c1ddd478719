"""One owner per run directory: the trainer's lock file ``RUN/trainer.lock``.

The trainer (rank 0 under torchrun) takes the lock before it writes anything and releases it on
exit, also on failure. The file holds ``{"pid", "host", "started"}`` for people and for the CLI's
"is training" message; ownership itself is an exclusive ``fcntl.flock`` on the file, which the
kernel drops when the owner dies, so a lock left by a killed trainer is never mistaken for a live
one (a reused pid cannot fool it). Where ``fcntl`` does not exist the file is created with
``O_EXCL`` and a lock whose pid is dead on this host is stale.

Stdlib only, so the CLI checks a run without importing torch.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from minimind.errors import RunLockedError
from minimind.files import pid_alive
from minimind.run_dir import LOCK_FILE

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux or macOS
    fcntl = None

# A lock taken by ``minimind resume`` and handed to the trainer it starts: the inherited descriptor
# (it shares the flock) and the stale-lock note to record. The trainer adopts it instead of locking
# again, so no second resume can slip in between the CLI's check and the trainer's start.
HANDED_FD_ENV = "MINIMIND_RUN_LOCK_FD"
HANDED_NOTE_ENV = "MINIMIND_RUN_LOCK_NOTE"


@dataclass(frozen=True)
class LockOwner:
    pid: int | None
    host: str | None
    started: float | None

    def describe(self) -> str:
        when = f", since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(self.started))}" if self.started else ""
        host = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        return f"pid {self.pid if self.pid is not None else '?'}{host}{when}"


def _parse(text: str) -> LockOwner | None:
    try:
        data = json.loads(text)
        return LockOwner(int(data["pid"]), str(data.get("host") or ""), float(data.get("started") or 0) or None)
    except (ValueError, KeyError, TypeError):
        return None


def read_owner(run_dir: str | os.PathLike) -> LockOwner | None:
    """What the lock file of ``run_dir`` says (None without a readable one); says nothing about liveness."""
    try:
        return _parse((Path(run_dir) / LOCK_FILE).read_text(encoding="utf-8"))
    except OSError:
        return None


def live_owner(run_dir: str | os.PathLike) -> LockOwner | None:
    """The process training ``run_dir`` now, or None. Reads only: creates and changes nothing."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return read_owner(run_dir) or LockOwner(None, None, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        owner = read_owner(run_dir)
        if owner is None or owner.pid is None:
            return None
        return owner if owner.host != socket.gethostname() or pid_alive(owner.pid) else None
    finally:
        os.close(fd)


def refuse_if_training(run_dir: str | os.PathLike) -> None:
    """Raise ``RunLockedError`` (one line, exit 2) when a live process trains ``run_dir``."""
    owner = live_owner(run_dir)
    if owner is not None:
        raise RunLockedError(f"run {run_dir} is training ({owner.describe()})",
                             f"watch it with `minimind watch {run_dir}`; stop it there before resuming")


class RunLock:
    """The exclusive lock of one run directory. ``acquire()`` returns a note when it recovered a
    stale lock (a trainer that died without releasing), or None; ``release()`` removes the file."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> str | None:
        if fcntl is None:  # pragma: no cover
            return self._acquire_excl()
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._refuse()
            # the owner before us may have removed the file between our open and our flock
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        stale = _parse(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
        self._fd = fd
        self._write(fd)
        return self._stale_note(stale)

    def _acquire_excl(self) -> str | None:  # pragma: no cover - platforms without fcntl
        stale = None
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = read_owner(self.run_dir)
                if owner is None or (owner.host == socket.gethostname() and not pid_alive(owner.pid)):
                    stale = owner
                    self.path.unlink(missing_ok=True)
                    continue
                self._refuse()
            self._fd = fd
            self._write(fd)
            return self._stale_note(stale)
        self._refuse()

    def _refuse(self):
        owner = read_owner(self.run_dir) or LockOwner(None, None, None)
        raise RunLockedError(f"run {self.run_dir} is already being trained ({owner.describe()}); not starting",
                             f"watch it with `minimind watch {self.run_dir}`")

    def _write(self, fd: int) -> None:
        data = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data + b"\n", 0)
        os.fsync(fd)

    def _stale_note(self, stale: LockOwner | None) -> str | None:
        if stale is None:
            return None
        return f"recovered the stale lock {self.path} of a trainer that is gone ({stale.describe()})"

    @property
    def fd(self) -> int | None:
        return self._fd

    def adopt(self, fd: int) -> bool:
        """Take over a lock handed down by the process that started this one (``fd`` inherited, its
        flock shared): True when ``fd`` is this run's lock file and holds its flock."""
        if fcntl is None:  # pragma: no cover
            return False
        try:
            same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            if same:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours already: succeeds at once
        except (OSError, BlockingIOError):
            same = False
        if not same:
            try:
                os.close(fd)
            except OSError:
                pass
            return False
        self._fd = fd
        self._write(fd)  # the trainer's pid from now on
        return True

    def hand_over(self) -> None:
        """Close this process's descriptor without releasing the lock: a child started with it
        (``pass_fds``) holds the same flock and adopts it (``adopt``)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still holding it: nobody takes a file being removed
        except OSError:
            pass
        os.close(self._fd)  # drops the flock
        self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
