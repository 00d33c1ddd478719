"""One optimizer step and one evaluation: what happens between two points of the loss curve.

``train_step`` runs ``Built.split``'s micro-batches (gradient sync only on the last one
under DDP), clips, and steps the optimizer only when ``StepResult.finite``: the one rule for
whether a step counts. Nothing is read back from the device between micro-batches: losses and
the gradient norm are summed there and read once per optimizer step (one sync, which the
finiteness rule needs anyway). It reads the learning rate for ``state.step`` and never advances the state;
the loop does that.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

import torch

from minimind import distributed as dist_utils
from minimind.data.dataset import validation_batches
from minimind.schedule import lr_at
from minimind.scoring import batch_tensors, score_batches
from minimind.training.balance import update_router_bias
from minimind.training.optim import set_lr

if TYPE_CHECKING:
    from minimind.training.build import Built
    from minimind.training.state import TrainState


class PhaseClock(Protocol):
    """Where ``train_step``'s time goes: ``start`` at the step's start, ``mark(phase)`` where a phase
    ends (the time since the previous mark belongs to ``phase``)."""

    def start(self) -> None: ...

    def mark(self, phase: str) -> None: ...


class _NoPhases:
    def start(self) -> None:
        pass

    def mark(self, phase: str) -> None:
        pass


NO_PHASES = _NoPhases()


@dataclass(frozen=True)
class StepResult:
    """Global (all ranks) means of one optimizer step."""

    loss: float  # cross-entropy, nats/token
    aux_loss: float  # MoE load-balancing loss (0 for dense models)
    tokens: int  # trained (non-padding) tokens
    grad_norm: float  # before clipping; 0.0 when fp16 loss scaling skipped an overflow
    lr: float
    seconds: float
    scaler_overflow: bool = False  # fp16: the scaler found inf gradients and skipped this update

    @property
    def finite(self) -> bool:
        """Whether the step counts. A non-finite loss or gradient is skipped (the NaN guard); with
        fp16 an overflow is the loss scaler's normal business: it skips the update, lowers the
        scale, and the step still counts."""
        return math.isfinite(self.loss) and (math.isfinite(self.grad_norm) or self.scaler_overflow)


def train_step(built: Built, state: TrainState, phases: PhaseClock | None = None) -> StepResult:
    """One optimizer step over ``built.split.accumulation_steps`` micro-batches from ``built.loader``.
    ``built.callbacks`` (``training/callbacks.py``) is called before each micro-step and with each
    micro-step's loss (the trainer's fault injection registers itself there).
    ``phases`` (``minimind.bench``) is told where the step's phases end: data, forward + backward,
    synchronisation, optimizer; without it the step does no extra work.

    The loss is the mean over the step's real tokens, all micro-batches and ranks together: each
    micro-batch contributes its sum of cross-entropy divided by the step's token count (DDP then
    averages over ranks, so the backward scale carries the world size). Packed rows make every
    micro-batch the same size, so that count is known on the host; padded rows count their tokens
    on the host too, and under torchrun sum them over ranks first (one tiny all-reduce). So a step
    trains the same thing however it is split (an out-of-memory re-split, batch_size auto, another
    --nproc), in both modes."""
    t0 = time.perf_counter()
    clock = phases or NO_PHASES
    clock.start()
    cfg, split, world = built.cfg, built.split, built.dist.world_size
    built.model.train()
    # Losses stay on the device; the only read back to Python is one small tensor per step.
    ce_sum = torch.zeros((), dtype=torch.float64, device=built.device)
    aux_sum = torch.zeros((), dtype=torch.float64, device=built.device)
    lr = lr_at(state.step, built.total_steps, cfg.train) if state.schedule is None else state.schedule.lr(
        state.step, cfg.train)
    set_lr(built.optimizer, lr)
    built.loader.seq_len = built.seq_len_at(state.step)  # a curriculum's window (same tokens per step)
    # The whole step's samples first (host arrays): their token count scales every micro-batch.
    batches = [next(built.loader) for _ in range(split.accumulation_steps)]
    step_tokens = step_token_count(sum(b.trained_tokens for b in batches), cfg.data.packing, built.dist)
    clock.mark("data")
    callbacks = built.callbacks
    for micro, batch in enumerate(batches):
        callbacks.micro_step_started()
        last = micro == split.accumulation_steps - 1
        sync = contextlib.nullcontext() if (last or not built.dist.enabled) else built.ddp_model.no_sync()
        with sync:
            with built.autocast():
                args = batch_tensors(batch, built.device, with_mask=not cfg.data.packing)
                out = built.forward_model(args.pop("input_ids"), **args, reduction="sum")
            loss = callbacks.micro_step_loss(out.loss)
            built.scaler.scale(loss * (world / step_tokens) + out.aux_loss / split.accumulation_steps).backward()
        ce_sum += loss.detach()
        aux_sum += out.aux_loss.detach()
    clock.mark("forward_backward")
    built.scaler.unscale_(built.optimizer)
    clip = cfg.train.grad_clip if cfg.train.grad_clip > 0 else float("inf")
    grad_norm_t = torch.nn.utils.clip_grad_norm_(built.model.parameters(), clip)
    sums = torch.stack([ce_sum, aux_sum])
    dist_utils.all_reduce_sum(sums, built.dist)
    ce, aux, grad_norm = torch.cat([sums, grad_norm_t.detach().double().reshape(1)]).tolist()  # the sync
    overflow = built.scaler.is_enabled() and not math.isfinite(grad_norm)
    clock.mark("sync")
    result = StepResult(loss=ce / step_tokens, aux_loss=aux / (split.accumulation_steps * world), tokens=step_tokens,
                        grad_norm=grad_norm, lr=lr, seconds=0.0, scaler_overflow=overflow)
    if result.finite:
        built.scaler.step(built.optimizer)  # a no-op update on an fp16 overflow
    # The router bias moves only when the weights did: not on a skipped step, nor an fp16 overflow.
    update_router_bias(built.model, cfg.model.router_bias_coeff, built.dist, apply=result.finite and not overflow)
    if built.scaler.is_enabled():
        built.scaler.update()
    built.optimizer.zero_grad(set_to_none=True)
    clock.mark("optimizer")
    return replace(result, grad_norm=0.0 if overflow and result.finite else grad_norm,
                   seconds=time.perf_counter() - t0)


def step_token_count(local_tokens: int, packed: bool, dist: dist_utils.DistInfo) -> int:
    """The real tokens of one optimizer step, all ranks: packed ranks hold the same count (no
    communication); padded ones are summed (one all-reduce of one number, under torchrun only)."""
    if packed or not dist.enabled:
        return local_tokens * dist.world_size
    count = torch.tensor([local_tokens], dtype=torch.int64)
    return int(dist_utils.all_reduce_sum(count, dist)[0])


def evaluate(built: Built) -> float | None:
    """Mean validation loss (nats/token) over the run's validation set (``train.eval_samples``
    samples of the validation split, ``validation_batches``), all ranks together, scored by the
    same function as ``minimind eval``; None when the split holds no sample."""
    batches = validation_batches(built.val_data, built.cfg.train.eval_samples, built.split.batch_size,
                                 built.dist.rank, built.dist.world_size)
    sums = score_batches(built.model, batches, built.device, built.amp_dtype)
    dist_utils.all_reduce_sum(sums, built.dist)
    total, count = sums.tolist()
    if count == 0:
        return None
    return total / count
