"""What a replay session changes in its process: nothing leaves the machine, and the SDKs need no key.

Pure module: no pytest import. In replay (``--record-mode=none``) every model call is answered
from a cassette, but code outside a model's cassette (a session fixture, a fixture set up before
``model``, a teardown, an import-time fetch such as litellm's cost map) would reach the network.
:class:`NetworkGuard` refuses connections to any host that is not this machine, for the whole
session, with an error that names the host, the test and phase, and the line of the caller;
:func:`placeholder_keys` gives the SDKs' key variables a placeholder, so a CI job with no keys can
build its clients (``openai.OpenAI()`` refuses to start without ``OPENAI_API_KEY``).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any

from .scrub import PLACEHOLDER_KEY

if TYPE_CHECKING:
    from collections.abc import Iterable, MutableMapping
    from types import FrameType

__all__ = [
    "PLACEHOLDER_KEY",
    "PLACEHOLDER_VARIABLES",
    "NetworkBlockedError",
    "NetworkGuard",
    "placeholder_keys",
    "restore_keys",
]

# The variables the official SDKs and the wrappers built on them read their key from.
PLACEHOLDER_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY")

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""})
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def placeholder_keys(environ: MutableMapping[str, str]) -> dict[str, str | None]:
    """Set each unset SDK key variable to :data:`PLACEHOLDER_KEY`; returns what to restore."""
    previous: dict[str, str | None] = {}
    for name in PLACEHOLDER_VARIABLES:
        if not environ.get(name):
            previous[name] = environ.get(name)
            environ[name] = PLACEHOLDER_KEY
    return previous


def restore_keys(environ: MutableMapping[str, str], previous: dict[str, str | None]) -> None:
    for name, value in previous.items():
        if environ.get(name) != PLACEHOLDER_KEY:
            continue  # the session's code set a key of its own: leave it
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value


class NetworkBlockedError(ConnectionRefusedError):
    """A connection to another machine during replay. An ``OSError``, so an HTTP library reports
    it as a connection error, with this message as its cause."""


def _is_local(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """Refuses connections to non-loopback hosts while installed (``socket.socket.connect`` and
    ``connect_ex``, and name lookups through ``socket.getaddrinfo``).

    ``allowed`` holds host names or addresses that may still be reached (``modelmigrate_allowed_hosts``).
    ``where`` names the running test and phase, as the session last set it.
    """

    def __init__(self, allowed: Iterable[str] = (), *, rootdir: str | None = None) -> None:
        self.allowed = frozenset(host.strip().lower() for host in allowed if host.strip())
        self.where = "outside any test (at collection or in a session hook)"
        self.rootdir = os.path.abspath(rootdir) if rootdir else None
        self._names: dict[str, str] = {}  # address -> the name it was looked up by
        self.refused: list[str] = []  # what was refused, where and by whom (the first 50)
        self._lock = threading.Lock()
        self._saved: tuple[Any, Any, Any] | None = None
        self._installed: tuple[Any, Any, Any] = (None, None, None)

    # -- what may be reached ------------------------------------------------------------------
    def permits(self, host: str) -> bool:
        host = host.strip().strip("[]").lower()
        return _is_local(host) or host in self.allowed or self._names.get(host, "") in self.allowed

    def refuse(self, host: str, port: Any) -> NetworkBlockedError:
        name = self._names.get(host.lower(), host)
        shown = f"{name} ({host})" if name != host else host
        target = f"{shown}:{port}" if port not in (None, "", 0) else shown
        caller = self._caller()
        at = f", called from {caller}" if caller else ""
        with self._lock:
            if len(self.refused) < 50:
                self.refused.append(f"{target}, {self.where}{at}")
        return NetworkBlockedError(
            f"pytest-modelmigrate blocked a connection to {target} during replay "
            f"(--record-mode=none), {self.where}{at}. Replay answers model calls from the cassettes "
            "only; code outside a model's cassette (a session fixture, a fixture set up before "
            "`model`, a teardown, an import-time download) must not reach the network. Record the "
            "call inside a model test (--record-mode=once), or let this host through with the ini "
            f"setting modelmigrate_allowed_hosts = {name}, or allow every host with "
            "--migration-allow-network"
        )

    def _caller(self) -> str:
        """The innermost frame of the project's own code (not the stdlib, a dependency or us)."""
        frame: FrameType | None = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_filename
            path = os.path.abspath(name)
            if not name.startswith("<") and self._is_project_file(path):  # not <frozen ...>, <string>
                where = os.path.relpath(path, self.rootdir) if self.rootdir else path
                return f"{where}:{frame.f_lineno} ({frame.f_code.co_name})"
            frame = frame.f_back
        return ""

    def _is_project_file(self, path: str) -> bool:
        if path.startswith(_PACKAGE_DIR) or "site-packages" in path or "dist-packages" in path:
            return False
        if self.rootdir is not None:
            return path.startswith(self.rootdir + os.sep)
        return not path.startswith(sys.prefix) and not path.startswith(sys.base_prefix)

    # -- installing ---------------------------------------------------------------------------
    @property
    def installed(self) -> bool:
        return self._saved is not None

    def install(self) -> None:
        if self._saved is not None:
            return
        connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
        self._saved = (connect, connect_ex, getaddrinfo)
        guard = self

        def checked(address: Any) -> None:
            if (
                guard._saved is not None
                and isinstance(address, tuple)
                and address
                and isinstance(address[0], str)
            ):
                host = address[0]
                if not guard.permits(host):
                    raise guard.refuse(host, address[1] if len(address) > 1 else None)

        def guarded_connect(self: socket.socket, address: Any) -> None:
            if self.family in (socket.AF_INET, socket.AF_INET6):
                checked(address)
            connect(self, address)

        def guarded_connect_ex(self: socket.socket, address: Any) -> int:
            if self.family in (socket.AF_INET, socket.AF_INET6):
                checked(address)
            result: int = connect_ex(self, address)
            return result

        def guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            name = host.decode() if isinstance(host, bytes) else host
            if (
                guard._saved is not None
                and isinstance(name, str)
                and not guard.permits(name)
                and name != socket.gethostname()
            ):
                raise guard.refuse(name, port)
            found = getaddrinfo(host, port, *args, **kwargs)
            if isinstance(name, str) and name.lower() in guard.allowed:
                with guard._lock:  # an allowed name's addresses are allowed too
                    for entry in found:
                        guard._names[str(entry[4][0]).lower()] = name.lower()
            return found

        socket.socket.connect = guarded_connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign,assignment]
        socket.getaddrinfo = guarded_getaddrinfo
        self._installed = (guarded_connect, guarded_connect_ex, guarded_getaddrinfo)

    def uninstall(self) -> None:
        """Put back what was there, unless someone patched over the guard meanwhile (another
        plugin's guard, a conftest): then theirs stays, and the guard it wraps passes through."""
        if self._saved is None:
            return
        connect, connect_ex, getaddrinfo = self._saved
        mine = self._installed
        self._saved = None  # from here on, a guard left wrapped in someone else's passes through
        if socket.socket.connect is mine[0]:
            socket.socket.connect = connect  # type: ignore[method-assign]
        if socket.socket.connect_ex is mine[1]:
            socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
        if socket.getaddrinfo is mine[2]:
            socket.getaddrinfo = getaddrinfo
