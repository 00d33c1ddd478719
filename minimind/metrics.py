"""Training metrics computed once, by the trainer, as plain numbers for the ``step`` event.

torch is imported inside the functions that need it, so the CLI can format with this module
without loading torch."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class LossEMA:
    """Debiased exponential moving average of the loss (nanochat's convention)."""

    def __init__(self, beta: float = 0.9):
        self.beta = beta
        self.value = 0.0
        self.count = 0

    def update(self, loss: float) -> float:
        self.count += 1
        self.value = self.beta * self.value + (1 - self.beta) * loss
        return self.mean

    @property
    def mean(self) -> float | None:
        """The debiased average, or None before the first loss."""
        return self.value / (1 - self.beta ** self.count) if self.count else None

    def state_dict(self) -> dict:
        return {"beta": self.beta, "value": self.value, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.beta, self.value, self.count = state["beta"], state["value"], state["count"]


class StepTimer:
    """Mean optimizer-step time excluding the first ``warmup`` steps of this process, for the ETA."""

    def __init__(self, warmup: int = 3):
        self.warmup = warmup
        self.seen = 0
        self.total = 0.0
        self.counted = 0

    def add(self, seconds: float) -> None:
        self.seen += 1
        if self.seen > self.warmup:
            self.total += seconds
            self.counted += 1

    def eta(self, remaining_steps: int, last_step_s: float) -> float | None:
        if remaining_steps <= 0:
            return 0.0
        if self.counted:
            return remaining_steps * self.total / self.counted
        return remaining_steps * last_step_s if self.seen else None


def memory_snapshot(device: torch.device) -> dict:
    """CUDA allocated/reserved/peak MiB (peak reset per interval) or process RSS MiB on CPU."""
    import torch

    rss = _rss_mib()
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        gpu = {
            "device": idx,
            "allocated_mib": torch.cuda.memory_allocated(idx) / 2**20,
            "reserved_mib": torch.cuda.memory_reserved(idx) / 2**20,
            "peak_mib": torch.cuda.max_memory_allocated(idx) / 2**20,
            "total_mib": torch.cuda.get_device_properties(idx).total_memory / 2**20,
        }
        torch.cuda.reset_peak_memory_stats(idx)
        return {"gpu": [gpu], "cpu_rss_mib": rss}
    return {"cpu_rss_mib": rss}


def _rss_mib() -> float:
    try:
        import psutil

        return psutil.Process(os.getpid()).memory_info().rss / 2**20
    except Exception:  # noqa: BLE001 - memory is informative, never fatal
        return float("nan")


def expert_load(counts: list[list[float]]) -> tuple[list[list[float]], float]:
    """Per-layer per-expert token fractions, and the worst max/mean imbalance over layers."""
    load, imbalance = [], 1.0
    for layer in counts:
        total = sum(layer)
        if total <= 0:
            load.append([0.0] * len(layer))
            continue
        fractions = [c / total for c in layer]
        load.append(fractions)
        imbalance = max(imbalance, max(fractions) * len(layer))
    return load, imbalance


def format_duration(seconds: float | None) -> str:
    """The one duration format of every command and the dashboard: 'H:MM:SS' ('0:03:05',
    '12:00:00'), or 'Dd H:MM:SS' past a day; '?' when unknown."""
    if seconds is None:
        return "?"
    total = max(0, int(round(float(seconds))))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days}d {text}" if days else text


def visible_whitespace(text: str) -> str:
    """``text`` on one line with its whitespace visible: newline, tab and carriage return become
    ``\\n``, ``\\t``, ``\\r`` (a backslash is doubled so the result reads back unambiguously)."""
    return (text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
            .replace("\r", "\\r"))
