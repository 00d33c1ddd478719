"""Write the recorded runs the dashboard tests replay: ``fixtures/{dense,moe,failed}.jsonl``.

Values follow real ``tiny`` / ``moe`` runs on a 2-core CPU (loss from ln(6400) ~ 8.76 down to
~4.5, ~9K tokens/s); times are fixed so a replay renders identically every time.
Run: ``PYTHONPATH=. python tests/dashboard/make_fixtures.py``.

``fixtures/real_*.jsonl`` are not made here: they are recordings of the real trainer driven through
the dashboard in a terminal (``minimind pretrain --profile tiny`` / ``moe``), with the pid in
``run_started`` replaced by one that can never be alive. They are schema version 1 (a stop is a
request checkpoint then a warning at the same step). ``fixtures/stopped_v2.jsonl`` is
``real_tiny_stopped`` in version 2: every ``v`` set to 2 and the stop warning replaced by the
``run_stopped`` event the trainer now writes.
"""

from __future__ import annotations

import math
import random
import shutil
import tempfile
from pathlib import Path

from minimind.events import EVENTS_FILE, EventWriter

FIXTURES = Path(__file__).resolve().parent / "fixtures"
T0 = 1_750_000_000.0
DEAD_PID = 2_000_000_000  # beyond any pid_max: never alive


def minimind_lr(step: int, total: int, lr: float) -> float:
    return lr / 10 + 0.5 * lr * (1 + math.cos(math.pi * step / total))


def schedule(total: int, lr: float, samples: int = 100) -> list[list[float]]:
    points = sorted({round(i * total / (samples - 1)) for i in range(samples)})
    return [[s, minimind_lr(s, total, lr)] for s in points]


def write_run(name: str, *, moe: bool, total: int, stop_at: int, fail: str | None = None) -> None:
    rng = random.Random(name)
    lr = 2e-3 if not moe else 1e-3
    tokens_per_step = 16 * 128
    step_time = 0.22 if not moe else 0.41
    layers, experts, topk = 8, 4, 2
    config = {
        "model": {"hidden_size": 128 if not moe else 256, "num_hidden_layers": 4 if not moe else layers,
                  "use_moe": moe, "n_routed_experts": experts, "num_experts_per_tok": topk, "vocab_size": 6400},
        "data": {"max_seq_len": 128},
        "train": {"batch_size": 16, "learning_rate": lr, "max_steps": total, "log_interval": 10},
        "run": {"out_dir": "out", "name": name},
    }
    tmp = Path(tempfile.mkdtemp())
    with EventWriter(tmp) as w:
        t = T0
        w.emit("run_started", time=t, run=name, profile="moe" if moe else "tiny", config=config,
               params_total=5_960_000 if moe else 1_332_096, params_active=3_870_000 if moe else 1_332_096,
               device="cpu", devices=["cpu"], dtype="float32", world_size=1, total_steps=total,
               start_step=0, tokens_per_step=tokens_per_step,
               dataset={"path": "out/data", "fingerprint": "3f9a1c2e", "tokens": 1_204_224,
                        "documents": 3_412},
               lr_schedule=schedule(total, lr), resumed_from=None, pid=DEAD_PID)
        ema = None
        rss = 412.0 if not moe else 655.0
        for step in range(10, stop_at + 1, 10):
            t += 10 * step_time
            loss = 4.4 + 4.36 * math.exp(-step / 70) + rng.uniform(-0.08, 0.08)
            ema = loss if ema is None else 0.9 * ema + 0.1 * loss
            rss += rng.uniform(0, 3)
            fields = dict(
                step=step, total_steps=total, epoch=0, loss=round(loss, 4), loss_ema=round(ema, 4),
                lr=minimind_lr(step, total, lr), grad_norm=round(rng.uniform(0.4, 1.6), 3),
                tokens_seen=step * tokens_per_step, tokens_per_s=round(tokens_per_step / step_time
                                                                         * rng.uniform(0.97, 1.03), 1),
                step_time_s=round(step_time, 3), elapsed_s=round(t - T0, 2),
                eta_s=round((total - step) * step_time, 1), mfu=None,
                memory={"cpu_rss_mib": round(rss, 1)})
            if moe:
                load = []
                for layer in range(layers):
                    row = [rng.uniform(0.7, 1.3) for _ in range(experts)]
                    if layer == 5 and step >= 120:
                        row[3] = 0.004  # an expert the router abandoned: the dead-expert alert
                    s = sum(row)
                    load.append([round(x / s, 4) for x in row])
                shares = [x for row in load for x in row]
                fields["moe"] = {"aux_loss": round(rng.uniform(0.0201, 0.0235), 5), "load": load,
                                 "imbalance": round(max(shares) / (1 / experts), 3)}
            w.emit("step", time=t, **fields)
            if step % 100 == 0:
                t += 1.5
                val = 4.6 + 4.2 * math.exp(-step / 70)
                w.emit("eval", time=t, step=step, val_loss=round(val, 4), perplexity=round(math.exp(val), 2),
                       seconds=1.5)
                t += 0.4
                w.emit("checkpoint", time=t, step=step, path=f"out/runs/{name}/checkpoints/step_{step}",
                       seconds=0.4, reason="interval")
            if step == 150 and not fail:
                w.emit("warning", time=t, step=step, message="loss spike: 5.91 > 1.5x smoothed loss")
        if fail:
            t += 0.3
            w.emit("run_failed", time=t, step=stop_at, exit_code=1, error=fail, traceback=(
                "Traceback (most recent call last):\n"
                '  File "minimind/train.py", line 412, in main\n'
                "    loss = train_step(model, batch)\n"
                '  File "minimind/train.py", line 287, in train_step\n'
                "    raise FloatingPointError(f\"loss is {loss.item()} at step {step}\")\n"
                f"FloatingPointError: {fail}"))
        else:
            t += 0.5
            w.emit("checkpoint", time=t, step=stop_at, path=f"out/runs/{name}/checkpoints/step_{stop_at}",
                   seconds=0.5, reason="final")
            w.emit("run_finished", time=t, step=stop_at, tokens_seen=stop_at * tokens_per_step,
                   elapsed_s=round(t - T0, 2), final_loss=round(ema, 4), val_loss=None,
                   weights_path="out/pretrain_128.pth" if not moe else "out/pretrain_256_moe.pth")
    FIXTURES.mkdir(exist_ok=True)
    shutil.move(tmp / EVENTS_FILE, FIXTURES / f"{name}.jsonl")
    shutil.rmtree(tmp)


def main() -> None:
    write_run("dense", moe=False, total=300, stop_at=300)
    write_run("moe", moe=True, total=400, stop_at=400)
    write_run("failed", moe=False, total=300, stop_at=170, fail="loss is nan at step 170")


if __name__ == "__main__":
    main()
