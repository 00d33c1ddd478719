"""`minimind eval RUN` against a real trainer process: the same val loss the trainer reported."""

import json

import pytest

from minimind.events import read_events
from tests.conftest import run_cli
from tests.helpers import random_docs, write_dataset


def test_eval_of_a_finished_run_reports_its_final_val_loss(tmp_path):
    # 24 validation documents of 31 tokens + bos/eos: 24 packed windows of 33 tokens, all evaluated
    data = write_dataset(tmp_path / "ds", random_docs(300, seed=0), random_docs(24, seed=1, min_len=31, max_len=32))
    sets = ["model.hidden_size=64", "model.num_hidden_layers=2", "model.num_attention_heads=4",
            "model.num_key_value_heads=2", "model.vocab_size=256", "data.max_seq_len=32", "train.batch_size=8",
            "train.dtype=fp32", "train.device=cpu", "train.eval_samples=24", f"data.path={data}"]
    proc = run_cli("pretrain", "--profile", "tiny", "--max-steps", "6", "--run", "r", "--no-tui",
                   *[a for s in sets for a in ("--set", s)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "out" / "runs" / "r"
    val = [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "eval"][-1]
    assert val["step"] == 6
    proc = run_cli("eval", str(run_dir), "--json", cwd=tmp_path)  # the run's dataset, val split, its seq len
    assert proc.returncode == 0, proc.stderr
    [res] = json.loads(proc.stdout)["results"]
    assert (res["data"], res["split"], res["seq_len"], res["rows"]) == (str(data), "val", 32, 24)
    assert res["loss"] == pytest.approx(val["val_loss"], rel=1e-5)
