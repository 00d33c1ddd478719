"""A small real run (real dataset, real model, real optimizer) built in-process for unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from minimind.config import Config, resolve

SMALL = ["model.hidden_size=64", "model.num_hidden_layers=2", "model.num_attention_heads=4",
         "model.num_key_value_heads=2", "model.vocab_size=256", "model.max_position_embeddings=128",
         "data.max_seq_len=32", "train.batch_size=4", "train.accumulation_steps=2", "train.dtype=fp32",
         "train.device=cpu", "train.compile=false", "train.max_steps=16", "train.learning_rate=3e-3"]


def small_config(dataset: Path, out: Path, *extra: str) -> Config:
    return resolve("tiny", [*SMALL, f"data.path={dataset}", f"run.out_dir={out}", *extra])


@pytest.fixture
def make_config(small_dataset, tmp_path):
    return lambda *extra: small_config(small_dataset, tmp_path / "out", *extra)
