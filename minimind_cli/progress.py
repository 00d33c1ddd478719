"""Headless progress for a running trainer: reads ``events.jsonl`` like the dashboard does, shows
a rich progress bar (loss, lr, tokens/s, ETA), a line per logged step and one per live sample."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from minimind.events import (
    Checkpoint,
    Eval,
    EventTail,
    Heartbeat,
    Info,
    Paused,
    Resumed,
    RunFailed,
    RunFinished,
    RunStarted,
    RunStopped,
    Sample,
    Step,
    WarningEvent,
    parse_event,
)
from minimind.metrics import format_duration, visible_whitespace
from minimind.run_dir import EVENTS_FILE, TRAINER_LOG


class Seen:
    """The notable events shown so far (how the run ended is ``minimind.events.run_outcome``'s call)."""

    def __init__(self) -> None:
        self.finished: RunFinished | None = None
        self.stopped: RunStopped | None = None
        self.failed: RunFailed | None = None
        self.started: RunStarted | None = None
        self.last_checkpoint: Checkpoint | None = None


def follow_headless(run_dir: Path, proc: subprocess.Popen, console: Console, *, skip_existing: bool = True,
                    poll_s: float = 0.25) -> tuple[int | None, Seen]:
    """Show progress until the trainer exits; returns (trainer exit code, what the events said)."""
    tail = EventTail(Path(run_dir) / EVENTS_FILE)
    if skip_existing:
        list(tail.read_new())  # a resumed run's history was already shown last time
    outcome = Seen()
    progress = Progress(
        TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(), TextColumn("eta {task.fields[eta]}"), console=console, transient=False,
        auto_refresh=console.is_terminal)
    task = None
    with progress:
        while True:
            exited = proc.poll() is not None
            for event in tail.read_new():
                task = _show(event, progress, task, outcome)
            if exited:
                break
            time.sleep(poll_s)
    return proc.returncode, outcome


def _show(raw: dict, progress: Progress, task, outcome: Seen):
    event = parse_event(raw, lenient=True)  # a malformed event shows what it has
    say = progress.console.print
    if isinstance(event, RunStarted):
        outcome.started = event
        total = event.total_steps or 0
        start = event.start_step or 0
        if task is None:
            task = progress.add_task("train", total=total, completed=start, info="", eta="?")
        params = f"{event.params_total or 0:,} params"
        if event.params_active != event.params_total:
            params += f" ({event.params_active or 0:,} active)"
        resumed = f", resumed from step {start}" if event.resumed_from else ""
        optimizer = f", {event.optimizer}" if event.optimizer else ""
        say(f"[bold]{escape(str(event.run))}[/]: {params}, {total} steps, device {event.device}, "
            f"dtype {event.dtype}{optimizer}, {event.world_size} process(es){resumed}")
    elif isinstance(event, Step):
        info = (f"loss {event.loss:.4f}  lr {event.lr:.2e}  {event.tokens_per_s:,.0f} tok/s"
                if event.loss is not None else "")
        if task is not None:
            progress.update(task, completed=event.step, info=info, eta=format_duration(event.eta_s))
        mfu = f"  mfu {event.mfu * 100:.1f}%" if event.mfu is not None else ""
        moe = f"  aux {event.moe.aux_loss:.4f} imbalance {event.moe.imbalance:.2f}" if event.moe else ""
        loss = f"{event.loss:.4f}" if event.loss is not None else "nan"
        ema = f"{event.loss_ema:.4f}" if event.loss_ema is not None else "nan"
        say(f"step {event.step:>6}/{event.total_steps}  loss {loss} (ema {ema})  lr {event.lr:.2e}  "
            f"grad {event.grad_norm or 0:.2f}  {event.tokens_per_s:,.0f} tok/s{mfu}{moe}  "
            f"eta {format_duration(event.eta_s)}")
    elif isinstance(event, Eval):
        say(f"[cyan]eval[/]   step {event.step}: val loss {event.val_loss:.4f} "
            f"(perplexity {event.perplexity:.1f})")
    elif isinstance(event, Heartbeat):
        if task is not None:
            progress.update(task, completed=event.step)
    elif isinstance(event, Sample):
        say(f"[magenta]sample[/] step {event.step}: {escape(visible_whitespace(str(event.prompt)))}"
            f"[bold] → [/]{escape(visible_whitespace(str(event.text)))}")
    elif isinstance(event, Checkpoint):
        outcome.last_checkpoint = event
        say(f"[green]saved[/]  step {event.step} ({event.reason}) -> {escape(event.path)} "
            f"in {event.seconds:.1f}s")
    elif isinstance(event, Info):
        say(escape(str(event.message)))
    elif isinstance(event, WarningEvent):
        say(f"[yellow]warning:[/] {escape(str(event.message))}")
    elif isinstance(event, (Paused, Resumed)):
        say(f"{event.type} at step {event.step}")
    elif isinstance(event, RunFinished):
        outcome.finished = event
        if task is not None:
            progress.update(task, completed=event.step)
    elif isinstance(event, RunStopped):
        outcome.stopped = event  # the CLI says so, with the resume command, once the trainer exits
    elif isinstance(event, RunFailed):
        outcome.failed = event
    return task


def trainer_log_tail(run_dir: Path, lines: int = 15) -> str:
    try:
        text = (Path(run_dir) / TRAINER_LOG).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])
