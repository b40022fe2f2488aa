"""Putting jaxloss's functions in place of optax's losses (used by conftest.py and the suite)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import pathlib
from collections.abc import Iterator

import optax.losses

import jaxloss


def optax_loss_test_modules() -> list[str]:
    """Dotted names of the test modules in the installed ``optax.losses`` package."""
    spec = importlib.util.find_spec("optax.losses")
    assert spec is not None and spec.submodule_search_locations, "optax.losses not found"
    names = set()
    for location in spec.submodule_search_locations:
        for path in pathlib.Path(location).glob("_*_test.py"):
            names.add(f"optax.losses.{path.stem}")
    return sorted(names)


def _loss_modules() -> list[object]:
    """``optax.losses`` and its private implementation modules (``_classification``, ...)."""
    spec = importlib.util.find_spec("optax.losses")
    assert spec is not None and spec.submodule_search_locations
    modules: list[object] = [optax.losses]
    for location in spec.submodule_search_locations:
        for path in sorted(pathlib.Path(location).glob("_*.py")):
            if not path.stem.endswith("_test") and path.stem != "__init__":
                modules.append(importlib.import_module(f"optax.losses.{path.stem}"))
    return modules


#: The optax names that are patched: every public loss of ``optax.losses`` (jaxloss has each).
PATCHED = tuple(name for name in dir(optax.losses) if not name.startswith("_"))


@contextlib.contextmanager
def jaxloss_in_optax() -> Iterator[None]:
    """Replace every ``optax.losses`` loss (and its private-module binding) by jaxloss's."""
    saved: list[tuple[object, str, object]] = []
    try:
        for module in _loss_modules():
            for name in PATCHED:
                if hasattr(module, name) and callable(getattr(module, name)):
                    saved.append((module, name, getattr(module, name)))
                    setattr(module, name, getattr(jaxloss, name))
        yield
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)
