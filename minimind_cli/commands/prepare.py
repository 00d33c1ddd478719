"""`minimind prepare`: validate and tokenize a corpus into a dataset directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from minimind_cli.errors import UserError

HELP = """Validate and tokenize a corpus into a training-ready dataset directory (default out/data).

INPUT is one or more files, directories of them (searched recursively) or quoted glob patterns ('shards/*.parquet'): .jsonl, .jsonl.gz, .jsonl.zst, .txt, .parquet and .arrow (Arrow IPC; a `datasets` save_to_disk directory is a directory of them). In .jsonl every line is a JSON object with the text under "text" (--text-key); a UTF-8 BOM, CRLF line endings, blank lines and extra keys are fine, and empty texts are skipped and counted. In .parquet and .arrow the text is the column --text-key, read a record batch at a time. In .txt every paragraph is one document: paragraphs are separated by one or more blank lines. Parquet, Arrow and zstd need pip install 'minimind[formats]'.

The first invalid line (or row) stops the run with "file:line: reason" ("file: row N: reason") and leaves nothing behind; --skip-invalid skips such lines instead and reports how many were skipped, per reason. --dedup exact drops documents whose text (NFC, whitespace collapsed) was seen before; --max-documents and --max-tokens keep only the start of the corpus. Without --tokenizer a byte-level BPE tokenizer (MiniMind's special tokens, vocab --vocab-size) is trained on the first 64 MB of the corpus (with --max-documents, on the documents kept) and stored in the dataset. Re-running on unchanged inputs reuses the dataset (--force rebuilds it).

Examples:

  minimind prepare data.jsonl

  minimind prepare corpus/ -o out/data --workers 2

  minimind prepare data.jsonl --tokenizer ../minimind/model   (MiniMind's own tokenizer)

  minimind prepare dump.jsonl.gz --text-key content --skip-invalid

  minimind prepare 'shards/*.parquet' --dedup exact --max-tokens 100000000

  minimind prepare --sample   (the built-in sample corpus, from Python's own docs)
"""


def prepare(
    inputs: Annotated[list[Path] | None, typer.Argument(
        metavar="INPUT", show_default=False,
        help="Files (.jsonl, .jsonl.gz, .jsonl.zst, .txt, .parquet, .arrow), directories of them, or quoted globs.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Dataset directory to write.")] = Path("out/data"),
    tokenizer: Annotated[Path | None, typer.Option(
        help="A Hugging Face tokenizer directory to use (e.g. MiniMind's model/) instead of training one.",
        show_default=False)] = None,
    vocab_size: Annotated[int, typer.Option(help="Vocabulary size of the trained tokenizer.")] = 6400,
    text_key: Annotated[str, typer.Option(
        help="JSON key (.jsonl) or column (.parquet, .arrow) holding the text.")] = "text",
    val_fraction: Annotated[float, typer.Option(
        help="Fraction of documents held out for validation (chosen by a hash of the document index).")] = 0.005,
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Skip invalid lines and count them, instead of stopping at the first.")] = False,
    workers: Annotated[int | None, typer.Option(
        help="Tokenizer processes (default: all cores).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if the dataset is up to date.")] = False,
    dedup: Annotated[str | None, typer.Option(
        help="'exact': drop documents whose text (NFC, whitespace collapsed) was already seen.",
        show_default=False)] = None,
    max_documents: Annotated[int | None, typer.Option(
        help="Keep only the first N documents (after dedup).", show_default=False)] = None,
    max_tokens: Annotated[int | None, typer.Option(
        help="Keep whole documents from the start up to N tokens in all.", show_default=False)] = None,
    sample: Annotated[bool, typer.Option(
        "--sample", help="Prepare the built-in sample corpus (Python's own documentation) instead of INPUT.")] = False,
) -> None:
    from rich.console import Console

    from minimind.data.prepare import prepare_dataset
    from minimind.data.sample import prepare_sample
    from minimind_cli.prepare_progress import PrepareProgress

    if sample and inputs:
        raise UserError("give either INPUT files or --sample, not both")
    if not sample and not inputs:
        raise UserError("no INPUT given", hint="name .jsonl/.parquet/.txt/... files or a directory, or use --sample")
    from minimind_cli.runs import move_old_cache

    move_old_cache(out)
    console = Console(stderr=True, highlight=False)
    kwargs = dict(tokenizer=tokenizer, vocab_size=vocab_size, text_key=text_key, val_fraction=val_fraction,
                  skip_invalid=skip_invalid, workers=workers, force=force, dedup=dedup,
                  max_documents=max_documents, max_tokens=max_tokens)
    if sample:
        console.print("building the sample corpus (Python's pydoc topics and standard-library docstrings)")
        kwargs.pop("text_key")
    # A bar in a log file is noise: only a terminal gets one. On Ctrl-C prepare_dataset removes its
    # temporary directory (an older dataset at OUT is untouched) and the app says so (exit 3).
    with PrepareProgress(console) as bar:
        if sample:
            result = prepare_sample(out, on_progress=bar.callback, **kwargs)
        else:
            result = prepare_dataset(list(inputs), out, on_progress=bar.callback, **kwargs)
    for note in result.notes:
        console.print(f"[dim]{note}[/]")
    print_summary(result)


def print_summary(result, console=None) -> None:
    """The summary table printed after `prepare` (also by `pretrain` when it prepares data)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(highlight=False)
    meta = result.meta
    docs = meta["documents"] + meta["val_documents"]
    tokens = meta["tokens"] + meta["val_tokens"]
    table = Table(title="dataset reused (inputs unchanged; --force rebuilds)" if result.reused
                  else "dataset prepared", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    # The totals, then the split as meta.json counts it ("documents"/"tokens" there are the train split).
    table.add_row("documents", f"{docs:,} ({meta['documents']:,} train + {meta['val_documents']:,} validation)")
    table.add_row("tokens", f"{tokens:,} ({meta['tokens']:,} train + {meta['val_tokens']:,} validation)")
    table.add_row("tokens/document", f"{tokens / docs:,.1f}" if docs else "-")
    skipped = meta.get("skipped") or {}
    table.add_row("skipped", ", ".join(f"{n:,} {reason}" for reason, n in skipped.items()) or "none")
    if "duplicates_removed" in meta:
        table.add_row("duplicates removed", f"{meta['duplicates_removed']:,} (--dedup exact)")
    if "stopped_at_limit" in meta:
        limit = meta["stopped_at_limit"]
        table.add_row("limit", f"stopped at --{limit.replace('_', '-')} {meta['options'][limit]:,}" if limit
                      else "not reached (the whole corpus)")
    tok = meta.get("tokenizer") or {}
    if tok.get("source") == "trained":
        tok_text = (f"trained byte-level BPE, vocab {meta['vocab_size']:,} "
                    f"({tok.get('trained_on_chars') or 0:,} chars, {tok.get('seconds', 0):.1f}s)")
    else:
        tok_text = f"{tok.get('source')}, vocab {meta['vocab_size']:,}"
    table.add_row("tokenizer", tok_text)
    table.add_row("dtype", meta["dtype"])
    size = sum(s["size"] for s in meta["sources"])
    table.add_row("input", f"{len(meta['sources'])} file(s), {size / 1e6:,.1f} MB")
    if not result.reused:
        table.add_row("time", f"{result.seconds:.1f}s ({size / 1e6 / max(result.seconds, 1e-9):.2f} MB/s, "
                              f"{result.workers} worker(s))")
    table.add_row("output", str(result.path))
    console.print(table)
