"""Unit tests for the pure dataset module: loading, field comparison, metrics, rendering, gate."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_modelmigrate.datasets import (
    ClassificationMetrics,
    DatasetError,
    DatasetMetrics,
    Example,
    FieldSpec,
    aggregate,
    classification_metrics,
    compare_fields,
    compare_to_incumbent,
    dataset_path,
    field_metrics,
    fields_record,
    label_record,
    load_dataset,
    normalize_text,
    parse_number,
    render_dataset_lines,
)

LABELS = ["billing", "tech", "sales"]


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


# --------------------------------------------------------------------------- loading: formats


def test_jsonl_ids_from_field_and_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cases.jsonl",
        '{"id": "refund", "input": "I want my money back", "label": "billing"}\n'
        "\n"
        '{"input": "The app crashes", "label": "tech"}\n'
        '   {"id": 7, "input": "Quote for 50 seats?", "label": "sales"}   \n',
    )
    examples = load_dataset(path, labels=LABELS)
    assert [e.id for e in examples] == ["refund", "line3", "7"]
    assert [e.line for e in examples] == [1, 3, 4]
    assert examples[0].source == str(path)
    assert examples[0].input == "I want my money back"
    assert examples[0].label == "billing"
    assert examples[0].expected == "billing"
    assert examples[2]["input"] == "Quote for 50 seats?"
    assert examples[2].location == f"{path}:4"


def test_jsonl_keeps_u2028_inside_strings(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.jsonl", '{"id": "a", "input": "one\u2028two"}\n{"id": "b"}\n')
    examples = load_dataset(path)
    assert [e.line for e in examples] == [1, 2]
    assert examples[0]["input"] == "one\u2028two"


def test_csv_with_bom_and_multiline_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cases.csv",
        'id,input,label\r\nr1,"first line\nsecond line",billing\r\n\r\n,"plain, with comma",tech\r\n',
        encoding="utf-8-sig",
    )
    examples = load_dataset(path, labels=LABELS)
    assert list(examples[0].data) == ["id", "input", "label"]  # no "\ufeffid"
    assert examples[0].id == "r1"
    assert examples[0].line == 2
    assert examples[0]["input"] == "first line\nsecond line"
    # the quoted field spans lines 2-3, line 4 is blank: the next record starts on line 5
    assert examples[1].line == 5
    assert examples[1].id == "line5"  # empty id cell → line number
    assert examples[1].data["label"] == "tech"


def test_csv_expected_columns_become_a_dict(tmp_path: Path) -> None:
    path = write(tmp_path, "inv.csv", "id,text,expected.total,expected.vendor\na,Invoice,12.50,ACME\n")
    (example,) = load_dataset(path)
    assert example.expected == {"total": "12.50", "vendor": "ACME"}
    assert example.input == {"text": "Invoice"}


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_list_with_node_line_numbers(tmp_path: Path, suffix: str) -> None:
    path = write(
        tmp_path,
        "cases" + suffix,
        "# triage cases\n"
        "- id: refund\n"
        "  input: I want my money back\n"
        "  label: billing\n"
        "\n"
        "- input: |\n"
        "    The app crashes\n"
        "    on start\n"
        "  label: tech\n",
    )
    examples = load_dataset(path, labels=LABELS)
    assert [(e.id, e.line) for e in examples] == [("refund", 2), ("line6", 6)]
    assert examples[1]["input"] == "The app crashes\non start\n"


def test_yaml_mapping_with_examples_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "inv.yaml",
        "labels: ignored here\n"
        "examples:\n"
        "  - id: inv-1\n"
        "    input: Invoice from ACME, total $1,234.50\n"
        "    expected: {vendor: ACME, total: 1234.5}\n",
    )
    (example,) = load_dataset(path)
    assert example.line == 3
    assert example.expected == {"vendor": "ACME", "total": 1234.5}


def test_ids_are_sanitised_for_pytest(tmp_path: Path) -> None:
    path = write(tmp_path, "c.jsonl", '{"id": "refund request [EU]/v2::x"}\n{"id": "Grüße 1"}\n')
    assert [e.id for e in load_dataset(path)] == ["refund_request_EU_v2_x", "Grüße_1"]


def test_examples_are_read_only(tmp_path: Path) -> None:
    (example,) = load_dataset(write(tmp_path, "c.jsonl", '{"id": "a"}\n'))
    with pytest.raises(TypeError):
        example.data["id"] = "b"  # type: ignore[index]


def test_dataset_path_is_relative_to_the_test_file() -> None:
    assert dataset_path("tests/prompts/test_triage.py", "cases.jsonl") == Path("tests/prompts/cases.jsonl")


def test_ten_thousand_jsonl_lines_load_fast(tmp_path: Path) -> None:
    rng = random.Random(0)
    path = tmp_path / "big.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"ex-{i}", "input": f"ticket {i} " * 5, "label": rng.choice(LABELS)}) + "\n"
            for i in range(10_000)
        )
    )
    timings = []
    for _ in range(3):  # best of three: a busy machine should not fail the suite
        start = time.perf_counter()
        examples = load_dataset(path, labels=LABELS)
        timings.append(time.perf_counter() - start)
    assert len(examples) == 10_000
    assert examples[-1].line == 10_000
    # measured here: 60-230 ms depending on machine load
    assert min(timings) < 1.0, f"loading 10,000 lines took {min(timings):.3f}s"


# --------------------------------------------------------------------------- loading: errors


def raises_dataset_error(path: Path, **kwargs: Any) -> DatasetError:
    with pytest.raises(DatasetError) as info:
        load_dataset(path, **kwargs)
    return info.value


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    error = raises_dataset_error(tmp_path / "nope.jsonl")
    assert str(tmp_path / "nope.jsonl") in str(error)
    assert "not found" in str(error)
    assert "relative to the test file" in str(error)
    assert isinstance(error, ValueError)


def test_unsupported_suffix(tmp_path: Path) -> None:
    error = raises_dataset_error(write(tmp_path, "cases.txt", "x"))
    assert "cases.txt" in str(error)
    assert ".jsonl, .csv, .yaml or .yml" in str(error)


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.jsonl", '{"id": "a"}\n\n{"id": "b",, }\n')
    error = raises_dataset_error(path)
    assert str(error).startswith(f"{path}:3: invalid JSON at column 12")
    assert error.line == 3
    assert "one complete JSON object" in str(error)


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.jsonl", '{"id": "a"}\n["b", "tech"]\n')
    assert str(raises_dataset_error(path)).startswith(f"{path}:2: expected a JSON object, got a list")


def test_csv_row_with_wrong_field_count(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.csv", "id,input,label\na,hello,tech\nb,hello, world,tech\n")
    error = raises_dataset_error(path)
    assert str(error).startswith(f"{path}:3: expected 3 fields (as in the header), got 4")
    assert "quote values that contain commas" in str(error)


def test_csv_repeated_header(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.csv", "id,label,label\na,b,c\n")
    assert str(raises_dataset_error(path)).startswith(f"{path}:1: the header row repeats column(s) 'label'")


def test_csv_unterminated_quote(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.csv", 'id,input\na,"never closed\n')
    error = raises_dataset_error(path)
    assert str(error).startswith(f"{path}:")
    assert "malformed CSV" in str(error)


def test_yaml_scalar(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.yaml", "just a sentence\n")
    error = raises_dataset_error(path)
    assert str(error).startswith(f"{path}:1: expected a list of examples, got a scalar")


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.yaml", "- id: a\n  label: tech\n- id: b\n  label: [unclosed\n")
    error = raises_dataset_error(path)
    assert str(error).startswith(f"{path}:")
    assert "invalid YAML" in str(error)
    assert error.line is not None
    assert error.line >= 4


def test_yaml_item_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.yaml", "- id: a\n- just text\n")
    assert str(raises_dataset_error(path)).startswith(f"{path}:2: expected a mapping for this example")


def test_yaml_mapping_without_examples(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.yaml", "cases:\n  - id: a\n")
    assert str(raises_dataset_error(path)).startswith(
        f"{path}:1: the top-level mapping has no 'examples' key"
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("empty.jsonl", "\n\n"),
        ("empty.csv", "id,input,label\n"),
        ("blank.csv", ""),
        ("empty.yaml", "# nothing yet\n"),
        ("empty-list.yaml", "[]\n"),
        ("empty-examples.yaml", "examples: []\n"),
    ],
)
def test_empty_dataset(tmp_path: Path, name: str, text: str) -> None:
    path = write(tmp_path, name, text)
    error = raises_dataset_error(path)
    assert str(error) == f"{path}: the dataset has no examples; add at least one example"


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.jsonl", '{"id": "a"}\n{"id": "b"}\n{"id": "a"}\n')
    error = raises_dataset_error(path)
    assert str(error).startswith(f"{path}:3: duplicate example id 'a': lines 1 and 3 have the same id")


def test_ids_that_collide_after_sanitising(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.csv", "id\nrefund request\nrefund_request\n")
    message = str(raises_dataset_error(path))
    assert message.startswith(f"{path}:3: duplicate example id 'refund_request': lines 2 and 3")
    assert "'refund request'" in message


def test_explicit_id_colliding_with_a_line_id(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.jsonl", '{"id": "line2"}\n{"input": "x"}\n')
    assert "lines 1 and 2" in str(raises_dataset_error(path))


def test_labels_outside_the_declared_set_are_all_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cases.jsonl",
        '{"id": "a", "label": "billing"}\n{"id": "b", "label": "refund"}\n'
        '{"id": "c"}\n{"id": "d", "label": "spam"}\n',
    )
    error = raises_dataset_error(path, labels=LABELS)
    assert str(error) == (
        f"{path}:2: 3 examples have labels outside the declared set ['billing', 'tech', 'sales']: "
        "line 2 (b): 'refund'; line 3 (c): no 'label' field; line 4 (d): 'spam'; "
        "correct the label, or add it to the marker's labels=[...]"
    )


def test_label_field_and_id_field_are_configurable(tmp_path: Path) -> None:
    path = write(tmp_path, "cases.csv", "key,queue\nk1,tech\nk2,billing\n")
    examples = load_dataset(path, labels=LABELS, label_field="queue", id_field="key")
    assert [(e.id, e.label) for e in examples] == [("k1", "tech"), ("k2", "billing")]
    error = raises_dataset_error(path, labels=["tech"], label_field="queue", id_field="key")
    assert "line 3 (k2): 'billing'" in str(error)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_bytes(b"id,input\na,caf\xe9\n")
    assert str(raises_dataset_error(path)).startswith(f"{path}:2: the file is not valid UTF-8")


# --------------------------------------------------------------------------- field comparison


def test_exact() -> None:
    spec = FieldSpec.parse("exact")
    assert spec.matches("ACME", "ACME")
    assert not spec.matches("ACME", "acme")
    assert not spec.matches(1, "1")


@pytest.mark.parametrize(
    ("expected", "predicted"),
    [
        ("Hello, World", "  hello,   WORLD! "),
        ("ACME Corp.", "acme corp"),
        ("ｆｕｌｌ　width", "full width"),  # NFKC
        ("Straße", "STRASSE"),  # casefold
        ('"quoted"', "quoted"),
    ],
)
def test_normalized_matches(expected: str, predicted: str) -> None:
    assert FieldSpec.parse("normalised").matches(expected, predicted)


def test_normalized_keeps_inner_punctuation_and_none() -> None:
    spec = FieldSpec("normalized")
    assert not spec.matches("e-mail", "email")
    assert not spec.matches("a b", "ab")
    assert spec.matches(None, None)
    assert not spec.matches(None, "")
    assert normalize_text("  ¡Hola,\tMundo!  ") == "hola, mundo"


@pytest.mark.parametrize(
    ("text", "number"),
    [
        (12, 12.0),
        (1.5, 1.5),
        ("1,234.50", 1234.5),
        ("$12", 12.0),
        ("-$12", -12.0),
        ("€ 1 234,00".replace(",", "."), 1234.0),
        ("(12)", -12.0),
        ("50%", 50.0),
        ("\u22123", -3.0),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("abc", None),
        ("", None),
        ("1.2.3", None),
        (True, None),
        (None, None),
        (float("nan"), None),
        ("inf", None),
    ],
)
def test_parse_number(text: Any, number: float | None) -> None:
    assert parse_number(text) == number


def test_numeric_tolerance_boundaries() -> None:
    spec = FieldSpec.parse(("numeric", 0.1))
    assert spec.matches(1.0, "1.1")  # exactly at the tolerance: inclusive, despite 1.1 - 1.0 > 0.1 in binary
    assert spec.matches("1.0", 0.9)
    assert not spec.matches(1.0, 1.1001)
    assert not spec.matches(1.0, 0.8999)
    assert not spec.matches(1.0, "about one")
    exact = FieldSpec.parse("numeric")
    assert exact.matches("$1,234.50", 1234.5)
    assert not exact.matches(1234.5, 1234.51)
    assert FieldSpec.parse(["numeric", 2]).tolerance == 2.0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    ["fuzzy", ("numeric", -1), ("numeric", "x"), ("numeric",), 3],
)
def test_bad_field_specs(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"field spec|field comparison|tolerance"):
        FieldSpec.parse(bad)


def test_tolerance_only_for_numeric() -> None:
    with pytest.raises(ValueError, match="only applies to 'numeric'"):
        FieldSpec("exact", 0.5)


def test_compare_fields() -> None:
    expected = {"vendor": "ACME Corp", "total": "1,234.50", "currency": "USD", "date": "2026-11-01"}
    predicted = {"vendor": "acme corp.", "total": 1234.4, "currency": "usd", "extra": "ignored"}
    result = compare_fields(expected, predicted, {"vendor": "normalized", "total": ("numeric", 0.1)})
    assert result == {"vendor": True, "total": True, "currency": False, "date": False}
    assert compare_fields({"a": 1}, None) == {"a": False}


# --------------------------------------------------------------------------- records


def test_label_record_is_json_safe() -> None:
    example = Example(id="refund", data={"label": "billing"}, line=1, source="cases.jsonl")
    record = label_record(example, example.expected, "billing")
    assert record == {
        "example": "refund",
        "kind": "label",
        "expected": "billing",
        "predicted": "billing",
        "correct": True,
        "fields": {},
    }
    assert label_record("x", "tech", None)["correct"] is False
    json.dumps(record, allow_nan=False)


def test_fields_record_is_json_safe() -> None:
    record = fields_record(
        "inv-1",
        {"total": 12.5, "vendor": "ACME"},
        {"total": float("nan"), "vendor": "ACME", "items": ("a", 1)},
        {"total": ("numeric", 0.01)},
    )
    assert record["correct"] is False
    assert record["fields"] == {"total": False, "vendor": True}
    assert record["predicted"] == {"total": "nan", "vendor": "ACME", "items": ["a", 1]}
    json.dumps(record, allow_nan=False)


# --------------------------------------------------------------------------- metrics: hand-computed


# expected -> predicted, 9 examples:
#   billing->billing x3, billing->tech x1, tech->tech x2, tech->billing x1,
#   sales->billing x1, sales->spam x1          ("spam" is only ever predicted)
HAND_PAIRS = (
    [("billing", "billing")] * 3
    + [("billing", "tech")]
    + [("tech", "tech")] * 2
    + [("tech", "billing"), ("sales", "billing"), ("sales", "spam")]
)


def test_classification_metrics_by_hand() -> None:
    m = classification_metrics(HAND_PAIRS, labels=LABELS)
    # accuracy = correct / total = (3 + 2) / 9
    assert m.total == 9
    assert m.correct == 5
    assert m.accuracy == pytest.approx(5 / 9)
    assert m.labels == ("billing", "tech", "sales", "spam")  # declared first, then the rest sorted
    pc = m.per_class
    # billing: tp=3, fp=2 (tech->billing, sales->billing), fn=1 (billing->tech)
    #   P = 3/5 = 0.6, R = 3/4 = 0.75, F1 = 2*3/(2*3+2+1) = 6/9 = 2/3  (= 2*0.6*0.75/1.35)
    assert pc["billing"].precision == pytest.approx(0.6)
    assert pc["billing"].recall == pytest.approx(0.75)
    assert pc["billing"].f1 == pytest.approx(2 / 3)
    assert pc["billing"].support == 4
    # tech: tp=2, fp=1, fn=1 -> P = R = F1 = 2/3
    assert [pc["tech"].precision, pc["tech"].recall, pc["tech"].f1] == pytest.approx([2 / 3] * 3)
    # sales: tp=0, fp=0, fn=2 -> P undefined (None), R = 0/2 = 0, F1 = 0/(0+0+2) = 0
    assert (pc["sales"].precision, pc["sales"].recall, pc["sales"].f1) == (None, 0.0, 0.0)
    assert pc["sales"].support == 2
    # spam: tp=0, fp=1, fn=0 -> P = 0/1 = 0, R undefined (None), F1 = 0/(0+1+0) = 0
    assert (pc["spam"].precision, pc["spam"].recall, pc["spam"].f1) == (0.0, None, 0.0)
    assert pc["spam"].support == 0
    # macro P = mean(0.6, 2/3, 0)          (sales undefined, skipped) = 19/45
    # macro R = mean(0.75, 2/3, 0)         (spam undefined, skipped)  = 17/36
    # macro F1 = mean(2/3, 2/3, 0, 0) = 1/3
    # micro F1 = 2*5 / (2*5 + fp 4 + fn 4) = 10/18 = 5/9 = accuracy
    assert m.macro_precision == pytest.approx(19 / 45)
    assert m.macro_recall == pytest.approx(17 / 36)
    assert m.macro_f1 == pytest.approx(1 / 3)
    assert m.micro_f1 == pytest.approx(5 / 9)
    assert m.confusion["billing"] == {"billing": 3, "tech": 1, "sales": 0, "spam": 0}
    assert m.confusion["sales"] == {"billing": 1, "tech": 0, "sales": 0, "spam": 1}
    assert m.confusion["spam"] == {"billing": 0, "tech": 0, "sales": 0, "spam": 0}
    assert m.outside_labels == {"spam": 1}


def test_classification_to_dict_is_json_and_round_trips() -> None:
    m = classification_metrics(HAND_PAIRS, labels=LABELS)
    data = json.loads(json.dumps(m.to_dict(), allow_nan=False))
    assert data["per_class"]["sales"]["precision"] is None
    assert data["per_class"]["sales"]["recall"] == 0.0
    assert data["confusion"]["tech"]["billing"] == 1
    assert data["outside_labels"] == {"spam": 1}
    assert ClassificationMetrics.from_dict(data).to_dict() == m.to_dict()


def test_declared_label_never_seen() -> None:
    m = classification_metrics([("a", "a")], labels=["a", "b"])
    assert m.per_class["b"].to_dict() == {
        "precision": None,
        "recall": None,
        "f1": None,
        "support": 0,
        "predicted": 0,
        "tp": 0,
        "fp": 0,
        "fn": 0,
    }
    assert m.macro_f1 == 1.0  # "b" has no defined F1 and is skipped


def test_no_pairs() -> None:
    m = classification_metrics([])
    assert (m.total, m.accuracy, m.macro_f1, m.micro_f1) == (0, None, None, None)


def test_field_metrics() -> None:
    records = [
        fields_record("1", {"a": 1, "b": 2}, {"a": 1, "b": 2}),
        fields_record("2", {"a": 1, "b": 2}, {"a": 1, "b": 3}),
        fields_record("3", {"a": 1, "b": 2, "c": 3}, {"a": 0, "b": 3, "c": 3}),
        label_record("4", "x", "x"),  # not a fields record: skipped
    ]
    fm = field_metrics(records)
    # a: 2/3, b: 1/3, c: 1/1; exact match: only example 1 -> 1/3
    assert fm.accuracy == {"a": pytest.approx(2 / 3), "b": pytest.approx(1 / 3), "c": 1.0}
    assert fm.exact_match == pytest.approx(1 / 3)
    assert [name for name, _ in fm.worst(2)] == ["b", "a"]
    assert [acc for _, acc in fm.worst(2)] == pytest.approx([1 / 3, 2 / 3])
    assert fm.to_dict()["per_field"]["b"] == {"correct": 1, "total": 3, "accuracy": pytest.approx(1 / 3)}


def test_aggregate_and_round_trip() -> None:
    records = [label_record(str(i), e, p) for i, (e, p) in enumerate(HAND_PAIRS)]
    metrics = aggregate(records, labels=LABELS)
    assert (metrics.total, metrics.correct) == (9, 5)
    assert metrics.failures == ("3", "6", "7", "8")
    assert metrics.fields is None
    assert metrics.classification is not None
    assert metrics.classification.macro_f1 == pytest.approx(1 / 3)
    data = json.loads(json.dumps(metrics.to_dict(), allow_nan=False))
    assert DatasetMetrics.from_dict(data).to_dict() == metrics.to_dict()


def test_aggregate_rejects_foreign_records() -> None:
    with pytest.raises(ValueError, match="not a prediction record"):
        aggregate([{"example": "a", "passed": True}])


# --------------------------------------------------------------------------- properties

label_st = st.sampled_from(["a", "b", "c", "d"])
pairs_st = st.lists(st.tuples(label_st, label_st), min_size=1, max_size=60)


@given(pairs_st)
def test_accuracy_is_trace_over_total(pairs: list[tuple[str, str]]) -> None:
    m = classification_metrics(pairs)
    trace = sum(m.confusion[label][label] for label in m.labels)
    total = sum(sum(row.values()) for row in m.confusion.values())
    assert total == len(pairs)
    assert m.accuracy == trace / total
    assert m.micro_f1 == pytest.approx(m.accuracy)


@given(pairs_st)
def test_recall_is_tp_over_tp_plus_fn(pairs: list[tuple[str, str]]) -> None:
    m = classification_metrics(pairs)
    for label, scores in m.per_class.items():
        tp = sum(1 for e, p in pairs if e == label and p == label)
        fn = sum(1 for e, p in pairs if e == label and p != label)
        fp = sum(1 for e, p in pairs if e != label and p == label)
        assert scores.recall == (tp / (tp + fn) if tp + fn else None)
        assert scores.precision == (tp / (tp + fp) if tp + fp else None)


@given(pairs_st, st.lists(label_st, unique=True))
def test_macro_scores_are_in_unit_interval(pairs: list[tuple[str, str]], declared: list[str]) -> None:
    m = classification_metrics(pairs, labels=declared)
    for value in (m.macro_f1, m.macro_precision, m.macro_recall, m.micro_f1, m.accuracy):
        assert value is not None
        assert 0.0 <= value <= 1.0


@given(pairs_st, st.randoms(use_true_random=False))
def test_permuting_examples_changes_nothing(pairs: list[tuple[str, str]], rng: random.Random) -> None:
    shuffled = list(pairs)
    rng.shuffle(shuffled)
    assert classification_metrics(shuffled).to_dict() == classification_metrics(pairs).to_dict()
    records = [label_record(str(i), e, p) for i, (e, p) in enumerate(pairs)]
    shuffled_records = list(records)
    rng.shuffle(shuffled_records)
    a, b = aggregate(records).to_dict(), aggregate(shuffled_records).to_dict()
    assert Counter(a.pop("failures")) == Counter(b.pop("failures"))
    assert a == b


@settings(max_examples=50)
@given(st.lists(st.from_regex(r"[a-z0-9 _\-]{0,8}", fullmatch=True), min_size=1, max_size=20))
def test_loaded_ids_are_unique_and_safe(tmp_path_factory: pytest.TempPathFactory, ids: list[str]) -> None:
    path = tmp_path_factory.mktemp("ids") / "c.jsonl"
    path.write_text("".join(json.dumps({"id": i}) + "\n" for i in ids))
    problem: str | None = None
    try:
        examples = load_dataset(path)
    except DatasetError as error:
        problem = str(error)
    if problem is not None:
        assert "duplicate example id" in problem or "no letters or digits" in problem
        return
    loaded = [e.id for e in examples]
    assert len(set(loaded)) == len(loaded)
    assert all(e.id and " " not in e.id and "[" not in e.id for e in examples)


# --------------------------------------------------------------------------- rendering


def test_render_dataset_lines() -> None:
    incumbent = aggregate(
        [label_record(f"ex{i}", e, e) for i, (e, _) in enumerate(HAND_PAIRS)], labels=LABELS
    )
    candidate = aggregate(
        [label_record(f"ex{i}", e, p) for i, (e, p) in enumerate(HAND_PAIRS)], labels=LABELS
    )
    lines = render_dataset_lines({"gpt-4o": incumbent, "gpt-5": candidate}, title="triage", max_failures=2)
    assert lines[0] == "triage"
    text = "\n".join(lines)
    assert "100.0% (9/9)" in text
    assert "55.6% (5/9)" in text
    assert "gpt-5: failing: ex3, ex6 ... and 2 more" in text
    assert "gpt-4o: failing" not in text
    assert "gpt-5: labels outside the declared set: 'spam' x1" in text
    sales = next(line for line in lines if line.strip().startswith("sales"))
    assert "1.00/1.00/1.00 (2)" in sales
    assert "-/0.00/0.00 (2)" in sales


def test_render_fields_and_empty() -> None:
    m = aggregate(
        [
            fields_record("inv-1", {"total": 1, "vendor": "A"}, {"total": 2, "vendor": "A"}),
            fields_record("inv-2", {"total": 1, "vendor": "A"}, {"total": 1, "vendor": "A"}),
        ]
    )
    text = "\n".join(render_dataset_lines({"m": m}, title="t"))
    assert "worst fields: total 50% (1/2)" in text
    assert "m: failing: inv-1" in text
    assert render_dataset_lines({}, title="t") == ["t", "  no results"]


# --------------------------------------------------------------------------- gate


def metrics_from(pairs: list[tuple[str, str]]) -> DatasetMetrics:
    return aggregate([label_record(str(i), e, p) for i, (e, p) in enumerate(pairs)])


def test_gate_passes_within_tolerance() -> None:
    incumbent = metrics_from([("a", "a")] * 9 + [("b", "a")])  # 0.9
    candidate = metrics_from([("a", "a")] * 8 + [("a", "b"), ("b", "a")])  # 0.8: drop of exactly 0.1
    assert (
        compare_to_incumbent(incumbent, candidate, min_accuracy=0.8, tolerance=0.1, class_recall=False) == []
    )


def test_gate_reasons() -> None:
    incumbent = metrics_from([("a", "a")] * 5 + [("b", "b")] * 5)  # 1.0
    candidate = metrics_from([("a", "a")] * 5 + [("b", "b")] * 3 + [("b", "a")] * 2)  # 0.8, recall(b)=0.6
    reasons = compare_to_incumbent(incumbent, candidate, min_accuracy=0.9, tolerance=0.05)
    assert reasons == [
        "accuracy 0.800 (8/10) is below the minimum 0.900",
        "accuracy dropped by 0.200 (1.000 -> 0.800), more than the tolerance 0.050",
        "recall of class 'b' dropped by 0.400 (1.000 -> 0.600), more than the tolerance 0.050",
    ]


def test_gate_field_drop_and_empty_candidate() -> None:
    def run(total_ok: bool) -> DatasetMetrics:
        return aggregate(
            [
                fields_record("1", {"t": 1, "v": "A"}, {"t": 1 if total_ok else 2, "v": "A"}),
                fields_record("2", {"t": 1, "v": "A"}, {"t": 1, "v": "A"}),
            ]
        )

    reasons = compare_to_incumbent(run(True), run(False), min_accuracy=None, tolerance=0.0)
    assert (
        reasons[-1]
        == "accuracy of field 't' dropped by 0.500 (1.000 -> 0.500), more than the tolerance 0.000"
    )
    empty = aggregate([])
    assert compare_to_incumbent(run(True), empty, min_accuracy=None, tolerance=0.1) == [
        "the candidate has no examples"
    ]
