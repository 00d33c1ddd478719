import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from minimind.errors import EXIT_ABORTED
from tests.conftest import REPO, default_sigint, run_cli


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


GOOD = [json.dumps({"text": t}) for t in ["first document", "第二个文档", "third, with extra", ""]]


def test_prepare_prints_a_summary_then_reuses(tmp_path):
    write(tmp_path / "data.jsonl", GOOD)
    proc = run_cli("prepare", "data.jsonl", "--vocab-size", "300", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "dataset prepared" in out
    for row in ("documents", "tokens/document", "validation", "skipped", "1 empty text", "out/data", "time"):
        assert row in out
    # the split is shown as meta.json counts it: there "documents" and "tokens" are the train split
    meta = json.loads((tmp_path / "out" / "data" / "meta.json").read_text())
    assert f"({meta['documents']:,} train + {meta['val_documents']:,} validation)" in out
    assert f"({meta['tokens']:,} train + {meta['val_tokens']:,} validation)" in out
    again = run_cli("prepare", "data.jsonl", "--vocab-size", "300", cwd=tmp_path)
    assert again.returncode == 0 and "reused" in again.stdout
    forced = run_cli("prepare", "data.jsonl", "--vocab-size", "300", "--force", "-o", "out/data", cwd=tmp_path)
    assert forced.returncode == 0 and "dataset prepared" in forced.stdout
    # --force where the shell stands: refused before any work, the dataset left as it was
    before = (tmp_path / "out" / "data" / "meta.json").read_bytes()
    here = run_cli("prepare", str(tmp_path / "data.jsonl"), "--vocab-size", "300", "--force", "-o", ".",
                   cwd=tmp_path / "out" / "data")
    assert here.returncode == 2 and "is the current directory" in here.stderr and "Traceback" not in here.stderr
    assert (tmp_path / "out" / "data" / "meta.json").read_bytes() == before


def test_bad_line_is_one_red_line_and_exit_2(tmp_path):
    write(tmp_path / "data.jsonl", GOOD[:2] + ['{"text": "oops",}'])
    proc = run_cli("prepare", "data.jsonl", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == ["error: data.jsonl:3: invalid JSON (Expecting property name enclosed in double quotes at "
                     "column 17)",
                     "hint: fix it, or pass --skip-invalid to skip invalid lines and count them per reason"]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "data").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_skip_invalid_reports_counts(tmp_path):
    write(tmp_path / "data.jsonl", GOOD + ['{"text": 1}', "not json", '{"body": "x"}'])
    proc = run_cli("prepare", "data.jsonl", "--skip-invalid", "--vocab-size", "300", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 empty text, 1 invalid JSON, 1 missing key 'text', 1 text is not a string" in proc.stdout


@pytest.mark.slow  # several CLI subprocesses
def test_usage_errors(tmp_path):
    proc = run_cli("prepare", "missing.jsonl", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == "error: missing.jsonl: no such file or directory"
    proc = run_cli("prepare", cwd=tmp_path)
    assert proc.returncode == 2 and "error: no INPUT given" in proc.stderr
    write(tmp_path / "data.jsonl", GOOD)
    proc = run_cli("prepare", "data.jsonl", "--sample", cwd=tmp_path)
    assert proc.returncode == 2 and "either INPUT files or --sample" in proc.stderr
    proc = run_cli("prepare", "data.jsonl", "--val-fraction", "2", cwd=tmp_path)
    assert proc.returncode == 2 and "val fraction 2.0 must be at least 0 and below 1" in proc.stderr
    (tmp_path / "empty.jsonl").write_text("")
    proc = run_cli("prepare", "empty.jsonl", cwd=tmp_path)
    assert proc.returncode == 2 and "empty.jsonl: no documents to train on (the input is empty)" in proc.stderr


def test_help_has_examples_and_the_txt_rule():
    proc = run_cli("prepare", "--help")
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())  # rich wraps the help to the terminal width
    assert "minimind prepare data.jsonl" in text and "--sample" in text
    assert "paragraphs are separated by one or more blank lines" in text


def test_progress_bar_draws_each_phase_only_on_a_terminal():
    import io

    from rich.console import Console

    from minimind.data.prepare import ProgressUpdate
    from minimind_cli.prepare_progress import PrepareProgress

    assert PrepareProgress(Console(file=io.StringIO())).callback is None  # a log file gets no bar
    out = io.StringIO()
    with PrepareProgress(Console(file=out, force_terminal=True, width=120)) as bar:
        for update in (ProgressUpdate("tokenizer", 0, 2_000_000), ProgressUpdate("tokenizer", 2_000_000, 2_000_000),
                       ProgressUpdate("encode", 0, 4_000_000), ProgressUpdate("encode", 4_000_000, 4_000_000, 10)):
            bar.callback(update)
        assert [t.completed for t in bar.bar.tasks] == [2_000_000, 4_000_000]
    text = out.getvalue()
    assert "training tokenizer" in text and "tokenizing" in text and "4.0/4.0 MB" in text


# --------------------------------------------------------------------------------------------- Ctrl-C


def varied_lines(n_lines: int, seed: int = 0) -> list[str]:
    """jsonl lines of 200 words drawn from 200,000 random made-up words: slow to learn merges from."""
    import random

    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choices(letters, k=rng.randint(2, 12))) for _ in range(200_000)]
    return [json.dumps({"text": " ".join(rng.choices(words, k=200))}) + "\n" for _ in range(n_lines)]


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory):
    """About 40 MB of jsonl (4 MB of lines, repeated): training a 6400 tokenizer on it takes > 10 s on
    2 cores, tokenizing it with 2 workers more than 20 s."""
    from minimind.data.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("ctrl_c")
    lines = varied_lines(3_000)
    src = root / "big.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for _ in range(10):
            f.writelines(lines)
    tok = train_tokenizer(iter(json.loads(line)["text"] for line in lines[:300]), 1000, root / "tok")
    return src, tok


def interrupt_prepare(cwd: Path, args: list[str], ready) -> tuple[subprocess.CompletedProcess, float, list]:
    """Start `minimind prepare ARGS` in ``cwd``, wait until ``ready(tmp_dir, pid)``, send SIGINT (what Ctrl-C
    sends); the finished process, the seconds it took to exit after the signal, its child processes."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "COLUMNS": "120"}
    proc = subprocess.Popen([sys.executable, "-m", "minimind_cli", "prepare", *args], cwd=cwd, env=env,
                            preexec_fn=default_sigint,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "prepare never got to the point to interrupt"
            tmp = [p for p in cwd.iterdir() if ".tmp-" in p.name]
            if tmp and ready(tmp[0], proc.pid):
                break
            time.sleep(0.05)
        children = psutil.Process(proc.pid).children(recursive=True)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), time.monotonic() - sent, children
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def still_running(processes: list) -> list:
    """Those of ``processes`` that are still running after up to 5 s (a zombie has ended)."""
    deadline = time.monotonic() + 5
    while True:
        alive = [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def assert_interrupted_cleanly(proc, seconds: float, children: list, cwd: Path) -> None:
    assert seconds < 3, f"prepare took {seconds:.1f}s to react to Ctrl-C"
    assert proc.returncode == EXIT_ABORTED, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "interrupted; nothing written"
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in cwd.iterdir()) == []  # no dataset, no temporary directory
    assert still_running(children) == []


@pytest.mark.slow  # 40 MB corpus, a real prepare interrupted while it trains the tokenizer
def test_ctrl_c_while_training_the_tokenizer_stops_at_once(tmp_path, big_corpus):
    src, _ = big_corpus

    def training_for_a_while(tmp: Path, pid: int) -> bool:
        # The tokenizer's child process has worked a while (reading the sample, then the Rust trainer)
        # and is not done. Its CPU time, not the wall clock: on an idle machine the whole prepare
        # can finish within a fixed number of seconds, on a loaded one the child may not have started.
        if (tmp / "tokenizer" / "tokenizer.json").exists():
            return False
        try:
            return any(sum(c.cpu_times()[:2]) > 1.0 for c in psutil.Process(pid).children(recursive=True))
        except psutil.Error:
            return False

    proc, seconds, children = interrupt_prepare(tmp_path, [str(src), "-o", "out"], training_for_a_while)
    assert_interrupted_cleanly(proc, seconds, children, tmp_path)


@pytest.mark.slow  # 40 MB corpus, a real prepare interrupted while its workers tokenize
def test_ctrl_c_while_tokenizing_stops_at_once(tmp_path, big_corpus):
    src, tok = big_corpus

    def tokens_written(tmp: Path, pid: int) -> bool:
        tokens = tmp / "tokens.bin"
        return tokens.is_file() and tokens.stat().st_size > 0

    proc, seconds, children = interrupt_prepare(
        tmp_path, [str(src), "-o", "out", "--tokenizer", str(tok), "--workers", "2"], tokens_written)
    assert_interrupted_cleanly(proc, seconds, children, tmp_path)
