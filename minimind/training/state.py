"""``TrainState``: the loop's progress, and the one thing (with the model, optimizer and scaler)
that a checkpoint saves. ``save``/``restore`` move the whole training state in and out of a
checkpoint directory, so a resumed run continues bitwise-exactly: same weights, optimizer moments,
scaler, RNG streams (python, numpy, torch, cuda) and data position.

``state.pt`` keeps the keys it has always had, so older checkpoints still resume.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from minimind.metrics import LossEMA
from minimind.schedule import SchedulePlan

if TYPE_CHECKING:
    from minimind.checkpoint import CheckpointInfo
    from minimind.training.build import Built


@dataclass
class TrainState:
    step: int = 0  # optimizer steps done
    tokens_seen: int = 0  # trained (non-padding) tokens, all ranks
    elapsed_before_s: float = 0.0  # wall time of earlier processes of this run
    nonfinite_in_a_row: int = 0
    loss_ema: LossEMA = field(default_factory=LossEMA)
    last_loss: float | None = None
    last_val_loss: float | None = None
    attempts: int = 0  # optimizer-step attempts of this process, skipped ones included (fault injection)
    schedule: SchedulePlan | None = None  # the lr plan (None: planned over the run's length, never changed)

    def advance(self, loss: float, tokens: int) -> float:
        """Record a finished optimizer step; returns the loss EMA."""
        self.nonfinite_in_a_row = 0
        self.step += 1
        self.tokens_seen += tokens
        self.last_loss = loss
        return self.loss_ema.update(loss)

    def to_dict(self, data: dict[str, Any], scaler: dict | None, elapsed_s: float) -> dict[str, Any]:
        """The contents of ``state.pt``: this state, the data position, the scaler and the RNG streams."""
        return {
            "step": self.step,
            "tokens_seen": self.tokens_seen,
            "elapsed_s": elapsed_s,
            "data": data,
            "loss_ema": self.loss_ema.state_dict(),
            "nonfinite_in_a_row": self.nonfinite_in_a_row,
            "last_loss": self.last_loss,
            "last_val_loss": self.last_val_loss,
            "scaler": scaler,
            "rng": capture_rng(),
            "schedule": self.schedule.to_dict() if self.schedule else None,
        }

    @classmethod
    def from_dict(cls, loop: dict[str, Any]) -> TrainState:
        """The inverse of ``to_dict`` (RNG streams, data and scaler are restored by ``restore``)."""
        state = cls(step=int(loop["step"]), tokens_seen=int(loop["tokens_seen"]),
                    elapsed_before_s=float(loop.get("elapsed_s", 0.0)),
                    nonfinite_in_a_row=int(loop.get("nonfinite_in_a_row", 0)),
                    last_loss=loop.get("last_loss"), last_val_loss=loop.get("last_val_loss"),
                    schedule=SchedulePlan.from_dict(loop.get("schedule")))
        state.loss_ema.load_state_dict(loop["loss_ema"])
        return state


def capture_rng() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def restore_rng(rng: dict[str, Any]) -> None:
    random.setstate(_to_tuple(rng["python"]))
    np.random.set_state((rng["numpy"][0], np.array(rng["numpy"][1], dtype=np.uint32), *rng["numpy"][2:]))
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _to_tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value


def checkpoint_meta(built: Built, state: TrainState, run_dir: Path, reason: str, elapsed_s: float) -> dict[str, Any]:
    """The readable part of a checkpoint (``meta.json``): what a person or ``inspect`` wants to see."""
    cfg = built.cfg
    return {
        "epoch": built.loader.epoch, "tokens_seen": state.tokens_seen, "loss": state.last_loss,
        "loss_ema": state.loss_ema.mean, "val_loss": state.last_val_loss, "elapsed_s": elapsed_s,
        "profile": cfg.run.profile, "run": Path(run_dir).name, "reason": reason,
        "dataset": {"path": str(cfg.data.path), "fingerprint": built.train_data.fingerprint},
        "world_size": built.dist.world_size, "dtype": built.dtype_name,
        "params_total": built.params["total"], "params_active": built.params["active"],
        "schedule": (state.schedule or SchedulePlan(built.total_steps, built.total_steps)).to_dict(),
        # The one record of the micro-batch split in force (after an out-of-memory retry or batch_size
        # auto it differs from config.yaml's request); ``policy.saved_split`` keeps it on resume.
        "split": built.split.to_dict(),
    }


def save(built: Built, state: TrainState, run_dir: Path, reason: str, elapsed_s: float) -> Path:
    """Write a complete checkpoint of ``state`` (rank 0 only), then refresh the weights-only file.
    ``built.callbacks.checkpoint_file_written`` runs between the checkpoint's files."""
    import yaml

    from minimind import checkpoint as ckpt

    path = ckpt.save_checkpoint(
        run_dir, state.step, model_state=built.model.state_dict(), optimizer_state=built.optimizer.state_dict(),
        loop_state={**state.to_dict(built.loader.state_dict(),
                                    built.scaler.state_dict() if built.scaler.is_enabled() else None, elapsed_s)},
        config_yaml=yaml.safe_dump(built.cfg.to_dict(), sort_keys=False),
        meta=checkpoint_meta(built, state, run_dir, reason, elapsed_s), keep_last=built.cfg.train.keep_last,
        after_file=built.callbacks.checkpoint_file_written)
    ckpt.publish_weights(weights_file(built.cfg), run_dir, built.model.state_dict(), built.cfg.model)
    return path


def weights_file(cfg) -> Path:
    """``<out>/pretrain_<hidden>[_moe].pth``: the MiniMind-compatible weights every save refreshes."""
    from minimind.run_dir import weights_path

    return weights_path(Path(cfg.run.out_dir), cfg.model.hidden_size, cfg.model.use_moe)


def restore(built: Built, info: CheckpointInfo, force: bool = False,
            verified: bool = False) -> tuple[TrainState, list[str]]:
    """Load a checkpoint into ``built`` (model, optimizer, scaler, data position, RNG) and return its
    ``TrainState`` and notes for the user. The resume policy is checked first. ``verified``: the
    caller has just checked every file's sha256 (``checkpoint.find_verified``), so it is not read twice."""
    import yaml

    from minimind import checkpoint as ckpt
    from minimind.config import Config
    from minimind.errors import DatasetFormatError
    from minimind.training import policy

    loaded = ckpt.load_checkpoint(info, verify=not verified)
    saved_cfg = Config.from_dict(yaml.safe_load(loaded["config_yaml"]) or {}, source=str(info.path))
    policy.check_model_shape(saved_cfg.model, built.cfg.model, f"checkpoint {info.path}")
    policy.check_dataset_unchanged(info, built.train_data.fingerprint, str(built.cfg.data.path), force)
    if saved_cfg.train.optimizer != built.cfg.train.optimizer:
        raise ckpt.CheckpointError(
            f"checkpoint {info.path} was trained with train.optimizer={saved_cfg.train.optimizer}, not "
            f"{built.cfg.train.optimizer}: its optimizer state cannot continue", "resume with the same optimizer")
    built.model.load_state_dict(loaded["model"])
    built.optimizer.load_state_dict(loaded["optimizer"])
    loop = loaded["state"]
    if loop.get("scaler"):
        built.scaler.load_state_dict(loop["scaler"])
    notes = []
    try:
        built.loader.load_state_dict(loop["data"])
    except DatasetFormatError:
        if not force:
            raise
        notes.append("data position could not be restored (--force): restarting the epoch")
    restore_rng(loop["rng"])
    state = TrainState.from_dict(loop)
    # A new run length re-plans the lr schedule (or keeps it), by the rule `resume` announced.
    state.schedule, _ = policy.schedule_after_resume(
        state.schedule, state.step, policy.run_length(saved_cfg.train, built.loader.batches_per_epoch),
        built.total_steps, built.cfg.train)
    return state, notes
