"""fedrouter.algorithms.client_state: a client's private state, versioned by round, so that a redone round
starts from the same state; evaluation records and predictions kept beside it."""

from __future__ import annotations

import numpy as np

from fedrouter.algorithms.client_state import ClientState, ClientStore


def test_a_round_starts_from_the_newest_state_of_an_earlier_round(tmp_path):
    store = ClientStore(tmp_path, 3)
    assert store.dir == tmp_path / "client_3"
    assert store.load(before_round=1) == ClientState()  # nothing saved yet
    store.save(ClientState(1, {"b": np.full(2, 1.0)}, {"k": 2}))
    store.save(ClientState(2, {}, {"labels": [0, 1]}))  # meta alone: no arrays file
    assert store.load(before_round=2).round == 1 and store.load(before_round=2).meta == {"k": 2}
    st = store.load(before_round=3)
    assert (st.round, st.arrays, st.meta) == (2, {}, {"labels": [0, 1]})
    assert not (store.dir / "state_r2.npz").exists()


def test_only_the_newest_rounds_are_kept(tmp_path):
    store = ClientStore(tmp_path, 0, keep=2)
    for r in range(1, 5):
        store.save(ClientState(r, {"b": np.full(1, float(r))}, {}))
    assert sorted(p.name for p in store.dir.iterdir()) == [
        "state_r3.json", "state_r3.npz", "state_r4.json", "state_r4.npz"]
    assert store.load(before_round=3) == ClientState()  # rounds 1 and 2 are gone


def test_saving_a_round_drops_state_of_later_rounds(tmp_path):
    import numpy as np

    store = ClientStore(tmp_path, 0)
    for r in (3, 4):  # an earlier attempt of the run got to round 4
        store.save(ClientState(r, {"b": np.full(2, r)}, {}))
    store.save(ClientState(1, {"b": np.ones(2)}, {}))  # the run started over
    assert store.load(before_round=5).round == 1
    assert sorted(p.name for p in store.dir.iterdir()) == ["state_r1.json", "state_r1.npz"]

    # run ids known: another run's later rounds go, this run's own (a late reply's save) stay
    old, now = ClientStore(tmp_path / "b", 0, run_id=7), ClientStore(tmp_path / "b", 0, run_id=8)
    old.save(ClientState(4, {"b": np.full(2, 4)}, {}))
    now.save(ClientState(1, {"b": np.ones(2)}, {"k": 1}))
    assert now.load(before_round=5).round == 1
    now.save(ClientState(3, {"b": np.full(2, 3)}, {}))
    now.save(ClientState(2, {"b": np.full(2, 2)}, {}))  # round 2's reply came late, after round 3
    st = now.load(before_round=5)
    assert st.round == 3 and st.arrays["b"].tolist() == [3, 3] and st.meta == {}
    assert now.load(before_round=3).round == 2 and now.load(before_round=3).meta == {}


def test_evaluation_records_and_predictions_by_round(tmp_path):
    store = ClientStore(tmp_path, 1)
    store.save_eval(5, {"emb": np.eye(2)}, {"routed": [0, 1]})
    store.save_eval(0, {"emb": np.zeros(2)}, {"routed": []})
    assert store.eval_rounds() == [0, 5]
    arrays, meta = store.load_eval(5)
    assert np.array_equal(arrays["emb"], np.eye(2)) and meta == {"routed": [0, 1]}
    rows = [{"task": "qqp", "prediction": "Yes", "reference": "No", "rouge1": 0.0}]
    store.save_predictions(5, rows)
    assert store.load_predictions(5) == rows
    assert store.load(before_round=10) == ClientState()  # evaluation records are not training state
