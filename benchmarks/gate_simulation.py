"""Measure the gate's false-alarm and detection rates by simulation.

    python benchmarks/gate_simulation.py [--reps N] [--seed S]

Each replicate builds one prompt group of ``--group-size`` tests whose incumbent pass rates are
drawn uniformly from [0.60, 0.98] (heterogeneous base rates), samples every test ``n`` times
on each model, and runs the real gate (:func:`pytest_modelmigrate.gate.evaluate`, mode
``no-regression``, alpha 0.05, tolerance 0).

* null: the candidate has the incumbent's rate on every test -> any "regressed" is a false alarm;
* drop: the candidate's rate is 15 points lower on every test -> "regressed" is a detection.

Reported per test (the one-sided Fisher test on one test, after the default Holm correction
within the group), per group (the exact stratified test pooling the group's tests), and for
the group's verdict (``re-engineer`` when any test or the group regressed), with the default
correction (``holm``) and without (``none``, the behaviour before the correction).

The suite table runs a whole suite through one ``evaluate`` call: ``--suite-groups`` groups
(default 5) of ``--group-size`` tests, the candidate equal to the incumbent (false alarm: the
gate fails) or one group dropped 15 points on every test (detection: the gate fails; also
whether that group's verdict is ``re-engineer``), under each correction. A last table gives
the exact power of the per-test Fisher test for 90% -> 75% by enumeration (no simulation).
Stdlib ``random`` only; seeded.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_modelmigrate.gate import CORRECTIONS, GatePolicy, Tally, evaluate
from pytest_modelmigrate.stats import fisher_exact_less

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=2000, help="Replicate groups per cell (default 2000)")
    parser.add_argument("--seed", type=int, default=20261, help="Random seed (default 20261)")
    parser.add_argument("--group-size", type=int, default=10, help="Tests per group (default 10)")
    parser.add_argument("--suite-reps", type=int, default=600, help="Suites per cell (default 600)")
    parser.add_argument("--suite-groups", type=int, default=5, help="Groups per suite (default 5)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = run_simulation(reps=args.reps, seed=args.seed, group_size=args.group_size)
    print(
        f"Base rates uniform in [{BASE_LOW}, {BASE_HIGH}], drop {DROP}, alpha 0.05, "
        f"{args.reps} groups of {args.group_size} tests per cell, seed {args.seed}\n"
    )
    print(markdown_table(rows))
    print(f"\nSame, every test's incumbent rate 0.90 (the issue's 90% -> 75% example), {args.reps} groups:\n")
    print(markdown_table(run_simulation(args.reps, args.seed, (10,), args.group_size, (0.90, 0.90))))
    print(
        f"\nWhole suite: {args.suite_groups} groups of {args.group_size} tests, one evaluate call, "
        f"{args.suite_reps} suites per cell and scenario, seed {args.seed + 1}:\n"
    )
    suite = run_suite_simulation(
        args.suite_reps, args.seed + 1, n_groups=args.suite_groups, group_size=args.group_size
    )
    print(suite_markdown_table(suite))
    print("\nExact power of the per-test Fisher test, 90% -> 75% (enumeration, alpha 0.05):\n")
    print("| samples per model | power |\n|---:|---:|")
    for n in (10, 20, 100):
        print(f"| {n} | {100 * fisher_power(0.90, 0.75, n):.1f}% |")
    print(f"\n({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
