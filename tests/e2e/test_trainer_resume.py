"""Exact resume, atomic checkpoints, signals and the NaN guard, with real trainer processes."""

import signal

import pytest

from minimind.checkpoint import find_checkpoint, list_checkpoints
from minimind.events import read_events, validate_event
from tests.e2e.conftest import (
    finished_run,
    kill,
    kill_then_resume,
    last_step,
    losses_by_step,
    make_run,
    run_to_end,
    start,
    trainer_env,
    wait_for,
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, small_dataset):
    return finished_run(tmp_path_factory.mktemp("ref"), small_dataset, "ref")


def test_reference_run_writes_valid_events_and_lowers_loss(reference):
    events = read_events(reference / "events.jsonl")
    for event in events:
        validate_event(event)
    types = [e["type"] for e in events]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    started = events[0]
    assert started["total_steps"] == 16 and started["lr_schedule"][0][0] == 0 and started["dtype"] == "fp32"
    losses = losses_by_step(reference)
    assert sorted(losses) == list(range(1, 17))
    assert losses[16][0] < losses[1][0] - 0.5
    assert [c.step for c in list_checkpoints(reference)] == [5, 10, 15, 16]
    assert (reference.parent.parent / "pretrain_64.pth").is_file()


def test_sigkill_between_checkpoints_then_resume_is_bitwise_exact(tmp_path, small_dataset, reference):
    run_dir = make_run(tmp_path, small_dataset, "killed")
    kill_then_resume(run_dir, after_step=8)
    assert losses_by_step(run_dir) == losses_by_step(reference)


def test_sigkill_during_a_save_never_leaves_a_usable_half_checkpoint(tmp_path, small_dataset, reference):
    run_dir = make_run(tmp_path, small_dataset, "killed-in-save")
    proc = start(run_dir, env=trainer_env(MINIMIND_FAULT_SLOW_SAVE="1.0"))
    ckpts = run_dir / "checkpoints"
    wait_for(lambda: any(p.name.startswith(".tmp-step_00000010") for p in ckpts.glob(".tmp-*"))
             if ckpts.is_dir() else False)
    kill(proc)
    assert any(ckpts.glob(".tmp-step_00000010*"))  # the half-written one is there...
    assert find_checkpoint(run_dir).step == 5  # ...and never picked up
    code, _, err = run_to_end(run_dir, "--resume-from", str(run_dir))
    assert code == 0, err
    assert losses_by_step(run_dir) == losses_by_step(reference)
    assert not list(ckpts.glob(".tmp-*"))  # leftovers are cleaned by the next save


def test_sigint_saves_exits_zero_and_resume_continues(tmp_path, small_dataset, reference):
    run_dir = make_run(tmp_path, small_dataset, "interrupted")
    proc = start(run_dir, env=trainer_env(MINIMIND_FAULT_STEP_SLEEP="0.3"))
    wait_for(lambda: last_step(run_dir) >= 3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert f"minimind resume {run_dir}" in err
    saved = find_checkpoint(run_dir)
    assert saved.meta["reason"] == "signal" and 3 <= saved.step < 16
    code, out, err = run_to_end(run_dir, "--resume-from", str(run_dir))
    assert code == 0, err
    assert f"resumed at step {saved.step}" in out
    assert losses_by_step(run_dir) == losses_by_step(reference)
    started = [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "run_started"]
    assert started[-1]["start_step"] == saved.step and started[-1]["resumed_from"]["step"] == saved.step


def test_one_nan_step_is_skipped_with_a_warning(tmp_path, small_dataset):
    run_dir = make_run(tmp_path, small_dataset, "one-nan", ["train.max_steps=6"])
    code, _, err = run_to_end(run_dir, env=trainer_env(MINIMIND_FAULT_NAN_STEPS="3"))
    assert code == 0, err
    events = read_events(run_dir / "events.jsonl")
    warnings = [e for e in events if e["type"] == "warning"]
    assert len(warnings) == 1 and "non-finite" in warnings[0]["message"] and warnings[0]["step"] == 3
    assert events[-1]["type"] == "run_finished" and events[-1]["step"] == 6


def test_five_nan_steps_in_a_row_stop_the_run(tmp_path, small_dataset):
    run_dir = make_run(tmp_path, small_dataset, "nans", ["train.save_interval=2"])
    code, _, err = run_to_end(run_dir, env=trainer_env(MINIMIND_FAULT_NAN_STEPS="5-20"))
    assert code == 1
    assert "5 non-finite steps in a row" in err
    events = read_events(run_dir / "events.jsonl")
    assert events[-1]["type"] == "run_failed" and events[-1]["exit_code"] == 1
    assert len([e for e in events if e["type"] == "warning"]) == 5
    assert find_checkpoint(run_dir).step == 4  # the last good checkpoint is kept


def test_compiled_model_trains_like_the_eager_one(tmp_path, small_dataset, reference):
    run_dir = make_run(tmp_path, small_dataset, "compiled", ["train.compile=true", "train.max_steps=4"])
    code, _, err = run_to_end(run_dir)
    assert code == 0, err
    eager, compiled = losses_by_step(reference), losses_by_step(run_dir)
    print({s: (eager[s][0], compiled[s][0]) for s in range(1, 5)})
    # Same weights and data: the first loss agrees to float32 rounding; fused kernels then round
    # differently, so later steps drift slightly but follow the same curve.
    assert abs(compiled[1][0] - eager[1][0]) < 1e-4
    for step in range(2, 5):
        assert abs(compiled[step][0] - eager[step][0]) < 0.05


MUON_MOE = ["train.optimizer=muon", "train.muon_lr=0.02", "model.use_moe=true", "model.router_balance=both",
            "model.router_bias_coeff=0.01", "train.max_steps=10"]


def _biases_by_step(run_dir):
    return {e["step"]: e["moe"]["router_bias"] for e in read_events(run_dir / "events.jsonl") if e["type"] == "step"}


def test_muon_and_router_bias_resume_bitwise_after_sigkill(tmp_path, small_dataset):
    """Both optimizers' states and the router bias come back exactly from a checkpoint."""
    reference = finished_run(tmp_path, small_dataset, "muon-ref", MUON_MOE)
    events = read_events(reference / "events.jsonl")
    assert events[0]["optimizer"] == "muon"
    losses = losses_by_step(reference)
    assert losses[10][0] < losses[1][0] - 0.5
    biases = _biases_by_step(reference)
    assert biases[10] != biases[1] and len(biases[10]) == 2  # moving, one list per layer

    run_dir = make_run(tmp_path, small_dataset, "muon-killed", MUON_MOE)
    kill_then_resume(run_dir, after_step=7)
    assert losses_by_step(run_dir) == losses
    assert _biases_by_step(run_dir) == biases


@pytest.mark.parametrize("profile", ["minimind3", "minimind3-moe"])
def test_minimind3_sigkill_between_checkpoints_then_resume_is_bitwise_exact(tmp_path, small_dataset, profile):
    """MiniMind-3's architecture (QK-norm, head_dim set on its own, top-1 experts without a shared
    one, whole-batch aux loss) at tiny shapes, through real trainer processes."""
    extra = ["model.head_dim=24", "train.compile=false"]
    reference = finished_run(tmp_path, small_dataset, "reference", extra, profile)
    run_dir = make_run(tmp_path, small_dataset, "killed", extra, profile)
    kill_then_resume(run_dir, after_step=8)
    assert losses_by_step(run_dir) == losses_by_step(reference)
    started = read_events(run_dir / "events.jsonl")[0]
    assert started["config"]["model"]["qk_norm"] and started["config"]["model"]["head_dim"] == 24
