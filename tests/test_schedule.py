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


def _max_relative_step(values):
    return max(abs(b - a) / a for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("name", ["minimind", "cosine"])
@pytest.mark.parametrize("old,new", [(100, 40), (100, 300), (100, 55)])
def test_a_replan_continues_from_the_current_lr_without_a_jump(name, old, new):
    from minimind.schedule import Replan, SchedulePlan, final_lr

    cfg = TrainConfig(schedule=name, learning_rate=3e-3, warmup_steps=5 if name == "cosine" else 0)
    at = 30
    plan = SchedulePlan(new, new, (Replan(at, lr_at(at, old, cfg), old),))
    before = [lr_at(s, old, cfg) for s in range(at)]
    after = [plan.lr(s, cfg) for s in range(new + 5)]
    assert after[:at] == before  # the steps already trained keep their lr
    assert after[at] == lr_at(at, old, cfg)  # where the old plan was...
    # ...then smoothly down to the final lr at the new end, and there it stays.
    assert _max_relative_step(after[at - 3:at + 2]) < 0.05
    assert all(a >= b for a, b in zip(after[at:], after[at + 1:]))
    assert after[new] == after[-1] == final_lr(cfg)
    assert final_lr(cfg) < after[new - 1] < 1.25 * final_lr(cfg)
    # The plain re-plan over the new total would have jumped at the resume step.
    assert abs(lr_at(at, new, cfg) - lr_at(at, old, cfg)) / lr_at(at, old, cfg) > 0.05


def test_chained_replans_and_their_drawn_plan():
    from minimind.schedule import Replan, SchedulePlan

    cfg = TrainConfig(learning_rate=1e-3)
    first = Replan(10, lr_at(10, 100, cfg), 100)
    mid = SchedulePlan(50, 50, (first,))
    second = Replan(30, mid.lr(30, cfg), 50)
    plan = SchedulePlan(80, 80, (first, second))
    assert [plan.lr(s, cfg) for s in range(30)] == [mid.lr(s, cfg) for s in range(30)]
    assert plan.lr(30, cfg) == mid.lr(30, cfg) and plan.lr(80, cfg) == pytest.approx(1e-4)
    drawn = planned_schedule(80, cfg, samples=7, plan=plan)
    assert [10, plan.lr(10, cfg)] in drawn and [30, plan.lr(30, cfg)] in drawn
    assert SchedulePlan.from_dict(plan.to_dict()) == plan
    assert planned_schedule(80, cfg) == planned_schedule(80, cfg, plan=SchedulePlan(80, 80))
