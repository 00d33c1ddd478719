"""The Textual app: panels fed by a tailing thread, keys that write control requests."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Footer

from minimind.control import COMMANDS, send_command
from minimind_cli.dashboard.messages import EventsRead, TrainerExited
from minimind_cli.dashboard.palette import css_variables
from minimind_cli.dashboard.plots import X_AXES, X_TITLES, LossPlot, LrPlot
from minimind_cli.dashboard.report import write_report_in_background
from minimind_cli.dashboard.samples import SamplesPanel
from minimind_cli.dashboard.screens import HelpScreen, QuitScreen
from minimind_cli.dashboard.state import PANELS, RunState
from minimind_cli.dashboard.tailer import Tailer
from minimind_cli.dashboard.widgets import (
    EventLog,
    FailurePanel,
    HeaderPanel,
    MemoryPanel,
    MoePanel,
    NoticeBar,
    ProgressPanel,
)

REPORT_FILE = "report.html"  # the r key writes RUN/report.html
STOP_TIMEOUT_S = 120.0  # how long "stop" waits for the trainer to save and exit


@dataclass
class DashboardResult:
    """How the app ended: "ended" (the trainer is gone, or a replay was closed), "detached"
    (training goes on in the background) or "stop_timeout" (asked to stop, it did not exit)."""

    action: str
    returncode: int | None = None


class DashboardApp(App[DashboardResult]):
    CSS_PATH = "dashboard.tcss"
    TITLE = "minimind"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("s", "save", "Save"),
        Binding("p", "pause", "Pause"),
        Binding("g", "sample", "Sample"),
        Binding("v", "samples_view", "Samples"),
        Binding("left_square_bracket", "samples(-1)", "Earlier samples", show=False),
        Binding("right_square_bracket", "samples(1)", "Later samples", show=False),
        Binding("x", "x_axis", "X-axis"),
        Binding("l", "log_scale", "Log-y"),
        Binding("r", "report", "Report", show=False),
        Binding("q", "quit_dialog", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+c", "stop", "Stop", show=False, priority=True),
        Binding("ctrl+q", "quit_dialog", show=False, priority=True),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **css_variables()}  # $mm-green ... in .tcss

    def __init__(self, run_dir: str | Path, process: subprocess.Popen | None = None, *,
                 stop_timeout: float = STOP_TIMEOUT_S, poll_interval: float | None = None):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.process = process
        self.stop_timeout = stop_timeout
        self.state = RunState(run_dir=self.run_dir)
        self.log_y = False
        self.x_axis = "step"
        self._pause_wanted: bool | None = None  # last pause/continue request not yet answered
        self._tailer = Tailer(self, self.run_dir, process, interval=poll_interval)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield HeaderPanel(id="header")
        yield NoticeBar(id="notice")
        yield FailurePanel(id="failure")
        with Horizontal(id="body"):
            with Vertical(id="plots"):
                yield LossPlot(id="loss")
                yield LrPlot(id="lr")
                yield SamplesPanel(id="samples")
            with Vertical(id="side"):
                yield ProgressPanel(id="progress")
                yield MemoryPanel(id="memory")
                yield MoePanel(id="moe")
        yield EventLog(id="log")
        yield Footer()

    def on_mount(self) -> None:
        self._main_screen = self.screen
        titles = {"loss": "loss", "lr": "learning rate", "progress": "progress", "memory": "memory",
                  "moe": "MoE expert load", "log": "events", "failure": "failure", "samples": "samples"}
        for widget_id, title in titles.items():
            self.query_one(f"#{widget_id}").border_title = title
        self._redraw(set(PANELS))
        self._tailer.start()
        self.set_interval(1.0, self._tick)

    def _tick(self) -> None:
        """Between events, elapsed time and the step in progress go on counting on a live run."""
        if self.live and self.state.status == "running":
            self._redraw({"progress"})

    def on_resize(self) -> None:
        self.call_after_refresh(self._redraw, {"header", "progress", "memory", "log"})

    def on_unmount(self) -> None:
        self._tailer.stop()

    # ------------------------------------------------------------------ messages
    def on_events_read(self, message: EventsRead) -> None:
        if any(e.get("type") in ("paused", "resumed") for e in message.events):
            self._pause_wanted = None
        self._redraw(self.state.apply_all(message.events))

    def on_trainer_exited(self, message: TrainerExited) -> None:
        was_stopping = self.state.stopping
        self._redraw(self.state.trainer_exited(message.returncode, message.log_tail, message.when))
        if was_stopping:
            self.exit(DashboardResult("ended", message.returncode))

    def _redraw(self, changed: set[str]) -> None:
        try:
            self._draw(changed)
        except NoMatches:
            pass  # the app is closing and its panels are gone (a timer fired after the last frame)

    def _draw(self, changed: set[str]) -> None:
        state = self.state
        main = self._main_screen  # not self.screen: a dialog may be on top while events arrive
        main.set_class(state.is_moe, "-moe")
        main.set_class(state.has_failure, "-failed")
        main.set_class(bool(state.samples), "-samples")
        if "header" in changed:
            main.query_one(HeaderPanel).show(state)
        if "notice" in changed:
            main.query_one(NoticeBar).show(state)
        if "loss" in changed:
            plot = main.query_one(LossPlot)
            plot.log_y, plot.x_axis = self.log_y, self.x_axis
            plot.show(state)
        if "lr" in changed:
            main.query_one(LrPlot).show(state)
        if "samples" in changed:
            main.query_one(SamplesPanel).show(state)
        if "progress" in changed:
            main.query_one(ProgressPanel).show(state, time.time() if self.live else None)
        if "memory" in changed:
            main.query_one(MemoryPanel).show(state)
        if "moe" in changed and state.is_moe:
            main.query_one(MoePanel).show(state)
        if "log" in changed:
            main.query_one(EventLog).show(state)
        if "failure" in changed and state.has_failure:
            main.query_one(FailurePanel).show(state)

    # ------------------------------------------------------------------ actions
    @property
    def live(self) -> bool:
        """A trainer is (as far as we know) still running and can take commands."""
        return not self.state.ended and (self.process is not None or self.state.started is not None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("save", "pause", "sample"):
            return True if self.live else None  # None: shown greyed out in the footer
        return True

    def _send(self, command: str) -> bool:
        if not self.live:
            self.notify("The run is not running.", severity="warning")
            return False
        try:
            send_command(self.run_dir, command)
        except OSError as exc:
            self.notify(f"Could not write the control file: {exc}", severity="error")
            return False
        return True

    def action_save(self) -> None:
        if self._send("save"):
            self._redraw(self.state.note("control", "save requested"))

    def action_pause(self) -> None:
        # Toggle from what was last asked for until the trainer answers (it acts between steps,
        # which can take seconds), so a second press undoes the first instead of repeating it.
        paused = self.state.paused if self._pause_wanted is None else self._pause_wanted
        command = "resume" if paused else "pause"
        if self._send(command):
            self._pause_wanted = command == "pause"
            self._redraw(self.state.note("control", f"{'continue' if command == 'resume' else 'pause'} requested"))

    def action_sample(self) -> None:
        if "sample" not in COMMANDS:
            self.notify("This version of the trainer cannot write samples on request.", severity="warning")
            return
        if self._send("sample"):
            self._redraw(self.state.note("control", "samples requested"))

    def action_samples(self, delta: int) -> None:
        self._main_screen.query_one(SamplesPanel).move(delta)

    def action_samples_view(self) -> None:
        self._main_screen.toggle_class("-samples-view")

    def action_x_axis(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)]
        self.notify(f"x-axis: {X_TITLES[self.x_axis]}", timeout=2)
        self._redraw({"loss"})

    def action_log_scale(self) -> None:
        self.log_y = not self.log_y
        self._redraw({"loss"})

    def action_report(self) -> None:
        write_report_in_background(self, [self.run_dir], self.run_dir / REPORT_FILE)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.state.is_moe))

    def action_quit_dialog(self) -> None:
        if not self.live or self.state.stopping:
            self._end()
            return
        self.push_screen(QuitScreen(), self._quit_choice)

    def _quit_choice(self, choice: str | None) -> None:
        if choice == "stop":
            self.action_stop()
        elif choice == "detach":
            self.exit(DashboardResult("detached"))

    def action_stop(self) -> None:
        if not self.live:
            self._end()
            return
        if self.state.stopping:
            return
        if self._send("stop"):
            self.state.stopping = True
            self._redraw(self.state.note(
                "control", f"stop requested: waiting up to {self.stop_timeout:.0f} s for the trainer "
                           "to save and exit") | {"header"})
            self.set_timer(self.stop_timeout, self._stop_timed_out)

    def _stop_timed_out(self) -> None:
        if self.state.stopping:
            self.exit(DashboardResult("stop_timeout"))

    def _end(self) -> None:
        self.exit(DashboardResult("ended", self.state.returncode))
