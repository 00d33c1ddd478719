"""Optional metric sinks that mirror the event stream: TensorBoard and Weights & Biases.

``events.jsonl`` stays the source of truth; a sink only copies scalars from it. Each sink is
imported only when enabled, and a missing package is a clear configuration error up front.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from minimind.config import Config, ConfigError

_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def check_available(cfg: Config) -> None:
    for name, package in _PACKAGES.items():
        if getattr(cfg.run, name) and importlib.util.find_spec(package) is None:
            raise ConfigError(f"--{name} needs the {package} package: pip install {package}")


class Sinks:
    def __init__(self, cfg: Config, run_dir: Path):
        check_available(cfg)
        self._tb = None
        self._wandb = None
        if cfg.run.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        if cfg.run.wandb:
            import wandb

            self._wandb = wandb.init(project="minimind", name=Path(run_dir).name, dir=str(run_dir),
                                     config=cfg.to_dict(), resume="allow", id=Path(run_dir).name)

    def event(self, event: dict[str, Any]) -> None:
        if self._tb is None and self._wandb is None:
            return
        kind, step = event["type"], event.get("step")
        scalars: dict[str, float] = {}
        if kind == "step":
            for key in ("loss", "loss_ema", "lr", "grad_norm", "tokens_per_s", "mfu"):
                if isinstance(event.get(key), (int, float)):
                    scalars[f"train/{key}"] = event[key]
            if event.get("moe"):
                scalars["train/moe_aux_loss"] = event["moe"]["aux_loss"]
                scalars["train/moe_imbalance"] = event["moe"]["imbalance"]
        elif kind == "eval":
            scalars["val/loss"] = event["val_loss"]
        if not scalars or step is None:
            return
        if self._tb is not None:
            for key, value in scalars.items():
                self._tb.add_scalar(key, value, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
