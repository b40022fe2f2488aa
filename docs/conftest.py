"""pytest configuration for the documentation pages' doctests (``--doctest-glob='*.md'``)."""

from __future__ import annotations

import pytest

# Pages whose doctests call a library that is not a jaxloss dependency.
NEEDS = {"pytorch.md": "torch", "optax.md": "optax"}


@pytest.fixture(autouse=True)
def _page_requirements(request):
    module = NEEDS.get(request.node.path.name)
    if module:
        pytest.importorskip(module, reason=f"{request.node.path.name} compares with {module}")
