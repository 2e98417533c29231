"""How an emission family names its entries and symbols in outputs (ArviZ, tables, plots).

:class:`EmissionNames` is the part of the :class:`~hmm_pyro.emissions.Emission` interface that
labels entries; families override what they name differently (symbols, coordinates).
"""

from __future__ import annotations

from typing import Any

__all__ = ["EmissionNames"]


class EmissionNames:
    """Labels of an emission family's parameter entries.

    :class:`~hmm_pyro.emissions.Emission` inherits it.
    """

    def entry_label(self, name: str, state: int, index: int) -> str:
        """Short label of entry ``index`` (last axis) of parameter ``name`` for ``state``.

        The default is ``"name[state]"``.
        """
        return f"{name}[{state}]"

    def entry_axis_label(self) -> str | None:
        """Axis label for a row of :meth:`entry_label` labels (``None``: none needed)."""
        return None

    @property
    def symbol_names(self) -> tuple[str, ...] | None:
        """Names of the observed symbols (text data), or ``None`` when observations are numbers.

        Data with named symbols (:attr:`hmm_pyro.Sequences.symbols`) fit only a family whose
        names are the same (:meth:`hmm_pyro.HMM.prepare_data` checks).
        """
        return None

    def param_coords(self) -> dict[str, list[Any]]:
        """Coordinate values of the dimensions of :meth:`param_dims` that are not ``0 .. n-1``.

        For the ArviZ output (and so the summaries and plots): e.g. the symbol names.
        """
        return {}
