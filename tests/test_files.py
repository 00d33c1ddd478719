"""The file-safety module every writer uses."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from minimind.files import atomic_write, pid_alive, replace_dir, sha256_file


def test_sha256_file_matches_hashlib(tmp_path):
    data = os.urandom(3 << 20)
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write(target, "first")
    atomic_write(target, b"second")
    assert target.read_text() == "second"

    def explode(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, explode)
    assert target.read_text() == "second"
    assert os.listdir(target.parent) == ["a.txt"]  # the temporary file is gone


def test_replace_dir_swaps_in_the_new_directory(tmp_path):
    target, new = tmp_path / "export", tmp_path / ".export.new"
    target.mkdir()
    (target / "old.txt").write_text("old")
    new.mkdir()
    (new / "new.txt").write_text("new")
    replace_dir(new, target)
    assert os.listdir(target) == ["new.txt"] and not new.exists()
    assert sorted(os.listdir(tmp_path)) == ["export"]  # the old one is removed after the swap
    fresh = tmp_path / ".other.new"
    fresh.mkdir()
    replace_dir(fresh, tmp_path / "other")
    assert (tmp_path / "other").is_dir()


def test_pid_alive():
    assert pid_alive(os.getpid())
    assert not pid_alive(2**22 + 12345)


def test_the_directory_a_shell_stands_in_is_never_replaced(tmp_path, monkeypatch):
    from minimind.errors import OutputError
    from minimind.files import refuse_replacing_cwd, replace_dir

    target = tmp_path / "export"
    (target / "inner").mkdir(parents=True)
    new = tmp_path / "new"
    new.mkdir()
    for here in (target, target / "inner"):
        monkeypatch.chdir(here)
        with pytest.raises(OutputError, match="current directory"):
            refuse_replacing_cwd(target)
        with pytest.raises(OutputError, match="deleted directory"):
            replace_dir(new, target)
        assert (target / "inner").is_dir() and new.is_dir()  # nothing moved
    monkeypatch.chdir(tmp_path)
    refuse_replacing_cwd(target)  # a sibling of the shell's directory is fine
    replace_dir(new, target)
    assert not (target / "inner").exists()


def test_an_empty_target_the_shell_stands_in_stays_the_same_directory(tmp_path, monkeypatch):
    from minimind.files import replace_dir

    target = tmp_path / "here"
    target.mkdir()
    inode = target.stat().st_ino
    new = tmp_path / ".new"
    (new / "sub").mkdir(parents=True)
    (new / "a.bin").write_bytes(b"a")
    (new / "meta.json").write_text("{}")
    moved = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (moved.append(Path(b).name), real_replace(a, b)))
    monkeypatch.chdir(target)
    replace_dir(new, target, markers=("meta.json",))
    assert target.stat().st_ino == inode and Path.cwd().stat().st_ino == inode  # the shell's directory lives on
    assert sorted(p.name for p in target.iterdir()) == ["a.bin", "meta.json", "sub"] and not new.exists()
    assert moved[-1] == "meta.json"  # the file that says "complete" comes last
