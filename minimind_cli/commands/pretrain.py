"""`minimind pretrain`."""

from __future__ import annotations

from minimind_cli.commands._stub import not_implemented

HELP = "pretrain (not implemented yet)."


def pretrain() -> None:
    not_implemented("pretrain")
