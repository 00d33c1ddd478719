#!/usr/bin/env bash
# The throughput check on one GPU (run from the repo root on a CUDA machine, ~10 minutes on an H200):
# MFU and tokens/s of the default and moe profiles (bf16 + torch.compile), the same with the GPU
# micro-batch profiles (gpu, moe-gpu), the peak the MFU divides by (run_started.peak_flops_source),
# GPU memory, and the loss curve every 50 steps to compare with earlier runs in RESULTS.md.
# Writes summary.json, gpu.txt and logs.tgz (logs + events) to $OUT (default /tmp/gpu-out).
set -uo pipefail
OUT=${OUT:-/tmp/gpu-out}; W=${W:-/tmp/mm}; L=$W/logs
mkdir -p "$OUT" "$W" "$L"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"
python3 -m minimind_cli prepare --sample -o "$W/data" > "$L/prepare.log" 2>&1 || { tail -20 "$L/prepare.log"; exit 1; }
COMMON=(--data "$W/data" --out "$W/out" --no-tui --epochs 50 --set train.log_interval=10
        --set train.eval_interval=100 --set train.save_interval=1000 --dtype bf16)
run() { name=$1; shift; timeout 170 python3 -m minimind_cli pretrain --run "$name" "${COMMON[@]}" "$@" \
        > "$L/$name.log" 2>&1; echo "$name exit $?"; tail -3 "$L/$name.log"; }
# The profiles' global batch (32 x 512 per micro-batch x accumulation 4; before 2026-11-29 it was 8,
# so loss curves of earlier runs in RESULTS.md are at twice the tokens per step).
run default --profile default --max-steps 300
run moe --profile moe --max-steps 200
# Bigger micro-batches, same global batch (profiles/gpu.yaml, profiles/moe-gpu.yaml).
run gpu --profile gpu --max-steps 150
run moe-gpu --profile moe-gpu --max-steps 100
python3 - "$W" "$OUT" <<'PY'
import json, statistics, sys; from pathlib import Path
from minimind.events import read_events
w, out = Path(sys.argv[1]), Path(sys.argv[2]); summary = {}
for run in sorted((w / "out" / "runs").iterdir()):
    ev = read_events(run / "events.jsonl")
    steps = [e for e in ev if e["type"] == "step"]
    if not steps: summary[run.name] = {"error": "no steps"}; continue
    started = ev[0]; late = steps[len(steps) // 2:]
    gpu = [m for e in steps for m in e["memory"].get("gpu", [])]
    summary[run.name] = {
        "device": started.get("devices"), "dtype": started["dtype"], "end": ev[-1]["type"],
        "batch": [started["config"]["train"]["batch_size"], started["config"]["train"]["accumulation_steps"]],
        "params": started["params_total"], "active": started["params_active"],
        "peak_flops": started.get("peak_flops"), "peak_flops_source": started.get("peak_flops_source"),
        "tokens_per_s_median_2nd_half": statistics.median(e["tokens_per_s"] for e in late),
        "mfu_median_2nd_half": statistics.median(e["mfu"] for e in late if e["mfu"] is not None),
        "peak_allocated_mib": max((g["peak_mib"] for g in gpu), default=None),
        "reserved_mib": max((g["reserved_mib"] for g in gpu), default=None),
        "loss_at": {e["step"]: round(e["loss"], 4) for e in steps if e["step"] % 50 == 0},
        "val": [round(e["val_loss"], 4) for e in ev if e["type"] == "eval"],
        "moe_last": steps[-1].get("moe"),
    }
    (w / "logs" / f"events-{run.name}.jsonl").write_text((run / "events.jsonl").read_text())
(out / "summary.json").write_text(json.dumps(summary, indent=1)); print(json.dumps(summary, indent=1))
PY
tar czf "$OUT/logs.tgz" -C "$W" logs
