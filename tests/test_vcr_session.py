"""vcrpy set up once per session (``cassettes.VcrSession``) behaves as a VCR made per cassette.

End-to-end tests record against the emulator (``--record-mode=once``), stop it and replay offline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import urllib3.connectionpool as cpool
import yaml

from pytest_modelmigrate.cassettes import VcrSession, _raw_attribute, open_cassette
from pytest_modelmigrate.emulator import Emulator
from pytest_modelmigrate.scrub import Scrubber

StartEmulator = Callable[..., Emulator]
MODELS = "--models=emu-a,emu-b"
REPLAY = ("--block-network", MODELS)
WORDS = ("alpha", "beta", "gamma", "delta")


def _script(*words: str) -> dict[str, Any]:
    """Each model answers ``<model>:<word>`` to a prompt holding ``word``."""
    return {
        "models": {
            model: {"rules": [{"match": word, "reply": f"{model}:{word}"} for word in words]}
            for model in ("emu-a", "emu-b")
        }
    }


def _interactions(path: Path) -> list[dict[str, Any]]:
    interactions: list[dict[str, Any]] = yaml.safe_load(path.read_text())["interactions"]
    return interactions


def _prompts(path: Path) -> list[str]:
    bodies = [i["request"]["body"] for i in _interactions(path)]  # aiohttp's json= is kept as a mapping
    return [str((b if isinstance(b, dict) else yaml.safe_load(b))["messages"][0]["content"]) for b in bodies]


# requests (urllib3), one module-level Session for every test, posting OpenAI chat JSON
WEB = """
import os
import requests

URL = os.environ["EMU_URL"]
SESSION = requests.Session()

def ask(model, prompt, session=SESSION, headers=None, params=None):
    r = session.post(
        URL + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": prompt}]},
        headers={"Authorization": "Bearer sk-test-secret-123456", **(headers or {})},
        params=params,
    )
    r.raise_for_status()
    return r.json()["choices"][0]["message"]["content"]
"""

SHARED = "import web\n" + "".join(
    f"def test_{w}(model):\n    assert web.ask(model, 'question {w}') == model + ':{w}'\n" for w in WORDS[:3]
)

AIOHTTP = """
import asyncio
import os
import aiohttp

async def _ask(model, prompt):
    async with aiohttp.ClientSession() as session:
        body = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        async with session.post(os.environ["EMU_URL"] + "/v1/chat/completions", json=body) as r:
            return (await r.json())["choices"][0]["message"]["content"]

def test_async_delta(model):
    assert asyncio.run(_ask(model, "async delta")) == model + ":delta"
"""


def test_a_shared_requests_session_records_and_replays_each_tests_own_call(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    emulator = start_emulator(_script(*WORDS), web=WEB, test_shared=SHARED)
    pytester.runpytest(MODELS, "--record-mode=once").assert_outcomes(passed=6)
    for model in ("emu-a", "emu-b"):
        for word in WORDS[:3]:
            path = pytester.path / "cassettes" / "test_shared" / model / f"test_{word}.yaml"
            assert _prompts(path) == [f"question {word}"], path
    assert len(emulator.requests) == 6
    emulator.stop()
    pytester.runpytest(*REPLAY).assert_outcomes(passed=6)


# what the pytester project's conftest finds at import time, before any cassette is open
ORIGINALS = """
import http.client
import httpx2
import urllib3.connectionpool as cpool

def now():
    return {
        "httpx2.HTTPTransport.handle_request": httpx2.HTTPTransport.handle_request,
        "httpx2.AsyncHTTPTransport.handle_async_request": httpx2.AsyncHTTPTransport.handle_async_request,
        "http.client.HTTPConnection": http.client.HTTPConnection,
        "HTTPConnectionPool.ConnectionCls": cpool.HTTPConnectionPool.ConnectionCls,
        "HTTPConnectionPool._get_conn": cpool.HTTPConnectionPool._get_conn,
    }

ORIGINALS = now()  # at import time, before any cassette is open

def patched():
    return sorted(name for name, value in now().items() if value is not ORIGINALS[name])
"""

OWN_CASSETTE = """
import os
import vcr
import app
import conftest

HERE = os.path.dirname(__file__)

def test_own(model):
    with vcr.use_cassette(os.path.join(HERE, "mine", model + ".yaml")):
        assert app.chat(model, "inner alpha") == model + ":alpha"
    assert app.chat(model, "outer beta") == model + ":beta"

def test_after_own():
    assert conftest.patched() == []
"""

BETWEEN = """
import web
import conftest

def test_first(model):
    assert web.ask(model, "first alpha") == model + ":alpha"

def test_plain_between():
    assert conftest.patched() == []

def test_second(model):
    assert web.ask(model, "second beta") == model + ":beta"
"""

PLAIN_NETWORK = """
import web
import conftest

def test_plain_call():
    assert conftest.patched() == []
    assert web.ask("emu-a", "plain gamma") == "emu-a:gamma"
    assert conftest.patched() == []

def test_last(model):
    assert web.ask(model, "last delta") == model + ":delta"
"""


def test_a_users_own_vcr_cassette_inside_a_model_test_keeps_its_call(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    emulator = start_emulator(_script(*WORDS), conftest=ORIGINALS, test_own=OWN_CASSETTE)
    pytester.runpytest(MODELS, "--record-mode=once").assert_outcomes(passed=3)
    for model in ("emu-a", "emu-b"):
        assert _prompts(pytester.path / "mine" / f"{model}.yaml") == ["inner alpha"]
        assert _prompts(pytester.path / "cassettes" / "test_own" / model / "test_own.yaml") == ["outer beta"]
    emulator.stop()
    pytester.runpytest(*REPLAY).assert_outcomes(passed=3)


def test_nothing_is_patched_between_items_and_plain_tests_reach_the_network(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    emulator = start_emulator(
        _script(*WORDS), conftest=ORIGINALS, web=WEB, test_between=BETWEEN, test_plain=PLAIN_NETWORK
    )
    pytester.runpytest(MODELS, "--record-mode=once").assert_outcomes(passed=8)
    plain = [r for r in emulator.requests if r.prompt == "plain gamma"]
    assert len(plain) == 1  # sent for real, not recorded nor replayed
    assert len(emulator.requests) == 7
    written = sorted(p.relative_to(pytester.path).as_posix() for p in pytester.path.rglob("*.yaml"))
    assert written == sorted(
        f"cassettes/{module}/{model}/{test}.yaml"
        for module, test in (
            ("test_between", "test_first"),
            ("test_between", "test_second"),
            ("test_plain", "test_last"),
        )
        for model in ("emu-a", "emu-b")
    )
    emulator.stop()
    pytester.runpytest(*REPLAY, "-k", "not plain_call").assert_outcomes(passed=7, deselected=1)


# vcr_config at every scope: each one tags the recorded response with its name (a header)
TAG = """
def tag(name):
    def hook(response):
        response["headers"]["x-config"] = [name]
        return response
    return hook
"""

ROOT_CONFTEST = """
import pytest
from tags import tag

@pytest.fixture(scope="session")
def vcr_config():
    return {"before_record_response": tag("root")}
"""

SUB_CONFTEST = """
import pytest
from tags import tag

@pytest.fixture(scope="module")
def vcr_config(request):
    return {"before_record_response": tag(request.module.__name__)}
"""

MODULE_SCOPED = """
import os
from pathlib import Path
import pytest
import web
from tags import tag

SEEN = Path(__file__).parent / "seen.txt"

def remember(request):
    with SEEN.open("a") as f:
        f.write(str(request.headers.get("Authorization")) + "\\n")
    return request

@pytest.fixture(scope="module")
def vcr_config():
    return {
        "before_record_response": tag("module"),
        "before_record_request": remember,
        "filter_headers": ["x-team"],
        "record_mode": "none",
        "match_on": ["method", "scheme", "host", "port", "path", "body"],
    }

def test_ignores_query(model):
    params = {"run": os.environ["RUN"]}
    assert web.ask(model, "mod alpha", headers={"X-Team": "red"}, params=params) == model + ":alpha"

@pytest.mark.vcr(before_record_response=tag("mark"))
def test_marked(model):
    assert web.ask(model, "mod beta") == model + ":beta"
"""

FUNCTION_SCOPED = """
import pytest
import web
from tags import tag

@pytest.fixture
def vcr_config(request):
    return {"before_record_response": tag(request.node.name)}

def test_f1(model):
    assert web.ask(model, "f1 alpha") == model + ":alpha"

def test_f2(model):
    assert web.ask(model, "f2 beta") == model + ":beta"
"""

CLASS_SCOPED = """
import os
import pytest
import web

class TestOwn:
    @pytest.fixture(scope="class")
    def vcr_config(self):
        return {"before_record_response": __import__("tags").tag("class")}

    def test_in_class(self, model):
        assert web.ask(model, "class alpha") == model + ":alpha"

class TestOther:
    def test_in_other(self, model):
        assert web.ask(model, "other beta") == model + ":beta"

def test_default_match(model):
    params = {"run": os.environ["RUN"]}
    assert web.ask(model, "query gamma", headers={"X-Team": "red"}, params=params) == model + ":gamma"
"""

SUB_TEST = """
import web

def test_sub(model):
    assert web.ask(model, "sub delta") == model + ":delta"
"""


def test_vcr_config_scopes_marks_and_the_record_mode_flag(
    pytester: pytest.Pytester, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = start_emulator(
        _script(*WORDS),
        web=WEB,
        tags=TAG,
        conftest=ROOT_CONFTEST,
        test_mod=MODULE_SCOPED,
        test_func=FUNCTION_SCOPED,
        test_cls=CLASS_SCOPED,
    )
    sub = pytester.mkpydir("sub")
    (sub / "conftest.py").write_text(SUB_CONFTEST)
    (sub / "test_s1.py").write_text(SUB_TEST)
    (sub / "test_s2.py").write_text(SUB_TEST)
    monkeypatch.setenv("RUN", "1")
    # record_mode "none" in test_mod's vcr_config: --record-mode=once wins, its cassettes are written
    pytester.runpytest(MODELS, "--record-mode=once").assert_outcomes(passed=18)

    def recorded(where: str) -> tuple[list[Any], set[str]]:
        """The x-config tag of each response, and the request header names (lower case)."""
        found = _interactions(pytester.path / where)
        return [i["response"]["headers"].get("x-config") for i in found], {
            name.lower() for i in found for name in i["request"]["headers"]
        }

    for model in ("emu-a", "emu-b"):
        expected = {
            "test_mod/{}/test_ignores_query": "module",
            "test_mod/{}/test_marked": "mark",  # the mark's kwarg over the module's fixture
            "test_func/{}/test_f1": f"test_f1[{model}]",  # asked per item, not cached
            "test_func/{}/test_f2": f"test_f2[{model}]",
            "test_cls/{}/TestOwn.test_in_class": "class",
            "test_cls/{}/TestOther.test_in_other": "root",
            "test_cls/{}/test_default_match": "root",
            "sub/test_s1/{}/test_sub": "sub.test_s1",  # the sub conftest's, one value per module
            "sub/test_s2/{}/test_sub": "sub.test_s2",
        }
        for where, name in expected.items():
            folder = "sub/cassettes/" + where[4:] if where.startswith("sub/") else "cassettes/" + where
            assert recorded(folder.format(model) + ".yaml")[0] == [[name]], where
        # filter_headers of the module's vcr_config, and nowhere else
        assert "x-team" not in recorded(f"cassettes/test_mod/{model}/test_ignores_query.yaml")[1]
        assert "x-team" in recorded(f"cassettes/test_cls/{model}/test_default_match.yaml")[1]
    seen = (pytester.path / "seen.txt").read_text()
    assert seen.count("\n") == 4
    assert "sk-test-secret" not in seen  # scrubbed before the user's own hook sees the request
    emulator.stop()
    monkeypatch.setenv("RUN", "2")  # only the query differs: a match_on leaving it out replays
    result = pytester.runpytest(*REPLAY)
    result.assert_outcomes(passed=16, failed=2)
    failed = sorted(line.split()[1] for line in result.outlines if line.startswith("FAILED "))
    assert failed == [f"test_cls.py::test_default_match[{m}]" for m in ("emu-a", "emu-b")]


CONFIGURE = """
import json
from pathlib import Path
import pytest

LOG = Path(__file__).parent / "log.txt"

def _log(line):
    with LOG.open("a") as f:
        f.write(line + "\\n")

def _prompt(request):
    return json.loads(request.body)["messages"][0]["content"].split("#")[0]

def mine(r1, r2):
    _log("mine")
    assert _prompt(r1) == _prompt(r2)

def pytest_recording_configure(config, vcr):
    _log("configure")
    vcr.register_matcher("mine", mine)

@pytest.fixture(scope="session")
def vcr_config():
    return {"match_on": ["method", "path", "mine"]}
"""

NONCED = """
import os
import web

def test_one(model):
    assert web.ask(model, "one alpha#" + os.environ["NONCE"]) == model + ":alpha"

def test_two(model):
    assert web.ask(model, "two beta#" + os.environ["NONCE"]) == model + ":beta"
"""


def test_pytest_recording_configure_runs_once_and_its_matcher_is_used(
    pytester: pytest.Pytester, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = start_emulator(_script(*WORDS), conftest=CONFIGURE, web=WEB, test_n=NONCED)
    log = pytester.path / "log.txt"
    monkeypatch.setenv("NONCE", "1")
    pytester.runpytest(MODELS, "--record-mode=once").assert_outcomes(passed=4)
    assert log.read_text().splitlines().count("configure") == 1
    emulator.stop()
    log.unlink()
    monkeypatch.setenv("NONCE", "2")  # the body differs: only "mine" (ignoring the nonce) matches
    pytester.runpytest(*REPLAY).assert_outcomes(passed=4)
    lines = log.read_text().splitlines()
    assert lines.count("configure") == 1
    assert lines[0] == "configure"
    assert lines.count("mine") >= 4


def _scrubber() -> Scrubber:
    return Scrubber.from_settings(extra_request_headers=[], extra_response_headers=[], extra_variables=[])


def _open(path: Path, vs: VcrSession) -> Any:
    return open_cassette(path, record_mode="none", scrubber=_scrubber(), vcr_session=vs)


def _fail_inside(path: Path, vs: VcrSession, steps: list[tuple[Any, str, Any]]) -> None:
    with _open(path, vs):
        last = {(id(t), n): (t, n, new) for t, n, new in steps}  # a later patcher may patch it again
        assert [_raw_attribute(t, n)[1] is new for t, n, new in last.values()] == [True] * len(last)
        raise RuntimeError("the body failed")


def _get_conn() -> Any:
    return cpool.HTTPConnectionPool._get_conn


def test_stale_patchers_are_rebuilt_and_every_attribute_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = cpool.HTTPConnectionPool._get_conn
    vs = VcrSession()
    path = tmp_path / "c.yaml"
    with _open(path, vs):
        assert _get_conn() is not original
    assert _get_conn() is original
    [(key, first)] = vs._patches.items()
    with _open(path, vs):
        pass
    assert vs._patches[key] is first  # nothing changed: reused

    def wrapper(pool: Any, timeout: Any = None, **kwargs: Any) -> Any:
        return original(pool, timeout, **kwargs)

    monkeypatch.setattr(cpool.HTTPConnectionPool, "_get_conn", wrapper)
    with _open(path, vs):
        inside = _get_conn()
        assert inside is not wrapper
        assert inside.__code__.co_name == "patched_get_conn"  # vcrpy's wrapper...
        assert inside.__wrapped__ is wrapper  # ...of what is there now, not the original
    rebuilt = vs._patches[key]
    assert rebuilt is not first
    assert _get_conn() is wrapper

    steps = [step for step in rebuilt.steps if isinstance(step, tuple)]
    assert len(steps) > 10
    before = [_raw_attribute(target, name) for target, name, _ in steps]
    with pytest.raises(RuntimeError, match="the body failed"):
        _fail_inside(path, vs, steps)
    assert vs._patches[key] is rebuilt
    after = [_raw_attribute(target, name) for target, name, _ in steps]
    assert after == before
    assert _get_conn() is wrapper


def test_aiohttp_json_requests_record_and_replay(
    pytester: pytest.Pytester, start_emulator: StartEmulator
) -> None:
    """aiohttp is not a dependency of the suite: where it is installed (the ``litellm`` extra pulls
    it in), its ``json=`` bodies must record and replay; the matcher's unit test runs everywhere
    (tests/test_matching.py)."""
    pytest.importorskip("aiohttp", reason="aiohttp is not installed")
    emulator = start_emulator(_script(*WORDS), test_aio=AIOHTTP)
    pytester.runpytest(MODELS, "--record-mode=once").assert_outcomes(passed=2)
    for model in ("emu-a", "emu-b"):
        assert _prompts(pytester.path / "cassettes" / "test_aio" / model / "test_async_delta.yaml") == [
            "async delta"
        ]
    emulator.stop()
    pytester.runpytest(*REPLAY).assert_outcomes(passed=2)
