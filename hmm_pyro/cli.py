"""Command-line interface: ``hmm-pyro <command>`` (also ``python -m hmm_pyro``).

Exit codes: 0 success, 1 a check found a problem, 2 bad input (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from hmm_pyro.demo import run_demo

    run_demo(out_dir=args.out, quick=args.quick, seed=args.seed)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="hmm-pyro",
        description="Bayesian hidden Markov models in Pyro: fit, decode, diagnose.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="simulate a 3-state categorical HMM, fit it by SVI and NUTS, print summaries",
        description="Simulate data from a known 3-state, 5-symbol HMM; decode; fit by SVI (MAP) "
        "and NUTS (4 chains); print an ArviZ summary; save NetCDF results.",
    )
    demo.add_argument("--out", default="out", help="output folder (default: %(default)s)")
    demo.add_argument("--quick", action="store_true", help="small data and short chains")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"hmm-pyro {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
