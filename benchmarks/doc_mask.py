"""The cost of document-aware packing (``data.doc_mask``): training step time with and without it,
interleaved step by step in one process (the same load hits both), on the public step API. Also
the attention alone (forward + backward of ``scaled_dot_product_attention``): causal fast path vs
the boolean document mask vs the same mask as an additive float mask. Prints JSON.

    python benchmarks/doc_mask.py                                  # tiny (16 x 128) and default (4 x 512)
    python benchmarks/doc_mask.py --shapes tiny:16:128 tiny:4:512 --steps 10

Ratios > 1 mean doc_mask is slower. Medians over the interleaved steps.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from _common import ensure_data, use_repo  # this directory is first on sys.path

use_repo()


def step_times(profile: str, batch: int, seq_len: int, data: Path, steps: int, warmup: int) -> dict:
    import torch

    from minimind.config import resolve
    from minimind.data.format import read_meta
    from minimind.training.build import build
    from minimind.training.state import TrainState
    from minimind.training.step import train_step

    vocab = read_meta(data)["vocab_size"]
    base = [f"data.path={data}", f"train.batch_size={batch}", "train.accumulation_steps=1", "train.dtype=fp32",
            "train.compile=false", "train.device=cpu", "train.max_steps=1000000", f"model.vocab_size={vocab}",
            f"data.max_seq_len={seq_len}"]
    builts = {}
    for name, extra in (("packed", []), ("doc_mask", ["data.doc_mask=true"])):
        torch.manual_seed(0)
        builts[name] = build(resolve(profile, [*base, *extra]))
    states = {name: TrainState() for name in builts}
    times: dict[str, list[float]] = {name: [] for name in builts}
    for i in range(warmup + steps):
        for name in (builts if i % 2 == 0 else reversed(list(builts))):  # ABBA: neither always goes first
            result = train_step(builts[name], states[name])
            if i >= warmup:
                times[name].append(result.seconds)
    med = {name: statistics.median(t) for name, t in times.items()}
    return {"shape": f"{profile}:{batch}:{seq_len}", "median_step_s": {k: round(v, 4) for k, v in med.items()},
            "doc_mask_step_time_ratio": round(med["doc_mask"] / med["packed"], 3),
            "doc_mask_tokens_per_s_ratio": round(med["packed"] / med["doc_mask"], 3)}


def attention_times(batch: int, heads: int, seq_len: int, head_dim: int, repeats: int, mean_doc: int) -> dict:
    import torch
    import torch.nn.functional as F

    from minimind.model import document_mask

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(batch, heads, seq_len, head_dim, generator=g, requires_grad=True) for _ in range(3))
    starts = torch.rand(batch, seq_len, generator=g) < 1 / mean_doc
    starts[:, 0] = True
    idx = torch.arange(seq_len).expand(batch, -1)
    positions = idx - torch.cummax(torch.where(starts, idx, 0), dim=1).values
    bool_mask = document_mask(positions)  # built once per forward in the model, shared by the layers
    float_mask = torch.zeros(batch, 1, seq_len, seq_len).masked_fill(~bool_mask, float("-inf"))
    variants = {
        "causal": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        "bool_mask": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=bool_mask),
        "float_mask": lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=float_mask),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for r in range(repeats + 1):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn().sum().backward()
            if r:
                times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(t) for name, t in times.items()}
    return {"shape": [batch, heads, seq_len, head_dim], "median_s": {k: round(v, 4) for k, v in med.items()},
            "over_causal": {k: round(v / med["causal"], 3) for k, v in med.items() if k != "causal"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["tiny:16:128", "default:4:512"],
                        help="profile:batch:seq_len")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--data", type=Path, default=None, help="dataset dir (default: the sample corpus)")
    args = parser.parse_args()
    import torch

    data = ensure_data(args.data)
    threads = int(os.environ.get("BENCH_THREADS", "0"))
    if threads:
        torch.set_num_threads(threads)
    steps = [step_times(p, int(b), int(s), data, args.steps, args.warmup)
             for p, b, s in (shape.split(":") for shape in args.shapes)]
    attention = [attention_times(16, 4, 128, 32, 20, 100), attention_times(4, 8, 512, 64, 10, 100)]
    print(json.dumps({"benchmark": "doc_mask", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "load_average_1min": round(os.getloadavg()[0], 2), "train_step": steps,
                      "attention": attention}, indent=1))


if __name__ == "__main__":
    main()
