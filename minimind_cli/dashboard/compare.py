"""``minimind watch RUN_A RUN_B [...]``: several runs on shared axes.

Each run is followed like a single-run watch (its own ``RunState`` and tailing thread, live or a
replay); nothing is ever sent to a trainer from here. Run i gets colour ``PALETTE[i]`` in the
table and the plot, in command-line order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from minimind.config import differing_settings
from minimind_cli.dashboard import format as fmt
from minimind_cli.dashboard.messages import EventsRead, TrainerExited
from minimind_cli.dashboard.palette import SERIES as PALETTE
from minimind_cli.dashboard.palette import STATUS_STYLE, css_variables
from minimind_cli.dashboard.plots import X_AXES, CompareLossPlot
from minimind_cli.dashboard.report import write_report_in_background
from minimind_cli.dashboard.screens import HelpScreen
from minimind_cli.dashboard.state import RunState
from minimind_cli.dashboard.tailer import Tailer


def config_differences(configs: list[dict[str, Any] | None]) -> list[list[str]]:
    """Per run, ``key=value`` for every resolved-config setting that is not the same in all runs
    (``minimind.config.differing_settings``)."""
    flats, names = differing_settings(configs)
    return [[f"{name}={_value(flat.get(key))}" for key, name in names.items()] for flat in flats]


def _value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


COMPARE_REPORT_FILE = "compare-report.html"  # the r key writes it in the current directory


class CompareTable(Static):
    """One row per run: its colour, name, status, profile, progress, latest numbers and what
    differs in its config."""

    def show(self, states: list[RunState], names: list[str]) -> None:
        diffs = config_differences([s.started.config if s.started is not None else None for s in states])
        wide = (self.size.width or self.app.size.width) >= 110
        table = Table(box=None, padding=(0, 1), expand=True, header_style="dim")
        table.add_column("", no_wrap=True)
        table.add_column("run", no_wrap=True, overflow="ellipsis", max_width=28)
        table.add_column("status", no_wrap=True)
        table.add_column("profile", no_wrap=True)
        table.add_column("step", no_wrap=True, justify="right")
        table.add_column("loss", no_wrap=True, justify="right")
        table.add_column("val", no_wrap=True, justify="right")
        if wide:
            table.add_column("tok/s", no_wrap=True, justify="right")
            table.add_column("elapsed", no_wrap=True, justify="right")
        table.add_column("differs", overflow="fold", ratio=1, min_width=16)
        for i, (state, name) in enumerate(zip(states, names, strict=True)):
            last = state.last_step
            label, style = STATUS_STYLE.get(state.status, (state.status.upper(), "reverse"))
            step, total = state.completed_step, state.total_steps
            cells = [Text("━●", style=PALETTE[i % len(PALETTE)]), Text(name, style="bold"),
                     Text(label, style=style), str((state.started and state.started.profile) or fmt.NONE),
                     f"{fmt.count(step)}/{fmt.count(total)}" if step is not None else fmt.NONE,
                     fmt.fixed(last and last.loss), fmt.fixed(state.val_losses[-1] if state.val_losses else None)]
            if wide:
                cells += [fmt.count(last and last.tokens_per_s), fmt.duration(state.elapsed_at())]
            table.add_row(*cells, " ".join(diffs[i]) or "same config")
        self.update(table)


class CompareApp(App[int]):
    CSS_PATH = ["dashboard.tcss", "compare.tcss"]  # the dialogs' style, then the comparison's layout
    TITLE = "minimind"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("x", "x_axis", "X-axis: step/tokens/time"),
        Binding("l", "log_scale", "Log-y"),
        Binding("r", "report", "Report", show=False),
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("ctrl+c", "quit", show=False, priority=True),
    ]

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return {**super().get_theme_variable_defaults(), **css_variables()}  # $mm-green ... in .tcss

    def __init__(self, run_dirs: list[str | Path], *, poll_interval: float | None = None):
        super().__init__()
        self.run_dirs = [Path(d) for d in run_dirs]
        self.names = unique_names(self.run_dirs)
        self.states = [RunState(run_dir=d) for d in self.run_dirs]
        self.x_axis = "step"
        self.log_y = False
        self._tailers = [Tailer(self, d, None, interval=poll_interval, key=i) for i, d in enumerate(self.run_dirs)]

    def compose(self) -> ComposeResult:
        yield CompareTable(id="runs")
        yield CompareLossPlot(id="loss")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#loss").border_title = "loss"
        self.redraw()
        for tailer in self._tailers:
            tailer.start()

    def on_resize(self) -> None:
        self.call_after_refresh(self.redraw)

    def on_unmount(self) -> None:
        for tailer in self._tailers:
            tailer.stop()

    def on_events_read(self, message: EventsRead) -> None:
        self.states[message.key].apply_all(message.events)
        self.redraw()

    def on_trainer_exited(self, message: TrainerExited) -> None:
        self.states[message.key].trainer_exited(message.returncode, message.log_tail, message.when)
        self.redraw()

    def redraw(self) -> None:
        self.query_one(CompareTable).show(self.states, self.names)
        plot = self.query_one(CompareLossPlot)
        plot.x_axis, plot.log_y = self.x_axis, self.log_y
        plot.show_runs(self.states, self.names)

    def action_x_axis(self) -> None:
        self.x_axis = X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)]
        self.redraw()

    def action_log_scale(self) -> None:
        self.log_y = not self.log_y
        self.redraw()

    def action_report(self) -> None:
        write_report_in_background(self, self.run_dirs, Path(COMPARE_REPORT_FILE))

    def action_help(self) -> None:
        self.push_screen(HelpScreen(compare=True))

    async def action_quit(self) -> None:
        self.exit(0)  # watching only: the runs go on as they were


def unique_names(run_dirs: list[Path]) -> list[str]:
    """Each run's directory name, with its parent added where two names are the same."""
    names = [d.name or str(d) for d in run_dirs]
    return [f"{d.parent.name}/{n}" if names.count(n) > 1 else n for d, n in zip(run_dirs, names, strict=True)]
