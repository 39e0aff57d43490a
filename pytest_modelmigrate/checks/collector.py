"""The soft-check collector behind the ``checks`` fixture.

Every check in a test runs and is recorded; at the end of the test the plugin fails it with
:meth:`CheckCollector.summary_message` when any check failed. Each method has the name and the
parameters of the plain check function, and returns the :class:`CheckResult`.
Pure module: no pytest import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from pytest_modelmigrate.checks import boundary, similarity, structural
from pytest_modelmigrate.checks import judge as judge_mod
from pytest_modelmigrate.checks.result import CheckInput, CheckResult, ChecksConfigError

if TYPE_CHECKING:
    import re
    from collections.abc import Callable, Collection, Iterator, Mapping, Sequence

    from pytest_modelmigrate.checks.judge import Judge
    from pytest_modelmigrate.checks.similarity import Embedder
    from pytest_modelmigrate.providers.base import Call

__all__ = ["CallSource", "CheckCollector"]


class CallSource(Protocol):
    """What the collector reads from the (test, model)'s recording."""

    def last_call(self) -> Call | None: ...

    def incumbent_output(self) -> str | None: ...


class CheckCollector:
    """Soft checks for one (test, model).

    ``recording`` is the (test, model)'s :class:`~pytest_modelmigrate.recording.Recording`
    (what the plugin passes): its last call is what a check reads when it gets no output, and
    its incumbent output is what :meth:`drift` compares with. Without one, ``last_call`` and
    ``incumbent_output`` may be given as functions;
    ``embedder`` is the configured similarity scorer (lexical when ``None``); ``judge`` the
    configured :class:`Judge`.
    """

    def __init__(
        self,
        *,
        test_id: str,
        model: str,
        recording: CallSource | None = None,
        last_call: Callable[[], Call | None] | None = None,
        all_calls: Callable[[], list[Call]] | None = None,
        incumbent_output: Callable[[], str | None] | None = None,
        embedder: Embedder | None = None,
        judge: Judge | None = None,
    ) -> None:
        self.test_id = test_id
        self.model = model
        self._last_call = recording.last_call if recording is not None else last_call
        found = getattr(recording, "generation_calls", None) if recording is not None else all_calls
        self._all_calls: Callable[[], list[Call]] | None = found if callable(found) else None
        self._incumbent_output = recording.incumbent_output if recording is not None else incumbent_output
        self.embedder = embedder
        self.judge_config = judge
        self.results: list[CheckResult] = []

    def __repr__(self) -> str:
        return (
            f"<CheckCollector {self.test_id} model={self.model!r}: {len(self.results)} checks, "
            f"{len(self.failures())} failed>"
        )

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    # --- plumbing -------------------------------------------------------------------------

    def _recorded(self) -> list[Call]:
        if self._all_calls is not None:
            return list(self._all_calls())
        last = self._last_call() if self._last_call is not None else None
        return [] if last is None else [last]

    def _output(self, output: CheckInput, check: str) -> CheckInput:
        if output is not None:
            return self._through_recording(output)
        call = self._last_call() if self._last_call is not None else None
        if call is None:
            raise ChecksConfigError(
                f"{check}: no output given and no model call recorded in this test so far"
            )
        return call

    def _through_recording(self, output: CheckInput) -> CheckInput:
        """A wrapper result (LangChain, litellm, pydantic-ai, instructor) as the recorded call it
        came from (the same response id), so the check sees the request too; else as given."""
        from pytest_modelmigrate.checks import wrappers
        from pytest_modelmigrate.providers.base import Call

        if isinstance(output, (str, bytes, dict, list, Call)) or isinstance(
            getattr(output, "call", None), Call
        ):
            return output
        try:
            read = wrappers.read_wrapper(output)
        except (TypeError, ValueError):
            return output  # the check reports it
        if read is None or not read.response_id:
            return output
        return wrappers.recorded_match(read, self._recorded()) or output

    # --- picking a call -------------------------------------------------------------------

    def calls(
        self,
        endpoint: str | None = None,
        *,
        tool: str | None = None,
        prompt: str | re.Pattern[str] | None = None,
        final: bool = False,
        ok: bool | None = None,
    ) -> list[Call]:
        """The test's model calls so far, in recorded order (judge and embedding calls left out),
        filtered: ``endpoint`` (``"chat.completions"``, ``"responses"``, ``"messages"``), ``tool``
        (the model called that tool), ``prompt`` (a regex searched in the request's text: system,
        user messages, tool results), ``final`` (answers: no tool call, unless the request forced
        one), ``ok`` (successful or failed calls). Each is usable as any check's ``output``.
        """
        from pytest_modelmigrate.checks import wrappers

        try:
            return wrappers.pick_calls(
                self._recorded(), endpoint=endpoint, tool=tool, prompt=prompt, final=final, ok=ok
            )
        except ChecksConfigError as exc:
            raise ChecksConfigError(f"{self.test_id} [{self.model}]: {exc}") from None

    def call(
        self,
        index: int = -1,
        *,
        endpoint: str | None = None,
        tool: str | None = None,
        prompt: str | re.Pattern[str] | None = None,
        final: bool = False,
        ok: bool | None = None,
    ) -> Call:
        """One call of :meth:`calls` with the same filters: ``index`` in the filtered list (-1, the
        default, is the last). ``checks.call(final=True)`` is the final answer after a tool loop,
        an agent or retries; ``checks.call(prompt="Paris")`` one call of an ``asyncio.gather``.
        Raises :class:`ChecksConfigError` listing the test's calls when none matches."""
        from pytest_modelmigrate.checks import wrappers

        try:
            return wrappers.pick_call(
                self._recorded(), index, endpoint=endpoint, tool=tool, prompt=prompt, final=final, ok=ok
            )
        except ChecksConfigError as exc:
            raise ChecksConfigError(f"{self.test_id} [{self.model}]: {exc}") from None

    def _run(
        self, check: str, fn: Callable[..., CheckResult], output: CheckInput, *args: Any, **kwargs: Any
    ) -> CheckResult:
        try:
            result = fn(self._output(output, check), *args, **kwargs)
        except ChecksConfigError as exc:
            raise type(exc)(f"{self.test_id} [{self.model}]: {exc}") from None
        self.results.append(result)
        return result

    def _scorer(self, scorer: Embedder | str | None, check: str) -> Embedder:
        if scorer is None:
            return self.embedder if self.embedder is not None else similarity.LexicalScorer()
        if isinstance(scorer, str):
            if scorer == "lexical":
                return similarity.LexicalScorer()
            if scorer == "embedding":
                if self.embedder is None or self.embedder.kind != "embedding":
                    raise ChecksConfigError(
                        f"{self.test_id} [{self.model}]: {check}: scorer='embedding' but no embedder is "
                        "configured (modelmigrate_embedder ini option)"
                    )
                return self.embedder
            raise ChecksConfigError(
                f"{self.test_id} [{self.model}]: {check}: unknown scorer {scorer!r} "
                "(use 'lexical', 'embedding' or an Embedder)"
            )
        return scorer

    def add(self, result: CheckResult) -> CheckResult:
        """Record a result computed elsewhere (a custom check)."""
        self.results.append(result)
        return result

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    @property
    def passed(self) -> bool:
        return not self.failures()

    def to_dicts(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.results]

    def summary_message(self) -> str:
        """The failure listing the plugin raises at the end of the test ("" when all passed)."""
        failed = self.failures()
        if not failed:
            return ""
        lines = [
            f"{len(failed)} of {len(self.results)} checks failed for {self.test_id} (model {self.model}):"
        ]
        for r in failed:
            label = r.name if r.name == r.check else f"{r.name} ({r.check})"
            lines.append(f"  - {label}: {r.message}")
        return "\n".join(lines)

    # --- structural -----------------------------------------------------------------------

    def json_strict(self, output: CheckInput = None, *, name: str | None = None) -> CheckResult:
        return self._run("json_strict", structural.json_strict, output, name=name)

    def json_lenient(self, output: CheckInput = None, *, name: str | None = None) -> CheckResult:
        return self._run("json_lenient", structural.json_lenient, output, name=name)

    def json_schema(
        self,
        output: CheckInput = None,
        schema: Mapping[str, Any] | type | None = None,
        *,
        lenient: bool = False,
        name: str | None = None,
    ) -> CheckResult:
        return self._run("json_schema", structural.json_schema, output, schema, lenient=lenient, name=name)

    def bullets(
        self,
        output: CheckInput = None,
        exactly: int | None = None,
        *,
        at_least: int | None = None,
        at_most: int | None = None,
        nested: bool = False,
        name: str | None = None,
    ) -> CheckResult:
        return self._run(
            "bullets",
            structural.bullets,
            output,
            exactly,
            at_least=at_least,
            at_most=at_most,
            nested=nested,
            name=name,
        )

    def numbered(
        self,
        output: CheckInput = None,
        exactly: int | None = None,
        *,
        at_least: int | None = None,
        at_most: int | None = None,
        nested: bool = False,
        name: str | None = None,
    ) -> CheckResult:
        return self._run(
            "numbered",
            structural.numbered,
            output,
            exactly,
            at_least=at_least,
            at_most=at_most,
            nested=nested,
            name=name,
        )

    def max_words(
        self, output: CheckInput = None, limit: int | None = None, *, name: str | None = None
    ) -> CheckResult:
        return self._run("max_words", structural.max_words, output, limit, name=name)

    def min_words(
        self, output: CheckInput = None, limit: int | None = None, *, name: str | None = None
    ) -> CheckResult:
        return self._run("min_words", structural.min_words, output, limit, name=name)

    def max_lines(
        self,
        output: CheckInput = None,
        limit: int | None = None,
        *,
        skip_blank: bool = True,
        name: str | None = None,
    ) -> CheckResult:
        return self._run("max_lines", structural.max_lines, output, limit, skip_blank=skip_blank, name=name)

    def max_chars(
        self, output: CheckInput = None, limit: int | None = None, *, name: str | None = None
    ) -> CheckResult:
        return self._run("max_chars", structural.max_chars, output, limit, name=name)

    def regex(
        self,
        output: CheckInput = None,
        pattern: str | re.Pattern[str] | None = None,
        *,
        flags: int = 0,
        full: bool = False,
        name: str | None = None,
    ) -> CheckResult:
        return self._run("regex", structural.regex, output, pattern, flags=flags, full=full, name=name)

    def contains(
        self,
        output: CheckInput = None,
        needles: str | Sequence[str] | None = None,
        *,
        case_sensitive: bool = True,
        name: str | None = None,
    ) -> CheckResult:
        return self._run(
            "contains", structural.contains, output, needles, case_sensitive=case_sensitive, name=name
        )

    def not_contains(
        self,
        output: CheckInput = None,
        needles: str | Sequence[str] | None = None,
        *,
        case_sensitive: bool = False,
        name: str | None = None,
    ) -> CheckResult:
        return self._run(
            "not_contains", structural.not_contains, output, needles, case_sensitive=case_sensitive, name=name
        )

    def one_of(
        self,
        output: CheckInput = None,
        labels: Sequence[str] | None = None,
        *,
        case_sensitive: bool = True,
        name: str | None = None,
    ) -> CheckResult:
        return self._run(
            "one_of", structural.one_of, output, labels, case_sensitive=case_sensitive, name=name
        )

    # --- boundary and metadata ------------------------------------------------------------

    def no_refusal(
        self, output: CheckInput = None, *, extra_phrases: Sequence[str] = (), name: str | None = None
    ) -> CheckResult:
        return self._run("no_refusal", boundary.no_refusal, output, extra_phrases=extra_phrases, name=name)

    def refuses(
        self, output: CheckInput = None, *, extra_phrases: Sequence[str] = (), name: str | None = None
    ) -> CheckResult:
        return self._run("refuses", boundary.refuses, output, extra_phrases=extra_phrases, name=name)

    def tool_called(
        self,
        output: CheckInput = None,
        tool: str | None = None,
        *,
        schema: Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> CheckResult:
        if tool is None and isinstance(output, str):
            output, tool = None, output  # checks.tool_called("lookup_order"): the test's last call
        recorded = self._recorded() if output is not None else None
        return self._run(
            "tool_called", boundary.tool_called, output, tool, schema=schema, recorded=recorded, name=name
        )

    def label_confidence(
        self,
        output: CheckInput = None,
        label: str | None = None,
        *,
        threshold: float = 0.5,
        expected: str | None = None,
        name: str | None = None,
    ) -> CheckResult:
        return self._run(
            "label_confidence",
            boundary.label_confidence,
            output,
            label,
            threshold=threshold,
            expected=expected,
            name=name,
        )

    def confidence(
        self,
        value: Any,
        *,
        correct: bool | None = None,
        threshold: float = 0.85,
        record_only: bool = False,
        name: str | None = None,
    ) -> CheckResult:
        """A self-reported confidence (no model call read): see :func:`boundary.confidence`."""
        try:
            result = boundary.confidence(
                value, correct=correct, threshold=threshold, record_only=record_only, name=name
            )
        except ChecksConfigError as exc:
            raise type(exc)(f"{self.test_id} [{self.model}]: {exc}") from None
        self.results.append(result)
        return result

    def finish_reason(
        self,
        output: CheckInput = None,
        expected: str | Collection[str] | None = None,
        *,
        name: str | None = None,
    ) -> CheckResult:
        return self._run("finish_reason", boundary.finish_reason, output, expected, name=name)

    def model_echo(
        self,
        output: CheckInput = None,
        requested: str | None = None,
        *,
        accept: Collection[str] = (),
        name: str | None = None,
    ) -> CheckResult:
        """``requested`` defaults to the recorded request's model, else this collector's ``model``."""

        def run(out: CheckInput, req: str | None, **kw: Any) -> CheckResult:
            from pytest_modelmigrate.checks.result import resolve_output

            call = resolve_output(out, "model_echo").call
            fallback = call.model_requested if call is not None and call.model_requested else self.model
            return boundary.model_echo(out, req or fallback, **kw)

        return self._run("model_echo", run, output, requested, accept=accept, name=name)

    # --- semantic -------------------------------------------------------------------------

    def similar(
        self,
        output: CheckInput = None,
        reference: str | None = None,
        *,
        min_score: float = 0.8,
        scorer: Embedder | str | None = None,
        name: str | None = None,
    ) -> CheckResult:
        use = self._scorer(scorer, "similar")
        return self._run(
            "similar", similarity.similar, output, reference, min_score=min_score, scorer=use, name=name
        )

    def drift(
        self,
        output: CheckInput = None,
        *,
        min_score: float | None = None,
        scorer: Embedder | str | None = None,
        incumbent: str | None = None,
        name: str | None = None,
    ) -> CheckResult:
        """Compare with the incumbent's output (from the plugin, or ``incumbent=`` text)."""
        use = self._scorer(scorer, "drift")
        source: str | Callable[[], str | None] | None = incumbent
        if source is None:
            source = self._incumbent_output
        return self._run(
            "drift", similarity.drift, output, source, min_score=min_score, scorer=use, name=name
        )

    def portable_history(
        self,
        history: Any,
        target: str,
        *,
        provider: str | None = None,
        api: str | None = None,
        system: Any = None,
        json_wrap: str | None = None,
        name: str | None = None,
    ) -> CheckResult:
        """Model-specific artifacts in ``history`` before it goes to ``target`` (a model name)."""
        from pytest_modelmigrate.checks.portability import portable_history

        try:
            result = portable_history(
                history, target, provider=provider, api=api, system=system, json_wrap=json_wrap, name=name
            )
        except ChecksConfigError as exc:
            raise type(exc)(f"{self.test_id} [{self.model}]: {exc}") from None
        self.results.append(result)
        return result

    def judge(
        self,
        output: CheckInput = None,
        rubric: str | None = None,
        *,
        min_score: float | None = None,
        judge: Judge | None = None,
        name: str | None = None,
    ) -> CheckResult:
        return self._run(
            "judge",
            judge_mod.judge,
            output,
            rubric,
            judge=judge or self.judge_config,
            min_score=min_score,
            name=name,
        )
