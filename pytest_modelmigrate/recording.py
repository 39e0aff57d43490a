"""One (test, model)'s recording: its cassette, its calls parsed once, its samples, its record.

Pure module: no pytest import. The plugin makes a :class:`Recording` when the ``model``
fixture starts, keeps it in the item's stash while the test runs, hands it to the ``checks``
collector (which reads the last call and the incumbent's output from it), and publishes
:meth:`Recording.record` in ``user_properties`` for the controller.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .results import RECORD_VERSION

if TYPE_CHECKING:
    from pathlib import Path

    from .cassettes import CassetteSession
    from .checks.collector import CheckCollector
    from .models import ModelSpec
    from .providers.base import Call

__all__ = ["GENERATION_ENDPOINTS", "Recording"]

GENERATION_ENDPOINTS = ("chat.completions", "responses", "messages")


@dataclass
class Recording:
    """What one (test, model) did; lives in ``item.stash`` while the test runs."""

    spec: ModelSpec
    test: str  # the matrix row: the nodeid without the model (and a dataset's example) id
    group: str
    cassette: Path | None
    cassette_rel: str | None = None
    incumbent: ModelSpec | None = None
    prompt: dict[str, Any] = field(default_factory=dict)
    samples: int = 1
    example: Any = None
    judge_model: str | None = None
    session: CassetteSession | None = None
    call_done: bool = False
    had_cassette: bool = False  # the file existed when the test started
    missing: str | None = None  # why the recording could not answer: no cassette, or stale
    sample_outcomes: list[str] = field(default_factory=list)
    sample_starts: list[int] = field(default_factory=list)
    collector: CheckCollector | None = None
    dataset: list[dict[str, Any]] = field(default_factory=list)
    dataset_settings: dict[str, Any] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    counted: int = 0  # recorded calls already counted against the sampling budget
    recorded: dict[str, Any] | None = None  # what this run sent to the provider (calls, cost, waits)
    regression_case: dict[str, Any] | None = None  # the past failure this test guards against
    evidence: dict[str, Any] | None = None  # @pytest.mark.evidence: cluster and weight
    variant: dict[str, Any] | None = None  # @pytest.mark.prompt_variants: the variant this one sends
    rollback: str | None = None  # @pytest.mark.rollback: the row's direction (two models in one cell)
    _parsed: dict[int, Call] = field(default_factory=dict, repr=False)

    def mark_missing(self, reason: str | None = None) -> None:
        """The cassette had no answer for a request: a gap in the evidence, not a model failure."""
        if reason is None:
            reason = (
                "stale: the cassette has no recorded request that matches "
                "(the prompt or its settings changed)"
                if self.had_cassette
                else "no cassette recorded for this model"
            )
        self.missing = reason

    # -- the calls, parsed once -------------------------------------------------------------
    def parsed_call(self, index: int) -> Call:
        """Interaction ``index`` of the cassette as a :class:`Call`, parsed once."""
        call = self._parsed.get(index)
        if call is None:
            from .providers.parse import parse_interaction

            session = self.session
            assert session is not None
            request, response = session.used[index]
            checked = session.preparsed.get(id(response))
            if checked is not None and checked[0] is response:  # the stream parsed on load
                call = checked[1]
            else:
                call = parse_interaction(request._to_dict(), response, source=str(session.path), index=index)
            self._parsed[index] = call
        return call

    def _is_generation(self, call: Call, model_name: str) -> bool:
        if call.endpoint not in GENERATION_ENDPOINTS:
            return False
        return not (self.judge_model and call.model_requested == self.judge_model != model_name)

    def generation_calls(self) -> list[Call]:
        """The test's model calls so far (judge and embedding calls left out)."""
        if self.session is None:
            return []
        view = self.session.view()
        if view is not None:  # a sample drawn in a thread of its own (--record-concurrency): its calls
            from .providers.parse import parse_interaction

            source = str(self.session.path)
            drawn = (parse_interaction(r._to_dict(), response, source=source) for r, response in view)
            return [c for c in drawn if self._is_generation(c, self.spec.name)]
        calls = (self.parsed_call(i) for i in range(len(self.session.used)))
        return [c for c in calls if self._is_generation(c, self.spec.name)]

    def last_call(self) -> Call | None:
        calls = self.generation_calls()
        return calls[-1] if calls else None

    def incumbent_output(self) -> str | None:
        """The incumbent's text for the same test (and sample), read from its cassette."""
        from .checks.result import ChecksConfigError
        from .providers.base import CassetteFormatError
        from .providers.parse import load_calls

        incumbent = self.incumbent
        mine = self.generation_calls()
        position = max(len(mine) - 1, 0)
        if incumbent is None or self.cassette is None:
            return None
        if incumbent.id == self.spec.id:
            return mine[position].text if mine else None
        # the same file name in the incumbent's folder: <module>/<incumbent>/<test>.yaml
        path = self.cassette.parent.parent / incumbent.id / self.cassette.name
        if not path.is_file():
            return None
        try:
            theirs = [c for c in load_calls(path) if self._is_generation(c, incumbent.name)]
        except CassetteFormatError as exc:
            raise ChecksConfigError(f"drift: cannot read the incumbent's cassette: {exc}") from None
        return theirs[min(position, len(theirs) - 1)].text if theirs else None

    def read_calls(self) -> None:
        """The JSON-safe summary of every call the test made (what metrics read)."""
        from .providers.base import CassetteFormatError

        if self.session is None:
            return
        calls = []
        for index in range(len(self.session.used)):
            try:
                calls.append(self.parsed_call(index).summary())
            except CassetteFormatError as exc:
                error = {"message": str(exc)}
                calls.append({"provider": "unknown", "endpoint": "other", "status": 0, "error": error})
        self.calls = calls

    def new_recorded_calls(self) -> list[dict[str, Any]]:
        """Calls recorded since the last time this was asked (for the sampling budget)."""
        if self.session is None:
            return []
        new = self.session.recorded - self.counted
        self.counted = self.session.recorded
        if not new:
            return []
        self.read_calls()
        return self.calls[-new:]

    # -- what the controller receives -------------------------------------------------------
    def check_dicts(self) -> list[dict[str, Any]]:
        """Every check result, JSON-safe, with the index of the sample that ran it."""
        if self.collector is None:
            return []
        starts = self.sample_starts or [0]
        return [
            {**result.to_dict(), "sample": max(bisect_right(starts, index) - 1, 0)}
            for index, result in enumerate(self.collector.results)
        ]

    def record(self, *, full: bool) -> dict[str, Any]:
        """The JSON-safe record: who it is about; at teardown (``full``) calls, checks and samples."""
        record: dict[str, Any] = {
            "v": RECORD_VERSION,
            "test": self.test,
            "model": self.spec.id,
            "group": self.group,
            "cassette": self.cassette_rel,
        }
        if self.prompt:
            record["prompt"] = self.prompt
        if self.missing:
            record["missing"] = self.missing
        if self.regression_case:
            record["regression_case"] = self.regression_case
        if self.evidence:
            record["evidence"] = self.evidence
        if self.variant:
            record["variant"] = self.variant
        if self.rollback:
            record["rollback"] = self.rollback
        if full:
            record["calls"] = self.calls
            record["samples"] = list(self.sample_outcomes)
            record["checks"] = self.check_dicts()
            if self.recorded:
                record["recorded"] = dict(self.recorded)
            if self.dataset:
                record["dataset"] = list(self.dataset)
            if self.dataset_settings:  # a dataset test, predictions recorded or not
                record["dataset_settings"] = dict(self.dataset_settings)
        return record

    def properties(self, record: dict[str, Any]) -> list[tuple[str, object]]:
        """The plain JUnit XML properties, from the teardown's (full) ``record`` only."""
        if "checks" not in record:
            return []
        failed = sorted({c["name"] for c in record["checks"] if not c["passed"]})
        return [("model", self.spec.id), ("prompt", self.group), ("checks_failed", ",".join(failed))]
