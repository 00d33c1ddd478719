"""Training checkpoints that survive any crash, and the weights-only ``pretrain_*.pth`` file.

A checkpoint is a directory ``<run>/checkpoints/step_<N:08d>/``:

    model.pt       model state dict (fp32, native keys, both tied names)
    optimizer.pt   optimizer state dict
    state.pt       loop state: step, tokens, data position, RNG states (python, numpy, torch, cuda), scaler
    config.yaml    the resolved config
    meta.json      written last: step, epoch, tokens, losses, time, dataset, sha256 of every file

It is written into a temporary sibling, every file fsynced, ``meta.json`` last, then renamed into
place and the parent fsynced. A directory without ``meta.json`` (or with files that do not match
their recorded sha256) is never picked up by resume. Everything is loaded with
``torch.load(weights_only=True)``. torch is imported only by the functions that write, so listing
and finding checkpoints (``minimind runs``) loads no torch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minimind.errors import CheckpointError
from minimind.files import atomic_write, fsync_dir, sha256_file, write_durably
from minimind.run_dir import (
    CONFIG_FILE,
    META_FILE,
    MODEL_FILE,
    OPTIMIZER_FILE,
    STATE_FILE,
    STEP_DIR,
    checkpoints_dir,
    run_of,
    step_dir_name,
    weights_config_path,
)
from minimind.safe_load import safe_torch_load

if TYPE_CHECKING:
    import torch

CHECKPOINT_FORMAT = 1


def save_checkpoint(run_dir: Path, step: int, *, model_state: dict, optimizer_state: dict,
                    loop_state: dict, config_yaml: str, meta: dict[str, Any], keep_last: int,
                    after_file: Callable[[str], None] | None = None) -> Path:
    """Write a complete checkpoint for ``step`` atomically; returns its directory.

    ``after_file(name)`` runs after each file is durable, before the next (``meta.json``, written
    last, excepted): the trainer's ``Callbacks.checkpoint_file_written``.
    """
    import torch

    root = checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    tmp = root / f".tmp-{step_dir_name(step)}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    files = {
        MODEL_FILE: lambda f: torch.save(model_state, f),
        OPTIMIZER_FILE: lambda f: torch.save(optimizer_state, f),
        STATE_FILE: lambda f: torch.save(loop_state, f),
        CONFIG_FILE: lambda f: f.write(config_yaml.encode("utf-8")),
    }
    digests = {}
    for name, write in files.items():
        write_durably(tmp / name, write)
        digests[name] = sha256_file(tmp / name)
        if after_file is not None:
            after_file(name)
    full_meta = {"format_version": CHECKPOINT_FORMAT, "step": step, "time": time.time(), **meta, "files": digests}
    write_durably(tmp / META_FILE, lambda f: f.write(json.dumps(full_meta, indent=2).encode("utf-8")))
    fsync_dir(tmp)
    if final.exists():  # a re-save of the same step after a resume: replace it
        trash = root / f".old-{final.name}-{os.getpid()}"
        final.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    tmp.rename(final)
    fsync_dir(root)
    prune(root, keep_last)
    return final


def prune(root: Path, keep_last: int) -> None:
    """Keep the newest ``keep_last`` complete checkpoints; drop leftovers of interrupted saves."""
    complete = list_checkpoints(root.parent)
    for info in complete[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(info.path, ignore_errors=True)
    for leftover in root.glob(".tmp-*"):
        if not leftover.name.endswith(f"-{os.getpid()}"):
            shutil.rmtree(leftover, ignore_errors=True)
    for leftover in root.glob(".old-*"):
        shutil.rmtree(leftover, ignore_errors=True)


@dataclass
class CheckpointInfo:
    path: Path
    step: int
    meta: dict[str, Any]


def read_checkpoint_meta(path: Path) -> dict[str, Any] | None:
    """meta.json of a complete checkpoint directory, or None if it is incomplete."""
    try:
        meta = json.loads((Path(path) / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or "files" not in meta:
        return None
    for name in meta["files"]:
        if not (Path(path) / name).is_file():
            return None
    return meta


def checkpoint_dirs(run_dir: Path) -> list[tuple[int, Path]]:
    """(step, directory) of every ``step_N`` directory of a run, complete or not, oldest first."""
    root = checkpoints_dir(run_dir)
    found = []
    if root.is_dir():
        for child in root.iterdir():
            match = STEP_DIR.match(child.name)
            if match and child.is_dir():
                found.append((int(match.group(1)), child))
    return sorted(found)


def list_checkpoints(run_dir: Path) -> list[CheckpointInfo]:
    """Complete checkpoints of a run, oldest first."""
    found = []
    for step, child in checkpoint_dirs(run_dir):
        meta = read_checkpoint_meta(child)
        if meta is not None:
            found.append(CheckpointInfo(child, step, meta))
    return found


def find_checkpoint(path: Path) -> CheckpointInfo:
    """``path`` is a run directory (latest complete checkpoint) or one checkpoint directory.
    Completeness only; ``find_verified`` also checks every sha256."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if _is_checkpoint_dir(path):
        meta = read_checkpoint_meta(path)
        if meta is None:
            raise CheckpointError(f"checkpoint {path} is incomplete (interrupted while saving); "
                                  f"resume from the run directory to use the latest complete one")
        return CheckpointInfo(path, int(meta["step"]), meta)
    checkpoints = list_checkpoints(path)
    if not checkpoints:
        raise CheckpointError(f"{path} has no complete checkpoint (looked in {checkpoints_dir(path)})")
    return checkpoints[-1]


def _is_checkpoint_dir(path: Path) -> bool:
    return (path / META_FILE).is_file() or bool(STEP_DIR.match(path.name))


def verify_files(info: CheckpointInfo) -> dict[str, bool]:
    """Each file recorded in meta.json: whether it is present and matches its recorded sha256."""
    out = {}
    for name, digest in info.meta["files"].items():
        path = info.path / name
        out[name] = path.is_file() and sha256_file(path) == digest
    return out


def damage(info: CheckpointInfo) -> str | None:
    """Why a complete checkpoint cannot be trusted (a file that fails its sha256), or None."""
    bad = [name for name, ok in verify_files(info).items() if not ok]
    if not bad:
        return None
    if len(bad) == 1:
        return f"{bad[0]} does not match its recorded sha256"
    return f"{', '.join(bad)} do not match their recorded sha256"


@dataclass
class Skipped:
    """A complete checkpoint passed over because it is damaged."""

    info: CheckpointInfo
    reason: str

    def note(self, used: CheckpointInfo) -> str:
        return (f"checkpoint {self.info.path.name} is damaged ({self.reason}): skipped it; using "
                f"{used.path.name} (step {used.step}), the newest verified one")


def find_verified(path: Path) -> tuple[CheckpointInfo, list[Skipped]]:
    """The checkpoint to resume from, every file checked against its sha256.

    For a run directory: the newest complete checkpoint that verifies, and the newer damaged ones
    it passed over (newest first). For one checkpoint directory: that checkpoint, or a
    ``CheckpointError`` naming the newest verified one of its run if it is damaged.
    """
    path = Path(path)
    info = find_checkpoint(path)
    if _is_checkpoint_dir(path):
        reason = damage(info)
        if reason is None:
            return info, []
        run_dir = run_of(path)
        good = next((c for c in reversed(list_checkpoints(run_dir)) if c.path != info.path and damage(c) is None),
                    None)
        hint = (f"resume from {good.path} (step {good.step}), the newest verified checkpoint, or from the run "
                f"directory {run_dir}" if good else "no other checkpoint of this run verifies")
        raise CheckpointError(f"checkpoint {path} is damaged: {reason}", hint)
    skipped: list[Skipped] = []
    for candidate in reversed(list_checkpoints(path)):
        reason = damage(candidate)
        if reason is None:
            return candidate, skipped
        skipped.append(Skipped(candidate, reason))
    names = ", ".join(f"{s.info.path.name} ({s.reason})" for s in skipped)
    raise CheckpointError(f"{path}: every checkpoint is damaged: {names}",
                          "restore the files from a backup, or start a new run")


def load_checkpoint(info: CheckpointInfo, *, verify: bool = True) -> dict[str, Any]:
    """model/optimizer/state dicts of a checkpoint, each checked against its recorded sha256."""
    reason = damage(info) if verify else None
    if reason is not None:
        raise CheckpointError(f"checkpoint {info.path}: {reason} (damaged)",
                              "resume from the run directory to use the newest verified checkpoint")
    out = {}
    for key, name in (("model", MODEL_FILE), ("optimizer", OPTIMIZER_FILE), ("state", STATE_FILE)):
        # One line on failure, never torch's advice to load with weights_only=False.
        out[key] = safe_torch_load(info.path / name)
    out["config_yaml"] = (info.path / CONFIG_FILE).read_text(encoding="utf-8")
    return out


WEIGHTS_CONFIG_FORMAT = "minimind-weights-config"  # the "format" of a weights file's sidecar config


def save_weights(path: Path, model_state: dict[str, torch.Tensor], model_config: Any,
                 inferred: Iterable[str] = (), run_dir: Path | None = None) -> Path:
    """MiniMind-compatible weights: half precision, native keys, both tied names, atomic; and
    beside them the sidecar config (``weights_config_path``) that says how to read them back.

    A state dict alone cannot tell the head count (or RoPE theta): the sidecar holds the model
    section (``model_config``, a ModelConfig) and which of its fields were themselves inferred
    rather than known (``inferred``, e.g. for an export of a bare file), so a file moved away from
    its run still loads exactly. MiniMind's own scripts read only the ``.pth``."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Names that share one tensor (the tied head) keep sharing it, so it is stored once.
    converted: dict[tuple, torch.Tensor] = {}
    half = {}
    for k, v in model_state.items():
        same = (v.device, v.data_ptr(), v.dtype, tuple(v.shape), v.stride())
        if same not in converted:
            converted[same] = v.detach().to("cpu", torch.float16).clone()
        half[k] = converted[same]
    if "lm_head.weight" not in half and "model.embed_tokens.weight" in half:
        half["lm_head.weight"] = half["model.embed_tokens.weight"]
    atomic_write(path, lambda f: torch.save(half, f))
    sidecar = {"format": WEIGHTS_CONFIG_FORMAT, "version": 1, "weights": path.name,
               "model": dataclasses.asdict(model_config), "inferred": sorted(inferred)}
    if run_dir is not None:
        sidecar["run"] = str(Path(run_dir).resolve())
    atomic_write(weights_config_path(path), json.dumps(sidecar, indent=2) + "\n")
    return path


def weights_run(path: Path) -> str | None:
    """The run directory a weights file's sidecar names (written by a training run), else None."""
    try:
        sidecar = json.loads(weights_config_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    run = sidecar.get("run") if isinstance(sidecar, dict) else None
    return run if isinstance(run, str) else None


@dataclass(frozen=True)
class SharedWeights:
    """What a run does with the shared ``OUT/pretrain_<hidden>[_moe].pth`` (MiniMind's file name,
    which every run of the same width would write): ``replace`` it or leave it, and the note that
    says so when it held something else. The run's own copy (``RUN/<same name>``) is always written."""

    shared: Path
    own: Path
    replace: bool
    previous_run: str | None  # the run whose weights the shared file held, when another run's
    note: str | None


def shared_weights(shared: Path, run_dir: Path) -> SharedWeights:
    """The rule: the shared file is written when absent, when it is this run's, or when it holds
    another run's weights that are also in that run's own directory (then the note says so). A file
    with no other copy (an export, MiniMind's own, a run that kept no copy) is never replaced."""
    shared, run_dir = Path(shared), Path(run_dir).resolve()
    own = run_dir / shared.name
    if not shared.exists():
        return SharedWeights(shared, own, True, None, None)
    previous = weights_run(shared)
    if previous is not None and Path(previous) == run_dir:
        return SharedWeights(shared, own, True, None, None)
    if previous is not None and (Path(previous) / shared.name).is_file():
        return SharedWeights(shared, own, True, previous, (
            f"{shared} holds the weights of run {Path(previous).name} (kept in {Path(previous) / shared.name}); "
            "this run's saves replace it"))
    origin = f"run {Path(previous).name}, which kept no copy" if previous else "no minimind run (or an older one)"
    return SharedWeights(shared, own, False, previous, (
        f"{shared} was written by {origin}: it is left as it is, and this run's weights are in {own} "
        f"only (remove {shared.name} to let runs refresh it)"))


def publish_weights(shared: Path, run_dir: Path, model_state: dict[str, torch.Tensor], model_config: Any) -> Path:
    """A training save's weights: the run's own copy ``RUN/<name>`` (always), then the shared file
    by ``shared_weights``'s rule. Returns the file that now holds this run's weights under MiniMind's
    name: the shared one when it was written, else the run's own."""
    plan = shared_weights(shared, run_dir)
    save_weights(plan.own, model_state, model_config, run_dir=run_dir)
    if not plan.replace:
        return plan.own
    for src, dst in ((plan.own, plan.shared), (weights_config_path(plan.own), weights_config_path(plan.shared))):
        with open(src, "rb") as f:
            atomic_write(dst, lambda out, f=f: shutil.copyfileobj(f, out))
    return plan.shared
