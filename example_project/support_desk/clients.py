"""SDK clients, built once per process from the environment.

The SDKs read their usual variables: ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` and
``ANTHROPIC_API_KEY`` / ``ANTHROPIC_BASE_URL``. Tests point the base URLs somewhere else and
call :func:`reset` so the next call builds fresh clients.
"""

from __future__ import annotations

from functools import cache

import anthropic
import openai


def provider_for(model: str) -> str:
    """``anthropic`` for Claude-like model names, ``openai`` for everything else."""
    return "anthropic" if "claude" in model.lower() else "openai"


@cache
def openai_client() -> openai.OpenAI:
    return openai.OpenAI()


@cache
def anthropic_client() -> anthropic.Anthropic:
    return anthropic.Anthropic()


def reset() -> None:
    """Forget the clients (after the environment changed)."""
    openai_client.cache_clear()
    anthropic_client.cache_clear()
