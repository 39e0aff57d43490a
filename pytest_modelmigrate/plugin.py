"""pytest glue: options and ini, markers, fixtures, hooks. The only module that imports pytest."""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .cassettes import CassetteMiss as CassetteMissError
from .models import MarkerFilter, ModelSpec, ModelSpecError, marker_filter, merge_registry, parse_models
from .results import PROPERTY, RECORD_VERSION, ResultCollector, default_group

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

    from .cassettes import CassetteSession
    from .checks.collector import CheckCollector
    from .checks.judge import Judge
    from .checks.similarity import Embedder
    from .datasets import Example
    from .gate import GateResult
    from .prompting import PromptClient
    from .providers.base import Call
    from .results import Matrix
    from .scrub import Scrubber

RECORD_MODE_DISABLED = "disabled"
GATE_MODES = ("strict", "no-regression", "report")
# Every ini setting this plugin registers (tests/test_reliability.py keeps it in step), for the
# "did you mean" hint on a misspelt one.
INI_SETTINGS = (
    "modelmigrate_alpha",
    "modelmigrate_cassette_dir",
    "modelmigrate_embedder",
    "modelmigrate_emulator_port",
    "modelmigrate_emulator_script",
    "modelmigrate_emulator_time_scale",
    "modelmigrate_gate",
    "modelmigrate_incumbent",
    "modelmigrate_judge_model",
    "modelmigrate_judge_provider",
    "modelmigrate_min_drop",
    "modelmigrate_models",
    "modelmigrate_parse_cache",
    "modelmigrate_power",
    "modelmigrate_prices",
    "modelmigrate_prices_file",
    "modelmigrate_provider_patterns",
    "modelmigrate_samples",
    "modelmigrate_secret_env",
    "modelmigrate_secret_headers",
    "modelmigrate_tolerance",
)
_REPORT_OPTIONS = {
    "modelmigrate_json": "--migration-json",
    "modelmigrate_markdown": "--migration-markdown",
    "modelmigrate_html": "--migration-html",
    "modelmigrate_baseline_save": "--migration-baseline-save",
}
DEFAULT_EMULATOR_PORT = 8765


# -- hooks we declare --------------------------------------------------------------------------


class ModelmigrateHookspecs:
    """Hooks other plugins and conftest files may implement."""

    @pytest.hookspec
    def pytest_modelmigrate_run(self, config: pytest.Config, run: dict[str, Any]) -> None:
        """Called on the controller with the run dict before reports are written; may add keys."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(ModelmigrateHookspecs)


# -- options -----------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("modelmigrate", "model migration (pytest-modelmigrate)")
    group.addoption(
        "--models",
        action="store",
        dest="modelmigrate_models",
        default=None,
        metavar="MODELS",
        help="Comma-separated model versions to run every test that uses `model` against, "
        "e.g. gpt-4o,gpt-5 or old=gpt-4o-2024-08-06,new=gpt-5 "
        "(overrides the ini setting modelmigrate_models)",
    )
    group.addoption(
        "--incumbent",
        action="store",
        dest="modelmigrate_incumbent",
        default=None,
        metavar="MODEL",
        help="The model in production now; every other model is a candidate (default: the first model)",
    )
    group.addoption(
        "--migration-json",
        action="store",
        dest="modelmigrate_json",
        default=None,
        metavar="PATH",
        help="Write the run (models, every test × model outcome, the matrix) as JSON to PATH",
    )
    group.addoption(
        "--samples",
        action="store",
        dest="modelmigrate_samples",
        default=None,
        metavar="N",
        help="Run each prompt test N times per model, because models are stochastic, or 'auto': "
        "sample only while the comparison with the incumbent is undecided "
        "(overrides the ini setting modelmigrate_samples; the samples marker overrides both)",
    )
    group.addoption(
        "--samples-min",
        action="store",
        dest="modelmigrate_samples_min",
        default=None,
        metavar="N",
        help="With --samples=auto: rounds every test takes before any decision (default: 5)",
    )
    group.addoption(
        "--samples-max",
        action="store",
        dest="modelmigrate_samples_max",
        default=None,
        metavar="N",
        help="With --samples=auto: the most rounds a test takes (default: 20)",
    )
    group.addoption(
        "--migration-budget-usd",
        action="store",
        dest="modelmigrate_budget_usd",
        default=None,
        metavar="USD",
        help="With --samples=auto: stop recording more samples once this run's recorded calls cost this much",
    )
    group.addoption(
        "--migration-max-calls",
        action="store",
        dest="modelmigrate_max_calls",
        default=None,
        metavar="N",
        help="With --samples=auto: stop recording more samples after N recorded calls in this run",
    )
    group.addoption(
        "--migration-gate",
        action="store",
        dest="modelmigrate_gate",
        default=None,
        choices=GATE_MODES,
        help="strict: any failure fails the run (pytest's usual rule); no-regression: only a candidate's "
        "regression against the incumbent does; report: model outcomes never fail the run (default: strict)",
    )
    group.addoption(
        "--migration-tolerance",
        action="store",
        dest="modelmigrate_tolerance",
        default=None,
        metavar="DROP",
        help="Pass-rate drop (0 to 1) a candidate may show before it counts as a regression (default: 0)",
    )
    group.addoption(
        "--migration-markdown",
        action="store",
        dest="modelmigrate_markdown",
        default=None,
        metavar="PATH",
        help="Write the report as Markdown (for a PR comment) to PATH; "
        "it is also appended to $GITHUB_STEP_SUMMARY when that is set",
    )
    group.addoption(
        "--migration-html",
        action="store",
        dest="modelmigrate_html",
        default=None,
        metavar="PATH",
        help="Write the report as one self-contained HTML file to PATH",
    )
    group.addoption(
        "--migration-baseline-save",
        action="store",
        dest="modelmigrate_baseline_save",
        default=None,
        metavar="PATH",
        help="Save this run as a baseline (JSON, meant to be committed) to PATH",
    )
    group.addoption(
        "--migration-baseline-compare",
        action="store",
        dest="modelmigrate_baseline_compare",
        default=None,
        metavar="PATH",
        help="Compare this run with a saved baseline; regressions against it count for the gate",
    )
    parser.addini(
        "modelmigrate_models",
        type="string",
        default="",
        help="Model versions to run prompt tests against (comma- or newline-separated; alias=name allowed)",
    )
    parser.addini(
        "modelmigrate_incumbent", type="string", default="", help="The incumbent model (id or name)"
    )
    parser.addini(
        "modelmigrate_cassette_dir",
        type="string",
        default="cassettes",
        help="Folder for per-model cassettes, relative to each test module's folder (default: cassettes)",
    )
    parser.addini(
        "modelmigrate_parse_cache",
        type="bool",
        default=True,
        help="Keep the parsed form of replayed cassettes under pytest's cache dir (default: true)",
    )
    parser.addini(
        "modelmigrate_secret_env",
        type="linelist",
        default=[],
        help="More environment variables whose values must never reach a cassette",
    )
    parser.addini(
        "modelmigrate_secret_headers",
        type="linelist",
        default=[],
        help="More request or response headers to drop from cassettes",
    )
    parser.addini(
        "modelmigrate_samples", type="string", default="1", help="Samples per test and model (default: 1)"
    )
    parser.addini(
        "modelmigrate_gate",
        type="string",
        default="strict",
        help="Gate mode: strict, no-regression or report",
    )
    parser.addini(
        "modelmigrate_tolerance",
        type="string",
        default="0",
        help="Pass-rate drop allowed before a regression",
    )
    parser.addini(
        "modelmigrate_alpha", type="string", default="0.05", help="Significance level of the gate's tests"
    )
    parser.addini(
        "modelmigrate_power", type="string", default="0.8", help="Power used to size undecided comparisons"
    )
    parser.addini(
        "modelmigrate_min_drop",
        type="string",
        default="0.15",
        help="Smallest drop the sample-size advice targets",
    )
    parser.addini(
        "modelmigrate_judge_model", type="string", default="", help="The pinned model the LLM judge uses"
    )
    parser.addini(
        "modelmigrate_judge_provider",
        type="string",
        default="",
        help="openai or anthropic (default: by model name)",
    )
    parser.addini(
        "modelmigrate_embedder",
        type="string",
        default="lexical",
        help="Similarity scorer: lexical, openai:<model> or sentence-transformers:<model>",
    )
    parser.addini(
        "modelmigrate_provider_patterns",
        type="linelist",
        default=[],
        help="pattern=provider lines mapping model names to openai or anthropic (default: claude*=anthropic)",
    )
    parser.addini(
        "modelmigrate_prices",
        type="linelist",
        default=[],
        help="Prices in USD per million tokens, one model a line: 'gpt-4o: input=2.50 output=10.00'",
    )
    parser.addini(
        "modelmigrate_prices_file",
        type="string",
        default="",
        help="A JSON or TOML price table, relative to the rootdir",
    )
    parser.addini(
        "modelmigrate_emulator_script",
        type="string",
        default="",
        help="Script for the modelmigrate_emulator fixture (YAML or JSON), relative to the rootdir",
    )
    parser.addini(
        "modelmigrate_emulator_port",
        type="string",
        default=str(DEFAULT_EMULATOR_PORT),
        help=f"Port of the modelmigrate_emulator fixture (default: {DEFAULT_EMULATOR_PORT}); "
        "cassettes record its URL, so keep it fixed",
    )
    parser.addini(
        "modelmigrate_emulator_time_scale",
        type="string",
        default="1.0",
        help="Multiplier for the emulator's scripted latencies while recording (default: 1.0)",
    )


# -- session state ---------------------------------------------------------------------------


@dataclass
class MigrationConfig:
    """What the session was asked to do, resolved once at configure time."""

    registry: list[ModelSpec]  # every known model: parametrized over, so nothing is deleted
    selected: list[ModelSpec]  # the models this run executes
    incumbent: ModelSpec | None
    record_mode: str
    cassette_dir: str
    json_path: Path | None
    models_source: str
    markdown_path: Path | None = None
    html_path: Path | None = None
    baseline_save: Path | None = None
    baseline_compare: Path | None = None
    prices: dict[str, Any] = field(default_factory=dict)
    samples: int = 1
    samples_auto: bool = False
    adaptive: Any = None  # sequential.AdaptivePolicy when samples_auto
    samples_batch: int = 5
    budget_usd: float | None = None
    max_calls: int | None = None
    gate_mode: str = "strict"
    tolerance: float = 0.0
    alpha: float = 0.05
    power: float = 0.8
    min_drop: float = 0.15

    @property
    def selected_ids(self) -> list[str]:
        return [spec.id for spec in self.selected]


@dataclass
class ItemState:
    """Per (test, model) state kept in ``item.stash`` while it runs."""

    spec: ModelSpec
    test: str
    group: str
    cassette: Path | None
    prompt: dict[str, Any] = field(default_factory=dict)
    cassette_session: CassetteSession | None = None
    call_done: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)
    samples: int = 1
    sample_outcomes: list[str] = field(default_factory=list)
    collector: CheckCollector | None = None
    dataset: list[dict[str, Any]] = field(default_factory=list)
    example: Any = None
    judge_model: str | None = None
    sample_starts: list[int] = field(default_factory=list)
    parsed: dict[int, Call] = field(default_factory=dict)
    counted: int = 0
    cassette_rel: str | None = None

    def check_dicts(self) -> list[dict[str, Any]]:
        """Every check result, JSON-safe, with the index of the sample that ran it."""
        if self.collector is None:
            return []
        from bisect import bisect_right

        starts = self.sample_starts or [0]
        return [
            {**result.to_dict(), "sample": max(bisect_right(starts, index) - 1, 0)}
            for index, result in enumerate(self.collector.results)
        ]


migration_key = pytest.StashKey["MigrationPlugin"]()
item_key = pytest.StashKey[ItemState]()


def _ini_path(config: pytest.Config, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else Path(config.rootpath) / path


def _resolve_config(config: pytest.Config) -> MigrationConfig:
    ini_value = str(config.getini("modelmigrate_models") or "")
    cli_value: str | None = config.getoption("modelmigrate_models")
    ini_models = parse_models(ini_value, source="ini modelmigrate_models") if ini_value.strip() else []
    cli_models = parse_models(cli_value, source="--models") if cli_value is not None else []
    if cli_value is not None and not cli_models:
        raise ModelSpecError("--models is empty; name at least one model, e.g. --models=gpt-4o,gpt-5")
    # a bare name on the command line may pick an ini model by its alias or its name
    from .models import resolve

    if cli_value is not None:
        cli_entries = [e.strip() for e in cli_value.replace("\n", ",").split(",") if e.strip()]
        cli_models = [
            (resolve(ini_models, entry) or spec) if "=" not in entry else spec
            for entry, spec in zip(cli_entries, cli_models, strict=True)
        ]
    registry = merge_registry(ini_models, cli_models)
    selected = cli_models if cli_value is not None else ini_models
    source = "--models" if cli_value is not None else "modelmigrate_models"

    incumbent_key = config.getoption("modelmigrate_incumbent") or str(config.getini("modelmigrate_incumbent"))
    incumbent: ModelSpec | None = selected[0] if selected else None
    if incumbent_key:
        found = resolve(selected, incumbent_key)
        if found is None:
            raise ModelSpecError(
                f"--incumbent/modelmigrate_incumbent names {incumbent_key!r}, which is not among the models "
                f"of this run ({', '.join(s.id for s in selected) or 'none'})"
            )
        incumbent = found

    if config.getoption("disable_recording", default=False):
        record_mode = RECORD_MODE_DISABLED
    else:
        record_mode = config.getoption("record_mode", default=None) or "none"
    gate_mode = config.getoption("modelmigrate_gate") or str(config.getini("modelmigrate_gate") or "strict")
    if gate_mode not in GATE_MODES:
        raise ModelSpecError(f"ini modelmigrate_gate: {gate_mode!r} is not one of {', '.join(GATE_MODES)}")
    samples_text = config.getoption("modelmigrate_samples") or str(
        config.getini("modelmigrate_samples") or "1"
    )
    samples_auto = str(samples_text).strip() == "auto"
    samples = 1 if samples_auto else _positive_int(samples_text, "--samples/modelmigrate_samples")
    adaptive = None
    if samples_auto:
        from .sequential import AdaptivePolicy

        low = _positive_int(config.getoption("modelmigrate_samples_min") or "5", "--samples-min")
        high = _positive_int(config.getoption("modelmigrate_samples_max") or "20", "--samples-max")
        if low > high:
            raise ModelSpecError(f"--samples-min ({low}) is larger than --samples-max ({high})")
        adaptive = AdaptivePolicy(
            min_samples=low, max_samples=high, alpha=float(str(config.getini("modelmigrate_alpha")))
        )
    budget_text = config.getoption("modelmigrate_budget_usd")
    calls_text = config.getoption("modelmigrate_max_calls")
    tolerance_text = config.getoption("modelmigrate_tolerance") or str(
        config.getini("modelmigrate_tolerance")
    )
    return MigrationConfig(
        registry=registry,
        selected=selected,
        incumbent=incumbent,
        record_mode=record_mode,
        cassette_dir=str(config.getini("modelmigrate_cassette_dir") or "cassettes"),
        json_path=_option_path(config, "modelmigrate_json"),
        markdown_path=_option_path(config, "modelmigrate_markdown"),
        html_path=_option_path(config, "modelmigrate_html"),
        baseline_save=_option_path(config, "modelmigrate_baseline_save"),
        baseline_compare=_option_path(config, "modelmigrate_baseline_compare"),
        prices=_prices(config),
        models_source=source,
        samples=samples,
        samples_auto=samples_auto,
        adaptive=adaptive,
        budget_usd=_nonnegative_float(budget_text, "--migration-budget-usd") if budget_text else None,
        max_calls=_positive_int(calls_text, "--migration-max-calls") if calls_text else None,
        gate_mode=gate_mode,
        tolerance=_fraction(tolerance_text, "--migration-tolerance/modelmigrate_tolerance", upper_open=True),
        alpha=_fraction(str(config.getini("modelmigrate_alpha")), "modelmigrate_alpha", lower_open=True),
        power=_fraction(str(config.getini("modelmigrate_power")), "modelmigrate_power", lower_open=True),
        min_drop=_fraction(
            str(config.getini("modelmigrate_min_drop")), "modelmigrate_min_drop", lower_open=True
        ),
    )


def _option_path(config: pytest.Config, dest: str) -> Path | None:
    value = config.getoption(dest)
    if not value:
        return None
    path = Path(value).resolve()
    option = _REPORT_OPTIONS.get(dest)
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if option is not None and blocker is not None:
        # said before the tests run, not after an hour of recording
        raise ModelSpecError(f"{option}: cannot write {path}: {blocker} is a file, not a folder")
    return path


def _prices(config: pytest.Config) -> dict[str, Any]:
    from .pricing import PriceError, price_table

    lines = [str(line) for line in config.getini("modelmigrate_prices")]
    file_value = str(config.getini("modelmigrate_prices_file") or "")
    if not lines and not file_value:
        return {}
    try:
        return dict(price_table(lines, file_value or None, base_dir=Path(config.rootpath)))
    except PriceError as exc:
        raise ModelSpecError(str(exc)) from None


def _nonnegative_float(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ModelSpecError(f"{where}: {text!r} is not a number, e.g. 2.50") from None
    if value < 0:
        raise ModelSpecError(f"{where}: must not be negative, got {value:g}")
    return value


def _positive_int(text: str, where: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ModelSpecError(f"{where}: {text!r} is not a whole number; use e.g. 5") from None
    if value < 1:
        raise ModelSpecError(f"{where}: must be at least 1, got {value}")
    return value


def _fraction(text: str, where: str, *, lower_open: bool = False, upper_open: bool = False) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ModelSpecError(f"{where}: {text!r} is not a number between 0 and 1") from None
    low_ok = value > 0 if lower_open else value >= 0
    high_ok = value < 1 if upper_open else value <= 1
    if not (low_ok and high_ok):
        raise ModelSpecError(f"{where}: {value:g} is outside the allowed range (0 to 1)")
    return value


def _build_scrubber(config: pytest.Config) -> Scrubber:
    from .scrub import Scrubber

    headers = [str(h) for h in config.getini("modelmigrate_secret_headers")]
    return Scrubber.from_settings(
        extra_request_headers=headers,
        extra_response_headers=headers,
        extra_variables=[str(v) for v in config.getini("modelmigrate_secret_env")],
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "models(only=None, skip=None, xfail=None): run this test on some models only, skip some, "
        "or expect it to fail on some (xfail={'model': 'reason'})",
    )
    config.addinivalue_line(
        "markers",
        "prompt(name, purpose=None, sensitivities=None): the prompt this test guards; "
        "groups tests in the migration matrix",
    )
    config.addinivalue_line(
        "markers", "samples(n): run this prompt test n times per model (overrides --samples)"
    )
    config.addinivalue_line(
        "markers",
        "dataset(path, labels=None, label_field='label', id_field='id'): parametrize this test over "
        "the examples of a JSONL, CSV or YAML file beside it (the `example` fixture)",
    )
    try:
        settings = _resolve_config(config)
    except ModelSpecError as exc:
        raise pytest.UsageError(str(exc)) from None
    plugin = MigrationPlugin(config, settings)
    config.stash[migration_key] = plugin
    config.pluginmanager.register(plugin, "modelmigrate-session")


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.stash.get(migration_key, None)
    if plugin is not None:
        config.pluginmanager.unregister(plugin)
        del config.stash[migration_key]


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


def _parametrize_dataset(metafunc: pytest.Metafunc) -> None:
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
    from .datasets import DatasetError, dataset_path, load_dataset

    path = dataset_path(Path(str(metafunc.definition.path)), str(mark.args[0]))
    options = {k: v for k, v in mark.kwargs.items() if k in ("labels", "label_field", "id_field")}
    unknown = set(mark.kwargs) - {"labels", "label_field", "id_field", "min_accuracy"}
    if unknown:
        pytest.fail(
            f"{where}: @pytest.mark.dataset got unknown argument(s) {sorted(unknown)}; "
            "use labels=[...], label_field='label', id_field='id' or min_accuracy=0.9",
            pytrace=False,
        )
    plugin = metafunc.config.stash[migration_key]
    key = (str(path), repr(sorted(options.items())))
    examples = plugin.datasets.get(key)
    if examples is None:
        try:
            examples = load_dataset(path, **options)
        except DatasetError as exc:
            problem = str(exc)
        else:
            problem = ""
        if problem or examples is None:
            pytest.fail(f"{where}: {problem}", pytrace=False)
        plugin.datasets[key] = examples
    metafunc.parametrize("example", [pytest.param(ex, id=ex.id) for ex in examples], indirect=True)


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    _parametrize_dataset(metafunc)
    if "model" not in metafunc.fixturenames or _parametrizes_model_itself(metafunc):
        return
    plugin = metafunc.config.stash[migration_key]
    registry = plugin.settings.registry
    if not registry:
        return  # the fixture fails each such test with a message naming both settings
    where = metafunc.definition.nodeid
    mark_filter = MarkerFilter()
    marks = list(metafunc.definition.iter_markers("models"))
    if marks:
        kwargs: dict[str, object] = {}
        args: list[object] = []
        for mark in reversed(marks):  # the closest mark wins
            kwargs.update(mark.kwargs)
            args = list(mark.args) or args
        problem = ""
        try:
            mark_filter = marker_filter(kwargs, args, registry, where=where)
        except ModelSpecError as exc:
            problem = str(exc)
        if problem:
            pytest.fail(problem, pytrace=False)
    params = []
    for spec in registry:
        if not mark_filter.allows(spec):
            continue
        reason = mark_filter.xfail_reason(spec)
        item_marks = [pytest.mark.xfail(reason=reason, strict=False)] if reason else []
        params.append(pytest.param(spec, id=spec.id, marks=item_marks))
    metafunc.parametrize("model", params, indirect=True)


def _model_param(item: pytest.Item) -> ModelSpec | None:
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    value = callspec.params.get("model")
    return value if isinstance(value, ModelSpec) else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect models outside this run late, so syrupy & co. still see the whole registry."""
    plugin = config.stash[migration_key]
    selected = set(plugin.settings.selected_ids)
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        spec = _model_param(item)
        (dropped if spec is not None and spec.id not in selected else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    plugin.collector.set_order(item.nodeid for item in items)
    if plugin.settings.samples_auto:
        plugin.plan_adaptive(items)


# -- fixtures ----------------------------------------------------------------------------------


def _test_name_without_model(nodeid: str, model_id: str) -> str:
    from .results import split_model_id

    split = split_model_id(nodeid, [model_id])
    return split[0] if split else nodeid


def _record_command(item: pytest.Item, spec: ModelSpec, mode: str) -> str:
    return f"pytest {shlex.quote(item.nodeid)} --models={shlex.quote(str(spec))} --record-mode={mode}"


@pytest.fixture
def model(request: pytest.FixtureRequest) -> Iterator[str]:
    """The model name to send to the provider; the test's traffic goes to its own cassette.

    Parametrized over the configured models (``--models`` or the ini ``modelmigrate_models``).
    """
    plugin: MigrationPlugin = request.config.stash[migration_key]
    spec = getattr(request, "param", None)
    if not isinstance(spec, ModelSpec):
        why = (
            "models are configured, but this test's `model` was not parametrized by pytest-modelmigrate"
            if plugin.settings.registry
            else "neither is set"
        )
        pytest.fail(
            f"{request.node.nodeid} uses the `model` fixture, but no models are configured for it: "
            f"pass --models=a,b on the command line or set modelmigrate_models in the ini file ({why})",
            pytrace=False,
        )
    yield from plugin.run_with_cassette(request, request.node, spec)


@pytest.fixture
def model_spec(request: pytest.FixtureRequest, model: str) -> ModelSpec:
    """The :class:`~pytest_modelmigrate.models.ModelSpec` (``id`` and ``name``) of the current model."""
    spec: ModelSpec = request.node.stash[item_key].spec
    return spec


@pytest.fixture
def checks(
    request: pytest.FixtureRequest,
    model: str,
    modelmigrate_judge: Judge | None,
    modelmigrate_embedder: Embedder | None,
) -> CheckCollector:
    """Soft checks: every check runs and is recorded; the test fails at its end listing each failure."""
    from .checks.collector import CheckCollector

    plugin: MigrationPlugin = request.config.stash[migration_key]
    state = request.node.stash[item_key]
    state.judge_model = modelmigrate_judge.model if modelmigrate_judge is not None else None
    collector = CheckCollector(
        test_id=request.node.nodeid,
        model=state.spec.id,
        last_call=lambda: plugin.last_call(state),
        incumbent_output=lambda: plugin.incumbent_output(request.node, state),
        embedder=modelmigrate_embedder,
        judge=modelmigrate_judge,
    )
    state.collector = collector
    return collector


@pytest.fixture(scope="session")
def modelmigrate_judge(pytestconfig: pytest.Config) -> Judge | None:
    """The LLM judge for ``checks.judge``: ini ``modelmigrate_judge_model`` (pinned, never parametrized).

    Override this fixture to build your own :class:`~pytest_modelmigrate.checks.judge.Judge`.
    """
    model_name = str(pytestconfig.getini("modelmigrate_judge_model") or "").strip()
    if not model_name:
        return None
    from .checks.judge import Judge

    provider = str(pytestconfig.getini("modelmigrate_judge_provider") or "").strip() or None
    patterns = _provider_patterns(pytestconfig)

    def factory(model_name: str, provider: str | None) -> PromptClient:
        from .prompting import PromptClient

        return PromptClient(model_name, provider, provider_patterns=patterns)

    return Judge(model_name, provider, client_factory=factory)


@pytest.fixture(scope="session")
def modelmigrate_embedder(pytestconfig: pytest.Config) -> Embedder | None:
    """The similarity scorer for ``checks.similar`` and ``checks.drift`` (ini ``modelmigrate_embedder``)."""
    value = str(pytestconfig.getini("modelmigrate_embedder") or "lexical").strip()
    kind, _, name = value.partition(":")
    if kind == "lexical" and not name:
        return None
    if kind == "openai" and name:
        from .checks.similarity import OpenAIEmbedder

        return OpenAIEmbedder(name)
    if kind == "sentence-transformers" and name:
        from .checks.similarity import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(name)
    raise pytest.UsageError(
        f"ini modelmigrate_embedder: {value!r} is not a scorer; use lexical, openai:<model> "
        "(e.g. openai:text-embedding-3-small) or sentence-transformers:<model>"
    )


def _provider_patterns(config: pytest.Config) -> list[tuple[str, str]]:
    from .prompting import DEFAULT_PROVIDER_PATTERNS

    patterns: list[tuple[str, str]] = []
    for line in config.getini("modelmigrate_provider_patterns"):
        pattern, sep, provider = str(line).partition("=")
        if not sep or provider.strip() not in ("openai", "anthropic") or not pattern.strip():
            raise pytest.UsageError(
                f"ini modelmigrate_provider_patterns: {line!r} should read pattern=provider, "
                "e.g. claude*=anthropic or llama*=openai"
            )
        patterns.append((pattern.strip(), provider.strip()))
    return patterns + list(DEFAULT_PROVIDER_PATTERNS)


@pytest.fixture
def prompt(request: pytest.FixtureRequest, model: str) -> PromptClient:
    """Send a prompt to the current model through its official SDK (``prompt.ask("...")``)."""
    from .prompting import PromptClient

    return PromptClient(model, provider_patterns=_provider_patterns(request.config))


@pytest.fixture
def example(request: pytest.FixtureRequest) -> Example:
    """The labelled example of a ``@pytest.mark.dataset`` test."""
    value = getattr(request, "param", None)
    if value is None:
        pytest.fail(
            f'{request.node.nodeid} uses the `example` fixture without @pytest.mark.dataset("file")',
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
        state = self._item.stash.get(item_key, None)
        if state is not None:
            state.dataset.append(record)
        return record

    def label(self, predicted: Any, expected: Any = None) -> bool:
        """A classification: ``predicted`` against ``expected`` (default: the example's label)."""
        from .datasets import label_record

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
        from .datasets import fields_record

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
def snapshot_model(snapshot: Any) -> Any:
    """syrupy's ``snapshot`` with one snapshot set per model: ``__snapshots__/<model>/<module>/...``."""
    from .snapshots import ModelSnapshotExtension

    return snapshot.use_extension(ModelSnapshotExtension)


@pytest.fixture(scope="session")
def modelmigrate_emulator(pytestconfig: pytest.Config) -> Iterator[str]:
    """Base URL of the local provider emulator (``http://127.0.0.1:PORT``).

    Point the SDKs at it: ``openai.OpenAI(base_url=url + "/v1")``, ``anthropic.Anthropic(base_url=url)``.
    When replaying, nothing listens there (cassettes answer); when recording, the emulator is
    started on the fixed port (ini ``modelmigrate_emulator_port``) unless one already runs there.
    """
    plugin = pytestconfig.stash[migration_key]
    port_text = str(pytestconfig.getini("modelmigrate_emulator_port"))
    try:
        port = int(port_text)
    except ValueError:
        raise pytest.UsageError(
            f"ini modelmigrate_emulator_port: {port_text!r} is not a port number"
        ) from None
    url = f"http://127.0.0.1:{port}"
    if plugin.settings.record_mode == "none" or _emulator_answers(url):
        yield url
        return
    from .emulator import Emulator, ScriptError

    script_value = str(pytestconfig.getini("modelmigrate_emulator_script"))
    script = _ini_path(pytestconfig, script_value) if script_value else None
    scale = float(str(pytestconfig.getini("modelmigrate_emulator_time_scale")))
    try:
        emulator = Emulator(script=script, port=port, time_scale=scale)
    except ScriptError as exc:
        raise pytest.UsageError(f"ini modelmigrate_emulator_script: {exc}") from None
    with emulator:
        yield emulator.url


def _emulator_answers(url: str) -> bool:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) == 0


# -- the session plugin ------------------------------------------------------------------------


class MigrationPlugin:
    """Per-session state and the hooks that need it; registered in ``pytest_configure``."""

    def __init__(self, config: pytest.Config, settings: MigrationConfig) -> None:
        self.config = config
        self.settings = settings
        self.is_worker = hasattr(config, "workerinput")
        self.collector = ResultCollector([spec.id for spec in settings.registry])
        self._scrubber: Scrubber | None = None
        self.datasets: dict[tuple[str, str], list[Example]] = {}
        self.adaptive_plan: Any = None
        self.adaptive_targets: dict[str, int] = {}
        self.calls_recorded = 0
        self.cost_recorded = 0.0
        self.budget_exhausted = False
        self._gate: GateResult | None = None
        self.other_failures = 0
        self.run: dict[str, Any] | None = None
        self.written: list[Path] = []
        self.baseline: dict[str, Any] | None = None
        self.baseline_lines: list[str] = []
        self.extra_regressions: list[str] = []
        self.gate_lines: list[str] = []
        self.adaptive_lines: list[str] = []
        self.adaptive_plan_final: Any = None
        self.sequential_regressions: list[str] = []
        self.sequential_verdict_lines: list[str] = []
        self.gate_passed = True
        if settings.baseline_compare is not None and not self.is_worker:
            from .baseline import BaselineError, load_run

            try:
                self.baseline = load_run(settings.baseline_compare)
            except BaselineError as exc:
                raise pytest.UsageError(f"--migration-baseline-compare: {exc}") from None

    def pytest_warning_recorded(self, warning_message: Any, when: str) -> None:
        """pytest warns "Unknown config option: modelmigrate_modle"; add which setting was meant."""
        text = str(warning_message.message).strip()
        prefix = "Unknown config option: "
        if when != "config" or not text.startswith(prefix + "modelmigrate_"):
            return
        import difflib

        known = INI_SETTINGS
        key = text[len(prefix) :]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
        self.config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                f"ini {key} is not a pytest-modelmigrate setting and is ignored ({hint})"
            ),
            stacklevel=2,
        )

    @property
    def scrubber(self) -> Scrubber:
        if self._scrubber is None:
            self._scrubber = _build_scrubber(self.config)
        return self._scrubber

    @functools.cached_property
    def parse_cache(self) -> Path | None:
        """Where parsed cassettes are kept between runs (None: -p no:cacheprovider, or turned off)."""
        cache = getattr(self.config, "cache", None)
        if cache is None or not self.config.getini("modelmigrate_parse_cache"):
            return None
        try:
            folder: Path = cache.mkdir("modelmigrate-cassettes")
        except OSError:
            return None  # a read-only checkout: parse every time
        return folder

    # -- running one (test, model) -----------------------------------------------------------
    def run_with_cassette(
        self, request: pytest.FixtureRequest, item: pytest.Item, spec: ModelSpec
    ) -> Generator[str, None, None]:
        test = _test_name_without_model(item.nodeid, spec.id)
        # each dataset example keeps its own cassette; only the matrix row drops the example id
        cassette_test = test
        callspec = getattr(item, "callspec", None)
        example = callspec.params.get("example") if callspec is not None else None
        if example is not None and item.get_closest_marker("dataset") is not None:
            test = _test_name_without_model(test, str(example.id))
        samples = self.settings.samples
        if self.settings.samples_auto and self.settings.adaptive is not None:
            samples = self.adaptive_targets.get(cassette_test, self.settings.adaptive.min_samples)
        samples_mark = item.get_closest_marker("samples")
        if samples_mark is not None:
            try:
                samples = _positive_int(
                    str(samples_mark.args[0]) if samples_mark.args else "", "@pytest.mark.samples"
                )
            except ModelSpecError as exc:
                pytest.fail(f"{item.nodeid}: {exc}", pytrace=False)
        prompt_mark = item.get_closest_marker("prompt")
        prompt: dict[str, Any] = {}
        group = default_group(test)
        if prompt_mark is not None:
            if not prompt_mark.args or not isinstance(prompt_mark.args[0], str):
                pytest.fail(
                    f"{item.nodeid}: @pytest.mark.prompt needs the prompt's name first, "
                    'e.g. @pytest.mark.prompt("ticket-triage", purpose="...")',
                    pytrace=False,
                )
            group = prompt_mark.args[0]
            prompt = {"name": group}
            for key in ("purpose", "sensitivities", "tolerance"):
                if key in prompt_mark.kwargs:
                    value = prompt_mark.kwargs[key]
                    prompt[key] = list(value) if key == "sensitivities" else value
        mode = self.settings.record_mode
        cassette: Path | None = None
        if mode != RECORD_MODE_DISABLED:
            from .cassettes import cassette_path

            test_name = cassette_test.split("::", 1)[1] if "::" in cassette_test else cassette_test
            cassette = cassette_path(
                Path(str(item.path)), test_name, spec.id, folder=self.settings.cassette_dir
            )
        state = ItemState(
            spec=spec,
            test=test,
            group=group,
            cassette=cassette,
            prompt=prompt,
            samples=samples,
            example=example,
        )
        item.stash[item_key] = state
        self._publish(item, state)
        if cassette is None:
            yield spec.name
            return
        yield from self._with_cassette(request, item, state, cassette)

    def _with_cassette(
        self, request: pytest.FixtureRequest, item: pytest.Item, state: ItemState, path: Path
    ) -> Generator[str, None, None]:
        from .cassettes import open_cassette

        mode = self.settings.record_mode
        user_config: dict[str, Any] = {}
        with contextlib.suppress(pytest.FixtureLookupError):
            user_config.update(request.getfixturevalue("vcr_config") or {})
        for mark in reversed(list(item.iter_markers("vcr"))):
            user_config.update(mark.kwargs)
        hint_mode = "rewrite" if path.exists() else "once"
        hint = _record_command(item, state.spec, hint_mode)
        hook = getattr(self.config.hook, "pytest_recording_configure", None)

        def configure(vcr: Any) -> None:
            if hook is not None:
                hook(config=self.config, vcr=vcr)

        try:
            with open_cassette(
                path,
                record_mode=mode,
                scrubber=self.scrubber,
                user_config=user_config,
                miss_hint=hint,
                configure=configure,
                parse_cache=self.parse_cache,
            ) as session:
                state.cassette_session = session
                yield state.spec.name
                if state.sample_outcomes:
                    session.metadata = {"samples": list(state.sample_outcomes)}
                if mode != "none" and not state.call_done:
                    # interrupted (Ctrl-C) or a fixture failed before the test ran: keep the old file
                    session.discard = True
        except Exception as exc:
            from .cassettes import CassetteReadError
            from .scrub import SecretInCassetteError

            if isinstance(exc, (CassetteReadError, SecretInCassetteError)):
                pytest.fail(f"{item.nodeid}: {exc}", pytrace=False)
            raise

    # -- adaptive sampling ----------------------------------------------------------------------
    def plan_adaptive(self, items: list[pytest.Item]) -> None:
        """Decide, from the samples earlier runs recorded, how many rounds each test takes now."""
        from .adaptive import plan_samples
        from .cassettes import cassette_path, read_sample_outcomes

        settings = self.settings
        if settings.incumbent is None or settings.adaptive is None:
            return
        recorded: dict[str, dict[str, list[str]]] = {}
        groups: dict[str, str] = {}
        for item in items:
            spec = _model_param(item)
            if spec is None:
                continue
            test = _test_name_without_model(item.nodeid, spec.id)
            mark = item.get_closest_marker("prompt")
            groups[test] = str(mark.args[0]) if mark is not None and mark.args else default_group(test)
            name = test.split("::", 1)[1] if "::" in test else test
            path = cassette_path(Path(str(item.path)), name, spec.id, folder=settings.cassette_dir)
            recorded.setdefault(test, {})[spec.id] = read_sample_outcomes(path)
        candidates = [s.id for s in settings.selected if s.id != settings.incumbent.id]
        self.adaptive_plan = plan_samples(
            recorded,
            groups,
            settings.incumbent.id,
            candidates,
            settings.adaptive,
            recording=settings.record_mode not in ("none", RECORD_MODE_DISABLED),
            batch=settings.samples_batch,
        )
        self.adaptive_targets = dict(self.adaptive_plan.targets)

    def _budget_spent(self, state: ItemState, index: int) -> bool:
        """Recording with --samples=auto: no new sample once the call or dollar budget is used."""
        settings = self.settings
        if not settings.samples_auto or settings.record_mode in ("none", RECORD_MODE_DISABLED):
            return False
        over_calls = settings.max_calls is not None and self.calls_recorded >= settings.max_calls
        over_cost = settings.budget_usd is not None and self.cost_recorded >= settings.budget_usd
        if (over_calls or over_cost) and index > 0:
            self.budget_exhausted = True
            return True
        return False

    def _count_recorded(self, state: ItemState) -> None:
        session = state.cassette_session
        if session is None:
            return
        new = session.recorded - state.counted
        state.counted = session.recorded
        self.calls_recorded += new
        if new and self.settings.prices:
            from .metrics import price_for_call

            self._read_calls(state)
            names = {s.id: s.name for s in self.settings.registry}
            for call in state.calls[-new:]:
                price = price_for_call(call, state.spec.id, self.settings.prices, names)
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
                self.cost_recorded += cost or 0.0

    def adaptive_summary(self) -> tuple[dict[str, Any], list[str]] | None:
        """Decisions from this run's sample outcomes (the same offline as when recorded)."""
        settings = self.settings
        if not settings.samples_auto or settings.incumbent is None or settings.adaptive is None:
            return None
        from .adaptive import decide, summary_lines

        outcomes: dict[str, dict[str, list[str]]] = {}
        groups: dict[str, str] = {}
        for outcome in self.collector.outcomes():
            outcomes.setdefault(outcome.test, {})[outcome.model] = list(outcome.samples)
            groups[outcome.test] = outcome.group
        candidates = [s.id for s in settings.selected if s.id != settings.incumbent.id]
        plan = decide(outcomes, groups, settings.incumbent.id, candidates, settings.adaptive)
        self.adaptive_plan_final = plan
        plan.targets = {t: min((len(v) for v in per.values()), default=0) for t, per in outcomes.items()}
        plan.budget_spent = self.budget_exhausted
        lines = summary_lines(plan, fixed_n=settings.adaptive.max_samples, calls_made=self.calls_recorded)
        return {
            **plan.to_dict(),
            "policy": settings.adaptive.to_dict(),
            "calls_recorded": self.calls_recorded,
        }, lines

    # -- what checks read ----------------------------------------------------------------------
    def _parsed_call(self, state: ItemState, index: int) -> Call:
        """Interaction ``index`` of the test's cassette as a :class:`Call`, parsed once."""
        call = state.parsed.get(index)
        if call is None:
            from .providers.parse import parse_interaction

            session = state.cassette_session
            assert session is not None
            request, response = session.used[index]
            checked = session.preparsed.get(id(response))
            if checked is not None and checked[0] is response:  # the stream parsed on load
                call = checked[1]
            else:
                source = str(session.path)
                call = parse_interaction(request._to_dict(), response, source=source, index=index)
            state.parsed[index] = call
        return call

    def _generation_calls(self, state: ItemState) -> list[Call]:
        """The test's model calls so far (judge and embedding calls left out)."""
        session = state.cassette_session
        if session is None:
            return []
        calls = []
        for index in range(len(session.used)):
            call = self._parsed_call(state, index)
            if call.endpoint not in ("chat.completions", "responses", "messages"):
                continue
            if state.judge_model and call.model_requested == state.judge_model != state.spec.name:
                continue
            calls.append(call)
        return calls

    def last_call(self, state: ItemState) -> Call | None:
        calls = self._generation_calls(state)
        return calls[-1] if calls else None

    def incumbent_output(self, item: pytest.Item, state: ItemState) -> str | None:
        """The incumbent's text for the same test (and sample), read from its cassette."""
        incumbent = self.settings.incumbent
        mine = self._generation_calls(state)
        position = max(len(mine) - 1, 0)
        if incumbent is None or state.cassette is None:
            return None
        if incumbent.id == state.spec.id:
            return mine[position].text if mine else None
        from .providers.base import CassetteFormatError
        from .providers.parse import load_calls

        # the same file name in the incumbent's folder: <module>/<incumbent>/<test>.yaml
        path = state.cassette.parent.parent / incumbent.id / state.cassette.name
        if not path.is_file():
            return None
        try:
            theirs = [
                c
                for c in load_calls(path)
                if c.endpoint in ("chat.completions", "responses", "messages")
                and not (state.judge_model and c.model_requested == state.judge_model != incumbent.name)
            ]
        except CassetteFormatError as exc:
            pytest.fail(f"{item.nodeid}: drift: cannot read the incumbent's cassette: {exc}", pytrace=False)
        if not theirs:
            return None
        return theirs[min(position, len(theirs) - 1)].text

    def _publish(self, item: pytest.Item, state: ItemState, *, full: bool = False) -> None:
        """Put this (test, model)'s JSON-safe record in ``user_properties`` (xdist carries it).

        Every report carries who it is about (so a crashed worker's test is still placed);
        only the last one, the teardown's, carries calls, checks and samples: pytest keeps
        every report until the end, and the controller needs them once.
        """
        if state.cassette_rel is None and state.cassette is not None:
            state.cassette_rel = _relative(state.cassette, self.config.rootpath)
        record: dict[str, Any] = {
            "v": RECORD_VERSION,
            "test": state.test,
            "model": state.spec.id,
            "group": state.group,
            "cassette": state.cassette_rel,
        }
        # JUnit XML writes the teardown report's properties: the plain ones go there only
        simple = [("model", state.spec.id), ("prompt", state.group)] if full else []
        if full:
            record["calls"] = state.calls
            record["samples"] = list(state.sample_outcomes)
            record["checks"] = checks = state.check_dicts()
            failed = sorted({c["name"] for c in checks if not c["passed"]})
            simple.append(("checks_failed", ",".join(failed)))
        if state.prompt:
            record["prompt"] = state.prompt
        if full and state.dataset:
            record["dataset"] = list(state.dataset)
            mark = item.get_closest_marker("dataset")
            if mark is not None:
                settings = {k: mark.kwargs[k] for k in ("labels", "min_accuracy") if k in mark.kwargs}
                record["dataset_settings"] = {k: list(v) if k == "labels" else v for k, v in settings.items()}
        ours = {PROPERTY, *(name for name, _ in simple), "checks_failed"}
        item.user_properties[:] = [(k, v) for k, v in item.user_properties if k not in ours]
        # JUnit XML shows these as plain properties; the record is for the controller
        item.user_properties.extend([*simple, (PROPERTY, record)])

    def _read_calls(self, state: ItemState) -> None:
        """The JSON-safe summary of every call the test made (what metrics read)."""
        from .providers.base import CassetteFormatError

        session = state.cassette_session
        if session is None:
            return
        calls = []
        for index in range(len(session.used)):
            try:
                calls.append(self._parsed_call(state, index).summary())
            except CassetteFormatError as exc:
                error = {"message": str(exc)}
                calls.append({"provider": "unknown", "endpoint": "other", "status": 0, "error": error})
        state.calls = calls

    # -- hooks -------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool | None:
        """Run a test ``samples`` times in one item; each sample's calls are episodes of one cassette."""
        state = pyfuncitem.stash.get(item_key, None)
        if state is None or (state.samples <= 1 and not self.settings.samples_auto):
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
        state.sample_starts.clear()
        for index in range(state.samples):
            if self._budget_spent(state, index):
                break
            state.sample_starts.append(len(state.collector.results) if state.collector is not None else 0)
            problem = self._run_sample(function, kwargs, state)
            state.sample_outcomes.append("failed" if problem else "passed")
            if problem:
                problems.append(f"sample {index + 1}: {problem}")
        if self.settings.samples_auto:
            self._count_recorded(state)
        if problems:
            shown = "\n".join(f"  {p}" for p in problems[:10])
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            pytest.fail(
                f"{len(problems)} of {state.samples} samples failed on {state.spec.id}:\n{shown}{more}",
                pytrace=False,
            )
        return True

    def _run_sample(self, function: Any, kwargs: dict[str, Any], state: ItemState) -> str | None:
        from .checks.result import ChecksConfigError

        start = state.sample_starts[-1]
        try:
            function(**kwargs)
        except (pytest.skip.Exception, CassetteMissError, ChecksConfigError):
            raise
        except (AssertionError, pytest.fail.Exception) as exc:
            return _first_line(exc)
        except Exception as exc:  # noqa: BLE001 - one sample's error fails that sample; it is reported
            return f"{type(exc).__name__}: {_first_line(exc)}"
        if state.collector is not None:
            failed = [r for r in state.collector.results[start:] if not r.passed]
            if failed:
                return "; ".join(f"{r.name}: {r.message}" for r in failed[:3])
        return None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        state = item.stash.get(item_key, None)
        if state is not None and not state.sample_starts:
            state.sample_starts.append(0)
        try:
            result = yield
        except Exception as exc:
            from .checks.result import ChecksConfigError, CheckUnavailable

            if isinstance(exc, CheckUnavailable):
                pytest.skip(str(exc))
            if isinstance(exc, ChecksConfigError):
                pytest.fail(f"{item.nodeid}: {exc}", pytrace=False)
            raise
        collector = state.collector if state is not None and state.samples <= 1 else None
        message = collector.summary_message() if collector is not None else ""
        if message:
            pytest.fail(message, pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, Any, Any]:
        state = item.stash.get(item_key, None)
        if state is not None:
            if call.when == "call":
                state.call_done = True
                session = state.cassette_session
                excinfo = call.excinfo
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
                self._read_calls(state)  # fixtures may call the model while tearing down
            self._publish(item, state, full=call.when == "teardown")
        report = yield
        if state is not None and call.excinfo is not None:
            from .cassettes import CassetteMiss

            if call.excinfo.errisinstance(CassetteMiss):
                report.longrepr = str(call.excinfo.value)
        if state is not None and call.when == "teardown":
            # The record is published; pytest keeps every item to the end of the session, so
            # don't let it keep the interactions (request and response bodies) and parsed calls.
            del item.stash[item_key]
        return report

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self.collector.set_order(ids)

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes the properties out
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        message = None
        if report.failed and report.longrepr is not None:
            message = _short_message(report)
        added = self.collector.add(
            nodeid=report.nodeid,
            when=str(report.when),  # "???" for xdist's report of a crashed worker
            outcome=report.outcome,
            wasxfail=hasattr(report, "wasxfail"),
            user_properties=report.user_properties,
            duration=report.duration,
            message=message,
        )
        if added is None and report.failed:
            self.other_failures += 1
        if added is not None:
            # The record has been read; pytest keeps every report until the end of the session,
            # so don't let it keep a second copy of the calls and checks (model, prompt and
            # checks_failed stay, as plain properties, for JUnit XML and other readers).
            report.user_properties = [(k, v) for k, v in report.user_properties if k != PROPERTY]

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        settings = self.settings
        if not settings.registry:
            return []  # installed but unused: say nothing
        models = ", ".join(str(spec) for spec in settings.selected) or "none"
        incumbent = settings.incumbent.id if settings.incumbent else "none"
        samples = f"; samples {settings.samples}" if settings.samples > 1 else ""
        return [
            f"modelmigrate: models {models} (incumbent {incumbent}, from {settings.models_source}); "
            f"record mode {settings.record_mode}{samples}; gate {settings.gate_mode}; "
            f"cassettes in <test dir>/{settings.cassette_dir}/"
        ]

    # -- the end of the session ----------------------------------------------------------------
    @property
    def model_ids(self) -> list[str]:
        return [spec.id for spec in (self.settings.selected or self.settings.registry)]

    def matrix(self) -> Matrix:
        from .results import build_matrix

        return build_matrix(self.collector.outcomes(), self.model_ids)

    def gate(self) -> GateResult | None:
        """The gate's decision over this run's matrix (None when no model test ran)."""
        if self._gate is not None or not self.collector.outcomes():
            return self._gate
        from .gate import GatePolicy, Tally, evaluate

        matrix = self.matrix()
        groups = {
            group.name: {
                row.name: {m: Tally(c.passed, c.total) for m, c in row.cells.items() if c.total}
                for row in group.tests
            }
            for group in matrix.groups
        }
        group_tolerance: dict[str, float] = {}
        for outcome in self.collector.outcomes():
            tolerance = (outcome.extra.get("prompt") or {}).get("tolerance")
            if isinstance(tolerance, (int, float)):
                group_tolerance[outcome.group] = float(tolerance)
        settings = self.settings
        policy = GatePolicy(
            mode=settings.gate_mode,
            incumbent=settings.incumbent.id if settings.incumbent else None,
            tolerance=settings.tolerance,
            group_tolerance=group_tolerance,
            alpha=settings.alpha,
            power=settings.power,
            min_drop=settings.min_drop,
        )
        self._gate = evaluate(groups, self.model_ids, policy)
        return self._gate

    def dataset_metrics(self) -> dict[str, dict[str, Any]]:
        """test -> model -> DatasetMetrics, for tests that recorded predictions."""
        from .datasets import aggregate

        records: dict[str, dict[str, list[dict[str, Any]]]] = {}
        labels: dict[str, list[str] | None] = {}
        for outcome in self.collector.outcomes():
            for record in outcome.extra.get("dataset") or []:
                records.setdefault(outcome.test, {}).setdefault(outcome.model, []).append(record)
            settings = outcome.extra.get("dataset_settings") or {}
            labels.setdefault(outcome.test, settings.get("labels"))
        return {
            test: {model: aggregate(recs, labels=labels.get(test)) for model, recs in by_model.items()}
            for test, by_model in records.items()
        }

    def dataset_regressions(self) -> list[str]:
        """Dataset tests whose candidate falls below min_accuracy or drops beyond the tolerance."""
        from .datasets import compare_to_incumbent

        incumbent = self.settings.incumbent
        if incumbent is None:
            return []
        settings_by_test: dict[str, dict[str, Any]] = {}
        tolerance_by_test: dict[str, float] = {}
        for outcome in self.collector.outcomes():
            if outcome.extra.get("dataset_settings"):
                settings_by_test[outcome.test] = outcome.extra["dataset_settings"]
            tolerance = (outcome.extra.get("prompt") or {}).get("tolerance")
            tolerance_by_test[outcome.test] = (
                float(tolerance) if isinstance(tolerance, (int, float)) else self.settings.tolerance
            )
        found: list[str] = []
        for test, by_model in self.dataset_metrics().items():
            base = by_model.get(incumbent.id)
            if base is None:
                continue
            for model, metrics in by_model.items():
                if model == incumbent.id:
                    continue
                reasons = compare_to_incumbent(
                    base,
                    metrics,
                    min_accuracy=settings_by_test.get(test, {}).get("min_accuracy"),
                    tolerance=tolerance_by_test.get(test, 0.0),
                )
                if reasons:
                    found.append(f"dataset {test} on {model}: " + "; ".join(reasons))
        return found

    def build_run(self) -> dict[str, Any]:
        """The whole run as JSON-safe data: what every report renders."""
        from .metrics import compute_metrics
        from .reports.breakdown import check_breakdown
        from .reports.run import build_run

        settings = self.settings
        specs = settings.selected or settings.registry
        incumbent = settings.incumbent.id if settings.incumbent else None
        gate = self.gate()
        extra: dict[str, Any] = {"samples": settings.samples}
        if gate is not None:
            extra["gate"] = {**gate.to_dict(), "policy": gate.policy.to_dict()}
        datasets = self.dataset_metrics()
        if datasets:
            extra["datasets"] = {
                test: {model: metrics.to_dict() for model, metrics in by_model.items()}
                for test, by_model in datasets.items()
            }
        run = build_run(
            outcomes=self.collector.outcomes(),
            models=specs,
            incumbent=incumbent,
            record_mode=settings.record_mode,
            extra=extra,
            scrubber=self.scrubber,
        )
        run["checks"] = check_breakdown(run["outcomes"], self.model_ids)
        run["metrics"] = compute_metrics(
            run["outcomes"],
            self.model_ids,
            incumbent,
            settings.prices,
            model_names={s.id: s.name for s in specs},
        )
        if self.baseline is not None:
            from .baseline import compare_runs

            comparison = compare_runs(self.baseline, run, alpha=settings.alpha)
            run["baseline"] = comparison.to_dict()
            self.baseline_lines = comparison.lines()
            if comparison.regressed:
                count = len(comparison.regressions)
                self.extra_regressions.append(
                    f"{count} regression(s) against the baseline {settings.baseline_compare}"
                )
        adaptive = self.adaptive_summary()
        if adaptive is not None:
            run["adaptive"], self.adaptive_lines = adaptive
            if gate is not None:
                self._sequential_gate(run["gate"])
        if gate is not None:
            self._finish_gate(run["gate"], gate)
        self.config.hook.pytest_modelmigrate_run(config=self.config, run=run)
        return run

    def _sequential_gate(self, gate_dict: dict[str, Any]) -> None:
        """Under --samples=auto the sequential decisions, not fixed-N tests, make the verdicts."""
        from .adaptive import sequential_verdicts

        plan = self.adaptive_plan_final
        if plan is None:
            return
        groups = {o.test: o.group for o in self.collector.outcomes()}
        verdicts, regressions = sequential_verdicts(plan, groups)
        gate_dict["verdicts"] = {
            group: {
                cand: {**gate_dict.get("verdicts", {}).get(group, {}).get(cand, {}), **v}
                for cand, v in per.items()
            }
            for group, per in verdicts.items()
        }
        gate_dict["sequential_regressions"] = regressions
        self.sequential_regressions = regressions
        self.sequential_verdict_lines = [
            f"{group}  {cand}: {v['verdict']}: {v['reason']}"
            for group, per in sorted(verdicts.items())
            for cand, v in per.items()
        ]

    def _finish_gate(self, gate_dict: dict[str, Any], gate: GateResult) -> None:
        """Fold dataset and baseline regressions into the gate's decision and its last line."""
        self.extra_regressions.extend(self.dataset_regressions())
        lines = gate.lines()
        self.gate_lines = lines[:-1]
        passed = gate.passed
        final = lines[-1]
        if self.sequential_verdict_lines:
            mode = self.settings.gate_mode
            self.gate_lines = [lines[0], *self.sequential_verdict_lines]
            regressions = self.sequential_regressions
            if mode == "no-regression":
                passed = not regressions
                reason = (
                    f"{len(regressions)} sequential regression(s): " + "; ".join(regressions[:2])
                    if regressions
                    else "no sequential regression against the incumbent"
                )
                final = f"migration gate: {'PASSED' if passed else 'FAILED'}: {reason}"
        if self.extra_regressions:
            gate_dict["extra_regressions"] = list(self.extra_regressions)
            self.gate_lines.extend(self.extra_regressions)
            if self.settings.gate_mode != "report":
                passed = False
                reason = "; ".join(self.extra_regressions[:3])
                final = f"migration gate: FAILED: {reason}" if gate.passed else f"{final}; also {reason}"
        gate_dict["passed"] = passed
        gate_dict["line"] = final
        self.gate_passed = passed
        self.gate_lines.append(final)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        run = self.run
        if self.is_worker or run is None:
            return
        from .reports.breakdown import breakdown_lines
        from .reports.terminal import matrix_lines, metrics_lines

        write = terminalreporter.write_line
        terminalreporter.section("model migration matrix")
        for line in matrix_lines(self.matrix()):
            write(line)
        failing = breakdown_lines(run["checks"], failing_only=True)
        if failing:
            write("")
            write("checks that failed (failed samples / samples, per model):")
            for line in failing:
                write("  " + line)
        datasets = self.dataset_metrics()
        for test, by_model in datasets.items():
            from .datasets import render_dataset_lines

            write("")
            for line in render_dataset_lines(by_model, title=test):
                write(line)
        has_calls = any(o["calls"] for o in run["outcomes"])
        metrics = metrics_lines(run["metrics"]) if has_calls else []
        if metrics:
            write("")
            for line in metrics:
                write(line)
        for line in self.baseline_lines:
            write(line)
        if self.adaptive_lines:
            write("")
            for line in self.adaptive_lines:
                write(line)
        if self.gate_lines:
            write("")
            for line in self.gate_lines[:-1]:
                write(line)
            write(self.gate_lines[-1], green=self.gate_passed, red=not self.gate_passed, bold=True)
        for path in self.written:
            write(f"migration report written: {path}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker or not self.collector.outcomes():
            return
        self.run = run = self.build_run()
        judged = session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        if judged and self.gate_lines:
            mode = self.settings.gate_mode
            if mode == "strict":
                failed = session.exitstatus == pytest.ExitCode.TESTS_FAILED or not self.gate_passed
            else:
                failed = self.other_failures > 0 or (mode == "no-regression" and not self.gate_passed)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED if failed else pytest.ExitCode.OK
        self._write_reports(run)

    def _write_reports(self, run: dict[str, Any]) -> None:
        settings = self.settings
        outputs: list[tuple[str, Path | None, Any]] = []
        from .reports.run import write_json

        outputs.append(("--migration-json", settings.json_path, write_json))
        if settings.markdown_path is not None:
            from .reports.markdown import write_markdown

            outputs.append(("--migration-markdown", settings.markdown_path, write_markdown))
        if settings.html_path is not None:
            from .reports.html import write_html

            outputs.append(("--migration-html", settings.html_path, write_html))
        if settings.baseline_save is not None:
            from .baseline import save_baseline

            outputs.append(
                (
                    "--migration-baseline-save",
                    settings.baseline_save,
                    lambda path, run: save_baseline(run, path),
                )
            )
        for option, path, writer in outputs:
            if path is None:
                continue
            try:
                writer(path, run)
            except OSError as exc:
                raise pytest.UsageError(f"{option}: cannot write {path}: {exc.strerror or exc}") from None
            self.written.append(path)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            from .reports.markdown import render_markdown

            try:
                with open(summary, "a", encoding="utf-8") as handle:
                    handle.write(render_markdown(run) + "\n")
            except OSError as exc:
                raise pytest.UsageError(
                    f"$GITHUB_STEP_SUMMARY: cannot append to {summary}: {exc.strerror}"
                ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _relative(path: Path, root: Path | os.PathLike[str]) -> str:
    try:
        return Path(path).relative_to(Path(root)).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _short_message(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)[:500]
    text = str(report.longrepr).strip().splitlines()
    return text[-1][:500] if text else ""
