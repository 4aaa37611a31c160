"""fedrouter.algorithms.base: records packed for the wire and given back bitwise, and a client's reply
(metrics, arrays, meta) read back (the two halves are exercised per algorithm in this folder)."""

from __future__ import annotations

from flwr.app import RecordDict

from fedrouter.algorithms.base import from_record, meta_of, metrics_of, reply


def test_records_pack_arrays_and_give_them_back_bitwise():
    """Adapters travel as one flat array per dtype plus a layout (few objects on the Deployment Engine's
    wire); what comes out is the same names, shapes, dtypes and bits."""
    import numpy as np

    from fedrouter.algorithms.base import LAYOUT, to_record
    from fedrouter.runtime.federation import tensor_bytes

    rng = np.random.default_rng(0)
    state = {f"layer{i}.lora_{ab}.weight": rng.standard_normal((3, 5) if ab == "A" else (5, 3)).astype(np.float32)
             for i in range(40) for ab in "AB"}
    state.update(counts=np.arange(4), scalar=np.float64(2.5), empty=np.zeros((0, 7), np.float32))
    record = to_record(state)
    assert len(record) == 4 and LAYOUT in record  # float32, int64, float64 + the layout: not 83 arrays
    back = from_record(record)
    assert list(back) == list(state)
    for k, v in state.items():
        assert back[k].dtype == v.dtype and back[k].shape == np.shape(v) and back[k].tobytes() == np.asarray(v).tobytes()
    content = RecordDict({"adapter": record})
    assert tensor_bytes(content) == sum(np.asarray(v).nbytes for v in state.values())  # the layout is not counted
    single = to_record({"w": state["counts"]})  # one array: sent as it is
    assert list(single) == ["w"] and from_record(single)["w"].tolist() == [0, 1, 2, 3]


def test_a_reply_is_read_back_as_it_was_made():
    import numpy as np

    adapter = {"m.q.lora_A.weight": np.ones((2, 3), np.float32), "m.q.lora_B.weight": np.zeros((3, 2), np.float32)}
    content = reply({"loss": 1, "num_samples": np.float32(4)}, {"adapter": adapter}, meta={"kind": "hello"})
    assert metrics_of(content) == {"loss": 1.0, "num_samples": 4.0}
    assert all(type(v) is float for v in metrics_of(content).values())
    assert meta_of(content) == {"kind": "hello"}
    back = from_record(content["adapter"])
    assert list(back) == list(adapter) and all(np.array_equal(back[k], v) for k, v in adapter.items())
    bare = reply({})
    assert metrics_of(bare) == {} and meta_of(bare) == {} and not bare.array_records
    assert metrics_of(RecordDict()) == {}  # nothing at all: no metrics
