"""Out-of-memory recovery in the training step: the advice "use a smaller batch, more accumulation"
done by the trainer itself, without changing what is trained.

When a step runs out of memory (``torch.OutOfMemoryError`` on a GPU, or the CPU allocator's
failure that torch reports), ``OOMRecovery.step``:

1. frees what the failed micro-steps held (partial gradients, cached blocks);
2. halves the micro-batch (the largest divisor of the samples per step that is at most half of it)
   and raises the accumulation to match, so the samples per optimizer step stay the same;
3. serves the same samples again, re-split, from the position where the step began
   (``BatchLoader.resplit``), and retries the same optimizer step;
4. emits a ``warning`` event with ``kind: "oom_retry"`` and goes on.

The new split replaces ``Built.split`` (runtime state; the config keeps what was asked for), so
every checkpoint records it and a resume keeps it. At micro-batch 1 there is nothing left to halve: the run fails with
``OutOfMemoryFailure`` (exit 1, one message naming the peak memory, the device's total and what to
change next) and saves nothing new, so the last good checkpoint stays the newest.

Under torchrun a rank cannot retry alone (the others wait in the gradient all-reduce), so there an
out-of-memory error ends the run with the same message.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

from minimind.errors import OutOfMemoryFailure
from minimind.training.memory import MIB, Split, device_total_mib, is_out_of_memory, knobs
from minimind.training.step import StepResult, train_step

if TYPE_CHECKING:
    import torch

    from minimind.training.build import Built
    from minimind.training.report import Reporter
    from minimind.training.state import TrainState


def smaller_split(batch_size: int, accumulation_steps: int) -> tuple[int, int] | None:
    """About half the micro-batch with the same samples per step, or None at micro-batch 1."""
    samples = batch_size * accumulation_steps
    for b in range(batch_size // 2, 0, -1):
        if samples % b == 0:
            return b, samples // b
    return None


def peak_memory_mib(device: torch.device) -> float:
    """The peak so far: CUDA memory allocated by torch, or the process's peak RSS on a CPU."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / MIB
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def free_memory(built: Built) -> None:
    """Drop what a failed step held: partial gradients, the scaler's half-done unscale, cached blocks."""
    import torch

    built.optimizer.zero_grad(set_to_none=True)
    from minimind.training.balance import update_router_bias

    update_router_bias(built.model, 0.0, built.dist, apply=False)  # the retried step counts its loads afresh
    per_optimizer = getattr(built.scaler, "_per_optimizer_states", None)
    if per_optimizer is not None:
        per_optimizer.clear()
    gc.collect()
    if built.device.type == "cuda":
        torch.cuda.empty_cache()


class OOMRecovery:
    """Runs optimizer steps through ``train_step`` and recovers from out-of-memory errors."""

    def __init__(self, built: Built, report: Reporter):
        self.built = built
        self.report = report

    def step(self, state: TrainState) -> StepResult:
        position = self.built.loader.state_dict()
        while True:
            try:
                return train_step(self.built, state)
            except Exception as exc:  # noqa: BLE001 - only out-of-memory errors are handled
                if not is_out_of_memory(exc):
                    raise
                what = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            # Outside the except block: the traceback (and the tensors its frames hold) is gone.
            self.built.resplit(self._smaller(state, what), position)

    def _smaller(self, state: TrainState, what: str) -> Split:
        """The split to retry the step with (announced), or ``OutOfMemoryFailure``."""
        built, now = self.built, self.built.split
        free_memory(built)
        step = state.step + 1
        peak, total = peak_memory_mib(built.device), device_total_mib(built.device)
        smaller = None if built.dist.enabled else smaller_split(now.batch_size, now.accumulation_steps)
        if smaller is None:
            why = ("at micro-batch 1" if now.batch_size == 1 else
                   f"at micro-batch {now.batch_size} under torchrun (a rank cannot retry alone)")
            raise OutOfMemoryFailure(
                f"out of memory at step {step} {why}: peak {peak:,.0f} MiB of {total:,.0f} MiB on {built.device} "
                f"({what}); nothing new was saved",
                knobs(built.cfg) + ("" if now.batch_size == 1 else "; or a smaller --batch-size"))
        new = Split.fixed(*smaller)
        message = (f"out of memory at step {step} with micro-batch {now.batch_size} (peak {peak:,.0f} MiB of "
                   f"{total:,.0f} MiB): retrying the same step as micro-batch {new.batch_size} x accumulation "
                   f"{new.accumulation_steps}, the same {new.samples_per_step} samples per step")
        self.report.emit("warning", step=step, kind="oom_retry", message=message, batch_size=new.batch_size,
                         accumulation_steps=new.accumulation_steps, peak_mib=peak, total_mib=total)
        self.report.print(f"warning: {message}", stderr=True)
        return new
