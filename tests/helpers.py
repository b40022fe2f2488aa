"""Test helpers shared by the suites: float64 context and central finite differences."""

from __future__ import annotations

import contextlib

import jax
import numpy as np


@contextlib.contextmanager
def float64():
    """Enable float64 inside the block (for finite-difference gradient checks)."""
    with jax.enable_x64(True):
        yield


def numeric_grad(f, x, eps=1e-6):
    """Central differences of a scalar NumPy-in/float-out function, coordinate by coordinate."""
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (float(f(xp)) - float(f(xm))) / (2 * eps)
    return g
