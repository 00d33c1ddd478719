"""A sequence-length curriculum in real trainer processes: the events say what each step trained on,
a SIGKILL in the middle of a phase resumes bitwise-exactly, and 2 DDP ranks match 1 process."""

import pytest

from minimind.events import read_events, validate_event
from tests.e2e.conftest import EXACT_OPTIMIZER, finished_run, kill_then_resume, losses_by_step, make_run
from tests.e2e.test_ddp import torchrun

# SMALL: max_seq_len 32, 16 steps, checkpoints every 5. Phases: 8 tokens for steps 1-4, 16 for 5-8, 32 after.
CURRICULUM = ["data.seq_len_schedule=[[0, 8], [0.25, 16], [0.5, 32]]", EXACT_OPTIMIZER]  # two ranks vs one at 1e-5


@pytest.fixture(scope="module")
def reference(tmp_path_factory, small_dataset):
    return finished_run(tmp_path_factory.mktemp("curriculum"), small_dataset, "ref", CURRICULUM)


def test_events_carry_the_phases_and_each_steps_window(reference):
    events = read_events(reference / "events.jsonl")
    for event in events:
        validate_event(event)
    started = events[0]
    assert started["seq_len_schedule"] == [[0, 8], [4, 16], [8, 32]]
    assert started["tokens_per_step"] == 4 * 2 * 32
    steps = [e for e in events if e["type"] == "step"]
    assert [e["seq_len"] for e in steps] == [8] * 4 + [16] * 4 + [32] * 8
    assert [e["tokens_seen"] for e in steps] == [256 * s for s in range(1, 17)]  # constant tokens per step
    assert all(e["eta_s"] is not None and e["tokens_per_s"] > 0 for e in steps)
    infos = [(e["step"], e["message"]) for e in events
             if e["type"] == "info" and e["message"].startswith("sequence-length curriculum")]
    assert infos == [(4, "sequence-length curriculum: windows of 16 tokens from step 5 (micro-batch 8 x 16)"),
                     (8, "sequence-length curriculum: windows of 32 tokens from step 9 (micro-batch 4 x 32)")]
    assert losses_by_step(reference)[16][0] < losses_by_step(reference)[1][0] - 0.5


def test_sigkill_in_the_middle_of_a_phase_then_resume_is_bitwise_exact(tmp_path, small_dataset, reference):
    run_dir = make_run(tmp_path, small_dataset, "killed", CURRICULUM)
    kill_then_resume(run_dir, after_step=7, saved_step=5)  # saved inside the 16-token phase (steps 5-8)
    assert losses_by_step(run_dir) == losses_by_step(reference)
    resumed = [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "step"][-11:]
    assert [e["seq_len"] for e in resumed] == [16] * 3 + [32] * 8


def test_two_ranks_match_one_process_with_double_batch(tmp_path, small_dataset, reference):
    ddp = make_run(tmp_path, small_dataset, "ddp", [*CURRICULUM, "train.batch_size=2"])
    code, _, err = torchrun(ddp)
    assert code == 0, err
    single, both = losses_by_step(reference), losses_by_step(ddp)
    assert sorted(both) == list(range(1, 17))
    for step in both:
        assert abs(both[step][0] - single[step][0]) < 1e-5, (step, both[step], single[step])
