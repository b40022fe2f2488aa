"""Test helpers shared by the suites: float64 context, central finite differences, and the
forced schedules of jaxloss.large_vocab."""

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


def assert_grads_match_fd(fn, args, wrt, rtol=1e-6, atol=1e-9, eps=1e-6):
    """``jax.grad`` of ``fn(*args)`` against central differences for each argument in ``wrt``.

    ``fn`` is compiled once (values and all gradients), so the differences reuse one executable.
    Call inside :func:`float64`.
    """
    fn = jax.jit(fn)
    grads = jax.jit(jax.grad(fn, argnums=tuple(wrt)))(*args)
    for i, g in zip(wrt, grads, strict=True):

        def f(v, i=i):
            return fn(*[v if j == i else a for j, a in enumerate(args)])

        np.testing.assert_allclose(
            g, numeric_grad(f, args[i], eps), rtol=rtol, atol=atol, err_msg=f"argument {i}"
        )


def accelerator_hlo(fn, *args):
    """StableHLO of ``jit(fn)`` lowered for GPU: the formulation non-CPU backends compile.

    CPU-only schedules (``jax.lax.platform_dependent``'s ``cpu=`` branches, such as the gather
    label pick) are absent from it, so "no gather, no scatter" checks read this text.
    """
    exported = jax.export.export(jax.jit(fn), platforms=("cuda",))(*args)
    # Location lines name Python frames (the test's own name may contain "gather").
    lines = exported.mlir_module().splitlines()
    return "\n".join(line for line in lines if not line.startswith("#loc"))


@contextlib.contextmanager
def large_vocab_schedule(schedule, d, *, store_block):
    """Force a ``jaxloss.large_vocab`` schedule at test sizes; yields the ``mode=`` to pass.

    ``"recompute-vb"``: mode="recompute" with its backward pass over blocks of the vocabulary
    (``VBLOCK_MIN = 1``); ``"store"``: the tile gradient over blocks of ``store_block`` classes
    for hidden size ``d`` (``DW_BLOCK_BYTES``, ``DW_BLOCK_MIN = 1``); anything else runs as
    given, at the defaults. The module's constants are restored on exit."""
    import jaxloss.large_vocab as large_vocab

    saved = large_vocab.VBLOCK_MIN, large_vocab.DW_BLOCK_BYTES, large_vocab.DW_BLOCK_MIN
    if schedule == "recompute-vb":
        large_vocab.VBLOCK_MIN = 1
    elif schedule == "store":
        large_vocab.DW_BLOCK_BYTES, large_vocab.DW_BLOCK_MIN = 4 * d * store_block, 1
    try:
        yield "recompute" if schedule == "recompute-vb" else schedule
    finally:
        large_vocab.VBLOCK_MIN, large_vocab.DW_BLOCK_BYTES, large_vocab.DW_BLOCK_MIN = saved
