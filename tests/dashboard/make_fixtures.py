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

``samples``, ``slow_lr`` and ``signals`` use the optional fields added since (see
``minimind/events.py``): ``samples`` has sample and heartbeat events (the text going from noise to
words), ``slow_lr`` is ``dense`` at a quarter of its learning rate (the second run of a
comparison), ``signals`` has a loss spike, a grad-norm spike, an out-of-memory retry, an automatic
batch size, the memory estimate and total, and a sequence-length curriculum.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import tempfile
from pathlib import Path

from minimind.events import EVENT_FIELDS, EVENTS_FILE, EventWriter, validate_event

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
                                 "imbalance": round(max(shares) / (1 / experts), 3),
                                 # bias balancing: pushes each expert towards its fair share
                                 "router_bias": [[round(1e-3 * step / 10 * (1 / experts - x), 5) for x in row]
                                                 for row in load]}
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


PROMPTS = ["The Python tutorial", "A list is", "def main("]
TARGETS = [" is a good place to start for new users of the language, with examples of each feature.",
           " a sequence of items that can be changed, written between square brackets.",
           "):\n    print('hello world')\n    return 0"]
JUNK = ["the", ",", "of", "the", "and", ".", "s", "in", "a", "to", "ing", "\n", "ed", "is"]


def garble(target: str, fraction: float, rng: random.Random) -> str:
    """``target`` with each word kept with probability ``fraction`` (else a frequent junk token)."""
    words = target.split(" ")
    return " ".join(w if rng.random() < fraction else rng.choice(JUNK) for w in words)


def write_events(name: str, events: list[dict]) -> None:
    """Write events as the trainer would (schema-checked where the schema knows the type)."""
    with open(FIXTURES / f"{name}.jsonl", "w", encoding="utf-8") as f:
        for event in events:
            if event["type"] in EVENT_FIELDS:
                validate_event(event)
            f.write(json.dumps(event, separators=(",", ":")) + "\n")


def write_v2_run(name: str, *, lr: float = 2e-3, total: int = 300, samples: bool = False,
                 signals: bool = False) -> None:
    """A dense ``tiny`` run (version 2) with the optional features asked for."""
    rng = random.Random(name)
    tokens_per_step, step_time = 16 * 128, 0.22
    schedule_points = [[0, 64], [90, 128], [180, 256]] if signals else None
    config = {
        "model": {"hidden_size": 128, "num_hidden_layers": 4, "use_moe": False, "n_routed_experts": 4,
                  "num_experts_per_tok": 2, "vocab_size": 6400},
        "data": {"max_seq_len": 256 if signals else 128},
        "train": {"batch_size": 16, "learning_rate": lr, "max_steps": total, "log_interval": 10},
        "run": {"out_dir": "out", "name": name},
    }
    t = T0
    events: list[dict] = []

    def emit(type_: str, **fields) -> None:
        events.append({"v": 2, "type": type_, "time": round(t, 3), **fields})

    extra = {}
    if signals:
        extra = {"seq_len_schedule": schedule_points, "batch_size": 16, "accumulation_steps": 1,
                 "batch_size_auto": {"chosen": 16, "accumulation_steps": 1, "global_batch": 16,
                                     "requested_global_batch": 16, "note": "fits below the safety margin"},
                 "memory_estimate": {"params_mib": 5.1, "grads_mib": 5.1, "optimizer_mib": 10.2,
                                     "activations_mib": 301.0, "total_mib": 321.4, "available_mib": 5800.0,
                                     "device_total_mib": 7936.0, "safety_margin": 0.1}}
    emit("run_started", run=name, profile="tiny", config=config, params_total=1_332_096,
         params_active=1_332_096, device="cpu", devices=["cpu"], dtype="float32", world_size=1,
         total_steps=total, start_step=0, tokens_per_step=tokens_per_step,
         dataset={"path": "out/data", "fingerprint": "3f9a1c2e", "tokens": 1_204_224, "documents": 3_412},
         lr_schedule=schedule(total, lr), resumed_from=None, pid=DEAD_PID, **extra)
    ema = None
    rss = 412.0
    speed = lr / 2e-3  # a smaller learning rate learns more slowly
    for step in range(10, total + 1, 10):
        if samples:  # heartbeats between log steps, as the trainer sends them (about every 2 s)
            for k in (1, 2):
                t += 10 * step_time / 3
                emit("heartbeat", step=step - 10 + 3 * k, total_steps=total, elapsed_s=round(t - T0, 2))
            t += 10 * step_time / 3
        else:
            t += 10 * step_time
        loss = 4.4 + 4.36 * math.exp(-step * speed ** 0.5 / 70) + rng.uniform(-0.08, 0.08)
        grad = rng.uniform(0.4, 0.6)
        if signals and step == 230:
            loss += 1.6  # a loss spike
        if signals and step == 260:
            grad = 9.5  # a grad-norm spike
        ema = loss if ema is None else 0.9 * ema + 0.1 * loss
        rss += rng.uniform(0, 3)
        fields = dict(step=step, total_steps=total, epoch=0, loss=round(loss, 4), loss_ema=round(ema, 4),
                      lr=minimind_lr(step, total, lr), grad_norm=round(grad, 3), tokens_seen=step * tokens_per_step,
                      tokens_per_s=round(tokens_per_step / step_time * rng.uniform(0.97, 1.03), 1),
                      step_time_s=round(step_time, 3), elapsed_s=round(t - T0, 2),
                      eta_s=round((total - step) * step_time, 1), mfu=None, memory={"cpu_rss_mib": round(rss, 1)})
        if signals:
            fields["memory"].update(total_mib=7936.0, safety_margin=0.1)
            # a phase starts after its first step: step 91 is the first of 128 tokens
            fields["seq_len"] = max(n for s, n in schedule_points if s < step or s == 0)
            fields["batch_size"], fields["accumulation_steps"] = (16, 1) if step < 150 else (8, 2)
        emit("step", **fields)
        if signals and step == 140:
            emit("warning", step=step, kind="oom_retry", batch_size=8, accumulation_steps=2, peak_mib=7420.0,
                 message="out of memory: retrying the step with micro-batch 8 x 2 accumulation")
        if samples and step % 50 == 0:
            for prompt, target in zip(PROMPTS, TARGETS, strict=True):
                t += 0.1
                emit("sample", step=step, prompt=prompt, text=garble(target, step / total, rng), seconds=0.1)
        if step % 100 == 0:
            t += 1.5
            val = 4.6 + 4.2 * math.exp(-step * speed ** 0.5 / 70)
            emit("eval", step=step, val_loss=round(val, 4), perplexity=round(math.exp(val), 2), seconds=1.5)
            t += 0.4
            emit("checkpoint", step=step, path=f"out/runs/{name}/checkpoints/step_{step:08d}", seconds=0.4,
                 reason="interval")
    t += 0.5
    emit("checkpoint", step=total, path=f"out/runs/{name}/checkpoints/step_{total:08d}", seconds=0.5,
         reason="final")
    emit("run_finished", step=total, tokens_seen=total * tokens_per_step, elapsed_s=round(t - T0, 2),
         final_loss=round(ema, 4), val_loss=None, weights_path="out/pretrain_128.pth")
    write_events(name, events)


def main() -> None:
    write_v2_run("samples", samples=True)
    write_v2_run("slow_lr", lr=5e-4)
    write_v2_run("signals", signals=True)
    write_run("dense", moe=False, total=300, stop_at=300)
    write_run("moe", moe=True, total=400, stop_at=400)
    write_run("failed", moe=False, total=300, stop_at=170, fail="loss is nan at step 170")


if __name__ == "__main__":
    main()
