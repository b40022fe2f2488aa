"""Shared test configuration: deterministic hypothesis profile and fixtures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

from helpers import float64

settings.register_profile(
    "jaxloss", derandomize=True, deadline=None, max_examples=25, print_blob=True
)
settings.load_profile("jaxloss")


@pytest.fixture
def x64():
    with float64():
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# The PyTorch reference generator is a script, not a test: its output
# (tests/torch_reference/functional.json) is what test_compat_torch.py reads, without torch.
collect_ignore = ["torch_reference/generate.py"]
