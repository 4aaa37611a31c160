#!/usr/bin/env bash
# `flwr run .` on Flower's local Simulation Runtime, offline, with no Flower process left behind.
# Usage: num_supernodes=8 sh training_scripts/run_flwr_local.sh "fed_alg='fedrouter' num_rounds=5"
# The argument is flwr's --run-config string (keys from pyproject's [tool.flwr.app.config]);
# One SuperNode per client: num_supernodes defaults to the num_clients given there (else 8). The
# client_resources_cpus/gpus settings given there (else 1 and 0, pyproject's defaults) become the
# Simulation Runtime's client resources, as `python -m fedrouter.runtime.simulate` does with them: same
# workers, same torch threads per client, hence the same numbers.
set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/flwr ] && PATH="$PWD/.venv/bin:$PATH"
overrides=${1:-}
clients=$(printf '%s\n' "$overrides" | sed -n 's/.*num_clients=\([0-9][0-9]*\).*/\1/p')
num_supernodes=${num_supernodes:-${clients:-8}}
cpus=$(printf '%s\n' "$overrides" | sed -n 's/.*client_resources_cpus=\([0-9][0-9]*\).*/\1/p')
gpus=$(printf '%s\n' "$overrides" | sed -n 's/.*client_resources_gpus=\([0-9.][0-9.]*\).*/\1/p')
# A private Flower home: its config, the detached SuperLink's state and logs live there.
FLWR_HOME=${FLWR_HOME:-$(mktemp -d "${TMPDIR:-/tmp}/fedrouter-flwr.XXXXXX")}
export FLWR_HOME
# Offline: no runtime `uv sync` of the app's dependencies (fails with code 608 offline), no telemetry.
export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1}

cleanup() {
  # `flwr run` starts a detached SuperLink (+ SuperExec) that outlives it: stop the ones using our home.
  for pid in $(pgrep -f "flower-superlink.*${FLWR_HOME}" || true); do
    for child in $(pgrep -f "parent-pid ${pid}" || true); do kill "$child" 2>/dev/null || true; done
    kill "$pid" 2>/dev/null || true
  done
  sleep 1
  for pid in $(pgrep -f "flower-superlink.*${FLWR_HOME}" || true); do kill -9 "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

# Results go to an absolute folder: the ServerApp runs in a process of the SuperLink's.
case "$overrides" in *output_dir=*) ;; *) overrides="$overrides output_dir='$PWD/output'";; esac
flwr run . --stream --run-config "$overrides" \
  --federation-config "num-supernodes=${num_supernodes} client-resources-num-cpus=${cpus:-1} client-resources-num-gpus=${gpus:-0.0}"
# `flwr run --stream` exits 0 even when the run failed: ask the SuperLink for the run's status.
status=$(flwr ls local --format json | python3 -c "import json,sys; print(json.load(sys.stdin)['runs'][-1]['status'])")
echo "flwr run status: ${status}"
[ "$status" = "finished:completed" ]
