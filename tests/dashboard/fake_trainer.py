"""A stand-in trainer process for the dashboard's own tests: it writes a recorded run's events to
``RUN_DIR/events.jsonl`` (with its own pid), then idles answering the real control channel the
way ``minimind.train`` does (save -> checkpoint event, pause/resume, stop -> checkpoint then run_stopped, exit 0).

The dashboard's end-to-end tests against the real trainer live in tests/e2e.
Usage: python tests/dashboard/fake_trainer.py RUN_DIR FIXTURE.jsonl [LINES]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from minimind.control import ControlReader
from minimind.events import EventWriter


def main() -> int:
    run_dir, fixture = Path(sys.argv[1]), Path(sys.argv[2])
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else None
    events = [json.loads(line) for line in fixture.read_text().splitlines() if line.strip()]
    events = [e for e in events if e["type"] not in ("run_finished", "run_stopped", "run_failed")][:limit]
    control = ControlReader(run_dir)
    print("fake trainer starting", flush=True)
    step = 0
    with EventWriter(run_dir) as writer:
        for event in events:
            fields = {k: v for k, v in event.items() if k not in ("v", "type")}
            if event["type"] == "run_started":
                fields["pid"] = os.getpid()
            writer.emit(event["type"], **fields)
            step = event.get("step", step)
        print(f"fake trainer idle at step {step}", flush=True)
        while True:
            command = control.poll()
            if command == "save":
                writer.emit("checkpoint", step=step, path=str(run_dir / "checkpoints" / f"step_{step}"),
                            seconds=0.1, reason="request")
            elif command == "pause":
                writer.emit("paused", step=step)
            elif command == "resume":
                writer.emit("resumed", step=step)
            elif command == "stop":
                path = str(run_dir / "checkpoints" / f"step_{step}")
                writer.emit("checkpoint", step=step, path=path, seconds=0.1, reason="request")
                writer.emit("run_stopped", step=step, reason="request", checkpoint=path)
                return 0  # like the real trainer: a clean stop exits 0; the CLI's 130 comes from run_outcome
            time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
