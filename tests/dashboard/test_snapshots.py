"""Snapshots of the whole dashboard (pytest-textual-snapshot) on recorded runs, at the two sizes
it promises to work at. Update after an intended change with ``pytest --snapshot-update`` and
look at the SVGs in ``__snapshots__`` before committing them."""

from pathlib import Path

import pytest

from minimind_cli.dashboard.app import DashboardApp
from minimind_cli.dashboard.compare import CompareApp
from tests.dashboard.conftest import copy_run, wait_for

SIZES = {"120x40": (120, 40), "80x24": (80, 24)}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("run", ["dense", "moe", "failed", "samples", "signals"])
def test_dashboard_snapshot(run, size, tmp_path, snap_compare, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a relative run directory: the resume command is the same every time
    app = DashboardApp(Path(copy_run(tmp_path, run).name))

    async def loaded(pilot):
        await wait_for(pilot, lambda: app.state.ended)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=loaded)


def test_samples_view_snapshot(tmp_path, snap_compare):
    """80x24: the samples behind the v key, one step back with [."""
    app = DashboardApp(copy_run(tmp_path, "samples"))

    async def loaded(pilot):
        await wait_for(pilot, lambda: app.state.ended)
        await pilot.press("v", "left_square_bracket")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=loaded)


@pytest.mark.parametrize("size,keys", [("120x40", ()), ("80x24", ()), ("120x40", ("x",))],
                         ids=["120x40", "80x24", "120x40-tokens"])
def test_compare_snapshot(size, keys, tmp_path, snap_compare):
    app = CompareApp([copy_run(tmp_path, "dense"), copy_run(tmp_path, "slow_lr")])

    async def loaded(pilot):
        await wait_for(pilot, lambda: all(s.ended for s in app.states))
        await pilot.press(*keys)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZES[size], run_before=loaded)
