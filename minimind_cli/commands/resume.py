"""`minimind resume`: continue a run exactly from its latest (or a named) complete checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

HELP = """Continue a run exactly where it stopped (crash, Ctrl-C, kill -9).

Examples:

  minimind resume                                  (the most recent run under out/runs)

  minimind resume out/runs/tiny-20260101-120000    (its latest complete checkpoint)

  minimind resume out/runs/RUN/checkpoints/step_00000200 --set train.max_steps=1000
"""

# Keys a resume may change: they do not alter what the saved state means.
SAFE_KEYS = ("train.max_steps", "train.epochs", "train.log_interval", "train.eval_interval", "train.eval_batches",
             "train.save_interval", "train.keep_last", "train.device", "train.dtype")


def resume(
    path: Annotated[Path | None, typer.Argument(help="Run directory or checkpoint directory (default: most recent run).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a config key (train.max_steps, intervals, ...).")] = None,
    out: Annotated[str, typer.Option("--out", help="Output root searched when no PATH is given.")] = "out",
    force: Annotated[bool, typer.Option("--force", help="Allow a changed dataset and other train.* overrides.")] = False,
    nproc: Annotated[int, typer.Option("--nproc", help="Processes on this node (torchrun).")] = 1,
    no_tui: Annotated[bool, typer.Option("--no-tui", help="Plain progress instead of the dashboard.")] = False,
) -> None:
    import yaml

    from minimind.checkpoint import find_checkpoint
    from minimind.config import Config, apply_overrides, parse_override
    from minimind.data.format import read_meta
    from minimind_cli.errors import UserError
    from minimind_cli.launch import LaunchOptions
    from minimind_cli.runs import check_dataset_fits, console, latest_run, launch_and_follow

    target = path if path is not None else latest_run(Path(out))
    info = find_checkpoint(target)
    run_dir = info.path.parent.parent
    saved = yaml.safe_load((info.path / "config.yaml").read_text(encoding="utf-8"))
    for text in overrides or []:
        section, name, _ = parse_override(text)
        key = f"{section}.{name}"
        if section == "model":
            raise UserError(f"--set {key}: the model shape cannot change on resume",
                            "start a new run with --init-from to reuse the weights in another shape")
        if key not in SAFE_KEYS and not force:
            raise UserError(f"--set {key}: changing it on resume breaks exact continuation",
                            f"safe keys: {', '.join(SAFE_KEYS)}; pass --force to change it anyway")
    cfg = Config.from_dict(apply_overrides(saved, overrides or []), source=str(info.path / "config.yaml"))
    saved_world = int(info.meta.get("world_size", 1))
    explicit_batch = any(o.split("=", 1)[0].strip() == "train.batch_size" for o in overrides or [])
    if nproc != saved_world and not explicit_batch:
        # Keep the global batch (and so the data position and the loss curve) across a new world size.
        global_batch = cfg.train.batch_size * saved_world
        if global_batch % nproc:
            raise UserError(f"cannot keep the global batch of {global_batch} samples on {nproc} processes "
                            f"(it was {cfg.train.batch_size} x {saved_world})",
                            f"use a --nproc that divides {global_batch}, or --force --set train.batch_size=N")
        cfg.train.batch_size = global_batch // nproc
        console.print(f"{saved_world} -> {nproc} processes: train.batch_size {global_batch // saved_world} -> "
                      f"{cfg.train.batch_size} per process, keeping the global batch of {global_batch}")
    data_meta = read_meta(cfg.data.path)
    saved_fp = (info.meta.get("dataset") or {}).get("fingerprint")
    if saved_fp and data_meta.get("fingerprint") != saved_fp and not force:
        raise UserError(f"the dataset {cfg.data.path} changed since step {info.step} was saved",
                        "pass --force to continue on the new data (the exact data order is lost)")
    check_dataset_fits(cfg, nproc)
    meta = info.meta
    loss = f"{meta['loss']:.4f}" if isinstance(meta.get("loss"), (int, float)) else "?"
    console.print(f"resuming {run_dir} from step {info.step} ({info.path.name}): tokens seen "
                  f"{meta.get('tokens_seen', 0):,}, last loss {loss}, epoch {meta.get('epoch')}; "
                  f"restoring weights, optimizer, scaler, RNG states and data position")
    opts = LaunchOptions(nproc=nproc, resume_from=info.path, force=force)
    raise typer.Exit(launch_and_follow(run_dir, cfg, opts, no_tui=no_tui))
