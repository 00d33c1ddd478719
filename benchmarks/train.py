"""Training throughput: trained (non-padding) tokens/s, step time, MFU and peak memory, per profile,
dtype and sample mode. Each configuration runs in its own process (clean peak RSS). Prints JSON.

    python benchmarks/train.py                       # tiny + default, fp32 + bf16, packed + padded
    python benchmarks/train.py --profiles default --dtypes bf16 --modes packed --steps 5

MiniMind's reference on this 2-core CPU: ~850 trained tokens/s (default 25.8M model, fp32, batch 4,
max_seq_len 512, padded samples). The target is >= 2x that.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def ensure_data(path: Path | None) -> Path:
    if path is not None:
        return path
    from minimind.data.sample import prepare_sample

    target = Path(tempfile.gettempdir()) / "minimind-bench-sample"
    return Path(prepare_sample(target).path)


def measure(profile: str, dtype: str, packed: bool, data: Path, steps: int, warmup: int, batch: int,
            compile_model: bool = False) -> dict:
    import resource

    import torch

    from minimind.config import resolve
    from minimind.data.format import read_meta
    from minimind.events import EventWriter
    from minimind.metrics import StepTimer, measure_matmul_peak
    from minimind.training.build import build
    from minimind.training.report import step_payload
    from minimind.training.state import TrainState
    from minimind.training.step import train_step

    vocab = read_meta(data)["vocab_size"]
    overrides = [f"data.path={data}", f"train.dtype={dtype}", f"data.packing={str(packed).lower()}",
                 f"train.batch_size={batch}", "train.accumulation_steps=1", "train.max_steps=1000000",
                 f"model.vocab_size={vocab}", "train.device=cpu", f"train.compile={str(compile_model).lower()}"]
    if profile == "default":
        overrides.append("data.max_seq_len=512")
    cfg = resolve(profile, overrides)
    built = build(cfg)
    state = TrainState()
    peak_flops = measure_matmul_peak(built.device, built.amp_dtype, seconds=1.0)
    t_warm = time.perf_counter()
    for _ in range(warmup):
        train_step(built, state)
    warmup_s = time.perf_counter() - t_warm
    tokens, seconds, losses = 0, 0.0, []
    for _ in range(steps):
        result = train_step(built, state)
        seconds += result.seconds
        tokens += result.tokens
        losses.append(result.loss)
    step_time = seconds / steps
    # Cost of one logged step (payload + event write), relative to one step.
    timer = StepTimer()
    timer.add(step_time)
    reps = 20
    with tempfile.TemporaryDirectory() as tmp, EventWriter(tmp) as events:
        t0 = time.perf_counter()
        for _ in range(reps):
            events.emit("step", **step_payload(
                built, state, result, ema=result.loss, timer=timer, interval_tokens=tokens, interval_s=seconds,
                elapsed_s=seconds, peak_flops=peak_flops,
                expert_counts=built.model.read_expert_counts() if cfg.model.use_moe else []))
        log_cost = (time.perf_counter() - t0) / reps
    tps = tokens / seconds
    flops = built.flops_per_token
    return {
        "profile": profile, "dtype": dtype, "compile": compile_model, "warmup_s": round(warmup_s, 1),
        "mode": "packed" if packed else "padded", "batch_size": batch,
        "max_seq_len": cfg.data.max_seq_len, "params": built.params["total"], "steps": steps,
        "trained_tokens_per_s": round(tps, 1), "step_time_s": round(step_time, 4),
        "padding_fraction": round(1 - tokens / (steps * batch * cfg.data.max_seq_len), 4),
        "mfu": round(flops * tps / peak_flops, 4), "peak_flops_measured": peak_flops,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "log_event_cost_fraction_of_step": round(log_cost / step_time, 5),
        "losses": [round(x, 4) for x in losses], "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["tiny", "default"])
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--modes", nargs="+", default=["packed", "padded"])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--data", type=Path, default=None, help="dataset dir (default: the sample corpus)")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (bf16, packed)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        profile, dtype, mode, compiled = args.one.split(",")
        result = measure(profile, dtype, mode == "packed", args.data, args.steps, args.warmup, args.batch_size,
                         compiled == "compile")
        print(json.dumps(result))
        return
    data = ensure_data(args.data)
    results = []
    runs = [(p, d, m, "eager") for p in args.profiles for d in args.dtypes for m in args.modes]
    if args.compile:
        runs += [(p, "bf16", "packed", "compile") for p in args.profiles]
    for profile, dtype, mode, compiled in runs:
        cmd = [sys.executable, __file__, "--one", f"{profile},{dtype},{mode},{compiled}", "--data", str(data),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size)]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        if out.returncode != 0:
            results.append({"profile": profile, "dtype": dtype, "mode": mode, "compile": compiled == "compile",
                            "error": out.stderr[-2000:]})
            continue
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), file=sys.stderr)
    by = {(r["profile"], r["dtype"], r["mode"], r["compile"]): r for r in results if "error" not in r}
    summary = {}
    for profile in args.profiles:
        ref = by.get((profile, "fp32", "padded", False))
        for name, key in (("bf16_packed", (profile, "bf16", "packed", False)),
                          ("bf16_packed_compiled", (profile, "bf16", "packed", True)),
                          ("fp32_packed", (profile, "fp32", "packed", False))):
            if ref and key in by:
                summary[f"{profile}_{name}_over_fp32_padded"] = round(
                    by[key]["trained_tokens_per_s"] / ref["trained_tokens_per_s"], 2)
    print(json.dumps({"benchmark": "train", "data": str(data), "results": results, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
