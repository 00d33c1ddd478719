"""The memory estimate (what `minimind pretrain --dry-run` prints) against the measured peak RSS of a
real trainer process, per profile, batch size and dtype. Prints JSON; the target is |error| <= 25%.

    python benchmarks/memory.py                                  # tiny and default, two batch sizes each
    python benchmarks/memory.py --cases tiny:8 default:4 --dtypes fp32 --steps 3

Each case trains ``--steps`` optimizer steps (accumulation 1, so the optimizer moments exist from
the second step) in its own ``python -m minimind.train`` process; its peak RSS is the kernel's
``ru_maxrss`` for that child (``os.wait4``). The estimate's runtime part is the RSS of this process
after importing torch, as in the CLI.
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

from _common import REPO, ensure_data, use_repo  # this directory is first on sys.path

use_repo()

DEFAULT_CASES = ["tiny:16", "tiny:64", "default:2", "default:8"]


def config_for(profile: str, batch: int, dtype: str, data: Path, out: Path, steps: int):
    from minimind.config import resolve
    from minimind.data.format import read_meta

    return resolve(profile, [f"data.path={data}", f"run.out_dir={out}", f"model.vocab_size={read_meta(data)['vocab_size']}",
                             f"train.batch_size={batch}", "train.accumulation_steps=1", f"train.max_steps={steps}",
                             f"train.dtype={dtype}", "train.device=cpu", "train.compile=false",
                             "train.eval_interval=0", f"train.eval_samples={batch}", "train.save_interval=0",
                             "train.log_interval=1", f"run.name={profile}-{batch}-{dtype}"])


def measure(cfg, out: Path) -> tuple[float, float]:
    """(peak RSS MiB of a real trainer process on ``cfg``, its wall seconds)."""
    from minimind.config import save_config

    run_dir = out / "runs" / cfg.run.name
    run_dir.mkdir(parents=True)
    save_config(cfg, run_dir / "config.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MINIMIND_AVAILABLE_MEMORY_MIB", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "minimind.train", str(run_dir)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cfg.run.name}: trainer exit {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES, help="PROFILE:BATCH ...")
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()

    import torch  # noqa: F401 - the runtime part of the estimate is this process with torch loaded

    from minimind.training.memory import estimate, process_rss_mib

    data = ensure_data(args.data)
    runtime = process_rss_mib()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            profile, batch = case.split(":")
            for dtype in args.dtypes:
                cfg = config_for(profile, int(batch), dtype, data, Path(tmp) / "out", args.steps)
                est = estimate(cfg, int(batch), dtype_name=dtype, device_type="cpu", runtime_mib=runtime)
                peak, seconds = measure(cfg, Path(tmp) / "out")
                row = {"profile": profile, "batch_size": int(batch), "max_seq_len": cfg.data.max_seq_len,
                       "dtype": dtype, "estimate_mib": round(est.total_mib, 1),
                       "activations_mib": round(est.activations_mib, 1), "runtime_mib": round(runtime, 1),
                       "measured_peak_rss_mib": round(peak, 1), "error": round(est.total_mib / peak - 1, 3),
                       "seconds": round(seconds, 1)}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    print(json.dumps({"benchmark": "memory_estimate_vs_peak_rss", "steps": args.steps, "rows": rows,
                      "worst_abs_error": max(abs(r["error"]) for r in rows)}, indent=1))


if __name__ == "__main__":
    main()
