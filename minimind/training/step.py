"""One optimizer step and one evaluation: what happens between two points of the loss curve.

``train_step`` runs ``accumulation_steps`` micro-batches (gradient sync only on the last one
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
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from minimind import distributed as dist_utils
from minimind.data.dataset import Batch, validation_batches
from minimind.schedule import lr_at
from minimind.training.balance import update_router_bias
from minimind.training.optim import set_lr

if TYPE_CHECKING:
    from minimind.training.build import Built
    from minimind.training.state import TrainState


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


def train_step(built: Built, state: TrainState, inject_nan: bool = False,
               before_micro: Callable[[], None] | None = None) -> StepResult:
    """One optimizer step over ``accumulation_steps`` micro-batches from ``built.loader``.
    ``before_micro`` runs before each micro-step (fault injection: ``oom.OOMRecovery``)."""
    t0 = time.perf_counter()
    cfg, t = built.cfg, built.cfg.train
    built.model.train()
    # Losses stay on the device; the only read back to Python is one small tensor per step.
    ce_sum = torch.zeros((), dtype=torch.float64, device=built.device)
    aux_sum = torch.zeros((), dtype=torch.float64, device=built.device)
    tokens = 0  # known on the host from the batch: no device read
    lr = lr_at(state.step, built.total_steps, t) if state.schedule is None else state.schedule.lr(state.step, t)
    set_lr(built.optimizer, lr)
    built.loader.seq_len = built.seq_len_at(state.step)  # a curriculum's window (same tokens per step)
    for micro in range(t.accumulation_steps):
        if before_micro is not None:
            before_micro()
        batch = next(built.loader)
        x = torch.from_numpy(batch.input_ids).to(built.device, non_blocking=True)
        y = torch.from_numpy(batch.targets).to(built.device, non_blocking=True)
        mask = None if cfg.data.packing else torch.from_numpy(batch.loss_mask).to(built.device, non_blocking=True)
        docs = document_positions(batch, built.device)
        last = micro == t.accumulation_steps - 1
        sync = contextlib.nullcontext() if (last or not built.dist.enabled) else built.ddp_model.no_sync()
        with sync:
            with built.autocast():
                out = built.forward_model(x, targets=y, loss_mask=mask, **docs)
            loss = out.loss * float("nan") if inject_nan else out.loss
            built.scaler.scale((loss + out.aux_loss) / t.accumulation_steps).backward()
        ce_sum += loss.detach()
        aux_sum += out.aux_loss.detach()
        tokens += batch.trained_tokens
    built.scaler.unscale_(built.optimizer)
    clip = t.grad_clip if t.grad_clip > 0 else float("inf")
    grad_norm_t = torch.nn.utils.clip_grad_norm_(built.model.parameters(), clip)
    sums = torch.stack([ce_sum, aux_sum, torch.tensor(float(tokens), dtype=torch.float64, device=built.device)])
    dist_utils.all_reduce_sum(sums, built.dist)
    ce, aux, all_tokens, grad_norm = torch.cat([sums, grad_norm_t.detach().double().reshape(1)]).tolist()  # the sync
    n = t.accumulation_steps * built.dist.world_size
    overflow = built.scaler.is_enabled() and not math.isfinite(grad_norm)
    result = StepResult(loss=ce / n, aux_loss=aux / n, tokens=int(all_tokens),
                        grad_norm=grad_norm, lr=lr, seconds=0.0, scaler_overflow=overflow)
    if result.finite:
        built.scaler.step(built.optimizer)  # a no-op update on an fp16 overflow
    update_router_bias(built.model, cfg.model.router_bias_coeff, built.dist, apply=result.finite)
    if built.scaler.is_enabled():
        built.scaler.update()
    built.optimizer.zero_grad(set_to_none=True)
    return replace(result, grad_norm=0.0 if overflow and result.finite else grad_norm,
                   seconds=time.perf_counter() - t0)


def document_positions(batch: Batch, device: torch.device) -> dict[str, torch.Tensor]:
    """The model's ``position_ids`` argument for a ``data.doc_mask`` batch; no argument otherwise,
    so the default forward (and its compiled graph) stays exactly the causal one."""
    if batch.position_ids is None:
        return {}
    return {"position_ids": torch.from_numpy(batch.position_ids).to(device, non_blocking=True)}


@torch.no_grad()
def evaluate(built: Built) -> float | None:
    """Mean validation loss (nats/token) over the first ``eval_batches`` batches of the validation
    split, all ranks together; None when the split holds less than one batch."""
    t = built.cfg.train
    built.model.eval()
    sums = torch.zeros(2, dtype=torch.float64, device=built.device)
    for batch in validation_batches(built.val_data, t.batch_size, t.eval_batches, built.dist.rank,
                                    built.dist.world_size):
        x = torch.from_numpy(batch.input_ids).to(built.device)
        y = torch.from_numpy(batch.targets).to(built.device)
        mask = torch.from_numpy(batch.loss_mask).to(built.device)
        with built.autocast():
            out = built.model(x, targets=y, loss_mask=mask, **document_positions(batch, built.device))
        n = mask.sum().double()
        sums += torch.stack([out.loss.double() * n, n])
    dist_utils.all_reduce_sum(sums, built.dist)
    built.model.train()
    total, count = sums.tolist()
    if count == 0:
        return None
    return total / count
