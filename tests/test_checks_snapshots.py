"""The per-model syrupy extension's directory logic (pytester runs come with the plugin)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("syrupy")

from syrupy.location import PyTestLocation

from pytest_modelmigrate.snapshots import ModelSnapshotExtension, model_id_of, safe_dirname


def fake_test_function(model: str) -> None:  # what PyTestLocation reads as item.obj
    pass


def fake_item(tmp_path: Path, params: dict[str, object] | None, name: str) -> SimpleNamespace:
    module = tmp_path / "test_triage.py"
    return SimpleNamespace(
        path=module,
        obj=fake_test_function,
        name=name,
        nodeid=f"test_triage.py::{name}",
        callspec=SimpleNamespace(params=params) if params is not None else None,
    )


def test_dirname_nests_model_then_module(tmp_path: Path) -> None:
    item = fake_item(tmp_path, {"model": "gpt-4o"}, "test_route[gpt-4o]")
    location = PyTestLocation(item)  # type: ignore[arg-type]
    dirname = Path(ModelSnapshotExtension.dirname(test_location=location))
    assert dirname == tmp_path / "__snapshots__" / "gpt-4o" / "test_triage"
    # syrupy then scans __snapshots__/<model> and owns files nested one level inside it
    assert Path(ModelSnapshotExtension.discovery_dirname(test_location=location)) == (
        tmp_path / "__snapshots__" / "gpt-4o"
    )
    loc = ModelSnapshotExtension.get_location(test_location=location, index=0)
    assert loc == str(dirname / "test_route[gpt-4o].json")


def test_unparametrized_keeps_syrupy_layout(tmp_path: Path) -> None:
    item = fake_item(tmp_path, None, "test_route")
    location = PyTestLocation(item)  # type: ignore[arg-type]
    assert (
        Path(ModelSnapshotExtension.dirname(test_location=location))
        == tmp_path / "__snapshots__" / "test_triage"
    )


def test_model_id_from_spec_object_and_sanitised() -> None:
    spec = SimpleNamespace(id="azure/gpt-4o:eu")
    item = SimpleNamespace(callspec=SimpleNamespace(params={"model": spec}))
    assert model_id_of(item) == "azure/gpt-4o:eu"
    assert safe_dirname("azure/gpt-4o:eu") == "azure_gpt-4o_eu"
    assert safe_dirname("..") == "_"
