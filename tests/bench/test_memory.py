"""Peak resident memory: of a process, and of the Ray workers a run starts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from fedrouter.bench.memory import WORKER_TAG, WorkerMemory, peak_rss


def test_peak_rss_of_this_process_and_of_one_that_is_gone():
    assert peak_rss(os.getpid()) > 10 * 2**20  # a Python process with numpy holds more than 10 MB
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert peak_rss(int(proc.stdout)) == 0


def test_worker_memory_keeps_the_peak_of_each_worker_child_only():
    # a child titled like a Ray ClientApp worker, and one that is not
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", WORKER_TAG])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with WorkerMemory(interval_s=0.05) as memory:
            deadline = time.monotonic() + 20
            while not memory.peaks and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        worker.kill()
        other.kill()
        worker.wait()
        other.wait()
    assert set(memory.peaks) == {worker.pid} and memory.total == memory.peaks[worker.pid] > 0
