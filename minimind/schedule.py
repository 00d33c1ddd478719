"""Learning-rate schedules as pure functions of the optimizer step (0-based) and the total.

A resume that changes the run's length may re-plan the schedule (``Replan``): from the resume
step on, the lr decays from its value there to the schedule's final lr over the remaining steps,
so it never jumps. ``lr_at(step, total, cfg, replans)`` stays a pure function of its arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


def minimind_lr(step: int, total: int, lr: float) -> float:
    """MiniMind's schedule: lr/10 + 0.5*lr*(1 + cos(pi*t/T)); starts at 1.1*lr, ends at 0.1*lr."""
    return lr / 10 + 0.5 * lr * (1 + math.cos(math.pi * min(step, total) / max(total, 1)))


def cosine_lr(step: int, total: int, lr: float, warmup: int = 0, min_ratio: float = 0.1) -> float:
    """Linear warm-up over ``warmup`` steps to ``lr``, then cosine decay to ``min_ratio * lr`` at ``total``."""
    min_lr = lr * min_ratio
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    if step >= total:
        return min_lr
    decay_steps = max(total - warmup, 1)
    progress = (step - warmup) / decay_steps
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * progress))


def constant_lr(step: int, total: int, lr: float, warmup: int = 0) -> float:
    if warmup > 0 and step < warmup:
        return lr * (step + 1) / warmup
    return lr


@dataclass(frozen=True)
class Replan:
    """From ``step`` on, decay from ``lr`` (the lr there under the plan before) to the final lr;
    ``before`` is the total that plan was made for (it still gives the lr of the earlier steps)."""

    step: int
    lr: float
    before: int


@dataclass
class SchedulePlan:
    """What a run's lr follows: the total the schedule is planned over (``keep`` leaves it at the
    original one when the run's length changes), the run's length it was last planned for, and
    the re-plans so far (oldest first)."""

    total: int
    run_total: int
    replans: tuple[Replan, ...] = field(default_factory=tuple)

    def lr(self, step: int, train_cfg) -> float:
        return lr_at(step, self.total, train_cfg, self.replans)

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "run_total": self.run_total,
                "replans": [[r.step, r.lr, r.before] for r in self.replans]}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> SchedulePlan | None:
        if not d:
            return None
        return cls(int(d["total"]), int(d["run_total"]),
                   tuple(Replan(int(s), float(lr), int(b)) for s, lr, b in d.get("replans") or []))


def final_lr(train_cfg) -> float:
    """Where the schedule ends (and stays past its total)."""
    if train_cfg.schedule == "minimind":
        return minimind_lr(1, 1, train_cfg.learning_rate)
    if train_cfg.schedule == "cosine":
        return train_cfg.learning_rate * train_cfg.min_lr_ratio
    return train_cfg.learning_rate


def decay_lr(step: int, start: int, total: int, lr: float, end_lr: float) -> float:
    """Cosine from ``lr`` at ``start`` to ``end_lr`` at ``total`` (and ``end_lr`` past it)."""
    if step >= total:
        return end_lr
    return end_lr + 0.5 * (lr - end_lr) * (1 + math.cos(math.pi * (step - start) / max(total - start, 1)))


def base_lr(step: int, total: int, train_cfg) -> float:
    name = train_cfg.schedule
    if name == "minimind":
        return minimind_lr(step, total, train_cfg.learning_rate)
    if name == "cosine":
        return cosine_lr(step, total, train_cfg.learning_rate, train_cfg.warmup_steps, train_cfg.min_lr_ratio)
    if name == "constant":
        return constant_lr(step, total, train_cfg.learning_rate, train_cfg.warmup_steps)
    raise ValueError(f"unknown schedule {name!r}")


def lr_at(step: int, total: int, train_cfg, replans: tuple[Replan, ...] = ()) -> float:
    """The lr for optimizer step ``step`` under ``train_cfg`` (a TrainConfig), planned over
    ``total`` steps, after ``replans`` (none for a run whose length never changed)."""
    if not replans:
        return base_lr(step, total, train_cfg)
    done = [r for r in replans if r.step <= step]
    if not done:
        return base_lr(step, replans[0].before, train_cfg)
    last = done[-1]
    end = replans[len(done)].before if len(done) < len(replans) else total
    return decay_lr(step, last.step, end, last.lr, final_lr(train_cfg))


def planned_schedule(total: int, train_cfg, samples: int = 200, plan: SchedulePlan | None = None) -> list[list[float]]:
    """[step, lr] samples of the whole plan of a run of ``total`` steps, for the dashboard to draw
    from the first event (each re-plan step is among them, so the bend shows)."""
    if total <= 0:
        return []
    steps = {round(i * (total - 1) / max(samples - 1, 1)) for i in range(samples)}
    if plan is None:
        return [[s, lr_at(s, total, train_cfg)] for s in sorted(steps)]
    steps |= {r.step for r in plan.replans if r.step < total}
    return [[s, plan.lr(s, train_cfg)] for s in sorted(steps)]
