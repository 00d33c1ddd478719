"""`minimind prepare` on Parquet shards, as a user types it: a quoted glob, --dedup, a limit, errors."""

import json

import pytest

from tests.cli.cli_helpers import run_main

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def shard(path, texts, key="text"):
    pq.write_table(pa.table({key: texts}), path)


def test_glob_of_parquet_shards_with_dedup_and_a_limit(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shards").mkdir()
    shard(tmp_path / "shards" / "part-0.parquet", ["alpha document", "beta  document", "gamma"])
    shard(tmp_path / "shards" / "part-1.parquet", ["beta document", "delta", "epsilon", "zeta"])
    result = run_main(capsys, "prepare", "shards/*.parquet", "--vocab-size", "300", "--workers", "1",
                      "--dedup", "exact", "--max-documents", "4")
    assert result.returncode == 0, result.stderr
    assert "duplicates removed │ 1 (--dedup exact)" in result.stdout
    assert "stopped at --max-documents 4" in result.stdout
    meta = json.loads((tmp_path / "out" / "data" / "meta.json").read_text())
    assert meta["documents"] + meta["val_documents"] == 4 and meta["duplicates_removed"] == 1
    assert [s["format"] for s in meta["sources"]] == ["parquet", "parquet"]


def test_bad_row_is_one_line_naming_file_and_row(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shard(tmp_path / "a.parquet", ["fine", None])
    shard(tmp_path / "b.parquet", ["fine"], key="body")
    result = run_main(capsys, "prepare", "a.parquet", "--vocab-size", "300")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: a.parquet: row 2: 'text' is null, not a string",
        "hint: fix it, or pass --skip-invalid to skip invalid lines and count them per reason"]
    result = run_main(capsys, "prepare", "b.parquet", "a.parquet", "--vocab-size", "300", "--skip-invalid")
    assert result.returncode == 0, result.stderr
    assert "1 missing key 'text', 1 text is not a string" in result.stdout
