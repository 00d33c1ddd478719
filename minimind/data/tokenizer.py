"""Tokenizers for ``prepare``: train a byte-level BPE on a corpus, or load any Hugging Face directory.

A trained tokenizer is saved as a directory that ``transformers.AutoTokenizer.from_pretrained``
loads (``tokenizer.json`` + ``tokenizer_config.json``) with MiniMind's special tokens:
``<|endoftext|>``=0 (pad), ``<|im_start|>``=1 (bos), ``<|im_end|>``=2 (eos).

Encoding uses the Rust ``tokenizers`` library directly (``transformers`` is only needed for a
directory without ``tokenizer.json``, e.g. a slow sentencepiece tokenizer, which is converted once).
"""

from __future__ import annotations

import json
import re
import shutil
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from minimind.errors import TokenizerError
from minimind.files import sha256_file

PAD_TOKEN, BOS_TOKEN, EOS_TOKEN = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN]  # list position = token id
TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
# Files of a Hugging Face tokenizer directory worth copying into a dataset (a model directory such as
# MiniMind's `model/` also holds weights and code, which are not copied).
TOKENIZER_FILES = (TOKENIZER_JSON, TOKENIZER_CONFIG, "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja")


# Long texts are encoded in pieces of about this many characters (see make_encoder).
PIECE_CHARS = 1 << 16


@dataclass
class LoadedTokenizer:
    tokenizer: Tokenizer
    path: Path
    vocab_size: int
    bos_id: int
    eos_id: int
    pad_id: int

    def __post_init__(self):
        self._encode = make_encoder(self.tokenizer)
        self._encode_many = make_batch_encoder(self.tokenizer, self._encode)

    def encode(self, text: str) -> list[int]:
        return self._encode(text)

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        return self._encode_many(texts)

    def decode(self, ids) -> str:
        return self.tokenizer.decode(list(map(int, ids)), skip_special_tokens=False)


# Places where a GPT-2 style byte-level pre-tokenizer always starts a new pre-token whatever comes
# before: a single space or newline between two non-space characters (the next pre-token is " word" or
# "\n"), and punctuation right after a letter or digit (checked in _safe_cut).
_CUT = re.compile(r"(?<=\S)[ \n](?=\S)|(?<=\w)[。，、！？；：.,!?;:]")
_CUT_CHARS = set(" \n。，、！？；：.,!?;:")


def _safe_cut(text: str, pos: int) -> bool:
    if text[pos] in " \n":
        return True
    return unicodedata.category(text[pos - 1])[0] in "LN"


def _splits_safely(tok: Tokenizer) -> bool:
    """Whether encoding a text in pieces cut by _CUT gives exactly the ids of encoding it whole."""
    spec = json.loads(tok.to_str())
    pre = spec.get("pre_tokenizer") or {}
    return (spec.get("normalizer") is None and pre.get("type") == "ByteLevel" and pre.get("use_regex", True)
            and not pre.get("add_prefix_space", False)
            and not any(_CUT_CHARS & set(t.get("content", "")) for t in spec.get("added_tokens", [])))


def make_encoder(tok: Tokenizer, piece_chars: int = PIECE_CHARS) -> Callable[[str], list[int]]:
    """``text -> ids`` without special tokens. A byte-level BPE encodes a long text in pieces cut at
    pre-token boundaries: the ids are identical, and the time stays linear (the Rust encoder takes
    17 s for one 10 MB string but 8 s for the same text in 64 kB pieces)."""
    if not _splits_safely(tok):
        return lambda text: tok.encode(text, add_special_tokens=False).ids

    def encode(text: str) -> list[int]:
        if len(text) <= 4 * piece_chars:
            return tok.encode(text, add_special_tokens=False).ids
        ids: list[int] = []
        start, search_from = 0, piece_chars
        while (match := _CUT.search(text, search_from)) is not None:
            pos = match.start()
            if _safe_cut(text, pos):
                ids.extend(tok.encode(text[start:pos], add_special_tokens=False).ids)
                start, search_from = pos, pos + piece_chars
            else:
                search_from = pos + 1
        ids.extend(tok.encode(text[start:], add_special_tokens=False).ids)
        return ids

    return encode


class SafeCutter:
    """Joins text pieces that arrive one by one (a huge document read in parts) and hands out text
    cut only where ``make_encoder`` may cut (see ``_CUT``): encoding what it hands out piece by piece
    gives exactly the ids of encoding the whole text."""

    def __init__(self):
        self.carry = ""
        self._searched = 0  # no safe cut in carry before this position

    def feed(self, text: str) -> str:
        """``text`` appended; returns the longest safely cut prefix of what has not been handed out."""
        self.carry += text
        n, last, window = len(self.carry), 0, 256
        while not last:  # the last safe cut, searched for from the end
            lo = max(self._searched, 1, n - window)
            for match in _CUT.finditer(self.carry, lo):
                if _safe_cut(self.carry, match.start()):
                    last = match.start()
            if lo == max(self._searched, 1):
                break
            window *= 4
        # A cut needs the character after it: the last two are searched again with the next piece.
        self._searched = max(0, n - last - 2)
        out, self.carry = self.carry[:last], self.carry[last:]
        return out

    def finish(self) -> str:
        out, self.carry, self._searched = self.carry, "", 0
        return out


def safe_pieces(texts: Iterable[str], piece_chars: int = PIECE_CHARS) -> Iterator[str]:
    """Long texts cut into pieces of about ``piece_chars`` at safe cuts: a byte-level BPE trainer
    sees the same pre-tokens (so learns the same merges) without holding its per-byte bookkeeping
    for a whole huge text at once (2.7 GB for one 31 MB text)."""
    for text in texts:
        if len(text) <= 4 * piece_chars:
            yield text
            continue
        start, search_from = 0, piece_chars
        while (match := _CUT.search(text, search_from)) is not None:
            pos = match.start()
            if _safe_cut(text, pos):
                yield text[start:pos]
                start, search_from = pos, pos + piece_chars
            else:
                search_from = pos + 1
        yield text[start:]


def make_batch_encoder(tok: Tokenizer, encode_one: Callable[[str], list[int]] | None = None,
                       piece_chars: int = PIECE_CHARS) -> Callable[[list[str]], list[list[int]]]:
    """``texts -> ids per text``, the same ids as ``make_encoder``. Texts of ordinary length go
    through ``encode_batch_fast`` (no character offsets): about 1.3x the throughput of one
    ``encode`` call per text on this project's machines. Run it with TOKENIZERS_PARALLELISM=false
    in worker processes, which already use every core. Raises TypeError for a text the Rust side
    refuses (lone surrogates), as ``encode`` does."""
    encode_one = encode_one or make_encoder(tok, piece_chars)
    fast = getattr(tok, "encode_batch_fast", None)

    def encode_many(texts: list[str]) -> list[list[int]]:
        if fast is None:
            return [encode_one(t) for t in texts]
        short = [i for i, t in enumerate(texts) if len(t) <= 4 * piece_chars]
        out: list[list[int] | None] = [None] * len(texts)
        if short:
            for i, enc in zip(short, fast([texts[i] for i in short], add_special_tokens=False), strict=True):
                out[i] = enc.ids
        for i, text in enumerate(texts):
            if out[i] is None:
                out[i] = encode_one(text)
        return out  # type: ignore[return-value]

    return encode_many


def _new_bpe() -> Tokenizer:
    from tokenizers import decoders, models, pre_tokenizers

    tok = Tokenizer(models.BPE())
    # add_prefix_space=False keeps decode(encode(text)) == text byte for byte.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def train_tokenizer(texts_iter: Iterable[str], vocab_size: int, out_dir: str | Path) -> Path:
    """Train a byte-level BPE tokenizer on ``texts_iter`` and save it as an ``AutoTokenizer`` directory."""
    from tokenizers import pre_tokenizers, trainers

    if vocab_size < len(SPECIAL_TOKENS) + 256:
        raise TokenizerError(f"vocab size {vocab_size} is too small: a byte-level BPE needs at least "
                             f"{len(SPECIAL_TOKENS) + 256} tokens (256 bytes + 3 special tokens)")
    tok = _new_bpe()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(safe_pieces(texts_iter), trainer=trainer)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_dir / TOKENIZER_JSON))
    write_tokenizer_config(out_dir)
    return out_dir


def write_tokenizer_config(out_dir: Path) -> None:
    added = {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                      "single_word": False, "special": True} for i, t in enumerate(SPECIAL_TOKENS)}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "add_bos_token": False,
        "add_eos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
        "unk_token": PAD_TOKEN,
        # True would rewrite " ." to "." on decode and break the round trip.
        "clean_up_tokenization_spaces": False,
        "model_max_length": 32768,
    }
    (out_dir / TOKENIZER_CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")


def tokenizer_fingerprint(path: str | Path) -> str:
    """sha256 of the directory's ``tokenizer.json``: identifies the exact vocabulary and merges."""
    file = Path(path) / TOKENIZER_JSON
    if not file.is_file():
        raise TokenizerError(f"{path}: no {TOKENIZER_JSON} (not a Hugging Face fast tokenizer directory)")
    return sha256_file(file)


def _token_name(value) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def load_tokenizer(path: str | Path) -> LoadedTokenizer:
    """Load a tokenizer directory (``tokenizer.json`` + optional ``tokenizer_config.json``).

    bos/eos/pad come from ``tokenizer_config.json`` when it names them, else from MiniMind's special
    tokens when the vocabulary has them; a tokenizer with no end-of-text token is refused.
    """
    path = Path(path)
    if not path.is_dir():
        raise TokenizerError(f"{path}: tokenizer directory not found")
    file = path / TOKENIZER_JSON
    if not file.is_file():
        raise TokenizerError(f"{path}: no {TOKENIZER_JSON}; convert it with transformers "
                             f"(AutoTokenizer.from_pretrained(dir).save_pretrained(dir))")
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as exc:  # the Rust error names the broken field
        raise TokenizerError(f"{file}: cannot load tokenizer ({exc})") from None
    config = {}
    config_file = path / TOKENIZER_CONFIG
    if config_file.is_file():
        try:
            config = json.loads(config_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise TokenizerError(f"{config_file}: invalid JSON ({exc})") from None

    def token_id(key: str, default: str) -> int | None:
        name = _token_name(config.get(key))
        for candidate in (name, default):
            if candidate is not None and tok.token_to_id(candidate) is not None:
                return tok.token_to_id(candidate)
        return None

    eos_id = token_id("eos_token", EOS_TOKEN)
    if eos_id is None:
        raise TokenizerError(f"{path}: the tokenizer has no end-of-text token (set eos_token in "
                             f"{TOKENIZER_CONFIG})")
    bos_id = token_id("bos_token", BOS_TOKEN)
    pad_id = token_id("pad_token", PAD_TOKEN)
    return LoadedTokenizer(tokenizer=tok, path=path, vocab_size=tok.get_vocab_size(with_added_tokens=True),
                           bos_id=eos_id if bos_id is None else bos_id, eos_id=eos_id,
                           pad_id=eos_id if pad_id is None else pad_id)


def copy_tokenizer(src: str | Path, dst: str | Path) -> None:
    """Copy the tokenizer files of ``src`` (byte for byte, so the fingerprint is unchanged) into ``dst``."""
    src, dst = Path(src), Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copyfile(src / name, dst / name)
    if not (dst / TOKENIZER_CONFIG).is_file():
        # AutoTokenizer needs a class to instantiate and the special tokens to set bos/eos/pad.
        tok = load_tokenizer(src)
        names = {key: tok.tokenizer.id_to_token(i) for key, i in
                 (("bos_token", tok.bos_id), ("eos_token", tok.eos_id), ("pad_token", tok.pad_id))}
        (dst / TOKENIZER_CONFIG).write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", **names,
                                                        "clean_up_tokenization_spaces": False}) + "\n",
                                            encoding="utf-8")
