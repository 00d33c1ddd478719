"""The public step API (``build`` + ``train_step``) and the state a checkpoint carries."""

from __future__ import annotations

import math

import pytest
import torch

from minimind.checkpoint import find_checkpoint
from minimind.training.build import build
from minimind.training.faults import Faults
from minimind.training.state import TrainState, restore, save
from minimind.training.step import StepResult, evaluate, train_step


def _params(built) -> list[torch.Tensor]:
    return [p.detach().clone() for p in built.model.parameters()]


@pytest.mark.slow  # a dozen real optimizer steps
def test_steps_lower_the_loss_and_evaluate_is_deterministic(make_config):
    built = build(make_config())
    state = TrainState()
    first = train_step(built, state)
    assert first.finite and first.tokens == 4 * 2 * 32 and first.grad_norm > 0 and first.seconds > 0
    for _ in range(11):
        result = train_step(built, state)
        state.advance(result.loss, result.tokens)
    assert result.loss < first.loss - 0.3
    assert state.step == 11 and state.tokens_seen == 11 * 256
    val = evaluate(built)
    assert val is not None and math.isfinite(val) and evaluate(built) == val


def test_a_checkpointed_state_gives_the_same_next_loss(make_config, tmp_path):
    cfg = make_config()
    built = build(cfg)
    state = TrainState()
    for _ in range(3):
        r = train_step(built, state)
        state.advance(r.loss, r.tokens)
    run_dir = tmp_path / "run"
    save(built, state, run_dir, "interval", elapsed_s=1.0)
    expected = [train_step(built, state).loss for _ in range(2)]

    fresh = build(cfg)
    assert train_step(fresh, TrainState()).loss != expected[0]  # a fresh build is somewhere else...
    fresh = build(cfg)
    restored, notes = restore(fresh, find_checkpoint(run_dir))
    assert notes == []
    assert (restored.step, restored.tokens_seen, restored.last_loss) == (3, state.tokens_seen, state.last_loss)
    assert restored.loss_ema.mean == state.loss_ema.mean and restored.elapsed_before_s == 1.0
    assert [train_step(fresh, restored).loss for _ in range(2)] == expected  # ...the restored one is exact


def test_a_nan_step_is_not_finite_and_leaves_the_weights_alone(make_config):
    built = build(make_config())
    before = _params(built)
    built.callbacks = Faults(nan_attempts=frozenset({1})).callbacks()
    state = TrainState(attempts=1)
    built.callbacks.step_started(state)  # what the loop does before each attempt
    result = train_step(built, state)
    assert not result.finite and math.isnan(result.loss)
    assert all(torch.equal(a, b) for a, b in zip(before, _params(built)))
    assert all(p.grad is None for p in built.model.parameters())  # nothing leaks into the next step
    state.attempts += 1
    built.callbacks.step_started(state)
    assert train_step(built, state).finite


@pytest.mark.parametrize("loss, grad, overflow, finite", [
    (2.0, 1.0, False, True),
    (float("nan"), 1.0, False, False),
    (2.0, float("inf"), False, False),
    (2.0, float("inf"), True, True),  # fp16: the scaler skips the update, the step counts
    (float("inf"), float("inf"), True, False),
])
def test_the_one_finiteness_rule(loss, grad, overflow, finite):
    assert StepResult(loss, 0.0, 10, grad, 1e-3, 0.1, scaler_overflow=overflow).finite is finite


def test_the_learning_rate_follows_the_schedule_at_the_state_step(make_config):
    from minimind.schedule import lr_at

    built = build(make_config("train.max_steps=10"))
    state = TrainState(step=7)
    result = train_step(built, state)
    assert result.lr == lr_at(7, built.total_steps, built.cfg.train)
    groups = built.optimizer.param_groups
    assert {g.get("lr_scale", 1.0) for g in groups} == {1.0, built.cfg.train.muon_lr / built.cfg.train.learning_rate}
    assert all(g["lr"] == pytest.approx(result.lr * g.get("lr_scale", 1.0), rel=1e-12) for g in groups)


def test_doc_mask_reaches_the_training_step_and_validation(make_config):
    built = build(make_config("data.doc_mask=true"))
    assert built.train_data.doc_mask and built.val_data.doc_mask
    weights = {k: v.clone() for k, v in built.model.state_dict().items()}
    position = built.loader.state_dict()
    masked_val, masked = evaluate(built), train_step(built, TrainState())
    built.model.load_state_dict(weights)
    built.loader.load_state_dict(position)
    built.train_data.doc_mask = built.val_data.doc_mask = False  # the same weights and samples, unmasked
    plain_val, plain = evaluate(built), train_step(built, TrainState())
    assert masked.finite and plain.finite and masked.tokens == plain.tokens
    assert abs(masked.loss - plain.loss) > 1e-4 and abs(masked_val - plain_val) > 1e-4
