"""``r`` in ``minimind watch`` writes the report of what the dashboard shows (RUN/report.html)."""

import asyncio

from minimind_cli.dashboard.app import REPORT_FILE, DashboardApp
from tests.dashboard.conftest import wait_for


def test_r_writes_the_report_of_the_watched_run(run_factory):
    run_dir = run_factory("dense")
    app = DashboardApp(run_dir)

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.state.finished is not None)
            await pilot.press("r")
            await wait_for(pilot, lambda: (run_dir / REPORT_FILE).is_file(), timeout=30)
            await wait_for(pilot, lambda: any("report written" in str(n.message) for n in app._notifications))

    asyncio.run(drive())
    html = (run_dir / REPORT_FILE).read_text()
    assert "<title>minimind report: dense</title>" in html
