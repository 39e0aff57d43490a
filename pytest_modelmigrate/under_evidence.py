"""Under-evidence flags: a decision the run's evidence is too thin for, and what would be needed.

Pure module: no pytest import. Two flags, computed once in ``analysis.analyse`` and kept in the
run file under ``under_evidence``:

- ``dataset``: a dataset test (``@pytest.mark.dataset``, one per task type) with fewer examples
  in the run than ``modelmigrate_min_dataset_examples`` (default 100, the seed's minimum);
- ``samples``: a verdict (prompt group, candidate) whose tests took one sample each on the
  incumbent or the candidate (dataset tests left out: their evidence is their examples), so one
  stochastic answer per test decides it. A group declared deterministic
  (``@pytest.mark.prompt(..., deterministic=True)``, ``modelmigrate_deterministic``) is not
  flagged: there the one recorded answer is the behaviour the gate compares, by design.

Flags are information: they change no verdict and not the gate's exit status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Sequence

    from .results import Outcome

__all__ = ["DEFAULT_MIN_DATASET_EXAMPLES", "EvidenceFlag", "flag_lines", "flag_rows", "under_evidence"]

DEFAULT_MIN_DATASET_EXAMPLES = 100
MIN_DATASET_SETTING = "ini modelmigrate_min_dataset_examples"
FLAGS_NOTE = "Information only: the verdicts and the gate do not change"


@dataclass(frozen=True)
class EvidenceFlag:
    """One under-evidenced dataset test or verdict: what it has, the minimum, the fix."""

    kind: Literal["dataset", "samples"]
    group: str
    reason: str  # what is thin: "dataset cases.jsonl has 5 examples in this run; the minimum is 100"
    fix: str  # what would be needed: "add 95"
    have: int  # examples in the run, or samples per test
    minimum: int  # the examples wanted, or 2 samples per test
    test: str | None = None  # the dataset test
    dataset: str | None = None  # its file, as the marker names it
    candidate: str | None = None  # the verdict's candidate
    tests: int = 0  # the tests the verdict rests on

    @property
    def line(self) -> str:
        return f"{self.reason}: {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "group": self.group,
            "test": self.test,
            "dataset": self.dataset,
            "candidate": self.candidate,
            "tests": self.tests,
            "have": self.have,
            "minimum": self.minimum,
            "reason": self.reason,
            "fix": self.fix,
            "line": self.line,
        }


def _is_dataset(outcome: Outcome) -> bool:
    return bool(outcome.extra.get("dataset_settings") or outcome.extra.get("dataset"))


def _dataset_flags(outcomes: Sequence[Outcome], minimum: int) -> list[EvidenceFlag]:
    examples: dict[str, dict[str, set[str]]] = {}  # test -> model -> the example items run
    groups: dict[str, str] = {}
    files: dict[str, str] = {}
    for o in outcomes:
        if not _is_dataset(o):
            continue
        examples.setdefault(o.test, {}).setdefault(o.model, set()).add(o.nodeid)
        groups.setdefault(o.test, o.group)
        name = (o.extra.get("dataset_settings") or {}).get("file")
        if name:
            files.setdefault(o.test, str(name))
    found = []
    for test, per_model in examples.items():
        have = max(len(items) for items in per_model.values())
        if have >= minimum:
            continue
        name = files.get(test)
        what = f"dataset {name}" if name else f"dataset test {test}"
        found.append(
            EvidenceFlag(
                kind="dataset",
                group=groups[test],
                reason=f"{what} has {have} example(s) in this run; the minimum is {minimum}",
                fix=f"add {minimum - have}",
                have=have,
                minimum=minimum,
                test=test,
                dataset=name,
            )
        )
    return found


def _sample_flags(
    outcomes: Sequence[Outcome],
    verdicts: Iterable[tuple[str, str]],
    incumbent: str,
    samples: int,
    deterministic: Collection[str],
) -> list[EvidenceFlag]:
    taken: dict[tuple[str, str, str], int] = {}  # (group, test, model) -> samples with evidence
    for o in outcomes:
        if o.is_evidence and not _is_dataset(o):
            key = (o.group, o.test, o.model)  # prompt variants: the best-sampled one
            taken[key] = max(taken.get(key, 0), o.total_samples)
    tests_of: dict[str, dict[str, None]] = {}  # each group's tests, in order (a dict: no scan)
    for group, test, _ in taken:
        tests_of.setdefault(group, {})[test] = None
    found = []
    for group, candidate in verdicts:
        if group in deterministic:
            continue
        paired = [
            min(taken[(group, t, incumbent)], taken[(group, t, candidate)])
            for t in tests_of.get(group, {})
            if (group, t, incumbent) in taken and (group, t, candidate) in taken
        ]
        if not paired or max(paired) > 1:
            continue
        fix = "--samples=N or --samples=auto"
        if samples > 1:
            held = "a samples marker or the sampling budget held these tests to 1"
            fix += f" (the run asked for {samples}: {held})"
        found.append(
            EvidenceFlag(
                kind="samples",
                group=group,
                reason=f"verdict on {candidate} rests on 1 sample per test ({len(paired)} test(s))",
                fix=fix,
                have=1,
                minimum=2,
                candidate=candidate,
                tests=len(paired),
            )
        )
    return found


def under_evidence(
    outcomes: Sequence[Outcome],
    *,
    verdicts: Iterable[tuple[str, str]] = (),
    incumbent: str | None = None,
    min_dataset_examples: int = DEFAULT_MIN_DATASET_EXAMPLES,
    samples: int = 1,
    deterministic: Collection[str] = (),
) -> list[EvidenceFlag]:
    """The run's flags: its small dataset tests, then its verdicts on one sample per test.

    ``verdicts``: the decision's (prompt group, candidate) pairs, in its order; ``samples``: the
    run's ``--samples`` (the fix says when tests took fewer than it asked for); ``deterministic``:
    the groups the gate compares on their one recorded answer (never flagged for it).
    """
    if min_dataset_examples < 1:
        raise ValueError(f"{MIN_DATASET_SETTING}: must be at least 1, got {min_dataset_examples}")
    found = _dataset_flags(outcomes, min_dataset_examples)
    if incumbent is not None:
        found += _sample_flags(outcomes, verdicts, incumbent, samples, deterministic)
    return found


# -- rendering: the run file's ``under_evidence`` ------------------------------------------------


def flag_rows(run: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    section = run.get("under_evidence")
    flags = section.get("flags") if isinstance(section, Mapping) else None
    return [f for f in flags or [] if isinstance(f, Mapping)]


def flag_lines(run: Mapping[str, Any]) -> list[str]:
    """The terminal lines: a heading, then one line per flag; [] with none."""
    flags = flag_rows(run)
    if not flags:
        return []
    return [
        f"under-evidenced ({FLAGS_NOTE.lower()}):",
        *(f"  {flag.get('group')}: {flag.get('line')}" for flag in flags),
    ]
