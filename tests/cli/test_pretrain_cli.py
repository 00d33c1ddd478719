
"""`minimind pretrain` / `resume` as a user runs them (real subprocesses, real trainer)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minimind.checkpoint import find_checkpoint
from minimind.events import read_events
from minimind_cli.launch import LaunchOptions, trainer_argv
from tests.conftest import REPO, default_sigint, run_cli
from tests.e2e.conftest import SMALL

ARGS = ["--profile", "tiny", "--no-tui", *[a for s in SMALL for a in ("--set", s)]]


def test_trainer_argv_plain_and_torchrun():
    run = Path("/r/run")
    assert trainer_argv(run, LaunchOptions(), python="py") == ["py", "-m", "minimind.train", "/r/run"]
    assert trainer_argv(run, LaunchOptions(resume_from=Path("/r/run/c"), force=True), python="py") == [
        "py", "-m", "minimind.train", "/r/run", "--resume-from", "/r/run/c", "--force"]
    assert trainer_argv(run, LaunchOptions(nproc=2), python="py") == [
        "py", "-m", "torch.distributed.run", "--nproc-per-node=2", "--standalone", "-m", "minimind.train", "/r/run"]
    assert trainer_argv(run, LaunchOptions(nproc=4, nnodes=2, node_rank=1, master_addr="10.0.0.1",
                                           master_port=1234), python="py") == [
        "py", "-m", "torch.distributed.run", "--nproc-per-node=4", "--nnodes=2", "--node-rank=1",
        "--master-addr=10.0.0.1", "--master-port=1234", "-m", "minimind.train", "/r/run"]


def test_bad_config_is_one_line_and_starts_nothing(tmp_path):
    proc = run_cli("pretrain", "--set", "train.learing_rate=1e-3", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "did you mean train.learning_rate" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_torch_without_muon_is_told_how_to_train_with_adamw_before_anything_starts(tmp_path, capsys,
                                                                                    monkeypatch):
    """Every profile trains with Muon (torch >= 2.9); an older torch gets one line and the way back
    to AdamW, from pretrain itself, not from a trainer that already made a run directory."""
    import torch

    from tests.cli.cli_helpers import run_main

    monkeypatch.delattr(torch.optim, "Muon")
    proc = run_main(capsys, "pretrain", "--profile", "tiny", "--out", str(tmp_path / "out"), "--no-tui")
    assert proc.returncode == 2
    assert "train.optimizer=muon (every profile's default) needs torch.optim.Muon, torch >= 2.9" in proc.stderr
    assert "--set train.optimizer=adamw" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = run_main(capsys, "pretrain", "--profile", "tiny", "--set", "train.optimizer=adamw", "--dry-run",
                    "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow  # CLI subprocesses that prepare the sample corpus
def test_missing_data_is_one_line(tmp_path):
    proc = run_cli("pretrain", "--data", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "nope.jsonl: no such file" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "runs").exists()


@pytest.mark.slow  # CLI subprocesses that prepare the sample corpus
def test_unwritable_output_dir(tmp_path, small_dataset):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = run_cli("pretrain", *ARGS, "--data", str(small_dataset), "--out", str(blocker / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "cannot write to" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow  # runs the real trainer
def test_pretrain_runs_to_the_end(tmp_path, small_dataset):
    proc = run_cli("pretrain", *ARGS, "--data", str(small_dataset), "--out", str(tmp_path / "out"),
                   "--run", "r1", "--max-steps", "6", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "done: 6 steps" in proc.stdout and "pretrain_64.pth" in proc.stdout
    assert "6 steps, device cpu, dtype fp32, muon, 1 process(es)" in proc.stdout  # what it trains with
    run_dir = tmp_path / "out" / "runs" / "r1"
    assert read_events(run_dir / "events.jsonl")[-1]["type"] == "run_finished"
    # The same name again is refused with a hint to resume.
    again = run_cli("pretrain", *ARGS, "--data", str(small_dataset), "--out", str(tmp_path / "out"),
                    "--run", "r1", cwd=tmp_path)
    assert again.returncode == 2 and "minimind resume" in again.stderr


@pytest.mark.slow  # runs the real trainer
def test_ctrl_c_saves_exits_130_and_resume_finishes(tmp_path, small_dataset):
    out = tmp_path / "out"
    env = {"PYTHONPATH": str(REPO), "MINIMIND_FAULT_STEP_SLEEP": "0.3", "PYTHONUNBUFFERED": "1"}
    import os

    proc = subprocess.Popen([sys.executable, "-m", "minimind_cli", "pretrain", *ARGS, "--data", str(small_dataset),
                             "--out", str(out), "--run", "c"], cwd=tmp_path, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = out / "runs" / "c"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        steps = [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "step"] \
            if (run_dir / "events.jsonl").exists() else []
        if len(steps) >= 2:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C does to the CLI in a terminal
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert f"minimind resume {run_dir}" in stderr
    step = find_checkpoint(run_dir).step
    assert 2 <= step < 16
    resumed = run_cli("resume", str(run_dir), "--no-tui", cwd=tmp_path, env={"MINIMIND_FAULT_STEP_SLEEP": "0"})
    assert resumed.returncode == 0, resumed.stderr
    assert f"from step {step}" in resumed.stdout and "done: 16 steps" in resumed.stdout


@pytest.mark.slow  # runs the real trainer
def test_resume_refuses_model_change_and_changed_data(tmp_path, small_dataset):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)
    proc = run_cli("pretrain", *ARGS, "--data", str(data), "--out", str(tmp_path / "out"), "--run", "r",
                   "--max-steps", "5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run_dir = tmp_path / "out" / "runs" / "r"
    bad = run_cli("resume", str(run_dir), "--no-tui", "--set", "model.hidden_size=32")
    assert bad.returncode == 2 and "model shape cannot change" in bad.stderr
    unsafe = run_cli("resume", str(run_dir), "--no-tui", "--set", "train.batch_size=8")
    assert unsafe.returncode == 2 and "--force" in unsafe.stderr
    meta = json.loads((data / "meta.json").read_text())
    meta["fingerprint"] = "0" * 64
    (data / "meta.json").write_text(json.dumps(meta))
    changed = run_cli("resume", str(run_dir), "--no-tui", "--set", "train.max_steps=8")
    assert changed.returncode == 2 and "changed since step 5" in changed.stderr
    missing = run_cli("resume", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


@pytest.mark.slow  # runs the real trainer
def test_tensorboard_sink_or_a_clear_message(tmp_path, small_dataset):
    import importlib.util

    proc = run_cli("pretrain", *ARGS, "--tensorboard", "--data", str(small_dataset), "--out", str(tmp_path / "out"),
                   "--run", "tb", "--max-steps", "3", cwd=tmp_path)
    if importlib.util.find_spec("tensorboard") is None:
        assert proc.returncode == 2 and "pip install tensorboard" in proc.stderr
        assert not (tmp_path / "out" / "runs").exists()
    else:
        assert proc.returncode == 0, proc.stderr
        assert list((tmp_path / "out" / "runs" / "tb" / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.slow  # runs the real trainer
def test_data_jsonl_is_prepared_once_and_reused(tmp_path):
    from pydoc_data.topics import topics

    data = tmp_path / "corpus.jsonl"
    with open(data, "w", encoding="utf-8") as f:
        for key in sorted(topics):
            f.write(json.dumps({"text": topics[key]}) + "\n")
    args = ["pretrain", "--profile", "tiny", "--no-tui", "--data", str(data), "--max-steps", "2",
            "--set", "train.batch_size=4"]
    first = run_cli(*args, "--run", "a", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "(prepared in" in first.stdout
    second = run_cli(*args, "--run", "b", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "(reused the prepared copy in" in second.stdout
    cached = list((tmp_path / "out" / "cache").iterdir())
    assert len(cached) == 1 and (cached[0] / "meta.json").is_file()
    assert not (tmp_path / "out" / "data").exists()  # out/data is only ever a dataset
    prepared = run_cli("prepare", str(data), cwd=tmp_path)  # the README's next command
    assert prepared.returncode == 0, prepared.stderr
    assert (tmp_path / "out" / "data" / "meta.json").is_file()


@pytest.mark.slow  # runs the real trainer twice
def test_a_second_run_of_the_same_width_says_whose_weights_the_shared_file_holds(tmp_path, small_dataset):
    out = tmp_path / "out"
    for name, lr in (("r1", "3e-3"), ("r2", "1e-3")):
        proc = run_cli("pretrain", *ARGS, "--data", str(small_dataset), "--out", str(out), "--run", name,
                       "--max-steps", "2", "--set", f"train.learning_rate={lr}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert f"{out / 'pretrain_64.pth'} now comes from this run (r2)" in proc.stdout
    summary = proc.stdout[proc.stdout.index("done:"):]
    assert summary.count(str(out / "runs" / "r2")) == 1  # the closing lines name the run directory once
    events = read_events(out / "runs" / "r2" / "events.jsonl")
    warning = next(e for e in events if e["type"] == "warning")
    assert "holds the weights of run r1" in warning["message"]
    end = events[-1]
    assert end["type"] == "run_finished" and end["shared_weights_run"] == "r2"
    assert end["weights_path"] == str(out / "pretrain_64.pth")
    # r1's weights were not lost: they stay in its run directory, and its sidecar names the run.
    r1 = (out / "runs" / "r1").resolve()
    assert json.loads((r1 / "pretrain_64.json").read_text())["run"] == str(r1)
    assert (r1 / "pretrain_64.pth").read_bytes() != (out / "pretrain_64.pth").read_bytes()


def _pretrain(tmp_path, small_dataset, name: str, **faults: str) -> subprocess.Popen:
    import os

    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "60",
           **faults}
    return subprocess.Popen([sys.executable, "-m", "minimind_cli", "pretrain", *ARGS, "--data", str(small_dataset),
                             "--out", str(tmp_path / "out"), "--run", name], cwd=tmp_path, env=env,
                            preexec_fn=default_sigint, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow  # runs the real trainer
def test_three_ctrl_c_before_the_first_checkpoint_never_suggest_resume(tmp_path, small_dataset):
    proc = _pretrain(tmp_path, small_dataset, "r", MINIMIND_FAULT_STEP_SLEEP="0.3", MINIMIND_FAULT_SLOW_SAVE="30")
    run_dir = tmp_path / "out" / "runs" / "r"
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "events.jsonl").is_file() or not any(
                e["type"] == "step" for e in read_events(run_dir / "events.jsonl")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # save and stop: the save is slow
        while not list((run_dir / "checkpoints").glob("*tmp*")):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)  # the third kills the trainer without saving
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 137, err
    assert "minimind resume" not in err.split("killed by SIGKILL", 1)[1]
    assert "no checkpoint was saved, so there is nothing to resume" in err
    from minimind_cli.runs import CTRL_C_NOTICE

    assert CTRL_C_NOTICE in err.splitlines()  # the notice is one line, even in a narrow terminal


@pytest.mark.slow  # runs the real trainer
def test_out_of_memory_at_step_1_does_not_suggest_resume(tmp_path, small_dataset):
    proc = _pretrain(tmp_path, small_dataset, "oom", MINIMIND_FAULT_OOM_MICRO_STEPS="1-100")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    assert "out of memory" in err and "minimind resume" not in err
    assert "checkpoint is kept" not in err  # there is none
    assert "no checkpoint was saved, so there is nothing to resume" in err


@pytest.mark.slow  # runs the real trainer
def test_a_refused_state_pt_does_not_suggest_resume(tmp_path, small_dataset):
    import argparse
    import hashlib

    import torch

    from tests.e2e.conftest import finished_run

    run_dir = finished_run(tmp_path, small_dataset, "r", ["train.max_steps=5"])
    saved = find_checkpoint(run_dir).path
    torch.save({"step": 5, "x": argparse.Namespace()}, saved / "state.pt")  # a pickle safe loading refuses
    meta = json.loads((saved / "meta.json").read_text())
    meta["files"]["state.pt"] = hashlib.sha256((saved / "state.pt").read_bytes()).hexdigest()  # still verifies
    (saved / "meta.json").write_text(json.dumps(meta))
    proc = run_cli("resume", str(run_dir), "--max-steps", "8", "--no-tui", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "state.pt" in proc.stderr and "minimind resume" not in proc.stderr
    from minimind.run_summary import summarize

    assert summarize(run_dir)["status"] == "finished"  # a refused attempt leaves the run as it ended


@pytest.mark.slow  # runs the real trainer
def test_switching_optimizer_on_resume_is_refused_before_anything_is_written(tmp_path, small_dataset):
    from minimind.run_summary import summarize
    from tests.e2e.conftest import finished_run

    run_dir = finished_run(tmp_path, small_dataset, "muon", ["train.optimizer=muon", "train.max_steps=3"])
    events_before = (run_dir / "events.jsonl").read_bytes()
    for extra in ([], ["--force"]):
        proc = run_cli("resume", str(run_dir), "--set", "train.optimizer=adamw", "--max-steps", "5", *extra,
                       "--no-tui", cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "--set train.optimizer=adamw: the run was trained with train.optimizer=muon" in proc.stderr
        assert "--force" not in proc.stderr  # never suggested: it cannot work
        assert f"--init-from {run_dir}" in proc.stderr
    assert (run_dir / "events.jsonl").read_bytes() == events_before
    assert not (run_dir / "trainer.log").exists() or "adamw" not in (run_dir / "trainer.log").read_text()
    assert summarize(run_dir)["status"] == "finished"
