"""Run directories, the data cache, failed starts and unwritable outputs: one line, exit 2, nothing left."""

from __future__ import annotations

import errno
import json
import os
import threading
from datetime import datetime
from pathlib import Path

import pytest

from minimind.config import resolve
from minimind.data.format import is_dataset
from minimind.errors import MinimindError
from tests.checkpoint_fakes import tiny_model, write_run, write_tokenizer
from tests.cli.cli_helpers import run_main
from tests.e2e.conftest import SMALL

ARGS = ["--profile", "tiny", "--no-tui", *[a for s in SMALL for a in ("--set", s)]]


class _FrozenClock(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 1, 2, 3, 4, 5)


def _error_lines(stderr: str) -> list[str]:
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _jsonl(path: Path, n: int = 40) -> Path:
    path.write_text("".join(json.dumps({"text": f"document {i}: the quick brown fox jumps {i % 7} times."}) + "\n"
                            for i in range(n)))
    return path


# --- run directories --------------------------------------------------------------------------

def test_runs_started_in_the_same_second_get_their_own_directories(tmp_path, monkeypatch):
    from minimind_cli import runs

    monkeypatch.setattr(runs, "datetime", _FrozenClock)
    cfg = resolve("tiny", [f"run.out_dir={tmp_path}"])
    first, second = runs.new_run_dir(cfg), runs.new_run_dir(cfg)
    assert first.name == "tiny-20260102-030405" and second.name == "tiny-20260102-030405-2"
    assert first.is_dir() and second.is_dir()

    made: list[Path] = []
    barrier = threading.Barrier(6)

    def start():
        barrier.wait()
        made.append(runs.new_run_dir(cfg))

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = {p.name for p in made}
    assert len(names) == 6 and not names & {first.name, second.name}
    assert {p.name for p in (tmp_path / "runs").iterdir()} == names | {first.name, second.name}


def test_an_explicit_run_name_that_exists_is_still_refused(tmp_path):
    from minimind_cli.runs import new_run_dir

    cfg = resolve("tiny", [f"run.out_dir={tmp_path}", "run.name=mine"])
    run_dir = new_run_dir(cfg)
    (run_dir / "config.yaml").write_text("x")
    with pytest.raises(MinimindError, match="already exists"):
        new_run_dir(cfg)
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["mine"]


# --- the data cache ----------------------------------------------------------------------------

def test_prepared_data_file_is_cached_outside_out_data(tmp_path):
    from minimind.data.prepare import prepare_dataset
    from minimind_cli.runs import resolve_data

    out = tmp_path / "out"
    corpus = _jsonl(tmp_path / "corpus.jsonl")
    cfg = resolve("tiny", [f"run.out_dir={out}"])
    path, where = resolve_data(str(corpus), cfg, out)
    assert path.parent == (out / "cache").resolve() and is_dataset(path)
    assert not (out / "data").exists()  # out/data is only ever a dataset
    # what the README does next: `minimind prepare good.jsonl` into out/data, then train on it
    prepare_dataset([corpus], out / "data", tokenizer=write_tokenizer(tmp_path / "tok"))
    assert is_dataset(out / "data")
    again, where = resolve_data(None, cfg, out)
    assert again == (out / "data").resolve() and "made by `minimind prepare`" in where


# --- failed starts -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["random-bytes", "missing"])
def test_bad_init_from_is_one_line_and_creates_no_run(tmp_path, capsys, small_dataset, kind):
    weights = tmp_path / "w.pth"
    if kind == "random-bytes":
        weights.write_bytes(os.urandom(4096))
    result = run_main(capsys, "pretrain", *ARGS, "--data", str(small_dataset), "--out", str(tmp_path / "out"),
                      "--init-from", str(weights))
    assert result.returncode == 2, result.stderr
    lines = _error_lines(result.stderr)
    assert len(lines) == 1 and "w.pth" in lines[0]
    assert not (tmp_path / "out" / "runs").exists()


def test_unavailable_device_fails_before_the_run_directory(tmp_path, capsys, small_dataset):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_main(capsys, "pretrain", *ARGS, "--data", str(small_dataset), "--out", str(tmp_path / "out"),
                      "--device", "cuda")
    assert result.returncode == 2, result.stderr
    lines = _error_lines(result.stderr)
    assert len(lines) == 1 and "no CUDA device" in lines[0]
    assert not (tmp_path / "out").exists()


# --- outputs that cannot be written ------------------------------------------------------------

def test_prepare_into_dot(tmp_path, capsys, monkeypatch):
    tok = write_tokenizer(tmp_path / "tok")
    corpus = _jsonl(tmp_path / "corpus.jsonl")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    monkeypatch.chdir(busy)
    result = run_main(capsys, "prepare", str(corpus), "-o", ".", "--tokenizer", str(tok))
    assert result.returncode == 2, result.stderr
    lines = _error_lines(result.stderr)
    assert len(lines) == 1 and str(busy) in lines[0] and "not a minimind dataset" in lines[0]
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    result = run_main(capsys, "prepare", str(corpus), "-o", ".", "--tokenizer", str(tok))
    assert result.returncode == 0, result.stderr
    assert is_dataset(empty) and os.path.samefile(os.getcwd(), empty)  # the shell's directory, filled in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "corpus.jsonl", "empty", "tok"]


@pytest.mark.slow  # an HF export: transformers import and save, several seconds
def test_export_to_dot(tmp_path, capsys, monkeypatch):
    run = write_run(tmp_path / "out" / "runs" / "r", tiny_model(seed=3), steps=(10,), incomplete_step=None)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    monkeypatch.chdir(busy)
    result = run_main(capsys, "export", str(run), ".", "--to", "hf")
    assert result.returncode == 2, result.stderr
    assert len(_error_lines(result.stderr)) == 1 and "not empty" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    result = run_main(capsys, "export", str(run), ".", "--to", "hf")
    assert result.returncode == 0, result.stderr
    assert (empty / "config.json").is_file()


def test_unwritable_output_is_one_line_naming_it(tmp_path, capsys):
    tok = write_tokenizer(tmp_path / "tok")
    corpus = _jsonl(tmp_path / "corpus.jsonl")
    blocker = tmp_path / "somefile"
    blocker.write_text("a file, not a directory")
    result = run_main(capsys, "prepare", str(corpus), "-o", str(blocker / "out"), "--tokenizer", str(tok))
    assert result.returncode == 2, result.stderr
    lines = _error_lines(result.stderr)
    assert len(lines) == 1 and f"cannot write {blocker / 'out'}" in lines[0] and "not a directory" in lines[0]

    run = write_run(tmp_path / "out" / "runs" / "r", tiny_model(seed=3), steps=(10,), incomplete_step=None)
    for args in ((str(blocker / "hf"), "--to", "hf"), (str(blocker / "w.pth"), "--to", "pth")):
        result = run_main(capsys, "export", str(run), *args)
        assert result.returncode == 2, result.stderr
        lines = _error_lines(result.stderr)
        assert len(lines) == 1 and f"cannot write {blocker}" in lines[0]


def test_read_only_output_directory(tmp_path, capsys):
    tok = write_tokenizer(tmp_path / "tok")
    corpus = _jsonl(tmp_path / "corpus.jsonl")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: a 0o500 directory is writable")
        result = run_main(capsys, "prepare", str(corpus), "-o", str(locked / "data"), "--tokenizer", str(tok))
        assert result.returncode == 2, result.stderr
        lines = _error_lines(result.stderr)
        assert len(lines) == 1 and str(locked / "data") in lines[0] and "Permission denied" in lines[0]
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def refuse_renaming(monkeypatch, source: Path, err: int, into: int | None = None) -> None:
    """Make ``minimind.files`` see ``os.replace(source, ...)`` fail with ``err`` (and, with ``into``,
    a rename of anything into ``source``: another filesystem), as the system would."""
    from minimind import files

    real_replace = os.replace

    def replace(src, dst):
        if Path(src) == source:
            raise OSError(err, os.strerror(err), str(src))
        if into is not None and Path(dst).parent == source:
            raise OSError(into, os.strerror(into), str(src), str(dst))
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "replace", replace)


def test_busy_mount_point_output_is_one_line_and_keeps_everything(tmp_path, capsys, monkeypatch):

    tok = write_tokenizer(tmp_path / "tok")
    corpus = _jsonl(tmp_path / "corpus.jsonl")
    mount = tmp_path / "mnt"
    mount.mkdir()  # an empty mount point: rename(2) refuses to move it, or anything into it from outside
    refuse_renaming(monkeypatch, mount, errno.EBUSY, into=errno.EXDEV)
    result = run_main(capsys, "prepare", str(corpus), "-o", str(mount), "--tokenizer", str(tok))
    assert result.returncode == 2, result.stderr
    lines = _error_lines(result.stderr)
    assert len(lines) == 1 and f"cannot write {mount}" in lines[0] and "cross-device" in lines[0]
    assert "mount point" in result.stderr
    assert mount.is_dir() and list(mount.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus.jsonl", "mnt", "tok"]  # no temporary left


def test_replace_dir_puts_the_old_directory_back_when_the_new_one_cannot_move(tmp_path, monkeypatch):
    from minimind import files

    target, new = tmp_path / "target", tmp_path / "new"
    target.mkdir()
    (target / "old.txt").write_text("old")
    new.mkdir()
    refuse_renaming(monkeypatch, new, errno.EXDEV)
    with pytest.raises(files.OutputError, match=f"cannot write {target}: Invalid cross-device link"):
        files.replace_dir(new, target)
    assert (target / "old.txt").read_text() == "old" and new.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "target"]


def test_an_old_cache_in_out_data_is_moved_out_of_the_way(tmp_path, small_dataset):
    """Earlier versions cached prepared --data files in out/data/cache; out/data must become usable."""
    import shutil

    from minimind_cli.runs import move_old_cache

    old = tmp_path / "out" / "data" / "cache" / "abc123"
    shutil.copytree(small_dataset, old)
    move_old_cache(tmp_path / "out" / "data")
    assert not (tmp_path / "out" / "data").exists()
    assert (tmp_path / "out" / "cache" / "abc123" / "meta.json").is_file()
    (tmp_path / "out" / "data").mkdir()
    (tmp_path / "out" / "data" / "mine.txt").write_text("a user's file")
    move_old_cache(tmp_path / "out" / "data")  # anything else in out/data: left alone
    assert (tmp_path / "out" / "data" / "mine.txt").is_file()
