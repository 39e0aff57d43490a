"""The HTML report as a person sees it: a real pytest run, rendered by headless Chromium.

Each test runs a small pytester project with ``--migration-html``, opens the report in Chromium and
reads what is on screen: a screenshot (decoded here with zlib) and the DOM after layout, measured
by a script injected into a copy of the page. Chromium missing skips the tests locally and fails
them under CI (``CI`` set), which ``.ci/run`` installs Chromium for.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

WIDTH, HEIGHT = 1280, 800  # a laptop screen; HEIGHT is the window, the page sees a little less
SLACK = 2  # px of sub-pixel rounding allowed past the right edge
INSTALL = "install it with `apt-get install chromium` (Debian/Ubuntu; .ci/run does this as root)"

RUN_ARGS = (
    "--models=emu-a,emu-b",
    "--migration-gate=no-regression",
    "--migration-json=run.json",
    "--migration-html=report.html",
    "-p",
    "no:randomly",
)

# Two prompt groups; emu-b fails test_refund when REGRESS is true. The triage prompt is
# deterministic, so that one-sample flip is a regression and the gate fails.
SMALL = """
import pytest

REGRESS = {regress}

@pytest.mark.prompt("ticket-triage", deterministic=True)
def test_refund(model):
    assert not (REGRESS and model == "emu-b"), "emu-b routed the refund to sales"

@pytest.mark.prompt("ticket-triage", deterministic=True)
def test_outage(model):
    pass

@pytest.mark.prompt("summary")
@pytest.mark.parametrize("case", ["short", "long"])
def test_summary(model, case):
    pass
"""

LONG_NAME = ("test_" + "a_very_long_descriptive_name_" * 7)[:200]

# 500 parametrized tests and one with a 200-character name, on two models: 1,002 items.
BIG = f"""
import pytest

@pytest.mark.prompt("bulk")
@pytest.mark.parametrize("i", range(500))
def test_case(model, i):
    assert not (model == "emu-b" and i % 50 == 0)

@pytest.mark.prompt("bulk")
def {LONG_NAME}(model):
    assert model != "emu-b"
"""

# Measures the laid-out page before adding anything to it, then writes the numbers into a hidden
# <pre id="modelmigrate-probe"> for --dump-dom to carry out. A text's right edge is clamped
# by any ancestor that clips (overflow other than visible): clipped text does not stick out.
PROBE = """
<script>
(() => {
  const NEEDLE = %(needle)s, SLACK = %(slack)d;
  const root = document.documentElement;
  const width = root.clientWidth;
  const box = (e) => {
    if (!e) return null;
    const r = e.getBoundingClientRect();
    return { top: r.top, bottom: r.bottom, left: r.left, right: r.right };
  };
  const where = (e) => {
    const section = e.closest("section");
    const heading = section && section.querySelector("h2");
    const name = e.getAttribute("class");  // not className: an SVG element's is an SVGAnimatedString
    const cls = name ? "." + name.trim().replace(/ +/g, ".") : "";
    return (heading ? heading.textContent + " > " : "") + e.tagName.toLowerCase() + cls;
  };
  const visibleRight = (node, right) => {
    for (let e = node.parentElement; e && e !== root; e = e.parentElement) {
      if (getComputedStyle(e).overflowX !== "visible") right = Math.min(right, e.getBoundingClientRect().right);
    }
    return right;
  };
  const texts = [];
  const range = document.createRange();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.textContent.trim()) continue;
    range.selectNodeContents(node);
    const r = range.getBoundingClientRect();
    if (!r.width) continue;  // not rendered, e.g. inside a closed <details>
    texts.push({
      where: where(node.parentElement),
      text: node.textContent.trim().slice(0, 60),
      needle: NEEDLE !== "" && node.textContent.includes(NEEDLE),
      left: Math.round(r.left),
      right: Math.round(visibleRight(node, r.right)),
    });
  }
  const overflowing = {};  // where -> how many texts stick out past the right edge, and how far
  for (const t of texts.filter((t) => t.right > width + SLACK)) {
    const o = (overflowing[t.where] ??= { count: 0, left: t.left, right: 0, text: t.text });
    o.count += 1;
    o.right = Math.max(o.right, t.right);
  }
  const gate = document.querySelector(".gate");
  const recommendation = [...document.querySelectorAll("section")].find(
    (e) => e.querySelector("h2") && e.querySelector("h2").textContent.trim() === "Recommendation");
  const forest = document.querySelector("figure.forest svg");
  const verdicts = [...document.querySelectorAll("table")].find(
    (t) => t.tHead && /verdict/i.test(t.tHead.innerText));
  const result = {
    clientWidth: width,
    scrollWidth: root.scrollWidth,
    scrollHeight: root.scrollHeight,
    innerHeight: window.innerHeight,
    gate: gate && { box: box(gate), text: gate.innerText, background: getComputedStyle(gate).backgroundColor },
    verdicts: box(verdicts),
    recommendation: box(recommendation),
    forest: box(forest),
    rows: [...document.querySelectorAll("tr")]
      .filter((tr) => tr.getClientRects().length)
      .map((tr) => [...tr.cells].map((c) => c.innerText.trim())),
    headers: [...document.querySelectorAll("thead th")].map((th) => ({ text: th.innerText.trim(), ...box(th) })),
    overflowing,
    needle: texts.filter((t) => t.needle),
  };
  const out = document.createElement("pre");
  out.id = "modelmigrate-probe";
  out.hidden = true;
  out.textContent = JSON.stringify(result);
  document.body.append(out);
})();
</script>
"""


# -- Chromium ----------------------------------------------------------------------------------------


def find_chromium() -> str:
    """Chromium on PATH; otherwise skip, or fail when ``CI`` is set: CI never skips these silently."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail(
            f"chromium is not on PATH and CI is set, so the browser tests cannot skip: {INSTALL}",
            pytrace=False,
        )
    pytest.skip(f"chromium is not on PATH: {INSTALL}")


@pytest.fixture(scope="session")
def chromium() -> str:
    return find_chromium()


def render(chromium: str, page: Path, *, needle: str = "", screenshot: Path | None = None) -> dict[str, Any]:
    """Open ``page`` in headless Chromium: what PROBE measures on it, and optionally a screenshot.

    Chromium opens a copy of the page with PROBE before ``</body>``; the probe's output element is
    hidden, so the screenshot shows the report as written.
    """
    doc = page.read_text(encoding="utf-8")
    script = PROBE % {"needle": json.dumps(needle), "slack": SLACK}
    head, sep, tail = doc.rpartition("</body>")
    copy = page.with_name(f"{page.stem}-probed.html")
    copy.write_text(head + script + sep + tail if sep else doc + script, encoding="utf-8")
    shot = [f"--screenshot={screenshot}"] if screenshot else []
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--force-device-scale-factor=1", f"--window-size={WIDTH},{HEIGHT}",
         f"--user-data-dir={page.parent / 'chromium-profile'}",  # its own: xdist runs several
         "--dump-dom", *shot, copy.as_uri()],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    found = re.search(r'<pre id="modelmigrate-probe"[^>]*>(.*?)</pre>', done.stdout, re.DOTALL)
    assert found, f"the probe script did not run; Chromium's DOM starts: {done.stdout[:300]!r}"
    measured: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return measured


@dataclass
class Png:
    width: int
    height: int
    rows: list[bytes]  # RGB, three bytes a pixel

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        r, g, b = self.rows[y][3 * x : 3 * x + 3]
        return r, g, b

    def colours(self) -> set[bytes]:
        return {row[i : i + 3] for row in self.rows for i in range(0, len(row), 3)}


def decode_png(data: bytes) -> Png:
    """An 8-bit RGB or RGBA PNG (what Chromium writes), unfiltered with the stdlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, (depth, colour_type, interlace)
    bpp = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:  # Up
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line) if bpp == 3 else bytes(v for i, v in enumerate(line) if i % 4 != 3))
        prev = line
    return Png(width, height, rows)


def rgb(css: str) -> tuple[int, int, int]:
    """``rgb(255, 235, 233)`` (getComputedStyle's form) as a tuple."""
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    return r, g, b


# -- the pytest run ----------------------------------------------------------------------------------


def migration_report(pytester: pytest.Pytester, source: str, **outcomes: int) -> tuple[dict[str, Any], Path]:
    """Run the project's tests on emu-a and emu-b; the run JSON and the HTML report it wrote."""
    pytester.makepyfile(test_project=source)
    result = pytester.runpytest_subprocess(*RUN_ARGS, timeout=120)
    result.assert_outcomes(**outcomes)
    run: dict[str, Any] = json.loads((pytester.path / "run.json").read_text(encoding="utf-8"))
    return run, pytester.path / "report.html"


def banner_words(gate: dict[str, Any]) -> str:
    return "Migration gate PASSED" if gate["passed"] else "Migration gate FAILED"


# -- tests ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("regress", [True, False], ids=["gate-fails", "gate-passes"])
def test_html_in_headless_chromium(pytester: pytest.Pytester, chromium: str, regress: bool) -> None:
    """The first screen shows the gate's outcome in red or green, its reason, and every verdict."""
    counts = {"passed": 7, "failed": 1} if regress else {"passed": 8}
    run, page = migration_report(pytester, SMALL.format(regress=regress), **counts)
    gate = run["gate"]
    assert gate["passed"] is not regress
    shot = pytester.path / "report.png"
    measured = render(chromium, page, screenshot=shot)
    screen = measured["innerHeight"]

    # the banner: on the first screen, after the recommendation, saying passed or FAILED and why
    banner = measured["gate"]
    assert banner is not None, "no element with class `gate` in the page"
    rec = measured["recommendation"]
    assert rec is not None and 0 <= rec["top"] < banner["box"]["top"], (rec, banner["box"])
    assert measured["forest"] is not None, "no forest plot of the paired drops"
    assert banner["box"]["top"] >= 0 and banner["box"]["bottom"] <= screen, (banner["box"], screen)
    assert banner_words(gate) in banner["text"]
    assert " ".join(gate["reason"].split()) in " ".join(banner["text"].split())

    # every verdict of the gate, as a row of the verdict table, which starts on the first screen
    assert measured["verdicts"] is not None, "no table with a `verdict` column in the page"
    assert measured["verdicts"]["top"] < screen, (measured["verdicts"], screen)
    expected = [(g, c, v["verdict"]) for g, per in gate["verdicts"].items() for c, v in per.items()]
    shown = [
        (group, candidate, verdict)
        for group, candidate, verdict in expected
        if any(
            group in row and candidate in row and any(verdict in cell for cell in row)
            for row in measured["rows"]
        )
    ]
    assert expected, gate
    assert shown == expected, f"table rows on the page: {measured['rows']}"
    assert measured["scrollWidth"] <= measured["clientWidth"] + SLACK, measured["overflowing"]

    # the screenshot: a drawn page, the banner filled with its red (failed) or green (passed)
    png = decode_png(shot.read_bytes())
    assert (png.width, png.height) == (WIDTH, HEIGHT)
    colours = png.colours()
    assert len(colours) > 50, f"a blank screenshot: {len(colours)} distinct colour(s)"
    background = rgb(banner["background"])
    r, g, _ = background
    assert (r > g) if regress else (g > r), f"banner background {background} for gate passed={gate['passed']}"
    box = banner["box"]
    inside = [
        png.pixel(x, y)
        for y in range(int(box["top"]) + 3, int(box["bottom"]) - 3)
        for x in range(int(box["left"]) + 3, int(box["right"]) - 3, 4)
    ]
    share = sum(p == background for p in inside) / len(inside)
    assert share > 0.5, f"only {share:.0%} of the banner's pixels are its background colour {background}"


@pytest.mark.slow
def test_no_broken_layout_at_1000_tests(pytester: pytest.Pytester, chromium: str) -> None:
    """1,002 items and a 200-character test name: the page keeps the window's width."""
    run, page = migration_report(pytester, BIG, passed=991, failed=11)
    assert len(run["outcomes"]) == 1002
    started = time.monotonic()
    measured = render(chromium, page, needle=LONG_NAME[:24])
    seconds = time.monotonic() - started
    assert seconds < 30, f"Chromium took {seconds:.1f} s to load and lay out the report"

    banner = measured["gate"]
    assert banner is not None, "no element with class `gate` in the page"
    assert banner_words(run["gate"]) in banner["text"]
    assert " ".join(run["gate"]["reason"].split()) in " ".join(banner["text"].split())
    # the decision on the first screen: the recommendation at the top, then the whole banner; the
    # forest plot of the drops follows, within the width
    rec, forest = measured["recommendation"], measured["forest"]
    assert rec is not None and 0 <= rec["top"] < 200, rec
    assert forest is not None and forest["right"] <= measured["clientWidth"] + SLACK, forest
    assert forest["bottom"] - forest["top"] < 200, forest  # one prompt group: one row, not a page
    assert rec["top"] < banner["box"]["top"], (rec, banner)
    assert banner["box"]["top"] >= 0 and banner["box"]["bottom"] <= measured["innerHeight"], banner
    assert measured["innerHeight"] < measured["scrollHeight"] < 40 * len(run["outcomes"]), measured[
        "scrollHeight"
    ]
    assert measured["scrollWidth"] <= measured["clientWidth"] + SLACK, (
        f"horizontal overflow at a {WIDTH} px window: scrollWidth {measured['scrollWidth']} > "
        f"clientWidth {measured['clientWidth']}; text past the right edge: {measured['overflowing']}"
    )
    models = run["matrix"]["models"]
    off_screen = [
        h for h in measured["headers"] if h["text"] in models and h["right"] > measured["clientWidth"] + SLACK
    ]
    assert off_screen == [], "pass-rate columns beyond the window's right edge"
    assert measured["needle"], "the 200-character test name is not shown anywhere"
    sticking_out = [t for t in measured["needle"] if t["right"] > measured["clientWidth"] + SLACK]
    assert sticking_out == [], "the 200-character test name widens the page"


def test_missing_chromium_skips_locally_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        find_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI is set.*apt-get install chromium"):
        find_chromium()
