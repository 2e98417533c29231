"""JAX peers of ``benchmarks/speed_peers.py``, served by a worker process per precision.

JAX decides float64 (``jax_enable_x64``) once per process, so ``speed_peers.py`` starts this
module once for float32 and once for float64 and sends it requests, one JSON line each on
stdin; each answer is one JSON line on the original stdout (anything else JAX or NumPyro
print goes to stderr). Arrays travel through ``.npz`` files. Keeping the worker alive lets
its runs take turns with ours (a slow spell of the shared machine hits both) and keeps
compiled code across requests.

Peers at their best settings:

- kernels: dynamax's ``hmm_filter`` (the scaled forward algorithm) vmapped over sequences,
  and the log-space ``logsumexp`` ``lax.scan`` forward algorithm; both under
  ``jax.jit(jax.value_and_grad(...))``, gradient w.r.t. (log pi, log A, log B);
- NumPyro NUTS with ``jit_model_args=True`` and JAX's persistent compilation cache, so a
  run after the first neither re-traces the model nor re-compiles the sampling loop
  (measured on the small workload, shared 2-core machine: ~11 s fixed cost per
  ``MCMC.run`` of 3 + 3 iterations without the cache, ~0.5 s with it). The loop is compiled
  for a number of draws, so the first run of each model and length (seed 10**6) is not
  timed: its seconds are reported as ``first_run_seconds_with_compile``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._timing import interleaved_samples  # noqa: E402


def log_likelihoods(jax, jnp):
    """The two JAX forward algorithms: ``f(log_pi, log_A, log_B, symbols) -> sum log p``."""
    from dynamax.hidden_markov_model.inference import hmm_filter
    from jax.scipy.special import logsumexp

    def scaled(log_pi, log_A, log_B, symbols):
        pi, A = jnp.exp(log_pi), jnp.exp(log_A)
        table = log_B.T[symbols]  # (N, T, K)
        return jax.vmap(lambda ll: hmm_filter(pi, A, ll).marginal_loglik)(table).sum()

    def scan(log_pi, log_A, log_B, symbols):
        table = log_B.T[symbols]

        def step(alpha, emit):
            return logsumexp(alpha[:, :, None] + log_A[None], axis=1) + emit, None

        alpha, _ = jax.lax.scan(step, log_pi + table[:, 0], jnp.swapaxes(table[:, 1:], 0, 1))
        return logsumexp(alpha, axis=-1).sum()

    return {"scaled": scaled, "scan": scan}


class Worker:
    """Serves ``kernel``, ``nuts`` and ``probe`` requests in one precision."""

    def __init__(self, precision: str, cache_dir: str) -> None:
        import jax

        jax.config.update("jax_enable_x64", precision == "float64")
        jax.config.update("jax_compilation_cache_dir", cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        import jax.numpy as jnp

        self.jax, self.jnp = jax, jnp
        self.dtype = jnp.float64 if precision == "float64" else jnp.float32
        self.precision = precision
        self.forward = log_likelihoods(jax, jnp)
        self.samplers: dict[tuple, tuple] = {}
        self.data = None
        self.compiled: dict[str, tuple] = {}

    def ready(self) -> dict:
        """Answers once JAX is imported and configured (start-up is not timed alongside)."""
        return {"jax": self.jax.__version__, "devices": [str(d) for d in self.jax.devices()]}

    # ------------------------------------------------------------------------- kernels
    def kernel(self, inputs: str, grads_out: str, repeats: int) -> dict:
        """Value + gradient of both forward algorithms: compiled (and their value and
        gradients saved) on the first request for ``inputs``, then ``repeats`` timing samples
        each (:func:`~benchmarks._timing.interleaved_samples`)."""
        jax, jnp = self.jax, self.jnp
        if inputs not in self.compiled:
            arrays = np.load(inputs)
            args = [jnp.asarray(arrays[k], dtype=self.dtype) for k in ("log_pi", "log_A", "log_B")]
            args.append(jnp.asarray(arrays["symbols"]))
            facts, runs, saved = {}, {}, {}
            for name, func in self.forward.items():
                compiled = jax.jit(jax.value_and_grad(func, argnums=(0, 1, 2)))
                began = time.perf_counter()
                value, grads = jax.block_until_ready(compiled(*args))
                facts[name] = {
                    "compile_seconds": time.perf_counter() - began,
                    "value": float(value),
                }
                for index, grad in enumerate(grads):
                    saved[f"{name}:{index}"] = np.asarray(grad, dtype=np.float64)
                runs[name] = lambda compiled=compiled: jax.block_until_ready(compiled(*args))
            np.savez(grads_out, **saved)
            self.compiled[inputs] = (facts, runs)
        facts, runs = self.compiled[inputs]
        samples = interleaved_samples(runs, repeats)
        return {name: facts[name] | {"samples": samples[name]} for name in runs}

    # ------------------------------------------------------------------------- NUTS
    def model(self, kind: str, num_states: int, num_symbols: int):
        """Dirichlet(1) priors on pi, the rows of A and of B; the forward algorithm's log
        likelihood as a factor."""
        import numpyro
        import numpyro.distributions as ndist

        jnp, forward = self.jnp, self.forward[kind]
        ones = jnp.ones

        def model(symbols):
            pi = numpyro.sample("pi", ndist.Dirichlet(ones(num_states, dtype=self.dtype)))
            A = numpyro.sample(
                "A", ndist.Dirichlet(ones((num_states, num_states), dtype=self.dtype)).to_event(1)
            )
            B = numpyro.sample(
                "B",
                ndist.Dirichlet(ones((num_states, num_symbols), dtype=self.dtype)).to_event(1),
            )
            value = forward(jnp.log(pi), jnp.log(A), jnp.log(B), symbols)
            numpyro.factor("log_likelihood", value)

        return model

    def sampler(
        self, kind: str, num_states: int, num_symbols: int, warmup: int, draws: int,
        max_tree_depth: int = 10,
    ) -> tuple:  # fmt: skip
        """One ``MCMC`` per model and run length, compiled and timed on an untimed first run
        (its sampling loop is compiled for its number of draws, so the priming run is a full
        one); returns the sampler and that first run's seconds."""
        from numpyro.infer import MCMC, NUTS

        key = (kind, num_states, num_symbols, warmup, draws, max_tree_depth)
        if key not in self.samplers:
            kernel = NUTS(
                self.model(kind, num_states, num_symbols),
                max_tree_depth=max_tree_depth,
                # without warm-up (the probes), a step size of 1 diverges at the first step
                find_heuristic_step_size=warmup == 0,
            )
            mcmc = MCMC(
                kernel,
                num_warmup=warmup,
                num_samples=draws,
                num_chains=1,
                progress_bar=False,
                jit_model_args=True,
            )
            self.samplers[key] = (mcmc, self.run(mcmc, 10**6, self.data))
        return self.samplers[key]

    def run(self, mcmc, seed: int, symbols) -> float:
        jax = self.jax
        began = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(seed), symbols, extra_fields=("diverging", "num_steps"))
        jax.block_until_ready(mcmc.get_samples())
        return time.perf_counter() - began

    def load(self, symbols: str) -> None:
        self.data = self.jnp.asarray(np.load(symbols)["symbols"])

    def nuts(
        self, kind: str, symbols: str, num_states: int, num_symbols: int, seed: int,
        warmup: int, draws: int, draws_out: str,
    ) -> dict:  # fmt: skip
        self.load(symbols)
        mcmc, first = self.sampler(kind, num_states, num_symbols, warmup, draws)
        seconds = self.run(mcmc, seed, self.data)
        samples = mcmc.get_samples(group_by_chain=True)
        np.savez(draws_out, **{k: np.asarray(v, dtype=np.float64) for k, v in samples.items()})
        extra = mcmc.get_extra_fields(group_by_chain=True)
        steps = np.asarray(extra["num_steps"])
        return {
            "seconds": seconds,
            "gradient_evaluations": int(steps.sum()),
            "mean_leapfrog_steps": float(steps.mean()),
            "divergences": int(np.asarray(extra["diverging"]).sum()),
            "first_run_seconds_with_compile": first,
        }

    def probe(
        self, kind: str, symbols: str, num_states: int, num_symbols: int,
        counts: list[int], max_tree_depth: int,
    ) -> dict:  # fmt: skip
        """Seconds per leapfrog step: runs without warm-up (heuristic step size) of two
        lengths, each timed on its second call; the slope of seconds against leapfrog
        steps. Trees capped at ``2**max_tree_depth - 1`` steps (changes the chain, not the
        cost of a step)."""
        self.load(symbols)
        points = []
        for count in counts:
            mcmc, _ = self.sampler(kind, num_states, num_symbols, 0, count, max_tree_depth)
            seconds = self.run(mcmc, 7, self.data)
            steps = float(np.asarray(mcmc.get_extra_fields()["num_steps"]).sum())
            points.append((steps, seconds))
        (steps_a, time_a), (steps_b, time_b) = points
        per_step = (time_b - time_a) / (steps_b - steps_a)
        return {
            "ms_per_leapfrog_step": 1e3 * per_step,
            "fixed_seconds_per_run": time_a - per_step * steps_a,
            "points": points,
            "max_tree_depth": max_tree_depth,
        }


def main() -> int:
    precision, cache_dir = sys.argv[1], sys.argv[2]
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever else prints goes to stderr
    worker = Worker(precision, cache_dir)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"ok": getattr(worker, request["job"])(**request["args"])}
        except Exception as error:  # reported to the parent, which raises
            answer = {"error": f"{type(error).__name__}: {error}"}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
