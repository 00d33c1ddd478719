"""Never die of memory, with real trainer processes: an out-of-memory error re-splits the step and a
resume keeps the split; at micro-batch 1 the run fails cleanly; batch_size auto and the memory check."""

from __future__ import annotations

from minimind.checkpoint import find_checkpoint, find_verified
from minimind.config import resolve
from minimind.events import read_events
from minimind.training.memory import SAFETY_MARGIN, estimate
from tests.e2e.conftest import (
    EXACT_OPTIMIZER,
    SMALL,
    kill,
    last_step,
    losses_by_step,
    make_run,
    run_to_end,
    start,
    trainer_env,
    wait_for,
)


def test_an_oom_split_trains_what_that_split_trains_from_the_start_and_resume_keeps_it(tmp_path, small_dataset):
    reference = make_run(tmp_path, small_dataset, "ref", ["train.max_steps=10", "train.batch_size=2",
                                                          "train.accumulation_steps=4", EXACT_OPTIMIZER])
    code, _, err = run_to_end(reference)
    assert code == 0, err
    # micro-step 3 is the first of step 2 (4 x 2): out of memory there, the step reruns as 2 x 4
    run_dir = make_run(tmp_path, small_dataset, "oom", ["train.max_steps=10", EXACT_OPTIMIZER])
    proc = start(run_dir, env=trainer_env(MINIMIND_FAULT_OOM_MICRO_STEPS="3", MINIMIND_FAULT_STEP_SLEEP="0.3"))
    wait_for(lambda: last_step(run_dir) >= 6)
    kill(proc)
    saved = find_checkpoint(run_dir)
    assert saved.step == 5 and saved.meta["split"] == {"batch_size": 2, "accumulation_steps": 4}
    code, _, err = run_to_end(run_dir, "--resume-from", str(run_dir))  # config.yaml still says 4 x 2
    assert code == 0, err

    events = read_events(run_dir / "events.jsonl")
    retries = [e for e in events if e["type"] == "warning" and e.get("kind") == "oom_retry"]
    assert [(e["step"], e["batch_size"], e["accumulation_steps"]) for e in retries] == [(2, 2, 4)]
    starts = [e for e in events if e["type"] == "run_started"]
    assert [(e["batch_size"], e["accumulation_steps"]) for e in starts] == [(4, 2), (2, 4)]
    assert any(e["type"] == "info" and "keeping the checkpoint's split" in e["message"] for e in events)
    assert {e["batch_size"] for e in events if e["type"] == "step" and e["step"] >= 2} == {2}
    got, expected = losses_by_step(run_dir), losses_by_step(reference)
    assert sorted(got) == list(range(1, 11))
    assert max(abs(got[s][0] - expected[s][0]) for s in got) < 1e-6


def test_out_of_memory_at_micro_batch_one_exits_1_and_keeps_the_last_checkpoint(tmp_path, small_dataset):
    run_dir = make_run(tmp_path, small_dataset, "oom1", ["train.batch_size=1", "train.max_steps=10"])
    # step k is micro-steps 2k-1 and 2k: step 6 and every retry of it run out of memory
    code, out, err = run_to_end(run_dir, env=trainer_env(MINIMIND_FAULT_OOM_MICRO_STEPS="11-1000"))
    assert code == 1
    assert "error: out of memory at step 6 at micro-batch 1: peak" in err and "MiB of" in err
    assert "hint: lower data.max_seq_len" in err and "--nproc" in err and "Traceback" not in err
    events = read_events(run_dir / "events.jsonl")
    assert events[-1]["type"] == "run_failed" and events[-1]["exit_code"] == 1
    assert [e["step"] for e in events if e["type"] == "checkpoint"] == [5]
    info, skipped = find_verified(run_dir)
    assert info.step == 5 and not skipped


def _needed(dataset, batch: int) -> float:
    cfg = resolve("tiny", [*SMALL, f"data.path={dataset}", "train.dtype=fp32"])
    return estimate(cfg, batch, dtype_name="fp32", device_type="cpu").needed_mib


def test_batch_size_auto_on_a_cpu_picks_the_largest_that_fits_a_fake_memory_limit(tmp_path, small_dataset, cli):
    # 8 samples per step (4 x 2); memory for 3 but not 4: auto picks 2 x 4 (a divisor of 8, exact)
    limit = (_needed(small_dataset, 3) + _needed(small_dataset, 4)) / 2 / (1 - SAFETY_MARGIN)
    sets = [a for s in SMALL if not s.startswith("train.max_steps") for a in ("--set", s)]
    result = cli("pretrain", "--profile", "tiny", "--data", str(small_dataset), "--out", str(tmp_path / "out"),
                 "--run", "auto", "--no-tui", *sets, "--batch-size", "auto", "--max-steps", "2", "--dtype", "fp32",
                 env={"MINIMIND_AVAILABLE_MEMORY_MIB": f"{limit:.3f}"})
    assert result.returncode == 0, result.stderr + result.stdout
    assert "batch size auto: micro-batch 2 x accumulation 4" in result.stdout  # the plain output says it
    dry = cli("pretrain", "--profile", "tiny", "--data", str(small_dataset), "--out", str(tmp_path / "dry"), *sets,
              "--batch-size", "auto", "--dry-run", "--dtype", "fp32", env={"MINIMIND_AVAILABLE_MEMORY_MIB": f"{limit:.3f}"})
    assert dry.returncode == 0 and "batch size auto: micro-batch 2 x accumulation 4" in dry.stdout, dry.stdout
    assert "memory estimate at micro-batch 2:" in dry.stdout
    events = read_events(tmp_path / "out" / "runs" / "auto" / "events.jsonl")
    started = events[0]
    assert started["batch_size_auto"]["chosen"] == 2 and started["batch_size_auto"]["accumulation_steps"] == 4
    assert started["batch_size_auto"]["global_batch"] == started["batch_size_auto"]["requested_global_batch"] == 8
    assert "up to 3 would fit" in started["batch_size_auto"]["note"]
    assert started["memory_estimate"]["batch_size"] == 2 and started["memory_estimate"]["safety_margin"] == 0.1
    steps = [e for e in events if e["type"] == "step"]
    assert steps and all(e["batch_size"] == 2 and e["memory"]["total_mib"] > 0 for e in steps)

    # a micro-batch that clearly does not fit is refused before anything starts, with one that fits
    refused = cli("pretrain", "--profile", "tiny", "--data", str(small_dataset), "--out", str(tmp_path / "out"),
                  "--run", "big", "--no-tui", *sets, "--batch-size", "8", "--accumulation-steps", "1",
                  "--dtype", "fp32", env={"MINIMIND_AVAILABLE_MEMORY_MIB": f"{limit:.3f}"})
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "micro-batch 8 needs about" in refused.stderr and "--batch-size 2 --accumulation-steps 4" in refused.stderr
    assert not (tmp_path / "out" / "runs" / "big").exists()

    dry = cli("pretrain", "--profile", "tiny", "--data", str(small_dataset), "--out", str(tmp_path / "dry"),
              "--dry-run", "--dtype", "fp32", *sets)
    assert dry.returncode == 0, dry.stderr
    assert "memory estimate at micro-batch 4:" in dry.stdout and "activations" in dry.stdout
    assert "fits" in dry.stdout and not (tmp_path / "dry").exists()
