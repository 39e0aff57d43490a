"""The drift canary: the incumbent sampled live again, compared with its own recordings.

Pure module: no pytest import. A model that keeps its name can still change behind it (a silent
snapshot update). The canary compares two run files of the **same model and the same tests**:

* ``RECORDED.json``: a replay of the committed cassettes (``pytest --models=INC --migration-json=...``);
* ``LIVE.json``: the same tests sampled live into a throw-away cassette folder
  (``pytest --models=INC --record-mode=all -o modelmigrate_cassette_dir=/tmp/canary ...``), so
  the committed cassettes are never written.

Per prompt group, with the gate's statistics (``stats``), one-sided for "live worse than
recorded": the one-sided Fisher exact test per test (Holm over every test of the run) and the
exact stratified test per group, the tests as strata (Holm over the groups); alpha is split in
half between the two families, so an unchanged model is called ``drifted`` with probability at
most alpha. Beside the outcomes it compares the provider's identity: the echoed model (the
snapshot, the response's ``model``) and ``system_fingerprint`` of every call.

Verdict per group:

* ``drifted``: significantly worse live (adjusted p ≤ alpha, per test or for the group);
* ``investigate``: a new snapshot or fingerprint answered live, with outcomes not significantly
  worse (providers rotate fingerprints with their serving configuration: on its own it is a
  reason to look, not an alarm), or no test with evidence in both runs (too little to say);
* ``stable``: otherwise.

``modelmigrate canary RECORDED.json LIVE.json [--model ID] [--alpha A] [--markdown PATH]
[--fail-on-drift]`` prints the verdicts, writes the Markdown for an issue, and exits 1 with
``--fail-on-drift`` when a group drifted (0 otherwise; 2 for input it cannot read).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import stats
from .baseline import BaselineError, load_run
from .files import write_atomically
from .results import EVIDENCE

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "DRIFTED",
    "INVESTIGATE",
    "STABLE",
    "CanaryError",
    "CanaryReport",
    "GroupDrift",
    "Identity",
    "TestDrift",
    "add_parser",
    "detect_drift",
]

STABLE, DRIFTED, INVESTIGATE = "stable", "drifted", "investigate"
VERDICTS = (DRIFTED, INVESTIGATE, STABLE)  # the order reports list them in


class CanaryError(ValueError):
    """Two runs the canary cannot compare; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Identity:
    """Who answered: the echoed models (snapshots) and the ``system_fingerprint`` values seen."""

    snapshots: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] = ()
    calls: int = 0

    @classmethod
    def of(cls, outcomes: Iterable[Mapping[str, Any]], names: Iterable[str] = ()) -> Identity:
        """From the calls of ``outcomes`` that asked for one of ``names`` (all, when empty): a
        judge's or an embedder's calls in the same test are another model's."""
        wanted = set(names)
        snapshots: set[str] = set()
        fingerprints: set[str] = set()
        calls = 0
        for outcome in outcomes:
            for call in outcome.get("calls") or ():
                if not isinstance(call, dict) or call.get("error") or call.get("status") != 200:
                    continue
                if wanted and call.get("model_requested") not in wanted:
                    continue
                calls += 1
                if isinstance(call.get("model_echoed"), str):
                    snapshots.add(call["model_echoed"])
                if isinstance(call.get("system_fingerprint"), str):
                    fingerprints.add(call["system_fingerprint"])
        return cls(tuple(sorted(snapshots)), tuple(sorted(fingerprints)), calls)

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshots": list(self.snapshots),
            "fingerprints": list(self.fingerprints),
            "calls": self.calls,
        }


def _new(live: Sequence[str], recorded: Sequence[str]) -> tuple[str, ...]:
    """Values seen live and never in the recordings (nothing, when the recordings have none)."""
    if not recorded:
        return ()
    return tuple(v for v in live if v not in recorded)


@dataclass(frozen=True)
class TestDrift:
    """One test: recorded and live (passed, total), the one-sided p of "live lower"."""

    test: str
    recorded: tuple[int, int]
    live: tuple[int, int]
    p_value: float | None = None  # None: no test (a side without samples, or one sample each)
    p_adjusted: float | None = None

    @property
    def compared(self) -> bool:
        return self.recorded[1] > 0 and self.live[1] > 0

    @property
    def lower(self) -> bool:
        """The live pass rate is below the recorded one."""
        (rp, rn), (lp, ln) = self.recorded, self.live
        return self.compared and lp * rn < rp * ln

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "recorded": {"passed": self.recorded[0], "total": self.recorded[1]},
            "live": {"passed": self.live[0], "total": self.live[1]},
            "lower": self.lower,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
        }


@dataclass(frozen=True)
class GroupDrift:
    """One prompt group's verdict, with the evidence it rests on."""

    group: str
    verdict: str
    reason: str
    tests: tuple[TestDrift, ...]
    p_value: float | None
    p_adjusted: float | None
    recorded_identity: Identity
    live_identity: Identity
    checks: tuple[
        tuple[str, tuple[int, int], tuple[int, int]], ...
    ] = ()  # name, recorded, live (failed, total)

    @property
    def recorded(self) -> tuple[int, int]:
        compared = [t for t in self.tests if t.compared]
        return sum(t.recorded[0] for t in compared), sum(t.recorded[1] for t in compared)

    @property
    def live(self) -> tuple[int, int]:
        compared = [t for t in self.tests if t.compared]
        return sum(t.live[0] for t in compared), sum(t.live[1] for t in compared)

    @property
    def new_snapshots(self) -> tuple[str, ...]:
        return _new(self.live_identity.snapshots, self.recorded_identity.snapshots)

    @property
    def new_fingerprints(self) -> tuple[str, ...]:
        return _new(self.live_identity.fingerprints, self.recorded_identity.fingerprints)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "verdict": self.verdict,
            "reason": self.reason,
            "recorded": {"passed": self.recorded[0], "total": self.recorded[1]},
            "live": {"passed": self.live[0], "total": self.live[1]},
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "recorded_identity": self.recorded_identity.to_dict(),
            "live_identity": self.live_identity.to_dict(),
            "new_snapshots": list(self.new_snapshots),
            "new_fingerprints": list(self.new_fingerprints),
            "tests": [t.to_dict() for t in self.tests],
            "checks": [
                {
                    "name": name,
                    "recorded": {"failed": r[0], "total": r[1]},
                    "live": {"failed": lv[0], "total": lv[1]},
                }
                for name, r, lv in self.checks
            ],
        }


@dataclass(frozen=True)
class Sunset:
    """The incumbent's declared retirement date (``modelmigrate_sunset``) and the days left."""

    date: str
    days_left: int

    @property
    def line(self) -> str:
        left = f"{self.days_left} days left" if self.days_left >= 0 else f"{-self.days_left} days past"
        return f"retires on {self.date} ({left})"


@dataclass(frozen=True)
class CanaryReport:
    """The whole comparison: computed once by :func:`detect_drift`, then rendered."""

    model: str
    model_name: str
    alpha: float
    groups: tuple[GroupDrift, ...]
    recorded_created: str
    live_created: str
    recorded_path: str = "RECORDED.json"
    live_path: str = "LIVE.json"
    sunset: Sunset | None = None

    def with_verdict(self, verdict: str) -> list[GroupDrift]:
        return [g for g in self.groups if g.verdict == verdict]

    @property
    def verdict(self) -> str:
        """The run's verdict: drifted if any group drifted, else investigate if any does, else stable."""
        for verdict in VERDICTS:
            if self.with_verdict(verdict):
                return verdict
        return INVESTIGATE  # no group at all

    def exit_status(self, *, fail_on_drift: bool) -> int:
        return 1 if fail_on_drift and self.with_verdict(DRIFTED) else 0

    @property
    def line(self) -> str:
        counts = ", ".join(f"{len(self.with_verdict(v))} {v}" for v in VERDICTS)
        return f"drift canary ({self.model}): {self.verdict.upper()}: {counts} (alpha {self.alpha:g})"

    def lines(self) -> list[str]:
        """The report as text: a line per group, then the summary line."""
        out = [
            f"model: {self.model}" + (f" ({self.model_name})" if self.model_name != self.model else "")
            + f"; recorded: {self.recorded_path} ({self.recorded_created}); live: {self.live_path} "
            f"({self.live_created})"
        ]  # fmt: skip
        if self.sunset is not None:
            out.append(f"sunset: {self.model} {self.sunset.line}")
        width = max((len(g.group) for g in self.groups), default=0)
        for g in self.groups:
            out.append(f"{g.group:<{width}}  {g.verdict}: {g.reason}")
        out.append(self.line)
        return out

    def markdown(self) -> str:
        return render_markdown(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_name": self.model_name,
            "alpha": self.alpha,
            "verdict": self.verdict,
            "line": self.line,
            "recorded": {"path": self.recorded_path, "created": self.recorded_created},
            "live": {"path": self.live_path, "created": self.live_created},
            "sunset": None
            if self.sunset is None
            else {"date": self.sunset.date, "days_left": self.sunset.days_left},
            "groups": [g.to_dict() for g in self.groups],
        }


# -- reading the runs ---------------------------------------------------------------------------


def _model_ids(run: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(m.get("id")): str(m.get("name") or m.get("id"))
        for m in run.get("models") or ()
        if isinstance(m, dict)
    }


def choose_model(
    recorded: Mapping[str, Any], live: Mapping[str, Any], model: str | None, where: tuple[str, str]
) -> str:
    """The model both runs hold: ``model`` (an id or a name), else the incumbent, else the only one."""
    ids = [_model_ids(recorded), _model_ids(live)]
    if model is not None:
        for run_ids, path in zip(ids, where, strict=True):
            found = [i for i, name in run_ids.items() if model in (i, name)]
            if not found:
                known = ", ".join(sorted(run_ids)) or "none"
                raise CanaryError(f"{path}: no model {model!r} in this run (its models: {known})")
        return next(i for i, name in ids[0].items() if model in (i, name))
    common = [i for i in ids[0] if i in ids[1]]
    incumbent = recorded.get("incumbent")
    if isinstance(incumbent, str) and incumbent in common:
        return incumbent
    if len(common) == 1:
        return common[0]
    if not common:
        raise CanaryError(
            f"{where[1]}: no model in common with {where[0]} "
            f"({', '.join(sorted(ids[1])) or 'none'} against {', '.join(sorted(ids[0])) or 'none'})"
        )
    raise CanaryError(f"{where[0]}: several models ({', '.join(common)}) and no incumbent: pass --model")


def _tallies(
    run: Mapping[str, Any], model: str
) -> dict[str, dict[str, tuple[int, int, list[Mapping[str, Any]]]]]:
    """group -> test -> (passed, total, outcome records) of ``model``, evidence only."""
    out: dict[str, dict[str, tuple[int, int, list[Mapping[str, Any]]]]] = {}
    for o in run.get("outcomes") or ():
        if o.get("model") != model:
            continue
        group, test = str(o.get("group")), str(o.get("test"))
        passed, total, records = out.setdefault(group, {}).get(test, (0, 0, []))
        if o.get("outcome") in EVIDENCE:
            passed += int(o.get("passed") or 0)
            total += int(o.get("total") or 0)
        out[group][test] = (passed, total, [*records, o])
    return out


def _check_counts(records: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    counts: dict[str, tuple[int, int]] = {}
    for o in records:
        if o.get("outcome") not in EVIDENCE:
            continue
        for c in o.get("checks") or ():
            if not isinstance(c, dict) or not c.get("name"):
                continue
            failed, total = counts.get(str(c["name"]), (0, 0))
            counts[str(c["name"])] = (failed + (0 if c.get("passed") else 1), total + 1)
    return counts


def _sunset(run: Mapping[str, Any], model: str, name: str, today: date) -> Sunset | None:
    gate = run.get("gate") or {}
    declared = (gate.get("recommend_policy") or {}).get("sunset") or {}
    when = declared.get(model) or declared.get(name)
    if not isinstance(when, str):
        sunset = gate.get("sunset") or {}
        when = sunset.get("date") if sunset.get("model") in (model, name) else None
    if not isinstance(when, str):
        return None
    try:
        day = date.fromisoformat(when)
    except ValueError:
        return None
    return Sunset(when, (day - today).days)


def _run_date(run: Mapping[str, Any]) -> date:
    try:
        return datetime.fromisoformat(str(run.get("created"))).date()
    except ValueError:
        return date.today()


# -- the comparison -----------------------------------------------------------------------------


def _fmt_p(p: float | None) -> str:
    return "-" if p is None else f"{p:.3g}"


def _rate(passed: int, total: int) -> str:
    return f"{passed}/{total}" + (f" ({100 * passed / total:.0f}%)" if total else "")


def _reason(g: GroupDrift, significant: list[TestDrift], group_significant: bool) -> str:
    (rp, rn), (lp, ln) = g.recorded, g.live
    rates = f"recorded {_rate(rp, rn)}, live {_rate(lp, ln)}"
    identity = []
    if g.new_snapshots:
        identity.append(f"new snapshot {', '.join(g.new_snapshots)}")
    if g.new_fingerprints:
        shown = ", ".join(g.new_fingerprints[:3]) + (" …" if len(g.new_fingerprints) > 3 else "")
        identity.append(f"new system_fingerprint {shown}")
    said = "; ".join(identity)
    if g.verdict == DRIFTED and (significant or group_significant):
        what = [
            f"{t.test} {_rate(*t.recorded)} -> {_rate(*t.live)} (p adj {_fmt_p(t.p_adjusted)})"
            for t in significant
        ]
        if group_significant:
            what.insert(0, f"group p adj {_fmt_p(g.p_adjusted)}")
        return f"significantly worse live ({rates}): " + "; ".join(what) + (f"; {said}" if said else "")
    if g.verdict == INVESTIGATE and not any(t.compared for t in g.tests):
        return "no test has samples in both runs: nothing to compare"
    if g.verdict == INVESTIGATE:
        lower = [t.test for t in g.tests if t.lower]
        if lower:
            return (
                f"{said} and {len(lower)} test(s) lower live, not significantly "
                f"({rates}, group p {_fmt_p(g.p_value)}): sample more to tell"
            )
        return f"{said}, outcomes not lower ({rates}, group p {_fmt_p(g.p_value)})"
    return f"not worse live ({rates}, group p {_fmt_p(g.p_value)}); same snapshot and fingerprints"


def detect_drift(
    recorded: Mapping[str, Any],
    live: Mapping[str, Any],
    *,
    model: str | None = None,
    alpha: float = 0.05,
    today: date | None = None,
    paths: tuple[str, str] = ("RECORDED.json", "LIVE.json"),
) -> CanaryReport:
    """Compare the live run of ``model`` with its recorded run, per prompt group (see the module doc).

    ``today`` dates the sunset's days left (default: the live run's date). Raises
    :class:`CanaryError` when the runs share no model or ``model`` is in neither.
    """
    if not 0.0 < alpha < 1.0:
        raise CanaryError(f"--alpha: {alpha!r} is not between 0 and 1")
    chosen = choose_model(recorded, live, model, paths)
    name = _model_ids(recorded).get(chosen, chosen)
    rec, liv = _tallies(recorded, chosen), _tallies(live, chosen)
    groups = list(rec) + [g for g in liv if g not in rec]

    # the p-values, per test and per group
    test_rows: dict[str, list[TestDrift]] = {}
    group_p: dict[str, float | None] = {}
    for group in groups:
        r_tests, l_tests = rec.get(group, {}), liv.get(group, {})
        rows = []
        strata: list[stats.Stratum] = []
        for test in list(r_tests) + [t for t in l_tests if t not in r_tests]:
            rp, rn, _ = r_tests.get(test, (0, 0, []))
            lp, ln, _ = l_tests.get(test, (0, 0, []))
            p = None
            if rn and ln:
                strata.append((rp, rn, lp, ln))
                if not (rn == 1 and ln == 1):
                    p = stats.fisher_exact_less(rp, rn, lp, ln)
            rows.append(TestDrift(test, (rp, rn), (lp, ln), p))
        test_rows[group] = rows
        group_p[group] = stats.stratified_test(strata) if strata else None

    # Holm per family at alpha / 2: adjusted values scaled by 2, compared with alpha directly
    flat = [(g, i) for g in groups for i, t in enumerate(test_rows[g]) if t.p_value is not None]
    for (g, i), adj in zip(
        flat, stats.holm_adjust([test_rows[g][i].p_value or 0.0 for g, i in flat]), strict=True
    ):
        t = test_rows[g][i]
        test_rows[g][i] = replace(t, p_adjusted=min(1.0, 2 * adj))
    tested = [g for g in groups if group_p[g] is not None]
    group_adj: dict[str, float | None] = dict.fromkeys(groups)
    for g, adj in zip(tested, stats.holm_adjust([group_p[g] or 0.0 for g in tested]), strict=True):
        group_adj[g] = min(1.0, 2 * adj)

    out = []
    for group in groups:
        rows = test_rows[group]
        r_records = [rec_o for _, _, recs in rec.get(group, {}).values() for rec_o in recs]
        l_records = [liv_o for _, _, recs in liv.get(group, {}).values() for liv_o in recs]
        rc, lc = _check_counts(r_records), _check_counts(l_records)
        checks = tuple((n, rc.get(n, (0, 0)), lc.get(n, (0, 0))) for n in sorted(set(rc) | set(lc)))
        draft = GroupDrift(
            group, STABLE, "", tuple(rows), group_p[group], group_adj[group],
            Identity.of(r_records, {chosen, name}), Identity.of(l_records, {chosen, name}), checks,
        )  # fmt: skip
        significant = [t for t in rows if t.p_adjusted is not None and t.p_adjusted <= alpha and t.lower]
        group_significant = (
            draft.p_adjusted is not None and draft.p_adjusted <= alpha and _lower(draft.recorded, draft.live)
        )
        identity_changed = bool(draft.new_snapshots or draft.new_fingerprints)
        if not any(t.compared for t in rows):
            verdict = INVESTIGATE
        elif significant or group_significant:
            verdict = DRIFTED
        elif identity_changed:
            verdict = INVESTIGATE
        else:
            verdict = STABLE
        draft = replace(draft, verdict=verdict)
        out.append(replace(draft, reason=_reason(draft, significant, group_significant)))
    when = today or _run_date(live)
    return CanaryReport(
        model=chosen,
        model_name=name,
        alpha=alpha,
        groups=tuple(out),
        recorded_created=str(recorded.get("created") or ""),
        live_created=str(live.get("created") or ""),
        recorded_path=paths[0],
        live_path=paths[1],
        sunset=_sunset(live, chosen, name, when) or _sunset(recorded, chosen, name, when),
    )


def _lower(recorded: tuple[int, int], live: tuple[int, int]) -> bool:
    return recorded[1] > 0 and live[1] > 0 and live[0] * recorded[1] < recorded[0] * live[1]


# -- Markdown -----------------------------------------------------------------------------------

_MARK = {DRIFTED: "❌", INVESTIGATE: "⚠️", STABLE: "✅"}


def _short(values: Sequence[str], limit: int = 4) -> str:
    from .reports.markdown import escape

    if not values:
        return "-"
    shown = ", ".join(escape(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def render_markdown(report: CanaryReport) -> str:
    """The report as Markdown for an issue body: the decision first, then a table per prompt."""
    from .reports.markdown import escape

    drifted = report.with_verdict(DRIFTED)
    investigate = report.with_verdict(INVESTIGATE)
    head = {
        DRIFTED: f"**{len(drifted)} prompt(s) drifted** on {escape(report.model)}",
        INVESTIGATE: f"**{len(investigate)} prompt(s) to investigate** on {escape(report.model)}, "
        "none drifted",
        STABLE: f"**Stable**: {escape(report.model)} answers as recorded",
    }[report.verdict]
    model = escape(report.model) + (
        f" ({escape(report.model_name)})" if report.model_name != report.model else ""
    )
    lines = [
        f"## Drift canary: {model}",
        "",
        f"{_MARK[report.verdict]} {head}.",
        "",
        escape(report.line),
        "",
        f"Live run {escape(report.live_created)} against the recordings replayed "
        f"{escape(report.recorded_created)}; "
        f'one-sided tests of "live worse than recorded" at alpha {report.alpha:g} (Holm).',
    ]
    if report.sunset is not None:
        lines += ["", f"**Sunset:** {escape(report.model)} {escape(report.sunset.line)}."]
    lines += ["", "| prompt | verdict | recorded | live | p (adjusted) | snapshot | fingerprint | reason |"]
    lines.append("| :--- | :--- | ---: | ---: | ---: | :--- | :--- | :--- |")
    for g in report.groups:
        snap = "new" if g.new_snapshots else "same"
        fp = "new" if g.new_fingerprints else ("same" if g.recorded_identity.fingerprints else "n/a")
        lines.append(
            f"| {escape(g.group)} | {_MARK[g.verdict]} {g.verdict} | {_rate(*g.recorded)} | {_rate(*g.live)} "
            f"| {_fmt_p(g.p_adjusted)} | {snap} | {fp} | {escape(g.reason)} |"
        )
    for g in report.groups:
        lines += ["", f"### {escape(g.group)}: {g.verdict}", ""]
        lines += ["| test | recorded | live | p | p (adjusted) |", "| :--- | ---: | ---: | ---: | ---: |"]
        for t in g.tests:
            mark = " ⬇" if t.lower else ""
            lines.append(
                f"| {escape(t.test)} | {_rate(*t.recorded)} | {_rate(*t.live)}{mark} "
                f"| {_fmt_p(t.p_value)} | {_fmt_p(t.p_adjusted)} |"
            )
        worse = [(n, r, lv) for n, r, lv in g.checks if _lower((r[1] - r[0], r[1]), (lv[1] - lv[0], lv[1]))]
        if worse:
            shown = "; ".join(f"{escape(n)} {r[0]}/{r[1]} -> {lv[0]}/{lv[1]}" for n, r, lv in worse)
            lines += ["", f"Checks failing more often live (failed/total samples): {shown}"]
        lines += [
            "",
            f"- snapshot (echoed model): recorded {_short(g.recorded_identity.snapshots)}; "
            f"live {_short(g.live_identity.snapshots)}",
            f"- system_fingerprint: recorded {_short(g.recorded_identity.fingerprints)}; "
            f"live {_short(g.live_identity.fingerprints)}"
            + (f"; new live: {_short(g.new_fingerprints)}" if g.new_fingerprints else ""),
        ]
    lines += [
        "",
        f"_Recorded: {escape(report.recorded_path)}; live: {escape(report.live_path)}. "
        "The committed cassettes were not changed. See docs/canary.md._",
        "",
    ]
    return "\n".join(lines)


# -- the command --------------------------------------------------------------------------------


def _alpha(text: str) -> float:
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1")
    return value


def _canary(args: argparse.Namespace) -> int:
    try:
        recorded = load_run(args.recorded)
        live = load_run(args.live)
        report = detect_drift(
            recorded, live, model=args.model, alpha=args.alpha, paths=(str(args.recorded), str(args.live))
        )
    except (BaselineError, CanaryError) as exc:
        print(f"modelmigrate canary: {exc}", file=sys.stderr)
        return 2
    if args.markdown is not None:
        text = report.markdown()
        try:
            write_atomically(args.markdown, lambda handle: handle.write(text))
        except OSError as exc:
            print(f"modelmigrate canary: {args.markdown}: cannot write it ({exc})", file=sys.stderr)
            return 2
    sys.stdout.write("\n".join(report.lines()) + "\n")
    return report.exit_status(fail_on_drift=args.fail_on_drift)


def add_parser(subparsers: Any) -> None:
    """Register ``canary``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "canary",
        help="Compare a live re-sampling of the incumbent with its recordings; verdict per prompt",
        description=(
            "Compare LIVE.json (the incumbent sampled live into a throw-away cassette folder) with "
            "RECORDED.json (its committed cassettes replayed), per prompt group: stable, drifted or "
            "investigate. Exit status 1 with --fail-on-drift when a prompt drifted, else 0; 2 for "
            "unreadable input."
        ),
    )
    parser.add_argument(
        "recorded", type=Path, metavar="RECORDED.json", help="The replay of the committed cassettes"
    )
    parser.add_argument("live", type=Path, metavar="LIVE.json", help="The live run of the same tests")
    parser.add_argument(
        "--model",
        default=None,
        help="The model id or name to compare (default: the incumbent, or the only model)",
    )
    parser.add_argument(
        "--alpha",
        type=_alpha,
        default=0.05,
        help="Chance of calling an unchanged model drifted (default: 0.05)",
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        metavar="PATH",
        help="Write the report as Markdown (an issue body) to PATH",
    )
    parser.add_argument(
        "--fail-on-drift",
        action="store_true",
        help="Exit 1 when a prompt drifted (default: report only, exit 0)",
    )
    parser.set_defaults(func=_canary)
