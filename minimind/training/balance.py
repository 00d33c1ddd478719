"""Aux-loss-free MoE balancing (DeepSeek-V3): after each optimizer step, every router's
per-expert bias moves by ``coeff * sign(mean load - load)`` (towards the experts chosen less),
then is recentred to zero mean. Loads are the picks counted by ``MoEGate`` during the step's
micro-batches, summed over ranks, so every rank keeps the same bias."""

from __future__ import annotations

import torch

from minimind import distributed as dist_utils
from minimind.model import MiniMindLM, MoEGate


def biased_gates(model: MiniMindLM) -> list[MoEGate]:
    return [m.gate for m in model.moe_layers() if m.gate.expert_bias is not None]


@torch.no_grad()
def update_router_bias(model: MiniMindLM, coeff: float, dist: dist_utils.DistInfo, apply: bool = True) -> None:
    """Move each bias from the loads counted since the last call, and start counting afresh.
    ``apply=False`` (a skipped, non-finite step) only drops the counts."""
    gates = biased_gates(model)
    if not gates:
        return
    if apply:
        load_LE = torch.stack([g.bias_load for g in gates]).double()  # (layers, experts)
        dist_utils.all_reduce_sum(load_LE, dist)
        step_LE = coeff * torch.sign(load_LE.mean(dim=1, keepdim=True) - load_LE)
        for gate, step_E in zip(gates, step_LE):
            bias = gate.expert_bias.double() + step_E.to(gate.expert_bias.device)
            gate.expert_bias.copy_(bias - bias.mean())
    for gate in gates:
        gate.bias_load.zero_()
