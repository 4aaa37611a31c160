#!/usr/bin/env bash
# The paper's setting (configs/paper.toml) through the seed launcher: Llama-3.2-1B in 4-bit on a GPU,
# the real multitask benchmark, 8 clients, 25 rounds, 5 seeds. Needs the model and datasets in the
# Hugging Face cache (go online once) or local copies given as model_name_or_path / dataset_name.
# Any launcher variable set in the environment wins over the preset, e.g. fed_alg=fedit.
set -eu
cd "$(dirname "$0")/.."
export preset=configs/paper.toml
export seeds=${seeds:-"111 222 333 444 555"} output_dir=${output_dir:-output/paper}
exec sh training_scripts/run_flower_simulation_router.sh
