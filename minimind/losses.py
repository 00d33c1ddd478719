"""Cross-entropy over the tied output head without the full logits tensor.

``linear_cross_entropy(h_ND, w_VD, targets_N, weights_N)`` equals
``(F.cross_entropy((h_ND @ w_VD.T).float(), targets_N, reduction="none") * weights_N).sum()``
but walks the N rows in chunks: each chunk's logits (chunk x V, fp32) exist only while that
chunk is processed. The gradients are computed in the same pass (softmax minus one-hot, times
the row weight), so nothing is recomputed in backward and no N x V tensor is ever kept:
backward only scales the stored ``d loss / d h`` (N x D) and ``d loss / d w`` (V x D).

Shape suffixes: N rows (B*T tokens), D hidden, V vocabulary.
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 2**24  # fp32 logits per chunk: 64 MiB (2,621 rows of a 6,400-token vocabulary)


def chunk_rows(vocab_size: int) -> int:
    return max(1, CHUNK_ELEMENTS // vocab_size)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h_ND, w_VD, targets_N, weights_N, compute_dtype, chunk):
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        N = h_ND.shape[0]
        with torch.autocast(h_ND.device.type, enabled=False):
            h_c = h_ND.to(compute_dtype)
            w_c = w_VD.to(compute_dtype)
            weights_N = weights_N.float()
            loss = torch.zeros((), dtype=torch.float32, device=h_ND.device)
            grad_h = torch.empty_like(h_ND) if need_h else None
            grad_w = torch.zeros_like(w_VD, dtype=torch.float32) if need_w else None
            for start in range(0, N, chunk):
                h_n = h_c[start:start + chunk]
                t_n = targets_N[start:start + chunk]
                wt_n = weights_N[start:start + chunk]
                logits = (h_n @ w_c.T).float()  # (n, V)
                lse = torch.logsumexp(logits, dim=-1)
                picked = logits.gather(1, t_n[:, None]).squeeze(1)
                loss = loss + ((lse - picked) * wt_n).sum()
                if need_h or need_w:
                    # d loss / d logits = (softmax - one_hot(target)) * row weight, in place
                    g = logits.sub_(lse[:, None]).exp_()
                    g.scatter_add_(1, t_n[:, None], torch.full_like(lse[:, None], -1.0))
                    g = g.mul_(wt_n[:, None]).to(compute_dtype)
                    if need_h:
                        grad_h[start:start + chunk] = (g @ w_c).to(h_ND.dtype)
                    if need_w:
                        grad_w += (g.T @ h_n).float()
        ctx.save_for_backward(grad_h, grad_w)
        ctx.w_dtype = w_VD.dtype
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grad_h, grad_w = ctx.saved_tensors
        dh = grad_h * grad_loss.to(grad_h.dtype) if grad_h is not None else None
        dw = (grad_w * grad_loss).to(ctx.w_dtype) if grad_w is not None else None
        return dh, dw, None, None, None, None


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
                                     chunk or chunk_rows(w_VD.shape[0]))
