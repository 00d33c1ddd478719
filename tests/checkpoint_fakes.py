"""Small real checkpoints in the formats the trainer writes (run dir, checkpoint dir, .pth) and a
tiny tokenizer, for the inspect/export tests."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import torch

from minimind.config import ModelConfig, resolve, save_config
from minimind.model import MiniMindLM

TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, vocab_size=300,
            max_position_embeddings=256)


def tiny_config(**overrides) -> ModelConfig:
    return ModelConfig(**{**TINY, **overrides})


def tiny_model(seed: int = 0, **overrides) -> MiniMindLM:
    torch.manual_seed(seed)
    return MiniMindLM(tiny_config(**overrides)).eval()


def write_checkpoint(ckpt_dir: Path, model: MiniMindLM, profile: str = "tiny", step: int = 100,
                     complete: bool = True, data_path: str | None = None) -> Path:
    """A checkpoint directory as the trainer writes it; meta.json last (only when complete)."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    cfg = resolve(profile)
    cfg.model = model.config
    cfg.data.path = data_path
    cfg.data.max_seq_len = min(cfg.data.max_seq_len, model.config.max_position_embeddings)
    torch.save(model.state_dict(), ckpt_dir / "model.pt")
    torch.save({"state": {}, "param_groups": [{"lr": 1e-3, "params": []}]}, ckpt_dir / "optimizer.pt")
    torch.save({"rng_torch": torch.get_rng_state(), "scaler": {"scale": 1024.0}, "data_position": 7},
               ckpt_dir / "state.pt")
    save_config(cfg, ckpt_dir / "config.yaml")
    if complete:
        files = {n: hashlib.sha256((ckpt_dir / n).read_bytes()).hexdigest()
                 for n in ("model.pt", "optimizer.pt", "state.pt", "config.yaml")}
        meta = {"format_version": 1, "step": step, "epoch": 0, "tokens_seen": step * 4096, "loss": 4.25,
                "loss_ema": 4.5, "val_loss": 4.75, "time": 1_700_000_000.0, "elapsed_s": 3723.0,
                "profile": profile, "run": ckpt_dir.parent.parent.name,
                "dataset": {"path": data_path or "out/data", "fingerprint": "f" * 64}, "world_size": 1,
                "dtype": "fp32", "params_total": 0, "params_active": 0, "reason": "interval", "files": files}
        (ckpt_dir / "meta.json").write_text(json.dumps(meta))
    return ckpt_dir


def write_run(run_dir: Path, model: MiniMindLM, steps=(100, 200), incomplete_step: int | None = 300,
              data_path: str | None = None) -> Path:
    for step in steps:
        write_checkpoint(run_dir / "checkpoints" / f"step_{step:08d}", model, step=step, data_path=data_path)
    if incomplete_step is not None:
        write_checkpoint(run_dir / "checkpoints" / f"step_{incomplete_step:08d}", model, step=incomplete_step,
                         complete=False, data_path=data_path)
    first = run_dir / "checkpoints" / f"step_{(steps or (incomplete_step,))[0]:08d}"
    (run_dir / "config.yaml").write_bytes((first / "config.yaml").read_bytes())  # the run's resolved config
    (run_dir / "events.jsonl").write_text("")
    return run_dir


def write_tokenizer(directory: Path, vocab_size: int = 300, text: list[str] | None = None) -> Path:
    """A byte-level BPE tokenizer with MiniMind's special tokens (pad 0, bos 1, eos 2)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|im_start|>",
                                                                         "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    text = text or ["the quick brown fox jumps over the lazy dog", "hello world, hello tokenizer"] * 20
    tok.train_from_iterator(text, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", unk_token="<|endoftext|>")
    directory.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(directory))
    return directory


# The earlier MiniMind layout, written out independently of minimind.weights.layouts.
_TO_V1 = [
    (r"^model\.embed_tokens\.weight$", "tok_embeddings.weight"), (r"^lm_head\.weight$", "output.weight"),
    (r"^model\.norm\.weight$", "norm.weight"),
    (r"^model\.layers\.(\d+)\.self_attn\.q_proj\.", r"layers.\1.attention.wq."),
    (r"^model\.layers\.(\d+)\.self_attn\.k_proj\.", r"layers.\1.attention.wk."),
    (r"^model\.layers\.(\d+)\.self_attn\.v_proj\.", r"layers.\1.attention.wv."),
    (r"^model\.layers\.(\d+)\.self_attn\.o_proj\.", r"layers.\1.attention.wo."),
    (r"^model\.layers\.(\d+)\.input_layernorm\.", r"layers.\1.attention_norm."),
    (r"^model\.layers\.(\d+)\.post_attention_layernorm\.", r"layers.\1.ffn_norm."),
    (r"^model\.layers\.(\d+)\.mlp\.shared_experts\.0\.", r"layers.\1.feed_forward.shared_experts."),
    (r"^model\.layers\.(\d+)\.mlp\.", r"layers.\1.feed_forward."),
]


def to_earlier_layout(state_dict: dict[str, torch.Tensor], head_dim: int) -> dict[str, torch.Tensor]:
    """What an earlier-MiniMind checkpoint of the same function holds: renamed keys, and q/k rows in
    that release's interleaved-pair RoPE order (head rows [x0..x_{d/2-1}, y0..] -> [x0, y0, x1, y1...])."""
    out = {}
    for key, value in state_dict.items():
        new = key
        for pattern, repl in _TO_V1:
            if re.match(pattern, new):
                new = re.sub(pattern, repl, new)
                break
        new = new.replace("gate_proj", "w1").replace("down_proj", "w2").replace("up_proj", "w3")
        if new.endswith(("attention.wq.weight", "attention.wk.weight")):
            rows = value.shape[0]
            order = []
            for h in range(rows // head_dim):
                for j in range(head_dim // 2):
                    order += [h * head_dim + j, h * head_dim + head_dim // 2 + j]
            value = value[order]
        out[new] = value.clone()
    return out
