"""`minimind eval`: loss, perplexity and bits per byte of any weights on a dataset or a text file."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

HELP = """Score weights on text: mean loss (nats/token), perplexity and bits per byte.

PATH is anything `minimind inspect` reads: a weights file (ours or MiniMind's .pth in either key
layout), a run directory (its latest complete checkpoint), a checkpoint directory or an exported
Hugging Face directory. --data is a prepared dataset (its validation split by default) or a
.jsonl/.jsonl.gz/.txt file, tokenized with the weights' tokenizer. Bits per byte count the UTF-8
bytes of the original text, so models with different tokenizers compare.

Modes:

  val       the run's own validation set (its first train.eval_samples samples, with its window,
            packing, doc_mask and precision): exactly the run's val_loss. The default for a run or
            checkpoint directory scored on its own dataset.

  packed    every window of the text plus the shorter tail, plain causal attention, fp32 on a CPU:
            the whole split (or file), not the run's sample of it. The default otherwise.

  document  one document per row, as MiniMind trains (long documents continue in the next row).

Examples:

  minimind eval out/runs/RUN                          (its val_loss, recomputed)

  minimind eval out/pretrain_512.pth --data held_out.jsonl --mode both

  minimind eval MiniMind/out/pretrain_512.pth --data eval.jsonl --tokenizer MiniMind/model --json
"""


class Mode(str, Enum):
    val = "val"
    packed = "packed"
    document = "document"
    both = "both"


class SplitName(str, Enum):
    val = "val"
    train = "train"


def eval_command(
    path: Annotated[Path, typer.Argument(help="A .pth/.pt file, a run dir, a checkpoint dir or an HF dir.")],
    data: Annotated[Path | None, typer.Option(
        "--data", help="A prepared dataset directory or a .jsonl/.jsonl.gz/.txt file (default: the "
                       "dataset the weights' run trained on).")] = None,
    mode: Annotated[Mode | None, typer.Option(
        "--mode", help="val: the run's own validation set, as its val_loss (the default for a run's weights "
                       "on their dataset); packed: every window of the text, plus the tail; document: one "
                       "document per row; both: packed and document.")] = None,
    split: Annotated[SplitName, typer.Option("--split", help="Which split of a dataset to score.")]
    = SplitName.val,
    seq_len: Annotated[int | None, typer.Option(
        "--seq-len", min=1, help="Tokens per row (default: the run's data.max_seq_len; for a .pth, that of the run its sidecar names; else 512).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Rows per forward pass.")] = 8,
    max_docs: Annotated[int | None, typer.Option(
        "--max-docs", min=1, help="Score only the first N documents.")] = None,
    tokenizer: Annotated[Path | None, typer.Option(
        "--tokenizer", help="Tokenizer directory for a text file (default: the run's dataset, out/data).")]
    = None,
    text_key: Annotated[str, typer.Option("--text-key", help="JSON key holding the text in .jsonl files.")]
    = "text",
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    head_dim: Annotated[int | None, typer.Option(
        "--head-dim", min=2, help="Head size for a weights file without a config.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="Score text tokenized with another tokenizer than the weights were trained with.")]
    = False,
) -> None:
    from rich.console import Console

    from minimind.evaluation import MODES, evaluate_weights

    modes = None if mode is None else MODES if mode is Mode.both else (mode.value,)
    err = Console(stderr=True)
    with _Progress(err) as bar:
        results = evaluate_weights(path, data, modes=modes, split=split.value, seq_len=seq_len,
                                   batch_size=batch_size, device=device, tokenizer=tokenizer, text_key=text_key,
                                   max_docs=max_docs, head_dim=head_dim, force=force,
                                   progress=bar.for_mode)
    if json_output:
        payload = {"weights": str(path), "results": [r.to_dict() for r in results]}
        typer.echo(json.dumps(payload, indent=2))
        return
    _print(path, results)


class _Progress:
    """A rich bar per mode (tokens scored), on stderr and only on a terminal."""

    def __init__(self, console):
        self.console = console
        self.bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        if self.bar is not None:
            self.bar.stop()
        return False

    def for_mode(self, mode: str):
        if not self.console.is_terminal:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        if self.bar is None:
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("tokens"), TimeRemainingColumn(), console=self.console)
            self.bar.start()
        task = self.bar.add_task(f"scoring ({mode})", total=None)
        return lambda done, total: self.bar.update(task, completed=done, total=total)


def _print(path: Path, results) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    first = results[0]
    where = f"{first.data}" + (f" ({first.split} split)" if first.split else "")
    console.print(f"[bold]{escape(str(path))}[/] on {escape(where)}: {first.documents:,} documents"
                  + (f", {first.bytes:,} bytes" if first.bytes else ""), soft_wrap=True)
    table = Table(box=None, padding=(0, 1), pad_edge=False)
    for col in ("mode", "loss", "perplexity", "bits/byte", "tokens", "rows", "seq len", "time"):
        table.add_column(col, justify="left" if col == "mode" else "right", no_wrap=True)
    for r in results:
        table.add_row(r.mode, f"{r.loss:.4f}", f"{r.perplexity:,.2f}",
                      f"{r.bits_per_byte:.4f}" if r.bits_per_byte is not None else "-", f"{r.scored_tokens:,}",
                      f"{r.rows:,}", str(r.seq_len), f"{r.seconds:.1f}s")
    console.print(table)
    console.print("[dim]loss: mean cross-entropy in nats per scored token; bits/byte: per UTF-8 byte of the "
                  "text[/]", soft_wrap=True)
    for note in first.notes:
        console.print(f"[dim]note: {escape(note)}[/]", soft_wrap=True)
