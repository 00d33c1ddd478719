"""File safety in one place: hashing, atomic writes, atomic directory replacement, live pids.

Every writer of the project goes through here (checkpoints, config, weights, exports, prepared
datasets), so "written completely or not at all" means the same thing everywhere:

- ``atomic_write``: a temporary sibling, written, flushed and fsynced, renamed over the target,
  then the directory fsynced so the rename itself survives a power cut.
- ``replace_dir``: the new directory is built elsewhere; the old one is moved aside, the new one
  renamed into place, and only then is the old one removed. At every instant the target is either
  the old or the new complete directory (at worst, briefly absent with the old one beside it).

Where writing an output fails for a reason the user can fix (read-only or full filesystem, a
mount point, a file where a directory should be), ``writing`` and ``replace_dir`` say so in one
line naming the path and the reason (``OutputError``), never as a traceback.

Stdlib only.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from minimind.errors import OutputError

CHUNK = 1 << 20


def absolute(path: str | os.PathLike) -> Path:
    """``path`` made absolute and normalized, without following links: ``.`` and ``x/..`` get a real
    name (``Path('.').name`` is empty, so temporary siblings could not be named after it)."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def output_error(path: str | os.PathLike, exc: OSError) -> OutputError:
    """The one-line error for an ``OSError`` met while writing the output ``path``."""
    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    if exc.errno == errno.EEXIST and exc.filename and not os.path.isdir(exc.filename):
        reason, where = f"{exc.filename} is a file, not a directory", ""  # what mkdir(parents=True) meets
    hint = "choose a writable output location"
    if exc.errno == errno.EBUSY:
        hint = "it is in use, or a mount point, which cannot be replaced: write to a directory inside it"
    elif exc.errno == errno.EXDEV:
        hint = "it is on another filesystem (a mount point?), which cannot be filled by a rename: write to a " \
               "directory inside it"
    return OutputError(f"cannot write {path}: {reason}{where}", hint)


@contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn an ``OSError`` inside the block into ``OutputError`` naming ``path`` (the output being made)."""
    try:
        yield
    except OSError as exc:
        raise output_error(path, exc) from exc


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


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def honour_umask(directory: str | os.PathLike) -> None:
    """Give every file under ``directory`` the mode a plain ``open`` would have given it (0666 less
    the umask): some writers (safetensors) create files 0600, unlike every other output."""
    mode = 0o666 & ~current_umask()
    for path in Path(directory).rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, mode)


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` completely or not at all. ``data`` is bytes, text (UTF-8) or a function that
    writes to the binary file it is given."""
    given, path = Path(path), absolute(path)
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
    return given


def refuse_replacing_cwd(target: str | os.PathLike) -> None:
    """A directory replaced while a shell stands in it (or below it) leaves that shell in a deleted
    directory, where the next command fails in odd ways: refused, before any work."""
    here, there = absolute(Path.cwd()), absolute(target)
    if there == here or there in here.parents:
        raise OutputError(f"{target}: is the current directory{'' if there == here else ' (or holds it)'}; "
                          f"replacing it would leave your shell in a deleted directory",
                          "write to a directory beside it (e.g. -o out/NAME), or cd out of it first")


def replace_dir(new: str | os.PathLike, target: str | os.PathLike, markers: tuple[str, ...] = ()) -> Path:
    """Move the complete directory ``new`` to ``target``; an old ``target`` is removed only after
    the new one is in place. ``new`` must be on the same filesystem (build it beside ``target``).
    A rename the system refuses (a mount point, permissions) raises ``OutputError`` and leaves the
    old ``target`` as it was; ``new`` is left for the caller to remove.

    An empty ``target`` directory stays itself (a shell may stand in it: ``-o .``): the entries of
    ``new`` move into it, ``markers`` (the files that say the output is complete) last. A non-empty
    one that is the shell's directory is refused (``refuse_replacing_cwd``)."""
    given, new, target = Path(target), absolute(new), absolute(target)
    fsync_dir(new)
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        with writing(target):
            entries = sorted(new.iterdir(), key=lambda p: (p.name in markers, p.name))
            for entry in entries:
                os.replace(entry, target / entry.name)
        fsync_dir(target)
        new.rmdir()
        return given
    if target.exists():
        refuse_replacing_cwd(target)
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        with writing(target):
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
        try:
            os.replace(new, target)
        except OSError as exc:
            os.replace(old, target)  # put the old one back
            raise output_error(target, exc) from exc
        fsync_dir(target.parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        with writing(target):
            os.replace(new, target)
        fsync_dir(target.parent)
    return given


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
