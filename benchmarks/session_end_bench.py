"""CPU time of ``pytest_sessionfinish`` (analysis, decision, the run file) at several suite sizes.

    python benchmarks/session_end_bench.py [--tests 100 1000 3333] [--repeats 3]

For each size, builds a project of that many test functions that take ``model`` and make no
request, runs it three times with ``--models=gpt-4o,gpt-4.1,gpt-5 --migration-json=run.json``
(so 3 items per test), and prints the median CPU time spent in ``pytest_sessionfinish``, read by
a ``conftest.py`` hook wrapper around every plugin's implementation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CONFTEST = """
import json, os, time
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session):
    cpu = time.process_time()
    yield
    with open(os.environ["SESSION_END_OUT"], "a") as handle:
        handle.write(json.dumps({"cpu": time.process_time() - cpu}) + "\\n")
"""


def measure(root: Path, tests: int, repeats: int) -> list[float]:
    project = root / f"p{tests}"
    project.mkdir()
    lines = []
    for i in range(tests):
        lines += [f"def test_{i}(model):", "    assert model", ""]
    (project / "test_x.py").write_text("\n".join(lines))
    (project / "conftest.py").write_text(CONFTEST)
    (project / "pytest.ini").write_text("[pytest]\n")
    out = project / "session_end.jsonl"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    command += ["--models=gpt-4o,gpt-4.1,gpt-5", "--migration-json=run.json"]
    for _ in range(repeats):
        env = dict(os.environ, SESSION_END_OUT=str(out))
        subprocess.run(command, cwd=project, env=env, stdout=subprocess.DEVNULL, check=False)
    return [json.loads(line)["cpu"] for line in out.read_text().splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tests", type=int, nargs="+", default=[100, 1000, 3333])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="modelmigrate-session-end-"))
    for tests in args.tests:
        runs = measure(root, tests, args.repeats)
        median = statistics.median(runs)
        items = tests * 3
        print(
            f"{items:>6} items: pytest_sessionfinish {median:.3f} s CPU (median of "
            f"{', '.join(f'{r:.3f}' for r in runs)}), {median / items * 1000 * 1000:.0f} ms per 1,000 "
            f"items; load {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
