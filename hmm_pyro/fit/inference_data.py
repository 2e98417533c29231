"""Build ArviZ ``InferenceData`` for HMM fits: the only module that knows ArviZ's API.

Groups written: ``posterior`` (parameters, ``(chain, draw, ...)``, and the model's
:meth:`~hmm_pyro.HMM.derived_params`, e.g. subject-level parameters), ``sample_stats``,
``log_likelihood`` (``y``: one value per sequence, for PSIS-LOO over sequences), ``log_prior``
(one variable per parameter site, for power-scaling sensitivity), ``prior`` (draws from the
prior), ``observed_data`` (``y``, NaN-padded) and ``constant_data`` (``lengths``; with
covariates also ``covariates`` as given, NaN-padded, ``(sequence, time, covariate)``, their
``covariate_mean`` and ``covariate_sd`` and whether they were standardised). The model
configuration, inference method, initialisation and seed are JSON in the attributes.

Per-sequence log likelihoods are computed with our exact forward algorithm, never with
``az.from_pyro``: for enumerated models it draws the hidden states from their prior instead of
marginalising them.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import h5netcdf
import h5py
import numpy as np
import torch
import xarray as xr
from xarray.backends import H5NetCDFStore

with warnings.catch_warnings():
    # ArviZ 0.x announces its 1.0 refactor once a day at import; we pin 0.x on purpose.
    warnings.simplefilter("ignore", FutureWarning)
    import arviz as az

from hmm_pyro._archive import check_memory
from hmm_pyro._types import Params
from hmm_pyro._version import __version__
from hmm_pyro.covariates import Covariates
from hmm_pyro.data import Sequences
from hmm_pyro.model import HMM

__all__ = [
    "build_inference_data",
    "draws_from_idata",
    "read_inference_data",
    "sequences_from_idata",
]

OBSERVED = "y"
COVARIATE_DIM = "covariate"
_PRIOR_DRAWS = 500


def _coords(hmm: HMM, data: Sequences) -> dict[str, np.ndarray]:
    coords = {
        "state": np.arange(hmm.num_states),
        "state_to": np.arange(hmm.num_states),
        "sequence": np.arange(data.num_sequences),
        "time": np.arange(data.max_length),
    }
    shapes = hmm.param_shapes()
    for name, dims in hmm.param_dims().items():
        for dim, size in zip(dims[1:], shapes[name][1:], strict=True):
            coords.setdefault(dim, np.arange(size))
    coords.update(hmm.param_coords())
    if data.dim > 1:
        coords["dim"] = np.arange(data.dim)
    if data.covariates is not None:
        coords[COVARIATE_DIM] = list(data.covariates.names)
    return coords


def _constant_data(data: Sequences) -> dict[str, np.ndarray]:
    """``lengths``, and the covariates as given with their standardisation."""
    constant = {"lengths": data.lengths.numpy()}
    if data.covariates is not None:
        covariates = data.covariates
        constant["covariates"] = covariates.raw.numpy()
        constant["covariate_mean"] = covariates.means.numpy()
        constant["covariate_sd"] = covariates.sds.numpy()
        constant["covariates_standardized"] = np.asarray(covariates.standardized)
    return constant


_CONSTANT_DIMS = {
    "lengths": ["sequence"],
    "covariates": ["sequence", "time", "covariate"],
    "covariate_mean": ["covariate"],
    "covariate_sd": ["covariate"],
}


def _numpy(params: Params) -> dict[str, np.ndarray]:
    return {name: value.detach().cpu().numpy() for name, value in params.items()}


def _observed(data: Sequences) -> np.ndarray:
    values = data.values.numpy()
    return values[..., 0] if data.dim == 1 else values


def build_inference_data(
    hmm: HMM,
    data: Sequences,
    draws: Params,
    sample_stats: dict[str, np.ndarray] | None = None,
    sample_stats_dims: dict[str, list[str]] | None = None,
    attrs: dict[str, Any] | None = None,
    prior_seed: int = 0,
) -> az.InferenceData:
    """Assemble the ``InferenceData`` of a fit.

    Parameters
    ----------
    hmm : HMM
        The fitted model.
    data : Sequences
        The data it was fitted to.
    draws : dict of torch.Tensor
        Posterior draws, each ``(chain, draw, *param_shape)``.
    sample_stats : dict of numpy.ndarray, optional
        Sampler statistics, each ``(chain, draw, ...)``.
    sample_stats_dims : dict, optional
        Extra dimension names of sample statistics with more than two dimensions.
    attrs : dict, optional
        Extra attributes (inference method, init, seed, ...); values are JSON-encoded.
    prior_seed : int
        Seed of the prior draws.

    Returns
    -------
    arviz.InferenceData
    """
    params = {name: draws[name] for name in hmm.param_names}
    log_lik = hmm.log_likelihood(params, data)
    log_prior = hmm.log_prior_terms(params)
    prior_draws = hmm.sample_prior(_PRIOR_DRAWS, seed=prior_seed)
    # deterministic functions of the parameters (a multilevel model's subject-level values)
    derived = {key: value.detach() for key, value in hmm.derived_params(params).items()}
    prior_derived = {key: value.detach() for key, value in hmm.derived_params(prior_draws).items()}
    dims = {name: list(value) for name, value in hmm.param_dims().items()}
    dims.update({name: list(value) for name, value in hmm.derived_dims().items()})
    dims[OBSERVED] = ["sequence", "time"] + (["dim"] if data.dim > 1 else [])
    observed_dims = {OBSERVED: dims[OBSERVED]}
    dims_all = {**dims, **(sample_stats_dims or {})}
    log_lik_dims = {OBSERVED: ["sequence"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        idata = az.from_dict(
            posterior=_numpy({**params, **derived}),
            sample_stats=sample_stats,
            log_likelihood={OBSERVED: log_lik.detach().cpu().numpy()},
            prior={
                name: value[None]
                for name, value in _numpy({**prior_draws, **prior_derived}).items()
            },
            observed_data={OBSERVED: _observed(data)},
            constant_data=_constant_data(data),
            coords=_coords(hmm, data),
            dims={**dims_all, **observed_dims, **log_lik_dims, **_CONSTANT_DIMS},
        )
        idata.add_groups({"log_prior": _numpy(log_prior)})
    meta = {
        "hmm_pyro_version": __version__,
        "model": json.dumps(hmm.to_config()),
        **{key: json.dumps(value) for key, value in (attrs or {}).items()},
    }
    for group in idata.groups():
        idata[group].attrs.update(meta)
    return idata


def read_attrs(idata: az.InferenceData) -> dict[str, Any]:
    """Decode the JSON attributes written by :func:`build_inference_data`."""
    decoded = {}
    for key, value in idata.posterior.attrs.items():
        if key in ("created_at", "arviz_version", "hmm_pyro_version", "inference_library"):
            decoded[key] = value
            continue
        try:
            decoded[key] = json.loads(value)
        except (TypeError, ValueError):
            decoded[key] = value
    return decoded


def draws_from_idata(hmm: HMM, idata: az.InferenceData, group: str = "posterior") -> Params:
    """Return the parameter draws of ``group`` as tensors ``(chain, draw, *param_shape)``.

    Raises ``ValueError`` when a draw holds NaN or inf: no result is computed from them as if
    they were valid.
    """
    dataset = idata[group]
    draws = {}
    for name in hmm.param_names:
        values = np.asarray(dataset[name].values)
        bad = ~np.isfinite(values)
        if bad.any():
            raise ValueError(
                f"idata: {group} draws of {name!r} hold NaN or inf ({int(bad.sum())} of "
                f"{values.size} values); the run that produced them failed"
            )
        draws[name] = torch.as_tensor(values, dtype=hmm.dtype)
    return draws


def sequences_from_idata(idata: az.InferenceData) -> Sequences:
    """Rebuild the fitted :class:`Sequences`, covariates included, from the constant data."""
    values = np.asarray(idata.observed_data[OBSERVED].values)
    constant = idata.constant_data
    lengths = np.asarray(constant["lengths"].values)
    dim = None if values.ndim == 2 else values.shape[-1]
    covariates = None
    if "covariates" in constant:
        covariates = Covariates.from_standardization(
            np.asarray(constant["covariates"].values),
            [str(name) for name in constant[COVARIATE_DIM].values],
            np.asarray(constant["covariate_mean"].values),
            np.asarray(constant["covariate_sd"].values),
            bool(constant["covariates_standardized"].values),
        )
    return Sequences(values, lengths=lengths, dim=dim, covariates=covariates)


def read_inference_data(path: str | os.PathLike[str], label: str) -> az.InferenceData:
    """Read every group of an ``InferenceData`` NetCDF file into memory, sizes checked first.

    What ``az.from_netcdf`` reads (each group with ``xarray`` over ``h5netcdf``, and the root
    attributes), loaded eagerly: the size of each group, known from its declared shapes and
    dtypes, is checked against the memory available (``ValueError`` starting with ``label``)
    before its arrays are read. The file is opened once, here, and closed before this returns
    or raises (a damaged file can make ``h5netcdf`` or ``xarray`` fail half-way through
    opening it, which would otherwise leave it open).

    Parameters
    ----------
    path : str or os.PathLike
        The NetCDF-4 file.
    label : str
        Start of the error message for data too large for memory (names the file).

    Returns
    -------
    arviz.InferenceData
    """
    options = {"decode_vlen_strings": True, "phony_dims": "access", "format": "NETCDF4"}
    with h5py.File(path, "r") as raw:
        # h5netcdf reads the root attributes before it can be closed: damaged ones are
        # refused here rather than left to fail inside its constructor.
        dict(raw.attrs)
        with h5netcdf.File(raw, "r", **options) as handle:
            groups, total = {}, 0
            for name in list(handle.groups):
                dataset = xr.open_dataset(H5NetCDFStore(handle, group=name))
                total += dataset.nbytes
                check_memory(total, label)
                groups[name] = dataset.load()
            attrs = dict(xr.open_dataset(H5NetCDFStore(handle)).attrs)
    return az.InferenceData(attrs=attrs, **groups)
