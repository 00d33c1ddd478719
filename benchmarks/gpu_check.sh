#!/usr/bin/env bash
# One prepared GPU check (run from the repo root on a CUDA machine): CUDA bf16 vs fp32 training of
# the default model, the MoE model, torch.compile, GPU memory readings, out-of-memory recovery and
# --batch-size auto, and the NCCL/torchrun path.
# Writes summary.json, gpu.txt and logs.tgz (logs + events) to $OUT (default /tmp/gpu-out).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}; W=${W:-/tmp/mm}; L=$W/logs
mkdir -p "$OUT" "$W" "$L"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
python3 -m minimind_cli prepare --sample -o "$W/data" > "$L/prepare.log" 2>&1 || { tail -20 "$L/prepare.log"; exit 1; }
COMMON=(--data "$W/data" --out "$W/out" --no-tui --epochs 50 --set train.log_interval=10
        --set train.eval_interval=100 --set train.save_interval=100 --set train.accumulation_steps=1)
run() { name=$1; shift; timeout 200 python3 -m minimind_cli pretrain --run "$name" "${COMMON[@]}" "$@" \
        > "$L/$name.log" 2>&1; echo "$name exit $?"; tail -3 "$L/$name.log"; }
run dense-bf16 --profile default --max-steps 300 --dtype bf16
run dense-fp32 --profile default --max-steps 300 --dtype fp32
run moe-bf16 --profile moe --max-steps 200 --dtype bf16
run dense-bf16-compile --profile default --max-steps 300 --dtype bf16 --set train.compile=true
# Out of memory: a micro-batch of 1024 x 512 tokens (the sample corpus holds ~1039 such samples)
# needs ~185 GiB of activations by the estimate, so the first step really runs out of memory; the
# trainer halves the micro-batch (the same 1024 samples per step) until it fits, and finishes. Then --batch-size auto probes for the largest micro-batch
# (capped at the profile's 256 samples per step) and must run. Expect: both exit 0, oom-recovery
# with one or two oom_retry warnings (micro-batch 512 or 256), auto-batch with batch_size_auto.
run oom-recovery --profile default --max-steps 4 --dtype bf16 --batch-size 1024 --set train.compile=false
run auto-batch --profile default --max-steps 30 --dtype bf16 --batch-size auto --set train.compile=false \
    --set train.accumulation_steps=8
python3 -m minimind_cli pretrain --profile default --data "$W/data" --out "$W/out" --dry-run --batch-size auto \
    > "$L/dry-run.log" 2>&1; echo "dry-run exit $?"; tail -12 "$L/dry-run.log"
# NCCL through torchrun (one process per GPU; this machine has one).
python3 - "$W" <<'PY'
import sys; from pathlib import Path
from minimind.config import resolve, save_config
w = Path(sys.argv[1]); run = w / "out" / "runs" / "nccl"; run.mkdir(parents=True, exist_ok=True)
cfg = resolve("tiny", [f"data.path={w/'data'}", f"run.out_dir={w/'out'}", "train.max_steps=50", "train.log_interval=10"])
save_config(cfg, run / "config.yaml")
PY
timeout 120 python3 -m torch.distributed.run --standalone --nproc-per-node=1 -m minimind.train "$W/out/runs/nccl" \
    > "$L/nccl.log" 2>&1; echo "nccl exit $?"; tail -3 "$L/nccl.log"
python3 - "$W" "$OUT" <<'PY'
import json, statistics, sys; from pathlib import Path
from minimind.events import read_events
w, out = Path(sys.argv[1]), Path(sys.argv[2]); summary = {}
for run in sorted((w / "out" / "runs").iterdir()):
    ev = read_events(run / "events.jsonl")
    steps = [e for e in ev if e["type"] == "step"]
    if not steps: summary[run.name] = {"error": "no steps", "end": ev[-1] if ev else None}; continue
    started = ev[0]; late = steps[len(steps) // 2:]
    gpu = [m for e in steps for m in e["memory"].get("gpu", [])]
    summary[run.name] = {
        "device": started.get("devices"), "dtype": started["dtype"], "world_size": started["world_size"],
        "backend_ok": ev[-1]["type"], "params": started["params_total"], "active": started["params_active"],
        "tokens_per_s_median_2nd_half": statistics.median(e["tokens_per_s"] for e in late),
        "mfu_median_2nd_half": statistics.median(e["mfu"] for e in late if e["mfu"] is not None),
        "peak_allocated_mib": max((g["peak_mib"] for g in gpu), default=None),
        "reserved_mib": max((g["reserved_mib"] for g in gpu), default=None),
        "total_mib": gpu[0]["total_mib"] if gpu else None, "peak_flops": started.get("peak_flops"),
        "loss_at": {e["step"]: round(e["loss"], 4) for e in steps if e["step"] % 50 == 0},
        "val": [round(e["val_loss"], 4) for e in ev if e["type"] == "eval"],
        "moe_last": steps[-1].get("moe"),
        "oom_retries": [[e["step"], e.get("batch_size"), e.get("accumulation_steps"), round(e.get("peak_mib") or 0)]
                        for e in ev if e["type"] == "warning" and e.get("kind") == "oom_retry"],
        "batch_size_auto": started.get("batch_size_auto"), "memory_estimate": started.get("memory_estimate"),
        "last_split": [steps[-1].get("batch_size"), steps[-1].get("accumulation_steps")],
    }
    (w / "logs" / f"events-{run.name}.jsonl").write_text((run / "events.jsonl").read_text())
(out / "summary.json").write_text(json.dumps(summary, indent=1)); print(json.dumps(summary, indent=1))
PY
tar czf "$OUT/logs.tgz" -C "$W" logs
