"""The sequence-length curriculum (``data.seq_len_schedule``): validation, where the phases fall,
what each step trains on, the data position across phases, exact resume, and the ETA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minimind.checkpoint import find_checkpoint
from minimind.config import ConfigError, resolve
from minimind.data.dataset import BatchLoader, PretrainDataset
from minimind.training.build import build
from minimind.training.curriculum import Curriculum, PhaseTimer
from minimind.training.state import TrainState, restore, save
from minimind.training.step import train_step
from tests.conftest import run_cli

# SMALL (tests/training/conftest.py): max_seq_len 32, batch 4 x 2 micro-batches = 256 tokens per step.
SCHEDULE = "data.seq_len_schedule=[[0, 8], [0.3, 16], [0.6, 32]]"


@pytest.mark.parametrize("schedule, message", [
    ("[[0.1, 8]]", "the first phase must start at fraction 0"),
    ("[[0, 8], [0.5, 16], [0.5, 32]]", "fraction 0.5 must be greater than the one before (0.5)"),
    ("[[0, 8], [0.6, 16], [0.3, 32]]", "fraction 0.3 must be greater than the one before (0.6)"),
    ("[[0, 8], [1.0, 16]]", "fraction 1.0 must be in [0, 1)"),
    ("[[0, 64]]", "seq_len 64 exceeds data.max_seq_len=32"),
    ("[[0, 12]]", "seq_len 12 does not divide data.max_seq_len=32"),
    ("[[0, 0]]", "seq_len 0 must be a positive whole number"),
    ("[[0, 8, 1]]", "is not a [fraction, seq_len] pair"),
    ("[0, 8]", "is not a [fraction, seq_len] pair"),
    ("0:8", "is not a valid list or null (expected a JSON list)"),
])
def test_a_bad_schedule_is_one_clear_error(schedule, message):
    with pytest.raises(ConfigError) as err:
        resolve("tiny", ["data.max_seq_len=32", f"data.seq_len_schedule={schedule}"])
    assert message in str(err.value)


def test_padded_samples_are_refused_and_off_means_off():
    with pytest.raises(ConfigError, match="needs packed samples"):
        resolve("tiny", ["data.packing=false", "data.seq_len_schedule=[[0, 64]]"])
    assert resolve("tiny", ["data.seq_len_schedule=null"]).data.seq_len_schedule is None
    cfg = resolve("tiny", ["data.seq_len_schedule=[[0, 32], [0.5, 128]]"])
    assert cfg.data.seq_len_schedule == [[0, 32], [0.5, 128]]


def test_the_cli_prints_one_line_and_starts_nothing(tmp_path):
    proc = run_cli("pretrain", "--set", "data.seq_len_schedule=[[0, 100]]", "--out", str(tmp_path / "out"),
                   cwd=tmp_path)
    assert proc.returncode == 2
    first, hint = proc.stderr.strip().splitlines()
    assert "seq_len 100 does not divide data.max_seq_len=512" in first
    assert hint == "hint: use a divisor such as 64, 128, 256"
    assert not (tmp_path / "out").exists()


def test_phases_start_at_their_share_of_the_run():
    c = Curriculum.plan([[0, 128], [0.3, 256], [0.6, 512]], 10)
    assert c.to_event() == [[0, 128], [3, 256], [6, 512]]
    assert [c.seq_len_at(s) for s in range(10)] == [128] * 3 + [256] * 3 + [512] * 4
    assert c.segments(0) == [(128, 3), (256, 3), (512, 4)] and c.segments(4) == [(256, 2), (512, 4)]
    # A run too short for every phase: a phase starting on the same step as an earlier one replaces
    # it, one that would start at the end is dropped (0.1 x 3 rounds to step 0, 0.99 x 3 to step 3).
    assert Curriculum.plan([[0, 8], [0.1, 16], [0.2, 32], [0.99, 64]], 3).to_event() == [[0, 16], [1, 32]]
    assert Curriculum.plan(None, 10) is None and Curriculum.plan([], 10) is None


def test_a_shorter_window_holds_the_same_targets_and_rank_shares(small_dataset):
    """Each sample is cut into max_seq_len / seq_len windows; the order counts whole samples, so two
    ranks of batch b together still read what one rank of batch 2b reads."""
    ds = PretrainDataset(small_dataset, 32)
    full = next(BatchLoader(ds, 4, seed=7))
    one = BatchLoader(ds, 4, seed=7)
    one.seq_len = 8
    cut = next(one)
    assert cut.input_ids.shape == cut.targets.shape == cut.loss_mask.shape == (16, 8)
    assert np.array_equal(cut.input_ids.reshape(4, 32), full.input_ids)
    assert np.array_equal(cut.targets.reshape(4, 32), full.targets)
    assert np.array_equal(cut.targets[1], full.input_ids[0, 9:17])  # the next token, within the sample
    ranks = [BatchLoader(ds, 2, seed=7, rank=r, world_size=2) for r in (0, 1)]
    for loader in ranks:
        loader.seq_len = 8
    shares = [next(loader) for loader in ranks]
    assert np.array_equal(np.concatenate([s.targets for s in shares]), cut.targets)
    assert one.state_dict() == {**ranks[0].state_dict(), "global_batch": 4}


def test_windows_change_at_the_right_steps_with_constant_tokens_per_step(make_config):
    built = build(make_config(SCHEDULE, "train.max_steps=10"))
    shapes: list[tuple[int, int]] = []
    built.model.register_forward_pre_hook(lambda _m, args: shapes.append(tuple(args[0].shape)))
    state, tokens = TrainState(), []
    while state.step < built.total_steps:
        result = train_step(built, state)
        state.advance(result.loss, result.tokens)
        tokens.append(result.tokens)
    assert built.curriculum.to_event() == [[0, 8], [3, 16], [6, 32]]
    # Two micro-batches per step; batch 4 x 32 tokens becomes 16 x 8, then 8 x 16, then 4 x 32.
    assert shapes == [(16, 8)] * 6 + [(8, 16)] * 6 + [(4, 32)] * 8
    assert tokens == [4 * 2 * 32] * 10 and state.tokens_seen == 10 * 256


@pytest.mark.slow  # two builds, fourteen real steps and a checkpoint
def test_resume_in_the_middle_of_a_phase_is_bitwise_exact(make_config, tmp_path):
    """fp32: a checkpoint at step 4 (inside the 16-token phase) continues through the next phase
    change exactly as the uninterrupted run does: same losses, same weights."""
    cfg = make_config(SCHEDULE, "train.max_steps=10")
    built, state = build(cfg), TrainState()
    losses = []
    while state.step < built.total_steps:
        result = train_step(built, state)
        state.advance(result.loss, result.tokens)
        losses.append(result.loss)
        if state.step == 4:
            save(built, state, tmp_path / "run", "interval", elapsed_s=1.0)

    fresh = build(cfg)
    resumed, notes = restore(fresh, find_checkpoint(tmp_path / "run"))
    assert notes == [] and resumed.step == 4 and fresh.seq_len_at(resumed.step) == 16
    tail = []
    while resumed.step < fresh.total_steps:
        result = train_step(fresh, resumed)
        resumed.advance(result.loss, result.tokens)
        tail.append(result.loss)
    assert tail == losses[4:]
    for a, b in zip(built.model.state_dict().values(), fresh.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_the_eta_prices_each_phase_at_its_own_step_time():
    """Later phases of longer windows cost more per step: the ETA does not take the current phase's
    step time for the rest of the run."""
    c = Curriculum.plan([[0, 8], [0.5, 32]], 8)  # steps 0-3 at 8 tokens, 4-7 at 32
    length = {"now": 8}
    timer = PhaseTimer(c, cost=lambda s: {8: 1.0, 32: 2.0}[s], window=lambda: length["now"], warmup=0)
    assert timer.eta(8, 0.0) is None
    for _ in range(3):
        timer.add(1.0)
    # After 3 steps: 1 more short step (1 s) and 4 long ones, priced by cost until one is measured.
    assert timer.eta(5, 1.0) == pytest.approx(1 * 1.0 + 4 * 2.0)
    timer.add(1.0)
    length["now"] = 32
    timer.add(9.0)  # the first step of a new length is not counted (allocation, recompiling)
    assert timer.eta(3, 9.0) == pytest.approx(3 * 2.0)
    timer.add(3.0)
    assert timer.eta(2, 3.0) == pytest.approx(2 * 3.0)
    assert timer.eta(0, 3.0) == 0.0
