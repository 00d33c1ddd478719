"""One-line user errors: a red message naming what is at fault, an optional hint, an exit code.

``UserError`` is the CLI's own kind of ``minimind.errors.MinimindError``; the app prints any
``MinimindError`` the same way.
"""

from __future__ import annotations

from rich.console import Console

from minimind.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, MinimindError

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "UserError", "print_error"]

err_console = Console(stderr=True, highlight=False)


class UserError(MinimindError):
    """An error the user can fix: printed as one line, never as a traceback (unless --debug)."""


def print_error(message: str, hint: str | None = None) -> None:
    err_console.print(f"[bold red]error:[/] {_escape(message)}", soft_wrap=True)  # one line, never wrapped
    if hint:
        err_console.print(f"[dim]hint: {_escape(hint)}[/]", soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(str(text))
