"""The migration history: one JSON line per saved run, and what broke in earlier migrations.

Pure module: no pytest import. ``modelmigrate history append RUN.json`` adds one entry to
``migrations/history.jsonl`` (a file kept in git, one entry a line, never edited by hand): when
the run was made, the incumbent and candidates (alias and model), and per prompt group its
version (``@pytest.mark.prompt(version=...)``, else ``#`` and a hash of the prompt text the tests
send, read from the recordings), rationale and target model, the verdict and finding per
candidate, pass rates, regressions, regression cases with their outcome per model, and the checks
that failed. ``modelmigrate history show`` renders, per prompt, each migration in order, the
version changes between them with their rationale, and what broke and in which later entry it
passed again. :func:`earlier_migration_lines` gives the same per prompt for the migration document.

A run is appended once: its id is a digest of when it was made, its models and its outcomes, so
the run file and the baseline saved from the same session have the same id.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .baseline import BaselineError, load_run
from .files import write_atomically
from .reports.breakdown import check_breakdown

if TYPE_CHECKING:
    import argparse

__all__ = [
    "DEFAULT_HISTORY",
    "HISTORY_VERSION",
    "Break",
    "DuplicateRunError",
    "HistoryError",
    "add_parser",
    "append_entry",
    "content_hash",
    "earlier_migration_lines",
    "entry_from_run",
    "find_breaks",
    "load_history",
    "render_history",
    "run_id",
]

HISTORY_VERSION = 1
DEFAULT_HISTORY = Path("migrations/history.jsonl")
FORMATS = ("markdown", "text", "migration")
# Roles whose text is the prompt the test sends (assistant and tool turns depend on the model).
_PROMPT_ROLES = frozenset({"system", "developer", "user"})
_HASH_CHARS = 12


class HistoryError(ValueError):
    """A history file or entry that cannot be used; the message names the file and the line."""


class DuplicateRunError(HistoryError):
    """The history already holds this run (the same id): nothing was appended."""


# -- building an entry from a run ---------------------------------------------------------------


def run_id(run: Mapping[str, Any]) -> str:
    """A digest of the run's time, models and outcomes: the same for its run file and its baseline."""
    summary = {
        "created": run.get("created"),
        "models": run.get("models"),
        "incumbent": run.get("incumbent"),
        "outcomes": sorted(
            (
                str(o.get("nodeid", "")),
                str(o.get("outcome", "")),
                int(o.get("passed") or 0),
                int(o.get("total") or 0),
            )
            for o in run.get("outcomes") or []
            if isinstance(o, Mapping)
        ),
    }
    text = json.dumps(summary, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _text_parts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):  # content blocks: {"type": "text", "text": ...}
        return [str(b["text"]) for b in content if isinstance(b, Mapping) and isinstance(b.get("text"), str)]
    return []


def prompt_texts(body: Mapping[str, Any]) -> list[str]:
    """The prompt text of one request body (OpenAI chat or Responses, Anthropic messages), without
    the model, the settings and the turns the model wrote."""
    texts: list[str] = []
    for key in ("system", "instructions"):
        texts += [f"system:{t}" for t in _text_parts(body.get(key))]
    for key in ("messages", "input"):
        value = body.get(key)
        if isinstance(value, str):
            texts.append(f"user:{value}")
            continue
        for message in value if isinstance(value, list) else []:
            if isinstance(message, Mapping) and message.get("role") in _PROMPT_ROLES:
                texts += [f"{message['role']}:{t}" for t in _text_parts(message.get("content"))]
    return texts


def _cassette_bodies(path: Path) -> list[Mapping[str, Any]] | None:
    """The JSON request bodies a cassette recorded, or None when it cannot be read."""
    import yaml

    from .safeyaml import yaml_problem

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if yaml_problem(text) is not None:
        return None
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return None
    bodies: list[Mapping[str, Any]] = []
    for interaction in (data.get("interactions") if isinstance(data, dict) else None) or []:
        request = interaction.get("request") if isinstance(interaction, dict) else None
        body = request.get("body") if isinstance(request, dict) else None
        if isinstance(body, dict):  # vcrpy may keep {"string": ...}
            body = body.get("string")
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        if not isinstance(body, str):
            continue
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            bodies.append(parsed)
    return bodies


def content_hash(outcomes: Sequence[Mapping[str, Any]], root: Path) -> str | None:
    """A hash of the prompt text a group's tests sent, read from their cassettes under ``root``.

    The distinct prompt texts of every test and model, sorted, so the hash does not change with
    the models compared or the order of the calls. None when no cassette could be read.
    """
    texts: set[str] = set()
    read = False
    for outcome in outcomes:
        cassette = outcome.get("cassette")
        if not cassette:
            continue
        bodies = _cassette_bodies(root / str(cassette))
        if bodies is None:
            continue
        read = True
        for body in bodies:
            texts.update(f"{outcome.get('test', '')}\0{t}" for t in prompt_texts(body))
    if not read or not texts:
        return None
    digest = hashlib.sha256("\n\0".join(sorted(texts)).encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:_HASH_CHARS]


def _rate(passed: int, total: int) -> dict[str, Any]:
    return {"passed": passed, "total": total, "rate": passed / total if total else None}


def _model_order(names: Mapping[str, str], alias: str) -> int:
    return list(names).index(alias) if alias in names else len(names)


def entry_from_run(
    run: Mapping[str, Any],
    *,
    root: Path | None = None,
    note: str | None = None,
    source: str | None = None,
    appended: datetime | None = None,
) -> dict[str, Any]:
    """One history entry (a JSON-friendly dict) from a run dict.

    ``root`` is the folder the run's cassette paths are relative to (pytest's rootdir); without
    it, or when no cassette is there, a prompt without an explicit version has none.
    """
    models = [m for m in run.get("models") or [] if isinstance(m, Mapping)]
    names = {str(m.get("id")): str(m.get("name") or m.get("id")) for m in models}
    incumbent = run.get("incumbent")
    gate = run.get("gate") if isinstance(run.get("gate"), Mapping) else {}
    assert isinstance(gate, Mapping)
    candidates = [str(c) for c in gate.get("candidates") or [m for m in names if m != incumbent]]
    outcomes = _adopted_only(run, [o for o in run.get("outcomes") or [] if isinstance(o, Mapping)])
    by_group: dict[str, list[Mapping[str, Any]]] = {}
    for outcome in outcomes:
        by_group.setdefault(str(outcome.get("group", "")), []).append(outcome)
    breakdown = check_breakdown(outcomes, list(names))
    verdicts: Mapping[str, Any] = gate.get("verdicts") or {}
    regressions = [r for r in gate.get("regressions") or [] if isinstance(r, Mapping)]

    prompts: dict[str, Any] = {}
    for group, group_outcomes in by_group.items():
        marker: dict[str, Any] = {}
        for outcome in group_outcomes:
            prompt = outcome.get("prompt")
            if isinstance(prompt, Mapping):
                for key in ("purpose", "version", "rationale", "target_model"):
                    if prompt.get(key) and key not in marker:
                        marker[key] = str(prompt[key])
        digest = content_hash(group_outcomes, root) if root is not None else None
        version = marker.get("version") or (f"#{digest}" if digest else None)
        rates: dict[str, dict[str, int]] = {}
        tests: dict[str, dict[str, Any]] = {}
        cases: dict[str, dict[str, Any]] = {}
        for outcome in group_outcomes:
            model, test = str(outcome.get("model", "")), str(outcome.get("test", ""))
            passed, total = int(outcome.get("passed") or 0), int(outcome.get("total") or 0)
            cell = rates.setdefault(model, {"passed": 0, "total": 0})
            cell["passed"] += passed
            cell["total"] += total
            result = {"outcome": str(outcome.get("outcome", "")), **_rate(passed, total)}
            if total and passed < total:
                tests.setdefault(test, {})[model] = result
            case = outcome.get("regression_case")
            if isinstance(case, Mapping) and case.get("description"):
                entry = cases.setdefault(
                    test,
                    {
                        "test": test,
                        "description": str(case["description"]),
                        "fixed_in": case.get("fixed_in"),
                        "results": {},
                    },
                )
                entry["results"][model] = result
        passed_tests: dict[str, list[str]] = {}
        for outcome in group_outcomes:
            passed, total = int(outcome.get("passed") or 0), int(outcome.get("total") or 0)
            if total and passed == total:
                passed_tests.setdefault(str(outcome.get("test", "")), []).append(
                    str(outcome.get("model", ""))
                )
        group_checks = (breakdown.get("groups") or {}).get(group) or {}
        passed_checks = {
            check: [m for m, c in per.items() if c["total"] and not c["failed"]]
            for check, per in group_checks.items()
        }
        failed_checks = {
            check: {m: {"failed": c["failed"], "total": c["total"]} for m, c in per.items() if c["total"]}
            for check, per in group_checks.items()
            if any(c["failed"] for c in per.values())
        }
        prompts[group] = {
            "version": version,
            "version_source": "marker" if marker.get("version") else ("recordings" if digest else None),
            "content_hash": digest,
            "rationale": marker.get("rationale"),
            "target_model": marker.get("target_model"),
            "purpose": marker.get("purpose"),
            "rates": {
                m: _rate(c["passed"], c["total"])
                for m, c in sorted(rates.items(), key=lambda item: _model_order(names, item[0]))
            },
            "verdicts": {
                str(cand): {k: v.get(k) for k in ("verdict", "finding", "reason")}
                for cand, v in (verdicts.get(group) or {}).items()
                if isinstance(v, Mapping)
            },
            "regressions": [
                {k: r.get(k) for k in ("source", "candidate", "test", "summary")}
                for r in regressions
                if r.get("group") == group
            ],
            "failing_tests": tests,
            "regression_cases": list(cases.values()),
            "failed_checks": failed_checks,
            "passed": {"tests": passed_tests, "checks": {c: m for c, m in passed_checks.items() if m}},
        }
        adopted = _adopted_variants(run, group)
        if adopted:
            prompts[group]["variants"] = adopted
    when = appended or datetime.now(UTC)
    return {
        "history_version": HISTORY_VERSION,
        "id": run_id(run),
        "created": str(run.get("created") or ""),
        "appended": when.replace(microsecond=0).isoformat(),
        "source": source,
        "note": note,
        "record_mode": run.get("record_mode"),
        "incumbent": None
        if incumbent is None
        else {"alias": str(incumbent), "model": names.get(str(incumbent), str(incumbent))},
        "candidates": [{"alias": c, "model": names.get(c, c)} for c in candidates],
        "gate": {k: gate.get(k) for k in ("mode", "passed", "line")} if gate else None,
        "prompts": prompts,
    }


def _adopted_only(run: Mapping[str, Any], outcomes: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The outcomes of the prompt as adopted: of a test with prompt variants, per model only the
    variant shipped there (the others were tried and not adopted; the run file keeps them)."""
    section = run.get("variants") if isinstance(run.get("variants"), Mapping) else None
    ship = {
        (str(t.get("test")), str(m)): e.get("ship")
        for t in (section or {}).get("tests") or []
        for m, e in (t.get("models") or {}).items()
    }
    if not ship:
        return outcomes
    kept = []
    for o in outcomes:
        v = o.get("variant")
        if isinstance(v, Mapping) and ship.get((str(v.get("of")), str(o.get("model")))) not in (
            None,
            v.get("name"),
        ):
            continue
        kept.append(o)
    return kept


def _adopted_variants(run: Mapping[str, Any], group: str) -> list[dict[str, Any]]:
    """Per variant-ed test of ``group`` and model: the prompt variant adopted (the run's
    ``variants`` section), why (the marker's rationale) and its evidence."""
    from .variants import evidence_text

    section = run.get("variants") if isinstance(run.get("variants"), Mapping) else None
    found = []
    for test in (section or {}).get("tests") or []:
        if test.get("group") != group:
            continue
        why = {v.get("name"): v.get("rationale") for v in test.get("variants") or []}
        for model, entry in (test.get("models") or {}).items():
            ship = entry.get("ship")
            evidence = (entry.get("evidence") or {}).get(ship)
            found.append(
                {
                    "test": str(test.get("test")),
                    "model": str(model),
                    "variant": ship,
                    "rationale": why.get(ship),
                    "evidence": evidence_text(evidence) if evidence else None,
                }
            )
    return found


# -- reading and appending ----------------------------------------------------------------------


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return "not a JSON object"
    if entry.get("history_version") != HISTORY_VERSION:
        return (
            f"history_version {entry.get('history_version')!r} is not supported "
            f"(this version reads {HISTORY_VERSION})"
        )
    for key, kind in (("id", str), ("created", str), ("candidates", list), ("prompts", dict)):
        if not isinstance(entry.get(key), kind):
            return f"{key!r} missing or not a {'string' if kind is str else kind.__name__}"
    if entry.get("incumbent") is not None and not isinstance(entry["incumbent"], dict):
        return "'incumbent' is not an object"
    models = [*([entry["incumbent"]] if entry.get("incumbent") is not None else []), *entry["candidates"]]
    for model in models:
        if not (isinstance(model, dict) and isinstance(model.get("alias"), str)):
            return "a model without an 'alias' string"
        if model.get("model") is not None and not isinstance(model["model"], str):
            return f"model {model['alias']!r}: 'model' is not a string"
    for group, prompt in entry["prompts"].items():
        problem = _prompt_problem(prompt)
        if problem is not None:
            return f"prompt {group!r}: {problem}"
    return None


def _counts_problem(cell: Any, keys: tuple[str, str] = ("passed", "total")) -> bool:
    return not (
        isinstance(cell, dict)
        and all(isinstance(cell.get(k), int) and not isinstance(cell.get(k), bool) for k in keys)
    )


def _per_model_problem(value: Any, keys: tuple[str, str] = ("passed", "total")) -> bool:
    return not isinstance(value, dict) or any(_counts_problem(c, keys) for c in value.values())


def _prompt_problem(prompt: Any) -> str | None:
    if not isinstance(prompt, dict):
        return "not an object"
    for key in ("version", "version_source", "content_hash", "rationale", "target_model", "purpose"):
        if prompt.get(key) is not None and not isinstance(prompt[key], str):
            return f"{key!r} is not a string"
    if _per_model_problem(prompt.get("rates", {})):
        return "'rates' is not model -> {passed, total}"
    verdicts = prompt.get("verdicts", {})
    if not isinstance(verdicts, dict) or not all(isinstance(v, dict) for v in verdicts.values()):
        return "'verdicts' is not candidate -> {verdict, finding, reason}"
    regressions = prompt.get("regressions", [])
    if not isinstance(regressions, list) or not all(isinstance(r, dict) for r in regressions):
        return "'regressions' is not a list of objects"
    failing = prompt.get("failing_tests", {})
    if not isinstance(failing, dict) or any(_per_model_problem(v) for v in failing.values()):
        return "'failing_tests' is not test -> model -> {passed, total}"
    cases = prompt.get("regression_cases", [])
    if not isinstance(cases, list) or not all(
        isinstance(c, dict)
        and isinstance(c.get("test"), str)
        and not _per_model_problem(c.get("results", {}))
        for c in cases
    ):
        return "'regression_cases' is not a list of {test, description, results}"
    passed = prompt.get("passed", {})
    if not isinstance(passed, dict) or not all(
        isinstance(passed.get(k, {}), dict)
        and all(
            isinstance(v, list) and all(isinstance(a, str) for a in v) for v in passed.get(k, {}).values()
        )
        for k in ("tests", "checks")
    ):
        return "'passed' is not {tests, checks} -> names -> models"
    variants = prompt.get("variants", [])
    if not isinstance(variants, list) or not all(
        isinstance(v, dict) and isinstance(v.get("test"), str) and isinstance(v.get("model"), str)
        for v in variants
    ):
        return "'variants' is not a list of {test, model, variant, rationale, evidence}"
    checks = prompt.get("failed_checks", {})
    if not isinstance(checks, dict) or any(
        _per_model_problem(v, ("failed", "total")) for v in checks.values()
    ):
        return "'failed_checks' is not check -> model -> {failed, total}"
    return None


def load_history(path: Path) -> list[dict[str, Any]]:
    """The entries of a history file, in order; :class:`HistoryError` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HistoryError(
            f"{path}: no such file (append a run first: modelmigrate history append RUN.json)"
        ) from None
    except IsADirectoryError:
        raise HistoryError(f"{path}: is a folder, not a history file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryError(f"{path}: cannot read it ({exc})") from None
    entries: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HistoryError(f"{path}:{number}: not JSON (column {exc.colno}: {exc.msg})") from None
        problem = _entry_problem(entry)
        if problem is not None:
            raise HistoryError(f"{path}:{number}: not a migration history entry ({problem})")
        if entry["id"] in seen:
            raise HistoryError(
                f"{path}:{number}: the same run as line {seen[entry['id']]} (id {entry['id']})"
            )
        seen[entry["id"]] = number
        entries.append(entry)
    return entries


def append_entry(path: Path, entry: Mapping[str, Any]) -> int:
    """Append ``entry`` as one line (the whole file rewritten atomically); its line number.

    :class:`HistoryError` when the file is not a history or already holds this run.
    """
    problem = _entry_problem(entry)
    if problem is not None:
        raise HistoryError(f"not a migration history entry ({problem})")
    entries = load_history(path) if path.exists() else []
    for number, old in enumerate(entries, start=1):
        if old["id"] == entry["id"]:
            raise DuplicateRunError(
                f"{path}: already holds this run (line {number}, id {entry['id']}, "
                f"made {old['created']}, appended {old.get('appended')}); nothing appended"
            )
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    text += json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
    write_atomically(path, text)
    return len(entries) + 1


# -- what broke, and when it passed again -------------------------------------------------------


@dataclass(frozen=True)
class Break:
    """Something that broke on a candidate in one migration, and the later one where it passed."""

    group: str
    index: int  # the migration (0-based) where it broke
    kind: str  # "test", "case" or "check"
    name: str  # the test, or the check
    candidate: str  # the alias it broke on
    model: str  # that alias's model
    detail: str  # e.g. "1/1 -> 0/1" or the regression's summary
    fixed_index: int | None = None  # the first later migration where it passed again
    fixed_version: str | None = None

    def describe(self) -> str:
        what = {"test": "regressed", "case": "regression case failed", "check": "check failed"}[self.kind]
        return f"{what}: {self.name} on {self.candidate}" + (f" ({self.detail})" if self.detail else "")


def _models(entry: Mapping[str, Any]) -> dict[str, str]:
    """alias -> model of the entry's incumbent and candidates."""
    found = {}
    for m in [entry.get("incumbent"), *(entry.get("candidates") or [])]:
        if isinstance(m, Mapping):
            found[str(m["alias"])] = str(m.get("model") or m["alias"])
    return found


def _candidate_in(entry: Mapping[str, Any], model: str, alias: str) -> list[str]:
    """Aliases of ``entry`` to judge a fix on: the same model, else the same alias, else all candidates."""
    cands = {str(c["alias"]): str(c.get("model") or c["alias"]) for c in entry.get("candidates") or []}
    same = [a for a, m in cands.items() if m == model] or [a for a in cands if a == alias]
    return same or list(cands)


def _status(prompt: Mapping[str, Any], kind: str, name: str, aliases: Sequence[str]) -> bool | None:
    """True when the item passed on every alias, False when it failed on one, None without evidence."""
    passed: Mapping[str, Any] = prompt.get("passed") or {}
    if kind == "check":
        failed = (prompt.get("failed_checks") or {}).get(name) or {}
        passing = (passed.get("checks") or {}).get(name) or []
    elif kind == "case":
        case = next((c for c in prompt.get("regression_cases") or [] if c.get("test") == name), None)
        results: Mapping[str, Any] = (case or {}).get("results") or {}
        failed = {a: r for a, r in results.items() if r.get("total") and r["passed"] < r["total"]}
        passing = [a for a, r in results.items() if r.get("total") and r["passed"] == r["total"]]
    else:
        failed = (prompt.get("failing_tests") or {}).get(name) or {}
        passing = (passed.get("tests") or {}).get(name) or []
    if any(a in failed for a in aliases):
        return False
    ran = [a for a in aliases if a in passing]
    return True if ran else None


def _breaks_in(group: str, index: int, entry: Mapping[str, Any]) -> list[Break]:
    prompt = entry["prompts"][group]
    models = _models(entry)
    candidates = [str(c["alias"]) for c in entry.get("candidates") or []]
    found: dict[tuple[str, str, str], Break] = {}

    def add(kind: str, name: str, alias: str, detail: str) -> None:
        key = (kind, name, alias)
        if key not in found:
            found[key] = Break(group, index, kind, name, alias, models.get(alias, alias), detail)

    case_tests = {str(c.get("test")) for c in prompt.get("regression_cases") or []}
    for case in prompt.get("regression_cases") or []:
        for alias in candidates:
            r = (case.get("results") or {}).get(alias)
            if r and r.get("total") and r["passed"] < r["total"]:
                add(
                    "case",
                    str(case["test"]),
                    alias,
                    f'"{case.get("description")}", {r["passed"]}/{r["total"]}',
                )
    for r in prompt.get("regressions") or []:
        if r.get("test") and str(r["test"]) not in case_tests:
            add("test", str(r["test"]), str(r.get("candidate")), str(r.get("summary") or ""))
    for check, per in (prompt.get("failed_checks") or {}).items():
        for alias in candidates:
            c = per.get(alias)
            if c and c.get("failed"):
                add("check", str(check), alias, f"{c['failed']}/{c['total']} samples")
    return list(found.values())


def find_breaks(entries: Sequence[Mapping[str, Any]], group: str) -> list[Break]:
    """Everything that broke on a candidate of ``group``, each with the later migration that fixed it."""
    breaks: list[Break] = []
    for index, entry in enumerate(entries):
        if group not in entry["prompts"]:
            continue
        for b in _breaks_in(group, index, entry):
            for later_index in range(index + 1, len(entries)):
                later = entries[later_index]
                prompt = later["prompts"].get(group)
                if prompt is None:
                    continue
                status = _status(prompt, b.kind, b.name, _candidate_in(later, b.model, b.candidate))
                if status is True:
                    version = prompt.get("version")
                    b = Break(**{**b.__dict__, "fixed_index": later_index, "fixed_version": version})
                    break
            breaks.append(b)
    return breaks


# -- rendering ----------------------------------------------------------------------------------


def _day(created: str) -> str:
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return created or "?"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _pct(cell: Mapping[str, Any] | None) -> str:
    if not cell or not cell.get("total"):
        return "-"
    return f"{cell['passed']}/{cell['total']}"


def _version_change(before: Mapping[str, Any] | None, prompt: Mapping[str, Any]) -> str | None:
    old = before.get("version") if before else None
    new = prompt.get("version")
    if before is None or old == new:
        return None
    text = f"{old or '?'} → {new or '?'}"
    if prompt.get("target_model"):
        text += f", targets {prompt['target_model']}"
    if prompt.get("rationale") and prompt.get("rationale") != before.get("rationale"):
        text += f": {prompt['rationale']}"
    return text


def _text_changed(before: Mapping[str, Any] | None, prompt: Mapping[str, Any]) -> bool:
    """An explicit version that stayed while the recorded prompt text changed."""
    old, new = (before or {}).get("content_hash"), prompt.get("content_hash")
    return bool(old and new and old != new)


def _fix_text(b: Break, current: int | None = None) -> str:
    if b.fixed_index is None:
        return "not fixed yet"
    version = f"fixed in {b.fixed_version}" if b.fixed_version else "passed again"
    where = "this run" if b.fixed_index == current else f"migration {b.fixed_index + 1}"
    return f"{version} ({where})"


def _group_lines(
    entries: Sequence[Mapping[str, Any]], group: str, *, markdown: bool, current: bool = False
) -> list[str]:
    """One item per migration of ``group``; in Markdown a numbered list, else indented text.

    ``current``: the last entry is the run a document is about; it is not listed, and what it
    fixed says "this run".
    """
    last = len(entries) - 1 if current else None

    def esc(value: Any) -> str:
        if not markdown:
            return str(value)
        from .reports.markdown import escape

        return escape(str(value))

    breaks = find_breaks(entries, group)
    lines: list[str] = []
    before: Mapping[str, Any] | None = None
    for index, entry in enumerate(entries):
        prompt = entry["prompts"].get(group)
        if prompt is None or index == last:
            continue
        number = index + 1
        inc = entry.get("incumbent") or {}
        cands = ", ".join(_model_label(c) for c in entry.get("candidates") or [])
        head = f"{_day(entry['created'])}: {_model_label(inc) if inc else '?'} → {cands or '?'}"
        head += f", prompt {prompt.get('version') or 'unversioned'}"
        verdicts = "; ".join(
            f"{alias} {v.get('verdict')}" + (f" ({v['finding']})" if v.get("finding") else "")
            for alias, v in (prompt.get("verdicts") or {}).items()
        )
        order = list(_models(entry))
        cells = sorted(
            (prompt.get("rates") or {}).items(),
            key=lambda item: order.index(item[0]) if item[0] in order else len(order),
        )
        rates = ", ".join(f"{alias} {_pct(cell)}" for alias, cell in cells)
        bullets: list[str] = []
        change = _version_change(before, prompt)
        if change:
            bullets.append(f"re-engineered {change}")
        elif _text_changed(before, prompt):
            bullets.append(f"the prompt text changed, its version stayed {prompt.get('version')}")
        bullets.append(f"verdict: {verdicts or 'none (no gate)'}; pass rates {rates or '-'}")
        for v in prompt.get("variants") or []:
            if v.get("model") != inc.get("alias"):
                why = f": {v['rationale']}" if v.get("rationale") else ""
                bullets.append(
                    f"adopted variant {v.get('variant')} of {v.get('test')} for {v.get('model')} "
                    f"({v.get('evidence') or 'no evidence'}){why}"
                )
        for b in (b for b in breaks if b.index == index):
            bullets.append(f"broke: {b.describe()}; {_fix_text(b, last)}")
        fixed_here = [b for b in breaks if b.fixed_index == index]
        for b in fixed_here:
            bullets.append(f"passed again: {b.name} on {b.candidate} (broke in migration {b.index + 1})")
        if entry.get("note"):
            bullets.append(f"note: {entry['note']}")
        if markdown:
            lines.append(f"{number}. **{esc(head)}**")
            lines += [f"   - {esc(text)}" for text in bullets]
        else:
            lines.append(f"  migration {number}, {head}")
            lines += [f"    {text}" for text in bullets]
        before = prompt
    return lines


def _model_label(model: Mapping[str, Any]) -> str:
    alias, name = str(model.get("alias", "?")), str(model.get("model") or model.get("alias", "?"))
    return alias if alias == name else f"{alias} ({name})"


def _groups(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for entry in entries:
        for group in entry["prompts"]:
            seen.setdefault(group, None)
    return list(seen)


def render_history(
    entries: Sequence[Mapping[str, Any]],
    *,
    fmt: str = "markdown",
    prompt: str | None = None,
    source: str = "",
) -> str:
    """The history per prompt, as Markdown or plain text; ``prompt`` keeps one group."""
    groups = _groups(entries)
    if prompt is not None:
        if prompt not in groups:
            known = ", ".join(groups) or "none"
            raise HistoryError(f"{source or 'history'}: no prompt group {prompt!r} (known: {known})")
        groups = [prompt]
    markdown = fmt == "markdown"
    if markdown:
        from .reports.markdown import escape

        lines = [
            "# Migration history",
            "",
            f"{len(entries)} migration(s)" + (f" in {escape(source)}" if source else "") + ".",
            "",
        ]
    else:
        lines = [f"migration history: {len(entries)} migration(s)" + (f" in {source}" if source else "")]
    for group in groups:
        if markdown:
            lines += [f"## {escape(group)}", ""]
            lines += _group_lines(entries, group, markdown=True)
            lines.append("")
        else:
            lines.append(group)
            lines += _group_lines(entries, group, markdown=False)
    return "\n".join(lines).rstrip() + "\n"


def earlier_migration_lines(
    entries: Sequence[Mapping[str, Any]], group: str, run: Mapping[str, Any] | None = None
) -> list[str]:
    """Markdown lines for the migration document's "Earlier migrations" of ``group``.

    ``run`` is the run the document is about: left out of the list when the history holds it,
    and what it fixed reads "fixed in v3 (this run)".
    """
    current = run_id(run) if run is not None else None
    kept = [e for e in entries if e.get("id") != current]
    if not any(group in e["prompts"] for e in kept):
        return []
    if run is None:
        return _group_lines(kept, group, markdown=True)
    return _group_lines([*kept, entry_from_run(run)], group, markdown=True, current=True)


# -- the command --------------------------------------------------------------------------------


def _recordings_root(run_path: Path, given: Path | None, run: Mapping[str, Any]) -> Path | None:
    """Where the run's cassette paths start: ``--root``, else the run file's folder or the current one."""
    if given is not None:
        return given
    cassettes = [
        str(o["cassette"]) for o in run.get("outcomes") or [] if isinstance(o, Mapping) and o.get("cassette")
    ]
    for folder in (run_path.parent, Path.cwd()):
        if any((folder / c).is_file() for c in cassettes[:50]):
            return folder
    return None


def _append(args: argparse.Namespace) -> int:
    try:
        run = load_run(args.run)
    except BaselineError as exc:
        print(f"modelmigrate history append: {exc}", file=sys.stderr)
        return 2
    root = _recordings_root(args.run, args.root, run)
    entry = entry_from_run(run, root=root, note=args.note, source=str(args.run))
    try:
        number = append_entry(args.to, entry)
    except HistoryError as exc:
        print(f"modelmigrate history append: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, DuplicateRunError) else 2
    except OSError as exc:
        print(f"modelmigrate history append: {exc}", file=sys.stderr)
        return 2
    versions = ", ".join(f"{g} {p.get('version') or 'unversioned'}" for g, p in entry["prompts"].items())
    print(f"appended {args.run} to {args.to} (line {number}, id {entry['id']}): {versions}", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        entries = load_history(args.history)
        if args.format == "migration":
            if args.run is None:
                raise HistoryError("--format migration needs --run RUN.json, the run the document is about")
            from .reports.migration_doc import render_migration_doc

            run = load_run(args.run)
            text = render_migration_doc(run, history=entries)
        else:
            text = render_history(entries, fmt=args.format, prompt=args.prompt, source=str(args.history))
    except (HistoryError, BaselineError) as exc:
        print(f"modelmigrate history show: {exc}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        write_atomically(args.output, text)
    except OSError as exc:
        print(f"modelmigrate history show: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def add_parser(subparsers: Any) -> None:
    """Register ``history append`` and ``history show``."""
    history: argparse.ArgumentParser = subparsers.add_parser(
        "history",
        help="Keep a migration history (one JSON line per run, kept in git) and render it per prompt",
        description="The migration history: append saved runs to it, show what broke and how it was fixed.",
    )
    commands = history.add_subparsers(dest="history_command", metavar="COMMAND")

    def usage(_args: argparse.Namespace) -> int:
        history.print_help(sys.stderr)
        return 2

    history.set_defaults(func=usage)

    append = commands.add_parser(
        "append",
        help="Append a saved run (or baseline) to the history",
        description="Append one entry built from a run file. The same run is refused (exit 1); "
        "an unreadable run or history exits 2.",
    )
    append.add_argument(
        "run", type=Path, metavar="RUN.json", help="A run file written by pytest-modelmigrate"
    )
    append.add_argument(
        "--to", type=Path, default=DEFAULT_HISTORY, help=f"The history file (default: {DEFAULT_HISTORY})"
    )
    append.add_argument(
        "--note", default=None, help="A note kept with the entry, e.g. what was re-engineered"
    )
    append.add_argument(
        "--root",
        type=Path,
        default=None,
        help="The folder the run's cassette paths are relative to, for prompt versions hashed from "
        "the recordings (default: the run file's folder, else the current one)",
    )
    append.set_defaults(func=_append)

    show = commands.add_parser(
        "show",
        help="Render the history per prompt: migrations, version changes, what broke and where it was fixed",
        description="Render a migration history file. Exit 2 for a file that is not a history.",
    )
    show.add_argument(
        "history",
        type=Path,
        nargs="?",
        default=DEFAULT_HISTORY,
        help=f"The history file (default: {DEFAULT_HISTORY})",
    )
    show.add_argument(
        "--format",
        choices=FORMATS,
        default="markdown",
        help="markdown, text, or migration (the prompt migration document of --run with its "
        "earlier migrations); default markdown",
    )
    show.add_argument("--prompt", default=None, metavar="GROUP", help="Show this prompt group only")
    show.add_argument("--run", type=Path, default=None, help="The run of --format migration")
    show.add_argument("-o", "--output", type=Path, default=None, help="Write to this file (default: stdout)")
    show.set_defaults(func=_show)
