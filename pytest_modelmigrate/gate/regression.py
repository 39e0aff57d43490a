"""One regression type for every source: per test, per group, dataset, baseline, sequential.

Pure module (no pytest).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["SOURCES", "Regression", "fmt_p", "fmt_p_pair", "pct"]

# test/group: the fixed-N comparison with the incumbent; dataset: a dataset rule (accuracy,
# class recall, min_accuracy); baseline: this run against a saved one; sequential: the
# --samples=auto stopping rule; score: a judge, similarity or probability score compared paired.
SOURCES = ("test", "group", "dataset", "baseline", "sequential", "score")


def pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100.0 * rate:.0f}%"


def fmt_p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def fmt_p_pair(p: float, adjusted: float | None, prefix: str = "") -> str:
    """``p=0.004`` or, when the correction changed it, ``p=0.004, adj. p=0.048``."""
    text = f"{prefix}p={fmt_p(p)}"
    if adjusted is not None and fmt_p(adjusted) != fmt_p(p):
        text += f", adj. {prefix}p={fmt_p(adjusted)}"
    return text


@dataclass(frozen=True)
class Regression:
    """A decided regression of ``candidate`` (for a baseline: the model that regressed).

    ``test`` is None for a group-level one. ``summary`` says what regressed with its numbers,
    and is what every report quotes. ``p_value`` is None when decided without a test (one
    sample per model: deterministic replay; a dataset rule); ``p_adjusted`` is the p-value after
    the multiple-comparison correction, the one compared with alpha.
    """

    source: str
    group: str
    test: str | None
    candidate: str
    summary: str
    incumbent_rate: float | None = None
    candidate_rate: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"regression source must be one of {', '.join(SOURCES)}; got {self.source!r}")

    @classmethod
    def measured(
        cls,
        source: str,
        group: str,
        test: str | None,
        candidate: str,
        incumbent_rate: float,
        candidate_rate: float,
        p_value: float | None,
        p_adjusted: float | None,
    ) -> Regression:
        """A pass-rate regression: the summary names the test (or group), both rates and the p-value."""
        where = test if test is not None else f"group {group}"
        p = "deterministic" if p_value is None else fmt_p_pair(p_value, p_adjusted)
        summary = f"{where} {pct(incumbent_rate)} -> {pct(candidate_rate)} ({p})"
        return cls(
            source, group, test, candidate, summary, incumbent_rate, candidate_rate, p_value, p_adjusted
        )

    @property
    def against_baseline(self) -> bool:
        return self.source == "baseline"

    def describe(self) -> str:
        return self.summary

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Regression:
        values: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__}
        return cls(**values)
