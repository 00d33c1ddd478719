"""Benchmark `prepare` at the scale of MiniMind's own corpus (pretrain_hq.jsonl, 1.6 GB).

    PYTHONPATH=. python benchmarks/prepare.py --size 1.6GB [--tmp DIR] [--runs plain,jsonl1,jsonl2,parquet1,parquet2]

Generates a corpus of that size and shape, short Chinese and English documents under 512
characters, as .jsonl and as Parquet (the same documents, snappy, row groups of 20,000 rows), in a
temporary directory deleted at the end (``--corpus DIR`` keeps them in DIR and reuses them there, which
saves the ~10 minutes of generating 1.6 GB when runs are repeated). Then, each run a child process whose whole process tree
is polled for RSS and bytes written every 0.1 s:

- ``plain``: a single-process loop, ``json.loads`` + ``tokenizers`` ``encode`` per line: the baseline;
- ``jsonlN`` / ``parquetN``: ``prepare_dataset`` with N workers, on the same tokenizer (vocab 6400,
  trained once on the first 20 MB), so that rates compare like for like;
- ``train``: ``prepare`` on the .jsonl with all workers, training its own tokenizer (first 64 MB).

Prints one JSON object: MB/s of input, the ratio to the plain loop (MB/s of the same text for the
Parquet runs: the .jsonl's size is the measure, as JSON escapes and keys would flatter Parquet),
peak RSS of the process tree, bytes written, and the size of the dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from _common import REPO, use_repo  # this directory is first on sys.path

use_repo()

PLAIN = """
import json, resource, sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[2])
t0 = time.perf_counter(); n = 0
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        n += len(tok.encode(json.loads(line)["text"], add_special_tokens=False).ids) + 2
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - t0, "tokens": n, "cpu_s": u.ru_utime + u.ru_stime}))
"""

PREPARE = """
import json, resource, sys, time
from minimind.data.prepare import prepare_dataset
workers = int(sys.argv[3]); tok = sys.argv[4] if sys.argv[4] != "-" else None
t0 = time.perf_counter()
r = prepare_dataset([sys.argv[1]], sys.argv[2], tokenizer=tok, workers=workers, force=True)
print(json.dumps({"seconds": time.perf_counter() - t0, "tokens": r.meta["tokens"] + r.meta["val_tokens"],
                  "documents": r.meta["documents"] + r.meta["val_documents"], "workers": r.workers,
                  "tokenizer_seconds": r.tokenizer_seconds,
                  "main_cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                  "workers_cpu_s": sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])}))
"""

# Common Chinese characters (by frequency, roughly): words are drawn from them with Zipf-like weights.
HANZI = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"
         "而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好"
         "应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道"
         "命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长"
         "求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色"
         "光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清美再采转更单风切打白教速"
         "花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需"
         "段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感"
         "劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂")
PUNCT = "，，，。。、；：！？"


def zh_doc(rng: random.Random, n_chars: int, weights: list[float]) -> str:
    chars = rng.choices(HANZI, weights=weights, k=n_chars)
    out, i = [], 0
    while i < n_chars:  # clauses of 4-20 characters
        step = rng.randint(4, 20)
        out.append("".join(chars[i:i + step]))
        out.append(rng.choice(PUNCT))
        i += step
    return "".join(out)[:n_chars - 1] + "。"


def en_doc(rng: random.Random, n_chars: int, words: list[str]) -> str:
    out, total = [], 0
    while total < n_chars:
        w = rng.choice(words)
        out.append(w)
        total += len(w) + 1
    return " ".join(out)[:n_chars].rstrip() + "."


def english_words() -> list[str]:
    from pydoc_data.topics import topics

    return re.findall(r"[A-Za-z][A-Za-z']*[,.]?", " ".join(topics[k] for k in sorted(topics)))


def make_corpus(root: Path, target_bytes: int, seed: int = 0) -> tuple[Path, Path, int]:
    """A .jsonl of about ``target_bytes`` and a Parquet file of the same documents; documents written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    weights = [1.0 / (i + 10) for i in range(len(HANZI))]
    words = english_words()
    jsonl, parquet = root / "corpus.jsonl", root / "corpus.parquet"
    written = docs = 0
    schema = pa.schema([("text", pa.string())])
    with open(jsonl, "w", encoding="utf-8") as f, pq.ParquetWriter(parquet, schema) as pw:
        while written < target_bytes:
            batch = []
            for _ in range(20_000):  # one Parquet row group
                n = rng.randint(40, 511)
                batch.append(zh_doc(rng, n, weights) if rng.random() < 0.7 else en_doc(rng, n, words))
            lines = "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in batch)
            f.write(lines)
            written += len(lines.encode("utf-8"))
            pw.write_table(pa.table({"text": batch}, schema=schema))
            docs += len(batch)
    return jsonl, parquet, docs


def run_child(code: str, *args: str) -> dict:
    """Run a child, polling its whole process tree (main + workers) every 0.1 s: peak summed RSS and
    the bytes each process has sent to storage (the last value seen for each)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    tree_peak, written, loads = 0, {}, []
    while proc.poll() is None:
        loads.append(os.getloadavg()[0])
        try:
            procs = [ps, *ps.children(recursive=True)]
            rss = 0
            for p in procs:
                rss += p.memory_info().rss
                written[p.pid] = p.io_counters().write_bytes
            tree_peak = max(tree_peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {err[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["tree_peak_rss_mb"] = round(tree_peak / 2**20, 1)
    result["tree_written_mb"] = round(sum(written.values()) / 1e6, 1)
    result["mean_load_average"] = round(sum(loads) / max(1, len(loads)), 1)
    return result


def dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 1)


def parse_size(text: str) -> int:
    m = re.fullmatch(r"([\d.]+)\s*([KMG]?)B?", text.strip().upper())
    if not m:
        raise SystemExit(f"--size {text}: expected e.g. 1.6GB or 200MB")
    return int(float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m.group(2)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="200MB", help="size of the generated .jsonl (e.g. 1.6GB)")
    parser.add_argument("--runs", default="plain,jsonl2,parquet2,jsonl1,parquet1",
                        help="which runs, in this order: plain, jsonlN, parquetN, train")
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="where to build the inputs")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="reuse corpus.jsonl + corpus.parquet in this directory (made and kept there if absent)")
    args = parser.parse_args()

    from minimind.data.prepare import default_workers
    from minimind.data.tokenizer import train_tokenizer

    root = Path(tempfile.mkdtemp(prefix="minimind-bench-prepare-", dir=args.tmp))
    report: dict = {"benchmark": "prepare", "python": platform.python_version(), "cpus": default_workers(),
                    "machine": platform.machine(), "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        t0 = time.perf_counter()
        if args.corpus and (args.corpus / "corpus.parquet").exists():
            jsonl, parquet = args.corpus / "corpus.jsonl", args.corpus / "corpus.parquet"
            docs = __import__("pyarrow.parquet").parquet.ParquetFile(parquet).metadata.num_rows
        else:
            if args.corpus:
                args.corpus.mkdir(parents=True, exist_ok=True)
            jsonl, parquet, docs = make_corpus(args.corpus or root, parse_size(args.size))
        jsonl_mb, parquet_mb = jsonl.stat().st_size / 1e6, parquet.stat().st_size / 1e6
        report["corpus"] = {"documents": docs, "jsonl_mb": round(jsonl_mb, 1), "parquet_mb": round(parquet_mb, 1),
                            "generate_seconds": round(time.perf_counter() - t0, 1)}
        print(json.dumps(report["corpus"]), file=sys.stderr, flush=True)
        with open(jsonl, encoding="utf-8") as f:
            sample = [json.loads(line)["text"] for _, line in zip(range(40_000), f)]
        tok_dir = train_tokenizer(iter(sample), 6400, root / "tokenizer")
        tok_file = str(tok_dir / "tokenizer.json")
        runs: dict = {}
        for name in args.runs.split(","):
            out = root / "out"
            if name == "plain":
                r = run_child(PLAIN, str(jsonl), tok_file)
            elif name == "train":
                r = run_child(PREPARE, str(jsonl), str(out), str(default_workers()), "-")
            else:
                fmt, workers = re.fullmatch(r"(jsonl|parquet)(\d+)", name).groups()
                r = run_child(PREPARE, str(jsonl if fmt == "jsonl" else parquet), str(out), workers, str(tok_dir))
            r["mb_per_s"] = round(jsonl_mb / r["seconds"], 2)  # MB of .jsonl text, whatever the format
            if out.exists():
                r["dataset_mb"] = dir_mb(out)
                shutil.rmtree(out)
            if "plain" in runs:
                plain = runs["plain"]
                r["ratio_to_plain_loop"] = round(plain["seconds"] / r["seconds"], 2)
                # On a shared machine wall time measures the neighbours too. CPU seconds do not: this is
                # the ratio if every process of the run had a core of its own (the busiest one bounds it).
                busiest = r.get("cpu_s") or max(r["main_cpu_s"], r["workers_cpu_s"] / r["workers"])
                r["ratio_one_core_per_process"] = round(plain["cpu_s"] / busiest, 2)
            r["cpu_s_per_mb"] = round((r.get("cpu_s") or r["main_cpu_s"] + r["workers_cpu_s"]) / jsonl_mb, 3)
            runs[name] = r
            print(json.dumps({name: r}), file=sys.stderr, flush=True)
        report["runs"] = runs
        report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
