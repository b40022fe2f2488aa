"""Softmax and its relatives, the sigmoid family, and a masked one-hot.

All functions take an ``axis``; the softmax family also takes ``where`` (a class mask:
masked classes get probability exactly 0 and a fully masked row gives zeros, never NaN) and a
``temperature`` (logits are divided by it first). Gradients are finite everywhere, including
at fully masked rows and logits of ±1e4.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    Axis,
    boolean_mask,
    canonical_axes,
    canonical_axis,
    check_broadcast,
    explicit_spec,
    float_array,
    integer_array,
    pick_label,
    reshard_like,
    static_float,
    upcast,
)

__all__ = [
    "softmax",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "log_sigmoid",
    "one_hot",
    "sparsemax",
]


def _prepare(
    x: ArrayLike, axis: Axis, where: ArrayLike | None, temperature: Any, name: str = "x"
) -> tuple[Array, tuple[int, ...], Array | None]:
    x = float_array(x, name)
    axes = canonical_axes(axis, x.ndim)
    static_float(temperature, "temperature", low=0.0, low_open=True)
    if not (isinstance(temperature, int | float) and temperature == 1):
        x = x / jnp.asarray(temperature, x.dtype)
    if where is None:
        return x, axes, None
    mask = boolean_mask(where)
    check_broadcast(mask, "where", x.shape, "logits")
    return x, axes, jnp.broadcast_to(mask, x.shape)


def _shift(x: Array, axes: tuple[int, ...], mask: Array | None) -> tuple[Array, Array]:
    """``x - max(x)`` over ``axes`` (masked classes set to the max), and the max.

    The max is under ``stop_gradient`` (the result does not depend on it); a fully masked row
    uses 0 so that nothing becomes ``-inf - -inf``.
    """
    if mask is None:
        m = jnp.max(x, axis=axes, keepdims=True)
    else:
        m = jnp.max(x, axis=axes, keepdims=True, where=mask, initial=-jnp.inf)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros((), x.dtype)))
    shifted = x - m
    if mask is not None:
        shifted = jnp.where(mask, shifted, jnp.zeros((), x.dtype))
    return shifted, m


def softmax(
    x: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    *,
    temperature: float | ArrayLike = 1.0,
) -> Array:
    r"""Softmax over ``axis``, optionally masked and tempered.

    .. math:: \mathrm{softmax}(x)_i = \frac{[m_i]\, e^{x_i/T}}{\sum_j [m_j]\, e^{x_j/T}}

    Args:
      x: logits of any shape.
      axis: class axis or axes.
      where: boolean mask broadcastable to ``x``; masked entries get probability exactly 0
        and a fully masked row gives all zeros (never NaN) with zero gradient.
      temperature: ``T > 0``; higher is flatter.

    >>> import jax.numpy as jnp
    >>> softmax(jnp.array([0.0, jnp.log(3.0)]))
    Array([0.25      , 0.75000006], dtype=float32)
    >>> softmax(jnp.array([1.0, 2.0, 3.0]), where=jnp.array([True, False, True]))
    Array([0.11920291, 0.        , 0.880797  ], dtype=float32)
    """
    x, axes, mask = _prepare(x, axis, where, temperature)
    shifted, _ = _shift(x, axes, mask)
    e = jnp.exp(shifted)
    if mask is not None:
        e = jnp.where(mask, e, jnp.zeros((), e.dtype))
    total = jnp.sum(e, axis=axes, keepdims=True)
    return e / jnp.where(total == 0, jnp.ones((), total.dtype), total)


def log_softmax(
    x: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    *,
    temperature: float | ArrayLike = 1.0,
) -> Array:
    r"""Log of :func:`softmax`, computed stably as ``x - logsumexp(x)``.

    .. math:: \log\mathrm{softmax}(x)_i = x_i/T - \log\sum_j [m_j]\, e^{x_j/T}

    Masked entries (``where`` false) are ``-inf`` (the log of probability 0); their gradient is 0.
    A fully masked row is all ``-inf`` with zero gradient.

    >>> import jax.numpy as jnp
    >>> log_softmax(jnp.array([0.0, 0.0]))
    Array([-0.6931472, -0.6931472], dtype=float32)
    """
    x, axes, mask = _prepare(x, axis, where, temperature)
    shifted, _ = _shift(x, axes, mask)
    e = jnp.exp(shifted)
    if mask is not None:
        e = jnp.where(mask, e, jnp.zeros((), e.dtype))
    total = jnp.sum(e, axis=axes, keepdims=True)
    out = shifted - jnp.log(jnp.where(total == 0, jnp.ones((), total.dtype), total))
    if mask is not None:
        out = jnp.where(mask, out, jnp.asarray(-jnp.inf, out.dtype))
    return out


def logsumexp(
    x: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    *,
    temperature: float | ArrayLike = 1.0,
    keepdims: bool = False,
) -> Array:
    r"""Stable ``log Σ exp(x/T)`` over ``axis``, optionally masked.

    .. math:: \mathrm{lse}(x) = \max_j x_j + \log\sum_j [m_j]\, e^{x_j - \max x}

    With ``temperature=T`` the result is ``logsumexp(x / T)`` (not rescaled by ``T``). A fully
    masked row gives ``-inf`` (the log of an empty sum) with zero gradient.

    >>> import jax.numpy as jnp
    >>> logsumexp(jnp.array([1e4, 1e4]))
    Array(10000.693, dtype=float32)
    """
    x, axes, mask = _prepare(x, axis, where, temperature)
    shifted, m = _shift(x, axes, mask)
    e = jnp.exp(shifted)
    if mask is not None:
        e = jnp.where(mask, e, jnp.zeros((), e.dtype))
    total = jnp.sum(e, axis=axes, keepdims=True)
    out = m + jnp.log(jnp.where(total == 0, jnp.ones((), total.dtype), total))
    out = jnp.where(total == 0, jnp.asarray(-jnp.inf, out.dtype), out)
    return out if keepdims else jnp.squeeze(out, axis=axes)


def sigmoid(x: ArrayLike) -> Array:
    r"""Logistic sigmoid :math:`\sigma(x) = 1 / (1 + e^{-x})`, exact 0/1 limits, no overflow.

    >>> import jax.numpy as jnp
    >>> sigmoid(jnp.array([0.0, -1e4, 1e4]))
    Array([0.5, 0. , 1. ], dtype=float32)
    """
    return jax.nn.sigmoid(float_array(x, "x"))


def log_sigmoid(x: ArrayLike) -> Array:
    r"""Stable :math:`\log\sigma(x) = -\mathrm{softplus}(-x)`; exactly ``x`` for very negative x.

    >>> import jax.numpy as jnp
    >>> log_sigmoid(jnp.array([0.0, -1e4]))
    Array([-6.931472e-01, -1.000000e+04], dtype=float32)
    """
    return jax.nn.log_sigmoid(float_array(x, "x"))


def one_hot(
    labels: ArrayLike,
    num_classes: int,
    *,
    dtype: Any = jnp.float32,
    axis: int = -1,
    ignore_index: int | None = None,
) -> Array:
    r"""One-hot encoding where ``ignore_index`` and out-of-range labels give an all-zero row.

    .. math:: \mathrm{one\_hot}(y)_c = [y = c]\,[0 \le y < C]\,[y \ne \text{ignore\_index}]

    An all-zero row is how the probability-label losses mark an unlabeled example, so
    ``softmax_cross_entropy(logits, one_hot(y, C, ignore_index=-1))`` leaves rows with label
    -1 out of the loss and its mean.

    >>> import jax.numpy as jnp
    >>> one_hot(jnp.array([0, 2, -1, 5]), 3, ignore_index=-1)
    Array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 0., 0.],
           [0., 0., 0.]], dtype=float32)
    """
    labels = integer_array(labels, "labels")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive Python int; got {num_classes!r}.")
    valid = (labels >= 0) & (labels < num_classes)
    if ignore_index is not None:
        valid = valid & (labels != ignore_index)
    axis = canonical_axis(axis, labels.ndim + 1, what=" (where the class axis goes)")
    safe = jnp.where(valid, labels, -1)  # jax.nn.one_hot maps -1 to the zero row
    return jax.nn.one_hot(safe, num_classes, dtype=dtype, axis=axis)


# ---------------------------------------------------------------------------------------------
# Sparsemax (the optax-superset issue).


def sparsemax(
    x: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Sparsemax: the Euclidean projection of ``x`` onto the probability simplex.

    .. math:: \mathrm{sparsemax}(x) = \arg\min_{p \in \Delta} \lVert p - x \rVert_2^2
              = \max(x - \tau(x), 0), \quad \textstyle\sum_i \max(x_i - \tau, 0) = 1

    Martins & Astudillo (2016). Like softmax it returns a distribution over ``axis``, but
    entries below the threshold ``τ`` are exactly 0. This is the map optax's
    ``projections.projection_simplex`` computes and :func:`multiclass_sparsemax_loss` uses.
    The Jacobian is ``diag(s) - s sᵀ / |s|`` with ``s`` the support (``p > 0``), so gradients
    are defined everywhere and zero outside the support.

    Sharding: the threshold needs the scores of a row sorted, so a ``jit`` with the ``axis``
    sharded all-gathers the row (each device sorts whole rows); a sharded batch moves nothing.

    Args:
      x: scores of any shape.
      axis: the axis (or axes, flattened in order) that sums to 1.
      where: boolean mask broadcastable to ``x``; masked entries get exactly 0 and zero
        gradient, a fully masked row gives all zeros.

    Returns:
      Same shape and dtype as ``x``. 16-bit inputs are computed in float32 and cast back.

    >>> import jax.numpy as jnp
    >>> sparsemax(jnp.array([0.0, 0.5, 3.0]))
    Array([0., 0., 1.], dtype=float32)
    >>> sparsemax(jnp.array([1.0, 1.2, 0.1]))
    Array([0.39999998, 0.6       , 0.        ], dtype=float32)
    """
    x = float_array(x, "x")
    axes = canonical_axes(axis, x.ndim)
    z = upcast(x)
    mask = None
    if where is not None:
        mask = boolean_mask(where)
        check_broadcast(mask, "where", x.shape, "x")
        mask = jnp.broadcast_to(mask, x.shape)
    z_last = _move_last(z, axes)
    # The sort needs whole rows: a class axis sharded in the type is gathered for it (under
    # explicit axes this must be said; under auto sharding XLA does the same by itself).
    spec = explicit_spec(z_last)
    z_last = reshard_like(z_last, (*spec[:-1], None))
    if mask is None:
        p_last = _sparsemax_last(z_last)
    else:
        mask_last = _move_last(mask, axes)
        top = jnp.max(z_last, axis=-1, keepdims=True, where=mask_last, initial=-jnp.inf)
        top = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0))
        # Any score at or below max - 1 is outside the support (τ ≥ max - 1), so masked
        # entries placed at max - 2 never enter it.
        p_last = _sparsemax_last(jnp.where(mask_last, z_last, top - 2))
        p_last = jnp.where(mask_last, p_last, 0)
    p_last = reshard_like(p_last, spec)
    return _move_back(p_last, x.shape, axes).astype(x.dtype)


def _move_last(x: Array, axes: tuple[int, ...]) -> Array:
    """Move ``axes`` to the end, flattened into one axis (the inverse is :func:`_move_back`)."""
    rest = tuple(a for a in range(x.ndim) if a not in axes)
    x = jnp.transpose(x, rest + axes)
    # The flattened size is spelled out: ``-1`` cannot be resolved when another axis is 0.
    return x.reshape((*x.shape[: len(rest)], math.prod(x.shape[len(rest) :])))


def _move_back(x: Array, shape: tuple[int, ...], axes: tuple[int, ...]) -> Array:
    rest = tuple(a for a in range(len(shape)) if a not in axes)
    x = x.reshape(tuple(shape[a] for a in rest) + tuple(shape[a] for a in axes))
    order = rest + axes
    return jnp.transpose(x, tuple(order.index(a) for a in range(len(shape))))


@jax.custom_jvp
def _sparsemax_last(z: Array) -> Array:
    """Sparsemax over the last axis (sort-based threshold, O(C log C) per row)."""
    # Shift by the row's maximum first (sparsemax is shift-invariant): the support test
    # ``1 + k z_(k) > Σ z_(j)`` loses the 1 to rounding once scores pass ~2²⁴ in float32,
    # which would leave an empty support and all zeros.
    top = jnp.max(z, axis=-1, keepdims=True, initial=-jnp.inf)
    z = z - jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0))
    descending = jnp.flip(jnp.sort(z, axis=-1), axis=-1)
    partial_sums = jnp.cumsum(descending, axis=-1)
    rank = jnp.arange(1, z.shape[-1] + 1, dtype=z.dtype)
    # k(z) = max{k : 1 + k z_(k) > Σ_{j≤k} z_(j)}; the top score always qualifies, so k ≥ 1.
    size = jnp.sum(1 + rank * descending > partial_sums, axis=-1, keepdims=True)
    tau = (pick_label(partial_sums, size[..., 0] - 1)[..., None] - 1) / size.astype(z.dtype)
    return jnp.maximum(z - tau, 0)


@_sparsemax_last.defjvp
def _sparsemax_last_jvp(primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    (z,), (dz,) = primals, tangents
    p = _sparsemax_last(z)
    support = (p > 0).astype(z.dtype)
    size = jnp.sum(support, axis=-1, keepdims=True)
    mean_on_support = jnp.sum(support * dz, axis=-1, keepdims=True) / size
    return p, support * (dz - mean_on_support)
