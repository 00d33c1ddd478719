"""Learning per token: validation loss at equal trained tokens for training variants given as config
overrides, each a real trainer process (``python -m minimind.train``) with fixed seeds. Prints JSON.

Every variant saves checkpoints at fixed fractions of the run; each is scored by the same
evaluator as ``minimind eval`` on the validation split, packed windows and one document per row,
at one fixed window length. Reported per variant: val loss (both modes) at the end, the val-loss
curve against trained tokens, the tokens it took to reach the baseline's final val loss (linear
interpolation between checkpoints), tokens/s, and for MoE runs the expert imbalance (max/mean
token share of the worst layer, per step averaged over the steps after warm-up, and aggregate: the
shares of all those steps' tokens together) from the step events.

    python benchmarks/quality.py                          # features: optimizer, MoE balance, curriculum
    python benchmarks/quality.py --suite recipes          # packed (ours) vs padded (MiniMind) for one epoch
    python benchmarks/quality.py --suite custom --variant "lr3e-3=train.learning_rate=3e-3" --tokens 200000
    python benchmarks/quality.py --data out/data --profile tiny --tokens 400000

A variant whose config key does not exist (yet) is reported as "unavailable" with the reason.
The budget is --tokens per variant (default 250k, tiny profile); size it to the machine: RESULTS.md
used 40k on a heavily shared 2-core CPU (~5-7 minutes per variant including scoring).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, ensure_data, use_repo  # this directory is first on sys.path

use_repo()

CURVE_POINTS = 5  # checkpoints per run
SUITES = {
    # name -> [(variant, overrides)], the first is the baseline
    "features": [  # each lever against the profile as shipped (Muon since the profiles switched)
        ("shipped", []),
        ("adamw", ["train.optimizer=adamw"]),
        ("curriculum", ["data.seq_len_schedule=[[0, 32], [0.3, 64], [0.6, 128]]"]),
        ("moe-aux_loss", ["model.use_moe=true", "model.router_balance=aux_loss"]),
        ("moe-bias", ["model.use_moe=true", "model.router_balance=bias"]),
        ("moe-bias-1e-2", ["model.use_moe=true", "model.router_balance=bias", "model.router_bias_coeff=1e-2"]),
    ],
    "recipes": [  # written for the tiny profile: MiniMind's recipe is its rows per step (16) padded
        ("minimind-padded", ["data.packing=false", "train.batch_size=16"]),
        ("ours", []),  # the profile as shipped: packed, document-aware, half the rows per step
        ("packed-batch16", ["train.batch_size=16"]),  # packed at MiniMind's rows per step
        ("packed-plain", ["data.doc_mask=false"]),  # packed, attention across documents
    ],
}


def check_variant(profile: str, overrides: list[str]) -> str | None:
    """None if the overrides make a valid config, else why not (an unknown key: not built yet)."""
    from minimind.config import resolve
    from minimind.errors import MinimindError

    try:
        resolve(profile, overrides)
    except MinimindError as exc:
        return exc.message
    return None


def train_run(run_dir: Path, profile: str, overrides: list[str], timeout: float) -> tuple[int, float, str]:
    """Write the resolved config and run the trainer process on it; (exit code, seconds, stderr tail)."""
    from minimind.config import resolve, save_config

    run_dir.mkdir(parents=True)
    save_config(resolve(profile, overrides), run_dir / "config.yaml")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "minimind.train", str(run_dir)], env=env, capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, time.perf_counter() - t0, proc.stderr[-2000:]


def score_checkpoints(run_dir: Path, data: Path, seq_len: int, batch_size: int, val_docs: int | None) -> list[dict]:
    """Val loss (packed and per document) of every checkpoint of a run, by the eval code path."""
    from minimind import checkpoint, evaluation
    from minimind.weights import build_model, load_weights

    text = evaluation.dataset_text(data, "val", max_docs=val_docs)
    points = []
    for info in checkpoint.list_checkpoints(run_dir):
        model = build_model(load_weights(info.path))
        row = {"step": info.step, "tokens": int(info.meta.get("tokens_seen", 0))}
        for mode in evaluation.MODES:
            res = evaluation.evaluate_model(model, text, mode=mode, seq_len=seq_len, batch_size=batch_size)
            row[mode] = round(res.loss, 4)
            if mode == "document" and res.bits_per_byte is not None:
                row["document_bpb"] = round(res.bits_per_byte, 4)
        points.append(row)
    return points


def tokens_to_reach(curve: list[dict], target: float, key: str) -> int | None:
    """Trained tokens at which the val loss first reaches ``target`` (linear between checkpoints)."""
    prev = None
    for point in curve:
        if point[key] <= target:
            if prev is None:
                return point["tokens"]
            frac = (prev[key] - target) / (prev[key] - point[key])
            return int(prev["tokens"] + frac * (point["tokens"] - prev["tokens"]))
        prev = point
    return None


def step_stats(run_dir: Path, warmup_frac: float = 0.2) -> dict:
    """tokens/s (median over step events) and the MoE imbalance after warm-up, from events.jsonl."""
    from minimind.events import read_events

    steps = [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "step"]
    out: dict = {}
    if steps:
        rates = sorted(e["tokens_per_s"] for e in steps[1:] or steps)
        out["tokens_per_s"] = round(rates[len(rates) // 2], 1)
        out["steps"] = steps[-1]["step"]
        out["tokens_seen"] = steps[-1]["tokens_seen"]
        late = [e for e in steps if e["step"] > warmup_frac * steps[-1]["total_steps"] and e.get("moe")]
        imb = [max(e["moe"]["imbalance"]) if isinstance(e["moe"]["imbalance"], list) else e["moe"]["imbalance"]
               for e in late if e["moe"].get("imbalance") is not None]
        if imb:
            out["imbalance_max_over_mean"] = round(sum(imb) / len(imb), 3)
            out["imbalance_worst"] = round(max(imb), 3)
        loads = [e["moe"]["load"] for e in late if isinstance(e["moe"].get("load"), list)]
        if loads:  # token shares over all post-warm-up steps together, worst layer
            shares = [[sum(step[layer][x] for step in loads) for x in range(len(loads[0][layer]))]
                      for layer in range(len(loads[0]))]
            out["imbalance_aggregate"] = round(max(max(s) / (sum(s) / len(s)) for s in shares), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", choices=[*SUITES, "custom"], default="features")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=key=value[,key=value...] (custom suite; the first is the baseline)")
    ap.add_argument("--only", default=None, help="comma-separated variant names to run")
    ap.add_argument("--data", type=Path, default=None, help="a prepared dataset (default: the sample corpus)")
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--set", action="append", default=[], help="overrides for every variant")
    ap.add_argument("--tokens", type=int, default=250_000,
                    help="trained-token budget per variant (0 = one epoch, the recipes suite's default)")
    ap.add_argument("--seq-len", type=int, default=None, help="eval window (default: the profile's max_seq_len)")
    ap.add_argument("--eval-batch", type=int, default=16)
    ap.add_argument("--val-docs", type=int, default=120, help="validation documents scored (0 = all)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per variant")
    ap.add_argument("--keep", type=Path, default=None, help="keep the runs under this directory")
    args = ap.parse_args()

    from minimind.config import resolve
    from minimind.data.format import read_meta

    # the sample corpus with a 5% validation split (a 0.5% split of this small corpus is 20
    # documents: too few to compare runs)
    data = ensure_data(args.data, "minimind-bench-quality-sample", val_fraction=0.05)
    meta = read_meta(data)
    variants = SUITES.get(args.suite, [])
    if args.suite == "custom":
        variants = [(v.split("=", 1)[0], [o for o in v.split("=", 1)[1].split(",") if o] if "=" in v else [])
                    for v in args.variant]
    if args.only:
        keep = set(args.only.split(","))
        variants = [v for v in variants if v[0] in keep]
    one_epoch = args.suite == "recipes" and args.tokens == 250_000 or args.tokens == 0
    root = args.keep or Path(tempfile.mkdtemp(prefix="minimind-quality-"))
    args.val_docs = args.val_docs or None
    common = [f"data.path={data}", f"run.out_dir={root / 'out'}", f"model.vocab_size={meta['vocab_size']}", "train.device=cpu",
              "train.dtype=fp32", "train.compile=false", "train.eval_interval=0", "train.log_interval=1",
              "train.keep_last=1000", *args.set]
    base_cfg = resolve(args.profile, common)
    seq_len = args.seq_len or base_cfg.data.max_seq_len

    results: dict = {"suite": args.suite, "profile": args.profile, "data": str(data),
                     "train_tokens": meta.get("tokens"), "val_documents": meta.get("val_documents"),
                     "val_tokens": meta.get("val_tokens"), "val_docs_scored": args.val_docs, "eval_seq_len": seq_len, "common_overrides": args.set,
                     "budget_tokens": None if one_epoch else args.tokens, "epochs": 1 if one_epoch else None,
                     "torch_threads": __import__("torch").get_num_threads(), "variants": {}}
    for name, overrides in variants:
        budget: list[str] = ["train.epochs=1", "train.max_steps=null"] if one_epoch else \
            [f"train.max_steps={_steps_for(args.profile, common + overrides, args.tokens)}", "train.epochs=100"]
        why = check_variant(args.profile, common + budget + overrides)
        if why is not None:
            results["variants"][name] = {"overrides": overrides, "status": "unavailable", "reason": why}
            print(f"{name}: unavailable ({why})", file=sys.stderr, flush=True)
            continue
        cfg = resolve(args.profile, common + budget + overrides)
        steps = _total_steps(cfg)
        save = [f"train.save_interval={max(1, steps // CURVE_POINTS)}"]
        run_dir = root / name
        code, seconds, err = train_run(run_dir, args.profile, common + budget + overrides + save, args.timeout)
        entry: dict = {"overrides": overrides, "status": "ok" if code == 0 else f"failed (exit {code})",
                       "train_seconds": round(seconds, 1), **step_stats(run_dir)}
        if code != 0:
            entry["stderr"] = err
        else:
            entry["curve"] = score_checkpoints(run_dir, data, seq_len, args.eval_batch, args.val_docs)
            entry["final"] = {k: v for k, v in entry["curve"][-1].items() if k not in ("step",)}
        results["variants"][name] = entry
        print(f"{name}: {entry['status']} {entry.get('final')} in {seconds:.0f}s", file=sys.stderr, flush=True)

    _compare(results, variants)
    print(json.dumps(results, indent=2))


def _steps_for(profile: str, overrides: list[str], tokens: int) -> int:
    """Optimizer steps that train about ``tokens`` real tokens (padded rows hold fewer)."""
    import numpy as np

    from minimind.config import resolve
    from minimind.data.format import open_split

    try:
        cfg = resolve(profile, overrides)
    except Exception:  # noqa: BLE001 - an unavailable variant; check_variant says why
        return 1
    t, window = cfg.train, cfg.data.max_seq_len + 1
    per_sample = float(cfg.data.max_seq_len)
    if not cfg.data.packing:
        lengths = np.diff(open_split(cfg.data.path, "train").offsets)
        per_sample = float(np.minimum(lengths, window).mean() - 1)
    return max(1, math.ceil(tokens / (t.batch_size * t.accumulation_steps * per_sample)))


def _total_steps(cfg) -> int:
    from minimind.data.dataset import PretrainDataset, optimizer_steps

    ds = PretrainDataset(cfg.data.path, cfg.data.max_seq_len, cfg.data.packing, "train")
    t = cfg.train
    return optimizer_steps(len(ds) // t.batch_size, t.epochs, t.accumulation_steps, t.max_steps)


def _compare(results: dict, variants: list) -> None:
    """Against the first variant: final val loss difference and tokens to reach its final loss."""
    ok = {k: v for k, v in results["variants"].items() if v.get("status") == "ok"}
    if not variants or variants[0][0] not in ok:
        return
    base = ok[variants[0][0]]
    for entry in ok.values():
        cmp: dict = {}
        for key in ("packed", "document"):
            target = base["final"][key]
            reached = tokens_to_reach(entry["curve"], target, key)
            cmp[f"{key}_delta"] = round(entry["final"][key] - target, 4)
            cmp[f"{key}_tokens_to_baseline"] = reached
            cmp[f"{key}_tokens_ratio"] = round(reached / base["final"]["tokens"], 3) if reached else None
        if base.get("tokens_per_s") and entry.get("tokens_per_s"):
            cmp["tokens_per_s_ratio"] = round(entry["tokens_per_s"] / base["tokens_per_s"], 3)
        if base.get("train_seconds"):
            cmp["wall_ratio"] = round(entry["train_seconds"] / base["train_seconds"], 3)
        entry["vs_baseline"] = cmp


if __name__ == "__main__":
    main()
