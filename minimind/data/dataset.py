"""Reading a prepared dataset: samples, a seeded resumable order, disjoint shares per rank.

Two sample modes:

* packed (default): the token stream of a split is cut into non-overlapping windows of
  ``max_seq_len + 1`` tokens. Input = window[:-1], target = window[1:], every target trained on.
  Documents run on from one window into the next, separated by their eos/bos tokens. The tail of
  the stream shorter than one window is not used (fewer than ``max_seq_len + 1`` tokens).
* padded (``packing: false``, MiniMind's samples): one document per row, truncated to
  ``max_seq_len + 1`` tokens, padded with ``pad_id``; padding targets have loss mask 0.

A sequence-length curriculum (``BatchLoader.seq_len``) cuts each packed sample into shorter windows
of the same targets; the order below still counts whole samples.

Document-aware packing (``doc_mask``, packed only): every batch also carries ``position_ids``, the
position of each input token in its document, from the split's stored offsets (vectorised: one
``searchsorted`` per batch). A position restarts at 0 at each document start, and at the window
start for the document a window begins inside (its earlier tokens are in another sample). The
model derives the block-diagonal causal attention mask from them (``minimind.model``).

Order: global micro-batches of ``batch_size * world_size`` samples follow a permutation seeded by
``(seed, epoch)``; rank r takes the r-th slice of each. So 2 ranks x batch b see exactly the
samples 1 rank x batch 2b sees, and the position (epoch, samples consumed) restores exactly.
An epoch is a whole number of optimizer steps (``batch_size * accumulation_steps * world_size``
samples each): the samples of every step depend only on that global batch, never on how it is
split into micro-batches, so a split changed after an out-of-memory error (``resplit``) or chosen
by ``batch_size: auto`` trains the same samples in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minimind.data.format import Split, open_split, read_meta
from minimind.errors import DatasetFormatError


@dataclass
class Batch:
    input_ids: np.ndarray  # (B, T) int64
    targets: np.ndarray  # (B, T) int64
    loss_mask: np.ndarray  # (B, T) float32: 1 = trained on, 0 = padding
    position_ids: np.ndarray | None = None  # (B, T) int64 position in the document (doc_mask only)

    @property
    def trained_tokens(self) -> int:
        return int(self.loss_mask.sum())

    def rewindow(self, seq_len: int) -> Batch:
        """The same targets as rows of ``seq_len`` (which divides T): each row of B becomes T / seq_len
        consecutive rows, each predicting its own slice of the row's targets from a shorter context.
        Positions restart at each new row's start, like a window's."""
        positions = None
        if self.position_ids is not None:
            positions = self.position_ids.reshape(-1, seq_len)
            before_first_start = np.cumsum(positions == 0, axis=1) == 0  # the document the row began inside
            positions = np.where(before_first_start, positions - positions[:, :1], positions)
        return Batch(self.input_ids.reshape(-1, seq_len), self.targets.reshape(-1, seq_len),
                     self.loss_mask.reshape(-1, seq_len), positions)


class PretrainDataset:
    """Random access to the samples of one split of a dataset directory."""

    def __init__(self, path: str | Path, max_seq_len: int, packing: bool = True, split: str = "train",
                 doc_mask: bool = False):
        self.path = Path(path)
        self.meta = read_meta(self.path)
        self.split: Split = open_split(self.path, split)
        self.max_seq_len = max_seq_len
        self.window = max_seq_len + 1
        self.packing = packing
        self.doc_mask = doc_mask and packing
        self.pad_id = int(self.meta.get("pad_id", 0))
        if packing:
            self.num_samples = len(self.split.tokens) // self.window
        else:
            self.num_samples = self.split.n_docs

    @property
    def fingerprint(self) -> str:
        return str(self.meta.get("fingerprint", ""))

    def __len__(self) -> int:
        return self.num_samples

    def window_tokens(self, i: int) -> tuple[np.ndarray, int]:
        """The (max_seq_len + 1)-token row of sample i and how many of its tokens are real."""
        if self.packing:
            start = i * self.window
            return np.asarray(self.split.tokens[start:start + self.window], dtype=np.int64), self.window
        doc = np.asarray(self.split.doc(i)[:self.window], dtype=np.int64)
        row = np.full(self.window, self.pad_id, dtype=np.int64)
        row[:len(doc)] = doc
        return row, len(doc)

    def batch(self, indices: np.ndarray | list[int]) -> Batch:
        rows = np.empty((len(indices), self.window), dtype=np.int64)
        mask = np.zeros((len(indices), self.max_seq_len), dtype=np.float32)
        for r, i in enumerate(indices):
            rows[r], real = self.window_tokens(int(i))
            mask[r, :real - 1] = 1.0  # target t is real iff token t+1 of the row is real
        positions = self.position_ids(indices) if self.doc_mask else None
        return Batch(rows[:, :-1].copy(), rows[:, 1:].copy(), mask, positions)

    def position_ids(self, indices: np.ndarray | list[int]) -> np.ndarray:
        """(len(indices), max_seq_len): each input token's position in its document, counted from
        the window start for the document the window begins inside (packed samples)."""
        starts = np.asarray(indices, dtype=np.int64)[:, None] * self.window
        token = starts + np.arange(self.max_seq_len, dtype=np.int64)  # index into the split's tokens
        offsets = self.split.offsets
        doc_start = offsets[np.searchsorted(offsets, token, side="right") - 1]
        return token - np.maximum(doc_start, starts)


class EpochOrder:
    """Which samples each rank reads, micro-batch after micro-batch, epoch after epoch.

    ``position`` = (epoch, samples of this epoch already consumed by all ranks together): saving it
    and restoring it yields exactly the batches that would have followed.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 accumulation_steps: int = 1):
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.global_batch = batch_size * world_size  # one micro-batch, all ranks
        step_samples = self.global_batch * accumulation_steps  # one optimizer step, all ranks
        self.batches_per_epoch = num_samples // step_samples * accumulation_steps
        if self.batches_per_epoch == 0:
            raise DatasetFormatError(
                f"the dataset has {num_samples} samples, fewer than one global batch of {step_samples} "
                f"(batch_size {batch_size} x accumulation {accumulation_steps} x {world_size} processes); "
                f"use a smaller batch, shorter max_seq_len or more data")
        self.epoch = 0
        self.consumed = 0  # samples of the current epoch consumed by all ranks
        self._perm_epoch = -1
        self._perm = np.empty(0, dtype=np.int64)

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
            self._perm_epoch = epoch
        return self._perm

    def next_indices(self) -> tuple[np.ndarray, int]:
        """This rank's sample indices for the next micro-batch, and the epoch they belong to."""
        if self.consumed + self.global_batch > self.batches_per_epoch * self.global_batch:
            self.epoch += 1
            self.consumed = 0
        perm = self.permutation(self.epoch)
        start = self.consumed + self.rank * self.batch_size
        indices = perm[start:start + self.batch_size]
        self.consumed += self.global_batch
        return indices, self.epoch

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "consumed": self.consumed, "seed": self.seed,
                "num_samples": self.num_samples, "global_batch": self.global_batch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["num_samples"] != self.num_samples or state["seed"] != self.seed:
            raise DatasetFormatError(
                f"saved data position is for {state['num_samples']} samples with seed {state['seed']}, "
                f"this dataset gives {self.num_samples} samples with seed {self.seed}")
        if state["consumed"] % self.global_batch:
            raise DatasetFormatError(
                f"the saved position ({state['consumed']} samples into epoch {state['epoch']}) is not a "
                f"multiple of the new global batch {self.global_batch}; keep batch_size x processes = "
                f"{state['global_batch']}")
        self.epoch = int(state["epoch"])
        self.consumed = int(state["consumed"])


class BatchLoader:
    """Endless iterator of this rank's micro-batches, with a restorable position.

    ``seq_len`` (set per optimizer step by a sequence-length curriculum, a divisor of max_seq_len)
    cuts every sample into max_seq_len / seq_len windows (``Batch.rewindow``): the order and the
    position count whole samples, so they mean the same at every window length."""

    def __init__(self, dataset: PretrainDataset, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 accumulation_steps: int = 1):
        self.dataset = dataset
        self.order = EpochOrder(len(dataset), batch_size, seed, rank, world_size, accumulation_steps)
        self.epoch = 0
        self.seq_len = dataset.max_seq_len

    @property
    def batches_per_epoch(self) -> int:
        return self.order.batches_per_epoch

    def __iter__(self) -> Iterator[Batch]:
        return self

    def __next__(self) -> Batch:
        indices, self.epoch = self.order.next_indices()
        batch = self.dataset.batch(indices)
        return batch if self.seq_len == self.dataset.max_seq_len else batch.rewindow(self.seq_len)

    def state_dict(self) -> dict[str, Any]:
        return self.order.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.order.load_state_dict(state)
        self.epoch = self.order.epoch

    def resplit(self, batch_size: int, accumulation_steps: int, position: dict[str, Any]) -> None:
        """Serve micro-batches of ``batch_size`` from ``position`` (a ``state_dict`` taken at the start
        of an optimizer step) on: the same global batch per step in a new split, so the samples of
        the step that failed are served again, in the same order."""
        o = self.order
        self.order = EpochOrder(o.num_samples, batch_size, o.seed, o.rank, o.world_size, accumulation_steps)
        self.load_state_dict(position)


def optimizer_steps(batches_per_epoch: int, epochs: int, accumulation_steps: int,
                    max_steps: int | None = None) -> int:
    """Optimizer steps a run makes: all epochs' micro-batches in groups of ``accumulation_steps``,
    capped by ``max_steps``."""
    steps = epochs * batches_per_epoch // accumulation_steps
    return min(steps, max_steps) if max_steps else steps


def validation_indices(dataset: PretrainDataset, samples: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """This rank's share of the validation set: the first ``samples`` samples of the split in file
    order (all of them when it holds fewer), every ``world_size``-th from ``rank``."""
    return list(range(rank, min(samples, len(dataset)), world_size))


def validation_batches(dataset: PretrainDataset, samples: int, batch_size: int,
                       rank: int = 0, world_size: int = 1) -> Iterator[Batch]:
    """The validation set (``validation_indices``) in micro-batches of at most ``batch_size``: the
    same samples for every micro-batch size, world size and dtype, so every validation loss of a
    run, and of runs that differ in those, is measured on the same text."""
    mine = validation_indices(dataset, samples, rank, world_size)
    for start in range(0, len(mine), batch_size):
        yield dataset.batch(mine[start:start + batch_size])
