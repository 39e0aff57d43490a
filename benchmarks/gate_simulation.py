"""Error rates of the gate's decision, measured by simulation through the plugin's code path.

    python benchmarks/gate_simulation.py [--reps N] [--reps-large N] [--seed S] [--quick]

Every replicate builds a prompt group of ``--group-size`` tests (default 10), draws each test's
samples on the incumbent and the candidate from known pass rates (per-sample outcomes in order,
as the plugin records them) and runs :func:`pytest_modelmigrate.gate.evaluate` with the default
policy ``GatePolicy(mode="no-regression", alpha=0.05, margin=0.05, correction="holm")``.
Scenarios (the candidate's rate against the incumbent's, per test):

* ``null, 0.9``: every test 0.9 on both models; ``null, 0.6-0.99``: incumbent rates uniform in
  [0.60, 0.99], candidate equal; ``null, 0.5``: both at 0.5 (the most discordant null);
* ``drop 15, 0.9``: 0.9 -> 0.75 on every test; ``drop 15, 0.6-0.99``: every test 15 points lower;
* ``one test 0.9->0.4``: one test drops, the other nine stay at 0.9;
* ``improve 0.75->0.9``: every test 15 points higher;
* ``drop = margin, 0.9``: 0.9 -> 0.85 on every test (a drop of exactly delta = 0.05).

Per scenario and sample count: the gate fails (``Decision.passed`` false: a false alarm under a
null, a detection under a drop), the group's verdict is ``re-engineer``, ``migrate``
(``improved`` or ``non-inferior``), ``improved``, ``investigate``; each rate with its trial count
and 95% Wilson interval. Designs: equal samples (n on both models, ``--samples``) and incumbent
history (``--incumbent-samples`` on the incumbent, ``--history-samples`` on the candidate). The
suite table runs ``--suite-groups`` null groups (default 5) through one ``evaluate`` call: the
suite-wide false alarm. Stdlib ``random`` only; every cell has its own seed derived from
``--seed``, the design, the scenario and n, so a cell does not depend on which others run.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if importlib.util.find_spec("pytest_modelmigrate") is None:  # run from a checkout, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_modelmigrate.gate import CORRECTIONS, GatePolicy, Tally, evaluate
from pytest_modelmigrate.stats import fisher_exact_less, wilson_interval

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

MODELS = ["incumbent", "candidate"]
SAMPLES = (1, 3, 5, 10, 20, 50, 100)
LARGE_N = 50  # from this many samples per test, ``--reps-large`` replicates per cell
HET_LOW, HET_HIGH = 0.60, 0.99

Rates = list[tuple[float, float]]  # per test: (incumbent rate, candidate rate)


def _same(p: float) -> Callable[[random.Random, int], Rates]:
    return lambda rng, k: [(p, p)] * k


def _shift(p: float, delta: float) -> Callable[[random.Random, int], Rates]:
    return lambda rng, k: [(p, p - delta)] * k


def _het(delta: float) -> Callable[[random.Random, int], Rates]:
    def rates(rng: random.Random, k: int) -> Rates:
        out = []
        for _ in range(k):
            base = rng.uniform(HET_LOW, HET_HIGH)
            out.append((base, max(0.0, base - delta)))
        return out

    return rates


def _one_test(rng: random.Random, k: int) -> Rates:
    return [(0.9, 0.4)] + [(0.9, 0.9)] * (k - 1)


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # null | drop | improve | margin
    rates: Callable[[random.Random, int], Rates]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("null, 0.9", "null", _same(0.9)),
    Scenario("null, 0.6-0.99", "null", _het(0.0)),
    Scenario("null, 0.5", "null", _same(0.5)),
    Scenario("drop 15, 0.9", "drop", _shift(0.9, 0.15)),
    Scenario("drop 15, 0.6-0.99", "drop", _het(0.15)),
    Scenario("one test 0.9->0.4", "drop", _one_test),
    Scenario("improve 0.75->0.9", "improve", _shift(0.75, -0.15)),
    Scenario("drop = margin, 0.9", "margin", _shift(0.9, 0.05)),
)
SUITE_SCENARIOS = ("null, 0.6-0.99", "null, 0.5")


def scenario(name: str) -> Scenario:
    return next(s for s in SCENARIOS if s.name == name)


def _tally(rng: random.Random, n: int, p: float) -> Tally:
    outcomes = tuple(rng.random() < p for _ in range(n))
    return Tally(sum(outcomes), n, outcomes)


def simulate_group(
    rng: random.Random, rates: Rates, n_incumbent: int, n_candidate: int
) -> dict[str, dict[str, Tally]]:
    """test -> model -> Tally, the shape :func:`evaluate` takes for one group."""
    return {
        f"t{i:02d}": {"incumbent": _tally(rng, n_incumbent, pi), "candidate": _tally(rng, n_candidate, pc)}
        for i, (pi, pc) in enumerate(rates)
    }


def verdict_at_most(hits: int, trials: int, limit: float = 0.05) -> str:
    """``met`` (rate <= limit), ``MISSED`` (the whole 95% interval above it), else ``unclear``."""
    low, _ = wilson_interval(hits, trials)
    if trials and hits / trials <= limit:
        return "met"
    return "MISSED" if low > limit else "unclear (above the limit, interval includes it)"


def rate_cell(hits: int, trials: int) -> str:
    """``4.1% (3.0-5.5)``: the rate and its 95% Wilson interval, in percent."""
    if not trials:
        return "-"
    low, high = wilson_interval(hits, trials)
    return f"{100 * hits / trials:.1f}% ({100 * low:.1f}-{100 * high:.1f})"


@dataclass
class Cell:
    """Counts for one (design, scenario, n)."""

    scenario: str
    kind: str
    n_incumbent: int
    n_candidate: int
    trials: int = 0
    gate_failed: int = 0
    reengineer: int = 0
    migrate: int = 0
    improved: int = 0
    investigate: int = 0
    seconds: float = 0.0
    findings: dict[str, int] = field(default_factory=dict)

    def rate(self, name: str) -> float:
        value: int = getattr(self, name)
        return value / self.trials if self.trials else float("nan")

    def interval(self, name: str) -> tuple[float, float]:
        value: int = getattr(self, name)
        return wilson_interval(value, self.trials)


def cell_seed(seed: int, *parts: object) -> str:
    return ":".join(str(p) for p in (seed, *parts))


def run_cell(
    sc: Scenario,
    n_incumbent: int,
    n_candidate: int,
    reps: int,
    seed: int,
    policy: GatePolicy | None = None,
    group_size: int = 10,
) -> Cell:
    """``reps`` groups of ``sc`` through :func:`evaluate` (one group per call)."""
    policy = policy or GatePolicy(mode="no-regression")
    rng = random.Random(cell_seed(seed, "group", sc.name, n_incumbent, n_candidate, group_size))
    cell = Cell(sc.name, sc.kind, n_incumbent, n_candidate)
    start = time.perf_counter()
    for _ in range(reps):
        tests = simulate_group(rng, sc.rates(rng, group_size), n_incumbent, n_candidate)
        decision = evaluate({"g": tests}, MODELS, policy)
        verdict = decision.verdicts["g"]["candidate"]
        cell.trials += 1
        cell.gate_failed += not decision.passed
        cell.reengineer += verdict.verdict == "re-engineer"
        cell.migrate += verdict.verdict == "migrate"
        cell.improved += verdict.finding == "improved"
        cell.investigate += verdict.verdict == "investigate"
        cell.findings[verdict.finding] = cell.findings.get(verdict.finding, 0) + 1
    cell.seconds = time.perf_counter() - start
    return cell


def run_suite_cell(
    sc: Scenario,
    n_incumbent: int,
    n_candidate: int,
    reps: int,
    seed: int,
    n_groups: int = 5,
    group_size: int = 10,
    policy: GatePolicy | None = None,
) -> Cell:
    """``reps`` suites of ``n_groups`` groups of ``sc``, one :func:`evaluate` call per suite.

    ``gate_failed``: the gate fails (suite-wide false alarm under a null); ``reengineer``: any
    group's verdict is ``re-engineer``; ``migrate``: every group's verdict is ``migrate``."""
    policy = policy or GatePolicy(mode="no-regression")
    rng = random.Random(cell_seed(seed, "suite", sc.name, n_incumbent, n_candidate, n_groups, group_size))
    cell = Cell(sc.name, sc.kind, n_incumbent, n_candidate)
    start = time.perf_counter()
    for _ in range(reps):
        suite = {
            f"g{g}": simulate_group(rng, sc.rates(rng, group_size), n_incumbent, n_candidate)
            for g in range(n_groups)
        }
        decision = evaluate(suite, MODELS, policy)
        verdicts = [per["candidate"] for per in decision.verdicts.values()]
        cell.trials += 1
        cell.gate_failed += not decision.passed
        cell.reengineer += any(v.verdict == "re-engineer" for v in verdicts)
        cell.migrate += all(v.verdict == "migrate" for v in verdicts)
        cell.improved += all(v.finding == "improved" for v in verdicts)
        cell.investigate += any(v.verdict == "investigate" for v in verdicts)
    cell.seconds = time.perf_counter() - start
    return cell


HEADER = (
    "| scenario | samples inc / cand | gate fails | re-engineer | migrate | improved | investigate | groups |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
)
SUITE_HEADER = (
    "| scenario (every group) | samples inc / cand | gate fails (suite false alarm) | any group re-engineer "
    "| every group migrate | suites |",
    "|---|---:|---:|---:|---:|---:|",
)


def markdown_cells(cells: Sequence[Cell]) -> str:
    """The group table: every rate with its 95% Wilson interval."""
    lines = list(HEADER)
    for c in cells:
        rates = " | ".join(
            rate_cell(getattr(c, k), c.trials)
            for k in ("gate_failed", "reengineer", "migrate", "improved", "investigate")
        )
        lines.append(f"| {c.scenario} | {c.n_incumbent} / {c.n_candidate} | {rates} | {c.trials} |")
    return "\n".join(lines)


def markdown_suite(cells: Sequence[Cell]) -> str:
    lines = list(SUITE_HEADER)
    for c in cells:
        rates = " | ".join(
            rate_cell(getattr(c, k), c.trials) for k in ("gate_failed", "reengineer", "migrate")
        )
        lines.append(f"| {c.scenario} | {c.n_incumbent} / {c.n_candidate} | {rates} | {c.trials} |")
    return "\n".join(lines)


def targets(groups: Sequence[Cell], history: Sequence[Cell], suite: Sequence[Cell]) -> list[str]:
    """The targets against the measured cells, as text (point estimates and Wilson bounds)."""
    out: list[str] = []

    def worst(cells: Sequence[Cell], label: str) -> None:
        if not cells:
            return
        c = max(cells, key=lambda c: c.rate("gate_failed"))
        _, high = c.interval("gate_failed")
        ok = verdict_at_most(c.gate_failed, c.trials)
        out.append(
            f"- false alarm <= 5% ({label}): {ok}; worst {100 * c.rate('gate_failed'):.1f}% "
            f"(Wilson upper {100 * high:.1f}%) at {c.scenario}, {c.n_incumbent} / {c.n_candidate}"
        )

    nulls = [c for c in groups if c.kind == "null"]
    worst(nulls, "per group, equal samples")
    worst([c for c in history if c.kind == "null"], "per group, incumbent history")
    worst(suite, "per suite")
    for c in [*groups, *history]:
        if c.scenario == "drop 15, 0.6-0.99" and c.n_candidate <= 10:
            ok = "met" if c.rate("gate_failed") >= 0.8 else "missed"
            out.append(
                f"- detection >= 80% (drop 15, 0.6-0.99, {c.n_incumbent} / {c.n_candidate}): {ok}; "
                f"{100 * c.rate('gate_failed'):.1f}%"
            )
    margin = [c for c in [*groups, *history] if c.kind == "margin"]
    if margin:
        c = max(margin, key=lambda c: c.rate("migrate"))
        ok = verdict_at_most(c.migrate, c.trials)
        out.append(
            f"- migrate under a drop of delta <= 5%: {ok}; worst {100 * c.rate('migrate'):.1f}% "
            f"at {c.n_incumbent} / {c.n_candidate}"
        )
    return out


def _seconds(cells: Sequence[Cell]) -> str:
    return f"{sum(c.seconds for c in cells):.1f} s"


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=1000, help="Groups per cell below 50 samples (1000)")
    parser.add_argument("--reps-large", type=int, default=300, help="Groups per cell at >= 50 samples (300)")
    parser.add_argument("--suite-reps", type=int, default=200, help="Suites per cell below 50 samples (200)")
    parser.add_argument(
        "--suite-reps-large", type=int, default=100, help="Suites per cell at >= 50 samples (100)"
    )
    parser.add_argument("--seed", type=int, default=20261, help="Random seed (default 20261)")
    parser.add_argument("--group-size", type=int, default=10, help="Tests per group (default 10)")
    parser.add_argument("--suite-groups", type=int, default=5, help="Groups per suite (default 5)")
    parser.add_argument(
        "--samples", type=_ints, default=SAMPLES, help="Samples per test per model, comma-separated"
    )
    parser.add_argument(
        "--incumbent-samples", type=int, default=30, help="Incumbent samples, history design (30; 0: skip)"
    )
    parser.add_argument(
        "--history-samples", type=_ints, default=(5, 10), help="Candidate samples, history design (5,10)"
    )
    parser.add_argument(
        "--tables", default="groups,history,suite", help="Which tables to run (default groups,history,suite)"
    )
    parser.add_argument("--quick", action="store_true", help="Small run for a smoke test (seconds)")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.reps_large, args.suite_reps, args.suite_reps_large = 20, 5, 5, 2
        args.samples, args.history_samples = (1, 5, 50), (5,)

    def reps(n: int, small: int, large: int) -> int:
        return large if n >= LARGE_N else small

    policy = GatePolicy(mode="no-regression")
    start = time.perf_counter()
    print(
        f"Policy {policy.mode}, alpha {policy.alpha}, margin {policy.margin}, correction {policy.correction}; "
        f"groups of {args.group_size} tests; seed {args.seed}; {args.reps} groups per cell below "
        f"{LARGE_N} samples, {args.reps_large} from {LARGE_N}\n"
    )
    tables = set(args.tables.split(","))
    groups = [
        run_cell(sc, n, n, reps(n, args.reps, args.reps_large), args.seed, policy, args.group_size)
        for sc in SCENARIOS
        for n in args.samples
        if "groups" in tables
    ]
    if groups:
        print(f"Equal samples (n on both models), one group per evaluate call ({_seconds(groups)}):\n")
        print(markdown_cells(groups))
    history: list[Cell] = []
    if args.incumbent_samples > 0 and args.history_samples and "history" in tables:
        n_inc = args.incumbent_samples
        history = [
            run_cell(
                sc,
                n_inc,
                n,
                reps(max(n, n_inc), args.reps, args.reps_large),
                args.seed,
                policy,
                args.group_size,
            )
            for sc in SCENARIOS
            for n in args.history_samples
        ]
        print(
            f"\nIncumbent history: {n_inc} incumbent samples per test, the candidate fewer ({_seconds(history)}):\n"
        )
        print(markdown_cells(history))
    suite = [
        run_suite_cell(
            scenario(name),
            n,
            n,
            reps(n, args.suite_reps, args.suite_reps_large),
            args.seed,
            args.suite_groups,
            args.group_size,
            policy,
        )
        for name in SUITE_SCENARIOS
        for n in args.samples
        if "suite" in tables
    ]
    if suite:
        print(
            f"\nWhole suite: {args.suite_groups} groups of {args.group_size} tests in one evaluate call, "
            f"{args.suite_reps} suites per cell below {LARGE_N} samples, {args.suite_reps_large} from {LARGE_N} ({_seconds(suite)}):\n"
        )
        print(markdown_suite(suite))
    print("\nTargets:\n")
    print("\n".join(targets(groups, history, suite)))
    print(f"\n({time.perf_counter() - start:.1f} s)")
    return 0


# -- the previous benchmark's functions (tests/test_gate.py smoke-tests them) ------------------

BASE_LOW, BASE_HIGH = 0.60, 0.98
DROP = 0.15


@dataclass(frozen=True)
class Row:
    samples: int
    level: str
    false_alarm: float
    detection: float
    trials: int


@dataclass(frozen=True)
class SuiteRow:
    samples: int
    correction: str
    false_alarm: float
    detection: float
    group_detection: float
    trials: int


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(rng.random() < p for _ in range(n))


def _group(
    rng: random.Random, samples: int, group_size: int, drop: float, base_rates: tuple[float, float]
) -> dict[str, dict[str, Tally]]:
    tests: dict[str, dict[str, Tally]] = {}
    for i in range(group_size):
        base = rng.uniform(*base_rates)
        tests[f"t{i:02d}"] = {
            "incumbent": Tally(_binomial(rng, samples, base), samples),
            "candidate": Tally(_binomial(rng, samples, max(0.0, base - drop)), samples),
        }
    return tests


def _replicate(
    rng: random.Random,
    samples: int,
    group_size: int,
    drop: float,
    policy: GatePolicy,
    base_rates: tuple[float, float] = (BASE_LOW, BASE_HIGH),
    baseline: GatePolicy | None = None,
) -> tuple[int, bool, bool, bool]:
    """One group: (tests flagged, group flagged, verdict re-engineer, same under ``baseline``)."""
    tests = _group(rng, samples, group_size, drop, base_rates)
    result = evaluate({"g": tests}, ["incumbent", "candidate"], policy)
    flagged_tests = sum(r.test is not None for r in result.regressions)
    flagged_group = any(r.test is None for r in result.regressions)
    verdict = result.verdicts["g"]["candidate"].verdict == "re-engineer"
    other = False
    if baseline is not None:
        other_result = evaluate({"g": tests}, ["incumbent", "candidate"], baseline)
        other = other_result.verdicts["g"]["candidate"].verdict == "re-engineer"
    return flagged_tests, flagged_group, verdict, other


def run_simulation(
    reps: int = 4000,
    seed: int = 20261,
    samples: tuple[int, ...] = (5, 10, 20),
    group_size: int = 10,
    base_rates: tuple[float, float] = (BASE_LOW, BASE_HIGH),
) -> list[Row]:
    """Rows of false-alarm and detection rates, per test, per group and per group verdict.

    The verdict is measured under the default correction (``holm``) and, on the same data,
    under ``none``."""
    policy = GatePolicy(mode="no-regression", alpha=0.05, tolerance=0.0)
    baseline = GatePolicy(mode="no-regression", alpha=0.05, tolerance=0.0, correction="none")
    rng = random.Random(seed)
    rows: list[Row] = []
    for n in samples:
        counts = {}
        for scenario, drop in (("null", 0.0), ("drop", DROP)):
            hits = [0, 0, 0, 0]
            for _ in range(reps):
                for k, value in enumerate(_replicate(rng, n, group_size, drop, policy, base_rates, baseline)):
                    hits[k] += value
            counts[scenario] = (hits[0] / (reps * group_size), hits[1] / reps, hits[2] / reps, hits[3] / reps)
        null, drop_ = counts["null"], counts["drop"]
        rows.append(Row(n, "per test (Fisher, Holm within the group)", null[0], drop_[0], reps * group_size))
        rows.append(Row(n, f"per group of {group_size} (exact stratified)", null[1], drop_[1], reps))
        rows.append(Row(n, "verdict re-engineer, correction holm", null[2], drop_[2], reps))
        rows.append(Row(n, "verdict re-engineer, correction none (before)", null[3], drop_[3], reps))
    return rows


def run_suite_simulation(
    reps: int = 1000,
    seed: int = 20262,
    samples: tuple[int, ...] = (5, 10, 20),
    n_groups: int = 5,
    group_size: int = 10,
    corrections: tuple[str, ...] = CORRECTIONS,
    base_rates: tuple[float, float] = (BASE_LOW, BASE_HIGH),
) -> list[SuiteRow]:
    """Gate-level rates for a suite of ``n_groups`` groups, one ``evaluate`` call per suite.

    No change: the gate fails = false alarm. One group (the first) 15 points lower on every
    test: the gate fails = detection; that group's verdict ``re-engineer`` = group detection.
    Every correction sees the same simulated suites."""
    policies = {
        c: GatePolicy(mode="no-regression", alpha=0.05, tolerance=0.0, correction=c) for c in corrections
    }
    rng = random.Random(seed)
    rows: list[SuiteRow] = []
    models = ["incumbent", "candidate"]
    for n in samples:
        false_alarm = dict.fromkeys(corrections, 0)
        detected = dict.fromkeys(corrections, 0)
        group_detected = dict.fromkeys(corrections, 0)
        for _ in range(reps):
            null = {f"g{g}": _group(rng, n, group_size, 0.0, base_rates) for g in range(n_groups)}
            drop = {
                f"g{g}": _group(rng, n, group_size, DROP if g == 0 else 0.0, base_rates)
                for g in range(n_groups)
            }
            for c, policy in policies.items():
                false_alarm[c] += not evaluate(null, models, policy).passed
                result = evaluate(drop, models, policy)
                detected[c] += not result.passed
                group_detected[c] += result.verdicts["g0"]["candidate"].verdict == "re-engineer"
        for c in corrections:
            rows.append(
                SuiteRow(n, c, false_alarm[c] / reps, detected[c] / reps, group_detected[c] / reps, reps)
            )
    return rows


def suite_markdown_table(rows: list[SuiteRow]) -> str:
    lines = [
        "| samples per test | correction | gate false alarm (no change) | gate detection "
        "(one group 15 points lower) | that group re-engineer | suites |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.samples} | {r.correction} | {100 * r.false_alarm:.1f}% | {100 * r.detection:.1f}% "
            f"| {100 * r.group_detection:.1f}% | {r.trials} |"
        )
    return "\n".join(lines)


def fisher_power(p_incumbent: float, p_candidate: float, n: int, alpha: float = 0.05) -> float:
    """Exact power of the one-sided Fisher test with n samples per model, by enumeration."""

    def pmf(p: float) -> list[float]:
        from math import comb

        return [comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]

    inc, cand = pmf(p_incumbent), pmf(p_candidate)
    total = 0.0
    for a in range(n + 1):
        for b in range(n + 1):
            if fisher_exact_less(a, n, b, n) <= alpha:
                total += inc[a] * cand[b]
    return total


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| samples per test | level | false alarm (no change) | detection (15-point drop) | trials |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        rates = f"{100 * r.false_alarm:.1f}% | {100 * r.detection:.1f}%"
        lines.append(f"| {r.samples} | {r.level} | {rates} | {r.trials} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
