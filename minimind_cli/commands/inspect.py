"""`minimind inspect`: what is in a checkpoint, and optionally a sample of its text."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

HELP = """Describe a checkpoint: file, architecture (stored vs inferred), parameters, training state.

PATH may be a weights file (out/pretrain_512.pth, MiniMind's own .pth in either key layout), a
run directory (its latest complete checkpoint), a checkpoint directory, or an exported Hugging
Face directory. Files are read with torch.load(weights_only=True) or safetensors only.

Examples:

  minimind inspect out/pretrain_512.pth

  minimind inspect out/runs/RUN --tensors

  minimind inspect out/runs/RUN/checkpoints/step_00000300 --json

  minimind inspect out/pretrain_512.pth --generate "Once upon a time" --max-new-tokens 40
"""

_ARCH_LABELS = {
    "hidden_size": "hidden size", "num_hidden_layers": "layers", "num_attention_heads": "query heads",
    "num_key_value_heads": "key/value heads", "head_dim": "head dim", "qk_norm": "QK-norm",
    "vocab_size": "vocab size", "ffn_rule": "feed-forward rule",
    "intermediate_size": "intermediate size", "rope_theta": "RoPE theta", "rms_norm_eps": "RMSNorm eps",
    "max_position_embeddings": "max sequence length", "dropout": "dropout", "use_moe": "MoE",
    "n_routed_experts": "routed experts", "num_experts_per_tok": "experts per token (top-k)",
    "n_shared_experts": "shared experts", "aux_loss_alpha": "aux loss alpha", "seq_aux": "sequence aux loss",
    "norm_topk_prob": "normalise top-k",
}
_ARCH_ORDER = ["hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
               "qk_norm", "vocab_size", "intermediate_size", "ffn_rule", "rope_theta", "max_position_embeddings", "rms_norm_eps",
               "dropout", "use_moe", "n_routed_experts", "num_experts_per_tok", "n_shared_experts",
               "aux_loss_alpha", "seq_aux", "norm_topk_prob"]
_SOURCE_STYLE = {"stored": "green", "inferred": "yellow", "assumed": "red", "default": "dim"}


def inspect(
    path: Annotated[Path, typer.Argument(help="A .pth/.pt file, a run dir, a checkpoint dir or an HF dir.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead.")] = False,
    tensors: Annotated[bool, typer.Option("--tensors", help="List every tensor: name, shape, dtype, norm.")] = False,
    generate: Annotated[str | None, typer.Option("--generate", help="Sample a continuation of this prompt.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, help="Tokens to generate.")] = 64,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0,
                                               help="0 = greedy; higher = more random.")] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", min=0.0, max=1.0,
                                         help="Nucleus sampling threshold (with temperature > 0).")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed for sampling.")] = 0,
    tokenizer: Annotated[Path | None, typer.Option(
        "--tokenizer", help="Tokenizer directory for --generate (default: the run's dataset, out/data).")] = None,
    head_dim: Annotated[int | None, typer.Option(
        "--head-dim", min=2, help="Head size for a weights file without a config (default: MiniMind's "
                                  "8 query / 2 key-value heads where they fit, else 64).")] = None,
    rope_theta: Annotated[float | None, typer.Option(
        "--rope-theta", help="RoPE theta for a bare state dict (default 1e6).")] = None,
) -> None:
    from minimind import weights

    loaded = weights.load_weights(path, head_dim=head_dim, rope_theta=rope_theta)
    info = weights.describe(loaded)
    if tensors:
        info["tensors"] = weights.tensor_table(loaded)
    if generate is not None:
        tok_dir = weights.find_tokenizer(loaded, tokenizer)
        if tok_dir is None:
            raise weights.CheckpointError(
                f"{path}: no tokenizer found for --generate (looked for the run's dataset and "
                f"{loaded.path.parent / 'data' / 'tokenizer'}); pass --tokenizer DIR")
        info["generation"] = weights.generate_text(loaded, tok_dir, generate, max_new_tokens=max_new_tokens,
                                                   temperature=temperature, top_p=top_p, seed=seed)
    if json_output:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    _print_rich(info)


def _fmt_int(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return str(n)


def _fmt_duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    from minimind.metrics import format_duration

    return format_duration(seconds)


def _print_rich(info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)

    def section(title: str) -> Table:
        table = Table(title=f"[bold]{title}[/]", title_justify="left", show_header=False, box=None,
                      padding=(0, 2))
        table.add_column(style="cyan", no_wrap=True)
        table.add_column(overflow="fold")
        return table

    f = info["file"]
    t = section("File")
    t.add_row("path", escape(f["path"]))
    if f["weights_file"] != f["path"]:
        t.add_row("weights", escape(f["weights_file"]))
    t.add_row("source", f["source_kind"])
    t.add_row("size", _fmt_bytes(f["size_bytes"]))
    t.add_row("format", f["format"])
    t.add_row("key layout", f["layout"])
    t.add_row("generation", f["generation"])
    t.add_row("dtypes", ", ".join(f"{k} ({v})" for k, v in f["dtypes"].items()))
    t.add_row("tensors", str(f["tensors"]))
    t.add_row("config", escape(f["config_source"]) if f["config_source"] else "none stored: inferred from shapes")
    console.print(t)
    console.print()

    arch = info["architecture"]
    t = Table(title="[bold]Architecture[/]", title_justify="left", box=None, padding=(0, 2))
    t.add_column("", style="cyan", no_wrap=True)
    t.add_column("value")
    t.add_column("source")
    for name in _ARCH_ORDER:
        if name not in arch:
            continue
        value, source, rule = arch[name]["value"], arch[name]["source"], arch[name].get("rule")
        shown = f"{value:g}" if isinstance(value, float) else _fmt_int(value) if isinstance(value, int) and \
            not isinstance(value, bool) else str(value).lower() if isinstance(value, bool) else str(value)
        t.add_row(_ARCH_LABELS.get(name, name), shown, f"[{_SOURCE_STYLE.get(source, '')}]{source}[/]"
                  + (f" ({escape(rule)})" if rule else ""))
    console.print(t)
    console.print()

    p = info["parameters"]
    t = section("Parameters")
    t.add_row("total", _fmt_int(p["total"]) + ("  (output head tied to the embedding, counted once)"
                                               if p.get("tied_head") else ""))
    if "moe" in p:
        t.add_row("active per token", _fmt_int(p["active"]))
    t.add_row("embedding", _fmt_int(p["embedding"]))
    per_block = p["per_block"]
    t.add_row("per block", _fmt_int(per_block) if isinstance(per_block, int)
              else ", ".join(_fmt_int(x) for x in per_block))
    t.add_row("final norm", _fmt_int(p["final_norm"]))
    if "moe" in p:
        m = p["moe"]
        t.add_row("per expert", _fmt_int(m["per_expert"]))
        t.add_row("router per block", _fmt_int(m["router_per_block"]))
        t.add_row("routed experts (all)", _fmt_int(m["routed_experts_total"]))
        t.add_row("shared experts (all)", _fmt_int(m["shared_experts_total"]))
    console.print(t)
    console.print()

    tr = info.get("training")
    if tr is not None:
        t = section("Training state")
        t.add_row("complete", "[green]yes[/]" if tr["complete"] else
                  "[red]no: meta.json is missing (the checkpoint was not finished)[/]")
        if tr.get("checkpoints_total") is not None:
            t.add_row("checkpoints", f"{tr['checkpoints_complete']} complete of {tr['checkpoints_total']} "
                                     f"(steps {', '.join(str(s) for s in tr['steps'])}); showing the latest")
        if tr.get("checkpoint_dir"):
            t.add_row("checkpoint", escape(tr["checkpoint_dir"]))
        for key, label in (("step", "step"), ("epoch", "epoch"), ("tokens_seen", "tokens seen"),
                           ("loss", "loss"), ("loss_ema", "loss (smoothed)"), ("val_loss", "val loss"),
                           ("profile", "profile"), ("run", "run"), ("reason", "saved because"),
                           ("dtype", "dtype"), ("world_size", "world size")):
            value = tr.get(key)
            if value is not None:
                t.add_row(label, f"{value:.4f}" if isinstance(value, float) else _fmt_int(value))
        if tr.get("elapsed_s") is not None:
            t.add_row("wall time", _fmt_duration(tr["elapsed_s"]))
        if isinstance(tr.get("time"), (int, float)):
            t.add_row("saved at", dt.datetime.fromtimestamp(tr["time"]).strftime("%Y-%m-%d %H:%M:%S"))
        if tr.get("dataset_fingerprint"):
            t.add_row("dataset", escape(f"{tr['dataset_fingerprint'][:16]}  {tr.get('dataset_path') or ''}"))
        t.add_row("optimizer state", "yes" if tr["optimizer_state"] else "no")
        t.add_row("RNG state", "yes" if tr["rng_state"] else "no")
        if tr.get("scaler_state") is not None:
            t.add_row("grad scaler", "yes" if tr["scaler_state"] else "no")
        verified = tr.get("files_verified")
        if verified:
            bad = [k for k, ok in verified.items() if not ok]
            t.add_row("sha256", "[green]all files match meta.json[/]" if not bad
                      else f"[red]mismatch: {escape(', '.join(bad))}[/]")
        console.print(t)
        console.print()

    if info.get("notes"):
        console.print("[bold]Notes[/]")
        for note in info["notes"]:
            console.print(f"  - {escape(note)}")
        console.print()

    if "tensors" in info:
        t = Table(title="[bold]Tensors[/]", title_justify="left")
        t.add_column("name", overflow="fold")
        t.add_column("shape")
        t.add_column("dtype")
        t.add_column("norm", justify="right")
        for row in info["tensors"]:
            t.add_row(row["name"], "x".join(str(s) for s in row["shape"]) or "scalar", row["dtype"],
                      "-" if row["norm"] is None else f"{row['norm']:.4f}")
        console.print(t)
        console.print()

    g = info.get("generation")
    if g is not None:
        mode = "greedy" if g["temperature"] <= 0 else f"temperature {g['temperature']}, top-p {g['top_p']}"
        from minimind.metrics import visible_whitespace

        console.print(f"[bold]Generation[/] [dim]({mode}, tokenizer {escape(g['tokenizer'])}; "
                      f"whitespace shown as \\n \\t)[/]")
        # Whitespace made visible: an undertrained model's 64 newlines would otherwise show nothing.
        console.print(f"[bold]{escape(visible_whitespace(g['prompt']))}[/]"
                      f"{escape(visible_whitespace(g['completion']))}")
        n = g["new_tokens"]
        why = {"eos": "stopped at eos (end of text)",
               "max_new_tokens": f"stopped at --max-new-tokens {g['max_new_tokens']}",
               "context": "stopped at the model's maximum sequence length"}.get(g.get("stopped"), "")
        empty = "; empty completion" if not g["completion"] else ""
        console.print(f"[dim]{n} token{'s' if n != 1 else ''} generated, {why}{empty}[/]")
