"""The one base class of every error a user can fix (bad config, data, files, checkpoints).

The CLI and the trainer entry point print any ``MinimindError`` as one line (plus its hint) and
exit with its ``exit_code`` (2 unless a subclass says otherwise); anything else is a bug and keeps
its traceback. Stdlib only, so the CLI and the dashboard import it without torch.

Every subclass lives here too, on the ground floor: a module raises one without importing the
module of another concern (no import cycles for an exception's sake). The CLI's ``UserError`` is
in ``minimind_cli.errors``.
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


class EvalError(MinimindError, ValueError):
    """Text that cannot be scored with these weights (no tokenizer, ids outside the vocabulary...)."""


class RunLockedError(MinimindError):
    """Another process is training this run."""


class OutputError(MinimindError):
    """An output path cannot be written (permissions, a mount point, no space, ...)."""


class CheckpointError(MinimindError, ValueError):
    """A checkpoint is missing, incomplete or does not fit the run."""


class MemoryTooSmall(MinimindError):
    """The run does not fit in memory; nothing was started."""


class OutOfMemoryFailure(MinimindError):
    """Out of memory with nothing left to shrink; the last good checkpoint is kept."""

    exit_code = EXIT_FAILED


class TrainingFailed(MinimindError):
    """The run cannot go on (e.g. too many non-finite steps); the last good checkpoint is kept."""

    exit_code = EXIT_FAILED


class ReportError(MinimindError):
    """A path that cannot be reported on (not a run, no events): one line, exit 2."""


class TokenizerError(MinimindError, ValueError):
    """A tokenizer directory that cannot be used (missing files, no end-of-text token)."""


class DatasetFormatError(MinimindError, ValueError):
    """The directory is not a (complete) minimind dataset."""


class PrepareError(MinimindError, ValueError):
    """Bad input for ``prepare``: the message is one line, ``file:line: reason`` where it applies."""
