import hashlib
import json

import pytest

from minimind.data.tokenizer import (
    SPECIAL_TOKENS,
    copy_tokenizer,
    load_tokenizer,
    tokenizer_fingerprint,
    train_tokenizer,
)
from minimind.errors import TokenizerError

TRICKY = [
    "Hello, world!",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\nand CRLF\r\n",
    "混合中文和 English 文本，标点符号。",
    "emoji 🤖🎉 and combining e\u0301 and zero\u200bwidth",
    "def f(x):\n    return x ** 2  # code",
    "a  .  double spaces before punctuation .",
    "\x00 control \x1b[0m bytes",
    "<|im_end|> a special token written in the text",
]


def corpus():
    from pydoc_data.topics import topics

    return [topics[k] for k in sorted(topics)[:60]] + TRICKY


def test_trained_tokenizer_round_trips_and_has_minimind_special_tokens(tmp_path):
    out = train_tokenizer(iter(corpus()), 400, tmp_path / "tok")
    tok = load_tokenizer(out)
    assert (tok.vocab_size, tok.pad_id, tok.bos_id, tok.eos_id) == (400, 0, 1, 2)
    for i, name in enumerate(SPECIAL_TOKENS):
        assert tok.tokenizer.id_to_token(i) == name
    for text in TRICKY:
        assert tok.decode(tok.encode(text)) == text
    assert max(tok.encode("".join(TRICKY))) < 400


def test_trained_tokenizer_loads_in_transformers(tmp_path):
    from transformers import AutoTokenizer

    out = train_tokenizer(iter(corpus()), 400, tmp_path / "tok")
    hf = AutoTokenizer.from_pretrained(out)
    assert (hf.pad_token_id, hf.bos_token_id, hf.eos_token_id) == (0, 1, 2)
    ours = load_tokenizer(out)
    for text in TRICKY:
        ids = hf.encode(text, add_special_tokens=False)
        assert ids == ours.encode(text)
        assert hf.decode(ids) == text


def test_fingerprint_is_sha256_of_tokenizer_json_and_survives_copy(tmp_path):
    out = train_tokenizer(iter(corpus()), 300, tmp_path / "tok")
    fp = tokenizer_fingerprint(out)
    assert fp == hashlib.sha256((out / "tokenizer.json").read_bytes()).hexdigest()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "tokenizer.json").write_bytes((out / "tokenizer.json").read_bytes())
    (tmp_path / "src" / "model.safetensors").write_bytes(b"weights are not copied")
    copy_tokenizer(tmp_path / "src", tmp_path / "dst")
    assert tokenizer_fingerprint(tmp_path / "dst") == fp
    assert not (tmp_path / "dst" / "model.safetensors").exists()
    # a config is written so that AutoTokenizer knows the special tokens
    config = json.loads((tmp_path / "dst" / "tokenizer_config.json").read_text())
    assert (config["bos_token"], config["eos_token"], config["pad_token"]) == tuple(SPECIAL_TOKENS[i] for i in (1, 2, 0))


def test_directory_without_tokenizer_json_is_refused(tmp_path):
    (tmp_path / "vocab.txt").write_text("a\n")
    with pytest.raises(TokenizerError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
    with pytest.raises(TokenizerError, match="not found"):
        load_tokenizer(tmp_path / "missing")


def test_too_small_vocab_is_refused(tmp_path):
    with pytest.raises(TokenizerError, match="too small"):
        train_tokenizer(iter(["abc"]), 100, tmp_path / "tok")


def test_long_texts_encoded_in_pieces_give_the_same_ids(tmp_path):
    from minimind.data.tokenizer import make_encoder

    tok = load_tokenizer(train_tokenizer(iter(corpus()), 400, tmp_path / "tok"))
    text = "\n".join(corpus() + ["它是一个句子。另一个句子，还有一个！数字123.45和English混合。"] * 50
                     + ["It's 3.14, isn't it? 'quoted'... (parens) x=1;y=2: done!!"] * 50)
    whole = tok.tokenizer.encode(text, add_special_tokens=False).ids
    for piece_chars in (7, 50, 1000):
        assert make_encoder(tok.tokenizer, piece_chars)(text) == whole
    assert tok.decode(tok.encode(text)) == text


def test_batch_encoding_gives_the_ids_of_one_text_at_a_time(tmp_path):
    from minimind.data.tokenizer import make_batch_encoder, make_encoder

    tok = load_tokenizer(train_tokenizer(iter(corpus()), 400, tmp_path / "tok"))
    long_text = "\n".join(corpus()) * 3
    texts = [*corpus(), long_text, ""]
    encode = make_encoder(tok.tokenizer, piece_chars=1000)
    assert make_batch_encoder(tok.tokenizer, encode, piece_chars=1000)(texts) == [encode(t) for t in texts]
    with pytest.raises(TypeError):  # a lone surrogate is refused as by encode(), so callers can report it
        tok.encode_many(["fine", "bad \ud800 text"])
