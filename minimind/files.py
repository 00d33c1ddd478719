"""File safety in one place: hashing, atomic writes, atomic directory replacement, live pids.

Every writer of the project goes through here (checkpoints, config, weights, exports, prepared
datasets), so "written completely or not at all" means the same thing everywhere:

- ``atomic_write``: a temporary sibling, written, flushed and fsynced, renamed over the target,
  then the directory fsynced so the rename itself survives a power cut.
- ``replace_dir``: the new directory is built elsewhere; the old one is moved aside, the new one
  renamed into place, and only then is the old one removed. At every instant the target is either
  the old or the new complete directory (at worst, briefly absent with the old one beside it).

Stdlib only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def fsync_dir(path: str | os.PathLike) -> None:
    """Make renames and creations inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_durably(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Create ``path`` with ``write(file)``, then flush and fsync it (no rename: for files inside a
    temporary directory that is itself renamed into place)."""
    with open(path, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` completely or not at all. ``data`` is bytes, text (UTF-8) or a function that
    writes to the binary file it is given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    write = (lambda f: f.write(data)) if isinstance(data, bytes) else data
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write_durably(tmp, write)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path


def replace_dir(new: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Move the complete directory ``new`` to ``target``; an old ``target`` is removed only after
    the new one is in place. ``new`` must be on the same filesystem (build it beside ``target``)."""
    new, target = Path(new), Path(target)
    fsync_dir(new)
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
        os.replace(new, target)
        fsync_dir(target.parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(new, target)
        fsync_dir(target.parent)
    return target


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OverflowError, ValueError):
        return False
    return True
