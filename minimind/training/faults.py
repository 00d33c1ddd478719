"""Fault injection for tests: ``Faults`` (what to inject) and ``FaultCallbacks`` (the trainer
callbacks that inject it, ``training/callbacks.py``), registered by the entry point only.

``python -m minimind.train`` builds them from environment variables, which are never set in
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
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from minimind.training.callbacks import NO_CALLBACKS, Callbacks

if TYPE_CHECKING:
    import torch

    from minimind.training.state import TrainState


@dataclass(frozen=True)
class Faults:
    nan_attempts: frozenset[int] = field(default_factory=frozenset)
    slow_save_s: float = 0.0
    step_sleep_s: float = 0.0
    oom_micro_steps: frozenset[int] = field(default_factory=frozenset)

    def callbacks(self) -> Callbacks:
        """The trainer callbacks that inject these faults (``NO_CALLBACKS`` when there are none)."""
        return FaultCallbacks(self) if self != NO_FAULTS else NO_CALLBACKS

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


class FaultCallbacks(Callbacks):
    """``Faults`` at the trainer's callback points: a NaN loss on the chosen optimizer-step attempts,
    a real ``torch.OutOfMemoryError`` before the chosen micro-step attempts' forward pass, a sleep
    after every optimizer step and between checkpoint files."""

    def __init__(self, faults: Faults):
        self.faults = faults
        self.nan_now = False  # this optimizer-step attempt gets a NaN loss
        self.micro_steps = 0  # micro-step attempts of this process, retried ones counted again

    def step_started(self, state: TrainState) -> None:
        self.nan_now = self.faults.nan_at(state.attempts)

    def micro_step_started(self) -> None:
        self.micro_steps += 1
        if self.micro_steps in self.faults.oom_micro_steps:
            from minimind.training.memory import out_of_memory_error

            oom = out_of_memory_error()
            raise oom(f"injected out of memory at micro-step attempt {self.micro_steps} (MINIMIND_FAULT_OOM_MICRO_STEPS)")

    def micro_step_loss(self, loss: torch.Tensor) -> torch.Tensor:
        return loss * float("nan") if self.nan_now else loss

    def step_finished(self, state: TrainState) -> None:
        if self.faults.step_sleep_s:
            time.sleep(self.faults.step_sleep_s)

    def checkpoint_file_written(self, name: str) -> None:
        if self.faults.slow_save_s:
            time.sleep(self.faults.slow_save_s)


def parse_steps(spec: str) -> set[int]:
    """'3,5-7' -> {3, 5, 6, 7}."""
    steps: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        lo, _, hi = part.partition("-")
        steps.update(range(int(lo), int(hi or lo) + 1))
    return steps
