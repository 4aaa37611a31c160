"""`python -m fedrouter.config [--write]`: check (or rewrite) the generated settings blocks of
pyproject.toml and docs/configuration.md against the settings registries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fedrouter.config.tables import sync


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite the stale blocks (default: only list them)")
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parents[2]))
    args = parser.parse_args(argv)
    stale = sync(Path(args.repo), args.write)
    print("\n".join(f"{'rewrote' if args.write else 'stale'}: {p}" for p in stale) or "up to date")
    return 1 if stale and not args.write else 0


if __name__ == "__main__":
    sys.exit(main())
