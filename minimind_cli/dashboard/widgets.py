"""The dashboard's panels. Each one renders from ``RunState`` when the app says it changed."""

from __future__ import annotations

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from minimind.events import Memory, MemoryEstimate, RunStarted
from minimind.run_dir import TRAINER_LOG
from minimind_cli.dashboard import format as fmt
from minimind_cli.dashboard import palette
from minimind_cli.dashboard.palette import LOG_STYLES, STATUS_STYLE
from minimind_cli.dashboard.signals import sparkline
from minimind_cli.dashboard.state import RunState


class HeaderPanel(Static):
    def show(self, state: RunState) -> None:
        started = state.started
        label, style = STATUS_STYLE.get(state.status, (state.status.upper(), "reverse"))
        line = Text.assemble((f" {label} ", style), " ")
        line.append(str((started.run if started is not None else None) or self.app.run_dir.name), style="bold")
        if started is not None:
            self._facts(state, started, line)
        line.no_wrap = True
        line.overflow = "ellipsis"
        self.update(line)

    def _facts(self, state: RunState, started: RunStarted, line: Text) -> None:
        facts = []
        if started.profile:
            facts.append(f"profile {started.profile}")
        total, active = started.params_total, started.params_active
        if total is not None:
            params = f"{fmt.count(total)} params"
            if state.is_moe and active is not None and active != total:
                params += f" ({fmt.count(active)} active)"
            facts.append(params)
        devices = started.devices or []
        if started.device:
            device = str(started.device)
            if devices and len(set(devices)) == 1 and devices[0] != device:
                device += f" ({devices[0]})"
            facts.append(device)
        if started.dtype:
            facts.append(str(started.dtype))
        if started.world_size is not None:
            facts.append(f"world {started.world_size}")
        if started.optimizer:
            facts.append(str(started.optimizer))
        room = (self.size.width or self.app.size.width) - 2
        for fact in facts:
            if line.cell_len + 5 + len(fact) > room:
                break  # whole facts only: the most important come first
            line.append("  ·  ", style="dim")
            line.append(fact)
        dataset = started.dataset
        if dataset is not None:
            line.append("\n")
            line.append("data ", style="dim")
            line.append(str(dataset.path if "path" in dataset.raw else fmt.NONE))
            extra = []
            if dataset.tokens is not None:
                extra.append(f"{fmt.count(dataset.tokens)} tokens")
            if dataset.documents is not None:
                extra.append(f"{fmt.count(dataset.documents)} documents")
            if extra:
                line.append(f"  ({', '.join(extra)})", style="dim")


class NoticeBar(Static):
    """The latest alert (a loss or grad-norm spike, an out-of-memory retry), highlighted for a
    few logging intervals; the events log keeps every one."""

    def show(self, state: RunState) -> None:
        notice = state.notice
        self.display = notice is not None
        if notice is not None:
            style = palette.OOM_NOTICE_STYLE if notice.kind == "oom_retry" else palette.NOTICE_STYLE
            text = Text(f" ⚠ {notice.text} ", style=style, no_wrap=True, overflow="ellipsis")
            self.update(text)


class ProgressPanel(Static):
    SPARK_ROWS = 2  # grad-norm and tokens/s history, shown when the terminal is tall

    def show(self, state: RunState, now: float | None = None) -> None:
        last = state.last_step
        total = state.total_steps
        step = state.completed_step
        status = state.status
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_row("step", f"{fmt.count(step) if step is not None else fmt.NONE} / {fmt.count(total)}",
                     "epoch", fmt.count(last and last.epoch))
        grid.add_row("tokens", fmt.count(last and last.tokens_seen),
                     "tok/s", fmt.count(last and last.tokens_per_s))
        grid.add_row("loss", fmt.fixed(last and last.loss), "smooth", fmt.fixed(last and last.loss_ema))
        val = state.last_eval
        grid.add_row("val", fmt.fixed(val and val.val_loss), "ppl", fmt.number(val and val.perplexity))
        grid.add_row("lr", fmt.number(last and last.lr, 3), "grad", fmt.number(last and last.grad_norm, 3))
        grid.add_row("MFU", fmt.percent(last and last.mfu), "step", f"{fmt.fixed(last and last.step_time_s, 2)} s")
        if status == "finished":
            eta_text = "done"
        elif status == "stopped":
            eta_text = "stopped"
        elif status in ("failed", "interrupted", "waiting"):
            eta_text = fmt.NONE
        else:
            eta_text = fmt.duration(last and last.eta_s)
        grid.add_row("elapsed", fmt.duration(state.elapsed_at(now)), "ETA", eta_text)
        parts: list = [Text("")]
        if total and step is not None:
            bar = Table.grid(expand=True, padding=(0, 1))
            bar.add_column(ratio=1)
            bar.add_column(no_wrap=True, style="dim")
            doing = ""
            if status == "running" and step < total:
                doing = f"▸ step {step + 1}"
            elif status == "paused":
                doing = "paused"
            bar.add_row(ProgressBar(total=float(total), completed=float(step), width=None,
                                    complete_style="green", finished_style="blue"), doing)
            parts = [bar]
        parts.append(grid)
        if not self.screen.has_class("-short"):
            # grad-norm and tokens/s history: a row each, or side by side on a MoE run (whose
            # heat map needs the height)
            signals = (("grad", state.grad_norms, True), ("tok/s", state.tokens_per_s, False))
            rows = [signals] if state.is_moe else [(signal,) for signal in signals]
            width = max(4, ((self.size.width or 40) - 2) // len(rows[0]) - 14)
            for row in rows:
                line = Text(no_wrap=True, overflow="ellipsis")
                for i, (label, values, plain) in enumerate(row):
                    latest = next((v for v in reversed(values) if v is not None), None)
                    line.append(("  " if i else "") + f"{label:<6}", style="dim")
                    line.append(f"{sparkline(values, width):<{width}}", style=palette.SPARKLINE)
                    line.append(f" {fmt.number(latest, 3) if plain else fmt.count(latest):<6}")
                parts.append(line)
        self.update(Group(*parts))


def memory_bar(used: float, total: float, margin: float | None, width: int) -> Text:
    """``used`` of ``total`` MiB as a bar, with the safety limit (total x (1 - margin)) marked."""
    width = max(4, width)
    limit = total * (1 - margin) if margin else total
    filled = min(width, round(width * used / total)) if total > 0 else 0
    mark = min(width - 1, int(width * limit / total)) if margin and total > 0 else None
    colour = palette.GREEN if used < 0.8 * limit else palette.AMBER if used < limit else palette.RED
    bar = Text(no_wrap=True)
    for i in range(width):
        if i == mark:
            bar.append("│", style=f"bold {palette.RED}")
        else:
            bar.append("█" if i < filled else "░", style=colour if i < filled else "dim")
    return bar


class MemoryPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Static(id="memory-text")
        yield Sparkline([], id="memory-history")

    def show(self, state: RunState) -> None:
        memory = (state.last_step.memory if state.last_step is not None else None) or Memory()
        started = state.started
        estimate = (started.memory_estimate if started is not None else None) or MemoryEstimate()
        gpus = memory.gpu or []
        parts: list = []
        if gpus:
            table = Table.grid(padding=(0, 1))
            for _ in range(5):
                table.add_column(justify="right", no_wrap=True)
            table.add_row(*(Text(h, style="dim") for h in ("", "alloc", "resv", "peak", "total")))
            for i, gpu in enumerate(gpus):
                name = str(gpu.device if "device" in gpu.raw else i).replace("cuda:", "gpu")
                table.add_row(Text(name, style="bold"), fmt.mib_short(gpu.allocated_mib),
                              fmt.mib_short(gpu.reserved_mib), fmt.mib_short(gpu.peak_mib),
                              fmt.mib_short(gpu.total_mib))
            parts.append(table)
        if memory.cpu_rss_mib is not None:
            parts.append(Text.assemble(("process RSS ", "dim"), (fmt.mib(memory.cpu_rss_mib), "bold")))
        # The device against its total: device 0's reserved memory (or the RSS on a CPU), with the
        # safety margin the batch size was chosen under.
        total = memory.total_mib or (gpus[0].total_mib if gpus else None) or estimate.device_total_mib
        margin = memory.safety_margin if "safety_margin" in memory.raw else estimate.safety_margin
        used = (gpus[0].reserved_mib or gpus[0].allocated_mib) if gpus else memory.cpu_rss_mib
        if total and used is not None:
            width = max(6, (self.size.width or 40) - 4 - len(f" {fmt.mib_short(used)}/{fmt.mib_short(total)}"))
            line = memory_bar(float(used), float(total), margin, width)
            line.append(f" {fmt.mib_short(used)}/{fmt.mib_short(total)}")
            parts.append(line)
        if self.screen.has_class("-short"):  # a short terminal: the figures above, nothing more
            self.query_one("#memory-text", Static).update(Group(*parts) if parts else Text("—", style="dim"))
            return
        if total and used is not None and margin:
            parts.append(Text(f"│ limit {fmt.mib(float(total) * (1 - float(margin)))} "
                              f"({fmt.percent(margin, 0)} safety margin)", style="dim"))
        if estimate.total_mib is not None:
            available = estimate.available_mib
            parts.append(Text.assemble(("estimate ", "dim"), fmt.mib(estimate.total_mib),
                                       (f" of {fmt.mib(available)} free" if available is not None else "", "dim")))
        auto = started.batch_size_auto if started is not None else None
        if auto is not None:
            parts.append(Text.assemble(("batch auto ", "dim"), f"{auto.chosen} x {auto.accumulation_steps}",
                                       (f" = {auto.global_batch}", "dim")))
        if not parts:
            parts.append(Text("no memory figures yet", style="dim"))
        text = Group(*parts)
        self.query_one("#memory-text", Static).update(text)
        self.query_one("#memory-history", Sparkline).data = list(state.memory_history)


def share_colour(share: float, fair: float) -> Color:
    """Heat colour of a token share: dark at 0, green at the fair share, red-orange at 2x or more."""
    cold, even, hot = (Color.parse(c) for c in (palette.HEAT_COLD, palette.HEAT_EVEN, palette.HEAT_HOT))
    ratio = share / fair if fair > 0 else 0.0
    if ratio <= 1.0:
        return cold.blend(even, max(0.0, ratio))
    return even.blend(hot, min(1.0, ratio - 1.0))


def _compact(widget: Widget) -> bool:
    """Short terminals fold the MoE panel: the heat map turns on its side, the summary takes a line."""
    return widget.screen.has_class("-short")


class HeatMap(Widget):
    """Layer x expert grid of token shares for the last logging interval (experts x layers when
    the terminal is short, since there are usually fewer experts than layers)."""

    DEFAULT_CSS = "HeatMap { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.load: list[list[float]] = []
        self.flags: dict[tuple[int, int], str] = {}

    def set_load(self, load: list[list[float]], flags: dict[tuple[int, int], str]) -> None:
        self.load, self.flags = load, flags
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        if not self.load:
            return 1
        experts = max(len(row) for row in self.load)
        return (experts if _compact(self) else len(self.load)) + 1

    def render(self) -> Text:
        if not self.load:
            return Text("no expert load yet", style="dim")
        layers = len(self.load)
        experts = max(len(row) for row in self.load)
        transposed = _compact(self)
        rows, cols = (experts, layers) if transposed else (layers, experts)
        row_tag, col_tag = ("E", "L") if transposed else ("L", "E")
        label_w = len(f"{row_tag}{rows - 1}") + 1
        cell_w = max(2, min(7, (self.size.width - label_w) // max(1, cols)))
        text = Text(no_wrap=True, overflow="crop")
        text.append(" " * label_w)
        for c in range(cols):
            text.append(f"{col_tag}{c}".center(cell_w)[:cell_w], style="dim")
        for r in range(rows):
            text.append("\n")
            text.append(f"{row_tag}{r}".ljust(label_w), style="dim")
            for c in range(cols):
                layer, expert = (c, r) if transposed else (r, c)
                row = self.load[layer]
                total = sum(x for x in row if x is not None) or 1.0
                share = (row[expert] or 0.0) / total if expert < len(row) else 0.0
                bg = share_colour(share, 1.0 / max(1, len(row)))
                fg = "black" if bg.brightness > 0.5 else "white"
                flag = self.flags.get((layer, expert))
                label = f"{100 * share:.0f}" if cell_w < 5 else f"{100 * share:.0f}%"
                if flag:
                    label = "!" + label
                text.append(label.center(cell_w)[:cell_w],
                            style=f"{'bold ' if flag else ''}{fg} on {bg.hex}")
        return text


class MoeSummary(Widget):
    DEFAULT_CSS = "MoeSummary { height: auto; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state: RunState | None = None

    def show(self, state: RunState) -> None:
        self.state = state
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        if _compact(self):
            return 1
        moe = self.state.last_step.moe if self.state is not None and self.state.last_step is not None else None
        return 3 if moe is not None and moe.router_bias else 2

    def render(self) -> Text:
        state = self.state or RunState()
        moe = state.last_step.moe if state.last_step is not None else None
        alerts = state.moe_alerts()
        compact = _compact(self)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("aux ", style="dim")
        text.append(fmt.number(moe and moe.aux_loss, 4))
        text.append("  imb " if compact else "  imbalance ", style="dim")
        imbalance = moe and moe.imbalance
        text.append(f"{fmt.fixed(imbalance, 2)}x" if imbalance is not None else fmt.NONE)
        text.append("  " if compact else "\n")
        if alerts:
            first = alerts[0]
            more = f" +{len(alerts) - 1}" if len(alerts) > 1 else ""
            where = f"L{first.layer}E{first.expert}" if compact else f"L{first.layer} E{first.expert}"
            text.append(f"⚠ {where} {first.kind} ({100 * first.share:.1f}%){more}", style="bold red")
        elif moe:
            text.append("balanced", style="green")
        bias = moe and moe.router_bias
        if bias:
            cells = [(abs(b), layer, expert, b) for layer, row in enumerate(bias)
                     for expert, b in enumerate(row) if b is not None]
            if cells:
                _, layer, expert, b = max(cells)
                text.append("  " if compact else "\n")
                text.append("bias " if compact else "router bias ", style="dim")
                text.append(f"max |b| {abs(b):.3g}")
                text.append(f" L{layer}E{expert}" if compact else f" at L{layer} E{expert} ({b:+.3g})", style="dim")
        return text


class MoePanel(Vertical):
    def compose(self) -> ComposeResult:
        yield MoeSummary(id="moe-summary")
        yield HeatMap(id="moe-heatmap")

    def show(self, state: RunState) -> None:
        moe = state.last_step.moe if state.last_step is not None else None
        self.query_one(MoeSummary).show(state)
        flags = {(a.layer, a.expert): a.kind for a in state.moe_alerts()}
        self.query_one(HeatMap).set_load((moe.load if moe is not None else None) or [], flags)




class EventLog(Widget):
    """The newest lines that fit; older ones scroll off the top."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state: RunState | None = None

    def show(self, state: RunState) -> None:
        self.state = state
        self.refresh()

    def render(self) -> Text:
        lines = self.state.log[-max(1, self.size.height):] if self.state else []
        text = Text(no_wrap=True, overflow="ellipsis")
        room = max(10, (self.size.width or 80) - 10)
        for i, line in enumerate(lines):
            if i:
                text.append("\n")
            offset = f"+{fmt.duration(line.offset_s)}" if line.offset_s is not None else " " * 8
            text.append(f"{offset:>9} ", style="dim")
            path = line.path
            if path and len(line.text) + len(path) + len(line.after) > room:
                # Cut a path in its middle: its end (the checkpoint's step) is what matters.
                path = fmt.middle(path, max(12, room - len(line.text) - len(line.after)))
            text.append(line.text + path + line.after, style=LOG_STYLES.get(line.kind, ""))
        return text


class FailurePanel(Static):
    """Why the run failed, what to do next (resume, q) and then the traceback or log tail: the action
    lines come before the long part, so a small panel cuts the traceback, never them."""

    def show(self, state: RunState) -> None:
        text = Text()
        failed = state.failed
        code = (failed.exit_code if failed is not None else None) if state.returncode is None else state.returncode
        text.append("Training failed", style="bold red")
        text.append(f" — {fmt.exit_status(code)}\n" if code is not None or state.process_gone
                    else "\n", style="red")
        details = Text()
        if failed is not None:
            text.append(str(failed.error), style="bold")
            if failed.step is not None:
                text.append(f"  (step {failed.step})", style="dim")
            text.append("\n")
            traceback = str(failed.traceback or "").rstrip()
            if traceback:
                details.append("\n".join(traceback.splitlines()[-12:]), style="dim")
        elif state.process_gone:
            if state.returncode is None:
                text.append("The trainer process is gone and wrote no run_finished or run_failed event.\n")
            else:
                text.append("The trainer exited without a run_failed event.\n")
            if state.trainer_log_tail:
                details.append(f"{TRAINER_LOG} (last lines):\n", style="bold")
                details.append(state.trainer_log_tail.rstrip(), style="dim")
        resume = state.resume_hint()
        if resume:
            text.append(resume + "\n", style="bold")
        text.append("Press q to exit.", style="italic")
        if details:
            text.append("\n")
            text.append_text(details)
        self.update(text)
