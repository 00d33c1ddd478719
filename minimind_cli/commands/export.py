"""`minimind export`: hand a checkpoint to Hugging Face transformers or to MiniMind's scripts."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

HELP = """Export a checkpoint as a Hugging Face directory (--to hf) or a MiniMind weights file (--to pth).

MiniMind2 dense models become a stock LlamaForCausalLM directory (config.json, model.safetensors,
tokenizer files) that plain transformers loads; MiniMind-3 models stock Qwen3ForCausalLM or
Qwen3MoeForCausalLM. Other MoE models (shared experts, a routing bias) use model_type
"minimind_moe": load them with `import minimind.hf` first, then AutoModelForCausalLM.from_pretrained(DIR).
--to pth writes half-precision native-key weights that MiniMind's own scripts load strictly.

Examples:

  minimind export out/runs/RUN --to hf out/hf

  minimind export out/pretrain_512.pth --to hf out/hf --tokenizer out/data/tokenizer

  minimind export out/runs/RUN/checkpoints/step_00000300 --to pth out/pretrain_512.pth --force
"""


class Target(str, Enum):
    hf = "hf"
    pth = "pth"


class DType(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    bf16 = "bf16"


def export(
    path: Annotated[Path, typer.Argument(help="A .pth/.pt file, a run dir, a checkpoint dir or an HF dir.")],
    out: Annotated[Path, typer.Argument(help="Output: a directory for --to hf, a .pth file for --to pth.")],
    to: Annotated[Target, typer.Option("--to", help="hf (Hugging Face directory) or pth (MiniMind weights).")],
    tokenizer: Annotated[Path | None, typer.Option(
        "--tokenizer", help="Tokenizer directory to copy (default: the run's dataset, out/data).")] = None,
    dtype: Annotated[DType, typer.Option("--dtype", help="Weights precision for --to hf.")] = DType.fp32,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output.")] = False,
    head_dim: Annotated[int | None, typer.Option(
        "--head-dim", min=2, help="Head size for a weights file without a config (default: MiniMind's "
                                  "8 query / 2 key-value heads where they fit, else 64).")] = None,
    rope_theta: Annotated[float | None, typer.Option(
        "--rope-theta", help="RoPE theta for a bare state dict (default 1e6).")] = None,
) -> None:
    from rich.console import Console
    from rich.markup import escape

    from minimind import weights

    console = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    weights.check_export_target(out, to.value, force, source=path)
    loaded = weights.load_weights(path, head_dim=head_dim, rope_theta=rope_theta)
    for note in loaded.notes:
        err.print(f"[yellow]note:[/] {escape(note)}")
    if to is Target.pth:
        result = weights.export_pth(loaded, out, force=force)
        console.print(f"wrote {escape(result['out'])} ({result['tensors']} tensors, float16, "
                      f"{result['size_bytes'] / 2**20:.1f} MiB, native keys)")
        return
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one line of result, not a shard-writing progress bar
    tok_dir = weights.find_tokenizer(loaded, tokenizer)
    if tok_dir is None:
        err.print("[yellow]warning:[/] no tokenizer found (run dataset, out/data/tokenizer); the export has "
                  "weights only: pass --tokenizer DIR to include one")
    result = weights.export_hf(loaded, out, tokenizer_dir=tok_dir, dtype=dtype.value, force=force)
    console.print(f"wrote {escape(result['out'])}: {', '.join(result['files'])}")
    if result["model_type"] != "minimind_moe":  # stock classes: llama, qwen3, qwen3_moe
        console.print(f"{result['model_type']}: load it with transformers.AutoModelForCausalLM.from_pretrained("
                      f"{escape(repr(result['out']))})")
    else:
        console.print("MoE export (model_type minimind_moe): load it with `import minimind.hf` and then "
                      f"AutoModelForCausalLM.from_pretrained({escape(repr(result['out']))})")
