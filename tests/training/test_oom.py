"""Out-of-memory recovery with the real step: the same samples, re-split, give the same losses."""

from __future__ import annotations

import math

import pytest
import torch

from minimind.errors import OutOfMemoryFailure
from minimind.training.build import build
from minimind.training.faults import Faults
from minimind.training.memory import is_out_of_memory
from minimind.training.oom import OOMRecovery, smaller_split
from minimind.training.report import Reporter
from minimind.training.state import TrainState


class Recorded(Reporter):
    """A Reporter that keeps its events in a list (no run directory)."""

    def __init__(self):
        super().__init__(None, is_main=False)
        self.events: list[tuple[str, dict]] = []

    def emit(self, type_, **fields):
        self.events.append((type_, fields))


def losses(cfg, steps: int, oom_at: str = "") -> tuple[list[float], Recorded, object]:
    built = build(cfg)
    report = Recorded()
    built.callbacks = Faults.from_env({"MINIMIND_FAULT_OOM_MICRO_STEPS": oom_at}).callbacks()
    runner = OOMRecovery(built, report)
    state, out = TrainState(), []
    for _ in range(steps):
        result = runner.step(state)
        state.advance(result.loss, result.tokens)
        out.append(result.loss)
    return out, report, built


@pytest.mark.slow  # two builds and six real steps
def test_an_oom_retries_the_same_step_on_the_same_samples_with_half_the_micro_batch(make_config):
    # micro-steps 1-2 are step 1 (4 x 2); the 2nd fails: step 1 reruns as 2 x 4, later steps keep it
    got, report, built = losses(make_config("train.batch_size=4", "train.accumulation_steps=2"), 3, oom_at="2")
    expected, _, _ = losses(make_config("train.batch_size=2", "train.accumulation_steps=4"), 3)
    assert max(abs(a - b) for a, b in zip(got, expected)) < 1e-6
    assert (built.split.batch_size, built.split.accumulation_steps) == (2, 4)
    assert (built.cfg.train.batch_size, built.cfg.train.accumulation_steps) == (4, 2)  # the request stays
    warnings = [f for t, f in report.events if t == "warning"]
    assert len(warnings) == 1 and warnings[0]["kind"] == "oom_retry" and warnings[0]["step"] == 1
    assert (warnings[0]["batch_size"], warnings[0]["accumulation_steps"]) == (2, 4)
    assert "same 8 samples per step" in warnings[0]["message"]


def test_oom_at_micro_batch_one_fails_with_the_numbers_and_the_knobs(make_config):
    built = build(make_config("train.batch_size=1", "train.accumulation_steps=2"))
    built.callbacks = Faults.from_env({"MINIMIND_FAULT_OOM_MICRO_STEPS": "1"}).callbacks()
    runner = OOMRecovery(built, Recorded())
    with pytest.raises(OutOfMemoryFailure) as err:
        runner.step(TrainState())
    assert err.value.exit_code == 1
    assert "out of memory at step 1 at micro-batch 1: peak" in err.value.message and "MiB of" in err.value.message
    assert "max_seq_len" in err.value.hint and "--nproc" in err.value.hint
    assert all(p.grad is None for p in built.model.parameters())


def test_the_smaller_split_keeps_the_samples_per_step():
    assert smaller_split(32, 8) == (16, 16)
    assert smaller_split(5, 8) == (2, 20)
    assert smaller_split(3, 1) == (1, 3)
    assert smaller_split(1, 8) is None


def test_cpu_allocation_failures_count_as_out_of_memory():
    try:
        torch.empty(2**62, dtype=torch.uint8)
    except RuntimeError as exc:
        assert is_out_of_memory(exc)
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_fault_callbacks_are_registered_only_when_asked_and_count_attempts():
    from minimind.training.callbacks import NO_CALLBACKS
    from minimind.training.faults import FaultCallbacks

    assert Faults.from_env({}).callbacks() is NO_CALLBACKS  # normal use: the do-nothing callbacks
    faults = Faults.from_env({"MINIMIND_FAULT_NAN_STEPS": "2", "MINIMIND_FAULT_OOM_MICRO_STEPS": "3"})
    callbacks = faults.callbacks()
    assert isinstance(callbacks, FaultCallbacks)
    loss = torch.tensor(2.0)
    for attempt, nan in ((1, False), (2, True), (3, False)):
        callbacks.step_started(TrainState(attempts=attempt))
        assert math.isnan(callbacks.micro_step_loss(loss)) is nan
    callbacks.micro_step_started()
    callbacks.micro_step_started()
    with pytest.raises(Exception) as err:  # noqa: PT011 - torch's out-of-memory error class
        callbacks.micro_step_started()
    assert is_out_of_memory(err.value) and "micro-step attempt 3" in str(err.value)
    callbacks.micro_step_started()  # only the chosen attempts fail
