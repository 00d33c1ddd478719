"""The memory estimate, the split rules of batch_size auto, and re-split data order."""

from __future__ import annotations

import numpy as np
import pytest

from minimind.config import ConfigError, resolve
from minimind.data.dataset import EpochOrder
from minimind.errors import MemoryTooSmall
from minimind.training import policy
from minimind.training.memory import (
    check_fits,
    estimate,
    largest_fitting,
    parameter_count,
    requested_samples,
    split_for,
)


def test_the_estimate_grows_with_the_batch_and_shrinks_with_autocast():
    cfg = resolve("default")
    n = parameter_count(cfg.model)
    one, eight = (estimate(cfg, b, dtype_name="fp32", device_type="cpu", params=n) for b in (1, 8))
    assert eight.activations_mib == pytest.approx(8 * one.activations_mib)
    assert one.params_mib == eight.params_mib == pytest.approx(25.8e6 * 4 / 2**20, rel=0.02)
    assert one.optimizer_mib == 2 * one.grads_mib
    bf16 = estimate(cfg, 8, dtype_name="bf16", device_type="cpu", params=n)
    assert bf16.activations_mib < 0.8 * eight.activations_mib and bf16.params_mib > eight.params_mib
    fits = estimate(cfg, 8, dtype_name="fp32", device_type="cpu", available=(1e6, 2e6), params=n)
    assert fits.fits and not estimate(cfg, 8, dtype_name="fp32", device_type="cpu", available=(500, 2e6), params=n).fits


def test_a_run_that_clearly_does_not_fit_is_refused_with_a_batch_size_that_fits(monkeypatch):
    import torch

    cfg = resolve("default", ["train.batch_size=16", "train.accumulation_steps=4"])
    limit = (estimate(cfg, 4, dtype_name="fp32", device_type="cpu").needed_mib + 1) / 0.9  # 4 fits, 5 not
    monkeypatch.setenv("MINIMIND_AVAILABLE_MEMORY_MIB", str(limit))
    with pytest.raises(MemoryTooSmall) as err:
        check_fits(cfg, "fp32", torch.device("cpu"))
    assert "micro-batch 16 needs about" in err.value.message and "MiB of available RAM" in err.value.message
    assert err.value.hint.startswith("use --batch-size 4 --accumulation-steps 16 (the same samples per step")
    four = estimate(cfg, 4, dtype_name="fp32", device_type="cpu").needed_mib
    monkeypatch.setenv("MINIMIND_AVAILABLE_MEMORY_MIB", str(four / 0.95))
    cfg.train.batch_size = 4  # inside the safety margin, but not over what is available: not refused
    assert not check_fits(cfg, "fp32", torch.device("cpu")).fits
    one = estimate(cfg, 1, dtype_name="fp32", device_type="cpu")
    model_mib = one.params_mib + one.grads_mib + one.optimizer_mib
    monkeypatch.setenv("MINIMIND_AVAILABLE_MEMORY_MIB", str(model_mib + one.activations_mib / 2))
    with pytest.raises(MemoryTooSmall, match="even at micro-batch 1") as err:  # the activations do not fit
        check_fits(cfg, "fp32", torch.device("cpu"))
    assert "max_seq_len" in err.value.hint and "--nproc" in err.value.hint


def test_a_model_that_alone_does_not_fit_is_told_what_would_instead_of_more_processes(monkeypatch):
    import torch

    cfg = resolve("default")
    monkeypatch.setenv("MINIMIND_AVAILABLE_MEMORY_MIB", "200")  # the 25.8M model's weights and AdamW need ~400
    with pytest.raises(MemoryTooSmall, match="even at micro-batch 1") as err:
        check_fits(cfg, "fp32", torch.device("cpu"))
    hint = err.value.hint
    assert "--nproc would not help" in hint and "max_seq_len" not in hint
    width = int(hint.split("model.hidden_size ")[1].split()[0])
    layers = int(hint.split("model.num_hidden_layers ")[1].split()[0])
    assert 64 <= width < 512 and 1 <= layers < 8
    def fits(*change):  # at micro-batch 1, keeping the safety margin: the rule the suggestion follows
        return estimate(resolve("default", list(change)), 1, dtype_name="fp32", device_type="cpu",
                        available=(200.0, None)).fits

    assert fits(f"model.hidden_size={width}") and fits(f"model.num_hidden_layers={layers}")
    assert not fits(f"model.hidden_size={width + 64}") and not fits(f"model.num_hidden_layers={layers + 1}")


def test_largest_fitting_finds_the_boundary():
    assert largest_fitting(lambda b: b <= 37) == 37
    assert largest_fitting(lambda b: b <= 37, limit=20) == 20
    assert largest_fitting(lambda b: False) == 0
    assert largest_fitting(lambda b: True, limit=1) == 1


@pytest.mark.parametrize("fit, requested, split, exact", [
    (16, 256, (16, 16), True),
    (12, 256, (8, 32), True),  # 8 divides 256 and is more than half of 12
    (40, 16, (16, 1), True),  # never more than one step's samples
    (7, 30, (6, 5), True),
    (7, 26, (7, 4), False),  # no divisor of 26 in 4..7: 28 samples per step, said so
])
def test_auto_keeps_the_samples_per_step_when_a_divisor_fits(fit, requested, split, exact):
    s = split_for(fit, requested)
    assert (s.batch_size, s.accumulation_steps) == split and s.exact is exact
    assert ("not the requested" in s.note(1)) is not exact


def test_batch_size_auto_in_the_config_keeps_the_samples_per_step_before_it():
    assert resolve("default", ["train.batch_size=auto"]).train.samples_per_step == 128  # 32 x 4
    cfg = resolve("tiny", ["train.batch_size=4", "train.accumulation_steps=2", "train.batch_size=auto"])
    assert cfg.train.auto_batch and requested_samples(cfg.train) == 8
    assert resolve("tiny", ["train.batch_size=auto", "train.samples_per_step=24"]).train.samples_per_step == 24
    with pytest.raises(ConfigError, match="not a number or auto"):
        resolve("tiny", ["train.batch_size=big"])


def test_a_resplit_serves_the_same_samples_per_step_in_the_same_order():
    whole = EpochOrder(1003, 4, seed=5, accumulation_steps=2)
    halves = EpochOrder(1003, 2, seed=5, accumulation_steps=4)
    assert whole.batches_per_epoch * 4 == halves.batches_per_epoch * 2  # epochs end at the same sample
    for _ in range(3 * whole.batches_per_epoch // 2):  # across two epoch ends
        first = np.concatenate([whole.next_indices()[0] for _ in range(2)])
        assert np.array_equal(first, np.concatenate([halves.next_indices()[0] for _ in range(4)]))


def test_a_resume_keeps_the_split_the_checkpoint_recorded_and_leaves_the_config_alone():
    cfg = resolve("tiny", ["train.batch_size=8", "train.accumulation_steps=2"])
    meta = {"split": {"batch_size": 4, "accumulation_steps": 4}, "world_size": 1}
    split, note = policy.saved_split(cfg, meta, 1)
    assert (split.batch_size, split.accumulation_steps) == (4, 4) and "micro-batch 4 x accumulation 4" in note
    assert (cfg.train.batch_size, cfg.train.accumulation_steps) == (8, 2)  # the request stays the request
    other = resolve("tiny", ["train.batch_size=8", "train.accumulation_steps=4"])  # a new global batch wins
    assert policy.saved_split(other, meta, 1) == (None, None)
    assert policy.saved_split(cfg, meta, 2) == (None, None)  # another world size: the config's rule
    auto = resolve("tiny", ["train.batch_size=4", "train.accumulation_steps=4", "train.batch_size=auto"])
    split, _ = policy.saved_split(auto, meta, 1)
    assert split.batch_size == 4 and auto.train.auto_batch
