"""Checkpoint directories: written completely or not at all, listed, verified, pruned."""

from __future__ import annotations

import json
import os

import pytest
import torch

from minimind import checkpoint as ckpt
from minimind.config import ModelConfig


def _save(run_dir, step, keep_last=10, **kw):
    return ckpt.save_checkpoint(run_dir, step, model_state={"w": torch.full((2, 2), float(step))},
                                optimizer_state={"state": {}}, loop_state={"step": step},
                                config_yaml="model: {}\n", meta={"loss": 1.0 / step}, keep_last=keep_last, **kw)


def test_a_checkpoint_round_trips_and_records_every_file_hash(tmp_path):
    path = _save(tmp_path, 3)
    assert path == tmp_path / "checkpoints" / "step_00000003"
    meta = json.loads((path / "meta.json").read_text())
    assert meta["step"] == 3 and meta["loss"] == pytest.approx(1 / 3)
    assert set(meta["files"]) == {"model.pt", "optimizer.pt", "state.pt", "config.yaml"}
    info = ckpt.find_checkpoint(tmp_path)
    loaded = ckpt.load_checkpoint(info)
    assert torch.equal(loaded["model"]["w"], torch.full((2, 2), 3.0)) and loaded["state"] == {"step": 3}
    assert loaded["config_yaml"] == "model: {}\n"


def test_incomplete_directories_are_never_picked_up(tmp_path):
    _save(tmp_path, 1)
    half = _save(tmp_path, 2)
    (half / "meta.json").unlink()  # as if killed before meta.json, which is written last
    missing = _save(tmp_path, 3)
    (missing / "state.pt").unlink()
    (tmp_path / "checkpoints" / ".tmp-step_00000004-1").mkdir()
    assert [c.step for c in ckpt.list_checkpoints(tmp_path)] == [1]
    assert ckpt.find_checkpoint(tmp_path).step == 1
    with pytest.raises(ckpt.CheckpointError, match="incomplete"):
        ckpt.find_checkpoint(half)


def test_a_corrupted_file_fails_its_hash_with_one_clear_error(tmp_path):
    path = _save(tmp_path, 5)
    with open(path / "model.pt", "r+b") as f:
        f.seek(40)
        f.write(b"\xff\xff\xff")
    with pytest.raises(ckpt.CheckpointError, match="model.pt does not match its recorded sha256"):
        ckpt.load_checkpoint(ckpt.find_checkpoint(tmp_path))


def test_keep_last_prunes_old_checkpoints_and_leftovers_of_other_processes(tmp_path):
    root = tmp_path / "checkpoints"
    root.mkdir()
    (root / ".tmp-step_00000009-999999").mkdir()
    (root / ".old-step_00000001-999999").mkdir()
    for step in range(1, 6):
        _save(tmp_path, step, keep_last=2)
    assert [c.step for c in ckpt.list_checkpoints(tmp_path)] == [4, 5]
    assert sorted(p.name for p in root.iterdir()) == ["step_00000004", "step_00000005"]


def test_after_file_runs_between_the_files_before_meta_json(tmp_path):
    seen = []

    def after_file(name):  # a kill here leaves no meta.json: the checkpoint is never picked up
        seen.append(name)
        assert not (tmp_path / "checkpoints" / "step_00000002").exists()
        assert ckpt.list_checkpoints(tmp_path) == []

    _save(tmp_path, 2, after_file=after_file)
    assert seen == ["model.pt", "optimizer.pt", "state.pt", "config.yaml"]
    assert ckpt.find_checkpoint(tmp_path).step == 2


def test_resaving_a_step_replaces_it_whole(tmp_path):
    _save(tmp_path, 7)
    path = ckpt.save_checkpoint(tmp_path, 7, model_state={"w": torch.zeros(1)}, optimizer_state={},
                                loop_state={"step": 7, "again": True}, config_yaml="", meta={}, keep_last=3)
    assert ckpt.load_checkpoint(ckpt.find_checkpoint(path))["state"]["again"] is True
    assert [c.step for c in ckpt.list_checkpoints(tmp_path)] == [7]


def test_missing_paths_and_runs_without_checkpoints_say_so(tmp_path):
    with pytest.raises(ckpt.CheckpointError, match="does not exist"):
        ckpt.find_checkpoint(tmp_path / "nowhere")
    with pytest.raises(ckpt.CheckpointError, match="no complete checkpoint"):
        ckpt.find_checkpoint(tmp_path)


def test_weights_file_is_half_precision_with_both_tied_names(tmp_path):
    state = {"model.embed_tokens.weight": torch.randn(4, 2), "model.norm.weight": torch.ones(2)}
    cfg = ModelConfig(hidden_size=2, num_attention_heads=1, num_key_value_heads=1, vocab_size=4)
    path = ckpt.save_weights(tmp_path / "pretrain_2.pth", state, cfg)
    loaded = torch.load(path, weights_only=True)
    assert loaded["lm_head.weight"].dtype == torch.float16
    assert torch.equal(loaded["lm_head.weight"], loaded["model.embed_tokens.weight"])
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary left behind
    sidecar = json.loads((tmp_path / "pretrain_2.json").read_text())  # how to read the file back
    assert sidecar["format"] == ckpt.WEIGHTS_CONFIG_FORMAT and sidecar["weights"] == "pretrain_2.pth"
    assert ModelConfig(**sidecar["model"]) == cfg and sidecar["inferred"] == []


def test_each_run_keeps_its_own_weights_and_never_silently_replaces_another_file(tmp_path):
    cfg = ModelConfig(hidden_size=2, num_attention_heads=1, num_key_value_heads=1, vocab_size=4)
    out = tmp_path / "out"
    shared = out / "pretrain_2.pth"
    run_a, run_b = out / "runs" / "a", out / "runs" / "b"
    state = {"model.embed_tokens.weight": torch.full((4, 2), 1.0)}
    assert ckpt.shared_weights(shared, run_a).note is None  # nothing there yet
    assert ckpt.publish_weights(shared, run_a, state, cfg) == shared
    assert ckpt.weights_run(shared) == str(run_a.resolve()) and (run_a / "pretrain_2.pth").is_file()
    assert ckpt.publish_weights(shared, run_a, state, cfg) == shared  # its own file: no note
    assert ckpt.shared_weights(shared, run_a).note is None

    plan = ckpt.shared_weights(shared, run_b)  # another run, whose own copy stays in its directory
    assert plan.replace and "holds the weights of run a" in plan.note and str(run_a / "pretrain_2.pth") in plan.note
    assert ckpt.publish_weights(shared, run_b, {"model.embed_tokens.weight": torch.full((4, 2), 2.0)}, cfg) == shared
    assert ckpt.weights_run(shared) == str(run_b.resolve())
    assert torch.load(run_a / "pretrain_2.pth", weights_only=True)["lm_head.weight"][0, 0] == 1.0
    assert torch.load(shared, weights_only=True)["lm_head.weight"][0, 0] == 2.0

    ckpt.save_weights(shared, state, cfg)  # an export, or a file from outside any run: no other copy
    before = shared.read_bytes()
    plan = ckpt.shared_weights(shared, run_b)
    assert not plan.replace and "left as it is" in plan.note and str(run_b.resolve() / "pretrain_2.pth") in plan.note
    assert ckpt.publish_weights(shared, run_b, state, cfg) == run_b.resolve() / "pretrain_2.pth"
    assert shared.read_bytes() == before and ckpt.weights_run(shared) is None


def _damage(path, name="model.pt"):
    with open(path / name, "r+b") as f:
        f.seek(40)
        f.write(b"\xff\xff\xff")


def test_a_damaged_newest_checkpoint_falls_back_to_the_newest_verified_one(tmp_path):
    for step in (1, 2, 3):
        _save(tmp_path, step)
    _damage(tmp_path / "checkpoints" / "step_00000003")
    _damage(tmp_path / "checkpoints" / "step_00000002", "state.pt")
    info, skipped = ckpt.find_verified(tmp_path)
    assert info.step == 1
    assert [(s.info.step, s.reason) for s in skipped] == [(3, "model.pt does not match its recorded sha256"),
                                                          (2, "state.pt does not match its recorded sha256")]
    note = skipped[0].note(info)
    assert "step_00000003 is damaged" in note and "step_00000001 (step 1)" in note
    assert ckpt.find_checkpoint(tmp_path).step == 3  # completeness alone does not see the damage


def test_a_damaged_checkpoint_named_explicitly_is_refused_naming_the_newest_good_one(tmp_path):
    for step in (1, 2, 3):
        _save(tmp_path, step)
    bad = tmp_path / "checkpoints" / "step_00000003"
    _damage(bad)
    with pytest.raises(ckpt.CheckpointError, match="step_00000003 is damaged: model.pt does not match") as err:
        ckpt.find_verified(bad)
    assert str(tmp_path / "checkpoints" / "step_00000002") in err.value.hint
    assert ckpt.find_verified(tmp_path / "checkpoints" / "step_00000002")[0].step == 2
    for step in (1, 2):
        _damage(tmp_path / "checkpoints" / f"step_{step:08d}")
    with pytest.raises(ckpt.CheckpointError, match="every checkpoint is damaged"):
        ckpt.find_verified(tmp_path)


class NotAllowed:
    """A class weights-only loading refuses to build."""


def test_a_state_file_that_weights_only_loading_refuses_is_one_line_never_suggesting_unsafe_loading(tmp_path):
    import hashlib
    import pickle

    path = _save(tmp_path, 4)
    with open(path / "state.pt", "wb") as f:
        pickle.dump({"x": NotAllowed()}, f, protocol=2)
    meta = json.loads((path / "meta.json").read_text())
    meta["files"]["state.pt"] = hashlib.sha256((path / "state.pt").read_bytes()).hexdigest()
    (path / "meta.json").write_text(json.dumps(meta))
    info, skipped = ckpt.find_verified(tmp_path)  # its sha256 is right: verification passes
    assert info.step == 4 and not skipped
    with pytest.raises(ckpt.CheckpointError) as err:
        ckpt.load_checkpoint(info)
    text = f"{err.value.message} {err.value.hint or ''}"
    assert "state.pt" in text and "NotAllowed" in text
    assert "\n" not in text and "weights_only=False" not in text and "Re-running" not in text
