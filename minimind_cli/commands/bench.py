"""`minimind bench`: time real training steps here and say whether the speed is normal."""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from minimind_cli.errors import UserError

HELP = """Time real training steps of a profile on this machine (the real model, optimizer and step): trained
tokens/s, MFU against the device's peak, where a step's time goes (data, forward + backward,
synchronisation, optimizer), compile time, peak memory, how long one epoch and the whole run would
take, and whether this is in line with what was measured on the same kind of device.

Examples:

  minimind bench --profile default --steps 20

  minimind bench --profile moe --set train.dtype=fp32 --set train.compile=false

  minimind bench --profile tiny --data out/mydata --json

The data is chosen as by `pretrain` (--data, else out/data, else the built-in sample corpus); a
file or the sample corpus is prepared in a temporary directory and removed. Nothing is written.
On a CPU a bench step is at most 2,048 tokens (--batch-size to change it); the projections scale
to the profile's own step. The steps stop after --max-time seconds (90) when they take longer.
"""


def bench(
    profile: Annotated[str, typer.Option("--profile", "-p", help="Profile name (default, moe, tiny, large) or a YAML file.")] = "default",
    data: Annotated[str | None, typer.Option("--data", "-d", help="Dataset directory, or a .jsonl/.txt file (prepared in a temporary directory).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override any config key: --set train.dtype=fp32 (repeatable).")] = None,
    steps: Annotated[int, typer.Option("--steps", help="Timed steps.")] = 10,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed steps first (the first one compiles).")] = 2,
    max_time: Annotated[float, typer.Option("--max-time", help="Stop timing once the steps (warm-up included) took this many seconds, after at least 2 timed steps; 0: no limit.")] = 90,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Micro-batch of a bench step (default: the profile's; on a CPU at most 2,048 tokens).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON instead of the table.")] = False,
) -> None:
    from minimind.bench import run_bench
    from minimind.config import resolve
    from minimind.data.format import read_meta
    from minimind.training.build import pick_device
    from minimind_cli.runs import console, err, resolve_data

    if steps < 1 or warmup < 0:
        raise UserError(f"--steps {steps} --warmup {warmup}: need at least 1 timed step and no negative warm-up")
    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size {batch_size}: must be at least 1")
    sets = list(overrides or [])
    cfg = resolve(profile, sets)  # a bad profile or key fails here, before anything runs
    pick_device(cfg.train.device)
    say = err if json_output else console
    with tempfile.TemporaryDirectory(prefix="minimind-bench-") as scratch:
        # pretrain's rule for the data, prepared into the temporary directory when it must be prepared
        with contextlib.redirect_stdout(sys.stderr) if json_output else contextlib.nullcontext():
            path, where = resolve_data(data, cfg, Path(cfg.run.out_dir), scratch=Path(scratch))
        if path.is_relative_to(Path(scratch).resolve()):
            where += " (temporary, removed afterwards)"
        extra = [f"data.path={path}"]
        vocab = int(read_meta(path).get("vocab_size", cfg.model.vocab_size))
        if vocab != cfg.model.vocab_size and not any(s.startswith("model.vocab_size=") for s in sets):
            extra.append(f"model.vocab_size={vocab}")
            say.print(f"model.vocab_size set to {vocab} to match the dataset's tokenizer")
        cfg = resolve(profile, [*sets, *extra])
        say.print(f"data: {where}")
        result = run_bench(cfg, steps, warmup, batch_size, data=where, max_seconds=max_time or None,
                           progress=lambda text: say.print(text, style="dim"))
    if json_output:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    for line in result.lines():
        console.print(line, markup=False)
