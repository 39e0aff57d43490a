"""``modelmigrate merge``: the run files of a suite split across CI jobs, analysed again as one run.

Pure module: no pytest import. Each job runs part of the suite with ``--migration-shard=K/N``
and writes its run file; that file's matrix, statistics and gate cover its own tests only.
:func:`merge_shards` checks that the shards belong together (one configuration, one plugin
version, shards 1 to N each given once, no test in two shards), rebuilds every
:class:`~pytest_modelmigrate.results.Outcome` from their records and calls
:func:`~pytest_modelmigrate.analysis.analyse` once on the union. The matrix, the statistics,
the verdicts and the gate are computed again; nothing is added up from the shards' verdicts.

``modelmigrate merge SHARD.json... [-o RUN.json] [--markdown PATH] [--html PATH]
[--baseline-compare PATH] [--baseline-save PATH] [--gate MODE]`` prints the run as the
terminal does and exits with the gate's status (:func:`exit_status`); 2 when the shards cannot
be merged. The recipe is in ``docs/sharding.md``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .analysis import AdaptiveRun, Run, Shard, analyse, group_tolerances, outcome_from_dict, prompt_flags
from .baseline import BaselineError, load_run
from .gate import MODES, GatePolicy
from .models import ModelSpec
from .pricing import PriceError, prices_from_dict
from .results import ERROR, FAILED, MISSING

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Mapping, Sequence

    from .gate.recommend import RecommendPolicy

__all__ = ["MergeError", "ShardRun", "add_parser", "exit_status", "load_shards", "merge_shards"]

# What every shard must share, as (field, what it is). A shard from another configuration would
# be analysed under settings it did not run with.
_SAME_EVERYWHERE = (
    ("tool.version", "the plugin version"),
    ("models", "the models"),
    ("incumbent", "the incumbent"),
    ("samples", "the samples per test"),
    ("record_mode", "the record mode"),
    ("metrics.prices", "the prices"),
    ("adaptive.policy", "the --samples=auto settings"),
)
# Only a shard that ran a model test has a gate. group_tolerance comes from the prompt markers of
# the tests a shard ran, so it differs between shards; it is computed again from the union.
_GATE_POLICY = "gate.policy"
_PER_SHARD_POLICY = frozenset({"group_tolerance", "deterministic_groups"})
# Keys Run.to_dict() writes; any other top-level key came from pytest_modelmigrate_run (run.extra).
_RUN_KEYS = frozenset(
    (
        *("schema_version", "tool", "created", "record_mode", "models", "incumbent", "samples"),
        *("outcomes", "matrix", "checks", "metrics", "gate", "datasets", "missing", "baseline"),
        *("adaptive", "shard"),
        *("drift", "under_evidence"),
    )
)
MERGED_KEY = "merged"  # the merged run's provenance: which shard files it was made from
_ABSENT = object()
_MAX_LISTED = 5


class MergeError(ValueError):
    """Shards that cannot be merged: one problem a line, each naming the file and the field."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class ShardRun:
    """One shard's run file, read and labelled."""

    path: Path
    data: dict[str, Any]
    shard: Shard

    @property
    def name(self) -> str:
        return f"{self.path} ({self.shard.label})"


def _shard_label(data: Mapping[str, Any], path: Path) -> Shard:
    label = data.get("shard")
    if label is None:
        raise MergeError(
            [
                f"{path}: field 'shard' is missing: this run is not labelled as a shard "
                "(run each shard with --migration-shard=K/N)"
            ]
        )
    try:
        return Shard(int(label["index"]), int(label["count"]), tuple(str(n) for n in label["nodeids"]))
    except (KeyError, TypeError, ValueError):
        raise MergeError(
            [f"{path}: field 'shard' is {_show(label)}, not a shard label (index K, count N, nodeids)"]
        ) from None


def load_shards(paths: Iterable[Path | str]) -> list[ShardRun]:
    """Every shard's run file, in shard order; :class:`MergeError` listing each unreadable one."""
    shards: list[ShardRun] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        try:
            data = load_run(path)
            shards.append(ShardRun(path, data, _shard_label(data, path)))
        except BaselineError as exc:
            problems.append(str(exc))
        except MergeError as exc:
            problems.extend(exc.problems)
    if not problems and not shards:
        problems.append("no shard files given")
    if problems:
        raise MergeError(problems)
    return sorted(shards, key=lambda s: s.shard.index)


# -- do the shards belong together? -----------------------------------------------------------


def _get(data: Mapping[str, Any], field: str) -> Any:
    value: Any = data
    for key in field.split("."):
        if not isinstance(value, dict) or key not in value:
            return _ABSENT
        value = value[key]
    return value


def _show(value: Any, limit: int = 160) -> str:
    if value is _ABSENT:
        return "absent"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _differences(field: str, mine: Any, theirs: Any) -> list[tuple[str, Any, Any]]:
    """(field, mine, theirs) for each key of two tables that differs; the whole value otherwise."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        return [
            (f"{field}.{key}", mine.get(key, _ABSENT), theirs.get(key, _ABSENT))
            for key in sorted(set(mine) | set(theirs), key=str)
            if mine.get(key, _ABSENT) != theirs.get(key, _ABSENT)
        ]
    return [] if mine == theirs else [(field, mine, theirs)]


def _configuration_problems(shards: Sequence[ShardRun]) -> list[str]:
    problems: list[str] = []
    first = shards[0]

    def compare(field: str, what: str, pool: Sequence[ShardRun], strip: frozenset[str] = frozenset()) -> None:
        if not pool:
            return
        reference = pool[0]

        def value(shard: ShardRun) -> Any:
            found = _get(shard.data, field)
            if isinstance(found, dict) and strip:
                return {k: v for k, v in found.items() if k not in strip}
            return found

        for shard in pool[1:]:
            for where, mine, theirs in _differences(field, value(shard), value(reference)):
                problems.append(
                    f"{shard.path}: field '{where}' is {_show(mine)}, but {_show(theirs)} in "
                    f"{reference.path}: the shards of one run share {what}"
                )

    for field, what in _SAME_EVERYWHERE:
        compare(field, what, shards)
    gated = [s for s in shards if _get(s.data, _GATE_POLICY) is not _ABSENT]
    compare(_GATE_POLICY, "the gate policy", gated, _PER_SHARD_POLICY)
    version = _get(first.data, "tool.version")
    if version is not _ABSENT and version != __version__:
        problems.append(
            f"{first.path}: field 'tool.version' is {_show(version)}, but this is pytest-modelmigrate "
            f"{__version__}: merge with the version that ran the shards, so the run is analysed the same way"
        )
    return problems


def _label_problems(shards: Sequence[ShardRun]) -> list[str]:
    problems: list[str] = []
    count = shards[0].shard.count
    by_index: dict[int, list[ShardRun]] = {}
    for shard in shards:
        if shard.shard.count != count:
            problems.append(
                f"{shard.path}: field 'shard.count' is {shard.shard.count}, but {count} in "
                f"{shards[0].path}: every shard must say how many shards the run has"
            )
        by_index.setdefault(shard.shard.index, []).append(shard)
    for index, given in sorted(by_index.items()):
        if len(given) > 1:
            problems.append(
                f"field 'shard.index': shard {index}/{count} is given {len(given)} times: "
                + ", ".join(str(s.path) for s in given)
            )
    if not problems:
        gaps = [i for i in range(1, count + 1) if i not in by_index]
        if gaps:
            given_text = ", ".join(s.name for s in shards)
            problems.append(
                f"field 'shard.index': missing shard(s) {', '.join(f'{i}/{count}' for i in gaps)} "
                f"(given: {given_text}): merge needs the run file of every shard"
            )
    return problems


def _nodeids(shard: ShardRun) -> set[str]:
    outcomes = shard.data.get("outcomes") or []
    ran = {str(o.get("nodeid")) for o in outcomes if isinstance(o, dict) and "nodeid" in o}
    return ran | set(shard.shard.nodeids)


def _duplicate_problems(shards: Sequence[ShardRun]) -> list[str]:
    seen: dict[str, ShardRun] = {}
    twice: list[tuple[str, ShardRun, ShardRun]] = []
    for shard in shards:
        for nodeid in sorted(_nodeids(shard)):
            earlier = seen.setdefault(nodeid, shard)
            # a shard given twice is reported once, as such, not once per test
            if earlier is not shard and earlier.shard.index != shard.shard.index:
                twice.append((nodeid, earlier, shard))
    if not twice:
        return []
    problems = [
        f"field 'shard.nodeids': {nodeid} ran in {a.name} and in {b.name}: each test must run in one shard"
        for nodeid, a, b in twice[:_MAX_LISTED]
    ]
    if len(twice) > _MAX_LISTED:
        problems.append(f"field 'shard.nodeids': ... and {len(twice) - _MAX_LISTED} more tests in two shards")
    return problems


def check_shards(shards: Sequence[ShardRun], *, baseline_given: bool = False) -> None:
    """:class:`MergeError` with every reason the shards cannot make one run."""
    problems = _label_problems(shards) + _configuration_problems(shards) + _duplicate_problems(shards)
    if not baseline_given:
        problems += [
            f"{s.path}: field 'baseline' is present: the shards were compared with a baseline; "
            "pass --baseline-compare=PATH to merge, which compares the merged run as a whole"
            for s in shards
            if "baseline" in s.data
        ][:1]
    if problems:
        raise MergeError(problems)


# -- the merged run ---------------------------------------------------------------------------


def _models(shard: ShardRun) -> list[ModelSpec]:
    try:
        return [ModelSpec(id=str(m["id"]), name=str(m["name"])) for m in shard.data["models"]]
    except (KeyError, TypeError):
        raise MergeError([f"{shard.path}: field 'models' is not a list of {{id, name}}"]) from None


_POLICY_KEYS = (
    "mode",
    "incumbent",
    "tolerance",
    "alpha",
    "power",
    "min_drop",
    "correction",
    "margin",
    "deterministic",
    "score_margin",
)


def _policy(
    shards: Sequence[ShardRun],
    group_tolerance: Mapping[str, float],
    mode: str | None,
    deterministic_groups: tuple[str, ...] = (),
) -> GatePolicy | None:
    """The shards' gate policy (they agree), with the union's group tolerances and ``mode``."""
    for shard in shards:
        raw = _get(shard.data, _GATE_POLICY)
        if raw is _ABSENT:
            continue
        try:
            fields = {k: raw[k] for k in _POLICY_KEYS if k in raw}
            policy = GatePolicy(
                **fields, group_tolerance=dict(group_tolerance), deterministic_groups=deterministic_groups
            )
            return policy if mode is None else replace(policy, mode=mode)
        except (TypeError, ValueError) as exc:
            raise MergeError([f"{shard.path}: field '{_GATE_POLICY}' cannot be used: {exc}"]) from None
    return None


def _recommend_policy(shards: Sequence[ShardRun], blocking: tuple[str, ...]) -> RecommendPolicy | None:
    """The shards' budgets and sunset dates, with the blocking groups of the union's outcomes."""
    from .gate.recommend import RecommendPolicy

    found: list[tuple[ShardRun, dict[str, Any]]] = []
    for s in shards:
        raw = (s.data.get("gate") or {}).get("recommend_policy")
        if isinstance(raw, dict):
            found.append((s, raw))
    if not found:
        return None
    shard, first = found[0]
    try:
        policy = RecommendPolicy.from_dict(first)
    except (TypeError, ValueError) as exc:
        raise MergeError([f"{shard.path}: field 'gate.recommend_policy' cannot be used: {exc}"]) from None
    return replace(policy, blocking=blocking)


def _adaptive(shards: Sequence[ShardRun]) -> AdaptiveRun | None:
    from .sequential import AdaptivePolicy

    found = [(s, s.data["adaptive"]) for s in shards if isinstance(s.data.get("adaptive"), dict)]
    if not found:
        return None
    shard, first = found[0]
    try:
        policy = AdaptivePolicy(**first["policy"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MergeError([f"{shard.path}: field 'adaptive.policy' cannot be used: {exc}"]) from None
    return AdaptiveRun(
        policy,
        calls_recorded=sum(int(a.get("calls_recorded") or 0) for _, a in found),
        budget_spent=any(bool(a.get("budget_spent")) for _, a in found),
    )


def _extra(shards: Sequence[ShardRun]) -> tuple[dict[str, Any], list[str]]:
    """What pytest_modelmigrate_run added, when every shard added the same; the keys left out."""
    keys = {k for s in shards for k in s.data if k not in _RUN_KEYS and k != MERGED_KEY}
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for key in sorted(keys):
        values = [s.data.get(key, _ABSENT) for s in shards]
        if all(v == values[0] for v in values) and values[0] is not _ABSENT:
            kept[key] = values[0]
        else:
            dropped.append(key)
    return kept, dropped


def _min_dataset_examples(data: Mapping[str, Any]) -> int:
    """The shards' ``modelmigrate_min_dataset_examples`` (100 in a file written before it was kept)."""
    section = data.get("under_evidence")
    value = section.get("min_dataset_examples") if isinstance(section, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 100


def merge_shards(
    shards: Sequence[ShardRun],
    *,
    baseline: Mapping[str, Any] | None = None,
    gate: str | None = None,
    created: str | None = None,
) -> Run:
    """The run the shards make together, analysed once on the union of their outcomes.

    ``gate``: the gate mode to decide with instead of the shards' (they may have run with
    ``report`` so that a shard's partial evidence fails no job). ``baseline``: a saved run to
    compare the merged run with, as ``--migration-baseline-compare`` does. ``run.extra`` holds
    the keys every shard's ``pytest_modelmigrate_run`` added alike, and under
    :data:`MERGED_KEY` the shard files. Raises :class:`MergeError`.
    """
    if gate is not None and gate not in MODES:
        raise MergeError([f"--gate: {gate!r} is not one of {', '.join(MODES)}"])
    check_shards(shards, baseline_given=baseline is not None)
    outcomes = []
    for shard in shards:
        for position, record in enumerate(shard.data.get("outcomes") or []):
            try:
                outcomes.append(outcome_from_dict(record))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise MergeError(
                    [f"{shard.path}: field 'outcomes[{position}]' is not an outcome record ({exc!r})"]
                ) from None
    first = shards[0]
    try:
        prices = prices_from_dict(
            _get(first.data, "metrics.prices") if _get(first.data, "metrics.prices") is not _ABSENT else {},
            source=f"{first.path}: field 'metrics.prices'",
        )
    except PriceError as exc:
        raise MergeError([str(exc)]) from None
    samples = first.data.get("samples", 1)
    incumbent = first.data.get("incumbent")
    run = analyse(
        outcomes,
        models=_models(first),
        incumbent=None if incumbent is None else str(incumbent),
        policy=_policy(shards, group_tolerances(outcomes), gate, prompt_flags(outcomes, "deterministic")),
        record_mode=str(first.data.get("record_mode") or "none"),
        samples=samples if isinstance(samples, int) else 1,
        prices=prices,
        baseline=baseline,
        adaptive=_adaptive(shards),
        created=created,
        recommend=_recommend_policy(shards, prompt_flags(outcomes, "blocking")),
        min_dataset_examples=_min_dataset_examples(first.data),
    )
    kept, _ = _extra(shards)
    run.extra.update(kept)
    run.extra[MERGED_KEY] = {
        "shards": [
            {
                "file": str(s.path),
                "index": s.shard.index,
                "count": s.shard.count,
                "created": s.data.get("created"),
                "tests": len(s.shard.nodeids),
            }
            for s in shards
        ]
    }
    return run


def exit_status(run: Run) -> int:
    """The merged run's exit status: the gate's, as the unsharded pytest run would have it.

    Only model tests are in run files, so a model test that failed, errored or misses its
    recording stands for pytest's failed tests (``strict``), and other tests count for nothing
    here: their failures fail their own shard's job. 0 when there is nothing to decide.
    """
    if run.decision is None:
        return 0
    failed = any(o.outcome in (FAILED, ERROR, MISSING) for o in run.outcomes)
    return run.decision.exit_status(tests_failed=failed, other_failures=0)


# -- the command ------------------------------------------------------------------------------


def _write(run: dict[str, Any], args: argparse.Namespace) -> list[Path]:
    from .reports.writers import ReportWriteError, write_reports

    targets = [
        ("--output", args.output, "json"),
        ("--markdown", args.markdown, "markdown"),
        ("--html", args.html, "html"),
        ("--baseline-save", args.baseline_save, "baseline"),
    ]
    try:
        return write_reports(run, targets)
    except ReportWriteError as exc:
        raise MergeError([str(exc)]) from None


def _merge(args: argparse.Namespace) -> int:
    from .reports.text import text_lines

    try:
        shards = load_shards(args.shards)
        baseline = None
        if args.baseline_compare is not None:
            try:
                baseline = load_run(args.baseline_compare)
            except BaselineError as exc:
                raise MergeError([f"--baseline-compare: {exc}"]) from None
        run = merge_shards(shards, baseline=baseline, gate=args.gate)
        data = run.to_dict()
        sys.stdout.write("\n".join(line.rstrip() for line in text_lines(data)) + "\n")
        written = _write(data, args)
    except MergeError as exc:
        for problem in exc.problems:
            print(f"modelmigrate merge: {problem}", file=sys.stderr)
        return 2
    _, dropped = _extra(shards)
    if dropped:
        keys = ", ".join(dropped)
        print(f"modelmigrate merge: not carried over (the shards disagree): {keys}", file=sys.stderr)
    if run.decision is not None and run.decision.mode == "report" and args.gate is None:
        print(
            "modelmigrate merge: the shards ran with gate mode report, so model outcomes fail nothing; "
            "pass --gate=no-regression or --gate=strict to gate the merged run",
            file=sys.stderr,
        )
    tests = sum(len(s.shard.nodeids) for s in shards)
    print(
        f"modelmigrate merge: {len(shards)} shard(s), {tests} test(s), "
        f"{len(run.outcomes)} (test, model) outcome(s)",
        file=sys.stderr,
    )
    for path in written:
        print(f"migration report written: {path}", file=sys.stderr)
    return exit_status(run)


def add_parser(subparsers: Any) -> None:
    """Register ``merge``."""
    merge: argparse.ArgumentParser = subparsers.add_parser(
        "merge",
        help="Merge the run files of a suite split across jobs (--migration-shard=K/N) into one run",
        description=(
            "Check that the shard run files belong together, then analyse their outcomes again as one "
            "run: the same matrix, statistics, verdicts and gate as the suite run in one job. Exit status: "
            "the gate's (1 when it fails the run, counting model tests only), 2 when the shards cannot be "
            "merged (a shard missing or given twice, a test in two shards, different settings or versions)."
        ),
    )
    merge.add_argument(
        "shards",
        type=Path,
        nargs="+",
        metavar="SHARD.json",
        help="The run file of every shard (--migration-json)",
    )
    merge.add_argument("-o", "--output", type=Path, default=None, help="Write the merged run (JSON) to PATH")
    merge.add_argument("--markdown", type=Path, default=None, help="Write the report as Markdown to PATH")
    merge.add_argument("--html", type=Path, default=None, help="Write the report as one HTML file to PATH")
    merge.add_argument(
        "--baseline-compare",
        type=Path,
        default=None,
        metavar="PATH",
        help="Compare the merged run with a saved baseline; regressions against it count for the gate",
    )
    merge.add_argument(
        "--baseline-save", type=Path, default=None, metavar="PATH", help="Save the merged run as a baseline"
    )
    merge.add_argument(
        "--gate",
        choices=MODES,
        default=None,
        help="Decide with this gate mode instead of the shards' (e.g. they ran with --migration-gate=report)",
    )
    merge.set_defaults(func=_merge)
