"""The one way a loss on held-out text is counted. The trainer's validation pass and
``minimind eval`` both call ``score_batches``, so a run's ``val_loss`` and ``eval`` of its weights
on the same samples are the same number.

A score is two sums, kept on the device until the caller reads them: the cross-entropy in nats
over every real target of the batches (padding excluded) and the number of those targets. The
mean is their ratio: a mean over tokens, never over batches, so how the samples are cut into
micro-batches (or spread over ranks, whose sums add up) does not change it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

import torch

from minimind.data.dataset import Batch


def batch_tensors(batch: Batch, device: torch.device, with_mask: bool = True) -> dict[str, torch.Tensor]:
    """The model's arguments for ``batch`` on ``device``: input_ids, targets, loss_mask (unless a
    packed training batch, whose every target counts) and, for a ``data.doc_mask`` batch,
    position_ids (absent otherwise, so the default forward stays the plain causal one)."""
    args = {"input_ids": torch.from_numpy(batch.input_ids).to(device, non_blocking=True),
            "targets": torch.from_numpy(batch.targets).to(device, non_blocking=True)}
    if with_mask:
        args["loss_mask"] = torch.from_numpy(batch.loss_mask).to(device, non_blocking=True)
    if batch.position_ids is not None:
        args["position_ids"] = torch.from_numpy(batch.position_ids).to(device, non_blocking=True)
    return args


def autocast(device: torch.device, amp_dtype: torch.dtype | None):
    """Autocast to ``amp_dtype`` (bf16/fp16), or nothing for fp32."""
    if amp_dtype is None or amp_dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=amp_dtype)


@torch.no_grad()
def score_batches(model: torch.nn.Module, batches: Iterable[Batch], device: torch.device,
                  amp_dtype: torch.dtype | None = None,
                  progress: Callable[[int], None] | None = None) -> torch.Tensor:
    """(2,) float64 on ``device``: [sum of the cross-entropy in nats, number of scored targets]
    over ``batches``. No gradient is computed; the model is back in its mode afterwards.
    ``progress(targets)`` is called after each batch with its number of targets (a host count)."""
    device = torch.device(device)
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            args = batch_tensors(batch, device)
            with autocast(device, amp_dtype):
                out = model(args.pop("input_ids"), **args, reduction="sum")
            sums += torch.stack([out.loss.double(), args["loss_mask"].double().sum()])
            if progress is not None:
                progress(batch.trained_tokens)
    finally:
        model.train(was_training)
    return sums
