"""What the trainer tells the world: event payloads (computed once, as plain numbers) and where
they go: ``events.jsonl`` (the contract, see ``minimind.events``), a line on stdout for the
trainer log, and the optional TensorBoard / W&B sinks. Only rank 0 reports; on other ranks every
method is a no-op, so the loop calls them unconditionally.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minimind.events import EventWriter, sanitize
from minimind.metrics import StepTimer, expert_load, format_duration, memory_snapshot, visible_whitespace
from minimind.schedule import final_lr, planned_schedule
from minimind.training.memory import SAFETY_MARGIN, device_total_mib

if TYPE_CHECKING:
    from minimind.training.build import Built
    from minimind.training.samples import Sample
    from minimind.training.state import TrainState
    from minimind.training.step import StepResult


class Reporter:
    def __init__(self, events: EventWriter | None, is_main: bool = True, sinks: Any = None):
        self.events = events if is_main else None
        self.is_main = is_main
        self.sinks = sinks
        self.run_dir: Path | None = None  # set by run_started

    def emit(self, type_: str, **fields: Any) -> None:
        if self.events is not None:
            event = self.events.emit(type_, **sanitize(fields))
            if self.sinks is not None:
                self.sinks.event(event)

    def print(self, text: str, *, stderr: bool = False) -> None:
        if self.is_main:
            print(text, file=sys.stderr if stderr else sys.stdout, flush=True)

    def close(self) -> None:
        if self.sinks is not None:
            self.sinks.close()

    # ------------------------------------------------------------------ the run's life
    def run_started(self, built: Built, state: TrainState, run_dir: Path, resumed_from: dict | None,
                    peak_flops: float, peak_flops_source: str | None = None) -> None:
        cfg = built.cfg
        replans = state.schedule.replans if state.schedule else ()
        self.emit(
            "run_started", run=Path(run_dir).name, profile=cfg.run.profile, config=cfg.to_dict(),
            params_total=built.params["total"], params_active=built.params["active"], device=str(built.device),
            devices=built.device_names(), dtype=built.dtype_name, dtype_reason=built.dtype_reason,
            world_size=built.dist.world_size, total_steps=built.total_steps, start_step=state.step,
            tokens_per_step=built.tokens_per_step,
            dataset={"path": str(cfg.data.path), "fingerprint": built.train_data.fingerprint,
                     "tokens": built.train_data.meta.get("tokens"),
                     "documents": built.train_data.meta.get("documents"),
                     "samples": len(built.train_data), "packing": cfg.data.packing},
            lr_schedule=planned_schedule(built.total_steps, cfg.train, plan=state.schedule),
            schedule_changed_at=replans[-1].step if replans else None, resumed_from=resumed_from,
            pid=os.getpid(), peak_flops=peak_flops, peak_flops_source=peak_flops_source,
            optimizer=cfg.train.optimizer, **memory_fields(built),
            seq_len_schedule=built.curriculum.to_event() if built.curriculum else None)
        if replans and replans[-1].step == state.step and resumed_from:
            last = replans[-1]
            self.emit("info", step=state.step,
                      message=f"the run's length changed ({last.before} -> {built.total_steps} steps): lr schedule "
                              f"re-planned at step {last.step}, from {last.lr:.3g} down to "
                              f"{final_lr(cfg.train):.3g} at step {built.total_steps}")
        if built.auto_split is not None:  # what auto chose, in the plain output and the dashboard's log
            self.emit("info", step=state.step, message=built.auto_split.note(built.dist.world_size))
        self.run_dir = Path(run_dir)
        if self.is_main:  # another run's weights under MiniMind's file name: never replaced silently
            from minimind.checkpoint import shared_weights
            from minimind.run_dir import weights_path

            note = shared_weights(weights_path(Path(cfg.run.out_dir), cfg.model.hidden_size, cfg.model.use_moe),
                                  run_dir).note
            if note:
                self.emit("warning", step=state.step, message=note)
                self.print(f"note: {note}")
        where = f"resumed at step {state.step}" if resumed_from else "starting"
        self.print(f"{where}: {built.params['total']:,} parameters ({built.params['active']:,} active), "
                   f"{built.total_steps} steps, device {built.device}, dtype {built.dtype_name} "
                   f"({built.dtype_reason})")

    def step(self, built: Built, state: TrainState, result: StepResult, *, ema: float, timer: StepTimer,
             interval_tokens: int, interval_s: float, elapsed_s: float, peak_flops: float,
             expert_counts: list[list[float]]) -> None:
        if not self.is_main:
            return
        fields = step_payload(built, state, result, ema=ema, timer=timer, interval_tokens=interval_tokens,
                              interval_s=interval_s, elapsed_s=elapsed_s, peak_flops=peak_flops,
                              expert_counts=expert_counts)
        self.emit("step", **fields)
        eta = fields["eta_s"]
        self.print(f"step {state.step}/{built.total_steps} loss {result.loss:.4f} (ema {ema:.4f}) "
                   f"lr {result.lr:.2e} grad {result.grad_norm:.3f} {fields['tokens_per_s']:,.0f} tok/s"
                   + (f" eta {format_duration(eta)}" if eta is not None else "")
                   + (f" seq_len {fields['seq_len']}" if built.curriculum else ""))

    def skipped(self, step: int, result: StepResult, in_a_row: int) -> None:
        self.emit("warning", step=step,
                  message=f"non-finite loss/gradient at step {step} (loss {result.loss}, grad norm "
                          f"{result.grad_norm}): step skipped ({in_a_row} in a row)")
        self.print(f"warning: non-finite loss at step {step}, step skipped")

    def evaluated(self, step: int, val_loss: float, seconds: float) -> None:
        self.emit("eval", step=step, val_loss=val_loss, perplexity=math.exp(min(val_loss, 50)), seconds=seconds)
        self.print(f"eval step {step}: val loss {val_loss:.4f}")

    def heartbeat(self, step: int, total_steps: int, elapsed_s: float) -> None:
        self.emit("heartbeat", step=step, total_steps=total_steps, elapsed_s=elapsed_s)

    def samples(self, step: int, samples: list[Sample]) -> None:
        for sample in samples:
            self.emit("sample", step=step, **sample.fields())
            self.print(f"sample step {step}: {visible_whitespace(sample.prompt)} -> "
                       f"{visible_whitespace(sample.text)}")

    def checkpoint(self, step: int, path: Path, seconds: float, reason: str) -> None:
        self.emit("checkpoint", step=step, path=str(path), seconds=seconds, reason=reason)
        self.print(f"checkpoint step {step} ({reason}) -> {path} in {seconds:.1f}s")

    def stopped(self, step: int, reason: str, checkpoint: Path | None, why: str, run_dir: Path) -> None:
        self.emit("run_stopped", step=step, reason=reason, checkpoint=str(checkpoint) if checkpoint else None)
        self.print(f"{why}: checkpoint saved at step {step}. Resume with:\n  minimind resume {run_dir}",
                   stderr=True)

    def finished(self, state: TrainState, elapsed_s: float, weights: Path | None, checkpoint: Path | None) -> None:
        """``weights``: the shared ``OUT/pretrain_*.pth``. The event says which run that file now
        comes from (``shared_weights_run``), and ``weights_path`` is the file with this run's weights:
        the shared one when it holds them, else the run's own copy (``run_weights_path``)."""
        fields: dict[str, Any] = {"weights_path": str(weights) if weights else None}
        where = f", weights {weights}" if weights else ""
        run_dir = self.run_dir
        if weights is not None and run_dir is not None:
            from minimind.checkpoint import weights_run

            own = run_dir / Path(weights).name
            holder = weights_run(Path(weights))
            holder_name = Path(holder).name if holder else None
            ours = holder is not None and Path(holder) == run_dir.resolve()
            fields = {"weights_path": str(weights if ours else own), "run_weights_path": str(own),
                      "shared_weights_path": str(weights), "shared_weights_run": holder_name}
            where = (f", weights {weights} (from this run, {run_dir.name}; also in {own})" if ours else
                     f", weights {own} ({weights} holds {'run ' + holder_name if holder_name else 'other'} weights)")
        self.emit("run_finished", step=state.step, tokens_seen=state.tokens_seen, elapsed_s=elapsed_s,
                  final_loss=state.last_loss, val_loss=state.last_val_loss,
                  checkpoint=str(checkpoint) if checkpoint else None, **fields)
        val = f", val loss {state.last_val_loss:.4f}" if state.last_val_loss is not None else ""
        loss = f"{state.last_loss:.4f}" if state.last_loss is not None else "?"
        self.print(f"finished: step {state.step}, loss {loss}{val}{where}")


def step_payload(built: Built, state: TrainState, result: StepResult, *, ema: float, timer: StepTimer,
                 interval_tokens: int, interval_s: float, elapsed_s: float, peak_flops: float,
                 expert_counts: list[list[float]]) -> dict[str, Any]:
    """The ``step`` event's fields. tokens/s is over the log interval (all ranks); MFU is
    flops_per_token (at this step's window length) x tokens/s per device over the peak of one device
    (``minimind.peaks``)."""
    tokens_per_s = interval_tokens / interval_s if interval_s > 0 else 0.0
    seq_len = built.loader.seq_len
    flops = built.flops_per_token_at(seq_len)
    mfu = (flops * tokens_per_s / built.dist.world_size / peak_flops) if peak_flops else None
    fields: dict[str, Any] = dict(
        step=state.step, total_steps=built.total_steps, epoch=built.loader.epoch, loss=result.loss, loss_ema=ema,
        lr=result.lr, grad_norm=result.grad_norm, tokens_seen=state.tokens_seen, tokens_per_s=tokens_per_s,
        step_time_s=result.seconds, elapsed_s=elapsed_s, eta_s=timer.eta(built.total_steps - state.step,
                                                                          result.seconds),
        mfu=mfu, memory={**memory_snapshot(built.device), "total_mib": device_total_mib(built.device),
                         "safety_margin": SAFETY_MARGIN},
        batch_size=built.split.batch_size, accumulation_steps=built.split.accumulation_steps, seq_len=seq_len)
    if expert_counts:
        load, imbalance = expert_load(expert_counts)
        fields["moe"] = {"aux_loss": result.aux_loss, "load": load, "imbalance": imbalance}
        biases = built.model.router_biases()
        if biases:
            fields["moe"]["router_bias"] = biases
    return fields


def memory_fields(built: Built) -> dict[str, Any]:
    """``run_started``'s split and memory fields: the micro-batch the run starts with, what
    batch_size auto chose, and the memory estimate at that micro-batch."""
    world = built.dist.world_size
    fields: dict[str, Any] = built.split.to_dict()
    split = built.auto_split
    if split is not None:
        fields["batch_size_auto"] = {"chosen": split.batch_size, "accumulation_steps": split.accumulation_steps,
                                     "global_batch": split.samples_per_step * world,
                                     "requested_global_batch": split.requested * world, "note": split.note(world)}
    if built.memory_estimate is not None:
        fields["memory_estimate"] = built.memory_estimate.to_event()
    return fields
