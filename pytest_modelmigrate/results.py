"""JSON-safe outcome records and their aggregation into the test × model matrix.

Pure module: no pytest import. Workers put one record per (test, model) in
``report.user_properties`` under :data:`PROPERTY`; the controller feeds every report it sees
(its own or replayed from xdist workers) to :class:`OutcomeLog`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PROPERTY = "modelmigrate"
RECORD_VERSION = 1

# Outcomes of one (test, model).
FAILED, ERROR, PASSED, SKIPPED, XFAILED, XPASSED, MISSING = (
    "failed",
    "error",
    "passed",
    "skipped",
    "xfailed",
    "xpassed",
    "missing",
)
OUTCOMES = (PASSED, FAILED, XFAILED, XPASSED, SKIPPED, ERROR, MISSING)
_COUNTS_AS_PASS = {PASSED, XPASSED}
# Outcomes that say something about the model: the only ones a pass rate counts. An expected
# failure is accepted, a skip or a setup error ran nothing of the model's, and a missing or
# stale recording is a gap in the evidence, never the model failing.
EVIDENCE = {PASSED, FAILED, XPASSED}


def percent(passed: int, total: int) -> str:
    """``97``: the pass rate in whole percent, never rounded to 100 with a failure in it (``99.8``),
    nor to 0 with a pass in it (``0.2``)."""
    rate = 100.0 * passed / total
    text = f"{rate:.0f}"
    if text == "100" and passed < total:
        text = f"{math.floor(rate * 10) / 10:.1f}"
    elif text == "0" and passed > 0:
        text = f"{math.ceil(rate * 10) / 10:.1f}"
    return text


def cell_label(passed: int, total: int, outcomes: Iterable[str]) -> str:
    """How every renderer shows a matrix cell: ``7/7 100%``, or why it has no evidence."""
    if total:
        return f"{passed}/{total} {percent(passed, total):>3}%"
    seen = set(outcomes)
    for outcome, label in ((MISSING, "missing"), (XFAILED, "xfail"), (ERROR, "error")):
        if outcome in seen:
            return label
    return "-"


def split_model_id(nodeid: str, model_ids: Iterable[str]) -> tuple[str, str] | None:
    """``path::test[case-gpt-4o]`` → (``path::test[case]``, ``gpt-4o``) for a known model id.

    The plugin parametrizes ``model`` last, so its id closes the bracket; an id at the front is
    accepted too (another plugin may parametrize after us).
    """
    if not nodeid.endswith("]") or "[" not in nodeid:
        return None
    # Longest ids first, so "gpt-4o-mini" is not read as "mini" with a "gpt-4o" case.
    for model_id in sorted(model_ids, key=len, reverse=True):
        if nodeid.endswith(f"[{model_id}]"):
            return nodeid[: -len(model_id) - 2], model_id
        if nodeid.endswith(f"-{model_id}]"):
            return nodeid[: -len(model_id) - 2] + "]", model_id
        marker = f"[{model_id}-"
        if marker in nodeid:
            head, _, tail = nodeid.rpartition(marker)
            return f"{head}[{tail}", model_id
    return None


@dataclass(slots=True)
class Outcome:
    """The result of one (test, model): what the matrix, the gate and the reports read."""

    nodeid: str
    test: str
    model: str
    group: str
    outcome: str = ""  # "" until a report says something
    samples: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    cassette: str | None = None
    message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_evidence(self) -> bool:
        """Whether this (test, model) says anything about the model (see :data:`EVIDENCE`)."""
        return self.outcome in EVIDENCE

    @property
    def passed_samples(self) -> int:
        if not self.is_evidence:
            return 0
        if self.samples:
            return sum(1 for s in self.samples if s in _COUNTS_AS_PASS)
        return 1 if self.outcome in _COUNTS_AS_PASS else 0

    @property
    def total_samples(self) -> int:
        if not self.is_evidence:
            return 0
        return len(self.samples) if self.samples else 1

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "nodeid": self.nodeid,
            "test": self.test,
            "model": self.model,
            "group": self.group,
            "outcome": self.outcome,
            "passed": self.passed_samples,
            "total": self.total_samples,
            # the outcome's own lists: a run's records are read, never changed (not copied twice)
            "samples": self.samples,
            "checks": self.checks,
            "calls": self.calls,
            "duration": round(self.duration, 4),
            "cassette": self.cassette,
            "message": self.message,
        }
        data.update(self.extra)
        return data


def _phase_outcome(when: str, outcome: str, wasxfail: bool) -> str | None:
    """What one report says about the (test, model); None when it says nothing new."""
    if when == "call":
        if wasxfail:
            return XFAILED if outcome == "skipped" else XPASSED
        return {"passed": PASSED, "failed": FAILED, "skipped": SKIPPED}[outcome]
    if outcome == "failed":
        # setup or teardown errors; "???" is xdist's report for a crashed worker
        return FAILED if when == "???" else ERROR
    if outcome == "skipped":
        return XFAILED if wasxfail else SKIPPED
    return None


class OutcomeLog:
    """Folds the per-phase reports of each (test, model) into one :class:`Outcome`."""

    def __init__(self, model_ids: Sequence[str]) -> None:
        self.model_ids = list(model_ids)
        self._outcomes: dict[str, Outcome] = {}
        self._order: dict[str, int] = {}

    def set_order(self, nodeids: Iterable[str]) -> None:
        """Collection order, so the matrix lists tests as pytest collected them."""
        if not self._order:
            self._order = {nodeid: i for i, nodeid in enumerate(nodeids)}

    def add(
        self,
        *,
        nodeid: str,
        when: str,
        outcome: str,
        wasxfail: bool,
        user_properties: Iterable[tuple[str, object]],
        duration: float = 0.0,
        message: str | None = None,
    ) -> Outcome | None:
        record = None
        for key, value in user_properties:
            if key == PROPERTY and isinstance(value, Mapping):
                record = value
        current = self._outcomes.get(nodeid)
        if current is None:
            current = self._new_outcome(nodeid, record)
            if current is None:
                return None
            self._outcomes[nodeid] = current
        if record is not None:
            self._apply_record(current, record)
        said = _phase_outcome(when, outcome, wasxfail)
        if said in (FAILED, ERROR, XFAILED) and current.extra.get("missing"):
            said = MISSING  # the recording, not the model: see Outcome.is_evidence
        if said is not None:
            current.outcome = _merge(current.outcome, said)
        if when in ("call", "???"):
            current.duration += duration
        if said in (FAILED, ERROR, MISSING) and message:
            current.message = message if when != "???" else f"worker crashed: {message}"
        return current

    def _new_outcome(self, nodeid: str, record: Mapping[str, Any] | None) -> Outcome | None:
        if record is not None:
            return Outcome(
                nodeid=nodeid,
                test=str(record.get("test", nodeid)),
                model=str(record.get("model", "")),
                group=str(record.get("group", "")),
            )
        split = split_model_id(nodeid, self.model_ids)
        if split is None:
            return None
        test, model_id = split
        return Outcome(nodeid=nodeid, test=test, model=model_id, group=default_group(test))

    @staticmethod
    def _apply_record(outcome: Outcome, record: Mapping[str, Any]) -> None:
        outcome.test = _intern(str(record.get("test", outcome.test)))
        outcome.model = _intern(str(record.get("model", outcome.model)))
        outcome.group = _intern(str(record.get("group", outcome.group)))
        # only the teardown's record carries samples, checks and calls (see Runner._publish)
        if "samples" in record:
            outcome.samples = _shared(list(record["samples"]))
        if "checks" in record:
            outcome.checks = _shared(list(record["checks"]))
        if "calls" in record:
            outcome.calls = _shared(list(record["calls"]))
        outcome.cassette = record.get("cassette", outcome.cassette)
        outcome.extra.update({k: v for k, v in record.items() if k not in _RECORD_FIELDS})

    def outcomes(self) -> list[Outcome]:
        last = len(self._order)
        return sorted(self._outcomes.values(), key=lambda o: (self._order.get(o.nodeid, last), o.nodeid))


_RECORD_FIELDS = frozenset({"test", "model", "group", "samples", "checks", "calls", "cassette", "v"})
_SEVERITY = {MISSING: 6, FAILED: 5, ERROR: 4, XPASSED: 3, PASSED: 2, XFAILED: 1, SKIPPED: 0}
_SHORT = 64  # strings up to this long are shared between records (names, models, outcomes)


def _intern(text: str) -> str:
    return sys.intern(text) if len(text) <= _SHORT and type(text) is str else text


def _shared(value: Any) -> Any:
    """``value`` with its keys and short strings interned, in place.

    Records arrive from xdist workers with every key and value a fresh string; the controller
    keeps one record per (test, model) until the end, and most of their strings repeat.
    """
    if isinstance(value, str):
        return _intern(value)
    if isinstance(value, dict):
        items = [(_intern(k) if isinstance(k, str) else k, _shared(v)) for k, v in value.items()]
        value.clear()
        value.update(items)
    elif isinstance(value, list):
        value[:] = [_shared(v) for v in value]
    return value


def _merge(previous: str, new: str) -> str:
    if not previous:
        return new
    # a teardown error after a pass is an error; a pass never hides an earlier failure
    if new in (FAILED, ERROR, MISSING) or previous in (FAILED, ERROR, MISSING):
        return max(previous, new, key=_SEVERITY.__getitem__)
    return new


def default_group(test: str) -> str:
    """Tests without ``@pytest.mark.prompt`` group by module (the nodeid's path part)."""
    return test.split("::", 1)[0]


# -- the matrix ------------------------------------------------------------------------------


@dataclass(slots=True)
class Cell:
    passed: int = 0
    total: int = 0
    outcomes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        return self.passed / self.total if self.total else None

    @property
    def label(self) -> str:
        return cell_label(self.passed, self.total, self.outcomes)

    def add(self, outcome: Outcome) -> None:
        self.passed += outcome.passed_samples
        self.total += outcome.total_samples
        self.outcomes.append(outcome.outcome)

    def merge(self, other: Cell) -> None:
        self.passed += other.passed
        self.total += other.total
        self.outcomes.extend(other.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "total": self.total,
            "rate": self.rate,
            "outcomes": list(self.outcomes),
        }


CellKey = tuple[int, int, tuple[str, ...]]  # a cell's passed, total and outcomes


@dataclass(slots=True)
class Row:
    name: str
    cells: dict[str, Cell]

    def to_dict(self, shared: dict[CellKey, dict[str, Any]] | None = None) -> dict[str, Any]:
        """The row; ``shared``: cell dicts to reuse, one per (counts, outcomes). A large suite's
        cells repeat (1/1 passed), and a run dict is read, never changed, so its rows share them."""
        shared = {} if shared is None else shared
        cells = {}
        for model, cell in self.cells.items():
            key = (cell.passed, cell.total, tuple(cell.outcomes))
            found = shared.get(key)
            if found is None:
                found = shared[key] = cell.to_dict()
            cells[model] = found
        return {"name": self.name, "cells": cells}


@dataclass
class Group:
    name: str
    tests: list[Row]
    totals: dict[str, Cell]

    def to_dict(self) -> dict[str, Any]:
        shared: dict[CellKey, dict[str, Any]] = {}  # the rows' equal cells
        return {
            "name": self.name,
            "tests": [row.to_dict(shared) for row in self.tests],
            "totals": {m: c.to_dict() for m, c in self.totals.items()},
        }


@dataclass
class Matrix:
    models: list[str]
    groups: list[Group]
    totals: dict[str, Cell]

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "groups": [g.to_dict() for g in self.groups],
            "totals": {m: c.to_dict() for m, c in self.totals.items()},
        }


def build_matrix(outcomes: Iterable[Outcome], models: Sequence[str]) -> Matrix:
    """Group → test → model cells, in first-seen order of groups and tests (collection order)."""
    groups: dict[str, dict[str, dict[str, Cell]]] = {}
    for outcome in outcomes:
        tests = groups.setdefault(outcome.group, {})
        cells = tests.setdefault(outcome.test, {m: Cell() for m in models})
        cells.setdefault(outcome.model, Cell()).add(outcome)
    all_models = list(models)
    for tests in groups.values():
        for cells in tests.values():
            for model in cells:
                if model not in all_models:
                    all_models.append(model)
    result_groups = []
    grand = {m: Cell() for m in all_models}
    for group_name, tests in groups.items():
        totals = {m: Cell() for m in all_models}
        rows = []
        for test_name, cells in tests.items():
            full = {m: cells.get(m, Cell()) for m in all_models}
            rows.append(Row(name=test_name, cells=full))
            for m, cell in full.items():
                totals[m].merge(cell)
        for m, cell in totals.items():
            grand[m].merge(cell)
        result_groups.append(Group(name=group_name, tests=rows, totals=totals))
    return Matrix(models=all_models, groups=result_groups, totals=grand)


def short_test_name(test: str, group: str) -> str:
    """The row label under its group: drop the module path the group already shows."""
    path, sep, rest = test.partition("::")
    if not sep:
        return test
    if group == path:
        return rest
    return f"{path.rsplit('/', 1)[-1]}::{rest}"
