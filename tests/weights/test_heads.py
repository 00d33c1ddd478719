"""How weights stored without a config get their head count: MiniMind's 8 query / 2 key-value
heads when the shapes allow, the sidecar config minimind writes beside every weights file, and the
64-wide head only as a named fallback."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from minimind import checkpoint, weights
from minimind.model import MiniMindLM
from tests.checkpoint_fakes import tiny_config, tiny_model, write_run

X = torch.tensor([[1, 5, 9, 40, 41, 7, 3, 250]])


def _logits(model: MiniMindLM) -> torch.Tensor:
    with torch.no_grad():
        return model(X).logits


@pytest.mark.parametrize("hidden", [256, 512, 768])  # head_dim 32, 64, 96
def test_bare_pth_with_minimind_heads_gives_the_writers_logits(tmp_path, hidden):
    """MiniMind's own .pth (no run beside it, no sidecar): 8 query / 2 key-value heads at every
    width. A 64-wide head would load these shapes strictly and compute other logits."""
    model = tiny_model(seed=hidden, hidden_size=hidden, num_hidden_layers=1, num_attention_heads=8,
                       num_key_value_heads=2, max_position_embeddings=64)
    torch.save(model.state_dict(), tmp_path / f"pretrain_{hidden}.pth")
    loaded = weights.load_weights(tmp_path / f"pretrain_{hidden}.pth")
    cfg = loaded.config
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (8, 2, hidden // 8)
    assert torch.equal(_logits(weights.build_model(loaded)), _logits(model))
    arch = weights.describe(loaded)["architecture"]
    for name in ("num_attention_heads", "num_key_value_heads", "head_dim"):
        assert arch[name]["source"] == "assumed" and arch[name]["rule"] == "MiniMind's default", name
    assert any("heads assumed (MiniMind's default" in n for n in loaded.notes)


def test_earlier_layout_uses_minimind_heads_too(tmp_path):
    """The q/k row regrouping of the earlier layout depends on head_dim: 32 here, not 64."""
    from tests.checkpoint_fakes import to_earlier_layout

    model = tiny_model(seed=4, hidden_size=256, num_hidden_layers=1, num_attention_heads=8, num_key_value_heads=2)
    torch.save(to_earlier_layout(model.state_dict(), head_dim=32), tmp_path / "old.pth")
    loaded = weights.load_weights(tmp_path / "old.pth")
    assert loaded.config.head_dim == 32
    assert torch.allclose(_logits(weights.build_model(loaded)), _logits(model), atol=1e-5)


def test_fallback_to_64_wide_heads_is_named(tmp_path):
    """Where 8/2 heads do not fit (k_proj is not a quarter of q_proj), head_dim 64 is read, and said."""
    model = tiny_model(hidden_size=128, num_attention_heads=2, num_key_value_heads=1)  # head_dim 64
    torch.save(model.state_dict(), tmp_path / "m.pth")
    loaded = weights.load_weights(tmp_path / "m.pth")
    assert (loaded.config.num_attention_heads, loaded.config.num_key_value_heads) == (2, 1)
    assert torch.equal(_logits(weights.build_model(loaded)), _logits(model))
    assert weights.describe(loaded)["architecture"]["head_dim"] == {"value": 64, "source": "assumed",
                                                                    "rule": "head_dim 64"}
    assert any("do not fit" in n and "head_dim 64 assumed instead" in n for n in loaded.notes)


def _moved_alone(src, dest_dir):
    """``src`` and its sidecar copied into a directory with no run beside them."""
    dest_dir.mkdir()
    shutil.copy2(src, dest_dir / src.name)
    sidecar = checkpoint.weights_config_path(src)
    if sidecar.is_file():
        shutil.copy2(sidecar, dest_dir / sidecar.name)
    return dest_dir / src.name


def test_sidecar_makes_non_default_heads_load_exactly(tmp_path):
    cfg = tiny_config(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, rope_theta=1e4)  # head_dim 16
    torch.manual_seed(0)
    model = MiniMindLM(cfg).eval()
    written = checkpoint.save_weights(tmp_path / "pretrain_64.pth", model.state_dict(), cfg)
    assert json.loads((tmp_path / "pretrain_64.json").read_text())["model"]["num_attention_heads"] == 4
    alone = _moved_alone(written, tmp_path / "elsewhere")
    loaded = weights.load_weights(alone)
    assert loaded.config == cfg and loaded.inferred == set() and loaded.heads_assumed is None
    assert loaded.config_source == str(tmp_path / "elsewhere" / "pretrain_64.json")
    half = MiniMindLM(cfg).eval()
    half.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    assert torch.equal(_logits(weights.build_model(loaded)), _logits(half))
    info = weights.describe(loaded)
    assert info["file"]["config_source"] == loaded.config_source
    assert all(v["source"] == "stored" for v in info["architecture"].values())

    # Without its sidecar the same file cannot be read (k_proj 32 rows fits neither 8/2 heads nor 64).
    (tmp_path / "elsewhere" / "pretrain_64.json").unlink()
    with pytest.raises(weights.CheckpointError, match="--head-dim"):
        weights.load_weights(alone)


def test_sidecar_wins_over_a_run_beside_and_a_stale_one_is_ignored(tmp_path):
    out = tmp_path / "out"
    mine = tiny_config(num_attention_heads=4, num_key_value_heads=2)
    torch.manual_seed(1)
    model = MiniMindLM(mine).eval()
    # A run beside the file with the same shapes but other heads/theta: the sidecar is exact.
    write_run(out / "runs" / "other", tiny_model(num_attention_heads=2, num_key_value_heads=1, rope_theta=1e4),
              steps=(10,), incomplete_step=None)
    checkpoint.save_weights(out / "pretrain_64.pth", model.state_dict(), mine)
    loaded = weights.load_weights(out / "pretrain_64.pth")
    assert loaded.config == mine and loaded.config_source.endswith("pretrain_64.json")

    # A sidecar of another model (other shapes) is not used; the run beside is, and the note says why.
    checkpoint.save_weights(tmp_path / "big.pth", tiny_model(hidden_size=128).state_dict(),
                            tiny_config(hidden_size=128))
    shutil.copy2(tmp_path / "big.json", out / "pretrain_64.json")
    stale = weights.load_weights(out / "pretrain_64.pth")
    assert stale.config_source.endswith("runs/other/config.yaml")
    assert any("pretrain_64.json does not describe this file" in n for n in stale.notes)
    (out / "pretrain_64.json").write_text("{not json")
    assert any("invalid JSON" in n for n in weights.load_weights(out / "pretrain_64.pth").notes)


def test_trainer_and_export_weights_get_a_sidecar(tmp_path, small_dataset):
    from minimind.training.build import build
    from minimind.training.state import TrainState, save
    from tests.training.conftest import small_config

    cfg = small_config(small_dataset, tmp_path / "out")  # 4 query / 2 key-value heads: head_dim 16
    built = build(cfg)
    save(built, TrainState(), tmp_path / "out" / "runs" / "r", "interval", elapsed_s=0.0)
    trained = tmp_path / "out" / "pretrain_64.pth"
    loaded = weights.load_weights(_moved_alone(trained, tmp_path / "moved"))
    assert loaded.config == cfg.model and loaded.config_source.endswith("moved/pretrain_64.json")

    # export --to pth of that run: the exported file carries its config too.
    exported = tmp_path / "exported" / "pretrain_64.pth"
    weights.export_pth(weights.load_weights(tmp_path / "out" / "runs" / "r"), exported)
    again = weights.load_weights(_moved_alone(exported, tmp_path / "moved2"))
    assert again.config == cfg.model and again.inferred == set()
    for key, value in built.model.state_dict().items():
        assert torch.equal(again.state_dict[key], value.half().float()), key


def test_export_of_a_bare_file_records_what_was_inferred(tmp_path):
    model = tiny_model(seed=5, hidden_size=256, num_hidden_layers=1, num_attention_heads=8, num_key_value_heads=2)
    torch.save(model.state_dict(), tmp_path / "minimind.pth")
    weights.export_pth(weights.load_weights(tmp_path / "minimind.pth"), tmp_path / "out" / "copy.pth")
    sidecar = json.loads((tmp_path / "out" / "copy.json").read_text())
    assert {"num_attention_heads", "rope_theta"} <= set(sidecar["inferred"])
    again = weights.load_weights(tmp_path / "out" / "copy.pth")
    assert again.config.head_dim == 32 and "rope_theta" in again.inferred
    assert any("inferred, not known" in n for n in again.notes)


def test_init_from_reads_weights_with_the_new_runs_head_size(tmp_path):
    """--init-from a bare earlier-layout file of the tiny profile's shape (128 wide, 4 query / 2
    key-value heads, head_dim 32): 8/2 heads do not fit, head_dim 64 does, and regrouping the q/k
    rows with 64 passes every shape check with scrambled weights. The run's own config knows 32."""
    from minimind.training.policy import check_init_from
    from tests.checkpoint_fakes import to_earlier_layout

    model = tiny_model(seed=9, hidden_size=128, num_attention_heads=4, num_key_value_heads=2)
    torch.save(to_earlier_layout(model.state_dict(), head_dim=32), tmp_path / "old.pth")
    assert weights.load_weights(tmp_path / "old.pth").config.head_dim == 64  # the guess, read alone
    loaded = check_init_from(model.config, tmp_path / "old.pth")
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict[key], value), key
