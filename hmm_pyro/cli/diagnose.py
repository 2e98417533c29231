"""``hmm-pyro diagnose`` (degeneracy checks; exit code 1 when flagged) and ``hmm-pyro relabel``."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

from hmm_pyro._io import write_text_atomic
from hmm_pyro.cli import _library
from hmm_pyro.cli._options import (
    EXIT_FLAGGED,
    EXIT_OK,
    add_command,
    add_fit_argument,
    library_default,
    load_fit,
    report_warnings,
    set_only,
)

__all__ = ["add_parser"]


def run_diagnose(args: argparse.Namespace) -> int:
    """Write FIT_diagnosis.json and FIT_diagnosis.md; exit code 1 when a flag is raised."""
    from hmm_pyro.diagnostics import diagnose

    fit = load_fit(args.fit)
    report = diagnose(fit, **set_only(max_draws=args.max_draws))
    fit_path = Path(args.fit)
    out = Path(args.out) if args.out else fit_path.parent
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{fit_path.stem}_diagnosis.json"
    md_path = out / f"{fit_path.stem}_diagnosis.md"
    write_text_atomic(json_path, report.to_json() + "\n")
    write_text_atomic(md_path, report.to_markdown() + "\n")
    print(report)
    print(f"wrote {json_path}, {md_path}")
    return EXIT_OK if report.ok else EXIT_FLAGGED


def run_relabel(args: argparse.Namespace) -> int:
    """Save the relabelled fit; warnings (collapsed states, ...) go to stderr, one line each."""
    from hmm_pyro.diagnostics import relabel

    fit = load_fit(args.fit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        relabelled = relabel(fit, method=args.method)
    report_warnings(caught)
    fit_path = Path(args.fit)
    out = Path(args.out) if args.out else fit_path.with_name(f"{fit_path.stem}_relabelled.nc")
    record = relabelled.attrs.get("relabel", {})
    print(
        f"relabelled by {record.get('method', args.method)}; permutations per chain: "
        f"{record.get('permutations_per_chain')}; Stephens/ECR agreement: "
        f"{record.get('agreement')}"
    )
    path = relabelled.save(out)
    print(f"saved {path}")
    return EXIT_OK


def add_parser(commands: Any) -> None:
    """Register ``diagnose`` and ``relabel``."""
    parser = add_command(
        commands,
        "diagnose",
        run_diagnose,
        help="check a fit for degeneracy; exit code 1 when a flag is raised",
        description="Check a fit for emission collapse, empty states, prior domination, "
        "symmetric starts, label switching and convergence. Writes FIT_diagnosis.json and "
        "FIT_diagnosis.md. Exit code 0 when no flag is raised, 1 otherwise.",
    )
    add_fit_argument(parser, "a fit (.nc) written by 'hmm-pyro fit'")
    parser.add_argument("--out", help="folder for the reports (default: next to the fit)")
    parser.add_argument("--max-draws", type=int, help="draws used for state probabilities")

    parser = add_command(
        commands,
        "relabel",
        run_relabel,
        help="give every draw one labelling of the states (repairs label switching)",
        description="Permute the states of every draw into one common labelling and save "
        "the relabelled fit.",
    )
    add_fit_argument(parser)
    parser.add_argument(
        "--method",
        choices=_library.constant("hmm_pyro.diagnostics:RELABEL_METHODS"),
        default=library_default("hmm_pyro.diagnostics:relabel", "method"),
        help="relabelling algorithm (default: %(default)s)",
    )
    parser.add_argument("--out", help="output file (default: FIT_relabelled.nc)")
