"""Checks (invariants) on a model's output: each returns a named, JSON-safe :class:`CheckResult`.

Use them as plain functions with ``assert`` (a result is truthy when it passed and shows why when
it did not), or through the ``checks`` fixture (a :class:`CheckCollector`) that records every
check and fails the test at its end listing all failed ones.
"""

from __future__ import annotations

from pytest_modelmigrate.checks.boundary import (
    REFUSAL_PHRASES,
    confidence,
    detect_refusal,
    finish_reason,
    label_confidence,
    model_echo,
    models_match,
    no_refusal,
    refuses,
    tool_called,
)
from pytest_modelmigrate.checks.collector import CheckCollector
from pytest_modelmigrate.checks.judge import Judge, JudgeVerdict, judge, parse_verdict
from pytest_modelmigrate.checks.portability import portable_history
from pytest_modelmigrate.checks.result import CheckResult, ChecksConfigError, CheckUnavailable
from pytest_modelmigrate.checks.similarity import (
    Embedder,
    LexicalScorer,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    diff_summary,
    drift,
    similar,
)
from pytest_modelmigrate.checks.structural import (
    bullets,
    contains,
    extract_json,
    json_lenient,
    json_schema,
    json_strict,
    max_chars,
    max_lines,
    max_words,
    min_words,
    not_contains,
    numbered,
    one_of,
    regex,
)

# The stable check names, as they appear in results and reports.
CHECK_NAMES: tuple[str, ...] = (
    "json_strict",
    "json_lenient",
    "json_schema",
    "bullets",
    "numbered",
    "max_words",
    "min_words",
    "max_lines",
    "max_chars",
    "regex",
    "contains",
    "not_contains",
    "one_of",
    "no_refusal",
    "refuses",
    "tool_called",
    "label_confidence",
    "confidence",
    "finish_reason",
    "model_echo",
    "similar",
    "judge",
    "drift",
    "portable_history",
)

__all__ = [
    "CHECK_NAMES",
    "REFUSAL_PHRASES",
    "CheckCollector",
    "CheckResult",
    "CheckUnavailable",
    "ChecksConfigError",
    "Embedder",
    "Judge",
    "JudgeVerdict",
    "LexicalScorer",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "bullets",
    "confidence",
    "contains",
    "detect_refusal",
    "diff_summary",
    "drift",
    "extract_json",
    "finish_reason",
    "json_lenient",
    "json_schema",
    "json_strict",
    "judge",
    "label_confidence",
    "max_chars",
    "max_lines",
    "max_words",
    "min_words",
    "model_echo",
    "models_match",
    "no_refusal",
    "not_contains",
    "numbered",
    "one_of",
    "parse_verdict",
    "portable_history",
    "refuses",
    "regex",
    "similar",
    "tool_called",
]
