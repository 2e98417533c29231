"""Axes helpers every plot uses (matplotlib imported only when drawing).

* :func:`_axes` - the given axes, or those of a new figure laid out so that nothing is clipped.
* :func:`label_ticks` - name the integer positions of an axis, thinned at draw time so that the
  labels never collide, however many there are and whatever the size of the axes.
* :func:`wrap` - break a long title or axis label into lines of a given width.
* :func:`show_message` - an axes that says why there is nothing to draw (never an empty plot).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure

__all__ = [
    "_axes",
    "first_axes",
    "fitted",
    "label_ticks",
    "new_figure",
    "show_message",
    "state_colours",
    "wrap",
]

LABEL_GAP = 1.35
"""Room per tick label across the axis, in font sizes (a label's line height and some space)."""
CHARACTER_WIDTH = 0.6
"""Width of an average character in font sizes (DejaVu Sans), to estimate label widths."""


def new_figure(**figure: Any) -> Figure:
    """A new figure with constrained layout (titles, labels, legends and colour bars fit)."""
    import matplotlib.pyplot as plt

    return plt.figure(layout="constrained", **figure)


def _axes(ax: Axes | None, **figure: Any) -> Axes:
    """Return ``ax``, or the axes of a new constrained-layout figure (``figure`` keywords)."""
    if ax is not None:
        return ax
    return new_figure(**figure).add_subplot()


def state_colours(num: int) -> list[Any]:
    """One distinct colour per state: tab10, tab20 up to 20 states, then viridis samples."""
    import matplotlib as mpl

    if num <= 10:
        return [f"C{k}" for k in range(num)]
    if num <= 20:
        return list(mpl.colormaps["tab20"].colors[:num])
    return [mpl.colormaps["viridis"](k / (num - 1)) for k in range(num)]


def wrap(text: str, width: int) -> str:
    """``text`` broken into lines of at most ``width`` characters (words kept whole)."""
    return "\n".join(textwrap.wrap(text, width=width, break_on_hyphens=False)) or text


def fitted(ax: Axes, text: str, fontsize: Any = "large", along: str = "x") -> str:
    """``text`` wrapped to the width (``along="x"``) or height (``"y"``) of ``ax`` at ``fontsize``.

    The axes' size is read from its current position, before any layout: an estimate that
    keeps titles and axis labels of new figures within the figure (constrained layout then
    only shrinks the axes a little).
    """
    figure = ax.figure
    box = ax.get_position()
    length = (
        box.width * figure.get_figwidth() if along == "x" else box.height * figure.get_figheight()
    )
    return wrap(text, max(16, int(0.95 * length * 72 / (_points(fontsize) * CHARACTER_WIDTH))))


def _points(fontsize: Any) -> float:
    from matplotlib.font_manager import FontProperties

    return float(FontProperties(size=fontsize).get_size_in_points())


def label_ticks(
    axis: Axis,
    labels: Sequence[str],
    fontsize: Any = "small",
    rotation: float | None = None,
) -> None:
    """Label positions ``0 .. len(labels) - 1`` of ``axis``, as many as fit without colliding.

    Every label is used when there is room; otherwise every second, third, ..., fifth, tenth,
    twentieth, ... (decided when the figure is drawn, from the length of the axis, so it holds
    for any axes size). Labels of an x axis are turned by 90 degrees when they would not fit
    side by side.

    Parameters
    ----------
    axis : matplotlib.axis.Axis
        ``ax.xaxis`` or ``ax.yaxis``.
    labels : sequence of str
        The name of each integer position.
    fontsize : str or float
        Size of the tick labels.
    rotation : float, optional
        Angle of x-axis labels (default: 0 when the labels fit side by side, else 90); y-axis
        labels stay horizontal.
    """
    from matplotlib.ticker import FuncFormatter, Locator

    labels = [str(label) for label in labels]
    points = _points(fontsize)
    vertical = axis.axis_name == "y"
    longest = max((len(label) for label in labels), default=1)
    wide, high = (longest * CHARACTER_WIDTH + 1.0) * points, LABEL_GAP * points
    if vertical:
        rotation = 0.0
    elif rotation is None:
        figure = axis.axes.figure
        available = axis.axes.get_position().width * figure.get_figwidth() * 72
        rotation = 0.0 if wide * len(labels) <= available else 90.0
    # room one label takes along the axis: its height on a y axis, its rotated extent on x
    angle = math.radians(rotation)
    spacing = high if vertical else wide * abs(math.cos(angle)) + high * abs(math.sin(angle))

    class Thinned(Locator):
        """Every ``step``-th position: 1 to 5, then 10, 20, 25, 50, 100, ... (what fits)."""

        def __call__(self) -> list[int]:
            return self.tick_values(*axis.get_view_interval())

        def tick_values(self, vmin: float, vmax: float) -> list[int]:
            box = axis.axes.bbox
            length = (box.height if vertical else box.width) * 72 / axis.axes.figure.dpi
            low, high = sorted((vmin, vmax))
            first, last = max(0, math.ceil(low)), min(len(labels) - 1, math.floor(high))
            if last < first:
                return []
            shown = max(1, int(length * (last - first + 1) / max(high - low, 1e-9) / spacing))
            step = _step(math.ceil((last - first + 1) / shown))
            return list(range(math.ceil(first / step) * step, last + 1, step))

    axis.set_major_locator(Thinned())
    axis.set_major_formatter(
        FuncFormatter(
            lambda value, _: labels[round(float(value))] if 0 <= value < len(labels) else ""
        )
    )
    axis.set_tick_params(labelsize=fontsize, labelrotation=rotation)


def _step(minimum: int) -> int:
    """``minimum`` up to 5, then the smallest of 10, 20, 25, 50, 100, ... at least ``minimum``."""
    if minimum <= 5:
        return max(1, minimum)
    scale = 10 ** math.floor(math.log10(minimum))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * scale >= minimum:
            return int(factor * scale)
    return int(10 * scale)


def show_message(ax: Axes, title: str, message: str) -> Axes:
    """Title ``ax``, hide its frame and ticks and write ``message`` (why nothing is drawn).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The axes.
    title : str
        Its title (the plot that would have been there).
    message : str
        The reason, wrapped to the width of the axes.

    Returns
    -------
    matplotlib.axes.Axes
    """
    ax.set_title(fitted(ax, title))
    ax.set_axis_off()
    text = fitted(ax, message, fontsize="medium")
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    return ax


def first_axes(drawn: Any) -> Axes:
    """The first axes of what a plot function returned (one axes or an array of them)."""
    return np.ravel(np.asarray(drawn, dtype=object))[0]
