"""Numbers that must not depend on how they are computed. Prints JSON:

* ``fused_loss_gradient``: relative error of the fused loss's gradients (hidden states, the whole
  head, the head's rows of tokens that are no target) in fp16 and bf16 against fp32, with the row
  weight of a real step (1/16384), at initialisation and for a confident ("peaky") model;
* ``validation_by_micro_batch``: the validation loss of the same weights at micro-batch 1, 2, 4, 8
  (the fixed validation set: the values must agree to float rounding);
* ``padded_split``: the loss of the third step and the largest weight difference after it for the
  same samples split 8 x 1, 4 x 2 and 1 x 8 (padded rows, fp32);
* ``no_grad_loss``: the fused loss's time with gradients vs under ``no_grad`` (evaluation).

    python benchmarks/trust.py
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from _common import use_repo  # this directory is first on sys.path

use_repo()


def fused_loss_gradient() -> dict:
    import torch

    from minimind.losses import linear_cross_entropy

    def grads(h, w, t, weights, dtype):
        h, w = h.clone().requires_grad_(), w.clone().requires_grad_()
        linear_cross_entropy(h, w, t, weights, compute_dtype=dtype).backward()
        return h.grad.double(), w.grad.double()

    def rel(a, b):
        return round(((a - b).norm() / b.norm()).item(), 6)

    out = {}
    for name, w_scale, h_scale in (("init", 0.02, 1.0), ("peaky", 0.3, 3.0)):
        torch.manual_seed(0)
        N, D, V = 1024, 64, 6400
        w, h = torch.randn(V, D) * w_scale, torch.randn(N, D) * h_scale
        t = torch.randint(0, V // 2, (N,))
        weights = torch.full((N,), 1.0 / 16384)
        ref_h, ref_w = grads(h, w, t, weights, torch.float32)
        for dtype in (torch.bfloat16, torch.float16):
            gh, gw = grads(h, w, t, weights, dtype)
            out[f"{name}/{str(dtype).split('.')[1]}"] = {
                "hidden": rel(gh, ref_h), "head": rel(gw, ref_w), "head_non_target_rows": rel(gw[V // 2:], ref_w[V // 2:])}
    return out


def _config(data: Path, *extra: str):
    from minimind.config import resolve
    from minimind.data.format import read_meta

    return resolve("tiny", [f"data.path={data}", "train.dtype=fp32", "train.device=cpu", "train.compile=false",
                            f"model.vocab_size={read_meta(data)['vocab_size']}", "train.max_steps=100",
                            "model.hidden_size=64", "model.num_hidden_layers=2", "data.max_seq_len=64", *extra])


def validation_by_micro_batch(data: Path) -> dict:
    from minimind.training.build import build
    from minimind.training.memory import Split
    from minimind.training.step import evaluate

    built = build(_config(data, "train.eval_samples=64"))
    position = built.loader.state_dict()
    losses = {}
    for b in (1, 2, 4, 8):
        built.resplit(Split.fixed(b, 8 // b), position)
        losses[b] = evaluate(built)
    return {"val_loss": {b: round(v, 7) for b, v in losses.items()},
            "spread": max(losses.values()) - min(losses.values())}


def padded_split(data: Path) -> dict:
    from minimind.training.build import build
    from minimind.training.state import TrainState
    from minimind.training.step import train_step

    results = {}
    for b, a in ((8, 1), (4, 2), (1, 8)):
        built = build(_config(data, "data.packing=false", f"train.batch_size={b}", f"train.accumulation_steps={a}",
                              "train.learning_rate=5e-4"))
        state = TrainState()
        for _ in range(3):
            r = train_step(built, state)
            state.advance(r.loss, r.tokens)
        results[f"{b}x{a}"] = (r.loss, {k: v.clone() for k, v in built.model.state_dict().items()})
    ref = results["8x1"][1]
    return {"step3_loss": {k: round(v[0], 7) for k, v in results.items()},
            "max_weight_diff": {k: max((w - ref[n]).abs().max().item() for n, w in v[1].items())
                                for k, v in results.items()}}


def no_grad_loss() -> dict:
    import torch

    from minimind.losses import linear_cross_entropy

    torch.manual_seed(0)
    N, D, V = 8192, 512, 6400
    h, w = torch.randn(N, D, requires_grad=True), (torch.randn(V, D) * 0.02).requires_grad_()
    t, weights = torch.randint(0, V, (N,)), torch.full((N,), 1.0 / N)

    def timed(grad: bool) -> float:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            with torch.set_grad_enabled(grad):
                linear_cross_entropy(h, w, t, weights)
            best = min(best, time.perf_counter() - t0)
        return best

    with_grad, without = timed(True), timed(False)
    return {"with_grad_s": round(with_grad, 3), "no_grad_s": round(without, 3), "ratio": round(with_grad / without, 2)}


def main() -> None:
    from benchmarks.train import ensure_data

    data = ensure_data(None)
    print(json.dumps({"cpu": platform.processor() or platform.machine(), "fused_loss_gradient": fused_loss_gradient(),
                      "validation_by_micro_batch": validation_by_micro_batch(data), "padded_split": padded_split(data),
                      "no_grad_loss": no_grad_loss()}, indent=2))


if __name__ == "__main__":
    main()
