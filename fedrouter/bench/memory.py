"""Peak resident memory of the Ray worker processes during a run, and of one process holding one base model."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psutil

WORKER_TAG = "ClientAppActor"  # Ray titles Flower's virtual-client worker processes "ray::ClientAppActor..."


def peak_rss(pid: int) -> int:
    """The process's high-water mark of resident memory (VmHWM), in bytes; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return psutil.Process(pid).memory_info().rss  # no /proc status: current RSS instead
    except (OSError, psutil.Error):
        return 0


class WorkerMemory:
    """Polls this process's descendants while a simulation runs and keeps each Ray worker's peak RSS.

    Counted: the worker processes that run the ClientApp (each holds one base model, the clients'
    data and one message's adapters). Not counted: the driver (server), Ray's own daemons (GCS,
    raylet, dashboard agent), and the object store's shared memory."""

    def __init__(self, interval_s: float = 0.1):
        self.interval_s = interval_s
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> WorkerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            for proc in me.children(recursive=True):
                try:
                    if WORKER_TAG in " ".join(proc.cmdline()):
                        self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), peak_rss(proc.pid))
                except psutil.Error:
                    continue  # exited between listing and reading
            self._stop.wait(self.interval_s)

    @property
    def total(self) -> int:
        """Sum over workers of their peaks (an upper bound of what they held at once)."""
        return sum(self.peaks.values())


def one_process_peak(cfg_dict: dict[str, Any], run_dir: str, client_id: int) -> int:
    """Peak RSS of a fresh process that imports what a worker imports, builds the backbone and serves
    one client's training and routed-evaluation messages: one base model plus its adapters."""
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter, as a Ray worker starts
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(_serve_one_client, cfg_dict, run_dir, client_id).result()


def _serve_one_client(cfg_dict: dict[str, Any], run_dir: str, client_id: int) -> int:
    import os
    import tempfile

    import ray  # noqa: F401 - a worker process has Ray loaded too
    import torch

    import fedrouter.runtime.client_app  # noqa: F401 - the worker's imports (flwr, transformers, peft)
    from fedrouter.algorithms.base import get_algorithm
    from fedrouter.bench.replay import client_runtime, restored_server
    from fedrouter.config import RunConfig

    cfg = RunConfig.from_mapping(cfg_dict)
    torch.set_num_threads(cfg.client_resources_cpus)  # what Ray's OMP_NUM_THREADS gives a worker
    server, rnd = restored_server(cfg, Path(run_dir))
    client = get_algorithm(cfg.fed_alg).client()
    with tempfile.TemporaryDirectory() as store:
        rt = client_runtime(cfg, client_id, rnd, Path(store))
        setup = server.configure_setup([client_id])
        if setup is not None:
            client.setup(rt, setup[client_id])
        client.train(rt, server.configure_train(rnd, [client_id])[client_id])
        client.evaluate(rt, server.configure_evaluate(rnd, [client_id])[client_id])
    return peak_rss(os.getpid())
