"""Starting the trainer process: the exact argv (plain or through torchrun) and signal forwarding."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from minimind.run_dir import TRAINER_LOG
from minimind.runlock import HANDED_FD_ENV, HANDED_NOTE_ENV, RunLock


@dataclass
class LaunchOptions:
    nproc: int = 1
    nnodes: int | None = None
    node_rank: int | None = None
    master_addr: str | None = None
    master_port: int | None = None
    resume_from: Path | None = None
    init_from: Path | None = None
    force: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def distributed(self) -> bool:
        return self.nproc > 1 or (self.nnodes or 1) > 1


def trainer_argv(run_dir: Path, opts: LaunchOptions, python: str = sys.executable) -> list[str]:
    """``python -m minimind.train RUN_DIR ...``, or the same module under torchrun."""
    tail = [str(run_dir)]
    if opts.resume_from is not None:
        tail += ["--resume-from", str(opts.resume_from)]
    if opts.init_from is not None:
        tail += ["--init-from", str(opts.init_from)]
    if opts.force:
        tail.append("--force")
    if not opts.distributed:
        return [python, "-m", "minimind.train", *tail]
    argv = [python, "-m", "torch.distributed.run", f"--nproc-per-node={opts.nproc}"]
    if (opts.nnodes or 1) > 1:
        argv += [f"--nnodes={opts.nnodes}", f"--node-rank={opts.node_rank or 0}",
                 f"--master-addr={opts.master_addr or '127.0.0.1'}", f"--master-port={opts.master_port or 29500}"]
    else:
        argv.append("--standalone")
    return [*argv, "-m", "minimind.train", *tail]


def start_trainer(run_dir: Path, opts: LaunchOptions, lock: RunLock | None = None,
                  lock_note: str | None = None) -> subprocess.Popen:
    """Start the trainer in its own session (so it can outlive a detached dashboard), with its
    output in ``RUN_DIR/trainer.log``. ``lock``: the run's lock, taken by the caller; a plain
    trainer inherits and adopts it (``RunLock.adopt``), so no other process can take the run in
    between. torchrun's workers do not inherit descriptors: there it is released just before."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **opts.extra_env}
    # The trainer must import the same minimind as this CLI, also when run from a source checkout.
    source_root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = source_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    pass_fds: tuple[int, ...] = ()
    if lock is not None and lock.fd is not None:
        if opts.distributed:
            lock.release()
        else:
            pass_fds = (lock.fd,)
            env.update({HANDED_FD_ENV: str(lock.fd), HANDED_NOTE_ENV: lock_note or ""})
    log = open(Path(run_dir) / TRAINER_LOG, "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(trainer_argv(run_dir, opts), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True, pass_fds=pass_fds)
    finally:
        log.close()
        if lock is not None:
            lock.hand_over()  # the trainer holds it now (or it was released above)


class ForwardInterrupts:
    """While active, Ctrl-C in the CLI asks the trainer to save and stop (SIGINT) instead of killing
    the CLI; a third Ctrl-C kills the trainer."""

    def __init__(self, proc: subprocess.Popen, on_first=None):
        self.proc = proc
        self.count = 0
        self.on_first = on_first
        self._old = None

    def _handler(self, signum, frame):
        self.count += 1
        if self.proc.poll() is not None:
            return
        if self.count >= 3:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return
        self.proc.send_signal(signal.SIGINT)
        if self.on_first is not None:
            self.on_first(self.count)

    def __enter__(self):
        self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._old)
