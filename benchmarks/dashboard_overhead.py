"""Does the dashboard slow training? Trained tokens/s of the same short `tiny` run with the
dashboard attached (Textual, headless driver, in this process as `minimind pretrain` runs it)
and with `minimind pretrain --no-tui`. Runs alternate to spread machine noise; prints JSON.

    PYTHONPATH=. python benchmarks/dashboard_overhead.py [--steps 60] [--repeats 2]

The ratio is only as steady as the machine: on a shared machine compare several repeats, and
read `dashboard_cpu_cores` (CPU the dashboard process itself used per second of the run).
tokens/s of a run = the median of its step events' `tokens_per_s` after the first interval
(the trainer's own measure: tokens over the time spent in optimizer steps).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, use_repo  # this directory is first on sys.path

use_repo()

from minimind.config import resolve, save_config  # noqa: E402
from minimind.events import read_events  # noqa: E402
from tests.helpers import random_docs, write_dataset  # noqa: E402

SETTINGS = ["model.vocab_size=256", "data.max_seq_len=128", "train.batch_size=16", "train.accumulation_steps=1",
            "train.log_interval=5", "train.eval_interval=0", "train.save_interval=0", "train.dtype=fp32"]


DASHBOARD_CPU: list[float] = []  # CPU seconds the dashboard process used per wall second


def tokens_per_s(run_dir: Path) -> float:
    rates = [e["tokens_per_s"] for e in read_events(run_dir / "events.jsonl") if e["type"] == "step"][1:]
    return statistics.median(rates)


def run_no_tui(root: Path, data: Path, name: str, steps: int) -> tuple[float, float]:
    t0 = time.perf_counter()
    sets = [a for s in [*SETTINGS, f"train.max_steps={steps}"] for a in ("--set", s)]
    proc = subprocess.run([sys.executable, "-m", "minimind_cli", "pretrain", "--profile", "tiny", "--no-tui",
                           "--data", str(data), "--out", str(root / "out"), "--run", name, *sets],
                          cwd=root, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode != 0:
        raise SystemExit(f"--no-tui run failed: {proc.stderr[-2000:]}")
    return tokens_per_s(root / "out" / "runs" / name), time.perf_counter() - t0


def run_dashboard(root: Path, data: Path, name: str, steps: int) -> tuple[float, float]:
    from minimind_cli.dashboard.app import DashboardApp
    from minimind_cli.launch import LaunchOptions, start_trainer

    t0, cpu0 = time.perf_counter(), time.process_time()
    cfg = resolve("tiny", [*SETTINGS, f"train.max_steps={steps}", f"data.path={data}",
                           f"run.out_dir={root / 'out'}", f"run.name={name}"])
    run_dir = root / "out" / "runs" / name
    run_dir.mkdir(parents=True)
    save_config(cfg, run_dir / "config.yaml")
    proc = start_trainer(run_dir, LaunchOptions())
    app = DashboardApp(run_dir, proc)

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            while not app.state.process_gone:
                await pilot.pause(0.2)
            await pilot.press("q")

    asyncio.run(drive())
    if proc.returncode != 0:
        raise SystemExit(f"dashboard run failed: see {run_dir / 'trainer.log'}")
    wall = time.perf_counter() - t0
    DASHBOARD_CPU.append((time.process_time() - cpu0) / wall)
    return tokens_per_s(run_dir), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = write_dataset(root / "data", random_docs(4000, seed=0, max_len=200), random_docs(50, seed=1))
        plain, dash = [], []
        for i in range(args.repeats):
            plain.append(run_no_tui(root, data, f"plain{i}", args.steps))
            dash.append(run_dashboard(root, data, f"dash{i}", args.steps))
    plain_tps = statistics.median(r for r, _ in plain)
    dash_tps = statistics.median(r for r, _ in dash)
    print(json.dumps({
        "benchmark": "dashboard_overhead",
        "profile": "tiny", "steps": args.steps, "repeats": args.repeats,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "no_tui_tokens_per_s": [round(r, 1) for r, _ in plain],
        "dashboard_tokens_per_s": [round(r, 1) for r, _ in dash],
        "no_tui_wall_s": [round(w, 1) for _, w in plain],
        "dashboard_wall_s": [round(w, 1) for _, w in dash],
        "ratio_dashboard_over_no_tui": round(dash_tps / plain_tps, 3),
        # Robust to a busy machine: the dashboard's own CPU use (cores), start-up included.
        "dashboard_cpu_cores": [round(c, 3) for c in DASHBOARD_CPU],
    }, indent=2))


if __name__ == "__main__":
    main()
