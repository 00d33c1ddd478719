"""Huge .jsonl lines are read, decoded and tokenized piece by piece: the same tokens as encoding each
text whole, cut anywhere in the raw line (escapes, UTF-8 sequences, surrogate pairs), and bounded memory."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from minimind.data import format as fmt
from minimind.data.prepare import PrepareError, prepare_dataset
from minimind.data.tokenizer import load_tokenizer, train_tokenizer
from tests.conftest import REPO

CHUNK = 4096  # lines over 8 blocks (32 kB) are streamed


def texts() -> list[str]:
    words = "the quick brown fox jumps over the lazy dog; 中文文本没有空格。日本語も。 émigré naïve 😀🎉 \"quoted\" back\\slash"
    return [
        (words + " ") * 3000,                        # spaces, punctuation, escapes, CJK, emoji
        "中华人民共和国成立于一九四九年" * 5000,            # CJK without spaces: one long pre-token
        "a" * 100_000,                               # a long run of one character
        "😀" * 30_000 + " end",                      # astral characters (surrogate pairs when escaped)
        "line one\nline two\n\n\ttabbed  double  spaces " * 4000,
        "short one",
    ]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return train_tokenizer(iter(t[:5000] for t in texts()), 600, tmp_path_factory.mktemp("tok") / "tok")


@pytest.mark.parametrize("ascii_only", [True, False], ids=["escaped", "utf8"])
def test_streamed_lines_give_the_tokens_of_the_whole_text(tmp_path, tok_dir, ascii_only):
    src = tmp_path / "data.jsonl"
    src.write_text("".join(json.dumps({"text": t, "id": i}, ensure_ascii=ascii_only) + "\n"
                           for i, t in enumerate(texts())), encoding="utf-8")
    prepare_dataset([src], tmp_path / "ds", tokenizer=tok_dir, chunk_bytes=CHUNK, val_fraction=0, workers=1)
    tok = load_tokenizer(tmp_path / "ds" / "tokenizer")
    data = fmt.open_split(tmp_path / "ds")
    assert data.n_docs == len(texts())
    for i, text in enumerate(texts()):
        whole = tok.tokenizer.encode(text, add_special_tokens=False).ids
        assert data.doc(i).tolist() == [tok.bos_id, *whole, tok.eos_id], f"document {i}"


@pytest.mark.parametrize("line,reason", [
    (b'{"text": "' + b"word " * 20000 + b'\x01"}', "invalid JSON (Invalid control character at column 100011)"),
    (b'{"text": "' + b"word " * 20000 + b'\xe9"}', "invalid UTF-8 (byte 0xe9 at column 100011)"),
    (b'{"text": "' + b"word " * 20000 + b'", }', "invalid JSON"),
    (b'{"text": "' + b"word " * 20000, "invalid JSON (Unterminated string"),
    (b'{"id": 1, "text": "' + b"word " * 20000 + b'", }', "invalid JSON"),
])
def test_a_bad_huge_line_is_reported_like_any_line(tmp_path, tok_dir, line, reason):
    src = tmp_path / "data.jsonl"
    src.write_bytes(b'{"text": "fine"}\n' + line + b'\n{"text": "also fine"}\n')
    with pytest.raises(PrepareError, match=f"data.jsonl:2: {reason}".replace("(", r"\(").replace(")", r"\)")):
        prepare_dataset([src], tmp_path / "ds", tokenizer=tok_dir, chunk_bytes=CHUNK, workers=1)
    res = prepare_dataset([src], tmp_path / "ds", tokenizer=tok_dir, chunk_bytes=CHUNK, workers=1,
                          skip_invalid=True, val_fraction=0)
    assert res.meta["documents"] == 2 and sum(res.meta["skipped"].values()) == 1


SCRIPT = """
import sys
from minimind.data.prepare import prepare_dataset
if __name__ == "__main__":
    prepare_dataset([sys.argv[1]], sys.argv[2], vocab_size=2000)
"""


@pytest.mark.slow  # a 30 MB one-line document, prepared (tokenizer trained) in a real process
def test_a_30_megabyte_line_is_prepared_in_bounded_memory(tmp_path):
    words = [w for t in texts()[:1] for w in t[:400].split(" ") if w]
    rng = np.random.default_rng(0)
    text = " ".join(words[i] for i in rng.integers(0, len(words), 6_000_000))[: 30 * 10**6]
    src = tmp_path / "huge.jsonl"
    src.write_text(json.dumps({"text": text}, ensure_ascii=False) + "\n", encoding="utf-8")
    del text
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(src), str(tmp_path / "ds")], env=env,
                            stderr=subprocess.PIPE, text=True)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [ps, *ps.children(recursive=True)]))
        except psutil.Error:
            pass
        time.sleep(0.05)
    assert proc.returncode == 0, proc.stderr.read()
    assert fmt.read_meta(tmp_path / "ds")["documents"] == 1
    assert peak < 500 * 2**20, f"peak RSS of the process tree {peak / 2**20:.0f} MB"
