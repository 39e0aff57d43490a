"""The replay benchmark at its smallest size, so it cannot rot. No timing assertions."""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from conftest import REPO, load_benchmark

from pytest_modelmigrate.cassettes import ParseCache

if TYPE_CHECKING:
    pass


rb = load_benchmark("replay_bench")
recb = load_benchmark("record_bench")


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return rb.build_suite(rb.TINY, tmp_path_factory.mktemp("bench"), log=lambda _: None, warm=False)


def _nothing_listens(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) != 0


def test_suite_layout(suite: Any) -> None:
    sizes = rb.TINY
    pool = suite.pool
    for name in rb.MODELS:
        assert len(list((pool / "cassettes" / "test_small" / name).glob("*.yaml"))) == sizes.recorded
        assert len(list((pool / "cassettes" / "test_sampled" / name).glob("*.yaml"))) == sizes.sampled
    # (b) reads the very same files where pytest-recording looks for them
    b_dir = suite.project("b") / "cassettes" / "test_small"
    linked = b_dir / f"test_t0000[{rb.MODELS[0]}].yaml"
    assert (
        linked.resolve() == (pool / "cassettes" / "test_small" / rb.MODELS[0] / "test_t0000.yaml").resolve()
    )
    # every mode runs the same test bodies
    bodies = {
        mode: [
            line
            for line in (suite.project(mode) / "test_sampled.py").read_text().splitlines()
            if "run_" in line
        ]
        for mode in rb.MODES
    }
    assert len({tuple(b) for b in bodies.values()}) == 1


@pytest.mark.parametrize("mode", ["a", "b"])  # measure() below runs every mode once more
def test_modes_replay_offline(suite: Any, mode: str) -> None:
    url = suite.url
    assert _nothing_listens(url), "the emulator must be stopped: replay may not reach the network"
    extra = ["--block-network"] if mode != "c" else []
    sizes = rb.TINY
    for module, count in (("test_small", sizes.small), ("test_sampled", sizes.sampled)):
        result = rb.run_mode(suite, mode, module, extra)
        assert result.returncode == 0, result.output[-3000:]
        assert result.passed == count * len(rb.MODELS), result.stats


# Loaded with ``-p`` before the floor's conftest: any socket connection fails the test that makes it.
NO_SOCKETS_PLUGIN = """
import socket


def _refuse(self, *args, **kwargs):
    raise RuntimeError(f"the floor tried to open a connection to {args!r}")


socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
"""


def test_sdk_floor_offline_through_the_sdk(suite: Any, tmp_path: Path) -> None:
    """(c): every test passes, with no socket, every call answered by the in-memory transport."""
    sizes = rb.TINY
    items = len(rb.MODELS)
    calls = {"test_small": sizes.small, "test_sampled": sizes.sampled * sizes.sampled_calls}
    # one recorded response per call the project's tests make: the floor file was written
    floor = rb.read_floor(suite.project("c"))
    assert sum(len(responses) for responses in floor.values()) == sum(calls.values()) * items
    assert {model for model, _ in floor} == set(rb.MODELS)
    statuses = {status for responses in floor.values() for status, _, _ in responses}
    assert statuses == {200}
    assert _nothing_listens(suite.url), "the emulator must be stopped"
    (tmp_path / "bench_no_sockets.py").write_text(NO_SOCKETS_PLUGIN)
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH", "")) if p)
    for module, count in (("test_small", sizes.small), ("test_sampled", sizes.sampled)):
        args, env = rb.mode_args("c", module)
        assert "no:recording" in args
        assert "no:modelmigrate" in args
        result = rb.run_pytest(
            suite.project("c"), [*args, "-p", "bench_no_sockets"], {**env, "PYTHONPATH": path}
        )
        assert result.returncode == 0, result.output[-3000:]
        assert result.passed == count * items, result.stats
        # went through the real SDK: the transport's handler answered every call
        assert result.stats["mock_calls"] == calls[module] * items, result.stats


def test_no_sockets_plugin_bites(tmp_path: Path) -> None:
    """The guard above would catch a connection (a test that opens one fails under it)."""
    (tmp_path / "bench_no_sockets.py").write_text(NO_SOCKETS_PLUGIN)
    (tmp_path / "test_connect.py").write_text(
        "import socket\n\n\ndef test_connect():\n"
        "    socket.create_connection(('127.0.0.1', 9), timeout=0.5)\n"
    )
    result = rb.run_pytest(
        tmp_path, ["-p", "bench_no_sockets", "test_connect.py"], {"PYTHONPATH": str(tmp_path)}
    )
    assert result.returncode == 1, result.output[-3000:]
    assert "the floor tried to open a connection" in result.output


def test_measure_and_report(suite: Any) -> None:
    sizes = rb.TINY
    m = rb.measure(suite, 1, log=lambda _: None)
    items = len(rb.MODELS)
    expected = {
        **{f"{mode}:test_small": sizes.small * items for mode in rb.RUN_MODES},
        **{f"{mode}:test_sampled": sizes.sampled * items for mode in rb.RUN_MODES},
        "xdist:n0": sizes.small * items,
        "xdist:n2": sizes.small * items,
        "xdist-base:n0": sizes.small * items,
        "xdist-base:n2": sizes.small * items,
        **{f"memory:{n}": n * items for n in sizes.memory},
        **{f"memory-base:{n}": n * items for n in sizes.memory},
        **{f"overhead:{w}:{n}": n * items for w in ("a", "plain") for n in rb.overhead_sizes(sizes)},
        **{f"session_end:{n}": n * items for n in sizes.session_end},
    }
    for key, count in expected.items():
        assert [r.passed for r in m.samples[key]] == [count], key
    for key in ("collect:with", "collect:without", "xdist-cpu:serial", "xdist-cpu:parallel"):
        assert m.samples[key][0].returncode == 0
    sizes_json = [m.samples[f"memory:{n}"][0].json_bytes for n in sizes.memory]
    assert sizes_json == sorted(sizes_json)
    assert sizes_json[0] > 0
    assert all(m.samples[f"memory:{n}"][0].stats["maxrss_kb"] > 0 for n in sizes.memory)
    assert m.samples["c:test_sampled"][0].stats["mock_calls"] == sizes.sampled * sizes.sampled_calls * items
    assert "mock_calls" not in m.samples["c_stub:test_sampled"][0].stats
    assert all(r.cpu > 0 and r.load >= 0 for runs in m.samples.values() for r in runs)
    # (a) kept its parsed cassettes between runs, one per cassette past the threshold (the
    # sampled ones, not the one-call ones); (a, cold) kept none
    project = suite.project("a")
    parsed = list((rb.warm_cache(project) / "d" / "modelmigrate-cassettes").glob("*.json"))
    sizes_on_disk = [p.stat().st_size for p in (project / "cassettes").rglob("*.yaml")]
    assert len(sizes_on_disk) == (sizes.small + sizes.sampled) * items
    assert len(parsed) == sum(size >= ParseCache.MIN_CHARS for size in sizes_on_disk) == sizes.sampled * items
    assert sorted(p.name for p in rb.warm_cache(project).parent.iterdir()) == sorted(
        p.name for p in suite.root.iterdir() if p.name.startswith("a-") and (p / "test_small.py").exists()
    )
    assert all(m.samples[f"session_end:{n}"][0].stats["sessionfinish_cpu"] > 0 for n in sizes.session_end)
    targets = rb.evaluate(m)
    assert len(targets) == 23
    assert sum(t.name.startswith("`pytest_sessionfinish`") and not t.info for t in targets) == 2
    assert [t.name.split(" wall")[0].split(" CPU")[0] for t in targets if t.info] == [
        "(a)/(b)",
        "(a)/(b)",
        "(b)/(c)",
        "(a)/(c0)",
        "(a)/(c0)",
        "speed-up of -n 2 for (b), pytest-recording, same tests",
        "machine: 2",
        "controller peak-RSS growth / report growth, all of it (pytest and xdist included)",
        "(b) controller peak-RSS growth / (a)'s report growth (pytest, xdist, vcrpy alone)",
    ]
    assert sum(t.name.startswith("plugin CPU per item") and not t.info for t in targets) == 1
    assert all(t.load for t in targets)
    assert sum(t.name.startswith("machine: 2 CPU-bound") for t in targets) == 1
    assert sum("beyond (b)'s" in t.name and not t.info for t in targets) == 1
    assert sum(t.name.startswith("(a)/(c) ") and not t.info for t in targets) == 4
    assert sum("parse cache empty" in t.name for t in targets) == 5
    text = rb.render(m, targets)
    assert "| (a) pytest-modelmigrate |" in text
    assert f"| {rb.MODE_LABELS['a_cold']} |" in text
    assert f"| {rb.MODE_LABELS['c']} |" in text
    assert f"| {rb.MODE_LABELS['c_stub']} |" in text
    assert "| (info) | info |" in text
    assert "| no-HTTP items (test × model) |" in text
    assert "| items (test × model), `--migration-json` | `pytest_sessionfinish` CPU (s) |" in text
    assert "nproc" in text


# -- record_bench: recording serially, under xdist, with in-test concurrency ----------------------

# 1 item per worker; 2 samples drawn at once under --record-concurrency=2
RECORD_TINY = recb.Config(tests=1, samples=2, repeats=1, latency_ms=10, workers=2, concurrency=2)


def test_record_bench_serial_xdist_and_concurrency(tmp_path: Path) -> None:
    """Every mode records every cassette with the fixed port and one episode per sample; the
    cassettes of -n, --record-concurrency and both replay offline."""
    cfg = RECORD_TINY
    m = recb.measure(cfg, tmp_path, log=lambda _: None, warm=False)
    assert set(m.samples) == {"serial", "parallel", "concurrent", "both"}
    for mode in recb.MODES:
        [result] = m.samples[mode]
        assert result.counts == {"passed": cfg.items}, result.output[-3000:]
        assert result.wall > 0
        assert result.cpu > 0
    assert cfg.args("concurrent")[-1] == "--record-concurrency=2"
    assert "-n" not in cfg.args("concurrent")
    assert cfg.args("both")[-3:] == ["-n", "2", "--record-concurrency=2"]
    # the workers' CPU is counted, not only the controller's (which runs no test): not "more than
    # serial", which a loaded machine turns into a coin toss (seen 6.3 s under -n 2 vs 6.6 s serial)
    assert m.samples["parallel"][0].cpu > 0.5 * m.samples["serial"][0].cpu
    assert m.interactions_checked == len(recb.MODES) * cfg.calls
    assert m.replays_checked == 3  # (b), (c) and (d)
    assert set(m.replays) == {"parallel", "concurrent", "both"}
    assert all(r.counts == {"passed": cfg.items} for [r] in m.replays.values())
    text = recb.render(m)
    assert "| (a) serial |" in text
    assert "| (b) `-n 2` |" in text
    assert "| (c) `--record-concurrency=2` |" in text
    assert "| (d) `-n 2 --record-concurrency=2` |" in text
    assert "| (a) serial / (b) `-n 2` |" in text
    assert "| (a) serial / (c) `--record-concurrency=2` |" in text
    assert "| `--block-network` replay of the run's cassettes, no -n" in text
    assert (
        "* (a) serial: ceil(2 items / 1 process(es)) × ceil(2 samples / 1 thread(s)) × 10 ms = 0.04 s" in text
    )
    assert (
        "* (c) `--record-concurrency=2`: ceil(2 items / 1 process(es)) × ceil(2 samples / 2 thread(s))"
        in text
    )
    assert "metadata listing 2 episodes of 1 interaction; 3 `--block-network` replay(s)" in text
    assert "Load average (1 / 5 / 15 min): start " in text
    assert "nproc" in text


def test_record_bench_floors() -> None:
    cfg = recb.Config(tests=5, samples=10, latency_ms=200, workers=4, concurrency=4)
    assert cfg.mode_floor("serial") == pytest.approx(cfg.floor) == pytest.approx(20.0)  # 100 calls
    assert cfg.mode_floor("parallel") == pytest.approx(3 * 10 * 0.2)  # 10 items on 4 workers: 3 rounds
    assert cfg.mode_floor("concurrent") == pytest.approx(10 * 3 * 0.2)  # 10 samples, 4 at a time
    assert cfg.mode_floor("both") == pytest.approx(3 * 3 * 0.2)


def test_record_bench_check_flags_wrong_episodes(tmp_path: Path) -> None:
    """A cassette whose metadata does not list one episode of 1 interaction per sample stops it."""
    cfg = recb.Config(tests=1, samples=2)
    project = recb.Project(tmp_path, 8765)
    request = "- request: {uri: 'http://127.0.0.1:8765/v1/chat/completions'}\n"
    for name, episodes in zip(recb.MODELS, ("[1, 1]", "[2]"), strict=True):
        path = tmp_path / "cassettes" / recb.MODULE / name / "test_0.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(f"interactions:\n{request * 2}metadata: {{modelmigrate: {{episodes: {episodes}}}}}\n")
    with pytest.raises(
        recb.BenchmarkError, match=r"emu-b/test_0\.yaml: metadata lists episodes \[2\]"
    ) as info:
        recb.check_cassettes(project, cfg)
    assert "emu-a" not in str(info.value)
    assert recb.check_cassettes(project, cfg, episodes=False) == 4


def test_record_bench_check_fails_on_a_workers_port(tmp_path: Path) -> None:
    """A cassette with a request to another port than the fixed one stops the benchmark."""
    cfg = recb.Config(tests=1, samples=1)
    project = recb.Project(tmp_path, 8765)
    for name in recb.MODELS:
        path = tmp_path / "cassettes" / recb.MODULE / name / "test_0.yaml"
        path.parent.mkdir(parents=True)
        port = 8765 if name == recb.MODELS[0] else 41234
        path.write_text(f"interactions:\n- request: {{uri: 'http://127.0.0.1:{port}/v1/chat/completions'}}\n")
    with pytest.raises(recb.BenchmarkError, match=r"127\.0\.0\.1:41234"):
        recb.check_cassettes(project, cfg)
    (tmp_path / "cassettes" / recb.MODULE / recb.MODELS[1] / "test_0.yaml").unlink()
    with pytest.raises(recb.BenchmarkError, match="1 cassette"):
        recb.check_cassettes(project, cfg)


def test_record_bench_summary_counts() -> None:
    output = "....\nmigration gate (strict): PASSED\n3 passed, 1 failed, 2 errors in 4.20s\n"
    assert recb.summary_counts(output) == {"passed": 3, "failed": 1, "errors": 2}
    assert recb.summary_counts("no summary here") == {}


# -- gate_simulation / adaptive_simulation: the decision's error rates ----------------------------

RATE = re.compile(r"(\d+\.\d)% \((\d+\.\d)-(\d+\.\d)\)")


def _check_rates(text: str) -> int:
    """Every ``rate% (low-high)`` cell lies in [0, 100] with low <= rate <= high; their number."""
    cells = RATE.findall(text)
    for rate, low, high in cells:
        assert 0.0 <= float(low) <= float(rate) <= float(high) <= 100.0, (rate, low, high)
    return len(cells)


def _run_script(name: str) -> str:
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / f"{name}.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_gate_simulation_quick() -> None:
    out = _run_script("gate_simulation")
    sim = load_benchmark("gate_simulation")
    assert sim.HEADER[0] in out
    assert sim.SUITE_HEADER[0] in out
    for sc in sim.SCENARIOS:
        assert f"| {sc.name} | 1 / 1 |" in out
        assert f"| {sc.name} | 30 / 5 |" in out  # the incumbent-history design
    assert "Targets:" in out
    assert "- false alarm <= 5% (per suite)" in out
    # 8 scenarios x 3 sample counts x 5 rates, 8 x 5 for the history design, 2 x 3 x 3 for suites
    assert _check_rates(out) == 8 * 3 * 5 + 8 * 5 + 2 * 3 * 3


def test_gate_simulation_cells_add_up() -> None:
    sim = load_benchmark("gate_simulation")
    cell = sim.run_cell(sim.scenario("drop 15, 0.9"), 20, 20, reps=10, seed=1)
    assert cell.trials == 10
    assert cell.migrate + cell.reengineer + cell.investigate == cell.trials
    assert cell.improved <= cell.migrate
    assert cell.gate_failed == cell.reengineer  # one group: the gate fails exactly on re-engineer
    assert cell.findings.keys() <= {"regressed", "improved", "non-inferior", "undecided", "no-evidence"}
    # the same seed gives the same cell; a large drop at 100 samples is always found
    assert sim.run_cell(sim.scenario("drop 15, 0.9"), 20, 20, reps=10, seed=1).findings == cell.findings
    assert sim.run_cell(sim.scenario("drop 15, 0.9"), 100, 100, reps=3, seed=1).reengineer == 3
    unequal = sim.run_cell(sim.scenario("null, 0.9"), 30, 10, reps=3, seed=1)
    assert unequal.trials == 3
    suite = sim.run_suite_cell(sim.scenario("null, 0.5"), 5, 5, reps=2, seed=1, n_groups=3, group_size=3)
    assert suite.trials == 2
    assert sim.rate_cell(1, 20).startswith("5.0% (")


def test_adaptive_simulation_quick() -> None:
    out = _run_script("adaptive_simulation")
    sim = load_benchmark("adaptive_simulation")
    assert sim.AUTO_HEADER[0] in out
    for sc in sim.AUTO_SCENARIOS:
        assert f"| {sc.name} | " in out
    assert "- false alarm <= 5% (per group, --samples=auto)" in out
    assert "| equal rates | adaptive (this rule) |" in out
    # 8 scenarios x 4 rates, 2 suite scenarios x 4 rates
    assert _check_rates(out) == 8 * 4 + 2 * 4


def test_adaptive_simulation_follows_the_plan() -> None:
    sim = load_benchmark("adaptive_simulation")
    policy = sim.AdaptivePolicy(min_samples=5, max_samples=20)
    cell = sim.run_auto_cell(sim.AUTO_SCENARIOS[0], reps=4, seed=1, policy=policy, group_size=4)
    assert cell.trials == 4
    assert cell.migrate + cell.reengineer + cell.investigate == cell.trials
    assert cell.tests == 16
    # never fewer than min_samples, never more than max_samples rounds per test
    assert 5.0 <= cell.mean_rounds <= 20.0
    assert 0 <= cell.at_max <= cell.tests
    decision, rounds = sim.run_auto(
        random.Random(3), [[(0.9, 0.1)] * 3], policy, sim.GatePolicy(mode="no-regression")
    )
    assert not decision.passed  # a 80-point drop is found
    assert decision.verdicts["g0"]["candidate"].verdict == "re-engineer"
    assert all(5 <= r <= 20 for r in rounds.values())
