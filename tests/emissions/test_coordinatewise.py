"""The shared description of families with one number per state and coordinate."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import hmm_pyro as hp
from hmm_pyro.emissions import from_config
from hmm_pyro.emissions.coordinatewise import Coordinatewise

CLASSES = [
    hp.Gaussian,
    hp.Poisson,
    hp.Gamma,
    hp.VonMises,
    hp.NegativeBinomial,
    hp.StudentT,
]
FIELDS = {field.name for field in dataclasses.fields(hp.Prior)}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
@pytest.mark.parametrize("dim", [None, 2])
def test_shapes_config_and_hyperparameters_follow_dim(cls, dim):
    emission = cls() if dim is None else cls(dim=dim)
    assert isinstance(emission, Coordinatewise)
    shape, dims = ((3,), ("state",)) if dim is None else ((3, 2), ("state", "dim"))
    assert emission.dim == (1 if dim is None else dim)
    assert emission.param_shapes(3) == dict.fromkeys(emission.param_names, shape)
    assert emission.param_dims() == dict.fromkeys(emission.param_names, dims)
    assert emission.to_config() == {"family": emission.family, "dim": dim}
    assert from_config(emission.to_config()) == emission
    assert set(emission.hyperparameter_names) <= FIELDS
    hyper = emission.prior_hyperparameters(hp.Prior(), 3, torch.float64)
    assert list(hyper) == list(emission.hyperparameter_names)
    assert all(value.shape == (3, emission.dim) for value in hyper.values())
    params = hp.HMM(3, emission).sample_prior(seed=0)
    columns = emission._columns(params)
    assert all(column.shape == (3, emission.dim) for column in columns)
    back = emission._params(*columns)
    assert all(torch.equal(back[name], params[name]) for name in emission.param_names)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_dim_is_checked(cls):
    with pytest.raises(ValueError, match="dim"):
        cls(dim=0)
