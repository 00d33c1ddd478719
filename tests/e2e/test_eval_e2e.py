"""`minimind eval RUN` against a real trainer process: the same val loss the trainer reported."""

import json

import pytest

from minimind.events import read_events
from tests.conftest import run_cli
from tests.helpers import random_docs, write_dataset


@pytest.mark.parametrize("doc_mask", [False, True])
def test_eval_of_a_finished_run_reproduces_its_last_val_loss(tmp_path, doc_mask):
    """The validation split holds more than the run's validation set (and a tail shorter than a
    window), and documents of many lengths: eval must score exactly the trainer's samples, with
    its doc_mask, to give the same number."""
    data = write_dataset(tmp_path / "ds", random_docs(300, seed=0), random_docs(60, seed=1, min_len=3, max_len=40))
    sets = ["model.hidden_size=64", "model.num_hidden_layers=2", "model.num_attention_heads=4",
            "model.num_key_value_heads=2", "model.vocab_size=256", "data.max_seq_len=32", "train.batch_size=8",
            "train.dtype=fp32", "train.device=cpu", "train.eval_samples=10", f"data.path={data}",
            f"data.doc_mask={str(doc_mask).lower()}"]
    proc = run_cli("pretrain", "--profile", "tiny", "--max-steps", "6", "--run", "r", "--no-tui",
                   *[a for s in sets for a in ("--set", s)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "out" / "runs" / "r"
    val = [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "eval"][-1]
    assert val["step"] == 6
    proc = run_cli("eval", str(run_dir), "--json", "--batch-size", "3", cwd=tmp_path)  # another micro-batch
    assert proc.returncode == 0, proc.stderr
    [res] = json.loads(proc.stdout)["results"]
    assert (res["mode"], res["data"], res["split"], res["seq_len"], res["rows"]) == ("val", str(data), "val", 32, 10)
    assert res["loss"] == pytest.approx(val["val_loss"], rel=0, abs=1e-6)
    # --mode packed scores the whole split (every window and the tail): another, larger sample
    proc = run_cli("eval", str(run_dir), "--json", "--mode", "packed", cwd=tmp_path)
    [whole] = json.loads(proc.stdout)["results"]
    assert whole["rows"] > 10 and whole["scored_tokens"] > res["scored_tokens"]
