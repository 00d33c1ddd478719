"""The training loop and nothing else: it asks ``step`` for optimizer steps and decides, between
them, when to log, evaluate and save, and how to answer the control channel (save, pause,
resume, stop) and signals (SIGINT/SIGTERM: save, then stop). Rank 0 polls control and all ranks
agree on what to do with one tiny all-reduce per step.

Every run ends with exactly one of ``run_finished`` (returns 0), ``run_stopped`` (after saving;
returns 0, the CLI reports 130) or an exception that the entry point records as ``run_failed``.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import torch

from minimind import distributed as dist_utils
from minimind.control import ControlReader
from minimind.errors import TrainingFailed
from minimind.metrics import StepTimer
from minimind.peaks import peak_flops as device_peak_flops
from minimind.training.build import Built
from minimind.training.curriculum import PhaseTimer
from minimind.training.oom import OOMRecovery
from minimind.training.report import Reporter
from minimind.training.samples import Sampler
from minimind.training.state import TrainState, weights_file
from minimind.training.state import save as save_checkpoint
from minimind.training.step import evaluate

MAX_NONFINITE_IN_A_ROW = 5
HEARTBEAT_S = 2.0  # a heartbeat event when this long passed since the last step or heartbeat event
_CONTROL_CODES = {None: 0, "save": 1, "pause": 2, "resume": 3, "stop": 4, "sample": 5}
_CODE_COMMANDS = {v: k for k, v in _CONTROL_CODES.items()}


class Loop:
    def __init__(self, built: Built, state: TrainState, run_dir: Path, reporter: Reporter):
        self.built = built
        self.state = state
        self.run_dir = Path(run_dir)
        self.report = reporter
        self.control = ControlReader(self.run_dir) if built.dist.is_main else None
        self.signal_name: str | None = None
        self.t_start = time.time()
        self.warned_no_val = False
        self.announced_at = -1
        self.steps = OOMRecovery(built, reporter)
        self.sampler = Sampler(built) if built.dist.is_main else None

    def elapsed(self) -> float:
        return self.state.elapsed_before_s + (time.time() - self.t_start)

    def run(self, resumed_from: dict | None = None) -> int:
        built, state, t = self.built, self.state, self.built.cfg.train
        self._install_signal_handlers()
        peak_flops, peak_source = (device_peak_flops(built.device, built.dtype_name) if built.dist.is_main
                                   else (0.0, None))
        self.report.run_started(built, state, self.run_dir, resumed_from, peak_flops, peak_source)
        start_step = state.step
        timer = StepTimer() if built.curriculum is None else PhaseTimer(
            built.curriculum, built.flops_per_token_at, lambda: built.loader.seq_len)
        interval_tokens, interval_s = 0, 0.0
        last_report = time.monotonic()
        while state.step < built.total_steps:
            command = self._sync_flags()
            if command == "pause":
                command = self._pause()
            if command == "save":
                self.save("request")
            if command == "sample":
                self.sample(requested=True)
            if command == "stop" or self.signal_name:
                return self._stop()

            state.attempts += 1
            self._announce_phase()
            built.callbacks.step_started(state)
            result = self.steps.step(state)
            timer.add(result.seconds)
            interval_tokens += result.tokens
            interval_s += result.seconds
            if not result.finite:
                self._skip(result)
                continue
            ema = state.advance(result.loss, result.tokens)
            built.callbacks.step_finished(state)

            last = state.step == built.total_steps
            if state.step % t.log_interval == 0 or last or state.step == start_step + 1:
                counts = self._expert_counts()
                self.report.step(built, state, result, ema=ema, timer=timer, interval_tokens=interval_tokens,
                                 interval_s=interval_s, elapsed_s=self.elapsed(), peak_flops=peak_flops,
                                 expert_counts=counts)
                interval_tokens, interval_s = 0, 0.0
                last_report = time.monotonic()
            elif time.monotonic() - last_report >= HEARTBEAT_S:  # the clock only: no device sync
                self.report.heartbeat(state.step, built.total_steps, self.elapsed())
                last_report = time.monotonic()
            if t.eval_interval and state.step % t.eval_interval == 0 and not last:
                self.evaluate()
            if t.save_interval and state.step % t.save_interval == 0 and not last:
                self.save("interval")

        self.evaluate()
        path = self.save("final")
        weights = weights_file(built.cfg) if built.dist.is_main else None
        self.report.finished(state, self.elapsed(), weights, path)
        return 0

    def _announce_phase(self) -> None:
        """An ``info`` event where a sequence-length curriculum changes the window length."""
        curriculum, step = self.built.curriculum, self.state.step
        if (curriculum is None or step in (0, self.announced_at)
                or curriculum.seq_len_at(step) == curriculum.seq_len_at(step - 1)):
            return
        self.announced_at = step  # once, also when the step is retried after a non-finite one
        length = curriculum.seq_len_at(step)
        rows = self.built.split.batch_size * self.built.cfg.data.max_seq_len // length
        self.report.emit("info", step=step, message=f"sequence-length curriculum: windows of {length} tokens "
                                                    f"from step {step + 1} (micro-batch {rows} x {length})")

    def _skip(self, result) -> None:
        self.state.nonfinite_in_a_row += 1
        step = self.state.step + 1
        self.report.skipped(step, result, self.state.nonfinite_in_a_row)
        if self.state.nonfinite_in_a_row >= MAX_NONFINITE_IN_A_ROW:
            raise TrainingFailed(f"{MAX_NONFINITE_IN_A_ROW} non-finite steps in a row at step {step}; "
                                 f"stopped, the last good checkpoint is kept")

    def _expert_counts(self) -> list[list[float]]:
        """Per-layer expert token counts since the last log, summed over ranks (all ranks call this)."""
        if not self.built.cfg.model.use_moe:
            return []
        counts = self.built.model.read_expert_counts()
        if counts and self.built.dist.enabled:
            counts = dist_utils.all_reduce_sum(torch.tensor(counts, dtype=torch.float64), self.built.dist).tolist()
        return counts

    def evaluate(self) -> float | None:
        """A validation pass, then live samples."""
        t0 = time.perf_counter()
        val = evaluate(self.built)
        if val is not None:
            self.state.last_val_loss = val
            self.report.evaluated(self.state.step, val, time.perf_counter() - t0)
        elif not self.warned_no_val:
            self.warned_no_val = True
            self.report.emit("warning", step=self.state.step,
                             message="the validation split holds less than one batch: no validation loss")
        self.sample()
        return val

    def sample(self, requested: bool = False) -> None:
        """Live samples, made by rank 0 alone: the other ranks go on to the next step, whose first
        all-reduce holds them until rank 0 joins. A failure turns samples off; training goes on."""
        sampler = self.sampler
        if sampler is None or not (sampler.enabled or requested):
            return
        try:
            note = sampler.prepare() if sampler.enabled else sampler.unavailable or (
                "no live samples: train.sample_tokens is 0 or train.sample_prompts is empty")
            samples = [] if note else sampler.run()
        except Exception as exc:  # noqa: BLE001 - samples are a view on training, never a reason to stop it
            sampler.unavailable = note = f"live samples turned off: {type(exc).__name__}: {exc}"
            samples = []
        if note:
            self.report.emit("info", step=self.state.step, message=note)
        self.report.samples(self.state.step, samples)

    def save(self, reason: str) -> Path | None:
        """A checkpoint of the current state (rank 0 writes; all ranks wait for it)."""
        path = None
        if self.built.dist.is_main:
            t0 = time.perf_counter()
            path = save_checkpoint(self.built, self.state, self.run_dir, reason, self.elapsed())
            self.report.checkpoint(self.state.step, path, time.perf_counter() - t0, reason)
        dist_utils.barrier(self.built.dist)
        return path

    def _stop(self) -> int:
        reason = "signal" if self.signal_name else "request"
        path = self.save(reason)
        why = f"received {self.signal_name}" if self.signal_name else "stop requested"
        self.report.stopped(self.state.step, reason, path, why, self.run_dir)
        return 0

    def _pause(self) -> str | None:
        self.report.emit("paused", step=self.state.step)
        self.report.print(f"paused at step {self.state.step}")
        while True:
            time.sleep(0.3)
            command = self._sync_flags()
            if command == "save":
                self.save("request")
            elif command == "sample":
                self.sample(requested=True)
            elif command in ("resume", "stop") or self.signal_name:
                break
        self.report.emit("resumed", step=self.state.step)
        return "stop" if command == "stop" else None

    def _sync_flags(self) -> str | None:
        """Rank 0's control command and any rank's signal, agreed by all ranks (one tiny all-reduce)."""
        command = self.control.poll() if self.control is not None else None
        flags = torch.tensor([_CONTROL_CODES.get(command, 0), 1 if self.signal_name else 0], dtype=torch.int64)
        dist_utils.all_reduce_max(flags, self.built.dist)
        if flags[1] and not self.signal_name:
            self.signal_name = "a stop signal on another rank"
        return _CODE_COMMANDS.get(int(flags[0]))

    def _install_signal_handlers(self) -> None:
        def handler(signum, _frame):
            if self.signal_name is None:
                self.signal_name = signal.Signals(signum).name
                self.report.print(f"{self.signal_name}: saving a checkpoint after the current step...", stderr=True)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, handler)
