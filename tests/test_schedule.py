import math

import pytest

from minimind.config import TrainConfig
from minimind.schedule import constant_lr, cosine_lr, lr_at, minimind_lr, planned_schedule


def test_minimind_schedule_endpoints():
    assert minimind_lr(0, 100, 5e-4) == pytest.approx(1.1 * 5e-4)
    assert minimind_lr(50, 100, 5e-4) == pytest.approx(5e-4 / 10 + 0.5 * 5e-4)
    assert minimind_lr(100, 100, 5e-4) == pytest.approx(0.1 * 5e-4)
    assert minimind_lr(500, 100, 5e-4) == pytest.approx(0.1 * 5e-4)  # never below the floor


def test_cosine_warmup_boundary_and_floor():
    lr = 1e-3
    assert cosine_lr(0, 100, lr, warmup=10) == pytest.approx(lr / 10)
    assert cosine_lr(9, 100, lr, warmup=10) == pytest.approx(lr)
    assert cosine_lr(10, 100, lr, warmup=10) == pytest.approx(lr)  # decay starts at the peak
    assert cosine_lr(100, 100, lr, warmup=10, min_ratio=0.1) == pytest.approx(1e-4)
    assert cosine_lr(1000, 100, lr, warmup=10, min_ratio=0.1) == pytest.approx(1e-4)
    values = [cosine_lr(s, 100, lr, warmup=10) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_cosine_warmup_longer_than_total():
    lr = 1e-3
    values = [cosine_lr(s, 5, lr, warmup=10) for s in range(5)]
    assert all(0 < v <= lr for v in values) and not any(math.isnan(v) for v in values)


def test_constant_with_warmup():
    assert constant_lr(0, 10, 1.0, warmup=4) == 0.25
    assert constant_lr(7, 10, 1.0, warmup=4) == 1.0


def test_planned_schedule_matches_lr_at():
    cfg = TrainConfig(schedule="cosine", warmup_steps=5, learning_rate=1e-3)
    plan = planned_schedule(50, cfg, samples=20)
    assert plan[0][0] == 0 and plan[-1][0] == 49
    assert all(v == lr_at(int(s), 50, cfg) for s, v in plan)
