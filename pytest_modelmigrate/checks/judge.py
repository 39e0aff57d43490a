"""An LLM judge: a rubric, a judge model pinned in configuration, a structured verdict.

The judge's request goes through the SDK (via :class:`~pytest_modelmigrate.prompting.PromptClient`),
so inside a test it is recorded in that test's cassette and replayed in CI. The judge model is
fixed by configuration, never parametrized with the models under test.
Pure module: no pytest import.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_modelmigrate.checks.result import (
    CheckInput,
    CheckResult,
    ChecksConfigError,
    resolve_output,
    shorten,
)

if TYPE_CHECKING:
    from pytest_modelmigrate.prompting import PromptClient

__all__ = ["DEFAULT_JUDGE_SYSTEM", "Judge", "JudgeVerdict", "judge", "parse_verdict"]

DEFAULT_JUDGE_SYSTEM = """You are a strict evaluator of another AI model's output.
You receive a rubric and the output. Decide whether the output satisfies the rubric.
Reply with one JSON object and nothing else:
{"pass": true or false, "score": a number from 0 to 1, "reason": "one short sentence"}"""

_TEMPLATE = """<rubric>
{rubric}
</rubric>

<output>
{output}
</output>"""


@dataclass(frozen=True)
class JudgeVerdict:
    passed: bool | None
    score: float | None
    reason: str
    raw_text: str
    error: str | None = None  # why the reply could not be read; None when it could

    @property
    def ok(self) -> bool:
        return self.error is None


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "pass", "passed", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "fail", "failed", "no"):
        return False
    return None


def parse_verdict(text: str) -> JudgeVerdict:
    """Read ``{"pass", "score", "reason"}`` from the judge's reply (fences and prose tolerated)."""
    from pytest_modelmigrate.checks.structural import extract_json

    found = extract_json(text)
    if found is None or not isinstance(found[0], Mapping):
        return JudgeVerdict(
            None, None, "", text, error=f"no JSON object in the judge's reply: {shorten(text)!r}"
        )
    data = found[0]
    passed = _as_bool(data.get("pass", data.get("passed", data.get("verdict"))))
    raw_score = data.get("score")
    score: float | None = None
    if raw_score is not None:
        if (
            isinstance(raw_score, bool)
            or not isinstance(raw_score, (int, float))
            or not math.isfinite(raw_score)
        ):
            return JudgeVerdict(
                passed,
                None,
                str(data.get("reason", "")),
                text,
                error=f"the judge's score {raw_score!r} is not a number",
            )
        score = float(raw_score)
        if not 0.0 <= score <= 1.0:
            return JudgeVerdict(
                passed,
                score,
                str(data.get("reason", "")),
                text,
                error=f"the judge's score {score} is outside [0, 1]",
            )
    if passed is None and score is None:
        return JudgeVerdict(
            None,
            None,
            str(data.get("reason", "")),
            text,
            error=f"the judge's JSON has neither 'pass' nor 'score': {shorten(text)!r}",
        )
    return JudgeVerdict(passed, score, str(data.get("reason", "")), text)


# Environment variables the SDKs (and PromptClient) read when a client is built.
_ENV_PREFIXES = ("OPENAI_", "ANTHROPIC_", "AZURE_OPENAI_")


def _provider_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}


class Judge:
    """A pinned judge model. ``Judge("gpt-4o-2024-08-06")`` or with a ready :class:`PromptClient`.

    ``client_factory(model, provider)`` builds the prompt client lazily (the plugin passes one
    honouring its base-URL configuration); by default a :class:`PromptClient` is built with
    ``provider``/``base_url``/``api_key``.
    """

    def __init__(
        self,
        model: str,
        provider: str | None = None,
        *,
        client: PromptClient | None = None,
        client_factory: Callable[[str, str | None], PromptClient] | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        system: str = DEFAULT_JUDGE_SYSTEM,
        max_tokens: int = 400,
        temperature: float | None = 0.0,
    ) -> None:
        if not model:
            raise ChecksConfigError("judge: no judge model configured")
        self.model = model
        self.provider = provider
        self._client = client
        # the provider environment the client was built from (None: given, never rebuilt)
        self._built_env: dict[str, str] | None = None
        self._factory = client_factory
        self._base_url = base_url
        self._api_key = api_key
        self.system = system
        self.max_tokens = max_tokens
        self.temperature = temperature

    def __repr__(self) -> str:
        return f"Judge(model={self.model!r}, provider={self.provider!r})"

    @property
    def client(self) -> PromptClient:
        """The prompt client, built on first use and again whenever the provider environment changed.

        A judge lives for the whole session, but each test may point the SDKs elsewhere
        (``OPENAI_BASE_URL``, ``ANTHROPIC_API_KEY``, ... set by a fixture or ``monkeypatch``): a
        client built from the environment is rebuilt when those variables differ from the ones it
        was built with. A client passed as ``client=`` is used as is.
        """
        if self._client is not None and self._built_env is not None and self._built_env != _provider_env():
            self._client = None
        if self._client is None:
            self._built_env = _provider_env()
            if self._factory is not None:
                self._client = self._factory(self.model, self.provider)
            else:
                from pytest_modelmigrate.prompting import PromptClient

                self._client = PromptClient(
                    self.model, self.provider, base_url=self._base_url, api_key=self._api_key
                )
        return self._client

    def evaluate(self, output: str, rubric: str) -> JudgeVerdict:
        """Ask the judge model; the reply is parsed with :func:`parse_verdict`."""
        response = self.client.ask(
            _TEMPLATE.format(rubric=rubric.strip(), output=output),
            system=self.system,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
        )
        return parse_verdict(response.text)


def judge(
    output: CheckInput = None,
    rubric: str | None = None,
    *,
    judge: Judge | None = None,
    min_score: float | None = None,
    name: str | None = None,
) -> CheckResult:
    """The judge model says the output meets ``rubric``.

    Passes when the verdict's ``pass`` is true (when present) and its ``score`` is at least
    ``min_score`` (when given). An unreadable verdict is a failure that quotes the reply.
    """
    if judge is None:
        raise ChecksConfigError(
            "judge: no judge configured (set a judge model, e.g. the "
            "modelmigrate_judge_model ini option, or pass judge=Judge(...))"
        )
    if not rubric or not rubric.strip():
        raise ChecksConfigError("judge: missing rubric")
    text = resolve_output(output, "judge").text
    verdict = judge.evaluate(text, rubric)
    details: dict[str, Any] = {
        "judge_model": judge.model,
        "rubric": shorten(rubric, 200),
        "verdict_pass": verdict.passed,
        "reason": verdict.reason,
        "min_score": min_score,
    }
    if verdict.error is not None:
        details["reply"] = shorten(verdict.raw_text, 300)
        return CheckResult(
            "judge",
            False,
            f"unreadable verdict from {judge.model}: {verdict.error}",
            details,
            score=verdict.score,
            label=name,
        )
    if min_score is not None and verdict.score is None:
        return CheckResult(
            "judge",
            False,
            f"min_score={min_score} given but the judge returned no score",
            details,
            label=name,
        )
    ok = verdict.passed is not False and (min_score is None or (verdict.score or 0.0) >= min_score)
    if min_score is None and verdict.passed is None:
        ok = False
        details["error"] = "the judge returned only a score; give min_score="
    score_txt = f", score {verdict.score:.2f}" if verdict.score is not None else ""
    bound = f" (min {min_score})" if min_score is not None else ""
    status = "pass" if ok else "fail"
    return CheckResult(
        "judge",
        ok,
        f"{judge.model}: {status}{score_txt}{bound}: {verdict.reason}",
        details,
        score=verdict.score,
        label=name,
    )
