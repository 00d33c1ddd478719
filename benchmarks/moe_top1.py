"""Expert loads of a short minimind3-moe run (MiniMind-3's top-1 routing, no shared expert,
whole-batch balance loss 5e-4). Prints JSON: per step, each layer's token share per expert and
the worst imbalance (max share x experts: 1.0 is even, 4.0 is one expert taking every token).

    python benchmarks/moe_top1.py                       # full size, the built-in sample corpus
    python benchmarks/moe_top1.py --steps 40 --set model.hidden_size=256 --set model.num_attention_heads=4

Every token's routing is counted (``read_expert_counts``), so the numbers do not depend on
machine load, only on the seed and the data.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import ensure_data, use_repo  # this directory is first on sys.path

use_repo()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="minimind3-moe")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=340)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()

    from minimind.config import resolve
    from minimind.data.format import read_meta
    from minimind.metrics import expert_load
    from minimind.training.build import build
    from minimind.training.state import TrainState
    from minimind.training.step import train_step

    data = ensure_data(args.data)
    cfg = resolve(args.profile, [f"data.path={data}", f"model.vocab_size={read_meta(data)['vocab_size']}",
                                 f"data.max_seq_len={args.seq_len}", f"train.batch_size={args.batch_size}",
                                 "train.accumulation_steps=1", f"train.max_steps={args.steps}", "train.device=cpu",
                                 "train.compile=false", *args.overrides])
    built = build(cfg)
    state = TrainState()
    steps = []
    t0 = time.perf_counter()
    for _ in range(args.steps):
        result = train_step(built, state)
        state.advance(result.loss, result.tokens)
        load, imbalance = expert_load(built.model.read_expert_counts())
        steps.append({"step": state.step, "loss": round(result.loss, 4), "imbalance": round(imbalance, 3),
                      "load": [[round(x, 3) for x in layer] for layer in load]})
        print(json.dumps(steps[-1]), file=sys.stderr)
    m = cfg.model
    print(json.dumps({"benchmark": "moe_top1", "profile": args.profile, "data": str(data), "params": built.params,
                      "experts": m.n_routed_experts, "top_k": m.num_experts_per_tok, "shared": m.n_shared_experts,
                      "aux_loss_alpha": m.aux_loss_alpha, "seq_aux": m.seq_aux, "dtype": built.dtype_name,
                      "batch_size": args.batch_size, "seq_len": args.seq_len, "seconds": round(time.perf_counter() - t0, 1),
                      "steps": steps}, indent=1))


if __name__ == "__main__":
    main()
