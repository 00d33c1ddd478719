"""Metrics computed once by the trainer."""

from __future__ import annotations

import pytest

from minimind.metrics import LossEMA, StepTimer, expert_load, format_duration


def test_loss_ema_is_debiased_and_round_trips():
    ema = LossEMA(beta=0.9)
    assert ema.mean is None
    assert ema.update(4.0) == pytest.approx(4.0)  # debiased: the first value is the value itself
    assert ema.update(2.0) == pytest.approx((0.09 * 4.0 + 0.1 * 2.0) / 0.19)
    copy = LossEMA()
    copy.load_state_dict(ema.state_dict())
    assert copy.update(3.0) == ema.update(3.0)


def test_eta_excludes_warmup_steps():
    timer = StepTimer(warmup=2)
    assert timer.eta(10, 1.0) is None
    timer.add(50.0)  # compilation, first allocation...
    assert timer.eta(10, 50.0) == 500.0  # no measured step yet: the last one
    timer.add(30.0)
    for _ in range(4):
        timer.add(2.0)
    assert timer.eta(10, 2.0) == 20.0 and timer.eta(0, 2.0) == 0.0


def test_expert_load_fractions_and_worst_imbalance():
    load, imbalance = expert_load([[1, 1, 1, 1], [4, 0, 0, 0], [0, 0, 0, 0]])
    assert load[0] == [0.25] * 4 and load[1] == [1.0, 0.0, 0.0, 0.0] and load[2] == [0.0] * 4
    assert imbalance == 4.0


@pytest.mark.parametrize("seconds, text", [(None, "?"), (42, "0:00:42"), (185, "0:03:05"), (3720, "1:02:00"),
                                            (90061, "1d 1:01:01")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
