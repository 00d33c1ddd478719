"""Typed configuration: model, data, train and run sections, profiles and overrides.

A configuration is resolved once, before any work starts:

    profile YAML (with ``extends:`` chains)  ->  ``--set a.b=c`` overrides  ->  validation

Every error names the bad key or value in one line and, for an unknown key, suggests the
nearest valid one. This module is stdlib + PyYAML only: the CLI imports it without torch.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from minimind.config_types import check_type, convert_string, field_type, suggest, type_name
from minimind.errors import ConfigError
from minimind.files import atomic_write

__all__ = ["ConfigError", "convert_string"]


def _f(default: Any, doc: str) -> Any:
    """A dataclass field with its documentation attached (shown by ``describe_fields``)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


def default_ffn_size(hidden_size: int, rule: str = "8/3") -> int:
    """The feed-forward width for a null ``intermediate_size``, by ``model.ffn_rule``, rounded up to
    a multiple of 64: ``8/3`` (MiniMind2: SwiGLU's three matrices cost what a 4x two-matrix MLP
    would) or ``pi`` (MiniMind-3: pi times the hidden size, 2432 at 768)."""
    factor = math.pi if rule == "pi" else 8 / 3
    return 64 * math.ceil(factor * hidden_size / 64)


FFN_RULES = ("8/3", "pi")


ROUTER_BALANCES = ("aux_loss", "bias", "both")


@dataclass
class ModelConfig:
    """The architecture. Defaults are MiniMind's 25.8M dense model; key names are MiniMind2's."""

    hidden_size: int = _f(512, "width of the residual stream (d_model)")
    num_hidden_layers: int = _f(8, "number of transformer blocks")
    num_attention_heads: int = _f(8, "query heads")
    num_key_value_heads: int = _f(2, "key/value heads (grouped-query attention); divides num_attention_heads")
    head_dim: int | None = _f(None, "size of each attention head; null = hidden_size / num_attention_heads")
    qk_norm: bool = _f(False, "RMSNorm over head_dim on every query and key head after the projection, before "
                              "RoPE (MiniMind-3; self_attn.q_norm / k_norm weights)")
    vocab_size: int = _f(6400, "tokenizer vocabulary size; must match the dataset's tokenizer")
    intermediate_size: int | None = _f(None, "feed-forward width; null = the ffn_rule")
    ffn_rule: str = _f("8/3", "feed-forward width when intermediate_size is null, rounded up to a multiple of "
                              "64: 8/3 (8 * hidden / 3, MiniMind2) or pi (pi * hidden, MiniMind-3)")
    rope_theta: float = _f(1e6, "RoPE base frequency")
    rms_norm_eps: float = _f(1e-5, "RMSNorm epsilon (norms are computed in float32)")
    max_position_embeddings: int = _f(32768, "longest sequence the RoPE table covers")
    dropout: float = _f(0.0, "dropout probability on attention and residual outputs")
    use_moe: bool = _f(False, "replace each feed-forward with a Mixture-of-Experts layer")
    n_routed_experts: int = _f(4, "MoE: routed experts per layer")
    num_experts_per_tok: int = _f(2, "MoE: experts chosen per token (top-k)")
    n_shared_experts: int = _f(1, "MoE: always-on shared experts per layer")
    aux_loss_alpha: float = _f(0.01, "MoE: weight of the load-balance loss (MiniMind's first release used 0.1)")
    seq_aux: bool = _f(True, "MoE: balance loss per sequence (true, MiniMind2) or over the whole batch "
                             "(false, MiniMind-3: E * sum(load * mean score))")
    norm_topk_prob: bool = _f(True, "MoE: renormalise the chosen experts' weights to sum to 1")
    router_balance: str = _f("aux_loss", "MoE: how experts are kept evenly loaded: aux_loss (the balance loss), "
                                         "bias (a per-expert bias on the routing scores for top-k selection "
                                         "only, moved after each step towards even load; no balance loss, "
                                         "DeepSeek-V3's aux-loss-free balancing) or both")
    router_bias_coeff: float = _f(1e-3, "MoE, router_balance bias/both: how far each expert's bias moves per "
                                        "optimizer step (towards the less loaded experts)")

    def __post_init__(self) -> None:
        # A null head_dim is hidden_size / num_attention_heads, filled in here so that every reader
        # (and the config.yaml a run writes) sees the size actually used.
        if self.head_dim is None and self.num_attention_heads > 0 and not self.hidden_size % self.num_attention_heads:
            self.head_dim = self.hidden_size // self.num_attention_heads

    @property
    def ffn_size(self) -> int:
        """The feed-forward width actually used (``intermediate_size`` or the ``ffn_rule``)."""
        if self.intermediate_size:
            return self.intermediate_size
        return default_ffn_size(self.hidden_size, self.ffn_rule)

    def validate(self) -> None:
        _positive(self, "model", ["hidden_size", "num_hidden_layers", "num_attention_heads",
                                  "num_key_value_heads", "vocab_size", "max_position_embeddings"])
        if self.head_dim is not None and self.head_dim <= 0:
            raise ConfigError(f"model.head_dim={self.head_dim} must be > 0 or null")
        if self.head_dim is None and self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"model.hidden_size={self.hidden_size} is not divisible by "
                f"model.num_attention_heads={self.num_attention_heads}",
                "or set model.head_dim to the size of each head")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(
                f"model.num_attention_heads={self.num_attention_heads} is not a multiple of "
                f"model.num_key_value_heads={self.num_key_value_heads}")
        if self.head_dim % 2:
            raise ConfigError(f"head_dim={self.head_dim} must be even for RoPE")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout={self.dropout} must be in [0, 1)")
        if self.intermediate_size is not None and self.intermediate_size <= 0:
            raise ConfigError(f"model.intermediate_size={self.intermediate_size} must be > 0 or null")
        if self.ffn_rule not in FFN_RULES:
            raise ConfigError(f"model.ffn_rule={self.ffn_rule!r} is not one of {', '.join(FFN_RULES)}"
                              + suggest(self.ffn_rule, FFN_RULES))
        if self.router_balance not in ROUTER_BALANCES:
            raise ConfigError(f"model.router_balance={self.router_balance!r} is not one of "
                              f"{', '.join(ROUTER_BALANCES)}" + suggest(self.router_balance, ROUTER_BALANCES))
        if not self.router_bias_coeff >= 0:
            raise ConfigError(f"model.router_bias_coeff={self.router_bias_coeff} must be >= 0")
        if self.router_balance != "aux_loss" and not self.use_moe:
            raise ConfigError(f"model.router_balance={self.router_balance} balances the experts of a MoE model, "
                              "and this model is dense (model.use_moe=false): it would do nothing",
                              "add --set model.use_moe=true (or --use-moe), or leave model.router_balance out")
        if self.use_moe:
            _positive(self, "model", ["n_routed_experts", "num_experts_per_tok"])
            if self.n_shared_experts < 0:
                raise ConfigError(f"model.n_shared_experts={self.n_shared_experts} must be >= 0")
            if self.num_experts_per_tok > self.n_routed_experts:
                raise ConfigError(
                    f"model.num_experts_per_tok={self.num_experts_per_tok} exceeds "
                    f"model.n_routed_experts={self.n_routed_experts}")
            if self.num_experts_per_tok == 1 and self.norm_topk_prob and self.router_balance == "bias":
                # The single chosen weight renormalises to exactly 1, so the language-model loss gives
                # the router no gradient; MiniMind-3 trains it this way through the balance loss
                # alone, but with router_balance=bias there is none and the router never moves.
                raise ConfigError(
                    "model.num_experts_per_tok=1 with model.norm_topk_prob=true and model.router_balance=bias "
                    "leaves the router without gradient",
                    "set model.norm_topk_prob=false, use top-k >= 2, or router_balance aux_loss/both")


@dataclass
class DataConfig:
    """Where the training tokens come from and how they are cut into samples."""

    path: str | None = _f(None, "dataset directory made by `minimind prepare` (or a .jsonl to prepare first)")
    max_seq_len: int = _f(512, "tokens per training sample")
    packing: bool = _f(True, "pack documents into full windows (no padding); false = MiniMind's padded rows")
    doc_mask: bool = _f(False, "document-aware packing: attention stays inside each document and RoPE positions "
                               "restart at 0 at each document start (a window's first, partial document counts "
                               "from the window start); with packing=false it changes nothing (each padded row "
                               "is one document from position 0 already)")
    num_workers: int = _f(0, "data-loading worker processes (0 = in the trainer process)")
    seq_len_schedule: list | None = _f(None, "sequence-length curriculum: [[fraction of the run, seq_len], ...], "
                                             "e.g. [[0, 128], [0.3, 256], [0.6, 512]]; each seq_len divides "
                                             "max_seq_len, tokens per step stay constant (null = off)")

    def validate(self) -> None:
        _positive(self, "data", ["max_seq_len"])
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers={self.num_workers} must be >= 0")
        check_schedule(self.seq_len_schedule, self.max_seq_len, self.packing)


SCHEDULES = ("minimind", "cosine", "constant")
OPTIMIZERS = ("adamw", "muon")
LENGTH_CHANGES = ("replan", "keep")
DTYPES = ("auto", "bf16", "fp16", "fp32")
AUTO = "auto"


@dataclass
class TrainConfig:
    """The optimisation loop."""

    epochs: int = _f(1, "passes over the training data")
    max_steps: int | None = _f(None, "stop after this many optimizer steps (null = run all epochs)")
    batch_size: int | str = _f(32, "samples per micro-batch per process, or auto: the largest that fits in memory "
                                   "(accumulation_steps then keeps samples_per_step)")
    accumulation_steps: int = _f(8, "micro-batches per optimizer step")
    samples_per_step: int | None = _f(None, "batch_size auto: samples per optimizer step per process "
                                            "(null = the batch_size set before auto x accumulation_steps)")
    learning_rate: float = _f(5e-4, "peak learning rate")
    optimizer: str = _f("adamw", "muon (every shipped profile): Muon (torch >= 2.9) for the hidden weight "
                                 "matrices, AdamW (learning_rate, weight_decay, betas) for embeddings, norms and "
                                 "the MoE router; or adamw for everything (also what a config that names no "
                                 "optimizer, from before Muon existed, trained with)")
    muon_lr: float = _f(0.02, "muon: peak learning rate of the Muon matrices; the lr schedule scales it like "
                              "learning_rate")
    muon_weight_decay: float = _f(0.0, "muon: decoupled weight decay of the Muon matrices")
    muon_momentum: float = _f(0.95, "muon: momentum (Nesterov)")
    schedule: str = _f("minimind", "lr schedule: minimind (lr/10 + cosine, starts at 1.1*lr), cosine, constant")
    warmup_steps: int = _f(0, "linear warm-up steps (cosine and constant schedules)")
    min_lr_ratio: float = _f(0.1, "cosine: final lr as a fraction of the peak")
    on_length_change: str = _f("replan", "when a resume changes the run's length: replan (decay from the current "
                                         "lr to the final lr over the remaining steps, no jump) or keep (the "
                                         "original plan: ends early, or stays at its final lr past its end)")
    weight_decay: float = _f(0.0, "AdamW weight decay, applied to matrices only")
    beta1: float = _f(0.9, "AdamW beta1")
    beta2: float = _f(0.95, "AdamW beta2")
    grad_clip: float = _f(1.0, "clip gradients to this global norm (0 = off)")
    dtype: str = _f("auto", "precision: auto, bf16, fp16 or fp32 (auto picks the fastest supported)")
    device: str = _f("auto", "auto, cpu, cuda or cuda:N")
    compile: bool = _f(False, "torch.compile the model: slower start (about a minute), faster steps")
    seed: int = _f(42, "seed for weights, data order and dropout")
    log_interval: int = _f(10, "optimizer steps between step events / log lines")
    eval_interval: int = _f(0, "optimizer steps between validation passes (0 = only at the end)")
    eval_samples: int = _f(640, "samples (windows, or documents with packing off) in the validation set: the "
                                "first ones of the validation split, scored at every evaluation whatever the "
                                "micro-batch, world size or dtype")
    save_interval: int = _f(500, "optimizer steps between checkpoints (0 = only at the end and on signals)")
    keep_last: int = _f(3, "checkpoints to keep in the run directory")
    sample_prompts: list[str] | None = _f(None, "prompts the model continues greedily at every evaluation "
                                                "(null = the first words of a few validation documents)")
    sample_tokens: int = _f(48, "tokens per sample continuation (0 = no samples)")

    @property
    def auto_batch(self) -> bool:
        return self.batch_size == AUTO

    def validate(self) -> None:
        if isinstance(self.batch_size, str) and self.batch_size != AUTO:
            raise ConfigError(f"train.batch_size={self.batch_size!r} is not a number or auto"
                              + suggest(self.batch_size, [AUTO]))
        if self.samples_per_step is not None and self.samples_per_step <= 0:
            raise ConfigError(f"train.samples_per_step={self.samples_per_step} must be > 0 or null")
        _positive(self, "train", ["epochs", "accumulation_steps", "log_interval", "eval_samples", "keep_last"]
                  + ([] if self.auto_batch else ["batch_size"]))
        if self.max_steps is not None and self.max_steps <= 0:
            raise ConfigError(f"train.max_steps={self.max_steps} must be > 0 or null")
        if not self.learning_rate > 0:
            raise ConfigError(f"train.learning_rate={self.learning_rate} must be > 0")
        for name, allowed in (("schedule", SCHEDULES), ("dtype", DTYPES), ("on_length_change", LENGTH_CHANGES),
                              ("optimizer", OPTIMIZERS)):
            value = getattr(self, name)
            if value not in allowed:
                raise ConfigError(f"train.{name}={value!r} is not one of {', '.join(allowed)}"
                                  + suggest(value, allowed))
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ConfigError(f"train.device={self.device!r} is not one of auto, cpu, cuda, cuda:N")
        for name in ("warmup_steps", "eval_interval", "save_interval", "sample_tokens"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name}={getattr(self, name)} must be >= 0")
        if not self.muon_lr > 0:
            raise ConfigError(f"train.muon_lr={self.muon_lr} must be > 0")
        if not 0.0 <= self.muon_momentum < 1.0:
            raise ConfigError(f"train.muon_momentum={self.muon_momentum} must be in [0, 1)")
        for name in ("weight_decay", "grad_clip", "muon_weight_decay"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name}={getattr(self, name)} must be >= 0")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"train.min_lr_ratio={self.min_lr_ratio} must be in [0, 1]")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"train.{name}={getattr(self, name)} must be in [0, 1)")


@dataclass
class RunConfig:
    """Where a run writes and what it is called."""

    out_dir: str = _f("out", "output root: runs go to <out_dir>/runs/<name>, weights to <out_dir>/pretrain_*.pth")
    name: str | None = _f(None, "run name (null = <profile>-<date>-<time>)")
    profile: str | None = _f(None, "the profile this config came from (filled in automatically)")
    wandb: bool = _f(False, "also log metrics to Weights & Biases (needs `pip install wandb`; offline works)")
    tensorboard: bool = _f(False, "also write TensorBoard scalars to <run>/tensorboard (needs tensorboard)")

    def validate(self) -> None:
        if self.name is not None and (not self.name or "/" in self.name or self.name in (".", "..")):
            raise ConfigError(f"run.name={self.name!r} must be a plain directory name")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self) -> Config:
        for section in SECTIONS:
            getattr(self, section).validate()
        if self.data.max_seq_len > self.model.max_position_embeddings:
            raise ConfigError(
                f"data.max_seq_len={self.data.max_seq_len} exceeds "
                f"model.max_position_embeddings={self.model.max_position_embeddings}")
        return self

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> Config:
        """Build and validate a config; unknown sections/keys and wrong types are errors."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
        data = _upgrade(data)
        sections: dict[str, Any] = {}
        for name, values in data.items():
            if name not in SECTIONS:
                raise ConfigError(f"{source}: unknown section {name!r}" + suggest(name, SECTIONS))
            if values is None:
                values = {}
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: section {name!r} must be a mapping, got {type(values).__name__}")
            section_cls = SECTIONS[name]
            known = {f.name: f for f in dataclasses.fields(section_cls)}
            kwargs = {}
            for key, value in values.items():
                if key not in known:
                    raise ConfigError(f"{source}: unknown key {name}.{key}"
                                      + suggest(key, known, prefix=f"{name}."))
                kwargs[key] = check_type(f"{name}.{key}", value, field_type(section_cls, key), source)
            sections[name] = section_cls(**kwargs)
        return cls(**sections).validate()


SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig, "run": RunConfig}


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Older configs (a run directory's config.yaml) in today's keys: ``train.eval_batches``
    (micro-batches per validation pass) becomes the ``train.eval_samples`` it scored."""
    train = data.get("train")
    if not isinstance(train, dict) or "eval_batches" not in train:
        return data
    train = dict(train)
    batches, batch = train.pop("eval_batches"), train.get("batch_size", TrainConfig.batch_size)
    if isinstance(batches, int) and not isinstance(batches, bool):
        train["eval_samples"] = batches * (batch if isinstance(batch, int) else 1)
    return {**data, "train": train}


def describe_fields() -> list[tuple[str, str, Any, str]]:
    """(key, type, default, doc) for every config key, for help texts and docs."""
    rows = []
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rows.append((f"{section}.{f.name}", type_name(hints[f.name]), default, f.metadata.get("doc", "")))
    return rows


# ---------------------------------------------------------------------------------------------
# Profiles

def profile_dirs() -> list[Path]:
    """Where shipped profiles live: inside the installed package, or the repo's ``profiles/``."""
    here = Path(__file__).resolve().parent
    return [d for d in (here / "profiles", here.parent / "profiles") if d.is_dir()]


def available_profiles() -> list[str]:
    names: set[str] = set()
    for d in profile_dirs():
        names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)


def find_profile(name_or_path: str) -> Path:
    """A profile name (``moe``) or a path to a YAML file."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise ConfigError(f"profile file {name_or_path} does not exist")
        return candidate
    for d in profile_dirs():
        path = d / f"{name_or_path}.yaml"
        if path.is_file():
            return path
    names = available_profiles()
    raise ConfigError(f"unknown profile {name_or_path!r} (available: {', '.join(names)})"
                      + suggest(name_or_path, names))


def load_profile_dict(name_or_path: str, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a profile and the chain it ``extends:``, merged section by section (child wins)."""
    path = find_profile(name_or_path).resolve()
    if path in _seen:
        chain = " -> ".join(p.name for p in (*_seen, path))
        raise ConfigError(f"profile {path.name}: circular extends ({chain})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"profile {path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"profile {path}: expected a mapping at the top level")
    parent = data.pop("extends", None)
    merged: dict[str, Any] = {}
    if parent is not None:
        base = str(parent)
        if base.endswith((".yaml", ".yml")) and not Path(base).is_absolute():
            base = str(path.parent / base)
        merged = load_profile_dict(base, (*_seen, path))
    for section, values in data.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = values
    return merged


def parse_override(text: str) -> tuple[str, str, str]:
    """``model.hidden_size=256`` -> ("model", "hidden_size", "256")."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set model.hidden_size=256")
    section, dot, name = key.partition(".")
    if not dot or not name:
        raise ConfigError(f"--set {text!r}: the key must be SECTION.NAME, e.g. train.learning_rate")
    if section not in SECTIONS:
        raise ConfigError(f"--set {key}: unknown section {section!r}" + suggest(section, SECTIONS))
    known = [f.name for f in dataclasses.fields(SECTIONS[section])]
    if name not in known:
        raise ConfigError(f"--set {key}: unknown key" + suggest(name, known, prefix=f"{section}."))
    return section, name, value.strip()


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set`` strings to a profile dict, converting each value to its field's type."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for text in overrides:
        section, name, raw = parse_override(text)
        typ = field_type(SECTIONS[section], name)
        out.setdefault(section, {})
        if not isinstance(out[section], dict):
            out[section] = {}
        out[section][name] = convert_string(f"{section}.{name}", raw, typ)
    return out


def resolve(profile: str = "default", overrides: list[str] | None = None) -> Config:
    """Profile + overrides -> a validated Config (``run.profile`` records the profile)."""
    data, batch_before_auto = load_profile_dict(profile), None
    for text in [""] + list(overrides or []):  # the profile, then each override: the last int batch size
        data = apply_overrides(data, [text]) if text else data
        batch = data["train"].get("batch_size") if isinstance(data.get("train"), dict) else None
        batch_before_auto = batch if isinstance(batch, int) and not isinstance(batch, bool) else batch_before_auto
    _keep_samples_per_step(data, batch_before_auto)
    data.setdefault("run", {})
    if isinstance(data["run"], dict) and not data["run"].get("profile"):
        data["run"]["profile"] = Path(profile).stem if profile.endswith((".yaml", ".yml")) else profile
    return Config.from_dict(data, source=f"profile {profile}")


def _keep_samples_per_step(data: dict[str, Any], batch_before_auto: Any) -> None:
    """``batch_size: auto`` keeps the samples per step that the batch size before it gave."""
    train = data.get("train")
    if isinstance(train, dict) and train.get("batch_size") == AUTO and not train.get("samples_per_step"):
        before = batch_before_auto if isinstance(batch_before_auto, int) else TrainConfig.batch_size
        accumulation = train.get("accumulation_steps", TrainConfig.accumulation_steps)
        if isinstance(accumulation, int):
            train["samples_per_step"] = before * accumulation


def save_config(config: Config, path: Path) -> None:
    """Write a resolved config as YAML (what the trainer reads from the run directory)."""
    atomic_write(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def read_config_data(path: Path) -> dict[str, Any]:
    """A resolved config file (a run's or a checkpoint's ``config.yaml``) as plain data."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: invalid YAML ({exc})") from None
    return data or {}


def load_config(path: Path) -> Config:
    return Config.from_dict(read_config_data(path), source=str(path))


_SCHED_KEY = "data.seq_len_schedule"
_SCHED_EG = "e.g. [[0, 128], [0.3, 256], [0.6, 512]]"


def check_schedule(schedule: Any, max_seq_len: int, packing: bool) -> None:
    """One clear ``ConfigError`` for a schedule the trainer cannot follow; None and [] mean off."""
    if not schedule:
        return
    if not isinstance(schedule, list):
        raise ConfigError(f"{_SCHED_KEY} must be a list of [fraction, seq_len] pairs, got {schedule!r}", _SCHED_EG)
    if not packing:
        raise ConfigError(f"{_SCHED_KEY} needs packed samples: data.packing=false (one document per row) cannot be "
                          f"cut into shorter windows", "set data.packing=true or remove the schedule")
    previous = None
    for i, phase in enumerate(schedule):
        if (not isinstance(phase, (list, tuple)) or len(phase) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in phase)):
            raise ConfigError(f"{_SCHED_KEY}[{i}]={phase!r} is not a [fraction, seq_len] pair of numbers", _SCHED_EG)
        fraction, length = phase
        if i == 0 and fraction != 0:
            raise ConfigError(f"{_SCHED_KEY}: the first phase must start at fraction 0, not {fraction}", _SCHED_EG)
        if not 0 <= fraction < 1:
            raise ConfigError(f"{_SCHED_KEY}[{i}]: fraction {fraction} must be in [0, 1) (a share of the run)",
                              _SCHED_EG)
        if previous is not None and fraction <= previous:
            raise ConfigError(f"{_SCHED_KEY}[{i}]: fraction {fraction} must be greater than the one before "
                              f"({previous})",
                              "list the phases in the order they start")
        previous = fraction
        if length != int(length) or length <= 0:
            raise ConfigError(f"{_SCHED_KEY}[{i}]: seq_len {length} must be a positive whole number")
        if length > max_seq_len:
            raise ConfigError(f"{_SCHED_KEY}[{i}]: seq_len {int(length)} exceeds data.max_seq_len={max_seq_len}",
                              "the curriculum ends at data.max_seq_len at the longest")
        if max_seq_len % int(length):
            divisors = [d for d in (max_seq_len // 8, max_seq_len // 4, max_seq_len // 2) if d and max_seq_len % d == 0]
            raise ConfigError(
                f"{_SCHED_KEY}[{i}]: seq_len {int(length)} does not divide data.max_seq_len={max_seq_len} (each "
                f"{max_seq_len}-token sample is cut into equal windows, so tokens per step stay the same)",
                f"use a divisor such as {', '.join(map(str, divisors))}" if divisors else None)


def _positive(obj: Any, section: str, names: list[str]) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            raise ConfigError(f"{section}.{name}={getattr(obj, name)} must be > 0")


# --------------------------------------------------------------------------- comparing configs
RUN_SECTIONS = ("run",)  # names and output places differ between any two runs: never a difference


def flatten_config(config: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}`` (a resolved config as dotted keys)."""
    flat: dict[str, Any] = {}
    for key, value in (config or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_config(value, name + "."))
        else:
            flat[name] = value
    return flat


def differing_settings(configs: list[dict[str, Any] | None]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The settings of resolved configs (dicts) that are not the same in all of them, the ``run``
    section aside: each config flattened, and ``{dotted key: short name}`` of the differing keys in
    order. Settings all configs have come first (train, then model, then data), ones only some have
    last; a key is named by its last part unless two differing keys share it."""
    flats = [{k: v for k, v in flatten_config(c).items() if k.split(".")[0] not in RUN_SECTIONS}
             for c in configs]
    keys = {k for flat in flats for k in flat}
    order = {"train": 0, "model": 1, "data": 2}
    ordered = sorted(keys, key=lambda k: (not all(k in flat for flat in flats), order.get(k.split(".")[0], 3), k))
    differing = [k for k in ordered if len({repr(flat.get(k)) for flat in flats}) > 1]
    leaves = [k.rsplit(".", 1)[-1] for k in differing]
    return flats, {k: (leaf if leaves.count(leaf) == 1 else k) for k, leaf in zip(differing, leaves, strict=True)}
