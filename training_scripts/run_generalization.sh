#!/usr/bin/env bash
# The generalization scenario (single-task clients, every client tested on all four tasks):
# FedRouter with the global router, FedRouter where each client uses only its own cluster's adapter
# (local router), and FedIT — same data, model, budget and seeds. Prints one seed table per method.
set -eu
cd "$(dirname "$0")/.."
export seeds=${seeds:-"0 1"} output_dir=${output_dir:-output/generalization} split_strategy=single
fed_alg=fedrouter evaluation_mode=global sim_alias=fedrouter_global sh training_scripts/run_flower_simulation_router.sh
fed_alg=fedrouter evaluation_mode=data_global_eval_local sim_alias=fedrouter_own_cluster sh training_scripts/run_flower_simulation_router.sh
fed_alg=fedit evaluation_mode=global sim_alias=fedit sh training_scripts/run_flower_simulation_router.sh
