#!/usr/bin/env bash
# A real Flower federation on this machine (Deployment Engine): one SuperLink and N SuperNodes as
# separate processes on 127.0.0.1, `flwr run` of the app on them, then every process it started
# stopped (at the end, on failure, on Ctrl-C). Offline; exit code 0 only when the run completed.
# Usage: num_supernodes=4 sh training_scripts/run_deployment_local.sh "fed_alg='fedrouter' num_clients=4 sample_clients=4"
# The argument is flwr's --run-config string (keys of pyproject's [tool.flwr.app.config]; flwr
# takes a preset .toml only alone, so give a preset's values as key=value here).
# SuperNode i holds data partition i (--node-config partition-id=i) and keeps its client-private
# state in its own folder; the run folder (<output_dir>/<sim_alias>_seed<seed>) is the ServerApp's.
num_supernodes=${num_supernodes:-}            # SuperNodes (= clients); default: num_clients of the run config, else 8
superlink_port=${superlink_port:-18000}       # SuperLink: Fleet, Control and Runtime HTTP APIs on one port
supernode_port=${supernode_port:-19100}       # SuperNode i serves its ClientApp Runtime API on supernode_port + i
client_state_root=${client_state_root:-$PWD/output/supernodes}  # SuperNode i keeps client state in <root>/supernode_<i>
work_dir=${work_dir:-}                        # Flower homes, logs, pids, certificates; default: a fresh temp folder
tls=${tls:-false}                             # true: TLS between SuperNodes/CLI and SuperLink (self-signed unless certs_dir)
supernode_auth=${supernode_auth:-false}       # true: only registered SuperNodes may connect (implies tls=true)
certs_dir=${certs_dir:-}                      # ca.crt, server.pem, server.key (+ supernode_<i> keys); default: made here
startup_timeout=${startup_timeout:-180}       # seconds to wait for the SuperLink and the SuperNodes
warm_clientapp=${warm_clientapp:-true}        # true: one long-running ClientApp process per SuperNode (one base-model
                                              # load per SuperNode); false: Flower's new process per message

set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/flwr ] && PATH="$PWD/.venv/bin:$PATH"
overrides=${1:-}
clients=$(printf '%s\n' "$overrides" | sed -n 's/.*num_clients=\([0-9][0-9]*\).*/\1/p')
num_supernodes=${num_supernodes:-${clients:-8}}
case "$overrides" in *num_clients=*) ;; *) overrides="$overrides num_clients=${num_supernodes}";; esac
# The ServerApp runs in a process of the SuperLink's: give it an absolute run folder.
case "$overrides" in *output_dir=*) ;; *) overrides="$overrides output_dir='$PWD/output'";; esac
[ "$supernode_auth" = true ] && tls=true
work_dir=${work_dir:-$(mktemp -d "${TMPDIR:-/tmp}/fedrouter-deploy.XXXXXX")}
mkdir -p "$work_dir/logs"
work_dir=$(cd "$work_dir" && pwd)
pids_file="$work_dir/pids"   # "<name> <pid>" of every process started here
: > "$pids_file"

# Offline: no runtime `uv sync` of the app's dependencies, no telemetry, no update check.
export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION=1 FLWR_TELEMETRY_ENABLED=0 FLWR_DISABLE_UPDATE_CHECK=1
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1} TOKENIZERS_PARALLELISM=false
# The flwr CLI's own home: its config.toml names the SuperLink connection used below.
export FLWR_HOME="$work_dir/cli"
connection=local-deployment

descendants() {  # every process below PID $1
  for child in $(pgrep -P "$1" || true); do
    echo "$child"
    descendants "$child"
  done
}

running() {  # the PIDs among $@ that still run (a zombie has ended; it only awaits its parent)
  [ "$#" -gt 0 ] || return 0
  ps -o pid=,stat= -p "$(echo "$@" | tr -s ' ' ',')" 2>/dev/null | awk '$2 !~ /^Z/ {print $1}'
}

await_exit() {  # await_exit SECONDS PID...: wait up to SECONDS for them to end; prints those still running
  deadline=$(($(date +%s) + $1))
  shift
  while [ -n "$(running "$@")" ] && [ "$(date +%s)" -lt "$deadline" ]; do
    sleep 0.5
  done
  running "$@"
}

cleanup() {
  status=$?
  trap - EXIT INT TERM
  started=$(awk '{print $2}' "$pids_file")
  # What the started processes started (SuperExec, ServerApp/ClientApp processes), listed before
  # any is signalled so none is missed once re-parented.
  children=""
  for pid in $started; do children="$children $(descendants "$pid" | tr '\n' ' ')"; done
  # Flower's processes stop their own children on SIGTERM; whatever remains is stopped by PID.
  # shellcheck disable=SC2086
  {
    kill $started 2>/dev/null || true
    left=$(await_exit 15 $started $children)
    [ -z "$left" ] || { kill $left 2>/dev/null || true; left=$(await_exit 5 $left); }
    [ -z "$left" ] || kill -9 $left 2>/dev/null || true
  }
  wait 2>/dev/null || true  # reap this shell's background processes
  echo "stopped every process started for this federation (logs in $work_dir/logs)"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() {  # start NAME COMMAND...: run in the background, log to logs/NAME.log, record the PID
  name=$1
  shift
  "$@" > "$work_dir/logs/$name.log" 2>&1 &
  echo "$name $!" >> "$pids_file"
}

check_alive() {  # fail with the log of any started process that has exited
  while read -r name pid; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$name (pid $pid) exited; last lines of $work_dir/logs/$name.log:" >&2
      tail -n 20 "$work_dir/logs/$name.log" >&2
      exit 1
    fi
  done < "$pids_file"
}

# --- security: TLS certificates and SuperNode keys ---------------------------------------------
superlink_security="--insecure"
supernode_security="--insecure"
cli_security="insecure = true"
if [ "$tls" = true ]; then
  if [ -z "$certs_dir" ]; then
    certs_dir="$work_dir/certificates"
    sh training_scripts/make_certificates.sh "$certs_dir" "$num_supernodes"
  fi
  certs_dir=$(cd "$certs_dir" && pwd)
  superlink_security="--ssl-ca-certfile $certs_dir/ca.crt --ssl-certfile $certs_dir/server.pem --ssl-keyfile $certs_dir/server.key"
  supernode_security="--root-certificates $certs_dir/ca.crt"
  cli_security="root-certificates = \"$certs_dir/ca.crt\""
fi
[ "$supernode_auth" = true ] && superlink_security="$superlink_security --enable-supernode-auth"

mkdir -p "$FLWR_HOME"
cat > "$FLWR_HOME/config.toml" <<EOF
[superlink]
default = "$connection"

[superlink.$connection]
address = "127.0.0.1:$superlink_port"
$cli_security
EOF

# --- SuperLink --------------------------------------------------------------------------------
# shellcheck disable=SC2086
FLWR_HOME="$work_dir/superlink" start superlink flower-superlink $superlink_security \
  --host 127.0.0.1 --port "$superlink_port" --disable-runtime-dependency-installation
deadline=$(($(date +%s) + startup_timeout))
until flwr ls "$connection" --format json > /dev/null 2>&1; do
  check_alive
  [ "$(date +%s)" -gt "$deadline" ] && { echo "SuperLink not reachable on 127.0.0.1:$superlink_port" >&2; exit 1; }
  sleep 2
done
echo "SuperLink up on 127.0.0.1:$superlink_port (tls=$tls, supernode_auth=$supernode_auth)"

# --- SuperNodes -------------------------------------------------------------------------------
i=0
while [ "$i" -lt "$num_supernodes" ]; do
  auth=""
  if [ "$supernode_auth" = true ]; then
    flwr supernode register "$certs_dir/supernode_$i.pub" "$connection" > /dev/null
    auth="--auth-supernode-private-key $certs_dir/supernode_$i"
  fi
  state_dir="$client_state_root/supernode_$i"
  mkdir -p "$state_dir"
  isolation=subprocess
  [ "$warm_clientapp" = true ] && isolation=process
  # shellcheck disable=SC2086
  FLWR_HOME="$work_dir/supernode_$i" start "supernode_$i" flower-supernode $supernode_security $auth \
    --superlink "127.0.0.1:$superlink_port" --port $((supernode_port + i)) --isolation "$isolation" \
    --node-config "partition-id=$i num-partitions=$num_supernodes client-state-dir='$state_dir'"
  if [ "$warm_clientapp" = true ]; then
    # Runs this SuperNode's ClientApp tasks one after another in one process (fedrouter/runtime/clientapp_worker.py),
    # niced as Ray nices its workers: the SuperLink and SuperNodes moving messages go first.
    supernode_pid=$(awk -v n="supernode_$i" '$1 == n {print $2}' "$pids_file")
    FLWR_HOME="$work_dir/supernode_$i" start "clientapp_$i" nice -n 15 python -m fedrouter.runtime.clientapp_worker \
      --runtime-api-address "127.0.0.1:$((supernode_port + i))" --insecure --parent-pid "$supernode_pid"
  fi
  i=$((i + 1))
done
deadline=$(($(date +%s) + startup_timeout))
until [ "$(flwr supernode ls "$connection" --format json 2>/dev/null | python3 -c \
  "import json,sys; print(sum(n['status'] == 'online' for n in json.load(sys.stdin)['nodes']))" 2>/dev/null)" \
  = "$num_supernodes" ]; do
  check_alive
  [ "$(date +%s)" -gt "$deadline" ] && { echo "not all $num_supernodes SuperNodes connected" >&2; exit 1; }
  sleep 2
done
echo "$num_supernodes SuperNodes connected; client state under $client_state_root"

# --- the run ----------------------------------------------------------------------------------
# In the background + `wait`: a shell runs its traps only between commands, and `wait` is where
# a TERM sent to this script takes effect at once.
flwr run . "$connection" --stream --run-config "$overrides" &
echo "flwr_run $!" >> "$pids_file"
wait $!
# `flwr run --stream` exits 0 even when the run failed: ask the SuperLink for the run's status.
status=$(flwr ls "$connection" --format json | python3 -c "import json,sys; print(json.load(sys.stdin)['runs'][-1]['status'])")
echo "flwr run status: ${status}"
[ "$status" = "finished:completed" ]
