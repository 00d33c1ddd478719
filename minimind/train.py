"""Entry point of the trainer process: ``python -m minimind.train RUN_DIR [--resume-from CKPT]``.

Started by ``minimind pretrain`` / ``resume`` (directly, or through torchrun for several
processes). It reads ``RUN_DIR/config.yaml`` (the resolved config the CLI wrote), never the
CLI's arguments. Exit codes: 0 finished or stopped after saving, 1 failed, 2 bad config or data.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minimind.train", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume-from", type=Path, default=None, help="run or checkpoint directory")
    parser.add_argument("--init-from", type=Path, default=None, help="weights to start from (any inspectable file)")
    parser.add_argument("--force", action="store_true", help="resume despite a changed dataset")
    args = parser.parse_args(argv)

    from minimind import distributed
    from minimind.checkpoint import CheckpointError
    from minimind.config import ConfigError, load_config
    from minimind.data.format import DatasetFormatError
    from minimind.events import EventWriter
    from minimind.trainer import Trainer, TrainingFailed

    dist = distributed.from_env()
    run_dir = args.run_dir
    events = None
    try:
        if dist.is_main:
            events = EventWriter(run_dir)
    except OSError as exc:
        print(f"error: cannot write events to {run_dir}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_USAGE

    def fail(message: str, code: int, tb: str = "") -> int:
        if events is not None:
            events.emit("run_failed", error=message, traceback=tb[-4000:], exit_code=code,
                        step=getattr(trainer, "step", None))
        if dist.is_main:
            print(f"error: {message}", file=sys.stderr, flush=True)
            if tb and code == EXIT_FAILED:
                print(tb, file=sys.stderr, flush=True)
        return code

    trainer = None
    try:
        cfg = load_config(run_dir / "config.yaml")
        trainer = Trainer(run_dir, cfg, resume_from=args.resume_from, init_from=args.init_from,
                          force=args.force, dist=dist, events=events)
        return trainer.run()
    except (ConfigError, DatasetFormatError, CheckpointError) as exc:
        return fail(str(exc), EXIT_USAGE)
    except TrainingFailed as exc:
        return fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return fail("interrupted before the first step (nothing to save)", 130)
    except MemoryError:
        return fail("out of memory; use a smaller batch_size or max_seq_len", EXIT_FAILED, traceback.format_exc())
    except Exception as exc:  # noqa: BLE001 - recorded as run_failed for the dashboard
        message = f"{type(exc).__name__}: {exc}"
        if "out of memory" in str(exc).lower():
            message += " (use a smaller batch_size or max_seq_len)"
        return fail(message, EXIT_FAILED, traceback.format_exc())
    finally:
        if trainer is not None and trainer.sinks is not None:
            trainer.sinks.close()
        if events is not None:
            events.close()
        distributed.shutdown()


if __name__ == "__main__":
    sys.exit(main())
