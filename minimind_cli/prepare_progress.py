"""The progress bar of ``prepare`` (MB done, MB/s, ETA), drawn from the core's progress callback.

One bar line per phase: "training tokenizer" (over the part of the corpus the tokenizer learns
from) and "tokenizing" (over the whole input). Shown only on a terminal: in a log file a bar is noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

if TYPE_CHECKING:
    from minimind.data.prepare import ProgressCallback, ProgressUpdate

DESCRIPTIONS = {"tokenizer": "training tokenizer", "encode": "tokenizing"}


class PrepareProgress:
    """Context manager around a prepare; ``callback`` is what to pass as ``on_progress``.

    The bar starts with the first update, so a dataset that is reused (no work, no updates)
    prints nothing.
    """

    def __init__(self, console: Console | None = None, enabled: bool | None = None):
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self.bar: Progress | None = None
        self.tasks: dict[str, int] = {}

    @property
    def callback(self) -> ProgressCallback | None:
        return self.update if self.enabled else None

    def update(self, update: ProgressUpdate) -> None:
        if self.bar is None:
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                TransferSpeedColumn(), TimeRemainingColumn(), console=self.console,
                                transient=False)
            self.bar.start()
        task = self.tasks.get(update.phase)
        if task is None:
            task = self.tasks[update.phase] = self.bar.add_task(
                DESCRIPTIONS.get(update.phase, update.phase), total=update.total)
        self.bar.update(task, completed=update.done, total=update.total)

    def __enter__(self) -> PrepareProgress:
        return self

    def __exit__(self, *exc) -> bool:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        return False
