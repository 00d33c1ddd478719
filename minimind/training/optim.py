"""The optimizer of a run: AdamW, or Muon for the hidden weight matrices with AdamW for the rest.

Muon (``torch.optim.Muon``, torch >= 2.9) orthogonalises each matrix's momentum with a few
Newton-Schulz iterations; it is meant for 2-D hidden weights only. Which parameter goes where:

    Muon   every nn.Linear weight inside the transformer blocks (attention q/k/v/o, feed-forward
           and expert gate/up/down): ``train.muon_lr``, ``muon_weight_decay``, ``muon_momentum``
    AdamW  the token embedding (= the tied output head), the RMSNorm weights and the MoE router:
           ``train.learning_rate``, ``weight_decay``, ``beta1``/``beta2``

The lr schedule is one curve: each step the AdamW groups get its value and the Muon groups the
same value times ``muon_lr / learning_rate``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from minimind.config import Config, ConfigError


def muon_params(model: nn.Module) -> list[nn.Parameter]:
    """The hidden weight matrices: every nn.Linear inside the blocks (not the router, a bare matrix)."""
    layers = model.model.layers
    return [m.weight for m in layers.modules() if isinstance(m, nn.Linear) and m.weight.requires_grad]


def check_optimizer(cfg: Config, resuming: bool = False) -> None:
    """Refuse ``train.optimizer=muon`` on a torch without ``torch.optim.Muon``, saying how to train
    with AdamW instead (what every profile trained with before Muon became their default). A resume
    cannot switch optimizers, so its hint is another torch or a new run from the weights."""
    if cfg.train.optimizer == "muon" and getattr(torch.optim, "Muon", None) is None:
        hint = ("upgrade torch (pip install -U torch); a run trained with Muon resumes only with Muon, or "
                "start a new AdamW run from its weights: minimind pretrain --init-from RUN --set train.optimizer=adamw"
                if resuming else
                "upgrade torch (pip install -U torch), or train with AdamW: --set train.optimizer=adamw")
        raise ConfigError(f"train.optimizer=muon (every profile's default) needs torch.optim.Muon, torch >= 2.9; "
                          f"this is torch {torch.__version__}", hint)


def make_optimizer(model: nn.Module, cfg: Config):
    """``torch.optim.AdamW`` for ``train.optimizer=adamw``; ``MuonWithAdamW`` for ``muon``."""
    t = cfg.train
    params = [p for p in model.parameters() if p.requires_grad]
    if t.optimizer != "muon":
        return _adamw(params, cfg)
    check_optimizer(cfg)
    matrices = muon_params(model)
    chosen = {id(p) for p in matrices}
    muon = torch.optim.Muon([{"params": matrices, "lr_scale": t.muon_lr / t.learning_rate}], lr=t.muon_lr,
                            weight_decay=t.muon_weight_decay, momentum=t.muon_momentum, nesterov=True)
    return MuonWithAdamW(muon, _adamw([p for p in params if id(p) not in chosen], cfg))


def _adamw(params: list[nn.Parameter], cfg: Config) -> torch.optim.AdamW:
    """With weight decay, only matrices (dim >= 2) decay, never norms or biases."""
    t = cfg.train
    if t.weight_decay > 0:
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": t.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    else:
        groups = [{"params": params, "weight_decay": 0.0}]
    kwargs = {"lr": t.learning_rate, "betas": (t.beta1, t.beta2)}
    try:
        return torch.optim.AdamW(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(groups, foreach=True, **kwargs)


def set_lr(optimizer, lr: float) -> None:
    """The schedule's lr for this step: AdamW groups take it as is, Muon groups scaled."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


class MuonWithAdamW:
    """Two optimizers stepped as one. It has what the trainer and ``torch.amp.GradScaler`` use of
    an optimizer: ``param_groups`` (Muon's first), ``state``, ``step``, ``zero_grad``, and a state
    dict holding both (``{"muon": ..., "adamw": ...}``) for exact resume."""

    def __init__(self, muon: torch.optim.Optimizer, adamw: torch.optim.Optimizer):
        self.muon, self.adamw = muon, adamw
        self._muon_settings = [{k: g[k] for k in ("lr_scale", "weight_decay", "momentum")}
                               for g in muon.param_groups]

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return [*self.muon.param_groups, *self.adamw.param_groups]

    @property
    def state(self) -> dict:
        return {**self.muon.state, **self.adamw.state}

    def step(self, closure=None):
        self.muon.step()
        self.adamw.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none=set_to_none)
        self.adamw.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not (isinstance(state, dict) and {"muon", "adamw"} <= set(state)):
            raise ValueError("not a Muon + AdamW optimizer state")
        self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])
        # The settings of this run's config, not the saved ones (they differ only after --force).
        for group, settings in zip(self.muon.param_groups, self._muon_settings):
            group.update(settings)
