"""The resume policy, checked the same way by ``minimind resume`` and by the trainer."""

from __future__ import annotations

import json
import shutil

import pytest

from minimind.checkpoint import find_checkpoint
from minimind.config import ConfigError
from minimind.errors import DatasetFormatError, MinimindError
from minimind.training import policy
from minimind.training.build import build
from minimind.training.state import TrainState, restore, save
from minimind.training.step import train_step


@pytest.fixture
def saved_run(small_dataset, tmp_path):
    """A run directory with one real checkpoint at step 2, on its own copy of the dataset."""
    from tests.training.conftest import small_config

    data = tmp_path / "data"
    shutil.copytree(small_dataset, data)
    cfg = small_config(data, tmp_path / "out")
    built = build(cfg)
    state = TrainState()
    for _ in range(2):
        r = train_step(built, state)
        state.advance(r.loss, r.tokens)
    run_dir = tmp_path / "out" / "runs" / "r"
    save(built, state, run_dir, "interval", elapsed_s=0.5)
    return run_dir, data, cfg


def test_overrides_of_the_model_are_refused_and_unsafe_keys_need_force():
    with pytest.raises(ConfigError, match="model shape cannot change"):
        policy.check_overrides(["model.hidden_size=32"], force=True)
    with pytest.raises(ConfigError, match="breaks exact continuation") as err:
        policy.check_overrides(["train.batch_size=8"], force=False)
    assert "--force" in err.value.hint
    policy.check_overrides(["train.batch_size=8"], force=True)
    policy.check_overrides([f"{key}=1" for key in policy.SAFE_KEYS if key not in ("train.device", "train.dtype")],
                           force=False)


def test_the_global_batch_is_kept_across_world_sizes(make_config):
    cfg = make_config("train.batch_size=6")
    assert policy.keep_global_batch(cfg, 1, 1) is None and cfg.train.batch_size == 6
    note = policy.keep_global_batch(cfg, 1, 2)
    assert cfg.train.batch_size == 3 and "global batch of 6" in note
    policy.keep_global_batch(cfg, 2, 3)
    assert cfg.train.batch_size == 2
    with pytest.raises(ConfigError, match="cannot keep the global batch of 6 samples on 4"):
        policy.keep_global_batch(cfg, 3, 4)


def test_a_dataset_too_small_for_one_step_or_with_a_bigger_vocab_is_refused(make_config):
    with pytest.raises(DatasetFormatError, match="make no optimizer step"):
        policy.check_dataset_fits(make_config("train.accumulation_steps=1000"), 1)
    with pytest.raises(ConfigError, match="tokenizer has 256 tokens") as err:
        policy.check_dataset_fits(make_config("model.vocab_size=128"), 1)
    assert err.value.hint == "--set model.vocab_size=256"


def test_plan_resume_reads_the_checkpoint_config_and_rescales_the_batch(saved_run):
    run_dir, _, cfg = saved_run
    plan = policy.plan_resume(run_dir, ["train.max_steps=40"], world=2)
    assert plan.run_dir == run_dir and plan.info.step == 2
    assert plan.cfg.train.max_steps == 40 and plan.cfg.train.batch_size == cfg.train.batch_size // 2
    assert plan.cfg.model == cfg.model and len(plan.notes) == 2 and "global batch" in plan.notes[0]
    assert "from 16 to 40 steps: the lr schedule is re-planned from step 2" in plan.notes[1]


def test_a_changed_dataset_is_refused_by_the_cli_plan_and_by_the_trainer(saved_run):
    run_dir, data, cfg = saved_run
    meta = json.loads((data / "meta.json").read_text())
    meta["fingerprint"] = "0" * 64
    (data / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetFormatError, match="changed since step 2"):
        policy.plan_resume(run_dir)
    assert policy.plan_resume(run_dir, force=True).info.step == 2
    with pytest.raises(DatasetFormatError, match="changed since step 2"):
        restore(build(cfg), find_checkpoint(run_dir))


def test_the_trainer_refuses_a_checkpoint_of_another_model_shape(saved_run, make_config):
    run_dir, data, _ = saved_run
    from tests.training.conftest import small_config

    other = small_config(data, run_dir.parent, "model.num_hidden_layers=3")
    with pytest.raises(ConfigError, match="different model shape \\(num_hidden_layers\\)"):
        restore(build(other), find_checkpoint(run_dir))


def test_every_policy_error_is_a_minimind_error():
    for cls in (ConfigError, DatasetFormatError):
        assert issubclass(cls, MinimindError) and cls("x").exit_code == 2


def test_the_shape_hint_is_true_init_from_refuses_another_shape_too(saved_run):
    run_dir, data, _ = saved_run
    from tests.training.conftest import small_config

    other = small_config(data, run_dir.parent, "model.hidden_size=32")
    with pytest.raises(ConfigError) as on_resume:
        policy.check_model_shape(small_config(data, run_dir.parent).model, other.model, "checkpoint x")
    with pytest.raises(ConfigError) as on_set:
        policy.check_overrides(["model.hidden_size=32"], force=False)
    # The hint may not send the user to --init-from for another shape: it refuses one.
    with pytest.raises(ConfigError, match="shapes differ"):
        policy.check_init_from(other.model, find_checkpoint(run_dir).path)
    for err in (on_resume, on_set):
        assert "reuse the weights in another shape" not in err.value.hint
        assert "--init-from needs the same shape" in err.value.hint


def test_schedule_after_resume_same_length_replan_keep_and_warmup():
    from minimind.config import TrainConfig
    from minimind.schedule import Replan, SchedulePlan, lr_at

    cfg = TrainConfig(learning_rate=1e-3)
    same = SchedulePlan(100, 100)
    assert policy.schedule_after_resume(same, 40, 100, 100, cfg) == (same, None)
    assert policy.schedule_after_resume(None, 40, 100, 100, cfg) == (same, None)  # checkpoints before plans
    plan, note = policy.schedule_after_resume(None, 40, 100, 55, cfg)
    assert plan == SchedulePlan(55, 55, (Replan(40, lr_at(40, 100, cfg), 100),))
    assert "from 100 to 55 steps" in note and "re-planned from step 40" in note and "--keep-schedule" in note
    cfg.on_length_change = "keep"
    plan, note = policy.schedule_after_resume(same, 40, 100, 55, cfg)
    assert plan == SchedulePlan(100, 55) and "stops at step 55, before the plan's end" in note
    plan, note = policy.schedule_after_resume(same, 40, 100, 300, cfg)
    assert plan == SchedulePlan(100, 300) and "past step 100 the lr stays at its final value 0.0001" in note
    warm = TrainConfig(learning_rate=1e-3, schedule="cosine", warmup_steps=50)
    plan, note = policy.schedule_after_resume(same, 40, 100, 300, warm)
    assert plan == SchedulePlan(300, 300) and "still warming up" in note
    assert lr_at(40, 300, warm) == lr_at(40, 100, warm)


def test_the_trainer_restores_with_the_plan_resume_announced(saved_run):
    run_dir, data, _ = saved_run
    from minimind.schedule import Replan, SchedulePlan, lr_at
    from tests.training.conftest import small_config

    same = small_config(data, run_dir.parent.parent)
    state, _ = restore(build(same), find_checkpoint(run_dir))
    assert state.schedule == SchedulePlan(16, 16)  # an exact resume: the plan it had
    longer = small_config(data, run_dir.parent.parent, "train.max_steps=40")
    built = build(longer)
    state, _ = restore(built, find_checkpoint(run_dir))
    assert state.schedule == SchedulePlan(40, 40, (Replan(2, lr_at(2, 16, longer.train), 16),))
    assert train_step(built, state).lr == lr_at(2, 16, longer.train)  # no jump at the first resumed step
    assert "re-planned from step 2" in policy.plan_resume(run_dir, ["train.max_steps=40"]).notes[0]
