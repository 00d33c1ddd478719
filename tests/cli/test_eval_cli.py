"""`minimind eval` as a user runs it: JSON and table output, one-line errors."""

from __future__ import annotations

import json

from tests.checkpoint_fakes import tiny_model, write_run, write_tokenizer
from tests.cli.cli_helpers import run_main


def test_eval_json_and_table(tmp_path, capsys):
    run = write_run(tmp_path / "run", tiny_model(seed=1), incomplete_step=None)
    tok = write_tokenizer(tmp_path / "tok")
    text = tmp_path / "held_out.txt"
    text.write_text("first paragraph, the quick brown fox\n\nsecond one: hello world\n", encoding="utf-8")
    proc = run_main(capsys, "eval", str(run), "--data", str(text), "--tokenizer", str(tok), "--mode", "both",
                    "--json", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)["results"]
    assert [r["mode"] for r in results] == ["packed", "document"]
    assert all(r["documents"] == 2 and r["bytes"] == len("first paragraph, the quick brown fox")
               + len("second one: hello world") for r in results)
    assert all(r["loss"] > 0 and r["bits_per_byte"] > 0 for r in results)

    proc = run_main(capsys, "eval", str(run), "--data", str(text), "--tokenizer", str(tok), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "bits/byte" in proc.stdout and "packed" in proc.stdout and "2 documents" in proc.stdout


def test_eval_errors_are_one_line(tmp_path, capsys):
    run = write_run(tmp_path / "run", tiny_model(seed=1), incomplete_step=None)
    proc = run_main(capsys, "eval", str(run))
    assert proc.returncode == 2 and "no dataset recorded" in proc.stderr and "Traceback" not in proc.stderr
    assert "--data" in proc.stderr  # the hint
    proc = run_main(capsys, "eval", str(tmp_path / "nothing.pth"))
    assert proc.returncode == 2 and "no such file" in proc.stderr
    bad = tmp_path / "corpus.csv"
    bad.write_text("a,b\n")
    proc = run_main(capsys, "eval", str(run), "--data", str(bad), "--tokenizer", str(write_tokenizer(tmp_path / "t")))
    assert proc.returncode == 2 and "unsupported file type" in proc.stderr


def test_text_tokenized_with_another_tokenizer_of_the_same_size_is_refused_unless_forced(tmp_path, capsys):
    """The same vocabulary size is no proof of the same tokenizer: the ids would mean other text."""
    data = tmp_path / "data"
    own = write_tokenizer(data / "tokenizer")  # the run's dataset holds the tokenizer it trained with
    other = write_tokenizer(tmp_path / "other", text=["a completely different corpus of words"] * 40)
    assert (own / "tokenizer.json").read_bytes() != (other / "tokenizer.json").read_bytes()
    run = write_run(tmp_path / "run", tiny_model(seed=1), incomplete_step=None, data_path=str(data))
    text = tmp_path / "held_out.txt"
    text.write_text("the quick brown fox\n\nhello world\n", encoding="utf-8")
    proc = run_main(capsys, "eval", str(run), "--data", str(text), "--tokenizer", str(other), "--device", "cpu")
    assert proc.returncode == 2 and "is not the tokenizer these weights were trained with" in proc.stderr
    assert str(own) in proc.stderr and "--force" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_main(capsys, "eval", str(run), "--data", str(text), "--tokenizer", str(other), "--device", "cpu",
                    "--force", "--json")
    assert proc.returncode == 0, proc.stderr
    [res] = json.loads(proc.stdout)["results"]
    assert any("is not the tokenizer" in n for n in res["notes"])
    proc = run_main(capsys, "eval", str(run), "--data", str(text), "--tokenizer", str(own), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr  # naming the right one is fine
