"""Simulation-based calibration (Talts et al. 2018) of the NUTS runner.

Each replication draws ``theta`` from the prior of a small categorical HMM (``K = 2`` states,
``V = 3`` symbols), simulates three sequences of 20 symbols, fits them with ``fit_nuts`` (one
chain) and records, for each test quantity ``f``, the rank of ``f(theta)`` among ``L = 19``
thinned posterior draws of ``f``. For a correct sampler each rank is uniform on ``0 .. L``.

The quantities are label-free, so that they are well defined whichever labelling a chain
settles in (raw per-state parameters give U-shaped histograms even for a correct sampler, the
chain staying in one of the ``K!`` symmetric modes):

- emission probabilities with the states sorted by ``B[:, 0]`` (lowest first), and the
  ``A`` diagonal and ``pi`` in the same order;
- the log likelihood ``log p(y | theta)`` of the simulated data (a data-dependent quantity:
  the only kind that can detect a sampler that ignores the data; Modrák et al. 2023);
- the squared Hellinger distance between the two states' emission laws (minimum over pairs).

Ranks are binned into 10 bins of 2 and tested with Pearson's chi-square test against the
uniform; a quantity fails when its p-value is below ``FAMILY_ALPHA / len(QUANTITIES)`` =
0.01 / 9 = 0.0011 (Bonferroni, family-wise level 1%).

The test can fail. With the ``REPLICATIONS = 100`` used here:

- :func:`test_sbc_rejects_a_sampler_that_ignores_the_data` shows it for "posterior" draws taken
  from the prior (the log likelihood's ranks pile up at the top; p = 3e-163);
- a NUTS posterior under a misspecified prior, ``run_sbc(fit_prior=Prior(B=3.0))`` (the truth
  has ``B[k] ~ Dirichlet(1)``), fails three of the nine quantities (the lower state's two
  emission entries and the Hellinger distance; p = 9e-14, 6e-4 and 4e-15, measured; the log
  likelihood's p = 0.015 stays above the threshold); it takes as long as the calibration
  test, so it is not run here;
- in general, a quantity whose ranks put 27.5% of the replications in one bin (10% expected,
  the rest spread evenly) is flagged with probability 0.9 (noncentral chi-square with 9
  degrees of freedom and noncentrality ``R * sum((p - 0.1)**2 / 0.1)`` = 34, at the 0.0011
  level); 30% in one bin with probability 0.98.

The calibrated run with these seeds passes with every p-value above 0.18, without a divergence.
(The test used 200 replications until the suite went parallel: then 22.5% in one bin had power
0.9, and the misspecified prior failed six quantities with p from 1e-10 to 1e-50. It then used
100 replications of 98 draws thinned to ``L = 49``: the same power in terms of bins, and the
misspecified prior failed four quantities, p = 4e-15, 8e-7, 1e-4 and 8e-17. The detectable
effect stated above is one of bin probabilities, which does not depend on ``L``; a smaller
``L`` only coarsens the ranks inside the bins, and cut 30% of the test's cost. Seeds depend
only on the replication index, so every version shares its first replications.)

Cost: about 0.8 s of CPU per replication with Pyro's NUTS (100 warm-up + 38 draws, thinned by 2
to 19 draws: the effective sample size of 98 consecutive draws was typically 30 to 90 in a
sample of replications, so the thinned draws are roughly independent), then dominated by Pyro's
tree building (about 0.3 ms per leapfrog step, 13 steps per iteration; ``fit_nuts``'s own per-
call overhead is about 20 ms), less with the NumPy sampler that replaced it; a warm-up of 50
would save 30% but gave 10 divergences in 12 replications (none with 100). Replications run in
one single-threaded worker process per core, or in the test's own process inside a pytest-xdist
worker (the workers already fill the cores, and worker processes would each pay seconds of
imports); their seeds depend only on the replication index, so the ranks do not depend on the
number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from scipy import stats

from hmm_pyro import HMM, Categorical, Prior, fit_nuts, simulate

NUM_STATES, NUM_SYMBOLS = 2, 3
LENGTHS = (20, 20, 20)
REPLICATIONS = 100
WARMUP, DRAWS, THIN = 100, 38, 2
NUM_RANKS = DRAWS // THIN  # L = 19 posterior draws: ranks 0 .. 19
NUM_BINS = 10
FAMILY_ALPHA = 0.01
MASTER_SEED = 20240611
QUANTITIES = (
    "B_low_0",
    "B_high_0",
    "B_low_1",
    "B_high_1",
    "A_low_low",
    "A_high_high",
    "pi_low",
    "log_likelihood",
    "hellinger",
)


def _hmm(prior: Prior | None = None) -> HMM:
    return HMM(NUM_STATES, Categorical(num_symbols=NUM_SYMBOLS), prior=prior)


def quantities(hmm: HMM, params: dict[str, torch.Tensor], data) -> np.ndarray:
    """Label-free test quantities of ``params`` (leading draw dims allowed): ``(..., Q)``."""
    order = params["B"][..., 0].argsort(-1)  # (..., K): states sorted by B[:, 0]
    low, high = order[..., 0], order[..., 1]
    B, A, pi = params["B"], params["A"], params["pi"]
    b_low = torch.take_along_dim(B, low[..., None, None], -2)[..., 0, :]
    b_high = torch.take_along_dim(B, high[..., None, None], -2)[..., 0, :]
    a_low = torch.take_along_dim(A, low[..., None, None], -2)[..., 0, :]
    a_high = torch.take_along_dim(A, high[..., None, None], -2)[..., 0, :]
    columns = [
        b_low[..., 0],
        b_high[..., 0],
        b_low[..., 1],
        b_high[..., 1],
        torch.take_along_dim(a_low, low[..., None], -1)[..., 0],
        torch.take_along_dim(a_high, high[..., None], -1)[..., 0],
        torch.take_along_dim(pi, low[..., None], -1)[..., 0],
        hmm.log_likelihood(params, data).sum(-1),
        hmm.emission.hellinger(params)[..., 0, 1],
    ]
    return torch.stack(columns, -1).numpy()


@dataclass(frozen=True)
class _Replication:
    index: int
    sampler: str  # "nuts" or "prior" (the deliberately wrong sampler)
    fit_prior: dict | None = None  # Prior fields of the fitted model (None: the true prior)


def _replication(task: _Replication) -> tuple[np.ndarray, dict]:
    """Ranks ``(Q,)`` of one replication, and the NUTS run's statistics."""
    hmm = _hmm()
    seeds = np.random.SeedSequence([MASTER_SEED, task.index]).generate_state(3)
    theta = hmm.sample_prior(seed=int(seeds[0]) % 2**31)
    data, _ = simulate(hmm, theta, list(LENGTHS), seed=int(seeds[1]) % 2**31)
    info: dict = {}
    if task.sampler == "nuts":
        fit_hmm = hmm if task.fit_prior is None else _hmm(Prior(**task.fit_prior))
        fit = fit_nuts(
            fit_hmm,
            data,
            chains=1,
            warmup=WARMUP,
            draws=DRAWS,
            seed=int(seeds[2]) % 2**31,
            progress=False,
            parallel=False,
            relabel=False,  # the ranked quantities are label-free: alignment changes nothing
        )
        draws = {name: value[0, THIN - 1 :: THIN] for name, value in fit.draws().items()}
        info = {
            "seconds": fit.attrs["sampling_time"],
            "divergences": int(fit.idata.sample_stats["diverging"].values.sum()),
        }
    else:
        draws = hmm.sample_prior(NUM_RANKS, seed=int(seeds[2]) % 2**31)
    truth = quantities(hmm, theta, data)
    posterior = quantities(hmm, draws, data)
    assert posterior.shape == (NUM_RANKS, len(QUANTITIES))
    return (posterior < truth).sum(0), info


def rank_p_values(ranks: np.ndarray) -> np.ndarray:
    """Chi-square p-value of uniformity of each column of ``ranks (R, Q)`` in ``0 .. L``."""
    edges = np.linspace(0, NUM_RANKS + 1, NUM_BINS + 1)
    p_values = []
    for column in ranks.T:
        counts, _ = np.histogram(column, bins=edges)
        p_values.append(stats.chisquare(counts).pvalue)
    return np.asarray(p_values)


def _init_worker() -> None:
    torch.set_num_threads(1)


def _default_workers() -> int:
    """One process per core; none of our own inside a pytest-xdist worker (see the docstring)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def run_sbc(
    sampler: str = "nuts",
    replications: int = REPLICATIONS,
    fit_prior: Prior | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Ranks ``(R, Q)``, their p-values ``(Q,)`` and per-replication NUTS statistics.

    NUTS replications run in ``workers`` processes (default: one per core, single-threaded; in
    this process inside a pytest-xdist worker); each replication's seeds depend only on its
    index, so the result does not depend on them.
    """
    prior = None if fit_prior is None else fit_prior.to_dict()
    tasks = [_Replication(index, sampler, prior) for index in range(replications)]
    if workers is None:
        workers = _default_workers()
    if sampler != "nuts" or workers <= 1:
        results = [_replication(task) for task in tasks]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
            results = list(pool.map(_replication, tasks, chunksize=4))
    ranks = np.stack([ranks for ranks, _ in results])
    return ranks, rank_p_values(ranks), [info for _, info in results]


def _threshold() -> float:
    return FAMILY_ALPHA / len(QUANTITIES)


def _table(p_values: np.ndarray) -> str:
    return ", ".join(f"{name}={p:.3g}" for name, p in zip(QUANTITIES, p_values, strict=True))


def test_rank_p_values_detect_non_uniform_ranks():
    rng = np.random.default_rng(0)
    uniform = rng.integers(0, NUM_RANKS + 1, size=(REPLICATIONS, 1))
    peaked = rng.binomial(NUM_RANKS, 0.5, size=(REPLICATIONS, 1))
    assert rank_p_values(uniform)[0] > _threshold()
    assert rank_p_values(peaked)[0] < 1e-6


def test_sbc_rejects_a_sampler_that_ignores_the_data():
    # Prior draws in place of posterior draws: every parameter-only quantity is still uniform
    # (truth and "posterior" both come from the prior), but the log likelihood of the data is
    # highest at the truth, so its ranks pile up at the top.
    ranks, p_values, _ = run_sbc(sampler="prior")
    print(f"SBC with prior draws as the posterior: p-values {_table(p_values)}")
    failing = {name for name, p in zip(QUANTITIES, p_values, strict=True) if p < _threshold()}
    assert "log_likelihood" in failing, _table(p_values)
    assert np.mean(ranks[:, QUANTITIES.index("log_likelihood")]) > 0.75 * NUM_RANKS


@pytest.mark.slow
def test_nuts_is_calibrated_on_a_small_categorical_hmm():
    began = time.perf_counter()
    ranks, p_values, infos = run_sbc()
    seconds = time.perf_counter() - began
    assert ranks.shape == (REPLICATIONS, len(QUANTITIES))
    failing = [name for name, p in zip(QUANTITIES, p_values, strict=True) if p < _threshold()]
    divergences = sum(info["divergences"] for info in infos)
    print(f"SBC: {REPLICATIONS} replications in {seconds:.0f} s; p-values {_table(p_values)}")
    assert not failing, (
        f"SBC rank histograms not uniform (threshold {_threshold():.2g}): {_table(p_values)}; "
        f"{divergences} divergences, {seconds:.0f} s"
    )
