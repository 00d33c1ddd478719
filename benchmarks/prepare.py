"""Benchmark `prepare`: MB/s with 1 and all workers against a plain single-process `tokenizers` encode
loop over the same file in the same run, and peak memory as the input grows (20 MB -> 200 MB).

    PYTHONPATH=. python benchmarks/prepare.py [--sizes 20,200] [--no-train] [--tmp /tmp]

Inputs are generated from the built-in sample corpus (real English) in a temporary directory that
is deleted at the end. Every measured run is a child process, so its peak RSS is its own; the
tokenizer (vocab 6400, trained once on the sample corpus) is passed with --tokenizer so that the
encoding rates compare like for like; with --train (default) one more run per size includes training
the tokenizer on the corpus (the first 64 MB of it). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PLAIN = """
import json, resource, sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[2])
t0 = time.perf_counter(); n = 0
with open(sys.argv[1], encoding="utf-8") as f:
    for line in f:
        n += len(tok.encode(json.loads(line)["text"], add_special_tokens=False).ids) + 2
u = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": time.perf_counter() - t0, "tokens": n, "cpu_s": u.ru_utime + u.ru_stime,
                  "self_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
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
                  "workers_cpu_s": sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]),
                  "self_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "largest_worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run_child(code: str, *args: str) -> dict:
    """Run a child, polling the RSS of its whole process tree (main + workers) every 0.1 s."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    tree_peak = 0
    while proc.poll() is None:
        try:
            rss = sum(p.memory_info().rss for p in [ps, *ps.children(recursive=True)])
            tree_peak = max(tree_peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {err[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result["tree_peak_mb"] = round(tree_peak / 2**20, 1)
    return result


def parallel_ceiling(src: Path, tok_file: str, n: int, alone_seconds: float) -> dict:
    """n independent plain loops at once: the best any n-process prepare could do on this machine now
    (on a machine shared with other work this, not n, is the real bound)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", PLAIN, str(src), tok_file], env=env, stdout=subprocess.PIPE,
                              text=True) for _ in range(n)]
    for p in procs:
        p.communicate()
    seconds = time.perf_counter() - t0
    return {"processes": n, "seconds": round(seconds, 2), "throughput_vs_one_loop": round(n * alone_seconds / seconds, 2)}


def make_input(sample: Path, path: Path, megabytes: int) -> Path:
    data = sample.read_bytes()
    target = megabytes * 10**6
    with open(path, "wb") as f:
        written = 0
        while written < target:
            f.write(data)
            written += len(data)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20,200", help="input sizes in MB (comma separated)")
    parser.add_argument("--no-train", action="store_true", help="skip the runs that train the tokenizer")
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="where to build the inputs")
    args = parser.parse_args()

    from minimind.data.prepare import default_workers
    from minimind.data.sample import build_sample_corpus
    from minimind.data.tokenizer import train_tokenizer

    all_workers = default_workers()
    root = Path(tempfile.mkdtemp(prefix="minimind-bench-prepare-", dir=args.tmp))
    report: dict = {"benchmark": "prepare", "python": platform.python_version(), "cpus": all_workers,
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                    "machine": platform.machine(), "runs": []}
    try:
        sample = build_sample_corpus(root / "sample.jsonl")
        texts = (json.loads(line)["text"] for line in sample.read_text(encoding="utf-8").split("\n") if line)
        tok_dir = train_tokenizer(texts, 6400, root / "tokenizer")
        tok_file = str(tok_dir / "tokenizer.json")
        sizes = [int(s) for s in args.sizes.split(",")]
        for mb in sizes:
            src = make_input(sample, root / f"input_{mb}mb.jsonl", mb)
            size_mb = src.stat().st_size / 1e6
            entry: dict = {"input_mb": round(size_mb, 1)}
            plain = run_child(PLAIN, str(src), tok_file)
            entry["plain_loop"] = {**plain, "mb_per_s": round(size_mb / plain["seconds"], 2)}
            if all_workers > 1 and mb == sizes[0]:
                entry["ceiling_independent_loops"] = parallel_ceiling(src, tok_file, all_workers, plain["seconds"])
            for workers in sorted({1, all_workers}):
                r = run_child(PREPARE, str(src), str(root / "out"), str(workers), str(tok_dir))
                r["mb_per_s"] = round(size_mb / r["seconds"], 2)
                r["speedup_vs_plain_loop"] = round(plain["seconds"] / r["seconds"], 2)
                entry[f"prepare_{workers}_workers"] = r
            if not args.no_train:
                r = run_child(PREPARE, str(src), str(root / "out"), str(all_workers), "-")
                r["mb_per_s"] = round(size_mb / r["seconds"], 2)
                entry["prepare_with_tokenizer_training"] = r
            report["runs"].append(entry)
            src.unlink()
            print(json.dumps(entry), file=sys.stderr, flush=True)
        if len(report["runs"]) >= 2:
            first, last = report["runs"][0], report["runs"][-1]
            key = f"prepare_{all_workers}_workers"
            report["rss_growth_mb"] = {
                "from_mb": first["input_mb"], "to_mb": last["input_mb"],
                "main_process": round(last[key]["self_peak_mb"] - first[key]["self_peak_mb"], 1),
                "process_tree": round(last[key]["tree_peak_mb"] - first[key]["tree_peak_mb"], 1)}
            if "prepare_with_tokenizer_training" in first:
                report["rss_growth_mb"]["process_tree_with_training"] = round(
                    last["prepare_with_tokenizer_training"]["tree_peak_mb"]
                    - first["prepare_with_tokenizer_training"]["tree_peak_mb"], 1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
