"""The forest plot SVG: well-formed, escaped, proportional, deterministic."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from pytest_modelmigrate.reports.forest import FINDING_COLOURS, OTHER_COLOUR, forest_svg

NS = "{http://www.w3.org/2000/svg}"


def _row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "group": "customer-reply",
        "candidate": "gpt-5",
        "estimate": 0.12,
        "low": -0.031,
        "high": 0.272,
        "finding": "regressed",
    }
    row.update(overrides)
    return row


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _rows(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{NS}g") if g.get("class") == "row"]


def _by_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}") if e.get("class") == cls]


def test_well_formed_svg_with_title_and_size() -> None:
    svg = forest_svg([_row(), _row(candidate="claude", finding="improved")], 0.05)
    root = _parse(svg)
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    title = root.find(f"{NS}title")
    assert title is not None
    assert title.text == "Paired drop in pass rate (incumbent − candidate)"
    assert root.get("aria-labelledby") == title.get("id")
    assert root.get("width") == "720"
    assert root.get("height") == str(40 + 24 * 2)
    assert len(_rows(root)) == 2


def test_one_interval_per_row_with_an_interval() -> None:
    rows = [
        _row(),
        _row(candidate="b", low=0.0, high=0.1, estimate=0.05),
        _row(candidate="dot-only", low=None, high=0.2, estimate=0.1),
        _row(candidate="none", estimate=None, low=None, high=None, finding="no-evidence"),
    ]
    root = _parse(forest_svg(rows, 0.05))
    groups = _rows(root)
    assert [len(_by_class(g, "line", "interval")) for g in groups] == [1, 1, 0, 0]
    assert [len(_by_class(g, "circle", "estimate")) for g in groups] == [1, 1, 1, 0]
    assert len(_by_class(root, "line", "interval")) == 2


def test_margin_line_right_of_zero_and_proportional() -> None:
    # The interval runs from -0.1 to +0.2, so 0.3 of axis span; the margin is 0.05 above 0.
    root = _parse(forest_svg([_row(low=-0.1, high=0.2, estimate=0.05)], 0.05))
    (zero,) = _by_class(root, "line", "zero-line")
    (margin,) = _by_class(root, "line", "margin-line")
    (interval,) = _by_class(root, "line", "interval")
    zero_x, margin_x = float(zero.get("x1", "nan")), float(margin.get("x1", "nan"))
    low_x, high_x = float(interval.get("x1", "nan")), float(interval.get("x2", "nan"))
    assert margin.get("stroke-dasharray")
    assert not zero.get("stroke-dasharray")
    assert margin_x > zero_x
    assert (margin_x - zero_x) / (high_x - low_x) == pytest.approx(0.05 / 0.3, abs=0.002)
    assert (zero_x - low_x) / (high_x - low_x) == pytest.approx(0.1 / 0.3, abs=0.002)
    (estimate,) = _by_class(root, "circle", "estimate")
    # The estimate (+5 pts) sits on the margin line.
    assert float(estimate.get("cx", "nan")) == pytest.approx(margin_x, abs=0.02)


@pytest.mark.parametrize(("margin", "text"), [(0.05, "margin δ = 5 pts"), (0.025, "margin δ = 2.5 pts")])
def test_margin_label(margin: float, text: str) -> None:
    root = _parse(forest_svg([_row()], margin))
    (label,) = _by_class(root, "text", "margin-label")
    assert label.text == text
    texts = "".join(root.itertext())
    assert "candidate worse" in texts
    assert "candidate better" in texts
    assert "no change" in texts


def test_hostile_label_escaped() -> None:
    hostile = '<script>alert(1)</script> & "q"'
    svg = forest_svg([_row(label=hostile), _row(group=hostile, candidate="x&y")], 0.05)
    root = _parse(svg)
    assert "<script" not in svg
    assert not any(e.tag.endswith("script") for e in root.iter())
    assert "&lt;script&gt;" in svg
    assert "&amp;" in svg
    assert "&quot;q&quot;" in svg
    titles = [g.find(f"{NS}title") for g in _rows(root)]
    assert titles[0] is not None and titles[0].text is not None
    assert titles[0].text.startswith(hostile + ": drop +12.0 pts")
    assert "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "href" not in svg


def test_label_defaults_to_group_and_candidate_and_tooltip() -> None:
    root = _parse(forest_svg([_row()], 0.05))
    (group,) = _rows(root)
    title = group.find(f"{NS}title")
    assert title is not None
    assert title.text == "customer-reply · gpt-5: drop +12.0 pts [−3.1, +27.2], regressed"
    (label,) = _by_class(group, "text", "label")
    assert label.text == "customer-reply · gpt-5"


def test_long_label_truncated_but_full_in_tooltip() -> None:
    long = "a" * 60
    root = _parse(forest_svg([_row(label=long)], 0.05))
    (label,) = _by_class(root, "text", "label")
    assert label.text is not None
    assert len(label.text) < len(long)
    assert label.text.endswith("…")
    title = _rows(root)[0].find(f"{NS}title")
    assert title is not None and title.text is not None
    assert long in title.text


def test_no_evidence_row() -> None:
    rows = [_row(), _row(candidate="none", estimate=None, low=0.1, high=0.2, finding="no-evidence")]
    root = _parse(forest_svg(rows, 0.05))
    second = _rows(root)[1]
    (text,) = _by_class(second, "text", "no-evidence")
    assert text.text == "no evidence"
    assert not _by_class(second, "line", "interval")
    assert not _by_class(second, "circle", "estimate")
    title = second.find(f"{NS}title")
    assert title is not None and title.text is not None
    assert "no evidence" in title.text
    assert not _by_class(_rows(root)[0], "text", "no-evidence")


@pytest.mark.parametrize(
    ("finding", "colour"),
    [
        ("regressed", "#a40e26"),
        ("improved", "#116329"),
        ("non-inferior", "#1a7f37"),
        ("undecided", "#7d4e00"),
        ("changed", "#7d4e00"),
        ("no-evidence", "#57606a"),
        ("something-else", "#57606a"),
    ],
)
def test_colour_per_finding(finding: str, colour: str) -> None:
    root = _parse(forest_svg([_row(finding=finding)], 0.05))
    (group,) = _rows(root)
    (interval,) = _by_class(group, "line", "interval")
    (dot,) = _by_class(group, "circle", "estimate")
    assert interval.get("stroke") == colour
    assert dot.get("fill") == colour
    assert FINDING_COLOURS.get(finding, OTHER_COLOUR) == colour
    (name,) = _by_class(group, "text", "finding")
    assert name.text == finding


def test_empty_rows_give_empty_string() -> None:
    assert forest_svg([], 0.05) == ""


def test_deterministic() -> None:
    rows = [_row(), _row(candidate="b", finding="improved", estimate=-0.04, low=-0.09, high=0.01)]
    first = forest_svg(rows, 0.05)
    assert first == forest_svg([dict(r) for r in rows], 0.05)
    assert first != forest_svg(rows, 0.1)


def test_numbers_have_at_most_two_decimals() -> None:
    svg = forest_svg([_row(estimate=1 / 3, low=1 / 7, high=2 / 3)], 1 / 30)
    root = _parse(svg)
    for element in root.iter():
        for name in ("x", "y", "x1", "x2", "y1", "y2", "cx", "cy"):
            value = element.get(name)
            if value is not None:
                assert len(value.partition(".")[2]) <= 2, (name, value)


def test_values_outside_unit_range_are_clamped() -> None:
    rows = [_row(estimate=5.0, low=-3.0, high=12.0), _row(candidate="b", estimate=-2.0, low=None, high=None)]
    root = _parse(forest_svg(rows, 0.05))
    xs = [float(e.get("x1", "nan")) for e in _by_class(root, "line", "interval")]
    xs += [float(e.get("x2", "nan")) for e in _by_class(root, "line", "interval")]
    xs += [float(e.get("cx", "nan")) for e in _by_class(root, "circle", "estimate")]
    assert all(0 <= x <= 720 for x in xs)
    (zero,) = _by_class(root, "line", "zero-line")
    (interval,) = _by_class(root, "line", "interval")
    # Clamped to [-100, +100] points: zero sits in the middle of the interval.
    zero_x = float(zero.get("x1", "nan"))
    assert zero_x == pytest.approx((float(interval.get("x1", "nan")) + float(interval.get("x2", "nan"))) / 2)
    title = _rows(root)[0].find(f"{NS}title")
    assert title is not None
    assert title.text == "customer-reply · gpt-5: drop +100.0 pts [−100.0, +100.0], regressed"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_none(bad: float) -> None:
    rows = [
        _row(estimate=bad, low=0.0, high=0.1),
        _row(candidate="b", estimate=0.05, low=bad, high=0.1),
        _row(candidate="c", estimate=0.05, low=0.0, high=bad),
    ]
    svg = forest_svg(rows, 0.05)
    root = _parse(svg)
    assert "nan" not in svg.lower()
    assert "inf" not in svg.lower()
    first, second, third = _rows(root)
    assert [t.text for t in _by_class(first, "text", "no-evidence")] == ["no evidence"]
    for group in (second, third):
        assert not _by_class(group, "line", "interval")
        assert len(_by_class(group, "circle", "estimate")) == 1


def test_non_finite_margin_rejected() -> None:
    with pytest.raises(ValueError, match="margin"):
        forest_svg([_row()], math.nan)
