"""A forest plot of paired pass-rate drops as one inline SVG string.

Pure module: no pytest import, standard library only. Each row is one (group, candidate) with a
paired drop in pass rate (incumbent − candidate, a fraction: 0.12 is 12 points) and its interval;
positive means the candidate is worse. The plot draws a solid line at 0 ("no change") and a dashed
line at the non-inferiority margin. Every piece of text is escaped, there is no script and no
external reference, and the same input always gives the same string.

Colour never carries meaning alone: each row also names its finding at the right, and its tooltip
(``<title>``) gives the estimate, the interval and the finding.
"""

from __future__ import annotations

import hashlib
import math
from html import escape as _escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["FINDING_COLOURS", "OTHER_COLOUR", "forest_svg"]

FINDING_COLOURS: dict[str, str] = {
    "regressed": "#a40e26",
    "improved": "#116329",
    "non-inferior": "#1a7f37",
    "undecided": "#7d4e00",
    "changed": "#7d4e00",
}
OTHER_COLOUR = "#57606a"

WIDTH = 720
ROW_HEIGHT = 24
TOP = 20  # band above the rows: "candidate better" / "candidate worse"
BOTTOM = 20  # band below the rows: "no change" and the margin label
LABEL_X = 8
PLOT_LEFT = 212
PLOT_RIGHT = 612
FINDING_X = 622
MAX_LABEL = 32  # characters; the full label is in the row's tooltip
FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"
CHAR_WIDTH = 6.2  # rough width of one 11px character, to keep axis labels inside the picture
MINUS = "\N{MINUS SIGN}"


def _esc(text: str) -> str:
    return _escape(text, quote=True)


def _num(value: float) -> str:
    """A coordinate with at most 2 decimals and no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _fraction(value: Any) -> float | None:
    """A finite number clamped to [-1, 1]; None for anything else (None, NaN, inf, text, bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return max(-1.0, min(1.0, number))


def _points(value: float) -> str:
    """A fraction as signed percentage points with 1 decimal: ``+12.0``, ``−3.1``, ``0.0``."""
    text = f"{abs(value) * 100:.1f}"
    if text == "0.0":
        return text
    return ("+" if value > 0 else MINUS) + text


def _margin_text(margin: float) -> str:
    """``5``, ``2.5``, ``12.3``: the margin in points with up to 1 decimal, dropping ``.0``."""
    text = f"{abs(margin) * 100:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return MINUS + text if margin < 0 and text != "0" else text


def _colour(finding: str) -> str:
    return FINDING_COLOURS.get(finding, OTHER_COLOUR)


def _label(row: Mapping[str, Any]) -> str:
    label = row.get("label")
    if isinstance(label, str) and label:
        return label
    return f"{row.get('group', '')} · {row.get('candidate', '')}"


def _short(text: str) -> str:
    # Truncate before escaping, so an entity is never cut in half.
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _axis(values: Sequence[float]) -> tuple[float, float]:
    """The x range (fractions) covering ``values``, padded, inside [-1, 1]."""
    low, high = min(values), max(values)
    span = high - low
    if span < 0.01:
        span = 0.01
        low, high = low - 0.005, high + 0.005
    pad = max(span * 0.06, 0.005)
    return max(-1.0, low - pad), min(1.0, high + pad)


def _text(
    x: float, y: float, text: str, *, anchor: str = "start", fill: str = "#24292f", extra: str = ""
) -> str:
    return (
        f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}" fill="{fill}"{extra}>{_esc(text)}</text>'
    )


def _placed(x: float, text: str, *, towards: str, limit: float = WIDTH - 2) -> tuple[float, str]:
    """Where to put ``text`` next to ``x`` (on the ``towards`` side) so it stays left of ``limit``."""
    width = len(text) * CHAR_WIDTH
    if towards == "right":
        return (x + 4, "start") if x + 4 + width <= limit else (x - 4, "end")
    return (x - 4, "end") if x - 4 - width >= 2 else (x + 4, "start")


def _tooltip(label: str, finding: str, estimate: float | None, low: float | None, high: float | None) -> str:
    if estimate is None:
        return f"{label}: no evidence, {finding}"
    interval = f" [{_points(low)}, {_points(high)}]" if low is not None and high is not None else ""
    return f"{label}: drop {_points(estimate)} pts{interval}, {finding}"


def forest_svg(
    rows: Sequence[Mapping[str, Any]],
    margin: float,
    *,
    title: str = "Paired drop in pass rate (incumbent − candidate)",
) -> str:
    """An inline SVG forest plot of ``rows``; ``""`` when there are none.

    Each row has ``group``, ``candidate``, ``estimate``, ``low``, ``high`` (fractions or None),
    ``finding`` and optionally ``label`` (shown instead of "group · candidate"). Values are
    clamped to [-1, 1]; NaN and infinities count as None. A row without an estimate reads
    "no evidence"; one with an estimate but no complete interval shows only its dot.

    Raises ValueError when ``margin`` is not a finite number.
    """
    if not rows:
        return ""
    margin_value = _fraction(margin)
    if margin_value is None:
        raise ValueError(f"margin must be a finite number, got {margin!r}")

    parsed: list[tuple[str, str, float | None, float | None, float | None]] = []
    values = [0.0, margin_value]
    for row in rows:
        estimate = _fraction(row.get("estimate"))
        low, high = _fraction(row.get("low")), _fraction(row.get("high"))
        if estimate is None or low is None or high is None:
            low = high = None
        elif low > high:
            low, high = high, low
        values.extend(v for v in (estimate, low, high) if v is not None)
        parsed.append((_label(row), str(row.get("finding", "")), estimate, low, high))

    lo, hi = _axis(values)

    def x_of(value: float) -> float:
        return PLOT_LEFT + (value - lo) / (hi - lo) * (PLOT_RIGHT - PLOT_LEFT)

    height = TOP + ROW_HEIGHT * len(parsed) + BOTTOM
    rows_bottom = TOP + ROW_HEIGHT * len(parsed)
    zero_x, margin_x = x_of(0.0), x_of(margin_value)

    body: list[str] = []
    # Axis: the side labels point away from "no change".
    x, anchor = _placed(zero_x - 2, "← candidate better", towards="left")
    body.append(_text(x, 14, "← candidate better", anchor=anchor, fill="#57606a"))
    x, anchor = _placed(zero_x + 2, "candidate worse →", towards="right")
    body.append(_text(x, 14, "candidate worse →", anchor=anchor, fill="#57606a"))
    body.append(
        f'<line class="zero-line" x1="{_num(zero_x)}" y1="{TOP}" x2="{_num(zero_x)}" '
        f'y2="{rows_bottom}" stroke="#24292f" stroke-width="1"/>'
    )
    margin_label = f"margin δ = {_margin_text(margin_value)} pts"
    body.append(
        f'<line class="margin-line" x1="{_num(margin_x)}" y1="{TOP}" x2="{_num(margin_x)}" '
        f'y2="{rows_bottom}" stroke="#57606a" stroke-width="1" stroke-dasharray="4 3"/>'
    )
    x, anchor = _placed(zero_x, "no change", towards="left")
    body.append(_text(x, height - 6, "no change", anchor=anchor, fill="#57606a"))
    x, anchor = _placed(margin_x, margin_label, towards="right")
    body.append(
        _text(x, height - 6, margin_label, anchor=anchor, fill="#57606a", extra=' class="margin-label"')
    )

    for index, (label, finding, estimate, low, high) in enumerate(parsed):
        colour = _colour(finding)
        middle = TOP + ROW_HEIGHT * index + ROW_HEIGHT / 2
        parts = [f"<title>{_esc(_tooltip(label, finding, estimate, low, high))}</title>"]
        parts.append(_text(LABEL_X, middle + 4, _short(label), extra=' class="label"'))
        if estimate is None:
            parts.append(
                _text(zero_x + 6, middle + 4, "no evidence", fill=colour, extra=' class="no-evidence"')
            )
        else:
            if low is not None and high is not None:
                parts.append(
                    f'<line class="interval" x1="{_num(x_of(low))}" y1="{_num(middle)}" '
                    f'x2="{_num(x_of(high))}" y2="{_num(middle)}" stroke="{colour}" stroke-width="2"/>'
                )
            parts.append(
                f'<circle class="estimate" cx="{_num(x_of(estimate))}" cy="{_num(middle)}" r="4" '
                f'fill="{colour}"/>'
            )
        parts.append(_text(FINDING_X, middle + 4, finding, fill=colour, extra=' class="finding"'))
        body.append(f'<g class="row" data-finding="{_esc(finding)}">{"".join(parts)}</g>')

    content = "".join(body)
    # A stable id from the content, so several plots on one page do not share an id.
    ident = "forest-" + hashlib.sha256((title + "\n" + content).encode()).hexdigest()[:12]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{ident}-title" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'font-family="{_esc(FONT)}" font-size="11">'
        f'<title id="{ident}-title">{_esc(title)}</title>{content}</svg>'
    )
