"""The ``minimind`` Typer app: one module per command under ``minimind_cli/commands``.

Start-up stays fast (``minimind --help`` never imports torch): command modules import the heavy
parts of the core library inside their functions.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.markup import escape

from minimind import __version__
from minimind.errors import EXIT_ABORTED, MinimindError
from minimind_cli.commands import bench, export, inspect, prepare, pretrain, report, resume, runs, watch
from minimind_cli.commands import eval as eval_cmd
from minimind_cli.errors import err_console, print_error

HELP = """Pretrain a small MiniMind-style language model (dense or MoE) on your own text, and watch it learn.

Examples:

  minimind prepare --sample              (the built-in sample corpus -> out/data)

  minimind prepare data.jsonl            (your corpus -> out/data)

  minimind pretrain --profile tiny       (a tiny model, minutes on a CPU)

  minimind pretrain --profile moe --set train.max_steps=100

  minimind resume out/runs/RUN           (continue exactly where it stopped)

  minimind runs                          (every run: status, progress, losses, last checkpoint)

  minimind inspect out/pretrain_512.pth  (what is in a checkpoint)

  minimind eval out/runs/RUN             (loss, perplexity, bits/byte on its validation split)

  minimind report out/runs/RUN           (one HTML page to share: plots, samples, config)

  minimind bench --profile default       (is training this slow normally? tokens/s, MFU, where a step goes)
"""

app = typer.Typer(
    name="minimind",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"minimind {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks for errors."),
) -> None:
    _STATE["debug"] = debug


_STATE = {"debug": False}

INTERRUPTED = "interrupted; nothing written"


def _interruptible(command: Callable[..., Any]) -> Callable[..., Any]:
    """Ctrl-C that reaches a command (anything but a trainer being followed, which gets the signal
    itself and saves) is one line and exit 3. Typer would turn it into a silent exit 130, the code
    that says a checkpoint was saved."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:
            err_console.print(INTERRUPTED, style="yellow", soft_wrap=True)
            raise typer.Exit(EXIT_ABORTED) from None

    return run


for _name, _module, _function in (
        ("prepare", prepare, prepare.prepare), ("pretrain", pretrain, pretrain.pretrain),
        ("resume", resume, resume.resume), ("inspect", inspect, inspect.inspect),
        ("eval", eval_cmd, eval_cmd.eval_command), ("watch", watch, watch.watch), ("runs", runs, runs.runs),
        ("export", export, export.export), ("report", report, report.report), ("bench", bench, bench.bench)):
    # Help is plain text: escaped, so rich markup never swallows a bracket ('minimind[formats]').
    app.command(_name, help=escape(_module.HELP))(_interruptible(_function))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: runs the app and turns user errors into one red line, exit 2."""
    try:
        app(args=argv, standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        # Training forwards Ctrl-C to the trainer (which saves); reaching here means nothing was saved.
        err_console.print(INTERRUPTED, style="yellow", soft_wrap=True)
        sys.exit(EXIT_ABORTED)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if _STATE["debug"] or "--debug" in sys.argv:
            raise
        if isinstance(exc, MinimindError):
            print_error(exc.message, exc.hint)
            sys.exit(exc.exit_code)
        print_error(f"internal error: {type(exc).__name__}: {exc}",
                    "run again with --debug for the traceback, and please report it")
        sys.exit(1)
