"""Speed against peers at their best settings, in one run (issue 19, item 1).

Workloads: the small (K=3, V=5, 20 x 500) and large (K=10, V=20, 100 x 1000) categorical
workloads of ``benchmarks/speed.py``, flat Dirichlet priors.

1. Kernel value + gradient w.r.t. (log pi, log A, log B) over all sequences, inputs prepared
   once: hmm_pyro's categorical numba kernel (float64: it computes in float64 whatever the
   input dtype, so it has no float32 row) on 1 thread and on numba's default 2 threads (the
   JAX rows run with XLA's default threads; torch and the rest of this script 1 thread),
   Pyro ``DiscreteHMM`` (autograd; eager and ``torch.jit.trace``, the tracing Pyro's
   ``jit_compile=True`` applies; float64 and float32), hmmlearn ``score`` (value only,
   float64, ``implementation="scaling"``), and in
   a JAX worker process per precision (``_jax_peers.py``) dynamax's ``hmm_filter`` (scaled
   forward, vmapped over sequences) and the log-space ``logsumexp`` ``lax.scan``, both
   ``jax.jit(jax.value_and_grad(...))``, float32 and float64. Torch-based rows take turns
   sample by sample; hmmlearn is timed on its own after them; the JAX workers take turns
   with ours (on one thread and on numba's default threads) sample by sample: each JAX row
   has two ratios, against those samples of ours on one thread and on the default threads
   (XLA runs on its default threads too: defaults against defaults). Values and
   (row-normalised) gradients are checked against ours.
2. NUTS, 1 chain, warm-up = draws = ``--draws``, seeds 0..``--seeds``-1, taking turns seed by
   seed: hmm_pyro (float64, ``fit_nuts`` defaults: numba on the available cores), NumPyro
   (``jit_model_args=True``, persistent compilation cache, the first run of each model not
   timed) with the ``logsumexp`` scan and with dynamax's
   scaled forward as the likelihood, in float32 and float64, and Stan (PyStan 3,
   ``hmm_marginal``, float64) when it is installed. All at their defaults: target
   acceptance 0.8, maximum tree depth 10, diagonal mass matrix. Per run: wall seconds, min
   bulk ESS over every entry of pi, A, B, ESS/s, leapfrog steps of the draws
   (``num_steps`` in NumPyro, ``n_leapfrog__`` in Stan, potential evaluations in hmm_pyro) and
   ESS per gradient evaluation; per peer the ratio ours/peer for each seed, its range and
   median; posterior means of the pooled seeds compared with ours in MC-SE units. On the
   large workload the peers' full runs only with ``--peers-large``; always their cost per
   leapfrog step (short capped runs, the slope of time against steps).

Needs the peer environment: ``make bench-env`` (``.venv-bench``). Run:
``.venv-bench/bin/python benchmarks/speed_peers.py [--draws 1000] [--seeds 3]``; writes
``benchmarks/results/speed_peers.json`` and a Markdown table next to it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numba
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import arviz as az  # noqa: E402
import pyro  # noqa: E402
import pyro.distributions as dist  # noqa: E402
import torch  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

import hmm_pyro as hp  # noqa: E402
from benchmarks._timing import interleaved_samples  # noqa: E402
from benchmarks.speed import hmmlearn_score, min_bulk_ess, nuts_ours, workload  # noqa: E402
from hmm_pyro._io import atomic_write  # noqa: E402
from hmm_pyro.inference.potential import Potential  # noqa: E402
from hmm_pyro.kernels.categorical import SymbolLanes, categorical_log_likelihood  # noqa: E402

OURS = "hmm_pyro numba"
OURS_TWO_THREADS = "hmm_pyro numba, 2 threads"
NUMPYRO_MODELS = {"scan": "logsumexp lax.scan", "scaled": "dynamax hmm_filter (scaled forward)"}
STAN_CODE = """
data {
  int<lower=1> N; int<lower=1> T; int<lower=1> K; int<lower=1> V;
  array[N, T] int<lower=1, upper=V> y;
}
parameters { simplex[K] pi; array[K] simplex[K] A; array[K] simplex[V] B; }
model {
  matrix[K, K] Gamma;
  matrix[K, V] log_B;
  for (k in 1:K) {
    Gamma[k] = A[k]';
    log_B[k] = log(B[k])';
  }
  for (n in 1:N) target += hmm_marginal(log_B[:, y[n]], Gamma, pi);
}
"""
"""Flat Dirichlet priors are Stan's default on a simplex; ``hmm_marginal`` is Stan's
forward algorithm (its ``Gamma`` rows are the transition rows)."""


# ----------------------------------------------------------------------------- JAX worker
class JaxWorker:
    """A ``_jax_peers.py`` process in one precision, answering one request at a time."""

    def __init__(self, precision: str, cache_dir: str) -> None:
        self.precision = precision
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("_jax_peers.py")), precision, cache_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def __call__(self, job: str, **args) -> dict:
        self.process.stdin.write(json.dumps({"job": job, "args": args}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the JAX {self.precision} worker exited (see stderr)")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"JAX {self.precision} worker, {job}: {answer['error']}")
        return answer["ok"]

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


# ----------------------------------------------------------------------------- 1. kernels
def tangent(grads, probs):
    """Gradients chained through the row normalisation (``DiscreteHMM`` normalises its
    logits; a no-op for gradients that already are): ``g - sum(g) * p``."""
    return [g - g.sum(-1, keepdim=True) * p for g, p in zip(grads, probs, strict=True)]


def discrete_hmm_log_prob(symbols: torch.Tensor):
    """``f(log_pi, log_A, log_B)``: Pyro ``DiscreteHMM``'s summed log probability.

    Pyro applies one transition before the first observation; a first time-varying
    transition whose rows are all pi makes it the standard model.
    """

    def log_prob(log_pi, log_A, log_B):
        trans = log_A.expand(symbols.shape[1], *log_A.shape).clone()
        trans[0] = log_pi.expand_as(log_A)
        model = dist.DiscreteHMM(torch.zeros_like(log_pi), trans, dist.Categorical(logits=log_B))
        return model.log_prob(symbols).sum()

    return log_prob


def summarise_samples(samples: list[float]) -> dict:
    return {
        "seconds": float(np.median(samples)),
        "seconds_min": float(np.min(samples)),
        "seconds_max": float(np.max(samples)),
    }


def kernel_benchmark(name: str, repeats: int, workers: dict, scratch: Path) -> dict:
    _, data, params = workload(name)
    symbols = data.values[..., 0].long()
    logs64 = [params[k].log() for k in ("pi", "A", "B")]
    probs = [params[k] for k in ("pi", "A", "B")]
    prepared = SymbolLanes(symbols, logs64[2].shape[1], data.lengths)

    def ours():
        inputs = [t.clone().requires_grad_() for t in logs64]
        value = categorical_log_likelihood(*inputs, prepared, backend="numba").sum()
        return float(value.detach()), torch.autograd.grad(value, inputs)

    def pyro_run(dtype: torch.dtype, jit: bool):
        log_prob = discrete_hmm_log_prob(symbols)
        base = [t.to(dtype) for t in logs64]
        if jit:
            example = tuple(t.clone().requires_grad_() for t in base)
            with warnings.catch_warnings():  # shapes are fixed: the traced branches hold
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                log_prob = torch.jit.trace(log_prob, example, check_trace=False)

        def run():
            inputs = [t.clone().requires_grad_() for t in base]
            value = log_prob(*inputs)
            return float(value.detach()), torch.autograd.grad(value, inputs)

        return run

    def ours_two_threads():
        numba.set_num_threads(2)  # numba's default on 2 cores (this script sets 1 for the rest)
        try:
            return ours()
        finally:
            numba.set_num_threads(1)

    rows = {
        OURS: {"precision": "float64", "settings": "SymbolLanes prepared once, 1 thread"},
        OURS_TWO_THREADS: {
            "precision": "float64",
            "settings": "SymbolLanes prepared once, numba threads 2 (numba's default here): a "
            "batch with enough work sweeps two halves of its lanes on two threads",
        },
    }
    runs = {OURS: ours, OURS_TWO_THREADS: ours_two_threads}
    for dtype, precision in ((torch.float64, "float64"), (torch.float32, "float32")):
        for jit, how in ((False, "eager"), (True, "torch.jit.trace")):
            label = f"pyro DiscreteHMM {precision}, {how}"
            rows[label] = {"precision": precision, "settings": f"autograd, {how}, 1 thread"}
            runs[label] = pyro_run(dtype, jit)
    reference, reference_grads = ours()
    reference_grads = tangent(reference_grads, probs)
    for label, func in runs.items():
        value, grads = func()
        pairs = zip(tangent([g.double() for g in grads], probs), reference_grads, strict=True)
        rows[label]["value_gap"] = abs(value - reference)
        rows[label]["grad_gap"] = max(float((g - r).abs().max()) for g, r in pairs)
    for label, samples in interleaved_samples(runs, repeats).items():
        rows[label].update(summarise_samples(samples))
    # Timed on their own, after: with JAX taking turns, ours and DiscreteHMM ran ~1.5x
    # slower (benchmarks/speed.py), most likely XLA's worker threads staying busy.
    run, facts = hmmlearn_score(data, params, reference)
    rows["hmmlearn score (value only)"] = {
        "precision": "float64",
        "settings": "CategoricalHMM implementation='scaling', no gradient",
        **facts,
        **summarise_samples(interleaved_samples({"run": run}, repeats)["run"]),
    }
    inputs = scratch / f"kernel_{name}.npz"
    np.savez(
        inputs,
        log_pi=logs64[0].numpy(),
        log_A=logs64[1].numpy(),
        log_B=logs64[2].numpy(),
        symbols=symbols.numpy().astype(np.int32),
    )
    # The JAX workers take turns with ours, one timing sample at a time: each JAX row's
    # ratio is against ours timed in the same turns ("ours_seconds_adjacent").
    # Ours is timed beside them both ways: one thread, and numba's default threads (XLA, too,
    # runs on its default threads, so "x ours, default threads" is defaults against defaults).
    answers = {}
    adjacent = {precision: {OURS: [], OURS_TWO_THREADS: []} for precision in workers}
    for _ in range(repeats):
        for precision, worker in workers.items():
            turns = interleaved_samples({OURS: ours, OURS_TWO_THREADS: ours_two_threads}, 1)
            for label, samples in turns.items():
                adjacent[precision][label] += samples
            grads_out = scratch / f"grads_{name}_{precision}.npz"
            for kind, answer in worker(
                "kernel", inputs=str(inputs), grads_out=str(grads_out), repeats=1
            ).items():
                entry = answers.setdefault((precision, kind), answer | {"samples": []})
                entry["samples"] += answer["samples"]
    for (precision, kind), answer in answers.items():
        saved = np.load(scratch / f"grads_{name}_{precision}.npz")
        grads = [torch.as_tensor(saved[f"{kind}:{i}"]) for i in range(3)]
        pairs = zip(tangent(grads, probs), reference_grads, strict=True)
        rows[f"jax {NUMPYRO_MODELS[kind]} {precision}"] = {
            "precision": precision,
            "settings": "jit(value_and_grad), vmapped over sequences"
            if kind == "scaled"
            else "jit(value_and_grad), batched lax.scan",
            "threads": "XLA default",
            "compile_seconds": answer["compile_seconds"],
            "value_gap": abs(answer["value"] - reference),
            "grad_gap": max(float((g - r).abs().max()) for g, r in pairs),
            **summarise_samples(answer["samples"]),
            "ours_seconds_adjacent": float(np.median(adjacent[precision][OURS])),
            "ours_two_threads_seconds_adjacent": float(
                np.median(adjacent[precision][OURS_TWO_THREADS])
            ),
        }
    base, base_two = rows[OURS]["seconds"], rows[OURS_TWO_THREADS]["seconds"]
    for row in rows.values():
        row["x_ours"] = row["seconds"] / row.get("ours_seconds_adjacent", base)
        row["x_ours_two_threads"] = row["seconds"] / row.get(
            "ours_two_threads_seconds_adjacent", base_two
        )
    return rows


# ----------------------------------------------------------------------------- 2. NUTS
def counting_potential_calls():
    """Patch ``Potential.numpy_value_and_gradient`` (what our sampler calls) to count calls;
    returns the counter and the undo."""
    counter = {"calls": 0}
    original = Potential.numpy_value_and_gradient

    def counting(self, point):
        counter["calls"] += 1
        return original(self, point)

    Potential.numpy_value_and_gradient = counting

    def undo() -> None:
        Potential.numpy_value_and_gradient = original

    return counter, undo


def nuts_hmm_pyro(name: str, seed: int, iterations: int) -> dict:
    """Our NUTS (``fit_nuts``, 1 chain, float64), counting every potential evaluation."""
    hmm, data, _ = workload(name)
    counter, undo = counting_potential_calls()
    try:
        run = nuts_ours(hmm, data, seed, iterations)
    finally:
        undo()
    run["gradient_evaluations"] = round(run["mean_leapfrog_steps"] * iterations)
    run["ms_per_gradient_all_evaluations"] = 1e3 * run["seconds"] / counter["calls"]
    return finish(run)


def probe_hmm_pyro(name: str, draws: int = 20, max_tree_depth: int = 5) -> dict:
    """Milliseconds per potential evaluation inside our NUTS: a short run without warm-up,
    trees capped at ``2**max_tree_depth - 1`` steps (the step-size search included)."""
    hmm, data, _ = workload(name)
    counter, undo = counting_potential_calls()
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
        undo()
    seconds = float(fit.attrs["chain_seconds"][0])
    return {
        "ms_per_leapfrog_step": 1e3 * seconds / counter["calls"],
        "evaluations": counter["calls"],
        "how": f"{draws} draws, no warm-up, trees capped at depth {max_tree_depth}: seconds "
        "over potential evaluations",
    }


def nuts_numpyro(
    worker: JaxWorker, kind: str, name: str, seed: int, iterations: int, scratch: Path
) -> dict:
    _, data, params = workload(name)
    path = scratch / f"symbols_{name}.npz"
    if not path.exists():
        np.savez(path, symbols=data.values[..., 0].long().numpy().astype(np.int32))
    out = scratch / f"draws_{name}_{kind}_{worker.precision}_{seed}.npz"
    run = worker(
        "nuts",
        kind=kind,
        symbols=str(path),
        num_states=params["B"].shape[0],
        num_symbols=params["B"].shape[1],
        seed=seed,
        warmup=iterations,
        draws=iterations,
        draws_out=str(out),
    )
    run["draws"] = dict(np.load(out))
    return finish(run)


def finish(run: dict) -> dict:
    run["min_bulk_ess"] = min_bulk_ess(run["draws"])
    run["ess_per_second"] = run["min_bulk_ess"] / run["seconds"]
    run["ess_per_gradient"] = run["min_bulk_ess"] / run["gradient_evaluations"]
    return run


def stan_status() -> str | None:
    """None when PyStan imports, else why not."""
    try:
        import stan  # noqa: F401
    except Exception as error:  # pkg_resources, httpstan, ...
        return f"PyStan not usable: {type(error).__name__}: {error}"
    return None


def nuts_stan(name: str, seed: int, iterations: int) -> dict:
    import stan

    _, data, params = workload(name)
    symbols = data.values[..., 0].long().numpy()
    num_states, num_symbols = params["B"].shape
    began = time.perf_counter()
    posterior = stan.build(
        STAN_CODE,
        data={
            "N": symbols.shape[0],
            "T": symbols.shape[1],
            "K": num_states,
            "V": num_symbols,
            "y": (symbols + 1).tolist(),
        },
        random_seed=seed,
    )
    build = time.perf_counter() - began
    began = time.perf_counter()
    fit = posterior.sample(num_chains=1, num_warmup=iterations, num_samples=iterations)
    seconds = time.perf_counter() - began
    frame = fit.to_frame()
    draws = {
        "pi": np.moveaxis(fit["pi"], -1, 0)[None],
        "A": np.moveaxis(fit["A"], -1, 0)[None],
        "B": np.moveaxis(fit["B"], -1, 0)[None],
    }
    steps = frame["n_leapfrog__"].to_numpy()
    return finish(
        {
            "seconds": seconds,
            "build_seconds_cached_compile": build,
            "gradient_evaluations": int(steps.sum()),
            "mean_leapfrog_steps": float(steps.mean()),
            "divergences": int(frame["divergent__"].sum()),
            "draws": draws,
        }
    )


def aligned(draws: dict, truth_B: np.ndarray) -> dict[str, np.ndarray]:
    """One chain's (1, D, ...) draws with states relabelled to match the true B rows."""
    cost = np.abs(truth_B[:, None, :] - draws["B"][0].mean(0)[None]).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    perm = cols[rows.argsort()]
    return {
        "pi": draws["pi"][:, :, perm],
        "A": draws["A"][:, :, perm][:, :, :, perm],
        "B": draws["B"][:, :, perm],
    }


def pooled(runs: list[dict], truth_B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and MC-SEs of every entry of pi, A, B, the seeds' chains pooled."""
    chains = [aligned(run["draws"], truth_B) for run in runs]
    stacked = {k: np.concatenate([c[k] for c in chains]) for k in ("pi", "A", "B")}
    dataset = az.convert_to_dataset(stacked)
    mcse = az.mcse(dataset, method="mean")
    means = np.concatenate([stacked[k].mean((0, 1)).ravel() for k in stacked])
    errors = np.concatenate([mcse[k].values.ravel() for k in stacked])
    return means, errors


def agreement(ours: list[dict], peer: list[dict], truth_B: np.ndarray) -> dict:
    mean_a, se_a = pooled(ours, truth_B)
    mean_b, se_b = pooled(peer, truth_B)
    z = (mean_a - mean_b) / np.sqrt(se_a**2 + se_b**2)
    return {
        "max_abs_z": float(np.abs(z).max()),
        "entries": int(z.size),
        "fraction_abs_z_below_3": float((np.abs(z) < 3).mean()),
    }


def compare(ours: list[dict], peer: list[dict]) -> dict:
    """Per-seed ratios ours/peer of ESS/s and ESS per gradient; range and median."""
    out = {}
    for key in ("ess_per_second", "ess_per_gradient"):
        ratios = [a[key] / b[key] for a, b in zip(ours, peer, strict=True)]
        out[key] = {
            "per_seed": [round(r, 3) for r in ratios],
            "min": min(ratios),
            "max": max(ratios),
            "median": float(np.median(ratios)),
        }
    return out


RUN_KEYS = (
    "seconds",
    "min_bulk_ess",
    "ess_per_second",
    "gradient_evaluations",
    "ess_per_gradient",
    "mean_leapfrog_steps",
    "divergences",
    "first_run_seconds_with_compile",
    "ms_per_gradient_all_evaluations",
    "build_seconds_cached_compile",
)


def nuts_benchmark(
    name: str, seeds: int, iterations: int, workers: dict, configs: list, stan: bool, scratch
) -> dict:
    """Every sampler seed by seed, taking turns; ratios and agreement against ours."""
    samplers: dict[str, dict] = {
        OURS: {
            "precision": "float64",
            "settings": "fit_nuts, chains=1, defaults (numba on the available cores)",
            "runs": [],
        }
    }
    for precision, kind in configs:
        samplers[f"numpyro {NUMPYRO_MODELS[kind]} {precision}"] = {
            "precision": precision,
            "settings": "jit_model_args=True, persistent compilation cache, XLA threads",
            "runs": [],
            "job": (precision, kind),
        }
    if stan:
        samplers["stan hmm_marginal (PyStan 3)"] = {
            "precision": "float64",
            "settings": "PyStan 3 defaults (diag_e, adapt_delta 0.8), 1 chain",
            "runs": [],
            "job": "stan",
        }
    for seed in range(seeds):
        for label, entry in samplers.items():
            job = entry.get("job")
            if job is None:
                run = nuts_hmm_pyro(name, seed, iterations)
            elif job == "stan":
                run = nuts_stan(name, seed, iterations)
            else:
                run = nuts_numpyro(workers[job[0]], job[1], name, seed, iterations, scratch)
            entry["runs"].append(run)
            print(f"{name} seed {seed} {label}: {run['ess_per_second']:.2f} ESS/s", flush=True)
    truth_B = workload(name)[2]["B"].numpy()
    ours = samplers[OURS]["runs"]
    result = {"warmup_and_draws": iterations, "seeds": seeds, "samplers": {}}
    for label, entry in samplers.items():
        runs = entry.pop("runs")
        entry.pop("job", None)
        entry["per_seed"] = [
            {k: run[k] for k in RUN_KEYS if k in run} | {"seed": seed}
            for seed, run in enumerate(runs)
        ]
        entry["ess_per_second_median"] = float(np.median([r["ess_per_second"] for r in runs]))
        entry["ess_per_gradient_median"] = float(np.median([r["ess_per_gradient"] for r in runs]))
        if label != OURS:
            entry["ours_over_peer"] = compare(ours, runs)
            entry["posterior_means_vs_ours"] = agreement(ours, runs, truth_B)
        result["samplers"][label] = entry
    return result


def leapfrog_costs(name: str, workers: dict, configs: list, scratch: Path) -> dict:
    """Milliseconds per leapfrog step inside NumPyro's NUTS (short capped runs)."""
    _, data, params = workload(name)
    path = scratch / f"symbols_{name}.npz"
    np.savez(path, symbols=data.values[..., 0].long().numpy().astype(np.int32))
    out = {}
    for precision, kind in configs:
        out[f"numpyro {NUMPYRO_MODELS[kind]} {precision}"] = workers[precision](
            "probe",
            kind=kind,
            symbols=str(path),
            num_states=params["B"].shape[0],
            num_symbols=params["B"].shape[1],
            counts=[4, 20],
            max_tree_depth=5,
        ) | {"how": "trees capped at depth 5, no warm-up: slope of seconds against steps"}
    return out


# ----------------------------------------------------------------------------- report
def metadata(argv: list[str]) -> dict:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=ROOT, check=False
        ).stdout.strip()

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    versions |= {"pyro": pyro.__version__, "hmm_pyro": hp.__version__}
    for module in ("jax", "jaxlib", "numpyro", "dynamax", "hmmlearn", "arviz", "stan", "httpstan"):
        try:
            from importlib.metadata import version

            versions[module] = version({"stan": "pystan"}.get(module, module))
        except Exception:
            versions[module] = None
    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "command": " ".join(["python", "benchmarks/speed_peers.py", *argv]),
        "started_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared",
        "load_average_at_start": os.getloadavg(),
        "versions": versions,
    }


def markdown(results: dict) -> str:
    meta = results["metadata"]
    lines = [
        "# Speed against peers at their best",
        "",
        f"Commit {meta['commit'][:10]}{' (with uncommitted changes)' if meta['uncommitted_changes'] else ''}; "  # noqa: E501
        f"`{meta['command']}`; {meta['machine']}; load average {meta['load_average_at_start']} "
        f"at start, {meta.get('load_average_at_end')} at end.",
        "",
    ]
    for name, rows in results.get("kernels", {}).items():
        lines += [
            f"## Log likelihood + gradient, {name} workload",
            "",
            "| implementation | precision | settings | median ms (min-max) | x ours, 1 thread | "
            "x ours, default threads | value gap | gradient gap |",
            "|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for label, row in rows.items():
            gap = f"{row['grad_gap']:.1e}" if "grad_gap" in row else "-"
            lines.append(
                f"| {label} | {row['precision']} | {row['settings']} | "
                f"{row['seconds'] * 1e3:.3f} ({row['seconds_min'] * 1e3:.3f}-"
                f"{row['seconds_max'] * 1e3:.3f}) | {row['x_ours']:.1f} | "
                f"{row.get('x_ours_two_threads', float('nan')):.1f} | "
                f"{row['value_gap']:.1e} | {gap} |"
            )
        lines.append("")
    for name, entry in results.get("nuts", {}).items():
        lines += [
            f"## NUTS, 1 chain, {entry['warmup_and_draws']} warm-up + as many draws, {name} "
            f"workload, seeds 0-{entry['seeds'] - 1}",
            "",
            "| sampler | precision | ESS/s per seed | ours/peer ESS/s per seed (range) | "
            "ESS per gradient per seed | ours/peer ESS/gradient (range) | max abs z of means |",
            "|---|---|---|---|---|---|---:|",
        ]
        for label, row in entry["samplers"].items():
            ess_s = ", ".join(f"{r['ess_per_second']:.3g}" for r in row["per_seed"])
            ess_g = ", ".join(f"{r['ess_per_gradient']:.4f}" for r in row["per_seed"])
            cells = ["-", "-", "-"]
            if "ours_over_peer" in row:
                ratio = row["ours_over_peer"]
                cells = [
                    f"{', '.join(f'{x:.2f}' for x in ratio[key]['per_seed'])} "
                    f"({ratio[key]['min']:.2f}-{ratio[key]['max']:.2f})"
                    for key in ("ess_per_second", "ess_per_gradient")
                ]
                z = row["posterior_means_vs_ours"]
                cells.append(f"{z['max_abs_z']:.2f} ({z['entries']} entries)")
            lines.append(
                f"| {label} | {row['precision']} | {ess_s} | {cells[0]} | {ess_g} | "
                f"{cells[1]} | {cells[2]} |"
            )
        lines.append("")
    for name, probes in results.get("leapfrog_cost", {}).items():
        lines += [f"## NUTS cost per leapfrog step, {name} workload", ""]
        for label, probe in probes.items():
            lines.append(
                f"- {label}: {probe['ms_per_leapfrog_step']:.2f} ms per step ({probe['how']})"
            )
        lines.append("")
    for note in results.get("notes", []):
        lines.append(f"- {note}")
    return "\n".join(lines) + "\n"


def parse_configs(text: str) -> list[tuple[str, str]]:
    configs = []
    for item in text.split(","):
        precision, _, kind = item.partition(":")
        if precision not in ("float32", "float64") or kind not in NUMPYRO_MODELS:
            raise SystemExit(f"expected precision:model items (float32:scan), got {item!r}")
        configs.append((precision, kind))
    return configs


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=1000, help="warm-up and draws, small")
    parser.add_argument("--seeds", type=int, default=3, help="NUTS seeds per sampler, small")
    parser.add_argument("--large-draws", type=int, default=300, help="warm-up and draws, large")
    parser.add_argument("--large-seeds", type=int, default=3, help="NUTS seeds, large")
    parser.add_argument("--repeats", type=int, default=7, help="timing samples per kernel")
    parser.add_argument(
        "--numpyro",
        default="float32:scan,float32:scaled,float64:scaled",
        help="NumPyro configurations precision:model, model scan or scaled",
    )
    parser.add_argument(
        "--probe",
        default="float32:scaled,float32:scan,float64:scaled",
        help="NumPyro configurations whose cost per leapfrog step is probed on large",
    )
    parser.add_argument(
        "--peers-large",
        action="store_true",
        help="full NumPyro and Stan NUTS runs on the large workload (hours); otherwise "
        "NumPyro's cost per leapfrog step there",
    )
    parser.add_argument("--skip-kernels", action="store_true", help="no kernel timings")
    parser.add_argument("--skip-small-nuts", action="store_true", help="no NUTS on small")
    parser.add_argument(
        "--skip-large-nuts",
        action="store_true",
        help="no NUTS runs on large (the costs per leapfrog step are still measured)",
    )
    parser.add_argument("--skip-stan", action="store_true", help="no Stan runs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "speed_peers.json"))
    args = parser.parse_args(argv)
    configs = parse_configs(args.numpyro)
    results: dict = {"metadata": metadata(argv), "notes": []}
    stan_problem = None if not args.skip_stan else "skipped (--skip-stan)"
    stan_problem = stan_problem or stan_status()
    results["notes"].append(
        "Stan: CmdStan (cmdstanpy.install_cmdstan) cannot be installed here: it downloads "
        "from GitHub, which this machine cannot reach; PyStan 3 (httpstan wheel from PyPI, "
        "Stan bundled) is used instead" + (f" -- {stan_problem}" if stan_problem else ".")
    )
    results["notes"].append(
        "hmm_pyro's kernel computes in float64 whatever the input dtype: no float32 row."
    )
    out = Path(args.out)

    def write() -> None:
        results["metadata"]["load_average_at_end"] = os.getloadavg()
        results["metadata"]["finished_utc"] = datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(out) as handle:
            handle.write(json.dumps(results, indent=2, default=float))
        with atomic_write(out.with_suffix(".md")) as handle:
            handle.write(markdown(results))

    with tempfile.TemporaryDirectory(prefix="speed_peers_") as scratch:
        scratch = Path(scratch)
        cache = str(scratch / "jax_cache")
        workers = {p: JaxWorker(p, cache) for p in ("float32", "float64")}
        try:
            # Their start-up (seconds of imports) must not overlap the first timings.
            results["metadata"]["jax_workers"] = {p: w("ready") for p, w in workers.items()}
            if not args.skip_kernels:
                results["kernels"] = {
                    name: kernel_benchmark(name, args.repeats, workers, scratch)
                    for name in ("small", "large")
                }
                write()
            stan = stan_problem is None
            results["nuts"] = {}
            if not args.skip_small_nuts:
                results["nuts"]["small"] = nuts_benchmark(
                    "small", args.seeds, args.draws, workers, configs, stan, scratch
                )
                write()
            if not args.skip_large_nuts:
                peers = configs if args.peers_large else []
                results["nuts"]["large"] = nuts_benchmark(
                    "large",
                    args.large_seeds,
                    args.large_draws,
                    workers,
                    peers,
                    stan and args.peers_large,
                    scratch,
                )
                write()
            probes = results["leapfrog_cost"] = {"large": {OURS: probe_hmm_pyro("large")}}
            write()
            probes["large"] |= leapfrog_costs("large", workers, parse_configs(args.probe), scratch)
        finally:
            for worker in workers.values():
                worker.close()
    write()
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
