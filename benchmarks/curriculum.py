"""Sequence-length curriculum vs none: validation loss at equal trained tokens, and the wall-clock
those tokens take. Prints JSON.

    python benchmarks/curriculum.py                                  # tiny model, sample corpus
    python benchmarks/curriculum.py --tokens 2000000 --seeds 1 2 --set model.hidden_size=256

Both runs train the same model on the same samples in the same order (one seed each), with the
same tokens per optimizer step and the same lr schedule; only the window length differs during the
curriculum's early phases. Validation always uses full ``max_seq_len`` windows, on a validation
split of 5% of the corpus (the sample corpus is prepared once with ``val_fraction=0.05``).
Wall-clock is the time spent in optimizer steps (evaluations excluded); the CPU time of those
steps (one torch thread by default) is reported too, as it moves less with other load. Each run is its own
process, and runs alternate (none, curriculum, curriculum, none, ...) so that load from other
processes on a shared machine falls on both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _common import REPO, ensure_data, use_repo  # this directory is first on sys.path

use_repo()

DEFAULT_SCHEDULE = "[[0, 128], [0.3, 256], [0.6, 512]]"


def measure(args: argparse.Namespace, schedule: str | None, seed: int) -> dict:
    import time

    import torch

    from minimind.config import resolve
    from minimind.data.format import read_meta
    from minimind.training.build import build
    from minimind.training.state import TrainState
    from minimind.training.step import evaluate, train_step

    vocab = read_meta(args.data)["vocab_size"]
    overrides = [f"data.path={args.data}", f"model.vocab_size={vocab}", f"data.max_seq_len={args.max_seq_len}",
                 f"train.batch_size={args.batch_size}", "train.accumulation_steps=1", f"train.dtype={args.dtype}",
                 "train.device=cpu", "train.compile=false", f"train.seed={seed}", "train.eval_samples=100000",
                 f"train.max_steps={args.tokens // (args.batch_size * args.max_seq_len)}",
                 f"data.seq_len_schedule={schedule or 'null'}", *args.set]
    cfg = resolve(args.profile, overrides)
    torch.set_num_threads(args.threads)
    built = build(cfg)
    state = TrainState()
    evals = max(1, args.evals)
    points = sorted({round(built.total_steps * (i + 1) / evals) for i in range(evals)})
    curve, seconds, cpu_seconds, by_len = [], 0.0, 0.0, {}
    while state.step < built.total_steps:
        cpu0 = time.process_time()
        result = train_step(built, state)
        cpu = time.process_time() - cpu0
        state.advance(result.loss, result.tokens)
        seconds += result.seconds
        cpu_seconds += cpu
        by_len.setdefault(built.loader.seq_len, [0.0, 0.0, 0])
        by_len[built.loader.seq_len][0] += result.seconds
        by_len[built.loader.seq_len][1] += cpu
        by_len[built.loader.seq_len][2] += 1
        if state.step in points:
            curve.append([state.tokens_seen, round(evaluate(built), 4)])
    return {
        "schedule": json.loads(schedule) if schedule else None, "seed": seed, "steps": built.total_steps,
        "tokens": state.tokens_seen, "params": built.params["total"], "dtype": built.dtype_name,
        "phases": built.curriculum.to_event() if built.curriculum else None,
        "train_seconds": round(seconds, 2), "train_cpu_seconds": round(cpu_seconds, 2),
        "tokens_per_s": round(state.tokens_seen / seconds, 1),
        "step_seconds_by_seq_len": {str(k): round(v[0] / v[2], 4) for k, v in sorted(by_len.items())},
        "step_cpu_seconds_by_seq_len": {str(k): round(v[1] / v[2], 4) for k, v in sorted(by_len.items())},
        "final_train_loss": round(state.last_loss, 4), "val_curve": curve, "val_loss": curve[-1][1],
        "threads": torch.get_num_threads(),
    }


def tokens_to_reach(curve: list[list[float]], target: float) -> int | None:
    """Trained tokens at the first evaluation whose val loss is at or below ``target``."""
    return next((int(tokens) for tokens, loss in curve if loss <= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None, help="dataset dir (default: the sample corpus)")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--schedule", default=DEFAULT_SCHEDULE, help="data.seq_len_schedule of the curriculum run")
    parser.add_argument("--max-seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=1_000_000, help="trained tokens per run")
    parser.add_argument("--dtype", default="bf16")
    parser.add_argument("--evals", type=int, default=8, help="validation passes per run (for the val curve)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (1: CPU time measures work "
                                                                "even on a shared machine)")
    parser.add_argument("--set", action="append", default=[], help="extra config override (repeatable)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        seed, _, schedule = args.one.partition(",")
        print(json.dumps(measure(args, schedule or None, int(seed))))
        return
    args.data = ensure_data(args.data, "minimind-bench-sample-val5", val_fraction=0.05)
    runs = []
    for i, seed in enumerate(args.seeds):
        pair = [None, args.schedule] if i % 2 == 0 else [args.schedule, None]
        runs += [(seed, schedule) for schedule in pair]
    results = []
    for seed, schedule in runs:
        cmd = [sys.executable, __file__, "--one", f"{seed},{schedule or ''}", "--data", str(args.data),
               "--profile", args.profile, "--max-seq-len", str(args.max_seq_len), "--batch-size",
               str(args.batch_size), "--tokens", str(args.tokens), "--dtype", args.dtype, "--evals", str(args.evals),
               "--threads", str(args.threads), *(f"--set={s}" for s in args.set)]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        if out.returncode != 0:
            raise SystemExit(out.stderr[-3000:])
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr)
    summary = []
    for seed in args.seeds:
        none = next(r for r in results if r["seed"] == seed and r["schedule"] is None)
        curr = next(r for r in results if r["seed"] == seed and r["schedule"] is not None)
        reach = tokens_to_reach(curr["val_curve"], none["val_loss"])
        summary.append({
            "seed": seed, "val_loss_none": none["val_loss"], "val_loss_curriculum": curr["val_loss"],
            "val_loss_difference": round(curr["val_loss"] - none["val_loss"], 4),
            "wall_clock_ratio": round(curr["train_seconds"] / none["train_seconds"], 3),
            "cpu_time_ratio": round(curr["train_cpu_seconds"] / none["train_cpu_seconds"], 3),
            "tokens_per_s_ratio": round(curr["tokens_per_s"] / none["tokens_per_s"], 3),
            "curriculum_tokens_to_reach_none_final_val": reach,
        })
    print(json.dumps({"benchmark": "curriculum", "data": str(args.data), "profile": args.profile,
                      "max_seq_len": args.max_seq_len, "tokens": args.tokens, "results": results,
                      "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
