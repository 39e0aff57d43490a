"""Latency, tokens, cost, errors and refusals per model, read from the recorded calls.

Pure module: no pytest import. Input is the run's outcome dicts (their ``calls`` entries are
:meth:`Call.summary` dicts); output is a JSON-safe dict (see :func:`compute_metrics`).

Conventions (docs/reports.md):

* **Percentiles are nearest-rank**: the p-th percentile of n sorted values is the value at rank
  ``ceil(p/100 · n)`` (1-based). It is always an observed latency; p50 of [10, 20, 30, 40] is 20.
  Calls without ``latency_ms`` (cassettes recorded without timing) are left out.
* **Per test** means per test execution: one sample of one (test, model). A test run with 5
  samples counts 5. Skipped tests count 0.
* Token totals are ``None`` when no call reported that count; a total never pretends to be 0.
* A call's cost is ``None`` when its model has no price or it reported no tokens; the model's
  ``cost_usd`` sums the priced calls and ``unpriced_calls`` says how many were left out. A model
  with no priced call has ``cost_usd`` None (shown "n/a", never $0).
* Every call of a test counts, judge and embedding calls included.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pricing import Price

__all__ = ["compute_metrics", "deltas", "model_metrics", "percentile", "price_for_call", "run_metrics"]

PERCENTILE_METHOD = "nearest-rank"


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of ``values`` (``0 < p <= 100``); None for no values."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p!r}")
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _sum(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def price_for_call(
    call: Mapping[str, Any], model: str, prices: Mapping[str, Price], model_names: Mapping[str, str]
) -> Price | None:
    """The price of one call made by a test of ``model`` (an id).

    By the model the call requested, then the one the provider echoed; the test's model id
    prices a call that requested the test's model name (or named no model). A judge call to a
    model without a price stays unpriced.
    """
    requested = call.get("model_requested")
    echoed = call.get("model_echoed")
    for name in (requested, echoed):
        if isinstance(name, str) and name in prices:
            return prices[name]
    if requested is None or requested in (model, model_names.get(model)):
        if model in prices:
            return prices[model]
        name = model_names.get(model)
        if name is not None and name in prices:
            return prices[name]
    return None


def _call_cost(call: Mapping[str, Any], price: Price | None) -> float | None:
    if price is None:
        return None
    usage = call.get("usage") or {}
    inp, out = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    if call.get("endpoint") == "embeddings" and out is None and inp is not None:
        out = 0
    if inp is None or out is None:
        return None
    return price.cost(
        input_tokens=inp,
        output_tokens=out,
        cached_input_tokens=_int(usage.get("cached_input_tokens")),
        cached_included=call.get("provider") != "anthropic",
    )


def _is_error(call: Mapping[str, Any]) -> bool:
    status = call.get("status")
    return call.get("error") is not None or (isinstance(status, int) and status >= 400)


def _per(total: float | None, count: int) -> float | None:
    return None if total is None or count == 0 else total / count


def model_metrics(
    outcomes: Iterable[Mapping[str, Any]],
    model: str,
    prices: Mapping[str, Price] | None = None,
    model_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The metrics of one model over ``outcomes`` (already filtered to that model)."""
    prices = prices or {}
    names = model_names or {}
    executions = 0
    latencies: list[float] = []
    inputs: list[int | None] = []
    outputs: list[int | None] = []
    cached: list[int | None] = []
    reasoning: list[int | None] = []
    costs: list[float] = []
    calls = unpriced = errors = refusals = 0
    for outcome in outcomes:
        # per test = per sample run: an expected failure's calls ran too, though it is no evidence
        ran = int(outcome.get("total", 0) or 0)
        if not ran and outcome.get("calls"):
            ran = len(outcome.get("samples") or []) or 1
        executions += ran
        for call in outcome.get("calls") or []:
            calls += 1
            latency = call.get("latency_ms")
            if isinstance(latency, (int, float)) and not isinstance(latency, bool):
                latencies.append(float(latency))
            usage = call.get("usage") or {}
            inputs.append(_int(usage.get("input_tokens")))
            outputs.append(_int(usage.get("output_tokens")))
            cached.append(_int(usage.get("cached_input_tokens")))
            reasoning.append(_int(usage.get("reasoning_tokens")))
            cost = _call_cost(call, price_for_call(call, model, prices, names))
            if cost is None:
                unpriced += 1
            else:
                costs.append(cost)
            errors += _is_error(call)
            refusals += bool(call.get("refusal"))
    input_total, output_total = _sum(inputs), _sum(outputs)
    cost_total = sum(costs) if costs else None
    return {
        "tests": executions,
        "calls": calls,
        "latency_ms": {
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "count": len(latencies),
        },
        "tokens": {
            "input": input_total,
            "output": output_total,
            "cached_input": _sum(cached),
            "reasoning": _sum(reasoning),
            "input_per_test": _per(input_total, executions),
            "output_per_test": _per(output_total, executions),
        },
        "cost_usd": {
            "total": cost_total,
            "per_test": _per(cost_total, executions),
            "unpriced_calls": unpriced,
        },
        "errors": errors,
        "refusals": refusals,
    }


def _delta(candidate: float | None, incumbent: float | None) -> dict[str, float | None]:
    if candidate is None or incumbent is None:
        return {"incumbent": incumbent, "candidate": candidate, "diff": None, "ratio": None}
    return {
        "incumbent": incumbent,
        "candidate": candidate,
        "diff": candidate - incumbent,
        "ratio": candidate / incumbent if incumbent else None,
    }


def deltas(candidate: Mapping[str, Any], incumbent: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """Candidate against incumbent: ``diff`` = candidate − incumbent, ``ratio`` = candidate / incumbent."""
    return {
        "latency_p50_ms": _delta(candidate["latency_ms"]["p50"], incumbent["latency_ms"]["p50"]),
        "latency_p95_ms": _delta(candidate["latency_ms"]["p95"], incumbent["latency_ms"]["p95"]),
        "input_tokens_per_test": _delta(
            candidate["tokens"]["input_per_test"], incumbent["tokens"]["input_per_test"]
        ),
        "output_tokens_per_test": _delta(
            candidate["tokens"]["output_per_test"], incumbent["tokens"]["output_per_test"]
        ),
        "cost_per_test_usd": _delta(candidate["cost_usd"]["per_test"], incumbent["cost_usd"]["per_test"]),
        "cost_total_usd": _delta(candidate["cost_usd"]["total"], incumbent["cost_usd"]["total"]),
    }


def _per_test_values(
    outcomes: Iterable[Mapping[str, Any]],
    model: str,
    prices: Mapping[str, Price],
    names: Mapping[str, str],
) -> tuple[dict[str, float], dict[str, float]]:
    """test -> cost per sample run (every call priced) and test -> mean call latency, of one model.

    A matrix row can hold several outcomes (a dataset's examples): they add up in any order, to
    the same bits (``math.fsum``), so a merged run of shards agrees with one job.
    """
    costs: dict[str, list[float]] = {}
    runs: dict[str, int] = {}
    unpriced: set[str] = set()
    latencies: dict[str, list[float]] = {}
    for outcome in outcomes:
        test, calls = str(outcome.get("test", "")), outcome.get("calls") or []
        if not calls:
            continue
        runs[test] = runs.get(test, 0) + (
            int(outcome.get("total", 0) or 0) or len(outcome.get("samples") or []) or 1
        )
        for call in calls:
            priced = _call_cost(call, price_for_call(call, model, prices, names))
            if priced is None:
                unpriced.add(test)
            else:
                costs.setdefault(test, []).append(priced)
            latency = call.get("latency_ms")
            if isinstance(latency, (int, float)) and not isinstance(latency, bool):
                latencies.setdefault(test, []).append(float(latency))
    per_run = {t: math.fsum(v) / runs[t] for t, v in costs.items() if t not in unpriced}
    mean_latency = {t: math.fsum(v) / len(v) for t, v in latencies.items()}
    return per_run, mean_latency


def ratio_interval(incumbent: Mapping[str, float], candidate: Mapping[str, float]) -> dict[str, Any] | None:
    """The candidate's mean over the incumbent's, over the tests both have, with a 95% interval.

    Paired by test; the interval is the delta method's for a ratio of means (the variance of
    ``c - R·i`` over the tests), None below two tests or when the incumbent's mean is 0.
    """
    tests = sorted(set(incumbent) & set(candidate))
    if len(tests) < 2:
        return None
    inc = [incumbent[t] for t in tests]
    cand = [candidate[t] for t in tests]
    mean_inc, mean_cand = sum(inc) / len(inc), sum(cand) / len(cand)
    if mean_inc <= 0:
        return None
    ratio = mean_cand / mean_inc
    residuals = [c - ratio * i for c, i in zip(cand, inc, strict=True)]
    se = (sum(r * r for r in residuals) / (len(tests) * (len(tests) - 1))) ** 0.5 / mean_inc
    return {
        "ratio": ratio,
        "low": max(0.0, ratio - 1.96 * se),
        "high": ratio + 1.96 * se,
        "tests": len(tests),
    }


def compute_metrics(
    outcomes: Sequence[Mapping[str, Any]],
    model_ids: Sequence[str],
    incumbent: str | None,
    prices: Mapping[str, Price] | None = None,
    *,
    model_names: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Per model, per prompt group and model, and each candidate's deltas against the incumbent.

    ``model_names`` maps model id → API name (the run's ``models``), so a price keyed by either
    applies. Returns ``{"percentile", "incumbent", "prices", "models", "groups", "deltas"}``.
    """
    models = list(model_ids)
    for outcome in outcomes:
        model = str(outcome.get("model", ""))
        if model not in models:
            models.append(model)
    # a rollback row's cell holds two models' calls (one conversation switched mid-way): its
    # latency, tokens and cost are no one model's, so they stay out of every model's figures
    outcomes = [o for o in outcomes if not o.get("rollback")]
    by_model: dict[str, list[Mapping[str, Any]]] = {m: [] for m in models}
    by_group: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for outcome in outcomes:
        model = str(outcome.get("model", ""))
        by_model[model].append(outcome)
        by_group.setdefault(str(outcome.get("group", "")), {}).setdefault(model, []).append(outcome)
    per_model = {m: model_metrics(by_model[m], m, prices, model_names) for m in models}
    groups = {
        group: {m: model_metrics(per[m], m, prices, model_names) for m in models if m in per}
        for group, per in by_group.items()
    }
    result: dict[str, Any] = {
        "percentile": PERCENTILE_METHOD,
        "incumbent": incumbent,
        "prices": {m: p.to_dict() for m, p in (prices or {}).items()},
        "models": per_model,
        "groups": groups,
        "deltas": {},
    }
    if incumbent is not None and incumbent in per_model:
        result["deltas"] = {m: deltas(per_model[m], per_model[incumbent]) for m in models if m != incumbent}
        # paired by test, with intervals: what the recommendation weighs beside the quality
        values = {m: _per_test_values(by_model[m], m, prices or {}, model_names or {}) for m in models}
        result["paired"] = {
            m: {
                "cost_per_test": ratio_interval(values[incumbent][0], values[m][0]),
                "latency_mean": ratio_interval(values[incumbent][1], values[m][1]),
            }
            for m in models
            if m != incumbent
        }
    return result


def run_metrics(run: Mapping[str, Any], prices: Mapping[str, Price] | None = None) -> dict[str, Any]:
    """The run's ``metrics``, computed from its outcomes when it has none (or when priced anew)."""
    stored = run.get("metrics")
    if isinstance(stored, Mapping) and prices is None:
        return dict(stored)
    models = run.get("models") or []
    return compute_metrics(
        run.get("outcomes") or [],
        [str(m["id"]) for m in models],
        run.get("incumbent"),
        prices,
        model_names={str(m["id"]): str(m["name"]) for m in models},
    )
