"""Reference posterior for the categorical coverage study, computed without hmm_pyro's inference.

Usage::

    PYTHONPATH=. python benchmarks/emission_regression_reference.py
        [--replications 24] [--first 0] [--iterations 200000] [--chains 4]
        [--simulator library|numpy]

For the replications of ``emission_regression_coverage.py --family categorical --truth prior``
(the same model, truths and data, from its :func:`dataset`), samples the posterior with an
adaptive random-walk Metropolis sampler over the log joint density written here in numba:
the forward algorithm with a softmax emission (symbol 0 the reference), the Normal
coefficient priors (intercept sd 2, slope sd 1) and flat Dirichlet(1, 1) rows for the initial
distribution and the transitions, on logit coordinates with their log-Jacobian. Nothing of
hmm_pyro's likelihood, potential or samplers is used; the log joint at the truth is checked
against :meth:`hmm_pyro.HMM.log_prior` plus :meth:`~hmm_pyro.HMM.log_likelihood` each
replication (recorded, to 1e-8).

``--simulator numpy``: the truths and data are drawn by :func:`numpy_dataset` (numpy, written
here) instead of ``HMM.sample_prior`` and ``simulate``: a control for the library's simulator
and prior draws (exact inference covers at the nominal rate on average in both cases).

Each chain starts at its own prior draw; the first half of the iterations adapts the step
(Robbins-Monro towards acceptance 0.234) and, after the first eighth, the proposal covariance
(Haario et al. 2001); the second half is kept, every 50th iteration. Records per replication
whether the central 90% interval of each coefficient covers the truth, with every draw's
states ordered by their first coefficient as the truth's are (``--match sorted`` of the
coverage study), the rank of the truth's log joint among the draws', and the largest R-hat
(rank-normalised, over the chains) of the log joint and of the two sorted first intercepts,
label-invariant quantities. This is the coverage
that exact inference gives on these data sets: NUTS in the coverage study should match it.

Writes ``benchmarks/results/emission_regression_reference.json`` (a section per ``--first``
and ``--replications``) after every replication.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import arviz as az
import numba
import numpy as np
import torch
from emission_regression_coverage import (  # benchmarks/ is on sys.path
    LEVEL,
    _covariates,
    dataset,
    model,
)
from scipy import stats

from hmm_pyro import HMM, Sequences
from hmm_pyro._io import atomic_write

RESULTS = Path(__file__).resolve().parent / "results" / "emission_regression_reference.json"
SCALES = (2.0, 1.0)
"""Prior standard deviations of the intercepts and of the slopes (the family's defaults)."""
THIN = 50


@numba.njit(cache=True)
def log_joint(z: np.ndarray, design: np.ndarray, symbols: np.ndarray) -> tuple[float, float]:
    """``log p(y, theta) + log|J|`` and ``log|J|`` at coordinates ``z``.

    ``z``: ``W`` (2, V - 1, Q) flattened, then the logits of ``pi[0]``, ``A[0, 0]``, ``A[1, 0]``.
    """
    steps, terms = design.shape
    others = (z.shape[0] - 3) // (2 * terms)
    w = z[: 2 * others * terms].reshape(2, others, terms)
    first = 1.0 / (1.0 + np.exp(-z[-3:]))  # pi[0], A[0, 0], A[1, 0]
    stay0, stay1 = first[1], 1.0 - first[2]  # A[0, 0], A[1, 1]
    f0, f1 = first[0], 1.0 - first[0]
    eta = np.zeros(others + 1)
    emission = np.zeros(2)
    total = 0.0
    for t in range(steps):
        for k in range(2):
            top = 0.0
            for v in range(others):
                value = 0.0
                for q in range(terms):
                    value += w[k, v, q] * design[t, q]
                eta[v + 1] = value
                top = max(top, value)
            normaliser = 0.0
            for v in range(others + 1):
                normaliser += np.exp(eta[v] - top)
            emission[k] = np.exp(eta[symbols[t]] - top) / normaliser
        if t > 0:
            f0, f1 = f0 * stay0 + f1 * (1.0 - stay1), f0 * (1.0 - stay0) + f1 * stay1
        f0, f1 = f0 * emission[0], f1 * emission[1]
        scale = f0 + f1
        total += np.log(scale)
        f0, f1 = f0 / scale, f1 / scale
    prior = 0.0
    for k in range(2):
        for v in range(others):
            for q in range(terms):
                sd = SCALES[min(q, 1)]
                prior += -0.5 * (w[k, v, q] / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)
    jacobian = np.sum(np.log(first) + np.log(1.0 - first))
    return total + prior + jacobian, jacobian


@numba.njit(cache=True)
def metropolis(
    start: np.ndarray, iterations: int, design: np.ndarray, symbols: np.ndarray, seed: int
) -> np.ndarray:
    """Kept draws ``(iterations // 2 // THIN, D + 1)``: coordinates, then ``log p(y, theta)``."""
    np.random.seed(seed)  # noqa: NPY002 (numba seeds its own state this way)
    size = start.shape[0]
    z = start.copy()
    current, jacobian = log_joint(z, design, symbols)
    step = 0.1
    factor = np.eye(size)
    mean = np.zeros(size)
    covariance = np.eye(size)
    seen = 0
    scaled = False
    half = iterations // 2
    out = np.zeros((half // THIN, size + 1))
    kept = 0
    for it in range(iterations):
        proposal = z + step * (factor @ np.random.standard_normal(size))  # noqa: NPY002
        value, proposal_jacobian = log_joint(proposal, design, symbols)
        accept = np.log(np.random.random()) < value - current  # noqa: NPY002
        if accept:
            z, current, jacobian = proposal, value, proposal_jacobian
        if it < half:
            step *= np.exp(0.01 * ((1.0 if accept else 0.0) - 0.234))
            if it >= iterations // 8:
                seen += 1
                delta = z - mean
                mean += delta / seen
                covariance += (np.outer(delta, z - mean) - covariance) / seen
                if it % 200 == 0 and seen > 100:
                    factor = np.linalg.cholesky(covariance + 1e-8 * np.eye(size))
                    if not scaled:  # the optimal scale for a Gaussian target, then adapted
                        step, scaled = 2.38 / np.sqrt(size), True
        elif (it - half) % THIN == 0 and kept < out.shape[0]:
            out[kept, :size] = z
            out[kept, size] = current - jacobian
            kept += 1
    return out


def coordinates(params: dict[str, torch.Tensor]) -> np.ndarray:
    """The sampler's coordinates of a parameter set."""
    pi, transitions = params["pi"].numpy(), params["A"].numpy()
    firsts = np.array([pi[0], transitions[0, 0], transitions[1, 0]])
    return np.concatenate([params["W"].numpy().reshape(-1), np.log(firsts / (1 - firsts))])


def numpy_dataset(replication: int, length: int) -> tuple[HMM, dict[str, torch.Tensor], Sequences]:
    """A replication drawn with numpy instead of ``sample_prior`` and ``simulate``.

    The same covariates; ``W`` from the Normal prior, ``pi`` and the rows of ``A`` from
    Dirichlet(1, 1), the state path and the symbols (softmax, symbol 0 the reference) drawn
    step by step with ``numpy.random.default_rng(20_000 + replication)``.
    """
    hmm = model("categorical")
    covariates = _covariates(length, np.random.default_rng(replication))
    generator = np.random.default_rng(20_000 + replication)
    shape = hmm.emission.param_shapes(2)["W"]
    scales = np.array([SCALES[0]] + [SCALES[1]] * (shape[-1] - 1))
    w = generator.normal(size=shape) * scales
    pi = generator.dirichlet(np.ones(2))
    transitions = np.stack([generator.dirichlet(np.ones(2)) for _ in range(2)])
    design = hmm.emission.design(covariates)[0].numpy()
    state = generator.choice(2, p=pi)
    symbols = np.zeros(length)
    for t in range(length):
        if t > 0:
            state = generator.choice(2, p=transitions[state])
        eta = np.concatenate([[0.0], w[state] @ design[t]])
        probabilities = np.exp(eta - eta.max())
        symbols[t] = generator.choice(shape[1] + 1, p=probabilities / probabilities.sum())
    truth = {
        "pi": torch.from_numpy(pi),
        "A": torch.from_numpy(transitions),
        "W": torch.from_numpy(w),
    }
    return hmm, truth, Sequences([symbols], covariates=covariates)


def _replicate(replication: int, args: argparse.Namespace) -> dict:
    if args.simulator == "library":
        hmm, truth, data = dataset(replication, "categorical", "prior", args.length)
    else:
        hmm, truth, data = numpy_dataset(replication, args.length)
    design = np.ascontiguousarray(hmm.emission.design(data.covariates)[0].numpy())
    symbols = data.values[0, :, 0].numpy().astype(np.int64)
    here = coordinates(truth)
    value, jacobian = log_joint(here, design, symbols)
    library = float(hmm.log_prior(truth) + hmm.log_likelihood(truth, data).sum())
    if abs(value - jacobian - library) > 1e-8:
        raise AssertionError(f"log joint {value - jacobian} differs from hmm_pyro's {library}")
    began = time.perf_counter()
    chains = [
        metropolis(
            coordinates(hmm.sample_prior(seed=1_000_000 + 100 * replication + chain)),
            args.iterations,
            design,
            symbols,
            7919 * replication + chain,
        )
        for chain in range(args.chains)
    ]
    seconds = time.perf_counter() - began
    kept = np.concatenate(chains)
    shape = tuple(truth["W"].shape)
    draws = kept[:, : int(np.prod(shape))].reshape(-1, 2, int(np.prod(shape[1:])))
    order = np.argsort(draws[:, :, 0], axis=1)
    draws = np.take_along_axis(draws, order[:, :, None], axis=1)
    planted = truth["W"].reshape(2, -1).numpy()
    planted = planted[np.argsort(planted[:, 0])]
    low, high = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=0)
    covered = (low <= planted) & (planted <= high)
    stacked = np.stack(chains)  # (chain, draw, D + 1)
    firsts = np.sort(stacked[..., [0, int(np.prod(shape[1:]))]], axis=-1)  # sorted intercepts
    r_hat = max(
        float(az.rhat(stacked[..., -1])),
        *(float(az.rhat(firsts[..., k])) for k in range(2)),
    )
    return {
        "replication": replication,
        "covered": covered.reshape(-1).astype(int).tolist(),
        "truth_log_joint_rank": float(np.mean(kept[:, -1] < library)),
        "log_joint_check": value - jacobian - library,
        "max_r_hat": r_hat,
        "seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the reference sampler and write its JSON section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=24)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--iterations", type=int, default=200_000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--simulator", choices=("library", "numpy"), default="library")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    command = "PYTHONPATH=. python benchmarks/emission_regression_reference.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    section = f"categorical (truth from the prior), replications {args.first}-"
    section += f"{args.first + args.replications - 1}"
    if args.simulator == "numpy":
        section += ", truths and data drawn with numpy"
    context = {
        "command": command.strip(),
        "settings": {**vars(args), "thin": THIN, "level": LEVEL},
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "load_average_at_start": list(os.getloadavg()),
            "note": "shared machine (about 6 sessions on 2 cores): times are indicative only",
        },
    }
    runs = []
    for replication in range(args.first, args.first + args.replications):
        runs.append(_replicate(replication, args))
        print(f"{replication}: {runs[-1]['seconds']:.1f} s", flush=True)
        hits = np.array([run["covered"] for run in runs])
        ranks = [run["truth_log_joint_rank"] for run in runs]
        summary = {
            **context,
            "replications": len(runs),
            "covered_per_coefficient": hits.sum(0).tolist(),
            "pooled_coverage": float(hits.mean()),
            "pooled_binomial_p": float(stats.binomtest(int(hits.sum()), hits.size, LEVEL).pvalue),
            "replication_t_p": float(stats.ttest_1samp(hits.mean(1), LEVEL).pvalue)
            if len(runs) > 1 and hits.mean(1).std() > 0
            else None,
            "truth_log_joint_rank_ks_p": float(stats.kstest(ranks, "uniform").pvalue),
            "max_r_hat": max(run["max_r_hat"] for run in runs),
            "runs": runs,
        }
        stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        stored[section] = summary  # sections written meanwhile by other runs are kept
        with atomic_write(RESULTS) as handle:
            handle.write(json.dumps(stored, indent=2) + "\n")
    print(
        f"{section}: covered {int(hits.sum())} of {hits.size} ({summary['pooled_coverage']:.3f}),"
        f" binomial p {summary['pooled_binomial_p']:.3f}, replication t p "
        f"{summary['replication_t_p']}, log-joint rank KS p "
        f"{summary['truth_log_joint_rank_ks_p']:.3f}, largest R-hat {summary['max_r_hat']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
