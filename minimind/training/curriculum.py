"""Sequence-length curriculum (``data.seq_len_schedule``): short windows first, the full length later.

A schedule is a list of phases ``[[fraction, seq_len], ...]``: from ``fraction`` of the run on,
the model trains on windows of ``seq_len`` tokens. For example ``[[0, 128], [0.3, 256], [0.6, 512]]``
with ``data.max_seq_len=512``.

How a phase reads the data (one rule, so a resume anywhere is exact):

* The loader always draws the same samples in the same seeded order: blocks of ``max_seq_len + 1``
  tokens, ``batch_size`` per micro-batch per process. The data position (epoch, blocks consumed)
  means the same thing in every phase.
* In a phase of length ``s`` each block is cut into ``k = max_seq_len / s`` windows: inputs
  ``block[j*s:(j+1)*s]``, targets ``block[j*s+1:(j+1)*s+1]``. The micro-batch becomes
  ``batch_size * k`` rows of ``s`` tokens: the same targets, the same tokens per optimizer step,
  only a shorter context. So ``s`` must divide ``max_seq_len``.
* Phase boundaries are optimizer steps: phase ``i`` starts after ``round(fraction * total_steps)``
  steps of the run's current length (a resume that changes the length re-places them).
* Packed samples only: a padded row (``packing: false``) holds one document from its start, and
  cutting it would train on rows of padding.

Validation always uses ``max_seq_len`` windows, so validation losses compare across phases and
with runs without a curriculum.

Pure Python (no torch). The config checks a schedule itself (``minimind.config.check_schedule``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Curriculum:
    """A schedule placed on a run of ``total_steps``: ``phases`` = ((first step, seq_len), ...)
    where "first step" counts the optimizer steps done before the phase starts (0 for the first)."""

    phases: tuple[tuple[int, int], ...]
    total_steps: int

    @classmethod
    def plan(cls, schedule: list | None, total_steps: int) -> Curriculum | None:
        """Phases that get at least one step; None without a schedule."""
        if not schedule:
            return None
        starts: dict[int, int] = {}
        for fraction, length in schedule:
            starts[min(round(fraction * total_steps), total_steps)] = int(length)  # a later phase wins a tie
        phases = tuple((step, length) for step, length in sorted(starts.items()) if step < total_steps or step == 0)
        return cls(phases, total_steps)

    def seq_len_at(self, step: int) -> int:
        """The window length of the optimizer step that starts after ``step`` steps."""
        length = self.phases[0][1]
        for start, phase_len in self.phases:
            if step >= start:
                length = phase_len
        return length

    def to_event(self) -> list[list[int]]:
        """``run_started.seq_len_schedule``: [[first step, seq_len], ...]."""
        return [[start, length] for start, length in self.phases]

    def segments(self, step: int) -> list[tuple[int, int]]:
        """(seq_len, steps) of the rest of the run after ``step`` steps, phase by phase."""
        out = []
        bounds = [start for start, _ in self.phases[1:]] + [self.total_steps]
        for (start, length), end in zip(self.phases, bounds, strict=True):
            n = end - max(start, step)
            if n > 0:
                out.append((length, n))
        return out


class PhaseTimer:
    """Mean step time per window length, for an ETA that stays right across phases.

    Tokens per step are constant, but a step of short windows costs less attention. A phase already
    seen is estimated from its own steps; one not yet seen from the nearest measured length, scaled
    by ``cost(seq_len)`` (the model's FLOPs per token at that length). The first ``warmup`` steps of
    the process and the first step of every new length (allocator, recompilation) are not counted.
    """

    def __init__(self, curriculum: Curriculum, cost: Callable[[int], float], window: Callable[[], int],
                 warmup: int = 3):
        self.curriculum = curriculum
        self.cost = cost
        self.window = window  # the window length of the step just timed
        self.warmup = warmup
        self.seen = 0
        self.seen_by_len: dict[int, int] = {}
        self.sums: dict[int, list[float]] = {}  # seq_len -> [seconds, steps counted]
        self.last_len: int | None = None

    def add(self, seconds: float) -> None:
        length = self.window()
        self.seen += 1
        self.last_len = length
        self.seen_by_len[length] = self.seen_by_len.get(length, 0) + 1
        if self.seen > self.warmup and self.seen_by_len[length] > 1:
            total = self.sums.setdefault(length, [0.0, 0])
            total[0] += seconds
            total[1] += 1

    def step_seconds(self, length: int, last_step_s: float) -> float | None:
        if length in self.sums:
            return self.sums[length][0] / self.sums[length][1]
        if self.sums:
            ref = min(self.sums, key=lambda s: abs(s - length))
            return self.sums[ref][0] / self.sums[ref][1] * self.cost(length) / self.cost(ref)
        if self.last_len is None:
            return None
        return last_step_s * self.cost(length) / self.cost(self.last_len)

    def eta(self, remaining_steps: int, last_step_s: float) -> float | None:
        if remaining_steps <= 0:
            return 0.0
        if self.seen == 0:
            return None
        step = self.curriculum.total_steps - remaining_steps
        total = 0.0
        for length, steps in self.curriculum.segments(step):
            per_step = self.step_seconds(length, last_step_s)
            if per_step is None:
                return None
            total += steps * per_step
        return total
