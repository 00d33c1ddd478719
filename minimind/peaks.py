"""The MFU denominator: the dense peak FLOP/s of one device in the training dtype.

Known GPUs come from a table of vendor dense (no sparsity) tensor-core peaks, so MFU is stable
from run to run; CPUs and GPUs not in the table fall back to a matmul measured at start-up
(best of several short windows, which is far less noisy than one average on a shared machine).
``peak_flops(device, dtype_name)`` returns (FLOP/s, source), and the source goes into
``run_started`` as ``peak_flops_source``: ``"table: NVIDIA H200 bf16"`` or
``"measured matmul: fp32 1024x1024, best of 8 windows"``.

torch is imported inside the functions, like ``metrics``.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

T = 1e12
# (pattern matched against torch.cuda.get_device_name, label, {dtype: dense TFLOP/s}).
# "tf32" is the fp32 peak when torch lets fp32 matmuls use TF32 tensor cores
# (torch.backends.cuda.matmul.allow_tf32); plain "fp32" otherwise. fp16 = bf16 where both exist
# (fp32 accumulation, as torch uses). More specific names come first.
GPU_PEAKS: tuple[tuple[str, str, dict[str, float]], ...] = (
    (r"\bB200\b", "NVIDIA B200", {"bf16": 2250, "fp16": 2250, "tf32": 1100}),
    (r"\bH200\b", "NVIDIA H200", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    (r"\bH100\b.*\bPCIe\b", "NVIDIA H100 PCIe", {"bf16": 756.5, "fp16": 756.5, "tf32": 378, "fp32": 51.2}),
    (r"\bH100\b.*\bNVL\b", "NVIDIA H100 NVL", {"bf16": 835.5, "fp16": 835.5, "tf32": 417.5, "fp32": 60}),
    (r"\bH100\b", "NVIDIA H100 SXM", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    (r"\bH800\b", "NVIDIA H800", {"bf16": 989.4, "fp16": 989.4, "tf32": 494.7, "fp32": 66.9}),
    (r"\bA100\b", "NVIDIA A100", {"bf16": 312, "fp16": 312, "tf32": 156, "fp32": 19.5}),
    (r"\bA800\b", "NVIDIA A800", {"bf16": 312, "fp16": 312, "tf32": 156, "fp32": 19.5}),
    (r"\bL40S\b", "NVIDIA L40S", {"bf16": 362.1, "fp16": 362.1, "tf32": 183.2, "fp32": 91.6}),
    (r"\bL40\b", "NVIDIA L40", {"bf16": 181.05, "fp16": 181.05, "tf32": 90.5, "fp32": 90.5}),
    (r"\bL4\b", "NVIDIA L4", {"bf16": 121, "fp16": 121, "tf32": 60, "fp32": 30.3}),
    (r"\bA10\b", "NVIDIA A10", {"bf16": 125, "fp16": 125, "tf32": 62.5, "fp32": 31.2}),
    (r"RTX 6000 Ada", "NVIDIA RTX 6000 Ada", {"bf16": 364.2, "fp16": 364.2, "tf32": 182.1, "fp32": 91.1}),
    (r"RTX A6000", "NVIDIA RTX A6000", {"bf16": 154.8, "fp16": 154.8, "tf32": 77.4, "fp32": 38.7}),
    (r"RTX 4090", "NVIDIA GeForce RTX 4090", {"bf16": 165.2, "fp16": 165.2, "tf32": 82.6, "fp32": 82.6}),
    (r"RTX 4080", "NVIDIA GeForce RTX 4080", {"bf16": 97.5, "fp16": 97.5, "tf32": 48.7, "fp32": 48.7}),
    (r"RTX 3090", "NVIDIA GeForce RTX 3090", {"bf16": 71, "fp16": 71, "tf32": 35.6, "fp32": 35.6}),
    (r"\bV100\b", "NVIDIA V100", {"fp16": 125, "fp32": 15.7}),
    (r"\bT4\b", "NVIDIA T4", {"fp16": 65, "fp32": 8.1}),
    (r"\bMI300X\b", "AMD Instinct MI300X", {"bf16": 1307.4, "fp16": 1307.4, "tf32": 653.7, "fp32": 163.4}),
)


def table_peak(device_name: str, dtype_name: str, tf32: bool = False) -> tuple[float, str] | None:
    """(FLOP/s, source) from the table, or None for a device or dtype it does not know."""
    key = "tf32" if dtype_name == "fp32" and tf32 else dtype_name
    for pattern, label, peaks in GPU_PEAKS:
        if re.search(pattern, device_name):
            if key in peaks:
                return peaks[key] * T, f"table: {label} {key}"
            return None
    return None


def peak_flops(device: torch.device, dtype_name: str) -> tuple[float, str]:
    """The MFU denominator for one device: the table for known GPUs, else a measured matmul."""
    import torch

    if device.type == "cuda":
        tf32 = bool(torch.backends.cuda.matmul.allow_tf32)
        found = table_peak(torch.cuda.get_device_name(device), dtype_name, tf32)
        if found is not None:
            return found
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype_name]
    return measure_matmul_peak(device, dtype)


def measure_matmul_peak(device: torch.device, dtype: torch.dtype, seconds: float = 0.4,
                        windows: int = 8) -> tuple[float, str]:
    """FLOP/s of a square matmul on this device and dtype: the best of ``windows`` short timings
    (other processes on a shared machine only ever make a window slower)."""
    import torch

    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    best = 0.0
    for _ in range(windows):
        iters, start = 0, time.perf_counter()
        while True:
            a @ b
            iters += 1
            _sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / windows:
                break
        best = max(best, 2 * n**3 * iters / elapsed)
    name = str(dtype).removeprefix("torch.").replace("bfloat16", "bf16").replace("float", "fp")
    return best, f"measured matmul: {name} {n}x{n}, best of {windows} windows"


def _sync(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
