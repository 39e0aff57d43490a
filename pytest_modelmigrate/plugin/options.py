"""Options and ini settings, generated from the one table in :mod:`pytest_modelmigrate.settings`."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from ..models import ModelSpecError, ModelSpecWarning
from ..settings import INI_NAMES, RECORD_MODE_DISABLED, SETTINGS, Settings, SettingsError, resolve

__all__ = ["add_options", "resolve_settings", "unknown_ini_hint"]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("modelmigrate", "model migration (pytest-modelmigrate)")
    for setting in SETTINGS:
        if setting.flag is not None:
            kwargs: dict[str, Any] = {"choices": setting.choices} if setting.choices else {}
            if setting.metavar:
                kwargs["metavar"] = setting.metavar
            if setting.switch:
                kwargs = {"action": "store_const", "const": True}
            else:
                kwargs["action"] = "store"
            group.addoption(
                setting.flag,
                dest=setting.key,
                default=None,
                help=setting.help + (f" (ini {setting.ini})" if setting.ini else ""),
                **kwargs,
            )
        if setting.ini is not None:
            default: Any = [] if setting.ini_type == "linelist" else ""
            parser.addini(setting.ini, type=setting.ini_type, default=default, help=setting.help)


def resolve_settings(config: pytest.Config) -> Settings:
    """Every setting, validated: a bad value is a usage error naming the flag or ini key."""
    if config.getoption("disable_recording", default=False):
        record_mode = RECORD_MODE_DISABLED
    else:
        record_mode = config.getoption("record_mode", default=None) or "none"
    try:
        with warnings.catch_warnings(record=True) as said:
            warnings.simplefilter("always", ModelSpecWarning)
            settings = resolve(
                lambda key: config.getoption(key),
                lambda name: _getini(config, name),
                rootpath=Path(config.rootpath),
                record_mode=record_mode,
            )
    except (SettingsError, ModelSpecError) as exc:
        raise pytest.UsageError(str(exc)) from None
    for warning in said:
        # a pytest warning (the summary, -W error), not Python's with a line of settings.py
        if issubclass(warning.category, ModelSpecWarning):
            config.issue_config_time_warning(pytest.PytestConfigWarning(str(warning.message)), stacklevel=2)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return settings


def _getini(config: pytest.Config, name: str) -> Any:
    """``config.getini``, with a usage error naming the fix when a native TOML value has the wrong type.

    List settings are pytest ``linelist`` ini values: in ``[tool.pytest.ini_options]`` (and
    ``pytest.ini``/``tox.ini``/``setup.cfg``) they may be a TOML array, lines, or a comma list;
    pytest 9's native ``[tool.pytest]`` table type-checks them and wants a TOML array.
    """
    try:
        return config.getini(name)
    except TypeError as exc:
        setting = next((s for s in SETTINGS if s.ini == name), None)
        if setting is not None and setting.ini_type == "linelist":
            fix = f'write it as a TOML array, e.g. {name} = ["a", "b"]'
        else:
            fix = f'write it as a TOML string, e.g. {name} = "value"'
        raise SettingsError(f"ini {name}: {exc}; {fix}") from None


def unknown_ini_hint(key: str) -> str:
    """ "did you mean ...?" for a misspelt ``modelmigrate_*`` ini key."""
    import difflib

    close = difflib.get_close_matches(key, INI_NAMES, n=1)
    hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(INI_NAMES)}"
    return f"ini {key} is not a pytest-modelmigrate setting and is ignored ({hint})"
