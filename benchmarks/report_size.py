"""Size of the `minimind report` page and the time to build it, on synthetic runs.

Runs are synthetic event streams shaped like the trainer's (a step event every step, an eval and a
checkpoint every 100 steps, three samples per eval): the `tiny` profile's 300 steps, and 20,000
steps dense and MoE (8 layers x 4 experts, router bias). Prints one JSON object.

    PYTHONPATH=. python benchmarks/report_size.py
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import tempfile
import time
from pathlib import Path

from minimind.events import make_event
from minimind.report import write_report


def synthetic_run(run_dir: Path, steps: int, *, moe: bool = False, seed: int = 0) -> Path:
    rng = random.Random(seed)
    run_dir.mkdir(parents=True)
    t0 = 1_750_000_000.0
    lr = 2e-3
    per_step, step_time = 16 * 128, 0.22

    def lr_at(s: int) -> float:
        return lr / 10 + 0.5 * lr * (1 + math.cos(math.pi * s / steps))

    config = {"model": {"hidden_size": 128, "num_hidden_layers": 8 if moe else 4, "use_moe": moe},
              "data": {"max_seq_len": 128}, "train": {"learning_rate": lr, "max_steps": steps},
              "run": {"name": run_dir.name}}
    lines = [make_event("run_started", time=t0, run=run_dir.name, profile="moe" if moe else "tiny", config=config,
                        params_total=1_332_096, params_active=1_332_096, device="cpu", devices=["cpu"],
                        dtype="float32", world_size=1, total_steps=steps, start_step=0, tokens_per_step=per_step,
                        dataset={"path": "out/data", "fingerprint": "3f9a1c2e", "tokens": 1_204_224,
                                 "documents": 3_412},
                        lr_schedule=[[s, lr_at(s)] for s in range(0, steps + 1, max(1, steps // 100))], pid=1)]
    ema = None
    for s in range(1, steps + 1):
        t = t0 + s * step_time
        loss = 4.4 + 4.36 * math.exp(-s / (steps / 4)) + rng.gauss(0, 0.08)
        ema = loss if ema is None else 0.98 * ema + 0.02 * loss
        fields = dict(step=s, total_steps=steps, epoch=0, loss=round(loss, 4), loss_ema=round(ema, 4), lr=lr_at(s),
                      grad_norm=round(rng.uniform(0.4, 1.6), 3), tokens_seen=s * per_step,
                      tokens_per_s=round(per_step / step_time * rng.uniform(0.97, 1.03), 1), step_time_s=step_time,
                      elapsed_s=round(s * step_time, 2), eta_s=round((steps - s) * step_time, 1), mfu=None,
                      memory={"cpu_rss_mib": round(412 + s * 0.001, 1), "total_mib": 7936.0})
        if moe:
            load = []
            for _ in range(8):
                row = [rng.uniform(0.7, 1.3) for _ in range(4)]
                load.append([round(x / sum(row), 4) for x in row])
            fields["moe"] = {"aux_loss": round(rng.uniform(0.02, 0.024), 5), "load": load,
                             "imbalance": round(max(max(r) for r in load) * 4, 3),
                             "router_bias": [[round(1e-3 * (0.25 - x), 5) for x in r] for r in load]}
        lines.append(make_event("step", time=t, **fields))
        if s % 100 == 0:
            lines.append(make_event("eval", time=t, step=s, val_loss=round(ema + 0.1, 4), perplexity=1.0, seconds=1))
            for p in ("The Python tutorial", "A list is", "def main("):
                lines.append(make_event("sample", time=t, step=s, prompt=p, text=" is a sample" * 4, seconds=0.1))
            lines.append(make_event("checkpoint", time=t, step=s, path=f"ckpt/{s}", seconds=0.4, reason="interval"))
    lines.append(make_event("run_finished", time=t0 + steps * step_time, step=steps, tokens_seen=steps * per_step,
                            elapsed_s=steps * step_time, final_loss=round(ema, 4)))
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    return run_dir


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(run_dirs: list[Path], out: Path, repeats: int = 3) -> dict:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        write_report(run_dirs, out)
        times.append(time.perf_counter() - start)
    events = sum(1 for d in run_dirs for _ in open(d / "events.jsonl"))
    return {"events": events, "events_mib": round(sum((d / "events.jsonl").stat().st_size for d in run_dirs) / 2**20, 2),
            "page_mib": round(out.stat().st_size / 2**20, 2), "build_s_best": round(min(times), 2),
            "build_s_median": round(sorted(times)[len(times) // 2], 2)}


def main() -> None:
    from plotly.offline import get_plotlyjs

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = {
            "cpu": f"{cpu_name()} {os.cpu_count()}-core",
            "plotly_js_mib": round(len(get_plotlyjs()) / 2**20, 2),
            "tiny_300": measure([synthetic_run(root / "tiny300", 300)], root / "a.html"),
            "dense_20000": measure([synthetic_run(root / "dense20k", 20_000)], root / "b.html"),
            "moe_20000": measure([synthetic_run(root / "moe20k", 20_000, moe=True)], root / "c.html"),
            "compare_3x20000": measure([root / "dense20k", root / "moe20k",
                                        synthetic_run(root / "dense20k-b", 20_000, seed=1)], root / "d.html"),
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
