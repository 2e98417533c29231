"""``hmm-pyro decode``: most probable state paths and state probabilities, as a CSV."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hmm_pyro._io import atomic_path
from hmm_pyro.cli._options import (
    EXIT_OK,
    add_command,
    add_data_argument,
    add_fit_argument,
    library_default,
    load_data,
    load_fit,
)

__all__ = ["add_parser"]


def run(args: argparse.Namespace) -> int:
    """Decode the fitted data (or ``--data``) and write the table."""
    from hmm_pyro.decode import decode_table

    fit = load_fit(args.fit)
    symbols = fit.hmm.emission.symbol_names  # text data coded as the fit's symbols
    options = {}
    if fit.data.covariates is not None:  # the fit's covariate columns, on the fit's scale
        options = {"covariates": list(fit.data.covariates.names), "standardize": False}
    data = None if args.data is None else load_data(args, args.data, symbols=symbols, **options)
    table, scores = decode_table(fit, data, max_draws=args.max_draws)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as temporary:
        table.to_csv(temporary, index=False)
    print(
        f"decoded {scores.shape[0]} sequence(s) under the posterior mean; Viterbi log joint "
        f"per sequence: mean {float(scores.mean()):.3f}"
    )
    print(f"wrote {out}")
    return EXIT_OK


def add_parser(commands: Any) -> None:
    """Register ``decode``."""
    parser = add_command(
        commands,
        "decode",
        run,
        help="most probable state paths and state probabilities",
        description="Decode sequences with a fit: Viterbi path under the posterior mean and "
        "smoothed state probabilities averaged over draws. Writes a CSV with columns "
        "sequence, time, value, viterbi, p_state_0, ... A fit with covariates reads the same "
        "covariate columns from --data and standardises them as the fitted data were.",
    )
    add_fit_argument(parser)
    add_data_argument(parser, "--data", "data to decode (default: the fitted data)")
    parser.add_argument(
        "--max-draws",
        type=int,
        help="draws averaged (default: "
        f"{library_default('hmm_pyro.fit:Fit.state_probs', 'max_draws')})",
    )
    parser.add_argument("--out", default="decoded.csv", help="output CSV (default: decoded.csv)")
