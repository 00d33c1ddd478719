"""`minimind watch`."""

from __future__ import annotations

from minimind_cli.commands._stub import not_implemented

HELP = "watch (not implemented yet)."


def watch() -> None:
    not_implemented("watch")
