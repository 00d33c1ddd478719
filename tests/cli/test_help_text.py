"""Every command's --help shows its text as written: rich markup must not swallow square brackets
(``pip install 'minimind[formats]'`` once came out as ``pip install 'minimind'``)."""

from __future__ import annotations

import re

import pytest
import typer.main
from typer.testing import CliRunner

from minimind_cli.app import app

COMMANDS = sorted(c.name for c in app.registered_commands)


def _raw_texts(name: str) -> list[str]:
    command = typer.main.get_command(app).commands[name]
    return [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_keeps_every_bracketed_word(name):
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "400", "NO_COLOR": "1"}, terminal_width=400)
    assert result.exit_code == 0, result.output
    shown = re.sub(r"[\s│]+", " ", result.output)
    brackets = [m for text in _raw_texts(name) for m in re.findall(r"\S*\[[^\]\s]*\]\S*", text)]
    for token in brackets:
        core = re.search(r"\[[^\]]*\]", token).group(0)
        assert core in shown, f"`minimind {name} --help` lost {core!r} (from {token!r})"


def test_prepare_help_names_the_formats_extra():
    result = CliRunner().invoke(app, ["prepare", "--help"], env={"COLUMNS": "400"}, terminal_width=400)
    assert "minimind[formats]" in re.sub(r"[\s│]+", "", result.output)


def test_pretrain_help_lists_every_shipped_profile():
    from minimind.config import available_profiles

    result = CliRunner().invoke(app, ["pretrain", "--help"], env={"COLUMNS": "400"}, terminal_width=400)
    shown = re.sub(r"[\s│]+", " ", result.output)
    assert len(available_profiles()) >= 6 and all(name in shown for name in available_profiles())
