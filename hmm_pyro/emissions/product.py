"""A product of independent emission families over blocks of features.

``Product(step=Gamma(), angle=VonMises())`` models each step's observation as independent
blocks, each from its own family (any families, user-defined ones included): the first family
sees the first ``D_1`` columns, the next the following ``D_2``, and so on. The log likelihood of
a step is the sum of the blocks'; sufficient statistics, M-steps, starts and one-state fits are
the blocks' own; the Bhattacharyya coefficient of a product of laws is the product of the
blocks' coefficients (exact where each block's is). Parameters are named
``<block>_<parameter>`` (``step_rate``, ``angle_loc``).

NUTS/MAP potential: when every block's log joint is on the shared numba route
(:func:`~hmm_pyro.kernels._numba.potentials.entry_potential`: gamma, von Mises, Gaussian,
Poisson, full-covariance normal, and products of them), the product's is too, composed from the
blocks' own kernels (:class:`_BlockKernels`): each block's ``start`` gives its prior (with its
gradient) and its emission table on its columns, the tables are summed (the log density of a
step is the sum of the blocks') and go through the lane sweeps once, and each block's
``finish`` adds its likelihood gradient from the same smoothed marginals (the gradient of the
log likelihood in the summed table is gamma, the same for every block). Each block reads its
slice of the flat coordinates, which lays the blocks' parameters out one block after another.
Otherwise (a categorical block, a family given by a Pyro distribution) the potential is
evaluated in torch on the sum of the blocks' tables.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import pyro.distributions as dist
import torch
from torch.distributions import constraints
from torch.distributions.transforms import Transform

from hmm_pyro._types import Params
from hmm_pyro._validation import describe
from hmm_pyro.data import Sequences
from hmm_pyro.emissions.base import Emission, OptionError
from hmm_pyro.emissions.potential_terms import PotentialTerms, coordinate_shape
from hmm_pyro.kernels._numba import EntryKernels, entry_potential
from hmm_pyro.priors import Prior

__all__ = ["Product"]


class _ProductLaw(dist.TorchDistribution):
    """The blocks' conditional laws of one step, scored on the columns of a ``(..., D)`` value.

    Each block re-fills its own unobserved columns (with its family's fill value) and scores
    them in its own form (:meth:`Emission.observation`); the blocks' laws do the masking.
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {}
    support = constraints.real_vector

    def __init__(
        self,
        laws: list[dist.TorchDistribution],
        blocks: list[tuple[Emission, slice, torch.Tensor]],
        dim: int,
    ) -> None:
        self.laws, self.blocks = laws, blocks
        batch = torch.broadcast_shapes(*(law.batch_shape for law in laws))
        super().__init__(batch, torch.Size([dim]), validate_args=False)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for law, (family, columns, observed) in zip(self.laws, self.blocks, strict=True):
            block = torch.where(observed, value[..., columns], family.fill_value())
            total = total + law.log_prob(family.observation(block))
        return total


class _BlockKernels:
    """The blocks' :class:`~hmm_pyro.kernels._numba.EntryKernels`, run one after another.

    Arguments of :func:`~hmm_pyro.kernels._numba.potentials.entry_potential` for a product:
    ``features`` and ``observed`` are tuples of the blocks' arrays, ``hyper`` the tuple of the
    blocks' hyperparameter tuples; block ``i`` reads coordinates ``theta[ends[i - 1]:ends[i]]``
    and writes the same slice of the gradient (views: the writes reach the caller's array).

    Parameters
    ----------
    kernels : list of EntryKernels
        The blocks' kernels, in block order.
    sizes : list of int
        The number of coordinates of each block.
    """

    def __init__(self, kernels: list[EntryKernels], sizes: list[int]) -> None:
        self.kernels = kernels
        ends = np.cumsum(sizes).tolist()
        self.slices = [slice(end - size, end) for end, size in zip(ends, sizes, strict=True)]

    def start(
        self,
        theta: np.ndarray,
        grad: np.ndarray,
        jac: float,
        features: tuple[np.ndarray, ...],
        observed: tuple[np.ndarray, ...],
        *hyper: tuple[np.ndarray, ...],
    ) -> tuple[float, np.ndarray, list[Any]]:
        """The blocks' priors summed, their tables summed, and their contexts."""
        value, table, contexts = 0.0, None, []
        for kernels, part, block_features, block_observed, block_hyper in zip(
            self.kernels, self.slices, features, observed, hyper, strict=True
        ):
            prior, block_table, context = kernels.start(
                theta[part], grad[part], jac, block_features, block_observed, *block_hyper
            )
            value += prior
            table = block_table if table is None else np.add(table, block_table, out=table)
            contexts.append(context)
        return value, table, contexts

    def finish(
        self,
        theta: np.ndarray,
        contexts: list[Any],
        gamma: np.ndarray,
        features: tuple[np.ndarray, ...],
        observed: tuple[np.ndarray, ...],
        grad: np.ndarray,
    ) -> None:
        """Each block's likelihood gradient from the shared smoothed marginals."""
        for kernels, part, context, block_features, block_observed in zip(
            self.kernels, self.slices, contexts, features, observed, strict=True
        ):
            kernels.finish(theta[part], context, gamma, block_features, block_observed, grad[part])


class Product(Emission):
    """Independent emission families over consecutive blocks of the observation's columns.

    Parameters
    ----------
    **components : Emission
        At least two named families, in column order; a block of dimension ``D_i`` takes the
        next ``D_i`` columns. Names are letters, digits and ``_``.

    Notes
    -----
    All blocks share the model's :class:`~hmm_pyro.priors.Prior`, each reading its own
    fields; a field used by two blocks (two Gaussian blocks) applies to both, so give it as a
    scalar or per state.

    Examples
    --------
    >>> from hmm_pyro.emissions import Gaussian, Poisson
    >>> Product(counts=Poisson(), level=Gaussian()).param_shapes(2)
    {'counts_rate': (2,), 'level_mu': (2,), 'level_sigma': (2,)}
    """

    family = "product"

    def __init__(self, **components: Emission) -> None:
        if len(components) < 2:
            raise ValueError(
                f"components: expected at least two named families, got {len(components)}"
            )
        start = 0
        self.components: dict[str, Emission] = {}
        self._columns: dict[str, slice] = {}
        self._names: dict[str, tuple[str, str]] = {}
        for name, component in components.items():
            if not isinstance(component, Emission):
                raise TypeError(f"{name}: expected an Emission, got {describe(component)}")
            if not name.replace("_", "a").isalnum():
                raise ValueError(
                    f"components: expected names of letters, digits and '_', got {name!r}"
                )
            self.components[name] = component
            self._columns[name] = slice(start, start + component.dim)
            start += component.dim
            for param in component.param_names:
                full = f"{name}_{param}"
                if full in self._names:
                    raise ValueError(f"components: parameter name {full!r} is ambiguous")
                self._names[full] = (name, param)
        self._dim = start
        self.param_names = tuple(self._names)
        self.simplex_params = self._prefixed(lambda c: c.simplex_params)
        self.positive_params = self._prefixed(lambda c: c.positive_params)
        self.integer_valued = all(c.integer_valued for c in self.components.values())

    def _prefixed(self, names: Callable[[Emission], tuple[str, ...]]) -> tuple[str, ...]:
        return tuple(f"{name}_{param}" for name, c in self.components.items() for param in names(c))

    # ------------------------------------------------------------------ description
    @property
    def dim(self) -> int:
        """Total number of columns."""
        return self._dim

    def param_shapes(self, num_states: int) -> dict[str, tuple[int, ...]]:
        """The blocks' parameter shapes under their prefixed names."""
        return {
            f"{name}_{param}": shape
            for name, c in self.components.items()
            for param, shape in c.param_shapes(num_states).items()
        }

    def param_dims(self) -> dict[str, tuple[str, ...]]:
        """The blocks' dimension names, prefixed with the block's name (except ``"state"``)."""
        return {
            f"{name}_{param}": ("state", *(f"{name}_{dim}" for dim in dims[1:]))
            for name, c in self.components.items()
            for param, dims in c.param_dims().items()
        }

    def num_free_params(self, num_states: int) -> int:
        """Sum over the blocks."""
        return sum(c.num_free_params(num_states) for c in self.components.values())

    def to_config(self) -> dict[str, Any]:
        """``{"family": "product", "components": {name: config}}``."""
        return {
            "family": self.family,
            "components": {name: c.to_config() for name, c in self.components.items()},
        }

    @classmethod
    def from_config_options(
        cls, options: Mapping[str, Any], build: Callable[[Mapping[str, Any]], Emission]
    ) -> Product:
        """The blocks rebuilt by ``build``."""
        components = options.get("components")
        if not isinstance(components, Mapping):
            raise ValueError(f"config: expected the components of a product, got {components!r}")
        return cls(**{name: build(config) for name, config in components.items()})

    @classmethod
    def from_options(
        cls,
        data: Sequences | None = None,
        num_symbols: int | None = None,
        dim: int | None = None,
        blocks: Mapping[str, type[Emission] | tuple[type[Emission], int]] | None = None,
    ) -> Product:
        """The product of ``blocks`` (the CLI's ``--emission product --blocks ...``).

        Each block is built by its family's :meth:`Emission.from_options` on its columns
        (with its width as ``dim``): a categorical block reads its symbols from its column,
        for example.

        Parameters
        ----------
        data : Sequences, optional
            The observations: their columns, in block order.
        num_symbols : int, optional
            Not an option of a product (a categorical block counts its own symbols).
        dim : int, optional
            The total width, if given (a store's dimension): must be the blocks' total.
        blocks : mapping
            Block name -> family class, or ``(family class, number of columns)``; in column
            order; a class alone takes one column.

        Returns
        -------
        Product

        Raises
        ------
        OptionError
            With ``argument`` ``"blocks"`` for anything about the blocks (missing, widths that
            do not add up to the data's, a block its family refuses).
        """
        if num_symbols is not None:
            raise OptionError(
                "num_symbols",
                f"not an option of a product, got {num_symbols} (a categorical block counts "
                "the symbols of its column)",
            )
        if not blocks:
            raise OptionError(
                "blocks", "expected the product's blocks: a name and a family each, in column order"
            )
        widths: dict[str, tuple[type[Emission], int]] = {}
        for name, spec in blocks.items():
            family, width = spec if isinstance(spec, tuple) else (spec, 1)
            if not (isinstance(family, type) and issubclass(family, Emission)):
                raise OptionError("blocks", f"block {name!r}: expected a family, got {spec!r}")
            if issubclass(family, Product):
                raise OptionError("blocks", f"block {name!r}: a nested product is built in Python")
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise OptionError(
                    "blocks", f"block {name!r}: expected a number of columns >= 1, got {width!r}"
                )
            widths[name] = (family, width)
        if len(widths) < 2:
            raise OptionError("blocks", f"expected at least two blocks, got {len(widths)}")
        total = sum(width for _, width in widths.values())
        layout = ", ".join(f"{name} {width}" for name, (_, width) in widths.items())
        if dim is not None and dim != total:
            raise OptionError("dim", f"the blocks take {total} columns ({layout}), got {dim}")
        if data is not None and data.dim != total:
            raise OptionError(
                "blocks", f"the blocks take {total} columns ({layout}), the data have {data.dim}"
            )
        components, start = {}, 0
        for name, (family, width) in widths.items():
            part = None
            if data is not None:
                values = data.values[:, :, start : start + width].numpy()
                part = Sequences(values, lengths=data.lengths.numpy(), dim=width)
            start += width
            try:
                components[name] = family.from_options(data=part, dim=width)
            except ValueError as error:
                raise OptionError("blocks", f"block {name!r}: {error}") from None
        try:
            return cls(**components)
        except ValueError as error:  # the constructor's "components: ..." about the names
            raise OptionError("blocks", str(error).partition(": ")[2]) from None

    def _split(self, values: Mapping[str, torch.Tensor], name: str) -> Params:
        """The entries of block ``name``, unprefixed (other keys ignored)."""
        prefix = f"{name}_"
        return {key[len(prefix) :]: v for key, v in values.items() if key.startswith(prefix)}

    def _block_params(self, params: Params, name: str) -> Params:
        return {param: params[f"{name}_{param}"] for param in self.components[name].param_names}

    def _data(self, data: Sequences, name: str) -> Sequences:
        """Block ``name``'s columns as :class:`Sequences` (cached on ``data``)."""
        columns = self._columns[name]

        def build() -> Sequences:
            values = data.values[:, :, columns].numpy()
            return Sequences(values, lengths=data.lengths.numpy(), dim=values.shape[-1])

        return data.cached(("product_columns", columns.start, columns.stop), build)

    # ------------------------------------------------------------------ data and prior
    def validate_data(self, data: Sequences) -> None:
        """The dimension, then each block's checks on its columns (errors name the block)."""
        self._check_dim(data)
        for name, c in self.components.items():
            try:
                c.validate_data(self._data(data, name))
            except ValueError as error:  # "data: ..." about the block's columns: name the block
                message = str(error)
                if message.startswith("data: "):
                    message = f"data: block {name!r}: {message[len('data: ') :]}"
                raise ValueError(message) from None

    def prior_distributions(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, dist.TorchDistribution]:
        """The blocks' priors."""
        return {
            f"{name}_{param}": d
            for name, c in self.components.items()
            for param, d in c.prior_distributions(prior, num_states, dtype).items()
        }

    def prior_hyperparameters(
        self, prior: Prior, num_states: int, dtype: torch.dtype
    ) -> dict[str, torch.Tensor]:
        """The blocks' hyperparameters, keyed ``<block>_<field>``."""
        return {
            f"{name}_{key}": value
            for name, c in self.components.items()
            for key, value in c.prior_hyperparameters(prior, num_states, dtype).items()
        }

    def prior_fields_for_states(
        self, prior: Prior, num_states: int, keep: list[int]
    ) -> dict[str, torch.Tensor]:
        """The blocks' prior fields for the states ``keep``.

        Blocks of one family read the same :class:`~hmm_pyro.priors.Prior` fields; where two
        blocks resolve a field to arrays of different widths (features), the field keeps one
        value per state, a ``(K, 1)`` column that both widths broadcast from. Fields that differ
        feature by feature between blocks cannot be restricted and raise ``ValueError``.
        """
        fields: dict[str, torch.Tensor] = {}
        for block in self.components.values():
            for name, value in block.prior_fields_for_states(prior, num_states, keep).items():
                if name not in fields or torch.equal(fields[name], value):
                    fields[name] = value
                    continue
                per_state = [v.reshape(len(keep), -1) for v in (fields[name], value)]
                if not all(torch.equal(v, v[:, :1].expand_as(v)) for v in per_state) or (
                    not torch.equal(per_state[0][:, 0], per_state[1][:, 0])
                ):
                    raise ValueError(
                        f"prior: field {name!r} differs between the product's blocks feature "
                        "by feature; the model cannot be restricted to fewer states"
                    )
                fields[name] = per_state[0][:, :1]
        return fields

    # ------------------------------------------------------------------ point estimation
    def weighted_statistics(self, data: Sequences, weights: torch.Tensor) -> Params:
        """The blocks' statistics, keyed ``<block>_<statistic>``."""
        return {
            f"{name}_{key}": value
            for name, c in self.components.items()
            for key, value in c.weighted_statistics(self._data(data, name), weights).items()
        }

    def maximize(
        self,
        statistics: Params,
        hyperparameters: Params,
        previous: Params | None,
        use_prior: bool,
    ) -> Params:
        """Each block's M-step on its statistics."""
        result = {}
        for name, c in self.components.items():
            old = None if previous is None else self._block_params(previous, name)
            block = c.maximize(
                self._split(statistics, name), self._split(hyperparameters, name), old, use_prior
            )
            result.update({f"{name}_{param}": value for param, value in block.items()})
        return result

    def pooled_params(self, data: Sequences) -> Params:
        """The blocks' one-state fits."""
        return {
            f"{name}_{param}": value
            for name, c in self.components.items()
            for param, value in c.pooled_params(self._data(data, name)).items()
        }

    def start_from_data(
        self, data: Sequences, num_states: int, generator: torch.Generator, dtype: torch.dtype
    ) -> Params:
        """The blocks' data-driven starts (in block order, from the same generator)."""
        return {
            f"{name}_{param}": value
            for name, c in self.components.items()
            for param, value in c.start_from_data(
                self._data(data, name), num_states, generator, dtype
            ).items()
        }

    # ------------------------------------------------------------------ likelihood
    def fill_value(self) -> float:
        """Zero (each block re-fills its own columns: :meth:`log_likelihood_table`)."""
        return 0.0

    def _log_prob_elementwise(self, params: Params, values: torch.Tensor) -> torch.Tensor:
        """The blocks' scores side by side: ``(..., N, T, K, W)`` (``W`` columns of scores)."""
        return torch.cat(
            [
                c._log_prob_elementwise(
                    self._block_params(params, name), values[..., self._columns[name]]
                )
                for name, c in self.components.items()
            ],
            dim=-1,
        )

    def log_likelihood_table(self, params: Params, data: Sequences) -> torch.Tensor:
        """Sum of the blocks' tables, each on its columns (with its own missing entries)."""
        return sum(
            c.log_likelihood_table(self._block_params(params, name), self._data(data, name))
            for name, c in self.components.items()
        )

    def conditional(
        self, params: Params, states: torch.Tensor, observed: torch.Tensor
    ) -> dist.TorchDistribution:
        """The blocks' conditionals, scored together on the step's columns."""
        laws, blocks = [], []
        for name, c in self.components.items():
            columns = self._columns[name]
            block = self._block_params(params, name)
            laws.append(c.conditional(block, states, observed[..., columns]))
            blocks.append((c, columns, observed[..., columns]))
        return _ProductLaw(laws, blocks, self._dim)

    def sample(
        self, params: Params, states: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """The blocks' draws side by side, ``(*states.shape, D)`` (in block order)."""
        draws = [
            c.sample(self._block_params(params, name), states, generator)
            for name, c in self.components.items()
        ]
        dtype = functools.reduce(torch.promote_types, (d.dtype for d in draws))
        return torch.cat([d.to(dtype) for d in draws], dim=-1)

    # ------------------------------------------------------------------ distances, summaries
    def bhattacharyya(self, params: Params) -> torch.Tensor:
        """Product of the blocks' coefficients (independent blocks)."""
        result = None
        for name, c in self.components.items():
            coefficient = c.bhattacharyya(self._block_params(params, name))
            result = coefficient if result is None else result * coefficient
        return result

    def location(self, params: Params) -> torch.Tensor:
        """The first block's location."""
        name, c = next(iter(self.components.items()))
        return c.location(self._block_params(params, name))

    def _values_pass(self, name: str, value: torch.Tensor) -> bool:
        """The block's own quick check."""
        block, param = self._names[name]
        return self.components[block]._values_pass(param, value)

    def _check_param_values(self, name: str, value: torch.Tensor) -> None:
        block, param = self._names[name]
        self.components[block]._check_param_values(param, value)

    # ------------------------------------------------------------------ potential (NUTS/MAP)
    def potential_coordinates(self) -> dict[str, str]:
        """The blocks' coordinate kinds."""
        return {
            f"{name}_{param}": kind
            for name, c in self.components.items()
            for param, kind in c.potential_coordinates().items()
        }

    def bijection(self, name: str) -> Transform:
        """The block's transform of that parameter."""
        if name not in self._names:
            return super().bijection(name)
        block, param = self._names[name]
        return self.components[block].bijection(param)

    def _num_coordinates(self, name: str, num_states: int) -> int:
        """The number of flat NUTS/MAP coordinates of block ``name``."""
        block = self.components[name]
        kinds = block.potential_coordinates()
        return sum(
            math.prod(
                coordinate_shape(
                    kinds[param],
                    shape,
                    block.bijection(param) if kinds[param] == "bijection" else None,
                )
            )
            for param, shape in block.param_shapes(num_states).items()
        )

    def potential_terms(
        self, prior: Prior, num_states: int, dtype: torch.dtype, data: Sequences
    ) -> PotentialTerms | None:
        """The blocks' numba terms composed (module notes), or ``None`` (the torch route).

        ``None`` unless every block's terms are on the shared route
        :func:`~hmm_pyro.kernels._numba.potentials.entry_potential`.

        A block's terms on that route carry that function's arguments after ``z``, ``alpha_pi``
        and ``alpha_A``: ``(kernels, hyper, features, observed, lengths)``.
        """
        kernels, sizes, hyper, features, observed = [], [], [], [], []
        constant, lengths = 0.0, None
        for name, block in self.components.items():
            terms = block.potential_terms(prior, num_states, dtype, self._data(data, name))
            if terms is None or terms.function is not entry_potential:
                return None
            block_kernels, block_hyper, block_features, block_observed, lengths = terms.arguments
            kernels.append(block_kernels)
            sizes.append(self._num_coordinates(name, num_states))
            hyper.append(block_hyper)
            features.append(block_features)
            observed.append(block_observed)
            constant += terms.constant
        composed = _BlockKernels(kernels, sizes)
        arguments = (
            EntryKernels(composed.start, composed.finish),
            tuple(hyper),
            tuple(features),
            tuple(observed),
            lengths,
        )
        return PotentialTerms(entry_potential, arguments, constant)
