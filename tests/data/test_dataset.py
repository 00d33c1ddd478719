import numpy as np
import pytest

from minimind.data.dataset import BatchLoader, EpochOrder, PretrainDataset, validation_batches
from minimind.errors import DatasetFormatError
from tests.helpers import random_docs, write_dataset


@pytest.fixture
def dataset_dir(tmp_path):
    return write_dataset(tmp_path / "ds", random_docs(300, seed=0), random_docs(40, seed=1))


def test_packed_windows_cover_every_token_once_in_order(dataset_dir):
    ds = PretrainDataset(dataset_dir, max_seq_len=16, packing=True)
    stream = np.asarray(ds.split.tokens, dtype=np.int64)
    windows = [ds.window_tokens(i)[0] for i in range(len(ds))]
    assert len(ds) == len(stream) // 17
    joined = np.concatenate(windows)
    # Every token of every document, in order, in exactly one window; only the sub-window tail is unused.
    assert np.array_equal(joined, stream[:len(joined)])
    assert len(stream) - len(joined) < 17
    batch = ds.batch([0, 1])
    assert batch.loss_mask.all()  # no padding in packed mode
    assert np.array_equal(batch.input_ids[:, 1:], batch.targets[:, :-1])
    # Documents are separated by eos (2) then bos (1).
    assert any(2 in w and 1 in w for w in windows)


def test_padded_rows_reproduce_minimind_samples(dataset_dir):
    ds = PretrainDataset(dataset_dir, max_seq_len=32, packing=False)
    assert len(ds) == 300
    lengths = np.diff(ds.split.offsets)
    short_docs = [i for i in range(300) if lengths[i] < 33]
    assert short_docs, "fixture should contain documents shorter than the window"
    short = short_docs[0]
    doc = np.asarray(ds.split.doc(short), dtype=np.int64)
    b = ds.batch([short])
    n = len(doc)
    assert n < 33  # room for at least one pad token in the 33-token row
    assert doc[0] == 1 and doc[-1] == 2  # bos + text + eos
    assert np.array_equal(b.input_ids[0, :n - 1], doc[:-1])
    assert np.array_equal(b.targets[0, :n - 1], doc[1:])
    assert b.loss_mask[0].sum() == n - 1
    assert (b.loss_mask[0, :n - 1] == 1).all()
    # The eos is the last real input; its target and everything after it is padding (0), masked out.
    assert b.input_ids[0, n - 1] == 2 and (b.input_ids[0, n:] == 0).all()
    assert (b.targets[0, n - 1:] == 0).all()
    assert (b.loss_mask[0, n - 1:] == 0).all()
    long_docs = [i for i in range(300) if ds.split.offsets[i + 1] - ds.split.offsets[i] > 33]
    assert long_docs, "fixture should contain documents longer than the window"
    long_doc = np.asarray(ds.split.doc(long_docs[0]), dtype=np.int64)
    lb = ds.batch([long_docs[0]])
    assert lb.loss_mask.all()  # truncated, not padded
    assert np.array_equal(lb.input_ids[0], long_doc[:32]) and np.array_equal(lb.targets[0], long_doc[1:33])


def test_restoring_a_position_yields_the_same_batches(dataset_dir):
    ds = PretrainDataset(dataset_dir, max_seq_len=64)
    a = BatchLoader(ds, batch_size=4, seed=7)
    assert a.batches_per_epoch < 53
    for _ in range(13):
        next(a)
    state = a.state_dict()
    expected = [next(a).input_ids for _ in range(40)]  # crosses an epoch boundary
    b = BatchLoader(ds, batch_size=4, seed=7)
    b.load_state_dict(state)
    got = [next(b).input_ids for _ in range(40)]
    assert all(np.array_equal(x, y) for x, y in zip(expected, got))
    assert b.epoch >= 1


def test_epochs_are_reshuffled_and_seeded(dataset_dir):
    ds = PretrainDataset(dataset_dir, max_seq_len=16)
    order = EpochOrder(len(ds), 4, seed=3)
    assert not np.array_equal(order.permutation(0), order.permutation(1))
    assert np.array_equal(order.permutation(0), EpochOrder(len(ds), 4, seed=3).permutation(0))
    assert not np.array_equal(order.permutation(0), EpochOrder(len(ds), 4, seed=4).permutation(0))


def test_two_ranks_read_disjoint_shares_that_cover_the_epoch(dataset_dir):
    ds = PretrainDataset(dataset_dir, max_seq_len=16)
    single = EpochOrder(len(ds), 8, seed=1)
    ranks = [EpochOrder(len(ds), 4, seed=1, rank=r, world_size=2) for r in range(2)]
    seen = [[], []]
    for _ in range(single.batches_per_epoch):
        whole, _ = single.next_indices()
        parts = [r.next_indices()[0] for r in ranks]
        for r in range(2):
            seen[r].extend(parts[r].tolist())
        # 2 ranks x batch 4 see exactly what 1 rank x batch 8 sees.
        assert np.array_equal(np.concatenate(parts), whole)
    assert not set(seen[0]) & set(seen[1])
    covered = set(seen[0]) | set(seen[1])
    assert len(covered) == single.batches_per_epoch * 8 and len(ds) - len(covered) < 8


def test_changed_global_batch_is_refused_unless_aligned(dataset_dir):
    ds = PretrainDataset(dataset_dir, max_seq_len=16)
    a = BatchLoader(ds, batch_size=4, seed=0)
    for _ in range(3):
        next(a)
    state = a.state_dict()  # 12 samples consumed
    with pytest.raises(DatasetFormatError, match="global batch"):
        BatchLoader(ds, batch_size=8, seed=0).load_state_dict(state)
    c = BatchLoader(ds, batch_size=2, seed=0, rank=0, world_size=2)  # same global batch 4
    c.load_state_dict(state)
    assert c.order.consumed == 12


def test_the_validation_set_is_the_same_samples_at_any_micro_batch_and_world_size(dataset_dir):
    val = PretrainDataset(dataset_dir, max_seq_len=16, split="val")
    assert len(val) >= 5

    def rows(samples, batch_size, world=1):
        return sorted(tuple(row) for rank in range(world)
                      for b in validation_batches(val, samples, batch_size, rank, world) for row in b.input_ids.tolist())

    expected = rows(5, 5)
    assert len(expected) == 5 and expected == sorted(tuple(val.batch([i]).input_ids[0]) for i in range(5))
    for batch_size, world in [(1, 1), (2, 1), (4, 1), (1, 2), (2, 2), (3, 3)]:
        assert rows(5, batch_size, world) == expected, (batch_size, world)
    assert len(rows(10_000, 4)) == len(val)  # a smaller split is scored whole


def test_too_small_dataset_is_a_clear_error(tmp_path):
    path = write_dataset(tmp_path / "small", [[5, 6, 7]])
    ds = PretrainDataset(path, max_seq_len=16)
    with pytest.raises(DatasetFormatError, match="fewer than one global batch"):
        BatchLoader(ds, batch_size=4, seed=0)


def test_missing_or_incomplete_dataset(tmp_path):
    with pytest.raises(DatasetFormatError, match="not a minimind dataset"):
        PretrainDataset(tmp_path, 16)
    path = write_dataset(tmp_path / "ds", random_docs(10))
    (path / "docs.idx").unlink()
    with pytest.raises(DatasetFormatError, match="incomplete"):
        PretrainDataset(path, 16)


def _expected_positions(offsets: list[int], start: int, length: int) -> list[int]:
    """Per token, slowly: the distance to its document's start or to the window's start."""
    return [t - max(max(o for o in offsets if o <= t), start) for t in range(start, start + length)]


def test_doc_mask_positions_restart_at_document_starts(tmp_path):
    docs = [[5] * n for n in (3, 10, 1, 25, 4, 30, 7, 2, 12)]  # stored as bos + doc + eos
    path = write_dataset(tmp_path / "d", docs)
    ds = PretrainDataset(path, max_seq_len=15, doc_mask=True)  # windows of 16 tokens
    offsets = ds.split.offsets.tolist()
    assert offsets[:4] == [0, 5, 17, 20]
    batch = ds.batch([0, 1, 3, 5])
    assert batch.position_ids[0].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    # sample 1 starts at token 16, inside document 1: its positions count from the window start
    assert batch.position_ids[1].tolist() == [0, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    for row, i in enumerate([0, 1, 3, 5]):
        assert batch.position_ids[row].tolist() == _expected_positions(offsets, i * 16, 15)
    # a curriculum's shorter windows (of the 15 inputs: 3 of 5) restart at their own starts too
    short = batch.rewindow(5)
    assert short.position_ids[:3].tolist() == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]
    for row in range(short.position_ids.shape[0]):
        start = [0, 16, 48, 80][row // 3] + 5 * (row % 3)
        assert short.position_ids[row].tolist() == _expected_positions(offsets, start, 5)


def test_without_doc_mask_batches_carry_no_positions(dataset_dir):
    assert PretrainDataset(dataset_dir, max_seq_len=32).batch([0, 1]).position_ids is None
    padded = PretrainDataset(dataset_dir, max_seq_len=32, packing=False, doc_mask=True)
    assert padded.batch([0]).position_ids is None
