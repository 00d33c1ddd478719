"""Messages the tailing thread posts to the app (Textual delivers them on the app's own loop)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message


@dataclass
class EventsRead(Message):
    """New complete lines of ``events.jsonl``, in file order."""

    events: list[dict[str, Any]] = field(default_factory=list)
    key: int = 0  # which run (a comparison follows several)


@dataclass
class TrainerExited(Message):
    """The trainer process is gone. ``returncode`` is None when only a watched pid vanished."""

    returncode: int | None = None
    log_tail: str | None = None
    when: float | None = None  # when it was seen to go; None: it was gone before the first look
    key: int = 0
