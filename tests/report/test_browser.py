"""The pages in a real browser: headless Chromium, network off, must draw every plot without a
script error (the page records errors in ``data-report-errors`` and counts drawn figures in
``data-report-plots``)."""

import re
import shutil
import subprocess

import pytest

from minimind.report import write_report
from minimind.report.page import build_page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                                         "(apt-get install chromium) to open the page in")
NO_NETWORK = ["--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-background-networking"]


def dump_dom(pages: dict[str, object], tmp_path) -> dict[str, str]:
    """Each page's DOM after load, the browsers run side by side."""
    procs = {}
    for name, path in pages.items():
        argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / ('p-' + name)}",
                *NO_NETWORK, "--dump-dom", path.as_uri()]
        procs[name] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return {name: proc.communicate(timeout=120)[0] for name, proc in procs.items()}


def attribute(dom: str, name: str) -> str | None:
    match = re.search(rf'<html[^>]*\s{name}="([^"]*)"', dom)
    return match.group(1) if match else None


@pytest.mark.slow  # four browsers side by side: several seconds on 2 cores
def test_pages_draw_their_plots_without_script_errors(run_factory, tmp_path):
    pages = {
        "dense": write_report([run_factory("signals")], tmp_path / "dense.html")[0],
        "moe": write_report([run_factory("moe")], tmp_path / "moe.html")[0],
        "compare": write_report([run_factory("dense"), run_factory("slow_lr"), run_factory("samples")],
                                tmp_path / "compare.html")[0],
    }
    broken = tmp_path / "broken.html"  # the control: without Plotly the guard must report an error
    from minimind.report.data import load_run

    broken.write_text(build_page([load_run(run_factory("d2", "dense"))], js="/* no plotly */"))
    doms = dump_dom({**pages, "broken": broken}, tmp_path)
    expected = {"dense": 5, "moe": 8, "compare": 5}
    for name, count in expected.items():
        dom = doms[name]
        assert attribute(dom, "data-report-errors") is None, f"{name}: script errors"
        assert attribute(dom, "data-report-plots") == str(count), f"{name}: plots not drawn"
        assert dom.count('class="main-svg"') >= count  # Plotly drew its SVG into every figure
    assert attribute(doms["broken"], "data-report-errors") == "1"
    assert attribute(doms["broken"], "data-report-plots") is None
