"""The chunked cross-entropy over the tied head equals the plain logits -> cross-entropy path."""

import pytest
import torch
import torch.nn.functional as F

from minimind.config import ModelConfig
from minimind.losses import linear_cross_entropy
from minimind.model import MiniMindLM


def _plain(h, w, t, weights):
    return (F.cross_entropy((h @ w.T).float(), t, reduction="none") * weights).sum()


@pytest.mark.parametrize("chunk", [None, 7, 64])  # one chunk; chunks that do not divide N; N rows
def test_loss_and_gradients_match_the_plain_version_in_fp32(chunk):
    torch.manual_seed(0)
    N, D, V = 64, 32, 300
    h = torch.randn(N, D, dtype=torch.float64).float().requires_grad_()
    w = (torch.randn(V, D) * 0.3).requires_grad_()
    t = torch.randint(0, V, (N,))
    weights = torch.rand(N)
    weights[::5] = 0  # padding rows count nothing
    weights = weights / weights.sum()
    h2, w2 = h.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()

    ours = linear_cross_entropy(h, w, t, weights, chunk=chunk)
    plain = _plain(h2, w2, t, weights)
    (ours * 3).backward()
    (plain * 3).backward()
    assert abs(ours.item() - plain.item()) < 1e-5
    assert (h.grad - h2.grad).abs().max().item() < 1e-5
    assert (w.grad - w2.grad).abs().max().item() < 1e-5
    assert h.grad[::5].abs().max().item() == 0.0


@pytest.mark.parametrize("masked", [False, True])
def test_model_loss_and_gradients_match_logits_cross_entropy(masked):
    torch.manual_seed(0)
    cfg = ModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      vocab_size=97, max_position_embeddings=64)
    a = MiniMindLM(cfg).train()
    b = MiniMindLM(cfg).train()
    b.load_state_dict(a.state_dict())
    x, y = torch.randint(0, 97, (3, 16)), torch.randint(0, 97, (3, 16))
    mask = (torch.rand(3, 16) > 0.3).float() if masked else None
    out = a(x, targets=y, loss_mask=mask)
    assert out.logits is None  # the training path never builds (B, T, vocab)
    out.loss.backward()
    per_token = F.cross_entropy(b(x).logits.float().view(-1, 97), y.view(-1), reduction="none")
    plain = per_token.mean() if mask is None else (per_token * mask.view(-1)).sum() / mask.sum()
    plain.backward()
    assert abs(out.loss.item() - plain.item()) < 1e-5
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert (pa.grad - pb.grad).abs().max().item() < 1e-5, name


def test_the_loss_under_no_grad_equals_the_plain_loss():
    h, w = torch.randn(8, 4), torch.randn(10, 4)
    with torch.no_grad():
        loss = linear_cross_entropy(h, w, torch.zeros(8, dtype=torch.long), torch.full((8,), 1 / 8))
    assert loss.item() == pytest.approx(_plain(h, w, torch.zeros(8, dtype=torch.long), torch.full((8,), 1 / 8)).item())


def _grads(h, w, t, weights, dtype):
    h, w = h.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    linear_cross_entropy(h, w, t, weights, compute_dtype=dtype).backward()
    return h.grad.double(), w.grad.double()


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("peaky", [False, True])  # at initialisation; a trained, confident model
def test_fp16_gradients_are_as_exact_as_bf16_including_rows_of_non_target_tokens(peaky):
    """The row weight of a real step (1/16384 tokens) must not push the fp16 softmax gradient
    below fp16's smallest subnormal: fp16 matches fp32 as closely as bf16 does (< 1%)."""
    torch.manual_seed(0)
    N, D, V = 1024, 64, 6400
    w = torch.randn(V, D) * (0.3 if peaky else 0.02)
    h = torch.randn(N, D) * (3.0 if peaky else 1.0)
    t = torch.randint(0, V // 2, (N,))  # the upper half of the vocabulary is never a target
    weights = torch.full((N,), 1.0 / 16384)
    ref_h, ref_w = _grads(h, w, t, weights, torch.float32)
    errors = {}
    for dtype in (torch.bfloat16, torch.float16):
        gh, gw = _grads(h, w, t, weights, dtype)
        # hidden states, the whole head, the head's rows of tokens that are no target here
        errors[dtype] = (_rel(gh, ref_h), _rel(gw, ref_w), _rel(gw[V // 2:], ref_w[V // 2:]))
    assert max(errors[torch.float16]) < 0.01, errors
    assert all(f <= b for f, b in zip(errors[torch.float16], errors[torch.bfloat16])), errors
