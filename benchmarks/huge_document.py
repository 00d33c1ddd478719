"""Benchmark `prepare` on one huge document on one line: peak RSS of the whole process tree (the
CLI and its workers) and seconds. Target: < 500 MB for a 100 MB document.

    python benchmarks/huge_document.py [--mb 100] [--train]

The document is real English (the built-in sample corpus repeated), written as a single
``{"text": ...}`` line in a temporary directory that is deleted at the end. Without --train the
sample corpus's own tokenizer is passed, so only encoding is measured; with --train, prepare also
trains its tokenizer on the document. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from _common import REPO, use_repo  # this directory is first on sys.path

use_repo()


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--train", action="store_true", help="also train the tokenizer on the document")
    args = parser.parse_args()
    from minimind.data.sample import build_sample_corpus, prepare_sample

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sample = Path(prepare_sample(tmp / "sample").path)
        corpus = build_sample_corpus(tmp / "sample.jsonl")
        text = " ".join(json.loads(line)["text"] for line in open(corpus, encoding="utf-8"))
        doc = tmp / "huge.jsonl"
        target = args.mb << 20
        with open(doc, "w", encoding="utf-8") as f:
            f.write('{"text": "')
            written = 0
            piece = json.dumps(text)[1:-1]
            while written < target:
                f.write(piece)
                written += len(piece.encode("utf-8"))
            f.write('"}\n')
        argv = [sys.executable, "-m", "minimind_cli", "prepare", str(doc), "-o", str(tmp / "out"), "--force"]
        if not args.train:
            argv += ["--tokenizer", str(sample / "tokenizer")]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        t0 = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        proc, peak = psutil.Process(child.pid), 0
        while child.poll() is None:
            peak = max(peak, tree_rss(proc))
            time.sleep(0.05)
        seconds = time.perf_counter() - t0
        out, err = child.communicate()
        meta = json.loads((tmp / "out" / "meta.json").read_text()) if child.returncode == 0 else {}
        print(json.dumps({"benchmark": "huge_document", "document_mb": round(doc.stat().st_size / 2**20, 1),
                          "train_tokenizer": args.train, "exit_code": child.returncode,
                          "seconds": round(seconds, 1), "peak_tree_rss_mb": round(peak / 2**20, 1),
                          "tokens": meta.get("tokens"), "error": err[-500:] if child.returncode else None},
                         indent=2))


if __name__ == "__main__":
    main()
