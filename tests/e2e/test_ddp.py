"""DDP through torchrun with 2 gloo processes on CPU."""

import subprocess
import sys

from minimind.checkpoint import find_checkpoint
from minimind.events import read_events
from tests.e2e.conftest import losses_by_step, make_run, run_to_end, trainer_env


def torchrun(run_dir, *args, timeout=600):
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
            "-m", "minimind.train", str(run_dir), *args]
    proc = subprocess.run(argv, env=trainer_env(MINIMIND_DIST_TIMEOUT="120"), capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def test_two_processes_match_one_process_with_double_batch(tmp_path, small_dataset):
    common = ["train.max_steps=8", "train.save_interval=4"]
    single = make_run(tmp_path, small_dataset, "single", [*common, "train.batch_size=4"])
    code, _, err = run_to_end(single)
    assert code == 0, err
    ddp = make_run(tmp_path, small_dataset, "ddp", [*common, "train.batch_size=2"])
    code, out, err = torchrun(ddp)
    assert code == 0, err
    started = read_events(ddp / "events.jsonl")[0]
    assert started["world_size"] == 2
    a, b = losses_by_step(single), losses_by_step(ddp)
    assert sorted(a) == sorted(b) == list(range(1, 9))
    for step in a:
        assert abs(a[step][0] - b[step][0]) < 1e-5, (step, a[step], b[step])

    # Resume under DDP: drop the final checkpoint, resume from step 4, same losses again.
    import shutil

    for info_dir in (ddp / "checkpoints").iterdir():
        if info_dir.name != "step_00000004":
            shutil.rmtree(info_dir)
    assert find_checkpoint(ddp).step == 4
    code, out, err = torchrun(ddp, "--resume-from", str(ddp))
    assert code == 0, err
    c = losses_by_step(ddp)
    for step in range(5, 9):
        assert abs(c[step][0] - a[step][0]) < 1e-5
