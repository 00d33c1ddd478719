"""The cost of live samples: one sample round (the default 3 prompts x ``train.sample_tokens`` 48,
greedy, KV cache) against the training time between two evaluations, per profile. Prints JSON.

    python benchmarks/samples.py                          # tiny + default, on this machine's device
    python benchmarks/samples.py --profiles default --micro-batch 4
    python benchmarks/samples.py --real-tiny              # also a real `tiny` trainer run (300 steps)
    python benchmarks/samples.py --profiles none --real-tiny --real-steps 100 --real-eval-interval 25

``share_uncapped`` is what a round costs at the profile's eval interval without the trainer's time
budget; the trainer caps all rounds together at ``minimind.training.samples.SHARE`` of its wall time
(each round may take at least ``FLOOR_S``). The optimizer step is timed on ``--micro-batch``
samples and scaled to the profile's batch x accumulation (linear in tokens). ``--real-tiny`` runs the
trainer itself and adds up the ``sample`` events' seconds against its elapsed time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, ensure_data, use_repo  # this directory is first on sys.path

use_repo()


def measure(profile: str, data: Path, device: str, micro_batch: int | None, steps: int, rounds: int) -> dict:
    from minimind.config import resolve
    from minimind.data.format import read_meta
    from minimind.training import samples as samples_mod
    from minimind.training.build import build
    from minimind.training.state import TrainState
    from minimind.training.step import train_step

    base = resolve(profile)
    micro = micro_batch or base.train.batch_size
    cfg = resolve(profile, [f"data.path={data}", f"model.vocab_size={read_meta(data)['vocab_size']}",
                            f"train.batch_size={micro}", "train.accumulation_steps=1", "train.compile=false",
                            f"train.device={device}", "train.max_steps=1000000"])
    built = build(cfg)
    state = TrainState()
    train_step(built, state)  # warm-up
    times = [train_step(built, state).seconds for _ in range(steps)]
    micro_s = statistics.median(times)
    step_s = micro_s * (base.train.batch_size / micro) * base.train.accumulation_steps
    samples_mod.FLOOR_S = float("inf")  # the uncapped cost of a round
    sampler = samples_mod.Sampler(built)
    sampler.run()  # warm-up (tokenizer, prompts, kernels)
    round_times, new_tokens, texts = [], 0, []
    for _ in range(rounds):
        t0 = time.perf_counter()
        got = sampler.run()
        round_times.append(time.perf_counter() - t0)
        new_tokens = sum(s.new_tokens for s in got)
        texts = [s.text for s in got]
    round_s = statistics.median(round_times)
    between = base.train.eval_interval * step_s
    return {
        "profile": profile, "device": str(built.device), "dtype": built.dtype_name, "params": built.params["total"],
        "micro_batch": micro, "global_batch": base.train.batch_size * base.train.accumulation_steps,
        "max_seq_len": cfg.data.max_seq_len, "micro_step_s": round(micro_s, 4), "step_s": round(step_s, 3),
        "eval_interval": base.train.eval_interval, "prompts": len(sampler.prompts),
        "new_tokens_per_round": new_tokens, "round_s": round(round_s, 4),
        "generated_tokens_per_s": round(new_tokens / round_s, 1),
        "round_over_one_step": round(round_s / step_s, 4),
        "share_uncapped": round(round_s / (between + round_s), 5),
        "share_cap": samples_mod.SHARE, "texts_untrained": texts,
    }


def real_tiny(data: Path, steps: int, eval_interval: int) -> dict:
    """A real tiny trainer run: sample seconds (from its events) over its elapsed time."""
    from minimind.config import resolve, save_config
    from minimind.data.format import read_meta
    from minimind.events import read_events

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "runs" / "bench"
        run_dir.mkdir(parents=True)
        cfg = resolve("tiny", [f"data.path={data}", f"model.vocab_size={read_meta(data)['vocab_size']}",
                               f"run.out_dir={tmp}", "run.name=bench", f"train.max_steps={steps}",
                               f"train.eval_interval={eval_interval}"])
        save_config(cfg, run_dir / "config.yaml")
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "minimind.train", str(run_dir)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            return {"error": out.stderr[-2000:]}
        events = read_events(run_dir / "events.jsonl")
    samples = [e for e in events if e["type"] == "sample"]
    finished = next(e for e in events if e["type"] == "run_finished")
    sample_s = sum(e["seconds"] for e in samples)
    return {
        "steps": steps, "eval_interval": cfg.train.eval_interval, "rounds": len({e["step"] for e in samples}),
        "samples": len(samples), "sample_s": round(sample_s, 3), "elapsed_s": round(finished["elapsed_s"], 1),
        "process_wall_s": round(wall, 1), "share_of_elapsed": round(sample_s / finished["elapsed_s"], 5),
        "stopped": sorted({e.get("stopped") for e in samples}),
        "last_texts": [{"prompt": e["prompt"], "text": e["text"]} for e in samples[-3:]],
        "first_texts": [{"prompt": e["prompt"], "text": e["text"]} for e in samples[:3]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["tiny", "default"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--micro-batch", type=int, default=None,
                        help="samples per timed micro-batch (default: the profile's batch_size)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None, help="dataset dir (default: the sample corpus)")
    parser.add_argument("--real-tiny", action="store_true", help="also run a real tiny trainer")
    parser.add_argument("--real-steps", type=int, default=300)
    parser.add_argument("--real-eval-interval", type=int, default=100, help="the tiny profile's: 100")
    args = parser.parse_args()
    data = ensure_data(args.data)
    results = [measure(p, data, args.device, args.micro_batch, args.steps, args.rounds) for p in args.profiles
               if p != "none"]
    for r in results:
        print(json.dumps(r), file=sys.stderr)
    report = {"benchmark": "samples", "data": str(data), "results": results}
    if args.real_tiny:
        report["real_tiny"] = real_tiny(data, args.real_steps, args.real_eval_interval)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
