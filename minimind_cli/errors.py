"""One-line user errors: a red message naming what is at fault, an optional hint, an exit code."""

from __future__ import annotations

import sys

from rich.console import Console

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

err_console = Console(stderr=True, highlight=False)


class UserError(Exception):
    """An error the user can fix: printed as one line, never as a traceback (unless --debug)."""

    def __init__(self, message: str, hint: str | None = None, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


def print_error(message: str, hint: str | None = None) -> None:
    err_console.print(f"[bold red]error:[/] {_escape(message)}", soft_wrap=True)  # one line, never wrapped
    if hint:
        err_console.print(f"[dim]hint: {_escape(hint)}[/]", soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(str(text))


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions from the core library that are the user's to fix (bad config, data, files)."""
    types: list[type[BaseException]] = [UserError]
    from minimind.config import ConfigError

    types.append(ConfigError)
    for module, name in (("minimind.data.format", "DatasetFormatError"),
                         ("minimind.data.prepare", "PrepareError"),
                         ("minimind.checkpoint", "CheckpointError"),
                         ("minimind.convert", "CheckpointError")):
        mod = sys.modules.get(module)
        if mod is not None and hasattr(mod, name):
            types.append(getattr(mod, name))
    return tuple(types)
