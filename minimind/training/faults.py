"""Fault injection for tests, handed to the loop by the entry point (never read anywhere else).

``python -m minimind.train`` builds it from environment variables, which are never set in
normal use:

  MINIMIND_FAULT_NAN_STEPS   optimizer-step attempts of this process (1-based, "3,5-9") whose loss
                             is made NaN (a skipped step is retried on new data, as a new attempt)
  MINIMIND_FAULT_SLOW_SAVE   seconds to sleep between checkpoint files (to kill mid-save)
  MINIMIND_FAULT_STEP_SLEEP  seconds to sleep after every optimizer step (to kill mid-run)
  MINIMIND_FAULT_OOM_MICRO_STEPS  micro-step attempts of this process (1-based, "3,5-9", retried ones
                             counted again) that raise a real ``torch.OutOfMemoryError`` before
                             their forward pass
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Faults:
    nan_attempts: frozenset[int] = field(default_factory=frozenset)
    slow_save_s: float = 0.0
    step_sleep_s: float = 0.0
    oom_micro_steps: frozenset[int] = field(default_factory=frozenset)

    def oom_hook(self) -> Callable[[], None] | None:
        """A function the step calls before every micro-step's forward pass; it raises
        ``torch.OutOfMemoryError`` at the chosen micro-step attempts (None without OOM faults)."""
        if not self.oom_micro_steps:
            return None
        import torch

        error = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
        count = [0]

        def hook() -> None:
            count[0] += 1
            if count[0] in self.oom_micro_steps:
                raise error(f"injected out of memory at micro-step attempt {count[0]} "
                            f"(MINIMIND_FAULT_OOM_MICRO_STEPS)")

        return hook

    def nan_at(self, attempt: int) -> bool:
        """Whether optimizer-step attempt number ``attempt`` (1-based) gets a NaN loss."""
        return attempt in self.nan_attempts

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Faults:
        env = os.environ if env is None else env
        return cls(nan_attempts=frozenset(parse_steps(env.get("MINIMIND_FAULT_NAN_STEPS", ""))),
                   slow_save_s=float(env.get("MINIMIND_FAULT_SLOW_SAVE", "0") or 0),
                   step_sleep_s=float(env.get("MINIMIND_FAULT_STEP_SLEEP", "0") or 0),
                   oom_micro_steps=frozenset(parse_steps(env.get("MINIMIND_FAULT_OOM_MICRO_STEPS", ""))))


NO_FAULTS = Faults()


def parse_steps(spec: str) -> set[int]:
    """'3,5-7' -> {3, 5, 6, 7}."""
    steps: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        lo, _, hi = part.partition("-")
        steps.update(range(int(lo), int(hi or lo) + 1))
    return steps
