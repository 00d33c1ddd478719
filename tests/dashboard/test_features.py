"""Pilot tests of what the dashboard learned from the newer optional event fields: samples,
heartbeats, spikes, an out-of-memory retry, memory totals, curriculum phases, router bias, and the
comparison of several runs (``minimind watch A B``)."""

import json
import subprocess
import sys
import time

import pytest

from minimind.control import COMMANDS, CONTROL_FILE
from minimind.events import read_events
from minimind_cli.dashboard.app import DashboardApp
from minimind_cli.dashboard.compare import CompareApp, CompareTable, config_differences
from minimind_cli.dashboard.format import duration
from minimind_cli.dashboard.plots import PALETTE, CompareLossPlot, LossPlot
from minimind_cli.dashboard.samples import SamplesPanel
from minimind_cli.dashboard.screens import HelpScreen, QuitScreen
from minimind_cli.dashboard.signals import SpikeDetector
from minimind_cli.dashboard.state import NOTICE_STEPS, RunState
from minimind_cli.dashboard.widgets import (
    EventLog,
    FailurePanel,
    HeaderPanel,
    MoeSummary,
    NoticeBar,
    ProgressPanel,
)
from tests.dashboard.conftest import FIXTURES, copy_run, fixture_lines, wait_for
from tests.dashboard.test_dashboard import text_of


def plot_text(plot) -> str:
    return plot.render().plain


@pytest.fixture
def sleeper():
    """A live process standing in for a trainer the dashboard follows (it never writes)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


# --------------------------------------------------------------------------- samples
async def test_samples_panel_shows_the_newest_and_scrolls_back(tmp_path):
    app = DashboardApp(copy_run(tmp_path, "samples"))
    samples = [e for e in read_events(FIXTURES / "samples.jsonl") if e["type"] == "sample"]
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.finished is not None)
        await pilot.pause()
        panel = app.query_one(SamplesPanel)
        assert panel.display
        shown = text_of_samples(panel)
        assert shown.startswith("step 300  (newest")
        newest = [s for s in samples if s["step"] == 300]
        assert len(newest) == 3
        first_block = shown.split("step 250")[0]
        for sample in newest:  # prompt -> continuation, whitespace visible
            assert sample["prompt"] + " → " + sample["text"].replace("\n", "\\n") in first_block
        await pilot.press("left_square_bracket")
        shown = text_of_samples(panel)
        assert shown.startswith("step 250  (5 of 6")
        for sample in (s for s in samples if s["step"] == 250):
            assert sample["prompt"] + " → " + sample["text"].replace("\n", "\\n") in shown
        for _ in range(10):  # stops at the first sampling step
            await pilot.press("left_square_bracket")
        assert text_of_samples(panel).startswith("step 50  (1 of 6")
        for _ in range(5):
            await pilot.press("right_square_bracket")
        assert text_of_samples(panel).startswith("step 300  (newest")  # follows the newest again


def y_ticks(plot: str) -> list[float]:
    return [float(row.split("┤")[0].strip("│ ")) for row in plot.splitlines() if "┤" in row]


def text_of_samples(panel) -> str:
    return panel.render().plain


async def test_samples_follow_a_live_run_and_hide_behind_v_when_small(tmp_path, sleeper):
    lines = fixture_lines("samples")
    cut = next(i for i, line in enumerate(lines) if '"sample"' in line)
    run_dir = copy_run(tmp_path, "samples", lines=cut)
    app = DashboardApp(run_dir, sleeper)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state.last_step is not None)
        assert "no samples yet" in text_of_samples(app.query_one(SamplesPanel))
        with open(run_dir / "events.jsonl", "a") as f:
            f.writelines(lines[cut:cut + 3])
        await wait_for(pilot, lambda: len(app.state.samples) == 3)
        await pilot.pause()
        assert not app.query_one(SamplesPanel).display  # 80x24: behind the v key
        await pilot.press("v")
        await pilot.pause()
        assert app.query_one(SamplesPanel).display and not app.query_one(LossPlot).display
        assert text_of_samples(app.query_one(SamplesPanel)).startswith("step 50  (newest")
        await pilot.press("v")
        await pilot.pause()
        assert app.query_one(LossPlot).display and not app.query_one(SamplesPanel).display


async def test_g_asks_the_trainer_for_samples(tmp_path, sleeper):
    run_dir = copy_run(tmp_path, "samples", lines=12)
    app = DashboardApp(run_dir, sleeper)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.last_step is not None)
        await pilot.press("g")
        await pilot.pause()
        if "sample" in COMMANDS:  # the trainer side knows the command: it is written for it
            assert json.loads((run_dir / CONTROL_FILE).read_text())["command"] == "sample"
            assert "samples requested" in text_of(app.query_one(EventLog))
        else:
            assert not (run_dir / CONTROL_FILE).exists()


def test_resume_drops_samples_past_the_checkpoint():
    events = read_events(FIXTURES / "samples.jsonl")
    state = RunState()
    state.apply_all([e for e in events if e["type"] != "run_finished"])
    assert state.sample_steps() == [50, 100, 150, 200, 250, 300]
    state.apply({**events[0], "start_step": 200, "resumed_from": "checkpoints/step_200", "time": events[-1]["time"]})
    assert state.sample_steps() == [50, 100, 150, 200]
    assert len(state.tokens) == len(state.steps) == len(state.grad_norms) == 20


# --------------------------------------------------------------------------- heartbeat / ticking
@pytest.mark.slow  # waits for the clock
async def test_heartbeats_and_the_local_clock_keep_progress_moving(tmp_path, sleeper):
    run_dir = tmp_path / "live"
    run_dir.mkdir()
    events = read_events(FIXTURES / "samples.jsonl")
    now = time.time()
    started = {**events[0], "time": now - 30}
    step = next(e for e in events if e["type"] == "step" and e["step"] == 20)
    with open(run_dir / "events.jsonl", "w") as f:
        f.write(json.dumps(started) + "\n" + json.dumps({**step, "time": now - 1, "elapsed_s": 29.0}) + "\n")
    app = DashboardApp(run_dir, sleeper)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.last_step is not None)
        await pilot.pause()
        progress = text_of(app.query_one(ProgressPanel))
        assert "▸ step 21" in progress and "20 / 300" in progress
        first = app.state.elapsed_at(time.time())
        assert 29.5 < first < 35  # the step said 29 s, one second before it was read
        with open(run_dir / "events.jsonl", "a") as f:
            f.write(json.dumps({"v": 2, "type": "heartbeat", "time": time.time(), "step": 23,
                                "total_steps": 300, "elapsed_s": 31.0}) + "\n")
        await wait_for(pilot, lambda: app.state.heartbeat is not None)
        await pilot.pause()
        progress = text_of(app.query_one(ProgressPanel))
        assert "▸ step 24" in progress and "23 / 300" in progress
        before = progress.split("elapsed")[1].split()[0]
        await pilot.pause(2.2)  # no event: the 1 s timer ticks the elapsed time on
        after = text_of(app.query_one(ProgressPanel)).split("elapsed")[1].split()[0]
        assert after > before, (before, after)


def test_elapsed_does_not_tick_on_a_replay_or_an_old_recording():
    state = RunState()
    state.apply_all(read_events(FIXTURES / "dense.jsonl"))
    assert state.elapsed_at(time.time()) == state.finished.elapsed_s  # finished: the final figure
    running = RunState()
    running.apply_all([e for e in read_events(FIXTURES / "dense.jsonl") if e["type"] != "run_finished"])
    last = running.last_step.elapsed_s
    assert last <= running.elapsed_at(time.time()) < last + 5  # recorded long ago: its age is not counted


# --------------------------------------------------------------------------- spikes, OOM, memory, phases
def test_spike_rule():
    detector = SpikeDetector()
    values = [5.0 + 0.05 * ((i * 7) % 5 - 2) for i in range(30)]
    assert [detector.feed(v) for v in values] == [None] * 30  # noise never alerts
    spike = detector.feed(7.0)
    assert spike is not None and spike.value == 7.0 and spike.sigmas > 4
    assert detector.feed(7.1) is None  # the same episode: one alert
    assert detector.feed(5.0) is None and detector.feed(float("nan")) is None
    assert detector.feed(7.0) is not None  # a new episode
    early = SpikeDetector()
    assert [early.feed(v) for v in (8.0, 7.0, 9.0, 6.0)] == [None] * 4  # too few points to judge


async def test_spike_alerts_in_the_log_and_as_a_notice(tmp_path, sleeper):
    lines = fixture_lines("signals")
    spike_at = next(i for i, line in enumerate(lines) if '"step":230,' in line and '"type":"step"' in line)
    run_dir = copy_run(tmp_path, "signals", lines=spike_at)
    app = DashboardApp(run_dir, sleeper)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.last_step is not None and app.state.last_step.step == 220)
        await pilot.pause()
        assert [n.kind for n in app.state.alerts] == ["oom_retry"]  # no spike before step 230
        with open(run_dir / "events.jsonl", "a") as f:
            f.write(lines[spike_at])
        await wait_for(pilot, lambda: app.state.notice is not None and app.state.notice.kind == "loss_spike")
        await pilot.pause()
        notice = app.query_one(NoticeBar)
        assert notice.display and "loss spike at step 230: 6.115" in text_of(notice)
        assert "loss spike at step 230" in text_of(app.query_one(EventLog))
        with open(run_dir / "events.jsonl", "a") as f:  # the spike passes: the notice goes after a while
            for line in lines[spike_at + 1:]:
                event = json.loads(line)
                if event["type"] == "step" and event["step"] >= 260:
                    break
                f.write(line)
        await wait_for(pilot, lambda: app.state.last_step.step == 250)
        await pilot.pause()
        assert app.state.notice is None or app.state.notice.age <= NOTICE_STEPS
        assert not any("grad-norm spike" in line.text for line in app.state.log)


async def test_signals_replay_oom_memory_phases(tmp_path):
    app = DashboardApp(copy_run(tmp_path, "signals"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.finished is not None)
        await pilot.pause()
        log = [line.text for line in app.state.log]
        assert "out of memory at step 140: retrying with micro-batch 8 x 2 accumulation, peak 7.25 GiB" in log
        assert [t for t in log if "spike" in t] == [
            "loss spike at step 230: 6.115, 4.2 std above its average 4.817",
            "grad-norm spike at step 260: 9.5, 139.2 std above its average 0.517"]
        assert any(t.startswith("batch size auto: micro-batch 16 x 1 accumulation = 16 per step") for t in log)
        assert "sequence length 64 -> 128 at step 100" in log and "sequence length 128 -> 256 at step 190" in log
        memory = text_of(app.query_one("#memory-text"))
        assert "459M/7.75G" in memory and "│" in memory  # the bar and its safety limit mark
        assert "limit 6.98 GiB (10% safety margin)" in memory
        assert "estimate 321 MiB of 5.66 GiB free" in memory and "batch auto 16 x 1 = 16" in memory
        plot = app.query_one(LossPlot)
        assert "seq 128 256" in plot.border_subtitle
        assert plot_text(plot).count("│") > 2 * 10  # two phase lines run the height of the plot


async def test_dense_replay_raises_no_alert(tmp_path):
    app = DashboardApp(copy_run(tmp_path, "dense"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.finished is not None)
        await pilot.pause()
        assert app.state.alerts == [] and not app.query_one(NoticeBar).display
        assert "seq" not in app.query_one(LossPlot).border_subtitle


async def test_moe_router_bias_and_moe_only_help(tmp_path):
    app = DashboardApp(copy_run(tmp_path, "moe"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.finished is not None)
        await pilot.pause()
        bias = app.state.last_step.moe.router_bias
        layer, expert = max(((lay, e) for lay, row in enumerate(bias) for e in range(len(row))),
                            key=lambda p: abs(bias[p[0]][p[1]]))
        summary = text_of(app.query_one(MoeSummary))
        assert f"router bias max |b| {abs(bias[layer][expert]):.3g} at L{layer} E{expert}" in summary
        await pilot.press("question_mark")
        assert "MoE heat map" in str(app.screen.query_one("#help-text").content)
    dense = DashboardApp(copy_run(tmp_path, "dense"))
    async with dense.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(dense.screen, HelpScreen)
        assert "MoE" not in str(dense.screen.query_one("#help-text").content)


# --------------------------------------------------------------------------- polish
async def test_quit_dialog_names_its_keys(tmp_path, sleeper):
    app = DashboardApp(copy_run(tmp_path, "dense", lines=5), sleeper)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state.last_step is not None)
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        labels = [str(b.label) for b in app.screen.query("Button")]
        assert labels == ["Stop (s)", "Detach (d)", "Cancel (c)"]
        assert app.screen.query_one("#quit-keys").render().plain == "s stop  ·  d detach  ·  c / esc cancel"
        await pilot.press("c")


async def test_failure_panel_gives_the_resume_command(tmp_path):
    run_dir = copy_run(tmp_path, "failed")
    app = DashboardApp(run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.failed is not None)
        await pilot.pause()
        # A long path wraps at the panel's edge: read the text as one line.
        shown = text_of(app.query_one(FailurePanel)).replace("\n", "")
        assert f"Resume from step 100: minimind resume {run_dir}" in shown


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_the_resume_line_stays_in_view_under_a_long_traceback(tmp_path, size):
    """The panel has a maximum height: what is cut is the end of the traceback, never the action lines."""
    run_dir = tmp_path / "failed"
    run_dir.mkdir()
    lines = []
    for line in fixture_lines("failed"):
        event = json.loads(line)
        if event["type"] == "run_failed":
            event["error"] = "a long error message that names the file, the step and what to try " * 2
            event["traceback"] = "".join(f"  File \"minimind/deep_{i}.py\", line {i}, in f{i}\n" for i in range(40))
        lines.append(json.dumps(event) + "\n")
    (run_dir / "events.jsonl").write_text("".join(lines))
    app = DashboardApp(run_dir)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.state.failed is not None)
        await pilot.pause()
        panel = app.query_one(FailurePanel)
        shown = text_of(panel).splitlines()[:panel.content_size.height]  # the rows the panel has room for
        assert any("Resume from step 100" in row for row in shown), shown
        assert any("Press q to exit." in row for row in shown), shown
        assert not any("deep_39" in row for row in shown)  # the traceback is what got cut


async def test_a_dead_run_is_stamped_with_its_last_event_not_the_watch(tmp_path):
    """A run whose trainer vanished without an end event, watched later: the line about it carries
    the time of the run's last event."""
    lines = [line for line in fixture_lines("dense") if '"run_finished"' not in line]
    run_dir = tmp_path / "dead"
    run_dir.mkdir()
    (run_dir / "events.jsonl").write_text("".join(lines))
    app = DashboardApp(run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.process_gone)
        await pilot.pause()
        last = json.loads(lines[-1])
        ended = app.state.log[-1]
        assert "without a run_finished event" in ended.text
        assert ended.offset_s == pytest.approx(last["time"] - json.loads(lines[0])["time"])
        assert "ETA    —" in text_of(app.query_one(ProgressPanel))


async def test_one_point_gets_a_narrow_y_axis(tmp_path):
    app = DashboardApp(copy_run(tmp_path, "dense", lines=2))  # run_started and the first step
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.process_gone)
        await pilot.pause()
        loss = app.state.losses[0]
        ticks = y_ticks(plot_text(app.query_one(LossPlot)))
        assert loss - 0.5 < ticks[-1] < loss < ticks[0] < loss + 0.5, ticks


async def test_checkpoint_paths_are_cut_in_the_middle(tmp_path):
    app = DashboardApp(copy_run(tmp_path, "signals"))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state.finished is not None)
        await pilot.pause()
        rows = [r.rstrip() for r in text_of(app.query_one(EventLog)).splitlines()]
        checkpoint_rows = [r for r in rows if "checkpoint @ step 300" in r]
        assert checkpoint_rows and all(r.endswith("step_00000300") and "…" in r for r in checkpoint_rows)


@pytest.mark.parametrize("run", ["moe", "signals"])  # the fullest layouts (the snapshots cover the rest)
async def test_80x24_keeps_values_whole(tmp_path, run):
    app = DashboardApp(copy_run(tmp_path, run))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.state.ended)
        await pilot.pause()
        header = text_of(app.query_one(HeaderPanel)).splitlines()[0].rstrip()
        assert not header.endswith(("·", "…"))  # whole facts only
        if app.query_one(ProgressPanel).display:
            assert app.query_one(ProgressPanel).region.height >= 10
            progress = text_of(app.query_one(ProgressPanel))
            assert "elapsed" in progress and "ETA" in progress
        for widget in app.screen.query("*"):
            if widget.display and widget.region.width:
                assert widget.region.right <= 80 and widget.region.bottom <= 24


# --------------------------------------------------------------------------- comparison
def test_config_differences():
    a = {"model": {"hidden_size": 128}, "train": {"learning_rate": 0.002, "batch_size": 16}, "run": {"name": "a"}}
    b = {"model": {"hidden_size": 128}, "train": {"learning_rate": 0.0005, "batch_size": 16}, "run": {"name": "b"}}
    c = {"model": {"hidden_size": 256, "use_moe": True}, "train": {"learning_rate": 0.002, "batch_size": 16},
         "run": {"name": "c"}}
    assert config_differences([a, b]) == [["learning_rate=0.002"], ["learning_rate=0.0005"]]
    assert config_differences([a, b, c]) == [
        ["learning_rate=0.002", "hidden_size=128", "use_moe=—"],
        ["learning_rate=0.0005", "hidden_size=128", "use_moe=—"],
        ["learning_rate=0.002", "hidden_size=256", "use_moe=True"]]
    assert config_differences([a, a]) == [[], []]


async def test_two_run_overlay_and_x_axis_switch(tmp_path):
    runs = [copy_run(tmp_path, "dense"), copy_run(tmp_path, "slow_lr")]
    app = CompareApp(runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: all(s.finished is not None for s in app.states))
        await pilot.pause()
        table = text_of(app.query_one(CompareTable)).splitlines()
        dense_row = next(r for r in table if " dense " in r)
        slow_row = next(r for r in table if " slow_lr " in r)
        assert "FINISHED" in dense_row and "tiny" in dense_row and "300/300" in dense_row
        assert "learning_rate=0.002" in dense_row and "learning_rate=0.0005" in slow_row
        assert "4.435" in dense_row and "4.875" in slow_row  # each run's last loss
        plot = app.query_one(CompareLossPlot)
        legend = plot.border_subtitle
        assert legend.index(PALETTE[0]) < legend.index("dense") < legend.index(PALETTE[1]) < legend.index("slow_lr")
        steps = plot_text(plot)
        assert "vs step" in steps and steps.rstrip().splitlines()[-1].split() == ["0", "75", "150", "225", "300"]
        ticks = y_ticks(steps)  # the y-axis holds both runs, from the highest loss to the lowest
        assert ticks[0] >= max(max(s.losses) for s in app.states) - 0.1
        assert ticks[-1] <= min(min(s.losses) for s in app.states) + 0.1

        await pilot.press("x")
        tokens = plot_text(plot)
        assert "vs tokens" in tokens
        assert tokens.rstrip().splitlines()[-1].split() == ["0", "154K", "307K", "461K", "614K"]
        await pilot.press("x")
        wall = plot_text(plot)
        assert "vs wall time" in wall
        ticks = wall.rstrip().splitlines()[-1].split()
        last = max(s.elapsed[-1] for s in app.states)  # the latest step event of either run
        assert ticks[0] == "0:00:00" and ticks[-1] == duration(last) and duration(last).startswith("0:01:")
        await pilot.press("x")
        assert "vs step" in plot_text(plot)
        await pilot.press("q")
    assert app.return_value == 0


async def test_single_run_x_axis_switch(tmp_path):
    app = DashboardApp(copy_run(tmp_path, "dense"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.state.finished is not None)
        plot = app.query_one(LossPlot)
        await pilot.press("x")
        assert plot.x_axis == "tokens" and "loss vs tokens" in plot_text(plot)
        assert plot_text(plot).rstrip().splitlines()[-1].split()[-1] == "614K"
        await pilot.press("x", "x")
        assert plot.x_axis == "step" and "vs" not in plot_text(plot).splitlines()[0]


@pytest.mark.slow  # a stand-in trainer process
async def test_compare_follows_a_live_run(tmp_path, fake_trainer):
    live = tmp_path / "live"
    live.mkdir()
    proc = fake_trainer(live, "slow_lr", 12)
    app = CompareApp([copy_run(tmp_path, "dense"), live])
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.states[1].last_step is not None and app.states[0].finished is not None)
        assert app.states[1].status == "running" and proc.poll() is None
        await pilot.press("q")
    assert proc.poll() is None  # comparing never stops a run


def test_phase_changes_planned_or_seen():
    events = read_events(FIXTURES / "signals.jsonl")
    planned = RunState()
    planned.apply_all(events)
    assert planned.phase_changes == [(90, 128), (180, 256)]  # the plan, not the logged step after it
    seen = RunState()
    seen.apply_all([{**e, "seq_len_schedule": None} if e["type"] == "run_started" else e for e in events])
    assert seen.phase_changes == [(100, 128), (190, 256)]  # logged every 10 steps: the first showing it
    flat = RunState()
    flat.apply_all(read_events(FIXTURES / "dense.jsonl"))
    assert flat.phase_changes == []
