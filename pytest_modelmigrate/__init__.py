"""pytest-modelmigrate: run prompt tests once per model version and gate the migration."""

from __future__ import annotations

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
