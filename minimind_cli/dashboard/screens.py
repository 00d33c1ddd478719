"""Modal screens: the quit choice and the help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from minimind_cli.dashboard.widgets import HELP_TEXT


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
            yield Static(f"Quit the dashboard while {self.live_label} is running?", id="quit-question")
            with Horizontal(id="quit-buttons"):
                yield Button("[u]S[/u]top: save and end", id="stop", variant="error")
                yield Button("[u]D[/u]etach: keep training", id="detach", variant="primary")
                yield Button("[u]C[/u]ancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "app.pop_screen", "Close", show=False)]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Static(HELP_TEXT, id="help-text")
            yield Static("[dim]escape / q / ? to close[/dim]")
