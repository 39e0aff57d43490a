"""Point support_desk's SDK clients at the emulator, the way a team points them at a proxy.

Replaying (the default, ``--record-mode=none``): nothing listens on the emulator's port and the
cassettes answer every request; no key is needed, so a dummy one is set when none is.
Recording (``--record-mode=once`` / ``rewrite``): the ``modelmigrate_emulator`` fixture starts
the emulator from ``emulator.yaml`` on the fixed port ``modelmigrate_emulator_port``.

To record against the real APIs instead, set ``SUPPORT_DESK_REAL_APIS=1`` with
``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY`` (and real model names in ``--models``): the SDKs then
use their own default base URLs (or your ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest
from support_desk import clients

if TYPE_CHECKING:
    from collections.abc import Iterator

DUMMY_KEY = "emulated-no-key"

# Request headers that only describe the client (SDK version, OS, retry count): leaving them out
# keeps cassettes small and free of noise in diffs. Matching never looks at headers.
NOISY_REQUEST_HEADERS = [
    "accept",
    "accept-encoding",
    "connection",
    "content-length",
    "host",
    "user-agent",
    "x-stainless-arch",
    "x-stainless-async",
    "x-stainless-lang",
    "x-stainless-os",
    "x-stainless-package-version",
    "x-stainless-read-timeout",
    "x-stainless-retry-count",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-timeout",
]
KEPT_RESPONSE_HEADERS = {"content-type", "content-encoding", "x-modelmigrate-rule"}


def _keep_useful_response_headers(response: dict) -> dict:
    headers = response.get("headers") or {}
    response["headers"] = {k: v for k, v in headers.items() if k.lower() in KEPT_RESPONSE_HEADERS}
    return response


@pytest.fixture
def vcr_config() -> dict[str, Any]:
    """Extra vcrpy settings; pytest-modelmigrate still scrubs secrets before these run."""
    return {
        "filter_headers": NOISY_REQUEST_HEADERS,
        "before_record_response": _keep_useful_response_headers,
    }


@pytest.fixture(scope="session", autouse=True)
def support_desk_endpoints(request: pytest.FixtureRequest) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        if not os.environ.get("SUPPORT_DESK_REAL_APIS"):
            url = request.getfixturevalue("modelmigrate_emulator")
            mp.setenv("OPENAI_BASE_URL", url + "/v1")
            mp.setenv("ANTHROPIC_BASE_URL", url)
            for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
                if not os.environ.get(variable):
                    mp.setenv(variable, DUMMY_KEY)
        clients.reset()
        yield
    clients.reset()
