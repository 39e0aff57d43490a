"""Errors a user's own code can cause, shared by the checks and the ``prompt`` client.

Pure module, stdlib only.
"""

from __future__ import annotations

__all__ = ["CheckUnavailable", "ChecksConfigError"]


class ChecksConfigError(ValueError):
    """A check used wrongly (bad schema, missing reference, unconfigured judge or embedder).

    The message starts with the check's name (``"json_schema: invalid schema: ..."``) and, when
    the collector raised it, with the test id. Raised the first time the check is used.
    """


class CheckUnavailable(ChecksConfigError):
    """An optional dependency a check needs is not installed (e.g. sentence-transformers).

    The plugin turns this into a skip with the message; plain-function users get the error.
    """
