"""`minimind bench`: real steps timed by phase, the projections, and the comparison with references."""

from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from minimind.bench import PHASES, BenchResult, PhaseTimes, bench_batch_size, compare, run_bench
from minimind.bench_reference import Reference
from minimind.training.build import build
from minimind.training.state import TrainState
from minimind.training.step import train_step
from tests.conftest import run_cli
from tests.training.conftest import SMALL


def test_train_step_reports_its_phases_and_they_add_up_to_the_step(make_config):
    import torch

    built = build(make_config())
    clock = PhaseTimes(torch.device("cpu"))
    result = train_step(built, TrainState(), phases=clock)
    assert set(clock.totals) == set(PHASES) and all(v >= 0 for v in clock.totals.values())
    assert clock.totals["forward_backward"] > 0 and clock.totals["optimizer"] > 0
    assert sum(clock.totals.values()) == pytest.approx(result.seconds, rel=0.1, abs=5e-3)


def test_run_bench_times_real_steps_and_its_table_shows_the_json_numbers(make_config):
    result = run_bench(make_config(), steps=2, warmup=1, data="test data")
    assert result.steps == 2 and len(result.losses) == 2 and result.tokens_per_step == 4 * 32
    assert result.batch_size == 4 and result.run_accumulation_steps == 2 and result.run_tokens_per_step == 4 * 2 * 32
    assert result.tokens_per_s > 0 and 0 < result.mfu < 1 and result.peak_memory_mib > 0
    assert result.compile_s is None  # compile off
    assert result.run_steps == 16 and result.run_s > 0 and result.epoch_steps > 0
    assert result.verdict.startswith("no reference")  # a test model is nobody's reference
    data = json.loads(json.dumps(result.to_dict()))
    table = "\n".join(result.lines())
    assert f"{data['tokens_per_s']:,.0f} trained tokens/s" in table
    assert f"{data['mfu']:.1%}" in table and data["peak_flops_source"] in table
    assert f"{data['peak_memory_mib']:,.0f} MiB" in table and data["verdict"] in table
    for phase in PHASES:
        assert f"{data['phases_s'][phase]:.3f} s" in table


def _result(**kw) -> BenchResult:
    base = dict(profile="default", device="cpu", device_name="AMD EPYC 9999", threads=2, native_bf16=True, dtype="bf16",
                dtype_reason="auto", compile=True, optimizer="adamw", params_total=100, params_active=100, batch_size=4, seq_len=512,
                max_seq_len=512, warmup=2, steps=8, steps_requested=8, tokens_per_step=2048, tokens_per_s=1000.0, step_s=2.0,
                first_step_s=40.0, compile_s=38.0, phases_s=dict.fromkeys(PHASES, 0.5), mfu=0.1, peak_flops=1e12,
                peak_flops_source="measured", peak_memory_mib=1000.0, peak_memory_kind="rss", run_batch_size=32,
                run_accumulation_steps=4, run_tokens_per_step=65536, run_step_s=40.0, epoch_steps=10,
                epoch_s=400.0, run_steps=10, run_s=400.0, data="d")
    return BenchResult(**{**base, **kw})


REF = Reference(r"EPYC", "AMD EPYC", "default", "bf16", True, 4, 512, 100, 1000.0, "RESULTS.md line", threads=2,
                native_bf16=True)


@pytest.mark.parametrize(("tokens_per_s", "start"), [(1000.0, "in line: 1.00x"), (600.0, "SLOWER than expected: 0.60x"),
                                                     (1600.0, "faster than the reference: 1.60x")])
def test_the_verdict_compares_with_a_matching_reference(tokens_per_s, start):
    r = _result(tokens_per_s=tokens_per_s)
    compare(r, (REF,))
    assert r.verdict.startswith(start) and "RESULTS.md line" in r.verdict and r.reference["tokens_per_s"] == 1000.0


def test_no_reference_says_whether_the_device_or_the_configuration_is_unknown():
    other = _result(device_name="Some ARM chip")
    compare(other, (REF,))
    assert other.verdict.startswith("no reference for this device (Some ARM chip)") and "AMD EPYC" in other.verdict
    for changed in (dict(dtype="fp32"), dict(compile=False), dict(batch_size=8), dict(threads=4), dict(params_total=7),
                    dict(native_bf16=False), dict(profile="moe"), dict(optimizer="muon")):
        r = _result(**changed)
        compare(r, (REF,))
        assert r.verdict.startswith("no reference for this configuration on this device"), changed
        assert r.reference is None and r.ratio is None


def test_a_cpu_bench_step_is_at_most_2048_tokens_unless_asked(make_config):
    cfg = make_config("data.max_seq_len=512", "train.batch_size=32", "model.max_position_embeddings=512")
    assert bench_batch_size(cfg, "cpu", None) == 4
    assert bench_batch_size(cfg, "cuda", None) == 32
    assert bench_batch_size(cfg, "cpu", 32) == 32
    assert bench_batch_size(replace(cfg, train=replace(cfg.train, batch_size=2)), "cpu", None) == 2


ARGS = ["--profile", "tiny", "--steps", "2", "--warmup", "1",
        *[a for s in SMALL if not s.startswith("model.vocab_size") for a in ("--set", s)]]  # the corpus's vocabulary


@pytest.mark.slow  # three CLI processes, each building and stepping a model
def test_the_bench_command_prints_the_table_or_json_and_writes_nothing(tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = set(Path(tempfile.gettempdir()).glob("minimind-bench-*"))
    # no --data and no out/data: the built-in sample corpus, prepared in a temporary directory
    table = run_cli("bench", *ARGS, cwd=cwd)
    assert table.returncode == 0, table.stderr
    for label in ("tokens/s", "MFU", "step time", "waiting for data", "forward + backward", "synchronisation",
                  "optimizer", "compile", "peak memory", "one epoch", "this run", "in line?"):
        assert label in table.stdout
    assert "built-in sample corpus" in table.stdout and "removed afterwards" in table.stdout
    out = run_cli("bench", *ARGS, "--json", cwd=cwd)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["steps"] == 2 and data["tokens_per_s"] > 0 and set(data["phases_s"]) == set(PHASES)
    assert data["verdict"] and data["epoch_s"] > 0 and data["run_steps"] == 16
    assert list(cwd.iterdir()) == []  # no out/, no run directory
    assert set(Path(tempfile.gettempdir()).glob("minimind-bench-*")) == before
    bad = run_cli("bench", "--profile", "nope", cwd=cwd)
    assert bad.returncode == 2 and "error:" in bad.stderr and "Traceback" not in bad.stderr
    little = run_cli("bench", *ARGS, "--set", "train.batch_size=100000", cwd=cwd)
    assert little.returncode == 2 and "make no optimizer step" in little.stderr and "Traceback" not in little.stderr
