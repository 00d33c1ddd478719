"""Real training steps of the minimind3 profiles at tiny shapes: packing with document masks, Muon,
top-1 routing statistics, a checkpoint round trip, and the MiniMind-3-style weights file."""

from __future__ import annotations

import math

import pytest
import torch

from minimind.checkpoint import find_checkpoint
from minimind.config import resolve
from minimind.training.build import build
from minimind.training.state import TrainState, restore, save, weights_file
from minimind.training.step import train_step
from tests.training.conftest import SMALL
from tests.weights.test_minimind3 import RefMiniMind3

# SMALL's shapes with MiniMind-3's head_dim 24 set on its own; the reference model has these.
TINY3 = [*SMALL, "model.head_dim=24", "model.vocab_size=300"]


@pytest.mark.slow  # real optimizer steps, a save and a restore
@pytest.mark.parametrize("profile,extra", [
    ("minimind3", ["train.optimizer=muon", "data.doc_mask=true"]),
    ("minimind3-moe", ["data.doc_mask=true"]),
])
def test_minimind3_profiles_train_resume_and_write_minimind3_weights(small_dataset, tmp_path, profile, extra):
    cfg = resolve(profile, [*TINY3, f"data.path={small_dataset}", f"run.out_dir={tmp_path / 'out'}", *extra])
    assert cfg.model.qk_norm and cfg.model.rms_norm_eps == 1e-6
    built = build(cfg)
    state = TrainState()
    first = train_step(built, state)
    for _ in range(5):
        result = train_step(built, state)
        state.advance(result.loss, result.tokens)
    assert math.isfinite(result.loss) and result.loss < first.loss
    if cfg.model.use_moe:  # top-1: every token is counted once per layer
        counts = built.model.read_expert_counts()
        assert len(counts) == 2 and all(len(c) == 4 for c in counts)
        assert sum(counts[0]) == sum(counts[1]) == 6 * 4 * 2 * 32

    run_dir = tmp_path / "out" / "runs" / "r"
    save(built, state, run_dir, "interval", elapsed_s=1.0)
    expected = [train_step(built, state).loss for _ in range(2)]
    fresh = build(cfg)
    restored, _ = restore(fresh, find_checkpoint(run_dir))
    assert [train_step(fresh, restored).loss for _ in range(2)] == expected

    # out/pretrain_64[_moe].pth: MiniMind-3's key names, loads strictly into its model
    path = weights_file(cfg)
    assert path.name == f"pretrain_64{'_moe' if cfg.model.use_moe else ''}.pth"
    stored = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in stored.values())
    ref = RefMiniMind3(dict(hidden=64, layers=2, heads=4, kv_heads=2, head_dim=24, vocab=300,
                            ffn=cfg.model.ffn_size), moe=cfg.model.use_moe)
    ref.load_state_dict(stored, strict=True)


@pytest.mark.slow  # torch.compile: about half a minute on 2 cores
def test_minimind3_moe_compiles_without_graph_breaks():
    import torch._dynamo

    from minimind.model import MiniMindLM

    cfg = resolve("minimind3-moe", ["model.hidden_size=64", "model.num_hidden_layers=2", "model.vocab_size=300",
                                    "model.num_attention_heads=4", "model.num_key_value_heads=2"]).model
    torch.manual_seed(0)
    model = MiniMindLM(cfg).train()
    x, y = torch.randint(0, 300, (2, 32)), torch.randint(0, 300, (2, 32))
    assert torch._dynamo.explain(model)(x, targets=y).graph_break_count == 0
    compiled = torch.compile(model)(x, targets=y)
    eager = model(x, targets=y)
    assert torch.allclose(compiled.loss, eager.loss, atol=1e-5) and torch.allclose(compiled.aux_loss, eager.aux_loss)
