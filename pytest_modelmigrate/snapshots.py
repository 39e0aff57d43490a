"""A syrupy extension that keeps one snapshot set per model: ``__snapshots__/<model>/<module>/``.

Importing this module imports syrupy (the optional ``snapshots`` extra); nothing else in the
package does. Use it through the plugin's fixture, or directly::

    @pytest.fixture
    def snapshot(snapshot):
        return snapshot.use_extension(ModelSnapshotExtension)

The model id is the test's ``model`` parameter (``item.callspec.params["model"]``). Tests not
parametrized over ``model`` keep syrupy's usual ``__snapshots__/<module>/`` layout.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from syrupy.extensions.json import JSONSnapshotExtension

if TYPE_CHECKING:
    from syrupy.location import PyTestLocation

    from .scrub import Scrubber

__all__ = ["MODEL_PARAM", "ModelSnapshotExtension", "model_id_of", "model_snapshot", "safe_dirname"]

MODEL_PARAM = "model"
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]+")


def safe_dirname(model_id: str) -> str:
    """``model_id`` as one directory name (``/`` and ``:`` become ``_``; never empty, ``.`` or ``..``)."""
    cleaned = _UNSAFE.sub("_", model_id).strip()
    return cleaned if cleaned not in ("", ".", "..") else "_"


def model_id_of(item: Any) -> str | None:
    """The model a test item runs with: its ``model`` parameter, or ``None`` when it has none.

    A parameter value that is not a string is read through ``.id``/``.name`` (a model spec) and
    then ``str()``.
    """
    callspec = getattr(item, "callspec", None)
    params = getattr(callspec, "params", None)
    if not isinstance(params, dict) or MODEL_PARAM not in params:
        return None
    value = params[MODEL_PARAM]
    if isinstance(value, str):
        return value
    for attr in ("id", "name"):
        named = getattr(value, attr, None)
        if isinstance(named, str) and named:
            return named
    return str(value)


class ModelSnapshotExtension(JSONSnapshotExtension):
    """JSON snapshots under ``__snapshots__/<model>/<test module>/<test name>.json``."""

    # The scrubber serialize uses; None: one that knows the key variables of the environment.
    # The plugin's ``snapshot_model`` binds the session's (see with_scrubber).
    scrubber: ClassVar[Scrubber | None] = None

    @classmethod
    def with_scrubber(cls, scrubber: Scrubber) -> type[ModelSnapshotExtension]:
        """This extension, scrubbing with ``scrubber`` (the session's, which also knows the
        variables named in ``modelmigrate_secret_env``). syrupy instantiates extensions itself,
        so the scrubber travels as a class attribute of a subclass; make one per session."""
        namespace = {"scrubber": scrubber, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
        return type(cls.__name__, (cls,), namespace)

    def serialize(self, data: Any, **kwargs: Any) -> Any:
        """syrupy's JSON, with secrets removed: the app saw the live reply (which may echo a key),
        while the cassette, and so every replay, holds ``<redacted>``. Strings shaped like a live
        key are masked too, so a snapshot compares equal whether or not the key is known."""
        from .scrub import Scrubber

        scrubber = self.scrubber if self.scrubber is not None else Scrubber.from_settings()
        text = super().serialize(data, **kwargs)
        return scrubber.scrub_text(text) if isinstance(text, str) else text

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        base = str(JSONSnapshotExtension.dirname(test_location=test_location))
        model = model_id_of(test_location.item)
        if model is None:
            return base
        module_dir = Path(base)  # .../__snapshots__/<module>
        return str(module_dir.parent / safe_dirname(model) / module_dir.name)


def model_snapshot(
    request: Any, extension_class: type[ModelSnapshotExtension] = ModelSnapshotExtension
) -> Any:
    """A syrupy ``SnapshotAssertion`` using ``extension_class`` only, for ``request``'s test.

    Use this, not ``snapshot.use_extension(...)``: requesting syrupy's ``snapshot`` fixture
    registers an assertion with the default (amber) extension too. At the end of the session
    syrupy then scans all of ``__snapshots__/`` for amber files, takes every other model's
    ``__snapshots__/<model>/...json`` for an unknown file, and with ``--snapshot-update`` deletes
    it whenever that model's tests were not collected (models given only with ``--models``).
    This extension scans only the folder of the models that ran (``discovery_dirname``), so a
    run over some models never touches the others' snapshots.
    """
    from syrupy.assertion import SnapshotAssertion
    from syrupy.location import PyTestLocation

    option = request.config.option
    return SnapshotAssertion(
        update_snapshots=option.update_snapshots,
        update_new_snapshots_only=getattr(option, "update_new_snapshots_only", False),
        extension_class=extension_class,
        test_location=PyTestLocation(request.node),
        session=request.session.config._syrupy,
    )
