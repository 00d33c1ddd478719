import subprocess
import sys

import pytest

from tests.conftest import REPO


def _loaded_modules(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, cwd=REPO, check=True).stdout
    return set(out.split())


def test_core_never_loads_cli_libraries():
    mods = _loaded_modules("import minimind, minimind.config, minimind.events, minimind.model, minimind.train, "
                           "minimind.training.build, minimind.training.loop, minimind.training.policy, "
                           "minimind.weights, minimind.checkpoint")
    assert "torch" in mods and "minimind.weights.export" in mods
    assert not {"typer", "textual", "rich", "minimind_cli"} & mods


def test_every_package_is_in_the_wheel():
    """pyproject lists packages by hand: a new package directory must be added there too."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for root in ("minimind", "minimind_cli")
               for p in (REPO / root).rglob("__init__.py")}
    assert on_disk - listed == set()


def test_prepare_never_loads_rich():
    mods = _loaded_modules("import minimind.data.prepare, minimind.data.sample")
    assert "minimind.data.prepare.pipeline" in mods
    assert not {"rich", "typer", "textual", "minimind_cli"} & mods


def test_cli_help_loads_no_torch():
    mods = _loaded_modules("import sys; sys.argv=['minimind','--help']\n"
                           "from minimind_cli.app import app\n"
                           "try:\n    app()\nexcept SystemExit:\n    pass")
    assert "typer" in mods
    assert "torch" not in mods


def test_cli_help_lists_every_command():
    proc = subprocess.run([sys.executable, "-m", "minimind_cli", "--help"], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 0
    for command in ("prepare", "pretrain", "resume", "inspect", "watch", "export", "runs"):
        assert command in proc.stdout


def test_runs_loads_no_torch(tmp_path):
    """`minimind runs` reads files only (events, lock, checkpoint meta.json): it starts fast."""
    mods = _loaded_modules(f"import sys; sys.argv=['minimind', 'runs', {str(tmp_path)!r}, '--json']\n"
                           "from minimind_cli.app import app\n"
                           "try:\n    app()\nexcept SystemExit:\n    pass")
    assert "minimind.run_summary" in mods and "minimind.checkpoint" in mods
    assert "torch" not in mods
