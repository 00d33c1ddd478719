"""train.optimizer=muon: Muon for the hidden matrices, AdamW for the rest, one lr schedule."""

from __future__ import annotations

import pytest
import torch

from minimind.checkpoint import find_checkpoint
from minimind.config import ConfigError
from minimind.errors import CheckpointError
from minimind.schedule import lr_at
from minimind.training.build import build
from minimind.training.optim import MuonWithAdamW
from minimind.training.state import TrainState, restore, save
from minimind.training.step import train_step

MUON = ["train.optimizer=muon", "train.muon_lr=0.02"]


def test_muon_takes_the_block_matrices_and_adamw_the_rest(make_config):
    built = build(make_config(*MUON, "model.use_moe=true"))
    opt = built.optimizer
    assert isinstance(opt, MuonWithAdamW)
    names = {id(p): n for n, p in built.model.named_parameters()}
    muon = {names[id(p)] for g in opt.muon.param_groups for p in g["params"]}
    adamw = {names[id(p)] for g in opt.adamw.param_groups for p in g["params"]}
    assert muon.isdisjoint(adamw) and muon | adamw == set(names.values())
    assert all(n.startswith("model.layers.") and n.endswith("_proj.weight") for n in muon)
    assert "model.layers.0.mlp.experts.3.down_proj.weight" in muon
    assert "model.layers.0.self_attn.q_proj.weight" in muon
    assert {"model.embed_tokens.weight", "model.norm.weight", "model.layers.1.mlp.gate.weight",
            "model.layers.0.input_layernorm.weight"} <= adamw


@pytest.mark.slow  # a dozen real optimizer steps
def test_muon_lowers_the_loss_with_one_schedule_scaled_for_both(make_config):
    built = build(make_config(*MUON, "train.max_steps=12"))
    state = TrainState()
    first = None
    for _ in range(12):
        lr = lr_at(state.step, built.total_steps, built.cfg.train)
        result = train_step(built, state)
        state.advance(result.loss, result.tokens)
        first = first or result.loss
        assert result.lr == lr
        assert [g["lr"] for g in built.optimizer.muon.param_groups] == [pytest.approx(lr * 0.02 / 3e-3)]
        assert all(g["lr"] == lr for g in built.optimizer.adamw.param_groups)
    assert result.loss < first - 0.5


@pytest.mark.slow  # three builds, seven real steps and a checkpoint
def test_both_optimizer_states_are_checkpointed_exactly(make_config, tmp_path):
    cfg = make_config(*MUON)
    built = build(cfg)
    state = TrainState()
    for _ in range(3):
        r = train_step(built, state)
        state.advance(r.loss, r.tokens)
    run_dir = tmp_path / "run"
    save(built, state, run_dir, "interval", elapsed_s=1.0)
    saved = torch.load(find_checkpoint(run_dir).path / "optimizer.pt", weights_only=True)
    assert set(saved) == {"muon", "adamw"}
    assert all("momentum_buffer" in s for s in saved["muon"]["state"].values())
    assert all("exp_avg_sq" in s for s in saved["adamw"]["state"].values())
    expected = [train_step(built, state).loss for _ in range(2)]
    fresh = build(cfg)
    restored, _ = restore(fresh, find_checkpoint(run_dir))
    assert [train_step(fresh, restored).loss for _ in range(2)] == expected

    other = build(make_config("train.optimizer=adamw"))  # a resume with the other optimizer cannot use that state
    with pytest.raises(CheckpointError, match="train.optimizer=muon, not adamw"):
        restore(other, find_checkpoint(run_dir), force=True)


def test_muon_on_a_torch_without_it_is_one_clear_error(make_config, monkeypatch):
    monkeypatch.delattr(torch.optim, "Muon")
    with pytest.raises(ConfigError, match=r"train.optimizer=muon \(every profile's default\) needs torch.optim.Muon, "
                                          r"torch >= 2.9; this is torch") as refused:
        build(make_config(*MUON))
    assert "train with AdamW: --set train.optimizer=adamw" in refused.value.hint


def test_bad_optimizer_settings_are_config_errors(make_config):
    with pytest.raises(ConfigError, match="train.optimizer='sgd' is not one of adamw, muon"):
        make_config("train.optimizer=sgd")
    with pytest.raises(ConfigError, match="train.muon_momentum=1.0 must be in"):
        make_config(*MUON, "train.muon_momentum=1.0")
