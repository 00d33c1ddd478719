"""How fast this machine trains a configuration, and whether that is normal (``minimind bench``).

``run_bench`` builds the run with ``build`` and times real ``train_step`` calls (the real model,
optimizer, loss scaling and gradient clipping): ``warmup`` steps first (the first one compiles
when ``train.compile`` is on), then ``steps`` timed ones. A bench step is one micro-batch and its
optimizer update (accumulation 1): a real run's accumulation only repeats the micro-batch, so
tokens/s carry over, and the projections scale the per-token phases to the run's own step. On a
CPU the micro-batch is at most ``CPU_TOKENS`` tokens unless asked otherwise (a CPU's tokens/s
barely depend on it, and a bench should take a minute, not ten), and ``max_seconds`` caps the
time the steps may take.

Where a step's time goes comes from ``PhaseTimes``, which ``train_step`` tells where each phase
ends (``phases=``): waiting for data (the loader), forward + backward (host-to-device copies and,
under DDP, the overlapped gradient all-reduce included), synchronisation (gradient clipping, the
loss all-reduce and the one read-back per step) and the optimizer (its update, the router bias,
zeroing the gradients). On CUDA each mark synchronises the device, so the phases are real; on a
CPU they are wall-clock time. Without ``phases`` the step does no extra work.

Nothing is written. No typer or textual here: the CLI formats ``BenchResult.lines()`` or
``to_dict()``.
"""

from __future__ import annotations

import os
import platform
import re
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from minimind.bench_reference import REFERENCES, Reference
from minimind.metrics import format_duration

if TYPE_CHECKING:
    import torch

    from minimind.config import Config

PHASES = ("data", "forward_backward", "sync", "optimizer")
PHASE_LABELS = {"data": "waiting for data", "forward_backward": "forward + backward",
                "sync": "synchronisation", "optimizer": "optimizer"}
PER_TOKEN_PHASES = ("data", "forward_backward")  # grow with the tokens of a step; the others once per step
IN_LINE = (0.7, 1.5)  # measured / reference tokens/s that counts as normal
MIN_TIMED = 2  # timed steps a time budget always leaves
CPU_TOKENS = 2048  # the largest micro-batch (in tokens) a CPU bench uses unless --batch-size says otherwise


class PhaseTimes:
    """Seconds per phase of ``train_step``, summed over the steps it was passed to."""

    def __init__(self, device: torch.device):
        self.device = device
        self.totals = dict.fromkeys(PHASES, 0.0)
        self._last = 0.0

    def _now(self) -> float:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def start(self) -> None:
        self._last = self._now()

    def mark(self, phase: str) -> None:
        now = self._now()
        self.totals[phase] += now - self._last
        self._last = now

    def reset(self) -> None:
        self.totals = dict.fromkeys(PHASES, 0.0)


@dataclass
class BenchResult:
    profile: str
    device: str  # cpu, cuda:0
    device_name: str
    threads: int
    native_bf16: bool | None  # CPU only
    dtype: str
    dtype_reason: str
    compile: bool
    optimizer: str  # a bench step includes the optimizer update: Muon's Newton-Schulz is part of its time
    params_total: int
    params_active: int
    batch_size: int  # micro-batch of the bench
    seq_len: int  # the window the bench trained (a curriculum's first phase)
    max_seq_len: int
    warmup: int
    steps: int  # timed
    steps_requested: int
    tokens_per_step: int
    tokens_per_s: float
    step_s: float  # median timed step
    first_step_s: float
    compile_s: float | None
    phases_s: dict[str, float]  # mean seconds per timed step
    mfu: float
    peak_flops: float
    peak_flops_source: str
    peak_memory_mib: float
    peak_memory_kind: str
    run_batch_size: int  # what a real run of this config uses per micro-batch and step
    run_accumulation_steps: int
    run_tokens_per_step: int
    run_step_s: float  # projected
    epoch_steps: int
    epoch_s: float
    run_steps: int
    run_s: float
    data: str
    losses: list[float] = field(default_factory=list)
    reference: dict | None = None
    ratio: float | None = None
    verdict: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The table ``minimind bench`` prints."""
        d = self
        bf16 = "" if d.native_bf16 is None else (", native bf16" if d.native_bf16 else ", no native bf16")
        out = [f"device         {d.device_name} ({d.device}, {d.threads} threads{bf16})",
               f"config         profile {d.profile}: {d.params_total:,} parameters ({d.params_active:,} active), "
               f"{d.dtype} ({d.dtype_reason}), compile {'on' if d.compile else 'off'}, {d.optimizer}",
               f"bench step     micro-batch {d.batch_size} x {d.seq_len} tokens, accumulation 1; {d.steps} steps "
               f"timed after {d.warmup} warm-up" + (f" ({d.steps_requested} asked; the time budget ran out)"
                                                    if d.steps < d.steps_requested else ""),
               f"tokens/s       {d.tokens_per_s:,.0f} trained tokens/s (step {d.step_s:.3f} s)",
               f"MFU            {d.mfu:.1%} of {d.peak_flops / 1e12:,.2f} TFLOP/s ({d.peak_flops_source})"]
        total = sum(d.phases_s.values()) or 1.0
        out.append("step time      " + ", ".join(f"{PHASE_LABELS[p]} {d.phases_s[p]:.3f} s ({d.phases_s[p] / total:.0%})"
                                                  for p in PHASES))
        out.append("compile        " + (f"{d.compile_s:.1f} s (first step {d.first_step_s:.1f} s minus a steady step)"
                                        if d.compile_s is not None else "off"))
        out.append(f"peak memory    {d.peak_memory_mib:,.0f} MiB ({d.peak_memory_kind})")
        out.append(f"a run's step   micro-batch {d.run_batch_size} x accumulation {d.run_accumulation_steps} = "
                   f"{d.run_tokens_per_step:,} tokens: about {d.run_step_s:.2f} s")
        out.append(f"one epoch      {d.epoch_steps:,} steps: about {format_duration(d.epoch_s)}")
        out.append(f"this run       {d.run_steps:,} steps: about {format_duration(d.run_s)}")
        out.append(f"data           {d.data}")
        out.append(f"in line?       {d.verdict}")
        return out


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def bench_batch_size(cfg: Config, device_type: str, requested: int | None) -> int | None:
    """The micro-batch to time: ``requested``; else the config's, capped at ``CPU_TOKENS`` tokens on a
    CPU; None for ``batch_size: auto`` on a GPU (``build`` finds it)."""
    if requested is not None:
        return requested
    t = cfg.train
    if device_type == "cpu":
        cap = max(1, CPU_TOKENS // cfg.data.max_seq_len)
        return cap if t.auto_batch else min(t.batch_size, cap)
    return None if t.auto_batch else t.batch_size


def run_bench(cfg: Config, steps: int, warmup: int, batch_size: int | None = None, data: str = "",
              progress: Callable[[str], None] | None = None, max_seconds: float | None = None) -> BenchResult:
    """Time ``steps`` real training steps of ``cfg`` (a validated config with ``data.path``) after
    ``warmup`` ones; see the module docstring. ``max_seconds``: stop timing once the steps (warm-up
    included) have taken this long, after at least ``MIN_TIMED`` timed steps."""
    import torch

    from minimind.data.dataset import optimizer_steps
    from minimind.peaks import peak_flops
    from minimind.training import memory, policy
    from minimind.training.build import build, cpu_supports_bf16, pick_device
    from minimind.training.state import TrainState
    from minimind.training.step import train_step

    say = progress or (lambda _text: None)
    device = pick_device(cfg.train.device)
    rows = bench_batch_size(cfg, device.type, batch_size)
    batches_per_epoch = policy.check_dataset_fits(cfg, 1)  # the run's own split: "too little data" as pretrain says it
    say("building the model" + (" (compiling at the first step)" if cfg.train.compile else ""))
    built = build(cfg, split=memory.Split.fixed(rows, 1) if rows is not None else None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    state = TrainState()
    clock = PhaseTimes(built.device)
    first_s, times, tokens, losses = 0.0, [], 0, []
    started = time.perf_counter()
    for i in range(warmup + steps):
        if (max_seconds is not None and len(times) >= min(steps, MIN_TIMED)
                and time.perf_counter() - started > max_seconds):
            say(f"stopped after {len(times)} timed steps: the {max_seconds:g} s budget is spent")
            break
        if i == warmup:
            clock.reset()
        result = train_step(built, state, phases=clock)
        if i == 0:
            first_s = result.seconds
        if i >= warmup:
            times.append(result.seconds)
            tokens += result.tokens
            losses.append(round(result.loss, 4))
        say(f"step {i + 1}/{warmup + steps}{' (warm-up)' if i < warmup else ''}: {result.seconds:.2f} s, "
            f"loss {result.loss:.4f}")
    requested, steps = steps, len(times)
    seconds = sum(times)
    tokens_per_s = tokens / seconds
    step_s = statistics.median(times)
    phases = {p: clock.totals[p] / steps for p in PHASES}
    say("measuring the device's peak")
    peak, source = peak_flops(built.device, built.dtype_name)
    if device.type == "cuda":
        peak_mib, kind = torch.cuda.max_memory_allocated(device) / 2**20, "max_memory_allocated"
    else:
        peak_mib, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak RSS of this process"

    # A run's step: its tokens at the bench's per-token cost, plus the once-per-step phases.
    split = memory.requested_split(cfg.train)
    run_rows, run_accumulation = (built.split.batch_size, built.split.accumulation_steps) if cfg.train.auto_batch \
        else split
    run_tokens = run_rows * run_accumulation * cfg.data.max_seq_len
    bench_tokens = tokens / steps
    per_token = sum(phases[p] for p in PER_TOKEN_PHASES) / bench_tokens
    run_step_s = per_token * run_tokens + sum(phases[p] for p in PHASES if p not in PER_TOKEN_PHASES)
    epoch_steps = optimizer_steps(batches_per_epoch, 1, split[1])
    run_steps = optimizer_steps(batches_per_epoch, cfg.train.epochs, split[1], cfg.train.max_steps)
    compile_s = max(0.0, first_s - step_s) if cfg.train.compile and warmup else None
    once = compile_s or 0.0
    native = cpu_supports_bf16() if device.type == "cpu" else None
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    out = BenchResult(
        profile=cfg.run.profile or "", device=str(built.device), device_name=name, threads=torch.get_num_threads(),
        native_bf16=native, dtype=built.dtype_name, dtype_reason=built.dtype_reason, compile=cfg.train.compile,
        optimizer=cfg.train.optimizer,
        params_total=built.params["total"], params_active=built.params["active"], batch_size=built.split.batch_size,
        seq_len=built.loader.seq_len, max_seq_len=cfg.data.max_seq_len, warmup=warmup, steps=steps,
        steps_requested=requested,
        tokens_per_step=round(bench_tokens), tokens_per_s=tokens_per_s, step_s=step_s, first_step_s=first_s,
        compile_s=compile_s, phases_s=phases, mfu=built.flops_per_token_at(built.loader.seq_len) * tokens_per_s / peak,
        peak_flops=peak, peak_flops_source=source, peak_memory_mib=peak_mib, peak_memory_kind=kind,
        run_batch_size=run_rows, run_accumulation_steps=run_accumulation, run_tokens_per_step=run_tokens,
        run_step_s=run_step_s, epoch_steps=epoch_steps, epoch_s=once + epoch_steps * run_step_s, run_steps=run_steps,
        run_s=once + run_steps * run_step_s, data=data, losses=losses)
    compare(out)
    return out


def matches(ref: Reference, r: BenchResult) -> bool:
    return (re.search(ref.device, r.device_name) is not None and ref.profile == r.profile and ref.dtype == r.dtype
            and ref.compile == r.compile and ref.optimizer == r.optimizer
            and ref.batch_size == r.batch_size and ref.seq_len == r.seq_len
            and ref.params == r.params_total and (ref.threads is None or ref.threads == r.threads)
            and (ref.native_bf16 is None or ref.native_bf16 == r.native_bf16))


def compare(r: BenchResult, references: tuple[Reference, ...] = REFERENCES) -> None:
    """Set ``reference``, ``ratio`` and ``verdict``: in line within ``IN_LINE`` of a matching row."""
    found = next((ref for ref in references if matches(ref, r)), None)
    if found is None:
        here = [ref for ref in references if re.search(ref.device, r.device_name)]
        if not here:
            known = sorted({ref.label for ref in references})
            r.verdict = f"no reference for this device ({r.device_name}); references exist for {', '.join(known)}"
            return
        rows = sorted({f"{ref.profile} {ref.dtype} compile {'on' if ref.compile else 'off'} {ref.optimizer} micro-batch "
                       f"{ref.batch_size} x {ref.seq_len}" + (f", {ref.threads} threads" if ref.threads else "")
                       for ref in here})
        r.verdict = (f"no reference for this configuration on this device; measured here: {'; '.join(rows)}")
        return
    r.reference = found.to_dict()
    r.ratio = r.tokens_per_s / found.tokens_per_s
    low, high = IN_LINE
    where = f"{r.ratio:.2f}x the {found.tokens_per_s:,.0f} tokens/s measured on {found.label} ({found.source})"
    if r.ratio < low:
        r.verdict = f"SLOWER than expected: {where}; in line is {low}x-{high}x"
    elif r.ratio > high:
        r.verdict = f"faster than the reference: {where}"
    else:
        r.verdict = f"in line: {where}"
    if found.note:
        r.verdict += f" (note: {found.note})"
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if r.device.startswith("cpu") and load > cores:
        r.verdict += f"; load average {load:.1f} on {cores} cores: other work shares this CPU"
