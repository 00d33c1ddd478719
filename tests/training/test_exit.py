"""How a trainer process that joined a process group ends (distributed.exit_process)."""

import subprocess
import sys
import time

from tests.e2e.conftest import trainer_env

# A process that joined a group: its unflushed output goes to a reader that has gone away, and it
# must not finalize the interpreter (where gloo's worker threads abort it: exit_process's docstring).
SCRIPT = """
import atexit, os, sys, time
from minimind import distributed
distributed._joined = True
atexit.register(lambda: os.write(2, b"interpreter finalized"))
sys.stdout.write("final progress line, still in the buffer")
time.sleep(1.5)
distributed.exit_process(3)
"""


def test_a_process_that_joined_a_group_exits_with_its_own_code_even_when_its_reader_is_gone():
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], env={**trainer_env(), "PYTHONUNBUFFERED": ""},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.2)
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, err.decode()
    assert b"Traceback" not in err and b"interpreter finalized" not in err
