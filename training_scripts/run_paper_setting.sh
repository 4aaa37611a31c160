#!/usr/bin/env bash
# The paper's setting (configs/paper.toml) through the seed launcher: Llama-3.2-1B in 4-bit on a GPU,
# the real multitask benchmark, 8 clients, 25 rounds, 5 seeds. Needs the model and datasets in the
# Hugging Face cache (go online once) or local copies given as model_name_or_path / dataset_name.
set -eu
cd "$(dirname "$0")/.."
export preset=configs/paper.toml
# The launcher passes its variables explicitly, so they are set to the paper's values here too.
export fed_alg=${fed_alg:-fedrouter} evaluation_mode=${evaluation_mode:-global} split_strategy=${split_strategy:-single}
export model_name_or_path=${model_name_or_path:-meta-llama/Llama-3.2-1B} load_in_4bit=true
export dataset_name=${dataset_name:-multitask} dataset_sample=0
export num_clients=8 sample_clients=8 num_rounds=25 eval_round=3,10,25 max_steps=10 batch_size=16
export batch_size_eval=16 seq_length=512 lr=5e-4 n_clusters=${n_clusters:-1} global_n_clusters=${global_n_clusters:-4}
export client_resources_cpus=${client_resources_cpus:-4} client_resources_gpus=${client_resources_gpus:-0.25}
export seeds=${seeds:-"111 222 333 444 555"} output_dir=${output_dir:-output/paper}
exec sh training_scripts/run_flower_simulation_router.sh
