"""`minimind export` as a user runs it, and the export loaded by plain transformers in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.checkpoint_fakes import tiny_model, write_run, write_tokenizer
from tests.cli.cli_helpers import run_main

PLAIN_TRANSFORMERS = """
import json, sys, torch
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained(sys.argv[1]).eval()
tok = AutoTokenizer.from_pretrained(sys.argv[1])
x = torch.tensor([[1, 5, 9, 40, 41]])
with torch.no_grad():
    logits = model(x).logits[0].tolist()
gen = model.generate(x, max_new_tokens=6, do_sample=False, eos_token_id=2, pad_token_id=0)[0].tolist()
print(json.dumps({"class": type(model).__name__, "logits": logits, "generated": gen, "eos": tok.eos_token_id,
                  "minimind_loaded": any(m.startswith("minimind") for m in sys.modules)}))
"""


@pytest.mark.slow  # several seconds: real subprocesses or a full-size model
def test_export_run_to_hf_loads_in_plain_transformers_and_inspects(tmp_path, capsys):
    out = tmp_path / "out"
    write_tokenizer(out / "data" / "tokenizer")
    model = tiny_model(seed=11)
    run = write_run(out / "runs" / "tiny-1", model, steps=(100,), incomplete_step=None, data_path=str(out / "data"))
    result = run_main(capsys, "export", str(run), str(out / "hf"), "--to", "hf")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "tokenizer.json" in result.stdout and "warning" not in result.stderr
    said = " ".join(result.stdout.split())
    assert "llama: load it with transformers.AutoModelForCausalLM" in said
    assert "import minimind.hf" not in said  # only for a model stock classes cannot hold

    plain = subprocess.run([sys.executable, "-c", PLAIN_TRANSFORMERS, str(out / "hf")], capture_output=True,
                           text=True, timeout=300, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    got = json.loads(plain.stdout)
    assert got["class"] == "LlamaForCausalLM" and not got["minimind_loaded"] and got["eos"] == 2
    x = torch.tensor([[1, 5, 9, 40, 41]])
    with torch.no_grad():
        ours = model(x).logits[0]
    assert (torch.tensor(got["logits"]) - ours).abs().max().item() < 1e-4
    assert got["generated"] == model.generate(x, max_new_tokens=6, eos_token_id=2)[0].tolist()

    again = run_main(capsys, "inspect", str(out / "hf"), "--json")
    assert again.returncode == 0, again.stderr
    info = json.loads(again.stdout)
    assert info["file"]["layout"] == "hf-llama" and info["file"]["format"] == "safetensors"
    assert info["parameters"]["total"] == sum(p.numel() for p in model.parameters())
    assert all(v["source"] == "stored" for v in info["architecture"].values())


@pytest.mark.slow  # a full-size MoE model
def test_export_to_pth_moe_and_refusals(tmp_path, capsys):
    out = tmp_path / "out"
    moe = tiny_model(seed=12, use_moe=True)
    run = write_run(out / "runs" / "moe-1", moe, steps=(50,), incomplete_step=None)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    to_pth = run_main(capsys, "export", str(run / "checkpoints" / "step_00000050"),
                      str(out / "pretrain_64_moe.pth"), "--to", "pth")
    to_hf = run_main(capsys, "export", str(run), str(out / "hf_moe"), "--to", "hf")
    taken = run_main(capsys, "export", str(run), str(tmp_path / "taken"), "--to", "hf")
    bad_to = run_main(capsys, "export", str(run), str(tmp_path / "x"), "--to", "onnx")
    assert to_pth.returncode == 0, to_pth.stderr
    sd = torch.load(out / "pretrain_64_moe.pth", weights_only=True)
    assert set(sd) == set(moe.state_dict()) and all(v.dtype == torch.float16 for v in sd.values())

    assert to_hf.returncode == 0, to_hf.stderr
    assert "import minimind.hf" in to_hf.stdout and "no tokenizer found" in to_hf.stderr
    assert json.loads((out / "hf_moe" / "config.json").read_text())["model_type"] == "minimind_moe"

    assert taken.returncode == 2 and "not empty" in taken.stderr
    assert (tmp_path / "taken" / "file").read_text() == "x"
    assert bad_to.returncode == 2 and "onnx" in bad_to.stderr


def test_export_force_onto_its_own_run_is_refused(tmp_path, capsys):
    run = write_run(tmp_path / "out" / "runs" / "r", tiny_model(seed=13), steps=(10,), incomplete_step=None)
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    result = run_main(capsys, "export", str(run), str(run), "--to", "hf", "--force")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error:") and "holds the source being exported" in lines[0]
    assert lines[1].startswith("hint:") and len(lines) == 2
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_export_force_onto_the_out_dir_above_its_run_keeps_everything(tmp_path, capsys):
    """`export out/runs/RUN out --to hf --force`: out holds the run, the data and the weights. Even
    with an export marker planted in it (so --force would otherwise replace it) nothing is touched."""
    from minimind import checkpoint
    from minimind.weights import EXPORT_MARKER

    out = tmp_path / "out"
    model = tiny_model(seed=14)
    run = write_run(out / "runs" / "r", model, steps=(10,), incomplete_step=None, data_path=str(out / "data"))
    write_tokenizer(out / "data" / "tokenizer")
    checkpoint.save_weights(out / "pretrain_64.pth", model.state_dict(), model.config)
    (out / EXPORT_MARKER).write_text("{}")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    for source in (run, out / "pretrain_64.pth"):
        result = run_main(capsys, "export", str(source), str(out), "--to", "hf", "--force")
        assert result.returncode == 2, result.stdout
        lines = result.stderr.strip().splitlines()
        assert lines[0].startswith("error:") and "holds the source being exported" in lines[0], result.stderr
        assert lines[1].startswith("hint:") and len(lines) == 2
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert {"runs", "data", "pretrain_64.pth", "pretrain_64.json"} <= {p.name for p in out.iterdir()}
    assert not list(tmp_path.glob("**/.*tmp-export*"))
