"""Prompt variants per target model: one test, several prompts, each run on the models it targets.

Pure module: no pytest import. ``@pytest.mark.prompt_variants("v1", "v2-gpt5",
targets={"v2-gpt5": ["gpt-5"]}, rationale={"v2-gpt5": "..."})`` declares the variants of one
test's prompt (:func:`parse_variants`); the plugin runs each variant on the models it targets (a
variant with no targets runs on every model), one cassette per (test, variant, model), and each
outcome carries ``extra["variant"]`` (:meth:`PromptVariant.record`).

At the end of the run the matrix keeps a row per variant. The decision compares, per test and
candidate, the candidate's **best** variant with the incumbent's **shipped** variant
(:func:`for_decision`), and :func:`variant_report` names per model the variant to ship with its
evidence. With no variant declared, both are the identity: every verdict stays as it was.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .results import percent

if TYPE_CHECKING:
    from .gate import Tally, TestDesign
    from .results import Outcome

__all__ = [
    "PromptVariant",
    "VariantError",
    "evidence_text",
    "failing_tests",
    "fold_rows",
    "for_decision",
    "parse_variants",
    "ship_lines",
    "variant_report",
]

T = TypeVar("T")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_EXAMPLE = (
    '@pytest.mark.prompt_variants("v1", "v2-gpt5", targets={"v2-gpt5": ["gpt-5"]}, '
    'rationale={"v2-gpt5": "gpt-5 wrote four bullets"})'
)


class VariantError(ValueError):
    """A ``@pytest.mark.prompt_variants`` declaration that cannot run; the message names the test."""


@dataclass(frozen=True)
class PromptVariant:
    """One variant of a test's prompt: its name, the model ids it targets (None: every model)."""

    name: str
    targets: tuple[str, ...] | None = None
    rationale: str | None = None
    index: int = 0  # declaration order

    def runs_on(self, model_id: str) -> bool:
        return self.targets is None or model_id in self.targets

    def record(self, of: str) -> dict[str, Any]:
        """What an outcome carries (``extra["variant"]``); ``of``: the test without the variant id."""
        return {
            "name": self.name,
            "of": of,
            "targets": None if self.targets is None else list(self.targets),
            "rationale": self.rationale,
            "index": self.index,
        }

    def __str__(self) -> str:
        return self.name


def parse_variants(
    args: Sequence[Any], kwargs: Mapping[str, Any], model_ids: Sequence[str], *, where: str
) -> list[PromptVariant]:
    """The variants a marker declares, checked against the configured model ids.

    ``args``: the variant names in order; ``targets``: name -> model id(s) (a string or a list);
    ``rationale``: name -> why the variant exists (what the prompt history records).
    """
    head = f"{where}: @pytest.mark.prompt_variants"
    unknown = sorted(set(kwargs) - {"targets", "rationale"})
    if unknown:
        raise VariantError(
            f"{head} got unknown argument(s) {unknown}; it takes targets= and rationale=, e.g. {_EXAMPLE}"
        )
    if not args:
        raise VariantError(f"{head} needs the variant names, e.g. {_EXAMPLE}")
    names: list[str] = []
    for arg in args:
        if not isinstance(arg, str) or not _NAME.match(arg):
            raise VariantError(
                f"{head}: {arg!r} is not a variant name (letters, digits, '.', '_' and '-'), e.g. {_EXAMPLE}"
            )
        if arg in names:
            raise VariantError(
                f"{head}: the variant {arg!r} is declared twice; give each variant its own name"
            )
        names.append(arg)
    targets = _per_name(kwargs.get("targets"), "targets", names, head)
    rationale = _per_name(kwargs.get("rationale"), "rationale", names, head)
    known = list(model_ids)
    found: list[PromptVariant] = []
    for index, name in enumerate(names):
        wanted: tuple[str, ...] | None = None
        if name in targets:
            value = targets[name]
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)) or not all(isinstance(m, str) for m in items):
                raise VariantError(
                    f"{head}: targets[{name!r}] must be a model id or a list of them, got {value!r}"
                )
            if not items:
                raise VariantError(
                    f"{head}: the variant {name!r} targets no model (targets[{name!r}] is empty); "
                    "name the models it is for, or leave it out of targets= to run it on every model"
                )
            strange = [m for m in items if m not in known]
            if strange:
                raise VariantError(
                    f"{head}: the variant {name!r} targets unknown model(s) {', '.join(strange)}; "
                    f"the configured models are {', '.join(known) or '(none)'} "
                    "(--models or modelmigrate_models)"
                )
            wanted = tuple(dict.fromkeys(items))
        why = rationale.get(name)
        if why is not None and not isinstance(why, str):
            raise VariantError(f"{head}: rationale[{name!r}] must be a string, got {why!r}")
        found.append(PromptVariant(name, wanted, why.strip() if why else None, index))
    return found


def _per_name(value: Any, key: str, names: Sequence[str], head: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise VariantError(f"{head}: {key}= must map variant names to values, e.g. {_EXAMPLE}")
    strange = [str(k) for k in value if k not in names]
    if strange:
        raise VariantError(
            f"{head}: {key}= names undeclared variant(s) {', '.join(strange)}; "
            f"the declared ones are {', '.join(names)}"
        )
    return value


# -- after the run -------------------------------------------------------------------------------


@dataclass
class _Cell:
    passed: int = 0
    total: int = 0
    failing: set[str] = field(default_factory=set)

    def add(self, outcome: Outcome) -> None:
        self.passed += outcome.passed_samples
        self.total += outcome.total_samples
        self.failing.update(str(c.get("name")) for c in outcome.checks if c.get("passed") is False)


@dataclass
class _Test:
    """One variant-ed test: its variants (in order), the matrix row of each, the cells per model."""

    base: str
    group: str
    variants: dict[str, dict[str, Any]]  # name -> the outcome's variant record
    rows: dict[str, str]  # name -> matrix row (the outcome's test)
    cells: dict[str, dict[str, _Cell]]  # name -> model -> cell
    outcomes: list[Outcome]


def _collect(outcomes: Sequence[Outcome]) -> dict[str, _Test]:
    found: dict[str, _Test] = {}
    for o in outcomes:
        info = o.extra.get("variant")
        if not isinstance(info, Mapping) or not info.get("name"):
            continue
        name, base = str(info["name"]), str(info.get("of") or o.test)
        test = found.setdefault(base, _Test(base, o.group, {}, {}, {}, []))
        test.variants.setdefault(name, dict(info))
        test.rows.setdefault(name, o.test)
        test.cells.setdefault(name, {}).setdefault(o.model, _Cell()).add(o)
        test.outcomes.append(o)
    for test in found.values():
        test.variants = dict(sorted(test.variants.items(), key=lambda kv: int(kv[1].get("index") or 0)))
    return found


def _targets(info: Mapping[str, Any]) -> list[str] | None:
    targets = info.get("targets")
    return None if targets is None else [str(t) for t in targets]


def _shipped(test: _Test, model: str) -> str | None:
    """The variant in production on ``model``: the one targeting it, else the first for every model."""
    for name, info in test.variants.items():
        targets = _targets(info)
        if targets is not None and model in targets:
            return name
    for name, info in test.variants.items():
        if _targets(info) is None:
            return name
    return None


def _best(test: _Test, model: str, incumbent: str | None) -> str | None:
    """The variant to ship on a candidate: the highest pass rate; on a tie the variant targeting the
    candidate, then the incumbent's shipped variant (no change), then declaration order."""
    shipped = _shipped(test, incumbent) if incumbent is not None else None
    ranked = []
    for name, info in test.variants.items():
        cell = test.cells.get(name, {}).get(model)
        if cell is None or not cell.total:
            continue
        targets = _targets(info)
        ranked.append(
            (
                -cell.passed / cell.total,
                0 if targets and model in targets else 1,
                name != shipped,
                int(info.get("index") or 0),
                name,
            )
        )
    return min(ranked)[-1] if ranked else None


def _chosen(test: _Test, model: str, incumbent: str | None) -> str | None:
    if model == incumbent:
        shipped = _shipped(test, model)
        cell = test.cells.get(shipped or "", {}).get(model)
        return shipped if cell is not None and cell.total else _best(test, model, incumbent)
    return _best(test, model, incumbent)


def for_decision(
    tallies: Mapping[str, Mapping[str, Mapping[str, Tally]]],
    scores: Mapping[str, Mapping[str, Mapping[str, Mapping[str, list[float]]]]],
    designs: Mapping[str, TestDesign],
    outcomes: Sequence[Outcome],
    incumbent: str | None,
) -> tuple[
    Mapping[str, Mapping[str, Mapping[str, Tally]]],
    Mapping[str, Mapping[str, Mapping[str, Mapping[str, list[float]]]]],
    Mapping[str, TestDesign],
]:
    """What :func:`~pytest_modelmigrate.gate.compare` reads, with each variant-ed test's rows folded
    into one row (the test without its variant id): the incumbent's cell from its shipped variant,
    each candidate's from its best variant. The same objects when no outcome has a variant."""
    tests = _collect(outcomes)
    if not tests or incumbent is None:
        return tallies, scores, designs
    row_of = {row: (test, name) for test in tests.values() for name, row in test.rows.items()}
    new_tallies: dict[str, dict[str, dict[str, Tally]]] = {}
    new_scores: dict[str, dict[str, dict[str, Mapping[str, list[float]]]]] = {}
    new_designs = dict(designs)
    for group, rows in tallies.items():
        out = new_tallies.setdefault(group, {})
        for row, per_model in rows.items():
            if row not in row_of:
                out[row] = dict(per_model)
                continue
            test, name = row_of[row]
            for model, tally in per_model.items():
                if _chosen(test, model, incumbent) == name:
                    out.setdefault(test.base, {})[model] = tally
            if row in designs:
                new_designs.setdefault(test.base, designs[row])
    for group, rows_scores in scores.items():
        s_out = new_scores.setdefault(group, {})
        for row, s_per_model in rows_scores.items():
            if row not in row_of:
                s_out[row] = dict(s_per_model)
                continue
            test, name = row_of[row]
            for model, checks in s_per_model.items():
                if _chosen(test, model, incumbent) == name:
                    s_out.setdefault(test.base, {})[model] = checks
    return new_tallies, new_scores, new_designs


def failing_tests(
    tallies: Mapping[str, Mapping[str, Mapping[str, Tally]]], models: Sequence[str]
) -> dict[str, int]:
    """Model -> matrix rows (every variant's) with a failing sample: what the strict gate counts."""
    found = {m: 0 for m in models}
    for rows in tallies.values():
        for per_model in rows.values():
            for model, tally in per_model.items():
                if model in found and tally.failed:
                    found[model] += 1
    return found


def fold_rows(
    per_row: Mapping[str, Mapping[str, T]], outcomes: Sequence[Outcome], incumbent: str | None
) -> tuple[dict[str, dict[str, T]], dict[str, str]]:
    """``per_row`` (test -> model -> value) with each variant-ed test's rows folded into one, as
    :func:`for_decision` folds them (what ``--samples=auto``'s sequential rule reads), and the
    group of each folded row."""
    tests = _collect(outcomes)
    row_of = {row: (test, name) for test in tests.values() for name, row in test.rows.items()}
    out: dict[str, dict[str, T]] = {}
    for row, per_model in per_row.items():
        if row not in row_of or incumbent is None:
            out[row] = dict(per_model)
            continue
        test, name = row_of[row]
        for model, value in per_model.items():
            if _chosen(test, model, incumbent) == name:
                out.setdefault(test.base, {})[model] = value
    return out, {test.base: test.group for test in tests.values()}


def _evidence(cell: _Cell | None) -> dict[str, Any] | None:
    if cell is None or not cell.total:
        return None
    from .stats import wilson_interval

    low, high = wilson_interval(cell.passed, cell.total)
    return {
        "passed": cell.passed,
        "total": cell.total,
        "rate": cell.passed / cell.total,
        "interval": [low, high],
        "failing_checks": sorted(cell.failing),
    }


def evidence_text(evidence: Mapping[str, Any]) -> str:
    """``12/12, 100% [76-100]``: the pass count, rate and its 95% interval in whole percent."""
    passed, total = int(evidence["passed"]), int(evidence["total"])
    low, high = evidence["interval"]
    return f"{passed}/{total}, {percent(passed, total)}% [{100 * low:.0f}-{100 * high:.0f}]"


def variant_report(
    outcomes: Sequence[Outcome], models: Sequence[str], incumbent: str | None
) -> dict[str, Any] | None:
    """The run file's ``variants`` section: per variant-ed test, its variants and, per model, the
    variant to ship with the evidence of every variant run there. None when no test has variants."""
    tests = _collect(outcomes)
    if not tests:
        return None
    out = []
    for test in tests.values():
        seen = list(dict.fromkeys([*models, *(m for cells in test.cells.values() for m in cells)]))
        per_model: dict[str, Any] = {}
        for model in seen:
            evidence = {name: _evidence(test.cells.get(name, {}).get(model)) for name in test.variants}
            evidence = {name: e for name, e in evidence.items() if e is not None}
            if not evidence:
                continue
            ship = _chosen(test, model, incumbent)
            why = "shipped" if model == incumbent else "best"
            per_model[model] = {"ship": ship, "why": why, "evidence": evidence}
            per_model[model]["line"] = _line(model, per_model[model])
        out.append(
            {
                "test": test.base,
                "group": test.group,
                "variants": [
                    {
                        "name": name,
                        "targets": _targets(info),
                        "rationale": info.get("rationale"),
                        "row": test.rows[name],
                    }
                    for name, info in test.variants.items()
                ],
                "models": per_model,
            }
        )
    return {"incumbent": incumbent, "tests": out}


def _line(model: str, entry: Mapping[str, Any]) -> str:
    """``gpt-5: ship v2-gpt5 (12/12, 100% [76-100]); v1: 9/12, 75% [47-91], fails bullets``.

    ``keeps`` on the incumbent (its shipped variant); ``ship`` on a candidate whose best variant
    passed every sample, ``best`` (with what it fails) when even the best one failed some."""

    def failing(e: Mapping[str, Any]) -> str:
        names = e.get("failing_checks") or []
        return f", fails {', '.join(names)}" if names else ""

    ship = str(entry.get("ship") or "")
    evidence: Mapping[str, Mapping[str, Any]] = entry.get("evidence") or {}
    if ship not in evidence:
        return f"{model}: no variant ran"
    chosen = evidence[ship]
    if entry.get("why") == "shipped":
        verb = "keeps"
    else:
        verb = "ship" if chosen["passed"] == chosen["total"] else "best"
    parts = [f"{model}: {verb} {ship} ({evidence_text(chosen)}){failing(chosen)}"]
    parts += [f"{name}: {evidence_text(e)}{failing(e)}" for name, e in evidence.items() if name != ship]
    return "; ".join(parts)


def ship_lines(variants: Mapping[str, Any] | None, model: str | None = None) -> list[str]:
    """``test: line`` per variant-ed test (of ``model`` only, when given), from the run file's section."""
    lines = []
    for test in (variants or {}).get("tests") or []:
        for m, entry in (test.get("models") or {}).items():
            if model is None or m == model:
                lines.append(f"{test.get('test')}: {entry.get('line')}")
    return lines
