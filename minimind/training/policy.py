"""What a run may start or resume with, checked in one place.

The CLI calls these before it starts anything (so the user gets one clear line at once), and the
trainer calls the same functions when it builds and restores (so a direct
``python -m minimind.train`` is held to the same rules). Each check raises a ``MinimindError``
with a hint; none of them writes anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from minimind.config import (
    Config,
    ConfigError,
    ModelConfig,
    apply_overrides,
    parse_override,
    read_config_data,
)
from minimind.errors import DatasetFormatError
from minimind.run_dir import CONFIG_FILE, run_of
from minimind.schedule import Replan, SchedulePlan, final_lr

if TYPE_CHECKING:
    from minimind.checkpoint import CheckpointInfo
    from minimind.training.memory import Split

# A resume keeps the model's shape, and so does `pretrain --init-from` (it needs the same shape):
# another shape means training from scratch.
SHAPE_HINT = ("resume without model.* overrides, or start a new run with these model settings "
              "(from scratch: --init-from needs the same shape)")

# Keys a resume may change: they do not alter what the saved state means.
SAFE_KEYS = ("train.max_steps", "train.epochs", "train.log_interval", "train.eval_interval", "train.eval_samples",
             "train.save_interval", "train.keep_last", "train.device", "train.dtype", "train.on_length_change",
             "train.sample_prompts", "train.sample_tokens")


# Keys a resume can never change, not even with --force: the saved state cannot continue under
# another value. The value is what to say instead.
FIXED_KEYS = {
    "train.optimizer": ("the checkpoint's optimizer state cannot continue under another optimizer",
                        "keep the run's optimizer, or start a new run from its weights: minimind pretrain "
                        "--init-from {run} --set train.optimizer={value}"),
}


def check_fixed_keys(saved: Config, cfg: Config, run_dir: Any) -> None:
    """Refuse, before anything is written, a resume that changes a key no checkpoint can continue under."""
    for key, (why, hint) in FIXED_KEYS.items():
        section, name = key.split(".")
        before, after = getattr(getattr(saved, section), name), getattr(getattr(cfg, section), name)
        if before != after:
            raise ConfigError(f"--set {key}={after}: the run was trained with {key}={before}; {why}",
                              hint.format(run=run_dir, value=after))


def check_dataset_fits(cfg: Config, world_size: int) -> int:
    """The data fills at least one optimizer step, and its tokenizer fits the model's vocabulary;
    returns the micro-batches per epoch (per process)."""
    from minimind.data.dataset import EpochOrder, PretrainDataset

    if not cfg.data.path:
        raise ConfigError("data.path is not set", "pass --data or run `minimind prepare` first")
    from minimind.training.memory import requested_split

    ds = PretrainDataset(cfg.data.path, cfg.data.max_seq_len, cfg.data.packing)
    batch, accumulation = requested_split(cfg.train)
    try:
        order = EpochOrder(len(ds), batch, cfg.train.seed, 0, world_size, accumulation)
    except DatasetFormatError as exc:
        raise DatasetFormatError(f"{cfg.data.path}: {len(ds)} samples make no optimizer step ({exc})",
                                 "lower --accumulation-steps/--batch-size or add data") from None
    vocab = int(ds.meta.get("vocab_size", 0))
    if vocab > cfg.model.vocab_size:
        raise ConfigError(f"the dataset's tokenizer has {vocab} tokens but model.vocab_size={cfg.model.vocab_size}",
                          f"--set model.vocab_size={vocab}")
    return order.batches_per_epoch


def run_length(train_cfg, batches_per_epoch: int) -> int:
    """Optimizer steps of a run (``train.max_steps`` or all its epochs)."""
    from minimind.data.dataset import optimizer_steps
    from minimind.training.memory import requested_split

    t = train_cfg
    return optimizer_steps(batches_per_epoch, t.epochs, requested_split(t)[1], t.max_steps)


def schedule_after_resume(saved: SchedulePlan | None, step: int, saved_length: int, length: int,
                          train_cfg) -> tuple[SchedulePlan, str | None]:
    """The lr plan a resume at ``step`` continues with, and a sentence for the user when the run's
    length changed (``saved_length`` -> ``length`` steps). ``saved`` is the checkpoint's plan (None
    before plans were recorded: then the schedule was planned over ``saved_length``).

    Same length: the same plan (an exact resume is bitwise unchanged). New length and
    ``train.on_length_change=replan`` (the default): from ``step`` the lr decays from its current
    value to the final lr at the new end, without a jump. ``keep``: the original plan, which ends
    early or stays at its final lr past its end.
    """
    plan = saved or SchedulePlan(saved_length, saved_length)
    if length == plan.run_total:
        return plan, None
    change = f"the run's length changes from {plan.run_total} to {length} steps"
    end_lr = final_lr(train_cfg)
    if step >= length:
        return SchedulePlan(plan.total, length, plan.replans), f"{change}: it already is at step {step}, nothing to train"
    if train_cfg.on_length_change == "keep":
        what = (f"the run stops at step {length}, before the plan's end (lr {plan.lr(length - 1, train_cfg):.3g} "
                f"then)" if length < plan.total else
                f"past step {plan.total} the lr stays at its final value {end_lr:.3g}")
        return (SchedulePlan(plan.total, length, plan.replans),
                f"{change}; the lr schedule keeps its plan over {plan.total} steps (on_length_change=keep): {what}")
    lr_now = plan.lr(step, train_cfg)
    if train_cfg.schedule != "minimind" and step < train_cfg.warmup_steps:
        # The warm-up does not depend on the length: planning over the new one has no jump.
        return (SchedulePlan(length, length, plan.replans),
                f"{change}: the lr schedule (still warming up) is planned over {length} steps")
    new = SchedulePlan(length, length, (*plan.replans, Replan(step, lr_now, plan.total)))
    return new, (f"{change}: the lr schedule is re-planned from step {step}, decaying from {lr_now:.3g} (its "
                 f"value now) to {end_lr:.3g} at step {length} without a jump; --keep-schedule keeps the "
                 f"original plan instead")


def check_init_from(model_cfg: ModelConfig, path: Any):
    """The weights at ``path`` (anything ``inspect`` reads) fit a model of ``model_cfg`` key for key
    and shape for shape; returns them loaded (``LoadedWeights``)."""
    import torch

    from minimind.model import MiniMindLM
    from minimind.weights import load_weights

    # The weights go into a model of ``model_cfg``: read them with its head size (the q/k rows of
    # MiniMind's earlier layout are regrouped per head), not with one guessed from their shapes.
    loaded = load_weights(path, head_dim=model_cfg.head_dim)
    with torch.device("meta"):
        own = MiniMindLM(model_cfg).state_dict()
    mismatched = [k for k, v in loaded.state_dict.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    if mismatched:
        k = mismatched[0]
        raise ConfigError(f"--init-from {path}: shapes differ from this config at {k} "
                          f"({tuple(loaded.state_dict[k].shape)} vs {tuple(own[k].shape)})",
                          f"inspect it with `minimind inspect {path}` and match the model.* settings")
    # The tied head is the embedding; a router bias (router_balance bias/both) may start at zero,
    # e.g. from MiniMind's own MoE weights.
    missing = [k for k in own if k not in loaded.state_dict and k != "lm_head.weight"
               and not k.endswith(".mlp.gate.expert_bias")]
    unexpected = [k for k in loaded.state_dict if k not in own]
    if missing or unexpected:
        raise ConfigError(f"--init-from {path}: keys do not match this config "
                          f"(missing {missing[:3]}, unexpected {unexpected[:3]})",
                          f"inspect it with `minimind inspect {path}` and match the model.* settings")
    return loaded


def check_model_shape(saved: ModelConfig, current: ModelConfig, where: str) -> None:
    if saved != current:
        changed = [k for k, v in vars(saved).items() if getattr(current, k, None) != v]
        raise ConfigError(f"{where} was trained with a different model shape ({', '.join(changed) or 'model'}): "
                          f"the model shape cannot change on resume",
                          SHAPE_HINT)


def check_dataset_unchanged(info: CheckpointInfo, fingerprint: str | None, data_path: str, force: bool) -> None:
    saved = (info.meta.get("dataset") or {}).get("fingerprint")
    if saved and saved != fingerprint and not force:
        raise DatasetFormatError(
            f"the dataset {data_path} changed since step {info.step} was saved "
            f"(fingerprint {saved[:12]} -> {str(fingerprint)[:12]})",
            "pass --force to continue on the new data (the exact data order is lost)")


def check_overrides(overrides: list[str], force: bool) -> None:
    for text in overrides:
        section, name, _ = parse_override(text)
        key = f"{section}.{name}"
        if section == "model":
            raise ConfigError(f"--set {key}: the model shape cannot change on resume",
                              SHAPE_HINT)
        if key in FIXED_KEYS:
            continue  # checked against the checkpoint's value in plan_resume (the same value is fine)
        if key not in SAFE_KEYS and not force:
            raise ConfigError(f"--set {key}: changing it on resume breaks exact continuation",
                              f"safe keys: {', '.join(SAFE_KEYS)}; pass --force to change it anyway")


def keep_global_batch(cfg: Config, saved_world: int, world: int) -> str | None:
    """Rescale ``train.batch_size`` so the global batch (and so the data position and the loss
    curve) survives a new number of processes; returns a note for the user, or None."""
    if world == saved_world:
        return None
    global_batch = cfg.train.batch_size * saved_world
    if global_batch % world:
        raise ConfigError(f"cannot keep the global batch of {global_batch} samples on {world} processes "
                          f"(it was {cfg.train.batch_size} x {saved_world})",
                          f"use a --nproc that divides {global_batch}, or --force --set train.batch_size=N")
    cfg.train.batch_size = global_batch // world
    return (f"{saved_world} -> {world} processes: train.batch_size {global_batch // saved_world} -> "
            f"{cfg.train.batch_size} per process, keeping the global batch of {global_batch}")


def saved_split(cfg: Config, meta: dict, world: int) -> tuple[Split | None, str | None]:
    """The micro-batch split a checkpoint recorded (``meta.json`` "split": after an out-of-memory
    retry, or chosen by batch_size auto), to keep on resume when ``cfg`` asks for the same samples
    per step on the same number of processes: (split, note), or (None, None) when the config's own
    request applies. The config is not changed: ``build`` takes the split."""
    from minimind.training.memory import Split, requested_samples

    recorded, t = meta.get("split"), cfg.train
    if not recorded or int(meta.get("world_size", 1)) != world:
        return None, None
    b, a = int(recorded["batch_size"]), int(recorded["accumulation_steps"])
    if requested_samples(t) != b * a:
        return None, None
    note = (None if (t.batch_size, t.accumulation_steps) == (b, a)
            else f"keeping the checkpoint's split: micro-batch {b} x accumulation {a}")
    return Split.fixed(b, a), note


@dataclass
class ResumePlan:
    info: CheckpointInfo
    cfg: Config
    notes: list[str] = field(default_factory=list)

    @property
    def run_dir(self):
        return run_of(self.info.path)


def plan_resume(target: Any, overrides: list[str] | None = None, world: int = 1, force: bool = False) -> ResumePlan:
    """Everything ``minimind resume`` checks before it starts the trainer: the checkpoint to use,
    the config with the allowed overrides, the global batch across a new world size, the dataset
    (unchanged, and still one step's worth)."""
    from minimind.checkpoint import find_verified
    from minimind.data.format import read_meta

    overrides = list(overrides or [])
    check_overrides(overrides, force)
    info, skipped = find_verified(target)
    config_file = info.path / CONFIG_FILE
    saved = read_config_data(config_file)
    cfg = Config.from_dict(apply_overrides(saved, overrides), source=str(config_file))
    notes = [s.note(info) for s in skipped]
    explicit_batch = any(o.split("=", 1)[0].strip() == "train.batch_size" for o in overrides)
    if not explicit_batch:
        note = keep_global_batch(cfg, int(info.meta.get("world_size", 1)), world)
        if note:
            notes.append(note)
    check_dataset_unchanged(info, read_meta(cfg.data.path).get("fingerprint"), cfg.data.path, force)
    per_epoch = check_dataset_fits(cfg, world)
    saved_cfg = Config.from_dict(saved, source=str(config_file))
    check_fixed_keys(saved_cfg, cfg, run_of(info.path))
    from minimind.training.optim import check_optimizer

    check_optimizer(cfg, resuming=True)
    _, note = schedule_after_resume(SchedulePlan.from_dict(info.meta.get("schedule")), info.step,
                                    run_length(saved_cfg.train, per_epoch), run_length(cfg.train, per_epoch), cfg.train)
    if note:
        notes.append(note)
    return ResumePlan(info, cfg, notes)
