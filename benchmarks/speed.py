"""Speed benchmark: hmm_pyro against its peers, measured in one run.

Workloads (categorical emissions, flat Dirichlet priors):

- small: K=3 states, V=5 symbols, 20 sequences x 500 steps (the project's reference HMM);
- large: K=10 states, V=20 symbols, 100 sequences x 1000 steps (sticky A, peaked B rows).

Measured (medians of repeated timings; ratios are ours against the peer in the same run):

1. log likelihood + gradient w.r.t. (log pi, log A, log B): hmm_pyro's categorical kernel
   (numba; and through the generic table kernel), hmm_pyro torch kernel, Pyro
   ``DiscreteHMM`` (autograd), JAX (``lax.scan`` forward algorithm, jitted
   ``value_and_grad``); hmmlearn ``score`` for the value alone; all values checked equal (1e-9).
   Each sample loops a call for ~20 ms; the torch-based implementations take turns sample by
   sample (:func:`interleaved_medians`), JAX and hmmlearn are timed after them on their own.
   Our symbols are prepared once (:class:`~hmm_pyro.kernels.SymbolLanes`, as the samplers do
   and as JAX gets its device arrays once); one row pays the preparation on every call.
2. NUTS, 1 chain, 300 warm-up + 300 draws: wall time and min bulk ESS over every entry of
   ``pi``, ``A``, ``B`` -> ESS per second; hmm_pyro vs NumPyro (scan forward algorithm; its
   times net of the fixed cost it pays on every ``MCMC.run``) and, on the small workload, Pyro
   NUTS on ``DiscreteHMM``; posterior means compared in MC-SE units. On the large workload,
   NumPyro's full run (about an hour) only with ``--numpyro-large``; always, the cost per
   leapfrog step inside both samplers' NUTS (:func:`leapfrog_probe`) and a projection.
3. MAP by L-BFGS to convergence (small workload): ``fit_map``'s default optimiser.
4. Thread settings: torch and numba threads 1 vs 2 for the kernel and a short NUTS run;
   chains in processes vs in sequence, and what ``parallel=None`` chooses.
5. Peak RSS of a MAP fit on 1,000 x 1,000 steps, K=10 (subprocess), against the size of the
   forward-backward tables.

Peers are an optional extra: ``pip install -e .[bench]``. Peers at their best settings
(dynamax's scaled forward, float32 and float64, NumPyro with ``jit_model_args=True``, Pyro
``DiscreteHMM`` traced, Stan), ratios per seed: ``benchmarks/speed_peers.py`` in the
environment of ``make bench-env``. Run:
``python benchmarks/speed.py [--quick] [--out benchmarks/results/speed.json]``; writes JSON and a
Markdown table next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import arviz as az  # noqa: E402
import numba  # noqa: E402
import pyro  # noqa: E402
import pyro.distributions as dist  # noqa: E402
import torch  # noqa: E402

import hmm_pyro as hp  # noqa: E402
from benchmarks._timing import interleaved_medians, median_time  # noqa: E402
from hmm_pyro import kernels  # noqa: E402
from hmm_pyro._io import atomic_write  # noqa: E402
from hmm_pyro.kernels.categorical import SymbolLanes, categorical_log_likelihood  # noqa: E402
from hmm_pyro.simulate import REFERENCE_PARAMS  # noqa: E402

torch.set_num_threads(1)
numba.set_num_threads(1)


# ----------------------------------------------------------------------------- workloads
def large_params(seed: int = 0) -> dict[str, torch.Tensor]:
    """K=10, V=20: sticky transitions, peaked emission rows."""
    generator = np.random.default_rng(seed)
    num, symbols = 10, 20
    A = np.full((num, num), 0.1 / (num - 1))
    np.fill_diagonal(A, 0.9)
    B = generator.dirichlet(np.full(symbols, 0.3), size=num)
    return {
        "pi": torch.full((num,), 1.0 / num, dtype=torch.float64),
        "A": torch.as_tensor(A),
        "B": torch.as_tensor(B),
    }


def workload(name: str) -> tuple[hp.HMM, hp.Sequences, dict[str, torch.Tensor]]:
    if name == "small":
        params, shape = REFERENCE_PARAMS, (20, 500)
    else:
        params, shape = large_params(), (100, 1000)
    hmm = hp.HMM(params["A"].shape[0], hp.Categorical(num_symbols=params["B"].shape[1]))
    data, _ = hp.simulate(hmm, params, [shape[1]] * shape[0], seed=0)
    return hmm, data, params


# ----------------------------------------------------------------------------- 1. kernels
def kernel_benchmark(name: str, repeats: int) -> dict:
    hmm, data, params = workload(name)
    symbols = data.values[..., 0].long()
    log_pi0, log_A0, log_B0 = (params[k].log() for k in ("pi", "A", "B"))
    emission = hmm.emission
    results: dict[str, dict] = {}

    # The data are prepared once, as the samplers do (and as JAX gets device arrays once);
    # the "symbols each call" row pays the preparation (checks, time-major copy) every time.
    prepared = SymbolLanes(symbols, log_B0.shape[1], data.lengths)

    def ours(backend: str, route: str = "prepared"):
        def run():
            log_pi, log_A, log_B = (t.clone().requires_grad_() for t in (log_pi0, log_A0, log_B0))
            if route != "table":
                inputs = (prepared,) if route == "prepared" else (symbols, data.lengths)
                value = categorical_log_likelihood(
                    log_pi, log_A, log_B, *inputs, backend=backend
                ).sum()
            else:
                table = emission.log_likelihood_table({"B": log_B.exp()}, data)
                value = kernels.log_likelihood(
                    log_pi, log_A, table, data.lengths, backend=backend
                ).sum()
            grads = torch.autograd.grad(value, (log_pi, log_A, log_B))
            return float(value.detach()), grads

        return run

    def discrete_hmm():
        log_pi, log_A, log_B = (t.clone().requires_grad_() for t in (log_pi0, log_A0, log_B0))
        # Pyro's convention applies one transition before the first observation; a first
        # time-varying transition whose rows are all pi makes it the standard model.
        steps = symbols.shape[1]
        trans = log_A.expand(steps, *log_A.shape).clone()
        trans[0] = log_pi.expand_as(log_A)
        model = dist.DiscreteHMM(torch.zeros_like(log_pi), trans, dist.Categorical(logits=log_B))
        value = model.log_prob(symbols).sum()
        grads = torch.autograd.grad(value, (log_pi, log_A, log_B))
        return float(value.detach()), grads

    def tangent(grads):
        # DiscreteHMM normalises its logits, so compare gradients chained through the row
        # normalisation: g - sum(g) * p (a no-op for gradients that already are).
        probs = [t.exp() for t in (log_pi0, log_A0, log_B0)]
        return [g - g.sum(-1, keepdim=True) * p for g, p in zip(grads, probs, strict=True)]

    reference, reference_grads = ours("numba")()
    reference_grads = tangent(reference_grads)
    runs = {
        "hmm_pyro numba": ours("numba"),
        "hmm_pyro numba, symbols prepared each call": ours("numba", "symbols"),
        "hmm_pyro numba, via the (N, T, K) table": ours("numba", "table"),
        "hmm_pyro torch": ours("torch"),
        "pyro DiscreteHMM": discrete_hmm,
    }
    for label, func in runs.items():
        value, grads = func()
        pairs = zip(tangent(grads), reference_grads, strict=True)
        gap = max(float((g - r).abs().max()) for g, r in pairs)
        results[label] = {"value_gap": abs(value - reference), "grad_gap": gap}
    for label, seconds in interleaved_medians(runs, repeats).items():
        results[label]["seconds"] = seconds
    # The peers outside torch are timed on their own, after: with JAX taking turns, ours and
    # DiscreteHMM ran ~1.5x slower (0.47 vs 0.29 ms, 10.9 vs 7.6 ms on 2 cores), most likely
    # XLA's worker threads staying busy after each call.
    for label, peer in (("jax", jax_kernel), ("hmmlearn score (value only)", hmmlearn_score)):
        try:
            run, results[label] = peer(data, params, reference)
            results[label]["seconds"] = median_time(run, repeats)
        except ImportError as error:
            results[label] = {"skipped": str(error)}
    base = results["hmm_pyro numba"]["seconds"]
    for entry in results.values():
        if "seconds" in entry:
            entry["ratio_to_hmm_pyro"] = entry["seconds"] / base
    return results


def table_kernel_benchmark(name: str, repeats: int) -> dict:
    """Kernels alone: value + gradient w.r.t. (log_pi, log_A, log_lik table)."""
    hmm, data, params = workload(name)
    log_pi0, log_A0 = params["pi"].log(), params["A"].log()
    table0 = hmm.emission.log_likelihood_table({"B": params["B"]}, data)
    results: dict[str, dict] = {}
    outputs = {}
    for backend in ("numba", "torch"):

        def run(backend=backend):
            inputs = [t.clone().requires_grad_() for t in (log_pi0, log_A0, table0)]
            value = kernels.log_likelihood(*inputs, data.lengths, backend=backend).sum()
            return float(value.detach()), torch.autograd.grad(value, inputs)

        outputs[backend] = run()
        results[f"hmm_pyro {backend}"] = {"seconds": median_time(run, repeats)}
    value, grads = outputs["numba"]
    value_t, grads_t = outputs["torch"]
    results["hmm_pyro torch"]["value_gap"] = abs(value - value_t)
    results["hmm_pyro torch"]["grad_gap"] = max(
        float((a - b).abs().max()) for a, b in zip(grads, grads_t, strict=True)
    )
    try:
        jax, jnp, _ = jax_forward_value_and_grad()
        from jax.scipy.special import logsumexp

        def log_lik(log_pi, log_A, table):
            def step(alpha, emit):
                return logsumexp(alpha[:, :, None] + log_A[None], axis=1) + emit, None

            alpha, _ = jax.lax.scan(step, log_pi + table[:, 0], jnp.swapaxes(table[:, 1:], 0, 1))
            return logsumexp(alpha, axis=-1).sum()

        func = jax.jit(jax.value_and_grad(log_lik, argnums=(0, 1, 2)))
        args = [jnp.asarray(t.numpy()) for t in (log_pi0, log_A0, table0)]
        jax_value, _ = func(*args)

        def run_jax():
            jax.block_until_ready(func(*args))

        results["jax"] = {
            "seconds": median_time(run_jax, repeats),
            "value_gap": abs(float(jax_value) - value),
        }
    except ImportError as error:
        results["jax"] = {"skipped": str(error)}
    base = results["hmm_pyro numba"]["seconds"]
    for entry in results.values():
        if "seconds" in entry:
            entry["ratio_to_hmm_pyro"] = entry["seconds"] / base
    return results


def jax_forward_value_and_grad():
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    jax.config.update("jax_enable_x64", True)

    def log_lik(log_pi, log_A, log_B, symbols):
        table = log_B.T[symbols]  # (N, T, K)

        def step(alpha, emit):
            alpha = logsumexp(alpha[:, :, None] + log_A[None], axis=1) + emit
            return alpha, None

        alpha, _ = jax.lax.scan(step, log_pi + table[:, 0], jnp.swapaxes(table[:, 1:], 0, 1))
        return logsumexp(alpha, axis=-1).sum()

    return jax, jnp, log_lik


def jax_kernel(data, params, reference) -> tuple:
    """JAX value + gradient, compiled; returns the timed call and its facts."""
    jax, jnp, log_lik = jax_forward_value_and_grad()
    func = jax.jit(jax.value_and_grad(log_lik, argnums=(0, 1, 2)))
    args = [jnp.asarray(params[k].log().numpy()) for k in ("pi", "A", "B")]
    args.append(jnp.asarray(data.values[..., 0].long().numpy()))
    began = time.perf_counter()
    value, _ = func(*args)
    jax.block_until_ready(value)
    compile_seconds = time.perf_counter() - began

    def run():
        out = func(*args)
        jax.block_until_ready(out)

    return run, {
        "compile_seconds": compile_seconds,
        "value_gap": abs(float(value) - reference),
        "threads": "XLA default",
    }


def hmmlearn_score(data, params, reference) -> tuple:
    """hmmlearn's log likelihood (no gradient); returns the timed call and its value gap."""
    from hmmlearn.hmm import CategoricalHMM

    model = CategoricalHMM(n_components=params["A"].shape[0], implementation="scaling")
    model.startprob_ = params["pi"].numpy()
    model.transmat_ = params["A"].numpy()
    model.emissionprob_ = params["B"].numpy()
    model.n_features = params["B"].shape[1]
    X = data.values[..., 0].long().numpy().reshape(-1, 1)
    lengths = data.lengths.numpy()
    value = model.score(X, lengths)
    return lambda: model.score(X, lengths), {"value_gap": abs(value - reference)}


# ----------------------------------------------------------------------------- 2. NUTS
def min_bulk_ess(draws: dict[str, np.ndarray]) -> float:
    """Min bulk ESS over every entry; draws are (chain, draw, ...)."""
    dataset = az.convert_to_dataset({k: np.asarray(v) for k, v in draws.items()})
    ess = az.ess(dataset, method="bulk")
    return float(min(float(ess[name].min()) for name in ess.data_vars))


def nuts_ours(hmm, data, seed, iterations: int = 300) -> dict:
    fit = hp.fit_nuts(
        hmm,
        data,
        chains=1,
        warmup=iterations,
        draws=iterations,
        seed=seed,
        progress=False,
        parallel=False,
    )
    draws = {k: v.numpy() for k, v in fit.draws().items()}
    seconds = float(fit.attrs["chain_seconds"][0])
    ess = min_bulk_ess(draws)
    stats = fit.idata.sample_stats
    return {
        "seconds": seconds,
        "min_bulk_ess": ess,
        "ess_per_second": ess / seconds,
        "divergences": int(stats["diverging"].sum()),
        "mean_leapfrog_steps": float(stats["n_steps"].mean()),
        "draws": draws,
    }


def numpyro_model(num_states: int, num_symbols: int):
    """NumPyro model: Dirichlet(1) priors, the forward algorithm as a ``lax.scan``."""
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as ndist
    from jax.scipy.special import logsumexp

    jax.config.update("jax_enable_x64", True)

    def model(symbols):
        pi = numpyro.sample("pi", ndist.Dirichlet(jnp.ones(num_states)))
        A = numpyro.sample("A", ndist.Dirichlet(jnp.ones((num_states, num_states))).to_event(1))
        B = numpyro.sample("B", ndist.Dirichlet(jnp.ones((num_states, num_symbols))).to_event(1))
        log_A = jnp.log(A)
        table = jnp.log(B).T[symbols]

        def step(alpha, emit):
            return logsumexp(alpha[:, :, None] + log_A[None], axis=1) + emit, None

        alpha, _ = jax.lax.scan(step, jnp.log(pi) + table[:, 0], jnp.swapaxes(table[:, 1:], 0, 1))
        numpyro.factor("log_likelihood", logsumexp(alpha, axis=-1).sum())

    return model


def numpyro_cost_line(
    model, symbols, max_tree_depth: int = 10, draws: tuple[int, int] = (5, 25)
) -> dict:
    """Fixed seconds per ``MCMC.run`` call and seconds per leapfrog step of NumPyro's NUTS.

    NumPyro re-traces and re-compiles its sampling loop on every ``run`` call, even on the
    same ``MCMC`` object with the same data (measured: ~5 s per call on the small workload,
    against ~1 ms per leapfrog step). Two run lengths (no adaptation, heuristic step size),
    each timed on its second call, give the line ``seconds = fixed + per_step * steps``.
    """
    import jax
    from numpyro.infer import MCMC, NUTS

    points = []
    for count in draws:
        kernel = NUTS(model, max_tree_depth=max_tree_depth, find_heuristic_step_size=True)
        mcmc = MCMC(kernel, num_warmup=0, num_samples=count, progress_bar=False)
        for seed in range(2):  # the first call compiles
            began = time.perf_counter()
            mcmc.run(jax.random.PRNGKey(seed), symbols, extra_fields=("diverging", "num_steps"))
            jax.block_until_ready(mcmc.get_samples())
            elapsed = time.perf_counter() - began
        steps = float(np.asarray(mcmc.get_extra_fields()["num_steps"]).sum())
        points.append((steps, elapsed))
    (steps_a, time_a), (steps_b, time_b) = points
    per_step = (time_b - time_a) / (steps_b - steps_a)
    return {
        "fixed_seconds_per_run": time_a - per_step * steps_a,
        "ms_per_leapfrog_step": 1e3 * per_step,
        "points": points,
    }


def nuts_numpyro(
    symbols: np.ndarray,
    num_states: int,
    num_symbols: int,
    seed: int,
    iterations: int = 300,
    rerun: bool = True,
) -> dict:
    """NumPyro NUTS. With ``rerun``, ``seconds`` is sampling time: a second run minus the
    fixed cost per run of :func:`numpyro_cost_line`; without, the first run's wall time.
    Raw times are kept."""
    import jax
    import jax.numpy as jnp
    import numpyro
    from numpyro.infer import MCMC, NUTS

    jax.config.update("jax_enable_x64", True)
    numpyro.set_host_device_count(1)
    model = numpyro_model(num_states, num_symbols)
    data = jnp.asarray(symbols)
    mcmc = MCMC(
        NUTS(model),
        num_warmup=iterations,
        num_samples=iterations,
        num_chains=1,
        progress_bar=False,
    )
    fields = ("diverging", "num_steps")
    began = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), data, extra_fields=fields)
    jax.block_until_ready(mcmc.get_samples())
    first = time.perf_counter() - began
    timed = first
    if rerun:
        began = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(seed + 1000), data, extra_fields=fields)
        jax.block_until_ready(mcmc.get_samples())
        timed = time.perf_counter() - began
    # A single long run (large workload) keeps its fixed cost, compile included: seconds
    # against the hour such a run takes. Measuring it there would cost two more long runs.
    overhead = (
        numpyro_cost_line(model, data, draws=(10, 300))["fixed_seconds_per_run"] if rerun else 0.0
    )
    seconds = timed - overhead
    samples = mcmc.get_samples(group_by_chain=True)
    draws = {k: np.asarray(v) for k, v in samples.items()}
    ess = min_bulk_ess(draws)
    extra = mcmc.get_extra_fields(group_by_chain=True)
    return {
        "seconds": seconds,
        "run_seconds": timed,
        "run_overhead_seconds": overhead,
        "first_run_seconds_with_compile": first,
        "min_bulk_ess": ess,
        "ess_per_second": ess / seconds,
        "divergences": int(np.asarray(extra["diverging"]).sum()),
        "mean_leapfrog_steps": float(np.asarray(extra["num_steps"]).mean()),
        "draws": draws,
    }


def nuts_pyro_discrete_hmm(symbols: torch.Tensor, num_states: int, num_symbols: int, seed: int):
    from pyro.infer import MCMC, NUTS

    dtype = torch.float64

    def model(symbols):
        pi = pyro.sample("pi", dist.Dirichlet(torch.ones(num_states, dtype=dtype)))
        A = pyro.sample(
            "A", dist.Dirichlet(torch.ones(num_states, num_states, dtype=dtype)).to_event(1)
        )
        B = pyro.sample(
            "B", dist.Dirichlet(torch.ones(num_states, num_symbols, dtype=dtype)).to_event(1)
        )
        trans = A.log().expand(symbols.shape[1], num_states, num_states).clone()
        trans[0] = pi.log().expand(num_states, num_states)
        with pyro.plate("sequences", symbols.shape[0]):
            pyro.sample(
                "y",
                dist.DiscreteHMM(
                    torch.zeros(num_states, dtype=dtype), trans, dist.Categorical(probs=B)
                ),
                obs=symbols,
            )

    pyro.set_rng_seed(seed)
    mcmc = MCMC(NUTS(model), num_samples=300, warmup_steps=300, num_chains=1, disable_progbar=True)
    began = time.perf_counter()
    mcmc.run(symbols)
    seconds = time.perf_counter() - began
    draws = {k: v.numpy() for k, v in mcmc.get_samples(group_by_chain=True).items()}
    ess = min_bulk_ess(draws)
    return {
        "seconds": seconds,
        "min_bulk_ess": ess,
        "ess_per_second": ess / seconds,
        "draws": draws,
    }


def leapfrog_probe(
    name: str, draws: int = 20, max_tree_depth: int = 5, numpyro_draws: tuple[int, int] = (3, 15)
) -> dict:
    """Milliseconds per leapfrog step inside each sampler's NUTS (short, capped runs).

    For workloads where a full NumPyro run takes hours. Both samplers start from a heuristic
    step size and run ``draws`` iterations without adaptation, trees capped at
    ``2**max_tree_depth - 1`` leapfrog steps (the cap changes the chain, not the cost of a
    step). hmm_pyro counts every potential evaluation (step-size search included); NumPyro's
    cost per step is the slope of :func:`numpyro_cost_line`.
    """
    from hmm_pyro.inference.potential import Potential

    hmm, data, params = workload(name)
    symbols = data.values[..., 0].long().numpy()
    num_states, num_symbols = params["B"].shape
    counter = {"calls": 0}
    original = Potential.numpy_value_and_gradient  # what our sampler calls

    def counting(self, point):
        counter["calls"] += 1
        return original(self, point)

    Potential.numpy_value_and_gradient = counting
    try:
        fit = hp.fit_nuts(
            hmm,
            data,
            chains=1,
            warmup=0,
            draws=draws,
            seed=0,
            max_tree_depth=max_tree_depth,
            progress=False,
            parallel=False,
        )
    finally:
        Potential.numpy_value_and_gradient = original
    seconds = float(fit.attrs["chain_seconds"][0])
    result = {
        "settings": {"draws": draws, "max_tree_depth": max_tree_depth},
        "hmm_pyro": {
            "seconds": seconds,
            "gradient_evaluations": counter["calls"],
            "ms_per_leapfrog_step": 1e3 * seconds / counter["calls"],
        },
    }
    try:
        import jax.numpy as jnp

        model = numpyro_model(num_states, num_symbols)
        result["numpyro"] = numpyro_cost_line(
            model, jnp.asarray(symbols), max_tree_depth, numpyro_draws
        )
        result["numpyro_over_hmm_pyro_per_step"] = (
            result["numpyro"]["ms_per_leapfrog_step"] / result["hmm_pyro"]["ms_per_leapfrog_step"]
        )
    except ImportError as error:
        result["numpyro"] = {"skipped": str(error)}
    return result


def aligned_means(draws: dict[str, np.ndarray], truth_B: np.ndarray) -> dict[str, np.ndarray]:
    """Posterior means and MC standard errors of B with rows matched to the truth."""
    from scipy.optimize import linear_sum_assignment

    B = draws["B"][0]  # one chain: (draw, K, V)
    cost = np.abs(truth_B[:, None, :] - B.mean(0)[None]).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    perm = cols[rows.argsort()]
    B = B[:, perm]
    dataset = az.convert_to_dataset({"B": B[None]})
    mcse = az.mcse(dataset, method="mean")["B"].values
    return {"mean": B.mean(0), "mcse": mcse}


def nuts_runs(
    name: str, repeats: int, with_pyro: bool, iterations: int = 300, with_numpyro: bool = True
) -> dict[str, list[dict]]:
    """NUTS runs per sampler (see :func:`nuts_summary`)."""
    hmm, data, params = workload(name)
    symbols = data.values[..., 0].long()
    num_states, num_symbols = params["B"].shape
    runs: dict[str, list[dict]] = {"hmm_pyro": [], "numpyro": [], "pyro DiscreteHMM": []}
    for seed in range(repeats):
        runs["hmm_pyro"].append(nuts_ours(hmm, data, seed, iterations))
        if with_numpyro:
            runs["numpyro"] += numpyro_runs(name, 1, iterations, first_seed=seed)
    if with_pyro:
        runs["pyro DiscreteHMM"].append(nuts_pyro_discrete_hmm(symbols, num_states, num_symbols, 0))
    return runs


def numpyro_runs(name: str, repeats: int, iterations: int, first_seed: int = 0) -> list[dict]:
    """NumPyro NUTS runs on a workload (one skipped entry if NumPyro is not installed)."""
    _, data, params = workload(name)
    symbols = data.values[..., 0].long().numpy()
    num_states, num_symbols = params["B"].shape
    try:
        return [
            nuts_numpyro(symbols, num_states, num_symbols, seed, iterations, rerun=name == "small")
            for seed in range(first_seed, first_seed + repeats)
        ]
    except ImportError as error:
        return [{"skipped": str(error)}]


def nuts_summary(name: str, runs: dict[str, list[dict]], iterations: int) -> dict:
    """Medians per sampler, ESS/s ratios, posterior agreement with NumPyro."""
    truth_B = workload(name)[2]["B"].numpy()
    summary: dict[str, dict] = {}
    for label, entries in runs.items():
        entries = [entry for entry in entries if "seconds" in entry]
        if not entries:
            continue
        summary[label] = {
            "runs": len(entries),
            "warmup_and_draws": iterations,
            "seconds_median": float(np.median([e["seconds"] for e in entries])),
            "min_bulk_ess_median": float(np.median([e["min_bulk_ess"] for e in entries])),
            "ess_per_second_median": float(np.median([e["ess_per_second"] for e in entries])),
            "ess_per_second_all": [round(e["ess_per_second"], 2) for e in entries],
            **{
                key: entries[0][key]
                for key in ("first_run_seconds_with_compile", "mean_leapfrog_steps")
                if key in entries[0]
            },
            "divergences": [e.get("divergences") for e in entries],
        }
        summary[label]["B_posterior"] = aligned_means(entries[0]["draws"], truth_B)
    ours = summary["hmm_pyro"]["ess_per_second_median"]
    for entry in summary.values():
        entry["hmm_pyro_ess_per_second_ratio"] = ours / entry["ess_per_second_median"]
    if "numpyro" in summary:
        a, b = summary["hmm_pyro"]["B_posterior"], summary["numpyro"]["B_posterior"]
        z = (a["mean"] - b["mean"]) / np.sqrt(a["mcse"] ** 2 + b["mcse"] ** 2)
        summary["posterior_agreement_vs_numpyro"] = {
            "max_abs_z": float(np.abs(z).max()),
            "fraction_abs_z_below_3": float((np.abs(z) < 3).mean()),
        }
    for entry in summary.values():
        if "B_posterior" in entry:
            entry["B_posterior"] = {
                k: np.round(v, 4).tolist() for k, v in entry["B_posterior"].items()
            }
    return summary


# ----------------------------------------------------------------------------- 3. MAP L-BFGS
def map_benchmark(repeats: int) -> dict:
    """``fit_map`` (L-BFGS) on the small workload, 1 and 4 restarts: median seconds."""
    hmm, data, _ = workload("small")
    result = {}
    for restarts in (1, 4):
        times = []
        for seed in range(repeats):
            began = time.perf_counter()
            fit = hp.fit_map(hmm, data, restarts=restarts, seed=seed, progress=False)
            times.append(time.perf_counter() - began)
        result[f"restarts={restarts}"] = {
            "seconds_median": float(np.median(times)),
            "converged": fit.attrs["converged"],
            "evaluations": fit.attrs["steps_run"],
        }
    return result


# ----------------------------------------------------------------------------- 4. threads
def thread_benchmark(repeats: int) -> dict:
    hmm, data, params = workload("large")
    result = {}
    log_pi, log_A = params["pi"].log(), params["A"].log()
    table = hmm.emission.log_likelihood_table({"B": params["B"]}, data)
    for torch_threads in (1, 2):
        for numba_threads in (1, 2):
            torch.set_num_threads(torch_threads)
            numba.set_num_threads(numba_threads)

            def run():
                kernels.forward_backward(log_pi, log_A, table, data.lengths)

            result[f"kernel large torch={torch_threads} numba={numba_threads}"] = median_time(
                run, repeats
            )
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    small_hmm, small_data, _ = workload("small")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        began = time.perf_counter()
        hp.fit_nuts(
            small_hmm,
            small_data,
            chains=1,
            warmup=100,
            draws=100,
            seed=0,
            progress=False,
            parallel=False,
        )
        result[f"nuts small 100+100 torch={threads}"] = time.perf_counter() - began
    torch.set_num_threads(1)
    began = time.perf_counter()
    hp.fit_nuts(
        small_hmm,
        small_data,
        chains=2,
        warmup=100,
        draws=100,
        seed=0,
        progress=False,
        parallel=True,
    )
    result["nuts small 2 chains x (100+100), 2 processes x 1 thread"] = time.perf_counter() - began
    began = time.perf_counter()
    hp.fit_nuts(
        small_hmm,
        small_data,
        chains=2,
        warmup=100,
        draws=100,
        seed=0,
        progress=False,
        parallel=False,
    )
    result["nuts small 2 chains x (100+100), sequential, 1 thread"] = time.perf_counter() - began
    for parallel in (None, True, False):
        began = time.perf_counter()
        fit = hp.fit_nuts(
            small_hmm,
            small_data,
            chains=4,
            warmup=300,
            draws=300,
            seed=0,
            progress=False,
            parallel=parallel,
        )
        chosen = "processes" if fit.attrs["parallel"] else "sequential"
        label = f"nuts small 4 chains x (300+300), parallel={parallel} ({chosen})"
        result[label] = time.perf_counter() - began
    return result


# ----------------------------------------------------------------------------- 5. memory
_MEMORY_SCRIPT = """
import resource, sys, torch, numpy as np
sys.path.insert(0, {root!r})
import hmm_pyro as hp
from benchmarks.speed import large_params
params = large_params()
hmm = hp.HMM(10, hp.Categorical(num_symbols=20))
data, _ = hp.simulate(hmm, params, [1000] * 1000, seed=0)
hmm.prepare_data(data)
import gc; gc.collect()
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # reset the peak-RSS counter (VmHWM)
before = status("VmRSS:")
hp.fit_map(hmm, data, restarts=1, steps=5, seed=0, progress=False)
after = status("VmHWM:")
print(before, after)
"""


def memory_benchmark() -> dict:
    output = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT.format(root=str(ROOT))],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    before, after = (int(value) * 1024 for value in output[-2:])
    table = 1000 * 1000 * 10 * 8  # one (N, T, K) float64 table
    return {
        "rss_before_fit_bytes": before,
        "peak_rss_bytes": after,
        "fit_increase_bytes": after - before,
        "one_table_bytes": table,
        "forward_backward_tables_bytes": 2 * table,
        "increase_over_forward_backward_tables": (after - before) / (2 * table),
    }


# ----------------------------------------------------------------------------- report
def versions() -> dict:
    found = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "numba": numba.__version__,
        "arviz": az.__version__,
        "hmm_pyro": hp.__version__,
    }
    for module in ("jax", "numpyro", "hmmlearn"):
        try:
            found[module] = __import__(module).__version__
        except ImportError:
            found[module] = None
    return found


def markdown(results: dict) -> str:
    lines = ["# Speed benchmark", "", f"Machine: {results['machine']}", ""]
    for name in ("small", "large"):
        lines += [
            f"## Log likelihood + gradient, {name} workload",
            "",
            "| implementation | median ms | x hmm_pyro numba | value gap | gradient gap |",
            "|---|---:|---:|---:|---:|",
        ]
        for label, entry in results["kernels"][name].items():
            if "seconds" in entry:
                gap = f"{entry['grad_gap']:.1e}" if "grad_gap" in entry else "-"
                lines.append(
                    f"| {label} | {entry['seconds'] * 1e3:.3f} | "
                    f"{entry['ratio_to_hmm_pyro']:.1f} | {entry['value_gap']:.1e} | {gap} |"
                )
        lines.append("")
    for name, entry in results["nuts"].items():
        lines += [
            f"## NUTS, 1 chain, {next(iter(entry.values()))['warmup_and_draws']} warm-up + "
            f"as many draws, {name} workload",
            "",
            "| sampler | runs | median s | median min bulk ESS | ESS/s | hmm_pyro ESS/s ratio |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for label, row in entry.items():
            if "seconds_median" in row:
                lines.append(
                    f"| {label} | {row['runs']} | {row['seconds_median']:.1f} | "
                    f"{row['min_bulk_ess_median']:.0f} | {row['ess_per_second_median']:.3g} | "
                    f"{row['hmm_pyro_ess_per_second_ratio']:.2f} |"
                )
        if "posterior_agreement_vs_numpyro" in entry:
            agreement = entry["posterior_agreement_vs_numpyro"]
            lines.append("")
            lines.append(
                f"B posterior means vs NumPyro: max |z| = {agreement['max_abs_z']:.2f}, "
                f"{agreement['fraction_abs_z_below_3']:.0%} of entries within 3 MC-SE."
            )
        lines.append("")
    probe = results.get("nuts_leapfrog_probe_large")
    if probe and "ms_per_leapfrog_step" in probe.get("numpyro", {}):
        settings = probe["settings"]
        lines += [
            "## NUTS cost per leapfrog step, large workload",
            "",
            f"{settings['draws']} draws without adaptation, trees capped at depth "
            f"{settings['max_tree_depth']}: hmm_pyro "
            f"{probe['hmm_pyro']['ms_per_leapfrog_step']:.1f} ms, NumPyro "
            f"{probe['numpyro']['ms_per_leapfrog_step']:.1f} ms per step "
            f"({probe['numpyro_over_hmm_pyro_per_step']:.1f}x). Projected NumPyro run with "
            f"hmm_pyro's number of steps: {probe['numpyro_projected_seconds']:.0f} s, "
            f"{probe['numpyro_projected_ess_per_second']:.3f} ESS/s (projection, not a run).",
            "",
        ]
    lines += ["## Kernels alone: gradient w.r.t. the (N, T, K) table", ""]
    for name, entries in results.get("table_kernels", {}).items():
        cells = ", ".join(
            f"{label} {entry['seconds'] * 1e3:.3f} ms"
            for label, entry in entries.items()
            if "seconds" in entry
        )
        lines.append(f"- {name}: {cells}")
    lines += ["", "## MAP L-BFGS (small workload)", ""]
    for label, row in results["map_lbfgs"].items():
        lines.append(
            f"- {label}: {row['seconds_median']:.2f} s (median), converged {row['converged']}"
        )
    lines += ["", "## Threads", ""]
    for label, seconds in results["threads"].items():
        lines.append(
            f"- {label}: {seconds * 1e3 if seconds < 1 else seconds:.2f} "
            f"{'ms' if seconds < 1 else 's'}"
        )
    memory = results.get("memory")
    if memory:
        lines += [
            "",
            "## Memory",
            "",
            f"Peak RSS increase of a MAP fit on 1000 x 1000, K=10: "
            f"{memory['fit_increase_bytes'] / 2**20:.0f} MiB = "
            f"{memory['increase_over_forward_backward_tables']:.2f} x the forward-backward "
            f"tables ({memory['forward_backward_tables_bytes'] / 2**20:.0f} MiB).",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats, small workload NUTS only"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speed.json"))
    parser.add_argument(
        "--skip-pyro-nuts",
        action="store_true",
        help="skip Pyro NUTS on DiscreteHMM (about a minute)",
    )
    parser.add_argument(
        "--nuts-repeats",
        type=int,
        default=None,
        help="NUTS runs per runner on the small workload (default 3; 1 with --quick)",
    )
    parser.add_argument(
        "--large-iterations",
        type=int,
        default=300,
        help="warm-up and draws per NUTS run on the large workload (NumPyro: ~0.13 s per "
        "gradient there, so 300 + 300 takes hours)",
    )
    parser.add_argument(
        "--numpyro-large",
        action="store_true",
        help="also run NumPyro's full NUTS on the large workload (hours at 300 + 300); "
        "otherwise its cost per leapfrog step is probed and its ESS/s projected",
    )
    parser.add_argument(
        "--large-nuts-repeats",
        type=int,
        default=1,
        help="NUTS runs per runner on the large workload (NumPyro takes ~10 min per run there)",
    )
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 7
    nuts_repeats = args.nuts_repeats or (1 if args.quick else 3)
    results = {
        "versions": versions(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()}",
        "settings": {
            "torch_threads": 1,
            "numba_threads": 1,
            "numba_threading_layer": numba.config.THREADING_LAYER,
        },
        "table_kernels": {
            name: table_kernel_benchmark(name, repeats) for name in ("small", "large")
        },
        "kernels": {name: kernel_benchmark(name, repeats) for name in ("small", "large")},
    }
    out = Path(args.out)

    def write() -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(out) as handle:
            handle.write(json.dumps(results, indent=2, default=float))
        with atomic_write(out.with_suffix(".md")) as handle:
            handle.write(markdown(results))

    small_runs = nuts_runs("small", nuts_repeats, not args.skip_pyro_nuts)
    results["nuts"] = {"small": nuts_summary("small", small_runs, 300)}
    iterations = args.large_iterations
    if not args.quick:
        large_runs = nuts_runs("large", args.large_nuts_repeats, False, iterations, False)
        results["nuts"]["large"] = nuts_summary("large", large_runs, iterations)
        probe = leapfrog_probe("large")
        ours = results["nuts"]["large"]["hmm_pyro"]
        if "ms_per_leapfrog_step" in probe.get("numpyro", {}):
            # Same algorithm on the same posterior: NumPyro assumed to need the leapfrog steps
            # hmm_pyro's run took, each at its own measured cost.
            cost = probe["numpyro_over_hmm_pyro_per_step"]
            probe["numpyro_projected_seconds"] = ours["seconds_median"] * cost
            probe["numpyro_projected_ess_per_second"] = ours["ess_per_second_median"] / cost
            probe["hmm_pyro_ess_per_second_ratio_projected"] = cost
        results["nuts_leapfrog_probe_large"] = probe
    results["map_lbfgs"] = map_benchmark(repeats)
    results["threads"] = thread_benchmark(repeats)
    results["memory"] = memory_benchmark()
    results["peak_rss_this_process_bytes"] = (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    write()
    if args.numpyro_large and not args.quick:  # last: hours; everything else is saved
        large_runs["numpyro"] = numpyro_runs("large", args.large_nuts_repeats, iterations)
        results["nuts"]["large"] = nuts_summary("large", large_runs, iterations)
        write()
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
