"""What `minimind runs` reads from a run directory: status from the live process, progress from events."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from minimind.config import resolve, save_config
from minimind.run_summary import summarize, summarize_all
from minimind.runlock import LOCK_FILE, RunLock


def ev(type_: str, time: float = 100.0, **fields) -> dict:
    return {"v": 2, "type": type_, "time": time, **fields}


START = ev("run_started", 100.0, pid=1, profile="tiny", params_total=1000, params_active=1000, start_step=0,
           total_steps=40)


def write_run(root, name: str, events: list[dict], checkpoint_step: int | None = None):
    run = root / "runs" / name
    run.mkdir(parents=True)
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    if checkpoint_step is not None:
        ckpt = run / "checkpoints" / f"step_{checkpoint_step:08d}"
        ckpt.mkdir(parents=True)
        (ckpt / "meta.json").write_text(json.dumps({"step": checkpoint_step, "time": 150.0, "files": {}}))
    return run


def test_progress_losses_and_the_last_complete_checkpoint(tmp_path):
    run = write_run(tmp_path, "a", [
        START, ev("step", 110.0, step=10, total_steps=40, loss=5.0, tokens_seen=640, elapsed_s=10.0),
        ev("eval", 111.0, step=10, val_loss=5.5), ev("heartbeat", 113.0, step=12, total_steps=40, elapsed_s=13.0),
        ev("run_stopped", 114.0, step=12, reason="request", checkpoint="x")], checkpoint_step=12)
    (run / "checkpoints" / "step_00000020").mkdir()  # an interrupted save: no meta.json, never listed
    row = summarize(run, now=160.0)
    assert (row["status"], row["step"], row["total_steps"]) == ("stopped", 12, 40)
    assert (row["loss"], row["val_loss"], row["tokens_seen"], row["elapsed_s"]) == (5.0, 5.5, 640, 13.0)
    assert row["checkpoint"]["step"] == 12 and row["checkpoint"]["age_s"] == 10.0
    assert (row["profile"], row["params_total"], row["pid"]) == ("tiny", 1000, None)


def test_running_is_the_live_lock_holder_and_its_clock_runs(tmp_path):
    run = write_run(tmp_path, "live", [START, ev("step", 110.0, step=1, total_steps=40, loss=9.0, tokens_seen=64,
                                                 elapsed_s=10.0)])
    with RunLock(run):
        row = summarize(run, now=130.0)
        assert (row["status"], row["pid"], row["elapsed_s"]) == ("running", os.getpid(), 30.0)
    # Released (the trainer exited) without an end event: it did not finish.
    assert summarize(run)["status"] == "failed"
    (run / LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": "h", "started": 1.0}))
    row = summarize(run)  # a lock file nobody holds: its trainer was killed
    assert row["status"] == "failed" and row["message"] == "the trainer is gone without recording how it ended (exit code unknown)"


def test_a_reused_pid_is_not_a_running_trainer(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a run of a version without trainer.lock, whose pid now belongs to another program
        run = write_run(tmp_path, "old", [{**START, "pid": other.pid}])
        assert summarize(run)["status"] == "failed"
    finally:
        other.kill()
        other.wait()


def test_never_started_and_a_plain_directory_of_runs(tmp_path):
    run = tmp_path / "runs" / "later"
    run.mkdir(parents=True)
    save_config(resolve("moe"), run / "config.yaml")
    write_run(tmp_path, "first", [START, ev("run_finished", 120.0, step=40, tokens_seen=1, elapsed_s=20.0,
                                            final_loss=3.0)])
    rows = summarize_all(tmp_path)
    assert [(r["name"], r["status"]) for r in rows] == [("first", "finished"), ("later", "never started")]
    assert rows[0]["loss"] == 3.0 and rows[1]["profile"] == "moe" and rows[1]["step"] is None
    assert [r["name"] for r in summarize_all(tmp_path / "runs")] == ["first", "later"]
    assert [(r["name"], r["status"]) for r in summarize_all(tmp_path / "runs" / "first")] == [("first", "finished")]


def test_a_resume_goes_back_to_its_checkpoint_step(tmp_path):
    first = [START, ev("step", 110.0, step=60, total_steps=40, loss=4.0, tokens_seen=1, elapsed_s=5.0)]
    run = write_run(tmp_path, "again", [*first, {**START, "start_step": 40, "total_steps": 80}])
    row = summarize(run)
    assert (row["step"], row["total_steps"], row["loss"]) == (40, 80, 4.0)
