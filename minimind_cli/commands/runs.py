"""`minimind runs`: one row per run of an output directory, read from its files (no torch)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from minimind_cli.errors import UserError

HELP = """List the runs of an output directory: status (running / paused / finished / stopped /
failed / never started), profile, parameters, progress, losses, tokens, wall time and the last complete
checkpoint with its age. A run is "running" only while its trainer process is alive.

Examples:

  minimind runs                 (the runs under out/runs)

  minimind runs experiments/out --json

  minimind runs out/runs/tiny-20261204-101500   (one run)
"""

STATUS_STYLE = {"running": "bold cyan", "paused": "cyan", "finished": "green", "stopped": "yellow", "failed": "bold red",
                "never started": "dim"}


def runs(
    out_dir: Annotated[Path, typer.Argument(
        help="An output directory (its runs/ is listed), a directory of run directories, or one run.")]
    = Path("out"),
    json_output: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead.")] = False,
) -> None:
    from minimind.run_dir import runs_listing_dir
    from minimind.run_summary import summarize_all

    if not out_dir.is_dir():
        raise UserError(f"{out_dir}: no such directory", "pass the --out directory of `minimind pretrain` "
                                                          "(default: out)")
    rows = summarize_all(out_dir)
    if json_output:
        typer.echo(json.dumps({"runs_dir": str(runs_listing_dir(out_dir).resolve()), "runs": rows}, indent=2))
        return
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)  # a pipe or a file: one line per run, never cut
    if not rows:
        where = runs_listing_dir(out_dir)
        console.print(f"no runs under {where}; start one with `minimind pretrain --profile tiny`")
        return
    console.print(table(rows, console.width))


# Columns left out of a terminal narrower than WIDE (``--json`` always has everything).
WIDE, NARROW_DROPS = 110, ("profile", "params", "tokens")


def table(rows: list[dict[str, Any]], width: int = 200):
    from rich.markup import escape
    from rich.table import Table

    from minimind.metrics import format_duration
    from minimind_cli.dashboard.format import NONE, count

    cells: dict[str, Any] = {
        "run": lambda r: escape(r["name"]),
        "status": lambda r: f"[{STATUS_STYLE.get(r['status'], '')}]{escape(r['status'])}[/]",
        "profile": lambda r: escape(r["profile"] or NONE),
        "params": lambda r: count(r["params_total"]),
        "step": lambda r: NONE if r["step"] is None else f"{r['step']}/{r['total_steps'] or '?'}",
        "loss": lambda r: _loss(r["loss"]),
        "val": lambda r: _loss(r["val_loss"]),
        "tokens": lambda r: count(r["tokens_seen"]),
        "wall": lambda r: format_duration(r["elapsed_s"]) if r["elapsed_s"] is not None else NONE,
        "checkpoint": lambda r: NONE if r["checkpoint"] is None else
        f"{r['checkpoint']['step']}, {format_duration(r['checkpoint']['age_s'])} ago",
    }
    names = [n for n in cells if width >= WIDE or n not in NARROW_DROPS]
    t = Table(box=None, header_style="bold", pad_edge=False)
    for name in names:
        wraps = name in ("run", "checkpoint")
        t.add_column(name, justify="left" if name in ("run", "status", "profile", "checkpoint") else "right",
                     no_wrap=not wraps, overflow="fold" if wraps else "ellipsis")
    for r in rows:
        t.add_row(*(cells[n](r) for n in names))
    return t


def _loss(value: float | None) -> str:
    from minimind_cli.dashboard.format import NONE

    return NONE if value is None else f"{value:.3f}"
