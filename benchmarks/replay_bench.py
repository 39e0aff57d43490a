"""Replay speed, collection cost, xdist scaling and controller memory of pytest-modelmigrate.

    python benchmarks/replay_bench.py [--quick] [--repeat N] [--out FILE] [--cache DIR]

Builds (once, cached under the temp dir) a suite of prompt tests whose bodies call the real
``openai`` SDK, records one cassette per (test, model) against the local emulator, stops the
emulator, and then measures, every run a ``python -m pytest -q -p no:cacheprovider`` subprocess:

* (a) replay with this plugin (``--models=...``, record mode none);
* (b) the same test bodies and the same cassette files with plain pytest-recording
  (``@pytest.mark.vcr``, a ``parametrize`` over the same models, cassettes at
  ``cassettes/<module>/<test>[<model>].yaml``), once with ``match_on`` including vcrpy's ``body``
  matcher (the only way to tell LLM requests apart) and once with vcrpy's default ``match_on``;
* (c) the floor: the same test bodies and the same real ``openai.OpenAI`` client, but built on
  ``httpx2.Client(transport=httpx2.MockTransport(handler))``: ``handler`` answers every request
  with the exact recorded response (status, headers, body bytes) of the matching interaction,
  looked up by (model, canonical JSON of the request body). No sockets, no vcrpy, no YAML: the
  responses are read from the pool cassettes once at build time into a pickle per project
  (``floor_responses.pickle``), which the project's conftest loads once per process at import
  (a one-time per-session cost: in the wall time, not in the time in tests). (a)/(c) is then
  replay's own cost on top of the SDK;
* (c0) ``c_stub``, for reference: a stub client that returns the same text without the SDK at
  all. (c)/(c0) is the SDK's own cost (request building, response parsing, SSE decoding).

Every mode runs on two modules: ``test_small`` (1 call per test, JSON or SSE) and
``test_sampled`` (``--sampled-calls`` calls per test, as sampled tests make). Then: collection
of a project that never uses ``model``, with and without the plugin; ``-n 2`` against no xdist;
the controller's peak RSS under ``-n 2`` for three suite sizes against the size of the
``--migration-json`` report; the plugin's CPU per item over plain pytest on tests that make no
request (``overhead``); the CPU time of ``pytest_sessionfinish`` at three sizes of such a suite,
with ``--migration-json`` (``session_end``: per 1,000 items, and how it grows). Every run records wall and CPU time (``RUSAGE_CHILDREN``) and the load
average. Repeats are interleaved, medians reported, targets are CPU ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

REPO = Path(__file__).resolve().parent.parent
MODELS = ("gpt-4o", "gpt-4.1", "gpt-5")
SCHEMA_VERSION = 4  # bump when the generated suite changes, so the cache is rebuilt
MODES = ("a", "b", "b_default", "c", "c_stub")  # one generated project each
# What is timed: every mode, and (a) once more with an empty parse cache (a first CI run)
RUN_MODES = ("a", "a_cold", "b", "b_default", "c", "c_stub")
PROJECT_OF = {"a_cold": "a"}
MODE_LABELS = {
    "a": "(a) pytest-modelmigrate",
    "a_cold": "(a, cold) pytest-modelmigrate, parse cache empty",
    "b": "(b) pytest-recording, match_on + body",
    "b_default": "(b') pytest-recording, default match_on",
    "c": "(c) floor: real SDK, in-memory transport (no HTTP)",
    "c_stub": "(c0) no SDK (stub client returning the text)",
}
FLOOR_FILE = "floor_responses.pickle"  # (c): recorded responses, written at build time
MODULES = ("test_small", "test_sampled")
# A realistic system prompt (~1.4 KB): LLM requests differ only by body, and bodies are not tiny.
SYSTEM_PROMPT = " ".join(
    f"Rule {n}: answer the support ticket in one sentence, name the queue, never invent order numbers."
    for n in range(1, 16)
)


@dataclass(frozen=True)
class Sizes:
    """How big each generated suite is (test functions; each runs once per model)."""

    small: int = 300  # test_small: 1 call per test, every third one streamed (SSE)
    recorded: int = 100  # distinct small tests recorded; test i replays prompt i % recorded
    sampled: int = 10  # test_sampled: tests that make `sampled_calls` calls each
    sampled_calls: int = 60
    memory: tuple[int, int, int] = (100, 300, 900)  # x 3 models = 300 / 900 / 2700 tests
    collect: int = 5000  # tests in the project that does not use `model`
    session_end: tuple[int, int, int] = (100, 1000, 3333)  # x 3 models: pytest_sessionfinish's scaling

    @property
    def key(self) -> str:
        text = json.dumps([SCHEMA_VERSION, asdict(self), MODELS, _versions()], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


FULL = Sizes()
QUICK = Sizes(
    small=10,
    recorded=10,
    sampled=2,
    sampled_calls=50,
    memory=(5, 10, 20),
    collect=500,
    session_end=(10, 30, 100),
)
# 6 calls: the sampled cassettes pass the parse cache's threshold (32 KB), the one-call ones do not
TINY = Sizes(
    small=2, recorded=2, sampled=1, sampled_calls=6, memory=(1, 2, 3), collect=20, session_end=(1, 2, 3)
)


# -- the generated suite -------------------------------------------------------------------------

APP = '''"""The application under test: one real openai SDK call per ask()."""

import openai

URL = {url!r}
SYSTEM = {system!r}
CLIENT = None  # the (c) / (c0) conftests install their client here


def client():
    global CLIENT
    if CLIENT is None:
        CLIENT = openai.OpenAI(base_url=URL, api_key="x", max_retries=0)
    return CLIENT


def expected(model, prompt):
    return f'Emulated reply from {{model}} to "{{prompt}}".'


def ask(model, prompt, stream):
    messages = [{{"role": "system", "content": SYSTEM}}, {{"role": "user", "content": prompt}}]
    if stream:
        chunks = client().chat.completions.create(model=model, messages=messages, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    response = client().chat.completions.create(model=model, messages=messages)
    return response.choices[0].message.content


def run_case(i, model):
    prompt = f"Ticket {{i}}: my order {{i * 7}} arrived broken"
    assert ask(model, prompt, stream=i % 3 == 0) == expected(model, prompt)


def run_sampled(i, model, calls):
    for s in range(calls):
        prompt = f"Ticket {{i}} sample {{s}}: where is my parcel?"
        assert ask(model, prompt, stream=s % 2 == 1) == expected(model, prompt)
'''

STATS_HOOKS = """
import json
import os
import resource
import time

import pytest

_STATS = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0, "test_seconds": 0.0}


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session):
    started = time.process_time()  # around every plugin's pytest_sessionfinish
    try:
        return (yield)
    finally:
        _STATS["sessionfinish_cpu"] = time.process_time() - started


def pytest_runtest_logreport(report):
    _STATS["test_seconds"] += report.duration
    if report.when == "call":
        _STATS[report.outcome] += 1
    elif report.failed:
        _STATS["errors"] += 1
    elif report.skipped:
        _STATS["skipped"] += 1


def pytest_unconfigure(config):
    out = os.environ.get("BENCH_STATS")
    if out and not hasattr(config, "workerinput"):  # the controller (or the only process)
        _STATS["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with open(out, "w") as handle:
            json.dump(_STATS, handle)
"""

CONFTEST_B = """
import os

import pytest

DEFAULT_MATCH_ON = ["method", "scheme", "host", "port", "path", "query"]


@pytest.fixture(scope="module")
def vcr_config():
    if os.environ.get("BENCH_MATCH_ON") == "default":
        return {}
    return {"match_on": [*DEFAULT_MATCH_ON, "body"], "decode_compressed_response": True}
"""

# (c) the floor: the real SDK over an in-memory transport that serves the recorded responses.
# The pickle is loaded once per process, here at import (a one-time per-session cost); the key
# must match _floor_key() below.
CONFTEST_C = f"""
import json
import os
import pickle

import httpx2
import openai

import bench_app

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), {FLOOR_FILE!r}), "rb") as _handle:
    _RESPONSES = pickle.load(_handle)  # (model, canonical body) -> [(status, headers, body), ...]
_STATS["mock_calls"] = 0


def _handler(request):
    body = json.loads(request.content)
    key = (body.get("model"), json.dumps(body, sort_keys=True))
    queue = _RESPONSES.get(key)
    if not queue:
        return httpx2.Response(418, text=f"no recorded response (left) for {{key!r}}"[:500])
    status, headers, content = queue.pop(0)
    _STATS["mock_calls"] += 1
    return httpx2.Response(status, headers=headers, content=content)


bench_app.CLIENT = openai.OpenAI(
    base_url=bench_app.URL,
    api_key="x",
    max_retries=0,
    http_client=httpx2.Client(transport=httpx2.MockTransport(_handler)),
)
"""

# (c0) for reference: no SDK at all, a stub that returns the expected text.
CONFTEST_C_STUB = """
from types import SimpleNamespace as NS

import bench_app


class _Completions:
    def create(self, model, messages, stream=False, **kwargs):
        text = bench_app.expected(model, messages[-1]["content"])
        if stream:
            return iter([NS(choices=[NS(delta=NS(content=text))]), NS(choices=[])])
        return NS(choices=[NS(message=NS(content=text))])


bench_app.CLIENT = NS(chat=NS(completions=_Completions()))
"""


def _module_source(mode: str, module: str, count: int, sizes: Sizes) -> str:
    """The same test bodies for every mode; only the decorators around them differ."""
    lines = ["import pytest", "", "from bench_app import run_case, run_sampled", ""]
    if mode != "a":
        lines += [f"MODELS = {list(MODELS)!r}", ""]
    for i in range(count):
        lines.append("")
        if mode in ("b", "b_default"):
            lines.append("@pytest.mark.vcr")
        if mode != "a":
            lines.append('@pytest.mark.parametrize("model", MODELS)')
        if module == "test_small":
            body = f"run_case({i % sizes.recorded}, model)"
        else:
            body = f"run_sampled({i}, model, {sizes.sampled_calls})"
        lines += [f"def test_t{i:04d}(model):", f"    {body}", ""]
    return "\n".join(lines)


@dataclass
class Suite:
    """Paths of the generated projects; ``dirs[(mode, n_small)]`` runs both modules."""

    root: Path
    sizes: Sizes
    pool: Path
    dirs: dict[tuple[str, int], Path] = field(default_factory=dict)
    collect_dir: Path | None = None

    @property
    def url(self) -> str:
        """The base URL the cassettes were recorded against (nothing listens there afterwards)."""
        found = re.search(r"^URL = '([^']+)'", (self.pool / "bench_app.py").read_text(), re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no URL in {self.pool / 'bench_app.py'}")
        return found.group(1)

    def project(self, mode: str, small: int | None = None) -> Path:
        return self.dirs[(mode, self.sizes.small if small is None else small)]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def build_suite(
    sizes: Sizes, cache: Path | None = None, *, log: Callable[[str], None] = print, warm: bool = True
) -> Suite:
    """Generate (or reuse) the suite for ``sizes``; records the cassettes once with the emulator.

    ``warm=False`` skips filling the byte-code and parse caches (the smoke test: no timing).
    """
    base = cache or Path(tempfile.gettempdir()) / "modelmigrate-replay-bench"
    root = base / sizes.key
    pool = root / "pool"
    suite = Suite(root=root, sizes=sizes, pool=pool)
    small_sizes = sorted({sizes.small, *sizes.memory})
    if not (root / "READY").exists():
        if root.exists():  # an interrupted build: start again
            shutil.rmtree(root)
        log(f"building the suite in {root} ...")
        _record_pool(pool, sizes, log=log)
        pool_responses = read_pool(pool, sizes)  # parsed once, for every (c) project's floor file
        for mode in MODES:
            for n in small_sizes:
                _derive(pool, root / f"{mode}-{n}", mode, n, sizes, pool_responses)
        _write_collect_project(root / "collect", sizes.collect)
    for mode in MODES:
        for n in small_sizes:
            suite.dirs[(mode, n)] = root / f"{mode}-{n}"
    suite.collect_dir = root / "collect"
    if not (root / "READY").exists():
        if warm:
            _warm_up(suite)
        (root / "READY").write_text("ok\n")
    elif warm:  # a suite built before (a) kept a parse cache: fill it now, not in the first repeat
        for (mode, _), directory in suite.dirs.items():
            if mode == "a" and not warm_cache(directory).exists():
                _fill_parse_cache(directory)
    return suite


def _warm_up(suite: Suite) -> None:
    """Fill the byte-code cache (``PYTHONPYCACHEPREFIX``) for every project, as a CI cache would,
    and (a)'s parse cache (``.pytest_cache``), as a second run or a restored CI cache would."""
    for (mode, _), directory in suite.dirs.items():
        if mode == "a":
            _fill_parse_cache(directory)
        else:
            args, env = mode_args(mode, "test_small")
            run_pytest(directory, [*args, "test_sampled.py", "--collect-only"], env)
    run_collect(suite, True)


def _fill_parse_cache(directory: Path) -> None:
    """Run (a) once on both modules of ``directory``, keeping its pytest cache dir."""
    args, env = mode_args("a", "test_small")
    run_pytest(directory, [*args, "test_sampled.py"], env, cache_dir=warm_cache(directory))


def warm_cache(directory: Path) -> Path:
    """The pytest cache dir (with its parsed cassettes) that (a) keeps between runs of ``directory``."""
    return directory.parent / "pytest-cache" / directory.name


def _record_pool(pool: Path, sizes: Sizes, *, log: Callable[[str], None]) -> None:
    from pytest_modelmigrate.emulator import Emulator

    port = _free_port()
    _write(pool / "pytest.ini", "[pytest]\n")
    _write(pool / "bench_app.py", APP.format(url=f"http://127.0.0.1:{port}/v1", system=SYSTEM_PROMPT))
    _write(pool / "conftest.py", STATS_HOOKS)
    small = sizes.recorded
    _write(pool / "test_small.py", _module_source("a", "test_small", small, sizes))
    _write(pool / "test_sampled.py", _module_source("a", "test_sampled", sizes.sampled, sizes))
    started = time.perf_counter()
    with Emulator(script=None, port=port, time_scale=0):
        result = run_pytest(pool, ["-n", "2", f"--models={','.join(MODELS)}", "--record-mode=once"])
    expected = (small + sizes.sampled) * len(MODELS)
    if result.passed != expected:
        raise RuntimeError(f"recording passed {result.passed} of {expected} tests:\n{result.output[-3000:]}")
    log(f"recorded {expected} cassettes in {time.perf_counter() - started:.1f}s")


# (module, model, recorded test index) -> [(floor key, response), ...] in recording order
FloorKey = tuple[str, str]  # (model, canonical JSON of the request body)
FloorResponse = tuple[int, list[tuple[str, str]], bytes]  # (status, headers, body bytes)
PoolResponses = dict[tuple[str, str, int], list[tuple[FloorKey, FloorResponse]]]


def _floor_key(body: str | bytes) -> FloorKey:
    """What the (c) handler looks a request up by; ``CONFTEST_C`` computes the same."""
    data = json.loads(body)
    return (data.get("model"), json.dumps(data, sort_keys=True))


def read_pool(pool: Path, sizes: Sizes) -> PoolResponses:
    """Every interaction of the pool's cassettes (libyaml when available), read once per build.

    Responses are kept exactly as recorded: status, every header value, body bytes. Nothing
    needs dropping: the emulator does not compress (vcrpy would also have removed
    ``content-encoding`` had it decoded a body), a recorded ``content-length`` is the body's,
    and ``transfer-encoding: chunked`` (SSE) is wire framing that an in-memory response ignores
    (httpx2 adds a ``content-length`` next to it).
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    found: PoolResponses = {}
    for module, count in (("test_small", sizes.recorded), ("test_sampled", sizes.sampled)):
        for name in MODELS:
            for i in range(count):
                path = pool / "cassettes" / module / name / f"test_t{i:04d}.yaml"
                with path.open("rb") as handle:
                    cassette = yaml.load(handle, Loader=loader)  # a safe loader
                entries = found.setdefault((module, name, i), [])
                for interaction in cassette["interactions"]:
                    request, response = interaction["request"], interaction["response"]
                    body = response["body"]["string"]
                    headers = [
                        (key, value) for key, values in response["headers"].items() for value in values
                    ]
                    content = body.encode("utf-8") if isinstance(body, str) else bytes(body)
                    key = _floor_key(request["body"])
                    entries.append((key, (int(response["status"]["code"]), headers, content)))
    return found


def read_floor(project: Path) -> dict[FloorKey, list[FloorResponse]]:
    """The responses a (c) project serves (what its conftest loads)."""
    import pickle

    with (project / FLOOR_FILE).open("rb") as handle:
        data: dict[FloorKey, list[FloorResponse]] = pickle.load(handle)  # written by _write_floor
    return data


def _write_floor(target: Path, counts: dict[str, int], sizes: Sizes, pool_responses: PoolResponses) -> None:
    """``FLOOR_FILE`` for a (c) project: one response per call its tests make, in order.

    Small tests that reuse a recording (``i % sizes.recorded``) send the same request again, so
    its response is listed once per test and popped in order; pickle stores each response once.
    """
    import pickle

    floor: dict[FloorKey, list[FloorResponse]] = {}
    for module, count in counts.items():
        for i in range(count):
            source = i % sizes.recorded if module == "test_small" else i
            for name in MODELS:
                for key, response in pool_responses[(module, name, source)]:
                    floor.setdefault(key, []).append(response)
    with (target / FLOOR_FILE).open("wb") as handle:
        pickle.dump(floor, handle, protocol=pickle.HIGHEST_PROTOCOL)


def _derive(pool: Path, target: Path, mode: str, n: int, sizes: Sizes, pool_responses: PoolResponses) -> None:
    """A project for ``mode`` with ``n`` small tests; its cassettes are symlinks into the pool.

    Small test ``i`` sends the prompt of recorded test ``i % sizes.recorded``, so its cassette is
    a link to that recording: every (test, model) still has a cassette file of its own. The
    floors have no cassettes: (c) gets ``FLOOR_FILE`` from ``pool_responses``, (c0) needs nothing.
    """
    _write(target / "pytest.ini", "[pytest]\n")
    (target / "bench_app.py").symlink_to(pool / "bench_app.py")
    conftests = {
        "a": "",
        "b": CONFTEST_B,
        "b_default": CONFTEST_B,
        "c": CONFTEST_C,
        "c_stub": CONFTEST_C_STUB,
    }
    _write(target / "conftest.py", STATS_HOOKS + conftests[mode])
    counts = {"test_small": n, "test_sampled": sizes.sampled}
    if mode == "c":
        _write_floor(target, counts, sizes, pool_responses)
    for module, count in counts.items():
        _write(target / f"{module}.py", _module_source(mode, module, count, sizes))
        if mode in ("c", "c_stub"):
            continue
        for i in range(count):
            recorded = i % sizes.recorded if module == "test_small" else i
            for name in MODELS:
                source = pool / "cassettes" / module / name / f"test_t{recorded:04d}.yaml"
                if mode == "a":  # <module>/<model>/<test>.yaml
                    link = target / "cassettes" / module / name / f"test_t{i:04d}.yaml"
                else:  # pytest-recording: <module>/<test>[<model>].yaml
                    link = target / "cassettes" / module / f"test_t{i:04d}[{name}].yaml"
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(source)


def _write_collect_project(target: Path, tests: int) -> None:
    """``tests`` plain tests in modules of 100 (a few parametrized); nothing uses ``model``."""
    _write(target / "pytest.ini", "[pytest]\n")
    per_module = 100
    for m in range((tests + per_module - 1) // per_module):
        count = min(per_module, tests - m * per_module)
        lines = ["import pytest", ""]
        for i in range(count):
            if i % 10 == 0:
                lines += ["", '@pytest.mark.parametrize("x", [1])']
                lines += [f"def test_{i}(x):", "    assert x", ""]
            else:
                lines += ["", f"def test_{i}():", "    assert True", ""]
        _write(target / f"pkg{m // 10}" / f"test_mod{m}.py", "\n".join(lines))


# -- running pytest ----------------------------------------------------------------------------


@dataclass
class RunResult:
    wall: float
    returncode: int
    stats: dict[str, float]
    output: str
    json_bytes: int = 0
    cpu: float = 0.0  # user + sys of the process and every child it waited for (xdist workers)
    load: float = 0.0  # os.getloadavg()[0] when the run ended

    @property
    def passed(self) -> int:
        return int(self.stats.get("passed", 0))

    @property
    def test_seconds(self) -> float:
        return float(self.stats.get("test_seconds", 0.0))


def run_pytest(
    directory: Path, args: Sequence[str], env: dict[str, str] | None = None, *, cache_dir: Path | None = None
) -> RunResult:
    """``python -m pytest -q ARGS`` in ``directory``; timed around the process.

    pytest's cache dir is ``cache_dir``, or else a new empty one for this run only.
    """
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        stats_path = Path(tmp) / "stats.json"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
        # Like a CI machine: byte-code (and pytest's rewritten test modules) cached between runs,
        # but under the suite's folder, never in the repository or site-packages.
        full_env.pop("PYTHONDONTWRITEBYTECODE", None)
        full_env["PYTHONPYCACHEPREFIX"] = str(directory.parent / "pycache")
        full_env["BENCH_STATS"] = str(stats_path)
        full_env.update(env or {})
        cache = cache_dir or Path(tmp) / "pytest-cache"
        command = [sys.executable, "-m", "pytest", "-q", "-o", f"cache_dir={cache}", *args]
        before = _children_cpu()
        started = time.perf_counter()
        proc = subprocess.run(
            command, cwd=directory, env=full_env, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - started
        cpu = _children_cpu() - before
        stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    return RunResult(
        wall=wall,
        returncode=proc.returncode,
        stats=stats,
        output=proc.stdout + proc.stderr,
        cpu=cpu,
        load=os.getloadavg()[0],
    )


def _children_cpu() -> float:
    """User + system CPU seconds of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def mode_args(mode: str, module: str) -> tuple[list[str], dict[str, str]]:
    """Command-line arguments and environment for one mode on one module."""
    target = f"{module}.py"
    if mode in ("a", "a_cold"):
        return [target, f"--models={','.join(MODELS)}"], {}
    if mode == "b":
        return [target, "-p", "no:modelmigrate", "--record-mode=none"], {"BENCH_MATCH_ON": "body"}
    if mode == "b_default":
        return [target, "-p", "no:modelmigrate", "--record-mode=none"], {"BENCH_MATCH_ON": "default"}
    if mode in ("c", "c_stub"):
        return [target, "-p", "no:modelmigrate", "-p", "no:recording"], {}
    raise ValueError(mode)


def run_mode(suite: Suite, mode: str, module: str, extra: Sequence[str] = ()) -> RunResult:
    """One timed run; (a) keeps its parse cache between runs, (a, cold) starts with none."""
    args, env = mode_args(mode, module)
    directory = suite.project(PROJECT_OF.get(mode, mode))
    cache = warm_cache(directory) if mode == "a" else None
    return run_pytest(directory, [*args, *extra], env, cache_dir=cache)


_SPIN = "x = 0\nfor i in range(15_000_000):\n    x += i\n"


def run_cpu_pair(*, parallel: bool) -> RunResult:
    """Two pure-Python CPU-bound processes, side by side or one after the other.

    The ceiling for any 2-process speed-up on this machine at this moment (cores, frequency
    scaling, neighbours), measured beside the xdist runs so that their ratio can be read.
    """
    command = [sys.executable, "-c", _SPIN]
    before = _children_cpu()
    started = time.perf_counter()
    if parallel:
        procs = [subprocess.Popen(command) for _ in range(2)]
        codes = [proc.wait() for proc in procs]
    else:
        codes = [subprocess.run(command, check=False).returncode for _ in range(2)]
    wall = time.perf_counter() - started
    return RunResult(
        wall=wall,
        returncode=max(codes),
        stats={},
        output="",
        cpu=_children_cpu() - before,
        load=os.getloadavg()[0],
    )


def run_collect(suite: Suite, with_plugin: bool) -> RunResult:
    assert suite.collect_dir is not None
    args = ["--collect-only"] + ([] if with_plugin else ["-p", "no:modelmigrate"])
    return run_pytest(suite.collect_dir, args)


def run_memory(suite: Suite, n: int, *, base: bool = False) -> RunResult:
    """(a) on ``n`` small tests x 3 models under ``-n 2``; peak RSS of the controller, JSON size.

    ``base``: the same tests and cassettes under ``-n 2`` with pytest-recording and no plugin
    (b), what pytest, xdist and vcrpy keep in the controller by themselves.
    """
    if base:
        args, env = mode_args("b", "test_small")
        return run_pytest(suite.project("b", n), [*args, "-n", "2"], env)
    with tempfile.TemporaryDirectory(prefix="bench-json-") as tmp:
        out = Path(tmp) / "run.json"
        args = ["test_small.py", f"--models={','.join(MODELS)}", "-n", "2", f"--migration-json={out}"]
        directory = suite.project("a", n)
        result = run_pytest(directory, args, cache_dir=warm_cache(directory))
        result.json_bytes = out.stat().st_size if out.exists() else 0
    return result


def overhead_sizes(sizes: Sizes) -> tuple[int, int]:
    """Test functions (x 3 models) of the two no-HTTP projects whose difference gives the cost per item."""
    return max(1, sizes.small // 3), max(2, sizes.small * 10 // 3)


def _overhead_project(suite: Suite, n: int, *, plugin: bool) -> Path:
    """``n`` tests that take ``model`` and make no request: with the plugin, or parametrized."""
    target = suite.root / f"overhead-{'a' if plugin else 'plain'}-{n}"
    module = target / "test_overhead.py"
    if not module.exists():
        _write(target / "pytest.ini", "[pytest]\n")
        _write(target / "conftest.py", STATS_HOOKS)
        lines = ["import pytest", "", f"MODELS = {list(MODELS)!r}", ""]
        for i in range(n):
            if not plugin:
                lines += ["", '@pytest.mark.parametrize("model", MODELS)']
            lines += [f"def test_t{i:04d}(model):", "    assert str(model) in MODELS", ""]
        _write(module, "\n".join(lines))
    return target


def run_overhead(suite: Suite, n: int, *, plugin: bool) -> RunResult:
    """``n`` x 3 items that use ``model`` and make no request (no HTTP, no cassette, no vcrpy
    call): with the plugin (``--models``), or plain pytest parametrized over the same models.
    pytest-recording is off in both, so the difference is the plugin alone."""
    directory = _overhead_project(suite, n, plugin=plugin)
    which = [f"--models={','.join(MODELS)}"] if plugin else ["-p", "no:modelmigrate"]
    return run_pytest(directory, ["test_overhead.py", "-p", "no:recording", *which])


def run_session_end(suite: Suite, n: int) -> RunResult:
    """The no-HTTP project of ``n`` x 3 items with ``--migration-json``: what
    ``pytest_sessionfinish`` costs (the analysis, the decision, the run file) at that size."""
    directory = _overhead_project(suite, n, plugin=True)
    models = f"--models={','.join(MODELS)}"
    return run_pytest(
        directory, ["test_overhead.py", "-p", "no:recording", models, "--migration-json=run.json"]
    )


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Measurements:
    sizes: Sizes
    repeat: int
    samples: dict[str, list[RunResult]] = field(default_factory=dict)

    def add(self, key: str, result: RunResult, expected: int | None) -> None:
        if expected is not None and (result.passed != expected or result.returncode != 0):
            raise RuntimeError(
                f"{key}: expected {expected} passed tests, got {result.stats} (exit {result.returncode}):\n"
                + result.output[-3000:]
            )
        self.samples.setdefault(key, []).append(result)

    def wall(self, key: str) -> float:
        return statistics.median(r.wall for r in self.samples[key])

    def test_time(self, key: str) -> float:
        return statistics.median(r.test_seconds for r in self.samples[key])

    def cpu(self, key: str) -> float:
        return statistics.median(r.cpu for r in self.samples[key])

    def loads(self, *keys: str) -> str:
        """The 1-minute load averages at the end of the runs of ``keys``: lowest–highest."""
        found = [r.load for key in keys for r in self.samples.get(key, ())]
        return f"{min(found):.1f}–{max(found):.1f}" if found else "–"

    def ratio(self, num: str, den: str, *, test_time: bool = False, cpu: bool = False) -> float:
        """Median over repeats of the per-repeat ratio (each pair measured side by side):
        of wall time, of the time in tests (``test_time``) or of CPU time (``cpu``)."""
        pick: Callable[[RunResult], float] = (
            (lambda r: r.cpu) if cpu else (lambda r: r.test_seconds) if test_time else (lambda r: r.wall)
        )
        pairs = zip(self.samples[num], self.samples[den], strict=False)
        return statistics.median(pick(x) / max(pick(y), 1e-9) for x, y in pairs)

    def session_end_cpu(self, n: int) -> float:
        """Median CPU time (s) of ``pytest_sessionfinish`` with ``n`` x 3 items."""
        return statistics.median(r.stats["sessionfinish_cpu"] for r in self.samples[f"session_end:{n}"])

    def per_item_overhead(self) -> float:
        """Plugin CPU per item over plain pytest (no HTTP), in ms: from the slope between the two
        sizes of each, so what every process pays once (imports, session end) cancels."""
        low, high = overhead_sizes(self.sizes)
        items = (high - low) * len(MODELS)
        values = []
        for rep in range(self.repeat):
            a = self.samples[f"overhead:a:{high}"][rep].cpu - self.samples[f"overhead:a:{low}"][rep].cpu
            p = (
                self.samples[f"overhead:plain:{high}"][rep].cpu
                - self.samples[f"overhead:plain:{low}"][rep].cpu
            )
            values.append(1000 * (a - p) / items)
        return statistics.median(values)


def measure(
    suite: Suite, repeat: int, *, log: Callable[[str], None] = print, include: Iterable[str] = ("all",)
) -> Measurements:
    """Run every measurement ``repeat`` times, interleaved (rotating order) so drift hits all alike."""
    sizes = suite.sizes
    parts = set(include)
    everything = "all" in parts
    m = Measurements(sizes=sizes, repeat=repeat)
    jobs: list[tuple[str, Callable[[], RunResult], int | None]] = []
    per_module = {"test_small": sizes.small, "test_sampled": sizes.sampled}
    if everything or "replay" in parts:
        for module, count in per_module.items():
            for mode in RUN_MODES:
                jobs.append((f"{mode}:{module}", _bind_mode(suite, mode, module), count * len(MODELS)))
    if everything or "xdist" in parts:
        items = sizes.small * len(MODELS)
        jobs.append(("xdist:n0", _bind_mode(suite, "a", "test_small"), items))
        jobs.append(("xdist:n2", _bind_mode(suite, "a", "test_small", ("-n", "2")), items))
        # the same with pytest-recording (b): what xdist gives a replay without this plugin
        jobs.append(("xdist-base:n0", _bind_mode(suite, "b", "test_small"), items))
        jobs.append(("xdist-base:n2", _bind_mode(suite, "b", "test_small", ("-n", "2")), items))
        # the machine: two CPU-bound processes side by side against one after the other
        jobs.append(("xdist-cpu:serial", lambda: run_cpu_pair(parallel=False), None))
        jobs.append(("xdist-cpu:parallel", lambda: run_cpu_pair(parallel=True), None))
    if everything or "collect" in parts:
        jobs.append(("collect:without", lambda: run_collect(suite, False), None))
        jobs.append(("collect:with", lambda: run_collect(suite, True), None))
    if everything or "overhead" in parts:
        for n in overhead_sizes(sizes):
            for plugin, name in ((True, "a"), (False, "plain")):
                jobs.append((f"overhead:{name}:{n}", _bind_overhead(suite, n, plugin), n * len(MODELS)))
    if everything or "session_end" in parts:
        for n in sizes.session_end:
            jobs.append((f"session_end:{n}", _bind_session_end(suite, n), n * len(MODELS)))
    if everything or "memory" in parts:
        for n in sizes.memory:
            jobs.append((f"memory:{n}", _bind_memory(suite, n), n * len(MODELS)))
            jobs.append((f"memory-base:{n}", _bind_memory(suite, n, base=True), n * len(MODELS)))
    for rep in range(repeat):
        shift = rep % len(jobs)
        for key, job, expected in jobs[shift:] + jobs[:shift]:
            result = job()
            m.add(key, result, expected)
            log(
                f"  [{rep + 1}/{repeat}] {key:<24} {result.wall:7.2f}s wall, {result.cpu:7.2f}s CPU, "
                f"{result.test_seconds:7.2f}s in tests, load {result.load:.2f}, "
                f"peak RSS {result.stats.get('maxrss_kb', 0) / 1024:.1f} MB"
                + (f", report {result.json_bytes / 1024:.0f} KB" if result.json_bytes else "")
            )
    return m


def _bind_mode(suite: Suite, mode: str, module: str, extra: Sequence[str] = ()) -> Callable[[], RunResult]:
    return lambda: run_mode(suite, mode, module, extra)


def _bind_overhead(suite: Suite, n: int, plugin: bool) -> Callable[[], RunResult]:
    return lambda: run_overhead(suite, n, plugin=plugin)


def _bind_session_end(suite: Suite, n: int) -> Callable[[], RunResult]:
    return lambda: run_session_end(suite, n)


def _bind_memory(suite: Suite, n: int, *, base: bool = False) -> Callable[[], RunResult]:
    return lambda: run_memory(suite, n, base=base)


# -- targets and the report --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    value: float
    goal: str
    passed: bool
    info: bool = False  # reported for reference only: no goal, neither PASS nor MISS
    load: str = ""  # 1-minute load average at the end of the runs it is made of: lowest–highest


def evaluate(m: Measurements) -> list[Target]:
    targets: list[Target] = []

    def add(name: str, value: float, goal: str, ok: bool, keys: Sequence[str] = ()) -> None:
        targets.append(Target(name, value, goal, ok, load=m.loads(*keys)))

    def info(name: str, value: float, keys: Sequence[str] = ()) -> None:
        targets.append(Target(name, value, "(info)", True, info=True, load=m.loads(*keys)))

    if "a:test_small" in m.samples:
        n = m.sizes.sampled_calls
        floor = "floor: SDK, in-memory transport"
        bound_keys = ("b:test_sampled", "c:test_sampled")
        bound = m.ratio(*bound_keys, cpu=True)  # (b)/(c): what no replay through the SDK can pass
        for a, how, goal in (("a", "parse cache warm", 1.0), ("a_cold", "parse cache empty", 0.9)):
            keys: tuple[str, ...] = (f"{a}:test_small", "b:test_small")
            r = m.ratio(*keys, cpu=True)
            add(f"(a)/(b) CPU, one-call cassettes, {how}", r, f"≤ {goal}", r <= goal, keys)
            info(f"(a)/(b) wall, one-call cassettes, {how}", m.ratio(*keys), keys)
            keys = (f"{a}:test_small", "c:test_small")
            r = m.ratio(*keys, cpu=True)
            add(f"(a)/(c) CPU, one-call cassettes ({floor}), {how}", r, "≤ 1.1", r <= 1.1, keys)
            keys = (f"{a}:test_sampled", "c:test_sampled")
            r = m.ratio(*keys, cpu=True)
            add(f"(a)/(c) CPU, {n}-interaction cassettes ({floor}), {how}", r, "≤ 1.1", r <= 1.1, keys)
            keys = ("b:test_sampled", f"{a}:test_sampled")
            r = m.ratio(*keys, cpu=True)
            add(
                f"(b)/(a) CPU, {n}-interaction cassettes, {how}",
                r,
                f"≥ {0.9 * bound:.2f} (90% of (b)/(c))",
                r >= 0.9 * bound,
                keys,
            )
        info(f"(b)/(c) CPU, {n}-interaction cassettes: the floor's bound on (b)/(a)", bound, bound_keys)
        keys = ("a:test_small", "c_stub:test_small")
        info("(a)/(c0) wall, small cassettes (no SDK at all)", m.ratio(*keys), keys)
        keys = ("a:test_sampled", "c_stub:test_sampled")
        info(f"(a)/(c0) wall, {n}-interaction cassettes (no SDK at all)", m.ratio(*keys), keys)
    low, high = overhead_sizes(m.sizes)
    if f"overhead:a:{high}" in m.samples:
        r = m.per_item_overhead()
        keys = tuple(f"overhead:{w}:{n}" for w in ("a", "plain") for n in (low, high))
        add("plugin CPU per item over plain pytest, no HTTP at all (ms)", r, "≤ 0.3 ms", r <= 0.3, keys)
    if all(f"session_end:{n}" in m.samples for n in m.sizes.session_end):
        _, middle, largest = m.sizes.session_end
        keys = tuple(f"session_end:{n}" for n in m.sizes.session_end)
        items = len(MODELS)
        per_k = m.session_end_cpu(largest) / (largest * items) * 1000
        add(
            f"`pytest_sessionfinish` CPU per 1,000 items at {largest * items} items (s)",
            per_k,
            "≤ 0.1 s",
            per_k <= 0.1,
            keys,
        )
        growth = per_k / max(m.session_end_cpu(middle) / (middle * items) * 1000, 1e-9)
        add(
            f"`pytest_sessionfinish` per item at {largest * items} / at {middle * items} items",
            growth,
            "≤ 1.25 (linear)",
            growth <= 1.25,
            keys,
        )
    if "collect:with" in m.samples:
        r = m.ratio("collect:with", "collect:without") - 1.0
        add(f"collection of {m.sizes.collect} tests: extra time with the plugin", r, "< 10%", r < 0.10)
    if "xdist:n2" in m.samples:
        r = m.ratio("xdist:n0", "xdist:n2")
        add(f"speed-up of -n 2 on {m.sizes.small * len(MODELS)} tests (wall)", r, "≥ 1.6×", r >= 1.6)
        if "xdist-base:n2" in m.samples:
            info(
                "speed-up of -n 2 for (b), pytest-recording, same tests",
                m.ratio("xdist-base:n0", "xdist-base:n2"),
            )
            info(
                "machine: 2 CPU-bound processes side by side vs one after the other",
                m.ratio("xdist-cpu:serial", "xdist-cpu:parallel"),
            )
    if all(f"memory:{n}" in m.samples for n in m.sizes.memory):
        growth, report = memory_growth(m)
        base, _ = memory_growth(m, "memory-base")
        own = (growth - base) / max(report, 1.0)
        add(
            "controller peak-RSS growth beyond (b)'s / report growth (smallest → largest)",
            own,
            "≤ 1.0",
            own <= 1.0,
        )
        info(
            "controller peak-RSS growth / report growth, all of it (pytest and xdist included)",
            growth / max(report, 1.0),
        )
        info(
            "(b) controller peak-RSS growth / (a)'s report growth (pytest, xdist, vcrpy alone)",
            base / max(report, 1.0),
        )
    return targets


def memory_growth(m: Measurements, key: str = "memory") -> tuple[float, float]:
    """(RSS growth, JSON growth) in bytes between the smallest and the largest memory run."""
    low, high = f"{key}:{m.sizes.memory[0]}", f"{key}:{m.sizes.memory[-1]}"
    rss = statistics.median(r.stats["maxrss_kb"] for r in m.samples[high]) - statistics.median(
        r.stats["maxrss_kb"] for r in m.samples[low]
    )
    report = statistics.median(r.json_bytes for r in m.samples[high]) - statistics.median(
        r.json_bytes for r in m.samples[low]
    )
    return rss * 1024.0, float(report)


def _versions() -> dict[str, str]:
    found = {}
    for name in ("pytest", "vcrpy", "pytest-recording", "pytest-xdist", "openai", "httpx2", "PyYAML"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import yaml

        libyaml = "yes" if getattr(yaml, "__with_libyaml__", False) else "no"
    except ImportError:
        libyaml = "no PyYAML"
    info = {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "libyaml": libyaml,
    }
    info.update(_versions())
    with contextlib.suppress(metadata.PackageNotFoundError):
        info["pytest-modelmigrate"] = metadata.version("pytest-modelmigrate")
    return info


def render(m: Measurements, targets: list[Target]) -> str:
    s = m.sizes
    models = len(MODELS)
    lines = [
        f"Suite: {s.small} × {models} small tests (1 call, every third streamed), "
        f"{s.sampled} × {models} sampled tests ({s.sampled_calls} calls each, half streamed), "
        f"{len(MODELS)} models; medians of {m.repeat} interleaved repeats.",
        "",
    ]
    if "a:test_small" in m.samples:
        lines += [
            "| mode | small: wall (s) | small: CPU (s) | small: in tests (s) "
            "| sampled: wall (s) | sampled: CPU (s) | sampled: in tests (s) | load (1 min) |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for mode in RUN_MODES:
            small, sampled = f"{mode}:test_small", f"{mode}:test_sampled"
            lines.append(
                f"| {MODE_LABELS[mode]} | {m.wall(small):.2f} | {m.cpu(small):.2f} | {m.test_time(small):.2f} "
                f"| {m.wall(sampled):.2f} | {m.cpu(sampled):.2f} | {m.test_time(sampled):.2f} "
                f"| {m.loads(small, sampled)} |"
            )
        lines.append("")
        per_call = s.sampled * models * s.sampled_calls
        lines.append(
            "Time in tests per replayed call on the sampled cassettes: "
            + ", ".join(
                f"{mode} {1000 * m.test_time(f'{mode}:test_sampled') / per_call:.2f} ms" for mode in RUN_MODES
            )
            + "."
        )
        lines.append("")
        lines.append(
            "(c) is the floor: the same real SDK client, served the recorded responses by an "
            "in-memory `httpx2.MockTransport` (no sockets, no vcrpy, no YAML; its responses are "
            "loaded from a pickle once per process, before the tests: in the wall time, not in the "
            "time in tests). (c0) skips the SDK too, so (c) − (c0) is the SDK's own cost."
        )
        lines.append("")
    other: list[str] = []
    if "collect:with" in m.samples:
        other.append(
            f"| collect-only, {s.collect} tests not using `model` "
            f"| without plugin {m.wall('collect:without'):.2f} s "
            f"| with plugin {m.wall('collect:with'):.2f} s |"
        )
    if "xdist:n2" in m.samples:
        other.append(
            f"| (a) small suite, {s.small * models} tests | no xdist {m.wall('xdist:n0'):.2f} s "
            f"| `-n 2` {m.wall('xdist:n2'):.2f} s |"
        )
    if "xdist-base:n2" in m.samples:
        other.append(
            f"| (b) small suite, {s.small * models} tests | no xdist {m.wall('xdist-base:n0'):.2f} s "
            f"| `-n 2` {m.wall('xdist-base:n2'):.2f} s |"
        )
        other.append(
            f"| two CPU-bound processes | one after the other {m.wall('xdist-cpu:serial'):.2f} s "
            f"| side by side {m.wall('xdist-cpu:parallel'):.2f} s |"
        )
    if other:
        lines += ["| measurement | baseline | variant |", "|---|---:|---:|", *other, ""]
    low, high = overhead_sizes(s)
    if f"overhead:a:{high}" in m.samples:
        lines += [
            "| no-HTTP items (test × model) | with the plugin: CPU (s) | plain pytest: CPU (s) | load (1 min) |",
            "|---:|---:|---:|---|",
        ]
        for n in (low, high):
            a, plain = f"overhead:a:{n}", f"overhead:plain:{n}"
            lines.append(f"| {n * models} | {m.cpu(a):.2f} | {m.cpu(plain):.2f} | {m.loads(a, plain)} |")
        lines += [""]
    if all(f"session_end:{n}" in m.samples for n in s.session_end):
        lines += [
            "| items (test × model), `--migration-json` | `pytest_sessionfinish` CPU (s) | per 1,000 items (s) | load (1 min) |",
            "|---:|---:|---:|---|",
        ]
        for n in s.session_end:
            cpu = m.session_end_cpu(n)
            lines.append(
                f"| {n * models} | {cpu:.3f} | {cpu / (n * models) * 1000:.3f} | {m.loads(f'session_end:{n}')} |"
            )
        lines += [""]
    if all(f"memory:{n}" in m.samples for n in s.memory):
        lines += [
            "| tests (`-n 2`) | controller peak RSS (MB) | without the plugin, (b) (MB) | `--migration-json` (KB) |",
            "|---:|---:|---:|---:|",
        ]
        for n in s.memory:
            key = f"memory:{n}"
            rss = statistics.median(r.stats["maxrss_kb"] for r in m.samples[key]) / 1024
            base_rss = statistics.median(r.stats["maxrss_kb"] for r in m.samples[f"memory-base:{n}"]) / 1024
            size = statistics.median(r.json_bytes for r in m.samples[key]) / 1024
            lines.append(f"| {n * models} | {rss:.1f} | {base_rss:.1f} | {size:.1f} |")
        growth, report = memory_growth(m)
        base, _ = memory_growth(m, "memory-base")
        lines += [
            "",
            f"Growth from {s.memory[0] * models} to {s.memory[-1] * models} tests: peak RSS "
            f"{growth / 1024:.0f} KB with the plugin, {base / 1024:.0f} KB without it (b), "
            f"report {report / 1024:.0f} KB.",
            "",
        ]
    lines += ["| target | measured | goal | | load (1 min) |", "|---|---:|---|---|---|"]
    for t in targets:
        value = f"{t.value:+.1%}" if t.goal.endswith("%") else f"{t.value:.2f}"
        verdict = "info" if t.info else "PASS" if t.passed else "MISS"
        lines.append(f"| {t.name} | {value} | {t.goal} | {verdict} | {t.load} |")
    lines += ["", "Machine: " + "; ".join(f"{k} {v}" for k, v in machine().items()), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="Tiny sizes and 1 repeat (about a minute)")
    parser.add_argument(
        "--repeat", type=int, default=None, help="Repeats of every measurement (default 3; 1 quick)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="Also write the Markdown fragment to this file"
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="Where to build the suites (default: temp dir)"
    )
    parser.add_argument(
        "--only",
        default="all",
        help="Comma-separated subset: replay, overhead, session_end, xdist, collect, memory (default: all)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    repeat = args.repeat or (1 if args.quick else 3)
    started = time.perf_counter()
    load_start = os.getloadavg()
    print("load average at start: " + " / ".join(f"{x:.2f}" for x in load_start))
    suite = build_suite(sizes, args.cache)
    m = measure(suite, repeat, include=args.only.split(","))
    load_end = os.getloadavg()
    text = render(m, evaluate(m)) + (
        "Load average (1 / 5 / 15 min): start "
        + " / ".join(f"{x:.2f}" for x in load_start)
        + ", end "
        + " / ".join(f"{x:.2f}" for x in load_end)
        + ".\n"
    )
    print()
    print(text)
    print(
        f"({time.perf_counter() - started:.0f}s in all; peak RSS of this driver "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB)"
    )
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
