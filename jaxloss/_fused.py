"""Fast log-sum-exp over the last axis for the cross-entropies (private).

:func:`logsumexp_last` is numerically the stable ``m + log Σ exp(x - m)`` with ``m`` the row
maximum under ``stop_gradient`` (non-finite maxima replaced by 0), the formula
``classification._logsumexp_last`` used before, but scheduled for XLA:CPU:

* **Forward only** (no differentiation): the sum of ``exp(x - m)`` over a long row is taken in
  chunks of a few thousand classes with an ``optimization_barrier`` between the per-chunk sums
  and their total. Without it XLA:CPU (jaxlib 0.10) hands the whole ``sum(exp(x - m))`` to one
  YNNPACK fusion, which over rows of ~100K classes allocates a fresh scratch buffer per call
  (thousands of page faults) and runs ~1.5× slower than the chunked form; short rows are left
  alone (there max and sum-exp already fuse into one pass).
* **Differentiated**: a ``custom_jvp`` rule computes ``e = exp(x - m)`` once, keeps it, and the
  tangent is ``Σ e·dx / Σ e``. Under reverse mode ``e`` becomes the residual and the gradient
  ``ct · e / Σ e`` is written in place over it: one exponential per element, which on CPU is
  cheaper than recomputing ``exp`` in the backward pass (the two-pass "recompute" schedule moves
  16 bytes per element instead of 24 but measured 0.6–0.8× slower here; see ``bench/``).

Forward-mode differentiation (``jax.jvp``, ``jax.jacfwd``) works, as before, since this is a
``custom_jvp``; so do ``vmap``, ``jit``, ``checkpoint`` and higher-order derivatives (the tangent
rule is ordinary JAX code).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxloss._checks import Array

__all__: list[str] = []

#: Rows longer than this are summed in chunks in the forward-only path.
CHUNK_ABOVE = 8192
#: Preferred chunk length (classes) and the range of acceptable divisors of the row length.
CHUNK, CHUNK_MIN, CHUNK_MAX = 4096, 1024, 8192


def _row_max(x: Array) -> Array:
    m = jax.lax.stop_gradient(jnp.max(x, axis=-1))
    return jnp.where(jnp.isfinite(m), m, jnp.zeros((), x.dtype))


def _chunk_length(v: int) -> int | None:
    """A divisor of ``v`` in ``[CHUNK_MIN, CHUNK_MAX]`` closest to ``CHUNK``, or ``None``."""
    divisors = [d for d in range(CHUNK_MIN, CHUNK_MAX + 1) if v % d == 0]
    return min(divisors, key=lambda d: abs(d - CHUNK)) if divisors else None


def _sum_exp(x: Array, m: Array) -> Array:
    """``Σ_c exp(x_c - m)`` over the last axis, chunked over long rows (see module docstring)."""
    v = x.shape[-1]
    if v <= CHUNK_ABOVE:
        return jnp.sum(jnp.exp(x - m[..., None]), axis=-1)
    k = _chunk_length(v)
    head = v if k is not None else (v // CHUNK) * CHUNK
    k = k if k is not None else CHUNK
    body = x if head == v else x[..., :head]
    chunks = body.reshape((*x.shape[:-1], head // k, k)) - m[..., None, None]
    partial = jax.lax.optimization_barrier(jnp.sum(jnp.exp(chunks), axis=-1))
    total = jnp.sum(partial, axis=-1)
    if head < v:
        total = total + jnp.sum(jnp.exp(x[..., head:] - m[..., None]), axis=-1)
    return total


@jax.custom_jvp
def logsumexp_last(x: Array) -> Array:
    """``log Σ_c exp(x_c)`` over the last axis, stable; ``-inf`` for an all ``-inf`` row."""
    m = _row_max(x)
    return m + jnp.log(_sum_exp(x, m))


@logsumexp_last.defjvp
def _logsumexp_last_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    (x,), (dx,) = primals, tangents
    m = _row_max(x)
    e = jnp.exp(x - m[..., None])
    s = jnp.sum(e, axis=-1)
    return m + jnp.log(s), jnp.sum(e * dx, axis=-1) / s
