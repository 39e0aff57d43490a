"""Adaptive sampling (``--samples=auto``) against fixed N = 20, by simulation.

    python benchmarks/adaptive_simulation.py [--reps N] [--seed S]

Each comparison is one test: an emulated stochastic incumbent with a known pass rate drawn
uniformly from [0.60, 0.98] and a candidate whose rate depends on the scenario (equal; 15 points
lower; 30 points lower; improved: half of the incumbent's failures fixed; both 100%; and, as a
stress case for the false alarm, both at 50%, the null with the most discordant pairs). A stream
of ``max_samples`` paired rounds (one sample of each model per round) is drawn once; the fixed-N
references see all of it, the sequential rules see the prefix they ask for (so "agreement" is
measured on the very same outcomes).

Rules compared, each reported per scenario (false alarm = REGRESSED when the rates are equal,
detection = REGRESSED when the candidate is worse, agreement with the fixed-N decision on the same
stream, mean calls = samples of both models, relative to the 2 × N calls of fixed N):

* ``adaptive`` — :class:`pytest_modelmigrate.sequential.SequentialComparison` with the default
  :class:`~pytest_modelmigrate.sequential.AdaptivePolicy` (min 5, max 20, alpha 0.05, futility 0.05);
* ``naive Fisher`` — re-run the gate's one-sided Fisher test after every round (from the first)
  and stop at the first p <= alpha: the optional-stopping mistake the issue warns about;
* ``naive sign`` — the same with the exact sign test on the discordant pairs.

Fixed-N references: the gate's per-test rule (one-sided Fisher on N vs N, lower and p <= alpha)
and the exact sign test at alpha on the N pairs (the fixed-N counterpart of the adaptive rule).
A second table does the same for a prompt group of ``--group-size`` tests (rates drawn per test),
fixed-N reference: the gate's exact stratified test. Stdlib ``random`` only; seeded.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_modelmigrate.sequential import AdaptivePolicy, SequentialComparison, sign_test_p
from pytest_modelmigrate.stats import fisher_exact_less, stratified_test

if TYPE_CHECKING:
    from collections.abc import Callable

BASE_LOW, BASE_HIGH = 0.60, 0.98

Pair = tuple[bool, bool]


def _improve(base: float) -> float:
    return base + (1.0 - base) / 2.0


# name -> (incumbent rate from the drawn base, candidate rate from the drawn base)
SCENARIOS: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    "equal rates": (lambda b: b, lambda b: b),
    "15-point drop": (lambda b: b, lambda b: max(0.0, b - 0.15)),
    "30-point drop": (lambda b: b, lambda b: max(0.0, b - 0.30)),
    "improvement": (lambda b: b, _improve),
    "both 100%": (lambda b: 1.0, lambda b: 1.0),
    # Stress case for the false alarm: p = 1/2 makes the most discordant pairs (the worst null).
    "equal rates at 50% (worst case)": (lambda b: 0.5, lambda b: 0.5),
}
WORSE = {"15-point drop", "30-point drop"}


@dataclass
class Cell:
    """Counts for one (scenario, rule)."""

    regressed: int = 0
    agree_fisher: int = 0
    agree_sign: int = 0
    calls: int = 0
    trials: int = 0

    def add(self, regressed: bool, used: int, *, fisher: bool, sign: bool) -> None:
        """One trial: the rule's verdict after ``used`` rounds (2 calls each), against the references."""
        self.trials += 1
        self.regressed += regressed
        self.agree_fisher += regressed == fisher
        self.agree_sign += regressed == sign
        self.calls += 2 * used


@dataclass(frozen=True)
class Row:
    scenario: str
    rule: str
    regressed: float
    agree_fisher: float
    agree_sign: float
    calls: float  # mean calls relative to fixed N
    trials: int
    worse: bool


def _stream(rng: random.Random, p_inc: float, p_cand: float, n: int) -> list[Pair]:
    return [(rng.random() < p_inc, rng.random() < p_cand) for _ in range(n)]


def _fisher_regressed(pairs: list[Pair], alpha: float) -> bool:
    n = len(pairs)
    a = sum(i for i, _ in pairs)
    b = sum(c for _, c in pairs)
    return a > b and fisher_exact_less(a, n, b, n) <= alpha


def _sign_regressed(pairs: list[Pair], alpha: float) -> bool:
    losses = sum(i and not c for i, c in pairs)
    wins = sum(c and not i for i, c in pairs)
    return losses > 0 and sign_test_p(losses + wins, losses) <= alpha


def _adaptive(pairs: list[Pair], policy: AdaptivePolicy, tests: int = 1) -> tuple[bool, int]:
    """(regressed, pairs used) following the rule, asking after every round of ``tests`` pairs."""
    comp = SequentialComparison(policy, tests)
    for i, (inc, cand) in enumerate(pairs, start=1):
        comp.add(inc, cand)
        if i % tests == 0 and comp.decision().final:
            break
    decision = comp.decision()
    return decision.status == "regressed", comp.pairs


def _naive(pairs: list[Pair], alpha: float, test: Callable[[list[Pair], float], bool]) -> tuple[bool, int]:
    for k in range(1, len(pairs) + 1):
        if test(pairs[:k], alpha):
            return True, k
    return False, len(pairs)


def run_tests(reps: int, seed: int, policy: AdaptivePolicy) -> list[Row]:
    """Single-test comparisons, ``reps`` per scenario."""
    rng = random.Random(seed)
    n, alpha = policy.max_samples, policy.alpha
    rules: dict[str, Callable[[list[Pair]], tuple[bool, int]]] = {
        "adaptive (this rule)": lambda s: _adaptive(s, policy),
        "naive: Fisher after every round": lambda s: _naive(s, alpha, _fisher_regressed),
        "naive: sign test after every round": lambda s: _naive(s, alpha, _sign_regressed),
        f"fixed N={n}, Fisher (the gate)": lambda s: (_fisher_regressed(s, alpha), len(s)),
        f"fixed N={n}, sign test": lambda s: (_sign_regressed(s, alpha), len(s)),
    }
    rows: list[Row] = []
    for scenario, (f_inc, f_cand) in SCENARIOS.items():
        cells = {name: Cell() for name in rules}
        for _ in range(reps):
            base = rng.uniform(BASE_LOW, BASE_HIGH)
            stream = _stream(rng, f_inc(base), f_cand(base), n)
            ref_fisher = _fisher_regressed(stream, alpha)
            ref_sign = _sign_regressed(stream, alpha)
            for name, rule in rules.items():
                regressed, used = rule(stream)
                cells[name].add(regressed, used, fisher=ref_fisher, sign=ref_sign)
        rows.extend(_rows(scenario, cells, 2 * n))
    return rows


def _rows(scenario: str, cells: dict[str, Cell], fixed_calls: int) -> list[Row]:
    return [
        Row(
            scenario,
            name,
            c.regressed / c.trials,
            c.agree_fisher / c.trials,
            c.agree_sign / c.trials,
            c.calls / (c.trials * fixed_calls),
            c.trials,
            scenario in WORSE,
        )
        for name, c in cells.items()
    ]


def run_groups(reps: int, seed: int, policy: AdaptivePolicy, group_size: int) -> list[Row]:
    """Prompt groups of ``group_size`` tests sampled in rounds (one pair per test per round).

    The group stops when its :class:`SequentialComparison` (fed with every pair) decides; the
    fixed-N reference is the gate's exact stratified test on N samples per test and model
    (column "agree Fisher" holds the agreement with it), and the sign test on all N × tests pairs.
    """
    rng = random.Random(seed)
    n, alpha = policy.max_samples, policy.alpha
    rows: list[Row] = []
    for scenario, (f_inc, f_cand) in SCENARIOS.items():
        cells = {"adaptive (this rule), group": Cell(), "naive: stratified after every round": Cell()}
        for _ in range(reps):
            rates = [
                (f_inc(b), f_cand(b)) for b in (rng.uniform(BASE_LOW, BASE_HIGH) for _ in range(group_size))
            ]
            streams = [_stream(rng, pi, pc, n) for pi, pc in rates]
            interleaved = [streams[t][r] for r in range(n) for t in range(group_size)]

            def strat(rounds: int, streams: list[list[Pair]] = streams) -> bool:
                strata = [
                    (sum(i for i, _ in s[:rounds]), rounds, sum(c for _, c in s[:rounds]), rounds)
                    for s in streams
                ]
                lower = sum(s[0] for s in strata) > sum(s[2] for s in strata)
                return lower and stratified_test(strata) <= alpha

            ref = strat(n)
            ref_sign = _sign_regressed(interleaved, alpha)
            results = {
                "adaptive (this rule), group": _adaptive(interleaved, policy, group_size),
                "naive: stratified after every round": next(
                    ((True, r * group_size) for r in range(1, n + 1) if strat(r)), (False, n * group_size)
                ),
            }
            for name, (regressed, used) in results.items():
                cells[name].add(regressed, used, fisher=ref, sign=ref_sign)
        rows.extend(_rows(scenario, cells, 2 * n * group_size))
    return rows


def markdown_table(rows: list[Row], reference: str = "Fisher") -> str:
    lines = [
        f"| scenario | rule | false alarm | detection | agrees with fixed N, {reference} "
        "| agrees with fixed N, sign test | mean calls vs fixed N | comparisons |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        alarm = "" if r.worse else f"{100 * r.regressed:.1f}%"
        detect = f"{100 * r.regressed:.1f}%" if r.worse else ""
        lines.append(
            f"| {r.scenario} | {r.rule} | {alarm} | {detect} | {100 * r.agree_fisher:.1f}% "
            f"| {100 * r.agree_sign:.1f}% | {100 * r.calls:.1f}% | {r.trials} |"
        )
    return "\n".join(lines)


def overall(rows: list[Row], rule: str) -> tuple[float, float, float]:
    """Mean over scenarios (equal weight) of agreement (Fisher, sign) and calls for one rule."""
    mine = [r for r in rows if r.rule == rule and "worst case" not in r.scenario]
    k = len(mine)
    return (
        sum(r.agree_fisher for r in mine) / k,
        sum(r.agree_sign for r in mine) / k,
        sum(r.calls for r in mine) / k,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=3000, help="Comparisons per scenario (default 3000)")
    parser.add_argument("--group-reps", type=int, default=200, help="Groups per scenario (default 200)")
    parser.add_argument("--group-size", type=int, default=10, help="Tests per group (default 10)")
    parser.add_argument("--seed", type=int, default=20266, help="Random seed (default 20266)")
    args = parser.parse_args(argv)
    policy = AdaptivePolicy()
    start = time.perf_counter()
    rows = run_tests(args.reps, args.seed, policy)
    print(
        f"Per test: incumbent rates uniform in [{BASE_LOW}, {BASE_HIGH}], policy {policy.to_dict()}, "
        f"{args.reps} comparisons per scenario, seed {args.seed}\n"
    )
    print(markdown_table(rows))
    fisher, sign, calls = overall(rows, "adaptive (this rule)")
    print(
        f"\nAdaptive, mean over the {len(SCENARIOS) - 1} scenarios (the 50% stress case left out): "
        "agrees with fixed N Fisher "
        f"{100 * fisher:.1f}%, with fixed N sign test {100 * sign:.1f}%, calls {100 * calls:.1f}% of fixed N"
    )
    if args.group_reps > 0:
        groups = run_groups(args.group_reps, args.seed + 1, policy, args.group_size)
        print(
            f"\nPer prompt group of {args.group_size} tests (rates drawn per test), "
            f"{args.group_reps} groups per scenario, seed {args.seed + 1}; "
            "reference: the gate's exact stratified test at N per test:\n"
        )
        print(markdown_table(groups, reference="stratified"))
    print(f"\n({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
