"""The samples panel: what the model writes, prompt by prompt, at the newest step or an earlier one."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from minimind.metrics import visible_whitespace
from minimind_cli.dashboard import format as fmt
from minimind_cli.dashboard import palette
from minimind_cli.dashboard.state import RunState


class SamplesPanel(Widget):
    """The continuations of one sampling step (the newest unless the user moved with [ / ])."""

    DEFAULT_CSS = "SamplesPanel { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state: RunState | None = None
        self.pinned: int | None = None  # the step the user moved to; None follows the newest

    def show(self, state: RunState) -> None:
        self.state = state
        self.refresh()

    @property
    def step(self) -> int | None:
        steps = self.state.sample_steps() if self.state else []
        if not steps:
            return None
        return self.pinned if self.pinned in steps else steps[-1]

    def move(self, delta: int) -> None:
        """Go ``delta`` sampling steps back (negative) or forward; past the newest: follow it."""
        steps = self.state.sample_steps() if self.state else []
        if not steps:
            return
        i = steps.index(self.step) + delta
        self.pinned = None if i >= len(steps) - 1 else steps[max(0, i)]
        self.refresh()

    def render(self) -> Text:
        state = self.state or RunState()
        steps = state.sample_steps()
        step = self.step
        text = Text(overflow="fold")
        if step is None:
            text.append("no samples yet: the trainer writes them at each eval (g: now)", style="dim")
            return text
        index = steps.index(step)
        where = "newest" if self.pinned is None else f"{index + 1} of {len(steps)}"
        # The chosen step first, then the earlier ones as far as the panel has room: the text
        # going from noise to words reads downwards.
        for n, shown in enumerate(reversed(steps[:index + 1])):
            if n:
                text.append("\n")
            text.append(f"step {shown}", style="bold" if n == 0 else "bold dim")
            if n == 0:
                text.append(f"  ({where}; [ ] earlier/later, g sample now)", style="dim")
            for sample in state.samples_at(shown):
                text.append("\n")
                text.append(visible_whitespace(str(sample.prompt)), style=palette.PROMPT)
                text.append(" → ", style="dim")
                text.append(visible_whitespace(str(sample.text)), style="bold" if n == 0 else "")
                if sample.seconds is not None:
                    text.append(f"  {fmt.fixed(sample.seconds, 1)} s", style="dim")
        return text
