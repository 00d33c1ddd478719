"""Learning-rate schedules as pure functions of the optimizer step (0-based) and the total."""

from __future__ import annotations

import math


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


def lr_at(step: int, total: int, train_cfg) -> float:
    """The lr for optimizer step ``step`` under ``train_cfg`` (a TrainConfig)."""
    name = train_cfg.schedule
    if name == "minimind":
        return minimind_lr(step, total, train_cfg.learning_rate)
    if name == "cosine":
        return cosine_lr(step, total, train_cfg.learning_rate, train_cfg.warmup_steps, train_cfg.min_lr_ratio)
    if name == "constant":
        return constant_lr(step, total, train_cfg.learning_rate, train_cfg.warmup_steps)
    raise ValueError(f"unknown schedule {name!r}")


def planned_schedule(total: int, train_cfg, samples: int = 200) -> list[list[float]]:
    """[step, lr] samples of the whole plan, for the dashboard to draw from the first event."""
    if total <= 0:
        return []
    steps = sorted({round(i * (total - 1) / max(samples - 1, 1)) for i in range(samples)})
    return [[s, lr_at(s, total, train_cfg)] for s in steps]
