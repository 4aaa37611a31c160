"""Communication accounting: the bytes each round records in metrics.jsonl are the sizes of the arrays
the server and the clients actually exchanged, per client and in total; the run's total is in
results.json and the report."""

from __future__ import annotations

import json
from collections import defaultdict

from conftest import arrays_in, tiny_settings
from fedrouter.results.matrix import load_runs, traffic_stats
from fedrouter.results.report_markdown import markdown_report
from fedrouter.runtime.simulate import simulate


def test_each_rounds_bytes_are_the_arrays_sent(tmp_path, sent):
    # Prepare: FedRouter (centroids at setup, two adapters per client, routing data at evaluation)
    cfg = tiny_settings(tmp_path, fed_alg="fedrouter", split_strategy="dual", n_clusters="2", global_n_clusters="4",
                        train_all_clusters=True, num_rounds=2, eval_round="0,2", max_steps=2, max_new_tokens=4)
    # Execute
    results = simulate(cfg)
    # Assert: per round, client and direction, the recorded bytes equal the numpy sizes of what was sent
    expected: dict[int, dict[str, dict[int, int]]] = defaultdict(lambda: {"down": defaultdict(int), "up": defaultdict(int)})
    for direction, _, rnd, cid, _, state in arrays_in(sent, kinds=("setup", "train", "evaluate")):
        expected[rnd][direction][cid] += sum(v.nbytes for v in state.values())
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rows] == [0, 1, 2]
    for row in rows:
        want = expected[row["round"]]
        assert row["comm"]["clients"] == {str(c): [want["down"][c], want["up"][c]]
                                          for c in sorted(set(want["down"]) | set(want["up"]))}
        assert row["comm"]["down_bytes"] == sum(want["down"].values())
        assert row["comm"]["up_bytes"] == sum(want["up"].values()) > 0  # round 0: the setup's centroids
    # round 1 sends no adapter down (each client starts from the same seeded initialisation); round 2
    # sends the trained ones with the routing centroids
    assert rows[1]["comm"]["down_bytes"] == 0 < rows[2]["comm"]["down_bytes"]
    total = sum(r["comm"]["down_bytes"] + r["comm"]["up_bytes"] for r in rows)
    assert results["communication"]["total_bytes"] == total
    # ... and the report shows the run's MB
    out_root = tmp_path / "matrix"
    (out_root / "generalization").mkdir(parents=True)
    (cfg.run_dir).rename(out_root / "generalization" / "fedrouter_seed0")
    runs = load_runs(out_root)
    assert traffic_stats(runs)[("generalization", "fedrouter")].mean == total / 1e6
    assert f"{total / 1e6:.2f} ± –" in markdown_report(runs, out_root)
