"""`prepare` on corpora as they ship: Parquet, Arrow IPC (``datasets.save_to_disk``), .jsonl.zst,
globs and mixed directories; bad columns and rows; ``--dedup exact``; ``--max-documents/--max-tokens``.

Every input is a real file written here by pyarrow or zstandard (the ``formats`` extra)."""

import json
import random
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
zstandard = pytest.importorskip("zstandard")

from minimind.data import format as fmt  # noqa: E402
from minimind.data.prepare import PrepareError, collect_inputs  # noqa: E402
from minimind.data.prepare.dedup import SeenHashes, TextHasher, normalize, text_hash  # noqa: E402
from minimind.data.tokenizer import train_tokenizer  # noqa: E402
from tests.data.test_prepare import DOCS, decoded_docs, topics_text, write_jsonl  # noqa: E402
from tests.data.test_prepare import prep as prep_any  # noqa: E402

DATA_FILES = (fmt.TOKENS_FILE, fmt.DOCS_FILE, fmt.VAL_TOKENS_FILE, fmt.VAL_DOCS_FILE)


def write_parquet(path: Path, texts, key="text", row_group_size=None, **columns) -> Path:
    pq.write_table(pa.table({key: texts, **columns}), path, row_group_size=row_group_size)
    return path


def write_arrow(path: Path, texts, key="text", stream=True, batch_rows=100) -> Path:
    table = pa.table({key: texts, "id": list(range(len(texts)))})
    with pa.OSFile(str(path), "wb") as f:
        opener = pa.ipc.new_stream if stream else pa.ipc.new_file
        with opener(f, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=batch_rows):
                writer.write_batch(batch)
    return path


def write_saved_dataset(directory: Path, texts, key="text", shards=3) -> Path:
    """The layout of ``datasets.Dataset.save_to_disk``: Arrow IPC stream shards and two JSON files."""
    directory.mkdir(parents=True)
    per = -(-len(texts) // shards)
    names = [f"data-{i:05d}-of-{shards:05d}.arrow" for i in range(shards)]
    for i, name in enumerate(names):
        write_arrow(directory / name, texts[i * per:(i + 1) * per], key=key)
    (directory / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in names]}))
    (directory / "dataset_info.json").write_text("{}")
    return directory


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    """A small byte-level BPE, so that most tests skip training one."""
    return train_tokenizer(iter(topics_text(200_000) + DOCS), 512, tmp_path_factory.mktemp("tok"))


def prep(inputs, out, **kw):
    """One worker unless a test asks for more: starting worker processes costs a second each time."""
    kw.setdefault("workers", 1)
    return prep_any(inputs, out, **kw)


def data_bytes(path: Path) -> dict:
    return {name: (path / name).read_bytes() for name in (*DATA_FILES, "tokenizer/tokenizer.json")}


# ------------------------------------------------------------------------------ formats

def test_parquet_arrow_and_zst_give_the_documents_of_the_same_jsonl(tmp_path, tok_dir):
    texts = DOCS + [f"row {i}: " + t for i, t in enumerate(topics_text(30_000))]
    ref = prep(write_jsonl(tmp_path / "ref.jsonl", texts), tmp_path / "ref", tokenizer=tok_dir)
    (tmp_path / "ref.jsonl.zst").write_bytes(  # two frames, as `zstd a >> b` makes
        zstandard.ZstdCompressor().compress((tmp_path / "ref.jsonl").read_bytes()[:5000])
        + zstandard.ZstdCompressor().compress((tmp_path / "ref.jsonl").read_bytes()[5000:]))
    inputs = {
        "parquet": write_parquet(tmp_path / "t.parquet", texts, row_group_size=37, n=list(range(len(texts)))),
        "arrow stream": write_arrow(tmp_path / "stream.arrow", texts),
        "arrow file": write_arrow(tmp_path / "file.arrow", texts, stream=False),
        "jsonl.zst": tmp_path / "ref.jsonl.zst",
    }
    for name, path in inputs.items():
        res = prep(path, tmp_path / name.replace(" ", "_"), tokenizer=tok_dir, chunk_bytes=4096)
        assert res.meta["fingerprint"] == ref.meta["fingerprint"], name
        assert res.meta["sources"][0]["format"] == path.name.split(".", 1)[1]
    assert decoded_docs(tmp_path / "parquet")[:len(DOCS)] == DOCS


def test_text_key_names_the_column(tmp_path):
    write_parquet(tmp_path / "c.parquet", DOCS, key="content", text=["not this"] * len(DOCS))
    prep(tmp_path / "c.parquet", tmp_path / "ds", text_key="content")
    assert decoded_docs(tmp_path / "ds") == DOCS


def test_saved_dataset_directory_reads_its_shards_in_order(tmp_path):
    texts = [f"document {i} " + t for i, t in enumerate(topics_text(8_000))]
    saved = write_saved_dataset(tmp_path / "saved", texts, key="content")
    res = prep(saved, tmp_path / "ds", text_key="content")
    assert [Path(s["path"]).name for s in res.meta["sources"]] == [
        "data-00000-of-00003.arrow", "data-00001-of-00003.arrow", "data-00002-of-00003.arrow"]
    assert decoded_docs(tmp_path / "ds") + decoded_docs(tmp_path / "ds", "val") != []
    assert sorted(decoded_docs(tmp_path / "ds") + decoded_docs(tmp_path / "ds", "val")) == sorted(texts)
    assert decoded_docs(tmp_path / "ds")[0] == texts[0]


def test_a_directory_saved_by_datasets_itself(tmp_path):
    datasets = pytest.importorskip("datasets")
    texts = [f"row {i} " + t for i, t in enumerate(topics_text(4_000))]
    datasets.Dataset.from_dict({"content": texts, "n": list(range(len(texts)))}).save_to_disk(
        str(tmp_path / "saved"), num_shards=2)
    prep(tmp_path / "saved", tmp_path / "ds", text_key="content", val_fraction=0)
    assert decoded_docs(tmp_path / "ds") == texts


def write_saved_dataset_dict(root: Path, splits: dict[str, list[str]]) -> Path:
    """The layout of ``datasets.DatasetDict.save_to_disk``: one saved dataset per split, and
    ``dataset_dict.json`` naming the splits."""
    for name, texts in splits.items():
        write_saved_dataset(root / name, texts, shards=1)
    (root / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}))
    return root


def test_a_dataset_dict_root_with_several_splits_is_refused_unless_they_are_named(tmp_path, tok_dir):
    train, test = DOCS[:4], DOCS[4:]
    root = write_saved_dataset_dict(tmp_path / "my_dataset_dict", {"train": train, "test": test})
    for given in (root, tmp_path):  # the root itself, or a directory above it
        with pytest.raises(PrepareError, match=r"my_dataset_dict: a DatasetDict with 2 splits \(train, test\)") as err:
            prep(given, tmp_path / "ds", tokenizer=tok_dir, val_fraction=0)
        assert f"{root / 'train'} " in err.value.hint
        assert not (tmp_path / "ds").exists()
    with pytest.raises(PrepareError, match="2 splits"):
        collect_inputs([str(tmp_path / "my_data*")])
    prep(root / "train", tmp_path / "ds", tokenizer=tok_dir, val_fraction=0)
    assert decoded_docs(tmp_path / "ds") == train
    prep([root / "train", root / "test"], tmp_path / "ds2", tokenizer=tok_dir, val_fraction=0)  # asked for both
    assert decoded_docs(tmp_path / "ds2") == train + test


def test_a_dataset_dict_root_with_one_split_reads_it(tmp_path, tok_dir):
    root = write_saved_dataset_dict(tmp_path / "dd", {"train": DOCS})
    prep(root, tmp_path / "ds", tokenizer=tok_dir, val_fraction=0)
    assert decoded_docs(tmp_path / "ds") == DOCS


def test_mixed_directory_and_glob_patterns(tmp_path, tok_dir):
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    write_parquet(corpus / "a.parquet", DOCS[:2])
    write_jsonl(corpus / "b.jsonl", DOCS[2:3])
    write_arrow(corpus / "sub" / "c.arrow", DOCS[3:4])
    (corpus / "sub" / "d.jsonl.zst").write_bytes(
        zstandard.ZstdCompressor().compress(write_jsonl(tmp_path / "d.jsonl", DOCS[4:]).read_bytes()))
    (corpus / "sub" / "state.json").write_text("{}")  # not a corpus file: ignored
    res = prep(corpus, tmp_path / "ds", tokenizer=tok_dir, val_fraction=0)
    assert [s["format"] for s in res.meta["sources"]] == ["parquet", "jsonl", "arrow", "jsonl.zst"]
    assert decoded_docs(tmp_path / "ds") == DOCS

    assert collect_inputs([str(corpus / "**" / "*.arrow"), str(corpus / "*.parquet")]) == [
        corpus / "sub" / "c.arrow", corpus / "a.parquet"]
    with pytest.raises(PrepareError, match=r"corpus/\*.csv: the pattern matches no .jsonl"):
        collect_inputs([str(corpus / "*.csv")])


@pytest.mark.parametrize("frames", [1, 2])
@pytest.mark.parametrize("skip_invalid", [False, True])
def test_truncated_zst_is_refused_with_the_file_and_byte_offset(tmp_path, tok_dir, frames, skip_invalid):
    """A cut .zst is an error like a cut .gz, also next to a good file and with --skip-invalid:
    never a shorter corpus, "input is empty" or an "invalid JSON" line where the cut fell."""
    data = write_jsonl(tmp_path / "d.jsonl", [f"document {i} " + t for i, t in enumerate(topics_text(20_000))]).read_bytes()
    half = len(data) // 2
    pieces = [data] if frames == 1 else [data[:half], data[half:]]
    compressed = [zstandard.ZstdCompressor().compress(p) for p in pieces]
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_jsonl(corpus / "a_good.jsonl", DOCS)
    whole = b"".join(compressed)
    cut = len(whole) - len(compressed[-1]) // 2
    (corpus / "b_cut.jsonl.zst").write_bytes(whole[:cut])
    start = len(whole) - len(compressed[-1])
    with pytest.raises(PrepareError, match=rf"b_cut.jsonl.zst: cannot read \(truncated zstd data: the frame "
                                           rf"starting at byte {start} is cut off at byte {cut}"):
        prep(corpus, tmp_path / "ds", tokenizer=tok_dir, skip_invalid=skip_invalid)
    assert not (tmp_path / "ds").exists()
    (corpus / "b_cut.jsonl.zst").write_bytes(whole)  # the whole file reads
    prep(corpus, tmp_path / "ds", tokenizer=tok_dir, val_fraction=0)
    assert len(decoded_docs(tmp_path / "ds")) == len(DOCS) + data.count(b"\n")


def test_missing_optional_package_is_one_line_with_the_extra(tmp_path, monkeypatch):
    write_parquet(tmp_path / "a.parquet", DOCS)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what a missing package looks like to find_spec
    with pytest.raises(PrepareError) as exc:
        collect_inputs([tmp_path])
    assert str(exc.value) == f"{tmp_path / 'a.parquet'}: reading .parquet files needs the pyarrow package, which is not installed"
    assert exc.value.hint == "pip install 'minimind[formats]'"


def test_a_file_that_is_not_parquet_is_one_line(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet at all, just text" * 10)
    with pytest.raises(PrepareError, match=r"bad.parquet: cannot read as parquet \(.+\)$"):
        prep(tmp_path / "bad.parquet", tmp_path / "ds")


# ------------------------------------------------------------------------------ bad columns and rows

def test_missing_column_wrong_type_and_null_name_file_and_row(tmp_path):
    cases = {
        "nocol.parquet": (write_parquet(tmp_path / "nocol.parquet", DOCS, key="body"),
                          "nocol.parquet: row 1: missing column 'text' (columns: 'body'; try --text-key body)", {"missing key 'text'": 5}),
        "ints.arrow": (write_arrow(tmp_path / "ints.arrow", [1, 2, 3]),
                       "ints.arrow: row 1: column 'text' holds int64 values, not strings", {"text is not a string": 3}),
        "nulls.parquet": (write_parquet(tmp_path / "nulls.parquet", ["fine", None, "also fine", None]),
                          "nulls.parquet: row 2: 'text' is null, not a string", {"text is not a string": 2}),
    }
    for name, (path, message, skipped) in cases.items():
        with pytest.raises(PrepareError) as exc:
            prep(path, tmp_path / "ds")
        assert str(exc.value) == f"{tmp_path}/{message}"
        assert not (tmp_path / "ds").exists()
        if name == "nulls.parquet":
            res = prep(path, tmp_path / "ds", skip_invalid=True, val_fraction=0)
            assert res.meta["skipped"] == skipped
            assert decoded_docs(tmp_path / "ds") == ["fine", "also fine"]
        else:
            with pytest.raises(PrepareError, match="no documents to train on"):
                prep([path], tmp_path / "ds", skip_invalid=True)
    # counted per row beside good files, with --skip-invalid
    res = prep([tmp_path / "nocol.parquet", tmp_path / "ints.arrow", write_parquet(tmp_path / "ok.parquet", DOCS)],
               tmp_path / "ds", skip_invalid=True)
    assert res.meta["skipped"] == {"missing key 'text'": 5, "text is not a string": 3}


def test_row_numbers_are_right_across_row_groups_blocks_and_workers(tmp_path, tok_dir):
    texts = topics_text(150_000)
    bad_row = len(texts) - 7
    values = texts[:bad_row - 1] + [None] + texts[bad_row:]
    path = write_parquet(tmp_path / "big.parquet", values, row_group_size=300)
    with pytest.raises(PrepareError, match=rf"big.parquet: row {bad_row}: 'text' is null"):
        prep(path, tmp_path / "ds", tokenizer=tok_dir, workers=2, chunk_bytes=8 << 10)
    assert not (tmp_path / "ds").exists()


# ------------------------------------------------------------------------------ one and two workers

def test_one_and_two_workers_write_identical_bytes(tmp_path, tok_dir):
    texts = topics_text(150_000)
    texts = texts + texts[:300]  # duplicates, for dedup to find across blocks
    saved = write_saved_dataset(tmp_path / "saved", texts[:1000])
    corpus = [write_parquet(tmp_path / "a.parquet", texts, row_group_size=500), saved]
    out = {}
    for workers in (1, 2):
        res = prep(corpus, tmp_path / f"w{workers}", tokenizer=tok_dir, workers=workers, chunk_bytes=8 << 10,
                   dedup="exact")
        assert res.workers == workers
        out[workers] = (data_bytes(tmp_path / f"w{workers}"), res.meta)
    assert out[1][0] == out[2][0]
    assert out[1][1]["duplicates_removed"] == out[2][1]["duplicates_removed"] > 1000


# ------------------------------------------------------------------------------ dedup

def test_dedup_exact_counts_normalised_duplicates(tmp_path):
    texts = ["caf\u00e9 au lait", "cafe\u0301 au lait",  # NFC makes these one
             "two  spaces\tand\ttabs", " two spaces and\ntabs ",  # whitespace collapsed
             "Case matters", "case matters",
             "only once", "caf\u00e9 au lait", "   "]
    write_jsonl(tmp_path / "a.jsonl", texts[:5])
    write_parquet(tmp_path / "b.parquet", texts[5:])
    res = prep(tmp_path, tmp_path / "ds", dedup="exact", val_fraction=0)
    assert decoded_docs(tmp_path / "ds") == ["caf\u00e9 au lait", "two  spaces\tand\ttabs", "Case matters",
                                             "case matters", "only once"]
    assert res.meta["duplicates_removed"] == 3
    assert res.meta["skipped"] == {"empty text": 1}
    assert res.meta["options"]["dedup"] == "exact"
    prep(tmp_path, tmp_path / "same", dedup="exact", val_fraction=0)  # trains its tokenizer again
    assert data_bytes(tmp_path / "same") == data_bytes(tmp_path / "ds")
    again = prep(tmp_path, tmp_path / "ds2", val_fraction=0)
    assert "duplicates_removed" not in again.meta and again.meta["documents"] == 8


def test_lines_after_a_huge_line_are_all_read(tmp_path, tok_dir):
    """A huge line ending inside blocks the reader had already read: the blocks after it are kept."""
    long = " ".join(topics_text(40_000))
    docs = [long, "short one", long.upper(), "short two", "x" * 9000, long]
    src = write_jsonl(tmp_path / "a.jsonl", docs)
    prep(src, tmp_path / "ds", tokenizer=tok_dir, val_fraction=0, chunk_bytes=1024)
    assert decoded_docs(tmp_path / "ds") == docs


def test_dedup_of_huge_lines_read_in_pieces(tmp_path, tok_dir):
    long = " ".join(topics_text(40_000))
    variant = long.replace(" ", "  \t")  # the same text once normalised
    src = write_jsonl(tmp_path / "a.jsonl", [long, "short one", variant, "", long + " more"])
    res = prep(src, tmp_path / "ds", tokenizer=tok_dir, dedup="exact", val_fraction=0, chunk_bytes=1024)
    assert res.meta["duplicates_removed"] == 1 and res.meta["skipped"] == {"empty text": 1}
    assert decoded_docs(tmp_path / "ds") == [long, "short one", long + " more"]


def test_hash_of_a_text_fed_in_parts_equals_the_hash_of_the_whole():
    rng = random.Random(0)
    alphabet = list("ab \t\n\u00a0\u3000e\u0301\u0327\u0308\u00e9\u1100\u1161\u11a8\uac00\u4e2d\u6587.") + ["\U0001f916"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
        cuts = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randrange(0, 6))))
        hasher = TextHasher()
        for a, b in zip([0, *cuts], [*cuts, len(text)]):
            hasher.feed(text[a:b])
        assert hasher.digest() == text_hash(text), repr(text)
    assert normalize(" a\u3000b  e\u0301 ") == unicodedata.normalize("NFC", "a b \u00e9")


def test_seen_hashes_match_a_set_and_stay_eight_bytes_per_document():
    rng = np.random.default_rng(0)
    seen, reference = SeenHashes(), set()
    for _ in range(200):
        block = rng.integers(0, 5000, size=int(rng.integers(0, 80)), dtype=np.uint64)
        keep = seen.first_seen(block)
        expected = []
        for h in block.tolist():
            expected.append(h not in reference)
            reference.add(h)
        assert keep.tolist() == expected
    assert len(seen) == len(reference)
    assert sum(r.nbytes for r in seen.runs) == 8 * len(reference)
    assert len(seen.runs) <= 14  # runs of doubling size: logarithmic


# ------------------------------------------------------------------------------ limits

def test_max_documents_and_max_tokens_take_a_prefix(tmp_path, tok_dir):
    texts = [f"document {i} " + t for i, t in enumerate(topics_text(60_000))]
    path = write_parquet(tmp_path / "a.parquet", texts, row_group_size=50)
    full = prep(path, tmp_path / "full", tokenizer=tok_dir, val_fraction=0)
    lengths = np.diff(fmt.open_split(tmp_path / "full", "train").offsets)
    res = prep(path, tmp_path / "docs", tokenizer=tok_dir, val_fraction=0, max_documents=25, chunk_bytes=2048)
    assert decoded_docs(tmp_path / "docs") == texts[:25]
    assert res.meta["stopped_at_limit"] == "max_documents"
    budget = int(lengths[:40].sum()) + int(lengths[40]) - 1  # the 41st document does not fit
    res = prep(path, tmp_path / "tokens", tokenizer=tok_dir, val_fraction=0, max_tokens=budget, chunk_bytes=2048)
    assert decoded_docs(tmp_path / "tokens") == texts[:40]
    assert res.meta["tokens"] == int(lengths[:40].sum()) and res.meta["stopped_at_limit"] == "max_tokens"
    res = prep(path, tmp_path / "all", tokenizer=tok_dir, val_fraction=0, max_documents=10**9)
    assert res.meta["stopped_at_limit"] is None and res.meta["fingerprint"] == full.meta["fingerprint"]
    with pytest.raises(PrepareError, match="the first document has more than max tokens 3"):
        prep(path, tmp_path / "none", tokenizer=tok_dir, max_tokens=3)
    with pytest.raises(PrepareError, match="max documents must be at least 1"):
        prep(path, tmp_path / "none", max_documents=0)
    with pytest.raises(PrepareError, match="dedup 'fuzzy' is not known"):
        prep(path, tmp_path / "none", dedup="fuzzy")


def test_max_documents_trains_the_tokenizer_on_the_kept_documents_only(tmp_path):
    texts = [f"document {i} " + t for i, t in enumerate(topics_text(60_000))]
    path = write_jsonl(tmp_path / "a.jsonl", texts)
    res = prep(path, tmp_path / "docs", vocab_size=300, val_fraction=0, max_documents=25)
    assert res.meta["tokenizer"]["source"] == "trained"
    assert res.meta["tokenizer"]["trained_on_chars"] == sum(len(t) for t in texts[:25])
    whole = prep(path, tmp_path / "all", vocab_size=300, val_fraction=0)
    assert whole.meta["tokenizer"]["trained_on_chars"] == sum(len(t) for t in texts)
