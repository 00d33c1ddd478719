"""``minimind report``: one self-contained HTML page about one run or a comparison of several.

``data`` reads run directories into what the page shows (no plotting); ``page`` draws it with
Plotly's bundled JavaScript. Neither imports torch, so the dashboard writes reports too.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from minimind.errors import ReportError
from minimind.files import absolute, atomic_write, writing
from minimind.report.data import RunData, load_runs

__all__ = ["ReportError", "RunData", "load_runs", "write_report"]


def write_report(run_dirs: list[str | os.PathLike], output: str | os.PathLike,
                 now: float | None = None) -> tuple[Path, list[RunData]]:
    """Read the runs, build the page and write it to ``output`` atomically; returns its path and
    the runs read. ``ReportError`` (one line) for a path that is not a run or plotly missing."""
    from minimind.report.page import build_page, plotly_js

    js = plotly_js()  # first: without plotly nothing is read
    now = time.time() if now is None else now
    runs = load_runs(list(run_dirs), now)
    text = build_page(runs, now=now, js=js)
    path = absolute(Path(output))
    with writing(path):
        atomic_write(path, text.encode("utf-8"))
    return path, runs
