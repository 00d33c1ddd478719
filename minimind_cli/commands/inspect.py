"""`minimind inspect`."""

from __future__ import annotations

from minimind_cli.commands._stub import not_implemented

HELP = "inspect (not implemented yet)."


def inspect() -> None:
    not_implemented("inspect")
