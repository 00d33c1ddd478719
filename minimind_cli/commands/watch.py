"""`minimind watch`: the dashboard on a run training in the background, or a replay of a finished one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from minimind_cli.errors import UserError

HELP = """Open the live dashboard on a run: follow it if it is still training (started with
`minimind pretrain`, then detached), or replay a finished or failed run from its events.

Examples:

  minimind watch out/runs/tiny-20250101-120000

  minimind watch             (the most recent run under out/runs)
"""


def watch(
    run_dir: Annotated[Path | None, typer.Argument(
        help="The run directory (holding events.jsonl). Default: the most recent run under out/runs.",
        show_default=False)] = None,
    out: Annotated[Path, typer.Option("--out", help="Where runs live when RUN_DIR is not given.")] = Path("out"),
) -> None:
    from minimind.events import EVENTS_FILE

    if run_dir is None:
        from minimind_cli.runs import latest_run

        run_dir = latest_run(out)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory", "pass a directory under out/runs/")
    if not (run_dir / EVENTS_FILE).is_file():
        raise UserError(f"{run_dir}: no {EVENTS_FILE} here, so this is not a minimind run directory",
                        "pass a directory under out/runs/ made by `minimind pretrain`")
    import sys

    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        raise UserError("`minimind watch` draws a dashboard and needs a terminal",
                        f"for plain text, read {run_dir / EVENTS_FILE} or {run_dir / 'trainer.log'}")
    from minimind_cli.dashboard import run_dashboard

    raise typer.Exit(run_dashboard(run_dir))

