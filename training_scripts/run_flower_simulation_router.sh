#!/usr/bin/env bash
# Seed launcher: edit the variables below, then `sh training_scripts/run_flower_simulation_router.sh`.
# Defaults are the embedded default (built-in tiny model + synthetic benchmark, a few minutes on 2 CPUs).
# Every variable can also be set from the environment: `fed_alg=fedrouter sh training_scripts/...`.
# The paper's settings are in configs/paper.toml (preset=configs/paper.toml; variables set here win).

max_steps=${max_steps:-10}                   # optimizer steps per client per round (0 = num_train_epochs)
num_train_epochs=${num_train_epochs:-1}      # only used when max_steps=0
num_rounds=${num_rounds:-20}                 # federated rounds
eval_round=${eval_round:-0,5,10,20}          # rounds with evaluation (0 = zero-shot base model; the last round always evaluates)
batch_size=${batch_size:-16}                 # samples per optimizer step
batch_size_eval=${batch_size_eval:-32}       # prompts per generation batch
gradient_accumulation_steps=${gradient_accumulation_steps:-1}
seq_length=${seq_length:-160}                # max tokens of prompt + response
num_clients=${num_clients:-8}                # clients (virtual SuperNodes)
sample_clients=${sample_clients:-8}          # clients trained per round
lora_r=${lora_r:-8}
lora_alpha=${lora_alpha:-16}
lr=${lr:-2e-3}                               # round-1 learning rate, cosine down to 1e-5 (paper: 5e-4)
dataset_name=${dataset_name:-builtin}        # builtin | multitask | path to local data
dataset_sample=${dataset_sample:-400}        # records per task before the train/test split (0 = all)
model_name_or_path=${model_name_or_path:-builtin:tiny}
load_in_4bit=${load_in_4bit:-false}          # bitsandbytes NF4 base model (works on CPU too)
seeds=${seeds:-"0 1"}                        # one run per seed
output_dir=${output_dir:-output}
sim_alias=${sim_alias:-}                     # run name; default: <fed_alg>_<split_strategy>
fed_alg=${fed_alg:-fedrouter}                # fedrouter (clustered) | fedit | local | fedcluster | fedsa | feddpa
n_clusters=${n_clusters:-1}                  # local clusters per client (or 'auto')
global_n_clusters=${global_n_clusters:-4}    # global clusters (or 'auto')
split_strategy=${split_strategy:-single}     # single | dual | all
train_split=${train_split:-0.8}
evaluation_mode=${evaluation_mode:-local}    # local | global | data_local_eval_global | data_global_eval_local
gpu=${gpu:-true}                             # use a GPU when one is visible
client_resources_cpus=${client_resources_cpus:-1}   # CPUs per virtual client (Ray): 1 = one worker per core
client_resources_gpus=${client_resources_gpus:-0}   # GPUs per virtual client; 0.25 = 4 clients share a GPU
ray_address=${ray_address:-}                 # Ray cluster (host:port of `ray start --head`, or auto); empty = private local Ray
preset=${preset:-}                           # optional TOML preset, e.g. configs/paper.toml
extra=${extra:-}                             # further key=value settings, space separated

set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] && PY=.venv/bin/python || PY=python3
sim_alias=${sim_alias:-${fed_alg}_${split_strategy}}
mkdir -p "$output_dir"
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} HF_DATASETS_OFFLINE=${HF_DATASETS_OFFLINE:-1}
export FLWR_TELEMETRY_ENABLED=0 TOKENIZERS_PARALLELISM=false

for seed in $seeds; do
  log="${output_dir}/${sim_alias}_seed${seed}_log.txt"
  echo "=== ${sim_alias} seed ${seed} -> ${output_dir}/${sim_alias}_seed${seed} (log: ${log})"
  # shellcheck disable=SC2086
  $PY -m fedrouter.runtime.simulate ${preset:+--config "$preset"} \
    max_steps="$max_steps" num_train_epochs="$num_train_epochs" num_rounds="$num_rounds" eval_round="$eval_round" \
    batch_size="$batch_size" batch_size_eval="$batch_size_eval" gradient_accumulation_steps="$gradient_accumulation_steps" \
    seq_length="$seq_length" num_clients="$num_clients" sample_clients="$sample_clients" lora_r="$lora_r" \
    lora_alpha="$lora_alpha" lr="$lr" dataset_name="$dataset_name" dataset_sample="$dataset_sample" \
    model_name_or_path="$model_name_or_path" load_in_4bit="$load_in_4bit" seed="$seed" output_dir="$output_dir" \
    sim_alias="$sim_alias" fed_alg="$fed_alg" n_clusters="$n_clusters" global_n_clusters="$global_n_clusters" \
    split_strategy="$split_strategy" train_split="$train_split" evaluation_mode="$evaluation_mode" gpu="$gpu" \
    client_resources_cpus="$client_resources_cpus" client_resources_gpus="$client_resources_gpus" ray_address="$ray_address" $extra \
    2>&1 | tee "$log"
  status=$(tail -n 1 "$log" | grep -c '"run_dir"' || true)
  if [ "$status" != "1" ]; then echo "run for seed ${seed} failed; see ${log}" >&2; exit 1; fi
done

$PY -m fedrouter.results.summary "$output_dir" --alias "$sim_alias"
