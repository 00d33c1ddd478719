import pytest

from minimind.config import (
    Config,
    ConfigError,
    apply_overrides,
    available_profiles,
    describe_fields,
    load_config,
    load_profile_dict,
    resolve,
    save_config,
)


def test_every_shipped_profile_loads():
    names = available_profiles()
    assert {"default", "moe", "tiny", "large"} <= set(names)
    for name in names:
        cfg = resolve(name)
        assert cfg.run.profile == name


def test_default_is_the_seed_recipe():
    cfg = resolve("default")
    assert (cfg.model.hidden_size, cfg.model.num_hidden_layers, cfg.model.ffn_size) == (512, 8, 1408)
    assert (cfg.data.max_seq_len, cfg.train.batch_size, cfg.train.accumulation_steps) == (512, 32, 4)
    assert cfg.train.learning_rate == 5e-4 and cfg.train.schedule == "minimind"
    assert cfg.train.grad_clip == 1.0 and cfg.train.epochs == 1 and not cfg.model.use_moe


def test_moe_extends_default():
    cfg = resolve("moe")
    assert cfg.model.use_moe and cfg.model.n_routed_experts == 4 and cfg.model.num_experts_per_tok == 2
    assert cfg.train.learning_rate == 5e-4  # inherited


def test_large_profile():
    cfg = resolve("large")
    assert (cfg.model.hidden_size, cfg.model.num_hidden_layers, cfg.data.max_seq_len) == (1024, 16, 2048)
    assert cfg.model.use_moe


def test_overrides_convert_types():
    cfg = resolve("tiny", ["model.hidden_size=256", "train.learning_rate=1e-3", "model.use_moe=yes",
                           "train.max_steps=null", "run.name=abc"])
    assert cfg.model.hidden_size == 256 and cfg.train.learning_rate == 1e-3
    assert cfg.model.use_moe is True and cfg.train.max_steps is None and cfg.run.name == "abc"


def test_typo_suggests_nearest_key():
    with pytest.raises(ConfigError, match=r"did you mean train\.learning_rate\?"):
        resolve("default", ["train.learing_rate=1e-3"])
    with pytest.raises(ConfigError) as info:
        resolve("default", ["modle.hidden_size=3"])
    assert "did you mean model" in str(info.value) and "\n" not in str(info.value)


def test_wrong_type_names_key():
    with pytest.raises(ConfigError, match=r"train\.accumulation_steps='abc' is not a valid int"):
        resolve("default", ["train.accumulation_steps=abc"])
    with pytest.raises(ConfigError, match=r"train\.batch_size='abc' is not a number or auto"):
        resolve("default", ["train.batch_size=abc"])
    with pytest.raises(ConfigError, match=r"model\.use_moe"):
        resolve("default", ["model.use_moe=maybe"])


def test_yaml_profile_errors_name_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: tiny\ntrain:\n  learing_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key train\.learing_rate \(did you mean train\.learning_rate\?\)"):
        resolve(str(bad))
    bad.write_text("extends: tiny\ntrain:\n  batch_size: lots\n")
    with pytest.raises(ConfigError, match=r"train\.batch_size='lots' is not a number or auto"):
        resolve(str(bad))
    bad.write_text("extends: tiny\ntrain:\n  accumulation_steps: lots\n")
    with pytest.raises(ConfigError, match=r"train\.accumulation_steps must be an int, got 'lots'"):
        resolve(str(bad))
    bad.write_text("extends: tiny\ntrain:\n  learning_rate: lots\n")
    with pytest.raises(ConfigError, match=r"train\.learning_rate must be a float, got 'lots'"):
        resolve(str(bad))
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match=r"invalid YAML"):
        resolve(str(bad))


def test_user_profile_extends_shipped_one(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: moe\nmodel:\n  num_hidden_layers: 2\n")
    cfg = resolve(str(mine))
    assert cfg.model.use_moe and cfg.model.num_hidden_layers == 2 and cfg.model.hidden_size == 512
    assert cfg.run.profile == "mine"


def test_circular_extends_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="circular"):
        load_profile_dict(str(tmp_path / "a.yaml"))


@pytest.mark.parametrize("override, message", [
    ("model.num_attention_heads=7", "not divisible"),
    ("model.num_key_value_heads=3", "not a multiple"),
    ("train.dtype=bf61", "did you mean bf16"),
    ("train.schedule=cosin", "did you mean cosine"),
    ("train.batch_size=0", "must be > 0"),
    ("data.max_seq_len=40000", "exceeds model.max_position_embeddings"),
])
def test_cross_field_validation(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve("default", [override])


def test_doc_mask_is_on_for_tiny_and_changes_nothing_in_padded_rows(small_dataset):
    """tiny (the CPU profile) trains document-aware: measured better per document there. A padded
    row already holds one document from position 0, so `--set data.packing=false` on tiny needs no
    second override: the dataset simply has no document mask to apply."""
    from minimind.data.dataset import PretrainDataset

    assert resolve("tiny").data.doc_mask is True
    assert resolve("default").data.doc_mask is False
    cfg = resolve("tiny", ["data.packing=false"])
    assert cfg.data.doc_mask is True
    padded = PretrainDataset(small_dataset, 128, cfg.data.packing, "train", cfg.data.doc_mask)
    assert padded.doc_mask is False and padded.batch([0, 1]).position_ids is None


def test_top1_with_normalisation_is_refused_without_a_balance_loss():
    # Weight 1 for the one chosen expert: the router learns from the balance loss only (MiniMind-3).
    with pytest.raises(ConfigError, match="without gradient"):
        resolve("moe", ["model.num_experts_per_tok=1", "model.router_balance=bias"])
    assert resolve("moe", ["model.num_experts_per_tok=1"]).model.norm_topk_prob
    assert resolve("moe", ["model.num_experts_per_tok=1", "model.norm_topk_prob=false",
                           "model.router_balance=bias"]).model.use_moe


def test_unknown_profile_suggests():
    with pytest.raises(ConfigError, match="did you mean tiny"):
        resolve("tiyn")


def test_save_and_load_round_trip(tmp_path):
    cfg = resolve("moe", ["train.max_steps=7"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides({}, ["train.batch_size"])
    with pytest.raises(ConfigError, match="SECTION.NAME"):
        apply_overrides({}, ["batch_size=3"])


def test_every_field_is_documented():
    rows = describe_fields()
    assert len(rows) > 40
    assert all(doc for _, _, _, doc in rows)
    assert Config().to_dict()["model"]["hidden_size"] == 512


def test_sample_prompts_from_the_command_line_and_yaml(tmp_path):
    assert resolve("tiny").train.sample_prompts is None and resolve("tiny").train.sample_tokens == 48
    assert resolve("tiny", ["train.sample_prompts=Once upon a time"]).train.sample_prompts == ["Once upon a time"]
    cfg = resolve("tiny", ['train.sample_prompts=["The cat", "def f("]', "train.sample_tokens=0"])
    assert cfg.train.sample_prompts == ["The cat", "def f("] and cfg.train.sample_tokens == 0
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml").train.sample_prompts == ["The cat", "def f("]
    with pytest.raises(ConfigError, match="not a JSON list of strings"):
        resolve("tiny", ["train.sample_prompts=[1, 2]"])
    with pytest.raises(ConfigError, match="must be a list of str or null, got"):
        Config.from_dict({"train": {"sample_prompts": [1]}})
    with pytest.raises(ConfigError, match="sample_tokens=-1 must be >= 0"):
        resolve("tiny", ["train.sample_tokens=-1"])


def test_router_balance_bias_on_a_dense_model_is_refused():
    from minimind.config import ConfigError, resolve

    with pytest.raises(ConfigError, match=r"model.router_balance=bias .* this model is dense"):
        resolve("tiny", ["model.router_balance=bias"])
    assert resolve("tiny", ["model.router_balance=bias", "model.use_moe=true"]).model.router_balance == "bias"
