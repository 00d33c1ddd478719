"""How much memory a run needs, how much there is, and the micro-batch that fits.

The estimate (``estimate``) adds up, for the chosen dtype:

  params      fp32 weights (4 bytes each), plus their bf16/fp16 copies under autocast
  grads       fp32 gradients (4 bytes per parameter)
  optimizer   AdamW's two fp32 moments (8 bytes per parameter); Muon keeps one momentum buffer for
              its matrices, so under the profiles' Muon this part is an upper bound (by 4 bytes
              per matrix weight: 86 MiB for default, 350 MiB for moe)
  activations what autograd keeps for the backward pass of one micro-batch: per token and block
              the residual stream and RMSNorm outputs (fp32), the q/k/v projections, RoPE
              operands, attention inputs and output, and the four SwiGLU tensors (in the autocast
              dtype, fp32 without autocast); then the logits, their log-softmax and, at the start
              of the backward pass, the gradients of both
  runtime     (CPU) what the process holds before the model exists: Python, torch and its
              libraries, plus ``CPU_WORKSPACE_MIB`` that the CPU kernels (oneDNN, BLAS, attention)
              take at their first use (measured: benchmarks/memory.py), so the total compares with
              the process's peak RSS

Available memory is free RAM (``psutil``) on a CPU and free device memory on a GPU. A run fits when
what it still has to allocate stays below ``1 - SAFETY_MARGIN`` of that. Tests pretend another
amount is available with ``MINIMIND_AVAILABLE_MEMORY_MIB`` (never set in normal use).

``batch_size: auto`` picks the largest micro-batch that fits (the estimate on a CPU, real
forward/backward steps on a GPU) and sets the accumulation so the samples per optimizer step stay
``train.samples_per_step``: exactly when a divisor of it fits, else as close as it can, and says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from minimind.errors import MemoryTooSmall

if TYPE_CHECKING:
    import torch

    from minimind.config import Config, ModelConfig

SAFETY_MARGIN = 0.10  # the fraction of available memory a run leaves free
AVAILABLE_ENV = "MINIMIND_AVAILABLE_MEMORY_MIB"
MIB = 2**20
MAX_AUTO_BATCH = 4096
CPU_WORKSPACE_MIB = 100.0


@dataclass(frozen=True)
class MemoryEstimate:
    batch_size: int
    params_mib: float
    grads_mib: float
    optimizer_mib: float
    activations_mib: float  # one micro-batch
    runtime_mib: float
    available_mib: float | None  # what the run may still allocate (None: unknown)
    device_total_mib: float | None
    safety_margin: float = SAFETY_MARGIN

    @property
    def needed_mib(self) -> float:
        """What the run still has to allocate (everything but the runtime already resident)."""
        return self.params_mib + self.grads_mib + self.optimizer_mib + self.activations_mib

    @property
    def total_mib(self) -> float:
        return self.runtime_mib + self.needed_mib

    @property
    def budget_mib(self) -> float | None:
        return None if self.available_mib is None else self.available_mib * (1 - self.safety_margin)

    @property
    def fits(self) -> bool:
        return self.budget_mib is None or self.needed_mib <= self.budget_mib

    def to_event(self) -> dict[str, Any]:
        """``run_started.memory_estimate``."""
        return {"batch_size": self.batch_size, "params_mib": self.params_mib, "grads_mib": self.grads_mib,
                "optimizer_mib": self.optimizer_mib, "activations_mib": self.activations_mib,
                "runtime_mib": self.runtime_mib, "total_mib": self.total_mib, "available_mib": self.available_mib,
                "device_total_mib": self.device_total_mib, "safety_margin": self.safety_margin}

    def lines(self) -> list[str]:
        """What ``pretrain --dry-run`` prints."""
        out = [f"memory estimate at micro-batch {self.batch_size}:",
               f"  parameters   {self.params_mib:9.1f} MiB",
               f"  gradients    {self.grads_mib:9.1f} MiB",
               f"  optimizer    {self.optimizer_mib:9.1f} MiB (AdamW's two moments; Muon's one is less)",
               f"  activations  {self.activations_mib:9.1f} MiB (one micro-batch)"]
        if self.runtime_mib:
            out.append(f"  runtime      {self.runtime_mib:9.1f} MiB (Python, torch)")
        out.append(f"  total        {self.total_mib:9.1f} MiB")
        if self.available_mib is not None:
            verdict = "fits" if self.fits else "does NOT fit"
            out.append(f"  available    {self.available_mib:9.1f} MiB free of {self.device_total_mib or 0:.0f} MiB; "
                       f"keeping {self.safety_margin:.0%} free: {verdict}")
        return out


def parameter_count(model_cfg: ModelConfig) -> int:
    """Unique parameters of the model (the tied head once), without allocating it."""
    import torch

    from minimind.model import MiniMindLM

    with torch.device("meta"):
        return MiniMindLM(model_cfg).num_parameters()["total"]


def activation_bytes_per_token(model_cfg: ModelConfig, autocast: bool) -> float:
    """Bytes autograd holds per trained token for the backward pass (see the module docstring)."""
    m = model_cfg
    d, v, f = m.hidden_size, m.vocab_size, m.ffn_size
    kv = m.num_key_value_heads * m.head_dim
    a = 2 if autocast else 4  # bytes of a matmul output
    # residual stream and the two RMSNorms stay fp32: x, normed (and its scaled output without autocast)
    norms = 2 * (8 * d + (0 if autocast else 4 * d))
    # inputs the projections keep: under autocast each of q/k/v and gate/up casts its input once
    proj_inputs = 5 * a * d if autocast else 0
    # q and k with their RoPE operands, repeated k/v, attention output, the reshaped output
    attention = a * (2 * d + 2 * kv + d + 2 * d + d + d)
    ffn_tokens = 1
    extra = 0.0
    if m.use_moe:
        ffn_tokens = m.n_shared_experts + m.num_experts_per_tok
        extra = m.num_experts_per_tok * 2 * a * d  # gathered inputs and weighted outputs of routed pairs
    ffn = ffn_tokens * 4 * a * f + extra
    per_block = norms + proj_inputs + attention + ffn
    # final norm; logits (autocast dtype) and their fp32 log-softmax, then both gradients at once
    head = 8 * d + (a * d if autocast else 4 * d) + (a + 4) * v + 8 * v
    return m.num_hidden_layers * per_block + head


def estimate(cfg: Config, batch_size: int, *, dtype_name: str, device_type: str,
             available: tuple[float | None, float | None] = (None, None), runtime_mib: float = 0.0,
             params: int | None = None) -> MemoryEstimate:
    """The memory of a run of ``cfg`` at micro-batch ``batch_size`` (see the module docstring)."""
    n = parameter_count(cfg.model) if params is None else params
    autocast = dtype_name != "fp32"
    if device_type == "cpu" and runtime_mib:
        runtime_mib += CPU_WORKSPACE_MIB
    tokens = batch_size * cfg.data.max_seq_len
    return MemoryEstimate(
        batch_size=batch_size, params_mib=n * (6 if autocast else 4) / MIB, grads_mib=n * 4 / MIB,
        optimizer_mib=n * 8 / MIB, activations_mib=tokens * activation_bytes_per_token(cfg.model, autocast) / MIB,
        runtime_mib=runtime_mib, available_mib=available[0], device_total_mib=available[1])


def process_rss_mib() -> float:
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / MIB


def available_memory(device: torch.device | str) -> tuple[float, float]:
    """(MiB the run may still allocate, MiB the device has in all): free RAM on a CPU, free device
    memory on a GPU. ``MINIMIND_AVAILABLE_MEMORY_MIB`` replaces the first (tests)."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        available, total_mib = free / MIB, total / MIB
    else:
        import psutil

        vm = psutil.virtual_memory()
        available, total_mib = vm.available / MIB, vm.total / MIB
    fake = os.environ.get(AVAILABLE_ENV)
    if fake:
        available = float(fake)
        total_mib = max(total_mib, available)
    return available, total_mib


def device_total_mib(device: torch.device) -> float:
    """All the memory of the device (RAM on a CPU), for the ``step`` event."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory / MIB
    import psutil

    return psutil.virtual_memory().total / MIB


def largest_fitting(fits, limit: int = MAX_AUTO_BATCH) -> int:
    """The largest b in 1..limit with ``fits(b)`` (assumed monotone); 0 when not even 1 fits.
    Doubling, then bisection: about 2 log2(b) calls, each of which may be a real GPU step."""
    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    hi = min(hi, limit + 1)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


@dataclass(frozen=True)
class Split:
    """A micro-batch and the accumulation that make one optimizer step.

    Runtime state, never configuration: ``build`` decides it once (the config's request, what
    ``batch_size: auto`` found, or the split a checkpoint recorded), out-of-memory recovery replaces
    it, and the loader, the step, the events, the memory estimate and the checkpoint read it from
    ``Built.split``. ``train.batch_size`` and ``train.accumulation_steps`` keep what was asked for."""

    batch_size: int
    accumulation_steps: int
    requested: int  # samples per step and process asked for
    largest_fit: int

    @classmethod
    def fixed(cls, batch_size: int, accumulation_steps: int) -> Split:
        """A split that was asked for (or kept), not searched: the largest fit is itself."""
        return cls(batch_size, accumulation_steps, batch_size * accumulation_steps, batch_size)

    @property
    def samples_per_step(self) -> int:
        return self.batch_size * self.accumulation_steps

    def to_dict(self) -> dict[str, int]:
        return {"batch_size": self.batch_size, "accumulation_steps": self.accumulation_steps}

    @property
    def exact(self) -> bool:
        return self.samples_per_step == self.requested

    def note(self, world: int) -> str:
        per = f"micro-batch {self.batch_size} x accumulation {self.accumulation_steps}"
        if world > 1:
            per += f" x {world} processes"
        if self.exact:
            head = f"batch size auto: {per} = the requested {self.requested * world} samples per step"
        else:
            head = (f"batch size auto: {per} = {self.samples_per_step * world} samples per step, not the requested "
                    f"{self.requested * world} (no divisor of it between {self.largest_fit // 2 + 1} and "
                    f"{self.largest_fit} fits)")
        if self.batch_size < self.largest_fit:
            head += f"; up to {self.largest_fit} would fit"
        return head


def split_for(largest_fit: int, requested: int) -> Split:
    """The split for a micro-batch of at most ``largest_fit``: the largest divisor of ``requested``
    that is more than half of it (exact), else ``largest_fit`` with the nearest accumulation."""
    cap = min(largest_fit, requested)
    for b in range(cap, cap // 2, -1):
        if requested % b == 0:
            return Split(b, requested // b, requested, largest_fit)
    return Split(cap, max(1, round(requested / cap)), requested, largest_fit)


def requested_split(train_cfg) -> tuple[int, int]:
    """(micro-batch, accumulation) a config asks for; with batch_size auto the samples per step are
    known and their split is chosen at build time, so it counts as micro-batch 1."""
    if train_cfg.auto_batch:
        return 1, requested_samples(train_cfg)
    return train_cfg.batch_size, train_cfg.accumulation_steps


def requested_samples(train_cfg) -> int:
    """Samples per optimizer step and process that a run asks for."""
    if train_cfg.auto_batch:
        return train_cfg.samples_per_step or train_cfg.accumulation_steps
    return train_cfg.batch_size * train_cfg.accumulation_steps


def knobs(cfg: Config) -> str:
    return (f"lower data.max_seq_len (now {cfg.data.max_seq_len}), use a smaller model (model.hidden_size "
            f"{cfg.model.hidden_size}, model.num_hidden_layers {cfg.model.num_hidden_layers}), or spread it "
            f"over more processes with --nproc")


def check_fits(cfg: Config, dtype_name: str, device: torch.device, runtime_mib: float = 0.0,
               refuse_too_large_batch: bool = True) -> MemoryEstimate:
    """The estimate of the configured micro-batch (1 with auto); raises ``MemoryTooSmall`` (one line,
    with a split that fits below the safety margin) when it clearly does not fit, i.e. needs more than
    all the available memory: not even at micro-batch 1, or (``refuse_too_large_batch``: a CPU, where
    out-of-memory is not reliably recoverable) at the configured one. On a GPU the trainer halves a
    micro-batch that runs out of memory instead."""
    available = available_memory(device)
    params = parameter_count(cfg.model)

    def at(n: int) -> MemoryEstimate:
        return estimate(cfg, n, dtype_name=dtype_name, device_type=device.type, available=available,
                        runtime_mib=runtime_mib, params=params)

    b = 1 if cfg.train.auto_batch else cfg.train.batch_size
    est = at(b)
    if est.needed_mib <= available[0]:
        return est
    where = f"the {available[0]:,.0f} MiB of " + ("free device memory" if device.type == "cuda" else "available RAM")
    one = at(1)
    if one.needed_mib > available[0]:
        model_mib = one.params_mib + one.grads_mib + one.optimizer_mib
        hint = knobs(cfg)
        if model_mib > available[0]:  # every process holds the whole model: more processes cannot help
            hint = (f"the weights, gradients and optimizer state alone need {model_mib:,.0f} MiB in every process, "
                    f"so --nproc would not help; {smaller_model_that_fits(cfg, dtype_name, device.type, available)}")
        raise MemoryTooSmall(f"this run needs about {one.needed_mib:,.0f} MiB more even at micro-batch 1 ({dtype_name}; "
                             f"{one.total_mib:,.0f} MiB with Python and torch), more than {where}", hint)
    if not refuse_too_large_batch:
        return est
    split = split_for(max(1, largest_fitting(lambda n: at(n).fits, b)), requested_samples(cfg.train))
    same = "the same" if split.exact else "about the same"
    raise MemoryTooSmall(
        f"micro-batch {b} needs about {est.needed_mib:,.0f} MiB more ({dtype_name}; {est.total_mib:,.0f} MiB with "
        f"Python and torch, as --dry-run shows), more than {where}",
        f"use --batch-size {split.batch_size} --accumulation-steps {split.accumulation_steps} ({same} samples per "
        f"step, {SAFETY_MARGIN:.0%} of memory kept free), or --batch-size auto")


def smaller_model_that_fits(cfg: Config, dtype_name: str, device_type: str,
                            available: tuple[float | None, float | None]) -> str:
    """What would fit at micro-batch 1: the widest model of this depth, the deepest of this width."""
    import dataclasses
    import math

    def fits(**change) -> bool:
        smaller = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, intermediate_size=None, **change))
        return estimate(smaller, 1, dtype_name=dtype_name, device_type=device_type, available=available).fits

    m = cfg.model
    step = math.lcm(64, m.num_attention_heads)  # widths that keep the heads whole
    widest = largest_fitting(lambda k: fits(hidden_size=k * step), m.hidden_size // step) * step
    deepest = largest_fitting(lambda n: fits(num_hidden_layers=n), m.num_hidden_layers)
    options = [f"model.hidden_size {widest} (at {m.num_hidden_layers} layers)"] if widest else []
    options += [f"model.num_hidden_layers {deepest} (at width {m.hidden_size})"] if deepest else []
    if not options:
        return "use a much smaller model (not even one layer of the smallest width fits)"
    return "what fits: " + " or ".join(options)


def choose_split(cfg: Config, model: torch.nn.Module, dtype_name: str, device: torch.device, dist,
                 runtime_mib: float = 0.0) -> Split:
    """``batch_size: auto``: the largest micro-batch that fits (real forward/backward steps on a GPU,
    the estimate on a CPU; the smallest over all ranks), split to keep the samples per step."""
    import torch

    from minimind import distributed as dist_utils

    requested = requested_samples(cfg.train)
    if device.type == "cuda":
        fit = probe_cuda(cfg, model, dtype_name, device, requested)
    else:
        available, params = available_memory(device), parameter_count(cfg.model)
        fit = largest_fitting(lambda b: estimate(cfg, b, dtype_name=dtype_name, device_type=device.type,
                                                 available=available, runtime_mib=runtime_mib, params=params).fits,
                              requested)
    if dist.enabled:
        fit = -int(dist_utils.all_reduce_max(torch.tensor([-fit], dtype=torch.int64), dist)[0])
    if fit == 0:
        raise MemoryTooSmall(f"batch size auto: not even micro-batch 1 fits on {device} ({dtype_name})", knobs(cfg))
    return split_for(fit, requested)


def out_of_memory_error() -> type[Exception]:
    """torch's out-of-memory error class (``torch.cuda.OutOfMemoryError`` on a torch that has no
    ``torch.OutOfMemoryError``)."""
    import torch

    return getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


def is_out_of_memory(exc: BaseException) -> bool:
    """A CUDA or CPU allocation failure as torch reports it (CPU: a RuntimeError from the allocator)."""
    if isinstance(exc, (out_of_memory_error(), MemoryError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "not enough memory" in text
                                              or "out of memory" in text.lower())


def probe_cuda(cfg: Config, model: torch.nn.Module, dtype_name: str, device: torch.device, limit: int) -> int:
    """The largest micro-batch (up to ``limit``) whose real forward and backward pass, plus AdamW's
    moments, peak below ``1 - SAFETY_MARGIN`` of the memory this process may use. Random tokens;
    the RNG streams, gradients and routing counters (expert loads, bias loads) are left as they were."""
    import torch


    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(dtype_name)
    params = sum(p.numel() for p in model.parameters())
    available, _ = available_memory(device)
    budget = torch.cuda.memory_allocated(device) / MIB + available * (1 - SAFETY_MARGIN) - params * 8 / MIB
    rng = torch.cuda.get_rng_state(device)
    generator = torch.Generator(device=device).manual_seed(0)
    T, vocab = cfg.data.max_seq_len, cfg.model.vocab_size

    def fits(b: int) -> bool:
        ok, x, out = False, None, None
        try:
            torch.cuda.reset_peak_memory_stats(device)
            x = torch.randint(0, vocab, (b, T), device=device, generator=generator)
            with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
                out = model(x, targets=x)
            (out.loss + out.aux_loss).backward()
            ok = torch.cuda.max_memory_allocated(device) / MIB <= budget
        except Exception as exc:  # noqa: BLE001 - only out-of-memory means "does not fit"
            if not is_out_of_memory(exc):
                raise
        x = out = None  # noqa: F841 - drop the probe's tensors before emptying the cache
        model.zero_grad(set_to_none=True)
        torch.cuda.empty_cache()
        return ok

    model.train()
    try:
        return largest_fitting(fits, limit)
    finally:
        torch.cuda.set_rng_state(rng, device)
        if hasattr(model, "forget_routing"):
            model.forget_routing()
