"""The one helper every plot uses to get its axes (matplotlib imported only when drawing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["_axes"]


def _axes(ax: Axes | None, **figure: Any) -> Axes:
    """Return ``ax``, or the axes of a new figure made with ``figure`` keyword arguments."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(**figure)
    return ax
