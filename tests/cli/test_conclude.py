"""How `pretrain`/`resume` report a trainer's end: messages and exit code, decided by run_outcome
(the rule `watch` uses too). Synthetic event streams, no trainer."""

import json
import os

import pytest

from minimind_cli.progress import follow_headless
from minimind_cli.runs import _conclude


def ev(type_: str, v: int = 2, **fields) -> dict:
    return {"v": v, "type": type_, "time": 1.0, **fields}


STEPS = [ev("run_started", pid=1, start_step=0), ev("step", step=10), ev("step", step=20)]
CKPT = ev("checkpoint", step=20, path="r/checkpoints/step_20", seconds=0.1, reason="request")


def conclude(tmp_path, capsys, events, code, *, before=(), show=True):
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    if any(e["type"] == "checkpoint" for e in [*before, *events]):  # the complete checkpoint it names
        saved = run_dir / "checkpoints" / "step_00000020"
        saved.mkdir(parents=True, exist_ok=True)
        (saved / "meta.json").write_text(json.dumps({"step": 20, "files": {}}))
    with open(run_dir / "events.jsonl", "w") as f:
        f.writelines(json.dumps(e) + "\n" for e in [*before, *events])
    capsys.readouterr()
    result = _conclude(run_dir, code, len(before), show=show)
    out = capsys.readouterr()
    return result, out.out, out.err, run_dir


def test_finished(tmp_path, capsys):
    end = ev("run_finished", step=30, tokens_seen=1, elapsed_s=12.2, final_loss=4.4, val_loss=4.5,
             weights_path="out/pretrain_64.pth")
    code, out, err, run_dir = conclude(tmp_path, capsys, [*STEPS, end], 0)
    assert code == 0 and err == ""
    assert "done: 30 steps, loss 4.4000, val loss 4.5000 in 12s" in out
    assert "weights: out/pretrain_64.pth" in out and f"run: {run_dir}" in out


@pytest.mark.parametrize("version", [1, 2])
def test_stopped_after_saving_is_130(tmp_path, capsys, version):
    if version == 2:
        stop = [CKPT, ev("run_stopped", step=20, reason="signal", checkpoint=CKPT["path"])]
    else:
        stop = [{**CKPT, "v": 1, "reason": "signal"}, ev("warning", v=1, step=20, message="received SIGINT: ...")]
    code, out, err, run_dir = conclude(tmp_path, capsys, [*STEPS, *stop], 0)  # the trainer exits 0
    assert code == 130 and out == ""
    assert f"stopped after saving a checkpoint at step 20. Resume with:\n  minimind resume {run_dir}" in err


def test_failed_with_traceback(tmp_path, capsys):
    end = ev("run_failed", error="loss is nan at step 20", exit_code=1, step=20,
             traceback="Traceback (most recent call last):\n  File \"x.py\"\nFloatingPointError: nan\n")
    code, _, err, run_dir = conclude(tmp_path, capsys, [*STEPS, CKPT, end], 1)
    assert code == 1
    assert "error: loss is nan at step 20" in err and "FloatingPointError: nan" in err
    assert f"the last complete checkpoint (step 20) is kept; resume with: minimind resume {run_dir}" in err
    code, _, err, _ = conclude(tmp_path, capsys, [*STEPS, CKPT, end], 1, show=False)  # the dashboard showed it
    assert code == 1 and "FloatingPointError" not in err


def test_failed_keeps_its_recorded_code(tmp_path, capsys):
    end = ev("run_failed", error="the dataset changed", traceback="", exit_code=2)
    code, _, err, _ = conclude(tmp_path, capsys, [*STEPS, end], 2)
    assert code == 2 and "error: the dataset changed" in err and "checkpoint is kept" not in err


def test_killed_is_128_plus_signal_with_the_log_tail(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "trainer.log").write_text("last words of the trainer\n")
    code, _, err, _ = conclude(tmp_path, capsys, [*STEPS, CKPT], -9)
    assert code == 137
    assert "error: the trainer was killed by SIGKILL" in err and "last words of the trainer" in err
    assert "the last complete checkpoint (step 20) is kept" in err


def test_a_silent_end_is_recorded_once_so_every_reader_agrees(tmp_path, capsys):
    from minimind.events import read_events, run_outcome

    code, _, _, run_dir = conclude(tmp_path, capsys, [*STEPS, CKPT], -9)
    events = read_events(run_dir / "events.jsonl")
    assert events[-1]["type"] == "run_failed" and events[-1]["recorded_by"] == "cli" and events[-1]["step"] == 20
    watch = run_outcome(events)  # `watch` and `runs` never saw the process
    assert (watch.status, watch.exit_code, watch.message) == ("failed", code, "the trainer was killed by SIGKILL")
    assert _conclude(run_dir, -9, 0, show=False) == 137  # said again: not recorded twice
    assert sum(e["type"] == "run_failed" for e in read_events(run_dir / "events.jsonl")) == 1


def test_a_trainer_that_never_started_records_nothing(tmp_path, capsys):
    before = [*STEPS, ev("run_stopped", step=20, reason="signal", checkpoint="c")]
    code, _, _, run_dir = conclude(tmp_path, capsys, [], -9, before=before)
    assert code == 137
    from minimind.events import read_events
    assert read_events(run_dir / "events.jsonl")[-1]["type"] == "run_stopped"


@pytest.mark.parametrize("case", ["temporary only", "refused input", "out of memory"])
def test_resume_is_suggested_only_where_it_can_work(tmp_path, capsys, case):
    run_dir = tmp_path / "run"
    if case == "temporary only":  # killed while saving the first checkpoint
        (run_dir / "checkpoints" / ".step_00000020.tmp-1").mkdir(parents=True)
        code, _, err, _ = conclude(tmp_path, capsys, STEPS, -9)
        assert code == 137 and "no checkpoint was saved, so there is nothing to resume" in err
    else:
        error = ("checkpoint step_20/state.pt: refused by safe loading" if case == "refused input"
                 else "out of memory at step 21 at micro-batch 1")
        end = ev("run_failed", error=error, traceback="", exit_code=2 if case == "refused input" else 1)
        code, _, err, _ = conclude(tmp_path, capsys, [*STEPS, CKPT, end], end["exit_code"])
        assert error in err
    assert "minimind resume" not in err


def test_exit_0_without_an_end_event_is_a_failure(tmp_path, capsys):
    code, _, err, _ = conclude(tmp_path, capsys, STEPS, 0)
    assert code == 1 and "error: the trainer ended without recording how" in err


def test_only_this_process_events_count(tmp_path, capsys):
    """A resume whose process died at once: the previous process's stop does not make it a stop."""
    before = [*STEPS, CKPT, ev("run_stopped", step=20, reason="request", checkpoint=CKPT["path"])]
    code, _, err, _ = conclude(tmp_path, capsys, [], 1, before=before)
    assert code == 1 and "exited with code 1" in err


def test_headless_progress_shows_info_and_stop(tmp_path):
    from rich.console import Console

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    events = [ev("info", message="initialised weights from w.pth"), CKPT,
              ev("heartbeat", step=20, total_steps=40, elapsed_s=3.0),
              ev("sample", step=20, prompt="The cat", text=" sat\non the mat", seconds=0.1),
              ev("run_stopped", step=20, reason="request", checkpoint=CKPT["path"])]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))

    class Exited:
        returncode = 0

        def poll(self):
            return 0

    console = Console(record=True, width=200, file=open(os.devnull, "w"))  # noqa: SIM115
    code, seen = follow_headless(run_dir, Exited(), console, skip_existing=False, poll_s=0)
    text = console.export_text()
    assert code == 0 and seen.stopped.step == 20 and seen.last_checkpoint.reason == "request"
    assert "initialised weights from w.pth" in text and "warning" not in text
    assert "sample step 20: The cat →  sat\\non the mat" in text  # one line, whitespace visible
