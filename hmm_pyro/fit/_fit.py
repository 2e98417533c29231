"""``Fit``: the result of any runner — an ArviZ ``InferenceData`` plus the model it came from."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

# imported to register CovariateHMM and MultilevelHMM for HMM.from_config
import hmm_pyro.covariate_model
import hmm_pyro.multilevel  # noqa: F401
from hmm_pyro._archive import READ_ERRORS, file_label
from hmm_pyro._io import atomic_path
from hmm_pyro._random import make_generator, resolve_seed
from hmm_pyro._types import Params, SequencesLike
from hmm_pyro._validation import check_int, describe
from hmm_pyro.data import Sequences, as_sequences
from hmm_pyro.fit.inference_data import (
    az,
    build_inference_data,
    draws_from_idata,
    read_attrs,
    read_inference_data,
    sequences_from_idata,
)
from hmm_pyro.fit.transitions import ProbabilitySummary, summarize_transitions
from hmm_pyro.model import HMM
from hmm_pyro.simulate import simulate

__all__ = ["ALIGNED", "LABELS_ATTR", "ONE_MODE", "RAW", "Fit", "MixedLabelsWarning", "load"]

_DEFAULT_MAX_DRAWS = 200

LABELS_ATTR = "labels"
"""Attribute saying how the state labels of the draws relate (see :attr:`Fit.labelling`)."""
ALIGNED = "aligned"
"""``labels`` of draws brought into one labelling (``hmm_pyro.relabel``; ``fit_nuts`` default)."""
RAW = "raw"
"""``labels`` of draws kept as sampled: each chain in its own labelling, switches possible."""
ONE_DRAW = "one draw"
ONE_MODE = "one mode"
UNKNOWN = "unknown"
_CONSISTENT = (ALIGNED, ONE_DRAW, ONE_MODE)
_ONE_MODE_METHODS = ("svi",)
"""Runners whose draws come from one variational guide fitted around one mode (a Gaussian in
the unconstrained space cannot reach a relabelled copy of that mode): one labelling by
construction, also in files written before ``labels`` was recorded."""


class MixedLabelsWarning(UserWarning):
    """A per-state result was asked of draws that are not known to share one labelling."""


class Fit:
    """Posterior draws (or a point estimate) of an HMM's parameters, with the data.

    Parameters
    ----------
    hmm : HMM
        The fitted model.
    idata : arviz.InferenceData
        Groups ``posterior``, ``sample_stats``, ``log_likelihood``, ``log_prior``, ``prior``,
        ``observed_data``, ``constant_data``; attributes record method, init and seed.

    Notes
    -----
    Per-state quantities (posterior means, averaged state probabilities, Viterbi paths, the
    summary) assume that every draw uses the same state labels. ``fit_nuts`` aligns its chains
    by default; on draws that are not known to share one labelling (:attr:`labelling` ``"raw"``
    or ``"unknown"``) these methods warn with :class:`MixedLabelsWarning` and ``hmm_pyro.relabel``
    aligns them. Label-invariant quantities (log likelihood, LOO) need no care.
    """

    def __init__(self, hmm: HMM, idata: az.InferenceData) -> None:
        if not isinstance(hmm, HMM):
            raise TypeError(f"hmm: expected a hmm_pyro.HMM, got {describe(hmm)}")
        self.hmm = hmm
        self.idata = idata
        self.data = hmm.prepare_data(sequences_from_idata(idata))
        self.draws()  # refuses NaN or inf draws

    @classmethod
    def from_params(
        cls,
        hmm: HMM,
        data: SequencesLike,
        params: Params,
        method: str = "point",
        attrs: dict[str, Any] | None = None,
        sample_stats: dict[str, np.ndarray] | None = None,
        sample_stats_dims: dict[str, list[str]] | None = None,
    ) -> Fit:
        """Wrap parameters (a point estimate, or draws ``(chain, draw, ...)``) as a ``Fit``.

        Use it for estimates from elsewhere (your own Pyro run, EM, hmmlearn) so that decoding,
        ``diagnose`` and plots work on them.

        Parameters
        ----------
        hmm : HMM
            The model the parameters belong to.
        data : Sequences or array-like
            The data they were fitted to.
        params : dict of torch.Tensor
            One parameter set (stored as one chain with one draw) or draws with leading
            ``(chain, draw)`` dimensions.
        method : str
            Recorded as the ``inference`` attribute.
        attrs : dict, optional
            More attributes, e.g. ``{"init": "median"}`` to record how the run started, or
            ``{"labels": "aligned"}`` for draws already in one labelling (otherwise several
            draws count as ``"unknown"``: per-state results warn until ``hmm_pyro.relabel``).
        sample_stats, sample_stats_dims : optional
            Extra sample statistics ``(chain, draw, ...)`` and their dimension names.

        Returns
        -------
        Fit
        """
        data = hmm.prepare_data(data)
        params = hmm.validate_params(params)
        batch = hmm.batch_shape(params)
        if len(batch) == 0:
            params = {name: value[None, None] for name, value in params.items()}
        elif len(batch) != 2:
            raise ValueError(
                f"params: expected no draw dimensions or (chain, draw), got {tuple(batch)}"
            )
        shapes = hmm.param_shapes()
        batch = hmm.batch_shape(params)
        params = {name: params[name].expand(*batch, *shapes[name]) for name in hmm.param_names}
        meta = {"inference": method, **(attrs or {})}
        idata = build_inference_data(
            hmm, data, params, sample_stats, sample_stats_dims=sample_stats_dims, attrs=meta
        )
        return cls(hmm, idata)

    # ------------------------------------------------------------------ metadata
    @property
    def attrs(self) -> dict[str, Any]:
        """Decoded attributes: ``inference``, ``init``, ``seed`` and runner settings."""
        return read_attrs(self.idata)

    @property
    def method(self) -> str:
        """Inference method that produced the fit (``"nuts"``, ``"svi"``, ...)."""
        return str(self.attrs.get("inference", "unknown"))

    @property
    def num_chains(self) -> int:
        """Number of chains (or restarts kept) in the posterior group."""
        return int(self.idata.posterior.sizes["chain"])

    @property
    def num_draws(self) -> int:
        """Number of draws per chain."""
        return int(self.idata.posterior.sizes["draw"])

    @property
    def labelling(self) -> str:
        """How the state labels of the draws relate; per-state results need one labelling.

        ``"one draw"`` (a point estimate), ``"aligned"`` (brought into one labelling by
        ``hmm_pyro.relabel``, which ``fit_nuts`` runs by default), ``"one mode"`` (draws of one
        SVI guide), ``"raw"`` (chains as sampled, e.g. ``fit_nuts(relabel=False)``) or
        ``"unknown"`` (draws from elsewhere, or a file written before this was recorded).
        """
        if self.num_chains * self.num_draws == 1:
            return ONE_DRAW
        attrs = self.attrs
        recorded = attrs.get(LABELS_ATTR)
        if recorded in (ALIGNED, RAW, ONE_MODE):
            return str(recorded)
        if "relabel" in attrs:  # relabelled before the status was recorded
            return ALIGNED
        if self.method in _ONE_MODE_METHODS:
            return ONE_MODE
        return UNKNOWN

    def _check_labels(self, what: str) -> None:
        """Warn that ``what`` mixes labellings unless the draws share one."""
        status = self.labelling
        if status in _CONSISTENT:
            return
        how = "as sampled" if status == RAW else "of unknown origin"
        warnings.warn(
            f"Fit.{what}: the {self.num_chains} chain(s) x {self.num_draws} draws are {how} and "
            "not known to share one labelling of the states, so per-state results may mix "
            "states; align them first with hmm_pyro.relabel(fit) (fit_nuts does unless "
            "relabel=False)",
            MixedLabelsWarning,
            stacklevel=3,
        )

    def __repr__(self) -> str:
        return (
            f"Fit(method={self.method!r}, chains={self.num_chains}, draws={self.num_draws}, "
            f"hmm={self.hmm!r}, data={self.data!r})"
        )

    # ------------------------------------------------------------------ draws
    def draws(self, group: str = "posterior") -> Params:
        """Parameter draws as tensors ``(chain, draw, *param_shape)``."""
        return draws_from_idata(self.hmm, self.idata, group)

    def flat_draws(self, max_draws: int | None = None) -> Params:
        """Draws with chains pooled, ``(S, *param_shape)``, evenly thinned to ``max_draws``."""
        draws = self.draws()
        total = self.num_chains * self.num_draws
        flat = {name: value.reshape(total, *value.shape[2:]) for name, value in draws.items()}
        if max_draws is not None and total > check_int("max_draws", max_draws, minimum=1):
            index = torch.linspace(0, total - 1, max_draws).round().long()
            flat = {name: value[index] for name, value in flat.items()}
        return flat

    def posterior_mean(self) -> Params:
        """Posterior mean of every parameter (rows of ``pi``, ``A``, ``B`` stay on the simplex).

        Warns (:class:`MixedLabelsWarning`) when the draws are not known to share one labelling.
        """
        self._check_labels("posterior_mean")
        return self._mean()

    def _mean(self) -> Params:
        return {name: value.mean(dim=(0, 1)) for name, value in self.draws().items()}

    # ------------------------------------------------------------------ hidden states
    def _data(self, data: SequencesLike) -> Sequences:
        """The fitted data, or ``data`` prepared; covariates put on the fitted data's scale.

        Coefficients were fitted to covariates standardised with the fitted data's means and
        standard deviations: new covariates are standardised with those, not their own.
        """
        if data is None:
            return self.data
        data = as_sequences(data)
        reference = self.data.covariates
        covariates = data.covariates
        if (
            reference is not None
            and covariates is not None
            and not covariates.same_scale(reference)
        ):
            data = data.with_covariates(covariates.standardize_like(reference))
        return self.hmm.prepare_data(data)

    def state_probs(
        self, data: SequencesLike | None = None, max_draws: int = _DEFAULT_MAX_DRAWS
    ) -> torch.Tensor:
        """Smoothed state probabilities averaged over posterior draws: ``(N, T, K)``.

        Parameters
        ----------
        data : Sequences or array-like, optional
            Sequences to decode (default: the fitted data).
        max_draws : int
            Number of evenly spaced posterior draws averaged.

        Warns (:class:`MixedLabelsWarning`) when the draws are not known to share one labelling.
        """
        self._check_labels("state_probs")
        data = self._data(data)
        draws = self.flat_draws(max_draws)
        total = None
        chunk = max(1, 2**22 // max(data.num_sequences * data.max_length * self.hmm.num_states, 1))
        count = next(iter(draws.values())).shape[0]
        for start in range(0, count, chunk):
            part = {name: value[start : start + chunk] for name, value in draws.items()}
            summed = self.hmm.posterior_marginals(part, data).sum(0)
            total = summed if total is None else total + summed
        return total / count

    def viterbi(
        self,
        data: SequencesLike | None = None,
        per_draw: bool = False,
        max_draws: int = _DEFAULT_MAX_DRAWS,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Most probable state paths.

        Parameters
        ----------
        data : Sequences or array-like, optional
            Sequences to decode (default: the fitted data).
        per_draw : bool
            ``False``: one path per sequence under the posterior mean parameters.
            ``True``: one path per draw, ``(S, N, T)``.
        max_draws : int
            Draws used when ``per_draw`` is true.

        Returns
        -------
        paths, scores : torch.Tensor
            ``(N, T)`` and ``(N,)`` (or with a leading draw dimension); ``-1`` at padding.

        Warns (:class:`MixedLabelsWarning`) when the draws are not known to share one labelling.
        """
        self._check_labels("viterbi")
        data = self._data(data)
        params = self.flat_draws(max_draws) if per_draw else self._mean()
        return self.hmm.viterbi(params, data)

    def sample_paths(
        self, data: SequencesLike | None = None, num_samples: int = 100, seed: int | None = None
    ) -> torch.Tensor:
        """Draw state paths from their posterior, integrating over parameter uncertainty.

        Each path uses a posterior draw picked at random, then forward-filtering
        backward-sampling given that draw.

        Returns
        -------
        torch.Tensor
            ``(num_samples, N, T)`` int64, ``-1`` at padding.

        Warns (:class:`MixedLabelsWarning`) when the draws are not known to share one labelling.
        """
        self._check_labels("sample_paths")
        data = self._data(data)
        num_samples = check_int("num_samples", num_samples, minimum=1)
        seed = resolve_seed(seed)
        generator = make_generator(seed)
        flat = self.flat_draws()
        count = next(iter(flat.values())).shape[0]
        picks = torch.randint(count, (num_samples,), generator=generator)
        params = {name: value[picks] for name, value in flat.items()}
        paths = self.hmm.sample_paths(params, data, num_samples=1, seed=seed + 1)
        return paths[0]

    def posterior_predictive(self, num_samples: int = 100, seed: int | None = None) -> xr.Dataset:
        """Simulate replicated data sets from random posterior draws (same lengths as the data).

        The result is also stored as the ``posterior_predictive`` group of ``idata``.

        Returns
        -------
        xarray.Dataset
            ``y`` ``(chain=1, draw, sequence, time[, dim])`` NaN-padded and ``states``
            ``(chain=1, draw, sequence, time)`` with ``-1`` at padding.

        Warns (:class:`MixedLabelsWarning`) when the draws are not known to share one labelling
        (the replicated data are label-invariant, their state paths are not).
        """
        num_samples = check_int("num_samples", num_samples, minimum=1)
        self._check_labels("posterior_predictive")
        generator = make_generator(resolve_seed(seed))
        flat = self.flat_draws()
        count = next(iter(flat.values())).shape[0]
        lengths = self.data.lengths.tolist()
        replicas, paths = [], []
        for _ in range(num_samples):
            pick = int(torch.randint(count, (), generator=generator))
            params = {name: value[pick] for name, value in flat.items()}
            child = int(torch.randint(2**31 - 1, (), generator=generator))
            replica, states = simulate(
                self.hmm, params, lengths, seed=child, covariates=self.data.covariates
            )
            values = replica.values.numpy()
            replicas.append(values[..., 0] if self.data.dim == 1 else values)
            paths.append(states.numpy())
        dims = ["chain", "draw", "sequence", "time"]
        y_dims = dims + (["dim"] if self.data.dim > 1 else [])
        dataset = xr.Dataset(
            {
                "y": (y_dims, np.stack(replicas)[None]),
                "states": (dims, np.stack(paths)[None]),
            },
            coords={"chain": [0], "draw": np.arange(num_samples)},
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if "posterior_predictive" in self.idata.groups():
                del self.idata["posterior_predictive"]
            self.idata.add_groups({"posterior_predictive": dataset})
        return dataset

    # ------------------------------------------------------------------ transitions
    def transition_matrix(
        self,
        covariates: Any = None,
        level: float = 0.9,
        max_draws: int | None = _DEFAULT_MAX_DRAWS * 5,
    ) -> ProbabilitySummary:
        """Posterior mean transition matrix, with a credible band, at covariate values.

        Parameters
        ----------
        covariates : dict, array-like, pandas.DataFrame or None
            Where to evaluate, on the covariates' original scale (the fitted data's
            standardisation is applied): ``{"temp": 20.0}`` (one point) or
            ``{"temp": [10, 20, 30]}`` (several; covariates not named sit at their mean), an
            ``(M, P)`` array in the order of the data's covariates, or ``None`` (all at their
            mean). A model without covariates takes none and summarises ``A``.
        level : float
            Mass of the equal-tailed credible band (default 0.9).
        max_draws : int or None
            Evenly spaced draws used (``None``: all).

        Returns
        -------
        ProbabilitySummary
            ``mean``, ``lower``, ``upper``: ``(K, K)`` at one point, ``(M, K, K)`` at ``M``;
            ``covariates``: the points, on the original scale.

        Warns (:class:`MixedLabelsWarning`) when the draws are not known to share one labelling.
        """
        self._check_labels("transition_matrix")
        return summarize_transitions(self, covariates, level, max_draws, stationary=False)

    def stationary(
        self,
        covariates: Any = None,
        level: float = 0.9,
        max_draws: int | None = _DEFAULT_MAX_DRAWS * 5,
    ) -> ProbabilitySummary:
        """Posterior mean stationary distribution of the transition matrix at covariate values.

        The long-run share of time in each state if the covariates stayed at those values.
        Arguments as :meth:`transition_matrix`; ``mean``, ``lower``, ``upper`` are ``(K,)``
        at one point, ``(M, K)`` at ``M``.

        Warns (:class:`MixedLabelsWarning`) when the draws are not known to share one labelling.
        """
        self._check_labels("stationary")
        return summarize_transitions(self, covariates, level, max_draws, stationary=True)

    # ------------------------------------------------------------------ summaries and I/O
    def summary(self, **kwargs: Any) -> pd.DataFrame:
        """``arviz.summary`` of the posterior (keyword arguments are passed through).

        Warns (:class:`MixedLabelsWarning`) when the draws are not known to share one labelling.
        """
        self._check_labels("summary")
        with warnings.catch_warnings():
            # R-hat/ESS of constant entries (e.g. a one-draw point estimate) are undefined.
            warnings.filterwarnings("ignore", "invalid value encountered", RuntimeWarning)
            warnings.filterwarnings("ignore", "Degrees of freedom <= 0", RuntimeWarning)
            return az.summary(self.idata, **kwargs)

    def save(self, path: str | Path) -> Path:
        """Write ``idata`` to NetCDF atomically (temporary file, then rename).

        Returns
        -------
        pathlib.Path
            The written path.
        """
        path = Path(path)
        with atomic_path(path) as temporary:
            self.idata.to_netcdf(temporary)
        return path


def load(path: str | Path) -> Fit:
    """Read a :class:`Fit` written by :meth:`Fit.save`.

    Parameters
    ----------
    path : str or pathlib.Path
        A NetCDF file.

    Returns
    -------
    Fit

    Raises
    ------
    ValueError
        For a missing file, a file that cannot be read (damaged, truncated, not NetCDF-4),
        data that would not fit in memory (refused before it is read), a NetCDF file that is
        not a hmm_pyro fit, or a fit whose model, data or draws are not valid; one line that
        names the file and the problem.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"path: expected an existing NetCDF file, got {str(path)!r}")
    label = file_label("path", path)
    try:
        idata = read_inference_data(path, label)
    except (*READ_ERRORS, AttributeError) as error:  # h5netcdf: a dimension that is gone
        text = " ".join(str(error).split())
        if text.startswith(label):
            raise ValueError(text) from error
        raise ValueError(f"{label}: not a NetCDF-4 fit ({type(error).__name__}: {text})") from error
    if "posterior" not in idata.groups() or "model" not in idata.posterior.attrs:
        raise ValueError(f"path: {str(path)!r} is not a hmm_pyro fit (no model attribute)")
    try:
        hmm = HMM.from_config(read_attrs(idata)["model"])
        fit = Fit(hmm, idata)
        if len(hmm.batch_shape(hmm.validate_params(fit.draws()))) != 2:
            raise ValueError("posterior: expected draws with dimensions (chain, draw)")
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        text = " ".join(str(error).split())
        raise ValueError(
            f"{label}: not a valid hmm_pyro fit ({type(error).__name__}: {text})"
        ) from error
    return fit
