"""Live samples made in the trainer: prompts, bounded time, and no effect on training."""

from __future__ import annotations

import torch

from minimind.data.format import TOKENIZER_DIR
from minimind.data.tokenizer import load_tokenizer
from minimind.training import samples as samples_mod
from minimind.training.build import build
from minimind.training.samples import Sampler, default_prompts
from tests.helpers import story_texts
from tests.training.conftest import small_config

TEXT = ["model.vocab_size=320"]


def test_default_prompts_are_the_first_words_of_validation_documents(text_dataset):
    tok = load_tokenizer(text_dataset / TOKENIZER_DIR)
    prompts = default_prompts(text_dataset, tok)
    assert len(prompts) == 3 and len(set(prompts)) == 3
    starts = story_texts(30, seed=1)  # the validation texts of the dataset
    assert all(any(s.startswith(p) for s in starts) for p in prompts)
    assert all(0 < len(p) <= samples_mod.PROMPT_CHARS for p in prompts)


def test_a_round_continues_every_prompt_and_leaves_training_untouched(text_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(samples_mod, "FLOOR_S", 60.0)  # a busy machine must not cut these short
    built = build(small_config(text_dataset, tmp_path, *TEXT, "train.sample_tokens=4",
                               'train.sample_prompts=["Ann sees", "Bob"]'))
    built.model.train()
    before = [p.detach().clone() for p in built.model.parameters()]
    rng = torch.get_rng_state()
    sampler = Sampler(built)
    got = sampler.run()
    assert [s.prompt for s in got] == ["Ann sees", "Bob"]
    assert all(s.new_tokens == 4 and s.stopped == "max_new_tokens" and s.text and s.seconds > 0 for s in got)
    assert sampler.run()[0].text == got[0].text  # greedy: the same weights write the same text
    assert built.model.training  # back in training mode
    assert torch.equal(torch.get_rng_state(), rng)  # greedy decoding draws no random numbers
    assert all(torch.equal(a, b) for a, b in zip(before, built.model.parameters()))


def test_a_round_stops_at_its_time_budget(text_dataset, tmp_path, monkeypatch):
    built = build(small_config(text_dataset, tmp_path, *TEXT, "train.sample_tokens=1000",
                               "model.max_position_embeddings=1024"))
    monkeypatch.setattr(samples_mod, "FLOOR_S", 0.0)
    sampler = Sampler(built)
    sampler.spent = 1e9  # the budget of the whole run is spent: each prompt gets its first token only
    got = sampler.run()
    assert len(got) == 3 and all(s.stopped == "time" and s.new_tokens == 1 for s in got)


def test_no_tokenizer_or_no_tokens_means_no_samples(small_dataset, text_dataset, tmp_path):
    sampler = Sampler(build(small_config(small_dataset, tmp_path)))
    assert sampler.run() == [] and "has no tokenizer/" in sampler.unavailable and not sampler.enabled
    off = Sampler(build(small_config(text_dataset, tmp_path, *TEXT, "train.sample_tokens=0")))
    assert off.run() == [] and not off.enabled
