"""Prices per model, in USD per million tokens, from the user's configuration.

Pure module: no pytest import. No prices ship with the plugin: a price is only as good as its
source and date, and providers change them (and emulated models have none). Every price comes
from the project's configuration:

* the ini linelist ``modelmigrate_prices``, one model per line::

      modelmigrate_prices =
          gpt-4o: input=2.50 output=10.00 cached_input=1.25
          gpt-5:  input=1.25 output=10.00

* or a file named by the ini option ``modelmigrate_prices_file`` (JSON or TOML), one table per
  model with the same keys; in a ``pyproject.toml`` the tables live under
  ``[tool.modelmigrate.prices]``.

Lines in the ini win over the file for the same model. A model with no price has cost ``None``.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "INI_FILE_OPTION",
    "INI_OPTION",
    "Price",
    "PriceError",
    "load_price_file",
    "parse_price_line",
    "parse_prices",
    "price_table",
    "prices_from_dict",
    "prices_to_dict",
]

INI_OPTION = "modelmigrate_prices"
INI_FILE_OPTION = "modelmigrate_prices_file"
_KEYS = ("input", "output", "cached_input")
_EXAMPLE = "gpt-4o: input=2.50 output=10.00 cached_input=1.25"


class PriceError(ValueError):
    """A price entry that cannot be read; the message names the setting (or file) and the entry."""


@dataclass(frozen=True)
class Price:
    """USD per million tokens. ``cached_input`` None: cached input tokens cost ``input``."""

    input: float
    output: float
    cached_input: float | None = None

    def cost(
        self,
        *,
        input_tokens: int | None,
        output_tokens: int | None,
        cached_input_tokens: int | None = None,
        cached_included: bool = True,
    ) -> float | None:
        """The cost of one call in USD, or None when the call reported no tokens.

        ``cached_included``: whether ``input_tokens`` already counts the cached tokens (OpenAI's
        convention); Anthropic reports them apart (``cached_included=False``).
        """
        if input_tokens is None and output_tokens is None:
            return None
        inp = input_tokens or 0
        cached = cached_input_tokens or 0
        uncached = max(inp - cached, 0) if cached_included else inp
        cached_price = self.input if self.cached_input is None else self.cached_input
        total = uncached * self.input + cached * cached_price + (output_tokens or 0) * self.output
        return total / 1_000_000

    def to_dict(self) -> dict[str, float | None]:
        return {"input": self.input, "output": self.output, "cached_input": self.cached_input}


def _number(value: Any, *, where: str, key: str) -> float:
    if isinstance(value, bool):
        raise PriceError(f"{where}: {key}={value!r} is not a number")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().removeprefix("$"))
        except ValueError:
            raise PriceError(f"{where}: {key}={value!r} is not a number (USD per million tokens)") from None
    else:
        raise PriceError(f"{where}: {key}={value!r} is not a number")
    if not math.isfinite(number) or number < 0:
        raise PriceError(f"{where}: {key}={value!r} must be a non-negative number")
    return number


def _price(fields: Mapping[str, Any], *, where: str) -> Price:
    unknown = sorted(set(fields) - set(_KEYS))
    if unknown:
        raise PriceError(f"{where}: unknown key(s) {', '.join(unknown)}; the keys are {', '.join(_KEYS)}")
    missing = [k for k in ("input", "output") if k not in fields]
    if missing:
        raise PriceError(f"{where}: missing {' and '.join(missing)}; e.g. {_EXAMPLE}")
    cached = fields.get("cached_input")
    return Price(
        input=_number(fields["input"], where=where, key="input"),
        output=_number(fields["output"], where=where, key="output"),
        cached_input=None if cached is None else _number(cached, where=where, key="cached_input"),
    )


def parse_price_line(line: str, *, source: str = f"ini {INI_OPTION}") -> tuple[str, Price]:
    """``gpt-4o: input=2.50 output=10.00 [cached_input=1.25]`` → (``gpt-4o``, Price)."""
    where = f"{source}: entry {line.strip()!r}"
    model, sep, rest = line.partition(":")
    model = model.strip()
    if not sep or not model:
        raise PriceError(f"{where}: expected 'MODEL: input=USD output=USD', e.g. {_EXAMPLE}")
    fields: dict[str, str] = {}
    for token in rest.replace(",", " ").split():
        key, eq, value = token.partition("=")
        if not eq or not key or not value:
            raise PriceError(f"{where}: {token!r} is not KEY=NUMBER; e.g. {_EXAMPLE}")
        if key in fields:
            raise PriceError(f"{where}: {key} given twice")
        fields[key] = value
    return model, _price(fields, where=where)


def parse_prices(lines: Iterable[str], *, source: str = f"ini {INI_OPTION}") -> dict[str, Price]:
    """Every non-blank, non-comment line; a model given twice is an error."""
    table: dict[str, Price] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        model, price = parse_price_line(line, source=source)
        if model in table:
            raise PriceError(f"{source}: model {model!r} is priced twice")
        table[model] = price
    return table


def prices_from_dict(data: Mapping[str, Any], *, source: str) -> dict[str, Price]:
    """``{model: {"input": .., "output": .., "cached_input": ..}}`` → price table."""
    table: dict[str, Price] = {}
    for model, fields in data.items():
        where = f"{source}: entry {model!r}"
        if not isinstance(fields, Mapping):
            raise PriceError(f"{where}: expected a table with input and output, got {fields!r}")
        table[str(model)] = _price(fields, where=where)
    return table


def load_price_file(path: Path | str) -> dict[str, Price]:
    """A JSON or TOML price file (``pyproject.toml``: the ``[tool.modelmigrate.prices]`` table)."""
    path = Path(path)
    source = f"price file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceError(f"{source}: cannot read it ({exc.strerror or exc})") from None
    data: Any
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PriceError(f"{source}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    elif path.suffix == ".toml":
        try:
            tomllib = importlib.import_module("tomllib")  # Python 3.11+
        except ModuleNotFoundError:
            raise PriceError(f"{source}: reading TOML needs Python 3.11 or later; use a .json file") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PriceError(f"{source}: not valid TOML ({exc})") from None
        if path.name == "pyproject.toml":
            data = data.get("tool", {}).get("modelmigrate", {}).get("prices")
            if data is None:
                raise PriceError(f"{source}: no [tool.modelmigrate.prices] table")
    else:
        raise PriceError(f"{source}: expected a .json or .toml file")
    if not isinstance(data, Mapping):
        raise PriceError(f"{source}: expected a table of models, got {type(data).__name__}")
    return prices_from_dict(data, source=source)


def price_table(
    lines: Iterable[str] = (), file: Path | str | None = None, *, base_dir: Path | str | None = None
) -> dict[str, Price]:
    """The prices from the ini: the file (relative to ``base_dir``), then the lines over it."""
    table: dict[str, Price] = {}
    if file:
        path = Path(file)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        table.update(load_price_file(path))
    table.update(parse_prices(lines))
    return table


def prices_to_dict(table: Mapping[str, Price]) -> dict[str, dict[str, float | None]]:
    return {model: price.to_dict() for model, price in table.items()}
