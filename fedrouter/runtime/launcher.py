"""The seed launcher's first step (training_scripts/run_flower_simulation_router.sh): refuse a variable it
does not know, then read the settings once and print the run's name.

`python -m fedrouter.runtime.launcher --variables "fed_alg seeds ..." --set "NAME ..." -- [SETTINGS...]`
gets the launcher's own variables and the names of the lowercase shell and environment variables set
when it started. A suspect name is one line on stderr and exit code 2; otherwise SETTINGS (what the
launcher passes to `fedrouter.runtime.simulate`) are read as that module reads them and the resolved
sim_alias is printed (one Python start for both, before any run)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from fedrouter.config.names import closest

# Settings the launcher sets itself for every run, from the variable named.
SET_PER_RUN = {"seed": "seeds"}


def stray_variables(names: Iterable[str], variables: Iterable[str], settings: Iterable[str]) -> list[str]:
    """One problem per name that is not a launcher variable but is a setting, or resembles a launcher
    variable or a setting (a typo such as num_round). Other names are left alone: a shell's environment
    holds variables of its own (http_proxy, ...) that nothing can tell apart from a typo far from
    every known name."""
    variables, settings = sorted(set(variables)), sorted(set(settings))
    out = []
    for name in sorted(set(names) - set(variables)):
        if name in SET_PER_RUN:
            out.append(f"{name}: the launcher sets it for each run (did you mean {SET_PER_RUN[name]}?)")
        elif name in settings:
            out.append(f'{name}: a setting, but not a variable of this launcher; pass it as extra="{name}=..."')
        elif (match := closest(name, variables)) is not None:
            out.append(f"{name}: not a variable of this launcher (did you mean {match}?)")
        elif (match := closest(name, settings)) is not None:
            out.append(f'{name}: not a variable of this launcher (did you mean the setting {match}? pass it as '
                       f'extra="{match}=...")')
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variables", required=True, help="the launcher's variables, space separated")
    parser.add_argument("--set", default="", help="names of the variables set when the launcher started")
    parser.add_argument("settings", nargs=argparse.REMAINDER, help="-- then the settings given to each run")
    args = parser.parse_args(argv)
    from fedrouter.config import flat_defaults
    from fedrouter.runtime import simulate

    problems = stray_variables(args.set.split(), args.variables.split(), flat_defaults())
    for problem in problems:
        print(f"fedrouter: {problem}", file=sys.stderr)
    if problems:
        return 2
    settings = args.settings[1:] if args.settings[:1] == ["--"] else args.settings
    return simulate.main([*settings, "--print", "sim_alias"])


if __name__ == "__main__":
    sys.exit(main())
