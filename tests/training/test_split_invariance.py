"""What a step trains and what validation measures do not depend on how a step is cut into
micro-batches (an out-of-memory re-split, batch_size auto, another --nproc): same samples, same
token mean, in packed and padded mode."""

from __future__ import annotations

import pytest
import torch

from minimind.training.build import build
from minimind.training.faults import Faults
from minimind.training.memory import Split
from minimind.training.oom import OOMRecovery
from minimind.training.state import TrainState
from minimind.training.step import evaluate, train_step
from tests.e2e.conftest import EXACT_OPTIMIZER
from tests.training.test_oom import Recorded


def _weights(built) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in built.model.state_dict().items()}


@pytest.mark.parametrize("packing", ["true", "false"])
def test_the_validation_loss_of_the_same_weights_is_the_same_at_any_micro_batch_and_after_an_oom(make_config,
                                                                                               packing):
    built = build(make_config("train.batch_size=4", "train.accumulation_steps=2", "train.eval_samples=13",
                              f"data.packing={packing}"))
    state = TrainState()
    r = train_step(built, state)
    state.advance(r.loss, r.tokens)
    reference = evaluate(built)
    position = built.loader.state_dict()
    for b in (1, 2, 8):
        built.resplit(Split.fixed(b, 8 // b), position)
        assert evaluate(built) == pytest.approx(reference, rel=1e-6, abs=0), b

    # A real out-of-memory retry re-splits the run; with the weights put back, validation is unchanged.
    built.resplit(Split.fixed(4, 2), position)
    before = _weights(built)
    built.callbacks = Faults.from_env({"MINIMIND_FAULT_OOM_MICRO_STEPS": "1"}).callbacks()
    OOMRecovery(built, Recorded()).step(state)
    assert built.split.batch_size == 2
    built.model.load_state_dict(before)
    assert evaluate(built) == pytest.approx(reference, rel=1e-6, abs=0)


@pytest.mark.parametrize("packing", ["false", "true"])
def test_a_step_trains_the_same_weights_however_it_is_split(make_config, packing):
    """8 x 1, 4 x 2 and 1 x 8 (padded rows have different real tokens per micro-batch): the loss is
    a mean over the step's tokens, so three steps end at the same weights (fp32). At MiniMind's
    learning rate: AdamW turns the summation-order noise of a near-zero gradient into up to one lr of
    update, which a larger lr would show as a difference above the tolerance. AdamW, not the
    profiles' Muon: see EXACT_OPTIMIZER."""
    results = {}
    for b, a in [(8, 1), (4, 2), (1, 8)]:
        built = build(make_config(f"train.batch_size={b}", f"train.accumulation_steps={a}",
                                  f"data.packing={packing}", "train.learning_rate=5e-4", EXACT_OPTIMIZER))
        state, losses = TrainState(), []
        for _ in range(3):
            r = train_step(built, state)
            state.advance(r.loss, r.tokens)
            losses.append(r.loss)
        results[(b, a)] = (losses, _weights(built), state.tokens_seen)
    (ref_losses, ref_weights, ref_tokens) = results[(8, 1)]
    for split, (losses, weights, tokens) in results.items():
        assert tokens == ref_tokens, split
        assert losses == pytest.approx(ref_losses, rel=0, abs=1e-5), split
        for name, w in weights.items():
            assert (w - ref_weights[name]).abs().max().item() < 1e-5, (split, name)
