"""Document-aware packing (``data.doc_mask``) in real trainer processes, together with a
sequence-length curriculum and validation passes: the loss falls, a SIGKILL between checkpoints
resumes bitwise-exactly (positions come from the dataset alone)."""

import math

import pytest

from minimind.events import read_events
from tests.e2e.conftest import finished_run, kill_then_resume, losses_by_step, make_run

# SMALL: max_seq_len 32, 16 steps, checkpoints every 5; windows of 16 tokens for steps 1-8.
DOC_MASK = ["data.doc_mask=true", "data.seq_len_schedule=[[0, 16], [0.5, 32]]", "train.eval_interval=8"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, small_dataset):
    return finished_run(tmp_path_factory.mktemp("doc_mask"), small_dataset, "ref", DOC_MASK)


def test_doc_mask_run_trains_and_validates(reference):
    events = read_events(reference / "events.jsonl")
    losses = losses_by_step(reference)
    assert sorted(losses) == list(range(1, 17))
    assert losses[16][0] < losses[1][0] - 0.5
    evals = [e for e in events if e["type"] == "eval"]
    assert [e["step"] for e in evals][:2] == [8, 16] and all(math.isfinite(e["val_loss"]) for e in evals)


def test_sigkill_then_resume_is_bitwise_exact(tmp_path, small_dataset, reference):
    run_dir = make_run(tmp_path, small_dataset, "killed", DOC_MASK)
    kill_then_resume(run_dir, after_step=7)
    assert losses_by_step(run_dir) == losses_by_step(reference)

