"""The grouped (sorted tokens + grouped matmul) expert dispatch against the per-expert loop it
replaced: same outputs, same gradients, same routing statistics and aux loss."""

import pytest
import torch

from minimind.config import ModelConfig
from minimind.model import MiniMindLM, MoEFeedForward
from minimind.moe_dispatch import dispatch, grouped_mm_supported

CFG = ModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  vocab_size=97, max_position_embeddings=128, use_moe=True)


def loop_dispatch(x_ND, topk_idx_NK, topk_weight_NK, experts):
    """The dispatch as it was: sort (token, slot) pairs by expert, one call per expert with tokens."""
    K = topk_idx_NK.shape[1]
    out_ND = torch.zeros_like(x_ND)
    flat = topk_idx_NK.reshape(-1)
    order = torch.argsort(flat, stable=True)
    token_of_pair, weight_of_pair = order // K, topk_weight_NK.reshape(-1)[order]
    start = 0
    for e, count in enumerate(torch.bincount(flat, minlength=len(experts)).tolist()):
        tokens = token_of_pair[start:start + count]
        y = experts[e](x_ND[tokens]) * weight_of_pair[start:start + count, None]
        out_ND.index_add_(0, tokens, y.to(out_ND.dtype))
        start += count
    return out_ND


def _routing(seed, N=48, empty_expert=False):
    torch.manual_seed(seed)
    moe = MoEFeedForward(CFG).train()
    x = torch.randn(N, CFG.hidden_size)
    idx, weight, _ = moe.gate(x.view(1, N, -1))
    if empty_expert:  # nobody picks expert 3: the grouped matmul must cope with an empty group
        idx = torch.stack([torch.zeros(N, dtype=torch.long), torch.randint(1, 3, (N,))], dim=1)
    return moe, x, idx, weight.detach()


def _run(fn, moe, x, idx, weight, **kw):
    for p in moe.parameters():
        p.grad = None
    x = x.clone().requires_grad_()
    w = weight.clone().requires_grad_()
    out = fn(x, idx, w, moe.experts, **kw)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    grads = [p.grad.clone() for e in moe.experts for p in e.parameters()]
    return out.detach(), x.grad, w.grad, grads


@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize("empty_expert", [False, True])
def test_outputs_and_gradients_equal_the_loop_in_fp32(grouped, empty_expert):
    if grouped and not grouped_mm_supported(torch.float32, torch.device("cpu"), 64, 192):
        pytest.skip("this torch has no CPU torch._grouped_mm")
    moe, x, idx, weight = _routing(0, empty_expert=empty_expert)
    ref = _run(loop_dispatch, moe, x, idx, weight)
    ours = _run(dispatch, moe, x, idx, weight, use_grouped_mm=grouped)
    for a, b in zip(ours[:3], ref[:3]):
        assert (a - b).abs().max().item() < 1e-5
    for a, b in zip(ours[3], ref[3]):
        assert (a - b).abs().max().item() < 1e-5


def test_bf16_autocast_stays_close_to_the_loop():
    moe, x, idx, weight = _routing(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = loop_dispatch(x, idx, weight, moe.experts).float()
        ours = dispatch(x, idx, weight, moe.experts).float()
    assert ours.dtype == torch.float32
    assert (ours - ref).abs().max().item() < 2e-2 * ref.abs().max().item()


def test_moe_layer_output_statistics_and_aux_loss_match_the_loop():
    torch.manual_seed(2)
    model = MiniMindLM(CFG).train()
    layer = model.model.layers[0].mlp
    h = torch.randn(2, 12, CFG.hidden_size)
    valid = torch.ones(2, 12, dtype=torch.bool)
    valid[1, 8:] = False
    out = layer(h, valid)
    counts = model.read_expert_counts()[0]
    idx, weight, aux = layer.gate(h, valid)
    expected = loop_dispatch(h.reshape(-1, CFG.hidden_size), idx, weight, layer.experts).view(2, 12, -1)
    expected = expected + layer.shared_experts[0](h)
    assert (out - expected).abs().max().item() < 1e-5
    assert layer.aux_loss.item() == aux.item()
    assert counts == torch.bincount(idx[valid.reshape(-1)].reshape(-1), minlength=4).float().tolist()
    assert sum(counts) == (12 + 8) * 2


def test_dispatch_makes_no_expert_calls_and_no_host_syncs():
    """One grouped matmul per projection for all experts: the expert modules are never called, and
    nothing reads a routing-dependent number back to Python (which would stop torch.compile)."""
    moe, x, idx, weight = _routing(3, N=256)
    calls = []
    for expert in moe.experts:
        expert.register_forward_hook(lambda *a: calls.append(1))
    torch._dynamo.reset()
    compiled = torch.compile(dispatch, fullgraph=True, backend="eager")  # fullgraph: any sync would raise
    out = compiled(x, idx, weight, moe.experts)
    assert calls == []
    assert (out - loop_dispatch(x, idx, weight, moe.experts)).abs().max().item() < 1e-5
