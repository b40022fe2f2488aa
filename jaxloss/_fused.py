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
    """The row maximum, clipped to the finite range, without gradient.

    Clipping (not ``where(isfinite(m), m, 0)``) keeps the shift a max/min that XLA:CPU fuses
    into the YNNPACK reductions that use it (a select there makes it materialise the broadcast
    shift as a full ``[..., C]`` array). For an all ``-inf`` row the shift is the lowest finite
    number, ``x - m`` is still ``-inf`` and the log-sum-exp ``-inf``; for a row with ``+inf`` it
    is ``+inf``; NaN propagates: the results of the unclipped formula.
    """
    info = jnp.finfo(x.dtype)
    m = jnp.clip(jnp.max(x, axis=-1), info.min, info.max)
    return jax.lax.stop_gradient(m)


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


def max_and_log_sum_exp(x: Array) -> tuple[Array, Array]:
    """``(m, log Σ_c exp(x_c - m))`` over the last axis, ``m`` the row maximum (non-finite → 0).

    ``m`` carries no gradient; the second term's derivative is ``softmax(x)``. Losses that need
    ``x - lse`` weighted by labels use ``Σ y·(x - m) - Σ y · log_s``: differences of similar
    numbers are taken element by element, as in a log-softmax, without materialising it.
    """
    m = _row_max(x)
    return m, _log_sum_exp_from(x, m)


def logsumexp_last(x: Array) -> Array:
    """``log Σ_c exp(x_c)`` over the last axis, stable; ``-inf`` for an all ``-inf`` row."""
    m, log_s = max_and_log_sum_exp(x)
    return m + log_s


@jax.custom_jvp
def _log_sum_exp_from(x: Array, m: Array) -> Array:
    return jnp.log(_sum_exp(x, m))


@_log_sum_exp_from.defjvp
def _log_sum_exp_from_jvp(primals: tuple[Array, Array],
                          tangents: tuple[Array, Array]) -> tuple[Array, Array]:
    # ``m`` is a stop_gradient'ed row maximum (see max_and_log_sum_exp): its tangent is zero.
    (x, m), (dx, _) = primals, tangents
    e = jnp.exp(x - m[..., None])
    s = jnp.sum(e, axis=-1)
    return jnp.log(s), jnp.sum(e * dx, axis=-1) / s


def masked_label_cross_entropy(x: Array, yw: Array, mask: Array) -> Array:
    r"""Per-row ``-Σ_c yw_c · log softmax(x)_c``, exactly 0 (value and gradients) where ``~mask``.

    The probability-label cross-entropy without class masks, in one fused formulation:
    ``log_s · Σ yw - Σ yw·(x - m)`` with ``m`` the row maximum and ``log_s = log Σ exp(x - m)``.
    Excluded rows need no sanitised copy of ``x`` and ``yw`` (two extra passes over ``[..., C]``
    arrays): every quantity of an excluded row is replaced by 0 (or ``s`` by 1) inside the
    rule, so NaN or inf logits or labels there cannot reach the value or any gradient.
    Included rows behave as the log-softmax formula (a ``-inf`` logit with label 0 gives NaN,
    as in optax). Gradients: ``∂/∂x = Σyw · softmax(x) - yw``, ``∂/∂yw = -log softmax(x)``.

    Shapes: ``x`` and ``yw`` are ``[..., C]``, ``mask`` is ``[...]`` (boolean).
    """
    return _masked_ce(x, yw, _row_max(x), mask)


@jax.custom_jvp
def _masked_ce(x: Array, yw: Array, m: Array, mask: Array) -> Array:
    log_s = jnp.log(_sum_exp(x, m))
    per = log_s * jnp.sum(yw, axis=-1) + jnp.sum(yw * _neg_shifted(x), axis=-1)
    return jnp.where(mask, per, jnp.zeros((), per.dtype))


def _neg_shifted(x: Array) -> Array:
    """``max(x) - x`` with the raw (unclipped) row maximum.

    Non-finite maxima only occur in rows whose loss is NaN anyway (all ``-inf``, or ``+inf``
    present: the log-softmax is NaN there too). Using the raw maximum keeps this reduction's
    operands a plain reduction result, which XLA:CPU fuses; ``m - x`` rather than ``x - m``
    so that it is not shared with (and materialised for) the exponential pass.
    """
    return jax.lax.stop_gradient(jnp.max(x, axis=-1))[..., None] - x


@_masked_ce.defjvp
def _masked_ce_jvp(primals: tuple[Array, ...], tangents: tuple[Array, ...]
                   ) -> tuple[Array, Array]:
    # ``m`` is a stop_gradient'ed row maximum and ``mask`` is boolean: no tangents of their own.
    # Masks act on row scalars and on the tangents only (``where`` inside a reduction makes
    # XLA:CPU materialise a masked copy); under reverse mode the tangent masks become selects
    # on the gradients, fused into the one pass that writes them.
    (x, yw, m, mask), (dx, dyw, _, _) = primals, tangents
    keep = mask[..., None]
    zero, one = jnp.zeros((), x.dtype), jnp.ones((), x.dtype)
    e = jnp.exp(x - m[..., None])
    s = jnp.where(mask, jnp.sum(e, axis=-1), one)
    log_s = jnp.log(s)
    total = jnp.where(mask, jnp.sum(yw, axis=-1), zero)
    neg_shifted = _neg_shifted(x)
    per = jnp.where(mask, log_s * total + jnp.sum(yw * neg_shifted, axis=-1), zero)
    dx, dyw = jnp.where(keep, dx, zero), jnp.where(keep, dyw, zero)
    tangent = (total / s * jnp.sum(e * dx, axis=-1) - jnp.sum(yw * dx, axis=-1)
               + jnp.sum((log_s[..., None] + neg_shifted) * dyw, axis=-1))
    return per, tangent
