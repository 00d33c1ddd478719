"""`minimind inspect` as a user runs it (real subprocess, real files)."""

from __future__ import annotations

import json
import pickle
import re

import pytest
import torch

from minimind.config import ModelConfig
from minimind.model import MiniMindLM
from tests.checkpoint_fakes import tiny_model, to_earlier_layout, write_run, write_tokenizer
from tests.cli.cli_helpers import run_main, run_many
from tests.conftest import run_cli


def _save_half(model, path):
    torch.save({k: v.half() for k, v in model.state_dict().items()}, path)
    return path


@pytest.mark.slow  # several seconds: real subprocesses or a full-size model
def test_inspect_default_dense_pth(tmp_path):
    path = _save_half(MiniMindLM(ModelConfig()), tmp_path / "pretrain_512.pth")
    result = run_cli("inspect", str(path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("File", "Architecture", "Parameters", "key layout", "native", "float16 (75)",
                 "25,829,888", "3,276,800", "2,819,072", "inferred", "assumed (MiniMind's default)",
                 "8 query / 2 key-value heads assumed (MiniMind's default"):
        assert text in " ".join(out.split()), text
    assert "Training state" not in out


def test_inspect_run_dir_and_incomplete_checkpoint(tmp_path, capsys):
    run = write_run(tmp_path / "out" / "runs" / "tiny-1", tiny_model(), steps=(100, 200), incomplete_step=300)
    result = run_main(capsys, "inspect", str(run), "--tensors")
    incomplete = run_main(capsys, "inspect", str(run / "checkpoints" / "step_00000300"), "--json")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"step\s+200\s", out)
    for text in ("Training state", "2 complete of 3", "819,200", "4.2500", "4.7500",
                 "1:02:03", "all files match meta.json", "optimizer state", "stored", "Tensors",
                 "model.layers.1.mlp.down_proj.weight", "64x192"):
        assert text in out, text

    assert incomplete.returncode == 0, incomplete.stderr
    info = json.loads(incomplete.stdout)
    assert info["training"]["complete"] is False
    assert any("meta.json is missing" in n for n in info["notes"])


def test_inspect_tensors_and_earlier_layout(tmp_path, capsys):
    model = tiny_model()
    torch.save(to_earlier_layout(model.state_dict(), head_dim=32), tmp_path / "old.pth")
    result = run_main(capsys, "inspect", str(tmp_path / "old.pth"), "--head-dim", "32", "--tensors", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["file"]["layout"] == "minimind-v1"
    assert info["architecture"]["num_attention_heads"] == {"value": 2, "source": "inferred"}
    assert info["architecture"]["head_dim"] == {"value": 32, "source": "inferred"}
    rows = {r["name"]: r for r in info["tensors"]}
    assert len(rows) == len(model.state_dict())
    emb = model.state_dict()["model.embed_tokens.weight"]
    assert rows["tok_embeddings.weight"]["shape"] == [300, 64]
    assert rows["tok_embeddings.weight"]["norm"] == pytest.approx(emb.norm().item(), rel=1e-5)


def test_inspect_generate_greedy_matches_model(tmp_path, capsys):
    from transformers import AutoTokenizer

    model = tiny_model(seed=7)
    torch.save(model.state_dict(), tmp_path / "pretrain_64.pth")
    tok_dir = write_tokenizer(tmp_path / "data" / "tokenizer")
    result = run_main(capsys, "inspect", str(tmp_path / "pretrain_64.pth"), "--head-dim", "32", "--generate", "hello fox",
                     "--max-new-tokens", "6", "--json")
    assert result.returncode == 0, result.stderr
    gen = json.loads(result.stdout)["generation"]

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    ids = torch.tensor([[1] + tok.encode("hello fox", add_special_tokens=False)])
    expected = model.generate(ids, max_new_tokens=6, eos_token_id=2)[0, ids.shape[1]:].tolist()
    assert gen["new_tokens"] == len(expected)
    assert gen["completion"] == tok.decode(expected, skip_special_tokens=True)


def _always_emits(model, token_id: int):
    """Make ``model`` predict ``token_id`` after any input: blocks add nothing to the residual
    stream, the final norm keeps one dimension, and there only ``token_id``'s row stands out."""
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.model.embed_tokens.weight[:, 0] = 1.0
        model.model.embed_tokens.weight[token_id, 0] = 5.0
    return model


def test_inspect_generate_shows_whitespace_and_counts_tokens(tmp_path, capsys):
    """An undertrained model that only says newline (or eos) must not print a blank screen."""
    from transformers import AutoTokenizer

    from minimind.weights import generate_text, load_weights

    tok_dir = write_tokenizer(tmp_path / "data" / "tokenizer")
    newline = AutoTokenizer.from_pretrained(str(tok_dir)).encode("\n", add_special_tokens=False)
    assert len(newline) == 1
    torch.save(_always_emits(tiny_model(seed=3), newline[0]).state_dict(), tmp_path / "nl.pth")
    torch.save(_always_emits(tiny_model(seed=3), 2).state_dict(), tmp_path / "eos.pth")  # eos id 2
    common = ("--head-dim", "32", "--tokenizer", str(tok_dir), "--generate", "hello", "--max-new-tokens", "5")
    nl = run_main(capsys, "inspect", str(tmp_path / "nl.pth"), *common)
    eos = run_main(capsys, "inspect", str(tmp_path / "eos.pth"), *common)
    assert nl.returncode == 0 and eos.returncode == 0, nl.stderr + eos.stderr
    gen = generate_text(load_weights(tmp_path / "nl.pth", head_dim=32), tok_dir, "hello", max_new_tokens=5)
    assert gen["completion"] == "\n" * 5 and gen["new_tokens"] == 5 and gen["stopped"] == "max_new_tokens"
    assert "hello" + "\\n" * 5 in nl.stdout  # the newlines are shown, on the prompt's line
    assert "5 tokens generated, stopped at --max-new-tokens 5" in " ".join(nl.stdout.split())
    assert "1 token generated, stopped at eos (end of text); empty completion" in " ".join(eos.stdout.split())



def test_usage_errors_are_one_line(tmp_path, capsys):
    torch.save(tiny_model().state_dict(), tmp_path / "m.pth")
    no_tok = run_main(capsys, "inspect", str(tmp_path / "m.pth"), "--head-dim", "32", "--generate", "hi")
    missing = run_main(capsys, "inspect", str(tmp_path / "nope.pth"))
    unknown_dir = run_main(capsys, "inspect", str(tmp_path))
    for result, message in ((no_tok, "pass --tokenizer DIR"), (missing, "no such file"),
                            (unknown_dir, "not a run, checkpoint or Hugging Face directory")):
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], result.stderr


class _WritesMarker:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _bad_files(tmp_path):
    good = tmp_path / "good.pth"
    torch.save(tiny_model().state_dict(), good)
    data = good.read_bytes()
    (tmp_path / "truncated.pth").write_bytes(data[: len(data) // 3])
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "random.pth").write_bytes(bytes((i * 7919) % 256 for i in range(20000)))
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    torch.save("just a string", tmp_path / "str.pth")
    torch.save({"lr": 0.1, "name": "x"}, tmp_path / "nontensor.pth")
    torch.save({"w": _WritesMarker(tmp_path / "marker_legacy")}, tmp_path / "legacy_evil.pth",
               _use_new_zipfile_serialization=False)
    (tmp_path / "raw_evil.pkl").write_bytes(pickle.dumps({"w": _WritesMarker(tmp_path / "marker_raw")}))
    torch.save({"model.embed_tokens.weight": torch.zeros(2, 2), "x": _WritesMarker(tmp_path / "marker_zip")},
               tmp_path / "zip_evil.pth")


BAD_FILES = {
    "zip_evil.pth": "refused to load",
    "legacy_evil.pth": "refused to load",
    "raw_evil.pkl": "not a PyTorch weights file",
    "truncated.pth": "truncated or corrupt",
    "empty.pth": "empty",
    "random.pth": "not a PyTorch weights file",
    "list.pth": "expected a dict of tensors",
    "str.pth": "found str",
    "nontensor.pth": "holds no tensors",
}


# Real subprocesses for the files that would run code (nothing may leak into the test process); the
# others go through the same entry point in-process.
IN_SUBPROCESS = ("zip_evil.pth", "legacy_evil.pth", "raw_evil.pkl")


@pytest.mark.slow  # several seconds: real subprocesses or a full-size model
def test_bad_files_one_line_exit_2(tmp_path, capsys):
    _bad_files(tmp_path)
    results = dict(zip(IN_SUBPROCESS, run_many(*(("inspect", str(tmp_path / n)) for n in IN_SUBPROCESS)),
                       strict=True))
    for name in BAD_FILES:
        if name not in results:
            results[name] = run_main(capsys, "inspect", str(tmp_path / name))
    for name, message in BAD_FILES.items():
        result = results[name]
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
        assert name in lines[0] and "Traceback" not in result.stderr
        assert result.stdout == ""
    markers = [tmp_path / f"marker_{kind}" for kind in ("zip", "legacy", "raw")]
    assert not any(m.exists() for m in markers)
    # The crafted files really run code when unpickled without weights_only.
    torch.load(tmp_path / "zip_evil.pth", weights_only=False)
    pickle.loads((tmp_path / "raw_evil.pkl").read_bytes())
    assert markers[0].exists() and markers[2].exists()
