"""Hooks pytest-modelmigrate declares for other plugins and conftest files."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..analysis import Run


class ModelmigrateHookspecs:
    @pytest.hookspec
    def pytest_modelmigrate_run(self, config: pytest.Config, run: Run) -> None:
        """Called on the controller once the run is analysed, before any report is written.

        ``run`` is the :class:`~pytest_modelmigrate.analysis.Run`; add your own data to
        ``run.extra`` (a dict of JSON-safe values): every report file carries it. The decision
        is final by then: nothing here can change the gate.
        """
