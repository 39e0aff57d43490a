"""Module-level hooks: options, configure, parametrization over the models, late deselection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ..models import MarkerFilter, ModelSpec, ModelSpecError, marker_filter
from .hookspec import ModelmigrateHookspecs
from .options import add_options, resolve_settings
from .runner import model_param
from .session import MigrationSession, session_key

__all__ = [
    "pytest_addhooks",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_recording_configure",
    "pytest_unconfigure",
]

MARKERS = (
    "models(only=None, skip=None, xfail=None): run this test on some models only, skip some, "
    "or expect it to fail on some (xfail={'model': 'reason'})",
    "evidence(cluster=None, weight=1.0): this test's evidence shares a source with the tests of the "
    "same cluster (a document, customer or conversation), and counts weight times in its group's "
    "paired drop",
    "prompt(name, purpose=None, sensitivities=None, tolerance=None, version=None, rationale=None, "
    "target_model=None, deterministic=False, blocking=False): the prompt this test guards; groups "
    "tests in the migration matrix; deterministic: temperature 0, a one-sample flip is a regression; "
    "blocking: a regression of this prompt means don't migrate",
    "regression_case(description, fixed_in=None): this test guards a past failure of its prompt; "
    "the migration document lists it with its outcome per model",
    "samples(n): run this prompt test n times per model (overrides --samples)",
    "record_provider_errors: keep a provider's 429/5xx answers in this test's cassette (for a test "
    "that asserts on the error); otherwise a recording the provider refused is not written",
    "dataset(path, labels=None, label_field='label', id_field='id'): parametrize this test over "
    "the examples of a JSONL, CSV or YAML file beside it (the `example` fixture)",
    "rollback(switch_after, directions=('rollback', 'upgrade')): a multi-turn test whose first "
    "switch_after turns go to one model and the rest to another (the `rollback` fixture): per "
    "candidate column, rollback = candidate then incumbent, upgrade = incumbent then candidate",
    "prompt_variants(*names, targets=None, rationale=None): variants of this test's prompt (the "
    "`prompt_variant` fixture holds the name); each runs on the models targets={name: [model ids]} "
    "names, or on every model; rationale={name: why} goes to the prompt history",
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(ModelmigrateHookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(optionalhook=True)
def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    """pytest-recording's VCR, for a ``@pytest.mark.vcr`` test, knows the plugin's matchers too:
    a ``vcr_config`` whose ``match_on`` names them (one fixture for the plain and the model tests
    of a module) works for both, where vcrpy would raise ``KeyError`` for the plain ones."""
    from ..cassettes import body_matcher, query_matcher

    vcr.register_matcher("modelmigrate_body", body_matcher)
    vcr.register_matcher("modelmigrate_query", query_matcher)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    session = MigrationSession(config, resolve_settings(config))
    config.stash[session_key] = session
    config.pluginmanager.register(session, "modelmigrate-session")
    config.pluginmanager.register(session.runner, "modelmigrate-runner")
    session.start()
    if session.settings.plan and hasattr(config.option, "dist"):
        config.option.dist = "no"  # the plan is made in one process: no xdist workers start
        if getattr(config.option, "numprocesses", None):
            config.option.numprocesses = 0


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(session_key, None)
    if session is not None:
        session.stop()
        config.pluginmanager.unregister(session.runner)
        config.pluginmanager.unregister(session)
        del config.stash[session_key]


# -- parametrization ---------------------------------------------------------------------------


def _parametrizes_model_itself(metafunc: pytest.Metafunc) -> bool:
    for mark in metafunc.definition.iter_markers("parametrize"):
        if not mark.args:
            continue
        argnames = mark.args[0]
        names = [n.strip() for n in argnames.split(",")] if isinstance(argnames, str) else list(argnames)
        if "model" in names:
            return True
    return False


def _parametrize_dataset(metafunc: pytest.Metafunc, session: MigrationSession) -> None:
    mark = metafunc.definition.get_closest_marker("dataset")
    if mark is None:
        return
    where = metafunc.definition.nodeid
    if "example" not in metafunc.fixturenames:
        pytest.fail(
            f"{where}: @pytest.mark.dataset needs the test to take the `example` fixture "
            "(def test_x(model, example): ...)",
            pytrace=False,
        )
    if not mark.args:
        pytest.fail(
            f'{where}: @pytest.mark.dataset needs a file, e.g. @pytest.mark.dataset("cases.jsonl")',
            pytrace=False,
        )
    from ..datasets import DatasetError, dataset_path, load_dataset

    path = dataset_path(Path(str(metafunc.definition.path)), str(mark.args[0]))
    options = {k: v for k, v in mark.kwargs.items() if k in ("labels", "label_field", "id_field")}
    unknown = set(mark.kwargs) - {"labels", "label_field", "id_field", "min_accuracy"}
    if unknown:
        pytest.fail(
            f"{where}: @pytest.mark.dataset got unknown argument(s) {sorted(unknown)}; "
            "use labels=[...], label_field='label', id_field='id' or min_accuracy=0.9",
            pytrace=False,
        )
    key = (str(path), repr(sorted(options.items())))
    examples = session.datasets.get(key)
    if examples is None:
        problem = ""
        try:
            examples = load_dataset(path, **options)
        except DatasetError as exc:
            problem = str(exc)
        if problem or examples is None:
            pytest.fail(f"{where}: {problem}", pytrace=False)
        session.datasets[key] = examples
    metafunc.parametrize("example", [pytest.param(ex, id=ex.id) for ex in examples], indirect=True)


def _marker_filter(metafunc: pytest.Metafunc, registry: tuple[ModelSpec, ...]) -> MarkerFilter:
    marks = list(metafunc.definition.iter_markers("models"))
    if not marks:
        return MarkerFilter()
    kwargs: dict[str, object] = {}
    args: list[object] = []
    for mark in reversed(marks):  # the closest mark wins
        kwargs.update(mark.kwargs)
        args = list(mark.args) or args
    problem = ""
    try:
        return marker_filter(kwargs, args, list(registry), where=metafunc.definition.nodeid)
    except ModelSpecError as exc:
        problem = str(exc)
    pytest.fail(problem, pytrace=False)


def _parametrize_variants(metafunc: pytest.Metafunc, session: MigrationSession, params: list[Any]) -> bool:
    """``@pytest.mark.prompt_variants``: (variant, model) pairs, each variant on the models it
    targets, ids ``v2-gpt5-gpt-5``; False when the test declares no variants."""
    mark = metafunc.definition.get_closest_marker("prompt_variants")
    if mark is None or not params:
        return False
    from ..variants import VariantError, parse_variants

    where = metafunc.definition.nodeid
    if "prompt_variant" not in metafunc.fixturenames:
        pytest.fail(
            f"{where}: @pytest.mark.prompt_variants needs the test to take the `prompt_variant` fixture "
            "(def test_x(model, prompt_variant): ...), to send each variant's prompt",
            pytrace=False,
        )
    problem = ""
    try:
        variants = parse_variants(
            mark.args, mark.kwargs, [spec.id for spec in session.settings.registry], where=where
        )
    except VariantError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)
    allowed = [p.values[0].id for p in params]
    pairs = []
    for variant in variants:
        mine = [p for p in params if variant.runs_on(p.values[0].id)]
        if not mine:
            pytest.fail(
                f"{where}: the prompt variant {variant.name!r} targets {', '.join(variant.targets or ())}, "
                f"but this test runs on {', '.join(allowed) or 'no model'} "
                "(@pytest.mark.models): target a model the test runs on, or drop the variant",
                pytrace=False,
            )
        pairs += [
            pytest.param(variant, p.values[0], id=f"{variant.name}-{p.id}", marks=p.marks) for p in mine
        ]
    metafunc.parametrize(("prompt_variant", "model"), pairs, indirect=True)
    return True


ROLLBACK_DIRECTIONS = ("rollback", "upgrade")


def _parametrize_rollback(metafunc: pytest.Metafunc) -> None:
    """``@pytest.mark.rollback(switch_after=k)``: one row per direction (``test[rollback]``,
    ``test[upgrade]``), parametrized before ``model`` so each cell is (direction, column model)."""
    mark = metafunc.definition.get_closest_marker("rollback")
    if mark is None:
        return
    where = metafunc.definition.nodeid
    if "rollback" not in metafunc.fixturenames:
        pytest.fail(
            f"{where}: @pytest.mark.rollback needs the test to take the `rollback` fixture "
            "(def test_x(rollback): model = rollback.model(turn) ...)",
            pytrace=False,
        )
    switch = mark.args[0] if mark.args else mark.kwargs.get("switch_after")
    directions = mark.kwargs.get("directions", ROLLBACK_DIRECTIONS)
    unknown = sorted(set(mark.kwargs) - {"switch_after", "directions"})
    if (
        unknown
        or len(mark.args) > 1
        or isinstance(switch, bool)
        or not isinstance(switch, int)
        or switch < 1
        or isinstance(directions, str)
        or not directions
        or any(d not in ROLLBACK_DIRECTIONS for d in directions)
    ):
        pytest.fail(
            f"{where}: @pytest.mark.rollback takes switch_after= (the number of turns, 1 or more, the "
            "first model answers) and directions= (a list of 'rollback' and 'upgrade'), e.g. "
            "@pytest.mark.rollback(switch_after=2, directions=['rollback'])",
            pytrace=False,
        )
    params = [pytest.param((d, switch), id=d) for d in dict.fromkeys(directions)]
    metafunc.parametrize("modelmigrate_rollback_direction", params, indirect=True)


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    session = metafunc.config.stash[session_key]
    _parametrize_dataset(metafunc, session)
    if "model" not in metafunc.fixturenames or _parametrizes_model_itself(metafunc):
        return
    registry = session.settings.registry
    if not registry:
        return  # the fixture fails each such test with a message naming both settings
    mark_filter = _marker_filter(metafunc, registry)
    params = []
    for spec in registry:
        if not mark_filter.allows(spec):
            continue
        reason = mark_filter.xfail_reason(spec)
        item_marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
        params.append(pytest.param(spec, id=spec.id, marks=item_marks))
    _parametrize_rollback(metafunc)
    if _parametrize_variants(metafunc, session, params):
        return
    metafunc.parametrize("model", params, indirect=True)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect models outside this run late, so syrupy & co. still see the whole registry."""
    session = config.stash[session_key]
    selected = set(session.settings.selected_ids)
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        spec = model_param(item)
        (dropped if spec is not None and spec.id not in selected else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    session.collected(items)
