"""Snapshots of the whole dashboard (pytest-textual-snapshot) on recorded runs, at the two sizes
it promises to work at. Update after an intended change with ``pytest --snapshot-update`` and
look at the SVGs in ``__snapshots__`` before committing them."""

import pytest

from minimind_cli.dashboard.app import DashboardApp
from tests.dashboard.conftest import copy_run, wait_for

SIZES = {"120x40": (120, 40), "80x24": (80, 24)}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("run", ["dense", "moe", "failed"])
def test_dashboard_snapshot(run, size, tmp_path, snap_compare):
    app = DashboardApp(copy_run(tmp_path, run))

    async def loaded(pilot):
        await wait_for(pilot, lambda: app.state.ended)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=loaded)
