import json

from tests.conftest import run_cli


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
    assert (tmp_path / "out" / "data" / "meta.json").is_file()
    again = run_cli("prepare", "data.jsonl", "--vocab-size", "300", cwd=tmp_path)
    assert again.returncode == 0 and "reused" in again.stdout
    forced = run_cli("prepare", "data.jsonl", "--vocab-size", "300", "--force", "-o", "out/data", cwd=tmp_path)
    assert forced.returncode == 0 and "dataset prepared" in forced.stdout


def test_bad_line_is_one_red_line_and_exit_2(tmp_path):
    write(tmp_path / "data.jsonl", GOOD[:2] + ['{"text": "oops",}'])
    proc = run_cli("prepare", "data.jsonl", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == ["error: data.jsonl:3: invalid JSON (Expecting property name enclosed in double quotes at "
                     "column 17)"]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "data").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_skip_invalid_reports_counts(tmp_path):
    write(tmp_path / "data.jsonl", GOOD + ['{"text": 1}', "not json", '{"body": "x"}'])
    proc = run_cli("prepare", "data.jsonl", "--skip-invalid", "--vocab-size", "300", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 empty text, 1 invalid JSON, 1 missing key 'text', 1 text is not a string" in proc.stdout


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
