import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from minimind.data import format as fmt
from minimind.data.prepare import PrepareError, ProgressUpdate, prepare_dataset, prepared_path_for
from minimind.data.tokenizer import load_tokenizer, tokenizer_fingerprint, train_tokenizer

DOCS = ["The quick brown fox jumps over the lazy dog.",
        "混合中文和 English 文本：第二个文档。",
        "  indented\n\tcode()\n  with trailing space  ",
        "emoji 🤖 and e\u0301",
        "a \"quoted\" \\ backslash"]


def write_jsonl(path: Path, docs, key="text", newline="\n", bom=False) -> Path:
    body = newline.join(json.dumps({key: d, "id": i}, ensure_ascii=False) for i, d in enumerate(docs)) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + body.encode("utf-8"))
    return path


def topics_text(n_chars: int) -> list[str]:
    """Real English paragraphs (Python's help topics), repeated up to about n_chars."""
    from pydoc_data.topics import topics

    texts, total = [], 0
    paragraphs = [p for k in sorted(topics) for p in topics[k].split("\n\n") if p.strip()]
    while total < n_chars:
        p = paragraphs[len(texts) % len(paragraphs)]
        texts.append(p)
        total += len(p)
    return texts


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    """A small MiniMind-like tokenizer directory: same special tokens, its own tokenizer_config.json."""
    out = tmp_path_factory.mktemp("minimind_tok")
    train_tokenizer(iter(topics_text(200_000) + DOCS), 512, out)
    config = json.loads((out / "tokenizer_config.json").read_text())
    config.update(model_max_length=131072, chat_template="{{ messages }}")
    (out / "tokenizer_config.json").write_text(json.dumps(config))
    (out / "model_minimind.py").write_text("# model code lives next to the tokenizer in MiniMind's model/\n")
    return out


def prep(inputs, out, **kw):
    kw.setdefault("vocab_size", 300)
    return prepare_dataset([inputs] if isinstance(inputs, (str, Path)) else inputs, out, **kw)


def decoded_docs(path: Path, split="train") -> list[str]:
    tok = load_tokenizer(path / "tokenizer")
    data = fmt.open_split(path, split)
    out = []
    for i in range(data.n_docs):
        doc = data.doc(i)
        assert doc[0] == tok.bos_id and doc[-1] == tok.eos_id
        out.append(tok.decode(doc[1:-1]))
    return out


def assert_nothing_left(tmp_path: Path, out: Path):
    assert not out.exists()
    assert not list(tmp_path.glob(out.name + ".tmp-*"))


# ------------------------------------------------------------------------------ good input, layout

@pytest.mark.slow
def test_round_trip_layout_and_meta(tmp_path):
    src = write_jsonl(tmp_path / "data.jsonl", DOCS)
    before = src.read_bytes()
    res = prep(src, tmp_path / "ds")
    assert not res.reused
    assert decoded_docs(tmp_path / "ds") == DOCS
    meta = fmt.read_meta(tmp_path / "ds")
    assert set(fmt.META_KEYS) <= set(meta)
    assert (meta["bos_id"], meta["eos_id"], meta["pad_id"], meta["dtype"]) == (1, 2, 0, "uint16")
    assert meta["documents"] == 5 and meta["val_documents"] == 0
    offsets = np.fromfile(tmp_path / "ds" / "docs.idx", dtype=np.int64)
    assert offsets[0] == 0 and len(offsets) == 6 and offsets[-1] == meta["tokens"]
    assert meta["sources"] == [{"path": str(src), "format": "jsonl", "size": len(before),
                                "sha256": hashlib.sha256(before).hexdigest()}]
    assert meta["fingerprint"] == fmt.dataset_fingerprint(tmp_path / "ds")
    assert src.read_bytes() == before  # the input is never modified
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(tmp_path / "ds" / "tokenizer")
    assert (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id) == (1, 2, 0)


def test_bom_crlf_blank_lines_extra_keys_and_empty_texts_are_not_errors(tmp_path):
    docs = DOCS[:2] + ["", "   \t "] + DOCS[2:]
    src = write_jsonl(tmp_path / "crlf.jsonl", docs, newline="\r\n", bom=True)
    src.write_bytes(src.read_bytes() + b"\r\n   \r\n\n")  # blank lines at the end, one with spaces
    res = prep(src, tmp_path / "ds")
    assert decoded_docs(tmp_path / "ds") == DOCS
    assert res.meta["skipped"] == {"blank line": 3, "empty text": 2}


def test_text_key_gz_txt_multiple_inputs_and_directory(tmp_path):
    (tmp_path / "corpus" / "sub").mkdir(parents=True)
    write_jsonl(tmp_path / "corpus" / "a.jsonl", DOCS[:2], key="content")
    with gzip.open(tmp_path / "corpus" / "sub" / "b.jsonl.gz", "wb") as f:
        f.write(write_jsonl(tmp_path / "tmp.jsonl", DOCS[2:4], key="content").read_bytes())
    (tmp_path / "corpus" / "c.txt").write_bytes(
        b"first paragraph\nstill first\r\n\r\n\n  \nsecond paragraph\n\n\n")
    (tmp_path / "corpus" / "notes.md").write_text("ignored: not a corpus file")
    res = prep(tmp_path / "corpus", tmp_path / "ds", text_key="content")
    assert [s["format"] for s in res.meta["sources"]] == ["jsonl", "txt", "jsonl.gz"]  # sorted paths
    assert decoded_docs(tmp_path / "ds") == DOCS[:2] + ["first paragraph\nstill first", "second paragraph"] + DOCS[2:4]


def test_validation_split_is_deterministic_and_disjoint(tmp_path):
    texts = [f"document number {i}: " + t for i, t in enumerate(topics_text(60_000))]
    src = write_jsonl(tmp_path / "many.jsonl", texts)
    res = prep(src, tmp_path / "ds", val_fraction=0.2)
    train, val = decoded_docs(tmp_path / "ds"), decoded_docs(tmp_path / "ds", "val")
    assert 0.1 * len(texts) < len(val) < 0.3 * len(texts)
    assert sorted(train + val) == sorted(texts) and not set(train) & set(val)
    assert texts[0] in train
    res2 = prep(src, tmp_path / "ds2", val_fraction=0.2, tokenizer=tmp_path / "ds" / "tokenizer")
    assert res2.meta["fingerprint"] == res.meta["fingerprint"]


def test_parallel_workers_write_the_same_bytes_as_one(tmp_path, tok_dir):
    src = write_jsonl(tmp_path / "big.jsonl", topics_text(400_000))
    one = prep(src, tmp_path / "one", tokenizer=tok_dir, workers=1, chunk_bytes=64 << 10)
    two = prep(src, tmp_path / "two", tokenizer=tok_dir, workers=2, chunk_bytes=64 << 10)
    assert two.workers == 2
    assert one.meta["fingerprint"] == two.meta["fingerprint"]
    assert one.meta["documents"] > 1000


def test_minimind_like_tokenizer_directory_is_accepted_and_fingerprinted(tmp_path, tok_dir):
    src = write_jsonl(tmp_path / "data.jsonl", DOCS)
    res = prep(src, tmp_path / "ds", tokenizer=tok_dir)
    assert res.meta["tokenizer_fingerprint"] == tokenizer_fingerprint(tok_dir)
    assert res.meta["tokenizer_fingerprint"] == hashlib.sha256((tok_dir / "tokenizer.json").read_bytes()).hexdigest()
    assert res.meta["vocab_size"] == 512
    assert (tmp_path / "ds" / "tokenizer" / "tokenizer_config.json").read_bytes() == \
        (tok_dir / "tokenizer_config.json").read_bytes()
    assert not (tmp_path / "ds" / "tokenizer" / "model_minimind.py").exists()
    assert decoded_docs(tmp_path / "ds") == DOCS


@pytest.mark.slow  # trains a 70k-token vocabulary
def test_large_vocabulary_uses_uint32(tmp_path):
    texts = topics_text(300_000)
    src = write_jsonl(tmp_path / "data.jsonl", texts)
    tok = train_tokenizer(iter(texts), 400, tmp_path / "tok")
    # Grow the vocabulary past 65536 with added tokens: ids above the uint16 range must survive.
    from tokenizers import Tokenizer

    t = Tokenizer.from_file(str(tok / "tokenizer.json"))
    t.add_tokens([f"<extra_{i}>" for i in range(65536)])
    t.add_tokens(["zebra-crossing"])
    t.save(str(tok / "tokenizer.json"))
    src = write_jsonl(tmp_path / "data.jsonl", ["a zebra-crossing here"])
    res = prep(src, tmp_path / "ds", tokenizer=tok)
    assert res.meta["dtype"] == "uint32"
    assert fmt.open_split(tmp_path / "ds").tokens.max() > 65535
    assert decoded_docs(tmp_path / "ds") == ["a zebra-crossing here"]


@pytest.mark.slow
def test_ten_megabyte_single_document(tmp_path):
    # Long words that the tokenizer learns whole keep the encoding (about 0.5M tokens/s here) short.
    words = ["internationalization", "characteristically", "incomprehensibility", "中华人民共和国"]
    text = " ".join(words[i % 4] for i in range(700_000))[: 10 * 2**20]
    assert len(text) == 10 * 2**20
    tok_dir = train_tokenizer(iter([" ".join(words)] * 100), 512, tmp_path / "tok")
    src = write_jsonl(tmp_path / "huge.jsonl", [text, "after the big one"])
    res = prep(src, tmp_path / "ds", tokenizer=tok_dir, chunk_bytes=1 << 20)
    assert res.meta["documents"] == 2
    tok = load_tokenizer(tmp_path / "ds" / "tokenizer")
    data = fmt.open_split(tmp_path / "ds")
    assert tok.decode(data.doc(0)[1:-1]) == text
    assert tok.decode(data.doc(1)[1:-1]) == "after the big one"


# ----------------------------------------------------------------------------------- progress

def updates_of(updates, phase):
    mine = [u for u in updates if u.phase == phase]
    assert mine, f"no {phase} updates"
    dones = [u.done for u in mine]
    assert {u.total for u in mine} == {mine[0].total}  # one total per phase
    assert dones == sorted(dones) and dones[0] >= 0 and all(d <= mine[0].total for d in dones)
    assert dones[-1] == mine[0].total  # the last update reaches the total
    return mine


def test_progress_callback_reports_each_phase_up_to_its_total(tmp_path):
    src = write_jsonl(tmp_path / "data.jsonl", topics_text(100_000))
    size = src.stat().st_size
    updates: list[ProgressUpdate] = []
    res = prep(src, tmp_path / "ds", workers=1, chunk_bytes=16 << 10, on_progress=updates.append)
    assert [u.phase for u in updates] == sorted((u.phase for u in updates), key=["tokenizer", "encode"].index)
    tokenizer, encode = updates_of(updates, "tokenizer"), updates_of(updates, "encode")
    assert tokenizer[0].total == encode[0].total == size  # the whole input is under the tokenizer's budget
    assert len(encode) > size // (16 << 10)  # at least one update per block
    docs = [u.documents for u in encode]
    assert docs == sorted(docs) and docs[-1] == res.meta["documents"] + res.meta["val_documents"]
    updates.clear()
    assert prep(src, tmp_path / "ds", workers=1, chunk_bytes=16 << 10, on_progress=updates.append).reused
    assert updates == []  # a reused dataset is no work


def test_progress_callback_with_workers_and_a_given_tokenizer(tmp_path, tok_dir):
    src = write_jsonl(tmp_path / "data.jsonl", topics_text(100_000))
    updates: list[ProgressUpdate] = []
    res = prep(src, tmp_path / "ds", tokenizer=tok_dir, workers=2, chunk_bytes=16 << 10,
               on_progress=updates.append)
    assert res.workers == 2
    assert {u.phase for u in updates} == {"encode"}  # nothing to train
    encode = updates_of(updates, "encode")
    assert encode[0].total == src.stat().st_size
    assert encode[-1].documents == res.meta["documents"] + res.meta["val_documents"]


# ------------------------------------------------------------------------------------ caching

def test_unchanged_inputs_are_reused_and_force_or_changes_rebuild(tmp_path):
    src = write_jsonl(tmp_path / "data.jsonl", DOCS)
    first = prep(src, tmp_path / "ds")
    created = (tmp_path / "ds" / "meta.json").read_bytes()
    again = prep(src, tmp_path / "ds")
    assert again.reused and again.meta == first.meta
    assert (tmp_path / "ds" / "meta.json").read_bytes() == created
    assert not prep(src, tmp_path / "ds", force=True).reused
    assert not prep(src, tmp_path / "ds", val_fraction=0.5).reused  # options are part of the key
    write_jsonl(src, DOCS[:3])
    changed = prep(src, tmp_path / "ds", val_fraction=0.5)
    assert not changed.reused and changed.meta["documents"] + changed.meta["val_documents"] == 3


def test_prepared_path_for_is_named_by_content(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", DOCS)
    (tmp_path / "copy").mkdir()
    b = write_jsonl(tmp_path / "copy" / "a.jsonl", DOCS)
    c = write_jsonl(tmp_path / "c.jsonl", DOCS[:2])
    cache = tmp_path / "cache"
    assert prepared_path_for([a], cache) == prepared_path_for([b], cache)
    assert prepared_path_for([a], cache) != prepared_path_for([c], cache)
    assert prepared_path_for([a], cache).parent == cache


def test_existing_non_dataset_directory_is_not_overwritten(tmp_path):
    src = write_jsonl(tmp_path / "data.jsonl", DOCS)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    with pytest.raises(PrepareError, match="not a minimind dataset"):
        prep(src, tmp_path / "mine", force=True)
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep me"


# ------------------------------------------------------------------------------------- bad input

BAD_LINES = [
    (b'{"text": "bad",}', "invalid JSON (Expecting property name enclosed in double quotes at column 16)"),
    (b'{"text": "tab\tinside"}', "invalid JSON (Invalid control character at column 14)"),
    (b'{"text": "unterminated', "invalid JSON (Unterminated string starting at column 10)"),
    (b'{"txt": "wrong key"}', "missing key 'text' (keys: 'txt'; try --text-key txt)"),
    (b'{"text": 42}', "'text' is an int, not a string"),
    (b'{"text": null}', "'text' is null, not a string"),
    (b'{"text": ["a"]}', "'text' is a list, not a string"),
    (b'["not", "an", "object"]', "not a JSON object (a JSON list)"),
    (b'{"text": "caf\xe9 latin-1"}', "invalid UTF-8 (byte 0xe9 at column 14)"),
    (b'{"text": "lone \\ud800 surrogate"}', "lone surrogate in text"),
]


@pytest.mark.parametrize("line,reason", BAD_LINES, ids=[r.split(" (")[0] for _, r in BAD_LINES])
def test_invalid_line_stops_with_file_line_reason_and_leaves_nothing(tmp_path, line, reason):
    src = tmp_path / "data.jsonl"
    src.write_bytes(b'{"text": "good one"}\n\n' + line + b'\n{"text": "good two"}\n')
    with pytest.raises(PrepareError) as exc:
        prep(src, tmp_path / "ds")
    assert str(exc.value).startswith(f"{src}:3: {reason}")
    assert "\n" not in str(exc.value)
    assert_nothing_left(tmp_path, tmp_path / "ds")


def test_skip_invalid_counts_each_reason(tmp_path):
    src = tmp_path / "data.jsonl"
    src.write_bytes(b"\n".join([b'{"text": "good one"}'] + [line for line, _ in BAD_LINES]
                               + [b'{"text": ""}', b'{"text": "good two"}']) + b"\n")
    res = prep(src, tmp_path / "ds", skip_invalid=True)
    assert decoded_docs(tmp_path / "ds") == ["good one", "good two"]
    assert res.meta["skipped"] == {"empty text": 1, "invalid JSON": 3, "invalid UTF-8": 1, "lone surrogate in text": 1,
                                   "missing key 'text'": 1, "not a JSON object": 1, "text is not a string": 3}


def test_invalid_utf8_in_txt_names_the_line(tmp_path):
    src = tmp_path / "notes.txt"
    src.write_bytes(b"one\n\ntwo\nthr\xffee\n")
    with pytest.raises(PrepareError, match=r"notes.txt:4: invalid UTF-8 \(byte 0xff at column 4\)"):
        prep(src, tmp_path / "ds")
    res = prep(src, tmp_path / "ds", skip_invalid=True)
    assert decoded_docs(tmp_path / "ds") == ["one"] and res.meta["skipped"] == {"invalid UTF-8": 1}


def test_line_numbers_are_right_across_blocks_and_workers(tmp_path, tok_dir):
    texts = topics_text(600_000)
    src = write_jsonl(tmp_path / "data.jsonl", texts)
    with open(src, "ab") as f:
        f.write(b'{"text": "fine"}\n{"text": 3.5}\n')
    with pytest.raises(PrepareError, match=rf"data.jsonl:{len(texts) + 2}: 'text' is a float"):
        prep(src, tmp_path / "ds", tokenizer=tok_dir, workers=2, chunk_bytes=32 << 10)
    assert_nothing_left(tmp_path, tmp_path / "ds")


def test_empty_file_and_only_empty_texts(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    with pytest.raises(PrepareError, match="no documents to train on .the input is empty"):
        prep(tmp_path / "empty.jsonl", tmp_path / "ds")
    write_jsonl(tmp_path / "blank.jsonl", ["", "  "])
    with pytest.raises(PrepareError, match="no documents to train on .2 empty text"):
        prep(tmp_path / "blank.jsonl", tmp_path / "ds")
    assert_nothing_left(tmp_path, tmp_path / "ds")


def test_missing_path_unsupported_file_and_directory_without_corpus(tmp_path):
    with pytest.raises(PrepareError, match="nope.jsonl: no such file or directory"):
        prep(tmp_path / "nope.jsonl", tmp_path / "ds")
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(PrepareError, match=r"data.csv: unsupported file type \(expected .jsonl, .jsonl.gz, .jsonl.zst, .txt, .parquet or .arrow\)"):
        prep(tmp_path / "data.csv", tmp_path / "ds")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.md").write_text("no corpus here")
    with pytest.raises(PrepareError, match="docs: no .jsonl, .jsonl.gz, .jsonl.zst, .txt, .parquet or .arrow files in this directory"):
        prep(tmp_path / "docs", tmp_path / "ds")
    assert_nothing_left(tmp_path, tmp_path / "ds")


def test_bad_options_and_bad_tokenizer(tmp_path):
    src = write_jsonl(tmp_path / "data.jsonl", DOCS)
    with pytest.raises(PrepareError, match="val fraction"):
        prep(src, tmp_path / "ds", val_fraction=1.0)
    with pytest.raises(PrepareError, match="vocab size 100 is too small"):
        prep(src, tmp_path / "ds", vocab_size=100)
    with pytest.raises(PrepareError, match="no tokenizer.json"):
        prep(src, tmp_path / "ds", tokenizer=tmp_path)
    assert_nothing_left(tmp_path, tmp_path / "ds")


def test_truncated_gzip_is_one_clear_error(tmp_path):
    with gzip.open(tmp_path / "d.jsonl.gz", "wb") as f:
        f.write(write_jsonl(tmp_path / "x.jsonl", topics_text(50_000)).read_bytes())
    data = (tmp_path / "d.jsonl.gz").read_bytes()
    (tmp_path / "d.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(PrepareError, match=r"d.jsonl.gz: cannot read"):
        prep(tmp_path / "d.jsonl.gz", tmp_path / "ds")
    assert_nothing_left(tmp_path, tmp_path / "ds")
