"""The README's main job: `minimind pretrain --profile tiny` on the built-in sample corpus."""

import torch

from minimind.config import load_config
from minimind.events import read_events
from minimind.model import MiniMindLM
from tests.conftest import run_cli


def test_tiny_profile_on_the_sample_corpus_learns_and_reloads(tmp_path):
    proc = run_cli("pretrain", "--profile", "tiny", "--max-steps", "60", "--run", "t", "--no-tui",
                   "--set", "train.log_interval=5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "built-in sample corpus" in proc.stdout  # says which data it used
    run_dir = tmp_path / "out" / "runs" / "t"
    steps = [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "step"]
    assert steps[-1]["step"] == 60
    assert steps[-1]["loss_ema"] < steps[0]["loss"] - 1.5  # ~8.8 -> well under 7.3
    # The model's own text: greedy continuations of the first words of validation documents.
    samples = [e for e in read_events(run_dir / "events.jsonl") if e["type"] == "sample"]
    assert len(samples) == 3 and all(s["step"] == 60 and s["prompt"] and s["text"] for s in samples)
    assert "sample step 60: " in (run_dir / "trainer.log").read_text()

    cfg = load_config(run_dir / "config.yaml")
    weights = tmp_path / "out" / f"pretrain_{cfg.model.hidden_size}.pth"
    state = torch.load(weights, map_location="cpu", weights_only=True)
    assert {"model.embed_tokens.weight", "lm_head.weight"} <= set(state)
    assert all(v.dtype == torch.float16 for v in state.values())
    model = MiniMindLM(cfg.model)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)

    # --init-from starts a new run from those weights: its first loss is already low.
    again = run_cli("pretrain", "--profile", "tiny", "--max-steps", "2", "--run", "t2", "--no-tui",
                    "--init-from", str(weights), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    first = next(e for e in read_events(tmp_path / "out" / "runs" / "t2" / "events.jsonl") if e["type"] == "step")
    assert first["loss"] < steps[0]["loss"] - 1.0
