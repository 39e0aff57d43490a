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
from collections.abc import Iterator

import pytest

from support_desk import clients

DUMMY_KEY = "emulated-no-key"


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
