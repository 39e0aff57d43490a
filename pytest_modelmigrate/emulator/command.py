"""``modelmigrate emulator``: run the provider emulator in the foreground until Ctrl-C."""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

from .script import ScriptError
from .server import Emulator

if TYPE_CHECKING:
    import argparse

__all__ = ["DEFAULT_PORT", "add_parser", "run"]

DEFAULT_PORT = 8765


def add_parser(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="Run the local OpenAI/Anthropic API emulator",
        description=(
            "Serve the OpenAI (chat completions, Responses, embeddings) and Anthropic (messages) HTTP APIs "
            "on localhost, answering from a script of per-model rules. Point the SDKs at it with "
            "base_url; see docs/emulator.md for the script format."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default: %(default)s)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="Port to listen on, 0 for any free port (default: %(default)s)",
    )
    parser.add_argument(
        "--script", metavar="FILE", default=None, help="YAML or JSON script of per-model replies"
    )
    parser.add_argument(
        "--state",
        metavar="FILE",
        default=None,
        help=(
            "Keep the request counters of stochastic draws in this JSON file, so a later run (or "
            "another emulator given the same file) draws new samples instead of repeating them"
        ),
    )
    parser.add_argument(
        "--time-scale",
        dest="time_scale",
        type=float,
        default=1.0,
        help="Multiply every scripted latency by this factor, 0 for no sleeps (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="Do not log each request to stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, *, stop: threading.Event | None = None) -> int:
    try:
        emulator = Emulator(
            args.script,
            host=args.host,
            port=args.port,
            time_scale=args.time_scale,
            log=None if args.quiet else sys.stderr,
            state_file=getattr(args, "state", None),
        )
    except ScriptError as exc:
        print(f"modelmigrate emulator: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"modelmigrate emulator: {exc}", file=sys.stderr)
        return 2
    try:
        emulator.start()
    except OSError as exc:
        print(
            f"modelmigrate emulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    url = emulator.url
    print(
        f"Emulator listening on {url} - OpenAI: base_url={url}/v1, Anthropic: base_url={url} "
        "(any api_key; Ctrl-C to stop)",
        flush=True,
    )
    try:
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0
