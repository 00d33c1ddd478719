"""`minimind resume` in-process up to the point where it would start the trainer: which checkpoint
it picks, what it prints, and the config and trainer arguments it would launch with."""

from __future__ import annotations

import shutil

import pytest

from minimind_cli.launch import trainer_argv
from tests.cli.cli_helpers import run_main


@pytest.fixture
def two_checkpoints(small_dataset, tmp_path):
    """A run directory with real checkpoints at steps 2 and 3."""
    from minimind.training.build import build
    from minimind.training.state import TrainState, save
    from minimind.training.step import train_step
    from tests.training.conftest import small_config

    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)
    built = build(small_config(data, tmp_path / "out"))
    state = TrainState()
    run_dir = tmp_path / "out" / "runs" / "r"
    for step in (1, 2, 3):
        r = train_step(built, state)
        state.advance(r.loss, r.tokens)
        if step >= 2:
            save(built, state, run_dir, "interval", elapsed_s=0.5)
    return run_dir


@pytest.fixture
def launched(monkeypatch):
    """Replaces the trainer launch: records (run_dir, cfg, opts) and reports success."""
    import minimind_cli.runs

    calls = []

    def fake(run_dir, cfg, opts, *, no_tui, lock=None, lock_note=None):
        assert lock is not None and lock.fd is not None  # resume holds the run's lock for its trainer
        calls.append((run_dir, cfg, opts))
        return 0

    monkeypatch.setattr(minimind_cli.runs, "launch_and_follow", fake)
    return calls


def _damage(path):
    with open(path / "model.pt", "r+b") as f:
        f.seek(64)
        f.write(b"\x00\xff\x00\xff")


def test_a_damaged_newest_checkpoint_is_skipped_with_a_note_and_the_trainer_gets_the_verified_one(
        two_checkpoints, launched, capsys):
    run_dir = two_checkpoints
    _damage(run_dir / "checkpoints" / "step_00000003")
    proc = run_main(capsys, "resume", str(run_dir), "--no-tui")
    assert proc.returncode == 0, proc.stderr
    assert "step_00000003 is damaged (model.pt does not match its recorded sha256)" in proc.stdout
    assert "from step 2 (step_00000002)" in proc.stdout
    (_, _, opts), = launched
    good = run_dir / "checkpoints" / "step_00000002"
    assert opts.resume_from == good
    argv = trainer_argv(run_dir, opts, python="py")
    assert argv[argv.index("--resume-from") + 1] == str(good)


def test_a_damaged_checkpoint_named_explicitly_is_refused_naming_the_newest_good_one(
        two_checkpoints, launched, capsys):
    run_dir = two_checkpoints
    _damage(run_dir / "checkpoints" / "step_00000003")
    proc = run_main(capsys, "resume", str(run_dir / "checkpoints" / "step_00000003"), "--no-tui")
    assert proc.returncode == 2 and not launched
    assert "step_00000003 is damaged" in proc.stderr
    assert str(run_dir / "checkpoints" / "step_00000002") in proc.stderr.replace("\n", "")


def test_resume_takes_the_run_length_flags_of_pretrain(two_checkpoints, launched, capsys):
    run_dir = two_checkpoints
    proc = run_main(capsys, "resume", str(run_dir), "--no-tui", "--max-steps", "40")
    assert proc.returncode == 0, proc.stderr
    proc = run_main(capsys, "resume", str(run_dir), "--no-tui", "--epochs", "3")
    assert proc.returncode == 0, proc.stderr
    (_, by_steps, _), (_, by_epochs, _) = launched
    assert by_steps.train.max_steps == 40 and by_steps.train.epochs == 1
    assert by_epochs.train.epochs == 3 and by_epochs.train.max_steps == 16
