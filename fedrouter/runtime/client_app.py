"""Flower ClientApp: turns a message into a ClientRuntime and hands it to the algorithm's client half."""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import time
from pathlib import Path

# Loaded with the app, not at the first clustering (fedrouter.steps.cluster imports it when used):
# threadpool_limits in runtime() limits only the pools of the libraries loaded by then, and scikit-learn
# brings its own OpenMP and scipy's BLAS.
import sklearn.cluster  # noqa: F401
import torch
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from threadpoolctl import threadpool_limits

from fedrouter.algorithms.base import ClientRuntime, get_algorithm
from fedrouter.algorithms.client_state import ClientStore
from fedrouter.config import RunConfig
from fedrouter.data.prompt import encode_example
from fedrouter.models import loader
from fedrouter.models.backbone import get_backbone
from fedrouter.privacy.client import release
from fedrouter.results.run_folder import RESUME_FREE_KEYS
from fedrouter.steps.generate import DECODE_COUNTERS
from fedrouter.utils import process_state
from fedrouter.utils.logs import setup_process_logging
from fedrouter.utils.timing import recording, timed
from fedrouter.validation import source_problems

log = logging.getLogger("fedrouter.client")

app = ClientApp()


def config_from_message(msg: Message) -> RunConfig:
    return _parse_config(tuple(sorted(dict(msg.content["config"]).items())))


@process_state.cached(maxsize=4)
def _parse_config(items: tuple) -> RunConfig:
    return RunConfig.from_mapping(dict(items))


def client_id_of(context: Context) -> int:
    if "partition-id" not in context.node_config:
        raise RuntimeError("this SuperNode has no 'partition-id' in its node config (--node-config 'partition-id=0 ...')")
    return int(context.node_config["partition-id"])


def store_root(cfg: RunConfig, context: Context) -> Path:
    """Where this client keeps private state: the SuperNode's own folder in deployment, a folder
    under the run directory (never read by the server) in simulation."""
    root = context.node_config.get("client-state-dir")
    if not root:
        return cfg.run_dir / "clients"
    # A SuperNode serves many runs: one subfolder per run name and result-affecting settings, so
    # runs never read each other's state while a resumed run (same settings) finds its own.
    settings = {k: v for k, v in cfg.to_dict().items() if k not in RESUME_FREE_KEYS}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    return Path(str(root)) / f"{cfg.run_dir.name}-{digest}"


# Sized for every client a worker may serve, so that no message re-tokenizes its client's data.
@process_state.cached(maxsize=1024)
@timed("data")
def _client_examples(cfg: RunConfig, client_id: int):
    from fedrouter.data.federated import client_data

    data = client_data(cfg, client_id)
    tok = get_backbone(cfg).tokenizer
    examples = [encode_example(tok, r["instruction"], r["response"], cfg.seq_length) for r in data.train]
    return data, examples


def runtime(msg: Message, context: Context) -> ClientRuntime:
    cfg = config_from_message(msg)
    setup_process_logging()
    cid = client_id_of(context)
    rnd = int(msg.content["ctx"]["round"])
    # client_resources_cpus torch threads in every engine: Ray gives a simulation worker that many
    # (OMP_NUM_THREADS), a SuperNode's ClientApp process would take every core. Float sums then
    # differ in their last bits, and a deployment run would not reproduce the simulation's numbers.
    if torch.get_num_threads() != cfg.client_resources_cpus:
        torch.set_num_threads(cfg.client_resources_cpus)
    # The same for the other thread pools (OpenMP, BLAS: numpy, scikit-learn, bitsandbytes). Ray sets
    # OMP_NUM_THREADS in its workers; a SuperNode's ClientApp process has no such limit, and several
    # of them on one machine would each start a thread per core and spin against each other.
    threadpool_limits(cfg.client_resources_cpus)
    backbone = get_backbone(cfg)
    # Data and tokenized examples are built once per client per process and reused every round.
    data, examples = _client_examples(cfg, cid)
    store = ClientStore(store_root(cfg, context), cid, run_id=msg.metadata.run_id)
    return ClientRuntime(cfg, cid, rnd, data, backbone, store, examples)


def _handle(kind: str, msg: Message, context: Context) -> Message:
    t0 = time.perf_counter()
    process_state.clear(DECODE_COUNTERS)
    with recording() as phases:  # seconds per phase (load, data, embed, cluster, train, ...)
        rt = runtime(msg, context)
        client = get_algorithm(rt.cfg.fed_alg).client()
        fault = rt.cfg.fault_for(rt.client_id, rt.rnd) if kind == "train" else None
        if fault == "raise":
            raise RuntimeError(f"injected fault (inject_fault={rt.cfg.inject_fault!r})")
        if fault == "hang":  # answers, but only after the server has stopped waiting for it
            time.sleep(2 * rt.cfg.reply_timeout)
        handler = {"train": client.train, "evaluate": client.evaluate, "setup": client.setup}[kind]
        content = handler(rt, msg.content)
        if kind == "train":  # dp on: the update clipped (dp=local: noised) before it leaves the client
            content = release(rt, msg.content, content)
    metrics = content["metrics"]
    metrics["client_id"] = float(rt.client_id)
    metrics.update({f"time/{name}": s for name, s in phases.items()})
    # Which process served the message and how many base models it has loaded so far (should be 1).
    metrics["pid"], metrics["load_count"] = float(os.getpid()), float(loader.LOAD_COUNT)
    metrics["time_s"] = time.perf_counter() - t0
    if DECODE_COUNTERS["steps"]:  # generation's decode steps (for the benchmark's roofline)
        metrics["decode_steps"], metrics["decode_row_steps"] = (float(DECODE_COUNTERS["steps"]),
                                                                 float(DECODE_COUNTERS["row_steps"]))
    if fault == "nan":
        metrics["loss"] = float("nan")
    log.info("client %d %s round %d done in %.1fs%s", rt.client_id, kind, rt.rnd, metrics["time_s"],
             f" (loss {metrics['loss']:.3f})" if "loss" in metrics else "")
    release_free_memory()
    return Message(content, reply_to=msg)


@process_state.cached(maxsize=1)
def _libc_malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to release this way
        return None


def release_free_memory() -> None:
    """Hand the heap memory a message freed back to the OS: glibc keeps freed memory in its arenas, so
    a process serving several clients would otherwise hold far more between messages than it uses
    (docs/benchmark.md has the measurements). It costs milliseconds."""
    trim = _libc_malloc_trim()
    if trim is not None:
        trim(0)


@app.train()
def train(msg: Message, context: Context) -> Message:
    return _handle("train", msg, context)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    return _handle("evaluate", msg, context)


@app.query()
def query(msg: Message, context: Context) -> Message:
    """Discovery (which client / data partition this node is; nothing else leaves the client), or
    an algorithm's one-off setup step."""
    if str(msg.content["ctx"]["kind"]) == "setup":
        return _handle("setup", msg, context)
    cid = client_id_of(context)
    # The client checks that it can load the data and model the run names, before any round: a
    # typo'd path or a missing column stops the run at once with the message, not in round 1.
    problems = source_problems(config_from_message(msg))
    content = RecordDict({"metrics": MetricRecord({"client_id": float(cid)}),
                          "meta": ConfigRecord({"kind": "hello", "problems": "\n".join(problems)})})
    return Message(content, reply_to=msg)
