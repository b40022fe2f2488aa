"""optax's own loss tests, run against jaxloss.

optax ships its loss tests in its wheel (``optax/losses/_*_test.py``). ``test_optax_suite.py``
beside this file collects them from the installed optax (no copy of optax's files lives here)
with every optax loss replaced by jaxloss's function of the same name:

* while the test modules are imported (``absl.parameterized`` binds some functions into its
  parameter lists at class creation), and
* around every test of this directory (an autouse fixture), in ``optax.losses`` and in each
  private module the tests call through (``optax.losses._classification.<name>``, ...).

Outside these windows optax is optax again, so ``tests/test_optax_parity.py`` in the same
process still compares jaxloss with the real thing.

Tests asserting one of README's deliberate differences ("Coming from optax") are skipped, each
with the difference it asserts, in :data:`DELIBERATE`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from optax_patching import jaxloss_in_optax

#: ``(test class, test method prefix) → the README difference it asserts``. A test is skipped
#: only for one of README's deliberate differences ("Coming from optax").
DELIBERATE: dict[tuple[str, str], str] = {}


@pytest.fixture(autouse=True)
def _jaxloss_patched(request: pytest.FixtureRequest) -> Iterator[None]:
    cls = request.node.cls.__name__ if request.node.cls is not None else ""
    for (klass, prefix), difference in DELIBERATE.items():
        if cls == klass and request.node.name.startswith(prefix):
            pytest.skip(f"README deliberate difference: {difference}")
    with jaxloss_in_optax():
        yield
