"""The training forward and backward never read a value back from the device: no host sync on
CUDA, no graph break under ``torch.compile`` (MoE routing and bias balancing included)."""

from __future__ import annotations

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from minimind.config import ModelConfig
from minimind.model import MiniMindLM

# aten ops whose result size or value must come back to the host
SYNCING = ("bincount", "nonzero", "_local_scalar_dense", "unique", "masked_select", "histc")


def _model(balance: str) -> MiniMindLM:
    torch.manual_seed(0)
    # One layer: every op of a block (attention, router, experts) is traced once; more layers repeat them.
    cfg = ModelConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                      vocab_size=97, max_position_embeddings=64, use_moe=True, router_balance=balance)
    return MiniMindLM(cfg).train()


def _inputs(doc_mask: bool):
    x, y = torch.randint(0, 97, (2, 16)), torch.randint(0, 97, (2, 16))
    mask = torch.ones(2, 16)
    positions = torch.cat([torch.arange(10), torch.arange(6)]).repeat(2, 1) if doc_mask else None
    return x, y, mask, positions


@pytest.mark.parametrize("balance", ["aux_loss", "bias", "both"])
@pytest.mark.parametrize("doc_mask", [False, True])
def test_the_traced_training_step_has_no_syncing_op(balance, doc_mask):
    model = _model(balance)

    def step(x, y, mask, positions):
        out = model(x, targets=y, loss_mask=mask, position_ids=positions)
        (out.loss + out.aux_loss).backward()
        return out.loss

    graph = make_fx(step)(*_inputs(doc_mask))
    ops = {str(node.target) for node in graph.graph.nodes if node.op == "call_function"}
    assert len(ops) > 20  # really traced: attention, experts, router, loss and their backward
    assert not [op for op in ops if any(name in op for name in SYNCING)]


@pytest.mark.parametrize("balance", ["aux_loss", "bias"])
def test_the_compiled_moe_forward_has_no_graph_break(balance):
    import torch._dynamo as dynamo

    model = _model(balance)
    x, y, mask, _ = _inputs(False)
    explained = dynamo.explain(lambda a, b, m: model(a, targets=b, loss_mask=m).loss)(x, y, mask)
    assert explained.graph_break_count == 0, [str(r.reason)[:200] for r in explained.break_reasons]
    assert explained.graph_count == 1
