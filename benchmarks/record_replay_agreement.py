"""Does CI reproduce the recording's decision? Seeded projects, recorded in passes, replayed offline.

For each seed: a project of ``--tests`` prompt tests in two prompt groups on two models, where
the emulator answers each test's prompt with "pass" or "fail" at a seeded rate per (test, model)
(the candidate drops 30 points on some tests, none on others). It records with
``--samples=auto --record-mode=new_episodes`` in ``--passes`` passes (the documented loop), and
after every pass replays the cassettes offline (``--block-network``, emulator unused). Each
replay must give the recording run's outcomes, per-sample outcomes, verdicts, sequential
decisions, gate line and exit status; and every cassette must hold one episode per listed sample.
A fixed ``--samples=N --record-mode=once`` recording is checked the same way.

    python benchmarks/record_replay_agreement.py --seeds 50

Prints one line per seed and a summary; exits 1 on any disagreement.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

TESTS = """
import os
import openai
import pytest

URL = os.environ["EMU_URL"]


def ask(model, i):
    client = openai.OpenAI(base_url=URL + "/v1", api_key="x", max_retries=0)
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"question {i}."}])
    return r.choices[0].message.content

"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _project(root: Path, seed: int, tests: int) -> dict[str, Any]:
    rng = random.Random(seed)
    rules: dict[str, list[dict[str, Any]]] = {"emu-a": [], "emu-b": []}
    body = [TESTS]
    for i in range(tests):
        base = rng.uniform(0.55, 0.95)
        drop = rng.choice([0.0, 0.0, 0.3])
        for model, rate in (("emu-a", base), ("emu-b", max(base - drop, 0.05))):
            rules[model].append(
                {
                    "match": rf"question {i}\.",
                    "choices": [{"weight": rate, "reply": "pass"}, {"weight": 1 - rate, "reply": "fail"}],
                }
            )
        group = "alpha" if i % 2 == 0 else "beta"
        body.append(
            textwrap.dedent(
                f"""
                @pytest.mark.prompt("{group}")
                def test_{i}(model):
                    assert ask(model, {i}) == "pass"
                """
            )
        )
    script = {"seed": seed, "models": {m: {"rules": r} for m, r in rules.items()}}
    (root / "script.yaml").write_text(yaml.safe_dump(script))
    (root / f"test_seed{seed}.py").write_text("".join(body))
    (root / "pytest.ini").write_text("[pytest]\nmodelmigrate_models = emu-a,emu-b\n")
    return script


def _pytest(root: Path, env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    out = root / "run.json"
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "--migration-json=run.json", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if not out.is_file():
        raise RuntimeError(
            f"no run.json from pytest {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    return proc.returncode, json.loads(out.read_text())


def _digest(code: int, run: dict[str, Any]) -> dict[str, Any]:
    gate = run.get("gate") or {}
    return {
        "exit": code,
        "gate": gate.get("line"),
        "verdicts": {
            group: {cand: (v.get("verdict"), v.get("reason")) for cand, v in per.items()}
            for group, per in (gate.get("verdicts") or {}).items()
        },
        "outcomes": sorted((o["nodeid"], o["outcome"], tuple(o.get("samples", []))) for o in run["outcomes"]),
        "adaptive": {k: (run.get("adaptive") or {}).get(k) for k in ("tests", "groups")},
    }


def _episodes_agree(root: Path) -> list[str]:
    problems = []
    for path in sorted(root.rglob("cassettes/**/*.yaml")):
        data = yaml.safe_load(path.read_text())
        meta = ((data.get("metadata") or {}).get("modelmigrate")) or {}
        interactions = len(data.get("interactions") or [])
        samples, episodes = meta.get("samples") or [], meta.get("episodes")
        if episodes is None:
            episodes = [interactions] if interactions else []
        if sum(episodes) != interactions or (samples and len(samples) != len(episodes)):
            problems.append(
                f"{path.name}: {interactions} interactions, episodes {episodes}, {len(samples)} samples"
            )
    return problems


def check_seed(seed: int, tests: int, passes: int, fixed: int, workdir: Path) -> list[str]:
    from pytest_modelmigrate.emulator import Emulator

    root = workdir / f"seed{seed}"
    root.mkdir()
    script = _project(root, seed, tests)
    problems: list[str] = []
    with Emulator(script, port=_free_port(), time_scale=0, state_file=root / "draws.json") as emu:
        env = {**os.environ, "EMU_URL": emu.url, "COLUMNS": "160"}
        env.pop("PYTEST_ADDOPTS", None)
        auto = ("--samples=auto", "--samples-min=3", "--samples-max=9")
        for k in range(1, passes + 1):
            recorded = _digest(*_pytest(root, env, *auto, "--record-mode=new_episodes"))
            replayed = _digest(*_pytest(root, env, *auto, "--block-network"))
            for key in recorded:
                if recorded[key] != replayed[key]:
                    problems.append(
                        f"auto pass {k}: {key}: recorded {recorded[key]!r} replayed {replayed[key]!r}"
                    )
            problems.extend(f"auto pass {k}: {p}" for p in _episodes_agree(root))
        shutil.rmtree(root / "cassettes")
        recorded = _digest(*_pytest(root, env, f"--samples={fixed}", "--record-mode=once"))
        replayed = _digest(*_pytest(root, env, f"--samples={fixed}", "--block-network"))
        for key in recorded:
            if recorded[key] != replayed[key]:
                problems.append(f"fixed N: {key}: recorded {recorded[key]!r} replayed {replayed[key]!r}")
        problems.extend(f"fixed N: {p}" for p in _episodes_agree(root))
    shutil.rmtree(root, ignore_errors=True)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--tests", type=int, default=4)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--fixed", type=int, default=5, help="samples of the fixed-N recording")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    with (
        tempfile.TemporaryDirectory(prefix="mm-agree-") as tmp,
        ThreadPoolExecutor(max_workers=args.jobs) as pool,
    ):
        results = list(
            pool.map(lambda s: (s, check_seed(s, args.tests, args.passes, args.fixed, Path(tmp))), seeds)
        )
    failed = 0
    for seed, problems in results:
        print(f"seed {seed}: {'agree' if not problems else 'DISAGREE'}")
        for problem in problems:
            print(f"  {problem}")
        failed += bool(problems)
    runs = len(results) * (2 * args.passes + 2)
    print(
        f"{len(results) - failed}/{len(results)} seeded projects: every replay reproduced its recording run "
        f"({args.passes} --samples=auto passes and one --samples={args.fixed} recording each, "
        f"{runs} pytest runs)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
