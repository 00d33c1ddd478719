"""The data a report page is built from, read from the recorded event fixtures (both schema versions)."""

import json
import random

import pytest

from minimind.errors import ReportError
from minimind.report.data import config_rows, downsample, load_run, load_runs
from tests.report.conftest import add_checkpoint

NOW = 1_750_000_900.0


def test_dense_series_and_header(run_factory):
    run = load_run(run_factory("dense"), NOW)
    steps, losses = run.series("loss")
    assert steps == list(range(10, 301, 10)) and len(losses) == 30
    assert run.val_series()[0] == [100, 200, 300]
    head = run.header()
    assert head["status"] == "finished" and head["profile"] == "tiny"
    assert head["params_total"] == 1_332_096 and head["dataset_documents"] == 3_412
    assert head["final_loss"] == run.end.final_loss  # exact, from the end event
    assert head["tokens_seen"] == 300 * 2048 and head["dtype"] == "float32" and head["world_size"] == 1
    assert not run.is_moe and not run.is_snapshot and not run.truncated_line


def test_schema_version_1_stop(run_factory):
    run = load_run(run_factory("real_tiny_stopped"), NOW)
    assert run.status == "stopped"  # a version-1 stop: request checkpoint, then a warning
    assert run.series("loss")[0] and run.config["model"]["hidden_size"] == 128
    assert any(row.kind == "control" and row.text == "paused" for row in run.log) or run.log


def test_memory_phases_and_oom_markers(run_factory):
    run = load_run(run_factory("signals"), NOW)
    kinds = {(m.kind, m.step) for m in run.markers}
    assert {("phase", 90), ("phase", 180), ("oom", 140)} <= kinds
    assert run.memory_total() == (7936.0, 0.1)
    assert list(run.memory()) == ["process RSS"]
    warning = [row for row in run.log if row.kind == "warning"]
    assert warning and "out of memory" in warning[0].text


def test_x_axes_follow_the_step_events(run_factory):
    run = load_run(run_factory("dense"), NOW)
    assert run.x_of("tokens", [10, 15, 300]) == [20480.0, 30720.0, 614400.0]
    times = run.x_of("time", [0, 10, 20])
    assert times[0] == 0.0 and times[1] == run.steps[0].elapsed_s and times[2] == run.steps[1].elapsed_s
    assert run.x_of("tokens", [310])[0] == 614400.0 + 10 * 2048  # past the last step: tokens_per_step


def test_samples_by_prompt_and_step(run_factory):
    by_prompt = load_run(run_factory("samples"), NOW).samples_by_prompt()
    assert list(by_prompt) == ["The Python tutorial", "A list is", "def main("]
    assert [step for step, _ in by_prompt["A list is"]] == [50, 100, 150, 200, 250, 300]
    assert all(isinstance(text, str) for _, text in by_prompt["def main("])


def test_moe_loads_imbalance_and_router_bias(run_factory):
    run = load_run(run_factory("moe"), NOW)
    assert run.is_moe
    frames = run.moe_frames(limit=10)
    assert len(frames) == 10 and frames[-1][0] == 400 and frames[0][0] == 10
    step, load = frames[-1]
    assert len(load) == 8 and len(load[0]) == 4 and load[5][3] < 0.01  # the abandoned expert
    assert len(run.series("moe.imbalance")[1]) == 40 and len(run.series("moe.aux_loss")[1]) == 40
    spread = run.router_bias_spread()
    assert list(spread)[0] == "layer 0" and len(spread) == 8 and all(v >= 0 for v in spread["layer 5"][1])


def test_downsample_keeps_extremes_and_ends():
    rng = random.Random(0)
    ys = [rng.random() for _ in range(20_000)]
    ys[12_345], ys[777] = 50.0, -50.0  # a spike and a dip
    keep = downsample(list(range(len(ys))), ys, max_points=1000)
    assert len(keep) <= 1000 + 2 and keep == sorted(set(keep))
    assert {0, len(ys) - 1, 12_345, 777} <= set(keep)
    assert downsample([1, 2, 3], [3, 2, 1], max_points=10) == [0, 1, 2]


def test_config_rows_one_run_and_differences(run_factory):
    dense, slow, moe = load_runs([run_factory("dense"), run_factory("slow_lr"), run_factory("moe")], NOW)
    keys, values = config_rows([dense])
    assert "train.learning_rate" in keys and "run.name" in keys  # one run: everything
    keys, values = config_rows([dense, slow])
    assert keys == ["train.learning_rate"] and values == [[0.002], [0.0005]]  # the run section never differs
    keys, values = config_rows([dense, slow, moe])
    assert {"train.learning_rate", "model.hidden_size", "model.use_moe"} <= set(keys)


def test_resume_drops_what_came_after_its_checkpoint(run_factory):
    lines = (run_factory("dense").joinpath("events.jsonl")).read_text().splitlines()
    started = json.loads(lines[0])
    resumed = {**started, "start_step": 100, "resumed_from": {"path": "ckpt", "step": 100},
               "total_steps": 400, "schedule_changed_at": 100, "time": started["time"] + 500}
    run_dir = run_factory("resumed", "dense", tail=json.dumps(resumed) + "\n")
    run = load_run(run_dir, NOW)
    assert run.series("loss")[0][-1] == 100 and [e.step for e in run.evals] == [100]
    assert {("resume", 100), ("replan", 100)} <= {(m.kind, m.step) for m in run.markers}
    assert [label for label, _ in run.planned_lr] == ["planned lr", "re-planned at step 100"]


def test_truncated_last_line_is_left_out_and_noted(run_factory):
    run = load_run(run_factory("cut", "dense", tail='{"v":2,"type":"step","step":31'), NOW)
    assert run.truncated_line and run.series("loss")[0][-1] == 300


def test_crashed_run(run_factory):
    run = load_run(run_factory("failed"), NOW)
    head = run.header()
    assert run.status == "failed" and head["error"] == "loss is nan at step 170"
    assert "FloatingPointError" in head["traceback"]
    assert run.log[-1].kind == "error"


def test_killed_run_without_end_event_is_failed(run_factory):
    run = load_run(run_factory("killed", "dense", lines=20), NOW)
    assert run.status == "failed" and run.end is None and run.header()["error"] is None


def test_checkpoints_with_step_and_age(run_factory):
    run_dir = run_factory("dense")
    add_checkpoint(run_dir, 100, NOW - 600)
    add_checkpoint(run_dir, 200, NOW - 60)
    (run_dir / "checkpoints" / "step_00000300").mkdir()  # incomplete: no meta.json
    rows = load_run(run_dir, NOW).checkpoints
    assert [(r["step"], r["age_s"]) for r in rows] == [(100, 600.0), (200, 60.0)]


def test_not_a_run_and_no_events(tmp_path):
    with pytest.raises(ReportError, match="no such run directory"):
        load_run(tmp_path / "missing")
    with pytest.raises(ReportError, match="not a minimind run directory"):
        load_run(tmp_path)
    (tmp_path / "events.jsonl").write_text("")
    with pytest.raises(ReportError, match="holds no events"):
        load_run(tmp_path)
    with pytest.raises(ReportError, match="named twice"):
        load_runs([tmp_path, tmp_path])
