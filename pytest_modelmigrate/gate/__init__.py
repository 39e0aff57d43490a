"""The migration gate: compare each candidate with the incumbent, then decide once.

Pure package (no pytest): :mod:`.compare` is the fixed-N statistics, :mod:`.regression` the
one regression type, :mod:`.decision` the one verdict function. The rules are in ``docs/gate.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .compare import (
    CORRECTIONS,
    FINDINGS,
    MODES,
    VERDICTS,
    Comparison,
    GatePolicy,
    Tally,
    TestComparison,
    TestDesign,
    Verdict,
    compare,
)
from .decision import Decision, decide, gate_line, gate_lines
from .regression import SOURCES, Regression

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "CORRECTIONS",
    "FINDINGS",
    "MODES",
    "SOURCES",
    "VERDICTS",
    "Comparison",
    "Decision",
    "GatePolicy",
    "Regression",
    "Tally",
    "TestComparison",
    "TestDesign",
    "Verdict",
    "compare",
    "decide",
    "evaluate",
    "gate_line",
    "gate_lines",
]


def evaluate(
    groups: Mapping[str, Mapping[str, Mapping[str, Tally]]], models: Sequence[str], policy: GatePolicy
) -> Decision:
    """The decision from the pass-rate matrix alone (no dataset, baseline or sequential source)."""
    return decide(compare(groups, models, policy), policy)
