"""Export loaded weights for other tools: a Hugging Face directory or MiniMind's ``.pth``.

Stock transformers classes wherever one computes exactly what our model does: MiniMind2 dense ->
``LlamaForCausalLM``; MiniMind-3 (QK-norm) dense -> ``Qwen3ForCausalLM``, MoE without shared
experts or a routing bias -> ``Qwen3MoeForCausalLM``. Other MoE models use ``minimind_moe``
(``minimind.hf``). Every HF export is built beside its target and moved into place with
``minimind.files.replace_dir``, and carries a marker file (``.minimind-export.json``: format,
source, time). ``--force`` replaces only a directory holding that marker, and never the source
being exported or a directory above it, so a wrong OUT argument cannot delete a run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from minimind import __version__
from minimind.checkpoint import save_weights
from minimind.config import ModelConfig
from minimind.errors import CheckpointError
from minimind.files import absolute, atomic_write, honour_umask, refuse_replacing_cwd, replace_dir, writing
from minimind.weights.load import LoadedWeights

EXPORT_MARKER = ".minimind-export.json"
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# Files of a tokenizer directory that are not the tokenizer (it may be an earlier export).
_NOT_TOKENIZER_FILES = {"config.json", "generation_config.json", "model.safetensors.index.json", EXPORT_MARKER}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def _within(path: Path, ancestor: Path) -> bool:
    """``path`` is ``ancestor`` or lies below it (symlinks resolved)."""
    path, ancestor = path.resolve(), ancestor.resolve()
    return path == ancestor or ancestor in path.parents


def check_export_target(out: str | Path, to: str, force: bool = False,
                        source: str | Path | Iterable[str | Path] | None = None) -> None:
    """Refuse an output that would overwrite something it should not, before any slow work.

    ``source`` is what is being exported (a path or several): with ``--force`` the output may not
    be it, hold it, or lie inside it, and a directory is replaced only if it is an earlier export."""
    out = Path(out)
    sources = [Path(source)] if isinstance(source, (str, Path)) else [Path(s) for s in source or ()]
    if to == "pth":
        if out.suffix not in (".pth", ".pt"):
            raise CheckpointError(f"{out}: the output of --to pth should end in .pth")
        if not out.exists():
            return
        if not force:
            raise CheckpointError(f"{out}: file exists (pass --force to replace it)")
        if out.is_dir():
            raise CheckpointError(f"{out}: is a directory; --to pth writes one file",
                                  hint="name a .pth file as the output")
        if any(_within(out, s) for s in sources):
            raise CheckpointError(f"{out}: is part of the source being exported; refusing to overwrite it",
                                  hint="write the export to another file")
        return
    if not out.exists():
        return
    if not out.is_dir():
        raise CheckpointError(f"{out}: exists and is not a directory")
    if not any(out.iterdir()):
        return
    if not force:
        raise CheckpointError(f"{out}: directory exists and is not empty (pass --force to replace it)")
    refuse_replacing_cwd(out)
    if any(_within(s, out) for s in sources):
        raise CheckpointError(f"{out}: holds the source being exported; --force would delete it",
                              hint="export to another directory")
    if not (out / EXPORT_MARKER).is_file():
        raise CheckpointError(f"{out}: not a previous minimind export (no {EXPORT_MARKER}); --force only "
                              f"replaces earlier exports", hint="remove it yourself or choose another directory")


def _sources(loaded: LoadedWeights) -> list[Path]:
    return [loaded.path, loaded.weights_file]


def hf_llama_config(cfg: ModelConfig, dtype: str = "fp32"):
    """The stock transformers LlamaConfig of a dense MiniMind model (tied head, MiniMind's token ids)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.ffn_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads, head_dim=cfg.head_dim, hidden_act="silu",
        max_position_embeddings=cfg.max_position_embeddings, rms_norm_eps=cfg.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.rope_theta)},
        tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        attention_bias=False, mlp_bias=False, attention_dropout=0.0, dtype=_DTYPES[dtype],
        architectures=["LlamaForCausalLM"])


def _hf_common(cfg: ModelConfig, dtype: str) -> dict[str, Any]:
    """Config fields every stock export shares (tied head, MiniMind's token ids, no biases)."""
    return dict(vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=cfg.ffn_size,
                num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
                num_key_value_heads=cfg.num_key_value_heads, head_dim=cfg.head_dim, hidden_act="silu",
                max_position_embeddings=cfg.max_position_embeddings, rms_norm_eps=cfg.rms_norm_eps,
                rope_parameters={"rope_type": "default", "rope_theta": float(cfg.rope_theta)},
                tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                attention_bias=False, attention_dropout=0.0, dtype=_DTYPES[dtype])


def hf_qwen3_config(cfg: ModelConfig, dtype: str = "fp32"):
    """The stock Qwen3Config (dense) or Qwen3MoeConfig (MoE) of a MiniMind-3 model. Every field
    that decides the computation is passed explicitly, not left to transformers' defaults."""
    from transformers import Qwen3Config, Qwen3MoeConfig

    common = _hf_common(cfg, dtype)
    if not cfg.use_moe:
        return Qwen3Config(**common, use_sliding_window=False, sliding_window=None,
                           architectures=["Qwen3ForCausalLM"])
    return Qwen3MoeConfig(**common, use_sliding_window=False, sliding_window=None,
                          num_experts=cfg.n_routed_experts, num_experts_per_tok=cfg.num_experts_per_tok,
                          moe_intermediate_size=cfg.ffn_size, norm_topk_prob=cfg.norm_topk_prob,
                          decoder_sparse_step=1, mlp_only_layers=[], output_router_logits=False,
                          router_aux_loss_coef=cfg.aux_loss_alpha, architectures=["Qwen3MoeForCausalLM"])


def hf_family(cfg: ModelConfig) -> str:
    """The model_type an HF export of ``cfg`` gets: llama, qwen3, qwen3_moe or minimind_moe.
    Qwen3-MoE has no shared experts and picks experts by the router's scores alone (no bias)."""
    if not cfg.use_moe:
        return "qwen3" if cfg.qk_norm else "llama"
    if cfg.qk_norm and cfg.n_shared_experts == 0 and cfg.router_balance == "aux_loss":
        return "qwen3_moe"
    return "minimind_moe"


def fuse_experts(sd: dict[str, torch.Tensor], cfg: ModelConfig, model_keys: set[str]) -> dict[str, torch.Tensor]:
    """Per-expert gate/up/down matrices as Qwen3-MoE's fused tensors where the transformers model
    has them (``mlp.experts.gate_up_proj`` (E, 2F, D), ``mlp.experts.down_proj`` (E, D, F))."""
    if "model.layers.0.mlp.experts.gate_up_proj" not in model_keys:
        return sd  # an older transformers: one module per expert, our key names
    out = {k: v for k, v in sd.items() if ".mlp.experts." not in k}
    for layer in range(cfg.num_hidden_layers):
        p = f"model.layers.{layer}.mlp.experts"
        experts = range(cfg.n_routed_experts)
        gate = torch.stack([sd[f"{p}.{e}.gate_proj.weight"] for e in experts])
        up = torch.stack([sd[f"{p}.{e}.up_proj.weight"] for e in experts])
        out[f"{p}.gate_up_proj"] = torch.cat([gate, up], dim=1)
        out[f"{p}.down_proj"] = torch.stack([sd[f"{p}.{e}.down_proj.weight"] for e in experts])
    return out


def _hf_model(cfg: ModelConfig, dtype: str):
    """An empty (meta-device) transformers model for ``cfg``, and its model_type."""
    family = hf_family(cfg)
    if family in ("qwen3", "qwen3_moe"):
        from transformers import Qwen3ForCausalLM, Qwen3MoeForCausalLM

        model_cls = Qwen3ForCausalLM if family == "qwen3" else Qwen3MoeForCausalLM
        with torch.device("meta"):
            return model_cls(hf_qwen3_config(cfg, dtype)), family
    if cfg.use_moe:
        from minimind.hf import MiniMindMoEConfig, MiniMindMoEForCausalLM

        hf_cfg = MiniMindMoEConfig.from_model_config(cfg, dtype=_DTYPES[dtype],
                                                     architectures=["MiniMindMoEForCausalLM"])
        with torch.device("meta"):
            return MiniMindMoEForCausalLM(hf_cfg), "minimind_moe"
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        return LlamaForCausalLM(hf_llama_config(cfg, dtype)), "llama"


def _copy_tokenizer(tokenizer_dir: Path, dest: Path) -> list[str]:
    """Copy the tokenizer files into ``dest``, never over a file the export itself wrote."""
    copied = []
    for f in sorted(Path(tokenizer_dir).iterdir()):
        if (not f.is_file() or f.name in _NOT_TOKENIZER_FILES or f.suffix in _WEIGHT_SUFFIXES
                or (dest / f.name).exists()):
            continue
        shutil.copy2(f, dest / f.name)
        copied.append(f.name)
    return copied


def add_bos(tokenizer_dir: Path) -> None:
    """Make a tokenizer put bos before every text, as training saw every document (bos + text +
    eos) and as ``inspect --generate`` prompts: then plain ``AutoTokenizer(text)`` gives the ids the
    model expects. Nothing changes where the tokenizer already adds special tokens itself."""
    from tokenizers import Tokenizer, processors

    tokenizer_json, config_json = tokenizer_dir / "tokenizer.json", tokenizer_dir / "tokenizer_config.json"
    if not tokenizer_json.is_file():
        return
    tok = Tokenizer.from_file(str(tokenizer_json))
    current = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("post_processor")
    if current and (current.get("special_tokens") or current.get("type") != "TemplateProcessing"):
        return
    config = json.loads(config_json.read_text(encoding="utf-8")) if config_json.is_file() else {}
    bos = config.get("bos_token")
    bos = bos.get("content") if isinstance(bos, dict) else bos
    bos_id = tok.token_to_id(bos) if bos else None
    if bos_id is None:  # MiniMind's tokenizers put bos at 1 (what generation falls back to as well)
        bos_id, bos = 1, tok.id_to_token(1)
    if bos is None:
        return
    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A:0", pair=f"{bos} $A:0 {bos} $B:1",
                                                       special_tokens=[(bos, bos_id)])
    atomic_write(tokenizer_json, tok.to_str())
    atomic_write(config_json, json.dumps({**config, "add_bos_token": True}, indent=2, ensure_ascii=False) + "\n")


def _marker(loaded: LoadedWeights, fmt: str, **extra: Any) -> str:
    return json.dumps({"format": fmt, "source": str(loaded.path), "weights_file": str(loaded.weights_file),
                       "time": time.time(), "minimind_version": __version__, **extra}, indent=2)


def export_hf(loaded: LoadedWeights, out_dir: str | Path, tokenizer_dir: Path | None = None,
              dtype: str = "fp32", force: bool = False) -> dict[str, Any]:
    """Write a Hugging Face directory: stock Llama (MiniMind2 dense), Qwen3 / Qwen3-MoE (MiniMind-3),
    else ``minimind_moe`` (``hf_family``)."""
    out_dir = absolute(out_dir)  # `.` has no name to build a temporary sibling from
    if dtype not in _DTYPES:
        raise CheckpointError(f"--dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
    check_export_target(out_dir, "hf", force, source=_sources(loaded))
    # Built beside the target (same filesystem), so replace_dir can rename it into place.
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-export-{os.getpid()}")
    with writing(out_dir):
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    try:
        model, kind = _hf_model(loaded.config, dtype)
        sd = {k: v.to(_DTYPES[dtype]) for k, v in loaded.state_dict.items()}
        if kind == "qwen3_moe":
            sd = fuse_experts(sd, loaded.config, set(model.state_dict()))
        model.load_state_dict(sd, strict=True, assign=True)
        model.tie_weights()
        model.save_pretrained(str(tmp))
        copied = _copy_tokenizer(tokenizer_dir, tmp) if tokenizer_dir is not None else []
        if copied:
            add_bos(tmp)
        atomic_write(tmp / EXPORT_MARKER, _marker(loaded, "hf", model_type=kind, dtype=dtype))
        honour_umask(tmp)  # safetensors writes model.safetensors 0600
        replace_dir(tmp, out_dir, markers=(EXPORT_MARKER,))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"out": str(out_dir), "model_type": kind, "dtype": dtype, "tokenizer_files": copied,
            "files": sorted(p.name for p in out_dir.iterdir() if p.name != EXPORT_MARKER)}


def export_pth(loaded: LoadedWeights, out_path: str | Path, force: bool = False) -> dict[str, Any]:
    """MiniMind-compatible weights: native keys, half precision, both tied keys (strict loader)."""
    out_path = Path(out_path)
    check_export_target(out_path, "pth", force, source=_sources(loaded))
    with writing(out_path):
        save_weights(out_path, loaded.state_dict, loaded.config, inferred=loaded.inferred)
    return {"out": str(out_path), "dtype": "float16", "tensors": len(loaded.state_dict),
            "size_bytes": out_path.stat().st_size}
