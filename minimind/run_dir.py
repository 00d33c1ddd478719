"""The one place that knows where things are: an output directory, a run directory, a checkpoint.

    OUT/                                 --out (default: out)
      runs/<run>/                        a run directory
        config.yaml                      the resolved config (written by the CLI, read by the trainer)
        events.jsonl                     the event stream (``minimind.events``)
        trainer.log                      the trainer's stdout and stderr
        trainer.lock                     the live trainer's lock (``minimind.runlock``)
        control.json                     commands to the trainer (``minimind.control``)
        pretrain_<hidden>[_moe].pth      the run's own weights (+ ``.json``, their sidecar config)
        checkpoints/step_<N:08d>/        a checkpoint (``minimind.checkpoint``):
          model.pt optimizer.pt state.pt config.yaml meta.json
      data/                              the dataset ``minimind prepare`` makes by default
      cache/<hash>/                      data files prepared by ``pretrain --data FILE``
      pretrain_<hidden>[_moe].pth        the shared weights (MiniMind's file name)

Every other module asks here for a path instead of spelling it (no ``.parent`` hops elsewhere).
Stdlib only, so the CLI and the dashboard use it without torch.
"""

from __future__ import annotations

import re
from pathlib import Path

# A run directory
CONFIG_FILE = "config.yaml"
EVENTS_FILE = "events.jsonl"
TRAINER_LOG = "trainer.log"
LOCK_FILE = "trainer.lock"
CONTROL_FILE = "control.json"
CHECKPOINTS_DIR = "checkpoints"

# A checkpoint directory (its config.yaml is CONFIG_FILE)
MODEL_FILE = "model.pt"
OPTIMIZER_FILE = "optimizer.pt"
STATE_FILE = "state.pt"
META_FILE = "meta.json"  # written last: a checkpoint without it is incomplete
CHECKPOINT_FILES = (MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, CONFIG_FILE, META_FILE)
STEP_DIR = re.compile(r"^step_(\d+)$")

# An output directory
RUNS_DIR = "runs"
DATA_DIR = "data"
CACHE_DIR = "cache"


def step_dir_name(step: int) -> str:
    return f"step_{step:08d}"


def checkpoints_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR


def run_of(checkpoint: str | Path) -> Path:
    """The run directory of a checkpoint directory (``RUN/checkpoints/step_N`` -> ``RUN``)."""
    return Path(checkpoint).parent.parent


def out_dir_of(run_dir: str | Path) -> Path:
    """The output directory of a run directory (``OUT/runs/<run>`` -> ``OUT``)."""
    return Path(run_dir).parent.parent


def out_dir_of_checkpoint(checkpoint: str | Path) -> Path:
    """The output directory of a checkpoint (``OUT/runs/<run>/checkpoints/step_N`` -> ``OUT``)."""
    return out_dir_of(run_of(checkpoint))


def is_run_dir(path: str | Path) -> bool:
    """A directory the CLI made for a run (it has its events or its config)."""
    return (Path(path) / EVENTS_FILE).is_file() or (Path(path) / CONFIG_FILE).is_file()


def runs_dir(out_dir: str | Path) -> Path:
    """Where ``minimind pretrain`` puts its runs: ``OUT/runs``."""
    return Path(out_dir) / RUNS_DIR


def runs_listing_dir(root: str | Path) -> Path:
    """The directory whose children ``minimind runs ROOT`` lists: ``ROOT/runs`` when there is one
    (an output directory), else ``ROOT`` itself."""
    return runs_dir(root) if runs_dir(root).is_dir() else Path(root)


def default_data_dir(out_dir: str | Path) -> Path:
    """The dataset of an output directory when none is named: ``OUT/data``."""
    return Path(out_dir) / DATA_DIR


def cache_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / CACHE_DIR


def dataset_of(run_dir: str | Path, data_path: str, *, in_run: bool = True) -> Path | None:
    """The dataset directory a run's config names (``data.path``): as given, relative to the run's
    output directory, or (``in_run``) relative to the run directory; None when none is there."""
    candidates = [Path(data_path), out_dir_of(run_dir) / data_path]
    if in_run:
        candidates.append(Path(run_dir) / data_path)
    return next((c for c in candidates if c.is_dir()), None)


def weights_path(out_dir: str | Path, hidden_size: int, use_moe: bool) -> Path:
    """MiniMind's weights file name: ``pretrain_<hidden>[_moe].pth``."""
    return Path(out_dir) / f"pretrain_{hidden_size}{'_moe' if use_moe else ''}.pth"


def weights_config_path(weights_file: str | Path) -> Path:
    """The sidecar config of a weights file: ``pretrain_256.pth`` -> ``pretrain_256.json``."""
    return Path(weights_file).with_suffix(".json")
