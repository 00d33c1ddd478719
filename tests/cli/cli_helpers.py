"""Ways to run the CLI in tests: several real subprocesses at once, or ``main()`` in this process
(the console script's own entry point, without paying the torch import again)."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import run_cli


def run_many(*calls: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
    """Independent ``run_cli`` calls in parallel (each subprocess pays the torch import)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: run_cli(*args), calls))


def run_main(capsys: pytest.CaptureFixture, *args: str) -> subprocess.CompletedProcess:
    """``minimind_cli.app.main(args)`` in-process: exit code, stdout and stderr as run_cli gives them."""
    from minimind_cli.app import main

    capsys.readouterr()
    code = 0
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(["minimind", *args], code, captured.out, captured.err)
