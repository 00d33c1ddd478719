"""Modal screens: the quit choice and the help (its texts are here, with the screen that shows them)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from minimind_cli.dashboard.signals import (
    DOMINANT_FRACTION_OF_MAX,
    SPIKE_K,
    SPIKE_WINDOW,
    STARVED_FRACTION_OF_FAIR,
)

KEYS_HELP = """\
[b]Keys[/b]
  [b]s[/b]       save a checkpoint now (at the trainer's next step)
  [b]p[/b]       pause / continue training
  [b]g[/b]       write samples now (at the trainer's next step)
  [b][ ][/b]     samples of an earlier / a later step
  [b]v[/b]       samples view: the samples take the plots' place
  [b]x[/b]       loss plot x-axis: step / tokens / wall time
  [b]l[/b]       loss plot: logarithmic y axis on / off
  [b]r[/b]       write RUN/report.html: this run as one HTML page to share
  [b]q[/b]       quit: stop (save, end the run) / detach (it trains on) / cancel
  [b]ctrl+c[/b]  stop at once: the trainer saves a checkpoint and exits
  [b]?[/b]       this help

[b]Alerts[/b]
  A loss or grad-norm value more than {k:g} standard deviations (of the last
  {window} logged steps) above its moving average is a spike: a line in the
  events log and a highlighted notice. So is an out-of-memory retry.
"""

MOE_HELP = f"""
[b]MoE heat map[/b]
  Each cell: an expert's share of its layer's routed picks in the last
  logging interval. Green: fair share (1/experts), dark: fewer, red: more.
  [b]![/b] starved: under {STARVED_FRACTION_OF_FAIR:.0%} of the fair share.
  [b]![/b] dominant: over {DOMINANT_FRACTION_OF_MAX:.0%} of the most it can take (1 / top-k).
  router bias (bias balancing): the largest bias, and where.
"""

RUN_HELP = """
A stopped or detached run continues with [b]minimind resume RUN_DIR[/b];
a background run is watched with [b]minimind watch RUN_DIR[/b]."""


COMPARE_HELP = """\
[b]Comparing runs[/b]
  Each run has one colour, in the order of the command line: its loss is
  the line, its validation loss the dots. The table lists each run's
  profile and the settings of its resolved config that differ between the
  runs. Nothing is sent to the trainers from here.

[b]Keys[/b]
  [b]x[/b]  x-axis: step / tokens / wall time
  [b]l[/b]  logarithmic y axis on / off
  [b]r[/b]  write compare-report.html here: the runs as one HTML page
  [b]q[/b]  quit (the runs go on)
  [b]?[/b]  this help
"""


def help_text(moe: bool, compare: bool = False) -> str:
    """The help screen's text: the MoE part only for a run with experts."""
    if compare:
        return COMPARE_HELP
    return KEYS_HELP.format(k=SPIKE_K, window=SPIKE_WINDOW) + (MOE_HELP if moe else "") + RUN_HELP


class QuitScreen(ModalScreen[str]):
    """Returns "stop", "detach" or "cancel"."""

    BINDINGS = [
        Binding("s", "choose('stop')", "Stop", show=False),
        Binding("d", "choose('detach')", "Detach", show=False),
        Binding("c,escape,q", "choose('cancel')", "Cancel", show=False),
    ]

    def __init__(self, live_label: str = "training") -> None:
        super().__init__()
        self.live_label = live_label

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog"):
            yield Static(f"Quit the dashboard while {self.live_label} is running?\n"
                         "[dim]Stop saves a checkpoint and ends the run (resumable); "
                         "Detach leaves it training in the background.[/dim]", id="quit-question")
            with Horizontal(id="quit-buttons"):
                yield Button("Stop (s)", id="stop", variant="error")
                yield Button("Detach (d)", id="detach", variant="primary")
                yield Button("Cancel (c)", id="cancel")
            yield Static("[b]s[/b] stop  ·  [b]d[/b] detach  ·  [b]c[/b] / [b]esc[/b] cancel", id="quit-keys")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close", show=False)]

    def __init__(self, moe: bool = False, compare: bool = False) -> None:
        super().__init__()
        self.moe, self.compare = moe, compare

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-dialog"):
            yield Static(help_text(self.moe, self.compare), id="help-text")
            yield Static("[dim]escape / q / ? to close, arrows to scroll[/dim]")
