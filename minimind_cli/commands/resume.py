"""`minimind resume`."""

from __future__ import annotations

from minimind_cli.commands._stub import not_implemented

HELP = "resume (not implemented yet)."


def resume() -> None:
    not_implemented("resume")
