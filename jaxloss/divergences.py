"""Divergences between distributions: KL (probability or log-space targets) and the generalized
KL of unnormalised measures, optax's names and results with the contract added.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    Axis,
    canonical_axes,
    float_array,
    move_axes_last,
    upcast,
)
from jaxloss._reduction import (
    AxisName,
    Reduction,
    element_mask,
    reduce_elements,
    sanitize,
    where_mask,
)

__all__ = [
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "generalized_kl_divergence",
    "convex_kl_divergence",
]


def _pair_inputs(
    first: ArrayLike,
    first_name: str,
    second: ArrayLike,
    second_name: str,
    axis: Axis | None,
    where: ArrayLike | None,
) -> tuple[Array, Array, tuple[int, ...], Array | None, Array | None]:
    """Upcast and broadcast two distributions, move ``axis`` last; split ``where``.

    ``axis=None`` reduces over every axis (a scalar per call), as in optax. A ``where`` of the
    inputs' rank masks components (optax's meaning); of lower rank, elements of the loss.
    Returns ``(a, b, loss_shape, component_mask, element_where)``.
    """
    a = upcast(float_array(first, first_name))
    b = upcast(float_array(second, second_name))
    try:
        shape = jnp.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{first_name} has shape {tuple(a.shape)} and {second_name} has shape "
            f"{tuple(b.shape)}; they must broadcast together."
        ) from None
    dtype = jnp.promote_types(a.dtype, b.dtype)
    a = jnp.broadcast_to(a, shape).astype(dtype)
    b = jnp.broadcast_to(b, shape).astype(dtype)
    axes = tuple(range(len(shape))) if axis is None else canonical_axes(axis, len(shape))
    loss_shape = tuple(d for i, d in enumerate(shape) if i not in axes)
    a, b = move_axes_last(a, axes), move_axes_last(b, axes)
    component_mask = element_where = None
    if where is not None:
        where = jnp.asarray(where)
        if where.ndim == len(shape) and len(shape) > len(loss_shape):
            component_mask = move_axes_last(where_mask(where, shape, first_name), axes)
        else:
            element_where = where
    return a, b, loss_shape, component_mask, element_where


def _summed_divergence(
    terms_fn: Any,
    first: ArrayLike,
    first_name: str,
    second: ArrayLike,
    second_name: str,
    axis: Axis | None,
    where: ArrayLike | None,
    weights: ArrayLike | None,
    reduction: Reduction,
    axis_name: AxisName | None,
) -> Array:
    """``Σ_axis terms_fn(a, b)`` under the contract; masked components contribute exactly 0."""
    a, b, loss_shape, component_mask, element_where = _pair_inputs(
        first, first_name, second, second_name, axis, where
    )
    include = None
    if component_mask is not None:
        include = jnp.any(component_mask, axis=-1)
        a, b = jnp.where(component_mask, a, 0), jnp.where(component_mask, b, 0)
    mask = element_mask(loss_shape, weights=weights, where=element_where, include=include)
    a, b = sanitize(a, mask), sanitize(b, mask)
    terms = terms_fn(a, b)
    if component_mask is not None:
        terms = jnp.where(component_mask, terms, 0)
    per = jnp.sum(terms, axis=-1)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def _xlogx_terms(targets: Array, log_predictions: Array) -> Array:
    """``t (log t - log q)`` with ``0 log 0 = 0``, finite gradients at ``t = 0``."""
    zero = targets == 0
    log_t = jnp.log(jnp.where(zero, 1, targets))
    # A zero target on a zero prediction (log q = -inf) is 0 too, not 0·inf = NaN; elsewhere
    # log q is kept, so the gradient at a zero target stays -log q.
    log_q = jnp.where(zero & (log_predictions == -jnp.inf), 0, log_predictions)
    return targets * (jnp.where(zero, 0, log_t) - log_q)


def kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis | None = -1,
    where: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Kullback-Leibler divergence ``KL(targets ‖ predictions)`` with predictions in log space.

    .. math:: \ell = \sum_c t_c\,(\log t_c - \log q_c), \qquad 0 \log 0 = 0

    optax's ``kl_divergence``: same arguments, defaults and values. Targets are probabilities
    (a zero target contributes 0); ``log_predictions`` are log-probabilities, e.g. from
    :func:`jaxloss.log_softmax`. The gradient with respect to ``log_predictions`` is ``-t``;
    unlike optax, the gradient with respect to ``targets`` is finite where a target is 0.

    Args:
      log_predictions: ``[..., C]`` log-probabilities of the predicted distribution.
      targets: ``[..., C]`` probabilities of the target distribution (broadcastable).
      axis: axis or axes summed over; ``None`` sums everything (one scalar).
      where: of the inputs' rank, a component mask (optax's meaning: masked components are
        left out of the sum; a row with none left is excluded from means); of lower rank, an
        element mask on the loss shape.
      weights: per-element weights broadcastable to the loss shape (inputs less ``axis``).
      reduction, axis_name: see :func:`jaxloss.reduce`.

    Returns:
      Shape of the inputs less ``axis`` (or a scalar when reduced); float32 for 16-bit inputs.

    >>> import jax.numpy as jnp
    >>> kl_divergence(jnp.log(jnp.array([[0.5, 0.5], [0.9, 0.1]])), jnp.array([[1.0, 0.0]] * 2))
    Array([0.6931472 , 0.10536055], dtype=float32)
    """
    return _summed_divergence(
        lambda lq, t: _xlogx_terms(t, lq),
        log_predictions,
        "log_predictions",
        targets,
        "targets",
        axis,
        where,
        weights,
        reduction,
        axis_name,
    )


def kl_divergence_with_log_targets(
    log_predictions: ArrayLike,
    log_targets: ArrayLike,
    axis: Axis | None = -1,
    where: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Kullback-Leibler divergence with both distributions in log space.

    .. math:: \ell = \sum_c e^{\log t_c}\,(\log t_c - \log q_c)

    optax's ``kl_divergence_with_log_targets``: same arguments, defaults and values. Arguments
    as :func:`kl_divergence`. A target of log-probability ``-inf`` gives NaN, as in optax (use
    :func:`kl_divergence` with probabilities for exact zeros).

    >>> import jax.numpy as jnp
    >>> q = jnp.log(jnp.array([0.25, 0.75]))
    >>> kl_divergence_with_log_targets(q, q)
    Array(0., dtype=float32)
    """
    return _summed_divergence(
        lambda lq, lt: jnp.exp(lt) * (lt - lq),
        log_predictions,
        "log_predictions",
        log_targets,
        "log_targets",
        axis,
        where,
        weights,
        reduction,
        axis_name,
    )


def generalized_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis | None = -1,
    where: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Generalized KL divergence between unnormalised positive measures.

    .. math:: \ell = \sum_c \bigl(t_c \log t_c - t_c \log q_c + q_c - t_c\bigr), \qquad
              q_c = e^{\log q_c}

    The Bregman divergence of ``x log x - x``; equal to :func:`kl_divergence` when both sum to
    1. optax's ``generalized_kl_divergence``: same arguments, defaults and values. Arguments
    as :func:`kl_divergence`.

    >>> import jax.numpy as jnp
    >>> generalized_kl_divergence(jnp.log(jnp.array([1.0, 2.0])), jnp.array([1.0, 1.0]))
    Array(0.30685282, dtype=float32)
    """
    return _summed_divergence(
        lambda lq, t: _xlogx_terms(t, lq) + jnp.exp(lq) - t,
        log_predictions,
        "log_predictions",
        targets,
        "targets",
        axis,
        where,
        weights,
        reduction,
        axis_name,
    )


def convex_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis | None = -1,
    where: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""The former name of :func:`generalized_kl_divergence`; identical results, deprecated.

    .. math:: \ell = \sum_c \bigl(t_c \log t_c - t_c \log q_c + q_c - t_c\bigr)

    Kept because ``optax.losses`` still exports it; like optax's alias, every call warns with a
    ``DeprecationWarning`` naming :func:`generalized_kl_divergence` (at trace time under
    ``jit``).

    >>> import warnings, jax.numpy as jnp
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     value = convex_kl_divergence(jnp.log(jnp.array([1.0, 2.0])), jnp.array([1.0, 1.0]))
    >>> value, caught[0].category.__name__
    (Array(0.30685282, dtype=float32), 'DeprecationWarning')
    """
    warnings.warn(
        "The function convex_kl_divergence is deprecated (as in optax). "
        "Please use generalized_kl_divergence instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    return generalized_kl_divergence(
        log_predictions,
        targets,
        axis,
        where,
        weights=weights,
        reduction=reduction,
        axis_name=axis_name,
    )
