"""``python -m minimind.data.prepare IN... OUT``: prepare without the CLI (handy for profiling)."""

import json
import sys

from minimind.data.prepare import prepare_dataset

if __name__ == "__main__":  # the guard matters: spawned workers import this module too
    r = prepare_dataset(sys.argv[1:-1], sys.argv[-1])
    print(json.dumps({k: r.meta[k] for k in ("documents", "tokens", "skipped")}), f"{r.seconds:.1f}s")
