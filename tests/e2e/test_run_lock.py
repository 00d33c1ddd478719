"""One owner per run directory, with real trainer processes (and the real CLI)."""

import json
import os
import signal
import socket
import subprocess
import sys

from minimind.checkpoint import list_checkpoints
from minimind.events import read_events
from minimind.runlock import LOCK_FILE
from tests.conftest import run_cli
from tests.e2e.conftest import last_step, make_run, run_to_end, start, trainer_env, wait_for


def _snapshot(run_dir):
    ckpts = sorted(p.name for p in (run_dir / "checkpoints").iterdir()) if (run_dir / "checkpoints").is_dir() else []
    return ((run_dir / "events.jsonl").read_bytes(), ckpts, (run_dir / LOCK_FILE).read_bytes(),
            (run_dir / "config.yaml").stat().st_mtime_ns)


def test_second_trainer_and_resume_of_a_live_run_are_refused_and_write_nothing(tmp_path, small_dataset):
    run_dir = make_run(tmp_path, small_dataset, "owned")
    first = start(run_dir, env=trainer_env(MINIMIND_FAULT_STEP_SLEEP="0.2"))
    try:
        wait_for(lambda: last_step(run_dir) >= 6)  # past its first checkpoint (step 5)
        os.kill(first.pid, signal.SIGSTOP)  # frozen while holding the lock: the run cannot change under us
        owner = json.loads((run_dir / LOCK_FILE).read_text())
        assert owner["pid"] == first.pid and owner["host"] == socket.gethostname()
        before = _snapshot(run_dir)

        code, out, err = run_to_end(run_dir, "--resume-from", str(run_dir), timeout=120)
        assert code == 2, err
        lines = err.strip().splitlines()
        assert lines[0].startswith("error: run ") and f"pid {first.pid}" in lines[0], err
        assert "Traceback" not in err and len(lines) <= 2
        assert _snapshot(run_dir) == before

        proc = run_cli("resume", str(run_dir), "--no-tui", timeout=120)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"is training (pid {first.pid}" in proc.stderr and f"minimind watch {run_dir}" in proc.stderr
        assert "resuming" not in proc.stdout and "Traceback" not in proc.stderr
        proc = run_cli("resume", str(list_checkpoints(run_dir)[-1].path), "--no-tui", timeout=120)
        assert proc.returncode == 2 and "is training" in proc.stderr
        assert _snapshot(run_dir) == before
    finally:
        os.kill(first.pid, signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    events = read_events(run_dir / "events.jsonl")
    assert sum(e["type"] == "run_started" for e in events) == 1
    assert [e["step"] for e in events if e["type"] == "step"] == list(range(1, 17))
    assert not (run_dir / LOCK_FILE).exists()  # released on exit


def test_a_stale_lock_of_a_dead_trainer_is_recovered_with_a_message(tmp_path, small_dataset):
    run_dir = make_run(tmp_path, small_dataset, "stale", ["train.max_steps=2"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run_dir / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": 1.0}))
    code, _, err = run_to_end(run_dir)
    assert code == 0, err
    assert "stale lock" in err and f"pid {dead.pid}" in err
    infos = [e["message"] for e in read_events(run_dir / "events.jsonl") if e["type"] == "info"]
    assert any("stale lock" in m for m in infos)
    assert not (run_dir / LOCK_FILE).exists()


def test_a_failed_trainer_releases_its_lock(tmp_path, small_dataset):
    run_dir = make_run(tmp_path, small_dataset, "fails", ["data.path=" + str(tmp_path / "missing")])
    code, _, err = run_to_end(run_dir)
    assert code == 2, err
    assert not (run_dir / LOCK_FILE).exists()
    proc = run_cli("resume", str(run_dir), "--no-tui")
    assert proc.returncode == 2 and "is training" not in proc.stderr  # refused for want of a checkpoint only
    assert "checkpoint" in proc.stderr


def test_two_concurrent_resumes_one_trains_the_other_is_refused_before_it_writes(tmp_path, small_dataset):
    """Both pass the read-only check at once; the run lock, taken by `resume` itself and handed to
    its trainer, lets one through and refuses the other with its one line, before it writes."""
    from tests.conftest import REPO
    from tests.e2e.conftest import finished_run

    run_dir = finished_run(tmp_path, small_dataset, "twice", ["train.max_steps=5"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run_dir / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": 1.0}))
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", "COLUMNS": "200",
           "MINIMIND_FAULT_STEP_SLEEP": "0.5"}
    argv = [sys.executable, "-m", "minimind_cli", "resume", str(run_dir), "--max-steps", "8", "--no-tui"]
    procs = [subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p, *p.communicate(timeout=300)) for p in procs]
    winners = [r for r in results if r[0].returncode == 0]
    losers = [r for r in results if r[0].returncode != 0]
    assert len(winners) == 1 and len(losers) == 1, [(r[0].returncode, r[2]) for r in results]
    loser, out, err = losers[0]
    assert loser.returncode == 2 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: run ") and ("already being trained" in lines[0] or "is training" in lines[0])
    assert len(lines) <= 2 and lines[-1].startswith("hint: watch it with")  # the lock's line and its hint
    assert "resume with" not in err and "exited with code" not in err and "stale lock" not in err
    assert sum("recovered the stale lock" in r[1] + r[2] for r in results) == 1  # only the winner
    log = (run_dir / "trainer.log").read_text() if (run_dir / "trainer.log").exists() else ""
    assert "already being trained" not in log and "error" not in log
    events = read_events(run_dir / "events.jsonl")
    assert sum(e["type"] == "run_started" for e in events) == 2  # the first run and the one resume
    assert events[-1]["type"] == "run_finished" and events[-1]["step"] == 8
    assert not (run_dir / LOCK_FILE).exists()
