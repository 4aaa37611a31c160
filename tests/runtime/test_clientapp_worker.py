"""The long-running ClientApp process of a SuperNode (fedrouter.runtime.clientapp_worker) through the
deployment launcher: a client whose training raises gets an error reply and the same process serves its
next messages, with one base-model load for the whole run; and the bench's deployment comparison."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import tiny_settings
from fedrouter.bench.deployment import compare, deployment_run
from fedrouter.runtime.clientapp_worker import Worker, parse_args, restart_argv


def test_worker_arguments_name_the_runtime_api_and_the_transport():
    args = parse_args(["--runtime-api-address", "127.0.0.1:9094", "--insecure", "--parent-pid", "7"])
    assert (args.runtime_api_address, args.insecure, args.parent_pid) == ("127.0.0.1:9094", True, 7)
    with pytest.raises(SystemExit):  # TLS or --insecure must be chosen
        parse_args(["--runtime-api-address", "127.0.0.1:9094"])


def test_a_task_of_another_fab_restarts_the_worker_with_that_task_first(monkeypatch):
    base = ["--runtime-api-address", "127.0.0.1:9094", "--insecure", "--parent-pid", "7"]
    cmd = restart_argv([*base, "--first-token", "old"], "new")
    assert cmd[1:3] == ["-m", "fedrouter.runtime.clientapp_worker"] and cmd[3:] == [*base, "--first-token", "new"]
    assert restart_argv([*base, "--first-token=old"], "new")[3:] == [*base, "--first-token", "new"]
    args = parse_args(cmd[3:])
    assert (args.first_token, args.parent_pid, args.insecure) == ("new", 7, True)
    # serve(): a task whose FAB hash differs from the loaded one execs the restart with its token
    execs = []

    class Stop(Exception):
        pass

    def execv(path, argv):
        execs.append(argv)
        raise Stop

    class Acquirer:
        def AcquireTask(self, req):  # noqa: N802 - Flower's RPC name
            from types import SimpleNamespace
            return SimpleNamespace(HasField=lambda f: True, token="tok2", task=SimpleNamespace(fab_hash="fab-B"))

        def close(self):
            pass

    worker = Worker("127.0.0.1:9094", True, None, 0.1, base)
    worker.fab_hash = "fab-A"
    monkeypatch.setattr(worker, "_client", lambda interceptors: Acquirer())
    monkeypatch.setattr("os.execv", execv)
    with pytest.raises(Stop):
        worker.serve()
    assert execs == [restart_argv(base, "tok2")]


# ~1.5 min: SuperLink + 2 SuperNodes with their ClientApp processes on loopback
@pytest.mark.slow
def test_a_failing_message_leaves_the_clientapp_process_serving(tmp_path):
    cfg = tiny_settings(tmp_path / "output", fed_alg="fedit", num_clients=2, sample_clients=2, num_rounds=2,
                        eval_round="2", max_steps=2, max_new_tokens=4, inject_fault="1:1")
    deployment_run(cfg, tmp_path)
    rows = [json.loads(line) for line in (cfg.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert "injected fault" in rows[0]["failures"]["1"] and rows[1]["failures"] == {}
    assert sorted(rows[1]["timing"]["train"]) == ["0", "1"]  # client 1 trains again in round 2
    log = (tmp_path / "flower" / "logs" / "clientapp_1.log").read_text()
    assert "ClientApp raised an exception" in log and "client 1 train round 2 done" in log
    assert log.count("loaded base model") == 1  # the same process, before and after the failure
    pids = {m["pid"] for r in rows for m in r["timing"]["train"].values() if m}
    assert len(pids) == 2


# ~2-3 min: the same tiny run on the simulation and on the Deployment Engine
@pytest.mark.slow
def test_bench_compares_deployment_with_simulation(tmp_path):
    cfg = tiny_settings(tmp_path / "unused", fed_alg="fedrouter", router="global", test_distribution="all",
                        global_n_clusters="4", num_clients=4, sample_clients=4, num_rounds=2, eval_round="2",
                        max_steps=2, max_new_tokens=4)
    r = compare(cfg, tmp_path)
    assert r["final_metric"] == "rouge1" and r["final_score"]["deployment"] == r["final_score"]["simulation"]
    assert r["loads"]["deployment"] == [1, 1, 1, 1]  # one load per SuperNode for the whole run
    assert list(r["stages"]["deployment"]) == ["setup", "round 1", "round 2"]
    assert r["ratio"] == pytest.approx(r["rounds_wall_s"]["deployment"] / r["rounds_wall_s"]["simulation"])
    assert not subprocess.run(["pgrep", "-f", str(Path(tmp_path) / "deployment-work")], capture_output=True).stdout
