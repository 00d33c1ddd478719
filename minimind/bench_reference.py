"""Measured training speeds of known devices, for ``minimind bench`` to compare against.

Every row comes from ``benchmarks/RESULTS.md`` (its ``source`` names the section and the line).
A row matches a bench result when the device name matches ``device`` (a regular expression), and
the profile, dtype, compile, optimizer, micro-batch, window and parameter count are the same; a CPU row also
needs the same number of torch threads and the same native-bf16 support. Pure data: no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PARAMS = 25_829_888  # the default profile's model with the 6,400-token vocabulary
MOE_PARAMS = 95_052_288


@dataclass(frozen=True)
class Reference:
    device: str  # regular expression matched against the device name
    label: str  # the device in words
    profile: str
    dtype: str
    compile: bool
    batch_size: int  # micro-batch rows
    seq_len: int
    params: int
    tokens_per_s: float  # trained tokens per second
    source: str  # where in benchmarks/RESULTS.md
    threads: int | None = None  # CPU: torch threads
    native_bf16: bool | None = None  # CPU: AVX512-BF16 or AMX
    note: str = ""
    optimizer: str = "adamw"  # the rows from before the profiles switched to Muon (2026-12-05) are all AdamW

    def to_dict(self) -> dict:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


H200 = "benchmarks/RESULTS.md, Training throughput > GPU (H200), the run after the trainer split (2026-11-28, torch 2.11)"
INTEL_AMX = "benchmarks/RESULTS.md, Training throughput (Intel CPU with AMX, 2 cores, idle)"
EPYC = "benchmarks/RESULTS.md, minimind bench on an idle CPU, AdamW and Muon (AMD EPYC with AVX512-BF16, 2 cores)"


def _epyc_pair(profile: str, dtype: str, compile: bool, params: int, adamw: float, muon: float) -> tuple[Reference, ...]:
    """One bench configuration on the AMD EPYC, measured back to back with each optimizer."""
    return tuple(Reference(r"AMD EPYC", "AMD EPYC with AVX512-BF16", profile, dtype, compile, 4, 512, params, tokens_per_s,
                           EPYC, threads=2, native_bf16=True, optimizer=optimizer)
                 for optimizer, tokens_per_s in (("adamw", adamw), ("muon", muon)))


REFERENCES: tuple[Reference, ...] = (
    Reference(r"\bH200\b", "NVIDIA H200", "default", "bf16", True, 32, 512, DEFAULT_PARAMS, 719_000, H200,
              note="before the fused loss and grouped-MoE work; newer code should be at least this fast"),
    Reference(r"\bH200\b", "NVIDIA H200", "default", "fp32", True, 32, 512, DEFAULT_PARAMS, 221_000, H200),
    Reference(r"\bH200\b", "NVIDIA H200", "moe", "bf16", False, 32, 512, MOE_PARAMS, 133_000, H200,
              note="the moe profile did not compile then; before grouped-MoE dispatch"),
    Reference(r"Intel", "Intel CPU with AMX", "default", "fp32", False, 4, 512, DEFAULT_PARAMS, 852, INTEL_AMX,
              threads=2, native_bf16=True),
    Reference(r"Intel", "Intel CPU with AMX", "default", "bf16", False, 4, 512, DEFAULT_PARAMS, 1_372, INTEL_AMX,
              threads=2, native_bf16=True),
    Reference(r"Intel", "Intel CPU with AMX", "default", "bf16", True, 4, 512, DEFAULT_PARAMS, 1_703, INTEL_AMX,
              threads=2, native_bf16=True),
    *_epyc_pair("default", "bf16", True, DEFAULT_PARAMS, adamw=2_820, muon=1_887),
    *_epyc_pair("default", "fp32", False, DEFAULT_PARAMS, adamw=1_064, muon=887),
    *_epyc_pair("moe", "bf16", True, MOE_PARAMS, adamw=1_051, muon=623),
    *_epyc_pair("moe", "fp32", False, MOE_PARAMS, adamw=338, muon=280),
)
