"""``MultilevelHMM``: per-subject transition and emission parameters with group-level laws.

Each subject ``s`` (one or several sequences) has its own transition matrix and, for families
that allow it, its own emission parameters, drawn around group-level values (non-centred)::

    A_s[i]  = softmax(log A[i] + tau_A[i] z_A[s, i]),      z_A[s, i, j] ~ Normal(0, 1),
    B_s[k]  = softmax(log B[k] + tau_B[k] z_B[s, k]),      (categorical rows, kind "logit")
    mu_s[k] = mu[k] + tau_mu[k] z_mu[s, k],                (Gaussian means, kind "location")
    tau ~ HalfNormal(scale)  (one scale per transition row, per emission row or entry).

The group-level ``pi``, ``A`` and emission parameters keep the priors of :class:`~hmm_pyro.HMM`
(``A`` is the transition matrix of the typical subject, ``z = 0``); see ``docs/multilevel.md``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.ops.special import safe_log

from hmm_pyro import kernels
from hmm_pyro._types import Params
from hmm_pyro._validation import check_choice, check_int, describe
from hmm_pyro.data import Sequences
from hmm_pyro.emissions import Emission, from_config
from hmm_pyro.model import HMM, INITIAL_MODES
from hmm_pyro.priors import Prior

__all__ = ["RANDOM_EFFECT_KINDS", "MultilevelHMM", "SubjectPrior"]

RANDOM_EFFECT_KINDS = ("logit", "location")
"""How a parameter varies between subjects: probability rows on the log-odds scale, or a
location shifted on its own scale."""
TRANSITIONS = "A"
"""Name of the transition matrix among the random effects."""


@dataclass(frozen=True)
class SubjectPrior:
    """Half-normal priors of the between-subject scales ``tau``.

    Parameters
    ----------
    transition_scale : float
        Scale of the half-normal prior of ``tau_A`` (log-odds of a transition row).
    logit_scale : float
        Scale of the half-normal prior of the ``tau`` of emission probability rows (kind
        ``"logit"``, e.g. categorical ``B``), on the log-odds scale.
    location_scale : float
        Scale of the half-normal prior of the ``tau`` of emission locations (kind
        ``"location"``, e.g. Gaussian ``mu``), in the data's units.

    Notes
    -----
    Defaults 1.0: the reasons are in ``docs/multilevel.md``.
    """

    transition_scale: float = 1.0
    logit_scale: float = 1.0
    location_scale: float = 1.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name}: expected a number, got {describe(value)}")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}: expected a number finite and > 0, got {value}")

    def scale(self, kind: str) -> float:
        """The half-normal scale for transitions (``"transition"``) or an emission kind."""
        return {
            "transition": self.transition_scale,
            "logit": self.logit_scale,
            "location": self.location_scale,
        }[kind]


def _subject_labels(subjects: Any) -> tuple[tuple[str, ...], list[int]]:
    """Subject names (first-appearance order) and each sequence's subject index."""
    if isinstance(subjects, int) and not isinstance(subjects, bool):
        if subjects < 1:
            raise ValueError(
                f"subjects: expected an int >= 1 or one label per sequence, got {subjects}"
            )
        return tuple(str(s) for s in range(subjects)), list(range(subjects))
    if isinstance(subjects, (str, bytes)) or not isinstance(subjects, Sequence) or not subjects:
        raise TypeError(
            "subjects: expected a number of subjects (one sequence each) or a non-empty list "
            f"with the subject of each sequence, got {describe(subjects)}"
        )
    labels = []
    for position, label in enumerate(subjects):
        if isinstance(label, (bool, float)) or not isinstance(label, Hashable):
            raise TypeError(
                f"subjects[{position}]: expected a subject label (str or int), got "
                f"{describe(label)}"
            )
        labels.append(str(label))
    names = tuple(dict.fromkeys(labels))
    index = {name: position for position, name in enumerate(names)}
    return names, [index[label] for label in labels]


class MultilevelHMM(HMM):
    """An HMM whose subjects have their own parameters, drawn around group-level ones.

    Parameters
    ----------
    num_states : int
        Number of hidden states ``K``.
    emission : Emission
        Emission family. Random effects on its parameters need the family to name them
        (:attr:`~hmm_pyro.emissions.Emission.random_effect_params`: categorical ``B``,
        Gaussian ``mu``); any family takes random effects on the transitions only.
    subjects : int or sequence of labels
        The subject of each sequence, in data order (``["ann", "ann", "bob"]``); an int ``S``
        means ``S`` sequences, one per subject. Subjects are named by ``str(label)`` in order
        of first appearance.
    random_effects : sequence of str, optional
        Parameters that vary between subjects: ``"A"`` and any of the emission's random-effect
        parameters. Default: all of them.
    prior : Prior, optional
        Priors of the group-level ``pi``, ``A`` and emission parameters (as for ``HMM``).
    subject_prior : SubjectPrior, optional
        Half-normal priors of the between-subject scales (default ``SubjectPrior()``).
    dtype : torch.dtype
        Floating-point type (default float64).

    Notes
    -----
    Parameters: ``pi (K,)``, ``A (K, K)``, the emission's (group level), then for each random
    effect ``r``: ``tau_r`` (``(K,)`` for probability rows, the parameter's shape for
    locations) and ``z_r (S, *shape of r)``. Each subject's parameters
    (:meth:`subject_params`) are stored in fits as ``<r>_subject`` with dimension
    ``subject``. The data must hold as many sequences as ``subjects`` says, in that order.

    Examples
    --------
    >>> from hmm_pyro import Gaussian, MultilevelHMM
    >>> hmm = MultilevelHMM(2, Gaussian(), subjects=["a", "a", "b"])
    >>> hmm.num_subjects, hmm.param_shapes()["z_A"]
    (2, (2, 2, 2))
    """

    kind = "multilevel"
    not_classical = "each subject has its own parameters"

    def __init__(
        self,
        num_states: int,
        emission: Emission,
        subjects: int | Sequence[Any],
        random_effects: Sequence[str] | None = None,
        prior: Prior | None = None,
        subject_prior: SubjectPrior | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if not isinstance(emission, Emission):
            raise TypeError(
                "emission: expected an Emission such as Categorical(num_symbols=V) or Gaussian(), "
                f"got {describe(emission)}"
            )
        self.subject_names, index = _subject_labels(subjects)
        self.subject_index = torch.tensor(index, dtype=torch.long)
        kinds = {TRANSITIONS: "transition", **dict(emission.random_effect_params)}
        if random_effects is None:
            random_effects = tuple(kinds)
        if isinstance(random_effects, (str, bytes)) or not isinstance(random_effects, Sequence):
            raise TypeError(
                "random_effects: expected a list of parameter names, got "
                f"{describe(random_effects)}"
            )
        random_effects = tuple(random_effects)
        if not random_effects or len(set(random_effects)) != len(random_effects):
            raise ValueError(
                f"random_effects: expected distinct names among {list(kinds)}, got "
                f"{list(random_effects)}"
            )
        for name in random_effects:
            if name not in kinds:
                raise ValueError(
                    f"random_effects: {name!r} cannot vary between subjects with {emission!r}; "
                    f"expected names among {list(kinds)}"
                )
        self.random_effects = tuple(name for name in kinds if name in random_effects)
        self._kinds = {name: kinds[name] for name in self.random_effects}
        if subject_prior is None:
            subject_prior = SubjectPrior()
        if not isinstance(subject_prior, SubjectPrior):
            raise TypeError(
                f"subject_prior: expected a hmm_pyro.SubjectPrior, got {describe(subject_prior)}"
            )
        self.subject_prior = subject_prior
        super().__init__(num_states, emission, prior, dtype)

    # ------------------------------------------------------------------ description
    @property
    def num_subjects(self) -> int:
        """Number of subjects ``S``."""
        return len(self.subject_names)

    def _base_shapes(self) -> dict[str, tuple[int, ...]]:
        num = self.num_states
        return {"pi": (num,), "A": (num, num), **self.emission.param_shapes(num)}

    def _base_dims(self) -> dict[str, tuple[str, ...]]:
        return {"pi": ("state",), "A": ("state", "state_to"), **self.emission.param_dims()}

    def _scale_shape(self, name: str) -> tuple[int, ...]:
        """Shape of ``tau_<name>``: one per row (probabilities) or per entry (locations)."""
        shape = self._base_shapes()[name]
        return shape if self._kinds[name] == "location" else shape[:-1]

    @property
    def param_names(self) -> tuple[str, ...]:
        """``pi``, ``A``, the emission's, then ``tau_<r>``, ``z_<r>`` for each random effect."""
        names = ["pi", "A", *self.emission.param_names]
        for name in self.random_effects:
            names += [f"tau_{name}", f"z_{name}"]
        return tuple(names)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of each parameter of one draw."""
        shapes = self._base_shapes()
        for name in self.random_effects:
            shapes[f"tau_{name}"] = self._scale_shape(name)
        for name in self.random_effects:
            shapes[f"z_{name}"] = (self.num_subjects, *self._base_shapes()[name])
        return {name: shapes[name] for name in self.param_names}

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        """ArviZ dimensions: ``subject`` in front of the subject-level standard normals."""
        base = self._base_dims()
        dims = dict(base)
        for name in self.random_effects:
            dims[f"tau_{name}"] = base[name][: len(self._scale_shape(name))]
            dims[f"z_{name}"] = ("subject", *base[name])
        return {name: dims[name] for name in self.param_names}

    def param_coords(self) -> dict[str, list[Any]]:
        """The emission's coordinates and the subject names."""
        return {**self.emission.param_coords(), "subject": list(self.subject_names)}

    def derived_dims(self) -> dict[str, tuple[str, ...]]:
        """``<r>_subject``: ``("subject", *dims of r)``."""
        base = self._base_dims()
        return {f"{name}_subject": ("subject", *base[name]) for name in self.random_effects}

    def potential_coordinates(self) -> dict[str, str]:
        """Scales by their logs, standard normals as they are."""
        kinds = super().potential_coordinates()
        for name in self.random_effects:
            kinds[f"tau_{name}"] = "log"
            kinds[f"z_{name}"] = "real"
        return kinds

    def potential_terms(self, data: Sequences) -> None:
        """None: the potential runs in torch (autograd through the subjects' parameters)."""
        return None

    def num_free_params(self, initial: str = "free") -> int:
        """The group level's, the scales, and ``S`` times each random effect's free entries.

        A probability row of ``W`` entries has ``W - 1`` free log-odds: the standard normal
        added to all ``W`` log-odds of a row moves nothing (see ``docs/multilevel.md``).
        """
        check_choice("initial", initial, INITIAL_MODES)
        count = super().num_free_params(initial)
        shapes = self._base_shapes()
        for name in self.random_effects:
            count += math.prod(self._scale_shape(name))
            free = math.prod(shapes[name])
            if self._kinds[name] != "location":
                free -= math.prod(shapes[name][:-1])
            count += self.num_subjects * free
        return count

    def to_config(self) -> dict[str, Any]:
        """JSON-serialisable description (``kind`` ``"multilevel"``)."""
        labels = [self.subject_names[int(s)] for s in self.subject_index]
        return {
            "kind": self.kind,
            **super().to_config(),
            "subjects": labels,
            "random_effects": list(self.random_effects),
            "subject_prior": asdict(self.subject_prior),
        }

    @classmethod
    def _from_config(cls, config: dict[str, Any]) -> MultilevelHMM:
        return cls(
            num_states=config["num_states"],
            emission=from_config(config["emission"]),
            subjects=config["subjects"],
            random_effects=config["random_effects"],
            prior=Prior(**config["prior"]),
            subject_prior=SubjectPrior(**config.get("subject_prior", {})),
            dtype=getattr(torch, config.get("dtype", "float64")),
        )

    def with_prior(self, prior: Prior) -> MultilevelHMM:
        """The same model with another group-level prior."""
        labels = [self.subject_names[int(s)] for s in self.subject_index]
        return MultilevelHMM(
            self.num_states,
            self.emission,
            labels,
            self.random_effects,
            prior,
            self.subject_prior,
            self.dtype,
        )

    def repeated(self, copies: int) -> MultilevelHMM:
        """The model of its data repeated ``copies`` times: each copy keeps its subject."""
        copies = check_int("copies", copies, minimum=1)
        if copies == 1:
            return self
        labels = [self.subject_names[int(s)] for s in self.subject_index] * copies
        return MultilevelHMM(
            self.num_states,
            self.emission,
            labels,
            self.random_effects,
            self.prior,
            self.subject_prior,
            self.dtype,
        )

    def __repr__(self) -> str:
        return (
            f"MultilevelHMM(num_states={self.num_states}, emission={self.emission!r}, "
            f"subjects={self.num_subjects} ({len(self.subject_index)} sequences), "
            f"random_effects={list(self.random_effects)})"
        )

    # ------------------------------------------------------------------ prior
    def _build_prior_distributions(self) -> dict[str, dist.TorchDistribution]:
        priors = super()._build_prior_distributions()
        shapes = self.param_shapes()
        for name in self.random_effects:
            kind = self._kinds[name]
            scale = torch.tensor(self.subject_prior.scale(kind), dtype=self.dtype)
            tau_shape = shapes[f"tau_{name}"]
            # no support checks: the potential scores NaN or overflowing coordinates as -inf
            half_normal = dist.HalfNormal(scale, validate_args=False).expand(tau_shape)
            priors[f"tau_{name}"] = half_normal.to_event(len(tau_shape))
            z_shape = shapes[f"z_{name}"]
            zero, one = torch.zeros((), dtype=self.dtype), torch.ones((), dtype=self.dtype)
            normal = dist.Normal(zero, one, validate_args=False).expand(z_shape)
            priors[f"z_{name}"] = normal.to_event(len(z_shape))
        return {name: priors[name] for name in self.param_names}

    # ------------------------------------------------------------------ validation
    def _check_transition_params(self, converted: Params) -> None:
        super()._check_transition_params(converted)
        shapes = self.param_shapes()
        for name in self.random_effects:
            for site in (f"tau_{name}", f"z_{name}"):
                value, shape = converted[site], shapes[site]
                trailing = tuple(value.shape[value.dim() - len(shape) :])
                if value.dim() < len(shape) or trailing != shape:
                    raise ValueError(
                        f"params[{site!r}]: expected trailing shape {shape}, got {describe(value)}"
                    )
                if not bool(torch.isfinite(value).all()):
                    raise ValueError(f"params[{site!r}]: expected finite values")
            if not bool((converted[f"tau_{name}"] > 0).all()):
                raise ValueError(f"params['tau_{name}']: expected scales > 0")

    def prepare_data(self, data: Any) -> Sequences:
        """The data as :class:`Sequences`, checked to hold one sequence per subject label."""
        sequences = super().prepare_data(data)
        expected = len(self.subject_index)
        if sequences.num_sequences != expected:
            raise ValueError(
                f"data: {self!r} was given the subjects of {expected} sequences, got "
                f"{sequences.num_sequences} sequences; build the model with the data's subjects"
            )
        return sequences

    # ------------------------------------------------------------------ subjects
    def subject_logs(self, params: Params, logs: Params | None = None) -> Params:
        """Each subject's random-effect parameters (logs of probability rows): ``(..., S, *shape)``.

        ``logs`` may hold ``log A`` and the logs of emission rows computed in log space.
        """
        logs = logs or {}
        result = {}
        shapes = self._base_shapes()
        for name in self.random_effects:
            tau, z = params[f"tau_{name}"], params[f"z_{name}"]
            axis = -len(shapes[name]) - 1  # the subject axis, counted from the end
            if self._kinds[name] == "location":
                result[name] = params[name].unsqueeze(axis) + tau.unsqueeze(axis) * z
                continue
            log_rows = logs[name] if name in logs else safe_log(params[name])
            deviation = tau.unsqueeze(axis + 1).unsqueeze(-1) * z
            result[name] = (log_rows.unsqueeze(axis) + deviation).log_softmax(-1)
        return result

    def subject_params(self, params: Params) -> Params:
        """Each subject's values of the random-effect parameters: ``(..., S, *shape)``."""
        logs = self.subject_logs(params)
        return {
            name: value if self._kinds[name] == "location" else value.exp()
            for name, value in logs.items()
        }

    def derived_params(self, params: Params) -> Params:
        """``<r>_subject``: each subject's value of random effect ``r``, ``(..., S, *shape)``."""
        return {f"{name}_subject": value for name, value in self.subject_params(params).items()}

    def subject_emission_params(self, params: Params) -> Params:
        """The emission parameters of every subject, ``(..., S, *shape)`` (shared ones repeated)."""
        subject = self.subject_params(params)
        shapes = self.emission.param_shapes(self.num_states)
        result = {}
        for name in self.emission.param_names:
            if name in subject:
                result[name] = subject[name]
                continue
            value = params[name]
            batch = value.shape[: value.dim() - len(shapes[name])]
            result[name] = value.unsqueeze(len(batch)).expand(
                *batch, self.num_subjects, *shapes[name]
            )
        return result

    def _members(self, data: Sequences) -> list[tuple[torch.Tensor, Sequences]]:
        """Each subject's sequence indices and its sequences (cached on the data)."""

        def build() -> list[tuple[torch.Tensor, Sequences]]:
            groups = []
            for subject in range(self.num_subjects):
                index = torch.nonzero(self.subject_index == subject).flatten()
                groups.append((index, data.select(index)))
            return groups

        return data.cached(("subjects", tuple(self.subject_index.tolist())), build)

    def _table(self, params: Params, data: Sequences, logs: Params) -> torch.Tensor:
        """The per-state log likelihood table ``(..., N, T, K)``, each subject's emissions."""
        emitted = [name for name in self.random_effects if name in self.emission.param_names]
        if not emitted:
            return self.emission.log_likelihood_table(params, data)
        subject = self.subject_logs(params, logs)
        for name in emitted:
            if self._kinds[name] != "location":
                subject[name] = subject[name].exp()
        pieces, order = [], []
        for position, (index, part) in enumerate(self._members(data)):
            own = dict(params)
            for name in emitted:
                value = subject[name]
                shape = self._base_shapes()[name]
                own[name] = value.select(value.dim() - len(shape) - 1, position)
            table = self.emission.log_likelihood_table(own, part)
            pieces.append(F.pad(table, (0, 0, 0, data.max_length - part.max_length)))
            order.append(index)
        table = torch.cat(pieces, dim=-3)
        inverse = torch.argsort(torch.cat(order))
        return table.index_select(-3, inverse)

    def _inputs(
        self, params: Params, data: Sequences, logs: Params | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        logs = logs or {}
        log_pi = logs["pi"] if "pi" in logs else safe_log(params["pi"])
        if TRANSITIONS in self.random_effects:
            log_A = self.subject_logs(params, logs)[TRANSITIONS]  # (..., S, K, K)
            log_A = log_A.index_select(-3, self.subject_index)  # (..., N, K, K)
        else:
            log_A = (logs["A"] if "A" in logs else safe_log(params["A"])).unsqueeze(-3)
        table = self._table(params, data, logs)
        return log_pi.unsqueeze(-2), log_A, table, data.lengths

    def kernel_inputs(
        self, params: Params, data: Sequences
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``log pi``, each sequence's ``log A``, the table, the lengths (the kernels' inputs).

        ``log pi (..., 1, K)``, ``log A (..., N or 1, K, K)`` (each sequence's subject's),
        the table ``(..., N, T, K)`` (each subject's emissions) and ``lengths (N,)``.
        """
        return self._inputs(params, data)

    def sequence_log_likelihood(
        self, params: Params, data: Sequences, logs: Params | None = None
    ) -> torch.Tensor:
        """Log likelihood of each sequence ``(..., N)`` under its subject's parameters.

        The fused forward kernel (:func:`hmm_pyro.kernels.log_likelihood`) with one transition
        matrix per sequence.
        """
        return kernels.log_likelihood(*self._inputs(params, data, logs))

    def chain_probabilities(
        self, params: Params, covariates: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``pi (K,)`` and each sequence's transition matrix ``(N, K, K)``."""
        if TRANSITIONS not in self.random_effects:
            return params["pi"], params["A"]
        subject = self.subject_params(params)[TRANSITIONS]
        return params["pi"], subject.index_select(-3, self.subject_index)

    def sample_observations(
        self,
        params: Params,
        states: torch.Tensor,
        generator: torch.Generator,
        covariates: Any = None,
    ) -> torch.Tensor:
        """Observations ``(N, T, D)``: each sequence's from its subject's emission parameters."""
        emitted = [name for name in self.random_effects if name in self.emission.param_names]
        if not emitted:
            return self.emission.sample_with_covariates(params, states, generator, covariates)
        subject = self.subject_emission_params(params)
        values = None
        for position in range(self.num_subjects):
            index = torch.nonzero(self.subject_index == position).flatten()
            own = {name: value[position] for name, value in subject.items()}
            drawn = self.emission.sample(own, states[index], generator)
            if values is None:
                values = torch.zeros(states.shape[0], *drawn.shape[1:], dtype=drawn.dtype)
            values[index] = drawn
        return values

    def _enumerated_likelihood(self, params: Params, data: Sequences) -> None:
        raise ValueError(
            f"marginalize: {self!r} has parameters per subject; the enumerated model is not "
            "written for it, use marginalize='forward'"
        )
