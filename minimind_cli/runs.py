"""What ``pretrain`` and ``resume`` share: choosing the data, creating the run directory, starting
the trainer, following it (dashboard or plain progress) and turning its end into an exit code."""

from __future__ import annotations

import itertools
import os
import signal
import sys
from datetime import datetime
from pathlib import Path

from rich.console import Console

from minimind.config import Config, save_config
from minimind.events import read_events, record_silent_end, run_outcome
from minimind.run_dir import CACHE_DIR, CONFIG_FILE, EVENTS_FILE, cache_dir, default_data_dir, runs_dir
from minimind_cli.errors import EXIT_FAILED, EXIT_USAGE, UserError
from minimind_cli.launch import ForwardInterrupts, LaunchOptions, start_trainer
from minimind_cli.progress import follow_headless, trainer_log_tail

console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DATA_SUFFIXES = (".jsonl", ".gz", ".txt", ".json")

def move_old_cache(data_dir: Path) -> None:
    """Earlier versions cached ``pretrain --data FILE`` in ``out/data/cache``, which then blocked
    ``out/data`` from ever holding a dataset. Move such a cache to ``out/cache`` (once, with a note)."""
    old, new = Path(data_dir) / CACHE_DIR, Path(data_dir).parent / CACHE_DIR
    if not old.is_dir() or new.exists() or any(p.name != CACHE_DIR for p in Path(data_dir).iterdir()):
        return
    os.replace(old, new)
    Path(data_dir).rmdir()
    console.print(f"moved the prepared-data cache of an earlier version from {old} to {new}")


def resolve_data(data: str | None, cfg: Config, out_dir: Path, scratch: Path | None = None) -> tuple[Path, str]:
    """The dataset directory to train on, and a sentence saying where it came from.

    --data DIR (a prepared dataset) | --data FILE (prepared first, cached by content) |
    data.path from the profile | out/data when `minimind prepare` made it | the built-in sample corpus.
    ``scratch`` (a temporary directory, ``bench``): a file or the sample corpus is prepared there
    instead of under ``out_dir``, so nothing under ``out_dir`` is written.
    """
    from minimind.data.format import is_dataset
    from minimind_cli.prepare_progress import PrepareProgress

    if scratch is None:
        move_old_cache(default_data_dir(out_dir))
    source = data or cfg.data.path
    if source:
        path = Path(source).expanduser()
        if not path.exists():
            raise UserError(f"--data {source}: no such file or directory",
                            "pass a dataset directory made by `minimind prepare` or a .jsonl/.txt file")
        if path.is_dir() and is_dataset(path):
            return path.resolve(), f"dataset {path}"
        from minimind.data.prepare import prepare_dataset, prepared_path_for

        target = prepared_path_for([path], cache_dir(out_dir)) if scratch is None else Path(scratch) / "data"
        why = "cached: the same input is prepared once" if scratch is None else "temporary"
        console.print(f"preparing {path} -> {target} ({why})")
        with PrepareProgress(console) as bar:
            result = prepare_dataset([path], target, on_progress=bar.callback)
        note = "reused the prepared copy" if result.reused else "prepared"
        return Path(result.path).resolve(), f"{path} ({note} in {result.path})"
    default = default_data_dir(out_dir)
    if is_dataset(default):
        return default.resolve(), f"{default} (made by `minimind prepare`)"
    from minimind.data.sample import prepare_sample

    console.print(f"no --data and no {default}: preparing the built-in sample corpus (Python's own documentation)")
    with PrepareProgress(console) as bar:
        result = prepare_sample(default if scratch is None else Path(scratch) / "sample", on_progress=bar.callback)
    return Path(result.path).resolve(), f"the built-in sample corpus in {result.path}"


def new_run_dir(cfg: Config) -> Path:
    """Create the run directory. ``--run NAME`` must be new (or empty); a generated name
    (``<profile>-<date>-<time>``) gets ``-2``, ``-3``, ... when a run started in the same second
    already has it: each directory is created by one atomic ``mkdir``, so two starts never share one."""
    root = runs_dir(cfg.run.out_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        if cfg.run.name:
            run_dir = root / cfg.run.name
            if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
                raise UserError(f"run directory {run_dir} already exists",
                                f"continue it with `minimind resume {run_dir}` or pick another --run name")
            run_dir.mkdir(exist_ok=True)
        else:
            base = f"{cfg.run.profile or 'run'}-{datetime.now():%Y%m%d-%H%M%S}"
            for n in itertools.count(1):
                run_dir = root / (base if n == 1 else f"{base}-{n}")
                try:
                    run_dir.mkdir()
                    break
                except FileExistsError:
                    continue
        probe = run_dir / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to {exc.filename or root}: {exc.strerror or exc}",
                        "choose a writable --out directory") from None
    return run_dir


def refuse_if_training(path: Path) -> None:
    """``resume PATH`` (a run or one of its checkpoints) of a run a live trainer owns: one line, exit 2."""
    from minimind.runlock import refuse_if_training as refuse

    path = Path(path)
    for candidate in (path, *list(path.parents)[:2]):  # RUN, or RUN/checkpoints/step_N
        refuse(candidate)


def take_run_lock(run_dir: Path):
    """The run's lock, taken by ``resume`` before it writes anything and handed to the trainer it
    starts: a second ``resume`` racing this one is refused here, with the lock's one line, before it
    touches the run directory. Returns (lock, note about a recovered stale lock or None)."""
    from minimind.runlock import RunLock

    lock = RunLock(run_dir)
    try:
        note = lock.acquire()
    except OSError as exc:
        raise UserError(f"cannot lock {run_dir}: {exc.strerror or exc}") from None
    return lock, note


def launch_and_follow(run_dir: Path, cfg: Config, opts: LaunchOptions, *, no_tui: bool, lock=None,
                      lock_note: str | None = None) -> int:
    """Write the config, start the trainer, follow it, and return the CLI's exit code. After the
    dashboard closes, the outcome is printed again (without the traceback the dashboard showed).
    ``lock``: the run's lock when the caller holds it (``take_run_lock``); the trainer takes it over."""
    save_config(cfg, run_dir / CONFIG_FILE)
    events_before = len(read_events(run_dir / EVENTS_FILE))
    proc = start_trainer(run_dir, opts, lock, lock_note)
    use_tui = not no_tui and sys.stdout.isatty() and sys.stdin.isatty()
    run_dashboard = None
    if use_tui:
        try:
            from minimind_cli.dashboard import run_dashboard
        except ImportError:
            run_dashboard = None
    if run_dashboard is not None:
        try:
            code = run_dashboard(run_dir, proc)
        except Exception as exc:  # noqa: BLE001 - a dashboard crash must never kill training
            err.print(f"[red]the dashboard failed ({type(exc).__name__}: {exc}); training goes on.[/] "
                      f"Following it here; watch it with `minimind watch {run_dir}`.")
            code = _follow_plain(run_dir, proc)
        if proc.poll() is None:  # detached: training goes on in the background
            return code
        return _conclude(run_dir, proc.returncode, events_before, show=False)
    code = _follow_plain(run_dir, proc)
    return _conclude(run_dir, code, events_before, show=True)


CTRL_C_NOTICE = ("Ctrl-C: asking the trainer to save a checkpoint and stop (Ctrl-C twice more kills it "
                 "without saving)...")


def _follow_plain(run_dir: Path, proc) -> int:
    def tell(count: int) -> None:
        if count == 1:
            err.print(CTRL_C_NOTICE, style="yellow", soft_wrap=True, markup=False)  # one line, never wrapped

    try:
        with ForwardInterrupts(proc, tell):
            code, _ = follow_headless(run_dir, proc, console)
    except BaseException:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        raise
    return code


def _conclude(run_dir: Path, code: int | None, events_before: int, *, show: bool) -> int:
    """Print how the trainer ended and return the exit code, both by ``run_outcome`` (the rule
    ``watch`` uses too): 0 finished, 130 stopped after saving, else the failure's code."""
    # A trainer killed without a word: its exit status is known only here, so it goes into the
    # events, and `watch` and `runs` then say the same.
    record_silent_end(run_dir, code, events_before)
    events = read_events(run_dir / EVENTS_FILE)[events_before:]
    outcome = run_outcome(events, returncode=code)
    end = outcome.event or {}
    if outcome.status == "finished":
        val = f", val loss {end['val_loss']:.4f}" if end.get("val_loss") is not None else ""
        loss = f", loss {end['final_loss']:.4f}" if end.get("final_loss") is not None else ""
        console.print(f"[bold green]done[/]: {end.get('step')} steps{loss}{val} in {end.get('elapsed_s') or 0:.0f}s")
        if end.get("weights_path"):
            console.print(f"weights: {end['weights_path']}  (inspect with `minimind inspect "
                          f"{end['weights_path']}`)", markup=False)
        shared, holder = end.get("shared_weights_path"), end.get("shared_weights_run")
        if shared and shared != end.get("weights_path"):
            console.print(f"{shared} was left as it is: it holds "
                          f"{'the weights of run ' + holder if holder else 'weights from outside this run'}",
                          markup=False)
        elif shared:
            own = Path(str(end.get("run_weights_path") or "")).name  # in the run directory, named next
            console.print(f"{shared} now comes from this run ({run_dir.name}); the run keeps its own copy"
                          f"{f', {own}' if own else ''}", markup=False)
        console.print(f"run: {run_dir}")
        return outcome.exit_code
    if outcome.status == "stopped":
        from minimind_cli.dashboard import stopped_message  # the wording `watch` uses too

        err.print(stopped_message(run_dir, end.get("step")), markup=False)
        return outcome.exit_code
    if end and end.get("recorded_by") != "cli":  # run_failed: the trainer said what went wrong
        err.print(f"[bold red]error:[/] {end.get('error')}")
        if end.get("exit_code") == EXIT_FAILED and end.get("traceback") and show:
            tb = "\n".join(str(end["traceback"]).rstrip().splitlines()[-8:])
            err.print(tb, markup=False, style="dim")
    else:  # killed, or gone without a word: its own output may say why
        err.print(f"[bold red]error:[/] {outcome.message}")
        tail = trainer_log_tail(run_dir)
        if tail and show:
            err.print(tail, markup=False, style="dim")
    advice = resume_advice(run_dir, outcome.event)
    if advice:
        err.print(advice, markup=False, soft_wrap=True)
    return outcome.exit_code


def resume_advice(run_dir: Path, end: dict | None) -> str | None:
    """What to say about going on after a failed or killed run: ``minimind resume`` only where it
    can work, i.e. a complete checkpoint exists and the trainer did not refuse its input (exit 2:
    its own hint says what to change) or run out of memory at micro-batch 1 (a plain resume would
    fail the same way)."""
    from minimind.checkpoint import list_checkpoints

    checkpoints = list_checkpoints(run_dir)
    if not checkpoints:
        return "no checkpoint was saved, so there is nothing to resume: start the run again with `minimind pretrain`"
    if end is not None and end.get("recorded_by") != "cli" and (
            end.get("exit_code") == EXIT_USAGE or "out of memory" in str(end.get("error", ""))):
        return None
    return (f"the last complete checkpoint (step {checkpoints[-1].step}) is kept; resume with: "
            f"minimind resume {run_dir}")


def latest_run(out_dir: Path) -> Path:
    """The run under ``out_dir/runs`` whose events were written last (used by resume and watch)."""
    root = runs_dir(out_dir)
    runs = [p for p in root.iterdir() if (p / EVENTS_FILE).is_file()] if root.is_dir() else []
    if not runs:
        raise UserError(f"no runs under {root}", "start one with `minimind pretrain --profile tiny`")
    return max(runs, key=lambda p: (p / EVENTS_FILE).stat().st_mtime)

