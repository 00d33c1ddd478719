"""docs/architecture.md names every module of minimind/ and minimind_cli/, and only modules that exist.

A module is named by a table row whose first cell is its file name (`` `state.py` ``, or a path
below the section's directory such as `` `report/data.py` ``), under a heading that names the
directory (`` ### `minimind/training/` ``). Empty ``__init__.py`` files need no row.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("minimind", "minimind_cli")

_HEADING_DIR = re.compile(r"`((?:minimind|minimind_cli)/(?:[\w.]+/)*)`")
_ROW = re.compile(r"^\|\s*`([\w./]+\.py)`\s*\|")


def documented_modules(text: str) -> set[str]:
    """The module paths (``minimind/training/state.py``) the tables of the page name."""
    found: set[str] = set()
    directory = None
    for line in text.splitlines():
        if line.startswith("#"):
            match = _HEADING_DIR.search(line)
            directory = match.group(1) if match else None
        elif directory and (row := _ROW.match(line)):
            found.add(directory + row.group(1))
    return found


def code_modules() -> set[str]:
    return {path.relative_to(ROOT).as_posix()
            for package in PACKAGES for path in (ROOT / package).rglob("*.py")
            if path.name != "__init__.py" or path.read_text(encoding="utf-8").strip()}


def test_the_doc_reads_its_tables():
    text = "### `minimind/training/`\n| file | what |\n|---|---|\n| `state.py` | x |\n## Other\n| `gone.py` | y |\n"
    assert documented_modules(text) == {"minimind/training/state.py"}


def test_every_module_is_in_the_architecture_doc():
    missing = sorted(code_modules() - documented_modules(DOC.read_text(encoding="utf-8")))
    assert not missing, "modules with no row in docs/architecture.md:\n" + "\n".join(missing)


def test_the_architecture_doc_names_no_missing_module():
    stale = sorted(documented_modules(DOC.read_text(encoding="utf-8")) - code_modules())
    assert not stale, "docs/architecture.md names modules that do not exist:\n" + "\n".join(stale)
