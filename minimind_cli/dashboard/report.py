"""The dashboard's ``r`` key: write the report page of what it shows (``minimind.report``, no torch),
in a thread so the dashboard keeps drawing."""

from __future__ import annotations

from pathlib import Path

from textual.app import App


def write_report_in_background(app: App, run_dirs: list[Path], output: Path) -> None:
    def work() -> None:
        from minimind.errors import MinimindError
        from minimind.report import write_report

        try:
            path, _ = write_report(run_dirs, output)
        except MinimindError as exc:
            app.call_from_thread(app.notify, exc.message, severity="error", timeout=8)
            return
        except Exception as exc:  # noqa: BLE001 - a report must never take the dashboard down
            app.call_from_thread(app.notify, f"the report failed: {type(exc).__name__}: {exc}", severity="error")
            return
        app.call_from_thread(app.notify, f"report written: {path}", timeout=8)

    app.notify("writing the report...", timeout=2)
    app.run_worker(work, thread=True, exclusive=True, group="report")
