"""The run's curves: one typed point per step event (and per eval), kept together instead of
parallel lists, rewound as one when a resumed run goes back to its checkpoint."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from minimind.events import Step

HISTORY_LIMIT = 240  # memory sparkline points


@dataclass(frozen=True, slots=True)
class StepPoint:
    """What the plots and sparklines need of one step event."""

    step: int
    loss: float | None
    loss_ema: float | None
    tokens: float | None  # tokens_seen
    elapsed: float | None  # elapsed_s
    grad_norm: float | None
    tokens_per_s: float | None

    @classmethod
    def of(cls, e: Step) -> StepPoint:
        return cls(int(e.step), e.loss, e.loss_ema, e.tokens_seen, e.elapsed_s, e.grad_norm, e.tokens_per_s)


@dataclass(frozen=True, slots=True)
class ValPoint:
    step: int
    val_loss: float


@dataclass
class Series:
    points: list[StepPoint] = field(default_factory=list)
    val: list[ValPoint] = field(default_factory=list)
    seq_lens: list[tuple[int, int]] = field(default_factory=list)  # (step, seq_len) where it changed
    memory: list[float] = field(default_factory=list)  # the memory sparkline (not rewound)

    def add_memory(self, value: float) -> None:
        self.memory.append(value)
        del self.memory[:-HISTORY_LIMIT]

    def rewind(self, start_step: int) -> None:
        """Drop everything past ``start_step`` (a resume from the checkpoint there)."""
        self.points = [p for p in self.points if p.step <= start_step]
        self.val = [p for p in self.val if p.step <= start_step]
        self.seq_lens = [c for c in self.seq_lens if c[0] <= start_step]

    # ------------------------------------------------------------------ column views
    @property
    def steps(self) -> list[int]:
        return [p.step for p in self.points]

    @property
    def losses(self) -> list[float | None]:
        return [p.loss for p in self.points]

    @property
    def loss_emas(self) -> list[float | None]:
        return [p.loss_ema for p in self.points]

    @property
    def tokens(self) -> list[float | None]:
        return [p.tokens for p in self.points]

    @property
    def elapsed(self) -> list[float | None]:
        return [p.elapsed for p in self.points]

    @property
    def grad_norms(self) -> list[float | None]:
        return [p.grad_norm for p in self.points]

    @property
    def tokens_per_s(self) -> list[float | None]:
        return [p.tokens_per_s for p in self.points]

    @property
    def val_steps(self) -> list[int]:
        return [p.step for p in self.val]

    @property
    def val_losses(self) -> list[float]:
        return [p.val_loss for p in self.val]

    def column(self, axis: str) -> list[int] | list[float | None]:
        """The step points' x on ``axis`` ("step" | "tokens" | "time")."""
        if axis == "step":
            return self.steps
        return self.tokens if axis == "tokens" else self.elapsed

    def x_of(self, axis: str, step: float, tokens_per_step: float | None = None) -> float | None:
        """Where ``step`` lies on the x-axis ``axis`` ("step" | "tokens" | "time"): read from the
        step points around it (linear in between; beyond the last one, tokens per step)."""
        if axis == "step":
            return float(step)
        pairs = [(0, 0.0)] + [(p.step, float(v)) for p, v in zip(self.points, self.column(axis), strict=True)
                              if v is not None and p.step > 0]
        keys = [p[0] for p in pairs]
        i = bisect.bisect_left(keys, step)
        if i < len(pairs) and keys[i] == step:
            return pairs[i][1]
        if i < len(pairs):
            (s0, v0), (s1, v1) = pairs[i - 1], pairs[i]
            return v0 + (v1 - v0) * (step - s0) / (s1 - s0)
        if axis == "tokens" and tokens_per_step:
            return pairs[-1][1] + (step - keys[-1]) * float(tokens_per_step)
        return None
