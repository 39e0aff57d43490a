"""The session object: collects each (test, model)'s outcome and ends the run.

Registered in ``pytest_configure`` and kept in ``config.stash``, with its
:class:`~.runner.Runner`, which runs each (test, model). Each hook body delegates: outcomes
to :class:`~pytest_modelmigrate.results.OutcomeLog`, the end of the run to
:func:`~pytest_modelmigrate.analysis.analyse` (which decides once) and the renderers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..results import PROPERTY, OutcomeLog
from ..settings import RECORD_MODE_DISABLED
from .runner import Runner, model_param

if TYPE_CHECKING:
    from ..analysis import Run
    from ..datasets import Example
    from ..plan import RecordingPlan
    from ..settings import Settings

__all__ = ["MigrationSession", "session_key"]

session_key = pytest.StashKey["MigrationSession"]()


def _verbosity_quiet(config: pytest.Config) -> bool:
    return int(config.getoption("verbose", default=0) or 0) < 0


class RecordingProgress:
    """Calls recorded, spend and rate-limit waits per model, as the records arrive."""

    interval = 10.0  # seconds between progress lines while recording

    def __init__(self) -> None:
        import time

        self.planned: dict[str, int] = {}
        self.models: dict[str, dict[str, float]] = {}
        self._clock = time.monotonic
        self._last = self._clock()

    def add(self, recorded: dict[str, Any]) -> None:
        model = str(recorded.get("model", ""))
        totals = self.models.setdefault(model, {"calls": 0, "cost": 0.0, "waits": 0})
        for key, field in (("calls", "calls"), ("cost_usd", "cost"), ("retried", "waits")):
            value = recorded.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[field] += value

    def due(self) -> bool:
        now = self._clock()
        if not self.models or now - self._last < self.interval:
            return False
        self._last = now
        return True

    def lines(self) -> list[str]:
        lines = []
        for model in sorted(set(self.models) | {m for m, n in self.planned.items() if n}):
            totals = self.models.get(model, {"calls": 0, "cost": 0.0, "waits": 0})
            planned = self.planned.get(model)
            of = f" of ~{planned}" if planned else ""
            waits = int(totals["waits"])
            lines.append(
                f"recording {model}: {int(totals['calls'])}{of} call(s), ${totals['cost']:.4f} spent, "
                f"{waits} rate-limit wait(s)"
            )
        return lines


def _short_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)[:500]
    text = str(report.longrepr).strip().splitlines()
    return text[-1][:500] if text else ""


class MigrationSession:
    """Per-session state and the hooks that need it."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.is_worker = hasattr(config, "workerinput")
        self.log = OutcomeLog([spec.id for spec in settings.registry])
        self.runner = Runner(config, settings)
        self.datasets: dict[tuple[str, str], list[Example]] = {}
        self.other_failures = 0
        self.run: dict[str, Any] | None = None  # the analysed run, as every report reads it
        self.written: list[Path] = []
        self.baseline: dict[str, Any] | None = None
        self.ran: set[str] = set()  # every test reported, for the shard label (--migration-shard)
        self.plan: RecordingPlan | None = None  # what recording will call (--migration-plan)
        self.progress = RecordingProgress()
        if settings.baseline_compare is not None and not self.is_worker:
            from ..baseline import BaselineError, load_run

            try:
                self.baseline = load_run(settings.baseline_compare)
            except BaselineError as exc:
                raise pytest.UsageError(f"--migration-baseline-compare: {exc}") from None

    def pytest_warning_recorded(self, warning_message: Any, when: str) -> None:
        """pytest warns "Unknown config option: modelmigrate_modle"; add which setting was meant."""
        from .options import unknown_ini_hint

        text = str(warning_message.message).strip()
        prefix = "Unknown config option: "
        if when == "config" and text.startswith(prefix + "modelmigrate_"):
            self.config.issue_config_time_warning(
                pytest.PytestConfigWarning(unknown_ini_hint(text[len(prefix) :])), stacklevel=2
            )

    def collected(self, items: list[pytest.Item]) -> None:
        self.log.set_order(item.nodeid for item in items)
        self._refuse_shared_cassettes(items)
        self.runner.plan_adaptive(items)
        settings = self.settings
        if settings.plan or (settings.recording and not self.is_worker and not _verbosity_quiet(self.config)):
            self.plan = self.runner.plan_recording(items)
            # a model with tests that have nothing recorded to estimate from has no honest total
            self.progress.planned = {m.model: round(m.calls) for m in self.plan.models if not m.guessed}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.settings.plan and self.plan is not None and not self.is_worker:
            from ..plan import plan_lines

            reporter = self.config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line("")
                for line in plan_lines(self.plan, dry_run=True):
                    reporter.write_line(line)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        """``--migration-plan``: the plan is printed; nothing runs, nothing is called."""
        return True if self.settings.plan else None

    def _refuse_shared_cassettes(self, items: list[pytest.Item]) -> None:
        """Two tests writing one cassette would overwrite each other's recording: refuse to start."""
        if self.settings.record_mode == RECORD_MODE_DISABLED:
            return
        owner: dict[Path, str] = {}
        for item in items:
            spec = model_param(item)
            if spec is None:
                continue
            path = Path(os.path.normpath(self.runner.cassette_path_of(item, spec)))
            other = owner.setdefault(path, item.nodeid)
            if other != item.nodeid:
                raise pytest.UsageError(
                    f"{other} and {item.nodeid} would share the cassette {path}: recording one would "
                    f"overwrite the other. The ini setting modelmigrate_cassette_dir = "
                    f"{self.settings.cassette_dir!r} puts the cassettes of test files with the same "
                    "name in one folder; use a folder inside each test directory (the default, "
                    "cassettes) or rename one of the test files"
                )

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.log.set_order(ids)

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes the properties out
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        if self.settings.shard is not None:
            self.ran.add(report.nodeid)
        message = _short_message(report) if report.failed and report.longrepr is not None else None
        added = self.log.add(
            nodeid=report.nodeid,
            when=str(report.when),  # "???" for xdist's report of a crashed worker
            outcome=report.outcome,
            wasxfail=hasattr(report, "wasxfail"),
            user_properties=report.user_properties,
            duration=report.duration,
            message=message,
        )
        if added is None:
            self.other_failures += report.failed
            return
        if report.when == "teardown" and self.settings.recording:
            self._progress(added.extra.get("recorded"))
        # The record has been read; pytest keeps every report until the end of the session, so
        # don't let it keep a second copy (model, prompt and checks_failed stay for JUnit XML).
        report.user_properties = [(k, v) for k, v in report.user_properties if k != PROPERTY]

    def _progress(self, recorded: Any) -> None:
        """Count what a (test, model) recorded; now and then, a progress line per model."""
        progress = self.progress
        if isinstance(recorded, dict):
            progress.add(recorded)
        if _verbosity_quiet(self.config) or not progress.due():
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            for line in progress.lines():
                reporter.write_line(line)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        settings = self.settings
        if not settings.registry:
            return []  # installed but unused: say nothing
        models = ", ".join(str(spec) for spec in settings.selected) or "none"
        incumbent = settings.incumbent.id if settings.incumbent else "none"
        if settings.incumbent is not None and settings.compared_incumbent is None:
            incumbent += ", not in this run: nothing is compared"
        samples = "; samples auto" if settings.samples_auto else ""
        samples = samples or (f"; samples {settings.samples}" if settings.samples > 1 else "")
        if settings.shard is not None:
            samples += f"; shard {settings.shard[0]}/{settings.shard[1]}"
        return [
            f"modelmigrate: models {models} (incumbent {incumbent}, from {settings.models_source}); "
            f"record mode {settings.record_mode}{samples}; gate {settings.gate_mode}; "
            f"cassettes in <test dir>/{settings.cassette_dir}/"
        ]

    # -- the end of the session ----------------------------------------------------------------
    def analyse(self) -> Run | None:
        """The run, analysed and decided once (None when no model test ran, unless it is a shard:
        ``modelmigrate merge`` needs every shard's file)."""
        from ..analysis import AdaptiveRun, Shard, analyse, group_tolerances, prompt_flags
        from ..gate import GatePolicy
        from ..gate.recommend import RecommendPolicy

        outcomes = self.log.outcomes()
        settings = self.settings
        if not outcomes and settings.shard is None:
            return None
        policy = GatePolicy(
            mode=settings.gate_mode,
            incumbent=settings.compared_incumbent.id if settings.compared_incumbent else None,
            tolerance=settings.tolerance,
            group_tolerance=group_tolerances(outcomes),
            alpha=settings.alpha,
            power=settings.power,
            min_drop=settings.min_drop,
            margin=settings.margin,
            score_margin=settings.score_margin,
            deterministic=settings.deterministic,
            deterministic_groups=prompt_flags(outcomes, "deterministic"),
        )
        recommend = RecommendPolicy(
            max_cost_ratio=settings.max_cost_ratio,
            max_latency_ratio=settings.max_latency_ratio,
            min_gain=settings.min_gain,
            sunset={model: day.isoformat() for model, day in settings.sunset.items()},
            horizon_days=settings.sunset_horizon_days,
            blocking=prompt_flags(outcomes, "blocking"),
        )
        adaptive = None
        runner = self.runner
        if runner.adaptive is not None:
            adaptive = AdaptiveRun(runner.adaptive, runner.calls_recorded, runner.budget_exhausted)
        run = analyse(
            outcomes,
            models=settings.selected or settings.registry,
            incumbent=settings.compared_incumbent.id if settings.compared_incumbent else None,
            policy=policy,
            record_mode=settings.record_mode,
            samples=settings.samples,
            prices=settings.prices,
            baseline=self.baseline,
            adaptive=adaptive,
            shard=Shard(*settings.shard, tuple(sorted(self.ran))) if settings.shard else None,
            incumbent_absent=settings.incumbent is not None and settings.compared_incumbent is None,
            recommend=recommend,
        )
        self.config.hook.pytest_modelmigrate_run(config=self.config, run=run)
        return run

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            return
        run = self.analyse()
        if run is None:
            return
        self.run = run.to_dict(self.runner.scrubber)
        judged = session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        if judged and run.decision is not None:
            status = run.decision.exit_status(
                tests_failed=session.exitstatus == pytest.ExitCode.TESTS_FAILED,
                other_failures=self.other_failures,
            )
            session.exitstatus = pytest.ExitCode(status)
        self._write_reports(self.run)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        if self.is_worker or self.run is None:
            return
        from ..reports.text import text_lines

        if self.settings.recording and self.progress.models and not _verbosity_quiet(config):
            terminalreporter.section("recording")
            for line in self.progress.lines():
                terminalreporter.write_line(line)
        terminalreporter.section("model migration matrix")
        verbose = int(config.getoption("verbose", default=0) or 0) > 0
        lines = text_lines(self.run, max_tests=None) if verbose else text_lines(self.run)
        gate = self.run.get("gate")
        passed = bool(gate.get("passed")) if isinstance(gate, dict) else True
        for line in lines[:-1]:
            terminalreporter.write_line(line)
        terminalreporter.write_line(lines[-1], green=passed, red=not passed, bold=True)
        for path in self.written:
            terminalreporter.write_line(f"migration report written: {path}")

    def _write_reports(self, run: dict[str, Any]) -> None:
        from ..reports.writers import ReportWriteError, write_reports

        settings = self.settings
        targets = [
            ("--migration-json", settings.json_path, "json"),
            ("--migration-markdown", settings.markdown_path, "markdown"),
            ("--migration-html", settings.html_path, "html"),
            ("--migration-baseline-save", settings.baseline_save, "baseline"),
        ]
        try:
            self.written.extend(write_reports(run, targets))
        except ReportWriteError as exc:
            raise pytest.UsageError(str(exc)) from None
