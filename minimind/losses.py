"""Cross-entropy over the tied output head without the full logits tensor.

``linear_cross_entropy(h_ND, w_VD, targets_N, weights_N)`` equals
``(F.cross_entropy((h_ND @ w_VD.T).float(), targets_N, reduction="none") * weights_N).sum()``
but walks the N rows in chunks: each chunk's logits (chunk x V, fp32) exist only while that
chunk is processed. The gradients are computed in the same pass (softmax minus one-hot, times
the row weight), so nothing is recomputed in backward and no N x V tensor is ever kept:
backward only scales the stored ``d loss / d h`` (N x D) and ``d loss / d w`` (V x D). Under
``torch.no_grad`` (evaluation) no gradient is computed at all.

fp16: the row weights are tiny (1/tokens of the step, e.g. 6e-5), and the loss scaler's factor only
arrives in backward. Multiplied in before the cast to fp16, most softmax entries would fall below
fp16's smallest subnormal and vanish. So the weights are factored as ``scale * (weights / scale)``
with ``scale`` the largest weight: the fp16 matmul sees weights of order 1, and the stored
gradients (fp32) get ``scale`` afterwards. bf16 and fp32 take the same path.

Shape suffixes: N rows (B*T tokens), D hidden, V vocabulary.
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 2**24  # fp32 logits per chunk: 64 MiB (2,621 rows of a 6,400-token vocabulary)


def chunk_rows(vocab_size: int) -> int:
    return max(1, CHUNK_ELEMENTS // vocab_size)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h_ND, w_VD, targets_N, weights_N, compute_dtype, chunk, grad_on):
        # grad_on: the caller's grad mode (forward itself always runs without grad)
        need_h, need_w = ctx.needs_input_grad[0] and grad_on, ctx.needs_input_grad[1] and grad_on
        N = h_ND.shape[0]
        with torch.autocast(h_ND.device.type, enabled=False):
            h_c = h_ND.to(compute_dtype)
            w_c = w_VD.to(compute_dtype)
            weights_N = weights_N.float()
            # weights = scale * unit_N, unit_N <= 1: the low-precision matmuls never see the tiny scale
            scale = weights_N.abs().amax().clamp(min=torch.finfo(torch.float32).tiny)
            unit_N = weights_N / scale
            loss = torch.zeros((), dtype=torch.float32, device=h_ND.device)
            grad_h = torch.empty_like(h_ND, dtype=torch.float32) if need_h else None
            grad_w = torch.zeros_like(w_VD, dtype=torch.float32) if need_w else None
            for start in range(0, N, chunk):
                h_n = h_c[start:start + chunk]
                t_n = targets_N[start:start + chunk]
                wt_n = weights_N[start:start + chunk]
                unit_n = unit_N[start:start + chunk]
                logits = (h_n @ w_c.T).float()  # (n, V)
                lse = torch.logsumexp(logits, dim=-1)
                picked = logits.gather(1, t_n[:, None]).squeeze(1)
                loss = loss + ((lse - picked) * wt_n).sum()
                if need_h or need_w:
                    # d loss / d logits / scale = (softmax - one_hot(target)) * unit row weight, in place
                    g = logits.sub_(lse[:, None]).exp_()
                    g.scatter_add_(1, t_n[:, None], torch.full_like(lse[:, None], -1.0))
                    g = g.mul_(unit_n[:, None]).to(compute_dtype)
                    if need_h:
                        grad_h[start:start + chunk] = (g @ w_c).float()
                    if need_w:
                        grad_w += (g.T @ h_n).float()
            if grad_h is not None:
                grad_h.mul_(scale)
            if grad_w is not None:
                grad_w.mul_(scale)
        ctx.save_for_backward(grad_h, grad_w)
        ctx.h_dtype, ctx.w_dtype = h_ND.dtype, w_VD.dtype
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grad_h, grad_w = ctx.saved_tensors
        # Scaled in fp32 first (fp16's loss scale is in grad_loss), then cast: nothing underflows.
        dh = (grad_h * grad_loss.float()).to(ctx.h_dtype) if grad_h is not None else None
        dw = (grad_w * grad_loss.float()).to(ctx.w_dtype) if grad_w is not None else None
        return dh, dw, None, None, None, None, None


def linear_cross_entropy(h_ND: torch.Tensor, w_VD: torch.Tensor, targets_N: torch.Tensor,
                         weights_N: torch.Tensor, compute_dtype: torch.dtype | None = None,
                         chunk: int | None = None) -> torch.Tensor:
    """sum_i weights_i * CE(h_i @ w.T, target_i), the matmuls in ``compute_dtype`` (default: the
    autocast dtype when autocast is on, else h's dtype), softmax and sums in fp32."""
    if compute_dtype is None:
        device_type = h_ND.device.type
        compute_dtype = (torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type)
                         else h_ND.dtype)
    return _LinearCrossEntropy.apply(h_ND, w_VD, targets_N, weights_N, compute_dtype,
                                     chunk or chunk_rows(w_VD.shape[0]), torch.is_grad_enabled())
