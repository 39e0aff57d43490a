"""The drift canary: the incumbent sampled live again and compared with its own recordings.

Unit tests of ``canary.detect_drift`` on hand-made run dicts, the command's exit status and
errors, a simulation of its false-alarm rate, and two stories against the emulator: a silent
model update between recording and canary (same model name, worse answers, another
fingerprint) is ``drifted``; no change (new draws only) is ``stable``, over several seeds.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_modelmigrate import cli
from pytest_modelmigrate.canary import DRIFTED, INVESTIGATE, STABLE, CanaryError, detect_drift
from pytest_modelmigrate.emulator import Emulator

# -- hand-made runs ---------------------------------------------------------------------------


def call(snapshot: str = "gpt-4o-2024-08-06", fingerprint: str | None = "fp_1") -> dict[str, Any]:
    return {
        "provider": "openai",
        "endpoint": "chat.completions",
        "status": 200,
        "model_requested": "gpt-4o",
        "model_echoed": snapshot,
        "system_fingerprint": fingerprint,
        "error": None,
    }


def outcome(
    test: str, passed: int, total: int, *, group: str = "g", model: str = "gpt-4o", **call_kw: Any
) -> dict[str, Any]:
    samples = ["passed"] * passed + ["failed"] * (total - passed)
    return {
        "nodeid": f"{test}[{model}]",
        "test": test,
        "model": model,
        "group": group,
        "outcome": "failed" if passed < total else "passed",
        "passed": passed,
        "total": total,
        "samples": samples,
        "checks": [{"name": "contains", "passed": s == "passed", "sample": i} for i, s in enumerate(samples)],
        "calls": [call(**call_kw) for _ in range(total)],
        "duration": 0.0,
    }


def run(
    *outcomes: dict[str, Any], created: str = "2027-01-01T06:00:00+00:00", **extra: Any
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "created": created,
        "models": [{"id": "gpt-4o", "name": "gpt-4o"}],
        "incumbent": "gpt-4o",
        "outcomes": list(outcomes),
        **extra,
    }


def only(report: Any, group: str = "g") -> Any:
    return next(g for g in report.groups if g.group == group)


def test_the_same_outcomes_and_identity_are_stable() -> None:
    rec = run(outcome("t1", 19, 20), outcome("t2", 20, 20))
    live = run(outcome("t1", 5, 5), outcome("t2", 5, 5))
    report = detect_drift(rec, live)
    assert only(report).verdict == STABLE
    assert report.verdict == STABLE
    assert report.exit_status(fail_on_drift=True) == 0
    assert report.line == "drift canary (gpt-4o): STABLE: 0 drifted, 0 investigate, 1 stable (alpha 0.05)"


def test_significantly_worse_live_is_drifted_even_with_the_same_fingerprint() -> None:
    rec = run(outcome("t1", 19, 20), outcome("t2", 20, 20), outcome("t3", 19, 20))
    live = run(outcome("t1", 1, 5), outcome("t2", 2, 5), outcome("t3", 1, 5))
    g = only(detect_drift(rec, live))
    assert g.verdict == DRIFTED
    assert g.p_adjusted is not None and g.p_adjusted <= 0.05
    assert g.reason.startswith(
        "significantly worse live (recorded 58/60 (97%), live 4/15 (27%)): group p adj "
    )
    assert not g.new_fingerprints and not g.new_snapshots


def test_a_new_fingerprint_with_a_test_lower_but_not_significantly_is_investigate() -> None:
    # providers rotate fingerprints: a rotation and one chance failure in 5 is no alarm
    rec = run(outcome("t1", 20, 20), outcome("t2", 20, 20))
    live = run(outcome("t1", 4, 5, fingerprint="fp_2"), outcome("t2", 5, 5, fingerprint="fp_2"))
    g = only(detect_drift(rec, live))
    assert g.p_adjusted is not None and g.p_adjusted > 0.05  # not significant on its own
    assert g.verdict == INVESTIGATE
    assert g.new_fingerprints == ("fp_2",)
    assert "new system_fingerprint fp_2 and 1 test(s) lower live, not significantly" in g.reason
    assert g.reason.endswith("sample more to tell")


def test_a_new_snapshot_with_outcomes_not_lower_is_investigate() -> None:
    rec = run(outcome("t1", 20, 20))
    live = run(outcome("t1", 5, 5, snapshot="gpt-4o-2025-01-01"))
    report = detect_drift(rec, live)
    g = only(report)
    assert g.verdict == INVESTIGATE
    assert g.new_snapshots == ("gpt-4o-2025-01-01",)
    assert g.reason.startswith("new snapshot gpt-4o-2025-01-01, outcomes not lower")
    assert report.exit_status(fail_on_drift=True) == 0


def test_recordings_without_fingerprints_compare_outcomes_only() -> None:
    """Anthropic and the Responses API send no system_fingerprint: no fingerprint, no alarm."""
    rec = run(outcome("t1", 20, 20, fingerprint=None))
    live = run(outcome("t1", 5, 5, fingerprint=None))
    assert only(detect_drift(rec, live)).verdict == STABLE


def test_calls_to_another_model_in_the_same_test_are_not_its_identity() -> None:
    """A judge (or an embedder) called in the test answers with its own snapshot and fingerprint."""
    judged = outcome("t1", 5, 5)
    judged["calls"].append({**call("judge-2026", "fp_judge"), "model_requested": "judge-2026"})
    g = only(detect_drift(run(outcome("t1", 20, 20)), run(judged)))
    assert g.live_identity.fingerprints == ("fp_1",)
    assert g.verdict == STABLE


def test_no_test_with_samples_on_both_sides_is_investigate() -> None:
    rec = run(outcome("t1", 20, 20))
    live = run(outcome("t2", 5, 5))
    g = only(detect_drift(rec, live))
    assert g.verdict == INVESTIGATE
    assert g.reason == "no test has samples in both runs: nothing to compare"


def test_missing_recordings_are_no_evidence() -> None:
    missing = outcome("t1", 0, 0)
    missing["outcome"] = "missing"
    g = only(detect_drift(run(missing), run(outcome("t1", 5, 5))))
    assert g.verdict == INVESTIGATE
    assert g.tests[0].recorded == (0, 0)


def test_holm_over_groups_and_the_verdict_per_group() -> None:
    rec = run(
        *(outcome(f"a{i}", 20, 20, group="a") for i in range(3)),
        *(outcome(f"b{i}", 20, 20, group="b") for i in range(3)),
    )
    live = run(
        *(outcome(f"a{i}", 0, 5, group="a") for i in range(3)),
        *(outcome(f"b{i}", 5, 5, group="b") for i in range(3)),
    )
    report = detect_drift(rec, live)
    assert [(g.group, g.verdict) for g in report.groups] == [("a", DRIFTED), ("b", STABLE)]
    a = only(report, "a")
    assert a.p_value is not None and a.p_adjusted is not None
    assert a.p_adjusted == pytest.approx(min(1.0, 2 * 2 * a.p_value))  # Holm's 2 groups, alpha / 2
    assert all(t.p_adjusted is not None and t.p_adjusted <= 0.05 for t in a.tests)
    assert report.exit_status(fail_on_drift=True) == 1
    assert report.exit_status(fail_on_drift=False) == 0


def test_the_sunset_and_its_days_left_come_from_the_run() -> None:
    gate = {"recommend_policy": {"sunset": {"gpt-4o": "2027-03-31"}}}
    report = detect_drift(run(outcome("t1", 5, 5)), run(outcome("t1", 5, 5), gate=gate))
    assert report.sunset is not None
    assert (report.sunset.date, report.sunset.days_left) == ("2027-03-31", 89)
    assert "sunset: gpt-4o retires on 2027-03-31 (89 days left)" in report.lines()
    assert "**Sunset:** gpt-4o retires on 2027-03-31 (89 days left)." in report.markdown()


def test_the_markdown_opens_with_the_decision_and_has_a_table_per_prompt() -> None:
    rec = run(outcome("t1", 20, 20, group="a"), outcome("t2", 20, 20, group="b"))
    live = run(outcome("t1", 0, 5, group="a", fingerprint="fp_9"), outcome("t2", 5, 5, group="b"))
    md = detect_drift(rec, live).markdown()
    lines = md.splitlines()
    assert lines[0] == "## Drift canary: gpt-4o"
    assert lines[2] == "❌ **1 prompt(s) drifted** on gpt-4o."
    assert "### a: drifted" in lines and "### b: stable" in lines
    assert "| a | ❌ drifted | 20/20 (100%) | 0/5 (0%) |" in md
    assert "- system_fingerprint: recorded fp\\_1; live fp\\_9; new live: fp\\_9" in lines
    assert "Checks failing more often live (failed/total samples): contains 0/20 -> 5/5" in lines


def test_the_model_is_chosen_by_id_or_name_and_must_be_in_both_runs() -> None:
    rec = run(outcome("t1", 5, 5))
    live = run(outcome("t1", 5, 5))
    assert detect_drift(rec, live, model="gpt-4o").model == "gpt-4o"
    with pytest.raises(
        CanaryError, match=r"^LIVE.json: no model 'gpt-5' in this run \(its models: gpt-4o\)$"
    ):
        detect_drift(rec, run(), model="gpt-5", paths=("LIVE.json", "LIVE.json"))
    other = run(outcome("t1", 5, 5, model="gpt-5"))
    other["models"] = [{"id": "gpt-5", "name": "gpt-5"}]
    with pytest.raises(CanaryError, match="no model in common"):
        detect_drift(rec, other)


def test_no_false_alarm_above_alpha_when_nothing_changed() -> None:
    """Recorded and live drawn from the same rates: drifted in at most alpha of the canaries."""
    rng = random.Random(20261)
    rates = [0.6, 0.8, 0.9, 0.95, 0.99]
    trials, alarms = 400, 0
    for _ in range(trials):
        rec = run(
            *(outcome(f"t{i}", sum(rng.random() < p for _ in range(10)), 10) for i, p in enumerate(rates))
        )
        live = run(
            *(outcome(f"t{i}", sum(rng.random() < p for _ in range(3)), 3) for i, p in enumerate(rates))
        )
        alarms += detect_drift(rec, live).verdict == DRIFTED
    assert alarms / trials <= 0.05


def test_the_run_file_carries_the_system_fingerprint_of_chat_completions() -> None:
    from pytest_modelmigrate.providers import openai_chat
    from pytest_modelmigrate.providers.base import Call

    base = Call(
        "openai", "chat.completions", "POST", "https://api.openai.com/v1/chat/completions", 200, False
    )
    body = {"model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_abc", "choices": [{"message": {}}]}
    assert openai_chat.read_json(base, body).summary()["system_fingerprint"] == "fp_abc"
    chunks = [
        {"model": "gpt-4o-2024-08-06", "system_fingerprint": None, "choices": [{"delta": {"content": "a"}}]},
        {"model": "gpt-4o-2024-08-06", "system_fingerprint": "fp_abc", "choices": []},
    ]
    assert openai_chat.read_stream(base, chunks).system_fingerprint == "fp_abc"
    assert openai_chat.read_json(base, {"choices": []}).summary()["system_fingerprint"] is None


# -- the command ------------------------------------------------------------------------------


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_the_command_exit_status_follows_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = write(tmp_path / "rec.json", run(outcome("t1", 20, 20), outcome("t2", 20, 20)))
    live = write(tmp_path / "live.json", run(outcome("t1", 0, 5), outcome("t2", 0, 5)))
    md = tmp_path / "out" / "canary.md"
    assert cli.main(["canary", str(rec), str(live), "--markdown", str(md)]) == 0
    assert cli.main(["canary", str(rec), str(live), "--fail-on-drift"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "drift canary (gpt-4o): DRIFTED: 1 drifted, 0 investigate, 0 stable (alpha 0.05)"
    assert md.read_text().startswith("## Drift canary: gpt-4o\n")
    assert cli.main(["canary", str(rec), str(rec), "--fail-on-drift"]) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "rec.json: no such file"),
        ("{", "rec.json: not JSON (line 1, column 2"),
        ("[]", "rec.json: not a pytest-modelmigrate run"),
    ],
)
def test_bad_input_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    rec = tmp_path / "rec.json"
    if content is not None:
        rec.write_text(content)
    live = write(tmp_path / "live.json", run(outcome("t1", 5, 5)))
    assert cli.main(["canary", str(rec), str(live)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("modelmigrate canary: ") and message in err
    assert "Traceback" not in err


def test_a_bad_alpha_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["canary", "a.json", "b.json", "--alpha", "2"])
    assert exc.value.code == 2
    assert "'2' is not a number between 0 and 1" in capsys.readouterr().err


# -- end to end against the emulator -----------------------------------------------------------

TESTS = """
import pytest
import app

@pytest.mark.prompt("triage")
@pytest.mark.parametrize("ticket", ["refund", "invoice", "charge", "receipt"])
def test_triage(model, ticket):
    assert app.chat(model, f"Classify this ticket: {ticket}") == "billing"

@pytest.mark.prompt("greeting")
def test_greeting(model):
    assert "Hello" in app.chat(model, "Say hello")
"""


def script(*, billing: float, fingerprint: str, seed: int = 0) -> dict[str, Any]:
    return {
        "seed": seed,
        "models": {
            "emu-prod": {
                "fingerprint": fingerprint,
                "rules": [
                    {
                        "match": "(?i)classify",
                        "choices": [
                            {"weight": billing, "reply": "billing"},
                            {"weight": 1 - billing, "reply": "technical"},
                        ],
                    },
                    {"match": "(?i)hello", "reply": "Hello! How can I help?"},
                ],
            }
        },
    }


INI = "[pytest]\nmodelmigrate_sunset = emu-prod: 2027-03-31\n"


def record_and_replay(pytester: pytest.Pytester, start: Callable[..., Emulator], *args: str) -> Path:
    """Record the incumbent (10 samples a test) as a project commits it, and replay it."""
    start(script(billing=0.95, fingerprint="fp_2026a"), test_triage=TESTS)
    pytester.makeini(INI)
    common = ("--models=emu-prod", "--migration-gate=report", "-p", "no:randomly")
    assert pytester.runpytest(*common, "--samples=10", "--record-mode=once").ret == 0  # report mode
    replay = pytester.runpytest(*common, *args, "--samples=10", "--migration-json=recorded.json")
    assert replay.ret == 0
    return pytester.path / "cassettes"


def live_canary(pytester: pytest.Pytester, tmp_path: Path, *args: str) -> pytest.RunResult:
    """The canary's live run: 5 samples a test into a throw-away cassette folder."""
    return pytester.runpytest(
        *args, "--models=emu-prod", "--migration-gate=report", "-p", "no:randomly", "--samples=5",
        "--record-mode=all", "-o", f"modelmigrate_cassette_dir={tmp_path / 'canary-cassettes'}",
        "--migration-json=live.json",
    )  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("plugin_args", [(), ("-n", "2")], ids=["no-xdist", "n2"])
def test_a_silent_model_update_is_drifted_and_fails_with_the_flag(
    pytester: pytest.Pytester,
    start_emulator: Callable[..., Emulator],
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    plugin_args: tuple[str, ...],
) -> None:
    cassettes = record_and_replay(pytester, start_emulator, *plugin_args)
    committed = snapshot(cassettes)
    # the provider updates the model behind the same name: worse triage, another fingerprint
    start_emulator(script(billing=0.4, fingerprint="fp_2026b"))
    assert live_canary(pytester, tmp_path_factory.mktemp("live"), *plugin_args).ret == 0
    assert snapshot(cassettes) == committed  # the committed cassettes are untouched

    rec, live, md = (str(pytester.path / n) for n in ("recorded.json", "live.json", "canary.md"))
    assert cli.main(["canary", rec, live, "--markdown", md, "--fail-on-drift"]) == 1
    out = capsys.readouterr().out
    assert "triage    drifted: significantly worse live (recorded " in out
    assert "greeting  investigate: new system_fingerprint fp_2026b, outcomes not lower" in out
    assert (
        out.splitlines()[-1]
        == "drift canary (emu-prod): DRIFTED: 1 drifted, 1 investigate, 0 stable (alpha 0.05)"
    )
    assert cli.main(["canary", rec, live]) == 0  # report only
    text = Path(md).read_text()
    assert text.startswith("## Drift canary: emu-prod\n\n❌ **1 prompt(s) drifted** on emu-prod.")
    assert "- system_fingerprint: recorded fp\\_2026a; live fp\\_2026b; new live: fp\\_2026b" in text
    assert "**Sunset:** emu-prod retires on 2027-03-31 (" in text


@pytest.mark.parametrize("seed", [1, 2])
def test_no_change_is_stable_over_new_draws(
    pytester: pytest.Pytester,
    start_emulator: Callable[..., Emulator],
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
    seed: int,
) -> None:
    record_and_replay(pytester, start_emulator)
    # the same model: only the draws differ (another seed), the fingerprint is the same
    start_emulator(script(billing=0.95, fingerprint="fp_2026a", seed=seed))
    live_canary(pytester, tmp_path_factory.mktemp("live"))
    rec, live = (str(pytester.path / n) for n in ("recorded.json", "live.json"))
    assert cli.main(["canary", rec, live, "--fail-on-drift"]) == 0
    out = capsys.readouterr().out
    assert (
        out.splitlines()[-1]
        == "drift canary (emu-prod): STABLE: 0 drifted, 0 investigate, 2 stable (alpha 0.05)"
    )


def test_a_call_budget_bounds_the_live_samples(
    pytester: pytest.Pytester, start_emulator: Callable[..., Emulator], tmp_path: Path
) -> None:
    """--migration-max-calls with a fixed --samples: once spent, every later test takes one sample."""
    start_emulator(script(billing=0.95, fingerprint="fp_2026a"), test_triage=TESTS)
    result = pytester.runpytest(
        "--models=emu-prod", "--migration-gate=report", "-p", "no:randomly", "--samples=5",
        "--migration-max-calls=7", "--record-mode=all", "-o", f"modelmigrate_cassette_dir={tmp_path}",
        "--migration-json=live.json",
    )  # fmt: skip
    assert result.ret == 0
    live = json.loads((pytester.path / "live.json").read_text())
    totals = [o["total"] for o in live["outcomes"]]
    assert totals == [5, 5, 1, 1, 1]  # 5 calls, then 10 (over 7): one sample a test from then on
    assert detect_drift(live, live).verdict == STABLE  # unequal samples are still compared


# -- the weekly workflow in the example project ----------------------------------------------------

WORKFLOW = Path(__file__).resolve().parent.parent / "example_project/.github/workflows/model-canary.yml"


def test_the_canary_workflow_runs_weekly_and_never_writes_the_committed_cassettes() -> None:
    import yaml

    flow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    triggers = flow[True] if True in flow else flow["on"]  # YAML 1.1 reads a bare `on` as True
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    assert len(triggers["schedule"][0]["cron"].split()) == 5
    assert flow["permissions"] == {"contents": "read", "issues": "write"}
    steps = flow["jobs"]["canary"]["steps"]
    by_name = {s.get("name"): s for s in steps}
    recorded = by_name["Replay the incumbent's recordings"]
    live = by_name["Sample the incumbent live"]
    compare = by_name["Compare live with recorded"]
    issue = by_name["Open or update the canary issue"]
    assert "--block-network" in recorded["run"] and "--record-mode" not in recorded["run"]
    assert "--record-mode=all" in live["run"] and "--migration-max-calls=" in live["run"]
    assert 'modelmigrate_cassette_dir="$RUNNER_TEMP/' in live["run"]  # outside the checkout
    # the keys reach the live step only, from the repository's secrets
    assert live["env"]["OPENAI_API_KEY"] == "${{ secrets.OPENAI_API_KEY }}"
    assert all("secrets." not in str(s) for s in steps if s is not live)
    assert "modelmigrate canary canary/recorded.json canary/live.json" in compare["run"]
    assert "--fail-on-drift" in compare["run"] and "--markdown canary/canary.md" in compare["run"]
    assert steps.index(recorded) < steps.index(live) < steps.index(compare) < steps.index(issue)
    assert issue["uses"].startswith("peter-evans/create-issue-from-file@v")
    assert issue["with"]["content-filepath"] == "example_project/canary/canary.md"  # `uses` runs at the root
    assert issue["with"]["issue-number"] == "${{ steps.issue.outputs.number }}"  # one issue, updated
    assert "always()" in issue["if"]
