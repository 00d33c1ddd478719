"""Trainer callbacks: fixed points of a step and a save where registered code runs.

``Built.callbacks`` holds one ``Callbacks`` object; the default does nothing at every point, and
production code never needs another. The trainer entry point (``minimind.train``) registers
``faults.FaultCallbacks`` when a test sets ``MINIMIND_FAULT_*``, so the step, the loop and the
checkpoint writer carry no test parameters. The points, in the order a run meets them:

  step_started(state)        the loop, before each optimizer-step attempt (``state.attempts`` counted)
  micro_step_started()       ``train_step``, before each micro-step's forward pass (a retried
                             step after an out-of-memory error runs them again)
  micro_step_loss(loss)      ``train_step``, a micro-step's summed cross-entropy (a 0-d tensor on the
                             device) before its backward pass; returns the loss to use
  step_finished(state)       the loop, after an optimizer step that counted (``state`` advanced)
  checkpoint_file_written(name)  the checkpoint writer, after each file of a checkpoint is durable
                             and before the next one (``meta.json``, written last, excepted)

A subclass overrides only the points it needs. Callbacks never read the device: ``micro_step_loss``
must return a tensor without a host sync (``tests/test_sync_free.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from minimind.training.state import TrainState


class Callbacks:
    """Does nothing at every point; subclass and override the points you need."""

    def step_started(self, state: TrainState) -> None:
        pass

    def micro_step_started(self) -> None:
        pass

    def micro_step_loss(self, loss: torch.Tensor) -> torch.Tensor:
        return loss

    def step_finished(self, state: TrainState) -> None:
        pass

    def checkpoint_file_written(self, name: str) -> None:
        pass


NO_CALLBACKS = Callbacks()
