"""Real federations: Flower's Deployment Engine on loopback (SuperLink and SuperNodes as separate
processes, TLS and SuperNode authentication), and the simulation on an existing Ray cluster."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from conftest import REPO, metrics_without_timings, tiny_settings
from fedrouter.bench.deployment import flower_env, free_ports, run_config_arg
from fedrouter.config import flat_defaults
from fedrouter.runtime.simulate import backend_config, simulate

SCRIPTS = REPO / "training_scripts"
# FedRouter, 2 rounds, evaluation at round 2, on the embedded default (tiny model, built-in data).
FEDROUTER_TINY = dict(fed_alg="fedrouter", evaluation_mode="global", global_n_clusters="4", max_steps=2,
                      max_new_tokens=4)


# --- helpers ----------------------------------------------------------------------------------


class ProcessTree:
    """Every process below `root_pid`, collected while it runs, to check that none outlives it."""

    def __init__(self, root_pid: int):
        self.root = psutil.Process(root_pid)
        self.seen: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                for p in self.root.children(recursive=True):
                    self.seen.setdefault(p.pid, p)
            except psutil.Error:
                pass
            self._stop.wait(0.3)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def survivors(self) -> list[str]:
        return [f"{p.pid} {' '.join(p.cmdline())[:120]}" for p in self.seen.values() if _alive(p)]


def stop_all(procs: list[subprocess.Popen], trees: list[ProcessTree]) -> None:
    """Stop what a test started as the launcher does: SIGTERM to the started processes (Flower's
    stop their own children), then SIGTERM to any of their descendants still running, by PID."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        p.wait(timeout=60)
    for tree in trees:
        tree.stop()
    leftovers = [p for t in trees for p in t.seen.values() if _alive(p)]
    for p in leftovers:
        p.terminate()
    psutil.wait_procs(leftovers, timeout=20)


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE  # is_running also checks PID reuse
    except psutil.Error:
        return False


def processes_mentioning(*needles: str) -> list[str]:
    """Processes whose command line contains any needle (e.g. a port of ours), seen or not."""
    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if p.pid != os.getpid() and any(n in cmd for n in needles) and _alive(p):
            out.append(f"{p.pid} {cmd[:120]}")
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny FedRouter run on the in-process Simulation Engine: what real federations must match."""
    cfg = tiny_settings(tmp_path_factory.mktemp("simulation"), **FEDROUTER_TINY)
    simulate(cfg)
    return cfg


# --- fast checks ------------------------------------------------------------------------------


def test_ray_cluster_address_replaces_local_resources(tmp_path):
    local = backend_config(tiny_settings(tmp_path, client_resources_gpus=0.5, gpu=False))
    cluster = backend_config(tiny_settings(tmp_path, ray_address="10.0.0.1:6379", client_resources_cpus=2,
                                           client_resources_gpus=0.5))
    assert "address" not in local["init_args"] and local["init_args"]["num_cpus"] >= 1
    # ray.init refuses num_cpus/num_gpus with an address: the cluster's own resources count.
    assert cluster["init_args"]["address"] == "10.0.0.1:6379"
    assert "num_cpus" not in cluster["init_args"] and "num_gpus" not in cluster["init_args"]
    # GPUs on the cluster's machines are requested even when this machine has none.
    assert cluster["client_resources"] == {"num_cpus": 2, "num_gpus": 0.5}


def test_launchers_are_valid_shell():
    for name in ("run_deployment_local.sh", "make_certificates.sh", "run_flower_simulation_router.sh", "run_flwr_local.sh",
                 "run_paper_experiments.sh", "run_generalization.sh", "run_paper_setting.sh"):
        subprocess.run(["sh", "-n", str(SCRIPTS / name)], check=True)


# --- real processes ---------------------------------------------------------------------------


@pytest.mark.slow  # ~40-75 s: a TLS SuperLink with --enable-supernode-auth and four SuperNodes
def test_tls_supernode_auth_admits_registered_nodes_only(tmp_path):
    certs = tmp_path / "certs"
    subprocess.run(["sh", str(SCRIPTS / "make_certificates.sh"), str(certs), "2"], check=True, capture_output=True)
    port = free_ports(5)
    cli_home = tmp_path / "cli"
    cli_home.mkdir()
    (cli_home / "config.toml").write_text(
        f'[superlink]\ndefault = "t"\n\n[superlink.t]\naddress = "127.0.0.1:{port}"\n'
        f'root-certificates = "{certs / "ca.crt"}"\n')
    env = flower_env(FLWR_HOME=str(cli_home))
    procs: dict[str, subprocess.Popen] = {}
    trees: list[ProcessTree] = []

    def start(name: str, *args: str) -> None:
        log = open(tmp_path / f"{name}.log", "w")
        procs[name] = subprocess.Popen(list(args), stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
                                       env={**env, "FLWR_HOME": str(tmp_path / name)})
        trees.append(ProcessTree(procs[name].pid))

    def flwr(*args: str) -> str:
        return subprocess.run(["flwr", *args], env=env, capture_output=True, text=True, check=True).stdout

    def supernode(name: str, i: int, *security: str) -> None:
        start(name, "flower-supernode", *security, "--superlink", f"127.0.0.1:{port}", "--port", str(port + i),
              "--node-config", f"partition-id={i}", "--max-retries", "3")

    try:
        start("superlink", "flower-superlink", "--ssl-ca-certfile", str(certs / "ca.crt"), "--ssl-certfile",
              str(certs / "server.pem"), "--ssl-keyfile", str(certs / "server.key"), "--enable-supernode-auth",
              "--host", "127.0.0.1", "--port", str(port), "--disable-runtime-dependency-installation")
        deadline = time.time() + 120
        while subprocess.run(["flwr", "ls", "t"], env=env, capture_output=True).returncode != 0:
            assert time.time() < deadline and procs["superlink"].poll() is None, "SuperLink did not come up"
            time.sleep(1)
        flwr("supernode", "register", str(certs / "supernode_0.pub"), "t")  # only node 0 is registered
        ca = ("--root-certificates", str(certs / "ca.crt"))
        supernode("registered", 1, *ca, "--auth-supernode-private-key", str(certs / "supernode_0"))
        supernode("unregistered_key", 2, *ca, "--auth-supernode-private-key", str(certs / "supernode_1"))
        supernode("no_key", 3, *ca)
        supernode("plaintext", 4, "--insecure")

        refused = ("unregistered_key", "no_key", "plaintext")
        deadline = time.time() + 120
        while any(procs[n].poll() is None for n in refused):
            assert time.time() < deadline, "a SuperNode without valid credentials is still running"
            time.sleep(1)
        nodes = json.loads(flwr("supernode", "ls", "t", "--format", "json"))["nodes"]
        deadline = time.time() + 60
        while not any(n["status"] == "online" for n in nodes):
            assert time.time() < deadline, nodes
            time.sleep(1)
            nodes = json.loads(flwr("supernode", "ls", "t", "--format", "json"))["nodes"]

        # Assert: the registered node is the one node online; the others were refused and exited.
        assert [n["status"] for n in nodes] == ["online"], nodes
        assert procs["registered"].poll() is None
        logs = {n: (tmp_path / f"{n}.log").read_text() for n in refused}
        assert procs["unregistered_key"].returncode != 0 and "Failed to activate SuperNode" in logs["unregistered_key"]
        assert procs["no_key"].returncode != 0 and "must be registered" in logs["no_key"]
        assert procs["plaintext"].returncode != 0 and "could not establish a connection" in logs["plaintext"]
    finally:
        stop_all(list(procs.values()), trees)
    assert [s for t in trees for s in t.survivors()] == []


@pytest.mark.slow  # ~1-2 min: `flwr run .` starts a detached SuperLink that runs the simulation
def test_flwr_run_local_completes_offline_and_leaves_no_process(tmp_path, reference):
    # Prepare: the simulation's settings and seed as `--run-config`, a private FLWR_HOME
    defaults = flat_defaults()
    settings = {**{k: v for k, v in reference.to_dict().items() if v != defaults[k]},
                "output_dir": str(tmp_path / "output")}
    home = tmp_path / "flwr_home"
    cmd = ["sh", str(SCRIPTS / "run_flwr_local.sh"), run_config_arg(settings)]

    # Execute: `flwr run . --stream` on Flower's local Simulation Runtime, then the script's cleanup
    proc = subprocess.Popen(cmd, cwd=REPO, env=flower_env(FLWR_HOME=str(home)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    tree = ProcessTree(proc.pid)
    try:
        out, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=60)
        tree.stop()

    # Assert: completed offline with the simulation's results; no SuperLink or worker left running
    assert proc.returncode == 0, out[-4000:]
    assert "flwr run status: finished:completed" in out
    run_dir = Path(settings["output_dir"]) / reference.run_dir.name
    assert metrics_without_timings(run_dir) == metrics_without_timings(reference.run_dir)
    time.sleep(2)
    assert tree.survivors() == []
    assert processes_mentioning(str(home)) == []


@pytest.mark.slow  # ~2-3 min on 2 CPUs: SuperLink, 4 SuperNodes with their ClientApp processes, TLS
def test_deployment_on_loopback_matches_the_simulation(tmp_path, reference):
    # Prepare: the same settings and seed as the simulation, a private output folder
    defaults = flat_defaults()
    settings = {**{k: v for k, v in reference.to_dict().items() if v != defaults[k]},
                "output_dir": str(tmp_path / "output")}
    superlink_port, supernode_port = free_ports(1), free_ports(4)
    state_root, work = tmp_path / "supernodes", tmp_path / "work"
    env = flower_env(num_supernodes="4", superlink_port=str(superlink_port), supernode_port=str(supernode_port),
                     client_state_root=str(state_root), work_dir=str(work), supernode_auth="true")
    cmd = ["sh", str(SCRIPTS / "run_deployment_local.sh"), run_config_arg(settings)]

    # Execute: SuperLink + 4 SuperNodes with TLS and SuperNode authentication, `flwr run`, shutdown
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    tree = ProcessTree(proc.pid)
    try:
        out, _ = proc.communicate(timeout=1800)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)  # the script's trap stops what it started
            proc.wait(timeout=60)
        tree.stop()
    print(f"deployment run: {time.time() - t0:.0f}s; command: {shlex.join(cmd)}")

    # Assert: completed, same results as the simulation
    assert proc.returncode == 0, out[-4000:]
    assert "flwr run status: finished:completed" in out
    run_dir = Path(settings["output_dir"]) / reference.run_dir.name
    assert metrics_without_timings(run_dir) == metrics_without_timings(reference.run_dir)
    assert json.loads((run_dir / "diagnostics.json").read_text()) == json.loads(
        (reference.run_dir / "diagnostics.json").read_text())
    for name in ("cluster_0", "cluster_1", "cluster_2", "cluster_3"):
        path = Path("adapters", "round_2", name, "adapter_model.safetensors")
        assert (run_dir / path).read_bytes() == (reference.run_dir / path).read_bytes(), name
    # Client-private state lives in each SuperNode's own folder, never in the server's run folder.
    assert not (run_dir / "clients").exists()
    for i in range(4):
        (client_dir,) = (state_root / f"supernode_{i}").glob(f"{reference.run_dir.name}-*/client_*")
        assert client_dir.name == f"client_{i}"
        reference_preds = reference.run_dir / "clients" / f"client_{i}" / "predictions_r2.json"
        assert (client_dir / "predictions_r2.json").read_text() == reference_preds.read_text()
    # One long-running ClientApp process per SuperNode (fedrouter.runtime.clientapp_worker), so one
    # base-model load per SuperNode for the whole run: setup, both training rounds and the evaluation.
    for i in range(4):
        log = (work / "logs" / f"clientapp_{i}.log").read_text()
        assert log.count("loaded base model") == 1 and "[load #1 in this process]" in log, log[-2000:]
        assert [f"client {i} {kind}" in log for kind in ("setup round 0", "train round 1", "train round 2",
                                                          "evaluate round 2")] == [True] * 4, log[-2000:]
        assert "Start `flwr-clientapp` process" not in (work / "logs" / f"supernode_{i}.log").read_text()

    # Assert: nothing left running
    started = [line.split() for line in (work / "pids").read_text().splitlines()]
    assert [name for name, _ in started] == ["superlink", *(f"{kind}_{i}" for i in range(4)
                                                            for kind in ("supernode", "clientapp")), "flwr_run"]
    assert not any(_alive(psutil.Process(int(pid))) for _, pid in started if psutil.pid_exists(int(pid)))
    assert tree.survivors() == []
    ports = [f"127.0.0.1:{superlink_port}"] + [f"127.0.0.1:{supernode_port + i}" for i in range(4)]
    assert processes_mentioning(str(work), *ports) == []


@pytest.mark.slow  # ~2 min: starts a one-machine Ray cluster, runs the simulation on it, stops it
def test_simulation_on_an_existing_ray_cluster_matches(tmp_path, reference):
    import ray.util

    host = ray.util.get_node_ip_address()
    port = free_ports(1)
    extra_ports = [free_ports(1) for _ in range(3)]
    temp_dir = Path(f"/tmp/fr-ray-{os.getpid()}")  # short: Ray's socket paths have a length limit
    head = subprocess.Popen(
        ["ray", "start", "--head", "--block", f"--port={port}", "--num-cpus=2", "--num-gpus=0",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}",
         f"--ray-client-server-port={extra_ports[0]}", f"--dashboard-agent-listen-port={extra_ports[1]}",
         f"--dashboard-port={extra_ports[2]}"],
        env=flower_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tree = ProcessTree(head.pid)
    try:
        deadline = time.time() + 120
        while not list(temp_dir.glob("session_*/logs/raylet.out")):
            assert time.time() < deadline and head.poll() is None, "the Ray head did not start"
            time.sleep(1)
        time.sleep(3)
        cfg = reference.replace(output_dir=str(tmp_path), ray_address=f"{host}:{port}")
        simulate(cfg)
        # The clients ran in the cluster's workers (their logs are in its session folder).
        assert list(temp_dir.glob("session_*/logs/worker-*.out"))
    finally:
        stop_all([head], [tree])  # `ray start --block` stops the cluster's processes on SIGTERM
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert metrics_without_timings(cfg.run_dir) == metrics_without_timings(reference.run_dir)
    assert tree.survivors() == []
