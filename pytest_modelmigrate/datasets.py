"""Labelled examples and their metrics: the pure half of ``@pytest.mark.dataset``.

Loading (JSONL, CSV, YAML) with line numbers for every example, comparing a prediction
with its expectation (a class label, or a dict of extracted fields), and the metrics of a
(dataset test, model): accuracy, per-class precision/recall/F1, a confusion matrix and
field-level accuracy. Everything a test records is a JSON-safe dict, so it can travel in
``report.user_properties`` through xdist; everything here is independent of pytest.

Conventions (see docs/datasets.md):

* A metric that has no defined value (precision of a class that was never predicted,
  recall of a class that never occurs, accuracy of zero examples) is ``None``, never 0.0,
  and averages skip it. F1 is computed as ``2·tp / (2·tp + fp + fn)``, which is defined
  whenever the class occurs at all, so a class that is expected but never predicted scores
  F1 = 0.0 and pulls the macro average down.
* Floats in ``to_dict()`` are not rounded; renderers format them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "ClassMetrics",
    "ClassificationMetrics",
    "DatasetError",
    "DatasetMetrics",
    "Example",
    "FieldMetrics",
    "FieldSpec",
    "aggregate",
    "classification_metrics",
    "compare_fields",
    "compare_to_incumbent",
    "dataset_path",
    "field_metrics",
    "fields_record",
    "label_record",
    "load_dataset",
    "normalize_text",
    "parse_number",
    "render_dataset_lines",
]

SUFFIXES = (".jsonl", ".csv", ".yaml", ".yml")
# How many offending lines one error message lists before "... and N more".
_MAX_LISTED = 10
# Absolute slack added to numeric tolerances and gate thresholds so that 1.1 - 1.0 <= 0.1
# holds despite binary floating point.
_EPS = 1e-9


# --------------------------------------------------------------------------- errors


class DatasetError(ValueError):
    """A dataset file that cannot be used; the message names the file (and line) and the fix."""

    def __init__(self, path: Path | str, problem: str, *, line: int | None = None, fix: str = "") -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.fix = fix
        where = self.path if line is None else f"{self.path}:{line}"
        message = f"{where}: {problem}"
        if fix:
            message += f"; {fix}"
        super().__init__(message)


# --------------------------------------------------------------------------- examples


@dataclass(frozen=True)
class Example:
    """One labelled example: its fields as written in the file, and where it came from."""

    id: str
    data: Mapping[str, Any]
    line: int
    source: str
    label_field: str = "label"
    id_field: str = "id"

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def label(self) -> str | None:
        """The class label (``label_field``) as a string, or None when the example has none."""
        value = self.data.get(self.label_field)
        return None if value is None else _label_str(value)

    @property
    def input(self) -> Any:
        """The ``input`` field if there is one, else every field but the id and the expectation."""
        if "input" in self.data:
            return self.data["input"]
        skip = {self.id_field, self.label_field, "expected"}
        return {k: v for k, v in self.data.items() if k not in skip and not k.startswith("expected.")}

    @property
    def expected(self) -> Any:
        """What a prediction is compared with.

        The ``expected`` field if there is one (a label or a dict of fields); else the
        ``expected.<name>`` columns gathered into a dict (how CSV spells extraction
        datasets); else the label.
        """
        if "expected" in self.data:
            return self.data["expected"]
        dotted = {k[len("expected.") :]: v for k, v in self.data.items() if k.startswith("expected.")}
        if dotted:
            return dotted
        return self.label

    @property
    def location(self) -> str:
        return f"{self.source}:{self.line}"


def dataset_path(test_file: Path | str, relative: Path | str) -> Path:
    """Where ``@pytest.mark.dataset(relative)`` points for a test defined in ``test_file``."""
    return Path(test_file).parent / relative


def load_dataset(
    path: Path,
    *,
    labels: Sequence[str] | None = None,
    label_field: str = "label",
    id_field: str = "id",
) -> list[Example]:
    """Read the examples of a ``.jsonl``, ``.csv``, ``.yaml`` or ``.yml`` file, in file order.

    Raises :class:`DatasetError` for a missing or unreadable file, a malformed line, an
    example that is not a mapping, an empty dataset, duplicate ids and, when ``labels`` is
    given, examples whose ``label_field`` is missing or outside the set (all such examples
    are listed in one error).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DatasetError(
            path,
            f"unsupported dataset format {suffix or '(no suffix)'!r}",
            fix="use a .jsonl, .csv, .yaml or .yml file",
        )
    if not path.exists():
        raise DatasetError(
            path,
            "dataset file not found",
            fix="the path in @pytest.mark.dataset(...) is relative to the test file; check the name",
        )
    if not path.is_file():
        raise DatasetError(path, "dataset path is not a file", fix="point the marker at a data file")
    try:
        # utf-8-sig: a byte order mark (Excel's CSV export writes one) is dropped.
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DatasetError(path, "the file is not valid UTF-8", line=line, fix="save it as UTF-8") from exc

    rows: list[tuple[int, dict[str, Any]]]
    if suffix == ".jsonl":
        rows = list(_read_jsonl(path, text))
    elif suffix == ".csv":
        rows = list(_read_csv(path, text))
    else:
        rows = _read_yaml(path, text)
    if not rows:
        raise DatasetError(path, "the dataset has no examples", fix="add at least one example")

    examples = _make_examples(path, rows, label_field=label_field, id_field=id_field)
    if labels is not None:
        _check_labels(path, examples, labels, label_field)
    return examples


def _read_jsonl(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    # Split on "\n" only: str.splitlines() would also split on U+2028, which JSON allows
    # raw inside strings.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                path,
                f"invalid JSON at column {exc.colno}: {exc.msg}",
                line=number,
                fix="each line must hold one complete JSON object",
            ) from exc
        if not isinstance(value, dict):
            raise DatasetError(
                path,
                f"expected a JSON object, got {_type_name(value)}",
                line=number,
                fix='write each example as an object such as {"id": "...", "input": ..., "label": ...}',
            )
        yield number, value


def _read_csv(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        names = [name.strip() for name in header]
        if any(not name for name in names):
            raise DatasetError(
                path, "the header row has an empty column name", line=1, fix="name every column"
            )
        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        if repeated:
            raise DatasetError(
                path,
                f"the header row repeats column(s) {', '.join(map(repr, repeated))}",
                line=1,
                fix="give every column a distinct name",
            )
        while True:
            # line_num counts physical lines read so far; a quoted field may span lines,
            # so the example starts on the line after the previous record ended.
            start = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                return
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                raise DatasetError(
                    path,
                    f"expected {len(names)} fields (as in the header), got {len(row)}",
                    line=start,
                    fix="quote values that contain commas and give every row one value per column",
                )
            yield start, dict(zip(names, row, strict=True))
    except csv.Error as exc:
        raise DatasetError(
            path, f"malformed CSV: {exc}", line=reader.line_num, fix="check the quoting on this line"
        ) from exc


def _read_yaml(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    import yaml  # only YAML datasets pay for it

    loader_class: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_class(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise DatasetError(
                path,
                f"invalid YAML: {exc.problem or exc.context}",
                line=None if mark is None else mark.line + 1,
                fix="check the indentation and quoting near this line",
            ) from exc
        except yaml.YAMLError as exc:
            raise DatasetError(path, f"invalid YAML: {exc}", fix="check the file's syntax") from exc
        if root is None:
            return []
        items = root
        if isinstance(root, yaml.MappingNode):
            items = None
            for key_node, value_node in root.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == "examples":
                    items = value_node
            if items is None:
                raise DatasetError(
                    path,
                    "the top-level mapping has no 'examples' key",
                    line=root.start_mark.line + 1,
                    fix="write a list of examples, or a mapping with the key 'examples' holding that list",
                )
        if not isinstance(items, yaml.SequenceNode):
            what = "a scalar" if isinstance(items, yaml.ScalarNode) else "a mapping"
            raise DatasetError(
                path,
                f"expected a list of examples, got {what}",
                line=items.start_mark.line + 1,
                fix="write a list of mappings, or a mapping with the key 'examples' holding that list",
            )
        rows: list[tuple[int, dict[str, Any]]] = []
        for item in items.value:
            number = item.start_mark.line + 1
            if not isinstance(item, yaml.MappingNode):
                raise DatasetError(
                    path,
                    "expected a mapping for this example, got "
                    + ("a list" if isinstance(item, yaml.SequenceNode) else "a scalar"),
                    line=number,
                    fix="write each example as a mapping of field names to values",
                )
            try:
                value = loader.construct_document(item)
            except yaml.MarkedYAMLError as exc:
                raise DatasetError(
                    path, f"invalid YAML value: {exc.problem}", line=number, fix="check this example"
                ) from exc
            rows.append((number, {str(k): v for k, v in value.items()}))
        return rows
    finally:
        loader.dispose()


_UNSAFE_ID = re.compile(r"[^\w.\-]+")


def _sanitize_id(raw: str) -> str:
    """Make ``raw`` usable inside a pytest id: no spaces, brackets, slashes or '::'."""
    return _UNSAFE_ID.sub("_", raw).strip("_")


def _make_examples(
    path: Path, rows: list[tuple[int, dict[str, Any]]], *, label_field: str, id_field: str
) -> list[Example]:
    examples: list[Example] = []
    seen: dict[str, tuple[int, str]] = {}
    for number, data in rows:
        raw = data.get(id_field)
        if isinstance(raw, (dict, list)):
            raise DatasetError(
                path,
                f"the {id_field!r} field is {_type_name(raw)}",
                line=number,
                fix="use a string or a number as the example id",
            )
        raw_id = "" if raw is None else str(raw)
        example_id = _sanitize_id(raw_id) if raw_id.strip() else ""
        if not example_id:
            if raw_id.strip():
                raise DatasetError(
                    path,
                    f"the id {raw_id!r} has no letters or digits",
                    line=number,
                    fix="use ids made of letters, digits, '.', '-' or '_'",
                )
            example_id = f"line{number}"
        if example_id in seen:
            first_line, first_raw = seen[example_id]
            same = (
                "the same id"
                if first_raw == raw_id
                else f"ids that read the same in a test id ({first_raw!r})"
            )
            raise DatasetError(
                path,
                f"duplicate example id {raw_id or example_id!r}: lines {first_line} and {number} have {same}",
                line=number,
                fix="give every example a unique id",
            )
        seen[example_id] = (number, raw_id)
        examples.append(
            Example(
                id=example_id,
                data=MappingProxyType(data),
                line=number,
                source=str(path),
                label_field=label_field,
                id_field=id_field,
            )
        )
    return examples


def _check_labels(path: Path, examples: list[Example], labels: Sequence[str], label_field: str) -> None:
    allowed = [str(label) for label in labels]
    allowed_set = set(allowed)
    if examples and all(example.data.get(label_field) is None for example in examples):
        _label_field_absent(path, examples, allowed_set, label_field)
    bad: list[str] = []
    first_line: int | None = None
    for example in examples:
        if label_field not in example.data or example.data[label_field] is None:
            bad.append(f"line {example.line} ({example.id}): no {label_field!r} field")
        else:
            label = _label_str(example.data[label_field])
            if label in allowed_set:
                continue
            bad.append(f"line {example.line} ({example.id}): {label!r}")
        if first_line is None:
            first_line = example.line
    if not bad:
        return
    listed = "; ".join(bad[:_MAX_LISTED])
    if len(bad) > _MAX_LISTED:
        listed += f"; ... and {len(bad) - _MAX_LISTED} more"
    count = "1 example has a label" if len(bad) == 1 else f"{len(bad)} examples have labels"
    raise DatasetError(
        path,
        f"{count} outside the declared set {allowed}: {listed}",
        line=first_line,
        fix="correct the label, or add it to the marker's labels=[...]",
    )


def _label_field_absent(path: Path, examples: list[Example], allowed: set[str], label_field: str) -> None:
    """No example has ``label_field``: the field name is wrong, not the labels."""
    fields: list[str] = []
    for example in examples:
        fields.extend(str(key) for key in example.data if str(key) not in fields)
    # a field whose values are all declared labels is the likely one
    likely = [
        name
        for name in fields
        if all(
            example.data.get(name) is not None and _label_str(example.data[name]) in allowed
            for example in examples
        )
    ]
    hint = f"label_field={likely[0]!r}" if likely else "label_field='<the field holding the label>'"
    raise DatasetError(
        path,
        f"no example has a {label_field!r} field (the examples' fields: {', '.join(fields) or 'none'})",
        line=examples[0].line,
        fix=f"name the field that holds the label in the marker, e.g. {hint}",
    )


def _label_str(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# --------------------------------------------------------------------------- field comparison

Kind = Literal["exact", "normalized", "numeric"]

_CURRENCY = re.compile(r"[\s$€£¥₹,_'\u00a0\u202f]")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def normalize_text(value: Any) -> str:
    """NFKC, casefold, whitespace collapsed, punctuation and spaces stripped from both ends."""
    text = unicodedata.normalize("NFKC", value if isinstance(value, str) else str(value)).casefold()
    text = " ".join(text.split())
    start, end = 0, len(text)
    while start < end and (text[start].isspace() or unicodedata.category(text[start]).startswith("P")):
        start += 1
    while end > start and (text[end - 1].isspace() or unicodedata.category(text[end - 1]).startswith("P")):
        end -= 1
    return text[start:end]


def parse_number(value: Any) -> float | None:
    """Read a number leniently: ``12``, ``"1,234.50"``, ``"$12"``, ``"-3e2"``, ``"(12)"``, ``"50%"``.

    Thousands separators are commas (``"1.234,50"`` is not understood). A percent sign is
    dropped, not divided by 100. Returns None for anything else, including NaN and infinity.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    if not isinstance(value, str):
        return None
    text = unicodedata.normalize("NFKC", value).strip().replace("\u2212", "-")
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    text = _CURRENCY.sub("", text).removesuffix("%")
    # "-$12" and "$-12" both mean minus twelve; the currency symbol is already gone.
    if not _NUMBER.fullmatch(text):
        return None
    number = float(text)
    return -number if negative else number


@dataclass(frozen=True)
class FieldSpec:
    """How one extracted field is compared: ``exact``, ``normalized`` or ``numeric`` within a tolerance."""

    kind: Kind = "exact"
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("exact", "normalized", "numeric"):
            raise ValueError(
                f"unknown field comparison {self.kind!r}; use 'exact', 'normalized' or 'numeric'"
            )
        if not (self.tolerance >= 0 and math.isfinite(self.tolerance)):
            raise ValueError(f"numeric tolerance must be a finite number >= 0, got {self.tolerance!r}")
        if self.kind != "numeric" and self.tolerance:
            raise ValueError(f"a tolerance only applies to 'numeric' comparison, not {self.kind!r}")

    @classmethod
    def parse(cls, spec: str | tuple[str, float] | FieldSpec) -> FieldSpec:
        """Read ``"exact"``, ``"normalized"`` (``"normalised"``), ``"numeric"`` or ``("numeric", 0.01)``."""
        if isinstance(spec, FieldSpec):
            return spec
        if isinstance(spec, str):
            name, tolerance = spec, 0.0
        else:
            # A pair; a list (as read from JSON or YAML configuration) is accepted too.
            try:
                raw_name, raw_tolerance = spec
                if not isinstance(raw_name, str):
                    raise TypeError(raw_name)
                name, tolerance = raw_name, float(raw_tolerance)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"cannot read field spec {spec!r}; use 'exact', 'normalized' or ('numeric', tolerance)"
                ) from exc
        name = name.strip().lower()
        if name == "normalised":
            name = "normalized"
        if name == "exact":
            return cls("exact", tolerance)
        if name == "normalized":
            return cls("normalized", tolerance)
        if name == "numeric":
            return cls("numeric", tolerance)
        raise ValueError(f"unknown field comparison {name!r}; use 'exact', 'normalized' or 'numeric'")

    def matches(self, expected: Any, predicted: Any) -> bool:
        if self.kind == "exact":
            return bool(expected == predicted)
        if self.kind == "normalized":
            if expected is None or predicted is None:
                return expected is None and predicted is None
            return normalize_text(expected) == normalize_text(predicted)
        want, got = parse_number(expected), parse_number(predicted)
        if want is None or got is None:
            return False
        return abs(want - got) <= self.tolerance + _EPS * max(1.0, abs(want), abs(got))

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "numeric":
            return {"kind": self.kind, "tolerance": self.tolerance}
        return {"kind": self.kind}


def compare_fields(
    expected: Mapping[str, Any],
    predicted: Mapping[str, Any] | None,
    spec: Mapping[str, str | tuple[str, float] | FieldSpec] | None = None,
) -> dict[str, bool]:
    """Compare each expected field; fields missing from ``predicted`` are wrong, extra ones ignored.

    Fields not named in ``spec`` are compared exactly.
    """
    parsed = {name: FieldSpec.parse(s) for name, s in (spec or {}).items()}
    got = predicted or {}
    default = FieldSpec()
    return {
        name: name in got and parsed.get(name, default).matches(value, got[name])
        for name, value in expected.items()
    }


# --------------------------------------------------------------------------- prediction records


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return str(value)


def _example_id(example: Example | str) -> str:
    return example.id if isinstance(example, Example) else str(example)


def label_record(example: Example | str, expected: Any, predicted: Any) -> dict[str, Any]:
    """The JSON-safe record of one classification: labels are compared as strings."""
    want = None if expected is None else _label_str(expected)
    got = None if predicted is None else _label_str(predicted)
    return {
        "example": _example_id(example),
        "kind": "label",
        "expected": want,
        "predicted": got,
        "correct": want is not None and want == got,
        "fields": {},
    }


def fields_record(
    example: Example | str,
    expected: Mapping[str, Any],
    predicted: Mapping[str, Any] | None,
    spec: Mapping[str, str | tuple[str, float] | FieldSpec] | None = None,
) -> dict[str, Any]:
    """The JSON-safe record of one extraction; correct when every expected field matches."""
    fields = compare_fields(expected, predicted, spec)
    return {
        "example": _example_id(example),
        "kind": "fields",
        "expected": _json_safe(expected),
        "predicted": _json_safe(predicted),
        "correct": all(fields.values()),
        "fields": fields,
    }


# --------------------------------------------------------------------------- metrics


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _mean(values: Iterable[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return sum(defined) / len(defined) if defined else None


@dataclass(frozen=True)
class ClassMetrics:
    """Scores of one class. precision/recall/f1 are None where undefined (see module docs)."""

    tp: int
    fp: int
    fn: int

    @property
    def support(self) -> int:
        """How many examples have this class as their expected label."""
        return self.tp + self.fn

    @property
    def predicted(self) -> int:
        return self.tp + self.fp

    @property
    def precision(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        # Equal to 2PR/(P+R) when both are defined; 0.0 when the class occurs but is never
        # hit; None only when the class neither occurs nor is predicted.
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    def to_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
            "predicted": self.predicted,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


@dataclass(frozen=True)
class ClassificationMetrics:
    labels: tuple[str, ...]
    confusion: Mapping[str, Mapping[str, int]]
    """rows = expected label, columns = predicted label; square over ``labels``."""
    declared: tuple[str, ...] | None = None

    @property
    def total(self) -> int:
        return sum(sum(row.values()) for row in self.confusion.values())

    @property
    def correct(self) -> int:
        return sum(self.confusion[label][label] for label in self.labels)

    @property
    def accuracy(self) -> float | None:
        return _ratio(self.correct, self.total)

    @property
    def per_class(self) -> dict[str, ClassMetrics]:
        out: dict[str, ClassMetrics] = {}
        for label in self.labels:
            tp = self.confusion[label][label]
            fn = sum(self.confusion[label].values()) - tp
            fp = sum(self.confusion[row][label] for row in self.labels) - tp
            out[label] = ClassMetrics(tp=tp, fp=fp, fn=fn)
        return out

    @property
    def macro_precision(self) -> float | None:
        return _mean(c.precision for c in self.per_class.values())

    @property
    def macro_recall(self) -> float | None:
        return _mean(c.recall for c in self.per_class.values())

    @property
    def macro_f1(self) -> float | None:
        return _mean(c.f1 for c in self.per_class.values())

    @property
    def micro_f1(self) -> float | None:
        # For single-label classification micro P = micro R = micro F1 = accuracy.
        classes = self.per_class.values()
        tp = sum(c.tp for c in classes)
        return _ratio(2 * tp, 2 * tp + sum(c.fp for c in classes) + sum(c.fn for c in classes))

    @property
    def outside_labels(self) -> dict[str, int]:
        """Labels seen (expected or predicted) that are not in the declared set, with counts."""
        if self.declared is None:
            return {}
        declared = set(self.declared)
        out: dict[str, int] = {}
        for label in self.labels:
            if label not in declared:
                count = sum(self.confusion[label].values()) + sum(
                    self.confusion[row][label] for row in self.labels
                )
                if count:
                    out[label] = count
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": list(self.labels),
            "declared_labels": None if self.declared is None else list(self.declared),
            "total": self.total,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "micro_f1": self.micro_f1,
            "per_class": {label: c.to_dict() for label, c in self.per_class.items()},
            "confusion": {row: dict(cols) for row, cols in self.confusion.items()},
            "outside_labels": self.outside_labels,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassificationMetrics:
        labels = tuple(data["labels"])
        declared = data.get("declared_labels")
        confusion = {row: {col: int(data["confusion"][row][col]) for col in labels} for row in labels}
        return cls(labels=labels, confusion=confusion, declared=None if declared is None else tuple(declared))


def classification_metrics(
    pairs: Iterable[tuple[str, str]], labels: Sequence[str] | None = None
) -> ClassificationMetrics:
    """Metrics of (expected, predicted) label pairs.

    The label order is the declared ``labels`` first, then every other label seen
    (expected or predicted) in sorted order; the confusion matrix is square over it.
    """
    counts: Counter[tuple[str, str]] = Counter((str(e), str(p)) for e, p in pairs)
    declared = None if labels is None else tuple(dict.fromkeys(str(label) for label in labels))
    seen = {e for e, _ in counts} | {p for _, p in counts}
    order = list(declared or ())
    order += sorted(seen - set(order))
    confusion = {row: {col: counts.get((row, col), 0) for col in order} for row in order}
    return ClassificationMetrics(labels=tuple(order), confusion=confusion, declared=declared)


@dataclass(frozen=True)
class FieldMetrics:
    """Per-field accuracy, and the share of examples with every field right."""

    counts: Mapping[str, tuple[int, int]]
    """field name → (correct, compared)"""
    examples: int
    exact_matches: int

    @property
    def accuracy(self) -> dict[str, float | None]:
        return {name: _ratio(c, n) for name, (c, n) in self.counts.items()}

    @property
    def exact_match(self) -> float | None:
        return _ratio(self.exact_matches, self.examples)

    def worst(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` fields with the lowest accuracy below 1.0, lowest first (ties by name)."""
        scored = [(name, acc) for name, acc in self.accuracy.items() if acc is not None and acc < 1.0]
        return sorted(scored, key=lambda item: (item[1], item[0]))[:n]

    def to_dict(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "exact_matches": self.exact_matches,
            "exact_match": self.exact_match,
            "per_field": {
                name: {"correct": c, "total": n, "accuracy": _ratio(c, n)}
                for name, (c, n) in self.counts.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldMetrics:
        counts = {name: (int(v["correct"]), int(v["total"])) for name, v in data["per_field"].items()}
        return cls(counts=counts, examples=int(data["examples"]), exact_matches=int(data["exact_matches"]))


def field_metrics(records: Iterable[Mapping[str, Any]]) -> FieldMetrics:
    """Field-level metrics of ``fields`` records (other kinds are skipped)."""
    tally: dict[str, list[int]] = {}
    examples = exact = 0
    for record in records:
        if record.get("kind") != "fields":
            continue
        examples += 1
        fields: Mapping[str, Any] = record.get("fields") or {}
        exact += bool(record.get("correct"))
        for name, ok in fields.items():
            counts = tally.setdefault(name, [0, 0])
            counts[0] += bool(ok)
            counts[1] += 1
    return FieldMetrics(
        counts={name: (c, n) for name, (c, n) in sorted(tally.items())},
        examples=examples,
        exact_matches=exact,
    )


@dataclass(frozen=True)
class DatasetMetrics:
    """The metrics of one (dataset test or prompt group, model)."""

    total: int
    correct: int
    failures: tuple[str, ...]
    classification: ClassificationMetrics | None = None
    fields: FieldMetrics | None = None

    @property
    def accuracy(self) -> float | None:
        return _ratio(self.correct, self.total)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "correct": self.correct,
            "accuracy": self.accuracy,
            "failures": list(self.failures),
            "classification": None if self.classification is None else self.classification.to_dict(),
            "fields": None if self.fields is None else self.fields.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetMetrics:
        classification = data.get("classification")
        fields = data.get("fields")
        return cls(
            total=int(data["total"]),
            correct=int(data["correct"]),
            failures=tuple(data["failures"]),
            classification=None
            if classification is None
            else ClassificationMetrics.from_dict(classification),
            fields=None if fields is None else FieldMetrics.from_dict(fields),
        )


NO_LABEL = "<none>"
"""The label that stands for a missing expected or predicted label in the confusion matrix."""


def _label_or_none(value: Any) -> str:
    return NO_LABEL if value is None else _label_str(value)


def aggregate(records: Iterable[Mapping[str, Any]], *, labels: Sequence[str] | None = None) -> DatasetMetrics:
    """Aggregate the prediction records of one (test or group, model).

    Accuracy counts every record; classification metrics come from ``label`` records and
    field metrics from ``fields`` records. Failing ids keep the records' order.
    """
    items = list(records)
    for record in items:
        if (
            record.get("kind") not in ("label", "fields")
            or "example" not in record
            or "correct" not in record
        ):
            raise ValueError(
                f"not a prediction record: {record!r}; build records with label_record() or fields_record()"
            )
    label_pairs = [
        (_label_or_none(r["expected"]), _label_or_none(r["predicted"])) for r in items if r["kind"] == "label"
    ]
    has_fields = any(r["kind"] == "fields" for r in items)
    return DatasetMetrics(
        total=len(items),
        correct=sum(bool(r["correct"]) for r in items),
        failures=tuple(str(r["example"]) for r in items if not r["correct"]),
        classification=classification_metrics(label_pairs, labels) if label_pairs else None,
        fields=field_metrics(items) if has_fields else None,
    )


# --------------------------------------------------------------------------- terminal


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(metrics: DatasetMetrics) -> str:
    if metrics.accuracy is None:
        return "-"
    return f"{metrics.accuracy:.1%} ({metrics.correct}/{metrics.total})"


def _table(rows: list[list[str]], indent: str = "  ", *, right: bool = True) -> list[str]:
    """Aligned columns: the first left-aligned, the others right-aligned unless ``right`` is false."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        (
            indent
            + "  ".join(
                cell.rjust(w) if right and i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        ).rstrip()
        for row in rows
    ]


def render_dataset_lines(
    metrics_by_model: Mapping[str, DatasetMetrics], *, title: str, max_failures: int = 10
) -> list[str]:
    """Compact terminal lines for one dataset test across models."""
    lines = [title]
    if not metrics_by_model:
        return [*lines, "  no results"]
    models = list(metrics_by_model)
    any_cls = any(m.classification is not None for m in metrics_by_model.values())
    any_fields = any(m.fields is not None for m in metrics_by_model.values())

    header = ["model", "accuracy"]
    if any_cls:
        header.append("macro F1")
    if any_fields:
        header.append("exact match")
    header.append("failing")
    rows = [header]
    for model, m in metrics_by_model.items():
        row = [model, _pct(m)]
        if any_cls:
            row.append(_fmt(m.classification.macro_f1 if m.classification else None))
        if any_fields:
            row.append(_fmt(m.fields.exact_match if m.fields else None))
        row.append(str(len(m.failures)))
        rows.append(row)
    lines += _table(rows)

    if any_cls:
        labels: list[str] = []
        for m in metrics_by_model.values():
            if m.classification is not None:
                labels += [label for label in m.classification.labels if label not in labels]
        lines.append("  per class: precision/recall/F1 (support)")
        cls_rows = [["class", *models]]
        for label in labels:
            row = [label]
            for model in models:
                cm = metrics_by_model[model].classification
                scores = cm.per_class.get(label) if cm is not None else None
                if scores is None:
                    row.append("-")
                else:
                    row.append(
                        f"{_fmt(scores.precision)}/{_fmt(scores.recall)}/{_fmt(scores.f1)} ({scores.support})"
                    )
            cls_rows.append(row)
        lines += _table(cls_rows, indent="    ", right=False)
        for model in models:
            cm = metrics_by_model[model].classification
            if cm is not None and cm.outside_labels:
                listed = ", ".join(f"{label!r} x{n}" for label, n in cm.outside_labels.items())
                lines.append(f"  {model}: labels outside the declared set: {listed}")

    if any_fields:
        for model in models:
            fm = metrics_by_model[model].fields
            if fm is None:
                continue
            worst = fm.worst(3)
            if worst:
                listed = ", ".join(
                    f"{name} {acc:.0%} ({fm.counts[name][0]}/{fm.counts[name][1]})" for name, acc in worst
                )
                lines.append(f"  {model}: worst fields: {listed}")

    for model in models:
        failures = metrics_by_model[model].failures
        if not failures:
            continue
        shown = ", ".join(failures[: max(max_failures, 0)])
        more = len(failures) - max(max_failures, 0)
        if more > 0:
            shown = f"{shown} ... and {more} more" if shown else f"{more} failing"
        lines.append(f"  {model}: failing: {shown}")
    return lines


# --------------------------------------------------------------------------- gate


def compare_to_incumbent(
    incumbent: DatasetMetrics,
    candidate: DatasetMetrics,
    *,
    min_accuracy: float | None,
    tolerance: float,
    class_recall: bool = True,
    field_accuracy: bool = True,
) -> list[str]:
    """Reasons the candidate fails against the incumbent; empty when it passes.

    Checks, each against ``tolerance`` (an absolute drop, e.g. 0.02 for two points):
    accuracy below ``min_accuracy``; an accuracy drop; with ``class_recall``, a drop in
    the recall of any class both define; with ``field_accuracy``, a drop in the accuracy
    of any field both compare. These are point comparisons; small datasets need the
    statistical gate as well.
    """
    reasons: list[str] = []
    cand_acc = candidate.accuracy
    if cand_acc is None:
        return ["the candidate has no examples"]
    if min_accuracy is not None and cand_acc < min_accuracy - _EPS:
        reasons.append(
            f"accuracy {cand_acc:.3f} ({candidate.correct}/{candidate.total}) "
            f"is below the minimum {min_accuracy:.3f}"
        )
    inc_acc = incumbent.accuracy
    if inc_acc is not None and inc_acc - cand_acc > tolerance + _EPS:
        reasons.append(
            f"accuracy dropped by {inc_acc - cand_acc:.3f} ({inc_acc:.3f} -> {cand_acc:.3f}), "
            f"more than the tolerance {tolerance:.3f}"
        )
    if class_recall and incumbent.classification is not None and candidate.classification is not None:
        inc_cls = incumbent.classification.per_class
        for label, scores in candidate.classification.per_class.items():
            before = inc_cls[label].recall if label in inc_cls else None
            after = scores.recall
            if before is not None and after is not None and before - after > tolerance + _EPS:
                reasons.append(
                    f"recall of class {label!r} dropped by {before - after:.3f} "
                    f"({before:.3f} -> {after:.3f}), "
                    f"more than the tolerance {tolerance:.3f}"
                )
    if field_accuracy and incumbent.fields is not None and candidate.fields is not None:
        inc_fields = incumbent.fields.accuracy
        for name, after_acc in candidate.fields.accuracy.items():
            before_acc = inc_fields.get(name)
            if before_acc is not None and after_acc is not None and before_acc - after_acc > tolerance + _EPS:
                reasons.append(
                    f"accuracy of field {name!r} dropped by {before_acc - after_acc:.3f} "
                    f"({before_acc:.3f} -> {after_acc:.3f}), more than the tolerance {tolerance:.3f}"
                )
    return reasons
