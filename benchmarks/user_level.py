"""User-level value + gradient against the kernel alone and Pyro's ``DiscreteHMM``.

What a user writes in a loop: ``hmm.log_likelihood(params, data).sum().backward()`` with the
parameters as leaf tensors that require gradients. Routes, timed in one run, taking turns:

(a) the kernel alone, data prepared once: categorical,
    :func:`hmm_pyro.kernels.categorical_log_likelihood` on leaf ``log pi``, ``log A``,
    ``log B`` with :class:`~hmm_pyro.kernels.SymbolLanes` built once
    (the ``hmm_pyro numba`` row of ``benchmarks/speed.py``); Gaussian and Poisson,
    :func:`hmm_pyro.kernels.log_likelihood` on leaf ``log pi``, ``log A`` and a leaf
    ``(N, T, K)`` table computed once (their emission densities are not in it);
(a2) Gaussian and Poisson only: the same kernel with the table computed from the parameters
    on every call (the emission family's ``log_likelihood_table``), no validation;
(b) ``hmm.log_likelihood(params, data)`` then ``.sum().backward()``, ``data`` a
    :class:`~hmm_pyro.Sequences` built once;
(c) the same with ``data`` a NumPy array (nothing can be cached on it: each call builds and
    checks its ``Sequences``; passing the same array is passing a fresh one);
(d) Pyro's ``DiscreteHMM.log_prob`` then backward, built as ``benchmarks/speed.py`` builds it
    (a first time-varying transition whose rows are ``pi``), gradients w.r.t. the same
    leaves as (a); its observation distribution ``Categorical(logits=log B)``,
    ``Normal(mu, sigma)`` or ``Poisson(rate)``;
(d') the same with ``log_prob`` traced by ``torch.jit.trace``, which is what Pyro's
    ``jit_compile=True`` (NUTS, ``JitTrace_ELBO``) does to a model; ``DiscreteHMM`` itself has
    no compile option, so a direct ``log_prob`` call is untraced unless the user traces it.

Workloads: K = 3 states, 20 sequences x 500 steps: categorical V = 5 (``REFERENCE_PARAMS``, the
small workload of ``benchmarks/speed.py``), Gaussian and Poisson (parameters below).

Timing: CPU time of the process (``time.process_time``), torch and numba on one thread. Each
sample loops a call for about 20 ms; in each round every route takes one sample in turn, and a
route's figure is its best (smallest) sample over the rounds: the machine is shared, and
another process's load only ever adds time. Values and gradients are checked against (a).

Run: ``PYTHONPATH=. python benchmarks/user_level.py [--rounds 9] [--label after]``; writes
``benchmarks/results/user_level.json`` (the section ``--label``; other sections are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numba
import pyro
import pyro.distributions as dist
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # appended: a PYTHONPATH copy of the package comes first
    sys.path.append(str(ROOT))

import hmm_pyro as hp  # noqa: E402
from hmm_pyro import kernels  # noqa: E402
from hmm_pyro.kernels.categorical import SymbolLanes, categorical_log_likelihood  # noqa: E402
from hmm_pyro.simulate import REFERENCE_PARAMS  # noqa: E402

torch.set_num_threads(1)
numba.set_num_threads(1)

RESULTS = ROOT / "benchmarks" / "results" / "user_level.json"
SAMPLE_SECONDS = 0.02
SHAPE = (20, 500)
TRANSITIONS = {"pi": REFERENCE_PARAMS["pi"], "A": REFERENCE_PARAMS["A"]}
EMISSIONS = {
    "categorical": (hp.Categorical(num_symbols=5), {"B": REFERENCE_PARAMS["B"]}),
    "gaussian": (
        hp.Gaussian(),
        {
            "mu": torch.tensor([-2.0, 0.0, 2.0], dtype=torch.float64),
            "sigma": torch.tensor([0.8, 0.6, 1.0], dtype=torch.float64),
        },
    ),
    "poisson": (hp.Poisson(), {"rate": torch.tensor([1.0, 5.0, 12.0], dtype=torch.float64)}),
}


def best_cpu_times(funcs: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Smallest CPU seconds per call of each function over ``rounds`` interleaved samples."""
    counts = {}
    for name, func in funcs.items():
        for _ in range(3):
            func()
        began = time.process_time()
        func()
        counts[name] = max(1, int(SAMPLE_SECONDS / max(time.process_time() - began, 1e-6)))
    best = dict.fromkeys(funcs, float("inf"))
    for _ in range(rounds):
        for name, func in funcs.items():
            began = time.process_time()
            for _ in range(counts[name]):
                func()
            best[name] = min(best[name], (time.process_time() - began) / counts[name])
    return best


def leaves(params: dict[str, torch.Tensor], log: bool = False) -> dict[str, torch.Tensor]:
    return {k: (v.log() if log else v).clone().requires_grad_() for k, v in params.items()}


def routes(family: str) -> tuple[dict[str, Callable[[], object]], dict[str, object]]:
    """The timed calls of one workload, and their value and gradient gaps against (a)."""
    emission, emission_params = EMISSIONS[family]
    params = {**TRANSITIONS, **emission_params}
    hmm = hp.HMM(3, emission)
    data, _ = hp.simulate(hmm, params, [SHAPE[1]] * SHAPE[0], seed=0)
    array = data.values[..., 0].numpy().copy()
    user = leaves(params)
    logs = leaves(TRANSITIONS, log=True)
    calls: dict[str, Callable[[], object]] = {}
    if family == "categorical":
        logs.update(leaves({"B": params["B"]}, log=True))
        lanes = SymbolLanes(data.values[..., 0].long(), 5, data.lengths)

        def kernel() -> torch.Tensor:
            return categorical_log_likelihood(logs["pi"], logs["A"], logs["B"], lanes)

        calls["(a) kernel alone, symbols prepared once"] = kernel
    else:
        table = hmm.emission.log_likelihood_table(emission_params, data)
        logs["table"] = table.clone().requires_grad_()

        def kernel() -> torch.Tensor:
            return kernels.log_likelihood(
                logs["pi"].unsqueeze(-2), logs["A"].unsqueeze(-3), logs["table"], data.lengths
            )

        def kernel_table() -> torch.Tensor:
            built = hmm.emission.log_likelihood_table(user, data)
            return kernels.log_likelihood(
                user["pi"].log().unsqueeze(-2), user["A"].log().unsqueeze(-3), built, data.lengths
            )

        calls["(a) kernel alone, table prepared once"] = kernel
        calls["(a2) kernel + emission table from params"] = kernel_table
    calls["(b) hmm.log_likelihood(params, Sequences)"] = lambda: hmm.log_likelihood(user, data)
    calls["(c) hmm.log_likelihood(params, numpy array)"] = lambda: hmm.log_likelihood(user, array)
    peer = discrete_hmm(family, params, data)
    calls["(d) pyro DiscreteHMM"] = peer["call"]
    traced = traced_discrete_hmm(peer)
    if traced is not None:
        calls["(d') pyro DiscreteHMM, log_prob traced (jit)"] = traced
    timed = {name: backward_of(call) for name, call in calls.items()}
    facts = gaps(family, calls, user, logs, peer, params)
    return timed, facts


def backward_of(call: Callable[[], torch.Tensor]) -> Callable[[], None]:
    def run() -> None:
        call().sum().backward()

    return run


def discrete_hmm(family: str, params: dict, data: hp.Sequences) -> dict:
    """Pyro's ``DiscreteHMM`` with the standard first step (as ``benchmarks/speed.py``)."""
    observed = data.values[..., 0]
    if family == "categorical":
        observed = observed.long()
    inputs = leaves(TRANSITIONS, log=True)
    if family == "categorical":
        inputs["B"] = params["B"].log().clone().requires_grad_()
    else:
        inputs.update(leaves({k: v for k, v in params.items() if k not in TRANSITIONS}))
    names = list(inputs)

    def log_prob(*tensors: torch.Tensor) -> torch.Tensor:
        named = dict(zip(names, tensors, strict=True))
        log_pi, log_A = named["pi"], named["A"]
        trans = log_A.expand(observed.shape[1], *log_A.shape).clone()
        trans[0] = log_pi.expand_as(log_A)
        if family == "categorical":
            law = dist.Categorical(logits=named["B"])
        elif family == "gaussian":
            law = dist.Normal(named["mu"], named["sigma"])
        else:
            law = dist.Poisson(named["rate"])
        return dist.DiscreteHMM(torch.zeros_like(log_pi), trans, law).log_prob(observed)

    return {
        "call": lambda: log_prob(*inputs.values()),
        "log_prob": log_prob,
        "inputs": inputs,
    }


def traced_discrete_hmm(peer: dict) -> Callable[[], torch.Tensor] | None:
    tensors = tuple(peer["inputs"].values())
    try:
        traced = torch.jit.trace(peer["log_prob"], tensors, check_trace=False)
    except Exception:  # reported as absent
        return None
    return lambda: traced(*tensors)


def gaps(
    family: str,
    calls: dict[str, Callable[[], torch.Tensor]],
    user: dict[str, torch.Tensor],
    logs: dict[str, torch.Tensor],
    peer: dict,
    params: dict,
) -> dict[str, object]:
    """Value gaps against (a); for categorical, the gradients of (b) against (a)'s chained."""
    reference = calls[next(iter(calls))]().detach()
    facts: dict[str, object] = {}
    for name, call in calls.items():
        value = call().detach()
        facts[name] = {"value_gap": float((value.sum() - reference.sum()).abs())}
    if family == "categorical":
        for tensor in (*user.values(), *logs.values()):
            tensor.grad = None
        calls["(a) kernel alone, symbols prepared once"]().sum().backward()
        calls["(b) hmm.log_likelihood(params, Sequences)"]().sum().backward()
        eps = torch.finfo(torch.float64).eps
        gap = max(
            float((user[k].grad - logs[k].grad / params[k].clamp(min=eps)).abs().max())
            for k in ("pi", "A", "B")
        )
        facts["(b) hmm.log_likelihood(params, Sequences)"]["grad_gap_chained"] = gap
        facts["(b) hmm.log_likelihood(params, Sequences)"]["value_equal"] = bool(
            torch.equal(
                calls["(a) kernel alone, symbols prepared once"]().detach(),
                calls["(b) hmm.log_likelihood(params, Sequences)"]().detach(),
            )
        )
    return facts


def run(rounds: int) -> dict:
    results = {}
    for family in EMISSIONS:
        timed, facts = routes(family)
        seconds = best_cpu_times(timed, rounds)
        kernel = next(iter(seconds.values()))
        pyro_time = seconds["(d) pyro DiscreteHMM"]
        rows = {}
        for name, value in seconds.items():
            rows[name] = {
                "cpu_ms": round(value * 1e3, 4),
                "x_kernel": round(value / kernel, 3),
                "pyro_discrete_hmm_over_this": round(pyro_time / value, 2),
                **facts.get(name, {}),
            }
        results[family] = rows
    return results


def machine() -> dict:
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        commit = None
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared), "
        f"load {tuple(round(x, 2) for x in os.getloadavg())}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pyro": pyro.__version__,
        "numba": numba.__version__,
        "hmm_pyro_from": str(Path(hp.__file__).resolve().parent),
        "worktree_commit": commit,
        "threads": {"torch": 1, "numba": 1},
    }


def markdown(label: str, section: dict) -> str:
    lines = [f"## {label}", "", section["machine"]["machine"], ""]
    for family, rows in section["results"].items():
        lines += [
            f"### {family}, K=3, 20 x 500",
            "",
            "| route | CPU ms (best) | x kernel | DiscreteHMM / route |",
            "|---|---:|---:|---:|",
        ]
        for name, row in rows.items():
            lines.append(
                f"| {name} | {row['cpu_ms']:.3f} | {row['x_kernel']:.2f} | "
                f"{row['pyro_discrete_hmm_over_this']:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--label", default="after", help="section of the results file")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    section = {"machine": machine(), "rounds": args.rounds, "results": run(args.rounds)}
    out = Path(args.out)
    existing = json.loads(out.read_text()) if out.exists() else {}
    existing[args.label] = section
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(existing, indent=2) + "\n")
    print(markdown(args.label, section))
    return 0


if __name__ == "__main__":
    sys.exit(main())
