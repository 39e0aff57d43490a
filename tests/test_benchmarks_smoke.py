"""The replay benchmark at its smallest size, so it cannot rot. No timing assertions."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from conftest import load_benchmark

if TYPE_CHECKING:
    pass


rb = load_benchmark("replay_bench")


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return rb.build_suite(rb.TINY, tmp_path_factory.mktemp("bench"), log=lambda _: None)


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


def test_measure_and_report(suite: Any) -> None:
    sizes = rb.TINY
    m = rb.measure(suite, 1, log=lambda _: None)
    items = len(rb.MODELS)
    expected = {
        **{f"{mode}:test_small": sizes.small * items for mode in rb.MODES},
        **{f"{mode}:test_sampled": sizes.sampled * items for mode in rb.MODES},
        "xdist:n0": sizes.small * items,
        "xdist:n2": sizes.small * items,
        **{f"memory:{n}": n * items for n in sizes.memory},
    }
    for key, count in expected.items():
        assert [r.passed for r in m.samples[key]] == [count], key
    for key in ("collect:with", "collect:without"):
        assert m.samples[key][0].returncode == 0
    sizes_json = [m.samples[f"memory:{n}"][0].json_bytes for n in sizes.memory]
    assert sizes_json == sorted(sizes_json)
    assert sizes_json[0] > 0
    assert all(m.samples[f"memory:{n}"][0].stats["maxrss_kb"] > 0 for n in sizes.memory)
    targets = rb.evaluate(m)
    assert len(targets) == 8
    text = rb.render(m, targets)
    assert "| (a) pytest-modelmigrate |" in text
    assert "nproc" in text
