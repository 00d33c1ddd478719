"""Aux-loss-free MoE balancing: the per-expert router bias (model.router_balance bias/both)."""

from __future__ import annotations

import pytest
import torch

from minimind import distributed as dist_utils
from minimind.checkpoint import find_checkpoint
from minimind.config import ConfigError, ModelConfig
from minimind.model import MiniMindLM, MoEGate
from minimind.training.balance import update_router_bias
from minimind.training.build import build
from minimind.training.state import TrainState, restore, save
from minimind.training.step import train_step

MOE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=97,
           max_position_embeddings=64, use_moe=True, n_routed_experts=4, num_experts_per_tok=2)


def test_the_bias_picks_experts_but_never_enters_the_mixing_weights():
    torch.manual_seed(0)
    gate = MoEGate(ModelConfig(**MOE, router_balance="bias")).eval()
    x = torch.randn(2, 8, 64)
    with torch.no_grad():
        gate.expert_bias.copy_(torch.tensor([5.0, -5.0, 5.0, -5.0]))  # forces experts 0 and 2
    idx, weight, aux = gate(x)
    assert sorted(set(idx.flatten().tolist())) == [0, 2]
    scores = torch.nn.functional.linear(x.reshape(-1, 64), gate.weight).softmax(-1)
    chosen = scores.gather(1, idx)
    assert torch.allclose(weight, chosen / chosen.sum(-1, keepdim=True))  # unbiased scores, renormalised
    assert aux.item() == 0.0  # bias-only balancing has no balance loss


def test_only_bias_modes_have_a_saved_bias_and_aux_loss_keeps_minimind_keys():
    keys = {mode: set(MiniMindLM(ModelConfig(**MOE, router_balance=mode)).state_dict()) for mode in
            ("aux_loss", "bias", "both")}
    assert not any("expert_bias" in k for k in keys["aux_loss"])
    assert keys["bias"] == keys["both"] == keys["aux_loss"] | {f"model.layers.{i}.mlp.gate.expert_bias" for i in (0, 1)}
    with pytest.raises(ConfigError, match="router_balance='biass' is not one of aux_loss, bias, both"):
        ModelConfig(**MOE, router_balance="biass").validate()


def test_a_skewed_router_becomes_balanced_within_300_steps():
    torch.manual_seed(0)
    model = MiniMindLM(ModelConfig(**{**MOE, "num_hidden_layers": 1}, router_balance="bias")).train()
    gate = model.moe_layers()[0].gate
    shared = torch.randn(64)
    shared /= shared.norm()
    first, window = None, torch.zeros(4)
    with torch.no_grad():
        gate.weight[:2] += 2 * shared  # hidden states share a direction that experts 0 and 1 favour
        for step in range(300):
            gate(torch.randn(4, 64, 64) + 2 * shared)  # a fresh batch every step, as in training
            load = gate.bias_load.clone()
            first = first if first is not None else load
            if step >= 250:
                window += load
            update_router_bias(model, 1e-3, dist_utils.DistInfo())  # the default coefficient
    assert (first.max() / first.mean()).item() > 1.9  # nearly every pick on experts 0 and 1
    assert (window.max() / window.mean()).item() <= 1.1, window  # the last 50 steps: even
    bias = gate.expert_bias
    assert abs(bias.sum().item()) < 1e-5  # recentred to zero mean
    assert bias[0] < 0 and bias[1] < 0 and bias[2] > 0 and bias[3] > 0  # favoured experts pushed down


def test_a_skipped_step_drops_its_counts_without_moving_the_bias():
    model = MiniMindLM(ModelConfig(**MOE, router_balance="bias")).train()
    model(torch.randint(0, 97, (2, 16)))
    gate = model.moe_layers()[0].gate
    assert gate.bias_load.sum().item() == 2 * 16 * 2
    update_router_bias(model, 0.01, dist_utils.DistInfo(), apply=False)
    assert gate.bias_load.sum().item() == 0 and torch.count_nonzero(gate.expert_bias) == 0


def test_padding_does_not_count_towards_the_load():
    model = MiniMindLM(ModelConfig(**MOE, router_balance="both")).train()
    mask = torch.zeros(2, 16)
    mask[:, :5] = 1
    model(torch.randint(0, 97, (2, 16)), targets=torch.zeros(2, 16, dtype=torch.long), loss_mask=mask)
    assert model.moe_layers()[0].gate.bias_load.sum().item() == 2 * 5 * 2


MOE_SET = ["model.use_moe=true", "model.n_routed_experts=4", "model.num_experts_per_tok=2",
           "model.router_balance=bias", "model.router_bias_coeff=0.01"]


@pytest.mark.slow  # real steps, a transformers export
def test_the_bias_moves_each_step_and_round_trips_through_checkpoints_and_export(make_config, tmp_path):
    from minimind import weights

    cfg = make_config(*MOE_SET)
    built = build(cfg)
    state = TrainState()
    for _ in range(3):
        r = train_step(built, state)
        state.advance(r.loss, r.tokens)
    biases = built.model.router_biases()
    assert len(biases) == 2 and all(len(b) == 4 for b in biases)
    assert all(abs(v) > 0 for b in biases for v in b)  # three steps of +-0.01 never sum to 0 at 4 experts
    run_dir = tmp_path / "out" / "runs" / "r"
    save(built, state, run_dir, "interval", elapsed_s=1.0)
    expected = [train_step(built, state).loss for _ in range(2)]

    fresh = build(cfg)
    restored, _ = restore(fresh, find_checkpoint(run_dir))
    assert fresh.model.router_biases() == biases
    assert [train_step(fresh, restored).loss for _ in range(2)] == expected

    # Export: HF (fp32, exact) and MiniMind's .pth (fp16): the bias travels with the weights.
    loaded = weights.load_weights(find_checkpoint(run_dir).path)
    assert loaded.config.router_balance == "bias"
    key = "model.layers.1.mlp.gate.expert_bias"
    assert loaded.state_dict[key].tolist() == biases[1]
    weights.export_hf(loaded, tmp_path / "hf")
    back = weights.load_weights(tmp_path / "hf")
    assert back.config.router_balance == "bias" and back.state_dict[key].tolist() == biases[1]
    weights.export_pth(loaded, tmp_path / "bias.pth")
    pth = weights.load_weights(tmp_path / "bias.pth")
    assert pth.config.router_balance == "bias"  # from the sidecar config
    assert torch.allclose(pth.state_dict[key], torch.tensor(biases[1]), atol=1e-3)
    (tmp_path / "bare").mkdir()
    sd = {k: v.half() for k, v in weights.load_weights(tmp_path / "bias.pth").state_dict.items()}
    torch.save(sd, tmp_path / "bare" / "w.pth")  # no sidecar: inferred from the keys
    inferred = weights.load_weights(tmp_path / "bare" / "w.pth", head_dim=16)
    assert inferred.config.router_balance == "bias" and "router_balance" in inferred.inferred


def test_init_from_weights_without_a_bias_starts_the_bias_at_zero(tmp_path):
    from minimind.training import policy
    from minimind.training.build import load_init_weights
    from tests.checkpoint_fakes import tiny_config, tiny_model, write_checkpoint

    source = tiny_model(seed=3, use_moe=True)  # aux_loss: MiniMind's own MoE keys
    ckpt = write_checkpoint(tmp_path / "runs" / "r" / "checkpoints" / "step_00000010", source, step=10)
    model = MiniMindLM(tiny_config(use_moe=True, router_balance="bias"))
    load_init_weights(model, ckpt)
    assert torch.equal(model.moe_layers()[0].gate.weight, source.moe_layers()[0].gate.weight)
    assert model.router_biases() == [[0.0] * 4, [0.0] * 4]
    with pytest.raises(ConfigError, match="keys do not match"):  # the other way round is refused
        policy.check_init_from(source.config, _bias_weights(tmp_path, model))


def _bias_weights(tmp_path, model):
    from minimind.checkpoint import save_weights

    path = tmp_path / "bias" / "pretrain_64_moe.pth"
    path.parent.mkdir()
    save_weights(path, model.state_dict(), model.config)
    return path


def test_an_fp16_overflow_step_moves_neither_the_weights_nor_the_router_bias(make_config):
    """The loss scaler skips an overflowing update; the bias must not move on loads of a step that
    changed nothing."""
    built = build(make_config("model.use_moe=true", "model.router_balance=bias", "model.router_bias_coeff=0.1",
                              "train.dtype=fp16"))
    built.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 120)  # every gradient overflows
    bias = [g.gate.expert_bias.clone() for g in built.model.moe_layers()]
    weights = [p.detach().clone() for p in built.model.parameters()]
    result = train_step(built, TrainState())
    assert result.scaler_overflow and result.finite
    assert all(torch.equal(g.gate.expert_bias, b) for g, b in zip(built.model.moe_layers(), bias))
    assert all(torch.equal(p, w) for p, w in zip(built.model.parameters(), weights))
    assert all(g.gate.bias_load.sum() == 0 for g in built.model.moe_layers())  # and the next step counts afresh


def test_forget_routing_leaves_no_trace_of_a_probe_pass():
    """What the memory probe (GPU, batch_size auto) calls after its random-token passes."""
    torch.manual_seed(0)
    model = MiniMindLM(ModelConfig(**MOE, router_balance="bias")).train()
    model(torch.randint(0, 97, (2, 8)), targets=torch.randint(0, 97, (2, 8)))
    layers = model.moe_layers()
    assert all(m.expert_counts.sum() > 0 and m.gate.bias_load.sum() > 0 for m in layers)
    model.forget_routing()
    assert all(m.expert_counts.sum() == 0 and m.gate.bias_load.sum() == 0 for m in layers)
