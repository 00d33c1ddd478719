"""Using loaded weights: a ready model, the tokenizer that belongs with them, a text sample."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from minimind.errors import CheckpointError
from minimind.weights.load import TOKENIZER_MARKERS, LoadedWeights


def build_model(loaded: LoadedWeights):
    """A MiniMindLM (eval mode, float32) holding the loaded weights."""
    from minimind.model import MiniMindLM

    model = MiniMindLM(loaded.config)
    model.load_state_dict(loaded.state_dict, strict=True)
    return model.eval()


def _tokenizer_dir_of(path: Path) -> Path | None:
    for cand in (path, path / "tokenizer"):
        if cand.is_dir() and any((cand / n).is_file() for n in TOKENIZER_MARKERS):
            return cand
    return None


def find_tokenizer(loaded: LoadedWeights, explicit: str | Path | None = None) -> Path | None:
    """--tokenizer, then the run's dataset, the HF dir itself, then <pth dir>/data/tokenizer."""
    if explicit is not None:
        found = _tokenizer_dir_of(Path(explicit))
        if found is None:
            raise CheckpointError(f"{explicit}: not a tokenizer directory (no tokenizer.json or tokenizer_config.json)")
        return found
    for c in loaded.data_candidates():
        found = _tokenizer_dir_of(c)
        if found is not None:
            return found
    return None


def generate_text(loaded: LoadedWeights, tokenizer_dir: Path, prompt: str, max_new_tokens: int = 64,
                  temperature: float = 0.0, top_p: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """A continuation of ``prompt``: greedy at temperature 0, else seeded nucleus sampling."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = build_model(loaded)
    # MiniMind's tokenizer puts bos at 1 and eos at 2; a tokenizer without them gets those ids.
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else 1
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 2
    ids = [bos] + tokenizer.encode(prompt, add_special_tokens=False)
    gen = torch.Generator().manual_seed(seed)
    new, stopped = continue_tokens(model, ids, max_new_tokens, eos, temperature=temperature, top_p=top_p,
                                   generator=gen)
    return {"prompt": prompt, "completion": tokenizer.decode(new, skip_special_tokens=True),
            "new_tokens": len(new), "max_new_tokens": max_new_tokens, "stopped": stopped,
            "tokenizer": str(tokenizer_dir), "temperature": temperature, "top_p": top_p}


@torch.no_grad()
def continue_tokens(model, ids: list[int], max_new_tokens: int, eos_token_id: int | None, *,
                    temperature: float = 0.0, top_p: float = 1.0, generator: torch.Generator | None = None,
                    deadline: float | None = None) -> tuple[list[int], str]:
    """The new token ids ``model`` writes after ``ids`` (greedy at temperature 0, on the model's
    device), and why it stopped: "eos", "max_new_tokens", "time" (past ``deadline``, a
    ``time.perf_counter()`` value) or "context" (the model's last position)."""
    device = next(model.parameters()).device
    input_ids = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
    out = model.generate(input_ids, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
                         eos_token_id=eos_token_id, generator=generator, deadline=deadline)
    new = out[0, len(ids):].tolist()
    if new and new[-1] == eos_token_id:
        stopped = "eos"
    elif len(new) >= max_new_tokens:
        stopped = "max_new_tokens"
    elif deadline is not None and time.perf_counter() >= deadline:
        stopped = "time"
    else:
        stopped = "context"
    return new, stopped
