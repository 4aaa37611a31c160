#!/usr/bin/env bash
# The generalization comparison (single-task clients, every client tested on all four tasks): FedRouter
# with the global router, FedRouter where each client uses only its own cluster's adapter (local
# router), and FedIT -- same data, model, budget and seeds. Run folders go where the scenario matrix
# puts its generalization cells (<output_dir>/generalization/<method>_seed<seed>/), so runs the
# matrix already finished are skipped, and the report compares all of them.
set -eu
cd "$(dirname "$0")/.."
export seeds=${seeds:-"0 1 2"} output_dir=${output_dir:-output/paper_experiments}
[ -x .venv/bin/python ] && PY=.venv/bin/python || PY=python3
methods="fedit fedrouter" scenarios=generalization sh training_scripts/run_paper_experiments.sh
for seed in $seeds; do
  [ -f "${output_dir}/generalization/fedrouter_own_cluster_seed${seed}/results.json" ] && continue
  fed_alg=fedrouter sim_alias=fedrouter_own_cluster seeds="$seed" output_dir="${output_dir}/generalization" \
    split_strategy=single n_clusters=1 router=local test_distribution=all \
    extra="${extra:-}" sh training_scripts/run_flower_simulation_router.sh
done
$PY -m fedrouter.results.report "$output_dir"
