import json

import pytest

from minimind.data import format as fmt
from minimind.data.sample import build_sample_corpus, prepare_sample


def test_sample_corpus_is_real_text_of_a_few_megabytes(tmp_path):
    a = build_sample_corpus(tmp_path / "a.jsonl")
    assert 1_000_000 < a.stat().st_size < 20_000_000
    # split("\n"), not splitlines(): JSON leaves U+2028 and U+0085 unescaped inside strings
    docs = [json.loads(line) for line in a.read_text(encoding="utf-8").split("\n") if line]
    assert len(docs) > 1000
    assert docs[0]["source"].startswith("pydoc_data.topics:")
    assert any(d["source"].endswith(".py") for d in docs)
    assert all(d["text"].strip() for d in docs)
    assert len({d["text"] for d in docs}) == len(docs)
    assert not list(tmp_path.glob("**/*.tmp-*"))


@pytest.mark.slow
def test_prepare_sample_builds_a_dataset_and_reuses_it(tmp_path):
    """The second call rebuilds the corpus and reuses the dataset only if its sha256 is unchanged:
    this is also the determinism check (same bytes twice)."""
    first = prepare_sample(tmp_path / "data", vocab_size=512)
    meta = fmt.read_meta(tmp_path / "data")
    assert not first.reused and meta["documents"] > 1000 and meta["val_documents"] > 0
    assert meta["sources"][0]["path"] == "built-in sample corpus"
    assert meta["tokenizer"]["source"] == "trained"
    again = prepare_sample(tmp_path / "data", vocab_size=512)
    assert again.reused and again.meta["fingerprint"] == meta["fingerprint"]
