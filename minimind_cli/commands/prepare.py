"""`minimind prepare`."""

from __future__ import annotations

from minimind_cli.commands._stub import not_implemented

HELP = "prepare (not implemented yet)."


def prepare() -> None:
    not_implemented("prepare")
