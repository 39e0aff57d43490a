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
    from collections.abc import Sequence

    from ..analysis import Run
    from ..datasets import Example
    from ..models import ModelSpec
    from ..plan import RecordingPlan
    from ..replay import NetworkGuard
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


def _foreign_model_snapshots(items: list[pytest.Item], registry: Sequence[ModelSpec]) -> list[str]:
    """Folders ``__snapshots__/<model>/<module>/`` beside these tests' modules whose model this
    run does not know: ``snapshot_model``'s layout, for a model given on another run's --models."""
    from ..snapshots import safe_dirname

    known = {safe_dirname(spec.id) for spec in registry}
    found: dict[str, None] = {}
    for folder, modules in _modules_by_folder(items).items():
        snapshots = folder / "__snapshots__"
        if not snapshots.is_dir():
            continue
        for child in sorted(snapshots.iterdir()):
            if child.name not in known and child.is_dir() and any((child / m).is_dir() for m in modules):
                found[child.name] = None
    return list(found)


def _modules_by_folder(items: list[pytest.Item]) -> dict[Path, set[str]]:
    folders: dict[Path, set[str]] = {}
    for item in items:
        path = Path(item.path)
        folders.setdefault(path.parent, set()).add(path.stem)
    return folders


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
        self.guard: NetworkGuard | None = None  # replay: no connection leaves the machine
        self._keys: dict[str, str | None] = {}  # replay: the SDK key variables given a placeholder
        self.snapshot_notice: str | None = None  # what was changed in syrupy's rule, and why
        self.check_report_targets()
        if settings.baseline_compare is not None and not self.is_worker:
            from ..baseline import BaselineError, load_run

            try:
                self.baseline = load_run(settings.baseline_compare)
            except BaselineError as exc:
                raise pytest.UsageError(f"--migration-baseline-compare: {exc}") from None

    # -- replay: nothing leaves the machine, no key is needed ----------------------------------
    def start(self) -> None:
        """In replay, give the SDKs a placeholder key and refuse connections to other machines
        for the whole session (not only inside a model's cassette)."""
        settings = self.settings
        if not settings.registry or not settings.replaying:
            return  # installed but unused, or recording: the process is left as it is
        from ..replay import NetworkGuard, placeholder_keys

        self._keys = placeholder_keys(os.environ)
        if not settings.allow_network:
            self.guard = NetworkGuard(settings.allowed_hosts, rootdir=str(self.config.rootpath))
            self.guard.install()

    def stop(self) -> None:
        from ..replay import restore_keys

        if self.guard is not None:
            self.guard.uninstall()
            self.guard = None
        restore_keys(os.environ, self._keys)
        self._keys = {}
        # the reports are written and shown: let the run and its outcomes go before pytest's
        # last garbage collections walk them (five full ones, at the end of every session)
        self.run = None
        self.log = OutcomeLog(self.log.model_ids)

    def _phase(self, item: pytest.Item, phase: str) -> None:
        if self.guard is not None:
            self.guard.where = f"in the {phase} of {item.nodeid}"

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self._phase(item, "setup")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> None:
        self._phase(item, "call")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        self._phase(item, "teardown")

    def pytest_runtest_logfinish(self) -> None:
        if self.guard is not None:
            self.guard.where = "outside any test (at collection or in a session hook)"

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
        self._keep_other_models_snapshots(items)
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
        owner: dict[str, str] = {}
        for item in items:
            spec = model_param(item)
            if spec is None:
                continue
            path = os.path.normpath(self.runner.cassette_path_of(item, spec))
            other = owner.setdefault(path, item.nodeid)
            if other != item.nodeid:
                raise pytest.UsageError(
                    f"{other} and {item.nodeid} would share the cassette {path}: recording one would "
                    f"overwrite the other. The ini setting modelmigrate_cassette_dir = "
                    f"{self.settings.cassette_dir!r} puts the cassettes of test files with the same "
                    "name in one folder; use a folder inside each test directory (the default, "
                    "cassettes) or rename one of the test files"
                )

    # -- syrupy: the snapshots of models not in the run are neither deleted nor failed ----------
    _SNAPSHOT_NOTICE = (
        "snapshots: {what} for this run: a test uses syrupy's plain `snapshot` fixture, whose "
        "scan of __snapshots__/ takes the snapshots of models this run does not know ({models}: "
        "the models were given only with --models) for obsolete files. Name every model in the "
        "ini setting modelmigrate_models to keep syrupy's usual rule"
    )

    def _keep_other_models_snapshots(self, items: list[pytest.Item]) -> None:
        option = self.config.option
        if getattr(option, "update_snapshots", None) is None:
            return  # syrupy is not installed
        settings = self.settings
        if settings.models_source != "--models" or len(settings.registry) > len(settings.selected):
            return  # every model the ini knows is parametrized over: syrupy sees them skipped
        plain = {Path(item.path).parent for item in items if "snapshot" in getattr(item, "fixturenames", ())}
        foreign = _foreign_model_snapshots(
            [item for item in items if Path(item.path).parent in plain], settings.registry
        )
        if foreign:
            self._syrupy_spares(", ".join(foreign))

    def _syrupy_spares(self, models: str) -> None:
        option = self.config.option
        if option.update_snapshots:
            option.no_cleanup = True
            what = "syrupy's cleanup of unused snapshots is off (as with --snapshot-no-cleanup)"
        else:
            option.warn_unused_snapshots = True
            what = "unused snapshots warn instead of failing (as with --snapshot-warn-unused)"
        self.snapshot_notice = self._SNAPSHOT_NOTICE.format(what=what, models=models)
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:  # the controller reports the snapshots: tell it
            workeroutput["modelmigrate_syrupy_spares"] = models

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        models = (getattr(node, "workeroutput", None) or {}).get("modelmigrate_syrupy_spares")
        if models and self.snapshot_notice is None:
            self._syrupy_spares(str(models))

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
            min_dataset_examples=settings.min_dataset_examples,
        )
        self.config.hook.pytest_modelmigrate_run(config=self.config, run=run)
        return run

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            return
        from ..analysis import gc_paused

        with gc_paused():
            self._finish(session)

    def _finish(self, session: pytest.Session) -> None:
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
        if self.guard is not None and self.guard.refused:
            # the SDKs' own summary line reads "Connection error.": say what was refused, and where
            terminalreporter.section("network refused during replay")
            for line in dict.fromkeys(self.guard.refused):
                terminalreporter.write_line(line)
        if self.snapshot_notice is not None and not self.is_worker:
            terminalreporter.write_line(self.snapshot_notice, yellow=True)
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

    def _report_targets(self) -> list[tuple[str, Path | None, str]]:
        settings = self.settings
        return [
            ("--migration-json", settings.json_path, "json"),
            ("--migration-markdown", settings.markdown_path, "markdown"),
            ("--migration-html", settings.html_path, "html"),
            ("--migration-baseline-save", settings.baseline_save, "baseline"),
        ]

    def check_report_targets(self) -> None:
        """Refuse a report path that would overwrite an input or is a folder before any test runs,
        not after an hour of recording (the run's cassettes are checked again when writing)."""
        if self.is_worker:
            return
        from ..reports.writers import ReportWriteError, check_report_targets

        inputs = [(self.settings.baseline_compare, "the baseline (--migration-baseline-compare)")]
        try:
            check_report_targets(self._report_targets(), [(p, w) for p, w in inputs if p is not None])
        except ReportWriteError as exc:
            raise pytest.UsageError(str(exc)) from None

    def _write_reports(self, run: dict[str, Any]) -> None:
        from ..reports.writers import ReportWriteError, write_reports

        settings = self.settings
        targets = self._report_targets()
        try:
            self.written.extend(write_reports(run, targets))
        except ReportWriteError as exc:
            raise pytest.UsageError(str(exc)) from None
        if settings.history_path is not None and settings.shard is None:
            from ..history import DuplicateRunError, HistoryError, append_entry, entry_from_run

            try:
                append_entry(settings.history_path, entry_from_run(run, root=self.config.rootpath))
                self.written.append(settings.history_path)
            except DuplicateRunError:
                pass  # the same run (same second, same outcomes) is there already
            except (HistoryError, OSError) as exc:
                raise pytest.UsageError(f"--migration-history: {exc}") from None
