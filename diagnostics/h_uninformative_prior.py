"""(h) Extremely uninformative priors: Dirichlet(0.01) rows, Normal(0, 10^4) means, vague variances.

The essay counts priors that are "too uninformative" among the causes of degenerate states.
A prior cannot be uninformative about everything: Dirichlet rows with concentration far below 1
put almost all their mass next to the corners of the simplex (most symbols nearly impossible);
a Normal mean prior with sd 10^4 says the state's mean is probably thousands of units away from
the data; and the once-popular "vague" InverseGamma(0.001, 0.001) variance prior (Gelman 2006)
puts much of its mass near zero variance, where a state can sit on a handful of observations.
Where the data inform a state, the likelihood overrides all of these; where they do not (an
unneeded state, a rare symbol), the prior is all there is.

Cases (one sequence each, NUTS with 2 chains kept as sampled, and MAP with 4 restarts):

* categorical: 3 states on data from 3 distinct states (study a's truth), emission rows
  Dirichlet(1) (flat) against Dirichlet(0.01);
* Gaussian: 3 states on data from 2 states (means 0 and 4, sd 1), the default priors
  (mean Normal(0, 10), variance InverseGamma(2, 1)) against mean Normal(0, 10^4) and variance
  InverseGamma(0.001, 0.001).

We report what ``diagnose`` finds, the divergences, the largest R-hat of label-invariant
quantities, the parameters an uninformative prior leaves free (smallest emission probability;
smallest sd and the range of the means), and the MAP point.

    python diagnostics/h_uninformative_prior.py [--quick] [--out DIR] [--seed S]
"""

from __future__ import annotations

import warnings

import _common
import matplotlib.pyplot as plt
import numpy as np
import torch

import hmm_pyro as hp
from hmm_pyro.diagnostics import diagnose

CATEGORICAL = {
    "pi": torch.full((3,), 1 / 3, dtype=torch.float64),
    "A": torch.full((3, 3), 0.05, dtype=torch.float64) + 0.85 * torch.eye(3, dtype=torch.float64),
    "B": torch.tensor([[0.95, 0.05], [0.50, 0.50], [0.05, 0.95]], dtype=torch.float64),
}
GAUSSIAN = {
    "pi": torch.full((2,), 0.5, dtype=torch.float64),
    "A": torch.tensor([[0.95, 0.05], [0.05, 0.95]], dtype=torch.float64),
    "mu": torch.tensor([0.0, 4.0], dtype=torch.float64),
    "sigma": torch.ones(2, dtype=torch.float64),
}
CASES = {
    "categorical, Dirichlet(1) rows": ("categorical", hp.Prior()),
    "categorical, Dirichlet(0.01) rows": ("categorical", hp.Prior(B=0.01)),
    "Gaussian, mu ~ Normal(0, 10)": ("gaussian", hp.Prior()),
    "Gaussian, mu ~ Normal(0, 1e4), sigma^2 ~ InvGamma(0.001, 0.001)": (
        "gaussian",
        hp.Prior(mu_scale=1e4, variance_shape=1e-3, variance_scale=1e-3),
    ),
}


def spread(family: str, fit) -> str:
    """The parameters an uninformative prior leaves free, summarised over the draws."""
    draws = fit.draws()
    if family == "categorical":
        smallest = draws["B"].amin(-1).reshape(-1, 3)  # per draw and state
        return f"median smallest B entry {float(smallest.median()):.1e}"
    sd = draws["sigma"].reshape(-1, 3).amin(-1)
    mu = draws["mu"].reshape(-1).numpy()
    return (
        f"median smallest sd {float(sd.median()):.2g}; means' 90% range "
        f"{np.quantile(mu, [0.05, 0.95]).round(1).tolist()}"
    )


def point_text(family: str, point) -> str:
    mean = point.posterior_mean()
    if family == "categorical":
        return "B " + ", ".join(f"{v:.2g}" for v in mean["B"].reshape(-1).tolist())
    return (
        "mu "
        + ", ".join(f"{v:.2f}" for v in mean["mu"].tolist())
        + "; sigma "
        + ", ".join(f"{v:.2g}" for v in mean["sigma"].tolist())
    )


def main(argv=None):
    args = _common.parse_args(__doc__, argv)
    report = _common.Report(
        "h_uninformative_prior", "(h) Extremely uninformative priors", args, __doc__
    )
    length = 200 if args.quick else 500
    warmup, draws = (10, 10) if args.quick else (200, 200)
    rows, lines, mu_draws = [], [], {}
    for label, (family, prior) in CASES.items():
        emission = hp.Categorical(2) if family == "categorical" else hp.Gaussian()
        truth = CATEGORICAL if family == "categorical" else GAUSSIAN
        simulator = hp.HMM(len(truth["pi"]), emission)
        data, _ = hp.simulate(simulator, truth, length, seed=args.seed)
        hmm = hp.HMM(3, emission, prior=prior)
        began = _common.time.perf_counter()
        fit = hp.fit_nuts(
            hmm,
            data,
            chains=2,
            warmup=warmup,
            draws=draws,
            seed=args.seed,
            progress=False,
            parallel=False,
            max_tree_depth=3 if args.quick else 6,
            relabel=False,
        )
        seconds = _common.seconds_since(began)
        result = diagnose(fit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            restarts = 2 if args.quick else 4
            try:
                point = hp.fit_map(hmm, data, restarts=restarts, seed=args.seed, progress=False)
            except ValueError as error:  # Dirichlet(0.01): no MAP exists, fit_map says so
                print(f"{label}: {error}")
                point = hp.fit_em(hmm, data, restarts=restarts, seed=args.seed, progress=False)
        point_result = diagnose(point)
        convergence = result.measurements.get("convergence", {})
        if family == "gaussian":
            mu_draws[label] = fit.draws()["mu"].reshape(-1).numpy()
        rows.append(
            {
                "case": label,
                "NUTS flags": _common.flags(result),
                "divergences": convergence.get("divergences"),
                "max invariant R-hat": convergence.get("invariant", {}).get("max_r_hat"),
                "wandering parameter": spread(family, fit),
                "MAP point": point_text(family, point),
                "MAP flags": _common.flags(point_result),
                "NUTS s": seconds,
            }
        )
        lines += [f"- **{label}, NUTS:**", *_common.flag_lines(result)]
        lines += [f"- **{label}, MAP:**", *_common.flag_lines(point_result)]
        print(rows[-1])
    report.add(
        "## Results",
        f"{length} observations per case; NUTS: 2 chains x ({warmup} warm-up + {draws} draws), "
        "draws as sampled; MAP: L-BFGS, 4 restarts (2 with --quick). Under Dirichlet(0.01) rows no "
        "MAP exists (the log posterior grows without bound towards zero probabilities) and "
        "`fit_map` refuses it; that row's point estimate is EM's boundary MAP (`fit_em`, which "
        "sets such probabilities to exactly 0), with as many restarts.",
    )
    report.table(rows)
    report.add("## What `diagnose` says", *lines)
    flat, vague = rows[0], rows[1]
    normal, wide = rows[2], rows[3]
    report.add(
        "## Reading",
        f"- Dirichlet(0.01) rows: {vague['wandering parameter']} against "
        f"{flat['wandering parameter']} under the flat prior; MAP point {vague['MAP point']} "
        f"(flat prior: {flat['MAP point']}). Flags (NUTS): {vague['NUTS flags']}, "
        f"{vague['divergences']} divergences; flat prior: {flat['NUTS flags']}, "
        f"{flat['divergences']} divergences. MAP flags: {vague['MAP flags']} (flat prior: "
        f"{flat['MAP flags']}).",
        f"- Gaussian, vague priors: {wide['wandering parameter']}; MAP point "
        f"{wide['MAP point']}. Default priors: {normal['wandering parameter']}; MAP point "
        f"{normal['MAP point']}. Flags (NUTS): {wide['NUTS flags']} vs {normal['NUTS flags']}; "
        f"MAP flags: {wide['MAP flags']} vs {normal['MAP flags']}.",
        "- An 'uninformative' prior is informative where the data are silent: compare the "
        "smallest emission probabilities and the smallest sds above with those under the "
        "default priors. `diagnose` flags what it measures (collapse, emptiness, contraction, "
        "divergences, misfit); it does not name an extreme prior as the cause.",
    )
    figure, ax = plt.subplots(figsize=(7, 3.2))
    for index, (label, values) in enumerate(mu_draws.items()):
        ax.hist(
            np.clip(values, -50, 50),
            bins=np.linspace(-50, 50, 101),
            histtype="step",
            density=True,
            color=f"C{index}",
            label=label,
        )
    ax.set_yscale("log")
    ax.set_xlabel("draws of every state's mean (clipped to [-50, 50]); true means 0 and 4")
    ax.legend(fontsize="x-small")
    figure.tight_layout()
    report.figure(figure, "means", "Gaussian case: posterior draws of the states' means.")
    report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
