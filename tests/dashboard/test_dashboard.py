"""Pilot tests: the dashboard app on recorded runs, live tails and a stand-in trainer process."""

import json
import os
import signal
import subprocess
import sys

import pytest

from minimind.control import CONTROL_FILE
from minimind.events import read_events
from minimind_cli.dashboard import exit_code_for, run_is_live
from minimind_cli.dashboard.app import DashboardApp, DashboardResult
from minimind_cli.dashboard.plots import LossPlot, LrPlot
from minimind_cli.dashboard.screens import HelpScreen, QuitScreen
from minimind_cli.dashboard.signals import moe_alerts
from minimind_cli.dashboard.state import RunState
from minimind_cli.dashboard.widgets import (
    EventLog,
    FailurePanel,
    HeaderPanel,
    HeatMap,
    MoeSummary,
    ProgressPanel,
)
from tests.conftest import REPO, run_cli
from tests.dashboard.conftest import FIXTURES, copy_run, fixture_lines, wait_for


def text_of(widget) -> str:
    """What a panel shows, as plain text."""
    from rich.console import Console

    if isinstance(widget, (HeatMap, EventLog, LossPlot, LrPlot, MoeSummary)):
        return widget.render().plain
    console = Console(width=widget.size.width or 80, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(widget.content)
    return console.export_text()


def read_control(run_dir) -> dict:
    return json.loads((run_dir / CONTROL_FILE).read_text())


# --------------------------------------------------------------------------- replays
async def test_dense_replay_shows_every_panel(tmp_path):
    app = DashboardApp(copy_run(tmp_path, "dense"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.finished is not None)
        await pilot.pause()
        header = text_of(app.query_one(HeaderPanel))
        assert "FINISHED" in header and "dense" in header and "1.33M params" in header
        assert "profile tiny" in header and "float32" in header and "world 1" in header
        assert "out/data" in header and "1.2M tokens" in header
        progress = text_of(app.query_one(ProgressPanel))
        assert "300 / 300" in progress
        assert "4.435" in progress and "4.875" in progress  # last loss and smoothed loss
        assert "4.658" in progress and "105.4" in progress  # last validation loss, perplexity
        assert "ETA    done" in progress and "0:01:12" in progress
        memory = text_of(app.query_one("#memory-text"))
        assert "process RSS 462 MiB" in memory
        loss = text_of(app.query_one(LossPlot))
        legend = app.query_one(LossPlot).border_subtitle  # in the bottom border, off the curves
        assert "loss" in legend and "smoothed" in legend and "val" in legend
        ticks = [float(r.split("┤")[0].strip("│ ")) for r in loss.splitlines() if "┤" in r]
        losses = [v for v in app.state.losses + app.state.loss_emas + app.state.val_losses if v is not None]
        assert max(losses) <= ticks[0] < max(losses) + 0.5 and min(losses) - 0.5 < ticks[-1] <= min(losses)
        lr = text_of(app.query_one(LrPlot))
        assert "◆" in lr and "0.00220" in lr  # current-step marker on the full planned schedule
        log = text_of(app.query_one(EventLog))
        assert "run finished at step 300" in log and "checkpoint @ step 300 (final" in log
        assert not app.query_one("#moe").display  # dense run: no MoE panel
        assert not app.query_one(FailurePanel).display


async def test_moe_replay_heat_map(tmp_path):
    app = DashboardApp(copy_run(tmp_path, "moe"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.finished is not None)
        await pilot.pause()
        assert app.query_one("#moe").display
        heat = app.query_one(HeatMap)
        rows = text_of(heat).splitlines()
        assert rows[0].split() == ["E0", "E1", "E2", "E3"]
        assert len(rows) == 9  # header + 8 layers
        last = json.loads(fixture_lines("moe")[-5])  # the last step event
        assert last["type"] == "step"
        for layer, row in enumerate(last["moe"]["load"]):
            shown = rows[layer + 1].split()
            assert shown[0] == f"L{layer}"
            assert [s.lstrip("!").rstrip("%") for s in shown[1:]] == [f"{100 * x:.0f}" for x in row]
        assert "!0%" in rows[6]  # layer 5, expert 3: the starved expert is flagged
        starved_cell = next(span for span in heat.render().spans if "bold" in str(span.style))
        assert "on #" in str(starved_cell.style)  # cells are coloured by share
        summary = text_of(app.query_one(MoeSummary))
        assert f"{last['moe']['aux_loss']:.4g}" in summary and f"{last['moe']['imbalance']:.2f}x" in summary
        assert "L5 E3 starved" in summary
        assert "5.96M params (3.87M active)" in text_of(app.query_one(HeaderPanel))


@pytest.mark.parametrize("name,moe", [("real_tiny_stopped", False), ("real_moe_stopped", True),
                                     ("stopped_v2", False)])
async def test_replay_of_real_recordings_stopped_on_request(tmp_path, name, moe):
    """Recorded from the real trainer (`minimind pretrain` with this dashboard: s, p, p, then stop).
    The real_* recordings are schema version 1 (checkpoint + warning); stopped_v2 ends in run_stopped."""
    app = DashboardApp(copy_run(tmp_path, name))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.process_gone)
        await pilot.pause()
        assert app.state.status == "stopped"
        assert "STOPPED" in text_of(app.query_one(HeaderPanel))
        assert not app.query_one(FailurePanel).display
        log = text_of(app.query_one(EventLog))
        assert "(request" in log and "stopped at step" in log
        assert app.query_one("#moe").display is moe
        if moe:
            assert len(text_of(app.query_one(HeatMap)).splitlines()) == 1 + len(app.state.last_step.moe.load)
        await pilot.press("q")
    assert exit_code_for(app.return_value, app, lambda _: None) == 130  # the run's outcome: stopped


async def test_v2_stop_replay_names_the_checkpoint_and_the_resume_command(tmp_path):
    run_dir = copy_run(tmp_path, "stopped_v2")
    app = DashboardApp(run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.process_gone)
        await pilot.pause()
        assert app.state.status == "stopped" and app.state.stopped.step == 64
        stop_line = app.state.log[-1]
        assert stop_line.kind == "control"
        assert "stopped at step 64 (request)" in stop_line.full
        assert "/tmp/dash/out/runs/tiny1/checkpoints/step_00000064" in stop_line.full
        assert f"minimind resume {run_dir}" in stop_line.full
        assert not any(line.kind == "warning" for line in app.state.log)
        assert "trainer ended" not in text_of(app.query_one(EventLog))
        progress = text_of(app.query_one(ProgressPanel))
        assert "ETA    stopped" in progress and "done" not in progress  # stopped at 64 of 147: not done
        assert "64 / 147" in progress  # the step it stopped at, past the last logged step
        await pilot.press("q")
    messages = []
    assert exit_code_for(app.return_value, app, messages.append) == 130
    assert messages == [f"stopped after saving a checkpoint at step 64. Resume with:\n  minimind resume {run_dir}"]


async def test_gpu_memory_per_device(tmp_path):
    run_dir = tmp_path / "gpu"
    run_dir.mkdir()
    gpu = [{"device": "cuda:0", "allocated_mib": 1536.0, "reserved_mib": 2048.0, "peak_mib": 1800.0,
            "total_mib": 81559.0},
           {"device": "cuda:1", "allocated_mib": 700.0, "reserved_mib": 1024.0, "peak_mib": 900.0}]
    with open(run_dir / "events.jsonl", "w") as f:
        for line in fixture_lines("dense"):
            event = json.loads(line)
            if event["type"] == "step":
                event["memory"] = {"gpu": gpu, "cpu_rss_mib": 2100.0}
            f.write(json.dumps(event) + "\n")
    app = DashboardApp(run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.finished is not None)
        await pilot.pause()
        memory = text_of(app.query_one("#memory-text")).splitlines()
        assert memory[0].split() == ["alloc", "resv", "peak", "total"]
        assert memory[1].split() == ["gpu0", "1.50G", "2.00G", "1.76G", "79.6G"]
        assert memory[2].split() == ["gpu1", "700M", "1.00G", "900M", "—"]
        assert "process RSS 2.05 GiB" in memory[3]
        assert app.state.memory_history[-1] == 1536.0  # the sparkline follows device 0's allocation


async def test_failed_replay_shows_error_and_traceback(tmp_path):
    app = DashboardApp(copy_run(tmp_path, "failed"))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state.failed is not None)
        await pilot.pause()
        panel = app.query_one(FailurePanel)
        assert panel.display
        text = text_of(panel)
        assert "Training failed" in text and "exit code 1" in text
        assert "loss is nan at step 170" in text
        assert "FloatingPointError" in text and 'File "minimind/train.py"' in text
        assert "FAILED" in text_of(app.query_one(HeaderPanel))
        await pilot.press("q")  # nothing to stop: q leaves at once
    messages = []
    assert exit_code_for(app.return_value, app, messages.append) == 1
    assert "loss is nan" in messages[0]


async def test_layout_adapts_to_resize(tmp_path):
    app = DashboardApp(copy_run(tmp_path, "moe"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.finished is not None)
        await pilot.pause()
        assert app.query_one("#lr").display and app.query_one("#memory").display
        tall = text_of(app.query_one(HeatMap)).splitlines()
        assert len(tall) == 9 and tall[0].split()[0] == "E0"
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert app.screen.has_class("-short") and app.screen.has_class("-narrow")
        assert not app.query_one("#lr").display and not app.query_one("#memory").display
        short = text_of(app.query_one(HeatMap)).splitlines()
        assert len(short) == 5 and short[0].split()[0] == "L0"  # experts x layers on short screens
        assert app.query_one(ProgressPanel).region.height >= 9  # the numbers stay whole
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert app.query_one("#lr").display


async def test_help_screen(tmp_path):
    app = DashboardApp(copy_run(tmp_path, "dense"))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_panels_keep_updating_under_a_dialog(tmp_path):
    lines = fixture_lines("moe")
    run_dir = copy_run(tmp_path, "moe", lines=10)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        app = DashboardApp(run_dir, sleeper)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.state.last_step is not None)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            with open(run_dir / "events.jsonl", "a") as f:
                f.writelines(lines[10:])
            await wait_for(pilot, lambda: app.state.finished is not None)
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert "FINISHED" in text_of(app.query_one(HeaderPanel))
            assert "400 / 400" in text_of(app.query_one(ProgressPanel))
            assert "L5 E3 starved" in text_of(app.query_one(MoeSummary))
            assert app.is_running
    finally:
        sleeper.kill()
        sleeper.wait()


# --------------------------------------------------------------------------- live
async def test_live_tail_updates_and_keys_write_control_requests(tmp_path):
    lines = fixture_lines("dense")
    run_dir = copy_run(tmp_path, "dense", lines=16)  # run_started + steps 10..150 (with an eval/ckpt)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        app = DashboardApp(run_dir, sleeper)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.state.last_step is not None)
            await pilot.pause()
            step = app.state.last_step
            progress = text_of(app.query_one(ProgressPanel))
            assert f"{step.step} / 300" in progress
            assert "ETA    0:00:" in progress and f"0:00:{step.eta_s:02.0f}" in progress
            assert "RUNNING" in text_of(app.query_one(HeaderPanel))
            with open(run_dir / "events.jsonl", "a") as f:
                f.writelines(lines[16:26])
            await wait_for(pilot, lambda: app.state.last_step.step > step.step)
            await pilot.pause()
            assert f"{app.state.last_step.step} / 300" in text_of(app.query_one(ProgressPanel))

            await pilot.press("s")
            assert read_control(run_dir)["command"] == "save"
            await pilot.press("p")
            assert read_control(run_dir)["command"] == "pause"
            await pilot.press("p")  # again before the trainer answered: undoes the request
            assert read_control(run_dir)["command"] == "resume"
            await pilot.press("p")
            assert read_control(run_dir)["command"] == "pause"
            with open(run_dir / "events.jsonl", "a") as f:
                f.write(json.dumps({"v": 1, "type": "paused", "time": 1750000100.0, "step": 200}) + "\n")
            await wait_for(pilot, lambda: app.state.paused)
            await pilot.pause()
            assert "PAUSED" in text_of(app.query_one(HeaderPanel))
            await pilot.press("p")
            assert read_control(run_dir) == {**read_control(run_dir), "command": "resume", "seq": 5}

            await pilot.press("l")
            assert "loss (log y)" in text_of(app.query_one(LossPlot))
            await pilot.press("l")
            assert "loss (log y)" not in text_of(app.query_one(LossPlot))

            await pilot.press("q")
            assert isinstance(app.screen, QuitScreen)
            await pilot.press("c")
            assert not isinstance(app.screen, QuitScreen)
            await pilot.press("q", "d")
        assert app.return_value == DashboardResult("detached")
        assert sleeper.poll() is None  # detaching leaves the trainer alone
        messages = []
        assert exit_code_for(app.return_value, app, messages.append) == 0
        assert f"minimind watch {run_dir}" in messages[0]
    finally:
        sleeper.kill()
        sleeper.wait()


async def test_quit_stop_waits_for_the_trainer_to_save_and_exit(tmp_path, fake_trainer):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = fake_trainer(run_dir, "dense", 20)
    app = DashboardApp(run_dir, proc)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.last_step is not None and app.state.last_step.step == 160)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.state.last_checkpoint.reason == "request")
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("s")
        await wait_for(pilot, lambda: app.return_value is not None)
    assert app.return_value == DashboardResult("ended", 0)
    assert proc.returncode == 0  # a clean stop exits 0 (torchrun would call anything else a crash)
    assert read_control(run_dir)["command"] == "stop"
    assert exit_code_for(app.return_value, app) == 130  # run_outcome: stopped after saving


async def test_ctrl_c_stops_the_trainer(tmp_path, fake_trainer):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = fake_trainer(run_dir, "moe", 10)
    app = DashboardApp(run_dir, proc)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state.started is not None)
        await pilot.press("ctrl+c")
        # The fake trainer may already have saved and exited by the time the header is read.
        header = text_of(app.query_one(HeaderPanel))
        assert "STOPPING" in header or "STOPPED" in header
        await wait_for(pilot, lambda: app.return_value is not None)
    assert app.return_value == DashboardResult("ended", 0)
    assert read_control(run_dir)["command"] == "stop"


async def test_sigkilled_trainer_shows_failure_and_exits_nonzero(tmp_path, fake_trainer):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = fake_trainer(run_dir, "dense", 12)
    app = DashboardApp(run_dir, proc)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.last_step is not None)
        os.kill(proc.pid, signal.SIGKILL)
        await wait_for(pilot, lambda: app.query_one(FailurePanel).display, timeout=5)
        await pilot.pause()
        text = text_of(app.query_one(FailurePanel))
        assert "killed by SIGKILL (exit code 137)" in text
        assert "fake trainer idle" in text  # the tail of trainer.log
        assert "FAILED" in text_of(app.query_one(HeaderPanel))
        await pilot.press("q")  # nothing left to stop: no dialog
    assert app.return_value == DashboardResult("ended", -9)
    assert exit_code_for(app.return_value, app) == 137


async def test_watch_mode_follows_a_background_run_until_its_pid_dies(tmp_path, fake_trainer):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = fake_trainer(run_dir, "dense", 12)
    app = DashboardApp(run_dir)  # watch mode: only the pid in run_started
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.last_step is not None)
        assert app.state.started.pid == proc.pid and app.live
        await pilot.press("s")
        await wait_for(pilot, lambda: app.state.last_checkpoint is not None
                       and app.state.last_checkpoint.reason == "request")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()  # reaped, as the shell that started it would
        await wait_for(pilot, lambda: app.state.process_gone, timeout=5)
        await pilot.pause()
        assert "without a run_finished event" in text_of(app.query_one(EventLog))
        assert app.query_one(FailurePanel).display
        await pilot.press("q")
    assert exit_code_for(app.return_value, app, lambda _: None) == 1


async def test_watch_mode_stop_ends_the_background_run_cleanly(tmp_path, fake_trainer):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = fake_trainer(run_dir, "dense", 12)
    app = DashboardApp(run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.last_step is not None)
        await pilot.press("q", "s")

        def reaped() -> bool:  # the fake trainer is our child: reap it so its pid disappears
            return proc.poll() is not None and app.return_value is not None

        await wait_for(pilot, reaped)
    assert app.state.status == "stopped"
    messages = []
    assert exit_code_for(app.return_value, app, messages.append) == 130
    assert messages == [f"stopped after saving a checkpoint at step 100. Resume with:\n  minimind resume {run_dir}"]


@pytest.mark.parametrize("watching", [False, True], ids=["pretrain", "watch"])
async def test_stop_exits_130_attached_or_watching(tmp_path, fake_trainer, watching):
    """Stop in the dashboard gives the same exit code under pretrain/resume (the process is ours)
    and under watch (only the pid in run_started): 130, stopped after saving."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = fake_trainer(run_dir, "dense", 12)
    app = DashboardApp(run_dir, None if watching else proc)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.last_step is not None)
        assert run_is_live(run_dir)
        await pilot.press("q", "s")
        await wait_for(pilot, lambda: proc.poll() is not None and app.return_value is not None)
    assert proc.returncode == 0
    assert [e["type"] for e in read_events(run_dir / "events.jsonl")[-2:]] == ["checkpoint", "run_stopped"]
    assert not run_is_live(run_dir)
    assert app.state.status == "stopped"
    assert any("stopped at step 100 (request)" in line.text for line in app.state.log)
    messages = []
    assert exit_code_for(app.return_value, app, messages.append) == 130
    # pretrain/resume print the end themselves; watch says it here, with the way on
    assert messages == ([f"stopped after saving a checkpoint at step 100. Resume with:\n  minimind resume {run_dir}"]
                        if watching else [])


@pytest.mark.parametrize("watching", [False, True], ids=["pretrain", "watch"])
def test_dashboard_crash_on_ctrl_c_still_stops_with_130(tmp_path, fake_trainer, watching):
    """A SIGINT that escapes the app (``run_dashboard``'s KeyboardInterrupt path) stops the run
    like ctrl+c in the app, and reports it by the same rule."""
    import time

    from minimind_cli.dashboard import _stop_after_crash

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = fake_trainer(run_dir, "dense", 12)
    deadline = time.monotonic() + 10
    while not run_is_live(run_dir):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    if watching:  # the fake trainer is our child: reap it once it exits so its pid disappears
        import threading

        threading.Thread(target=proc.wait, daemon=True).start()
    assert _stop_after_crash(run_dir, None if watching else proc, "interrupted", timeout=10) == 130
    assert read_events(run_dir / "events.jsonl")[-1]["type"] == "run_stopped"
    assert _stop_after_crash(run_dir, None if watching else proc, "interrupted") == 130  # already gone


# --------------------------------------------------------------------------- pieces
def test_state_resume_drops_history_past_the_checkpoint():
    from minimind.events import read_events

    events = read_events(FIXTURES / "dense.jsonl")
    state = RunState()
    state.apply_all([e for e in events if e["type"] != "run_finished"])
    resumed = {**events[0], "start_step": 200, "resumed_from": "checkpoints/step_200", "time": events[-1]["time"]}
    state.apply(resumed)
    assert state.steps[-1] == 200 and state.val_steps[-1] == 200
    assert state.status == "running" and "resumed from checkpoints/step_200" in state.log[-1].text


def test_state_follows_run_outcome():
    events = read_events(FIXTURES / "stopped_v2.jsonl")
    state = RunState()
    state.apply_all(events[:-1])
    assert state.status == "running"
    state.apply(events[-1])  # run_stopped: stopped even before the process is seen to go
    assert state.status == "stopped" and state.outcome.exit_code == 130
    assert "minimind resume /tmp/dash/out/runs/tiny1" in state.log[-1].full  # from the checkpoint path
    state.trainer_exited(0)
    assert state.status == "stopped" and state.log[-1].text.startswith("stopped at step 64")

    v1 = read_events(FIXTURES / "real_tiny_stopped.jsonl")
    state = RunState()
    state.apply_all(v1[:-1])
    assert state.status == "running"
    state.apply({"v": 2, "type": "info", "time": v1[-1]["time"], "message": "a note"})
    assert state.log[-1].kind == "info" and state.status == "running"
    state.apply(v1[-1])  # the warning after a request checkpoint at the same step: a version-1 stop
    assert state.status == "stopped"
    state.trainer_exited(None)
    assert state.status == "stopped" and not state.has_failure

    state = RunState()
    state.apply_all([e for e in read_events(FIXTURES / "dense.jsonl") if e["type"] != "run_finished"])
    state.trainer_exited(-9)
    assert state.status == "failed" and state.outcome.exit_code == 137
    state = RunState()
    state.apply_all(v1[:3])
    state.trainer_exited(130)
    assert state.status == "interrupted"


def test_info_event_is_a_plain_log_line():
    state = RunState()
    state.apply({"v": 2, "type": "info", "time": 1.0, "message": "initialised weights from x", "step": 0})
    assert (state.log[-1].kind, state.log[-1].text) == ("info", "initialised weights from x (step 0)")
    state.apply({"v": 2, "type": "info", "time": 1.0, "message": "no step"})
    assert state.log[-1].text == "no step"


def test_moe_alert_thresholds():
    # 4 experts, top-2: fair share 25% of picks; starved under 1.25%; dominant over 40% (80% of 1/2).
    assert [a.kind for a in moe_alerts([[0.3, 0.3, 0.39, 0.01]], 2)] == ["starved"]
    assert moe_alerts([[0.25, 0.25, 0.25, 0.25]], 2) == []
    alerts = moe_alerts([[0.45, 0.2, 0.2, 0.15]], 2)
    assert [(a.expert, a.kind) for a in alerts] == [(0, "dominant")]
    assert moe_alerts([[0.45, 0.2, 0.2, 0.15]], 1) == []  # top-1: dominant means over 80%
    assert [a.kind for a in moe_alerts([[2, 0, 0, 0]], 1)] == ["dominant", "starved", "starved", "starved"]


def test_colours_are_named_once_in_the_palette():
    """The panels, plots and apps take their colours from palette.py; the comparison's layout is
    in compare.tcss, not inline."""
    import re
    from pathlib import Path

    from minimind_cli.dashboard import compare, palette

    here = Path(palette.__file__).parent
    for path in here.glob("*.py"):
        if path.name != "palette.py":
            assert not re.search(r"#[0-9a-fA-F]{6}\b", path.read_text(encoding="utf-8")), path.name
    assert not compare.CompareApp.CSS and "compare.tcss" in compare.CompareApp.CSS_PATH
    assert set(palette.STATUS_STYLE) >= {"waiting", "running", "paused", "finished", "stopped", "failed"}


def test_run_state_parts():
    """A resume rewinds the step points as one; the lifecycle and the log are parts of their own."""
    from minimind.events import read_events

    state = RunState()
    events = read_events(FIXTURES / "dense.jsonl")
    state.apply_all(events)
    assert state.steps == [p.step for p in state.series.points] and state.finished is state.life.finished
    assert state.log is state.logbook.lines
    state.apply({**events[0], "start_step": 100, "resumed_from": "checkpoints/step_100", "time": events[-1]["time"]})
    assert max(state.steps) == 100 and len(state.losses) == len(state.tokens) == len(state.series.points)
    assert state.finished is None and state.status == "running"


def test_event_types_the_dashboard_does_not_know_are_ignored():
    state = RunState()
    assert state.apply({"v": 3, "type": "from_a_newer_trainer", "time": 1.0, "step": 5}) == set()
    assert state.log == [] and state.steps == []


def test_unreadable_event_is_logged_not_fatal():
    state = RunState()
    state.apply({"type": "eval", "time": 1.0})  # no step
    assert state.log[-1].kind == "warning"


def test_watch_command_errors(tmp_path):
    missing = run_cli("watch", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "no such run directory" in missing.stderr
    assert "Traceback" not in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = run_cli("watch", str(tmp_path / "empty"))
    assert empty.returncode == 2 and "no events.jsonl" in empty.stderr
    piped = run_cli("watch", str(copy_run(tmp_path, "dense")))  # stdout is a pipe here
    assert piped.returncode == 2 and "needs a terminal" in piped.stderr
    twice = run_cli("watch", str(tmp_path / "dense"), str(tmp_path / "dense"))
    assert twice.returncode == 2 and "the same run is named twice" in twice.stderr
    one_bad = run_cli("watch", str(tmp_path / "dense"), str(tmp_path / "nope"))
    assert one_bad.returncode == 2 and "nope: no such run directory" in one_bad.stderr


def test_dashboard_never_loads_torch(tmp_path):
    """Run the whole app headless on a recording, in a fresh interpreter, and look at sys.modules."""
    run_dir = copy_run(tmp_path, "moe")
    code = f"""
import asyncio, sys
from minimind_cli.dashboard.app import DashboardApp
import minimind_cli.commands.watch
async def main():
    app = DashboardApp({str(run_dir)!r})
    async with app.run_test(size=(80, 24)) as pilot:
        while app.state.finished is None:
            await pilot.pause(0.05)
asyncio.run(main())
print("torch" in sys.modules, "minimind.model" in sys.modules, "minimind.training" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False"]


@pytest.mark.parametrize("code,words", [(-9, "killed by SIGKILL (exit code 137)"), (1, "exit code 1"),
                                        (130, "interrupted (exit code 130)")])
def test_exit_status_words(code, words):
    from minimind_cli.dashboard.format import exit_status

    assert exit_status(code) == words


async def test_a_schedule_replanned_on_resume_is_drawn_marked_and_logged(tmp_path):
    run_dir = copy_run(tmp_path, "dense")
    events = read_events(run_dir / "events.jsonl")
    first = events[0]
    plan = [[s, 2e-3 if s < 200 else 2e-3 - (s - 200) * 1e-5] for s in range(0, 400, 10)]
    # The resumed trainer is alive (this process's pid): with the recorded, long-gone pid the watch would
    # soon call the run failed and fold the lr panel away, before or after it was drawn (a race).
    resumed = {**first, "start_step": 200, "total_steps": 400, "resumed_from": {"path": "c/step_200", "step": 200},
               "lr_schedule": plan, "schedule_changed_at": 200, "time": events[-1]["time"] + 1, "pid": os.getpid()}
    with open(run_dir / "events.jsonl", "a") as f:
        f.write(json.dumps(resumed) + "\n")
    app = DashboardApp(run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: "▼" in text_of(app.query_one(LrPlot)))
        lr = text_of(app.query_one(LrPlot))
        assert "▼" in lr and "re-planned" in app.query_one(LrPlot).border_subtitle
        assert "lr schedule re-planned at step 200 for 400 steps" in text_of(app.query_one(EventLog))
    (tmp_path / "plain").mkdir()
    plain = DashboardApp(copy_run(tmp_path / "plain", "dense"))
    async with plain.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: plain.state.finished is not None)
        await pilot.pause()
        assert "▼" not in text_of(plain.query_one(LrPlot))
