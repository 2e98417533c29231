"""(i) Model misspecification: emissions the family cannot describe, and the predictive checks.

The essay lists model misspecification as a cause of degenerate states. A Gaussian HMM fitted
to data with heavy-tailed noise, or a Poisson HMM fitted to overdispersed counts, has no way to
describe the misfit except with its states: extra states absorb outliers or the excess variance
and switch quickly, so they are not regimes. ``hmm_pyro.diagnose`` now runs predictive checks
(plug-in for point estimates, posterior predictive for draws) of the statistics HMM users look
at: marginal law (sd, excess kurtosis; dispersion index and zeros for counts), lag-1..3
autocorrelation, run lengths, and the dwell times of the decoded path; a statistic fails when
its Holm-adjusted p-value is below 0.01 and it lies beyond every replicate.

Planted cases: 2-state HMMs (means 0 and 3, or rates 2 and 8; staying probability 0.95) with
Student-t noise (3 degrees of freedom) or negative-binomial counts (size 2: variance
``m + m^2 / 2``), and the same HMMs with the right noise as controls. Each is fitted by MAP
(L-BFGS, 4 restarts) for many seeds; we count the flags (power, false alarms), show which
statistics fail, how many states BIC would choose on the misspecified data, and one posterior
predictive check of a short NUTS run.

    python diagnostics/i_misspecification.py [--quick] [--out DIR] [--seed S]
"""

from __future__ import annotations

import _common
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm

import hmm_pyro as hp
from hmm_pyro.diagnostics import diagnose, predictive_checks
from hmm_pyro.plots import plot_predictive_checks

CASES = {
    "Gaussian, normal noise": ("gaussian", None),
    "Gaussian, t(3) noise": ("gaussian", "t3"),
    "Poisson counts": ("poisson", None),
    "Poisson, negative-binomial counts": ("poisson", "nb"),
}


def planted(family: str, noise: str | None, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    states = np.cumsum(rng.random(length) > 0.95) % 2
    if family == "gaussian":
        error = rng.standard_t(3, length) if noise == "t3" else rng.standard_normal(length)
        return np.array([0.0, 3.0])[states] + error
    rate = np.array([2.0, 8.0])[states]
    if noise == "nb":
        rate = rng.gamma(2.0, rate / 2.0)
    return rng.poisson(rate).astype(float)


def model(family: str, states: int = 2) -> hp.HMM:
    return hp.HMM(states, hp.Gaussian() if family == "gaussian" else hp.Poisson())


def bic_states(family: str, values: np.ndarray, seed: int, most: int) -> int:
    scores = []
    for states in range(1, most + 1):
        hmm = model(family, states)
        fit = hp.fit_map(hmm, values, restarts=3, seed=seed, progress=False)
        log_lik = float(hmm.log_likelihood(fit.posterior_mean(), values).sum())
        scores.append(-2 * log_lik + hmm.num_free_params() * np.log(values.size))
    return int(np.argmin(scores)) + 1


def main(argv=None):
    args = _common.parse_args(__doc__, argv)
    report = _common.Report("i_misspecification", "(i) Model misspecification", args, __doc__)
    seeds = range(args.seed, args.seed + (1 if args.quick else 20))
    lengths = (150,) if args.quick else (300, 1000)
    restarts = 2 if args.quick else 4
    rows, failing, examples, spreads = [], {}, {}, {}
    for length in lengths:
        for label, (family, noise) in CASES.items():
            flagged, names = 0, {}
            for seed in seeds:
                values = planted(family, noise, length, seed)
                fit = hp.fit_map(
                    model(family), values, restarts=restarts, seed=seed, progress=False
                )
                checks = predictive_checks(fit, seed=seed)
                flagged += bool(checks.failed)
                if noise is None and length == lengths[0]:
                    for check in checks.checks:
                        spreads.setdefault((family, check.name), []).append(
                            (float(np.std(check.replicated, ddof=1)), len(checks.checks))
                        )
                for check in checks.failed:
                    names[check.name] = names.get(check.name, 0) + 1
                if seed == args.seed and length == lengths[-1]:
                    examples[label] = checks
            failing[label, length] = names
            rows.append(
                {
                    "case": label,
                    "observations": length,
                    "misspecified": noise is not None,
                    "fits flagged": f"{flagged} / {len(seeds)}",
                    "statistics that failed (fits)": ", ".join(
                        f"{name} ({count})" for name, count in sorted(names.items())
                    )
                    or "-",
                }
            )
            print(rows[-1])
    most = 2 if args.quick else 4
    bic_rows = []
    for label, (family, noise) in CASES.items():
        if noise is None:
            continue
        values = planted(family, noise, lengths[-1], args.seed)
        bic_rows.append(
            {
                "case": label,
                "true states": 2,
                f"states chosen by BIC (MAP, 1..{most})": bic_states(
                    family, values, args.seed, most
                ),
            }
        )
    values = planted("gaussian", "t3", lengths[-1], args.seed)
    chains = hp.fit_nuts(
        model("gaussian"),
        values,
        chains=2,
        warmup=15 if args.quick else 150,
        draws=15 if args.quick else 150,
        seed=args.seed,
        progress=False,
        parallel=False,
        max_tree_depth=5,
    )
    nuts_report = diagnose(chains)
    control = planted("gaussian", None, lengths[0], args.seed)
    control_fit = hp.fit_map(
        model("gaussian"), control, restarts=restarts, seed=args.seed, progress=False
    )
    control_report = diagnose(control_fit)
    report.add(
        "## Results",
        f"MAP fits (L-BFGS, {restarts} restarts) of 2-state HMMs, seeds "
        f"{seeds.start}..{seeds.stop - 1}; "
        "plug-in predictive checks with 100 replicated data sets each. A fit is flagged when at "
        "least one statistic fails (family-wise level 0.01 over its 8-10 statistics).",
    )
    report.table(rows)
    report.add("### Spurious states: how many states BIC picks on the misspecified data")
    report.table(bic_rows)
    report.add(
        "## What `diagnose` says",
        f"- **NUTS, t(3) noise, {lengths[-1]} observations** (posterior predictive check, "
        "2 chains):",
        *_common.flag_lines(nuts_report),
        f"- **MAP, normal noise, {lengths[0]} observations** (the control):",
        *_common.flag_lines(control_report),
    )
    controls = [row for row in rows if not row["misspecified"]]
    alarms = sum(int(row["fits flagged"].split(" / ")[0]) for row in controls)
    total = sum(int(row["fits flagged"].split(" / ")[1]) for row in controls)
    planted_rows = [row for row in rows if row["misspecified"]]
    chosen = [row[f"states chosen by BIC (MAP, 1..{most})"] for row in bic_rows]
    bic_text = (
        "BIC picks more states than the truth's 2 on the misspecified data ("
        + ", ".join(f"{row['case']}: {k}" for row, k in zip(bic_rows, chosen, strict=True))
        + "), and those states are noise, not regimes"
        if any(k > 2 for k in chosen)
        else "BIC still picks the truth's 2 states here (" + ", ".join(map(str, chosen)) + ")"
    )

    def detectable(family: str, name: str) -> str:
        values = spreads.get((family, name), [])
        if not values:
            return "n/a"
        sd = float(np.mean([v[0] for v in values]))
        bound = float(norm.isf(0.01 / (2 * values[0][1])))
        return f"{bound * sd:.2g} ({bound:.2f} x the replicates' sd {sd:.2g})"

    report.add(
        "## Reading",
        f"- False alarms on well-specified fits: {alarms} of {total} "
        f"({alarms / max(total, 1):.1%}); the family-wise level is 1% per fit, and the rule "
        "'beyond every replicate' keeps skewed statistics (kurtosis) from failing on the "
        "normal approximation alone. A fit flagged among the controls is worth a look: a MAP "
        "restart stuck in a local optimum also fails these checks (study j).",
        "- Power: "
        + "; ".join(
            f"{row['case']}, {row['observations']} observations: {row['fits flagged']}"
            for row in planted_rows
        )
        + ". t(3) noise shows mostly in the excess kurtosis (its population value is infinite; "
        "the sample value varies widely from one data set to the next), negative-binomial "
        "counts in the dispersion index, the zeros and the kurtosis (counts per statistic in "
        "the table).",
        f"- With the emission law wrong, more states can fit better: {bic_text}. The flag's "
        "first remedy is another emission family, not more states.",
        "- Detectable effect: the most extreme statistic fails when it lies beyond all 100 "
        "replicates and more than the Holm bound of replicate standard deviations from their "
        f"mean. Measured on the controls at {lengths[0]} observations: an excess kurtosis "
        f"{detectable('gaussian', 'excess kurtosis')} away from what the fitted Gaussian HMM "
        "implies; a "
        f"dispersion index var/mean {detectable('poisson', 'dispersion index var/mean')} away "
        "from the "
        "fitted Poisson HMM's; a lag-1 autocorrelation "
        f"{detectable('gaussian', 'lag-1 autocorrelation')} away (Gaussian).",
    )
    figure, axes = plt.subplots(1, 2, figsize=(13, 5.0))
    for ax, label in zip(
        axes, ("Gaussian, t(3) noise", "Poisson, negative-binomial counts"), strict=True
    ):
        plot_predictive_checks(examples[label], ax=ax)
        ax.set_title(f"{label}\n" + ax.get_title(), fontsize="small")
    figure.tight_layout()
    report.figure(
        figure,
        "checks",
        "Plug-in predictive checks of one misspecified MAP fit per family (seed "
        f"{args.seed}, {lengths[-1]} observations): replicates grey, observed diamond, failed red.",
    )
    report.write()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
