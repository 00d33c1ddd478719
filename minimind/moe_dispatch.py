"""Routed-expert dispatch after the gate has chosen: tokens sorted by expert, then one grouped
matmul per projection for all experts at once. No host sync and no Python control flow that
depends on the routing, so ``torch.compile`` sees static shapes.

``dispatch(x_ND, topk_idx_NK, topk_weight_NK, experts)`` returns
``sum_k weight[n, k] * expert[idx[n, k]](x[n])`` for every token n (the shared experts are the
caller's). The expert weights stay separate ``nn.Linear`` modules (MiniMind's state-dict keys);
they are stacked per call, which costs one copy of the routed weights (autocast casts them
anyway).

The grouped matmul is ``torch._grouped_mm`` where this torch and device have it (torch >= 2.8:
CPU in fp32/bf16 with row strides that are multiples of 16 bytes; CUDA bf16 on sm90+). Elsewhere
a batched fallback scatters each expert's rows into an (E, N, D) buffer and runs one ``bmm``:
also sync-free, at E/K times the routed FLOPs.

Shape suffixes: N tokens, K experts per token, P = N*K (token, slot) pairs, E experts, D hidden,
F expert width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _define_fp32_grouped_mm():
    """fp32 ``torch._grouped_mm`` runs on CPU, but its compile-time shape rule accepts bf16 only:
    wrapped as opaque custom ops (forward and both gradients), torch.compile leaves it alone."""
    if not (hasattr(torch, "_grouped_mm") and hasattr(torch.library, "custom_op")):
        return None

    @torch.library.custom_op("minimind::grouped_mm_fp32", mutates_args=())
    def grouped_mm(x_PD: torch.Tensor, w_EDO: torch.Tensor, offsets_E: torch.Tensor) -> torch.Tensor:
        return torch._grouped_mm(x_PD, w_EDO, offsets_E)

    @grouped_mm.register_fake
    def _(x_PD, w_EDO, offsets_E):
        return x_PD.new_empty(x_PD.shape[0], w_EDO.shape[-1])

    @torch.library.custom_op("minimind::grouped_weight_grad_fp32", mutates_args=())
    def weight_grad(x_PD: torch.Tensor, grad_PO: torch.Tensor, offsets_E: torch.Tensor) -> torch.Tensor:
        return torch._grouped_mm(x_PD.t(), grad_PO, offsets_E)  # (E, D, O): x_e^T @ grad_e per group

    @weight_grad.register_fake
    def _(x_PD, grad_PO, offsets_E):
        return x_PD.new_empty(offsets_E.shape[0], x_PD.shape[1], grad_PO.shape[1])

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    def backward(ctx, grad_PO):
        x_PD, w_EDO, offsets_E = ctx.saved_tensors
        grad_PO = grad_PO.contiguous()
        grad_x = grouped_mm(grad_PO, w_EDO.transpose(-2, -1), offsets_E) if ctx.needs_input_grad[0] else None
        grad_w = weight_grad(x_PD, grad_PO, offsets_E) if ctx.needs_input_grad[1] else None
        return grad_x, grad_w, None

    grouped_mm.register_autograd(backward, setup_context=setup_context)
    return grouped_mm


_grouped_mm_fp32 = _define_fp32_grouped_mm()


def grouped_mm_supported(dtype: torch.dtype, device: torch.device, *widths: int) -> bool:
    if not hasattr(torch, "_grouped_mm"):
        return False
    if any(w * torch.empty((), dtype=dtype).element_size() % 16 for w in widths):
        return False
    if device.type == "cpu":
        return dtype == torch.bfloat16 or (dtype == torch.float32 and _grouped_mm_fp32 is not None)
    if device.type == "cuda":
        return dtype == torch.bfloat16 and torch.cuda.get_device_capability(device) >= (9, 0)
    return False


def grouped_linear(x_PD: torch.Tensor, w_EOD: torch.Tensor, offsets_E: torch.Tensor,
                   expert_of_row_P: torch.Tensor, row_in_group_P: torch.Tensor, capacity: int,
                   use_grouped_mm: bool) -> torch.Tensor:
    """Rows of ``x_PD`` sorted by expert (group e ends at ``offsets_E[e]``) times their expert's
    ``nn.Linear`` weight (O x D): returns (P, O). ``capacity`` bounds the rows of one group
    without a sync (the fallback's buffer)."""
    if use_grouped_mm:
        mm = _grouped_mm_fp32 if x_PD.dtype == torch.float32 else torch._grouped_mm
        return mm(x_PD, w_EOD.transpose(-2, -1), offsets_E)
    E = w_EOD.shape[0]
    buf_ECD = x_PD.new_zeros(E, capacity, x_PD.shape[1])
    buf_ECD = buf_ECD.index_put((expert_of_row_P, row_in_group_P), x_PD)
    out_ECO = torch.bmm(buf_ECD, w_EOD.transpose(-2, -1))
    return out_ECO[expert_of_row_P, row_in_group_P]


def stacked_weights(experts: nn.ModuleList, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(E, 2F, D) gate and up projections side by side, and (E, D, F) down projections."""
    gate_up = torch.stack([torch.cat([e.gate_proj.weight, e.up_proj.weight]).to(dtype) for e in experts])
    down = torch.stack([e.down_proj.weight.to(dtype) for e in experts])
    return gate_up, down


def dispatch(x_ND: torch.Tensor, topk_idx_NK: torch.Tensor, topk_weight_NK: torch.Tensor,
             experts: nn.ModuleList, use_grouped_mm: bool | None = None) -> torch.Tensor:
    N, D = x_ND.shape
    K, E = topk_idx_NK.shape[1], len(experts)
    device_type = x_ND.device.type
    dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else x_ND.dtype
    ffn = experts[0].gate_proj.weight.shape[0]
    if use_grouped_mm is None:
        use_grouped_mm = grouped_mm_supported(dtype, x_ND.device, D, ffn)

    expert_P = topk_idx_NK.reshape(-1)
    order_P = torch.argsort(expert_P, stable=True)  # pairs grouped by expert, in token order
    sorted_expert_P = expert_P[order_P]
    counts_E = torch.zeros(E, dtype=torch.int64, device=x_ND.device).index_add_(
        0, expert_P, torch.ones_like(expert_P))
    ends_E = counts_E.cumsum(0)
    row_in_group_P = torch.arange(expert_P.numel(), device=x_ND.device) - (ends_E - counts_E)[sorted_expert_P]

    w_gate_up, w_down = stacked_weights(experts, dtype)
    x_PD = x_ND.to(dtype)[order_P // K]  # the only copy of the inputs: one row per (token, expert)
    # the top-k experts of a token are distinct, so no expert gets more than N rows
    args = (ends_E.to(torch.int32), sorted_expert_P, row_in_group_P, N, use_grouped_mm)
    gate_PF, up_PF = grouped_linear(x_PD, w_gate_up, *args).split(ffn, dim=-1)
    y_PD = grouped_linear(F.silu(gate_PF) * up_PF, w_down, *args)
    y_NKD = torch.index_copy(torch.empty_like(y_PD), 0, order_P, y_PD).view(N, K, D)  # back to (token, slot)
    out_N1D = torch.bmm(topk_weight_NK.to(dtype).unsqueeze(1), y_NKD)  # the gate-weighted sum over slots
    return out_N1D.view(N, D).to(x_ND.dtype)
