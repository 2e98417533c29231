"""User-defined families (``PyroEmission``): the README's zero-inflated Poisson, definitions.

The README block's definition, model and data are executed here as written; the fits it makes
are repeated with fewer iterations (the block itself runs whole in the test of the README's
blocks) and checked against the planted parameters.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pyro.distributions as dist
import pytest
import torch
from torch.distributions import constraints

import hmm_pyro as hp
from hmm_pyro.emissions import from_config, user_defined_families

README = Path(__file__).resolve().parents[2] / "README.md"
DTYPE = torch.float64


def _readme_definition(marker: str, stop: str) -> str:
    """The README's python block containing ``marker``, up to the line starting with ``stop``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (block,) = [block for block in blocks if marker in block]
    return block[: block.index(f"\n{stop}")]


@pytest.fixture(scope="module")
def readme_run() -> dict:
    """The README's family, model and data; MAP (1 restart) and one short NUTS chain.

    Tree depth at most 6: the warm-up iterations before the first mass-matrix update take long
    trees on this model's (Pyro-computed) potential: 9 s of CPU at the default depth 10, 4 s
    capped at 6. The kept draws' trees have depth 4 or less either way.
    """
    namespace: dict = {"__name__": "readme_block"}
    code = _readme_definition("hp.PyroEmission(", "point = ")
    exec(compile(code, str(README), "exec"), namespace)
    hmm, data = namespace["hmm"], namespace["data"]
    namespace["point"] = hp.fit_map(hmm, data, restarts=1, seed=0, progress=False)
    namespace["fit"] = hp.fit_nuts(
        hmm,
        data,
        chains=1,
        warmup=40,
        draws=40,
        seed=0,
        max_tree_depth=6,
        parallel=False,
        progress=False,
    )
    namespace["report"] = hp.diagnose(namespace["fit"])
    return namespace


@pytest.mark.xdist_group("readme_zip")
def test_readme_family_recovers_the_planted_zero_inflated_poisson(readme_run):
    """MAP and NUTS posterior means near the planted rates (2, 12) and gates (0.4, 0.1).

    200 steps: the posterior sd of log rate is about 0.1 and of a gate about 0.05-0.1, so the
    bounds (0.35 in log rate, 0.2 in gate) catch a wrong likelihood, prior or route, not noise.
    """
    truth_rate, truth_gate = np.array([2.0, 12.0]), np.array([0.4, 0.1])
    for fit in (readme_run["point"], readme_run["fit"]):
        mean = fit.posterior_mean()
        order = torch.argsort(mean["rate"]).numpy()
        rate, gate = mean["rate"].numpy()[order], mean["gate"].numpy()[order]
        assert np.all(np.abs(np.log(rate / truth_rate)) < 0.35), rate
        assert np.all(np.abs(gate - truth_gate) < 0.2), gate
    fit = readme_run["fit"]
    assert fit.idata.posterior["gate"].dims == ("chain", "draw", "state")
    assert fit.idata.posterior["rate"].shape == (1, 40, 2)
    assert readme_run["report"].flag("emission_collapse") is None


@pytest.mark.xdist_group("readme_zip")
def test_readme_family_is_diagnosed_and_saved(readme_run, tmp_path):
    """A planted duplicate of a state is flagged; a saved fit loads with the family defined.

    ``deep=False``: the collapse flag comes from the fit's own emission distances, not from the
    refits. The refits of a point fit with a numerically maximised family (EM with an L-BFGS
    M-step per iteration: about 70 s of CPU for these 200 counts) are tested on the built-in
    numerical families (``family_checks.check_collapsed_pair_is_flagged``), and this family's
    NUTS refits by :func:`readme_run`'s ``diagnose`` and the README block itself.
    """
    fit, hmm, data = readme_run["fit"], readme_run["hmm"], readme_run["data"]
    mean = fit.posterior_mean()
    point = {
        "pi": torch.tensor([0.5, 0.25, 0.25], dtype=DTYPE),
        "A": torch.tensor([[0.9, 0.05, 0.05], [0.1, 0.45, 0.45], [0.1, 0.45, 0.45]], dtype=DTYPE),
        "rate": mean["rate"][[0, 1, 1]],
        "gate": mean["gate"][[0, 1, 1]],
    }
    three = hp.HMM(3, hmm.emission, hmm.prior)
    report = hp.diagnose(hp.Fit.from_params(three, data, point, method="map"), deep=False)
    flag = report.flag("emission_collapse")
    assert flag is not None and flag.measured["groups"] == [(1, 2)]
    path = readme_run["point"].save(tmp_path / "zip.nc")
    loaded = hp.load(path)
    assert loaded.hmm.emission is hmm.emission
    torch.testing.assert_close(
        loaded.posterior_mean()["rate"], readme_run["point"].posterior_mean()["rate"]
    )


def test_definition_errors_name_the_argument():
    rate = hp.Parameter(dist.Gamma(2.0, 1.0), constraint=constraints.positive)
    with pytest.raises(ValueError, match="name: 'poisson' is a built-in family"):
        hp.PyroEmission("poisson", lambda rate: dist.Poisson(rate), rate=rate)
    with pytest.raises(ValueError, match="distribution: expected batch shape"):
        hp.PyroEmission("bad_shape", lambda rate: dist.Poisson(rate).expand([3, 2]), rate=rate)
    with pytest.raises(ValueError, match=r"fill_value: -1\.0 is outside the support"):
        hp.PyroEmission("bad_fill", lambda rate: dist.Poisson(rate), fill_value=-1.0, rate=rate)
    with pytest.raises(ValueError, match=r"rate.prior: event shape \(3,\)"):
        hp.PyroEmission(
            "bad_prior",
            lambda rate: dist.Poisson(rate),
            rate=hp.Parameter(dist.Dirichlet(torch.ones(3))),
        )
    with pytest.raises(ValueError, match="location: the law of 'cauchy' has no finite mean"):
        hp.PyroEmission(
            "cauchy",
            lambda loc: dist.Cauchy(loc, 1.0),
            loc=hp.Parameter(dist.Normal(0.0, 1.0)),
        )
    with pytest.raises(TypeError, match=r"rate\.shape: expected a tuple of ints"):
        hp.PyroEmission(
            "bad_shape_spec",
            lambda rate: dist.Poisson(rate),
            rate=hp.Parameter(dist.Gamma(1.0, 1.0), shape=[2]),
        )
    with pytest.raises(TypeError, match=r"rate: expected a hmm_pyro\.Parameter"):
        hp.PyroEmission("untyped", lambda rate: dist.Poisson(rate), rate=dist.Gamma(1.0, 1.0))


def test_registry_priors_and_dtypes():
    cauchy = hp.PyroEmission(
        "cauchy_located",
        lambda loc, scale: dist.Cauchy(loc, scale),
        location="loc",
        loc=hp.Parameter(lambda: dist.Normal(0.0, 0.1)),  # built in the model's dtype
        scale=hp.Parameter(dist.HalfNormal(1.0)),
    )
    priors = cauchy.prior_distributions(hp.Prior(), 3, DTYPE)
    assert all(d.sample().dtype == DTYPE for d in priors.values())
    assert torch.all(priors["loc"].base_dist.scale == 0.1)  # exactly 0.1, not float32's
    assert priors["loc"].event_shape == (3,)
    assert cauchy.location({"loc": torch.tensor([1.0, 2.0]), "scale": torch.ones(2)}).tolist() == [
        1.0,
        2.0,
    ]
    assert cauchy.num_free_params(3) == 6 and cauchy.positive_params == ()
    assert from_config(cauchy.to_config()) is cauchy
    with pytest.raises(ValueError, match="config: family 'cauchy_located' was saved as"):
        from_config({**cauchy.to_config(), "params": {"loc": [2], "scale": []}})
    with pytest.raises(ValueError, match="define it with PyroEmission"):
        from_config({"family": "never_defined", "dim": None, "params": {}})
    per_state = hp.PyroEmission(
        "per_state_prior",
        lambda rate: dist.Poisson(rate),
        rate=hp.Parameter(dist.Gamma(torch.tensor([1.0, 5.0]), 1.0)),
    )
    means = per_state.prior_distributions(hp.Prior(), 2, DTYPE)["rate"].mean
    torch.testing.assert_close(means, torch.tensor([1.0, 5.0], dtype=DTYPE))
    assert math.isclose(
        float(per_state.bhattacharyya({"rate": torch.tensor([3.0, 3.0])})[0, 1]), 1.0
    )


def test_user_defined_families_are_found_in_nested_configurations():
    """What fit_nuts checks before sending chains to worker processes (which cannot rebuild
    a family defined by the caller's script)."""
    counts = hp.PyroEmission(
        "counts_for_workers",
        lambda rate: dist.Poisson(rate),
        rate=hp.Parameter(dist.Gamma(2.0, 0.5), constraint=constraints.positive),
    )
    assert user_defined_families(hp.HMM(2, hp.Gaussian()).to_config()) == []
    assert user_defined_families(hp.HMM(2, counts).to_config()) == ["counts_for_workers"]
    nested = hp.HMM(2, hp.Product(level=hp.Gaussian(), counts=counts)).to_config()
    assert user_defined_families(nested) == ["counts_for_workers"]
