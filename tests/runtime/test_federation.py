"""The server's view of the clients (fedrouter.runtime.federation) on an in-memory grid: discovery by
client id, one send with good, failing, non-finite and silent clients, the traffic count."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict

from fedrouter.algorithms.base import reply, to_record
from fedrouter.config import ConfigError
from fedrouter.runtime.federation import Federation, screen, tensor_bytes


class FakeGrid:
    """A grid whose nodes answer at once through `answer(client id, message) -> RecordDict | Error | None`
    (None: never answers). Node ids differ from client ids, as in a real federation."""

    def __init__(self, answer, clients=(0, 1, 2), problems=None):
        self.answer = answer
        self.client_of = {100 + c: c for c in clients}
        self.problems = problems or {}
        self.outbox: dict[str, Message] = {}
        self.sent: list[Message] = []

    def get_node_ids(self):
        return list(self.client_of)

    def push_messages(self, msgs):
        ids = []
        for msg in msgs:
            msg.metadata.__dict__["_message_id"] = f"m{len(self.sent)}"  # what the SuperLink sets
            self.sent.append(msg)
            ids.append(msg.metadata.message_id)
            cid = self.client_of[msg.metadata.dst_node_id]
            if msg.metadata.message_type == "query":  # discovery: say which client this node is
                meta = ConfigRecord({"kind": "hello", "problems": self.problems.get(cid, "")})
                out = RecordDict({"metrics": MetricRecord({"client_id": float(cid)}), "meta": meta})
            else:
                out = self.answer(cid, msg)
            if out is not None:
                self.outbox[msg.metadata.message_id] = Message(out, reply_to=msg)
        return ids

    def pull_messages(self, ids):
        return [self.outbox.pop(i) for i in list(ids) if i in self.outbox]


@pytest.fixture(autouse=True)
def _task_identity(monkeypatch):
    """Flower stamps every message with the run and task of the process; a test process has none."""
    from flwr.supercore.task_identity import TaskIdentity

    for name in ("_run_id", "_node_id", "_task_id"):
        monkeypatch.setattr(TaskIdentity, name, 1)


def _adapter(value: float) -> dict[str, np.ndarray]:
    return {"a": np.full((2, 3), value, dtype=np.float32), "b": np.zeros(4, dtype=np.float32)}


def test_discovery_maps_client_ids_to_nodes_and_stops_on_client_problems():
    fed = Federation(FakeGrid(lambda cid, msg: None), {"seed": 1}, num_clients=3, wait_s=1)
    assert fed.node_of == {0: 100, 1: 101, 2: 102}
    with pytest.raises(ConfigError, match=r"no such column \(clients \[1\]\)"):
        Federation(FakeGrid(lambda cid, msg: None, problems={1: "no such column"}), {}, num_clients=3, wait_s=1)
    with pytest.raises(RuntimeError, match=r"no node holds client ids \[2\]"):
        Federation(FakeGrid(lambda cid, msg: None, clients=(0, 1, 5)), {}, num_clients=3, wait_s=0)
    with pytest.raises(RuntimeError, match="only 3 of num_clients=4 nodes connected"):
        Federation(FakeGrid(lambda cid, msg: None), {}, num_clients=4, wait_s=0)


def test_a_failing_client_is_left_out_with_its_reason_and_the_rest_are_aggregated():
    # Prepare: client 0 answers, 1 raises, 2 sends a NaN loss, 3 sends a NaN adapter, 4 never answers
    def answer(cid, msg):
        if cid == 1:
            return Error(code=0, reason="RuntimeError: injected fault")
        if cid == 4:
            return None
        state = _adapter(np.nan if cid == 3 else 1.0)
        return reply({"loss": float("nan") if cid == 2 else 0.5, "num_samples": 8.0}, {"adapter": state})

    fed = Federation(FakeGrid(answer, clients=range(5)), {"seed": 1, "reply_timeout": 0.3}, num_clients=5, wait_s=1)
    contents = {cid: RecordDict({"adapter": to_record(_adapter(0.0))}) for cid in range(5)}
    # Execute
    good, failed = fed.send("train", 2, contents)
    # Assert: only the sound reply is kept; every other client is named with why
    assert list(good) == [0]
    assert failed[1] == "error: RuntimeError: injected fault"
    assert failed[2] == "non-finite loss (nan)"
    assert failed[3].startswith("non-finite values in adapter (1 tensors, e.g. a)")
    assert failed[4] == "no reply within reply_timeout=0.3 s"
    # every message carried the run config and its round and kind
    sent = [m for m in fed.grid.sent if m.metadata.message_type == "train"]
    assert {m.content["ctx"]["round"] for m in sent} == {2} and {m.content["ctx"]["kind"] for m in sent} == {"train"}
    assert all(m.content["config"]["seed"] == 1 for m in sent)
    # traffic: 5 adapters down (each 10 float32), replies received up from clients 0, 2 and 3
    traffic = fed.take_traffic()
    assert traffic["down_bytes"] == 5 * 40 and traffic["up_bytes"] == 3 * 40
    assert traffic["clients"]["1"] == [40, 0] and traffic["clients"]["0"] == [40, 40]
    assert fed.take_traffic()["down_bytes"] == 0  # reset by the call


def test_replies_come_back_in_client_order_whatever_the_arrival_order():
    fed = Federation(FakeGrid(lambda cid, msg: reply({"loss": 0.1})), {}, num_clients=3, wait_s=1)
    fed.grid.pull_messages = lambda ids, pull=fed.grid.pull_messages: list(reversed(pull(ids)))
    good, failed = fed.send("evaluate", 1, {2: RecordDict(), 0: RecordDict(), 1: RecordDict()})
    assert list(good) == [0, 1, 2] and not failed


def test_screen_and_tensor_bytes():
    sound = reply({"loss": 1.0}, {"adapter": _adapter(1.0)})
    assert screen(sound) is None and tensor_bytes(sound) == 10 * 4  # the packing layout is not counted
    assert screen(reply({"loss": float("inf")})) == "non-finite loss (inf)"


def test_tensor_bytes_counts_values_not_headers_or_config():
    content = RecordDict({"a": ArrayRecord({"w": Array(np.zeros((3, 4), np.float32)),
                                            "b": Array(np.zeros(5, np.float64))}),
                          "c": ArrayRecord({"x": Array(np.zeros((2, 2, 2), np.int8))}),
                          "config": ConfigRecord({"text": "x" * 1000})})
    assert tensor_bytes(content) == 3 * 4 * 4 + 5 * 8 + 8
