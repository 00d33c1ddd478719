"""``run_outcome``: the one rule for how a run ended and which exit code every command returns."""

import signal

import pytest

from minimind.events import EventError, make_event, run_outcome, stop_of_v1


def ev(type_: str, v: int = 2, **fields) -> dict:
    return {"v": v, "type": type_, "time": 1.0, **fields}


START = ev("run_started", pid=123)
STEPS = [START, ev("step", step=10), ev("step", step=20)]
CKPT = ev("checkpoint", step=20, path="run/checkpoints/step_20", seconds=0.1, reason="request")
V1_STOP = [ev("checkpoint", v=1, step=20, path="run/checkpoints/step_20", seconds=0.1, reason="request"),
           ev("warning", v=1, step=20, message="stop requested: stopped at step 20 after saving")]


def test_finished_is_0():
    end = ev("run_finished", step=30, tokens_seen=1, elapsed_s=2.0)
    outcome = run_outcome([*STEPS, end], returncode=0)
    assert (outcome.status, outcome.exit_code, outcome.event) == ("finished", 0, end)
    # The end event decides, even while the process is still on its way out.
    assert run_outcome([*STEPS, end], process_gone=False).status == "finished"


def test_stopped_v2_is_130():
    end = ev("run_stopped", step=20, reason="request", checkpoint="run/checkpoints/step_20")
    outcome = run_outcome([*STEPS, CKPT, end], returncode=0)
    assert (outcome.status, outcome.exit_code, outcome.event) == ("stopped", 130, end)
    assert "step 20" in outcome.message


@pytest.mark.parametrize("reason", ["request", "signal"])
def test_stopped_v1_is_130(reason):
    stop = [{**V1_STOP[0], "reason": reason}, V1_STOP[1]]
    outcome = run_outcome([*STEPS, *stop], returncode=0)
    assert (outcome.status, outcome.exit_code) == ("stopped", 130)
    assert outcome.event["type"] == "run_stopped" and outcome.event["step"] == 20
    assert outcome.event["reason"] == reason and outcome.event["checkpoint"] == "run/checkpoints/step_20"


def test_v1_pair_that_is_not_a_stop():
    interval = [{**V1_STOP[0], "reason": "interval"}, V1_STOP[1]]
    assert stop_of_v1([*STEPS, *interval]) is None
    other_step = [V1_STOP[0], {**V1_STOP[1], "step": 21}]
    assert stop_of_v1([*STEPS, *other_step]) is None
    # Training went on after the pair: not a stop.
    assert run_outcome([*STEPS, *V1_STOP, ev("step", step=30)], returncode=0).status == "failed"


def test_info_events_do_not_break_v1_detection():
    note = ev("info", step=20, message="a note")
    assert run_outcome([*STEPS, V1_STOP[0], note, V1_STOP[1], note], returncode=0).status == "stopped"


def test_failed_with_its_recorded_code():
    end = ev("run_failed", error="dataset changed", traceback="", exit_code=2, step=20)
    outcome = run_outcome([*STEPS, end], returncode=2)
    assert (outcome.status, outcome.exit_code, outcome.message) == ("failed", 2, "dataset changed")
    nan = ev("run_failed", error="loss is nan", traceback="Traceback ...", exit_code=1)
    assert run_outcome([*STEPS, nan], returncode=1).exit_code == 1
    assert run_outcome([*STEPS, {**nan, "exit_code": None}], returncode=1).exit_code == 1  # no code: 1


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killed_by_signal_is_128_plus_n(sig):
    outcome = run_outcome(STEPS, returncode=-int(sig))
    assert (outcome.status, outcome.exit_code, outcome.event) == ("failed", 128 + int(sig), None)
    assert sig.name in outcome.message


def test_vanished_without_an_end_event_is_1():
    outcome = run_outcome(STEPS)  # a watched pid that disappeared: no return code known
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert run_outcome(STEPS, returncode=0).exit_code == 1  # exit 0 yet no end event: still not a success
    assert run_outcome(STEPS, returncode=3).exit_code == 3
    assert run_outcome([]).exit_code == 1


def test_running_while_the_process_is_alive():
    outcome = run_outcome(STEPS, process_gone=False)
    assert (outcome.status, outcome.exit_code) == ("running", 0)
    assert run_outcome([], process_gone=False).status == "running"


def test_resumed_stream_only_the_last_run_counts():
    first = [*STEPS, CKPT, ev("run_stopped", step=20, reason="request", checkpoint="run/checkpoints/step_20")]
    resumed = [{**START, "start_step": 20, "pid": 456}, ev("step", step=30)]
    assert run_outcome(first + resumed, process_gone=False).status == "running"
    assert run_outcome(first + resumed, returncode=-9).exit_code == 137  # the old stop does not count
    finished = ev("run_finished", step=40, tokens_seen=1, elapsed_s=2.0)
    assert run_outcome(first + resumed + [finished], returncode=0).status == "finished"
    # A version-1 stop before a resume does not count either.
    assert run_outcome([*STEPS, *V1_STOP, *resumed], returncode=0).status == "failed"
    # A finished run followed by a run that failed before its run_started: the newest end decides,
    # unless that attempt was refused (exit 2), which leaves the run as it ended.
    crashed = ev("run_failed", error="MemoryError", traceback="", exit_code=1)
    assert run_outcome([*STEPS, finished, crashed]).exit_code == 1
    refused = ev("run_failed", error="bad config", traceback="", exit_code=2)
    assert run_outcome([*STEPS, finished, refused]).status == "finished"


def test_v2_events_validate():
    make_event("run_stopped", step=1, reason="request", checkpoint="run/checkpoints/step_1")
    make_event("info", message="initialised weights from x")


def test_sample_and_heartbeat_events():
    sample = make_event("sample", step=100, prompt="The cat", text=" sat on the mat.", seconds=0.2,
                        new_tokens=6, stopped="eos")
    assert sample["text"] == " sat on the mat."
    make_event("heartbeat", step=7, total_steps=300, elapsed_s=12.5)
    with pytest.raises(EventError, match="sample event lacks text"):
        make_event("sample", step=100, prompt="The cat", seconds=0.2)
    # Samples and heartbeats never decide how a run ended.
    events = [START, ev("run_finished", step=30, tokens_seen=1, elapsed_s=2.0), sample]
    assert run_outcome(events).status == "finished"
    assert run_outcome([START, ev("heartbeat", step=3, total_steps=9, elapsed_s=1.0)], process_gone=False).status \
        == "running"


def test_a_refused_attempt_does_not_change_how_the_run_ended():
    finished = [ev("run_started", run="r"), ev("step", step=5), ev("run_finished", step=5, tokens_seen=1, elapsed_s=1)]
    refused = ev("run_failed", error="state.pt: refused", traceback="", exit_code=2)
    assert run_outcome([*finished, refused]).status == "finished"
    assert run_outcome([refused]).status == "failed"  # the attempt itself, as its own command reports it
    crashed = ev("run_failed", error="boom", traceback="", exit_code=1)
    assert run_outcome([*finished, crashed]).status == "failed"  # a failure that is not a refusal counts


def _readme_event_fields() -> dict[str, set[str]]:
    """The README's events table: field names per type (``?`` and notes in brackets dropped)."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| type | fields |"):]
    rows: dict[str, set[str]] = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        types, names = line.strip("|").split("|", 1)
        names = re.sub(r"\([^()]*\)", "", re.sub(r"\[[^\]]*\]", "", names)).split(": ")[0]  # no notes
        found = {part.strip().rstrip("?").split(" ")[0]
                 for part in re.split(r",| and ", names) if part.strip()}
        for type_ in re.findall(r"`(\w+)`", types):
            rows[type_] = found
    return rows


def test_typed_events_event_fields_and_readme_agree():
    from dataclasses import MISSING, fields

    from minimind.events import EVENT_CLASSES, EVENT_FIELDS, Event

    base = {f.name for f in fields(Event)}
    readme = _readme_event_fields()
    assert set(EVENT_CLASSES) == set(EVENT_FIELDS) == set(readme)
    for type_, cls in EVENT_CLASSES.items():
        names = [f.name for f in fields(cls) if f.name not in base]
        required = [f.name for f in fields(cls) if f.name not in base
                    and f.default is MISSING and f.default_factory is MISSING]
        assert tuple(required) == EVENT_FIELDS[type_], type_
        assert set(names) == readme[type_], type_


def test_parse_event_both_versions_and_tolerance():
    from minimind.events import EventError, Info, Step, parse_event

    step = make_event("step", step=3, total_steps=10, epoch=0, loss=2.5, loss_ema=2.6, lr=1e-3,
                      grad_norm=0.5, tokens_seen=300, tokens_per_s=100.0, step_time_s=0.1, elapsed_s=1.0,
                      eta_s=None, mfu=None, memory={"gpu": [{"device": "cuda:0", "allocated_mib": 5.0}]},
                      moe={"aux_loss": 0.1, "load": [[0.5, 0.5]], "imbalance": 1.0}, from_the_future=1)
    typed = parse_event(step)
    assert isinstance(typed, Step) and typed.v == 2 and typed.loss == 2.5 and typed.raw is step
    assert typed.memory.gpu[0].allocated_mib == 5.0 and typed.memory.cpu_rss_mib is None
    assert typed.moe.load == [[0.5, 0.5]] and typed.moe.router_bias is None and typed.seq_len is None
    v1 = parse_event({"type": "info", "time": 1.0, "message": "hello"})  # version 1: no v
    assert isinstance(v1, Info) and v1.v == 1 and v1.step is None and v1.type == "info"
    assert parse_event({"v": 3, "type": "from_a_newer_trainer", "time": 1.0}) is None
    with pytest.raises(EventError, match="eval event lacks step"):
        parse_event({"v": 2, "type": "eval", "time": 1.0, "val_loss": 1.0, "perplexity": 2.7})


def test_lenient_parse_never_fails():
    from minimind.events import Eval, Event, parse_event

    raw = {"v": 2, "type": "eval", "time": 1.0, "val_loss": 1.0}
    typed = parse_event(raw, lenient=True)
    assert isinstance(typed, Eval) and typed.step is None and typed.perplexity is None and typed.raw is raw
    unknown = parse_event({"v": 3, "type": "from_a_newer_trainer", "time": 2.0}, lenient=True)
    assert type(unknown) is Event and unknown.time == 2.0 and unknown.type == "from_a_newer_trainer"
