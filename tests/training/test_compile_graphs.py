"""The compiled training step (``train.compile=true``) is one graph: no graph break and no
recompile over real ``train_step`` calls, dense and MoE, with doc_mask, Muon, each router balance,
a sequence-length curriculum (a new window length may compile once) and DDP (a single-process
gloo group)."""

from __future__ import annotations

import socket

import pytest

from minimind import distributed as dist_utils
from minimind.training.build import build
from minimind.training.state import TrainState
from minimind.training.step import train_step

pytestmark = pytest.mark.slow  # each case compiles a model (seconds to a minute on 2 cores)

MOE = "model.use_moe=true"
CURRICULUM = "data.seq_len_schedule=[[0, 8], [0.25, 16], [0.5, 32]]"


def _compiled_steps(cfg, steps: int, dist=None) -> tuple[dict, int, list[int]]:
    """(graph breaks by reason, unique graphs, window lengths) over ``steps`` train_step calls."""
    import torch._dynamo as dynamo
    from torch._dynamo.utils import counters

    dynamo.reset()
    counters.clear()
    built = build(cfg, dist)
    state, windows = TrainState(), []
    for _ in range(steps):
        result = train_step(built, state)
        assert result.finite
        state.advance(result.loss, result.tokens)
        windows.append(built.loader.seq_len)
    return dict(counters["graph_break"]), counters["stats"]["unique_graphs"], windows


@pytest.mark.parametrize("extra", [
    ("data.doc_mask=true", "train.optimizer=muon"),
    (CURRICULUM, "train.max_steps=4"),
    (MOE, "model.router_balance=aux_loss", "data.doc_mask=true"),
    (MOE, "model.router_balance=bias"),
    (MOE, "model.router_balance=both", "train.optimizer=muon", CURRICULUM, "train.max_steps=4"),
], ids=["dense-docmask-muon", "dense-curriculum", "moe-aux-docmask", "moe-bias", "moe-both-muon-curriculum"])
def test_the_compiled_step_has_no_graph_break_and_no_recompile(make_config, extra):
    breaks, graphs, windows = _compiled_steps(make_config("train.compile=true", *extra), 4)
    assert breaks == {}
    lengths = len(set(windows))
    # one graph; a curriculum's new window length may compile once more (then shapes are dynamic)
    assert 1 <= graphs <= lengths, (graphs, windows)
    if CURRICULUM in extra:
        assert windows == [8, 16, 32, 32]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("extra", [(), (MOE, "model.router_balance=both")], ids=["dense", "moe-both"])
def test_under_ddp_the_model_is_one_graph_and_dynamo_stops_only_at_ddps_own_wrapper(make_config, monkeypatch, extra):
    """torch.compile(DDP(model)): dynamo does not trace DDP's forward wrapper by design (it is on its
    skip list, and its bucket rebuild is untraceable), so those frames run eagerly and the model
    inside compiles to one graph (DDPOptimizer cuts it at the gradient buckets for overlap)."""
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    dist = dist_utils.DistInfo(rank=0, local_rank=0, world_size=1, launched=True)
    try:
        breaks, graphs, _ = _compiled_steps(make_config("train.compile=true", *extra), 3, dist)
    finally:
        dist_utils.shutdown()
    assert graphs == 1
    assert all("DistributedDataParallel" in reason or "Reducer" in reason for reason in breaks), list(breaks)
