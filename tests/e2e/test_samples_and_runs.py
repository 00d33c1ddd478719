"""Live samples and heartbeats from real trainers, and `minimind runs` over runs in every state."""

from __future__ import annotations

import json

from minimind.control import send_command
from minimind.events import read_events
from tests.conftest import run_cli
from tests.e2e.conftest import kill, make_run, start, trainer_env, wait_for

TEXT = ["model.vocab_size=320", "train.sample_tokens=8"]


def _events(run_dir, kind: str) -> list[dict]:
    return [e for e in read_events(run_dir / "events.jsonl") if e["type"] == kind]


def _runs_json(out) -> dict[str, dict]:
    proc = run_cli("runs", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert json.loads(json.dumps(data)) == data and data["runs_dir"] == str((out / "runs").resolve())
    return {r["name"]: r for r in data["runs"]}


def test_runs_shows_each_status_and_live_samples_come_on_request(tmp_path, text_dataset):
    out = tmp_path / "out"
    done = make_run(tmp_path, text_dataset, "done", [*TEXT, "train.max_steps=3", "train.save_interval=2"])
    stopped = make_run(tmp_path, text_dataset, "stopped", [*TEXT, "train.epochs=50", "train.max_steps=null",
                                                            "train.save_interval=0"])
    failed = make_run(tmp_path, text_dataset, "failed", [*TEXT, f"data.path={tmp_path / 'missing'}"])
    live = make_run(tmp_path, text_dataset, "live", [*TEXT, "train.epochs=50", "train.max_steps=null",
                                                      "train.log_interval=1000", "train.save_interval=0"])
    make_run(tmp_path, text_dataset, "never", TEXT)  # config.yaml written, trainer never started
    slow = trainer_env(MINIMIND_FAULT_STEP_SLEEP="0.3")
    procs = {"done": start(done), "failed": start(failed), "stopped": start(stopped, env=slow),
             "live": start(live, env=slow)}
    try:
        wait_for(lambda: _events(stopped, "step"), timeout=180)
        send_command(stopped, "stop")
        wait_for(lambda: _events(live, "step"), timeout=180)
        send_command(live, "sample")  # what the dashboard's `g` key sends
        samples = wait_for(lambda: _events(live, "sample"), timeout=60)
        assert samples and all(s["prompt"] and s["text"] and s["step"] >= 1 for s in samples)
        beat = wait_for(lambda: _events(live, "heartbeat"), timeout=60)[0]  # log_interval 1000: no step events
        total = _events(live, "run_started")[0]["total_steps"]
        assert beat["step"] >= 1 and beat["total_steps"] == total > 1000 and beat["elapsed_s"] > 0
        for name in ("done", "failed", "stopped"):
            procs[name].communicate(timeout=180)
        assert (procs["done"].returncode, procs["failed"].returncode, procs["stopped"].returncode) == (0, 2, 0)

        rows = _runs_json(out)
        assert {n: r["status"] for n, r in rows.items()} == {
            "done": "finished", "stopped": "stopped", "failed": "failed", "live": "running",
            "never": "never started"}
        assert rows["live"]["pid"] == procs["live"].pid and rows["live"]["step"] >= 1
        assert rows["done"]["step"] == rows["done"]["total_steps"] == 3 and rows["done"]["checkpoint"]["step"] == 3
        assert rows["done"]["loss"] is not None and rows["done"]["val_loss"] is not None
        assert rows["done"]["profile"] == "tiny" and rows["done"]["params_total"] > 0
        assert rows["stopped"]["checkpoint"]["step"] == rows["stopped"]["step"] >= 1
        assert "missing" in rows["failed"]["message"]
        table = run_cli("runs", str(out))
        assert table.returncode == 0, table.stderr
        lines = {line.split()[0]: line for line in table.stdout.splitlines()[1:] if line.strip()}
        assert all(rows[n]["status"] in lines[n] for n in rows)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                kill(proc)

    # The trainer finished at its last eval writes samples with text too.
    finished = _events(done, "sample")
    assert len(finished) == 3 and all(s["step"] == 3 and s["text"] for s in finished)
    # A trainer killed without a word is no longer running: its lock is free.
    assert _runs_json(out)["live"]["status"] == "failed"
