from __future__ import annotations

from minimind_cli.errors import EXIT_USAGE, UserError


def not_implemented(command: str) -> None:
    raise UserError(f"`minimind {command}` is not implemented yet", exit_code=EXIT_USAGE)
