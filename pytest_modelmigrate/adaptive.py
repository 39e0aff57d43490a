"""``--samples=auto``: how many samples each (test, model) takes in this run, and the decisions.

Pure module: no pytest import. Recording is done in passes: each pytest run with
``--samples=auto --record-mode=new_episodes`` replays the samples already in the cassettes and
records more only where the incumbent-against-candidate comparison is still undecided, by at
most ``batch`` rounds. The outcome of every sample is kept in the cassette's metadata, so a run
can plan from what earlier runs recorded, and a replay (``--record-mode=none``) takes exactly
the recorded samples and reaches the same decisions offline. The stopping rule is
:mod:`pytest_modelmigrate.sequential`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .gate import Regression, Verdict
from .sequential import AdaptivePolicy, SequentialComparison, SequentialDecision, replay_decisions

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

PASSED = "passed"


BATCH = 5  # rounds a recording pass adds to an undecided test (Settings.samples_batch)


def looks(policy: AdaptivePolicy, batch: int = BATCH) -> int:
    """The sample counts at which the adaptive design can stop: min, min + batch, ..., max.

    A non-inferiority bound on tallies that stopped adaptively is paid for at each of them
    (Bonferroni over the looks), so stopping early cannot make ``migrate`` easier to reach.
    """
    return 1 + -(-(policy.max_samples - policy.min_samples) // batch)


def _pairs(incumbent: Sequence[str], candidate: Sequence[str]) -> list[tuple[bool, bool]]:
    """Round i pairs the incumbent's sample i with the candidate's sample i."""
    return [(a == PASSED, b == PASSED) for a, b in zip(incumbent, candidate, strict=False)]


def _decide(pairs: Sequence[tuple[bool, bool]], policy: AdaptivePolicy, tests: int = 1) -> SequentialDecision:
    """The documented rule, :func:`~.sequential.replay_decisions`: decided after each complete round."""
    decisions = replay_decisions(pairs, policy, tests)
    return decisions[-1] if decisions else SequentialComparison(policy, tests=tests).decision()


@dataclass
class Plan:
    """Samples to take per (test, model) and the decisions the recorded samples give."""

    targets: dict[str, int] = field(default_factory=dict)  # test -> rounds this run takes
    test_decisions: dict[str, dict[str, SequentialDecision]] = field(default_factory=dict)  # test -> cand
    group_decisions: dict[str, dict[str, SequentialDecision]] = field(default_factory=dict)  # group -> cand
    budget_spent: bool = False

    @property
    def undecided(self) -> int:
        return sum(not d.final for per in self.test_decisions.values() for d in per.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "targets": dict(self.targets),
            "tests": {t: {c: d.to_dict() for c, d in per.items()} for t, per in self.test_decisions.items()},
            "groups": {
                g: {c: d.to_dict() for c, d in per.items()} for g, per in self.group_decisions.items()
            },
            "undecided": self.undecided,
            "budget_spent": self.budget_spent,
        }


def decide(
    outcomes: Mapping[str, Mapping[str, Sequence[str]]],
    groups: Mapping[str, str],
    incumbent: str,
    candidates: Sequence[str],
    policy: AdaptivePolicy,
) -> Plan:
    """Decisions from sample outcomes: ``outcomes[test][model]`` is the list of sample outcomes.

    Every sequential comparison shares one alpha: half to the per-test comparisons (Bonferroni
    over tests and candidates), half to the group comparisons (over groups and candidates), so
    the false alarm of the whole adaptive run stays within ``policy.alpha``.
    """
    plan = Plan()
    by_group: dict[str, list[str]] = {}
    for test in outcomes:
        by_group.setdefault(groups.get(test, test), []).append(test)
    k = max(1, len(candidates))
    test_policy = replace(policy, alpha=policy.alpha / (2 * k * max(1, len(outcomes))))
    group_policy = replace(policy, alpha=policy.alpha / (2 * k * max(1, len(by_group))))
    for test, per_model in outcomes.items():
        mine = per_model.get(incumbent, [])
        plan.test_decisions[test] = {
            cand: _decide(_pairs(mine, per_model.get(cand, [])), test_policy) for cand in candidates
        }
    for group, tests in by_group.items():
        plan.group_decisions[group] = {}
        for cand in candidates:
            rounds = [_pairs(outcomes[t].get(incumbent, []), outcomes[t].get(cand, [])) for t in tests]
            interleaved = [
                r[i] for i in range(max((len(r) for r in rounds), default=0)) for r in rounds if i < len(r)
            ]
            plan.group_decisions[group][cand] = _decide(interleaved, group_policy, tests=len(tests))
    return plan


def plan_samples(
    recorded: Mapping[str, Mapping[str, Sequence[str]]],
    groups: Mapping[str, str],
    incumbent: str,
    candidates: Sequence[str],
    policy: AdaptivePolicy,
    *,
    recording: bool,
    batch: int,
    budget_left: bool = True,
) -> Plan:
    """How many rounds each test takes in this run.

    Replaying, a test takes exactly the rounds its cassettes hold (the fewest any of its models
    recorded), so the decisions are the recorded ones. Recording, a test whose comparison with
    some candidate, or whose group's, is undecided gets up to ``batch`` more rounds, never more
    than ``policy.max_samples``; at least ``policy.min_samples`` rounds are always taken.
    """
    plan = decide(recorded, groups, incumbent, candidates, policy)
    plan.budget_spent = recording and not budget_left
    for test, per_model in recorded.items():
        models = [incumbent, *candidates]
        have = min((len(per_model.get(m, [])) for m in models), default=0)
        if not recording:
            plan.targets[test] = have
            continue
        group = groups.get(test, test)
        undecided = any(
            not plan.test_decisions[test][c].final or not plan.group_decisions[group][c].final
            for c in candidates
        )
        if have < policy.min_samples:
            target = policy.min_samples
        elif undecided and budget_left:
            target = min(have + batch, policy.max_samples)
        else:
            target = have
        plan.targets[test] = max(target, 1)
    return plan


def summary_lines(adaptive: Mapping[str, Any]) -> list[str]:
    """The adaptive-sampling section, from the run's ``adaptive`` (``Plan.to_dict()`` and more).

    Samples per test, decisions, and rounds saved against a fixed ``max_samples``.
    """
    targets: Mapping[str, int] = adaptive.get("targets") or {}
    tests_decided: Mapping[str, Mapping[str, Mapping[str, Any]]] = adaptive.get("tests") or {}
    fixed_n = int((adaptive.get("policy") or {}).get("max_samples", 0) or 0)
    budget_spent = bool(adaptive.get("budget_spent"))
    tests = len(targets)
    used = sum(targets.values())
    saved = tests * fixed_n - used
    settled = sum(bool(d.get("final")) for per in tests_decided.values() for d in per.values())
    total = sum(len(per) for per in tests_decided.values())
    lines = [
        f"adaptive sampling: {settled}/{total} comparisons decided; {used} rounds over {tests} test(s) "
        f"against {tests * fixed_n} at a fixed {fixed_n} ({saved} rounds saved); "
        f"{adaptive.get('calls_recorded', 0)} call(s) recorded this run"
        + ("; budget spent" if budget_spent else "")
    ]
    for test, per in tests_decided.items():
        parts = [f"{cand}: {d.get('status')} ({d.get('reason')})" for cand, d in per.items()]
        lines.append(f"  {test} [{targets.get(test, 0)} rounds] " + "; ".join(parts))
    for group, per in (adaptive.get("groups") or {}).items():
        parts = [f"{cand}: {d.get('status')}" for cand, d in per.items()]
        lines.append(f"  group {group}: " + "; ".join(parts))
    undecided = total - settled
    if undecided and not budget_spent:
        lines.append(
            f"  {undecided} comparison(s) undecided: run again with --record-mode=new_episodes to sample more"
        )
    return lines


def sequential_verdicts(
    plan: Plan, groups: Mapping[str, str]
) -> tuple[dict[str, dict[str, Verdict]], list[Regression]]:
    """Verdicts per prompt group and candidate from the sequential decisions, and regressions.

    ``re-engineer`` when the test or group comparison crossed the regression boundary;
    ``migrate`` when every comparison of the group was decided not regressed; otherwise
    ``investigate`` (still undecided: sample more, or the budget ran out). Under
    ``--samples=auto`` these replace the fixed-N tests, whose error rates do not hold for
    adaptively stopped tallies.
    """
    verdicts: dict[str, dict[str, Verdict]] = {}
    regressions: list[Regression] = []
    tests_of: dict[str, list[str]] = {}
    for test in plan.test_decisions:
        tests_of.setdefault(groups.get(test, test), []).append(test)
    for group, tests in tests_of.items():
        for cand, group_decision in plan.group_decisions.get(group, {}).items():
            decisions = {t: plan.test_decisions[t][cand] for t in tests}
            found = [
                Regression("sequential", group, t, cand, f"{t}: {d.reason}")
                for t, d in decisions.items()
                if d.status == "regressed"
            ]
            if group_decision.status == "regressed":
                found.append(
                    Regression("sequential", group, None, cand, f"group {group}: {group_decision.reason}")
                )
            if found:
                regressions.extend(found)
                verdict = "re-engineer"
                reason = "sequential: regressed: " + "; ".join(r.summary for r in found)
            elif group_decision.final and all(d.final for d in decisions.values()):
                verdict, reason = "migrate", f"sequential: not regressed on {len(tests)} test(s)"
            else:
                open_tests = [t for t, d in decisions.items() if not d.final]
                why = "budget spent" if plan.budget_spent else "sample more with --record-mode=new_episodes"
                verdict = "investigate"
                reason = f"sequential: undecided on {len(open_tests) or len(tests)} test(s) ({why})"
            verdicts.setdefault(group, {})[cand] = Verdict(verdict, reason, {}, None, None)
    return verdicts, regressions
