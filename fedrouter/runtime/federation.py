"""The server's view of the clients: discovery (node -> client id), sending, and screening replies."""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Mapping

import numpy as np
from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid

from fedrouter.algorithms.base import LAYOUT, from_record, meta_of, metrics_of
from fedrouter.config import ConfigError
from fedrouter.steps.aggregate import non_finite_keys

log = logging.getLogger("fedrouter.server")


class Federation:
    """Addresses clients by their stable client id (data partition), not by Flower node id,
    which changes between runs; that keeps per-client server state valid across a resume."""

    def __init__(self, grid: Grid, config: Mapping, num_clients: int, wait_s: float = 300.0):
        self.grid = grid
        self.config = ConfigRecord(dict(config))
        # seconds a stage waits for replies (0 = no limit); discovery waits at most wait_s
        self.reply_timeout = float(config.get("reply_timeout", 0.0)) or None
        self.node_of: dict[int, int] = self._discover(num_clients, wait_s)
        # tensor bytes sent to / received from each client since the last take_traffic()
        self._down: dict[int, int] = defaultdict(int)
        self._up: dict[int, int] = defaultdict(int)

    def _discover(self, num_clients: int, wait_s: float) -> dict[int, int]:
        deadline = time.monotonic() + wait_s
        nodes = list(self.grid.get_node_ids())
        while len(nodes) < num_clients:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(nodes)} of num_clients={num_clients} nodes connected after {wait_s:.0f}s")
            time.sleep(1.0)
            nodes = list(self.grid.get_node_ids())
        msgs = [Message(self._content(RecordDict(), 0), dst_node_id=n, message_type=MessageType.QUERY) for n in nodes]
        node_of: dict[int, int] = {}
        problems: dict[str, list[int]] = {}
        for rep in self.exchange(msgs, timeout=wait_s):
            if rep.has_error():
                raise RuntimeError(f"node {rep.metadata.src_node_id} failed discovery: {rep.error.reason}")
            cid = int(metrics_of(rep.content)["client_id"])
            node_of[cid] = rep.metadata.src_node_id
            for problem in filter(None, str(meta_of(rep.content).get("problems", "")).split("\n")):
                problems.setdefault(problem, []).append(cid)
        if problems:
            raise ConfigError("invalid settings, as checked on the clients:\n  - " + "\n  - ".join(
                f"{p} (clients {sorted(c)})" for p, c in problems.items()))
        missing = sorted(set(range(num_clients)) - set(node_of))
        if missing:
            raise RuntimeError(f"no node holds client ids {missing} (num_clients={num_clients}); nodes reported {sorted(node_of)}")
        extra = sorted(set(node_of) - set(range(num_clients)))
        if extra:
            log.warning("nodes with client ids %s are beyond num_clients=%d and stay idle", extra, num_clients)
        return {c: n for c, n in node_of.items() if c < num_clients}

    def exchange(self, msgs: list[Message], poll_s: float = 0.1, timeout: float | None = None) -> list[Message]:
        """Push the messages, then pull replies every `poll_s` until each has one or `timeout` seconds
        have passed (None = no limit): `Grid.send_and_receive` with a short pull interval. (The
        Deployment Engine's grid sleeps 3 s between pulls, which adds up to 3 s to every stage of a
        round; the simulation's pulls every 0.1 s.) A late reply is never pulled: the next stage
        pulls only its own messages' replies."""
        pending = set(self.grid.push_messages(msgs))
        deadline = None if timeout is None else time.monotonic() + timeout
        replies: list[Message] = []
        while pending:
            got = list(self.grid.pull_messages(pending))
            replies.extend(got)
            pending.difference_update(rep.metadata.reply_to_message_id for rep in got)
            if pending and deadline is not None and time.monotonic() >= deadline:
                break
            if pending:
                time.sleep(poll_s)
        return replies

    def _content(self, content: RecordDict, rnd: int, kind: str = "hello") -> RecordDict:
        content["config"] = self.config
        content["ctx"] = ConfigRecord({"round": rnd, "kind": kind})
        return content

    def send(self, kind: str, rnd: int, contents: dict[int, RecordDict]) -> tuple[dict[int, RecordDict], dict[int, str]]:
        """Send one message per client and wait. Returns (good replies, failures with reasons)."""
        mtype = {"train": MessageType.TRAIN, "evaluate": MessageType.EVALUATE, "setup": MessageType.QUERY}[kind]
        client_of = {n: c for c, n in self.node_of.items()}
        msgs = [
            Message(self._content(content, rnd, kind), dst_node_id=self.node_of[cid], message_type=mtype)
            for cid, content in contents.items()
        ]
        for cid, content in contents.items():
            self._down[cid] += tensor_bytes(content)
        good: dict[int, RecordDict] = {}
        failed: dict[int, str] = {}
        for rep in self.exchange(msgs, timeout=self.reply_timeout):
            cid = client_of.get(rep.metadata.src_node_id, -1)
            if rep.has_error():
                failed[cid] = f"error: {rep.error.reason}".strip()
                continue
            self._up[cid] += tensor_bytes(rep.content)  # received, whether or not it is then used
            reason = screen(rep.content)
            if reason:
                failed[cid] = reason
            else:
                good[cid] = rep.content
        for cid in contents:
            if cid not in good and cid not in failed:
                failed[cid] = f"no reply within reply_timeout={self.reply_timeout:g} s" if self.reply_timeout else "no reply"
        for cid, reason in sorted(failed.items()):
            log.warning("round %d: client %d %s failed and is left out: %s", rnd, cid, kind, reason[:300])
        # Replies in client order, not arrival order: float sums over clients (FedAvg, the mean
        # score) then do not depend on which worker answered first.
        return dict(sorted(good.items())), failed

    def take_traffic(self) -> dict:
        """Tensor bytes exchanged since the last call: {"down_bytes", "up_bytes", "clients": {id: [down,
        up]}}, then reset. Down = server to client, up = client to server."""
        clients = sorted(set(self._down) | set(self._up))
        out = {"down_bytes": sum(self._down.values()), "up_bytes": sum(self._up.values()),
               "clients": {str(c): [self._down.get(c, 0), self._up.get(c, 0)] for c in clients}}
        self._down.clear()
        self._up.clear()
        return out


def tensor_bytes(content: RecordDict) -> int:
    """Bytes of the tensor values in a message's array records (what an algorithm sends: adapters,
    centroids, ...); serialization headers and the small config/metric records are not counted."""
    return sum(int(np.prod(arr.shape, dtype=np.int64)) * np.dtype(arr.dtype).itemsize
               for record in content.array_records.values() for name, arr in record.items() if name != LAYOUT)


def screen(content: RecordDict) -> str | None:
    """Why a reply must not be aggregated (non-finite loss or arrays), or None if it is sound."""
    metrics = metrics_of(content)
    for key in ("loss",):
        if key in metrics and not math.isfinite(metrics[key]):
            return f"non-finite {key} ({metrics[key]})"
    for name, record in content.array_records.items():
        bad = non_finite_keys(from_record(record))
        if bad:
            return f"non-finite values in {name} ({len(bad)} tensors, e.g. {bad[0]})"
    return None
