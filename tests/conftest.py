"""Shared fixtures for the plugin's own suite."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Imported here once: pytester's in-process runs restore sys.modules afterwards, so an SDK first
# imported inside a pytester project would be imported again (seconds) on every run.
# hypothesis's pytest plugin imports it again at the end of every in-process run otherwise.
import anthropic  # noqa: F401
import httpx2
import hypothesis
import openai  # noqa: F401
import pytest

# vcrpy too: its patch module keeps, from the moment it is imported, the transport methods it
# restores after each cassette. Imported anew by every in-process run (0.5 s each), it would take
# whatever a previous run left patched for the original; imported once here, it takes the real ones.
import vcr.patch
import vcr.stubs.httpx_stubs  # noqa: F401

from pytest_modelmigrate.emulator import Emulator

if TYPE_CHECKING:
    from types import ModuleType

# Property tests never time out on a loaded machine, and in CI they draw the same examples on
# every run (a failure there is a bug to fix, not a roll of the dice): HYPOTHESIS_PROFILE=dev to
# explore more widely.
hypothesis.settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
hypothesis.settings.register_profile("dev", deadline=None)
hypothesis.settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)

REPO = Path(__file__).resolve().parent.parent

# What a test must leave as it found: the transports vcrpy patches while a cassette is open and
# the socket calls the replay network guard wraps. A patch left behind (a cassette never closed,
# a guard never removed) would silently change every later test in the process: the test that
# left it fails, by name, and the originals are put back.
_ORIGINALS: dict[tuple[object, str], object] = {
    (owner, name): getattr(owner, name)
    for owner, name in (
        (httpx2.HTTPTransport, "handle_request"),
        (httpx2.AsyncHTTPTransport, "handle_async_request"),
        (socket.socket, "connect"),
        (socket.socket, "connect_ex"),
        (socket, "getaddrinfo"),
    )
}


@pytest.fixture(autouse=True)
def _no_patch_left_behind() -> Iterator[None]:
    yield
    left = []
    for (owner, name), original in _ORIGINALS.items():
        if getattr(owner, name) is not original:
            left.append(f"{getattr(owner, '__name__', owner)}.{name}")
            setattr(owner, name, original)
    if left:
        pytest.fail(f"the test left {', '.join(left)} patched (restored now)", pytrace=False)


DATA = Path(__file__).resolve().parent / "data"

# The application under test in pytester projects: real SDK calls, base URL from the environment.
APP = """
import asyncio
import os

import anthropic
import openai

URL = os.environ["EMU_URL"]


def openai_client():
    return openai.OpenAI(base_url=URL + "/v1", api_key=os.environ.get("OPENAI_API_KEY", "x"), max_retries=0)


def anthropic_client():
    return anthropic.Anthropic(base_url=URL, api_key=os.environ.get("ANTHROPIC_API_KEY", "x"), max_retries=0)


def chat(model, prompt):
    r = openai_client().chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
    return r.choices[0].message.content


def chat_stream(model, prompt):
    stream = openai_client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], stream=True,
        stream_options={"include_usage": True},
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def chat_async(model, prompt):
    async def go():
        client = openai.AsyncOpenAI(base_url=URL + "/v1", api_key="x", max_retries=0)
        r = await client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
        return r.choices[0].message.content
    return asyncio.run(go())


def claude(model, prompt):
    r = anthropic_client().messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": prompt}])
    return "".join(b.text for b in r.content if b.type == "text")


def claude_stream(model, prompt):
    with anthropic_client().messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": prompt}]
    ) as stream:
        return stream.get_final_message().content[0].text


def claude_async(model, prompt):
    async def go():
        client = anthropic.AsyncAnthropic(base_url=URL, api_key="x", max_retries=0)
        r = await client.messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": prompt}])
        return r.content[0].text
    return asyncio.run(go())
"""


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (a script folder, not a package) for a smoke test."""
    path = REPO / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(port=free_port(), time_scale=0.0) as emu:
        yield emu


@pytest.fixture
def project(
    pytester: pytest.Pytester, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """A pytester project with the app module, pointed at a running emulator."""
    monkeypatch.setenv("EMU_URL", emulator.url)
    monkeypatch.setenv("COLUMNS", "120")
    for name in list(os.environ):
        if name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    pytester.makepyfile(app=APP)
    pytester.syspathinsert()
    return pytester


@pytest.fixture
def start_emulator(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Emulator]]:
    """Start a scripted emulator, point the pytester project's app at it and add test files."""
    started: list[Emulator] = []

    def start(script: dict[str, Any], **files: str) -> Emulator:
        emulator = Emulator(script, port=free_port(), time_scale=0).start()
        started.append(emulator)
        monkeypatch.setenv("EMU_URL", emulator.url)
        monkeypatch.setenv("COLUMNS", "160")
        pytester.makepyfile(app=APP, **files)
        pytester.syspathinsert()
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


def python_m(module: str, *args: str) -> list[str]:
    """``python -m module args`` with Python's own SIGINT handler, for tests that interrupt it.

    A process started with SIGINT ignored (a background job of a non-interactive shell, nohup)
    passes that on, and Python then never raises KeyboardInterrupt: restore the handler first.
    """
    code = (
        "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", code, *args]


@pytest.fixture(params=[(), ("-n", "0"), ("-n", "2")], ids=["no-xdist", "n0", "n2"])
def plugin_args(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """Run an integration test three ways: without xdist, ``-n 0`` and ``-n 2`` (as syrupy's suite does).

    The record of each (test, model) must reach the controller the same way in all three.
    """
    args: tuple[str, ...] = request.param
    return args
