"""The one base class of every error a user can fix (bad config, data, files, checkpoints).

The CLI and the trainer entry point print any ``MinimindError`` as one line (plus its hint) and
exit with its ``exit_code`` (2 unless a subclass says otherwise); anything else is a bug and keeps
its traceback. Stdlib only, so the CLI and the dashboard import it without torch.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ABORTED = 3  # interrupted before anything was written (prepare's Ctrl-C)
EXIT_INTERRUPTED = 130


class MinimindError(Exception):
    """An error the user can fix: ``message`` names what is at fault, ``hint`` says what to do."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class ConfigError(MinimindError, ValueError):
    """A user-facing configuration error: one line, naming the key or value at fault."""
