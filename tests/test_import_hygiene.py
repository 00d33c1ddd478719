import subprocess
import sys

from tests.conftest import REPO


def _loaded_modules(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, cwd=REPO, check=True).stdout
    return set(out.split())


def test_core_never_loads_cli_libraries():
    mods = _loaded_modules("import minimind, minimind.config, minimind.events, minimind.model")
    assert "torch" in mods
    assert not {"typer", "textual", "minimind_cli"} & mods


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
    for command in ("prepare", "pretrain", "resume", "inspect", "watch", "export"):
        assert command in proc.stdout
