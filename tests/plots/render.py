"""Render a figure (Agg) and check its text: nothing clipped by the figure edge, no overlaps.

:func:`drawn_texts` records every text artist matplotlib actually draws (tick labels of ticks
outside the view are created but never drawn, so walking the artist tree would over-count);
:func:`check_layout` then requires every drawn text's window extent to lie inside the figure
and no two drawn texts to overlap (tick labels that collide, a title over a legend, ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

TOLERANCE = 1.0
"""Pixels a text may reach past the figure edge or into another text (anti-aliasing)."""


@dataclass(frozen=True)
class DrawnText:
    """A text as drawn: its string and window extent in pixels."""

    text: str
    extent: Bbox


def drawn_texts(figure: Figure) -> list[DrawnText]:
    """Draw ``figure`` on its canvas and return every non-empty text artist drawn."""
    drawn: list[DrawnText] = []
    original = Text.draw

    def recording(self: Text, renderer: object) -> None:
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append(DrawnText(self.get_text(), self.get_window_extent(renderer)))

    with mock.patch.object(Text, "draw", recording):
        figure.canvas.draw()
    return drawn


def layout_problems(figure: Figure) -> list[str]:
    """Texts that cross the figure edge, and pairs of texts that overlap, in words."""
    texts = drawn_texts(figure)
    box = figure.bbox
    problems = []
    for item in texts:
        extent = item.extent
        if (
            extent.x0 < box.x0 - TOLERANCE
            or extent.y0 < box.y0 - TOLERANCE
            or extent.x1 > box.x1 + TOLERANCE
            or extent.y1 > box.y1 + TOLERANCE
        ):
            corners = f"({extent.x0:.0f}, {extent.y0:.0f})-({extent.x1:.0f}, {extent.y1:.0f})"
            size = f"{box.width:.0f} x {box.height:.0f}"
            problems.append(f"clipped: {item.text!r} at {corners} px, outside the {size} figure")
    for first in range(len(texts)):
        for second in range(first + 1, len(texts)):
            a, b = texts[first].extent, texts[second].extent
            overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
            overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
            if overlap_x > TOLERANCE and overlap_y > TOLERANCE:
                problems.append(f"overlap: {texts[first].text!r} and {texts[second].text!r}")
    return problems


def check_layout(figure: Figure) -> list[DrawnText]:
    """Assert that no text is clipped or overlaps another; return the drawn texts."""
    problems = layout_problems(figure)
    assert not problems, "\n".join(problems)
    return drawn_texts(figure)


@contextmanager
def checked_savefig() -> Iterator[list[str]]:
    """Within the block, every ``Figure.savefig`` first checks the figure's layout.

    Yields the list of saved file names (checked before saving; the final name of a file
    written through ``hmm_pyro._io.atomic_path``). For scripts that save their own figures,
    e.g. the examples.
    """
    saved: list[str] = []
    original = Figure.savefig

    def checking(self: Figure, fname: object, *args: object, **kwargs: object) -> None:
        problems = layout_problems(self)
        assert not problems, f"{fname}:\n" + "\n".join(problems)
        saved.append(re.sub(r"^\.(.+)\.\w+\.tmp\.\w+$", r"\1", Path(str(fname)).name))
        original(self, fname, *args, **kwargs)

    with mock.patch.object(Figure, "savefig", checking):
        yield saved
