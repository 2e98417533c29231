"""``DegeneracyReport``: the flags raised by :func:`hmm_pyro.diagnose` and what was measured."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hmm_pyro.diagnostics.flags import Flag, jsonable

__all__ = ["DegeneracyReport"]


@dataclass(frozen=True)
class DegeneracyReport:
    """Result of :func:`hmm_pyro.diagnose`.

    Parameters
    ----------
    flags : tuple of Flag
        Problems found: flags about the model's structure first (errors, then warnings), then
        the others (errors first); the first flag's cause and remedy are the report's answer.
    measurements : dict
        Everything measured, by check (``"collapse"``, ``"occupancy"``, ``"contraction"``,
        ``"symmetric_start"``, ``"label_switching"``, ``"convergence"``, ...).
    notes : tuple of str
        Checks that were skipped and why.
    context : dict
        Method, number of states, chains and draws of the diagnosed fit.

    Examples
    --------
    >>> report = hmm_pyro.diagnose(fit)  # doctest: +SKIP
    >>> report.ok, [flag.kind for flag in report.flags]  # doctest: +SKIP
    (True, [])
    """

    flags: tuple[Flag, ...]
    measurements: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No flag was raised."""
        return not self.flags

    @property
    def kinds(self) -> tuple[str, ...]:
        """Kinds of the raised flags."""
        return tuple(flag.kind for flag in self.flags)

    def flag(self, kind: str) -> Flag | None:
        """The flag of this kind, or ``None``."""
        return next((flag for flag in self.flags if flag.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (``json.dumps(report.to_dict())`` works)."""
        return {
            "ok": self.ok,
            "context": jsonable(self.context),
            "flags": [flag.to_dict() for flag in self.flags],
            "measurements": jsonable(self.measurements),
            "notes": list(self.notes),
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def _headline(self) -> str:
        context = ", ".join(f"{key}={value}" for key, value in self.context.items())
        if self.ok:
            return f"No degeneracy found ({context})."
        errors = sum(flag.severity == "error" for flag in self.flags)
        warnings = len(self.flags) - errors
        return f"{errors} error(s), {warnings} warning(s) ({context})."

    def to_markdown(self) -> str:
        """A Markdown report: headline, one section per flag, key measurements, notes."""
        lines = ["# Degeneracy report", "", self._headline(), ""]
        if self.flags:
            lines += ["| flag | severity | finding |", "|---|---|---|"]
            lines += [f"| `{f.kind}` | {f.severity} | {f.summary} |" for f in self.flags]
            lines.append("")
        for flag in self.flags:
            lines += [f"## `{flag.kind}` ({flag.severity})", "", flag.summary, ""]
            lines.append(f"- **Cause:** {flag.cause}")
            measured = ", ".join(f"{k} = {_short(v)}" for k, v in flag.measured.items())
            threshold = ", ".join(f"{k} = {_short(v)}" for k, v in flag.threshold.items())
            lines.append(f"- **Measured:** {measured}")
            lines.append(f"- **Threshold:** {threshold}")
            if flag.states:
                lines.append(f"- **States:** {list(flag.states)}")
            lines.append("- **Remedies:**")
            lines += [f"  - *{r.value}*: {r.advice}" for r in flag.remedies]
            lines.append("")
        summary = self.measurements.get("summary", {})
        if summary:
            lines += ["## Key measurements", ""]
            lines += [f"- {key}: {_short(value)}" for key, value in summary.items()]
            lines.append("")
        if self.notes:
            lines += ["## Notes", ""]
            lines += [f"- {note}" for note in self.notes]
            lines.append("")
        return "\n".join(lines)

    def __str__(self) -> str:
        lines = [f"DegeneracyReport: {self._headline()}"]
        lines += [f"  {flag}" for flag in self.flags]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _short(value: Any) -> str:
    """Compact text for a measured value (floats to 3 significant digits)."""
    value = jsonable(value)
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    return str(value)
