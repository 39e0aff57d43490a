"""Recording speed of pytest-modelmigrate: serial, pytest-xdist ``-n N``, ``--record-concurrency=C``.

    python benchmarks/record_bench.py [--tests T] [--samples S] [--repeats R] [--latency-ms MS]
                                      [--workers N] [--concurrency C]

Builds, in a temp dir, a project of ``T`` test functions, each marked ``@pytest.mark.samples(S)``
and making one real ``openai`` SDK call per sample through the plugin's ``modelmigrate_emulator``
fixture, for 2 models (``emu-a``, ``emu-b``), against a script that gives every model
``latency_ms: MS`` (ini ``modelmigrate_emulator_time_scale = 1``, so the emulator really sleeps).
That is ``T * S * 2`` calls per run. Each run records the project from empty, in a fresh copy
with a fixed port of its own (ini ``modelmigrate_emulator_port``), as a
``python -m pytest --record-mode=once -p no:randomly -q`` subprocess:

* (a) serially: one process, one emulator on the fixed port;
* (b) with ``-n N``: each xdist worker starts its own emulator on a free port, and its requests
  are recorded as if sent to the fixed port;
* (c) with ``--record-concurrency=C``: one process, the new samples of each (test, model) drawn
  at once in up to ``C`` threads, then checked one after the other from what was drawn;
* (d) with both, ``-n N --record-concurrency=C``.

After every run the cassettes are checked: one per (test, model), ``S`` interactions each, every
request to ``127.0.0.1:<fixed port>``, its metadata listing ``S`` episodes of 1 interaction (one
per sample); after every (b), (c) and (d) run, nothing may listen on the fixed port and a
``--block-network`` replay without ``-n`` must pass (its wall and CPU are reported too: about
what the serial pass that follows the draws of (c) costs). Any failure stops the benchmark with
the run's output (its project is left on disk).

Wall time is measured around the subprocess, CPU time as the change of
``resource.getrusage(RUSAGE_CHILDREN)`` (user + sys) across it: the pytest process and every
process it waited for (the xdist workers, their emulator threads). Repeats are interleaved
(a, b, c, d, a, b, ...), medians are reported, and the ratios serial / other mode are medians of
per-repeat ratios. The theoretical floor of a mode is the emulator's sleeps on its critical path:
``ceil(items / processes) × ceil(S / threads) × latency``, which is calls × latency / parallelism
when the divisions are exact (serial: calls × latency).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import yaml

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

MODELS = ("emu-a", "emu-b")
MODULE = "test_calls"
MODES = ("serial", "parallel", "concurrent", "both")
LETTERS = {"serial": "a", "parallel": "b", "concurrent": "c", "both": "d"}
BASE_ARGS = ("--record-mode=once", "-p", "no:randomly", "-q")
LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
METADATA_KEY = "modelmigrate"  # where the plugin keeps a cassette's episodes (and outcomes)


@dataclass(frozen=True)
class Config:
    tests: int = 20
    samples: int = 10
    repeats: int = 2
    latency_ms: float = 200.0
    workers: int = 4
    concurrency: int = 10

    @property
    def items(self) -> int:
        """(test, model) items: what pytest counts as passed."""
        return self.tests * len(MODELS)

    @property
    def calls(self) -> int:
        return self.items * self.samples

    @property
    def floor(self) -> float:
        """Seconds the emulator sleeps in one run: the serial floor."""
        return self.calls * self.latency_ms / 1000.0

    def processes(self, mode: str) -> int:
        """xdist workers of the mode (1: no ``-n``)."""
        return self.workers if mode in ("parallel", "both") else 1

    def threads(self, mode: str) -> int:
        """Samples of one (test, model) drawn at once (1: one after the other)."""
        return min(self.concurrency, self.samples) if mode in ("concurrent", "both") else 1

    def mode_floor(self, mode: str) -> float:
        """The emulator's sleeps on the critical path of one run of ``mode``, in seconds."""
        rounds = math.ceil(self.items / self.processes(mode)) * math.ceil(self.samples / self.threads(mode))
        return rounds * self.latency_ms / 1000.0

    def label(self, mode: str) -> str:
        flags = []
        if mode in ("parallel", "both"):
            flags.append(f"-n {self.workers}")
        if mode in ("concurrent", "both"):
            flags.append(f"--record-concurrency={self.concurrency}")
        return f"({LETTERS[mode]}) " + (f"`{' '.join(flags)}`" if flags else "serial")

    def args(self, mode: str) -> list[str]:
        args = [*BASE_ARGS]
        if mode in ("parallel", "both"):
            args += ["-n", str(self.workers)]
        if mode in ("concurrent", "both"):
            args.append(f"--record-concurrency={self.concurrency}")
        return args


class BenchmarkError(RuntimeError):
    """A run failed, or recorded something it should not have: the benchmark stops."""


# -- the generated project -----------------------------------------------------------------------

CONFTEST = '''"""The client every test uses: the real openai SDK, pointed at the plugin's emulator."""

import openai
import pytest


@pytest.fixture
def client(modelmigrate_emulator):
    return openai.OpenAI(base_url=modelmigrate_emulator + "/v1", api_key="x", max_retries=0)
'''


def _ini(port: int) -> str:
    return (
        "[pytest]\n"
        f"modelmigrate_models = {','.join(MODELS)}\n"
        "modelmigrate_emulator_script = script.yaml\n"
        f"modelmigrate_emulator_port = {port}\n"
        "modelmigrate_emulator_time_scale = 1\n"
    )


def _script(latency_ms: float) -> str:
    lines = [f"latency_ms: {latency_ms:g}", "models:"]
    lines += [f'  {name}: {{default: "yes"}}' for name in MODELS]
    return "\n".join(lines) + "\n"


def _module(tests: int, samples: int) -> str:
    lines = ["import pytest", ""]
    for i in range(tests):
        lines += [
            "",
            f"@pytest.mark.samples({samples})",
            f"def test_{i}(model, client):",
            "    r = client.chat.completions.create(",
            f'        model=model, messages=[{{"role": "user", "content": "question {i}"}}]',
            "    )",
            "    assert r.choices[0].message.content",
            "",
        ]
    return "\n".join(lines)


def build_template(target: Path, cfg: Config) -> Path:
    """The project without its ini (each copy gets its own port) and without cassettes."""
    target.mkdir(parents=True)
    (target / "script.yaml").write_text(_script(cfg.latency_ms), encoding="utf-8")
    (target / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (target / f"{MODULE}.py").write_text(_module(cfg.tests, cfg.samples), encoding="utf-8")
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def listens(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Project:
    path: Path
    port: int


def fresh_copy(template: Path, target: Path) -> Project:
    """A copy of the template with a free port of its own as the fixed emulator port."""
    shutil.copytree(template, target)
    port = free_port()
    (target / "pytest.ini").write_text(_ini(port), encoding="utf-8")
    return Project(target, port)


# -- running pytest ------------------------------------------------------------------------------


@dataclass
class RunResult:
    wall: float
    user: float
    sys: float
    returncode: int
    output: str
    counts: dict[str, int] = field(default_factory=dict)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)  # load average when the run ended

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    @property
    def passed(self) -> int:
        return self.counts.get("passed", 0)


_SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|deselected)\b")


def summary_counts(output: str) -> dict[str, int]:
    """The counts of pytest's last summary line (``12 passed, 1 failed in 3.2s``)."""
    for line in reversed(output.splitlines()):
        if re.search(r" in [\d.]+s\b", line) and (found := _SUMMARY.findall(line)):
            return {("errors" if kind == "error" else kind): int(n) for n, kind in found}
    return {}


# Byte-code (and pytest's rewritten plugin modules) cached between runs and invocations, as on a
# CI machine, outside the repository: without it every process, each xdist worker included,
# rewrites the plugins again (this sandbox sets PYTHONDONTWRITEBYTECODE=1).
PYCACHE = Path(tempfile.gettempdir()) / "modelmigrate-record-bench" / "pycache"


def _environment(pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def run_pytest(directory: Path, args: Sequence[str], env: dict[str, str]) -> RunResult:
    """``python -m pytest ARGS`` in ``directory``: wall around it, CPU of it and its children.

    The driver has no other child running meanwhile, so the change of ``RUSAGE_CHILDREN`` is
    this process and everything it waited for (xdist's workers are waited for at session end).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = proc.stdout + proc.stderr
    return RunResult(
        wall=wall,
        user=after.ru_utime - before.ru_utime,
        sys=after.ru_stime - before.ru_stime,
        returncode=proc.returncode,
        output=output,
        counts=summary_counts(output),
        load=os.getloadavg(),
    )


# -- checks --------------------------------------------------------------------------------------


def check_cassettes(project: Project, cfg: Config, *, episodes: bool = True) -> int:
    """Every (test, model) has its cassette, of ``samples`` interactions, all to the fixed port,
    and (``episodes``) its metadata lists ``samples`` episodes of 1 interaction, one per sample.

    Returns the number of interactions checked; raises ``BenchmarkError`` listing what is wrong.
    """
    base = project.path / "cassettes" / MODULE
    expected = {base / name / f"test_{i}.yaml" for name in MODELS for i in range(cfg.tests)}
    found = set((project.path / "cassettes").rglob("*.yaml"))
    problems: list[str] = []
    if missing := sorted(expected - found):
        problems.append(f"{len(missing)} cassette(s) missing, e.g. {missing[0]}")
    if extra := sorted(found - expected):
        problems.append(f"{len(extra)} unexpected cassette(s), e.g. {extra[0]}")
    fixed = f"127.0.0.1:{project.port}"
    checked = 0
    for path in sorted(expected & found):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=LOADER)
        interactions = (data or {}).get("interactions") or []
        if len(interactions) != cfg.samples:
            problems.append(f"{path}: {len(interactions)} interaction(s), expected {cfg.samples}")
        hosts = {urlsplit(str(i.get("request", {}).get("uri", ""))).netloc for i in interactions}
        if hosts - {fixed}:
            problems.append(f"{path}: requests to {sorted(hosts - {fixed})}, expected only {fixed}")
        if episodes:
            meta = ((data or {}).get("metadata") or {}).get(METADATA_KEY) or {}
            listed = meta.get("episodes") if isinstance(meta, dict) else None
            if listed != [1] * cfg.samples:
                problems.append(
                    f"{path}: metadata lists episodes {listed!r}, expected {cfg.samples} of 1 interaction"
                )
        checked += len(interactions)
    if problems:
        raise BenchmarkError(
            f"the cassettes in {project.path} are not what was recorded against the fixed port "
            f"{project.port}:\n  " + "\n  ".join(problems[:20])
        )
    return checked


def check_replay(project: Project, cfg: Config, env: dict[str, str]) -> RunResult:
    """No emulator left on the fixed port, and a ``--block-network`` replay (no ``-n``) passes."""
    if listens(project.port):
        raise BenchmarkError(f"something still listens on the fixed port {project.port} after the run")
    result = run_pytest(project.path, ["--block-network", "-p", "no:randomly", "-q"], env)
    if result.returncode != 0 or result.counts != {"passed": cfg.items}:
        raise BenchmarkError(
            f"--block-network replay in {project.path} did not pass: exit {result.returncode}, "
            f"{result.counts} (expected {cfg.items} passed):\n{result.output[-4000:]}"
        )
    return result


def check_run(mode: str, result: RunResult, project: Project, cfg: Config) -> None:
    if result.returncode != 0 or result.counts != {"passed": cfg.items}:
        raise BenchmarkError(
            f"{cfg.label(mode)} recording in {project.path} failed: exit {result.returncode}, "
            f"{result.counts} (expected {cfg.items} passed):\n{result.output[-4000:]}"
        )


# -- measuring -----------------------------------------------------------------------------------


@dataclass
class Measurements:
    cfg: Config
    samples: dict[str, list[RunResult]] = field(default_factory=dict)
    load_start: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    interactions_checked: int = 0
    replays_checked: int = 0
    replays: dict[str, list[RunResult]] = field(default_factory=dict)  # the offline replay checks

    def median(self, mode: str, pick: Callable[[RunResult], float]) -> float:
        return statistics.median(pick(r) for r in self.samples[mode])

    def ratio(self, num: str, den: str, pick: Callable[[RunResult], float]) -> float:
        """Median over repeats of the per-repeat ratio (each pair measured side by side)."""
        pairs = zip(self.samples[num], self.samples[den], strict=True)
        return statistics.median(pick(x) / max(pick(y), 1e-9) for x, y in pairs)


def measure(
    cfg: Config,
    root: Path,
    *,
    log: Callable[[str], None] = print,
    warm: bool = True,
    pycache: Path = PYCACHE,
) -> Measurements:
    """Record the project ``cfg.repeats`` times per mode, interleaved, each in a fresh copy.

    ``warm`` first records one test per mode, untimed, so that the first timed runs find the
    byte-code cache (``pycache``) as full as the later ones.
    Raises ``BenchmarkError`` if a run fails or its checks do; that run's copy is left in ``root``.
    """
    m = Measurements(cfg=cfg, load_start=os.getloadavg())
    env = _environment(pycache)
    template = build_template(root / "template", cfg)
    if warm:
        for mode in MODES:
            project = fresh_copy(template, root / f"warm-{mode}")
            result = run_pytest(project.path, [*cfg.args(mode), "-k", "test_0"], env)
            if result.returncode != 0:
                raise BenchmarkError(f"warm-up {cfg.label(mode)} failed:\n{result.output[-4000:]}")
            shutil.rmtree(project.path)
    for rep in range(cfg.repeats):
        for mode in MODES:
            project = fresh_copy(template, root / f"run-{rep + 1}-{mode}")
            result = run_pytest(project.path, cfg.args(mode), env)
            check_run(mode, result, project, cfg)
            m.interactions_checked += check_cassettes(project, cfg)
            if mode != "serial":
                m.replays.setdefault(mode, []).append(check_replay(project, cfg, env))
                m.replays_checked += 1
            m.samples.setdefault(mode, []).append(result)
            log(
                f"  [{rep + 1}/{cfg.repeats}] {cfg.label(mode):<36} {result.wall:7.2f}s wall, "
                f"{result.cpu:7.2f}s CPU (user {result.user:.2f}, sys {result.sys:.2f}), "
                f"load {' '.join(f'{x:.2f}' for x in result.load)}"
            )
            shutil.rmtree(project.path)
    m.load_end = os.getloadavg()
    return m


# -- the report ----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
    }
    for name in ("pytest", "pytest-xdist", "vcrpy", "openai", "pytest-modelmigrate"):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = "missing"
    return info


def _load(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{x:.2f}" for x in values)


def render(m: Measurements) -> str:
    cfg = m.cfg
    a = cfg.label("serial")

    def wall(r: RunResult) -> float:
        return r.wall

    def cpu(r: RunResult) -> float:
        return r.cpu

    lines = [
        f"Project: {cfg.tests} tests × {len(MODELS)} models × {cfg.samples} samples = {cfg.calls} calls "
        f"per run, emulator latency {cfg.latency_ms:g} ms (time scale 1), recorded from empty with "
        f"`pytest {' '.join(BASE_ARGS)}`; medians of {cfg.repeats} interleaved repeats.",
        "",
        "| run | wall (s) | CPU user+sys (s) | user (s) | sys (s) | CPU / wall | floor (s) "
        "| wall / floor | load 1 min at end |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in MODES:
        w, c, floor = m.median(mode, wall), m.median(mode, cpu), cfg.mode_floor(mode)
        lines.append(
            f"| {cfg.label(mode)} | {w:.2f} | {c:.2f} | {m.median(mode, lambda r: r.user):.2f} "
            f"| {m.median(mode, lambda r: r.sys):.2f} | {m.median(mode, lambda r: r.cpu / r.wall):.2f} "
            f"| {floor:.2f} | {w / floor if floor > 0 else math.nan:.2f} "
            f"| {m.median(mode, lambda r: r.load[0]):.2f} |"
        )
    lines += ["", "| ratio (median of per-repeat ratios) | wall | CPU |", "|---|---:|---:|"]
    for mode in MODES[1:]:
        lines.append(
            f"| {a} / {cfg.label(mode)} | {m.ratio('serial', mode, wall):.2f} "
            f"| {m.ratio('serial', mode, cpu):.2f} |"
        )
    if m.replays:
        lines += [
            "",
            "| `--block-network` replay of the run's cassettes, no -n (checked, untimed above) "
            "| wall (s) | CPU user+sys (s) |",
            "|---|---:|---:|",
        ]
        for mode, results in m.replays.items():
            lines.append(
                f"| {cfg.label(mode)} | {statistics.median(r.wall for r in results):.2f} "
                f"| {statistics.median(r.cpu for r in results):.2f} |"
            )
    lines += ["", "Theoretical floors (the emulator's sleeps on a run's critical path):"]
    for mode in MODES:
        processes, threads = cfg.processes(mode), cfg.threads(mode)
        lines.append(
            f"* {cfg.label(mode)}: ceil({cfg.items} items / {processes} process(es)) × "
            f"ceil({cfg.samples} samples / {threads} thread(s)) × {cfg.latency_ms:g} ms = "
            f"{cfg.mode_floor(mode):.2f} s (calls × latency / {processes * threads} = "
            f"{cfg.floor / (processes * threads):.2f} s)"
        )
    lines += [
        "",
        f"Checks: {m.interactions_checked} recorded interactions, every one to the fixed port, "
        f"every cassette's metadata listing {cfg.samples} episodes of 1 interaction; "
        f"{m.replays_checked} `--block-network` replay(s) without -n of the cassettes of "
        f"{', '.join(LETTERS[mode] for mode in MODES[1:])} passed.",
        f"Load average (1 / 5 / 15 min): start {_load(m.load_start)}, end {_load(m.load_end)}; "
        "after each run: "
        + "; ".join(
            f"{cfg.label(mode)} {', '.join(f'{r.load[0]:.2f}' for r in m.samples[mode])}" for mode in MODES
        )
        + ".",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in machine().items()),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tests", type=int, default=20, help="Test functions (default 20)")
    parser.add_argument("--samples", type=int, default=10, help="Samples per test and model (default 10)")
    parser.add_argument("--repeats", type=int, default=2, help="Repeats of each run, interleaved (default 2)")
    parser.add_argument(
        "--latency-ms", type=float, default=200.0, help="Emulator latency of every call (default 200)"
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="xdist workers of the -n runs, (b) and (d) (default 4)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=10,
        help="--record-concurrency of the in-test concurrent runs, (c) and (d) (default 10)",
    )
    args = parser.parse_args(argv)
    for name in ("tests", "samples", "repeats", "workers", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    cfg = Config(args.tests, args.samples, args.repeats, args.latency_ms, args.workers, args.concurrency)
    print(f"load average at start: {_load(os.getloadavg())}")
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="modelmigrate-record-bench-"))
    try:
        m = measure(cfg, root)
    except BenchmarkError as exc:
        print(f"\nBENCHMARK FAILED (projects left in {root}):\n{exc}", file=sys.stderr)
        return 1
    shutil.rmtree(root, ignore_errors=True)
    print()
    print(render(m))
    print(f"({time.perf_counter() - started:.0f}s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
