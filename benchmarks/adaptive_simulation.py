"""``--samples=auto``: error rates of the decision and samples taken, by simulation through the
plugin's adaptive code path.

    python benchmarks/adaptive_simulation.py [--reps N] [--suite-reps N] [--seed S] [--quick]

Every replicate is a prompt group of ``--group-size`` tests (default 10) with known pass rates
on the incumbent and the candidate. Recording is simulated pass by pass as the plugin does it
under ``--samples=auto --record-mode=new_episodes``: each pass asks
:func:`pytest_modelmigrate.adaptive.plan_samples` (``recording=True``, ``batch`` 5) how many
rounds each test takes, draws the new samples, and stops when no test gets more (every
comparison decided, or ``max_samples`` reached). The decision is then made as
:func:`pytest_modelmigrate.analysis.analyse` makes it with ``adaptive=AdaptiveRun(...)``:
:func:`~pytest_modelmigrate.adaptive.decide` on the recorded outcomes,
:func:`~pytest_modelmigrate.adaptive.sequential_verdicts`, the fixed-N
:func:`~pytest_modelmigrate.gate.compare` on the same tallies (for the non-inferiority evidence)
and :func:`pytest_modelmigrate.gate.decide` with ``sequential=``. Policies: the plugin's defaults,
``AdaptivePolicy(min_samples=5, max_samples=20, alpha=0.05)`` and
``GatePolicy(mode="no-regression")``.

Scenarios are those of ``gate_simulation.py`` (null at 0.9, at 0.6-0.99, at 0.5; a 15-point
drop at 0.9 and at 0.6-0.99; one test 0.9 -> 0.4; improvement 0.75 -> 0.9; a drop equal to the
margin). Reported: the gate fails (false alarm under a null, detection under a drop), the
verdict ``re-engineer`` / ``migrate`` / ``investigate``, each with its 95% Wilson interval, and
the mean rounds (samples per model) per test. A suite table runs ``--suite-groups`` null groups
together (one plan, one decision): the suite-wide false alarm.

The second table is the stopping rule alone, one test at a time, against naive re-testing
after every round and the fixed-N tests (the previous benchmark; ``--reps`` comparisons per
scenario). Stdlib ``random`` only; seeded.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if importlib.util.find_spec("pytest_modelmigrate") is None:  # run from a checkout, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

sys.path.insert(0, str(Path(__file__).resolve().parent))  # gate_simulation, beside this file
from gate_simulation import SCENARIOS as GATE_SCENARIOS
from gate_simulation import SUITE_SCENARIOS, Rates, Scenario, rate_cell, verdict_at_most

from pytest_modelmigrate.adaptive import decide as decide_sequential
from pytest_modelmigrate.adaptive import looks, plan_samples, sequential_verdicts
from pytest_modelmigrate.gate import GatePolicy, Tally, compare, decide
from pytest_modelmigrate.sequential import AdaptivePolicy, SequentialComparison, sign_test_p
from pytest_modelmigrate.stats import fisher_exact_less, stratified_test, wilson_interval

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pytest_modelmigrate.gate import Decision

INCUMBENT, CANDIDATE = "incumbent", "candidate"
MODELS = [INCUMBENT, CANDIDATE]
BATCH = 5  # the plugin's default --samples-batch
# the scenarios are gate_simulation's, so the two tables measure the same designs
AutoScenario = Scenario
AUTO_SCENARIOS: tuple[Scenario, ...] = GATE_SCENARIOS


def _outcome(passed: bool) -> str:
    return "passed" if passed else "failed"


def run_auto(
    rng: random.Random,
    suite_rates: Sequence[Rates],
    policy: AdaptivePolicy,
    gate_policy: GatePolicy,
    batch: int = BATCH,
) -> tuple[Decision, dict[str, int]]:
    """One ``--samples=auto`` recording of a suite (groups of tests with their rates), then the decision.

    Returns the decision and the rounds each test took."""
    groups: dict[str, str] = {}
    streams: dict[str, dict[str, list[str]]] = {}
    for g, rates in enumerate(suite_rates):
        for i, (pi, pc) in enumerate(rates):
            test = f"g{g}::t{i:02d}"
            groups[test] = f"g{g}"
            # the samples this test would give, in order; a pass reveals a prefix
            streams[test] = {
                INCUMBENT: [_outcome(rng.random() < pi) for _ in range(policy.max_samples)],
                CANDIDATE: [_outcome(rng.random() < pc) for _ in range(policy.max_samples)],
            }
    recorded: dict[str, dict[str, list[str]]] = {t: {m: [] for m in MODELS} for t in streams}
    while True:  # one pytest run with --record-mode=new_episodes per pass
        plan = plan_samples(recorded, groups, INCUMBENT, [CANDIDATE], policy, recording=True, batch=batch)
        grew = False
        for test, target in plan.targets.items():
            for model in MODELS:
                have = recorded[test][model]
                if len(have) < target:
                    have.extend(streams[test][model][len(have) : target])
                    grew = True
        if not grew:
            break
    # what analyse() does with adaptive=AdaptiveRun(policy): the sequential verdicts replace the
    # fixed-N regression tests; the fixed-N comparison gives the non-inferiority evidence
    plan = decide_sequential(recorded, groups, INCUMBENT, [CANDIDATE], policy)
    rounds = {t: min(len(v) for v in per.values()) for t, per in recorded.items()}
    plan.targets = dict(rounds)
    sequential = sequential_verdicts(plan, groups)
    tallies: dict[str, dict[str, dict[str, Tally]]] = {}
    for test, per in recorded.items():
        tallies.setdefault(groups[test], {})[test] = {
            m: Tally(sum(o == "passed" for o in s), len(s), tuple(o == "passed" for o in s))
            for m, s in per.items()
        }
    # as analyse() does: the non-inferiority bound pays for every look the design can take
    gate_policy = replace(gate_policy, looks=looks(policy))
    comparison = compare(tallies, MODELS, gate_policy)
    return decide(comparison, gate_policy, sequential=sequential), rounds


@dataclass
class AutoCell:
    """Counts for one scenario: groups (or suites) and the rounds they took."""

    scenario: str
    kind: str
    trials: int = 0
    gate_failed: int = 0
    reengineer: int = 0
    migrate: int = 0
    investigate: int = 0
    rounds: int = 0  # summed over tests
    tests: int = 0
    at_max: int = 0  # tests that reached max_samples
    seconds: float = 0.0

    def rate(self, name: str) -> float:
        value: int = getattr(self, name)
        return value / self.trials if self.trials else float("nan")

    @property
    def mean_rounds(self) -> float:
        return self.rounds / self.tests if self.tests else float("nan")


def run_auto_cell(
    sc: AutoScenario,
    reps: int,
    seed: int,
    policy: AdaptivePolicy,
    gate_policy: GatePolicy | None = None,
    group_size: int = 10,
    n_groups: int = 1,
) -> AutoCell:
    """``reps`` recordings of ``n_groups`` groups of ``sc``; verdict counts are of group ``g0``
    when ``n_groups`` is 1, else: any group re-engineer, every group migrate, any investigate."""
    gate_policy = gate_policy or GatePolicy(mode="no-regression")
    rng = random.Random(f"{seed}:auto:{sc.name}:{n_groups}:{group_size}:{policy.max_samples}")
    cell = AutoCell(sc.name, sc.kind)
    start = time.perf_counter()
    for _ in range(reps):
        decision, rounds = run_auto(
            rng, [sc.rates(rng, group_size) for _ in range(n_groups)], policy, gate_policy
        )
        verdicts = [per[CANDIDATE].verdict for per in decision.verdicts.values()]
        cell.trials += 1
        cell.gate_failed += not decision.passed
        cell.reengineer += "re-engineer" in verdicts
        cell.migrate += all(v == "migrate" for v in verdicts)
        cell.investigate += "investigate" in verdicts
        cell.rounds += sum(rounds.values())
        cell.tests += len(rounds)
        cell.at_max += sum(r >= policy.max_samples for r in rounds.values())
    cell.seconds = time.perf_counter() - start
    return cell


AUTO_HEADER = (
    "| scenario | gate fails | re-engineer | migrate | investigate | mean rounds per test "
    "| tests at max | groups |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
)


def markdown_auto(cells: Sequence[AutoCell], unit: str = "groups") -> str:
    lines = [AUTO_HEADER[0].replace("| groups |", f"| {unit} |"), AUTO_HEADER[1]]
    for c in cells:
        rates = " | ".join(
            rate_cell(getattr(c, k), c.trials)
            for k in ("gate_failed", "reengineer", "migrate", "investigate")
        )
        at_max = f"{100 * c.at_max / c.tests:.0f}%" if c.tests else "-"
        lines.append(f"| {c.scenario} | {rates} | {c.mean_rounds:.1f} | {at_max} | {c.trials} |")
    return "\n".join(lines)


def auto_targets(groups: Sequence[AutoCell], suite: Sequence[AutoCell]) -> list[str]:
    out: list[str] = []
    for label, cells in (("per group", [c for c in groups if c.kind == "null"]), ("per suite", list(suite))):
        if cells:
            c = max(cells, key=lambda c: c.rate("gate_failed"))
            _, high = wilson_interval(c.gate_failed, c.trials)
            ok = verdict_at_most(c.gate_failed, c.trials)
            out.append(
                f"- false alarm <= 5% ({label}, --samples=auto): {ok}; worst {100 * c.rate('gate_failed'):.1f}% "
                f"(Wilson upper {100 * high:.1f}%) at {c.scenario}"
            )
    for c in groups:
        if c.scenario == "drop 15, 0.6-0.99":
            ok = "met" if c.rate("gate_failed") >= 0.8 else "missed"
            out.append(
                f"- detection >= 80% (drop 15, 0.6-0.99, --samples=auto): {ok}; {100 * c.rate('gate_failed'):.1f}% "
                f"at {c.mean_rounds:.1f} mean rounds per test"
            )
        if c.kind == "margin":
            ok = verdict_at_most(c.migrate, c.trials)
            out.append(
                f"- migrate under a drop of delta <= 5% (--samples=auto): {ok}; {100 * c.rate('migrate'):.1f}%"
            )
    return out


# -- the stopping rule alone, per test (the previous benchmark; tests/test_sequential.py uses it) --

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
    parser.add_argument(
        "--reps", type=int, default=300, help="Groups per scenario, and single-test comparisons (300)"
    )
    parser.add_argument("--suite-reps", type=int, default=80, help="Suites per scenario (80)")
    parser.add_argument("--suite-groups", type=int, default=5, help="Groups per suite (default 5)")
    parser.add_argument("--group-size", type=int, default=10, help="Tests per group (default 10)")
    parser.add_argument(
        "--group-reps", type=int, default=0, help="Groups per scenario, stopping rule alone (0: skip)"
    )
    parser.add_argument("--min-samples", type=int, default=5, help="AdaptivePolicy.min_samples (5)")
    parser.add_argument("--max-samples", type=int, default=20, help="AdaptivePolicy.max_samples (20)")
    parser.add_argument("--seed", type=int, default=20266, help="Random seed (default 20266)")
    parser.add_argument("--quick", action="store_true", help="Small run for a smoke test (seconds)")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps, args.suite_reps, args.group_reps = 10, 2, 0
    policy = AdaptivePolicy(min_samples=args.min_samples, max_samples=args.max_samples)
    gate_policy = GatePolicy(mode="no-regression")
    start = time.perf_counter()
    print(
        f"--samples=auto through plan_samples / adaptive.decide / sequential_verdicts / gate.decide; "
        f"policy {policy.to_dict()}, batch {BATCH}, gate {gate_policy.mode} (margin {gate_policy.margin}); "
        f"groups of {args.group_size} tests, {args.reps} groups per scenario, seed {args.seed}\n"
    )
    cells = [
        run_auto_cell(sc, args.reps, args.seed, policy, gate_policy, args.group_size) for sc in AUTO_SCENARIOS
    ]
    print(markdown_auto(cells))
    print(f"\n({sum(c.seconds for c in cells):.1f} s)")
    suite: list[AutoCell] = []
    if args.suite_reps > 0:
        suite = [
            run_auto_cell(
                next(s for s in AUTO_SCENARIOS if s.name == name),
                args.suite_reps,
                args.seed,
                policy,
                gate_policy,
                args.group_size,
                args.suite_groups,
            )
            for name in SUITE_SCENARIOS
        ]
        print(
            f"\nWhole suite: {args.suite_groups} null groups of {args.group_size} tests recorded and decided "
            f"together, {args.suite_reps} suites per scenario (re-engineer: any group; migrate: every group):\n"
        )
        print(markdown_auto(suite, unit="suites"))
        print(f"\n({sum(c.seconds for c in suite):.1f} s)")
    print("\nTargets:\n")
    print("\n".join(auto_targets(cells, suite)))
    if args.reps > 0:
        rows = run_tests(args.reps, args.seed, policy)
        print(
            f"\nThe stopping rule alone, one test at a time: incumbent rates uniform in [{BASE_LOW}, {BASE_HIGH}], "
            f"{args.reps} comparisons per scenario, seed {args.seed}\n"
        )
        print(markdown_table(rows))
    if args.group_reps > 0:
        groups = run_groups(args.group_reps, args.seed + 1, policy, args.group_size)
        print(
            f"\nThe stopping rule alone, per prompt group of {args.group_size} tests, "
            f"{args.group_reps} groups per scenario, seed {args.seed + 1}; "
            "reference: the gate's exact stratified test at N per test:\n"
        )
        print(markdown_table(groups, reference="stratified"))
    print(f"\n({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
