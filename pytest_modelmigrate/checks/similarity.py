"""Similarity to a reference and drift against the incumbent model, with pluggable scorers.

Three scorers share the :class:`Embedder` protocol:

- :class:`OpenAIEmbedder`: an OpenAI-compatible embeddings endpoint called through the openai SDK,
  so inside a test the call lands in the test's cassette and CI replays it;
- :class:`SentenceTransformerEmbedder`: a local sentence-transformers model (optional extra,
  imported on first use; :class:`CheckUnavailable` when it is not installed);
- :class:`LexicalScorer`: word and character-trigram cosine, needs nothing, and is always
  reported as ``lexical``, never as an embedding score.

Pure module: no pytest import.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pytest_modelmigrate.checks.result import (
    CheckInput,
    CheckResult,
    ChecksConfigError,
    CheckUnavailable,
    resolve_output,
    shorten,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import openai

__all__ = [
    "Embedder",
    "LexicalScorer",
    "OpenAIEmbedder",
    "SentenceTransformerEmbedder",
    "cosine",
    "diff_summary",
    "drift",
    "score_pair",
    "similar",
]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors; similarity is their cosine."""

    name: str
    kind: Literal["embedding", "lexical"]

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b):
        raise ValueError(f"vectors of different lengths ({len(a)} and {len(b)})")
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return max(-1.0, min(1.0, dot / (na * nb)))


_WORD_RE = re.compile(r"\w+", re.UNICODE)


class LexicalScorer:
    """Cosine of word counts and character-trigram counts, averaged. Deterministic, no dependencies.

    It measures shared wording, not meaning: a paraphrase scores low. Results say ``lexical``.
    """

    name = "lexical"
    kind: Literal["embedding", "lexical"] = "lexical"

    @staticmethod
    def _features(text: str) -> Counter[str]:
        words = [w.lower() for w in _WORD_RE.findall(text)]
        feats: Counter[str] = Counter(f"w:{w}" for w in words)
        for w in words:
            padded = f" {w} "
            feats.update(f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2))
        return feats

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors over the batch's shared vocabulary (words weighted like all their trigrams)."""
        counters = [self._features(t) for t in texts]
        vocab = sorted(set().union(*counters)) if counters else []
        return [[float(c.get(f, 0)) * (3.0 if f.startswith("w:") else 1.0) for f in vocab] for c in counters]


class OpenAIEmbedder:
    """An OpenAI-compatible ``/v1/embeddings`` endpoint through the openai SDK.

    Give a ready ``client`` (``openai.OpenAI``), or ``base_url``/``api_key`` (defaults: the
    SDK's ``OPENAI_BASE_URL``/``OPENAI_API_KEY``). The client is built on first use, inside the
    test, so the request is recorded in (and replayed from) that test's cassette.
    """

    kind: Literal["embedding", "lexical"] = "embedding"

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        client: openai.OpenAI | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        dimensions: int | None = None,
    ) -> None:
        self.model = model
        self.name = f"openai:{model}"
        self._client = client
        self._base_url = base_url
        self._api_key = api_key
        self._dimensions = dimensions

    def _get_client(self) -> openai.OpenAI:
        if self._client is None:
            try:
                import openai
            except ImportError as exc:
                raise CheckUnavailable(
                    "similar: the OpenAI embedder needs the openai package (pip install openai)"
                ) from exc
            self._client = openai.OpenAI(base_url=self._base_url, api_key=self._api_key)
        return self._client

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        kwargs: dict[str, Any] = {}
        if self._dimensions is not None:
            kwargs["dimensions"] = self._dimensions
        response = self._get_client().embeddings.create(model=self.model, input=list(texts), **kwargs)
        return [list(d.embedding) for d in sorted(response.data, key=lambda d: d.index)]


class SentenceTransformerEmbedder:
    """A local sentence-transformers model (``pip install sentence-transformers``), loaded on first use."""

    kind: Literal["embedding", "lexical"] = "embedding"

    def __init__(
        self, model: str = "sentence-transformers/all-MiniLM-L6-v2", *, device: str | None = None
    ) -> None:
        self.model = model
        self.name = f"sentence-transformers:{model}"
        self._device = device
        self._st: Any = None

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if self._st is None:
            try:
                from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found, unused-ignore]
            except ImportError as exc:
                raise CheckUnavailable(
                    "similar: the sentence-transformers scorer is not installed "
                    "(pip install 'pytest-modelmigrate[embeddings]' or sentence-transformers)"
                ) from exc
            self._st = SentenceTransformer(self.model, device=self._device)
        vectors = self._st.encode(list(texts))
        return [[float(x) for x in v] for v in vectors]


def score_pair(text: str, reference: str, scorer: Embedder) -> float:
    vectors = scorer.embed([text, reference])
    if len(vectors) != 2:
        raise ChecksConfigError(
            f"similar: scorer {scorer.name!r} returned {len(vectors)} vectors for 2 texts"
        )
    return cosine(vectors[0], vectors[1])


def _scorer_details(scorer: Embedder) -> dict[str, Any]:
    return {"scorer": scorer.name, "kind": scorer.kind}


def similar(
    output: CheckInput = None,
    reference: str | None = None,
    *,
    min_score: float = 0.8,
    scorer: Embedder | None = None,
    name: str | None = None,
) -> CheckResult:
    """Cosine similarity of the output to ``reference`` is at least ``min_score``.

    ``scorer`` defaults to :class:`LexicalScorer`; the result names the scorer and its kind.
    """
    if reference is None or not reference.strip():
        raise ChecksConfigError("similar: missing reference text")
    use = scorer if scorer is not None else LexicalScorer()
    text = resolve_output(output, "similar").text
    score = score_pair(text, reference, use)
    details = {**_scorer_details(use), "reference": shorten(reference, 120), "min_score": min_score}
    ok = score >= min_score
    what = (
        "lexical similarity (word/trigram overlap, not an embedding)"
        if use.kind == "lexical"
        else (f"embedding similarity ({use.name})")
    )
    rel = "≥" if ok else "<"
    msg = f"{what} {score:.3f} {rel} {min_score}"
    if not ok:
        msg += f"; output {shorten(text, 60)!r}"
    return CheckResult("similar", ok, msg, details, score=score, label=name)


def diff_summary(old: str, new: str, *, max_spans: int = 3) -> dict[str, Any]:
    """A short word-level summary of how ``new`` differs from ``old``."""
    a, b = old.split(), new.split()
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    spans: list[str] = []
    inserted = deleted = 0
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        deleted += i2 - i1
        inserted += j2 - j1
        if len(spans) < max_spans:
            minus = shorten(" ".join(a[i1:i2]), 30)
            plus = shorten(" ".join(b[j1:j2]), 30)
            spans.append(
                " ".join(p for p in (f"-{minus!r}" if minus else "", f"+{plus!r}" if plus else "") if p)
            )
    old_lines, new_lines = len(old.strip().splitlines()), len(new.strip().splitlines())
    parts = [f"words {len(a)}→{len(b)}"]
    if old_lines != new_lines:
        parts.append(f"lines {old_lines}→{new_lines}")
    parts.append(f"{inserted} inserted, {deleted} deleted")
    if spans:
        parts.append("; ".join(spans))
    return {
        "summary": ", ".join(parts),
        "word_ratio": matcher.ratio(),
        "words": [len(a), len(b)],
        "lines": [old_lines, new_lines],
        "inserted": inserted,
        "deleted": deleted,
        "spans": spans,
    }


def drift(
    output: CheckInput = None,
    incumbent: str | Callable[[], str | None] | None = None,
    *,
    min_score: float | None = None,
    scorer: Embedder | None = None,
    name: str | None = None,
) -> CheckResult:
    """How far the output moved from the incumbent model's output for the same test.

    Always reports a similarity score and a diff summary. Fails only when ``min_score`` is given
    and the score is below it, or when ``min_score`` is given and there is no incumbent output.
    """
    inc = incumbent() if callable(incumbent) else incumbent
    use = scorer if scorer is not None else LexicalScorer()
    text = resolve_output(output, "drift").text
    if inc is None:
        details: dict[str, Any] = {"available": False, **_scorer_details(use), "min_score": min_score}
        if min_score is None:
            return CheckResult(
                "drift", True, "no incumbent output recorded; nothing compared", details, label=name
            )
        return CheckResult(
            "drift",
            False,
            f"no incumbent output recorded to compare against (min_score {min_score})",
            details,
            label=name,
        )
    score = score_pair(text, inc, use)
    summary = diff_summary(inc, text)
    details = {"available": True, **_scorer_details(use), "min_score": min_score, **summary}
    ok = min_score is None or score >= min_score
    bound = "" if min_score is None else (f" ≥ {min_score}" if ok else f" < {min_score}")
    msg = f"{use.kind} similarity to the incumbent {score:.3f}{bound}; {summary['summary']}"
    return CheckResult("drift", ok, msg, details, score=score, label=name)
