"""What a recording run will call, and what it may cost, before a single call is made.

Pure module: no pytest import. The plugin lists, for each (test, model) of the run, how many
samples it takes and how many its cassette holds; :func:`plan_recording` turns that into
calls, tokens and cost per model, estimated from what is already recorded: the test's own
cassette, else the incumbent's, else any other model's for the same test. ``--migration-plan``
prints it and exits; a recording run uses the planned calls for its progress lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from .pricing import Price

__all__ = [
    "ModelPlan",
    "PlannedTest",
    "RecordingPlan",
    "new_samples",
    "plan_lines",
    "plan_recording",
    "read_episodes",
]


def read_episodes(path: Path) -> tuple[int, list[list[dict[str, Any]]]] | None:
    """A cassette's episodes as call summaries (one list per sample); None when there is no file.

    Returns ``(interactions, episodes)``. A file that cannot be read counts as no recording.
    """
    from .cassettes import CassetteReadError, _episodes
    from .providers.base import CassetteFormatError
    from .providers.parse import parse_interaction

    if not path.is_file():
        return None
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    interactions = data.get("interactions") if isinstance(data, dict) else None
    if not isinstance(interactions, list):
        return 0, []
    meta = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    try:
        sizes, _ = _episodes(path, len(interactions), meta.get("modelmigrate"), "")
    except CassetteReadError:
        sizes = [len(interactions)] if interactions else []
    calls: list[dict[str, Any]] = []
    for index, interaction in enumerate(interactions):
        try:
            call = parse_interaction(
                interaction["request"], interaction["response"], source=str(path), index=index
            )
        except (CassetteFormatError, KeyError, TypeError):
            calls.append({})
            continue
        calls.append(call.summary())
    episodes, start = [], 0
    for size in sizes:
        episodes.append(calls[start : start + size])
        start += size
    return len(interactions), episodes


def new_samples(record_mode: str, samples: int, recorded: int | None) -> int:
    """How many samples of a (test, model) this run sends to the provider.

    ``recorded``: episodes in its cassette (None: no cassette). ``once`` records a missing
    cassette only, ``new_episodes`` the samples a cassette lacks, ``rewrite``/``all`` every one.
    """
    if record_mode in ("rewrite", "all"):
        return samples
    if record_mode == "once":
        return samples if recorded is None else 0
    if record_mode == "new_episodes":
        return max(samples - (recorded or 0), 0)
    return 0


@dataclass
class PlannedTest:
    """One (test, model): its samples, what is recorded, and the reference it is estimated from."""

    nodeid: str
    test: str
    model: str
    model_name: str
    samples: int
    recorded: int | None  # episodes in its cassette (None: no cassette)
    new: int  # samples this run records
    reference: list[list[dict[str, Any]]] = field(default_factory=list)  # call summaries per sample
    source: str = ""  # "own", "incumbent", "other" or "" (nothing recorded to go by)


@dataclass
class ModelPlan:
    model: str
    tests: int = 0  # (test, model)s that record something
    samples: int = 0
    calls: float = 0.0
    input_tokens: float = 0.0
    output_tokens: float = 0.0
    cost: float | None = None
    unpriced: int = 0  # tests whose calls have no price (or no token counts)
    guessed: int = 0  # tests with nothing recorded to go by: one call per sample, no tokens


@dataclass
class RecordingPlan:
    record_mode: str
    models: list[ModelPlan]
    tests: list[PlannedTest]

    @property
    def calls(self) -> float:
        return sum(m.calls for m in self.models)

    def calls_for(self, model: str) -> int:
        return round(sum(m.calls for m in self.models if m.model == model))

    def to_dict(self) -> dict[str, Any]:
        return {
            "record_mode": self.record_mode,
            "models": [
                {
                    "model": m.model,
                    "tests": m.tests,
                    "samples": m.samples,
                    "calls": round(m.calls),
                    "input_tokens": round(m.input_tokens),
                    "output_tokens": round(m.output_tokens),
                    "cost_usd": None if m.cost is None else round(m.cost, 6),
                    "unpriced": m.unpriced,
                    "guessed": m.guessed,
                }
                for m in self.models
            ],
        }


def plan_recording(
    tests: Sequence[PlannedTest],
    models: Sequence[str],
    *,
    record_mode: str,
    prices: Mapping[str, Price],
    model_names: Mapping[str, str],
) -> RecordingPlan:
    """Calls, tokens and cost per model for the samples ``tests`` record (see the module doc)."""
    from .metrics import price_for_call

    plans = {m: ModelPlan(m) for m in models}
    for planned in tests:
        if planned.new <= 0:
            continue
        plan = plans.setdefault(planned.model, ModelPlan(planned.model))
        plan.tests += 1
        plan.samples += planned.new
        episodes = [e for e in planned.reference if e]
        if not episodes:
            plan.calls += planned.new
            plan.guessed += 1
            continue
        calls = [c for e in episodes for c in e]
        per_sample = len(calls) / len(episodes)
        plan.calls += planned.new * per_sample
        inputs = [_tokens(c, "input_tokens") for c in calls]
        outputs = [_tokens(c, "output_tokens") for c in calls]
        scale = planned.new / len(episodes)
        plan.input_tokens += scale * sum(inputs)
        plan.output_tokens += scale * sum(outputs)
        cost = 0.0
        priced = bool(calls)
        for call, inp, out in zip(calls, inputs, outputs, strict=True):
            # priced as a call of this test's model (the reference may be another model's)
            mine = {**call, "model_requested": planned.model_name, "model_echoed": None}
            price = price_for_call(mine, planned.model, prices, model_names)
            value = price.cost(input_tokens=inp, output_tokens=out) if price is not None else None
            if value is None:
                priced = False
                break
            cost += value
        if priced:
            plan.cost = (plan.cost or 0.0) + scale * cost
        else:
            plan.unpriced += 1
    return RecordingPlan(record_mode, list(plans.values()), list(tests))


def _tokens(call: Mapping[str, Any], key: str) -> int:
    usage = call.get("usage")
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _number(value: float) -> str:
    return f"{round(value):,}"


def plan_lines(plan: RecordingPlan, *, dry_run: bool) -> list[str]:
    """The plan as the terminal shows it: one row per model, then how it was estimated."""
    head = (
        f"recording plan (--record-mode={plan.record_mode}; nothing was sent to any provider):"
        if dry_run
        else f"recording plan (--record-mode={plan.record_mode}):"
    )
    rows = [("model", "tests", "samples", "calls", "input tok", "output tok", "est. cost")]
    total_cost: float | None = 0.0
    for m in plan.models:
        cost = "n/a" if m.cost is None else f"${m.cost:.4f}"
        if m.unpriced and m.cost is not None:
            cost += "+"
        if m.cost is None and m.tests:
            total_cost = None
        elif total_cost is not None and m.cost is not None:
            total_cost += m.cost
        rows.append(
            (
                m.model,
                str(m.tests),
                str(m.samples),
                _number(m.calls),
                _number(m.input_tokens),
                _number(m.output_tokens),
                cost,
            )
        )
    rows.append(
        (
            "total",
            str(sum(m.tests for m in plan.models)),
            str(sum(m.samples for m in plan.models)),
            _number(plan.calls),
            _number(sum(m.input_tokens for m in plan.models)),
            _number(sum(m.output_tokens for m in plan.models)),
            "n/a" if total_cost is None else f"${total_cost:.4f}",
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [head]
    for row in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    guessed = sum(m.guessed for m in plan.models)
    unpriced = sum(m.unpriced for m in plan.models)
    lines.append(
        "estimated from each test's recorded calls per sample and their tokens (its own cassette, "
        "else the incumbent's, else another model's), priced at the model's modelmigrate_prices"
    )
    if guessed:
        lines.append(f"{guessed} test(s) have no recording to go by: counted as 1 call per sample, no tokens")
    if unpriced:
        lines.append(f"{unpriced} test(s) have no price or no token counts: not in the cost (n/a, or +)")
    if dry_run:
        lines.append("run again without --migration-plan to record")
    return lines
