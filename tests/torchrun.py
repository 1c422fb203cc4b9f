"""Run a test file as 2 torchrun processes on the CPU (gloo): the launcher of the multi-process tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_two_processes(script: str, *args: str, timeout: float = 180) -> None:
    """``torchrun --standalone --nproc_per_node 2 script args``; fails the test on a non-zero exit or a hang.

    The launcher gets its own session, so a hung rank is killed with it instead of outliving the test.
    """
    env = os.environ | {"PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", script, *args]
    launcher = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    try:
        _, stderr = launcher.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)
        launcher.communicate()
        pytest.fail(f"torchrun with 2 CPU processes did not finish in {timeout:g} s")
    assert launcher.returncode == 0, stderr[-3000:]
