"""`minimind pretrain`: resolve the config, pick the data, start the trainer, follow it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from minimind.config import available_profiles

HELP = """Train a model from a profile; the trainer runs in a subprocess (torchrun with --nproc > 1).

Examples:

  minimind pretrain --profile tiny                      (built-in sample corpus, a few minutes on a CPU)

  minimind pretrain --profile moe --data data.jsonl     (prepares data.jsonl first, cached)

  minimind pretrain --set train.max_steps=200 --set model.num_hidden_layers=4

  minimind pretrain --profile default --nproc 2         (2 processes through torchrun)

  minimind pretrain --profile default --batch-size auto (the largest micro-batch that fits)

  minimind pretrain --profile default --dry-run         (print the config and the memory estimate)

Ctrl-C saves a checkpoint and stops; `minimind resume` continues exactly where it stopped.
"""

_NAMED = {
    "epochs": "train.epochs", "max_steps": "train.max_steps", "batch_size": "train.batch_size",
    "learning_rate": "train.learning_rate", "accumulation_steps": "train.accumulation_steps",
    "grad_clip": "train.grad_clip", "max_seq_len": "data.max_seq_len", "dtype": "train.dtype",
    "device": "train.device", "use_moe": "model.use_moe",
}


def pretrain(
    profile: Annotated[str, typer.Option("--profile", "-p", help=f"Profile name ({', '.join(available_profiles())}) or a YAML file.")] = "default",
    data: Annotated[str | None, typer.Option("--data", "-d", help="Dataset directory, or a .jsonl/.txt file to prepare first.")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Output root (runs, weights, prepared data). Default: out.")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Run name (default: <profile>-<date>-<time>).")] = None,
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override any config key: --set model.hidden_size=256 (repeatable).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Passes over the data.")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Stop after this many optimizer steps.")] = None,
    batch_size: Annotated[str | None, typer.Option("--batch-size", help="Samples per micro-batch per process, or auto: the largest that fits (the accumulation keeps the samples per step).")] = None,
    learning_rate: Annotated[float | None, typer.Option("--learning-rate", help="Peak learning rate.")] = None,
    accumulation_steps: Annotated[int | None, typer.Option("--accumulation-steps", help="Micro-batches per optimizer step.")] = None,
    grad_clip: Annotated[float | None, typer.Option("--grad-clip", help="Clip gradients to this global norm.")] = None,
    max_seq_len: Annotated[int | None, typer.Option("--max-seq-len", help="Tokens per sample.")] = None,
    dtype: Annotated[str | None, typer.Option("--dtype", help="auto, bf16, fp16 or fp32.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = None,
    use_moe: Annotated[bool | None, typer.Option("--use-moe/--no-moe", help="Mixture-of-Experts feed-forward.")] = None,
    init_from: Annotated[Path | None, typer.Option("--init-from", help="Start from the weights of any checkpoint `inspect` reads.")] = None,
    nproc: Annotated[int, typer.Option("--nproc", help="Processes on this node (torchrun; gloo on CPU, nccl on CUDA).")] = 1,
    nnodes: Annotated[int | None, typer.Option("--nnodes", help="Nodes (multi-node torchrun).")] = None,
    node_rank: Annotated[int | None, typer.Option("--node-rank", help="This node's rank (multi-node).")] = None,
    master_addr: Annotated[str | None, typer.Option("--master-addr", help="Rendezvous address (multi-node).")] = None,
    master_port: Annotated[int | None, typer.Option("--master-port", help="Rendezvous port (multi-node).")] = None,
    no_tui: Annotated[bool, typer.Option("--no-tui", help="Plain progress instead of the dashboard (automatic when not a terminal).")] = False,
    wandb: Annotated[bool, typer.Option("--wandb", help="Mirror metrics to Weights & Biases (WANDB_MODE=offline works without an account).")] = False,
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Write TensorBoard scalars to <run>/tensorboard.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved run and its memory estimate; start nothing.")] = False,
) -> None:
    from minimind.config import resolve
    from minimind.training.policy import check_dataset_fits, check_init_from
    from minimind_cli.launch import LaunchOptions
    from minimind_cli.runs import console, launch_and_follow, new_run_dir, resolve_data

    sets = list(overrides or [])
    named = {"epochs": epochs, "max_steps": max_steps, "batch_size": batch_size, "learning_rate": learning_rate,
             "accumulation_steps": accumulation_steps, "grad_clip": grad_clip, "max_seq_len": max_seq_len,
             "dtype": dtype, "device": device, "use_moe": use_moe}
    sets += [f"{_NAMED[k]}={v}" for k, v in named.items() if v is not None]  # named flags win over --set
    if out is not None:
        sets.append(f"run.out_dir={out}")
    if run is not None:
        sets.append(f"run.name={run}")
    if wandb:
        sets.append("run.wandb=true")
    if tensorboard:
        sets.append("run.tensorboard=true")
    if nproc < 1:
        raise typer.BadParameter("--nproc must be >= 1")
    cfg = resolve(profile, sets)  # validated before anything starts
    from minimind.sinks import check_available

    check_available(cfg)
    from minimind.training.build import pick_device
    from minimind.training.optim import check_optimizer

    check_optimizer(cfg)

    device = pick_device(cfg.train.device)  # a device this machine lacks fails here, before any directory exists

    out_dir = Path(cfg.run.out_dir)
    if dry_run:
        raise typer.Exit(print_dry_run(cfg, device, data, out_dir, nproc * (nnodes or 1)))
    data_path, where = resolve_data(data, cfg, out_dir)
    cfg.data.path = str(data_path)
    from minimind.data.format import read_meta

    vocab = int(read_meta(data_path).get("vocab_size", cfg.model.vocab_size))
    if vocab != cfg.model.vocab_size and not any(s.startswith("model.vocab_size=") for s in sets):
        console.print(f"model.vocab_size set to {vocab} to match the dataset's tokenizer")
        cfg.model.vocab_size = vocab
    cfg.run.out_dir = str(out_dir.resolve())
    cfg.validate()
    world = nproc * (nnodes or 1)
    check_dataset_fits(cfg, world)
    check_memory(cfg, device)
    if init_from is not None:
        check_init_from(cfg.model, init_from)
    run_dir = new_run_dir(cfg)
    console.print(f"data: {where}")
    console.print(f"run: {run_dir}  (profile {cfg.run.profile})")
    opts = LaunchOptions(nproc=nproc, nnodes=nnodes, node_rank=node_rank, master_addr=master_addr,
                         master_port=master_port, init_from=init_from.resolve() if init_from else None)
    raise typer.Exit(launch_and_follow(run_dir, cfg, opts, no_tui=no_tui))


def check_memory(cfg, device, refuse: bool = True):
    """The memory estimate against free RAM: a run that clearly does not fit is refused here, in one
    line with a --batch-size that fits. On a GPU the trainer checks (the CLI holds no CUDA context)
    and halves a micro-batch that runs out of memory."""
    if device.type != "cpu":
        return None
    from minimind.training.build import pick_dtype
    from minimind.training.memory import check_fits, process_rss_mib

    dtype, _ = pick_dtype(cfg.train.dtype, device)
    return check_fits(cfg, dtype, device, process_rss_mib(), refuse_too_large_batch=refuse)


def print_dry_run(cfg, device, data: str | None, out_dir: Path, world: int) -> int:
    """``--dry-run``: what would run and how much memory it needs; nothing is written."""
    from minimind.data.format import is_dataset, read_meta
    from minimind.errors import MemoryTooSmall
    from minimind.run_dir import default_data_dir
    from minimind.training.build import pick_dtype
    from minimind.training.memory import available_memory, estimate, process_rss_mib, requested_samples
    from minimind_cli.runs import console

    source = Path(data or cfg.data.path or default_data_dir(out_dir)).expanduser()
    if is_dataset(source):
        cfg.model.vocab_size = int(read_meta(source).get("vocab_size", cfg.model.vocab_size))
        console.print(f"data: {source}")
    else:
        console.print(f"data: {source} (not prepared yet; model.vocab_size {cfg.model.vocab_size} assumed)")
    dtype, why = pick_dtype(cfg.train.dtype, device)
    t = cfg.train
    split = ("auto" if t.auto_batch else str(t.batch_size)) + f" x accumulation {t.accumulation_steps}"
    console.print(f"profile {cfg.run.profile}: device {device}, dtype {dtype} ({why}), micro-batch {split} x "
                  f"{world} process(es) = {requested_samples(t) * world} samples of {cfg.data.max_seq_len} tokens "
                  f"per step")
    if device.type == "cpu":
        runtime, available = process_rss_mib(), available_memory(device)
    else:
        runtime, available = 0.0, (None, None)  # the trainer measures free device memory itself
    micro = 1 if t.auto_batch else t.batch_size
    if t.auto_batch and device.type == "cpu":  # the trainer's own choice: the estimate against free RAM
        from minimind.distributed import DistInfo
        from minimind.training.memory import choose_split

        try:
            chosen = choose_split(cfg, None, dtype, device, DistInfo(), runtime)
            console.print(chosen.note(world))
            micro = chosen.batch_size
        except MemoryTooSmall:
            pass  # check_memory below says why
    elif t.auto_batch:
        console.print("batch size auto: the trainer probes the GPU with real steps at start and says what it chose")
    est = estimate(cfg, micro, dtype_name=dtype, device_type=device.type,
                   available=available, runtime_mib=runtime)
    for line in est.lines():
        console.print(line)
    try:
        check_memory(cfg, device)
    except MemoryTooSmall as exc:
        console.print(f"would refuse: {exc.message}" + (f"\nhint: {exc.hint}" if exc.hint else ""))
        return exc.exit_code
    return 0
