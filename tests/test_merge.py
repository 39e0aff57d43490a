"""A suite split across jobs: shard run files (``--migration-shard=K/N``) and ``modelmigrate merge``.

The story: a project records its prompt tests against the emulator with the real SDKs, replays
them in one session, then replays them again in three shards split by node ids, each shard with
``--migration-gate=report`` so that its partial evidence fails no job. ``modelmigrate merge
--gate=strict`` must then give the run the single session gave: the same matrix, checks, metrics,
datasets, missing recordings, verdicts, regressions and gate line, and the same exit status.
Then every way shards can fail to belong together, each refused with the file and the field.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from pytest_modelmigrate import __version__
from pytest_modelmigrate.analysis import AdaptiveRun, Shard, analyse, outcome_from_dict
from pytest_modelmigrate.cli import main
from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.gate import GatePolicy
from pytest_modelmigrate.models import ModelSpec
from pytest_modelmigrate.reports.run import validate_run, write_json
from pytest_modelmigrate.results import Outcome
from pytest_modelmigrate.sequential import AdaptivePolicy

StartEmulator = Callable[..., Emulator]
TWO = "--models=emu-a,emu-b"
NO_RANDOM = ("-p", "no:randomly")

# Keys of a run file that legitimately differ between a merged run and the same suite run in one
# job: when (also as the baseline comparison quotes it), which shard files, and each outcome's
# wall-clock duration (a fact of that session).
RUN_SPECIFIC = ("created", "shard", "merged")


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


def comparable(run: dict[str, Any]) -> dict[str, Any]:
    run = {k: v for k, v in copy.deepcopy(run).items() if k not in RUN_SPECIFIC}
    for outcome in run["outcomes"]:
        outcome.pop("duration")
    if "baseline" in run:
        run["baseline"].pop("new_created")
    return run


def differences(a: Any, b: Any, where: str = "run") -> list[str]:
    """Every path at which two JSON values differ (so a failure says where, not just that)."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{where}.{k}: only in one run" for k in sorted(set(a) ^ set(b))]
        for key in a.keys() & b.keys():
            found += differences(a[key], b[key], f"{where}.{key}")
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items against {len(b)}"]
        return [
            d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def unordered(value: Any) -> Any:
    """The value with every list sorted: what a run says, whatever order its tests were listed in."""
    if isinstance(value, dict):
        return {k: unordered(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((unordered(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    return value


# -- the story: one job, then three shards merged ---------------------------------------------

SCRIPT: dict[str, Any] = {
    "models": {
        "emu-a": {
            "rules": [
                {"match": "bullets", "reply": "- one\n- two\n- three"},
                {"match": "one line", "reply": "Refund sent."},
                {"match": "(?i)refund|invoice|charged", "reply": "billing"},
            ],
            "default": "technical",
        },
        "emu-b": {
            "rules": [
                # two samples of three write a fourth bullet
                {
                    "match": "bullets",
                    "sequence": [
                        {"reply": "- one\n- two\n- three"},
                        {"reply": "- one\n- two\n- three\n- four"},
                        {"reply": "- one\n- two\n- three\n- four"},
                    ],
                },
                {"match": "one line", "reply": "Refund sent."},
                {"match": "route: refund", "reply": "sales"},  # the regression
                {"match": "crashed", "reply": "technical"},  # one dataset edge case wrong
                {"match": "(?i)refund|invoice|charged", "reply": "billing"},
            ],
            "default": "technical",
        },
    }
}

TESTS_SUMMARY = """
import pytest
import app

@pytest.mark.prompt("summary", purpose="Summarise a ticket", tolerance=0.1, deterministic=True)
def test_three_bullets(model, checks):
    checks.bullets(app.chat(model, "Summarize the ticket in three bullets"), exactly=3)

@pytest.mark.prompt("summary", tolerance=0.1, deterministic=True)
def test_one_line(model, checks):
    checks.max_words(app.claude(model, "Summarize the ticket in one line"), 5)

def test_not_a_model_test():
    assert True
"""

TESTS_TRIAGE = """
import pytest
import app

@pytest.mark.prompt("triage")
@pytest.mark.samples(8)
def test_refund(model, checks):
    checks.contains(app.chat(model, "route: refund please"), "billing")

@pytest.mark.prompt("triage")
def test_crash(model, checks):
    checks.contains(app.claude(model, "route: the app crashes"), "technical")

@pytest.mark.prompt("ticket-triage")
@pytest.mark.dataset("tickets.jsonl", labels=["billing", "technical"])
def test_routes_tickets(model, example, prediction):
    prediction.label(app.chat(model, "Route this ticket: " + example["text"]).strip())
"""

TICKETS = [
    ("refund-1", "Please refund my last order", "billing"),
    ("invoice-1", "The invoice total is wrong", "billing"),
    ("crash-1", "The app crashes on start", "technical"),
    ("login-1", "I cannot log in since the update", "technical"),
    ("edge-1", "Edge case: charged again after the app crashed", "billing"),
]


def recorded_project(pytester: pytest.Pytester, start_emulator: StartEmulator) -> list[str]:
    """Record the suite with three samples, drop one cassette; the node ids in collection order."""
    pytester.makefile(
        ".jsonl",
        tickets="\n".join(json.dumps({"id": i, "text": t, "label": label}) for i, t, label in TICKETS),
    )
    emulator = start_emulator(SCRIPT, test_summary=TESTS_SUMMARY, test_triage=TESTS_TRIAGE)
    pytester.runpytest(TWO, "--samples=3", "--record-mode=once", *NO_RANDOM)
    emulator.stop()
    # a recording that is missing: counted for no model, and the gate cannot pass over it
    (pytester.path / "cassettes" / "test_triage" / "emu-b" / "test_crash.yaml").unlink()
    collected = pytester.runpytest("--collect-only", "-q", TWO, "--samples=3", *NO_RANDOM)
    return [line for line in collected.outlines if "::" in line]


def split(nodeids: Sequence[str], how: str, shards: int = 3) -> list[list[str]]:
    if how == "contiguous":
        size = -(-len(nodeids) // shards)
        return [list(nodeids[i * size : (i + 1) * size]) for i in range(shards)]
    return [list(nodeids[i::shards]) for i in range(shards)]


def run_shards(pytester: pytest.Pytester, parts: Sequence[Sequence[str]], *args: str) -> list[Path]:
    files = []
    for k, part in enumerate(parts, start=1):
        path = pytester.path / f"shard-{k}.json"
        result = pytester.runpytest(
            *part, TWO, "--samples=3", f"--migration-shard={k}/{len(parts)}", f"--migration-json={path}",
            *args, *NO_RANDOM,
        )  # fmt: skip
        assert result.ret == 0, result.outlines  # report mode: a shard's partial evidence fails no job
        files.append(path)
    return files


def read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("how", ["contiguous", "interleaved"])
def test_three_shards_merge_into_the_run_of_one_job(
    pytester: pytest.Pytester, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """Contiguous slices of the collection merge into the very same run file, order included;
    interleaved ones (one test's models in different shards) into the same run listed in shard
    order: every number, verdict and the gate are the same."""
    nodeids = recorded_project(pytester, start_emulator)
    whole = pytester.runpytest(TWO, "--samples=3", "--migration-json=whole.json", *NO_RANDOM)
    assert whole.ret == 1  # strict: failing tests, a regression, a missing recording
    parts = split(nodeids, how)
    files = run_shards(pytester, parts, "--migration-gate=report")

    merged_path = pytester.path / "merged.json"
    capsys.readouterr()  # what the pytest sessions printed
    status = main(["merge", *map(str, files), "-o", str(merged_path), "--gate=strict"])
    assert status == whole.ret
    out, err = capsys.readouterr()
    one_job, merged = read(pytester.path / "whole.json"), read(merged_path)

    # the fixture is not vacuous: samples, a group tolerance, a dataset rule, a regression,
    # a missing recording and a plain test are all in it
    gate = one_job["gate"]
    assert gate["passed"] is False
    assert gate["policy"]["group_tolerance"] == {"summary": 0.1}
    # a prompt flag, like the tolerance, is known only to the shards that ran its tests
    assert gate["policy"]["deterministic_groups"] == ["summary"]
    assert {r["source"] for r in gate["regressions"]} >= {"test", "dataset"}
    assert gate["verdicts"]["triage"]["emu-b"]["verdict"] == "re-engineer"
    assert one_job["missing"]["recordings"][0]["nodeid"] == "test_triage.py::test_crash[emu-b]"
    cells = {row["name"]: row["cells"] for g in one_job["matrix"]["groups"] for row in g["tests"]}
    assert cells["test_summary.py::test_three_bullets"]["emu-b"]["passed"] == 1
    assert cells["test_summary.py::test_three_bullets"]["emu-b"]["total"] == 3
    # a shard says it is one, and which tests it ran (the plain test too)
    shards = [read(f) for f in files]
    for k, (shard, part) in enumerate(zip(shards, parts, strict=True), start=1):
        assert shard["shard"] == {"index": k, "count": 3, "nodeids": sorted(part)}
        assert shard["gate"]["mode"] == "report"
    assert "test_summary.py::test_not_a_model_test" in nodeids
    # every shard saw only part of the suite; interleaved, a test's two models in two shards
    assert all(len(s["outcomes"]) < len(one_job["outcomes"]) for s in shards)
    if how == "interleaved":
        where = {n: k for k, part in enumerate(parts) for n in part}
        assert where["test_triage.py::test_refund[emu-a]"] != where["test_triage.py::test_refund[emu-b]"]

    assert merged["merged"]["shards"][1] == {
        "file": str(files[1]), "index": 2, "count": 3, "created": shards[1]["created"],
        "tests": len(parts[1]),
    }  # fmt: skip
    assert "shard" not in merged
    validate_run(merged)
    for shard in shards:
        validate_run(shard)
    if how == "contiguous":
        problems = differences(comparable(one_job), comparable(merged))
    else:
        problems = differences(unordered(comparable(one_job)), unordered(comparable(merged)))
        for key in ("gate", "metrics", "datasets"):  # order-free already: equal as written
            problems += differences(one_job[key], merged[key], key)
    assert not problems, "\n".join(problems)

    # the command prints what the terminal printed, ending with the same gate line
    assert out.rstrip().splitlines()[-1] == gate["line"]
    assert f"modelmigrate merge: 3 shard(s), {len(nodeids)} test(s)" in err
    if how == "contiguous":  # all of it but the first line, which says when the run was made
        assert main(["show", str(pytester.path / "whole.json")]) == 0
        assert capsys.readouterr().out.splitlines()[1:] == out.splitlines()[1:]


def test_merge_writes_every_report_and_compares_with_a_baseline(
    pytester: pytest.Pytester, start_emulator: StartEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """The merge job writes JSON, Markdown, HTML and a baseline, and compares with a baseline as a
    single job would (the shards themselves are not compared: only the union can be)."""
    nodeids = recorded_project(pytester, start_emulator)
    pytester.runpytest(TWO, "--samples=3", "--migration-baseline-save=baseline.json", *NO_RANDOM)
    whole = pytester.runpytest(
        TWO, "--samples=3", "--migration-json=whole.json", "--migration-baseline-compare=baseline.json",
        "--migration-gate=no-regression", *NO_RANDOM,
    )  # fmt: skip
    files = run_shards(pytester, split(nodeids, "contiguous"), "--migration-gate=report")
    out = pytester.path / "out"
    status = main(
        [
            "merge", *map(str, files), "-o", str(out / "run.json"), "--markdown", str(out / "run.md"),
            "--html", str(out / "run.html"), "--baseline-compare", str(pytester.path / "baseline.json"),
            "--baseline-save", str(out / "baseline.json"), "--gate", "no-regression",
        ]
    )  # fmt: skip
    assert status == whole.ret == 1
    merged, one_job = read(out / "run.json"), read(pytester.path / "whole.json")
    assert not differences(comparable(one_job), comparable(merged))
    assert merged["baseline"]["unchanged"] == 17
    assert "## Model migration" in (out / "run.md").read_text(encoding="utf-8")
    assert (out / "run.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert read(out / "baseline.json")["outcomes"]
    assert "migration report written:" in capsys.readouterr().err

    # shards that were each compared with the baseline: the merge must compare the union itself
    compared = run_shards(
        pytester,
        split(nodeids, "contiguous"),
        "--migration-gate=report",
        "--migration-baseline-compare=baseline.json",
    )
    assert main(["merge", *map(str, compared)]) == 2
    assert (
        f"modelmigrate merge: {compared[0]}: field 'baseline' is present: the shards were compared with a "
        "baseline; pass --baseline-compare=PATH" in capsys.readouterr().err
    )


def test_a_shard_labels_its_run_file(pytester: pytest.Pytester, plugin_args: tuple[str, ...]) -> None:
    """The label is in the header and the run file, with every test the shard ran (under xdist
    too); a shard that ran no model test still writes its file, so the merge can count it."""
    pytester.makepyfile(
        test_p="""
import pytest

@pytest.mark.prompt("p")
def test_a(model):
    pass

def test_plain():
    pass
"""
    )
    result = pytester.runpytest(
        "--models=a,b", "--migration-shard=2/3", "--migration-json=run.json", *plugin_args, *NO_RANDOM
    )
    result.assert_outcomes(passed=3)
    if not plugin_args:
        result.stdout.fnmatch_lines(["modelmigrate: models a, b *; shard 2/3; gate strict; *"])
    run = read(pytester.path / "run.json")
    assert run["shard"] == {
        "index": 2,
        "count": 3,
        "nodeids": ["test_p.py::test_a[a]", "test_p.py::test_a[b]", "test_p.py::test_plain"],
    }
    validate_run(run)

    pytester.runpytest(
        "--models=a,b", "-k", "plain", "--migration-shard=3/3", "--migration-json=empty.json", *plugin_args
    )
    empty = read(pytester.path / "empty.json")
    assert empty["shard"]["nodeids"] == ["test_p.py::test_plain"]
    assert empty["outcomes"] == []
    assert "gate" not in empty


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0/3", "'0/3' names no shard; the shards of 3 are 1/3 to 3/3"),
        ("4/3", "'4/3' names no shard; the shards of 3 are 1/3 to 3/3"),
        ("1/0", "'1/0' names no shard; N, the number of shards, is at least 1"),
        ("2", "'2' is not K/N; use e.g. 2/3 for the second of three shards"),
        ("a/b", "'a/b' is not K/N"),
    ],
)
def test_a_bad_shard_label_is_a_usage_error(pytester: pytest.Pytester, value: str, message: str) -> None:
    pytester.makepyfile(test_p="def test_a(model):\n    pass\n")
    result = pytester.runpytest("--models=a", f"--migration-shard={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: --migration-shard: {message}*"])


# -- shards built from outcomes, without a pytest run -----------------------------------------

MODELS = (ModelSpec("old", "gpt-old"), ModelSpec("new", "gpt-new"))
POLICY = GatePolicy(mode="no-regression", incumbent="old")


def outcomes() -> list[Outcome]:
    """Two groups; ``new`` fails test_refund's six samples, and one of test_crash's three."""
    found = []
    for test, group, new_samples in (
        ("t.py::test_refund", "triage", ["failed"] * 6),
        ("t.py::test_crash", "triage", ["passed", "passed", "failed"]),
        ("t.py::test_login", "triage", ["passed"] * 3),
        ("s.py::test_short", "summary", ["passed"] * 3),
    ):
        for model, samples in (("old", ["passed"] * len(new_samples)), ("new", new_samples)):
            found.append(
                Outcome(
                    nodeid=f"{test}[{model}]", test=test, model=model, group=group,
                    outcome="failed" if "failed" in samples else "passed", samples=samples,
                    checks=[{"name": "contains", "passed": s == "passed", "sample": i} for i, s in enumerate(samples)],
                    calls=[{"provider": "openai", "endpoint": "chat", "status": 200, "model_requested": f"gpt-{model}",
                            "latency_ms": 100.0 + i, "usage": {"input_tokens": 10, "output_tokens": 2}}
                           for i in range(3)],
                    duration=0.01, cassette=f"cassettes/{model}/{test}.yaml", message=None,
                    extra={"prompt": {"name": group, "purpose": None, "sensitivities": []}},
                )
            )  # fmt: skip
    return found


def contiguous(everything: list[Outcome], count: int) -> list[list[Outcome]]:
    size = -(-len(everything) // count)
    return [everything[k * size : (k + 1) * size] for k in range(count)]


def by_model(everything: list[Outcome], count: int) -> list[list[Outcome]]:
    return [[o for o in everything if o.model == spec.id] for spec in MODELS]


def write_shards(
    tmp_path: Path,
    *,
    count: int = 3,
    policy: GatePolicy = POLICY,
    adaptive: AdaptiveRun | None = None,
    edit: Callable[[int, dict[str, Any]], None] | None = None,
    how: Callable[[list[Outcome], int], list[list[Outcome]]] = contiguous,
) -> list[Path]:
    """The outcomes in ``count`` shards (contiguous by default), as the plugin writes them."""
    paths = []
    for k, part in enumerate(how(outcomes(), count), start=1):
        run = analyse(
            part, models=MODELS, incumbent="old", policy=policy, samples=3, adaptive=adaptive,
            shard=Shard(k, count, tuple(sorted(o.nodeid for o in part))),
        )  # fmt: skip
        data = run.to_dict()
        if edit is not None:
            edit(k, data)
        path = tmp_path / f"shard-{k}.json"
        write_json(path, data)
        paths.append(path)
    return paths


def merge_status(paths: Sequence[Path], *args: str) -> int:
    return main(["merge", *map(str, paths), *args])


def test_merge_analyses_the_union_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Merged: the run analyse() gives on all outcomes at once, not the shards' verdicts added up.
    Split by model, no shard can compare anything: each passes its gate; together they regress."""
    paths = write_shards(tmp_path, count=2, how=by_model)
    for path in paths:
        gate = read(path)["gate"]
        assert gate["passed"] is True
        assert {v["verdict"] for per in gate["verdicts"].values() for v in per.values()} <= {"investigate"}
    assert merge_status(paths, "-o", str(tmp_path / "merged.json")) == 1
    merged = read(tmp_path / "merged.json")
    in_shard_order = [o for part in by_model(outcomes(), 2) for o in part]
    expected = analyse(in_shard_order, models=MODELS, incumbent="old", policy=POLICY, samples=3).to_dict()
    assert not differences(comparable(expected), comparable(merged))
    assert merged["gate"]["passed"] is False
    assert [(r["source"], r["test"]) for r in merged["gate"]["regressions"]] == [
        ("test", "t.py::test_refund"),
        ("group", None),
    ]
    assert capsys.readouterr().out.rstrip().endswith(merged["gate"]["line"])


def test_outcome_records_read_back_as_they_were_written() -> None:
    for outcome in outcomes():
        outcome.extra |= {"dataset": [{"id": "x", "label": "a"}], "missing": "stale: changed"}
        assert outcome_from_dict(outcome.to_dict()) == outcome


def test_the_merge_exit_status_follows_the_gate_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """strict: a failing model test fails it; no-regression: only the gate; report: nothing."""
    no_regression = write_shards(tmp_path, count=1)
    assert merge_status(no_regression) == 1
    assert merge_status(no_regression, "--gate=report") == 0
    # ... and the warning, when report mode came from the shards
    report = write_shards(tmp_path, count=1, policy=GatePolicy(mode="report", incumbent="old"))
    capsys.readouterr()
    assert merge_status(report) == 0
    assert "the shards ran with gate mode report, so model outcomes fail nothing" in capsys.readouterr().err

    # strict fails on test_crash's failing sample even with no regression in the run
    def no_regression_data(k: int, data: dict[str, Any]) -> None:
        for o in data["outcomes"]:
            if o["test"] == "t.py::test_refund":
                o["samples"], o["outcome"] = ["passed"] * 3, "passed"

    paths = write_shards(tmp_path, count=2, edit=no_regression_data)
    assert merge_status(paths, "--gate=no-regression") == 0
    assert merge_status(paths, "--gate=strict") == 1


def test_sampling_settings_carry_over(tmp_path: Path) -> None:
    """--samples=auto shards: the sequential rule decides the merged run too."""
    adaptive = AdaptiveRun(AdaptivePolicy(min_samples=3, max_samples=6))
    paths = write_shards(tmp_path, adaptive=adaptive)
    assert merge_status(paths, "-o", str(tmp_path / "merged.json")) == 1
    merged = read(tmp_path / "merged.json")
    expected = analyse(
        outcomes(), models=MODELS, incumbent="old", policy=POLICY, samples=3, adaptive=adaptive
    )
    assert not differences(comparable(expected.to_dict()), comparable(merged))
    assert merged["adaptive"]["policy"]["max_samples"] == 6
    assert {r["source"] for r in merged["gate"]["regressions"]} == {"sequential"}


def test_what_every_shard_added_alike_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def extra(k: int, data: dict[str, Any]) -> None:
        data["ci"] = {"commit": "abc123"}
        data["job"] = f"shard-{k}"

    paths = write_shards(tmp_path, edit=extra)
    merge_status(paths, "-o", str(tmp_path / "merged.json"))
    merged = read(tmp_path / "merged.json")
    assert merged["ci"] == {"commit": "abc123"}
    assert "job" not in merged
    assert "not carried over (the shards disagree): job" in capsys.readouterr().err


# -- refusals: exit 2, naming the file and the field -----------------------------------------


def edit_shard(index: int, change: Callable[[dict[str, Any]], None]) -> Callable[[int, dict[str, Any]], None]:
    def edit(k: int, data: dict[str, Any]) -> None:
        if k == index:
            change(data)

    return edit


REFUSALS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "gate policy",
        lambda d: d["gate"]["policy"].update(alpha=0.1),
        "{2}: field 'gate.policy.alpha' is 0.1, but 0.05 in {1}: the shards of one run share the gate policy",
    ),
    (
        "gate mode",
        lambda d: d["gate"]["policy"].update(mode="strict"),
        '{2}: field \'gate.policy.mode\' is "strict", but "no-regression" in {1}',
    ),
    (
        "models",
        lambda d: d.update(models=[{"id": "old", "name": "gpt-old"}, {"id": "new", "name": "gpt-newer"}]),
        "{2}: field 'models' is [",
    ),
    ("incumbent", lambda d: d.update(incumbent="new"), '{2}: field \'incumbent\' is "new", but "old" in {1}'),
    (
        "samples",
        lambda d: d.update(samples=5),
        "{2}: field 'samples' is 5, but 3 in {1}: the shards of one run share",
    ),
    (
        "record mode",
        lambda d: d.update(record_mode="once"),
        '{2}: field \'record_mode\' is "once", but "none" in {1}',
    ),
    (
        "plugin version",
        lambda d: d["tool"].update(version="0.0.1"),
        '{2}: field \'tool.version\' is "0.0.1", but "' + __version__ + '" in {1}',
    ),
    (
        "prices",
        lambda d: d["metrics"].update(
            prices={"gpt-old": {"input": 1.0, "output": 2.0, "cached_input": None}}
        ),
        '{2}: field \'metrics.prices.gpt-old\' is {{"cached_input": null, "input": 1.0, "output": 2.0}}, but absent in {1}',
    ),
    ("shard count", lambda d: d["shard"].update(count=4), "{2}: field 'shard.count' is 4, but 3 in {1}"),
    (
        "shard given twice",
        lambda d: d["shard"].update(index=1),
        "field 'shard.index': shard 1/3 is given 2 times: {1}, {2}",
    ),
    (
        "test in two shards",
        lambda d: d["shard"]["nodeids"].append("t.py::test_refund[old]"),
        "field 'shard.nodeids': t.py::test_refund[old] ran in {1} (1/3) and in {2} (2/3): each test must run in one shard",
    ),
    (
        "not a shard",
        lambda d: d.pop("shard"),
        "{2}: field 'shard' is missing: this run is not labelled as a shard (run each shard with --migration-shard=K/N)",
    ),
    ("bad label", lambda d: d["shard"].update(index="two"), "{2}: field 'shard' is {{"),
    (
        "bad outcome",
        lambda d: d["outcomes"][0].pop("test"),
        "{2}: outcomes[0] has no 'test' string",
    ),
]


@pytest.mark.parametrize(("change", "message"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_shards_that_do_not_belong_together_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Callable[[dict[str, Any]], None], message: str
) -> None:
    paths = write_shards(tmp_path, edit=edit_shard(2, change))
    assert merge_status(paths, "-o", str(tmp_path / "merged.json")) == 2
    err = capsys.readouterr().err
    assert message.format(None, *paths) in err, err
    assert not (tmp_path / "merged.json").exists()


def test_missing_shards_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = write_shards(tmp_path, count=4)
    assert merge_status([paths[0], paths[2]]) == 2
    assert (
        "modelmigrate merge: field 'shard.index': missing shard(s) 2/4, 4/4 "
        f"(given: {paths[0]} (1/4), {paths[2]} (3/4)): merge needs the run file of every shard"
    ) in capsys.readouterr().err


def test_every_problem_is_listed_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["samples"] = 5
        data["incumbent"] = "new"

    paths = write_shards(tmp_path, edit=edit_shard(3, change))
    assert merge_status(paths[1:]) == 2
    problems = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("modelmigrate merge:")
    ]
    assert len(problems) == 3, problems
    assert re.search(r"missing shard\(s\) 1/3", problems[0])


def test_unreadable_files_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert merge_status([bad, tmp_path / "absent.json"]) == 2
    err = capsys.readouterr().err
    assert f"modelmigrate merge: {bad}: not JSON (line 1" in err
    assert f"modelmigrate merge: {tmp_path / 'absent.json'}: no such file" in err


# -- the CI recipe ------------------------------------------------------------------------------

WORKFLOW = (
    Path(__file__).resolve().parent.parent / "example_project/.github/workflows/model-migration-sharded.yml"
)


def test_the_sharded_workflow_labels_every_shard_and_gates_in_the_merge_job() -> None:
    import yaml

    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    shard, merge = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    shards = shard["strategy"]["matrix"]["shard"]
    assert shards == list(range(1, int(workflow["env"]["SHARDS"]) + 1))
    assert shard["strategy"]["fail-fast"] is False
    steps = {s.get("name"): s for s in shard["steps"]}
    replay = steps["Replay shard ${{ matrix.shard }}"]["run"]
    for part in (
        '--splits "$SHARDS" --group "${{ matrix.shard }}"',
        '--migration-shard="${{ matrix.shard }}/$SHARDS"',
        "--migration-gate=report",
        '--migration-json="shard-${{ matrix.shard }}.json"',
        "unset GITHUB_STEP_SUMMARY",
    ):
        assert part in replay, part
    upload = steps["Upload the shard's run file"]
    assert upload["if"] == "always()"
    assert upload["with"]["name"] == "migration-shard-${{ matrix.shard }}"

    assert merge["needs"] == "shard"
    assert "!cancelled()" in merge["if"]
    steps = {s.get("name"): s for s in merge["steps"]}
    download = steps["Download the shards' run files"]["with"]
    assert download["pattern"] == "migration-shard-*"
    assert download["merge-multiple"] is True
    command = steps["Merge the shards and gate"]["run"]
    assert f"modelmigrate merge {download['path'].removeprefix('example_project/')}/shard-*.json" in command
    assert "--gate=no-regression" in command
    assert "model-migration-sharded.yml" in steps["Fetch main's baseline"]["run"]


def test_merge_is_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "merge" in capsys.readouterr().out
