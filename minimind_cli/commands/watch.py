"""`minimind watch`: the dashboard on a run training in the background, a replay of a finished one,
or several runs compared on shared axes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from minimind_cli.errors import UserError

HELP = """Open the live dashboard on a run: follow it if it is still training (started with
`minimind pretrain`, then detached), or replay a finished or failed run from its events.
With several runs, compare them: loss and validation loss overlaid, a colour per run, and the
settings that differ between them (x switches the x-axis between step, tokens and wall time).

Examples:

  minimind watch out/runs/tiny-20250101-120000

  minimind watch             (the most recent run under out/runs)

  minimind watch out/runs/lr-1e-3 out/runs/lr-3e-3
"""


def watch(
    run_dirs: Annotated[list[Path] | None, typer.Argument(
        help="Run directories (holding events.jsonl); two or more are compared. "
             "Default: the most recent run under out/runs.",
        show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="Where runs live when RUN_DIR is not given.")] = Path("out"),
) -> None:
    from minimind.run_dir import EVENTS_FILE, TRAINER_LOG

    if not run_dirs:
        from minimind_cli.runs import latest_run

        run_dirs = [latest_run(out)]
    for run_dir in run_dirs:
        if not run_dir.is_dir():
            raise UserError(f"{run_dir}: no such run directory", "pass a directory under out/runs/")
        if not (run_dir / EVENTS_FILE).is_file():
            raise UserError(f"{run_dir}: no {EVENTS_FILE} here, so this is not a minimind run directory",
                            "pass a directory under out/runs/ made by `minimind pretrain`")
    if len({d.resolve() for d in run_dirs}) < len(run_dirs):
        raise UserError("the same run is named twice", "name each run directory once")
    import sys

    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        raise UserError("`minimind watch` draws a dashboard and needs a terminal",
                        f"for plain text, read {run_dirs[0] / EVENTS_FILE} or {run_dirs[0] / TRAINER_LOG}")
    if len(run_dirs) > 1:
        from minimind_cli.dashboard.compare import CompareApp

        raise typer.Exit(CompareApp(run_dirs).run() or 0)
    from minimind_cli.dashboard import run_dashboard

    raise typer.Exit(run_dashboard(run_dirs[0]))
