"""The analysis step: outcome records, settings and an optional baseline in, one :class:`Run` out.

Pure module: no pytest import. Built once per session on the controller (and by tests and
tools from saved records): the matrix once, the dataset metrics once, the metrics once, then
:func:`~pytest_modelmigrate.gate.decide` once. Every report renders :meth:`Run.to_dict`,
which is also what ``--migration-json`` writes and ``modelmigrate show`` reads back; nothing
after the decision edits it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import __version__
from .gate import GatePolicy, Regression, Tally, TestDesign, compare, decide
from .gate.recommend import RecommendPolicy
from .gcpause import gc_paused
from .results import ERROR, MISSING, PASSED, XPASSED, Matrix, Outcome, build_matrix

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .baseline import BaselineComparison
    from .datasets import DatasetMetrics
    from .drift_scores import DriftScores
    from .gate import Decision
    from .models import ModelSpec
    from .scrub import Scrubber
    from .sequential import AdaptivePolicy
    from .under_evidence import EvidenceFlag

__all__ = [
    "SCHEMA_VERSION",
    "AdaptiveRun",
    "MissingRecording",
    "Run",
    "Shard",
    "analyse",
    "gc_paused",
    "group_tolerances",
    "outcome_from_dict",
    "record_command",
]


SCHEMA_VERSION = 1


@dataclass(frozen=True)
class MissingRecording:
    """A (test, model) the cassettes could not answer: no cassette yet, or a stale one."""

    nodeid: str
    test: str
    model: str
    cassette: str | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "test": self.test,
            "model": self.model,
            "cassette": self.cassette,
            "reason": self.reason,
        }


def record_command(
    recordings: Sequence[MissingRecording], models: Sequence[ModelSpec], samples: str | None = None
) -> str:
    """The one command that records every missing (test, model) of the run.

    ``once`` writes the cassettes that do not exist; ``new_episodes`` adds the samples a
    cassette lacks (and writes missing ones); a stale one (the prompt changed) or one the
    provider refused needs ``rewrite``, which replaces the old recording of those tests only.
    ``samples``: the run's ``--samples`` when it is not 1 (``auto`` for adaptive sampling).
    """
    if not recordings:
        return ""
    if any(r.reason.startswith(("stale", "not recorded")) for r in recordings):
        mode = "rewrite"
    elif any(r.reason.startswith("the cassette has") for r in recordings):
        mode = "new_episodes"
    else:
        mode = "once"
    wanted = {r.model for r in recordings}
    specs = [str(s) for s in models if s.id in wanted] or sorted(wanted)
    nodeids = " ".join(shlex.quote(r.nodeid) for r in recordings)
    sampled = f" --samples={samples}" if samples else ""
    return f"pytest {nodeids} --models={shlex.quote(','.join(specs))}{sampled} --record-mode={mode}"


@dataclass(frozen=True)
class AdaptiveRun:
    """What ``--samples=auto`` did this run: its policy and how much it recorded."""

    policy: AdaptivePolicy
    calls_recorded: int = 0
    budget_spent: bool = False


@dataclass(frozen=True)
class Shard:
    """Which part of a split suite a run is: shard ``index`` of ``count``, and the tests it ran.

    A label only: the run's numbers and decision cover its own tests, and ``modelmigrate merge``
    analyses the shards' outcomes again as one run. ``nodeids``: every test the shard reported
    (model tests or not), sorted.
    """

    index: int
    count: int
    nodeids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count}: K must run from 1 to N")

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count, "nodeids": list(self.nodeids)}


# Keys of Outcome.to_dict() that are Outcome fields or derived from them; every other key is extra.
_OUTCOME_KEYS = frozenset(
    {
        *("nodeid", "test", "model", "group", "outcome", "passed", "total"),
        *("samples", "checks", "calls", "duration", "cassette", "message"),
    }
)


def outcome_from_dict(data: Mapping[str, Any]) -> Outcome:
    """The :class:`Outcome` a run file's outcome record was written from (``Outcome.to_dict``).

    ``passed`` and ``total`` are derived from the outcome and its samples, so they are not read;
    every key that is not a field (``prompt``, ``dataset``, ``dataset_settings``, ``missing``...)
    goes back into ``extra``. Raises ``KeyError``/``TypeError``/``ValueError`` on a record that
    is not one.
    """
    return Outcome(
        nodeid=str(data["nodeid"]),
        test=str(data["test"]),
        model=str(data["model"]),
        group=str(data["group"]),
        outcome=str(data.get("outcome") or ""),
        samples=[str(s) for s in data.get("samples") or []],
        checks=[dict(c) for c in data.get("checks") or []],
        calls=[dict(c) for c in data.get("calls") or []],
        duration=float(data.get("duration") or 0.0),
        cassette=None if data.get("cassette") is None else str(data["cassette"]),
        message=None if data.get("message") is None else str(data["message"]),
        extra={k: v for k, v in data.items() if k not in _OUTCOME_KEYS},
    )


@dataclass
class Run:
    """One session's results and the decision on them."""

    created: str
    record_mode: str
    models: tuple[ModelSpec, ...]
    incumbent: str | None
    samples: int
    outcomes: list[Outcome]
    matrix: Matrix
    decision: Decision | None
    checks: dict[str, Any]
    metrics: dict[str, Any]
    datasets: dict[str, dict[str, DatasetMetrics]]
    missing: list[MissingRecording]
    missing_command: str
    baseline: BaselineComparison | None = None
    adaptive: dict[str, Any] | None = None
    shard: Shard | None = None  # set when the run is one shard of a split suite
    drift: list[DriftScores] = field(default_factory=list)  # checks.drift per group and candidate
    under_evidence: list[EvidenceFlag] = field(default_factory=list)  # information, not verdicts
    min_dataset_examples: int = 100  # what a dataset test's flag is measured against
    calibration: dict[str, Any] | None = None  # calibration.analyse_calibration: confidences per group
    variants: dict[str, Any] | None = None  # prompt variants: per test and model, the one to ship
    extra: dict[str, Any] = field(default_factory=dict)  # what pytest_modelmigrate_run adds

    def to_dict(self, scrubber: Scrubber | None = None) -> dict[str, Any]:
        """The run file (see ``reports/run.schema.json``), every string scrubbed of keys.

        Failure messages and recorded calls quote what a test saw, which may hold a key (a
        reply that echoes the prompt): by default a scrubber that knows the key variables of
        the environment.
        """
        from .scrub import Scrubber

        outcomes = [o.to_dict() for o in self.outcomes]
        data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "pytest-modelmigrate", "version": __version__},
            "created": self.created,
            "record_mode": self.record_mode,
            "models": [spec.to_dict() for spec in self.models],
            "incumbent": self.incumbent,
            "samples": self.samples,
            "outcomes": outcomes,
            "matrix": self.matrix.to_dict(),
            "checks": self.checks,
            "metrics": self.metrics,
        }
        if self.decision is not None:
            data["gate"] = self.decision.to_dict()
        if self.datasets:
            data["datasets"] = {
                test: {model: m.to_dict() for model, m in by_model.items()}
                for test, by_model in self.datasets.items()
            }
        if self.missing:
            data["missing"] = {
                "recordings": [m.to_dict() for m in self.missing],
                "command": self.missing_command,
            }
        if self.baseline is not None:
            data["baseline"] = self.baseline.to_dict()
        if self.adaptive is not None:
            data["adaptive"] = self.adaptive
        if self.shard is not None:
            data["shard"] = self.shard.to_dict()
        if self.drift:
            data["drift"] = [d.to_dict() for d in self.drift]
        data["under_evidence"] = {
            "min_dataset_examples": self.min_dataset_examples,
            "flags": [f.to_dict() for f in self.under_evidence],
        }
        if self.calibration is not None:
            data["calibration"] = self.calibration
        if self.variants is not None:
            data["variants"] = self.variants
        for key, value in self.extra.items():
            data.setdefault(key, value)
        scrubber = scrubber if scrubber is not None else Scrubber.from_settings()
        scrubbed: dict[str, Any] = scrubber.scrub_data(data)
        return scrubbed


def _sample_results(outcome: Outcome) -> tuple[bool, ...]:
    """Each sample's pass or fail in recording order (what the discordant pairs pair up)."""
    if not outcome.is_evidence:
        return ()
    if outcome.samples:
        return tuple(s in (PASSED, XPASSED) for s in outcome.samples)
    return (outcome.outcome in (PASSED, XPASSED),)


def _tallies(matrix: Matrix, outcomes: Sequence[Outcome] = ()) -> dict[str, dict[str, dict[str, Tally]]]:
    order = {(o.test, o.model): _sample_results(o) for o in outcomes}
    return {
        group.name: {
            row.name: {
                m: Tally(c.passed, c.total, order.get((row.name, m), ()))
                for m, c in row.cells.items()
                if c.total
            }
            for row in group.tests
        }
        for group in matrix.groups
    }


def check_scores(outcomes: Sequence[Outcome]) -> dict[str, dict[str, dict[str, dict[str, list[float]]]]]:
    """group -> test -> model -> check -> one score per sample (a check scored twice in a sample,
    e.g. a judge asked more than once, counts as the mean of its scores in that sample)."""
    found: dict[str, dict[str, dict[str, dict[str, list[float]]]]] = {}
    for o in outcomes:
        if not o.is_evidence:
            continue
        per_sample: dict[str, dict[int, list[float]]] = {}
        for check in o.checks:
            score = check.get("score")
            if score is None or isinstance(score, bool) or not isinstance(score, (int, float)):
                continue
            details = check.get("details")
            kind = (details.get("check") if isinstance(details, dict) else None) or check.get("name")
            if kind == "drift":
                continue  # a similarity to the incumbent's own answer: 1 on the incumbent by construction
            sample = check.get("sample")
            index = sample if isinstance(sample, int) else 0
            per_sample.setdefault(str(check.get("name")), {}).setdefault(index, []).append(float(score))
        for name, samples in per_sample.items():
            values = [sum(v) / len(v) for _, v in sorted(samples.items())]
            found.setdefault(o.group, {}).setdefault(o.test, {}).setdefault(o.model, {})[name] = values
    return found


def evidence_designs(outcomes: Sequence[Outcome]) -> dict[str, TestDesign]:
    """Test -> ``@pytest.mark.evidence(cluster=..., weight=...)``, what the paired drop weighs."""
    found: dict[str, TestDesign] = {}
    for outcome in outcomes:
        evidence = outcome.extra.get("evidence")
        if isinstance(evidence, dict):
            cluster = evidence.get("cluster")
            weight = evidence.get("weight", 1.0)
            found[outcome.test] = TestDesign(
                float(weight) if isinstance(weight, (int, float)) and weight > 0 else 1.0,
                None if cluster is None else str(cluster),
            )
    return found


def prompt_flags(outcomes: Sequence[Outcome], flag: str) -> tuple[str, ...]:
    """Groups whose ``@pytest.mark.prompt`` sets ``flag`` (``deterministic``, ``blocking``) true."""
    return tuple(sorted({o.group for o in outcomes if (o.extra.get("prompt") or {}).get(flag) is True}))


def _dataset_metrics(outcomes: Sequence[Outcome]) -> dict[str, dict[str, DatasetMetrics]]:
    """test -> model -> metrics, for tests that recorded predictions."""
    from .datasets import aggregate

    records: dict[str, dict[str, list[dict[str, Any]]]] = {}
    labels: dict[str, list[str] | None] = {}
    for outcome in outcomes:
        if not outcome.is_evidence:
            continue
        for record in outcome.extra.get("dataset") or []:
            records.setdefault(outcome.test, {}).setdefault(outcome.model, []).append(record)
        settings = outcome.extra.get("dataset_settings") or {}
        labels.setdefault(outcome.test, settings.get("labels"))
    return {
        test: {model: aggregate(recs, labels=labels.get(test)) for model, recs in by_model.items()}
        for test, by_model in records.items()
    }


def _prompt_tolerance(outcome: Outcome) -> float | None:
    tolerance = (outcome.extra.get("prompt") or {}).get("tolerance")
    return float(tolerance) if isinstance(tolerance, (int, float)) else None


def group_tolerances(outcomes: Sequence[Outcome]) -> dict[str, float]:
    """Group -> ``@pytest.mark.prompt(tolerance=...)``, the gate policy's ``group_tolerance``."""
    found: dict[str, float] = {}
    for outcome in outcomes:
        tolerance = _prompt_tolerance(outcome)
        if tolerance is not None:
            found[outcome.group] = tolerance
    return found


def _dataset_regressions(
    outcomes: Sequence[Outcome],
    datasets: Mapping[str, Mapping[str, DatasetMetrics]],
    incumbent: str,
    policy: GatePolicy,
) -> list[Regression]:
    """Dataset tests whose candidate falls below min_accuracy or drops beyond the tolerance."""
    from .datasets import compare_to_incumbent

    settings: dict[str, Mapping[str, Any]] = {}
    groups: dict[str, str] = {}
    for outcome in outcomes:
        groups.setdefault(outcome.test, outcome.group)
        if outcome.extra.get("dataset_settings"):
            settings[outcome.test] = outcome.extra["dataset_settings"]
    found = []
    for test, by_model in datasets.items():
        base = by_model.get(incumbent)
        if base is None:
            continue
        group = groups.get(test, test)
        for model, metrics in by_model.items():
            if model == incumbent:
                continue
            reasons = compare_to_incumbent(
                base,
                metrics,
                min_accuracy=settings.get(test, {}).get("min_accuracy"),
                tolerance=policy.tolerance_for(group),
            )
            if reasons:
                summary = f"dataset {test} on {model}: " + "; ".join(reasons)
                found.append(Regression("dataset", group, test, model, summary))
    return found


def _baseline_regressions(comparison: BaselineComparison, groups: Mapping[str, str]) -> list[Regression]:
    return [
        Regression(
            "baseline",
            c.group or groups.get(c.test, c.test),
            c.test,
            c.model,
            f"{c.test} [{c.model}] {c.describe()}",
            c.old_rate,
            c.new_rate,
            c.p_value,
        )
        for c in comparison.regressions
    ]


def _missing(outcomes: Sequence[Outcome]) -> list[MissingRecording]:
    return [
        MissingRecording(o.nodeid, o.test, o.model, o.cassette, str(o.extra.get("missing") or "no recording"))
        for o in outcomes
        if o.outcome == MISSING
    ]


def analyse(
    outcomes: Sequence[Outcome],
    *,
    models: Sequence[ModelSpec],
    incumbent: str | None,
    policy: GatePolicy | None,
    record_mode: str = "none",
    samples: int = 1,
    prices: Mapping[str, Any] | None = None,
    baseline: Mapping[str, Any] | None = None,
    adaptive: AdaptiveRun | None = None,
    created: str | None = None,
    shard: Shard | None = None,
    incumbent_absent: bool = False,
    recommend: RecommendPolicy | None = None,
    min_dataset_examples: int = 100,
) -> Run:
    """Build the run once. ``policy`` None: no gate (a run with no model test has nothing to decide).

    ``shard`` labels the run as one part of a split suite; it changes nothing else.
    ``incumbent_absent``: the configured incumbent does not run in this session (recording one
    candidate): no model is compared with another, the gate weighs only what went wrong.
    ``min_dataset_examples``: a dataset test with fewer examples is flagged as under-evidenced
    (``run.under_evidence``, information only).
    """
    from .metrics import compute_metrics
    from .reports.breakdown import check_breakdown

    model_ids = [spec.id for spec in models]
    matrix = build_matrix(outcomes, model_ids)
    records = [o.to_dict() for o in outcomes]
    datasets = _dataset_metrics(outcomes)
    missing = _missing(outcomes)
    run = Run(
        created=created or datetime.now(UTC).isoformat(timespec="seconds"),
        record_mode=record_mode,
        models=tuple(models),
        incumbent=incumbent,
        samples=samples,
        outcomes=list(outcomes),
        matrix=matrix,
        decision=None,
        checks=check_breakdown(records, model_ids),
        metrics=compute_metrics(
            records, model_ids, incumbent, prices or {}, model_names={s.id: s.name for s in models}
        ),
        datasets=datasets,
        missing=missing,
        missing_command=record_command(
            missing, models, "auto" if adaptive is not None else (str(samples) if samples > 1 else None)
        ),
        shard=shard,
    )
    from .variants import variant_report

    run.variants = variant_report(outcomes, model_ids, incumbent or (model_ids[0] if model_ids else None))
    from .calibration import analyse_calibration

    run.calibration = analyse_calibration(
        outcomes, model_ids, incumbent, deterministic=prompt_flags(outcomes, "deterministic")
    )
    groups = {o.test: o.group for o in outcomes}
    extra: list[Regression] = []
    if baseline is not None:
        from .baseline import compare_runs

        alpha = policy.alpha if policy is not None else 0.05
        run.baseline = compare_runs(baseline, run.to_dict(), alpha=alpha)
        extra.extend(_baseline_regressions(run.baseline, groups))
    sequential = None
    if adaptive is not None and incumbent is not None:
        from .adaptive import decide as decide_sequential
        from .adaptive import sequential_verdicts

        per_test: dict[str, dict[str, list[str]]] = {}
        for o in outcomes:
            if o.is_evidence:
                per_test.setdefault(o.test, {})[o.model] = list(o.samples)
        if run.variants:  # prompt variants: each candidate's best variant, as the fixed-N decision
            from .variants import fold_rows

            per_test, folded = fold_rows(per_test, outcomes, run.variants["incumbent"])
            groups = {**groups, **folded}
        candidates = [m for m in model_ids if m != incumbent]
        plan = decide_sequential(per_test, groups, incumbent, candidates, adaptive.policy)
        plan.targets = {t: min((len(v) for v in per.values()), default=0) for t, per in per_test.items()}
        plan.budget_spent = adaptive.budget_spent
        run.adaptive = {
            **plan.to_dict(),
            "policy": adaptive.policy.to_dict(),
            "calls_recorded": adaptive.calls_recorded,
        }
        sequential = sequential_verdicts(plan, groups)
    if policy is not None and adaptive is not None:
        from dataclasses import replace as _replace

        from .adaptive import looks

        policy = _replace(policy, looks=looks(adaptive.policy))
    if policy is not None and outcomes and model_ids:
        if incumbent is not None:
            extra[:0] = _dataset_regressions(outcomes, datasets, incumbent, policy)
        compared = model_ids[:1] if incumbent_absent else model_ids
        from .variants import for_decision

        # prompt variants: each candidate's best variant against the incumbent's shipped one
        tallies, scores, designs = for_decision(
            _tallies(matrix, outcomes),
            check_scores(outcomes),
            evidence_designs(outcomes),
            outcomes,
            run.variants["incumbent"] if run.variants else None,
        )
        comparison = compare(tallies, compared, policy, designs, scores)
        if run.variants:  # the strict gate counts every variant's failing tests, as pytest does
            from dataclasses import replace as _with

            from .variants import failing_tests

            comparison = _with(comparison, failures=failing_tests(_tallies(matrix, outcomes), compared))
        errors = sum(o.outcome == ERROR for o in outcomes)
        decision = decide(
            comparison, policy, regressions=extra, sequential=sequential, missing=len(missing), errors=errors
        )
        if incumbent is not None and not incumbent_absent:
            decision = _with_recommendations(decision, run, recommend or RecommendPolicy())
        run.decision = decision
    _add_evidence_views(run, min_dataset_examples, policy)
    return run


def _add_evidence_views(run: Run, min_dataset_examples: int, policy: GatePolicy | None) -> None:
    """The drift scores per group and candidate, and the under-evidence flags (after the decision,
    which they do not change)."""
    from .drift_scores import drift_scores
    from .under_evidence import under_evidence

    decision = run.decision
    run.drift = drift_scores(run.outcomes, run.incumbent, [s.id for s in run.models])
    run.min_dataset_examples = min_dataset_examples
    run.under_evidence = under_evidence(
        run.outcomes,
        verdicts=[(g, c) for g, per in decision.verdicts.items() for c in per] if decision else [],
        incumbent=decision.incumbent if decision else None,
        min_dataset_examples=min_dataset_examples,
        samples=run.samples,
        deterministic={
            o.group for o in run.outcomes if policy is not None and policy.is_deterministic(o.group)
        },
    )


def _failing_checks(outcomes: Sequence[Outcome]) -> dict[str, dict[str, list[str]]]:
    """group -> model -> the names of the checks that failed in any sample."""
    found: dict[str, dict[str, set[str]]] = {}
    for o in outcomes:
        for check in o.checks:
            if check.get("passed") is False:
                found.setdefault(o.group, {}).setdefault(o.model, set()).add(str(check.get("name")))
    return {g: {m: sorted(names) for m, names in per.items()} for g, per in found.items()}


def _extra_calls(run: Run, decision: Decision, candidate: str) -> tuple[int, float | None]:
    """Calls (and their cost at the run's prices) that would give each undecided group of
    ``candidate`` the samples its verdict says would decide it, on both models."""
    tests_of: dict[str, list[Outcome]] = {}
    for o in run.outcomes:
        if o.is_evidence and o.model in (decision.incumbent, candidate):
            tests_of.setdefault(o.group, []).append(o)
    models: Mapping[str, Any] = run.metrics.get("models") or {}
    calls = 0
    cost: float | None = 0.0
    for group, per in decision.verdicts.items():
        verdict = per.get(candidate)
        if verdict is None or verdict.finding not in ("undecided",) or not verdict.samples_needed:
            continue
        for o in tests_of.get(group, []):
            more = max(0, verdict.samples_needed - o.total_samples)
            per_sample = max(1.0, len(o.calls) / max(1, o.total_samples))
            n = round(more * per_sample)
            calls += n
            m = models.get(o.model) or {}
            total_cost = (m.get("cost_usd") or {}).get("total")
            if cost is not None and isinstance(total_cost, (int, float)) and m.get("calls"):
                cost += n * float(total_cost) / float(m["calls"])
            elif n:
                cost = None
    return calls, cost


def _with_recommendations(decision: Decision, run: Run, policy: RecommendPolicy) -> Decision:
    from dataclasses import replace

    from .calibration import rethreshold_notes
    from .gate.recommend import recommend
    from .variants import ship_lines

    try:
        today = datetime.fromisoformat(run.created).date()
    except ValueError:
        today = datetime.now(UTC).date()
    # what the recommendation reads of each verdict (the whole to_dict() lists every test)
    findings = {
        g: {
            c: {
                "finding": v.finding,
                "scores": [{"check": sc.check, "finding": sc.finding} for sc in v.scores],
            }
            for c, v in per.items()
        }
        for g, per in decision.verdicts.items()
    }
    recommendations, sunset = recommend(
        findings,
        incumbent=decision.incumbent,
        candidates=decision.candidates,
        policy=policy,
        deltas=run.metrics.get("deltas") or {},
        failing_checks=_failing_checks(run.outcomes),
        extra={c: _extra_calls(run, decision, c) for c in decision.candidates},
        today=today,
        names={s.id: s.name for s in run.models},
        paired=run.metrics.get("paired") or {},
        variants={c: ship_lines(run.variants, c) for c in decision.candidates} if run.variants else None,
        calibration=rethreshold_notes(run.calibration),
    )
    return replace(decision, recommendations=tuple(recommendations), sunset=sunset, recommend_policy=policy)
