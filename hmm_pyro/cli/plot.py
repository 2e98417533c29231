"""``hmm-pyro plot``: PNG plots of a fit (:func:`hmm_pyro.plots.save_fit_plots`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from hmm_pyro.cli import _library
from hmm_pyro.cli._options import (
    EXIT_OK,
    add_command,
    add_fit_argument,
    load_fit,
    option_errors,
    set_only,
)

__all__ = ["add_parser"]


def run(args: argparse.Namespace) -> int:
    """Write the plots; say which asked-for kinds the fit has nothing to show for."""
    import matplotlib

    matplotlib.use("Agg")
    from hmm_pyro.plots import save_fit_plots, skipped_plots

    fit = load_fit(args.fit)
    kinds = [kind.strip() for kind in args.kind.split(",")] if args.kind else None
    with option_errors(kinds="--kind"):
        written = save_fit_plots(
            fit, args.out, kinds, prefix=Path(args.fit).stem, **set_only(sequence=args.sequence)
        )
    if kinds is not None:
        skipped = skipped_plots(fit)
        for kind in kinds:
            if kind in skipped:
                print(f"skipped {kind}: {skipped[kind]}", file=sys.stderr)
    print("wrote " + ", ".join(str(path) for path in written))
    return EXIT_OK


def add_parser(commands: Any) -> None:
    """Register ``plot``."""
    parser = add_command(
        commands,
        "plot",
        run,
        help="PNG plots of a fit",
        description="Write PNG plots of a fit into --out: emissions (per state, with intervals), "
        "distances (pairwise Hellinger), states (state probabilities of one sequence), paths "
        "(Viterbi paths of every sequence), transitions (A), trace (log likelihood and emission "
        "entries, one colour per chain), loss (SVI/MAP/EM history). Kinds a fit has nothing to "
        "show for are left out, with the reason.",
    )
    add_fit_argument(parser)
    kinds = _library.constant("hmm_pyro.plots:FIT_PLOT_KINDS")
    parser.add_argument(
        "--kind", help=f"comma-separated subset of {', '.join(kinds)} (default: all)"
    )
    parser.add_argument("--sequence", type=int, help="sequence for 'states'")
    parser.add_argument("--out", default="plots", help="output folder (default: plots)")
