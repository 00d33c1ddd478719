"""Training throughput on the public step API (``build`` + ``train_step``): trained (non-padding)
tokens/s, step time, MFU, peak memory, per configuration, and the ratios of the throughput
targets, all measured in one run. Each measurement runs in its own process (clean peak RSS), and
the configurations are interleaved over ``--repeats`` rounds so that load from other processes
on a shared machine hits all of them alike; the medians are compared. Prints JSON.

    python benchmarks/train.py                      # the target table: dense and MoE, profile vs fp32 eager
    python benchmarks/train.py --configs default,bf16,packed,on moe,fp32,packed,off --repeats 1
    python benchmarks/train.py --profile-step default,auto,packed,profile   # where one step's time goes

A configuration ``before:...`` runs the code in the directory ``$BENCH_BEFORE`` (e.g. an export
of an older commit) for a before/after comparison in the same run.

A configuration is ``profile,dtype,mode,compile``: dtype ``auto`` (what the profile picks on this
machine) or bf16/fp16/fp32; mode packed or padded; compile on, off or ``profile`` (the profile's
own setting). Default model, batch 4, seq 512 unless ``--batch-size``/``--seq-len`` say otherwise.
Mode ``docmask`` is packed with ``data.doc_mask=true`` (attention kept inside each document); its
ratio to the same configuration in packed mode is reported as ``doc_mask_over_packed``:

    python benchmarks/train.py --configs tiny,fp32,packed,off tiny,fp32,docmask,off --repeats 3

On a machine shared with other work, wall-clock rates follow the load; with ``BENCH_THREADS=1``
the trained tokens per CPU-second of the process (``trained_tokens_per_cpu_s``) are a fairer
measure of the work a step costs (one thread: no OpenMP spin-waiting counted as work).

The reference of the targets is our own fp32 eager packed mode, which runs at MiniMind's own
trainer's compute speed: dense and MoE profile throughput / that reference (target >= 4x), and
the MoE profile's peak RSS / the MoE fp32 eager one (target <= 1.2x).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO, ensure_data, use_repo  # this directory is first on sys.path

if "--one" not in sys.argv and "--profile-step" not in sys.argv:
    use_repo()  # a measuring child runs the code on its PYTHONPATH

REFERENCE = {"default": "default,fp32,packed,off", "moe": "moe,fp32,packed,off"}
TARGET_CONFIGS = ["default,fp32,packed,off", "default,auto,packed,profile", "moe,fp32,packed,off",
                  "moe,auto,packed,profile"]


def build_for(spec: str, data: Path, batch: int, seq_len: int):
    import torch

    from minimind.config import resolve
    from minimind.data.format import read_meta
    from minimind.training.build import build

    profile, dtype, mode, compiled = spec.removeprefix("before:").split(",")
    vocab = read_meta(data)["vocab_size"]
    overrides = [f"data.path={data}", f"data.packing={str(mode != 'padded').lower()}",
                 f"data.doc_mask={str(mode == 'docmask').lower()}", f"train.batch_size={batch}",
                 "train.accumulation_steps=1", "train.max_steps=1000000", f"model.vocab_size={vocab}",
                 "train.device=cpu" if os.environ.get("BENCH_DEVICE", "cpu") == "cpu" else "train.device=auto",
                 f"data.max_seq_len={seq_len}"]
    if dtype != "auto":
        overrides.append(f"train.dtype={dtype}")
    if compiled != "profile":
        overrides.append(f"train.compile={str(compiled == 'on').lower()}")
    threads = int(os.environ.get("BENCH_THREADS", "0"))
    if threads:
        torch.set_num_threads(threads)
    return build(resolve(profile, overrides))


def measure(spec: str, data: Path, steps: int, warmup: int, batch: int, seq_len: int) -> dict:
    import resource

    import torch

    from minimind.training.state import TrainState
    from minimind.training.step import train_step

    built = build_for(spec, data, batch, seq_len)
    state = TrainState()
    t_warm, cpu_warm = time.perf_counter(), time.process_time()
    for _ in range(warmup):
        train_step(built, state)
    warmup_s, warm_cpu_s = time.perf_counter() - t_warm, time.process_time() - cpu_warm
    tokens, seconds, losses = 0, 0.0, []
    cpu0 = time.process_time()
    for _ in range(steps):
        result = train_step(built, state)
        seconds += result.seconds
        tokens += result.tokens
        losses.append(result.loss)
    cpu_s = time.process_time() - cpu0
    try:
        from minimind.peaks import peak_flops

        peak, source = peak_flops(built.device, built.dtype_name)
    except ImportError:  # code from before the peak table (``before:`` configurations)
        from minimind.metrics import measure_matmul_peak

        peak, source = measure_matmul_peak(built.device, built.amp_dtype), "measured matmul (old)"
    tps = tokens / seconds
    out = {
        "config": spec, "dtype": built.dtype_name, "compile": built.cfg.train.compile, "warmup_s": round(warmup_s, 1),
        "batch_size": batch, "max_seq_len": seq_len, "params": built.params, "steps": steps,
        "trained_tokens_per_s": round(tps, 1), "step_time_s": round(seconds / steps, 4),
        "trained_tokens_per_cpu_s": round(tokens / cpu_s, 1), "warmup_cpu_s": round(warm_cpu_s, 1),
        "mfu": round(built.flops_per_token * tps / peak, 4), "peak_flops": peak, "peak_flops_source": source,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "losses": [round(x, 4) for x in losses], "threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if built.device.type == "cuda":
        out["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(built.device) / 2**20, 1)
    return out


def profile_step(spec: str, data: Path, warmup: int, batch: int, seq_len: int, top: int = 25) -> str:
    """torch.profiler over one optimizer step after warm-up: the ops that take the time."""
    from torch.profiler import ProfilerActivity, profile

    from minimind.training.state import TrainState
    from minimind.training.step import train_step

    built = build_for(spec, data, batch, seq_len)
    state = TrainState()
    for _ in range(warmup):
        train_step(built, state)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        result = train_step(built, state)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=48)
    return f"{spec}: one step {result.seconds:.2f} s, {result.tokens} tokens\n{table}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=TARGET_CONFIGS)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds over all configurations")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--data", type=Path, default=None, help="dataset dir (default: the sample corpus)")
    parser.add_argument("--profile-step", metavar="CONFIG", help="print where one step's time goes and exit")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = ensure_data(args.data)
    if args.profile_step:
        print(profile_step(args.profile_step, data, args.warmup, args.batch_size, args.seq_len))
        return
    if args.one:
        print(json.dumps(measure(args.one, data, args.steps, args.warmup, args.batch_size, args.seq_len)))
        return
    runs: dict[str, list[dict]] = {spec: [] for spec in args.configs}
    for _ in range(args.repeats):
        for spec in args.configs:
            cmd = [sys.executable, __file__, "--one", spec, "--data", str(data), "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--batch-size", str(args.batch_size), "--seq-len", str(args.seq_len)]
            code = os.environ["BENCH_BEFORE"] if spec.startswith("before:") else str(REPO)
            out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": code})
            if out.returncode != 0:
                runs[spec].append({"config": spec, "error": out.stderr[-2000:]})
            else:
                runs[spec].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[spec][-1]), file=sys.stderr)
    medians = {}
    for spec, rs in runs.items():
        ok = [r for r in rs if "error" not in r]
        if ok:
            medians[spec] = {key: statistics.median(r[key] for r in ok)
                             for key in ("trained_tokens_per_s", "trained_tokens_per_cpu_s", "mfu", "peak_rss_mib",
                            "step_time_s")}
            medians[spec]["dtype"] = ok[0]["dtype"]
            medians[spec]["compile"] = ok[0]["compile"]
    ratios = {}
    for spec, m in medians.items():
        ref = REFERENCE.get(spec.split(",")[0])
        if spec.startswith("before:"):
            ref = "before:" + REFERENCE.get(spec.removeprefix("before:").split(",")[0], "")
        if ref in medians and spec != ref:
            ratios[spec] = {
                "tokens_per_s_over_fp32_eager": round(m["trained_tokens_per_s"] / medians[ref]["trained_tokens_per_s"], 2),
                "tokens_per_cpu_s_over_fp32_eager": round(
                    m["trained_tokens_per_cpu_s"] / medians[ref]["trained_tokens_per_cpu_s"], 2),
                "peak_rss_over_fp32_eager": round(m["peak_rss_mib"] / medians[ref]["peak_rss_mib"], 2)}
    for spec, m in medians.items():
        packed = spec.replace(",docmask,", ",packed,")
        if packed != spec and packed in medians:
            ratios.setdefault(spec, {})["doc_mask_over_packed"] = {
                key: round(m[key] / medians[packed][key], 3)
                for key in ("trained_tokens_per_s", "trained_tokens_per_cpu_s", "peak_rss_mib")}
    print(json.dumps({"benchmark": "train", "data": str(data), "batch_size": args.batch_size, "seq_len": args.seq_len,
                      "repeats": args.repeats, "medians": medians, "ratios": ratios, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
