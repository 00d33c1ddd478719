"""The training loop: AMP, gradient accumulation, clipping, schedule, NaN guard, checkpoints,
signals and dashboard control. One ``Trainer`` per process; rank 0 writes events and checkpoints.

Fault injection for tests (environment variables, never set in normal use):
  MINIMIND_FAULT_NAN_STEPS   optimizer-step attempts of this process (1-based, "3,5-9") whose loss is
                             made NaN (a skipped step is retried on new data, as a new attempt)
  MINIMIND_FAULT_SLOW_SAVE   seconds to sleep between checkpoint files (to kill mid-save)
  MINIMIND_FAULT_STEP_SLEEP  seconds to sleep after every optimizer step (to kill mid-run)
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minimind import checkpoint as ckpt
from minimind import distributed as dist_utils
from minimind.config import Config, ConfigError, ModelConfig
from minimind.control import ControlReader
from minimind.data.dataset import BatchLoader, PretrainDataset, optimizer_steps, validation_batches
from minimind.data.format import DatasetFormatError
from minimind.events import EventWriter, sanitize
from minimind.metrics import (
    LossEMA,
    StepTimer,
    expert_load,
    format_duration,
    measure_matmul_peak,
    memory_snapshot,
)
from minimind.model import MiniMindLM
from minimind.schedule import lr_at, planned_schedule

MAX_NONFINITE_IN_A_ROW = 5
_CONTROL_CODES = {None: 0, "save": 1, "pause": 2, "resume": 3, "stop": 4}
_CODE_COMMANDS = {v: k for k, v in _CONTROL_CODES.items()}
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


class TrainingFailed(RuntimeError):
    """The run cannot go on (e.g. too many non-finite steps); the last good checkpoint is kept."""


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={requested} but no CUDA device is available (use cpu or auto)")
        if requested == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(requested)


def cpu_supports_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_dtype(requested: str, device: torch.device) -> tuple[str, str]:
    """(dtype name, why) — ``auto`` picks the fastest precision this device supports."""
    if requested != "auto":
        return requested, "requested"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: CUDA device supports bf16"
        return "fp16", "auto: CUDA device without bf16 (fp16 with loss scaling)"
    if cpu_supports_bf16():
        return "bf16", "auto: this CPU has native bf16 (AVX512-BF16/AMX), bf16 autocast"
    return "fp32", "auto: this CPU has no native bf16"


def _parse_steps(spec: str) -> set[int]:
    steps: set[int] = set()
    for part in filter(None, (p.strip() for p in spec.split(","))):
        lo, _, hi = part.partition("-")
        steps.update(range(int(lo), int(hi or lo) + 1))
    return steps


class Trainer:
    def __init__(self, run_dir: Path, cfg: Config, *, resume_from: Path | None = None,
                 init_from: Path | None = None, force: bool = False,
                 dist: dist_utils.DistInfo | None = None, events: EventWriter | None = None):
        self.run_dir = Path(run_dir)
        self.cfg = cfg
        self.dist = dist or dist_utils.from_env()
        self.events = events if self.dist.is_main else None
        self.resume_from = resume_from
        self.init_from = init_from
        self.force = force
        self.nan_steps = _parse_steps(os.environ.get("MINIMIND_FAULT_NAN_STEPS", ""))
        self.slow_save_s = float(os.environ.get("MINIMIND_FAULT_SLOW_SAVE", "0") or 0)
        self.step_sleep_s = float(os.environ.get("MINIMIND_FAULT_STEP_SLEEP", "0") or 0)
        self._signal: str | None = None
        self.sinks = None
        if self.dist.is_main and (cfg.run.wandb or cfg.run.tensorboard):
            from minimind.sinks import Sinks

            self.sinks = Sinks(cfg, self.run_dir)

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        cfg, t = self.cfg, self.cfg.train
        self.device = pick_device(t.device, self.dist.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.dtype_name, self.dtype_reason = pick_dtype(t.dtype, self.device)
        self.amp_dtype = DTYPES[self.dtype_name]
        dist_utils.init(self.dist, self.device)

        if not cfg.data.path:
            raise ConfigError("data.path is not set: pass --data or run `minimind prepare` first")
        self.train_data = PretrainDataset(cfg.data.path, cfg.data.max_seq_len, cfg.data.packing, "train")
        vocab = int(self.train_data.meta.get("vocab_size", 0))
        if vocab > cfg.model.vocab_size:
            raise ConfigError(f"the dataset's tokenizer has {vocab} tokens but model.vocab_size="
                              f"{cfg.model.vocab_size}; set --set model.vocab_size={vocab}")
        self.val_data = PretrainDataset(cfg.data.path, cfg.data.max_seq_len, cfg.data.packing, "val")
        self.loader = BatchLoader(self.train_data, t.batch_size, t.seed, self.dist.rank, self.dist.world_size)
        self.total_steps = optimizer_steps(self.loader.batches_per_epoch, t.epochs, t.accumulation_steps,
                                           t.max_steps)
        if self.total_steps <= 0:
            raise DatasetFormatError(
                f"{cfg.data.path}: {self.loader.batches_per_epoch} micro-batches per epoch x {t.epochs} "
                f"epoch(s) is less than one optimizer step of {t.accumulation_steps} micro-batches")

        torch.manual_seed(t.seed)
        random.seed(t.seed)
        np.random.seed(t.seed % 2**32)
        self.model = MiniMindLM(cfg.model)
        if self.init_from is not None and self.resume_from is None:
            self._load_init_weights(self.init_from)
        self.model.to(self.device)
        self.params = self.model.num_parameters()
        self.optimizer = self._make_optimizer()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype_name == "fp16")
        self.ddp_model: torch.nn.Module = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.ddp_model = DDP(self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                 find_unused_parameters=cfg.model.use_moe)

        self.forward_model: torch.nn.Module = self.ddp_model
        if t.compile:
            # Compiles lazily at the first step; the wrapped module keeps its parameters and keys.
            # Where compilation is impossible (no C++ compiler, unsupported platform) the model
            # runs eagerly instead of failing the run.
            import torch._dynamo as dynamo

            dynamo.config.suppress_errors = True
            self.forward_model = torch.compile(self.ddp_model)

        self.step = 0
        self.tokens_seen = 0
        self.elapsed_before = 0.0
        self.nonfinite_in_a_row = 0
        self.loss_ema = LossEMA()
        self.last_loss: float | None = None
        self.last_val_loss: float | None = None
        self.resumed_meta: dict[str, Any] | None = None
        if self.resume_from is not None:
            self._restore(self.resume_from)
        self.start_step = self.step
        self.flops_per_token = self.model.flops_per_token(cfg.data.max_seq_len)
        self.control = ControlReader(self.run_dir) if self.dist.is_main else None

    def _make_optimizer(self) -> torch.optim.Optimizer:
        t = self.cfg.train
        params = [p for p in self.model.parameters() if p.requires_grad]
        if t.weight_decay > 0:
            groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": t.weight_decay},
                      {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        else:
            groups = [{"params": params, "weight_decay": 0.0}]
        kwargs = {"lr": t.learning_rate, "betas": (t.beta1, t.beta2)}
        try:
            return torch.optim.AdamW(groups, fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.AdamW(groups, foreach=True, **kwargs)

    def _load_init_weights(self, path: Path) -> None:
        try:
            from minimind.weights import load_weights
        except ImportError:
            raise ConfigError("--init-from needs minimind.convert, which this installation lacks") from None
        loaded = load_weights(path)
        own = self.model.state_dict()
        mismatched = [k for k, v in loaded.state_dict.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
        if mismatched:
            raise ConfigError(f"--init-from {path}: shapes differ from this config at {mismatched[0]} "
                              f"({tuple(loaded.state_dict[mismatched[0]].shape)} vs {tuple(own[mismatched[0]].shape)})")
        missing, unexpected = self.model.load_state_dict(loaded.state_dict, strict=False)
        missing = [k for k in missing if k != "lm_head.weight"]
        if missing or unexpected:
            raise ConfigError(f"--init-from {path}: keys do not match this config "
                              f"(missing {missing[:3]}, unexpected {list(unexpected)[:3]})")
        self._emit("warning", message=f"initialised weights from {path} ({loaded.layout} layout)", step=0)

    # ------------------------------------------------------------------ resume
    def _restore(self, path: Path) -> None:
        info = ckpt.find_checkpoint(path)
        state = ckpt.load_checkpoint(info)
        saved_model = ModelConfig(**_yaml_section(state["config_yaml"], "model"))
        if saved_model != self.cfg.model:
            raise ConfigError(f"checkpoint {info.path} was trained with a different model shape; "
                              f"resume keeps the model config (remove model.* overrides)")
        meta_fp = (info.meta.get("dataset") or {}).get("fingerprint")
        if meta_fp and meta_fp != self.train_data.fingerprint and not self.force:
            raise ConfigError(f"the dataset changed since checkpoint {info.path.name} "
                              f"(fingerprint {meta_fp[:12]} -> {self.train_data.fingerprint[:12]}); "
                              f"pass --force to continue on the new data")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        loop = state["state"]
        if loop.get("scaler"):
            self.scaler.load_state_dict(loop["scaler"])
        try:
            self.loader.load_state_dict(loop["data"])
        except DatasetFormatError:
            if not self.force:
                raise
            self._emit("warning", message="data position could not be restored (--force): restarting the epoch")
        self.step = int(loop["step"])
        self.tokens_seen = int(loop["tokens_seen"])
        self.elapsed_before = float(loop.get("elapsed_s", 0.0))
        self.nonfinite_in_a_row = int(loop.get("nonfinite_in_a_row", 0))
        self.loss_ema.load_state_dict(loop["loss_ema"])
        self.last_loss = loop.get("last_loss")
        self.last_val_loss = loop.get("last_val_loss")
        rng = loop["rng"]
        random.setstate(_to_tuple(rng["python"]))
        np.random.set_state((rng["numpy"][0], np.array(rng["numpy"][1], dtype=np.uint32), *rng["numpy"][2:]))
        torch.set_rng_state(rng["torch"])
        if rng.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])
        self.resumed_meta = {"path": str(info.path), "step": self.step}

    def _loop_state(self) -> dict[str, Any]:
        np_state = np.random.get_state()
        return {
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "elapsed_s": self._elapsed(),
            "data": self.loader.state_dict(),
            "loss_ema": self.loss_ema.state_dict(),
            "nonfinite_in_a_row": self.nonfinite_in_a_row,
            "last_loss": self.last_loss,
            "last_val_loss": self.last_val_loss,
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "rng": {
                "python": random.getstate(),
                "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            },
        }

    # ------------------------------------------------------------------ events
    def _emit(self, type_: str, **fields: Any) -> None:
        if self.events is not None:
            event = self.events.emit(type_, **sanitize(fields))
            if self.sinks is not None:
                self.sinks.event(event)

    def _log(self, text: str) -> None:
        if self.dist.is_main:
            print(text, flush=True)

    def _elapsed(self) -> float:
        return self.elapsed_before + (time.time() - self.t_start)

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        self.t_start = time.time()
        self.setup()
        cfg, t = self.cfg, self.cfg.train
        self._install_signal_handlers()
        self.peak_flops = measure_matmul_peak(self.device, self.amp_dtype) if self.dist.is_main else 0.0
        tokens_per_step = t.batch_size * t.accumulation_steps * self.dist.world_size * cfg.data.max_seq_len
        self._emit(
            "run_started", run=self.run_dir.name, profile=cfg.run.profile, config=cfg.to_dict(),
            params_total=self.params["total"], params_active=self.params["active"], device=str(self.device),
            devices=self._device_names(), dtype=self.dtype_name, dtype_reason=self.dtype_reason,
            world_size=self.dist.world_size, total_steps=self.total_steps, start_step=self.start_step,
            tokens_per_step=tokens_per_step,
            dataset={"path": str(cfg.data.path), "fingerprint": self.train_data.fingerprint,
                     "tokens": self.train_data.meta.get("tokens"), "documents": self.train_data.meta.get("documents"),
                     "samples": len(self.train_data), "packing": cfg.data.packing},
            lr_schedule=planned_schedule(self.total_steps, t), resumed_from=self.resumed_meta,
            pid=os.getpid(), peak_flops=self.peak_flops)
        where = f"resumed at step {self.step}" if self.resumed_meta else "starting"
        self._log(f"{where}: {self.params['total']:,} parameters ({self.params['active']:,} active), "
                  f"{self.total_steps} steps, device {self.device}, dtype {self.dtype_name} ({self.dtype_reason})")

        timer = StepTimer()
        interval = {"tokens": 0, "time": 0.0}
        while self.step < self.total_steps:
            command = self._sync_flags()
            if command == "pause":
                command = self._pause()
            if command == "save":
                self._save("request")
            if command == "stop" or self._signal:
                return self._stop(command)

            t0 = time.perf_counter()
            ce_loss, aux_loss, tokens, grad_norm = self._train_step()
            step_time = time.perf_counter() - t0
            timer.add(step_time)
            interval["tokens"] += tokens
            interval["time"] += step_time

            if not (math.isfinite(ce_loss) and math.isfinite(grad_norm)):
                self.nonfinite_in_a_row += 1
                self._emit("warning", step=self.step + 1,
                           message=f"non-finite loss/gradient at step {self.step + 1} (loss {ce_loss}, grad norm "
                                   f"{grad_norm}): step skipped ({self.nonfinite_in_a_row} in a row)")
                self._log(f"warning: non-finite loss at step {self.step + 1}, step skipped")
                if self.nonfinite_in_a_row >= MAX_NONFINITE_IN_A_ROW:
                    raise TrainingFailed(f"{MAX_NONFINITE_IN_A_ROW} non-finite steps in a row at step "
                                         f"{self.step + 1}; stopped, the last good checkpoint is kept")
                continue
            self.nonfinite_in_a_row = 0
            self.step += 1
            self.tokens_seen += tokens
            self.last_loss = ce_loss
            ema = self.loss_ema.update(ce_loss)
            if self.step_sleep_s:
                time.sleep(self.step_sleep_s)

            if self.step % t.log_interval == 0 or self.step == self.total_steps or self.step == self.start_step + 1:
                self._log_step(ce_loss, ema, aux_loss, grad_norm, step_time, timer, interval)
                interval = {"tokens": 0, "time": 0.0}
            if t.eval_interval and self.step % t.eval_interval == 0 and self.step < self.total_steps:
                self._evaluate()
            if t.save_interval and self.step % t.save_interval == 0 and self.step < self.total_steps:
                self._save("interval")

        self._evaluate()
        path = self._save("final")
        weights = self._save_weights()
        self._emit("run_finished", step=self.step, tokens_seen=self.tokens_seen, elapsed_s=self._elapsed(),
                   final_loss=self.last_loss, val_loss=self.last_val_loss,
                   weights_path=str(weights) if weights else None, checkpoint=str(path) if path else None)
        self._log(f"finished: step {self.step}, loss {self.last_loss:.4f}"
                  + (f", val loss {self.last_val_loss:.4f}" if self.last_val_loss is not None else "")
                  + (f", weights {weights}" if weights else ""))
        return 0

    def _train_step(self) -> tuple[float, float, int, float]:
        """One optimizer step over ``accumulation_steps`` micro-batches. Returns global
        (mean CE loss, mean aux loss, trained tokens, grad norm)."""
        t = self.cfg.train
        self.model.train()
        sums = torch.zeros(3, dtype=torch.float64)  # ce, aux, tokens
        lr = lr_at(self.step, self.total_steps, t)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self._attempts = getattr(self, "_attempts", 0) + 1
        inject_nan = self._attempts in self.nan_steps
        for micro in range(t.accumulation_steps):
            batch = next(self.loader)
            x = torch.from_numpy(batch.input_ids).to(self.device, non_blocking=True)
            y = torch.from_numpy(batch.targets).to(self.device, non_blocking=True)
            mask = None if self.cfg.data.packing else torch.from_numpy(batch.loss_mask).to(self.device)
            last = micro == t.accumulation_steps - 1
            sync = contextlib.nullcontext() if (last or not self.dist.enabled) else self.ddp_model.no_sync()
            with sync:
                with self._autocast():
                    out = self.forward_model(x, targets=y, loss_mask=mask)
                loss = out.loss
                if inject_nan:
                    loss = loss * float("nan")
                total = (loss + out.aux_loss) / t.accumulation_steps
                self.scaler.scale(total).backward()
            sums += torch.tensor([loss.item(), float(out.aux_loss.item()), batch.trained_tokens], dtype=torch.float64)
        self.scaler.unscale_(self.optimizer)
        clip = t.grad_clip if t.grad_clip > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        dist_utils.all_reduce_sum(sums, self.dist)
        n = t.accumulation_steps * self.dist.world_size
        ce, aux, tokens = sums[0].item() / n, sums[1].item() / n, int(sums[2].item())
        finite = math.isfinite(ce) and (math.isfinite(grad_norm) or self.dtype_name == "fp16")
        if finite:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif self.scaler.is_enabled():
            self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.dtype_name == "fp16" and not math.isfinite(grad_norm) and math.isfinite(ce):
            grad_norm = 0.0  # the scaler skipped an overflow step; not a failure
        return ce, aux, tokens, grad_norm

    def _autocast(self):
        if self.dtype_name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _log_step(self, loss, ema, aux, grad_norm, step_time, timer, interval) -> None:
        t = self.cfg.train
        counts = self.model.read_expert_counts() if self.cfg.model.use_moe else []
        if counts and self.dist.enabled:
            flat = torch.tensor(counts, dtype=torch.float64)
            counts = dist_utils.all_reduce_sum(flat, self.dist).tolist()
        if not self.dist.is_main:
            return
        tokens_per_s = interval["tokens"] / interval["time"] if interval["time"] > 0 else 0.0
        mfu = (self.flops_per_token * tokens_per_s / self.dist.world_size / self.peak_flops
               if self.peak_flops else None)
        eta = timer.eta(self.total_steps - self.step, step_time)
        fields: dict[str, Any] = dict(
            step=self.step, total_steps=self.total_steps, epoch=self.loader.epoch, loss=loss, loss_ema=ema,
            lr=lr_at(self.step - 1, self.total_steps, t), grad_norm=grad_norm, tokens_seen=self.tokens_seen,
            tokens_per_s=tokens_per_s, step_time_s=step_time, elapsed_s=self._elapsed(), eta_s=eta, mfu=mfu,
            memory=memory_snapshot(self.device))
        if counts:
            load, imbalance = expert_load(counts)
            fields["moe"] = {"aux_loss": aux, "load": load, "imbalance": imbalance}
        self._emit("step", **fields)
        self._log(f"step {self.step}/{self.total_steps} loss {loss:.4f} (ema {ema:.4f}) lr {fields['lr']:.2e} "
                  f"grad {grad_norm:.3f} {tokens_per_s:,.0f} tok/s"
                  + (f" eta {format_duration(eta)}" if eta is not None else ""))

    @torch.no_grad()
    def _evaluate(self) -> float | None:
        t = self.cfg.train
        t0 = time.perf_counter()
        self.model.eval()
        sums = torch.zeros(2, dtype=torch.float64)
        for batch in validation_batches(self.val_data, t.batch_size, t.eval_batches, self.dist.rank,
                                        self.dist.world_size):
            x = torch.from_numpy(batch.input_ids).to(self.device)
            y = torch.from_numpy(batch.targets).to(self.device)
            mask = torch.from_numpy(batch.loss_mask).to(self.device)
            with self._autocast():
                out = self.model(x, targets=y, loss_mask=mask)
            n = float(mask.sum().item())
            sums += torch.tensor([out.loss.item() * n, n], dtype=torch.float64)
        dist_utils.all_reduce_sum(sums, self.dist)
        self.model.train()
        if sums[1] == 0:
            if not getattr(self, "_warned_no_val", False):
                self._warned_no_val = True
                self._emit("warning", step=self.step,
                           message="the validation split holds less than one batch: no validation loss")
            return None
        val = sums[0].item() / sums[1].item()
        self.last_val_loss = val
        self._emit("eval", step=self.step, val_loss=val, perplexity=math.exp(min(val, 50)),
                   seconds=time.perf_counter() - t0)
        self._log(f"eval step {self.step}: val loss {val:.4f}")
        return val

    # ------------------------------------------------------------------ saving and stopping
    def _save(self, reason: str) -> Path | None:
        if not self.dist.is_main:
            dist_utils.barrier(self.dist)
            return None
        t0 = time.perf_counter()
        t = self.cfg.train
        meta = {
            "epoch": self.loader.epoch, "tokens_seen": self.tokens_seen, "loss": self.last_loss,
            "loss_ema": self.loss_ema.mean,
            "val_loss": self.last_val_loss, "elapsed_s": self._elapsed(), "profile": self.cfg.run.profile,
            "run": self.run_dir.name, "reason": reason,
            "dataset": {"path": str(self.cfg.data.path), "fingerprint": self.train_data.fingerprint},
            "world_size": self.dist.world_size, "dtype": self.dtype_name,
            "params_total": self.params["total"], "params_active": self.params["active"],
        }
        import yaml

        path = ckpt.save_checkpoint(
            self.run_dir, self.step, model_state=self.model.state_dict(),
            optimizer_state=self.optimizer.state_dict(), loop_state=self._loop_state(),
            config_yaml=yaml.safe_dump(self.cfg.to_dict(), sort_keys=False), meta=meta, keep_last=t.keep_last,
            slow_save_s=self.slow_save_s)
        self._save_weights()
        seconds = time.perf_counter() - t0
        self._emit("checkpoint", step=self.step, path=str(path), seconds=seconds, reason=reason)
        self._log(f"checkpoint step {self.step} ({reason}) -> {path} in {seconds:.1f}s")
        dist_utils.barrier(self.dist)
        return path

    def _save_weights(self) -> Path | None:
        if not self.dist.is_main:
            return None
        m = self.cfg.model
        return ckpt.save_weights(ckpt.weights_path(Path(self.cfg.run.out_dir), m.hidden_size, m.use_moe),
                                 self.model.state_dict())

    def _stop(self, command: str | None) -> int:
        reason = "signal" if self._signal else "request"
        self._save(reason)
        why = f"received {self._signal}" if self._signal else "stop requested"
        resume_cmd = f"minimind resume {self.run_dir}"
        self._emit("warning", step=self.step, message=f"{why}: stopped at step {self.step} after saving; "
                                                      f"resume with: {resume_cmd}")
        if self.dist.is_main:
            print(f"{why}: checkpoint saved at step {self.step}. Resume with:\n  {resume_cmd}",
                  file=sys.stderr, flush=True)
        return 0

    def _pause(self) -> str | None:
        self._emit("paused", step=self.step)
        self._log(f"paused at step {self.step}")
        while True:
            time.sleep(0.3)
            command = self._sync_flags()
            if command == "save":
                self._save("request")
            elif command in ("resume", "stop") or self._signal:
                break
        self._emit("resumed", step=self.step)
        return "stop" if command == "stop" else None

    def _sync_flags(self) -> str | None:
        """Rank 0's control command and any rank's signal, agreed by all ranks (one tiny all-reduce)."""
        command = self.control.poll() if self.control is not None else None
        flags = torch.tensor([_CONTROL_CODES.get(command, 0), 1 if self._signal else 0], dtype=torch.int64)
        dist_utils.all_reduce_max(flags, self.dist)
        if flags[1] and not self._signal:
            self._signal = "a stop signal on another rank"
        return _CODE_COMMANDS.get(int(flags[0]))

    def _install_signal_handlers(self) -> None:
        def handler(signum, _frame):
            if self._signal is None:
                self._signal = signal.Signals(signum).name
                if self.dist.is_main:
                    print(f"{self._signal}: saving a checkpoint after the current step...", file=sys.stderr,
                          flush=True)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)

    def _device_names(self) -> list[str]:
        if self.device.type == "cuda":
            return [torch.cuda.get_device_name(self.device)]
        import platform

        return [platform.processor() or platform.machine() or "cpu"]


def _yaml_section(text: str, section: str) -> dict:
    import yaml

    return (yaml.safe_load(text) or {}).get(section) or {}


def _to_tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value

