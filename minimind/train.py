"""Entry point of the trainer process: ``python -m minimind.train RUN_DIR [--resume-from CKPT]``.

Started by ``minimind pretrain`` / ``resume`` (directly, or through torchrun for several
processes). It reads ``RUN_DIR/config.yaml`` (the resolved config the CLI wrote), never the
CLI's arguments. Exit codes: 0 finished or stopped after saving (``run_stopped`` in the events
tells them apart), 1 failed, 2 a ``MinimindError`` (bad config, data, checkpoint or weights).
Every failure is also recorded as a ``run_failed`` event.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from minimind.errors import EXIT_FAILED, EXIT_USAGE, MinimindError
from minimind.run_dir import CONFIG_FILE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minimind.train", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume-from", type=Path, default=None, help="run or checkpoint directory")
    parser.add_argument("--init-from", type=Path, default=None, help="weights to start from (any inspectable file)")
    parser.add_argument("--force", action="store_true", help="resume despite a changed dataset")
    args = parser.parse_args(argv)

    from minimind import distributed
    from minimind.events import EventWriter
    from minimind.training.report import Reporter

    dist = distributed.from_env()
    run_dir = args.run_dir
    events, lock, stale = None, None, None
    if dist.is_main:  # one owner per run: nothing is written before the lock is ours
        from minimind.runlock import HANDED_FD_ENV, HANDED_NOTE_ENV, RunLock

        lock = RunLock(run_dir)
        handed, note = os.environ.pop(HANDED_FD_ENV, None), os.environ.pop(HANDED_NOTE_ENV, None)
        try:
            # `minimind resume` took the lock and handed it down; otherwise take it here
            stale = (note or None) if handed and lock.adopt(int(handed)) else lock.acquire()
        except MinimindError as exc:
            _print_error(exc.message, exc.hint)
            return exc.exit_code
        except OSError as exc:
            print(f"error: cannot lock {run_dir}: {exc.strerror or exc}", file=sys.stderr, flush=True)
            return EXIT_USAGE
    try:
        if dist.is_main:
            events = EventWriter(run_dir)
    except OSError as exc:
        lock.release()
        print(f"error: cannot write events to {run_dir}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE
    reporter = Reporter(events, dist.is_main)
    progress = {"step": None}

    def fail(message: str, code: int, tb: str = "", hint: str | None = None) -> int:
        reporter.emit("run_failed", error=message, traceback=tb[-4000:], exit_code=code, step=progress["step"])
        if dist.is_main:
            _print_error(message, hint)
            if tb and code == EXIT_FAILED:
                print(tb, file=sys.stderr, flush=True)
        return code

    if stale:
        print(f"info: {stale}", file=sys.stderr, flush=True)
        reporter.emit("info", message=stale, step=0)
    try:
        return train(run_dir, dist=dist, reporter=reporter, resume_from=args.resume_from,
                     init_from=args.init_from, force=args.force, progress=progress)
    except MinimindError as exc:
        return fail(exc.message, exc.exit_code, hint=exc.hint)
    except KeyboardInterrupt:
        return fail("interrupted before the first step (nothing to save)", 130)
    except Exception as exc:  # noqa: BLE001 - recorded as run_failed for the dashboard
        from minimind.training.memory import is_out_of_memory

        if is_out_of_memory(exc):  # outside a training step (evaluation, start-up): nothing to re-split
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            return fail(f"out of memory outside a training step ({first}); nothing new was saved",
                        EXIT_FAILED, hint="use a smaller --batch-size or data.max_seq_len, or --batch-size auto")
        return fail(f"{type(exc).__name__}: {exc}", EXIT_FAILED, traceback.format_exc())
    finally:
        reporter.close()
        if events is not None:
            events.close()
        distributed.shutdown()
        if lock is not None:
            lock.release()


def _print_error(message: str, hint: str | None = None) -> None:
    print(f"error: {message}" + (f"\nhint: {hint}" if hint else ""), file=sys.stderr, flush=True)


def train(run_dir: Path, *, dist, reporter, resume_from: Path | None = None, init_from: Path | None = None,
          force: bool = False, callbacks=None, progress: dict | None = None) -> int:
    """Build the run of ``RUN_DIR/config.yaml``, restore a checkpoint if asked, and loop.
    ``callbacks`` (``training/callbacks.py``): registered on ``Built``; by default the fault
    injection that ``MINIMIND_FAULT_*`` asks for (nothing in normal use)."""
    from minimind.config import load_config
    from minimind.training.build import build
    from minimind.training.faults import Faults
    from minimind.training.loop import Loop
    from minimind.training.state import TrainState, restore

    cfg = load_config(Path(run_dir) / CONFIG_FILE)
    if dist.is_main and (cfg.run.wandb or cfg.run.tensorboard):
        from minimind.sinks import Sinks

        reporter.sinks = Sinks(cfg, Path(run_dir))
    info = split = split_note = None
    if resume_from is not None:
        from minimind.checkpoint import find_verified
        from minimind.training.policy import saved_split

        info, skipped = find_verified(resume_from)  # the CLI passes the one its plan chose
        split, split_note = saved_split(cfg, info.meta, dist.world_size)
    built = build(cfg, dist, init_from=init_from if resume_from is None else None, split=split)
    built.callbacks = callbacks if callbacks is not None else Faults.from_env().callbacks()
    if built.init_note:
        reporter.emit("info", message=built.init_note, step=0)
    state, resumed_from = TrainState(), None
    if info is not None:
        state, notes = restore(built, info, force=force, verified=True)
        if split_note:
            reporter.emit("info", message=split_note, step=state.step)
        for note in [s.note(info) for s in skipped] + notes:
            reporter.emit("warning", message=note, step=state.step)
        resumed_from = {"path": str(info.path), "step": state.step}
    try:
        return Loop(built, state, run_dir, reporter).run(resumed_from)
    finally:
        if progress is not None:
            progress["step"] = state.step


if __name__ == "__main__":
    from minimind import distributed

    distributed.exit_process(main())
