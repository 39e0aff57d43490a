"""metrics.py and pricing.py: percentiles, tokens, cost, deltas; the price syntax and its errors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_modelmigrate.metrics import compute_metrics, percentile
from pytest_modelmigrate.pricing import Price, PriceError, load_price_file, parse_prices, price_table

if TYPE_CHECKING:
    from pathlib import Path


def _call(
    model: str, latency: float | None, inp: int | None, out: int | None, **extra: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "provider": "openai",
        "endpoint": "chat.completions",
        "status": 200,
        "model_requested": model,
        "model_echoed": None,
        "usage": {
            "input_tokens": inp,
            "output_tokens": out,
            "cached_input_tokens": None,
            "reasoning_tokens": None,
        },
        "latency_ms": latency,
        "error": None,
        "refusal": False,
    }
    data.update(extra)
    return data


def _outcome(test: str, model: str, calls: list[dict[str, Any]], total: int = 1) -> dict[str, Any]:
    return {"test": test, "model": model, "group": "g", "total": total, "passed": total, "calls": calls}


def test_percentile_is_nearest_rank() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert percentile(values, 50) == 20.0  # rank ceil(0.5·4) = 2
    assert percentile(values, 95) == 40.0  # rank ceil(3.8) = 4
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile(list(range(1, 21)), 95) == 19  # ceil(19.0) = 19
    assert percentile([7.0], 50) == 7.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 0)


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1), st.floats(min_value=0.1, max_value=100))
def test_percentile_is_an_observed_value_with_enough_below(values: list[float], p: float) -> None:
    result = percentile(values, p)
    assert result in values
    assert sum(v <= result for v in values) >= p / 100 * len(values) - 1e-9


def test_metrics_by_hand() -> None:
    inc = [_call("old", lat, 1000, 200) for lat in (100, 200, 300, 400, 500)]
    cand = [_call("new", lat, 1200, None) for lat in (150, 250, 350)] + [_call("new", None, None, None)]
    cand.append(_call("judge", 80, 50, 5, error={"status": 500, "type": None, "message": "x"}, status=500))
    cand.append(_call("new", 90, 10, 1, refusal=True))
    outcomes = [
        _outcome("t::a", "old", inc[:3]),
        _outcome("t::b", "old", inc[3:]),
        _outcome("t::a", "new", cand[:3], total=2),
        _outcome("t::b", "new", cand[3:]),
        {"test": "t::c", "model": "new", "group": "g", "total": 0, "passed": 0, "calls": []},  # skipped
    ]
    prices = {"old": Price(input=2.5, output=10.0), "new": Price(input=1.0, output=4.0)}
    m = compute_metrics(outcomes, ["old", "new"], "old", prices)
    old, new = m["models"]["old"], m["models"]["new"]
    assert m["percentile"] == "nearest-rank"
    assert old["calls"] == 5
    assert old["tests"] == 2
    assert old["latency_ms"] == {"p50": 300.0, "p95": 500.0, "count": 5}
    assert old["tokens"]["input"] == 5000
    assert old["tokens"]["output"] == 1000
    assert old["tokens"]["input_per_test"] == 2500
    assert old["tokens"]["output_per_test"] == 500
    # 5 × (1000 · 2.5 + 200 · 10) / 1e6
    assert old["cost_usd"]["total"] == pytest.approx(0.0225)
    assert old["cost_usd"]["per_test"] == pytest.approx(0.01125)
    assert old["cost_usd"]["unpriced_calls"] == 0
    # new: latencies 150 250 350 80 90 → sorted 80 90 150 250 350: p50 rank 3, p95 rank 5
    assert new["latency_ms"] == {"p50": 150.0, "p95": 350.0, "count": 5}
    assert new["calls"] == 6
    assert new["tests"] == 3
    assert new["tokens"]["input"] == 3 * 1200 + 50 + 10
    assert new["tokens"]["output"] == 5 + 1  # the unknown counts are not zeros
    assert new["errors"] == 1
    assert new["refusals"] == 1
    # priced: only the refusal call (10 · 1 + 1 · 4); the 3 without output tokens, the empty one
    # and the judge call (a model with no price) are unpriced
    assert new["cost_usd"]["total"] == pytest.approx(14 / 1e6)
    assert new["cost_usd"]["unpriced_calls"] == 5
    d = m["deltas"]["new"]
    assert d["latency_p50_ms"] == {"incumbent": 300.0, "candidate": 150.0, "diff": -150.0, "ratio": 0.5}
    assert d["latency_p95_ms"]["ratio"] == pytest.approx(0.7)
    assert d["input_tokens_per_test"]["diff"] == pytest.approx(3660 / 3 - 2500)
    assert m["groups"]["g"]["old"]["calls"] == 5
    json.dumps(m)


def test_unknown_model_costs_none_not_zero() -> None:
    m = compute_metrics([_outcome("t::a", "x", [_call("x", 10, 100, 10)])], ["x"], "x", {})
    assert m["models"]["x"]["cost_usd"] == {"total": None, "per_test": None, "unpriced_calls": 1}
    assert m["deltas"] == {}


def test_price_by_alias_name_and_cached_tokens() -> None:
    call = _call("gpt-4o-2024-08-06", 10, 1000, 100)
    call["usage"]["cached_input_tokens"] = 400
    outcomes = [_outcome("t::a", "old", [call])]
    prices = {"gpt-4o-2024-08-06": Price(input=2.5, output=10.0, cached_input=1.25)}
    m = compute_metrics(outcomes, ["old"], "old", prices, model_names={"old": "gpt-4o-2024-08-06"})
    # OpenAI counts cached tokens inside input: 600 · 2.5 + 400 · 1.25 + 100 · 10
    assert m["models"]["old"]["cost_usd"]["total"] == pytest.approx(3000 / 1e6)
    call["provider"] = "anthropic"  # Anthropic reports them apart: 1000 · 2.5 + 400 · 1.25 + 100 · 10
    m = compute_metrics(outcomes, ["old"], "old", prices, model_names={"old": "gpt-4o-2024-08-06"})
    assert m["models"]["old"]["cost_usd"]["total"] == pytest.approx(4000 / 1e6)


def test_price_lines() -> None:
    table = parse_prices(
        [
            "# comment",
            "",
            "gpt-4o: input=2.50 output=10.00 cached_input=1.25",
            "gpt-5: input=$1.25, output=10",
        ]
    )
    assert table == {"gpt-4o": Price(2.5, 10.0, 1.25), "gpt-5": Price(1.25, 10.0)}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("gpt-4o input=2.5 output=10", "expected 'MODEL: input=USD output=USD'"),
        ("gpt-4o: input=2.5", "missing output"),
        ("gpt-4o: input=cheap output=10", "input='cheap' is not a number"),
        ("gpt-4o: input=2.5 output=10 extra=1", "unknown key(s) extra"),
        ("gpt-4o: input=-1 output=10", "must be a non-negative number"),
        ("gpt-4o: input 2.5 output=10", "'input' is not KEY=NUMBER"),
    ],
)
def test_price_line_errors_name_setting_and_entry(line: str, expected: str) -> None:
    with pytest.raises(PriceError) as info:
        parse_prices([line])
    assert str(info.value).startswith(f"ini modelmigrate_prices: entry {line!r}")
    assert expected in str(info.value)


def test_price_twice_is_an_error() -> None:
    with pytest.raises(PriceError, match="'m' is priced twice"):
        parse_prices(["m: input=1 output=1", "m: input=2 output=2"])


def test_price_files(tmp_path: Path) -> None:
    (tmp_path / "prices.json").write_text(json.dumps({"a": {"input": 1, "output": 2}}))
    (tmp_path / "prices.toml").write_text("[b]\ninput = 3.0\noutput = 4.0\ncached_input = 0.5\n")
    (tmp_path / "pyproject.toml").write_text("[tool.modelmigrate.prices]\nc = { input = 5, output = 6 }\n")
    assert load_price_file(tmp_path / "prices.json") == {"a": Price(1.0, 2.0)}
    assert load_price_file(tmp_path / "prices.toml") == {"b": Price(3.0, 4.0, 0.5)}
    assert load_price_file(tmp_path / "pyproject.toml") == {"c": Price(5.0, 6.0)}
    # the ini lines win over the file
    table = price_table(["a: input=9 output=9"], "prices.json", base_dir=tmp_path)
    assert table == {"a": Price(9.0, 9.0)}


def test_price_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PriceError, match=r"price file .*bad\.json: not valid JSON"):
        load_price_file(bad)
    entry = tmp_path / "entry.json"
    entry.write_text(json.dumps({"a": {"input": 1}}))
    with pytest.raises(PriceError, match=r"entry\.json: entry 'a': missing output"):
        load_price_file(entry)
    with pytest.raises(PriceError, match="cannot read it"):
        load_price_file(tmp_path / "missing.json")
    (tmp_path / "p.yaml").write_text("")
    with pytest.raises(PriceError, match=r"expected a \.json or \.toml file"):
        load_price_file(tmp_path / "p.yaml")
    (tmp_path / "pyproject.toml").write_text("[tool.other]\n")
    with pytest.raises(PriceError, match=r"no \[tool.modelmigrate.prices\] table"):
        load_price_file(tmp_path / "pyproject.toml")


def test_no_prices_ship() -> None:
    assert price_table() == {}


def test_per_test_figures_count_the_runs_that_made_the_calls() -> None:
    """An expected failure is no evidence (total 0), but its calls ran: per test counts it once."""
    call = {"provider": "openai", "endpoint": "chat.completions", "status": 200, "usage": {"input_tokens": 8}}
    outcomes = [
        {"model": "b", "group": "g", "total": 1, "passed": 1, "samples": [], "calls": [call]},
        {
            "model": "b",
            "group": "g",
            "total": 0,
            "passed": 0,
            "outcome": "xfailed",
            "samples": [],
            "calls": [call],
        },
    ]
    metrics = compute_metrics(outcomes, ["b"], "b")
    assert metrics["models"]["b"]["tests"] == 2
    assert metrics["models"]["b"]["tokens"]["input_per_test"] == 8


def test_a_rollback_cell_is_no_one_models_latency_or_cost() -> None:
    # the candidate answered two turns, the incumbent the third: a slow, dear call of the incumbent
    # in the candidate's column would make the candidate look slow and dear
    prices = {"old": Price(10.0, 10.0), "new": Price(1.0, 1.0)}
    own = [
        _outcome("t::a", "old", [_call("old", 100, 1000, 100)]),
        _outcome("t::a", "new", [_call("new", 10, 1000, 100)]),
    ]
    mixed = {
        **_outcome("t::chat[rollback]", "new", [_call("new", 10, 10, 10), _call("old", 900, 10**6, 10**5)])
    }
    mixed["rollback"] = "rollback"
    base = compute_metrics(own, ["old", "new"], "old", prices)
    with_rollback = compute_metrics([*own, mixed], ["old", "new"], "old", prices)
    assert with_rollback["models"] == base["models"] and with_rollback["deltas"] == base["deltas"]
    assert (
        compute_metrics([*own, {**mixed, "rollback": None}], ["old", "new"], "old", prices)["models"]
        != base["models"]
    )
