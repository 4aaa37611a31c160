#!/usr/bin/env bash
# The paper's comparison: every method x every scenario x every seed, with the same data, model,
# training budget and evaluation, then `python -m fedrouter.results.report` (tables and plots).
# Each (method, scenario, seed) cell is one run of the seed launcher
# (training_scripts/run_flower_simulation_router.sh), so the settings are the launcher's embedded
# defaults unless set here or in the environment, e.g.
#   num_rounds=5 seeds="0" methods="fedit fedrouter" sh training_scripts/run_paper_experiments.sh
# Settings the launcher has no variable for go in `extra`: extra="max_new_tokens=8 max_eval_size=16".
# Run folders: <output_dir>/<scenario>/<method>_seed<seed>/ (+ <method>_seed<seed>_log.txt beside it).
# Resumable: a cell whose run folder has a results.json is skipped (no Python started); an
# interrupted cell continues from its last checkpoint. To rerun with other settings, use another
# output_dir (a finished cell is not rerun, and a half-done one refuses changed settings).

methods=${methods:-"fedit local fedcluster fedsa feddpa fedrouter"}
scenarios=${scenarios:-"interference generalization single iid"}  # also: unseen (one scenario per left-out task)
seeds=${seeds:-"0 1 2"}
output_dir=${output_dir:-output/paper_experiments}
report_dir=${report_dir:-}                   # default: <output_dir>/report
extra=${extra:-}                             # further key=value settings for every run, space separated

# The scenarios (docs/method.md). Every method of a scenario gets the same data, model, budget and
# test sets; evaluation_mode is the reference code's name for the (router, test distribution) pair:
# it sets test_distribution for every method and the router of the methods that have one.
set_scenario() {
  scenario_extra=""
  case "$1" in
    #               split                  reference name           FedRouter's local k
    interference)   split_strategy=dual;   evaluation_mode=local;   n_clusters=2 ;;
    generalization) split_strategy=single; evaluation_mode=global;  n_clusters=1 ;;
    single)         split_strategy=single; evaluation_mode=local;   n_clusters=1 ;;
    iid)            split_strategy=all;    evaluation_mode=local;   n_clusters=4 ;;
    # leave one task out: single-task clients over the other tasks, everyone tested on every task
    unseen_*)       split_strategy=single; evaluation_mode=global;  n_clusters=1; scenario_extra="unseen_tasks=${1#unseen_}" ;;
    # client-level DP at a budget (docs/privacy.md): dp_inf = the same runs without DP; dp_<epsilon> = central DP,
    # the noise multiplier calibrated so the whole run spends at most epsilon
    dp_inf)         split_strategy=single; evaluation_mode=local;   n_clusters=1 ;;
    dp_*)           split_strategy=single; evaluation_mode=local;   n_clusters=1; scenario_extra="dp=central dp_target_epsilon=${1#dp_}" ;;
    *) echo "unknown scenario '$1'; known: interference generalization single iid unseen dp_inf dp_<epsilon>" >&2; return 1 ;;
  esac
}

# A method's own settings in a scenario (each algorithm refuses another's settings).
method_settings() {
  case "$1" in
    # with DP the router may use only what the privacy layer noises (the centroids): the paper's nearest centroid
    fedrouter|clustered) case "$scenario" in dp_*) echo "n_clusters=$n_clusters router_model=centroid" ;;
                                               *) echo "n_clusters=$n_clusters" ;; esac ;;
    *) echo "" ;;
  esac
}

# The whole run is one function, read before it starts: editing this file while a matrix runs
# (hours) cannot change or break the running one.
main() {
  set -eu
  # Ctrl-C / kill stop the whole matrix once the running cell exits, instead of it counting as failed
  # and the next cell starting.
  trap 'echo "interrupted; rerun to resume" >&2; exit 130' INT TERM
  cd "$(dirname "$0")/.."
  [ -x .venv/bin/python ] && PY=.venv/bin/python || PY=python3
  # `unseen` becomes one scenario per task of the data (its task list, read once here)
  expanded=""
  for scenario in $scenarios; do
    if [ "$scenario" = unseen ]; then
      # shellcheck disable=SC2086
      tasks=$($PY -m fedrouter.runtime.simulate ${preset:+--config "$preset"} $extra --print-tasks)
      for task in $tasks; do expanded="$expanded unseen_$task"; done
    else
      expanded="$expanded $scenario"
    fi
  done
  scenarios=$expanded
  for scenario in $scenarios; do set_scenario "$scenario"; done  # unknown names stop here, before any run

  failed=""
  for scenario in $scenarios; do
    set_scenario "$scenario"
    for method in $methods; do
      for seed in $seeds; do
        cell="${scenario}/${method}_seed${seed}"
        if [ -f "${output_dir}/${cell}/results.json" ]; then
          echo "=== skipped ${cell}: already complete (${output_dir}/${cell}/results.json)"
          continue
        fi
        echo "=== ${cell}"
        # The matrix's own variables are not the launcher's, which refuses names it does not know.
        env -u methods -u scenarios -u report_dir fed_alg="$method" sim_alias="$method" seeds="$seed" output_dir="${output_dir}/${scenario}" \
          split_strategy="$split_strategy" evaluation_mode="$evaluation_mode" \
          extra="$extra $scenario_extra $(method_settings "$method")" \
          sh training_scripts/run_flower_simulation_router.sh || failed="$failed $cell"
      done
    done
  done

  $PY -m fedrouter.results.report "$output_dir" ${report_dir:+--out "$report_dir"} || failed="$failed report"
  if [ -n "$failed" ]; then
    echo "FAILED:${failed} (rerun this script to retry them; completed cells are skipped)" >&2
    exit 1
  fi
}

main "$@"; exit
