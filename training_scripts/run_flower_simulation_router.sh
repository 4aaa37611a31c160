#!/usr/bin/env bash
# Seed launcher: set the variables you want below (or in the environment), then
#   sh training_scripts/run_flower_simulation_router.sh
# An empty variable is not passed on: the run takes the preset's value, else the default shown in
# [brackets] (fedrouter/config.py and each algorithm's settings class; a test keeps them equal).
# With nothing set this runs the embedded default: built-in tiny LM + synthetic benchmark, FedRouter,
# a few minutes per seed on 2 CPUs. `python -m fedrouter.runtime.simulate --list-settings` lists all.
#
# A variable this launcher does not know is an error, not ignored. What it can see: every lowercase
# variable set when it starts, i.e. exported or given on the command line (`num_rounds=3 sh ...`) or
# added to this file above the checks. Such a name is refused when it is a setting without a variable
# here (pass it in `extra`), or when it resembles one of these variables or a setting (`num_round`:
# "did you mean num_rounds?"). Other lowercase names, far from every known one, are left alone: the
# environment has variables of its own (http_proxy, ...). Uppercase names are never settings.
#
# Files: <output_dir>/<alias>_seed<seed>/ (the run folder) and <alias>_seed<seed>_log.txt (the console
# of the attempt that produced the run's results). An attempt writes its console to
# <alias>_seed<seed>_attempt_log.txt, renamed to the seed log once the attempt has completed the run.
# An attempt that is refused, fails, or finds the run already complete leaves a completed run's folder
# and log as they were (other settings than the folder's are refused before any work; resume=false
# starts over on purpose) and keeps its own log beside them.

# --- run ---------------------------------------------------------------------------------------
fed_alg=${fed_alg:-}                         # fedrouter | fedit | fedprox | local | fedcluster | fedsa | feddpa [fedrouter]
seeds=${seeds:-"0 1"}                        # one run per seed
output_dir=${output_dir:-output}             # parent folder of the run folders
sim_alias=${sim_alias:-}                     # run name [<fed_alg>_<split_strategy>]
preset=${preset:-}                           # TOML preset, e.g. configs/paper.toml (variables set here win)
extra=${extra:-}                             # further key=value settings, space separated
# --- data --------------------------------------------------------------------------------------
dataset_name=${dataset_name:-}               # builtin | multitask | path to local data [builtin]
dataset_sample=${dataset_sample:-}           # records per task before the train/test split, 0 = all [400]
split_strategy=${split_strategy:-}           # single | dual | multi | all | dirichlet [single]
test_distribution=${test_distribution:-}     # same (own tasks) | all (every task: generalization) [same]
train_split=${train_split:-}                 # [0.8]
num_clients=${num_clients:-}                 # clients (virtual SuperNodes) [8]
sample_clients=${sample_clients:-}           # clients trained per round [8]
# --- model and training ------------------------------------------------------------------------
model_name_or_path=${model_name_or_path:-}   # builtin:tiny | hub id | local folder [builtin:tiny]
load_in_4bit=${load_in_4bit:-}               # bitsandbytes NF4 base model, works on CPU too [false]
lora_r=${lora_r:-}                           # [8]
lora_alpha=${lora_alpha:-}                   # [16]
num_rounds=${num_rounds:-}                   # federated rounds [20]
max_steps=${max_steps:-}                     # optimizer steps per client per round, 0 = num_train_epochs [10]
num_train_epochs=${num_train_epochs:-}       # only used when max_steps=0 [1]
batch_size=${batch_size:-}                   # samples per optimizer step [16]
gradient_accumulation_steps=${gradient_accumulation_steps:-}  # [1]
seq_length=${seq_length:-}                   # max tokens of prompt + response [160]
lr=${lr:-}                                   # round-1 learning rate, cosine down to 1e-5 (paper: 5e-4) [0.002]
# --- evaluation --------------------------------------------------------------------------------
eval_round=${eval_round:-}                   # rounds with evaluation, 0 = zero-shot base model; the last always [0,5,10,20]
batch_size_eval=${batch_size_eval:-}         # prompts per generation batch [32]
max_new_tokens=${max_new_tokens:-}           # generation length cap [40]
# --- FedRouter's own settings (other algorithms: see --list-settings; pass them in extra) --------
n_clusters=${n_clusters:-}                   # local clusters per client, or auto [1]
global_n_clusters=${global_n_clusters:-}     # global clusters, or auto [4]
router=${router:-}                           # local | global [local]
evaluation_mode=${evaluation_mode:-}         # the reference code's alias of router + test_distribution: local | global | ...
# --- resources ---------------------------------------------------------------------------------
gpu=${gpu:-}                                 # use a GPU when one is visible [true]
client_resources_cpus=${client_resources_cpus:-}  # CPUs per virtual client (Ray): 1 = one worker per core [1]
client_resources_gpus=${client_resources_gpus:-}  # GPUs per virtual client; 0.25 = 4 clients share a GPU [0.0]
ray_address=${ray_address:-}                 # Ray cluster (host:port of `ray start --head`, or auto); empty = private local Ray

set -eu
# The lowercase variables set now (before this script names any of its own), for the check below.
names=$(set | sed -n 's/^\([a-z][A-Za-z0-9_]*\)=.*/\1/p' | sort -u)
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] && PY=.venv/bin/python || PY=python3
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1}
export FLWR_TELEMETRY_ENABLED=0 TOKENIZERS_PARALLELISM=false

# The variables above that are settings, passed on when set; with seeds, output_dir, preset and extra
# they are the only lowercase variables this launcher accepts.
forwarded="fed_alg sim_alias dataset_name dataset_sample split_strategy test_distribution train_split num_clients
  sample_clients model_name_or_path load_in_4bit lora_r lora_alpha num_rounds max_steps num_train_epochs batch_size
  gradient_accumulation_steps seq_length lr eval_round batch_size_eval max_new_tokens n_clusters global_n_clusters
  router evaluation_mode gpu client_resources_cpus client_resources_gpus ray_address"
# Only what was set is forwarded, so the preset (and then the defaults) decide the rest.
args=""
for name in $forwarded; do
  eval "value=\${$name}"
  [ -n "$value" ] && args="$args $name=$value"
done
# Unknown variables and bad settings are refused here, once; this also names the run when sim_alias is unset.
# shellcheck disable=SC2086
if ! sim_alias=$($PY -m fedrouter.runtime.launcher --variables "seeds output_dir preset extra $forwarded" \
    --set "$names" -- ${preset:+--config "$preset"} $args $extra 2>&1); then
  echo "$sim_alias"; exit 1
fi
mkdir -p "$output_dir"

for seed in $seeds; do
  run_dir="${output_dir}/${sim_alias}_seed${seed}"
  log="${run_dir}_log.txt"
  attempt="${run_dir}_attempt_log.txt"
  echo "=== ${sim_alias} seed ${seed} -> ${run_dir} (log: ${attempt})"
  # The run's results before this attempt: a log replaces the seed log only if the attempt wrote new ones.
  before=$( [ -f "${run_dir}/results.json" ] && cksum < "${run_dir}/results.json" || true)
  # shellcheck disable=SC2086
  $PY -m fedrouter.runtime.simulate ${preset:+--config "$preset"} $args $extra seed="$seed" output_dir="$output_dir" \
    sim_alias="$sim_alias" 2>&1 | tee "$attempt"
  if [ "$(tail -n 1 "$attempt" | grep -c '"run_dir"' || true)" != "1" ]; then
    echo "run for seed ${seed} failed; see ${attempt}" >&2; exit 1
  fi
  after=$(cksum < "${run_dir}/results.json")
  if [ "$after" != "$before" ] || [ ! -e "$log" ]; then
    mv "$attempt" "$log"
  else
    echo "(${run_dir} was already complete: ${log} is its run's log; this attempt's is ${attempt})"
  fi
done

$PY -m fedrouter.results.summary "$output_dir" --alias "$sim_alias" --seeds "$seeds"
