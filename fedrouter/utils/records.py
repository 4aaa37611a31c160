"""Adapter states as Flower ArrayRecords, packed: the one wire format of every message's arrays."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
from flwr.app import Array, ArrayRecord

if TYPE_CHECKING:
    from fedrouter.models.backbone import AdapterState

LAYOUT = "_layout"  # in a packed record: JSON [[name, dtype, shape], ...] as uint8


def to_record(state: AdapterState) -> ArrayRecord:
    """The named arrays as one ArrayRecord, packed: one flat array per dtype plus a small layout array.
    The values are the same; what changes is the number of objects on the wire. Flower's Deployment
    Engine moves each array of a message as its own object with its own HTTP requests (SuperLink ->
    SuperNode -> ClientApp process): a LoRA adapter is a hundred or more tensors, a message with several
    adapters hundreds, and packing makes each a handful (docs/benchmark.md has the pull times)."""
    arrays = {k: np.asarray(v) for k, v in state.items()}
    if len(arrays) < 2:
        return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()})
    layout, groups = [], {}
    for name, a in arrays.items():
        layout.append([name, a.dtype.str, list(a.shape)])
        groups.setdefault(a.dtype.str, []).append(a.reshape(-1))
    record = {f"_packed{dtype}": Array(np.concatenate(parts)) for dtype, parts in groups.items()}
    record[LAYOUT] = Array(np.frombuffer(json.dumps(layout).encode(), dtype=np.uint8).copy())
    return ArrayRecord(record)


def from_record(record: ArrayRecord) -> AdapterState:
    if LAYOUT not in record:
        return {k: v.numpy() for k, v in record.items()}
    layout = json.loads(record[LAYOUT].numpy().tobytes().decode())
    flat = {k: v.numpy() for k, v in record.items() if k != LAYOUT}
    offsets = dict.fromkeys({dtype for _, dtype, _ in layout}, 0)
    out = {}
    for name, dtype, shape in layout:
        n = int(np.prod(shape, dtype=np.int64))
        start = offsets[dtype]
        out[name] = flat[f"_packed{dtype}"][start:start + n].reshape(shape)
        offsets[dtype] = start + n
    return out
