"""Everything a training step needs, built once: device and dtype, data, model, DDP wrapper,
compiled forward, optimizer and loss scaler, returned as one ``Built`` value.

``build`` does not start the loop and writes nothing, so benchmarks and tests use it directly.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from minimind import distributed as dist_utils
from minimind.config import Config, ConfigError
from minimind.data.dataset import BatchLoader, PretrainDataset, optimizer_steps
from minimind.model import MiniMindLM
from minimind.scoring import autocast
from minimind.training import memory, policy
from minimind.training.callbacks import NO_CALLBACKS, Callbacks
from minimind.training.curriculum import Curriculum
from minimind.training.optim import make_optimizer
from minimind.training.state import seed_everything

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={requested} but no CUDA device is available", "use cpu or auto")
        if requested == "cuda":
            return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(requested)


def cpu_supports_bf16() -> bool:
    """Whether bf16 matmuls run natively (AVX512-BF16 or AMX) on this CPU. Without them oneDNN
    emulates bf16 and runs matmuls 3-5x slower than fp32 (measured on an AVX512 Xeon without
    either), so ``auto`` must not pick bf16 there."""
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    if amx is not None and avx512_bf16 is not None:
        return bool(amx() or avx512_bf16())
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def pick_dtype(requested: str, device: torch.device) -> tuple[str, str]:
    """(dtype name, why): ``auto`` picks the fastest precision this device supports."""
    if requested != "auto":
        return requested, "requested"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: CUDA device supports bf16"
        return "fp16", "auto: CUDA device without bf16 (fp16 with loss scaling)"
    if cpu_supports_bf16():
        return "bf16", "auto: this CPU has native bf16 (AVX512-BF16/AMX), bf16 autocast"
    return "fp32", "auto: this CPU has no native bf16"


@dataclass
class Built:
    cfg: Config
    dist: dist_utils.DistInfo
    device: torch.device
    dtype_name: str
    dtype_reason: str
    train_data: PretrainDataset
    val_data: PretrainDataset
    loader: BatchLoader
    total_steps: int
    model: MiniMindLM  # the plain module: state dicts, expert counts, evaluation
    ddp_model: torch.nn.Module  # the module that owns gradient sync (``no_sync``); the model itself without DDP
    forward_model: torch.nn.Module  # what the training step calls (compiled when train.compile)
    optimizer: torch.optim.Optimizer  # or MuonWithAdamW (train.optimizer=muon), which behaves like one
    scaler: torch.amp.GradScaler
    params: dict[str, int]
    flops_per_token: float
    init_note: str | None = None
    split: memory.Split | None = None  # the micro-batch split in force (see memory.Split); set by build
    memory_estimate: memory.MemoryEstimate | None = None  # at the micro-batch the run starts with
    auto_split: memory.Split | None = None  # what batch_size auto chose
    curriculum: Curriculum | None = None  # data.seq_len_schedule placed on this run's steps
    callbacks: Callbacks = NO_CALLBACKS  # training/callbacks.py: the entry point registers fault injection here

    @property
    def amp_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype_name]

    def autocast(self):
        return autocast(self.device, self.amp_dtype)

    @property
    def tokens_per_step(self) -> int:
        return self.split.samples_per_step * self.dist.world_size * self.cfg.data.max_seq_len

    def resplit(self, split: memory.Split, position: dict) -> None:
        """Use ``split`` from now on, serving the samples from ``position`` (a loader state taken at the
        start of an optimizer step) again: the same samples per step, cut differently."""
        self.split = split
        self.loader.resplit(split.batch_size, split.accumulation_steps, position)

    def seq_len_at(self, step: int) -> int:
        """The window length of the optimizer step after ``step`` steps (max_seq_len without a curriculum)."""
        return self.curriculum.seq_len_at(step) if self.curriculum else self.cfg.data.max_seq_len

    def flops_per_token_at(self, seq_len: int) -> float:
        return self.flops_per_token if seq_len == self.cfg.data.max_seq_len else self.model.flops_per_token(seq_len)

    def device_names(self) -> list[str]:
        if self.device.type == "cuda":
            return [torch.cuda.get_device_name(self.device)]
        return [platform.processor() or platform.machine() or "cpu"]


def build(cfg: Config, dist: dist_utils.DistInfo | None = None, init_from: Path | None = None,
          split: memory.Split | None = None) -> Built:
    """Build the run described by ``cfg`` (a validated config, never modified) in this process.
    ``split``: the micro-batch split to keep (a resumed checkpoint's); else the config's, or what
    ``batch_size: auto`` finds."""
    dist = dist or dist_utils.DistInfo()
    t = cfg.train
    device = pick_device(t.device, dist.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dtype_name, dtype_reason = pick_dtype(t.dtype, device)
    dist_utils.init(dist, device)

    policy.check_dataset_fits(cfg, dist.world_size)
    runtime = memory.process_rss_mib() if device.type == "cpu" else 0.0  # before the model exists
    estimate = memory.check_fits(cfg, dtype_name, device, runtime, refuse_too_large_batch=device.type == "cpu")
    seed_everything(t.seed)
    model = MiniMindLM(cfg.model)
    init_note = load_init_weights(model, init_from) if init_from is not None else None
    model.to(device)
    auto_split = None
    if split is None and t.auto_batch:
        split = auto_split = memory.choose_split(cfg, model, dtype_name, device, dist, runtime)
    elif split is None:
        split = memory.Split.fixed(t.batch_size, t.accumulation_steps)
    if split.batch_size != (1 if t.auto_batch else t.batch_size):
        estimate = memory.estimate(cfg, split.batch_size, dtype_name=dtype_name, device_type=device.type,
                                   available=memory.available_memory(device), runtime_mib=runtime)
    optimizer = make_optimizer(model, cfg)
    train_data = PretrainDataset(cfg.data.path, cfg.data.max_seq_len, cfg.data.packing, "train", cfg.data.doc_mask)
    val_data = PretrainDataset(cfg.data.path, cfg.data.max_seq_len, cfg.data.packing, "val", cfg.data.doc_mask)
    loader = BatchLoader(train_data, split.batch_size, t.seed, dist.rank, dist.world_size, split.accumulation_steps)
    total_steps = optimizer_steps(loader.batches_per_epoch, t.epochs, split.accumulation_steps, t.max_steps)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype_name == "fp16")
    ddp_model: torch.nn.Module = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                        find_unused_parameters=cfg.model.use_moe, broadcast_buffers=False)
        # No buffer needs rank 0's copy: RoPE tables are constants, expert counters are per rank
        # (summed by all-reduce), and the router bias moves by all-reduced loads, alike everywhere.
    forward_model = ddp_model
    if t.compile:
        # Compiles lazily at the first step; the wrapped module keeps its parameters and keys.
        # Where compilation is impossible (no C++ compiler, unsupported platform) the model
        # runs eagerly instead of failing the run.
        import torch._dynamo as dynamo

        dynamo.config.suppress_errors = True
        forward_model = torch.compile(ddp_model)
    return Built(cfg=cfg, dist=dist, device=device, dtype_name=dtype_name, dtype_reason=dtype_reason,
                 train_data=train_data, val_data=val_data, loader=loader, total_steps=total_steps, model=model,
                 ddp_model=ddp_model, forward_model=forward_model, optimizer=optimizer, scaler=scaler,
                 params=model.num_parameters(), flops_per_token=model.flops_per_token(cfg.data.max_seq_len),
                 init_note=init_note, split=split, memory_estimate=estimate, auto_split=auto_split,
                 curriculum=Curriculum.plan(cfg.data.seq_len_schedule, total_steps))


def load_init_weights(model: MiniMindLM, path: Path) -> str:
    """Copy the weights of any checkpoint ``inspect`` reads into ``model``; returns a note."""
    loaded = policy.check_init_from(model.config, path)
    model.load_state_dict(loaded.state_dict, strict=False)  # the tied head may be absent: it is the embedding
    return f"initialised weights from {path} ({loaded.layout} layout)"
