"""`minimind eval`'s numbers: the trainer's own val loss, bits per byte by hand, MiniMind's .pth."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from minimind import evaluation
from minimind.errors import MinimindError
from minimind.model import MiniMindLM
from tests.checkpoint_fakes import tiny_model, to_earlier_layout, write_run, write_tokenizer
from tests.helpers import random_docs, write_dataset

DOCS = ["the quick brown fox jumps over the lazy dog. Über café naïve façade", "hello world, 你好 hello tokenizer"]


def _two_doc_file(tmp_path):
    path = tmp_path / "two.jsonl"
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in DOCS), encoding="utf-8")
    return path


def _nats_by_hand(model: MiniMindLM, tok_dir, texts) -> float:
    """Sum of -log p(token) over each document's text tokens and its eos, one forward per document."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    total = 0.0
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([[1, *tok.encode(text, add_special_tokens=False).ids, 2]])
            logp = F.log_softmax(model(ids[:, :-1]).logits.double(), dim=-1)
            total -= logp[0].gather(1, ids[0, 1:, None]).sum().item()
    return total


def test_bits_per_byte_by_hand_on_a_two_document_file(tmp_path):
    model = tiny_model(seed=3)
    run = write_run(tmp_path / "run", model, incomplete_step=None)
    tok_dir = write_tokenizer(tmp_path / "tok")
    (doc_res, packed_res) = evaluation.evaluate_weights(run, _two_doc_file(tmp_path), modes=("document", "packed"),
                                                        tokenizer=tok_dir, device="cpu")
    n_bytes = sum(len(t.encode("utf-8")) for t in DOCS)
    assert n_bytes > sum(len(t) for t in DOCS)  # the non-ASCII characters count as their UTF-8 bytes
    nats = _nats_by_hand(model, tok_dir, DOCS)
    assert doc_res.bytes == n_bytes and doc_res.documents == 2 and doc_res.rows == 2
    assert doc_res.bits_per_byte == pytest.approx(nats / math.log(2) / n_bytes, rel=1e-5)
    assert doc_res.loss == pytest.approx(nats / doc_res.scored_tokens, rel=1e-5)
    assert doc_res.perplexity == pytest.approx(math.exp(doc_res.loss))
    # packed: both documents in one window (bos of the second is a target too): all tokens but the first
    assert packed_res.rows == 1 and packed_res.scored_tokens == doc_res.scored_tokens + 1
    assert packed_res.bits_per_byte == pytest.approx(
        packed_res.loss * doc_res.scored_tokens / n_bytes / math.log(2), rel=1e-9)


def test_document_mode_continues_long_documents_and_scores_every_token_once(tmp_path):
    model = tiny_model(seed=4)
    doc = np.arange(1, 30, dtype=np.int64) % 290 + 3
    text = evaluation.EvalText(docs=[doc], bytes=None, source="test", path="mem")
    rows = evaluation.document_rows(text.docs, 8)
    assert [len(r) for r in rows] == [9, 9, 9, 5] and sum(len(r) - 1 for r in rows) == len(doc) - 1
    assert all(rows[i][-1] == rows[i + 1][0] for i in range(len(rows) - 1))
    whole = evaluation.evaluate_model(model, text, mode="document", seq_len=64)
    cut = evaluation.evaluate_model(model, text, mode="document", seq_len=8)
    assert whole.scored_tokens == cut.scored_tokens == len(doc) - 1
    assert whole.loss != cut.loss  # later rows lose their context


def test_matches_the_trainers_own_val_loss(tmp_path):
    """The trainer's evaluate() over the whole validation split == eval of its checkpoint, packed."""
    from minimind.checkpoint import find_checkpoint
    from minimind.training.build import build
    from minimind.training.state import TrainState, save
    from minimind.training.step import evaluate, train_step
    from tests.training.conftest import small_config

    # 24 validation documents of 31 tokens + bos/eos = 24 windows of 33 tokens exactly
    data = write_dataset(tmp_path / "ds", random_docs(400, seed=0), random_docs(24, seed=1, min_len=31, max_len=32))
    cfg = small_config(data, tmp_path / "out", "train.eval_samples=400")
    built = build(cfg)
    state = TrainState()
    for _ in range(4):
        r = train_step(built, state)
        state.advance(r.loss, r.tokens)
    val = evaluate(built)
    save(built, state, tmp_path / "run", "final", elapsed_s=1.0)
    ckpt = find_checkpoint(tmp_path / "run")
    [res] = evaluation.evaluate_weights(ckpt.path, data, device="cpu", batch_size=5)
    assert res.seq_len == 32 and res.rows == 24 and res.scored_tokens == 24 * 32
    assert res.loss == pytest.approx(val, rel=1e-5, abs=1e-6)
    assert res.bits_per_byte is None and any("no tokenizer" in n for n in res.notes)


@pytest.mark.parametrize("layout", ["minimind2", "earlier"])
def test_minimind_pth_scores_through_the_same_code(tmp_path, layout):
    """MiniMind's own .pth (fp16, no config beside it), in either key layout, scores like the model."""
    model = tiny_model(seed=5, hidden_size=64, num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=2,
                       max_position_embeddings=128)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())  # what the fp16 file holds
    sd = {k: v.half() for k, v in model.state_dict().items()}
    if layout == "earlier":
        sd = to_earlier_layout(sd, head_dim=8)
    pth = tmp_path / "minimind" / "pretrain_64.pth"
    pth.parent.mkdir()
    torch.save(sd, pth)
    tok_dir = write_tokenizer(tmp_path / "tok")
    file = _two_doc_file(tmp_path)
    [res] = evaluation.evaluate_weights(pth, file, modes=("document",), tokenizer=tok_dir, seq_len=16, device="cpu")
    text = evaluation.file_text(file, tok_dir)
    want = evaluation.evaluate_model(model, text, mode="document", seq_len=16)
    assert res.loss == pytest.approx(want.loss, rel=1e-6) and res.scored_tokens == want.scored_tokens
    assert res.bits_per_byte == pytest.approx(want.bits_per_byte, rel=1e-6)


def test_a_bare_pth_is_scored_with_the_window_of_the_run_its_sidecar_names(tmp_path):
    """out/pretrain_<h>.pth of a run trained on 24-token rows is scored on 24-token rows, and eval says why."""
    import shutil

    from minimind.checkpoint import save_weights
    from minimind.config import save_config
    from minimind.run_dir import CONFIG_FILE
    from tests.training.conftest import small_config

    data = write_dataset(tmp_path / "ds", random_docs(200, seed=0), random_docs(8, seed=1))
    run = tmp_path / "out" / "runs" / "r"
    run.mkdir(parents=True)
    save_config(small_config(data, tmp_path / "out", "data.max_seq_len=24"), run / CONFIG_FILE)
    model = tiny_model(seed=7)
    pth = save_weights(tmp_path / "out" / "pretrain_64.pth", model.state_dict(), model.config, run_dir=run)
    [res] = evaluation.evaluate_weights(pth, data, device="cpu")
    assert res.mode == "packed" and res.seq_len == 24
    assert any("window 24 tokens" in n and "the run its sidecar names" in n for n in res.notes)
    shutil.rmtree(run)  # the run is gone: the default window, and a note that says so
    [res] = evaluation.evaluate_weights(pth, data, device="cpu")
    assert res.seq_len == min(512, model.config.max_position_embeddings)
    assert any("not recorded or not found" in n for n in res.notes)


def test_bad_inputs_are_one_line_errors(tmp_path):
    model = tiny_model(seed=6)
    run = write_run(tmp_path / "run", model, incomplete_step=None)
    with pytest.raises(MinimindError, match="no dataset recorded"):
        evaluation.evaluate_weights(run)
    with pytest.raises(MinimindError, match="no tokenizer found"):
        evaluation.evaluate_weights(run, _two_doc_file(tmp_path))
    big = write_dataset(tmp_path / "big", random_docs(10, vocab_size=1000), random_docs(5, seed=2, vocab_size=1000),
                        vocab_size=1000)
    with pytest.raises(MinimindError, match="outside the model's vocabulary"):
        evaluation.evaluate_weights(run, big)
    empty = write_dataset(tmp_path / "noval", random_docs(10))
    with pytest.raises(MinimindError, match="val split holds no documents"):
        evaluation.evaluate_weights(run, empty)
    with pytest.raises(MinimindError, match="max_position_embeddings"):
        evaluation.evaluate_weights(run, empty, split="train", seq_len=1000)
