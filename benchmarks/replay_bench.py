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
* (c) the same test bodies with a stub client that returns the same text with no HTTP: the floor.

Every mode runs on two modules: ``test_small`` (1 call per test, JSON or SSE) and
``test_sampled`` (``--sampled-calls`` calls per test, as sampled tests make). Then: collection
of a project that never uses ``model``, with and without the plugin; ``-n 2`` against no xdist;
the controller's peak RSS under ``-n 2`` for three suite sizes against the size of the
``--migration-json`` report. Repeats are interleaved, medians reported, targets are ratios.
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
SCHEMA_VERSION = 3  # bump when the generated suite changes, so the cache is rebuilt
MODES = ("a", "b", "b_default", "c")
MODE_LABELS = {
    "a": "(a) pytest-modelmigrate",
    "b": "(b) pytest-recording, match_on + body",
    "b_default": "(b') pytest-recording, default match_on",
    "c": "(c) no HTTP (stub client)",
}
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

    @property
    def key(self) -> str:
        text = json.dumps([SCHEMA_VERSION, asdict(self), MODELS, _versions()], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


FULL = Sizes()
QUICK = Sizes(small=10, recorded=10, sampled=2, sampled_calls=50, memory=(5, 10, 20), collect=500)
TINY = Sizes(small=2, recorded=2, sampled=1, sampled_calls=3, memory=(1, 2, 3), collect=20)


# -- the generated suite -------------------------------------------------------------------------

APP = '''"""The application under test: one real openai SDK call per ask()."""

import openai

URL = {url!r}
SYSTEM = {system!r}
CLIENT = None  # the (c) conftest installs a stub here


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

_STATS = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0, "test_seconds": 0.0}


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

CONFTEST_C = """
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


def build_suite(sizes: Sizes, cache: Path | None = None, *, log: Callable[[str], None] = print) -> Suite:
    """Generate (or reuse) the suite for ``sizes``; records the cassettes once with the emulator."""
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
        for mode in MODES:
            for n in small_sizes:
                _derive(pool, root / f"{mode}-{n}", mode, n, sizes)
        _write_collect_project(root / "collect", sizes.collect)
    for mode in MODES:
        for n in small_sizes:
            suite.dirs[(mode, n)] = root / f"{mode}-{n}"
    suite.collect_dir = root / "collect"
    if not (root / "READY").exists():
        _warm_up(suite)
        (root / "READY").write_text("ok\n")
    return suite


def _warm_up(suite: Suite) -> None:
    """Fill the byte-code cache (``PYTHONPYCACHEPREFIX``) for every project, as a CI cache would."""
    for (mode, _), directory in suite.dirs.items():
        args, env = mode_args(mode, "test_small")
        run_pytest(directory, [*args, "test_sampled.py", "--collect-only"], env)
    run_collect(suite, True)


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


def _derive(pool: Path, target: Path, mode: str, n: int, sizes: Sizes) -> None:
    """A project for ``mode`` with ``n`` small tests; its cassettes are symlinks into the pool.

    Small test ``i`` sends the prompt of recorded test ``i % sizes.recorded``, so its cassette is
    a link to that recording: every (test, model) still has a cassette file of its own.
    """
    _write(target / "pytest.ini", "[pytest]\n")
    (target / "bench_app.py").symlink_to(pool / "bench_app.py")
    extra = {"a": "", "b": CONFTEST_B, "b_default": CONFTEST_B, "c": CONFTEST_C}[mode]
    _write(target / "conftest.py", STATS_HOOKS + extra)
    counts = {"test_small": n, "test_sampled": sizes.sampled}
    for module, count in counts.items():
        _write(target / f"{module}.py", _module_source(mode, module, count, sizes))
        if mode == "c":
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

    @property
    def passed(self) -> int:
        return int(self.stats.get("passed", 0))

    @property
    def test_seconds(self) -> float:
        return float(self.stats.get("test_seconds", 0.0))


def run_pytest(directory: Path, args: Sequence[str], env: dict[str, str] | None = None) -> RunResult:
    """``python -m pytest -q -p no:cacheprovider ARGS`` in ``directory``; timed around the process."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        stats_path = Path(tmp) / "stats.json"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
        # Like a CI machine: byte-code (and pytest's rewritten test modules) cached between runs,
        # but under the suite's folder, never in the repository or site-packages.
        full_env.pop("PYTHONDONTWRITEBYTECODE", None)
        full_env["PYTHONPYCACHEPREFIX"] = str(directory.parent / "pycache")
        full_env["BENCH_STATS"] = str(stats_path)
        full_env.update(env or {})
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
        started = time.perf_counter()
        proc = subprocess.run(
            command, cwd=directory, env=full_env, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - started
        stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    return RunResult(wall=wall, returncode=proc.returncode, stats=stats, output=proc.stdout + proc.stderr)


def mode_args(mode: str, module: str) -> tuple[list[str], dict[str, str]]:
    """Command-line arguments and environment for one mode on one module."""
    target = f"{module}.py"
    if mode == "a":
        return [target, f"--models={','.join(MODELS)}"], {}
    if mode == "b":
        return [target, "-p", "no:modelmigrate", "--record-mode=none"], {"BENCH_MATCH_ON": "body"}
    if mode == "b_default":
        return [target, "-p", "no:modelmigrate", "--record-mode=none"], {"BENCH_MATCH_ON": "default"}
    if mode == "c":
        return [target, "-p", "no:modelmigrate", "-p", "no:recording"], {}
    raise ValueError(mode)


def run_mode(suite: Suite, mode: str, module: str, extra: Sequence[str] = ()) -> RunResult:
    args, env = mode_args(mode, module)
    return run_pytest(suite.project(mode), [*args, *extra], env)


def run_collect(suite: Suite, with_plugin: bool) -> RunResult:
    assert suite.collect_dir is not None
    args = ["--collect-only"] + ([] if with_plugin else ["-p", "no:modelmigrate"])
    return run_pytest(suite.collect_dir, args)


def run_memory(suite: Suite, n: int) -> RunResult:
    """(a) on ``n`` small tests x 3 models under ``-n 2``; peak RSS of the controller, JSON size."""
    with tempfile.TemporaryDirectory(prefix="bench-json-") as tmp:
        out = Path(tmp) / "run.json"
        args = ["test_small.py", f"--models={','.join(MODELS)}", "-n", "2", f"--migration-json={out}"]
        result = run_pytest(suite.project("a", n), args)
        result.json_bytes = out.stat().st_size if out.exists() else 0
    return result


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

    def ratio(self, num: str, den: str, *, test_time: bool = False) -> float:
        """Median over repeats of the per-repeat ratio (each pair measured side by side)."""
        pick: Callable[[RunResult], float] = (lambda r: r.test_seconds) if test_time else (lambda r: r.wall)
        pairs = zip(self.samples[num], self.samples[den], strict=False)
        return statistics.median(pick(x) / pick(y) for x, y in pairs)


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
            for mode in MODES:
                jobs.append((f"{mode}:{module}", _bind_mode(suite, mode, module), count * len(MODELS)))
    if everything or "xdist" in parts:
        items = sizes.small * len(MODELS)
        jobs.append(("xdist:n0", _bind_mode(suite, "a", "test_small"), items))
        jobs.append(("xdist:n2", _bind_mode(suite, "a", "test_small", ("-n", "2")), items))
    if everything or "collect" in parts:
        jobs.append(("collect:without", lambda: run_collect(suite, False), None))
        jobs.append(("collect:with", lambda: run_collect(suite, True), None))
    if everything or "memory" in parts:
        for n in sizes.memory:
            jobs.append((f"memory:{n}", _bind_memory(suite, n), n * len(MODELS)))
    for rep in range(repeat):
        shift = rep % len(jobs)
        for key, job, expected in jobs[shift:] + jobs[:shift]:
            result = job()
            m.add(key, result, expected)
            log(
                f"  [{rep + 1}/{repeat}] {key:<24} {result.wall:7.2f}s wall, "
                f"{result.test_seconds:7.2f}s in tests, peak RSS {result.stats.get('maxrss_kb', 0) / 1024:.1f} MB"
                + (f", report {result.json_bytes / 1024:.0f} KB" if result.json_bytes else "")
            )
    return m


def _bind_mode(suite: Suite, mode: str, module: str, extra: Sequence[str] = ()) -> Callable[[], RunResult]:
    return lambda: run_mode(suite, mode, module, extra)


def _bind_memory(suite: Suite, n: int) -> Callable[[], RunResult]:
    return lambda: run_memory(suite, n)


# -- targets and the report --------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    value: float
    goal: str
    passed: bool


def evaluate(m: Measurements) -> list[Target]:
    targets: list[Target] = []

    def add(name: str, value: float, goal: str, ok: bool) -> None:
        targets.append(Target(name, value, goal, ok))

    if "a:test_small" in m.samples:
        r = m.ratio("a:test_small", "b:test_small")
        add("(a)/(b) wall, small cassettes (1 call)", r, "≤ 1.0", r <= 1.0)
        r = m.ratio("b:test_sampled", "a:test_sampled")
        add(f"(b)/(a) wall, {m.sizes.sampled_calls}-interaction cassettes", r, "≥ 5", r >= 5)
        r = m.ratio("b:test_sampled", "a:test_sampled", test_time=True)
        add(f"(b)/(a) time in tests, {m.sizes.sampled_calls}-interaction cassettes", r, "≥ 5", r >= 5)
        r = m.ratio("a:test_small", "c:test_small")
        add("(a)/(c) wall, small cassettes", r, "≤ 1.5", r <= 1.5)
        r = m.ratio("a:test_sampled", "c:test_sampled")
        add(f"(a)/(c) wall, {m.sizes.sampled_calls}-interaction cassettes", r, "≤ 1.5", r <= 1.5)
    if "collect:with" in m.samples:
        r = m.ratio("collect:with", "collect:without") - 1.0
        add(f"collection of {m.sizes.collect} tests: extra time with the plugin", r, "< 10%", r < 0.10)
    if "xdist:n2" in m.samples:
        r = m.ratio("xdist:n0", "xdist:n2")
        add(f"speed-up of -n 2 on {m.sizes.small * len(MODELS)} tests (wall)", r, "≥ 1.6×", r >= 1.6)
    if all(f"memory:{n}" in m.samples for n in m.sizes.memory):
        growth, report = memory_growth(m)
        ok = growth <= max(report, 1.0) * 10  # Python objects take a few times their JSON text
        add(
            "controller peak-RSS growth / report growth (smallest → largest)",
            growth / max(report, 1.0),
            "≤ 10",
            ok,
        )
    return targets


def memory_growth(m: Measurements) -> tuple[float, float]:
    """(RSS growth, JSON growth) in bytes between the smallest and the largest memory run."""
    low, high = f"memory:{m.sizes.memory[0]}", f"memory:{m.sizes.memory[-1]}"
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
            "| mode | small: wall (s) | small: in tests (s) | sampled: wall (s) | sampled: in tests (s) |",
            "|---|---:|---:|---:|---:|",
        ]
        for mode in MODES:
            small, sampled = f"{mode}:test_small", f"{mode}:test_sampled"
            lines.append(
                f"| {MODE_LABELS[mode]} | {m.wall(small):.2f} | {m.test_time(small):.2f} "
                f"| {m.wall(sampled):.2f} | {m.test_time(sampled):.2f} |"
            )
        lines.append("")
        per_call = s.sampled * models * s.sampled_calls
        lines.append(
            "Time in tests per replayed call on the sampled cassettes: "
            + ", ".join(
                f"{mode} {1000 * m.test_time(f'{mode}:test_sampled') / per_call:.2f} ms" for mode in MODES
            )
            + "."
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
    if other:
        lines += ["| measurement | baseline | variant |", "|---|---:|---:|", *other, ""]
    if all(f"memory:{n}" in m.samples for n in s.memory):
        lines += [
            "| tests (`-n 2`) | controller peak RSS (MB) | `--migration-json` (KB) |",
            "|---:|---:|---:|",
        ]
        for n in s.memory:
            key = f"memory:{n}"
            rss = statistics.median(r.stats["maxrss_kb"] for r in m.samples[key]) / 1024
            size = statistics.median(r.json_bytes for r in m.samples[key]) / 1024
            lines.append(f"| {n * models} | {rss:.1f} | {size:.1f} |")
        growth, report = memory_growth(m)
        lines += [
            "",
            f"Growth from {s.memory[0] * models} to {s.memory[-1] * models} tests: peak RSS "
            f"{growth / 1024:.0f} KB, report {report / 1024:.0f} KB.",
            "",
        ]
    lines += ["| target | measured | goal | |", "|---|---:|---|---|"]
    for t in targets:
        value = f"{t.value:+.1%}" if t.goal.endswith("%") else f"{t.value:.2f}"
        lines.append(f"| {t.name} | {value} | {t.goal} | {'PASS' if t.passed else 'MISS'} |")
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
        help="Comma-separated subset: replay, xdist, collect, memory (default: all)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    repeat = args.repeat or (1 if args.quick else 3)
    started = time.perf_counter()
    suite = build_suite(sizes, args.cache)
    m = measure(suite, repeat, include=args.only.split(","))
    text = render(m, evaluate(m))
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
