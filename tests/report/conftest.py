import shutil
from pathlib import Path

import pytest

from tests.dashboard.conftest import FIXTURES


def make_run(tmp_path: Path, name: str, fixture: str | None = None, *, lines: int | None = None,
             tail: str = "") -> Path:
    """A run directory whose events.jsonl is a recorded fixture (its first ``lines``), plus ``tail``."""
    run_dir = tmp_path / name
    run_dir.mkdir(parents=True)
    text = (FIXTURES / f"{fixture or name}.jsonl").read_text()
    if lines is not None:
        text = "".join(text.splitlines(keepends=True)[:lines])
    (run_dir / "events.jsonl").write_text(text + tail)
    return run_dir


def add_checkpoint(run_dir: Path, step: int, saved: float) -> Path:
    """A complete checkpoint directory as list_checkpoints sees it (meta.json listing its files)."""
    import json

    ckpt = run_dir / "checkpoints" / f"step_{step:08d}"
    ckpt.mkdir(parents=True)
    (ckpt / "model.pt").write_bytes(b"x")
    (ckpt / "meta.json").write_text(json.dumps({"step": step, "time": saved, "files": {"model.pt": "0"}}))
    return ckpt


@pytest.fixture
def run_factory(tmp_path):
    def make(name: str, fixture: str | None = None, **kwargs) -> Path:
        return make_run(tmp_path, name, fixture, **kwargs)

    return make


def copy_fixture(name: str, dest: Path) -> None:
    shutil.copy(FIXTURES / f"{name}.jsonl", dest)
