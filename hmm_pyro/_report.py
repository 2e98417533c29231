"""What the results of :func:`hmm_pyro.compare_priors` and :func:`hmm_pyro.sweep` share.

:class:`TableReport` gives a result with a ``table``, ``to_dict()`` and ``to_markdown()`` its
JSON text and its three report files; :func:`markdown_table` writes the tables of the Markdown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hmm_pyro._io import atomic_path, write_text_atomic

__all__ = ["TableReport", "markdown_table"]


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, (float, np.floating)):
        return "nan" if not np.isfinite(value) else f"{value:.{digits}g}"
    return str(value).replace("|", "/")


def markdown_table(frame: pd.DataFrame, digits: int) -> str:
    """A data frame as a Markdown table (its columns; the index is left out).

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows to show.
    digits : int
        Significant digits of floating-point cells (``"nan"`` for NaN and infinities); other
        cells are their text with ``"|"`` replaced by ``"/"``.

    Returns
    -------
    str
        Header, rule and one line per row, without a final newline.
    """
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = [
        "| " + " | ".join(_cell(value, digits) for value in row) + " |"
        for row in frame.itertuples(False)
    ]
    return "\n".join([header, rule, *body])


class TableReport:
    """Base of a result with a ``table``, :meth:`to_dict` and :meth:`to_markdown`."""

    table: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict of the result."""
        raise NotImplementedError

    def to_markdown(self) -> str:
        """A Markdown report of the result."""
        raise NotImplementedError

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def _write_reports(self, out_dir: str | Path, prefix: str) -> dict[str, Path]:
        """Write ``{prefix}.csv`` (the table), ``.json`` and ``.md`` atomically; their paths."""
        out_dir = Path(out_dir)
        paths = {
            "csv": out_dir / f"{prefix}.csv",
            "json": out_dir / f"{prefix}.json",
            "markdown": out_dir / f"{prefix}.md",
        }
        with atomic_path(paths["csv"]) as temporary:
            self.table.to_csv(temporary)
        write_text_atomic(paths["json"], self.to_json() + "\n")
        write_text_atomic(paths["markdown"], self.to_markdown() + "\n")
        return paths
