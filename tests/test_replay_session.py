"""A replay session: nothing leaves the machine, for the whole session, and no key is needed.

Code outside a model's cassette (a session fixture, a fixture set up before ``model``, a teardown)
used to reach the network in replay, even with ``--block-network``; the SDKs, the judge, the
embedder and the ``prompt`` fixture failed in a CI job with no keys (``Missing credentials``).
"""

from __future__ import annotations

import json
import os
import socket

import pytest

from pytest_modelmigrate.cassettes import ParseCache
from pytest_modelmigrate.replay import PLACEHOLDER_KEY, NetworkBlockedError, NetworkGuard, placeholder_keys

SESSION_FIXTURE = """
import openai
import pytest


@pytest.fixture(scope="session")
def catalogue():
    client = openai.OpenAI(max_retries=0)  # no api_key: the placeholder lets it start
    return client.models.list()


def test_uses_catalogue(model, catalogue):
    pass
"""

TEARDOWN_CALL = """
import openai
import pytest


@pytest.fixture
def audit():
    yield
    openai.OpenAI(max_retries=0, base_url="http://10.255.255.1:9/v1").models.list()


def test_then_audit(audit, model):
    pass
"""


@pytest.fixture
def keyless(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in list(os.environ):
        if name.endswith(("_API_KEY", "_BASE_URL")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")
    return pytester


def test_a_session_fixture_reaching_the_network_in_replay_is_refused_naming_host_test_and_line(
    keyless: pytest.Pytester,
) -> None:
    keyless.makepyfile(test_catalogue=SESSION_FIXTURE)
    result = keyless.runpytest("--models=emu-a")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ConnectError: pytest-modelmigrate blocked a connection to api.openai.com:443 during "
            "replay (--record-mode=none), in the setup of test_catalogue.py::test_uses_catalogue[[]emu-a[]], "
            "called from test_catalogue.py:8 (catalogue)*modelmigrate_allowed_hosts = api.openai.com*",
        ]
    )
    assert "Missing credentials" not in result.stdout.str()  # the placeholder key let the client start
    # the SDK's own summary line says only "Connection error.": the session names what it refused
    result.stdout.fnmatch_lines(
        [
            "*= network refused during replay =*",
            "api.openai.com:443, in the setup of test_catalogue.py::test_uses_catalogue[[]emu-a[]], "
            "called from test_catalogue.py:8 (catalogue)",
        ]
    )


def test_a_teardown_reaching_another_machine_in_replay_is_refused(keyless: pytest.Pytester) -> None:
    keyless.makepyfile(test_audit=TEARDOWN_CALL)
    result = keyless.runpytest("--models=emu-a")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*blocked a connection to 10.255.255.1:9 during replay*in the teardown of test_audit.py::test_then_audit*"
        ]
    )


def test_allow_network_and_allowed_hosts_let_a_caller_through(keyless: pytest.Pytester) -> None:
    keyless.makepyfile(test_audit=TEARDOWN_CALL)
    for args in (("--migration-allow-network",), ("-o", "modelmigrate_allowed_hosts=10.255.255.1")):
        result = keyless.runpytest("--models=emu-a", *args, "-p", "no:randomly")
        assert "blocked a connection" not in result.stdout.str()
        # the connection really was attempted (and failed: nothing listens there), not blocked
        result.stdout.fnmatch_lines(["*APIConnectionError*"])


def test_recording_neither_blocks_nor_invents_keys(keyless: pytest.Pytester) -> None:
    keyless.makepyfile(
        "import os, socket\n"
        "def test_env(model):\n"
        "    assert 'OPENAI_API_KEY' not in os.environ\n"
        "    assert socket.socket.connect.__qualname__ == 'socket.connect'\n"
    )
    keyless.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)


def test_the_session_puts_back_the_environment_and_the_socket(keyless: pytest.Pytester) -> None:
    original = (socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo)
    keyless.makepyfile(
        "import os, socket\n"
        "def test_env(model):\n"
        f"    assert os.environ['OPENAI_API_KEY'] == {PLACEHOLDER_KEY!r}\n"
        f"    assert os.environ['ANTHROPIC_API_KEY'] == {PLACEHOLDER_KEY!r}\n"
        "    assert socket.socket.connect.__qualname__ != 'socket.connect'\n"
    )
    keyless.runpytest("--models=emu-a").assert_outcomes(passed=1)
    assert "OPENAI_API_KEY" not in os.environ
    assert (socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo) == original


def test_a_project_without_models_is_left_alone(keyless: pytest.Pytester) -> None:
    keyless.makepyfile("import os\ndef test_env():\n    assert 'OPENAI_API_KEY' not in os.environ\n")
    keyless.runpytest().assert_outcomes(passed=1)


def test_judge_embedder_and_prompt_fixture_replay_with_no_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import free_port
    from test_semantic_plugin import SCRIPT, TESTS

    from pytest_modelmigrate.emulator import Emulator

    with Emulator(SCRIPT, port=free_port(), time_scale=0) as emulator:
        monkeypatch.setenv("OPENAI_BASE_URL", emulator.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "emulated")
        pytester.makeini(
            "[pytest]\n"
            "modelmigrate_models = emu-old, emu-new\n"
            "modelmigrate_judge_model = emu-judge\n"
            "modelmigrate_embedder = openai:emu-embed\n"
        )
        pytester.makepyfile(test_semantic=TESTS)
        pytester.runpytest("--record-mode=once").assert_outcomes(passed=1, failed=1)
    monkeypatch.delenv("OPENAI_API_KEY")
    result = pytester.runpytest("--migration-json=run.json")
    result.assert_outcomes(passed=1, failed=1)
    assert "Missing credentials" not in result.stdout.str()
    run = json.loads((pytester.path / "run.json").read_text())
    checks = {o["model"]: {c["name"]: c for c in o["checks"]} for o in run["outcomes"]}
    assert checks["emu-old"]["judge"]["passed"]
    assert checks["emu-old"]["similar"]["details"]["kind"] == "embedding"
    assert PLACEHOLDER_KEY not in (pytester.path / "run.json").read_text()


# -- the guard on its own ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "app.localhost", "LOCALHOST"]
)
def test_loopback_is_always_permitted(host: str) -> None:
    assert NetworkGuard().permits(host)


@pytest.mark.parametrize("host", ["10.0.0.5", "api.openai.com", "192.168.1.20", "2001:db8::1", "0.0.0.0"])
def test_other_machines_are_not(host: str) -> None:
    assert not NetworkGuard().permits(host)
    assert NetworkGuard([host.upper()]).permits(host)


def test_an_installed_guard_refuses_a_real_connect_and_uninstalls_cleanly() -> None:
    original = socket.socket.connect
    guard = NetworkGuard()
    guard.install()
    try:
        with socket.socket() as sock, pytest.raises(NetworkBlockedError, match=r"10\.255\.255\.1:9"):
            sock.connect(("10.255.255.1", 9))
        with pytest.raises(OSError, match=r"api\.example\.com"):  # an OSError: HTTP clients report it
            socket.getaddrinfo("api.example.com", 443)
    finally:
        guard.uninstall()
    assert socket.socket.connect is original


def test_a_guard_patched_over_by_someone_else_passes_through_once_uninstalled() -> None:
    original = socket.socket.connect
    guard = NetworkGuard()
    guard.install()
    guarded = socket.socket.connect
    socket.socket.connect = lambda self, address: guarded(self, address)  # type: ignore[method-assign,assignment]
    try:
        guard.uninstall()  # theirs is on top: it stays, and the guard under it is inert
        assert socket.socket.connect is not original
        with socket.socket() as sock:
            sock.settimeout(0.01)
            try:  # refused, timed out or connected: anything but blocked
                sock.connect(("10.255.255.1", 9))
            except NetworkBlockedError:
                pytest.fail("an uninstalled guard still refused a connection")
            except OSError:
                pass
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]


def test_placeholder_keys_fill_only_what_is_unset() -> None:
    environ = {"OPENAI_API_KEY": "sk-real", "ANTHROPIC_API_KEY": ""}
    previous = placeholder_keys(environ)
    assert environ["OPENAI_API_KEY"] == "sk-real"
    assert environ["ANTHROPIC_API_KEY"] == PLACEHOLDER_KEY
    assert environ["AZURE_OPENAI_API_KEY"] == PLACEHOLDER_KEY
    assert set(previous) == {"ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY"}


# -- a replay miss on a request no model API serves says what it is ----------------------------------

DOWNLOADS = """
import httpx2 as httpx  # what the SDKs use (a fresh venv has no httpx)
import app

URLS = {
    "litellm": "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json",
    "health": "http://127.0.0.1:9/health",
}

def test_download(model):
    assert app.chat(model, "hello")
    which = open("which.txt").read().strip()
    if which:
        httpx.get(URLS[which])
"""


@pytest.mark.parametrize(
    ("which", "said"),
    [
        (
            "litellm",
            "this is not a model call: litellm downloads its cost map when it is imported; set "
            "LITELLM_LOCAL_MODEL_COST_MAP=True before litellm is imported*",
        ),
        ("health", "this is not a model call: no model API serves GET /health. Something in the test*"),
    ],
)
def test_a_replay_miss_on_a_download_says_it_is_not_a_model_call(
    project: pytest.Pytester, which: str, said: str
) -> None:
    project.makepyfile(test_dl=DOWNLOADS)
    (project.path / "which.txt").write_text("")
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    (project.path / "which.txt").write_text(which)
    result = project.runpytest("--models=emu-a")
    result.stdout.fnmatch_lines(["*No recorded response for GET *", f"*{said}"])


def test_a_replay_miss_on_a_changed_prompt_says_nothing_about_downloads(project: pytest.Pytester) -> None:
    project.makepyfile(test_p="import app\ndef test_p(model):\n    assert app.chat(model, 'one')\n")
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    project.makepyfile(test_p="import app\ndef test_p(model):\n    assert app.chat(model, 'two')\n")
    result = project.runpytest("--models=emu-a")
    result.stdout.fnmatch_lines(["*closest recording differs by body*"])
    result.stdout.no_fnmatch_line("*not a model call*")


def test_the_placeholder_is_no_secret_so_nothing_of_the_plugins_own_is_redacted(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # its pieces ("modelmigrate-…") matched the plugin's own name in cassettes and reports: the
    # parse cache refused every entry, and reports would have read "pytest-<redacted>"
    monkeypatch.setattr(ParseCache, "MIN_CHARS", 0)  # cache this one-call cassette too
    project.makepyfile(test_p="import app\ndef test_p(model):\n    assert app.chat(model, 'one')\n")
    project.runpytest("--models=emu-a", "--record-mode=once").assert_outcomes(passed=1)
    result = project.runpytest("--models=emu-a", "--migration-json=run.json", "-p", "cacheprovider")
    result.assert_outcomes(passed=1)
    assert "<redacted>" not in (project.path / "run.json").read_text()
    assert "<redacted>" not in result.stdout.str()
    entries = list((project.path / ".pytest_cache" / "d" / "modelmigrate-cassettes").glob("*"))
    assert entries  # the replayed cassette's parsed form was kept
