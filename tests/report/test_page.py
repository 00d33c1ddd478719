"""The page and the command: self-contained HTML, one clear line for what cannot be shown."""

import re
import sys

import pytest

from minimind.report.data import load_run, load_runs
from minimind.report.page import build_page
from minimind.runlock import RunLock
from tests.conftest import REPO, run_cli

NOW = 1_750_000_900.0
STUB_JS = "/* plotly */"  # the bundle's place: these tests check the page around it


def page(runs) -> str:
    return build_page(runs, now=NOW, js=STUB_JS)


def figures(html: str) -> list[dict]:
    import json

    data = re.search(r"<script>var FIGURES = (.*?);</script>", html, re.S).group(1)
    return json.loads(data.replace("<\\/", "</"))


def test_single_run_page_is_self_contained(run_factory):
    html = page([load_run(run_factory("signals"), NOW)])
    assert "<script src" not in html and "<link" not in html and "@import" not in html
    assert not re.findall(r"https?://", html)  # nothing to fetch (the real bundle only names URLs in text)
    ids = [f["id"] for f in figures(html)]
    assert ids == ["loss", "lr", "speed", "grad", "memory"]
    loss = figures(html)[0]
    names = [t["name"] for t in loss["data"]]
    assert names == ["loss", "smoothed", "validation", "curriculum phase", "out-of-memory retry"]
    assert set(loss["xs"]) == {"step", "tokens", "time"} and len(loss["xs"]["tokens"]) == len(names)
    assert "fingerprint 3f9a1c2e" in html and "1,332,096" in html and "resolved config" in html
    assert 'class="warning"' in html  # the out-of-memory warning is highlighted in the events log


def test_moe_page_has_heat_map_with_slider_and_balance(run_factory):
    figs = {f["id"]: f for f in figures(page([load_run(run_factory("moe"), NOW)]))}
    assert {"moe_load", "moe_balance", "moe_bias"} <= set(figs)
    heat = figs["moe_load"]
    assert heat["data"][0]["type"] == "heatmap" and len(heat["data"][0]["z"]) == 8
    assert heat["layout"]["sliders"][0]["steps"][-1]["label"] == "400"
    assert "5,960,000 total, 3,870,000 active" in page([load_run(run_factory("moe2", "moe"), NOW)])


def test_comparison_overlays_runs_and_tables_differences(run_factory):
    runs = load_runs([run_factory("dense"), run_factory("slow_lr"), run_factory("samples")], NOW)
    html = page(runs)
    loss = figures(html)[0]
    smoothed = [t for t in loss["data"] if t["name"] in ("dense", "slow_lr", "samples")]
    assert len({t["line"]["color"] for t in smoothed}) == 3
    assert "config differences" in html and "train.learning_rate" in html and "0.0005" in html


def test_samples_by_step_on_the_page(run_factory):
    html = page([load_run(run_factory("samples"), NOW)])
    assert html.count("<h3>The Python tutorial</h3>") == 1 and "continuation (newest first)" in html


def test_crashed_run_page_shows_error_and_traceback(run_factory):
    html = page([load_run(run_factory("failed"), NOW)])
    assert "failed: loss is nan at step 170" in html and "FloatingPointError" in html


def test_running_run_is_a_snapshot_with_its_time(run_factory):
    run_dir = run_factory("live", "dense", lines=15)
    with RunLock(run_dir):
        run = load_run(run_dir, NOW)
    assert run.is_snapshot
    assert "is still training: this page is a snapshot taken at" in page([run])


def test_scripts_do_not_end_early(run_factory):
    run_dir = run_factory("odd", "dense", tail='{"v":2,"type":"info","time":1750000100,"message":"</script><b>x"}\n')
    html = page([load_run(run_dir, NOW)])
    assert "</script><b>x" not in html and "&lt;/script&gt;&lt;b&gt;x" in html


# ---------------------------------------------------------------------------- the command
def test_cli_writes_the_page(run_factory, tmp_path):
    out = tmp_path / "page.html"
    proc = run_cli("report", str(run_factory("dense")), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 1_000_000 and "wrote" in proc.stdout
    assert out.read_text().count("<script>") == 4  # guard, plotly, data, drawing: all inline


@pytest.mark.parametrize(("setup", "message"), [
    ("missing", "no such run directory"),
    ("not_a_run", "not a minimind run directory"),
    ("empty", "holds no events yet"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, setup, message):
    path = tmp_path / setup
    if setup != "missing":
        path.mkdir()
    if setup == "empty":
        (path / "events.jsonl").write_text("")
    proc = run_cli("report", str(path), "-o", str(tmp_path / "r.html"))
    assert proc.returncode == 2
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error:") and message in first and "Traceback" not in proc.stderr
    assert not (tmp_path / "r.html").exists()


def test_cli_without_plotly_says_so_in_one_line(run_factory, tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "plotly.py").write_text("raise ImportError('no plotly here')\n")
    proc = run_cli("report", str(run_factory("dense")), "-o", str(tmp_path / "r.html"),
                   env={"PYTHONPATH": f"{blocker}:{REPO}"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: `minimind report` needs plotly: pip install 'minimind[report]'"


def test_report_loads_no_torch_or_ui():
    import subprocess

    from tests.conftest import REPO

    code = "import minimind.report, minimind.report.page, sys; print(' '.join(sys.modules))"
    mods = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                              check=True).stdout.split())
    assert "minimind.report.page" in mods and not {"torch", "textual", "typer", "minimind_cli"} & mods
