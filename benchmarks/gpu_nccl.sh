#!/usr/bin/env bash
# NCCL path on one CUDA GPU: torchrun with one process (dense and MoE), then resume under torchrun.
set -uo pipefail
W=${W:-/tmp/mm2}; mkdir -p "$W"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
python3 -m minimind_cli prepare --sample -o "$W/data" > /dev/null 2>&1 || exit 1
for moe in false true; do
python3 - "$W" "$moe" <<'PY'
import sys; from pathlib import Path
from minimind.config import resolve, save_config
w, moe = Path(sys.argv[1]), sys.argv[2]; run = w / "out" / "runs" / f"nccl-moe-{moe}"; run.mkdir(parents=True)
cfg = resolve("tiny", [f"data.path={w/'data'}", f"run.out_dir={w/'out'}", "train.max_steps=40", "train.log_interval=10",
                       "train.save_interval=20", f"model.use_moe={moe}"])
save_config(cfg, run / "config.yaml")
PY
R="$W/out/runs/nccl-moe-$moe"
timeout 120 python3 -m torch.distributed.run --standalone --nproc-per-node=1 -m minimind.train "$R" 2>&1 | grep -vE "^\s*$" | tail -4
rm -rf "$R/checkpoints/step_00000040"
timeout 120 python3 -m torch.distributed.run --standalone --nproc-per-node=1 -m minimind.train "$R" --resume-from "$R" 2>&1 | grep -E "resumed|finished|error" | tail -4
python3 -c "
from minimind.events import read_events; ev = read_events('$R/events.jsonl')
print('$moe', [e['type'] for e in ev if e['type'] in ('run_started','run_finished','run_failed')], ev[0]['world_size'], [e['memory'] for e in ev if e['type']=='step'][-1])"
done
