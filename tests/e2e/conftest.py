"""Real trainer subprocesses on small real datasets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from minimind.checkpoint import find_checkpoint
from minimind.config import resolve, save_config
from minimind.events import read_events
from tests.conftest import REPO

SMALL = ["model.hidden_size=64", "model.num_hidden_layers=2", "model.num_attention_heads=4",
         "model.num_key_value_heads=2", "model.vocab_size=256", "model.max_position_embeddings=128",
         "data.max_seq_len=32", "train.batch_size=4", "train.accumulation_steps=2", "train.dtype=fp32",
         "train.log_interval=1", "train.eval_interval=0", "train.eval_samples=8", "train.save_interval=5",
         "train.max_steps=16", "train.keep_last=5", "train.learning_rate=3e-3"]
# Runs compared at 1e-5 across micro-batch splits, ranks or resumes train with AdamW, not the
# profiles' Muon: Muon orthogonalises each momentum matrix in bf16, which magnifies the
# summation-order noise of another split along the matrix's smallest singular directions (1e-4-1e-3 in
# the weights after three steps, 1e-5 in the loss). What such tests compare, the step's token-mean
# gradient, is the optimizer's input and the same under both.
EXACT_OPTIMIZER = "train.optimizer=adamw"


def make_run(root: Path, dataset: Path, name: str, extra: list[str] | None = None, profile: str = "tiny") -> Path:
    cfg = resolve(profile, [*SMALL, f"data.path={dataset}", f"run.out_dir={root / 'out'}", f"run.name={name}",
                            *(extra or [])])
    run_dir = root / "out" / "runs" / name
    run_dir.mkdir(parents=True)
    save_config(cfg, run_dir / "config.yaml")
    return run_dir


def finished_run(root: Path, dataset: Path, name: str, extra: list[str] | None = None, profile: str = "tiny") -> Path:
    """A run trained to its end in a real trainer process (it must exit 0)."""
    run_dir = make_run(root, dataset, name, extra, profile)
    code, _, err = run_to_end(run_dir)
    assert code == 0, err
    return run_dir


def kill_then_resume(run_dir: Path, after_step: int, saved_step: int = 5) -> None:
    """Start the run with slowed steps, SIGKILL it once ``after_step`` was logged (between
    checkpoints: the newest must be ``saved_step``), then resume it from its checkpoint to the end."""
    proc = start(run_dir, env=trainer_env(MINIMIND_FAULT_STEP_SLEEP="0.3"))
    wait_for(lambda: last_step(run_dir) >= after_step)
    kill(proc)
    assert find_checkpoint(run_dir).step == saved_step
    code, _, err = run_to_end(run_dir, "--resume-from", str(run_dir))
    assert code == 0, err


def trainer_env(**faults: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.update(faults)
    return env


def start(run_dir: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "minimind.train", str(run_dir), *args],
                            env=env or trainer_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_to_end(run_dir: Path, *args: str, env: dict | None = None, timeout: float = 300):
    proc = start(run_dir, *args, env=env)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_for(predicate, timeout: float = 120, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting for the trainer")


def last_step(run_dir: Path) -> int:
    steps = [e["step"] for e in read_events(run_dir / "events.jsonl") if e["type"] == "step"]
    return steps[-1] if steps else 0


def losses_by_step(run_dir: Path) -> dict[int, tuple[float, float]]:
    """(loss, grad_norm) per step; a step replayed after a resume overwrites the earlier record."""
    out = {}
    for e in read_events(run_dir / "events.jsonl"):
        if e["type"] == "step":
            out[e["step"]] = (e["loss"], e["grad_norm"])
    return out


def kill(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    proc.send_signal(sig)
    proc.communicate(timeout=60)
