"""CPU time of opening and closing one cassette, as a (test, model) that makes no request does.

    python benchmarks/open_cassette_bench.py [--calls N]

Opens ``N`` times (default 3,000) a cassette file that does not exist, in replay (record mode
``none``), through ``cassettes.open_cassette`` with one ``VcrSession`` for all of them, as the
plugin does in a session, and prints the CPU time per open and close (``time.process_time``,
after one untimed warm-up that imports vcrpy and builds its patchers). Run it from two checkouts
(``PYTHONPATH=...``) to compare them; a checkout without ``VcrSession`` is measured the way it
opened cassettes, with a VCR and patchers built for each.
"""

from __future__ import annotations

import argparse
import inspect
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_modelmigrate import cassettes
from pytest_modelmigrate.scrub import Scrubber


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=3000, help="cassettes opened (default 3000)")
    args = parser.parse_args()
    scrubber = Scrubber.from_settings(extra_request_headers=[], extra_response_headers=[], extra_variables=[])
    path = Path(tempfile.mkdtemp()) / "never-recorded.yaml"
    kwargs: dict[str, Any] = {"record_mode": "none", "scrubber": scrubber, "user_config": {}}
    if "vcr_session" in inspect.signature(cassettes.open_cassette).parameters:
        kwargs["vcr_session"] = cassettes.VcrSession()

    def once() -> None:
        with cassettes.open_cassette(path, **kwargs):
            pass

    once()
    start = time.process_time()
    for _ in range(args.calls):
        once()
    per_call = (time.process_time() - start) / args.calls * 1000.0
    session = "one VcrSession" if "vcr_session" in kwargs else "vcrpy set up per cassette"
    print(
        f"{cassettes.__file__}: {per_call:.3f} ms CPU per cassette opened and closed "
        f"({args.calls} calls, {session}; load {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
