"""`minimind resume`: continue a run exactly from its latest (or a named) complete checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

HELP = """Continue a run exactly where it stopped (crash, Ctrl-C, kill -9).

Examples:

  minimind resume                                  (the most recent run under out/runs)

  minimind resume out/runs/tiny-20260101-120000    (its latest complete checkpoint)

  minimind resume out/runs/RUN/checkpoints/step_00000200 --max-steps 1000

A damaged newest checkpoint (a file that fails its sha256) is skipped, with a note, for the
newest verified one. A new length (--max-steps, --epochs) re-plans the lr schedule from the
current step without a jump; --keep-schedule keeps the original plan instead.
"""

def resume(
    path: Annotated[Path | None, typer.Argument(help="Run directory or checkpoint directory (default: most recent run).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a config key (train.max_steps, intervals, ...).")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="New run length in optimizer steps (--set train.max_steps=N).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="New run length in passes over the data (--set train.epochs=N).")] = None,
    out: Annotated[str, typer.Option("--out", help="Output root searched when no PATH is given.")] = "out",
    keep_schedule: Annotated[bool, typer.Option("--keep-schedule", help="On a new length, keep the original lr plan (--set train.on_length_change=keep).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Allow a changed dataset and other train.* overrides.")] = False,
    nproc: Annotated[int, typer.Option("--nproc", help="Processes on this node (torchrun).")] = 1,
    no_tui: Annotated[bool, typer.Option("--no-tui", help="Plain progress instead of the dashboard.")] = False,
) -> None:
    from minimind.training.policy import plan_resume
    from minimind_cli.launch import LaunchOptions
    from minimind_cli.runs import console, latest_run, launch_and_follow, refuse_if_training, take_run_lock

    target = path if path is not None else latest_run(Path(out))
    refuse_if_training(target)  # a live run has one owner: refuse before reading or writing anything
    overrides = list(overrides or [])
    overrides += [f"train.{key}={value}" for key, value in (("max_steps", max_steps), ("epochs", epochs))
                  if value is not None]
    if keep_schedule:
        overrides.append("train.on_length_change=keep")
    plan = plan_resume(target, overrides, world=nproc, force=force)
    # From here the run is ours: a resume racing this one is refused by the lock, before it says or
    # writes anything; the trainer takes the lock over.
    lock, stale = take_run_lock(plan.run_dir)
    try:
        for note in plan.notes:
            console.print(note)
        if stale:
            console.print(f"info: {stale}", markup=False)
        info, meta = plan.info, plan.info.meta
        loss = f"{meta['loss']:.4f}" if isinstance(meta.get("loss"), (int, float)) else "?"
        console.print(f"resuming {plan.run_dir} from step {info.step} ({info.path.name}): tokens seen "
                      f"{meta.get('tokens_seen', 0):,}, last loss {loss}, epoch {meta.get('epoch')}; "
                      f"restoring weights, optimizer, scaler, RNG states and data position")
        opts = LaunchOptions(nproc=nproc, resume_from=info.path, force=force)
        code = launch_and_follow(plan.run_dir, plan.cfg, opts, no_tui=no_tui, lock=lock, lock_note=stale)
    finally:
        lock.release()  # only if the trainer never took it over
    raise typer.Exit(code)
