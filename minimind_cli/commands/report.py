"""`minimind report`: one self-contained HTML page about a run, or several runs compared."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

HELP = """Write one HTML page about a run that works offline (Plotly's scripts inside the file, no
network, no server): the run's numbers, interactive plots (loss, learning rate, throughput, grad
norm, memory; MoE expert loads), samples, the resolved config, the events log and the checkpoints.
With several runs, their plots are overlaid and the settings that differ are tabled. A run still
training is shown as a snapshot. Needs `pip install 'minimind[report]'` (plotly).

Examples:

  minimind report out/runs/tiny-20250101-120000

  minimind report out/runs/lr-1e-3 out/runs/lr-3e-3 -o lr.html --open
"""


def report(
    run_dirs: Annotated[list[Path], typer.Argument(
        help="Run directories (holding events.jsonl); two or more are compared.", show_default=False)],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path("report.html"),
    open_page: Annotated[bool, typer.Option("--open", help="Open the page in a browser when written.")] = False,
) -> None:
    from rich.console import Console

    from minimind.report import write_report

    path, runs = write_report(run_dirs, output)
    size = path.stat().st_size / 2 ** 20
    snapshot = [r.name for r in runs if r.is_snapshot]
    note = f" (a snapshot of {', '.join(snapshot)}, still training)" if snapshot else ""
    Console(highlight=False, soft_wrap=True).print(f"wrote {path} ({size:.1f} MiB){note}")
    if open_page:
        import webbrowser

        webbrowser.open(path.as_uri())
