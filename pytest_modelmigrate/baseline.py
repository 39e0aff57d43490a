"""Baselines: a saved run kept in git, and the comparison of a new run against it.

Pure module: no pytest import. A (test, model) of the new run is compared with the same
(test, model) of the baseline:

* **regression**: the new pass rate is lower and the drop is decided: with one sample on both
  sides, passed → failed; with more, the one-sided Fisher exact test gives p ≤ ``alpha``;
* **lower**: lower, not decided (several samples, p > ``alpha``); reported, never a regression;
* **improved**: the new pass rate is higher;
* **appeared** / **disappeared**: in one run only; **not_compared**: skipped on one side.

Regressions against a baseline count for the gate (``BaselineComparison.regressions``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import write_atomically
from .metrics import run_metrics
from .results import split_model_id
from .stats import fisher_exact_less

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "BaselineComparison",
    "BaselineError",
    "Change",
    "compare_runs",
    "load_run",
    "save_baseline",
    "strip_run",
]

SCHEMA_VERSION = 1
# Failure messages longer than this are cut in a saved baseline.
MAX_MESSAGE = 2000


class BaselineError(ValueError):
    """A file that is not a readable run; the message names the path."""


def load_run(path: Path | str) -> dict[str, Any]:
    """Read a run (or baseline) JSON file; :class:`BaselineError` naming the path when it is not one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read it ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    return check_run(data, str(path))


def check_run(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BaselineError(f"{where}: not a pytest-modelmigrate run (a JSON object is expected)")
    if "schema_version" not in data:
        raise BaselineError(f"{where}: not a pytest-modelmigrate run (no schema_version)")
    if data["schema_version"] != SCHEMA_VERSION:
        raise BaselineError(
            f"{where}: run schema_version {data['schema_version']!r} is not supported "
            f"(this version reads {SCHEMA_VERSION}); re-create the file with this version"
        )
    for key in ("outcomes", "models"):
        if not isinstance(data.get(key), list):
            raise BaselineError(f"{where}: not a pytest-modelmigrate run ({key!r} missing or not a list)")
    for index, outcome in enumerate(data["outcomes"]):
        problem = _outcome_problem(outcome)
        if problem:
            raise BaselineError(
                f"{where}: outcomes[{index}] {problem}; the file is not a run this version wrote "
                "(re-create it with --migration-json or --migration-baseline-save)"
            )
    return data


def _outcome_problem(outcome: Any) -> str:
    """What is wrong with one outcome record for the comparison ("" when nothing)."""
    if not isinstance(outcome, dict):
        return "is not an object"
    for key in ("test", "model"):
        if not isinstance(outcome.get(key), str):
            return f"has no {key!r} string"
    for key in ("group", "nodeid"):
        if key in outcome and not isinstance(outcome[key], str):
            return f"has a {key!r} that is not a string"
    counts = [outcome.get(key, 0) for key in ("passed", "total")]
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        return "has 'passed'/'total' that are not whole numbers >= 0"
    if counts[0] > counts[1]:
        return f"passed {counts[0]} of {counts[1]}"
    return ""


def strip_run(run: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without bulky fields: dataset prediction records and check details; long messages cut.

    Calls (small summaries) stay, so metrics can be recomputed from a baseline.
    """
    stripped = dict(run)
    outcomes = []
    for outcome in run.get("outcomes") or []:
        o = {k: v for k, v in outcome.items() if k != "dataset"}
        o["checks"] = [{k: v for k, v in c.items() if k != "details"} for c in outcome.get("checks") or []]
        message = o.get("message")
        if isinstance(message, str) and len(message) > MAX_MESSAGE:
            o["message"] = message[:MAX_MESSAGE] + f"... ({len(message) - MAX_MESSAGE} more characters)"
        outcomes.append(o)
    stripped["outcomes"] = outcomes
    stripped.pop("baseline", None)
    return stripped


def save_baseline(run: Mapping[str, Any], path: Path | str, *, strip: bool = True) -> None:
    """Write ``run`` as a baseline JSON file, atomically (stable key order, for diffs in git)."""
    data = strip_run(run) if strip else dict(run)
    write_atomically(Path(path), json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


@dataclass(frozen=True)
class Change:
    """One (test, model) in both runs (or one), with its pass counts on each side."""

    test: str
    model: str
    group: str
    old_passed: int | None
    old_total: int | None
    new_passed: int | None
    new_total: int | None
    p_value: float | None = None

    @staticmethod
    def _rate(passed: int | None, total: int | None) -> float | None:
        return passed / total if passed is not None and total else None

    @property
    def old_rate(self) -> float | None:
        return self._rate(self.old_passed, self.old_total)

    @property
    def new_rate(self) -> float | None:
        return self._rate(self.new_passed, self.new_total)

    def describe(self) -> str:
        def side(passed: int | None, total: int | None) -> str:
            return "absent" if passed is None or total is None else f"{passed}/{total}"

        text = f"{side(self.old_passed, self.old_total)} -> {side(self.new_passed, self.new_total)}"
        if self.p_value is not None:
            text += f" (p={self.p_value:.2g})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "model": self.model,
            "group": self.group,
            "old": None if self.old_total is None else {"passed": self.old_passed, "total": self.old_total},
            "new": None if self.new_total is None else {"passed": self.new_passed, "total": self.new_total},
            "p_value": self.p_value,
            "describe": self.describe(),
        }


@dataclass
class BaselineComparison:
    alpha: float
    regressions: list[Change] = field(default_factory=list)
    lower: list[Change] = field(default_factory=list)
    improved: list[Change] = field(default_factory=list)
    appeared: list[Change] = field(default_factory=list)
    disappeared: list[Change] = field(default_factory=list)
    not_compared: list[Change] = field(default_factory=list)
    unchanged: int = 0
    metric_deltas: dict[str, dict[str, Any]] = field(default_factory=dict)
    old_created: str | None = None
    new_created: str | None = None

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def lines(self, max_items: int = 20) -> list[str]:
        return comparison_lines(self.to_dict(), max_items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "regressed": self.regressed,
            "regressions": [c.to_dict() for c in self.regressions],
            "lower": [c.to_dict() for c in self.lower],
            "improved": [c.to_dict() for c in self.improved],
            "appeared": [c.to_dict() for c in self.appeared],
            "disappeared": [c.to_dict() for c in self.disappeared],
            "not_compared": [c.to_dict() for c in self.not_compared],
            "unchanged": self.unchanged,
            "metric_deltas": self.metric_deltas,
            "old_created": self.old_created,
            "new_created": self.new_created,
        }


def comparison_lines(comparison: Mapping[str, Any], max_items: int = 20) -> list[str]:
    """The comparison with a baseline as text, from its ``to_dict()`` form."""
    kinds = (
        ("regressed", "regressions"),
        ("lower", "lower"),
        ("improved", "improved"),
        ("new", "appeared"),
        ("gone", "disappeared"),
    )
    count = {key: len(comparison.get(key) or []) for _, key in kinds}
    old = comparison.get("old_created")
    out = [
        f"against baseline{f' of {old}' if old else ''}: "
        f"{count['regressions']} regression(s), {count['lower']} lower (not significant), "
        f"{count['improved']} improved, {count['appeared']} new, {count['disappeared']} gone, "
        f"{comparison.get('unchanged', 0)} unchanged"
    ]
    for label, key in kinds:
        changes = comparison.get(key) or []
        for change in changes[:max_items]:
            out.append(f"  {label}: {change['test']} [{change['model']}] {change['describe']}")
        if len(changes) > max_items:
            out.append(f"  ... {len(changes) - max_items} more {label}")
    for model, d in (comparison.get("metric_deltas") or {}).items():
        parts = []
        for key, label in (
            ("latency_p50_ms", "p50"),
            ("latency_p95_ms", "p95"),
            ("cost_per_test_usd", "cost/test"),
        ):
            ratio = (d.get(key) or {}).get("ratio")
            if ratio is not None:
                parts.append(f"{label} ×{ratio:.2f}")
        if parts:
            out.append(f"  {model}: " + ", ".join(parts) + " vs baseline")
    return out


def _key(outcome: Mapping[str, Any]) -> tuple[str, str]:
    """(test, model); the test keeps its parameters (a dataset's example id), which the matrix
    row drops, so every example of a dataset test is compared on its own."""
    model = str(outcome.get("model"))
    split = split_model_id(str(outcome.get("nodeid") or ""), [model])
    return (split[0] if split else str(outcome.get("test"))), model


def _index(run: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
    return {_key(o): o for o in run.get("outcomes") or []}


def _metric_deltas(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    from .metrics import deltas

    old_models = run_metrics(old).get("models") or {}
    new_models = run_metrics(new).get("models") or {}
    return {m: deltas(new_models[m], old_models[m]) for m in new_models if m in old_models}


def compare_runs(
    old: Mapping[str, Any], new: Mapping[str, Any], *, alpha: float = 0.05
) -> BaselineComparison:
    """Classify every (test, model) of ``new`` against ``old`` (see the module docstring)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    old_index, new_index = _index(old), _index(new)
    result = BaselineComparison(alpha=alpha, old_created=old.get("created"), new_created=new.get("created"))
    for key, n in new_index.items():
        o = old_index.get(key)
        test, model = key
        group = str(n.get("group", ""))
        np_, nt = int(n.get("passed", 0) or 0), int(n.get("total", 0) or 0)
        if o is None:
            result.appeared.append(Change(test, model, group, None, None, np_, nt))
            continue
        op, ot = int(o.get("passed", 0) or 0), int(o.get("total", 0) or 0)
        if ot == 0 or nt == 0:
            result.not_compared.append(Change(test, model, group, op, ot, np_, nt))
            continue
        old_rate, new_rate = op / ot, np_ / nt
        if new_rate < old_rate:
            if ot == 1 and nt == 1:
                result.regressions.append(Change(test, model, group, op, ot, np_, nt))
            else:
                p = fisher_exact_less(op, ot, np_, nt)
                target = result.regressions if p <= alpha else result.lower
                target.append(Change(test, model, group, op, ot, np_, nt, p))
        elif new_rate > old_rate:
            result.improved.append(Change(test, model, group, op, ot, np_, nt))
        else:
            result.unchanged += 1
    for key, o in old_index.items():
        if key not in new_index:
            op, ot = int(o.get("passed", 0) or 0), int(o.get("total", 0) or 0)
            result.disappeared.append(Change(key[0], key[1], str(o.get("group", "")), op, ot, None, None))
    result.metric_deltas = _metric_deltas(old, new)
    return result
