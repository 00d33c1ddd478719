"""The MFU denominator: vendor peaks for known GPUs by name, a measured matmul elsewhere."""

import pytest
import torch

from minimind.peaks import peak_flops, table_peak


@pytest.mark.parametrize("name, dtype, tf32, expected", [
    ("NVIDIA H200", "bf16", False, (989.4e12, "table: NVIDIA H200 bf16")),
    ("NVIDIA H100 80GB HBM3", "bf16", False, (989.4e12, "table: NVIDIA H100 SXM bf16")),
    ("NVIDIA H100 PCIe", "fp16", False, (756.5e12, "table: NVIDIA H100 PCIe fp16")),
    ("NVIDIA A100-SXM4-80GB", "fp32", False, (19.5e12, "table: NVIDIA A100 fp32")),
    ("NVIDIA A100 80GB PCIe", "fp32", True, (156e12, "table: NVIDIA A100 tf32")),
    ("NVIDIA L4", "bf16", False, (121e12, "table: NVIDIA L4 bf16")),
    ("NVIDIA L40S", "bf16", False, (362.1e12, "table: NVIDIA L40S bf16")),
    ("NVIDIA GeForce RTX 4090", "bf16", False, (165.2e12, "table: NVIDIA GeForce RTX 4090 bf16")),
    ("NVIDIA GeForce RTX 3090", "fp32", False, (35.6e12, "table: NVIDIA GeForce RTX 3090 fp32")),
    ("Tesla T4", "bf16", False, None),  # no native bf16: measured instead
    ("Some Future GPU", "bf16", False, None),
])
def test_known_gpus_come_from_the_table(name, dtype, tf32, expected):
    found = table_peak(name, dtype, tf32)
    assert found == (pytest.approx(expected[0]), expected[1]) if expected else found is None


def test_a_cpu_gets_a_measured_peak_and_says_so():
    flops, source = peak_flops(torch.device("cpu"), "fp32")
    assert 1e8 < flops < 1e14
    assert source.startswith("measured matmul: fp32 1024x1024")
