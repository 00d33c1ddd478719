"""`minimind export`."""

from __future__ import annotations

from minimind_cli.commands._stub import not_implemented

HELP = "export (not implemented yet)."


def export() -> None:
    not_implemented("export")
