"""optax's loss test suite (``optax/losses/_*_test.py`` of the installed wheel) on jaxloss.

The test classes are imported from the installed optax while jaxloss's functions stand in
for optax's (see ``conftest.py``), and exposed here so pytest collects them.
"""

from __future__ import annotations

import importlib
import inspect
import unittest

import jaxloss

from optax_patching import PATCHED, jaxloss_in_optax, optax_loss_test_modules

MODULES = optax_loss_test_modules()


def _collect() -> dict[str, type]:
    classes: dict[str, type] = {}
    with jaxloss_in_optax():
        for dotted in MODULES:
            module = importlib.import_module(dotted)
            for name, obj in vars(module).items():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, unittest.TestCase)
                    and obj.__module__ == dotted
                ):
                    key = name if name not in classes else f"{dotted.rsplit('.', 1)[1]}_{name}"
                    classes[key] = obj
    return classes


globals().update(_collect())


def test_suite_found_and_every_optax_loss_is_replaced():
    """The suite is not empty, and every public optax loss has a jaxloss stand-in."""
    assert len(MODULES) >= 7, MODULES
    assert len(PATCHED) >= 32
    missing = [name for name in PATCHED if not hasattr(jaxloss, name)]
    assert not missing, f"optax losses without a jaxloss function of the same name: {missing}"
