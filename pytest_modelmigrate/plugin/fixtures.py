"""The fixtures: ``model`` (one cassette per test and model), ``checks``, ``prompt``, datasets, emulator."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import pytest

from .runner import model_param, recording_key
from .session import MigrationSession, session_key

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..checks.collector import CheckCollector
    from ..checks.judge import Judge
    from ..checks.similarity import Embedder
    from ..conversation import RollbackPlan
    from ..datasets import Example
    from ..models import ModelSpec
    from ..prompting import PromptClient
    from ..recording import Recording

__all__ = [
    "Prediction",
    "checks",
    "example",
    "model",
    "model_spec",
    "modelmigrate_embedder",
    "modelmigrate_emulator",
    "modelmigrate_judge",
    "modelmigrate_rollback_direction",
    "prediction",
    "prompt",
    "prompt_variant",
    "rollback",
    "snapshot_model",
]


def _session(config: pytest.Config) -> MigrationSession:
    return config.stash[session_key]


def _not_parametrized(request: pytest.FixtureRequest, session: MigrationSession) -> NoReturn:
    why = (
        "models are configured, but this test's `model` was not parametrized by pytest-modelmigrate"
        if session.settings.registry
        else "neither is set"
    )
    pytest.fail(
        f"{request.node.nodeid} uses the `model` fixture, but no models are configured for it: "
        f"pass --models=a,b on the command line or set modelmigrate_models in the ini file ({why})",
        pytrace=False,
    )


@pytest.fixture
def model(request: pytest.FixtureRequest) -> Iterator[str]:
    """The model name to send to the provider; the test's traffic goes to its own cassette.

    Parametrized over the configured models (``--models`` or the ini ``modelmigrate_models``).
    This fixture activates recording or replay: the (test, model)'s cassette is open while the
    test runs (one fixture, not two, for each of what can be thousands of items).
    """
    session = _session(request.config)
    spec = model_param(request.node)
    if spec is None:
        _not_parametrized(request, session)
    recording = session.runner.start(request, spec)
    yield from session.runner.record(request, recording, spec.name)


@pytest.fixture
def modelmigrate_recording(request: pytest.FixtureRequest, model: str) -> Recording:
    """The current (test, model)'s :class:`~pytest_modelmigrate.recording.Recording`, its cassette
    open (by ``model``) while the test runs."""
    recording: Recording | None = request.node.stash.get(recording_key, None)
    if recording is None:  # `model` given by the test's own parametrize
        _not_parametrized(request, _session(request.config))
    return recording


@pytest.fixture
def model_spec(modelmigrate_recording: Recording) -> ModelSpec:
    """The :class:`~pytest_modelmigrate.models.ModelSpec` (``id`` and ``name``) of the current model."""
    return modelmigrate_recording.spec


@pytest.fixture
def checks(
    request: pytest.FixtureRequest,
    modelmigrate_recording: Recording,
    modelmigrate_judge: Judge | None,
    modelmigrate_embedder: Embedder | None,
) -> CheckCollector:
    """Soft checks: every check runs and is recorded; the test fails at its end listing each failure."""
    from ..checks.collector import CheckCollector

    recording = modelmigrate_recording
    recording.judge_model = modelmigrate_judge.model if modelmigrate_judge is not None else None
    collector = CheckCollector(
        test_id=request.node.nodeid,
        model=recording.spec.id,
        recording=recording,
        embedder=modelmigrate_embedder,
        judge=modelmigrate_judge,
    )
    recording.collector = collector
    return collector


def _provider_patterns(config: pytest.Config) -> list[tuple[str, str]]:
    from ..prompting import DEFAULT_PROVIDER_PATTERNS

    return [*_session(config).settings.provider_patterns, *DEFAULT_PROVIDER_PATTERNS]


@pytest.fixture(scope="session")
def modelmigrate_judge(pytestconfig: pytest.Config) -> Judge | None:
    """The LLM judge for ``checks.judge``: ini ``modelmigrate_judge_model`` (pinned, never parametrized).

    Override this fixture to build your own :class:`~pytest_modelmigrate.checks.judge.Judge`.
    """
    settings = _session(pytestconfig).settings
    if not settings.judge_model:
        return None
    from ..checks.judge import Judge

    patterns = _provider_patterns(pytestconfig)

    def factory(model_name: str, provider: str | None) -> PromptClient:
        from ..prompting import PromptClient

        return PromptClient(model_name, provider, provider_patterns=patterns)

    return Judge(settings.judge_model, settings.judge_provider or None, client_factory=factory)


@pytest.fixture(scope="session")
def modelmigrate_embedder(pytestconfig: pytest.Config) -> Embedder | None:
    """The similarity scorer for ``checks.similar`` and ``checks.drift`` (ini ``modelmigrate_embedder``)."""
    kind, name = _session(pytestconfig).settings.embedder
    if kind == "openai":
        from ..checks.similarity import OpenAIEmbedder

        return OpenAIEmbedder(name)
    if kind == "sentence-transformers":
        from ..checks.similarity import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(name)
    return None  # lexical: validated at configure time


@pytest.fixture
def prompt(request: pytest.FixtureRequest, model: str) -> PromptClient:
    """Send a prompt to the current model through its official SDK (``prompt.ask("...")``)."""
    from ..prompting import PromptClient

    return PromptClient(model, provider_patterns=_provider_patterns(request.config))


@pytest.fixture
def prompt_variant(request: pytest.FixtureRequest) -> str:
    """The name of the prompt variant this (test, model) sends (``@pytest.mark.prompt_variants``)."""
    value = getattr(request, "param", None)
    if value is None:
        pytest.fail(
            f"{request.node.nodeid} uses the `prompt_variant` fixture without "
            '@pytest.mark.prompt_variants("v1", "v2", targets={"v2": ["model-id"]})',
            pytrace=False,
        )
    return str(value)


@pytest.fixture
def modelmigrate_rollback_direction(request: pytest.FixtureRequest) -> tuple[str, int]:
    """(direction, switch_after) of a ``@pytest.mark.rollback`` test, set by its parametrization."""
    value = getattr(request, "param", None)
    if value is None:
        pytest.fail(
            f"{request.node.nodeid} uses the `rollback` fixture without @pytest.mark.rollback"
            "(switch_after=N) (the number of turns the first model answers)",
            pytrace=False,
        )
    direction, switch = value
    return str(direction), int(switch)


@pytest.fixture
def rollback(
    request: pytest.FixtureRequest,
    model: str,
    model_spec: ModelSpec,
    modelmigrate_rollback_direction: tuple[str, int],
) -> RollbackPlan:
    """Which model answers each turn of a ``@pytest.mark.rollback(switch_after=k)`` test
    (:class:`~pytest_modelmigrate.conversation.RollbackPlan`: ``rollback.model(turn)``).

    In a candidate's column the ``rollback`` row runs the candidate for turns 1..k and the
    incumbent after, the ``upgrade`` row the other way round; in the incumbent's column both rows
    run the incumbent throughout (the baseline the gate compares with). Every call goes to the
    (test, direction, model)'s one cassette.
    """
    from ..conversation import RollbackPlan
    from ..prompting import resolve_provider

    direction, switch = modelmigrate_rollback_direction
    incumbent = _session(request.config).settings.incumbent or model_spec
    if incumbent.id == model_spec.id:
        first = then = incumbent
        direction = "baseline"
    elif direction == "rollback":
        first, then = model_spec, incumbent
    else:
        first, then = incumbent, model_spec
    patterns = _provider_patterns(request.config)
    return RollbackPlan(
        direction=direction,
        first=first.name,
        then=then.name,
        switch_after=switch,
        first_id=first.id,
        then_id=then.id,
        first_provider=resolve_provider(first.name, patterns),
        then_provider=resolve_provider(then.name, patterns),
    )


@pytest.fixture
def example(request: pytest.FixtureRequest) -> Example:
    """The labelled example of a ``@pytest.mark.dataset`` test."""
    value = getattr(request, "param", None)
    if value is None:
        argnames = getattr(getattr(request.node, "_fixtureinfo", None), "argnames", ())
        used = (
            "example" if "example" in argnames or "prediction" not in request.fixturenames else "prediction"
        )
        pytest.fail(
            f'{request.node.nodeid} uses the `{used}` fixture without @pytest.mark.dataset("file")',
            pytrace=False,
        )
    example: Example = value
    return example


@pytest.fixture
def prediction(request: pytest.FixtureRequest, example: Example) -> Prediction:
    """Record a prediction against the example's expectation: ``.label(...)`` or ``.fields(...)``."""
    return Prediction(request.node, example)


class Prediction:
    """Compares what the model predicted with the labelled example, records it, and fails when wrong."""

    def __init__(self, item: pytest.Item, example: Example) -> None:
        self._item = item
        self.example = example
        self.records: list[dict[str, Any]] = []

    def _keep(self, record: dict[str, Any]) -> dict[str, Any]:
        self.records.append(record)
        recording = self._item.stash.get(recording_key, None)
        if recording is not None:
            recording.dataset.append(record)
        return record

    def label(self, predicted: Any, expected: Any = None) -> bool:
        """A classification: ``predicted`` against ``expected`` (default: the example's label)."""
        from ..datasets import label_record

        record = self._keep(
            label_record(self.example, self.example.label if expected is None else expected, predicted)
        )
        if not record["correct"]:
            pytest.fail(
                f"example {self.example.id} ({self.example.location}): predicted {record['predicted']!r}, "
                f"expected {record['expected']!r}",
                pytrace=False,
            )
        return True

    def fields(self, predicted: Any, expected: Any = None, spec: Any = None) -> dict[str, bool]:
        """An extraction: each expected field compared (exact, normalized, or ("numeric", tolerance))."""
        from ..datasets import fields_record

        want = self.example.expected if expected is None else expected
        if not isinstance(want, dict):
            pytest.fail(
                f"example {self.example.id}: expected fields must be a mapping, got {want!r}", pytrace=False
            )
        record = self._keep(
            fields_record(self.example, want, predicted if isinstance(predicted, dict) else None, spec)
        )
        wrong = [name for name, ok in record["fields"].items() if not ok]
        if wrong:
            pytest.fail(
                f"example {self.example.id} ({self.example.location}): wrong field(s) {', '.join(wrong)}",
                pytrace=False,
            )
        return dict(record["fields"])


@pytest.fixture
def snapshot_model(request: pytest.FixtureRequest) -> Any:
    """syrupy's ``snapshot`` with one snapshot set per model: ``__snapshots__/<model>/<module>/...``.

    Snapshots are scrubbed with the session's scrubber, so ``modelmigrate_secret_env`` applies.
    It does not request syrupy's ``snapshot`` fixture: that one registers syrupy's default
    assertion too, whose unused-snapshot scan of ``__snapshots__/`` would delete the snapshots
    of the models a run did not select (``--snapshot-update`` with ``--models=`` a subset).
    """
    from ..snapshots import model_snapshot

    return model_snapshot(request, _session(request.config).runner.snapshot_extension)


@pytest.fixture(scope="session")
def modelmigrate_emulator(pytestconfig: pytest.Config) -> Iterator[str]:
    """Base URL of the local provider emulator (``http://127.0.0.1:PORT``).

    Point the SDKs at it: ``openai.OpenAI(base_url=url + "/v1")``, ``anthropic.Anthropic(base_url=url)``.
    When replaying, nothing listens there (cassettes answer); when recording, the emulator is
    started on the fixed port (ini ``modelmigrate_emulator_port``) unless one already runs there.

    Under pytest-xdist each worker starts its own emulator on a free port, and its requests are
    recorded (and matched) as if sent to the fixed port, so cassettes do not depend on which
    worker recorded them. The draw counters live in the pytest cache
    (``.pytest_cache/d/modelmigrate-emulator/``), shared by the workers, so a later recording
    pass draws new samples, not the first pass's again (``--cache-clear`` starts over).
    """
    import os

    session = _session(pytestconfig)
    settings = session.settings
    url = f"http://127.0.0.1:{settings.emulator_port}"
    worker = bool(os.environ.get("PYTEST_XDIST_WORKER"))
    if settings.record_mode == "none" or _answers(url):
        yield url  # replay, or a server the user started: every worker uses that one
        return
    from ..emulator import Emulator, ScriptError

    state = None
    cache = getattr(pytestconfig, "cache", None)
    if cache is not None:
        try:
            state = cache.mkdir("modelmigrate-emulator") / "draws.json"
        except OSError:
            state = None  # a read-only cache: draws restart with each session

    def start(port: int) -> Emulator:
        return Emulator(
            script=settings.emulator_script,
            port=port,
            time_scale=settings.emulator_time_scale,
            state_file=state,
        ).start()

    try:
        try:
            emulator = start(0 if worker else settings.emulator_port)
        except (
            OSError
        ):  # the port was taken since it was probed: a port of its own, recorded as the fixed one
            emulator = start(0)
    except ScriptError as exc:
        raise pytest.UsageError(f"ini modelmigrate_emulator_script: {exc}") from None
    actual = emulator.url.rsplit(":", 1)[1]
    if actual != str(settings.emulator_port):
        session.runner.port_aliases[f"127.0.0.1:{actual}"] = f"127.0.0.1:{settings.emulator_port}"
    try:
        yield url if actual == str(settings.emulator_port) else emulator.url
    finally:
        emulator.stop()
        session.runner.port_aliases.pop(f"127.0.0.1:{actual}", None)


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) == 0
