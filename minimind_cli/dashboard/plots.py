"""The plots: loss (one run, or several overlaid), learning rate. plotext inside Textual.

Legends are drawn in the panel's bottom border (plotext puts its own on the top left, over the
early high losses), the y range is set here (plotext spreads a single point over a huge range),
and the x-axis is the step, the tokens seen or the wall time (key ``x``).
"""

from __future__ import annotations

import math

from textual_plotext import PlotextPlot

from minimind_cli.dashboard import format as fmt
from minimind_cli.dashboard.palette import LOSS, PHASE, PLANNED, SERIES, SMOOTHED, VAL
from minimind_cli.dashboard.state import RunState

MAX_PLOT_POINTS = 1500  # plotext time grows with points; more than the plot's columns adds nothing
X_AXES = ("step", "tokens", "time")
X_TITLES = {"step": "step", "tokens": "tokens", "time": "wall time"}

# One colour per series or run, the same in the plot and in its legend (``palette``): run i of a
# comparison always gets PALETTE[i] (the order of the command line).
PALETTE = SERIES


def rgb(hex_colour: str) -> tuple[int, int, int]:
    value = hex_colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def thin(xs: list, ys: list) -> tuple[list, list]:
    """Drop points whose x or y is missing (NaN upstream) and keep at most MAX_PLOT_POINTS."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=False) if y is not None and x is not None]
    if len(pairs) > MAX_PLOT_POINTS:
        stride = -(-len(pairs) // MAX_PLOT_POINTS)
        pairs = pairs[::stride] + ([pairs[-1]] if (len(pairs) - 1) % stride else [])
    return [p[0] for p in pairs], [p[1] for p in pairs]


def legend(entries: list[tuple[str, str, str]]) -> str:
    """Textual markup for a legend: (marker, colour, label) entries."""
    return " ".join(f"[{colour}]{marker}[/] {_escape(label)}" for marker, colour, label in entries)


def _escape(text: str) -> str:
    return text.replace("[", r"\[")


def y_limits(plt, values: list[float], log_y: bool) -> None:
    """A y range around the data with a little room; a single value gets a small band, not the
    spread plotext picks on its own."""
    values = [v for v in values if v is not None and math.isfinite(v) and (v > 0 or not log_y)]
    if not values:
        return
    lo, hi = min(values), max(values)
    if log_y:
        lo, hi = math.log10(lo), math.log10(hi)
    pad = max((hi - lo) * 0.05, abs(hi) * 0.02 if not log_y else 0.01, 1e-6)
    plt.ylim(lo - pad, hi + pad)  # plotext takes log-scale limits as exponents


class Plot(PlotextPlot):
    """A plot whose figure is rebuilt from stored series at every render: plotext's log scale
    transforms the data in place when it builds, so a figure cannot be built twice."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._state: RunState | None = None

    def show(self, state: RunState) -> None:
        self._state = state
        self.redraw()

    def redraw(self) -> None:
        """Rebuild the figure once to learn the legend (set outside render, so the border shows
        it), then let the next render draw it."""
        self._entries: list[tuple[str, str, str]] = []
        self.render_figure()
        self.border_subtitle = legend(self._entries)
        self.refresh()

    def render_figure(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        self._entries = []
        self.draw(self._state or RunState())

    def render(self):
        self.render_figure()
        return super().render()

    def draw(self, state: RunState) -> None:
        raise NotImplementedError


def x_axis(plt, axis: str, end: float | None) -> None:
    """x from 0 to ``end`` with five ticks labelled in the axis' unit."""
    if not end or end <= 0:
        return
    plt.xlim(0, end)
    ticks = sorted({round(end * i / 4) for i in range(5)}) if axis == "step" else [end * i / 4 for i in range(5)]
    if axis == "tokens":
        plt.xticks(ticks, [fmt.count(t) for t in ticks])
    elif axis == "time":
        plt.xticks(ticks, [fmt.duration(t) for t in ticks])
    else:
        plt.xticks(ticks)


def x_end(state: RunState, axis: str) -> float | None:
    """The right end of the x-axis: the planned last step (in tokens: that step's tokens; in
    time: the elapsed time plus the trainer's ETA, or the end of the data)."""
    total = state.total_steps
    if axis == "step":
        return float(total) if total else None
    if axis == "tokens":
        end = state.x_of("tokens", total) if total else None
        return end if end is not None else max((t for t in state.tokens if t is not None), default=None)
    seen = max((t for t in state.elapsed if t is not None), default=None)
    last = state.last_step
    if state.status == "running" and seen is not None and last is not None and last.eta_s is not None:
        return seen + float(last.eta_s)
    return seen


def xs_of(state: RunState, axis: str, steps: list[int]) -> list[float | None]:
    """The x of each of ``steps`` (e.g. the validation steps) on ``axis``."""
    if axis == "step":
        return list(steps)
    return [state.x_of(axis, s) for s in steps]


class LossPlot(Plot):
    log_y = False
    x_axis = "step"

    def draw(self, state: RunState) -> None:
        plt = self.plt
        axis = self.x_axis
        title = "loss" + (" (log y)" if self.log_y else "") + ("" if axis == "step" else f" vs {X_TITLES[axis]}")
        plt.title(title)
        plt.yscale("log" if self.log_y else "linear")
        xs = state.series.column(axis)  # the step points' own x
        shown: list[float] = []
        entries = self._entries
        x, y = thin(xs, state.losses)
        if x:
            plt.plot(x, y, marker="braille", color=rgb(LOSS))
            shown += y
            entries.append(("━", LOSS, "loss"))
        x, y = thin(xs, state.loss_emas)
        if x:
            plt.plot(x, y, marker="braille", color=rgb(SMOOTHED))
            shown += y
            entries.append(("━", SMOOTHED, "smoothed"))
        x, y = thin(xs_of(state, axis, state.val_steps), state.val_losses)
        if x:
            plt.scatter(x, y, marker="●", color=rgb(VAL))
            shown += y
            entries.append(("●", VAL, "val"))
        phases = [(state.x_of(axis, step), seq) for step, seq in state.phase_changes]
        phases = [(px, seq) for px, seq in phases if px is not None]
        for px, _ in phases:
            plt.vertical_line(px, color=rgb(PHASE))
        if phases:
            entries.append(("┆", PHASE, "seq " + " ".join(str(seq) for _, seq in phases)))
        y_limits(plt, shown, self.log_y)
        x_axis(plt, axis, x_end(state, axis))


class LrPlot(Plot):
    def draw(self, state: RunState) -> None:
        plt = self.plt
        plt.title("learning rate")
        schedule = state.lr_schedule
        entries = self._entries
        if schedule:
            plt.plot([s for s, _ in schedule], [lr for _, lr in schedule], marker="braille", color=rgb(PLANNED))
            entries.append(("━", PLANNED, "planned"))
        changed = state.started.schedule_changed_at if state.started is not None else None
        if schedule and changed is not None:  # a resume re-planned it for a new length: mark where
            lr_there = min(schedule, key=lambda p: abs(p[0] - changed))[1]
            plt.scatter([changed], [lr_there], marker="▼", color=rgb(VAL))
            entries.append(("▼", VAL, "re-planned"))
        current = state.last_step
        if current is not None and current.lr is not None:
            plt.vertical_line(current.step, color="gray")
            plt.scatter([current.step], [current.lr], marker="◆", color=rgb(SMOOTHED))
            entries.append(("◆", SMOOTHED, "now"))
        total = state.total_steps
        x_axis(plt, "step", float(total) if total else None)


class CompareLossPlot(Plot):
    """Loss (lines) and validation loss (dots) of several runs on shared axes, a colour per run."""

    log_y = False
    x_axis = "step"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.states: list[RunState] = []
        self.names: list[str] = []

    def show_runs(self, states: list[RunState], names: list[str]) -> None:
        self.states, self.names = states, names
        self.redraw()

    def draw(self, state: RunState) -> None:
        plt = self.plt
        axis = self.x_axis
        plt.title(f"loss (lines) and val loss (dots) vs {X_TITLES[axis]}" + (", log y" if self.log_y else ""))
        plt.yscale("log" if self.log_y else "linear")
        shown: list[float] = []
        ends = []
        entries = self._entries
        for i, (run, name) in enumerate(zip(self.states, self.names, strict=True)):
            colour = PALETTE[i % len(PALETTE)]
            x, y = thin(run.series.column(axis), run.losses)
            if x:
                plt.plot(x, y, marker="braille", color=rgb(colour))
                shown += y
            x, y = thin(xs_of(run, axis, run.val_steps), run.val_losses)
            if x:
                plt.scatter(x, y, marker="●", color=rgb(colour))
                shown += y
            ends.append(x_end(run, axis))
            entries.append(("━●", colour, name))
        y_limits(plt, shown, self.log_y)
        x_axis(plt, axis, max((e for e in ends if e), default=None))
