"""pytest glue: the one package that imports pytest (the ``pytest11`` entry point).

``options`` declares the options from :data:`~pytest_modelmigrate.settings.SETTINGS`;
``hooks`` holds the module-level hooks (configure, parametrization, deselection);
``fixtures`` the fixtures; ``runner`` runs each (test, model) with its cassette and samples;
``session`` collects the outcomes and hands the end of the run to the analysis; ``hookspec``
the hooks this plugin declares.
"""

from __future__ import annotations

from .fixtures import (
    checks,
    example,
    model,
    model_spec,
    modelmigrate_embedder,
    modelmigrate_emulator,
    modelmigrate_judge,
    modelmigrate_recording,
    modelmigrate_rollback_direction,
    prediction,
    prompt,
    prompt_variant,
    rollback,
    snapshot_model,
)
from .hooks import (
    pytest_addhooks,
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_generate_tests,
    pytest_recording_configure,
    pytest_unconfigure,
)

__all__ = [
    "checks",
    "example",
    "model",
    "model_spec",
    "modelmigrate_embedder",
    "modelmigrate_emulator",
    "modelmigrate_judge",
    "modelmigrate_recording",
    "modelmigrate_rollback_direction",
    "prediction",
    "prompt",
    "prompt_variant",
    "pytest_addhooks",
    "pytest_addoption",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_generate_tests",
    "pytest_recording_configure",
    "pytest_unconfigure",
    "rollback",
    "snapshot_model",
]
