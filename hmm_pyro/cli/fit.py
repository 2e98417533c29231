"""``hmm-pyro fit``: NUTS, SVI, EM, Viterbi training or supervised counting.

Stores (``hmm-pyro store``) are fitted by mini-batch SVI, read lazily; so are data files with
``--batch-size``. After every fit: the estimates, compactly (:mod:`hmm_pyro.cli._summary`),
and the fit statistics (log likelihood, log posterior, free parameters, AIC and BIC of point
estimates, elapsed time).

``--transition-covariates`` reads columns of the CSV data file as covariates (standardised
unless ``--raw-covariates``; the means and standard deviations are kept in the fit) and fits a
:class:`~hmm_pyro.CovariateHMM` (NUTS, SVI or MAP); the plots of the transition probabilities
against each covariate are written next to the fit. ``--emission-covariates`` reads columns
the same way and makes the emission a regression on them (the family's
:meth:`~hmm_pyro.emissions.Emission.with_covariates`: Gaussian mean ``x_t . w_k``, Poisson and
negative binomial log mean, categorical log-odds); with it alone the transitions stay
homogeneous and every method applies.
``--subject-column`` names each sequence's subject and fits a :class:`~hmm_pyro.MultilevelHMM`
(NUTS, SVI or MAP); the shrinkage plot is written next to the fit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hmm_pyro.cli._covariates import (
    COVARIATE_METHODS,
    add_covariate_options,
    check_covariate_options,
    covariate_model,
    has_covariates,
    load_covariate_data,
)
from hmm_pyro.cli._options import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    PRIOR_KEYS,
    add_command,
    add_fitting_options,
    check_scheduler,
    load_data,
    model_of,
    option_errors,
    runner_kwargs,
    runner_options,
)

if TYPE_CHECKING:
    import numpy as np

    from hmm_pyro.fit import Fit

__all__ = ["FIT_METHODS", "add_parser"]

FIT_METHODS = ("nuts", "svi", "map", "em", "viterbi", "supervised")
"""The runners of ``fit --method`` (in-memory data; stores always use ``svi_stream``)."""


def _read_states(path: str) -> list[np.ndarray]:
    """Labelled state paths: CSV ``sequence,time,state`` or an ``.npy``/``.npz`` array."""
    import numpy as np

    from hmm_pyro.data import Sequences

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"--state-file: expected an existing file, got {path!r}")
    options = {"value": "state"} if file.suffix.lower() == ".csv" else {}
    paths = Sequences.from_file(file, **options)  # the library's checked readers (no pickles)
    if not bool(paths.observed.all()):
        raise ValueError(f"--state-file: {path!r} has steps without a state (empty or skipped)")
    return [np.asarray(sequence, dtype=np.int64) for sequence in paths.to_list()]


def _check_fit_options(args: argparse.Namespace, streaming: bool) -> None:
    """Options that belong to one runner only, refused (exit 2) with any other."""
    check_scheduler(args)
    if args.scheduler is not None and args.method != "nuts":
        raise ValueError(
            f"--scheduler: only NUTS chains run as tasks; --method {args.method} runs here"
        )
    if args.chain_dir is not None and args.method != "nuts":
        raise ValueError(f"--chain-dir: saves NUTS chains; got --method {args.method}")
    for flag, given in (("--checkpoint", args.checkpoint is not None), ("--resume", args.resume)):
        if given and args.method not in ("svi", "map"):
            raise ValueError(
                f"{flag}: SVI and MAP runs are checkpointed; got --method {args.method}"
            )
    if args.resume and args.checkpoint is None:
        raise ValueError("--resume: expected --checkpoint PATH to resume from")
    if streaming and args.method != "svi":
        raise ValueError(
            f"--batch-size: mini-batches of sequences (and stores) are for --method svi; "
            f"got --method {args.method}"
        )
    for flag, given, argument in (
        ("--stationary", args.stationary, "initial"),
        ("--mle", args.mle, "emission_prior"),
    ):
        if given and argument not in runner_options(args.method):
            takers = [method for method in FIT_METHODS if argument in runner_options(method)]
            raise ValueError(
                f"{flag}: a setting of the classical learners ({', '.join(takers)}); got "
                f"--method {args.method} (try --method em)"
            )
    runner_kwargs(args, "svi_stream" if streaming else args.method)  # refuses foreign settings
    if args.mle:
        given = [name for name in PRIOR_KEYS if getattr(args, f"prior_{name}") is not None]
        if given:
            raise ValueError(
                f"--mle: maximum likelihood has no prior; got prior option(s) for {given}"
            )


def _fit_stream(args: argparse.Namespace) -> Fit:
    """Mini-batch SVI over a store (or over an in-memory data file with --batch-size)."""
    from hmm_pyro.runners import get_runner
    from hmm_pyro.store import MemoryStore, is_store, open_store

    if is_store(args.data):
        store = open_store(args.data)
        config = store.emission or {}
        if args.symbols is None and config.get("num_symbols") is not None:
            args.symbols = int(config["num_symbols"])
        if args.dim is None:
            args.dim = store.dim
        hmm = model_of(args)
        print(f"data: {store!r}\nmodel: {hmm!r}\nmethod: svi (mini-batches)", flush=True)
    else:
        data = load_data(args)
        hmm = model_of(args, data)
        store = MemoryStore(hmm.prepare_data(data))
        print(f"data: {store.data}\nmodel: {hmm!r}\nmethod: svi (mini-batches)", flush=True)
    options = runner_kwargs(args, "svi_stream")
    # --steps is fit_svi's on every SVI route; the mini-batch runner's own default is lower
    options.setdefault("steps", runner_options("svi")["steps"])
    if args.batch_size is not None:  # blocks of rows may not exceed the batch
        block_size = runner_options("svi_stream")["block_size"]
        options["block_size"] = max(1, min(block_size, args.batch_size))
    return get_runner("svi_stream")(hmm, store, **options)


def _check_subject_options(args: argparse.Namespace, streaming: bool) -> None:
    """Subjects: a CSV column, in memory, for the runners of a MultilevelHMM."""
    if args.subject_column is None:
        return
    if not args.subject_column.strip():
        raise ValueError("--subject-column: expected a column name")
    for flag, value in (
        ("--transition-covariates", args.transition_covariates),
        ("--emission-covariates", args.emission_covariates),
    ):
        if value is not None:
            raise ValueError(f"--subject-column: not with {flag} (one or the other)")
    if streaming:
        raise ValueError(
            "--subject-column: subjects are read from a CSV data file in memory; not with "
            "--batch-size or a store"
        )
    if args.method not in COVARIATE_METHODS:
        raise ValueError(
            f"--subject-column: fitted by --method {', '.join(COVARIATE_METHODS)} (per-subject "
            f"parameters have no closed-form M-step); got --method {args.method}"
        )


def _subjects(args: argparse.Namespace, data: Any) -> list[str]:
    """The subject of each sequence of ``data``: the CSV column, constant within a sequence.

    Sequences keep the order of their first appearance in the file (as
    :meth:`hmm_pyro.Sequences.from_file` reads them).
    """
    import pandas as pd

    column = args.subject_column.strip()
    if Path(args.data).suffix.lower() != ".csv":
        raise ValueError(f"--subject-column: expected a CSV data file, got {args.data!r}")
    table = pd.read_csv(args.data)
    if column not in table.columns:
        raise ValueError(
            f"--subject-column: no column {column!r} in {args.data} (columns: "
            f"{list(table.columns)})"
        )
    if table[column].isna().any():
        raise ValueError(f"--subject-column: column {column!r} has empty entries")
    sequence = args.sequence_column
    if sequence is None and "sequence" in table.columns:
        sequence = "sequence"
    if sequence is None or sequence.lower() == "none":
        labels = table[column].astype(str).unique().tolist()
        if len(labels) != 1:
            raise ValueError(
                f"--subject-column: one sequence with {len(labels)} subjects in {column!r}; a "
                "subject is constant within each sequence"
            )
        return labels * data.num_sequences
    groups = table.groupby(sequence, sort=False)[column]
    mixed = [str(key) for key, count in groups.nunique().items() if count > 1]
    if mixed:
        raise ValueError(
            f"--subject-column: sequences {mixed[:5]} have several subjects in {column!r}; a "
            "subject is constant within each sequence"
        )
    labels = groups.first().astype(str).tolist()
    if len(labels) != data.num_sequences:
        raise ValueError(
            f"--subject-column: found {len(labels)} sequences, the data have {data.num_sequences}"
        )
    return labels


def _multilevel_model(args: argparse.Namespace, data: Any, prior: Any) -> Any:
    """The :class:`~hmm_pyro.MultilevelHMM` of the model options and the subject column."""
    from hmm_pyro.multilevel import MultilevelHMM

    plain = model_of(args, data, prior=prior)  # the emission and prior options, checked
    return MultilevelHMM(plain.num_states, plain.emission, _subjects(args, data), prior=plain.prior)


def _fit_in_memory(args: argparse.Namespace) -> Fit:
    from hmm_pyro.priors import Prior
    from hmm_pyro.runners import get_runner

    data = load_covariate_data(args)
    # --mle: flat Dirichlet priors of pi and A (the likelihood's maximiser) and no emission prior
    prior = Prior(pi=1.0, A=1.0, stickiness=0.0) if args.mle else None
    if has_covariates(args):
        hmm = covariate_model(args, data, prior)
    elif args.subject_column is not None:
        hmm = _multilevel_model(args, data, prior)
    else:
        hmm = model_of(args, data, prior=prior)
    data = hmm.prepare_data(data)
    options = runner_kwargs(args, args.method)
    if args.checkpoint is None:  # the checkpoint interval means nothing without a checkpoint
        options.pop("checkpoint_every", None)
    if args.stationary:
        options["initial"] = "stationary"
    if args.mle:
        options["emission_prior"] = False
    how = " (maximum likelihood)" if args.mle else ""
    print(f"data: {data}\nmodel: {hmm!r}\nmethod: {args.method}{how}", flush=True)
    if data.covariates is not None and data.covariates.standardized:
        scales = ", ".join(
            f"{name} (mean {mean:.4g}, sd {sd:.4g})"
            for name, mean, sd in zip(
                data.covariates.names, data.covariates.means, data.covariates.sds, strict=True
            )
        )
        print(f"covariates standardised: {scales}", flush=True)
    if args.method == "supervised":
        if args.state_file is None:
            raise ValueError("--state-file: expected the labelled state paths for supervised")
        options["states"] = _read_states(args.state_file)
    with option_errors(tol="--tol", max_iter="--max-iter"):
        return get_runner(args.method, FIT_METHODS)(hmm, data, **options)


def run(args: argparse.Namespace) -> int:
    """Fit; print the estimates and the fit statistics; save the fit."""
    from hmm_pyro.cli._summary import convergence_lines, estimate_lines, summary_lines
    from hmm_pyro.store import is_store

    streaming = args.batch_size is not None or is_store(args.data)
    _check_fit_options(args, streaming)
    check_covariate_options(args, streaming)
    _check_subject_options(args, streaming)
    began = time.perf_counter()
    try:
        fit = _fit_stream(args) if streaming else _fit_in_memory(args)
    except KeyboardInterrupt:
        if args.checkpoint is None:
            raise
        print(
            f"interrupted; state saved to {args.checkpoint}: rerun with --resume to continue",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    seconds = time.perf_counter() - began
    point = fit.num_chains * fit.num_draws == 1
    print("estimates:" if point else "posterior means:")
    print("\n".join(estimate_lines(fit, fit.posterior_mean())))
    if not point:
        print("\n".join(convergence_lines(fit)))
    print("\n".join(summary_lines(fit, seconds)))
    path = fit.save(args.out)
    if fit.hmm.transition_covariates:
        for written in _covariate_plots(fit, path):
            print(f"wrote {written}")
    if args.subject_column is not None:
        print(f"wrote {_shrinkage_plot(fit, path)}")
    print(f"saved {path}; next: hmm-pyro diagnose {path}")
    return EXIT_OK


def _covariate_plots(fit: Fit, path: Path) -> list[Path]:
    """The transition probabilities against each covariate, next to the fit file."""
    import matplotlib

    matplotlib.use("Agg")
    from hmm_pyro.plots import save_fit_plots

    return save_fit_plots(fit, path.parent, kinds=["covariates"], prefix=path.stem)


def _shrinkage_plot(fit: Fit, path: Path) -> Path:
    """The subjects' transition estimates against the group's, next to the fit file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hmm_pyro.plots import plot_shrinkage

    axes = plot_shrinkage(fit)
    target = path.parent / f"{path.stem}_shrinkage.png"
    axes[0].figure.savefig(target, dpi=110)
    plt.close(axes[0].figure)
    return target


def add_parser(commands: Any) -> None:
    """Register ``fit``."""
    parser = add_command(
        commands,
        "fit",
        run,
        help="fit an HMM: NUTS, SVI, MAP, EM, Viterbi training or supervised counting",
        description="Fit an HMM to DATA and save the result (ArviZ NetCDF): posterior draws "
        "for NUTS and Gaussian SVI guides, a point estimate otherwise.",
    )
    add_fitting_options(parser, FIT_METHODS, default="nuts")
    parser.add_argument(
        "--state-file", help="labelled states for --method supervised (CSV sequence,time,state)"
    )
    classical = parser.add_argument_group("classical learners (em, viterbi, supervised)")
    classical.add_argument(
        "--stationary",
        action="store_true",
        help="tie the initial distribution pi to the stationary distribution of A (instead "
        "of estimating it from the first steps): K - 1 fewer free parameters",
    )
    classical.add_argument(
        "--mle",
        action="store_true",
        help="plain maximum likelihood: no emission prior and flat Dirichlet priors "
        "(concentration 1, no stickiness) on pi and A; refuses the prior options",
    )
    add_covariate_options(parser, plots=True)
    subjects = parser.add_argument_group("subjects (multilevel model)")
    subjects.add_argument(
        "--subject-column",
        metavar="COL",
        help="column of the CSV data file naming each sequence's subject: fits a "
        "MultilevelHMM (per-subject transitions and, for categorical and Gaussian emissions, "
        "emission parameters around group-level ones; --method nuts, svi or map); the "
        "shrinkage plot is written next to --out",
    )
    parser.add_argument("--out", default="fit.nc", help="result file (default: %(default)s)")
    resilience = parser.add_argument_group("many sequences and long runs")
    resilience.add_argument(
        "--batch-size",
        type=int,
        metavar="B",
        help="SVI on mini-batches of B sequences (likelihood scaled by N/B); automatic, with "
        f"B={runner_options('svi_stream')['batch_size']}, when DATA is a store written by "
        "'hmm-pyro store', which is read lazily",
    )
    resilience.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="SVI: save the run's state (parameters, optimiser, step, random generators) "
        "to PATH every --checkpoint-every steps and on Ctrl-C (exit code 130)",
    )
    resilience.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help=f"steps between checkpoints (default: {runner_options('svi')['checkpoint_every']})",
    )
    resilience.add_argument(
        "--resume",
        action="store_true",
        help="continue from --checkpoint; ends with the same result as an uninterrupted run",
    )
    resilience.add_argument(
        "--chain-dir",
        metavar="DIR",
        help="NUTS: save each finished chain in DIR; a rerun reuses the finished ones",
    )
