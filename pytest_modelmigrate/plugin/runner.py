"""Running one (test, model): its cassette, its samples, its record for the controller.

:class:`Runner` is registered beside the session; the ``model`` fixture calls
:meth:`Runner.run_with_cassette`. Per-(test, model) state lives in a
:class:`~pytest_modelmigrate.recording.Recording` in the item's stash.
"""

from __future__ import annotations

import functools
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from ..cassettes import CassetteMiss
from ..models import ModelSpec
from ..recording import Recording
from ..results import PROPERTY, default_group, split_model_id
from ..settings import RECORD_MODE_DISABLED, Settings, SettingsError, adaptive_policy, positive_int

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

    from ..cassettes import VcrSession
    from ..plan import RecordingPlan
    from ..ratelimit import RateLimiter
    from ..scrub import Scrubber

__all__ = ["Runner", "model_param", "recording_key"]

recording_key = pytest.StashKey[Recording]()
_marks_key = pytest.StashKey[dict[str, Any]]()


def _closest(item: pytest.Item, name: str) -> Any:
    """``item.get_closest_marker(name)``, from one walk over the item's markers (a (test, model)
    asks for seven of them as it starts)."""
    marks = item.stash.get(_marks_key, None)
    if marks is None:
        marks = {}
        for mark in item.iter_markers():  # the closest first
            marks.setdefault(mark.name, mark)
        item.stash[_marks_key] = marks
    return marks.get(name)


T = TypeVar("T")


def model_param(item: pytest.Item) -> ModelSpec | None:
    callspec = getattr(item, "callspec", None)
    value = callspec.params.get("model") if callspec is not None else None
    return value if isinstance(value, ModelSpec) else None


def _without(nodeid: str, param_id: str) -> str:
    split = split_model_id(nodeid, [param_id])
    return split[0] if split else nodeid


def _record_command(nodeid: str, spec: ModelSpec, mode: str, samples: str | None = None) -> str:
    """The command that records just this (test, model): the node id selects it alone."""
    sampled = f" --samples={samples}" if samples is not None else ""
    return f"pytest {shlex.quote(nodeid)} --models={shlex.quote(str(spec))}{sampled} --record-mode={mode}"


def _relative(path: Path, root: Path | os.PathLike[str]) -> str:
    text, prefix = str(path), str(root).rstrip("/\\")
    if text.startswith(prefix) and text[len(prefix) : len(prefix) + 1] in ("/", "\\"):
        rest = text[len(prefix) + 1 :]  # what relative_to gives, without its cost
        return rest if os.sep == "/" else Path(rest).as_posix()  # a Path's text is normalised already
    try:
        return Path(path).relative_to(Path(root)).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _iterable(value: Any) -> list[Any]:
    try:
        return list(value)
    except TypeError:
        return [value]


PROMPT_KEYS = (
    "purpose",
    "sensitivities",
    "tolerance",
    "version",
    "rationale",
    "target_model",
    "deterministic",
    "blocking",
)


def _evidence_of(item: pytest.Item) -> dict[str, Any] | None:
    """``@pytest.mark.evidence(cluster="customer-42", weight=2)``: what the test's evidence shares
    with others (its cluster) and how much it counts in its group's paired drop (its weight)."""
    mark = _closest(item, "evidence")
    if mark is None:
        return None
    unknown = sorted(set(mark.kwargs) - {"cluster", "weight"})
    cluster, weight = mark.kwargs.get("cluster"), mark.kwargs.get("weight", 1.0)
    if (
        mark.args
        or unknown
        or (cluster is not None and not isinstance(cluster, (str, int)))
        or isinstance(cluster, bool)
        or isinstance(weight, bool)
        or not isinstance(weight, (int, float))
        or not 0 < weight < float("inf")
    ):
        pytest.fail(
            f"{item.nodeid}: @pytest.mark.evidence takes cluster= (a string: the source document, "
            "customer or conversation the test shares with others) and weight= (a positive number), "
            "e.g. @pytest.mark.evidence(cluster='customer-42', weight=2)",
            pytrace=False,
        )
    found: dict[str, Any] = {"weight": float(weight)}
    if cluster is not None:
        found["cluster"] = str(cluster)
    return found


def _regression_case(item: pytest.Item) -> dict[str, Any] | None:
    """``@pytest.mark.regression_case("4 bullets on gpt-4.1", fixed_in="v3")``: a past failure
    this test guards against (the migration document lists these per prompt)."""
    mark = _closest(item, "regression_case")
    if mark is None:
        return None
    what = mark.args[0] if mark.args else mark.kwargs.get("description")
    unknown = sorted(set(mark.kwargs) - {"description", "fixed_in"})
    if not isinstance(what, str) or not what.strip() or unknown or len(mark.args) > 1:
        pytest.fail(
            f"{item.nodeid}: @pytest.mark.regression_case needs what went wrong first, and only "
            "fixed_in= besides, e.g. @pytest.mark.regression_case('4 bullets on gpt-4.1', fixed_in='v3')",
            pytrace=False,
        )
    case: dict[str, Any] = {"description": what.strip()}
    if mark.kwargs.get("fixed_in") is not None:
        case["fixed_in"] = str(mark.kwargs["fixed_in"])
    return case


def _prompt_of(item: pytest.Item, test: str) -> tuple[str, dict[str, Any]]:
    """The prompt group and its description from ``@pytest.mark.prompt`` (the module otherwise)."""
    mark = _closest(item, "prompt")
    if mark is None:
        return default_group(test), {}
    if not mark.args or not isinstance(mark.args[0], str):
        pytest.fail(
            f"{item.nodeid}: @pytest.mark.prompt needs the prompt's name first, "
            'e.g. @pytest.mark.prompt("ticket-triage", purpose="...")',
            pytrace=False,
        )
    group = mark.args[0]
    unknown = sorted(set(mark.kwargs) - set(PROMPT_KEYS))
    if unknown:
        pytest.fail(
            f"{item.nodeid}: @pytest.mark.prompt got unknown argument(s) {unknown}; "
            "use purpose='...', sensitivities=['...'], tolerance=0.05, version='v3', "
            "rationale='...', target_model='gpt-5', deterministic=True or blocking=True",
            pytrace=False,
        )
    for key in ("deterministic", "blocking"):
        if key in mark.kwargs and not isinstance(mark.kwargs[key], bool):
            pytest.fail(
                f"{item.nodeid}: @pytest.mark.prompt({key}={mark.kwargs[key]!r}) must be True or False",
                pytrace=False,
            )
    for key in ("purpose", "rationale", "target_model", "version"):
        value = mark.kwargs.get(key)
        if (value is not None and not isinstance(value, (str, int))) or isinstance(value, bool):
            pytest.fail(
                f"{item.nodeid}: @pytest.mark.prompt({key}={value!r}) must be a string",
                pytrace=False,
            )
    sensitivities = mark.kwargs.get("sensitivities", [])
    if isinstance(sensitivities, str) or not all(isinstance(x, str) for x in _iterable(sensitivities)):
        pytest.fail(
            f"{item.nodeid}: @pytest.mark.prompt(sensitivities={sensitivities!r}) must be a list of "
            "strings, e.g. sensitivities=['label set', 'JSON only']",
            pytrace=False,
        )
    prompt: dict[str, Any] = {"name": group}
    for key in PROMPT_KEYS:
        if key in mark.kwargs and mark.kwargs[key] is not None:
            value = mark.kwargs[key]
            prompt[key] = list(value) if key == "sensitivities" else str(value) if key == "version" else value
    tolerance = prompt.get("tolerance")
    if "tolerance" in prompt and not (
        isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool) and 0 <= tolerance < 1
    ):
        pytest.fail(
            f"{item.nodeid}: @pytest.mark.prompt(tolerance={tolerance!r}) must be a pass-rate drop "
            "from 0 to below 1, e.g. tolerance=0.05",
            pytrace=False,
        )
    return group, prompt


class Runner:
    """Opens each (test, model)'s cassette, runs its samples and publishes its record."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.adaptive = adaptive_policy(settings)
        self.adaptive_targets: dict[str, int] = {}
        # samples each (test, model)'s cassette holds, as read when planning adaptive sampling
        self.recorded_samples: dict[tuple[str, str], int] = {}
        self.calls_recorded = 0
        self.cost_recorded = 0.0
        self.budget_exhausted = False
        # "host:port" an emulator of this process listens on -> the fixed one it is recorded as
        self.port_aliases: dict[str, str] = {}
        self._vcr: VcrSession | None = None
        self._cassette_paths: dict[tuple[str, str, str], Path] = {}
        self._cassette_folders: dict[tuple[str, str], Path] = {}  # per test module and model
        self._vcr_configs: dict[tuple[int, str, int], tuple[Any, Any]] = {}

    @functools.cached_property
    def scrubber(self) -> Scrubber:
        from ..scrub import Scrubber

        headers = list(self.settings.secret_headers)
        return Scrubber.from_settings(
            extra_request_headers=headers,
            extra_response_headers=headers,
            extra_variables=list(self.settings.secret_env),
        )

    @functools.cached_property
    def rate_limiter(self) -> RateLimiter:
        """``modelmigrate_record_rpm``: this process's share of each provider's limit."""
        import os

        from ..ratelimit import RateLimiter

        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
        return RateLimiter(self.settings.record_rpm, workers=workers)

    def _before_send(self, request: Any) -> None:
        from ..ratelimit import provider_of

        host = str(getattr(request, "host", "") or "")
        self.rate_limiter.wait(host, provider_of(host, getattr(request, "path", "")))

    @functools.cached_property
    def snapshot_extension(self) -> type[Any]:
        """``snapshot_model``'s syrupy extension, scrubbing with this session's scrubber."""
        from ..snapshots import ModelSnapshotExtension

        return ModelSnapshotExtension.with_scrubber(self.scrubber)

    @functools.cached_property
    def parse_cache(self) -> Path | None:
        """Where parsed cassettes are kept between runs (None: -p no:cacheprovider, or turned off)."""
        cache = getattr(self.config, "cache", None)
        if cache is None or not self.settings.parse_cache:
            return None
        try:
            folder: Path = cache.mkdir("modelmigrate-cassettes")
        except OSError:
            return None  # a read-only checkout: parse every time
        return folder

    def _cassette_path(self, item: pytest.Item, test: str, spec: ModelSpec, *, keep: bool = True) -> Path:
        """The cassette's path; kept for the next ask unless ``keep`` is false (the (test, model)
        starting: its recording holds the path from then on)."""
        key = (str(item.path), test, spec.id)
        path = self._cassette_paths.get(key) if keep else self._cassette_paths.pop(key, None)
        if path is None:  # asked at collection (shared cassettes, adaptive plan), then per test
            from ..cassettes import cassette_file_name, cassette_folder

            where = (key[0], spec.id)
            folder = self._cassette_folders.get(where)
            if folder is None:
                folder = cassette_folder(Path(key[0]), spec.id, folder=self.settings.cassette_dir)
                self._cassette_folders[where] = folder
            name = test.split("::", 1)[1] if "::" in test else test
            path = folder / cassette_file_name(name)
            if keep:
                self._cassette_paths[key] = path
        return path

    def cassette_path_of(self, item: pytest.Item, spec: ModelSpec) -> Path:
        """Where the (test, model)'s cassette lives (a dataset example keeps its own)."""
        return self._cassette_path(item, _without(item.nodeid, spec.id), spec)

    # -- collection --------------------------------------------------------------------------
    def plan_adaptive(self, items: list[pytest.Item]) -> None:
        """Decide, from the samples earlier runs recorded, how many rounds each test takes now."""
        from ..adaptive import plan_samples
        from ..cassettes import read_sample_outcomes

        settings = self.settings
        if settings.compared_incumbent is None or self.adaptive is None:
            return
        recorded: dict[str, dict[str, list[str]]] = {}
        groups: dict[str, str] = {}
        for item in items:
            spec = model_param(item)
            if spec is None:
                continue
            test = _without(item.nodeid, spec.id)
            mark = item.get_closest_marker("prompt")
            groups[test] = str(mark.args[0]) if mark is not None and mark.args else default_group(test)
            path = self._cassette_path(item, test, spec)
            outcomes = read_sample_outcomes(path)
            recorded.setdefault(test, {})[spec.id] = outcomes
            self.recorded_samples[(test, spec.id)] = len(outcomes)
        incumbent = settings.compared_incumbent
        candidates = [s.id for s in settings.selected if s.id != incumbent.id]
        plan = plan_samples(
            recorded,
            groups,
            incumbent.id,
            candidates,
            self.adaptive,
            recording=settings.recording,
            batch=settings.samples_batch,
        )
        self.adaptive_targets = dict(plan.targets)

    def plan_recording(self, items: list[pytest.Item]) -> RecordingPlan:
        """What recording ``items`` will call, estimated from their cassettes (``--migration-plan``)."""
        from ..plan import PlannedTest, new_samples, plan_recording, read_episodes

        settings = self.settings
        incumbent = settings.incumbent
        planned: list[PlannedTest] = []
        read: dict[Path, tuple[int, list[list[dict[str, Any]]]] | None] = {}

        def episodes(path: Path) -> tuple[int, list[list[dict[str, Any]]]] | None:
            if path not in read:
                read[path] = read_episodes(path)
            return read[path]

        for item in items:
            spec = model_param(item)
            if spec is None:
                continue
            test = _without(item.nodeid, spec.id)
            path = self._cassette_path(item, test, spec)
            samples = self._samples_for(item, test, spec)
            own = episodes(path)
            recorded = None if own is None else len(own[1])
            reference, source = (own[1], "own") if own and any(own[1]) else ([], "")
            others = [s for s in settings.registry if s.id != spec.id]
            if incumbent is not None and incumbent in others:
                others.remove(incumbent)
                others.insert(0, incumbent)
            for other in others if not reference else ():
                theirs = episodes(path.parent.parent / other.id / path.name)
                if theirs and any(theirs[1]):
                    reference = theirs[1]
                    source = "incumbent" if other == incumbent else "other"
                    break
            planned.append(
                PlannedTest(
                    nodeid=item.nodeid,
                    test=test,
                    model=spec.id,
                    model_name=spec.name,
                    samples=samples,
                    recorded=recorded,
                    new=new_samples(settings.record_mode, samples, recorded),
                    reference=reference,
                    source=source,
                )
            )
        return plan_recording(
            planned,
            settings.selected_ids or [s.id for s in settings.registry],
            record_mode=settings.record_mode,
            prices=settings.prices,
            model_names={s.id: s.name for s in settings.registry},
        )

    # -- running one (test, model) -----------------------------------------------------------
    def _samples_for(self, item: pytest.Item, cassette_test: str, spec: ModelSpec) -> int:
        samples = self.settings.samples
        if self.adaptive is not None:
            samples = self.adaptive_targets.get(cassette_test, self.adaptive.min_samples)
            # every sample the cassette holds is evidence, in the recording run and in its
            # replay alike, so both decide on the same outcomes (rewrite starts afresh)
            have = self.recorded_samples.get((cassette_test, spec.id), 0)
            if not self.settings.recording:
                samples = max(have, 1)
            elif self.settings.record_mode not in ("rewrite", "all"):
                samples = max(samples, have)
        mark = _closest(item, "samples")
        if mark is not None:
            try:
                samples = positive_int(str(mark.args[0]) if mark.args else "", "@pytest.mark.samples")
            except SettingsError as exc:
                pytest.fail(f"{item.nodeid}: {exc}", pytrace=False)
        history = self.settings.incumbent_samples
        if history is not None and self.adaptive is None and spec == self.settings.incumbent:
            samples = max(samples, history)  # the incumbent's longer history: more power, same candidate cost
        return samples

    def start(self, request: pytest.FixtureRequest, spec: ModelSpec) -> Recording:
        """The (test, model)'s recording, in the item's stash and published (a crash still places it)."""
        item = request.node
        # each dataset example keeps its own cassette; only the matrix row drops the example id
        cassette_test = test = _without(item.nodeid, spec.id)
        callspec = getattr(item, "callspec", None)
        example = callspec.params.get("example") if callspec is not None else None
        if example is not None and _closest(item, "dataset") is not None:
            test = _without(test, str(example.id))
        group, prompt = _prompt_of(item, test)
        cassette = None
        if self.settings.record_mode != RECORD_MODE_DISABLED:
            cassette = self._cassette_path(item, cassette_test, spec, keep=False)
        recording = Recording(
            spec=spec,
            test=test,
            group=group,
            cassette=cassette,
            cassette_rel=_relative(cassette, self.config.rootpath) if cassette is not None else None,
            incumbent=self.settings.incumbent,
            prompt=prompt,
            example=example,
            had_cassette=cassette is not None and cassette.exists(),
        )
        item.stash[recording_key] = recording
        # published first: a bad marker errors the test inside its prompt group
        recording.regression_case = _regression_case(item)
        recording.evidence = _evidence_of(item)
        variant = callspec.params.get("prompt_variant") if callspec is not None else None
        if variant is not None and hasattr(variant, "record"):
            recording.variant = variant.record(_without(test, variant.name))
        direction = callspec.params.get("modelmigrate_rollback_direction") if callspec is not None else None
        if direction is not None:
            recording.rollback = str(direction[0])
        mark = _closest(item, "dataset")
        if mark is not None:
            kept = {k: mark.kwargs[k] for k in ("labels", "min_accuracy") if k in mark.kwargs}
            recording.dataset_settings = {k: list(v) if k == "labels" else v for k, v in kept.items()}
            if mark.args:
                recording.dataset_settings["file"] = str(mark.args[0])  # named in the evidence flags
        self._publish(item, recording)
        recording.samples = self._samples_for(item, cassette_test, spec)
        return recording

    def record(self, request: pytest.FixtureRequest, recording: Recording, value: T) -> Iterator[T]:
        """``value`` (what the fixture gives the test), with the recording's cassette open (record
        or replay) while the test runs."""
        if recording.cassette is None:
            yield value
            return
        yield from self._with_cassette(request, request.node, recording, recording.cassette, value)

    def _user_vcr_config(self, request: pytest.FixtureRequest, item: pytest.Item) -> dict[str, Any]:
        """pytest-recording's ``vcr_config`` fixture, then ``@pytest.mark.vcr`` kwargs (closest wins)."""
        config: dict[str, Any] = {}
        config.update(self._vcr_config_fixture(request, item) or {})
        for mark in reversed(list(item.iter_markers("vcr"))):
            config.update(mark.kwargs)
        return config

    def _vcr_config_fixture(self, request: pytest.FixtureRequest, item: pytest.Item) -> Any:
        """The value of the ``vcr_config`` fixture that applies to ``item`` (None: there is none).

        Asking pytest for it costs more than the rest of opening a cassette with no request, so
        pytest-recording's own (function-scoped, always ``{}``) is not asked for, and the value
        of a session, module or class-scoped one is kept for the items of its scope: pytest would
        give them that very value. Any other is asked for each item, as pytest-recording does.
        """
        try:
            definitions = request._fixturemanager.getfixturedefs("vcr_config", item)
        except (AttributeError, TypeError):  # another pytest's private API: ask pytest for it
            definition, scope = None, "function"
        else:
            if not definitions:
                return None  # no such fixture: asking would raise (and format) a FixtureLookupError
            definition = definitions[-1]  # the closest one overrides the others
            function = getattr(definition, "func", None)
            if getattr(function, "__module__", "") == "pytest_recording.plugin":
                return None  # pytest-recording's own default: an empty dict, for every test
            scope = str(getattr(definition, "scope", "function"))
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "vcr_config" in callspec.params:
            scope = "function"  # parametrized: one value per parameter
        owners = {
            "session": None,
            "module": getattr(item, "module", None),
            "class": getattr(item, "cls", None),
        }
        owner = owners.get(scope)
        key = (id(definition), scope, id(owner)) if scope in owners and definition is not None else None
        if key is not None and key in self._vcr_configs:
            return self._vcr_configs[key][1]
        try:
            value = request.getfixturevalue("vcr_config")
        except pytest.FixtureLookupError:
            return None
        if key is not None:
            self._vcr_configs[key] = (owner, value)  # the owner kept alive: its id stays its own
        return value

    def _vcr_session(self) -> VcrSession:
        """vcrpy set up once for the session: pytest-recording's ``pytest_recording_configure``
        hook is called once, with the one VCR every cassette is opened from."""
        if self._vcr is None:
            from ..cassettes import VcrSession

            hook = getattr(self.config.hook, "pytest_recording_configure", None)

            def configure(vcr: Any) -> None:
                if hook is not None:
                    hook(config=self.config, vcr=vcr)

            self._vcr = VcrSession(configure)
        return self._vcr

    def _with_cassette(
        self, request: pytest.FixtureRequest, item: pytest.Item, recording: Recording, path: Path, value: T
    ) -> Generator[T, None, None]:
        from ..cassettes import CassetteReadError, open_cassette
        from ..files import WriteError
        from ..scrub import SecretInCassetteError

        mode = self.settings.record_mode
        sampled = None
        if self.adaptive is not None:
            sampled = "auto"
        elif recording.samples > 1:
            sampled = str(recording.samples)
        hint = _record_command(
            item.nodeid, recording.spec, "rewrite" if recording.had_cassette else "once", sampled
        )
        topup = _record_command(item.nodeid, recording.spec, "new_episodes", sampled or "1")
        problem = ""
        try:
            with open_cassette(
                path,
                record_mode=mode,
                scrubber=self.scrubber,
                user_config=self._user_vcr_config(request, item),
                miss_hint=hint,
                vcr_session=self._vcr_session(),
                parse_cache=self.parse_cache,
                aliases=self.port_aliases,
                samples=recording.samples,
                topup_hint=topup,
                record_errors=_closest(item, "record_provider_errors") is not None,
                match_ignore=self.settings.match_ignore,
                before_send=self._before_send if self.settings.record_rpm else None,
            ) as cassette:
                recording.session = cassette
                yield value
                if recording.sample_outcomes:
                    cassette.metadata = {"samples": list(recording.sample_outcomes)}
                if mode != "none" and not recording.call_done:
                    # interrupted (Ctrl-C) or a fixture failed before the test ran: keep the old file
                    cassette.discard = True
        except (CassetteReadError, SecretInCassetteError) as exc:
            problem = f"{item.nodeid}: {exc}"
        except WriteError as exc:
            # a full disk or a read-only folder after the calls were made (and paid for): this
            # (test, model) errors with what to do, and the run goes on to the next
            problem = (
                f"{item.nodeid}: the recording could not be saved: {exc}. The calls were made; "
                f"make room (or make the folder writable) and record it again: {hint}"
            )
        if problem:
            pytest.fail(problem, pytrace=False)

    # -- sampling ------------------------------------------------------------------------------
    def _budget_spent(self, index: int) -> bool:
        """Recording: no new sample once the call or dollar budget is used (the first always runs)."""
        settings = self.settings
        if not self._budgeted or not settings.recording or index == 0:
            return False
        over_calls = settings.max_calls is not None and self.calls_recorded >= settings.max_calls
        over_cost = settings.budget_usd is not None and self.cost_recorded >= settings.budget_usd
        self.budget_exhausted = self.budget_exhausted or over_calls or over_cost
        return over_calls or over_cost

    @property
    def _budgeted(self) -> bool:
        """Recorded calls are counted: --samples=auto, or a call or dollar budget (the drift canary)."""
        settings = self.settings
        return self.adaptive is not None or settings.max_calls is not None or settings.budget_usd is not None

    def _cost(self, calls: list[dict[str, Any]], model: str) -> float:
        from ..metrics import price_for_call

        total = 0.0
        names = {s.id: s.name for s in self.settings.registry}
        for call in calls if self.settings.prices else ():
            price = price_for_call(call, model, self.settings.prices, names)
            usage = call.get("usage") or {}
            cost = (
                price.cost(
                    input_tokens=usage.get("input_tokens"),
                    output_tokens=usage.get("output_tokens"),
                    cached_input_tokens=usage.get("cached_input_tokens"),
                )
                if price is not None
                else None
            )
            total += cost or 0.0
        return total

    def _count_recorded(self, recording: Recording) -> None:
        new = recording.new_recorded_calls()
        self.calls_recorded += len(new)
        self.cost_recorded += self._cost(new, recording.spec.id)

    def _recorded_summary(self, recording: Recording) -> dict[str, Any] | None:
        """What this (test, model) sent to the provider: for the progress lines and run.json."""
        session = recording.session
        if session is None or session.record_mode == "none" or not (session.recorded or session.retried):
            return None
        new = recording.calls[-session.recorded :] if session.recorded else []
        return {
            "model": recording.spec.id,
            "calls": session.recorded + session.retried,
            "cost_usd": round(self._cost(new, recording.spec.id), 6),
            "retried": session.retried,
        }

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Run a test ``samples`` times in one item; each sample's calls are episodes of one cassette."""
        recording = pyfuncitem.stash.get(recording_key, None)
        if recording is None or (recording.samples <= 1 and self.adaptive is None):
            return None
        import inspect

        function = pyfuncitem.obj
        if inspect.iscoroutinefunction(function):
            pytest.fail(
                f"{pyfuncitem.nodeid}: samples > 1 needs a plain (not async) test function; "
                "call your async code with asyncio.run() inside it",
                pytrace=False,
            )
        names = [n for n in inspect.signature(function).parameters if n in pyfuncitem.funcargs]
        kwargs = {name: pyfuncitem.funcargs[name] for name in names}
        problems: list[str] = []
        self._draw_concurrently(pyfuncitem, function, kwargs, recording)
        recording.sample_starts.clear()
        for index in range(recording.samples):
            if self._budget_spent(index):
                break
            recording.sample_starts.append(len(recording.collector.results) if recording.collector else 0)
            if recording.session is not None:
                recording.session.sample = index  # replays from, and records into, episode ``index``
            problem = self._run_sample(function, kwargs, recording)
            recording.sample_outcomes.append("failed" if problem else "passed")
            if problem:
                problems.append(f"sample {index + 1}: {problem}")
        if self._budgeted:
            self._count_recorded(recording)
        if problems:
            shown = "\n".join(f"  {p}" for p in problems[:10])
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            pytest.fail(
                f"{len(problems)} of {recording.samples} samples failed on "
                f"{recording.spec.id}:\n{shown}{more}",
                pytrace=False,
            )
        return True

    # fixtures whose state counts the assertions of a test (syrupy numbers each snapshot)
    _ORDERED_FIXTURES = frozenset({"snapshot", "snapshot_model"})

    def _samples_to_draw(self, item: pytest.Function, recording: Recording) -> list[int]:
        """The samples ``--record-concurrency`` draws at once before they run (none: in order).

        Only while recording samples that are new to the cassette; not under a call or dollar
        budget (checked before each sample), not for a rollback row (its fixture counts the
        calls), nor with syrupy's snapshot fixtures (they number each assertion).
        """
        settings, session = self.settings, recording.session
        if settings.record_concurrency < 2 or recording.samples < 2 or session is None:
            return []
        mode = session.record_mode
        if mode == "none" or (mode == "once" and recording.had_cassette):
            return []  # replays (once over an existing cassette records nothing)
        if settings.max_calls is not None or settings.budget_usd is not None or recording.rollback:
            return []
        if self._ORDERED_FIXTURES & set(item.funcargs):
            return []
        first = 0 if mode in ("all", "rewrite") else len(session.episodes)
        return list(range(first, recording.samples))

    def _draw_concurrently(
        self,
        item: pytest.Function,
        function: Callable[..., Any],
        kwargs: dict[str, Any],
        recording: Recording,
    ) -> None:
        """Draw the new samples at once, at most ``--record-concurrency`` at a time, each in a
        thread of its own recording into its sample's episode. Nothing of a draw is judged: each
        sample then runs in order and plays what was drawn for it (a call it makes that was not
        drawn is recorded then), so the outcomes are those a replay of the cassette gives."""
        from concurrent.futures import ThreadPoolExecutor

        indexes = self._samples_to_draw(item, recording)
        session = recording.session
        if len(indexes) < 2 or session is None:
            return
        collector = recording.collector
        kept = len(collector.results) if collector is not None else 0

        def draw(index: int) -> None:
            with session.draw(index):
                try:
                    function(**kwargs)
                except KeyboardInterrupt:
                    raise
                except BaseException:  # noqa: BLE001 - met again (pytest.fail too) when the sample runs
                    pass

        session.drawing = True
        try:
            with ThreadPoolExecutor(
                max_workers=min(self.settings.record_concurrency, len(indexes)),
                thread_name_prefix="modelmigrate-draw",
            ) as pool:
                list(pool.map(draw, indexes))
        finally:
            session.end_draws()
            if collector is not None:
                del collector.results[kept:]  # checks run by the draws

    @staticmethod
    def _run_sample(function: Callable[..., Any], kwargs: dict[str, Any], recording: Recording) -> str | None:
        from ..checks.result import ChecksConfigError

        start = recording.sample_starts[-1]
        try:
            function(**kwargs)
        except (pytest.skip.Exception, CassetteMiss, ChecksConfigError):
            raise
        except (AssertionError, pytest.fail.Exception) as exc:
            return _first_line(exc)
        except Exception as exc:  # noqa: BLE001 - one sample's error fails that sample; it is reported
            return f"{type(exc).__name__}: {_first_line(exc)}"
        if recording.collector is not None:
            failed = [r for r in recording.collector.results[start:] if not r.passed]
            if failed:
                return "; ".join(f"{r.name}: {r.message}" for r in failed[:3])
        return None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        recording = item.stash.get(recording_key, None)
        if recording is not None and not recording.sample_starts:
            recording.sample_starts.append(0)
        try:
            result = yield
        except Exception as exc:
            from ..checks.result import ChecksConfigError, CheckUnavailable

            if isinstance(exc, CheckUnavailable):
                pytest.skip(str(exc))
            if isinstance(exc, ChecksConfigError):
                raise pytest.fail.Exception(f"{item.nodeid}: {exc}", pytrace=False) from None
            raise
        collector = recording.collector if recording is not None and recording.samples <= 1 else None
        message = collector.summary_message() if collector is not None else ""
        if message:
            pytest.fail(message, pytrace=False)
        return result

    def _publish(self, item: pytest.Item, recording: Recording, *, full: bool = False) -> None:
        """Put this (test, model)'s record in ``user_properties`` (xdist carries it).

        Every report carries who it is about (so a crashed worker's test is still placed); only
        the teardown's carries calls, checks and samples, and the plain JUnit XML properties.
        """
        record = recording.record(full=full)  # the check results are built once, here
        ours = {PROPERTY, "model", "prompt", "checks_failed"}
        item.user_properties[:] = [(k, v) for k, v in item.user_properties if k not in ours]
        item.user_properties.extend([*recording.properties(record), (PROPERTY, record)])

    def _scrub_report(self, report: pytest.TestReport) -> None:
        """Failure text, captured output and plain properties without keys, before the terminal,
        JUnit XML or xdist read them: an SDK error quotes the key it was sent (``401 - Incorrect
        API key provided: sk-...``), an assertion quotes a reply that echoes one. A passing test
        has none of them, so this costs nothing there."""
        scrubber = self.scrubber
        if report.longrepr is not None:
            report.longrepr = scrubber.scrub_object(report.longrepr)
        if report.sections:
            report.sections = scrubber.scrub_object(report.sections)
        properties = report.user_properties
        if any(name != PROPERTY for name, _ in properties):  # ours is scrubbed with the run
            report.user_properties = [
                (name, value if name == PROPERTY else scrubber.scrub_data(value))
                for name, value in properties
            ]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, Any]:
        recording = item.stash.get(recording_key, None)
        excinfo = call.excinfo
        missed = excinfo is not None and excinfo.errisinstance(CassetteMiss)
        not_recorded = None
        if recording is not None:
            if missed:
                session = recording.session
                recording.mark_missing(
                    f"the cassette has {len(session.episodes)} of {session.samples_wanted} samples"
                    if session is not None and session.episode_miss()
                    else None
                )
            if call.when == "call":
                recording.call_done = True
                session = recording.session
                if session is not None and session.record_mode != "none" and not missed:
                    # a provider error the SDK did not get past (a 429, a 5xx, a timeout), caught
                    # by the app or not: nothing of this recording is written, the old file stays
                    not_recorded = session.not_recorded()
                    if not_recorded:
                        session.discard = True
                        recording.missing = not_recorded
                if (
                    session is not None
                    and session.record_mode in ("all", "rewrite")
                    and excinfo is not None
                    and not excinfo.errisinstance(
                        (AssertionError, pytest.fail.Exception, pytest.skip.Exception)
                    )
                ):
                    session.discard = True
            if call.when == "teardown":
                recording.read_calls()  # fixtures may call the model while tearing down
                recording.recorded = self._recorded_summary(recording)
            self._publish(item, recording, full=call.when == "teardown")
        report = yield
        if missed and excinfo is not None:
            report.longrepr = str(excinfo.value)
        if not_recorded and recording is not None:
            kept = "the previous cassette is kept" if recording.had_cassette else "no cassette was written"
            report.outcome = "failed"
            report.longrepr = (
                f"{not_recorded}; {kept} ({recording.cassette_rel}). Record it again once the "
                "provider answers; mark the test @pytest.mark.record_provider_errors if it asserts "
                "on the error itself"
            )
        if self.settings.registry:
            self._scrub_report(report)
        if recording is not None and call.when == "teardown":
            # The record is published; pytest keeps every item to the end of the session, so
            # don't let it keep the interactions (request and response bodies) and parsed calls,
            # nor the item a second copy of the record the report carries (each object kept to the
            # end is walked again by every full garbage collection of the session)
            del item.stash[recording_key]
            if _marks_key in item.stash:
                del item.stash[_marks_key]
            item.user_properties[:] = [(k, v) for k, v in item.user_properties if k != PROPERTY]
        return report
