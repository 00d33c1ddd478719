"""`minimind resume` on a real small run: past a damaged checkpoint, and with a new length."""

from __future__ import annotations

import pytest

from minimind.events import read_events
from tests.conftest import run_cli
from tests.e2e.conftest import SMALL, kill, last_step, make_run, start, trainer_env, wait_for

ARGS = ["--profile", "tiny", "--no-tui", *[a for s in SMALL for a in ("--set", s)]]


@pytest.fixture
def finished_run(tmp_path, small_dataset):
    """A finished 16-step run with checkpoints at steps 5, 10, 15 and 16."""
    proc = run_cli("pretrain", *ARGS, "--data", str(small_dataset), "--out", str(tmp_path / "out"), "--run", "r",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return tmp_path / "out" / "runs" / "r"


def _lrs(events):
    return {e["step"]: e["lr"] for e in events if e["type"] == "step"}


def test_resume_skips_a_damaged_newest_checkpoint_and_the_trainer_restores_the_verified_one(finished_run):
    newest = finished_run / "checkpoints" / "step_00000016"
    with open(newest / "optimizer.pt", "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02\x03")
    proc = run_cli("resume", str(finished_run), "--no-tui", cwd=finished_run)
    assert proc.returncode == 0, proc.stderr
    assert "step_00000016 is damaged (optimizer.pt does not match its recorded sha256)" in proc.stdout
    assert "from step 15 (step_00000015)" in proc.stdout
    started = [e for e in read_events(finished_run / "events.jsonl") if e["type"] == "run_started"][-1]
    assert started["resumed_from"] == {"path": str(finished_run / "checkpoints" / "step_00000015"), "step": 15}


def test_resume_with_a_new_length_continues_the_lr_without_a_jump(tmp_path, small_dataset):
    run_dir = make_run(tmp_path, small_dataset, "long", ["train.max_steps=60"])
    # Killed between steps 11 and 14, so the newest checkpoint is step 10: slow steps leave the kill
    # 2 s to land (on a loaded machine an unslowed run once reached step 15 first).
    proc = start(run_dir, env=trainer_env(MINIMIND_FAULT_STEP_SLEEP="0.5"))
    wait_for(lambda: last_step(run_dir) >= 11)
    kill(proc)
    before = _lrs(read_events(run_dir / "events.jsonl"))
    resumed = run_cli("resume", str(run_dir), "--no-tui", "--max-steps", "20", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "from 60 to 20 steps: the lr schedule is re-planned from step 10" in resumed.stdout
    events = read_events(run_dir / "events.jsonl")
    started = [e for e in events if e["type"] == "run_started"][-1]
    assert started["total_steps"] == 20 and started["schedule_changed_at"] == 10
    after = _lrs(events[events.index(started):])
    assert sorted(after) == list(range(11, 21))
    # The first resumed step continues from the last one before the stop (re-planning the whole
    # schedule over 20 steps would drop it by 43% here), then decays to the final lr at step 20.
    assert abs(after[11] - before[10]) / before[10] < 0.03
    assert after[11] == pytest.approx(before[11], rel=1e-6)  # where the 60-step plan was
    lrs = [after[s] for s in range(11, 21)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert 3e-4 < after[20] < 4e-4  # one step before the final lr, 0.1 x 3e-3
    drawn = {int(s): lr for s, lr in started["lr_schedule"]}
    assert drawn[10] == pytest.approx(before[11]) and drawn[19] == pytest.approx(after[20])
