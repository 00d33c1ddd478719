"""The control channel: requests are numbered, read once, and never replayed from a past run."""

from __future__ import annotations

import json

import pytest

from minimind.control import CONTROL_FILE, ControlReader, send_command


def test_each_request_is_seen_once_in_order(tmp_path):
    reader = ControlReader(tmp_path)
    assert reader.poll() is None
    assert send_command(tmp_path, "pause") == 1
    assert reader.poll() == "pause" and reader.poll() is None
    assert send_command(tmp_path, "resume") == 2
    assert reader.poll() == "resume"


def test_requests_written_before_the_trainer_started_are_ignored(tmp_path):
    send_command(tmp_path, "stop")
    reader = ControlReader(tmp_path)
    assert reader.poll() is None
    send_command(tmp_path, "save")
    assert reader.poll() == "save"


def test_unknown_commands_and_garbage_are_refused_or_ignored(tmp_path):
    with pytest.raises(ValueError, match="unknown control command"):
        send_command(tmp_path, "explode")
    reader = ControlReader(tmp_path)
    (tmp_path / CONTROL_FILE).write_text("{not json")
    assert reader.poll() is None
    (tmp_path / CONTROL_FILE).write_text(json.dumps({"seq": 5, "command": "explode"}))
    assert reader.poll() is None
    assert send_command(tmp_path, "stop") == 6 and reader.poll() == "stop"


def test_sample_is_a_command(tmp_path):
    reader = ControlReader(tmp_path)
    send_command(tmp_path, "sample")
    assert reader.poll() == "sample"
