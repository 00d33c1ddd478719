"""Modal screens: the quit choice and the help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from minimind_cli.dashboard.widgets import help_text


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
