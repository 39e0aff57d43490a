"""Model specs: parsing ``--models`` and the ini setting, aliases, and marker filters.

Pure module: no pytest import.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# Characters a model id may keep as it is: it becomes a pytest id and a cassette folder name.
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
MAX_ID_LENGTH = 64


class ModelSpecError(ValueError):
    """A model setting that cannot be used; the message names where it came from."""


class ModelSpecWarning(UserWarning):
    """A model setting that works but is probably not what was meant (a misspelt ini model)."""


@dataclass(frozen=True)
class ModelSpec:
    """One model version under test.

    ``id`` is what pytest ids, cassette folders and reports use (the alias when one is given);
    ``name`` is the model string the application sends to the provider.
    """

    id: str
    name: str

    @property
    def has_alias(self) -> bool:
        return self.id != self.name

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name}

    def __str__(self) -> str:
        return self.id if not self.has_alias else f"{self.id}={self.name}"


def _split_entries(value: str | Sequence[str]) -> list[str]:
    if isinstance(value, str):
        value = [value]
    entries: list[str] = []
    for chunk in value:
        for line in chunk.replace("\n", ",").split(","):
            entries.append(line.strip())
    # A trailing comma or a blank ini line is not an entry; an empty one in the middle is.
    while entries and not entries[-1]:
        entries.pop()
    while entries and not entries[0]:
        entries.pop(0)
    return entries


def sanitize_id(name: str) -> str:
    """A file-name and pytest-id safe form of a model name (``org/model:tag`` → ``org-model-tag``)."""
    safe = _ID_UNSAFE.sub("-", name).strip("-.") or "model"
    return safe[:MAX_ID_LENGTH]


def parse_models(value: str | Sequence[str], *, source: str) -> list[ModelSpec]:
    """Parse ``gpt-4o,new=gpt-5`` (commas or newlines) into specs, in the given order.

    ``source`` names the setting in error messages (``--models`` or ``modelmigrate_models``).
    """
    how = (
        f"{source}: write models as a comma-separated list, "
        "e.g. gpt-4o,gpt-5 or old=gpt-4o-2024-08-06,new=gpt-5"
    )
    specs: list[ModelSpec] = []
    seen_ids: dict[str, str] = {}
    for position, entry in enumerate(_split_entries(value), start=1):
        if not entry:
            raise ModelSpecError(f"{source}: model #{position} is empty. {how}")
        alias, sep, name = entry.partition("=")
        alias, name = alias.strip(), name.strip()
        spaced = name if sep else alias
        if any(ch.isspace() for ch in spaced):
            joined = "-".join(spaced.split())
            raise ModelSpecError(
                f"{source}: model name {spaced!r} contains a space; model names have none "
                f"(did you mean {joined!r}?). Write it as the provider spells it, e.g. {joined}"
            )
        if sep:
            if not alias or not name:
                raise ModelSpecError(f"{source}: {entry!r} needs both an alias and a model name. {how}")
            if _ID_UNSAFE.search(alias) or len(alias) > MAX_ID_LENGTH or not alias.strip("."):
                raise ModelSpecError(
                    f"{source}: alias {alias!r} may use only letters, digits and . _ + - "
                    f"(at most {MAX_ID_LENGTH} characters, not only dots): "
                    "it names pytest ids and cassette folders"
                )
            spec = ModelSpec(id=alias, name=name)
        else:
            spec = ModelSpec(id=sanitize_id(alias), name=alias)
        same_model = next((i for i, n in seen_ids.items() if n == spec.name and i != spec.id), None)
        if same_model is not None:
            raise ModelSpecError(
                f"{source}: {_entry(same_model, spec.name)!r} and {entry!r} both name the model "
                f"{spec.name!r}, so it would run twice; list each model once, under one id"
            )
        if spec.id in seen_ids:
            previous = seen_ids[spec.id]
            if previous == spec.name:
                raise ModelSpecError(f"{source}: model {spec.name!r} is listed twice; list each model once")
            raise ModelSpecError(
                f"{source}: {previous!r} and {spec.name!r} would share the id {spec.id!r} "
                f"(ids name cassette folders); give one an alias, e.g. other={spec.name}"
            )
        seen_ids[spec.id] = spec.name
        specs.append(spec)
    return specs


def _entry(model_id: str, name: str) -> str:
    return name if sanitize_id(name) == model_id else f"{model_id}={name}"


def near_ini_model(spec: ModelSpec, ini_models: Sequence[ModelSpec]) -> ModelSpec | None:
    """The ini model ``spec`` (named only on the command line) is probably a misspelling of:
    one whose id or name is a close match (``olld`` for ``old``), or None."""
    if spec.has_alias:
        return None
    keys = {key: ini for ini in ini_models for key in (ini.id, ini.name)}
    close = difflib.get_close_matches(spec.name, list(keys), n=1, cutoff=0.75)
    return keys[close[0]] if close else None


def did_you_mean(ini_models: Sequence[ModelSpec], cli_models: Sequence[ModelSpec]) -> list[str]:
    """Hints for command-line models that the ini file does not know but nearly names."""
    known = {key for ini in ini_models for key in (ini.id, ini.name)}
    hints: list[str] = []
    for spec in cli_models:
        if spec.id in known or spec.name in known:
            continue
        near = near_ini_model(spec, ini_models)
        if near is not None:
            listed = ", ".join(ini.id for ini in ini_models)
            hints.append(
                f"--models: {spec.name!r} is not one of modelmigrate_models ({listed}); "
                f"did you mean {near.id!r}? It runs as a model of its own, with cassettes of its own"
            )
    return hints


def merge_registry(ini_models: Sequence[ModelSpec], cli_models: Sequence[ModelSpec]) -> list[ModelSpec]:
    """The full registry: the project's models first, then any model named only on the command line.

    A command-line entry with the id of an ini model must name the same model. A command-line
    model close to an ini model's name (``olld`` for ``old``) gets a :class:`ModelSpecWarning`
    with a "did you mean": it may be a new candidate, so it is not refused.
    """
    for hint in did_you_mean(ini_models, cli_models):
        warnings.warn(ModelSpecWarning(hint), stacklevel=2)
    by_id = {spec.id: spec for spec in ini_models}
    registry = list(ini_models)
    for spec in cli_models:
        known = by_id.get(spec.id)
        if known is None:
            registry.append(spec)
            by_id[spec.id] = spec
        elif known.name != spec.name:
            raise ModelSpecError(
                f"--models: {spec.id!r} names {spec.name!r}, "
                f"but modelmigrate_models names it {known.name!r}; "
                "use another alias on the command line"
            )
    return registry


def resolve(registry: Sequence[ModelSpec], key: str) -> ModelSpec | None:
    """Find a model by id (alias) or by model name."""
    for spec in registry:
        if key == spec.id:
            return spec
    for spec in registry:
        if key == spec.name:
            return spec
    return None


@dataclass(frozen=True)
class MarkerFilter:
    """``@pytest.mark.models(only=[...], skip=[...], xfail={...})`` resolved against the registry."""

    only: frozenset[str] | None = None  # model ids
    skip: frozenset[str] = frozenset()
    xfail: Mapping[str, str] | None = None  # model id -> reason

    def allows(self, spec: ModelSpec) -> bool:
        if self.only is not None and spec.id not in self.only:
            return False
        return spec.id not in self.skip

    def xfail_reason(self, spec: ModelSpec) -> str | None:
        if not self.xfail:
            return None
        return self.xfail.get(spec.id)


def _as_names(value: object, *, what: str, where: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        names = list(value)
        if all(isinstance(n, str) for n in names):
            return names
    raise ModelSpecError(f"{where}: models({what}=...) takes a model name or a list of names, got {value!r}")


def marker_filter(
    kwargs: Mapping[str, object], args: Sequence[object], registry: Sequence[ModelSpec], *, where: str
) -> MarkerFilter:
    """Build a filter from the marker's arguments; unknown models are an error naming ``where``."""
    allowed_keys = {"only", "skip", "xfail"}
    unknown_keys = set(kwargs) - allowed_keys
    if unknown_keys:
        raise ModelSpecError(
            f"{where}: @pytest.mark.models got unknown argument(s) {sorted(unknown_keys)}; "
            "use only=[...], skip=[...] or xfail={'model': 'reason'}"
        )
    known = ", ".join(spec.id for spec in registry) or "(none configured)"

    def lookup(key: str) -> str:
        spec = resolve(registry, key)
        if spec is None:
            raise ModelSpecError(
                f"{where}: @pytest.mark.models names {key!r}, which is not a configured model "
                f"(configured: {known}); fix the marker or add the model to modelmigrate_models"
            )
        return spec.id

    only_names: list[str] = []
    if args:
        only_names.extend(_as_names(list(args), what="only", where=where))
    if "only" in kwargs:
        only_names.extend(_as_names(kwargs["only"], what="only", where=where))
    only = frozenset(lookup(n) for n in only_names) if (args or "only" in kwargs) else None
    skip = frozenset(lookup(n) for n in _as_names(kwargs.get("skip", []), what="skip", where=where))
    xfail_value = kwargs.get("xfail")
    xfail: dict[str, str] | None = None
    if xfail_value is not None:
        if isinstance(xfail_value, Mapping):
            xfail = {lookup(str(k)): str(v) for k, v in xfail_value.items()}
        else:
            xfail = {
                lookup(n): "expected to fail on this model"
                for n in _as_names(xfail_value, what="xfail", where=where)
            }
    return MarkerFilter(only=only, skip=skip, xfail=xfail)
