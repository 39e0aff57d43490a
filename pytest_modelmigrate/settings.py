"""Every setting of the plugin, declared once: flag, ini name, converter, default and help.

Pure module: no pytest import. ``plugin/`` generates ``addoption``/``addini`` and the check of
misspelt ini keys from :data:`SETTINGS`; :func:`resolve` turns what pytest read into one
validated :class:`Settings` at configure time, so a bad value is a usage error before any test
runs. Precedence: the command line over the ini file over the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .cassettes import MatchIgnore
from .models import ModelSpec, ModelSpecError, merge_registry, parse_models
from .models import resolve as resolve_model

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "DEFAULT_EMULATOR_PORT",
    "GATE_MODES",
    "INI_NAMES",
    "RECORD_MODE_DISABLED",
    "SETTINGS",
    "Setting",
    "Settings",
    "SettingsError",
    "resolve",
]

RECORD_MODE_DISABLED = "disabled"
GATE_MODES = ("strict", "no-regression", "report")
DEFAULT_EMULATOR_PORT = 8765
EMBEDDER_KINDS = ("lexical", "openai", "sentence-transformers")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the flag or ini key and the fix."""


# -- converters: text as pytest read it -> a value, or SettingsError naming ``where`` -----------


def _text(text: str, where: str) -> str:
    return text.strip()


def positive_int(text: str, where: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise SettingsError(f"{where}: {text!r} is not a whole number; use e.g. 5") from None
    if value < 1:
        raise SettingsError(f"{where}: must be at least 1, got {value}")
    return value


def _nonnegative_float(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{where}: {text!r} is not a number, e.g. 2.50") from None
    if not math.isfinite(value):
        raise SettingsError(f"{where}: {text!r} is not a finite number, e.g. 2.50")
    if value < 0:
        raise SettingsError(f"{where}: must not be negative, got {value:g}")
    return value


def _fraction(*, lower_open: bool, upper_open: bool) -> Callable[[str, str], float]:
    def convert(text: str, where: str) -> float:
        try:
            value = float(str(text).strip())
        except ValueError:
            raise SettingsError(f"{where}: {text!r} is not a number between 0 and 1") from None
        if math.isnan(value):
            raise SettingsError(f"{where}: {text!r} is not a number between 0 and 1")
        low_ok = value > 0 if lower_open else value >= 0
        high_ok = value < 1 if upper_open else value <= 1
        if not (low_ok and high_ok):
            raise SettingsError(f"{where}: {value:g} is outside the allowed range (0 to 1)")
        return value

    return convert


def _positive_float(text: str, where: str) -> float:
    value = _nonnegative_float(text, where)
    if value == 0:
        raise SettingsError(f"{where}: must be above 0, e.g. 1.5")
    return value


def _sunset(lines: Sequence[str], where: str) -> dict[str, date]:
    """``model: YYYY-MM-DD`` lines -> model -> date."""
    found: dict[str, date] = {}
    for line in _items(lines):
        model, sep, when = line.rpartition(":")
        try:
            day = date.fromisoformat(when.strip())
        except ValueError:
            day = None
        if not sep or not model.strip() or day is None:
            raise SettingsError(f"{where}: {line!r} should read model: YYYY-MM-DD, e.g. gpt-4o: 2027-03-31")
        found[model.strip()] = day
    return found


def _samples(text: str, where: str) -> int | str:
    return "auto" if str(text).strip() == "auto" else positive_int(text, where)


def _shard(text: str, where: str) -> tuple[int, int]:
    value = str(text).strip()
    index, sep, count = (part.strip() for part in value.partition("/"))
    if not (sep and index.isdecimal() and count.isdecimal()):
        raise SettingsError(f"{where}: {value!r} is not K/N; use e.g. 2/3 for the second of three shards")
    k, n = int(index), int(count)
    if n < 1:
        raise SettingsError(f"{where}: {value!r} names no shard; N, the number of shards, is at least 1")
    if not 1 <= k <= n:
        raise SettingsError(f"{where}: {value!r} names no shard; the shards of {n} are 1/{n} to {n}/{n}")
    return k, n


def _gate_mode(text: str, where: str) -> str:
    mode = str(text).strip()
    if mode not in GATE_MODES:
        raise SettingsError(f"{where}: {mode!r} is not one of {', '.join(GATE_MODES)}")
    return mode


def _bool(text: str, where: str) -> bool:
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{where}: {text!r} is not true or false")


def _port(text: str, where: str) -> int:
    try:
        port = int(str(text).strip())
    except ValueError:
        raise SettingsError(f"{where}: {text!r} is not a port number; use e.g. 8765") from None
    if not 0 < port < 65536:
        raise SettingsError(f"{where}: {port} is not a port number (1 to 65535)")
    return port


def _embedder(text: str, where: str) -> tuple[str, str]:
    value = str(text).strip() or "lexical"
    kind, _, name = value.partition(":")
    if (kind == "lexical" and not name) or (kind in EMBEDDER_KINDS[1:] and name):
        return kind, name
    raise SettingsError(
        f"{where}: {value!r} is not a scorer; use lexical, openai:<model> "
        "(e.g. openai:text-embedding-3-small) or sentence-transformers:<model>"
    )


def _provider_patterns(lines: Sequence[str], where: str) -> tuple[tuple[str, str], ...]:
    patterns = []
    for line in _items(lines):
        pattern, sep, provider = line.partition("=")
        if not sep or provider.strip() not in ("openai", "anthropic") or not pattern.strip():
            raise SettingsError(
                f"{where}: {line!r} should read pattern=provider, e.g. claude*=anthropic or llama*=openai"
            )
        patterns.append((pattern.strip(), provider.strip()))
    return tuple(patterns)


def _as_lines(value: str | Sequence[str]) -> list[str]:
    """A list-typed ini value as its lines: a TOML array, or a (multi-line) ini string."""
    if isinstance(value, str):
        value = value.splitlines()
    return [str(line).strip() for line in value if str(line).strip()]


def _items(value: str | Sequence[str]) -> list[str]:
    """The entries of a list setting given as lines, a TOML array or one comma-separated line."""
    return [part.strip() for line in _as_lines(value) for part in line.split(",") if part.strip()]


def _lines(lines: Sequence[str], where: str) -> tuple[str, ...]:
    return tuple(_as_lines(lines))


def _comma_items(lines: Sequence[str], where: str) -> tuple[str, ...]:
    return tuple(_items(lines))


@dataclass(frozen=True)
class Setting:
    """One setting: where it is read from and how its text becomes a value."""

    key: str  # the attribute of :class:`Settings` (also the option's ``dest``)
    help: str
    flag: str | None = None  # command-line flag, e.g. ``--models``
    ini: str | None = None  # ini key, e.g. ``modelmigrate_models``
    ini_type: Literal["string", "linelist"] = "string"  # pytest's addini type
    default: Any = None  # the value (already converted) when neither gives one
    convert: Callable[[Any, str], Any] = _text
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    switch: bool = False  # a flag that takes no value (``--migration-plan``)

    @property
    def where(self) -> str:
        return "/".join(name for name in (self.flag, f"ini {self.ini}" if self.ini else None) if name)


def _s(key: str, help: str, **kwargs: Any) -> Setting:
    return Setting(key=key, help=help, **kwargs)


_FRACTION = _fraction(lower_open=True, upper_open=True)

SETTINGS: tuple[Setting, ...] = (
    _s(
        "models",
        "Comma-separated model versions to run every test that uses `model` against, "
        "e.g. gpt-4o,gpt-5 or old=gpt-4o-2024-08-06,new=gpt-5 (overrides the ini setting)",
        flag="--models",
        ini="modelmigrate_models",
        ini_type="linelist",
        metavar="MODELS",
    ),
    _s(
        "incumbent",
        "The model in production now; every other model is a candidate (default: the first model)",
        flag="--incumbent",
        ini="modelmigrate_incumbent",
        metavar="MODEL",
    ),
    _s(
        "samples",
        "Run each prompt test N times per model, because models are stochastic, or 'auto': "
        "sample only while the comparison with the incumbent is undecided "
        "(the samples marker overrides it; default: 1)",
        flag="--samples",
        ini="modelmigrate_samples",
        metavar="N",
        default=1,
        convert=_samples,
    ),
    _s(
        "incumbent_samples",
        "Samples per test for the incumbent when more than --samples: its recordings are reused by "
        "every migration, and a longer history gives the comparison more power for the same "
        "candidate samples (not with --samples=auto)",
        flag="--incumbent-samples",
        ini="modelmigrate_incumbent_samples",
        metavar="N",
        convert=positive_int,
    ),
    _s(
        "samples_min",
        "With --samples=auto: rounds every test takes before any decision (default: 5)",
        flag="--samples-min",
        metavar="N",
        default=5,
        convert=positive_int,
    ),
    _s(
        "samples_max",
        "With --samples=auto: the most rounds a test takes (default: 20)",
        flag="--samples-max",
        metavar="N",
        default=20,
        convert=positive_int,
    ),
    _s(
        "budget_usd",
        "While recording (--samples=N or auto): stop taking more samples once this run's recorded calls "
        "cost this much (every test still takes one)",
        flag="--migration-budget-usd",
        metavar="USD",
        convert=_nonnegative_float,
    ),
    _s(
        "max_calls",
        "While recording (--samples=N or auto): stop taking more samples after N recorded calls in "
        "this run (every test still takes one)",
        flag="--migration-max-calls",
        metavar="N",
        convert=positive_int,
    ),
    _s(
        "gate_mode",
        "strict: any failure fails the run (pytest's usual rule), and the gate; no-regression: a "
        "regression (against the incumbent or the baseline), a missing recording or an errored test "
        "does, not a model test failing within tolerance; report: model outcomes never fail the run "
        "(default: strict)",
        flag="--migration-gate",
        ini="modelmigrate_gate",
        default="strict",
        convert=_gate_mode,
        choices=GATE_MODES,
    ),
    _s(
        "tolerance",
        "Pass-rate drop (0 to 1) a candidate may show before it counts as a regression (default: 0)",
        flag="--migration-tolerance",
        ini="modelmigrate_tolerance",
        metavar="DROP",
        default=0.0,
        convert=_fraction(lower_open=False, upper_open=True),
    ),
    _s(
        "alpha",
        "Significance level of the gate's tests (default: 0.05)",
        ini="modelmigrate_alpha",
        default=0.05,
        convert=_FRACTION,
    ),
    _s(
        "power",
        "Power used to size undecided comparisons (default: 0.8)",
        ini="modelmigrate_power",
        default=0.8,
        convert=_FRACTION,
    ),
    _s(
        "min_drop",
        "Smallest drop the sample-size advice targets (default: 0.15)",
        ini="modelmigrate_min_drop",
        default=0.15,
        convert=_fraction(lower_open=True, upper_open=False),
    ),
    _s(
        "margin",
        "Non-inferiority margin: migrate needs the upper confidence bound of the paired pass-rate "
        "drop below this (default: 0.05, five points)",
        flag="--migration-margin",
        ini="modelmigrate_margin",
        metavar="DROP",
        default=0.05,
        convert=_FRACTION,
    ),
    _s(
        "score_margin",
        "Non-inferiority margin of continuous scores (a judge's, a similarity, a label's "
        "probability; on their 0 to 1 scale), compared paired per test (default: 0.05)",
        ini="modelmigrate_score_margin",
        default=0.05,
        convert=_FRACTION,
    ),
    _s(
        "deterministic",
        "Every prompt is deterministic (temperature 0): a one-sample pass-to-fail flip is a "
        "regression; per prompt: @pytest.mark.prompt(..., deterministic=True) (default: false)",
        ini="modelmigrate_deterministic",
        default=False,
        convert=_bool,
    ),
    _s(
        "max_cost_ratio",
        "Cost budget: a candidate costing more than this times the incumbent per test is "
        "'don't migrate' (default: no budget)",
        ini="modelmigrate_max_cost_ratio",
        convert=_positive_float,
    ),
    _s(
        "max_latency_ratio",
        "Latency budget: a candidate whose p95 latency is more than this times the incumbent's is "
        "'don't migrate' (default: no budget)",
        ini="modelmigrate_max_latency_p95_ratio",
        convert=_positive_float,
    ),
    _s(
        "min_gain",
        "Smallest cost or latency saving (a fraction, 0.1 = 10%) that counts as a reason to migrate "
        "when quality is only non-inferior (default: 0.1)",
        ini="modelmigrate_min_gain",
        default=0.1,
        convert=_fraction(lower_open=False, upper_open=True),
    ),
    _s(
        "min_dataset_examples",
        "Examples a dataset test (one task type) should have; a smaller one is flagged in the "
        "reports as under-evidenced, with how many to add (information: the gate does not change; "
        "default: 100)",
        ini="modelmigrate_min_dataset_examples",
        default=100,
        convert=positive_int,
    ),
    _s(
        "sunset_lines",
        "The date a model is retired, one a line: 'gpt-4o: 2027-03-31'; inside the horizon, the "
        "incumbent's sunset turns 'defer' into 'must migrate by DATE'",
        ini="modelmigrate_sunset",
        ini_type="linelist",
        default=(),
        convert=_lines,
    ),
    _s(
        "sunset_horizon_days",
        "Days before the incumbent's sunset from which the recommendation says it must migrate (default: 90)",
        ini="modelmigrate_sunset_horizon_days",
        default=90,
        convert=positive_int,
    ),
    _s(
        "json_path",
        "Write the run (models, every test × model outcome, the matrix, the decision) as JSON to PATH",
        flag="--migration-json",
        metavar="PATH",
    ),
    _s(
        "markdown_path",
        "Write the report as Markdown (for a PR comment) to PATH; "
        "it is also appended to $GITHUB_STEP_SUMMARY when that is set",
        flag="--migration-markdown",
        metavar="PATH",
    ),
    _s(
        "html_path",
        "Write the report as one self-contained HTML file to PATH",
        flag="--migration-html",
        metavar="PATH",
    ),
    _s(
        "baseline_save",
        "Save this run as a baseline (JSON, meant to be committed) to PATH",
        flag="--migration-baseline-save",
        metavar="PATH",
    ),
    _s(
        "baseline_compare",
        "Compare this run with a saved baseline; regressions against it count for the gate",
        flag="--migration-baseline-compare",
        metavar="PATH",
    ),
    _s(
        "history_path",
        "Append this run to a migration history (JSON lines, meant to be committed) at PATH; "
        "`modelmigrate history show` renders it (not for a shard: append the merged run)",
        flag="--migration-history",
        ini="modelmigrate_history",
        metavar="PATH",
    ),
    _s(
        "plan",
        "List the calls, tokens and estimated cost per model that this recording run would make "
        "(from the recorded calls and modelmigrate_prices), and exit without calling any provider",
        flag="--migration-plan",
        default=False,
        convert=_bool,
        switch=True,
    ),
    _s(
        "shard",
        "Label this run as shard K of N of a suite split across jobs (e.g. 2/3), for modelmigrate merge; "
        "it selects no tests (split with pytest-split, -k or node ids)",
        flag="--migration-shard",
        metavar="K/N",
        convert=_shard,
    ),
    _s(
        "match_ignore",
        "Request parts left out of cassette matching, one a line: query:NAME or body:PATH "
        "(e.g. body:metadata.request_id; the query flags beta and api-version always are)",
        ini="modelmigrate_match_ignore",
        ini_type="linelist",
        default=(),
        convert=_comma_items,
    ),
    _s(
        "allow_network",
        "In replay (--record-mode=none), let code outside a model's cassette reach other machines "
        "(by default every non-loopback connection of the session is refused, naming the caller)",
        flag="--migration-allow-network",
        ini="modelmigrate_allow_network",
        default=False,
        convert=_bool,
        switch=True,
    ),
    _s(
        "allowed_hosts",
        "Hosts that code outside a model's cassette may reach during replay, e.g. a test database",
        ini="modelmigrate_allowed_hosts",
        ini_type="linelist",
        default=(),
        convert=_comma_items,
    ),
    _s(
        "record_rpm",
        "Requests per minute while recording, per provider or host, e.g. openai=500, anthropic=50 "
        "(shared by the xdist workers)",
        ini="modelmigrate_record_rpm",
        ini_type="linelist",
        default=(),
        convert=_lines,
    ),
    _s(
        "record_concurrency",
        "While recording: how many samples of one (test, model) are drawn at once, each in its own "
        "thread (default 1: one after the other); the samples are then checked in order from what "
        "was drawn, as a replay checks them",
        flag="--record-concurrency",
        ini="modelmigrate_record_concurrency",
        metavar="N",
        default=1,
        convert=positive_int,
    ),
    _s(
        "cassette_dir",
        "Folder for per-model cassettes, relative to each test module's folder (default: cassettes)",
        ini="modelmigrate_cassette_dir",
        default="cassettes",
    ),
    _s(
        "parse_cache",
        "Keep the parsed form of replayed cassettes under pytest's cache dir (default: true)",
        ini="modelmigrate_parse_cache",
        default=True,
        convert=_bool,
    ),
    _s(
        "secret_env",
        "More environment variables whose values must never reach a cassette",
        ini="modelmigrate_secret_env",
        ini_type="linelist",
        default=(),
        convert=_comma_items,
    ),
    _s(
        "secret_headers",
        "More request or response headers to drop from cassettes",
        ini="modelmigrate_secret_headers",
        ini_type="linelist",
        default=(),
        convert=_comma_items,
    ),
    _s(
        "judge_model",
        "The pinned model the LLM judge uses",
        ini="modelmigrate_judge_model",
        default="",
    ),
    _s(
        "judge_provider",
        "openai or anthropic (default: by model name)",
        ini="modelmigrate_judge_provider",
        default="",
    ),
    _s(
        "embedder",
        "Similarity scorer: lexical, openai:<model> or sentence-transformers:<model>",
        ini="modelmigrate_embedder",
        default=("lexical", ""),
        convert=_embedder,
    ),
    _s(
        "provider_patterns",
        "pattern=provider lines mapping model names to openai or anthropic (default: claude*=anthropic)",
        ini="modelmigrate_provider_patterns",
        ini_type="linelist",
        default=(),
        convert=_provider_patterns,
    ),
    _s(
        "price_lines",
        "Prices in USD per million tokens, one model a line: 'gpt-4o: input=2.50 output=10.00'",
        ini="modelmigrate_prices",
        ini_type="linelist",
        default=(),
        convert=_lines,
    ),
    _s(
        "prices_file",
        "A JSON or TOML price table, relative to the rootdir",
        ini="modelmigrate_prices_file",
        default="",
    ),
    _s(
        "emulator_script",
        "Script for the modelmigrate_emulator fixture (YAML or JSON), relative to the rootdir",
        ini="modelmigrate_emulator_script",
        default="",
    ),
    _s(
        "emulator_port",
        f"Port of the modelmigrate_emulator fixture (default: {DEFAULT_EMULATOR_PORT}); "
        "cassettes record its URL, so keep it fixed",
        ini="modelmigrate_emulator_port",
        default=DEFAULT_EMULATOR_PORT,
        convert=_port,
    ),
    _s(
        "emulator_time_scale",
        "Multiplier for the emulator's scripted latencies while recording (default: 1.0)",
        ini="modelmigrate_emulator_time_scale",
        default=1.0,
        convert=_nonnegative_float,
    ),
)

INI_NAMES: tuple[str, ...] = tuple(sorted(s.ini for s in SETTINGS if s.ini))
_REPORT_KEYS = ("json_path", "markdown_path", "html_path", "baseline_save")


@dataclass(frozen=True)
class Settings:
    """What the session was asked to do, resolved and validated once at configure time."""

    registry: tuple[ModelSpec, ...] = ()  # every known model: parametrized over, so nothing is deleted
    selected: tuple[ModelSpec, ...] = ()  # the models this run executes
    incumbent: ModelSpec | None = None
    record_mode: str = "none"
    models_source: str = "modelmigrate_models"
    samples: int = 1
    samples_auto: bool = False
    incumbent_samples: int | None = None
    samples_min: int = 5
    samples_max: int = 20
    samples_batch: int = 5
    budget_usd: float | None = None
    max_calls: int | None = None
    gate_mode: str = "strict"
    tolerance: float = 0.0
    alpha: float = 0.05
    power: float = 0.8
    min_drop: float = 0.15
    margin: float = 0.05
    score_margin: float = 0.05
    deterministic: bool = False
    max_cost_ratio: float | None = None
    max_latency_ratio: float | None = None
    min_gain: float = 0.1
    sunset: Mapping[str, date] = field(default_factory=dict)
    sunset_horizon_days: int = 90
    min_dataset_examples: int = 100
    json_path: Path | None = None
    markdown_path: Path | None = None
    html_path: Path | None = None
    baseline_save: Path | None = None
    baseline_compare: Path | None = None
    history_path: Path | None = None  # --migration-history: the run is appended at the end
    shard: tuple[int, int] | None = None  # (K, N) from --migration-shard: a label, selects nothing
    plan: bool = False  # --migration-plan: list what recording would call, then exit
    match_ignore: MatchIgnore = field(default_factory=MatchIgnore)
    allow_network: bool = False
    allowed_hosts: tuple[str, ...] = ()
    record_rpm: Mapping[str, float] = field(default_factory=dict)
    record_concurrency: int = 1
    cassette_dir: str = "cassettes"
    parse_cache: bool = True
    secret_env: tuple[str, ...] = ()
    secret_headers: tuple[str, ...] = ()
    judge_model: str = ""
    judge_provider: str = ""
    embedder: tuple[str, str] = ("lexical", "")
    provider_patterns: tuple[tuple[str, str], ...] = ()
    prices: Mapping[str, Any] = field(default_factory=dict)
    emulator_script: Path | None = None
    emulator_port: int = DEFAULT_EMULATOR_PORT
    emulator_time_scale: float = 1.0

    @property
    def selected_ids(self) -> list[str]:
        return [spec.id for spec in self.selected]

    @property
    def model_ids(self) -> list[str]:
        return [spec.id for spec in (self.selected or self.registry)]

    @property
    def compared_incumbent(self) -> ModelSpec | None:
        """The incumbent when it runs in this session (None: nothing is compared with it)."""
        incumbent = self.incumbent
        if incumbent is None or (self.selected and incumbent not in self.selected):
            return None
        return incumbent

    @property
    def recording(self) -> bool:
        return self.record_mode not in ("none", RECORD_MODE_DISABLED)

    @property
    def replaying(self) -> bool:
        """Every model call answered from a cassette (``--record-mode=none``, the default)."""
        return self.record_mode == "none"


def _raw(setting: Setting, cli: Callable[[str], Any], ini: Callable[[str], Any]) -> tuple[Any, str] | None:
    """The text the user gave and where (command line first), or None when neither gave one."""
    if setting.flag is not None:
        value = cli(setting.key)
        if value is not None:
            return value, setting.flag
    if setting.ini is not None:
        value = ini(setting.ini)
        if value not in (None, "", []) and not (isinstance(value, str) and not value.strip()):
            return value, f"ini {setting.ini}"
    return None


def _models(cli_value: str | None, ini_value: str) -> tuple[list[ModelSpec], list[ModelSpec], str]:
    ini_models = parse_models(ini_value, source="ini modelmigrate_models") if ini_value.strip() else []
    if cli_value is None:
        return ini_models, ini_models, "modelmigrate_models"
    cli_models = parse_models(cli_value, source="--models")
    if not cli_models:
        raise SettingsError("--models is empty; name at least one model, e.g. --models=gpt-4o,gpt-5")
    # a bare name on the command line may pick an ini model by its alias or its name
    entries = [e.strip() for e in cli_value.replace("\n", ",").split(",") if e.strip()]
    cli_models = [
        (resolve_model(ini_models, entry) or spec) if "=" not in entry else spec
        for entry, spec in zip(entries, cli_models, strict=True)
    ]
    return merge_registry(ini_models, cli_models), cli_models, "--models"


def _report_path(value: str, flag: str) -> Path:
    import os

    # not resolve(): a symlink is written through by write_atomically, and /dev/stdout on a pipe
    # would resolve to a /proc path that cannot be opened
    path = Path(os.path.abspath(value))
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        # said before the tests run, not after an hour of recording
        raise SettingsError(f"{flag}: cannot write {path}: {blocker} is a file, not a folder")
    return path


def resolve(
    cli: Callable[[str], Any],
    ini: Callable[[str], Any],
    *,
    rootpath: Path,
    record_mode: str,
) -> Settings:
    """Every setting from the command line (``cli(key)``) and the ini file (``ini(name)``).

    Raises :class:`SettingsError` (or :class:`~pytest_modelmigrate.models.ModelSpecError`,
    a model setting) naming the flag or ini key and the fix.
    """
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        found = _raw(setting, cli, ini)
        if found is None:
            values[setting.key] = setting.default
        else:
            raw, where = found
            values[setting.key] = setting.convert(raw, where) if setting.convert is not _text else raw

    try:
        registry, selected, source = _models(
            cli("models"), "\n".join(_as_lines(ini("modelmigrate_models") or ""))
        )
    except ModelSpecError as exc:
        raise SettingsError(str(exc)) from None
    incumbent: ModelSpec | None = selected[0] if selected else None
    incumbent_key = str(values["incumbent"] or "").strip()
    if incumbent_key:
        # recording one candidate does not need the incumbent in the run: a model the ini
        # file knows stays the incumbent (its cassettes are the reference `drift` reads)
        incumbent = resolve_model(selected, incumbent_key) or resolve_model(registry, incumbent_key)
        if incumbent is None:
            raise SettingsError(
                f"--incumbent/modelmigrate_incumbent names {incumbent_key!r}, which is not among the models "
                f"of this run ({', '.join(s.id for s in selected) or 'none'})"
            )
    samples = values["samples"]
    if values["samples_min"] > values["samples_max"]:
        raise SettingsError(
            f"--samples-min ({values['samples_min']}) is larger than --samples-max ({values['samples_max']})"
        )
    paths: dict[str, Any] = {
        key: _report_path(str(values[key]), next(s.flag or "" for s in SETTINGS if s.key == key))
        if values[key]
        else None
        for key in (*_REPORT_KEYS, "baseline_compare")
    }
    return Settings(
        registry=tuple(registry),
        selected=tuple(selected),
        incumbent=incumbent,
        record_mode=record_mode,
        models_source=source,
        samples=1 if samples == "auto" else samples,
        samples_auto=samples == "auto",
        incumbent_samples=values["incumbent_samples"],
        samples_min=values["samples_min"],
        samples_max=values["samples_max"],
        budget_usd=values["budget_usd"],
        max_calls=values["max_calls"],
        gate_mode=values["gate_mode"],
        tolerance=values["tolerance"],
        alpha=values["alpha"],
        power=values["power"],
        min_drop=values["min_drop"],
        margin=values["margin"],
        score_margin=values["score_margin"],
        deterministic=values["deterministic"],
        max_cost_ratio=values["max_cost_ratio"],
        max_latency_ratio=values["max_latency_ratio"],
        min_gain=values["min_gain"],
        sunset=_sunset(values["sunset_lines"], "ini modelmigrate_sunset"),
        sunset_horizon_days=values["sunset_horizon_days"],
        min_dataset_examples=values["min_dataset_examples"],
        shard=values["shard"],
        plan=values["plan"],
        match_ignore=_match_ignore(values["match_ignore"]),
        allow_network=values["allow_network"],
        allowed_hosts=values["allowed_hosts"],
        record_rpm=_record_rpm(values["record_rpm"]),
        record_concurrency=values["record_concurrency"],
        cassette_dir=str(values["cassette_dir"]).strip() or "cassettes",
        parse_cache=values["parse_cache"],
        secret_env=values["secret_env"],
        secret_headers=values["secret_headers"],
        judge_model=str(values["judge_model"]).strip(),
        judge_provider=str(values["judge_provider"]).strip(),
        embedder=values["embedder"],
        provider_patterns=values["provider_patterns"],
        prices=_prices(values["price_lines"], str(values["prices_file"]).strip(), rootpath),
        emulator_script=_rooted(str(values["emulator_script"]).strip(), rootpath),
        history_path=_rooted(str(values["history_path"] or "").strip(), rootpath),
        emulator_port=values["emulator_port"],
        emulator_time_scale=values["emulator_time_scale"],
        **paths,
    )


def _rooted(value: str, rootpath: Path) -> Path | None:
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else rootpath / path


def _match_ignore(lines: Sequence[str]) -> MatchIgnore:
    try:
        return MatchIgnore.parse(lines)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _record_rpm(lines: Sequence[str]) -> dict[str, float]:
    from .ratelimit import parse_rpm

    try:
        return parse_rpm(lines)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _prices(lines: Sequence[str], file_value: str, rootpath: Path) -> dict[str, Any]:
    if not lines and not file_value:
        return {}
    from .pricing import PriceError, price_table

    try:
        return dict(price_table(lines, file_value or None, base_dir=rootpath))
    except PriceError as exc:
        raise SettingsError(str(exc)) from None


def adaptive_policy(settings: Settings) -> Any:
    """The sequential rule's policy under ``--samples=auto`` (None otherwise)."""
    if not settings.samples_auto:
        return None
    from .sequential import AdaptivePolicy

    return AdaptivePolicy(
        min_samples=settings.samples_min, max_samples=settings.samples_max, alpha=settings.alpha
    )
