"""Muon vs AdamW, and MoE balancing (aux_loss / bias / both), at equal tokens. Prints JSON.

    python benchmarks/optimizer_balance.py                  # tiny profile, built-in sample corpus
    python benchmarks/optimizer_balance.py --steps 400 --data out/data --set model.hidden_size=256

Every variant trains the same model on the same data order (same seed) with ``build`` +
``train_step``, evaluating on the validation split every ``--eval-every`` steps. Reported:
- optimizers: final val loss, and the tokens each needs to first reach AdamW's final val loss
  (``tokens_to_baseline``; its ratio to AdamW's run length is the target: <= 0.8);
- balancing: final val loss and expert imbalance (max/mean token share per layer, worst layer),
  both per step averaged after the warm-up (``--warmup`` steps) and over all post-warm-up tokens.
Token counts do not depend on machine load, so the numbers are reproducible on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import ensure_data, use_repo  # this directory is first on sys.path

use_repo()


OPTIMIZERS = {"adamw": ["train.optimizer=adamw"], "muon": ["train.optimizer=muon"]}
BALANCES = {name: ["model.use_moe=true", f"model.router_balance={name}"] for name in ("aux_loss", "bias", "both")}


def run(data: Path, steps: int, eval_every: int, warmup: int, overrides: list[str]) -> dict:
    import torch

    from minimind.config import resolve
    from minimind.data.format import read_meta
    from minimind.training.build import build
    from minimind.training.state import TrainState
    from minimind.training.step import evaluate, train_step

    vocab = read_meta(data)["vocab_size"]
    cfg = resolve("tiny", [f"data.path={data}", f"model.vocab_size={vocab}", f"train.max_steps={steps}",
                           "train.device=cpu", "train.compile=false", *overrides])
    torch.manual_seed(cfg.train.seed)
    built = build(cfg)
    state = TrainState()
    curve, per_step, totals = [], [], None
    t0 = time.perf_counter()
    while state.step < built.total_steps:
        result = train_step(built, state)
        if not result.finite:
            continue
        state.advance(result.loss, result.tokens)
        counts = built.model.read_expert_counts()
        if counts and state.step > warmup:
            loads = torch.tensor(counts)  # (layers, experts)
            per_step.append((loads.max(1).values / loads.mean(1)).max().item())
            totals = loads if totals is None else totals + loads
        if state.step % eval_every == 0 or state.step == built.total_steps:
            curve.append([state.step, state.tokens_seen, evaluate(built)])
            print(f"{overrides[-1]}: step {state.step} val {curve[-1][2]}", file=sys.stderr, flush=True)
    out = {"overrides": overrides, "steps": state.step, "tokens": state.tokens_seen, "final_val_loss": curve[-1][2],
           "curve": curve, "seconds": round(time.perf_counter() - t0, 1)}
    if per_step:
        out["imbalance_per_step_mean"] = sum(per_step) / len(per_step)
        out["imbalance_per_step_max"] = max(per_step)
        out["imbalance_after_warmup"] = (totals.max(1).values / totals.mean(1)).max().item()
        out["router_bias"] = built.model.router_biases()
    return out


def tokens_to_reach(curve: list, target: float) -> int | None:
    for _, tokens, val in curve:
        if val is not None and val <= target:
            return tokens
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=50, help="steps before imbalance is counted")
    parser.add_argument("--only", choices=("optimizers", "balance"), default=None)
    parser.add_argument("--set", action="append", default=[], dest="overrides", help="extra config overrides")
    parser.add_argument("--muon-lr", type=float, action="append", default=None,
                        help="more Muon learning rates to try (besides the config's)")
    parser.add_argument("--balances", default="aux_loss,bias,both", help="router_balance variants to run")
    args = parser.parse_args()
    data = ensure_data(args.data)
    report: dict = {"data": str(data), "steps": args.steps, "machine_note": "token counts are load-independent"}
    common = ["train.eval_samples=640", *args.overrides]
    if args.only in (None, "optimizers"):
        variants = dict(OPTIMIZERS)
        for lr in args.muon_lr or []:
            variants[f"muon_lr_{lr:g}"] = ["train.optimizer=muon", f"train.muon_lr={lr}"]
        results = {name: run(data, args.steps, args.eval_every, args.warmup, [*common, *o])
                   for name, o in variants.items()}
        baseline = results["adamw"]
        for r in results.values():
            reached = tokens_to_reach(r["curve"], baseline["final_val_loss"])
            r["tokens_to_baseline"] = reached
            r["tokens_ratio"] = reached / baseline["tokens"] if reached else None
        report["optimizers"] = results
    if args.only in (None, "balance"):
        report["balance"] = {name: run(data, args.steps, args.eval_every, args.warmup, [*common, *BALANCES[name]])
                             for name in args.balances.split(",")}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
