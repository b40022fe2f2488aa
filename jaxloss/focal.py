"""Focal losses (Lin et al. 2017): sigmoid and softmax, cross-entropy scaled by ``(1 - p)^γ``.

Both take the contract arguments (see :func:`jaxloss.reduce`); the softmax form takes integer or
probability labels.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    Axis,
    check_broadcast,
    class_weight_vector,
    float_array,
    is_python_number,
    nan_if_out_of_range,
    pick_label,
    upcast,
)
from jaxloss._class_axis import (
    class_inputs,
    class_integer_labels,
    labeled_rows,
    labels_last,
    log_softmax_last,
)
from jaxloss._fused import (
    label_sums,
    sigmoid_terms,
)
from jaxloss._reduction import AxisName, Reduction, element_mask, reduce_elements, sanitize

__all__ = [
    "sigmoid_focal_loss",
    "softmax_focal_loss",
]


def _is_small_natural(gamma: Any) -> bool:
    """Whether ``gamma`` is a Python number equal to an integer in ``[0, 16]``."""
    return is_python_number(gamma) and float(gamma).is_integer() and 0 <= gamma <= 16


def _focal_factor(log_one_minus_p: Array, gamma: Any) -> Array:
    """``(1 - p)^γ`` as ``exp(γ log(1 - p))``: finite, with a finite gradient, even at p = 1."""
    return jnp.exp(gamma * log_one_minus_p)


def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float | ArrayLike | None = None,
    gamma: float | ArrayLike = 2.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Sigmoid focal loss (Lin et al. 2017), optax's signature and results.

    .. math:: \ell = \alpha_t\, (1 - p_t)^\gamma\, \mathrm{BCE}(x, y), \quad
              p_t = p y + (1-p)(1-y), \quad \alpha_t = \alpha y + (1-\alpha)(1-y)

    ``alpha=None`` means no α-balancing. Extreme logits give finite values and gradients:
    ``p`` and ``1 - p`` are both computed without cancellation from one ``exp(-|x|)``, and for a
    Python ``γ`` that is a whole number (0 … 16, the default 2.0 included) ``(1 - p_t)^γ`` is an
    integer power of a number in [0, 1]; any other ``γ`` (fractional, or traced) goes through
    log space, ``exp(γ log(1 - p_t))``. Both equal optax's ``(1 - p_t) ** γ`` up to rounding.

    >>> import jax.numpy as jnp
    >>> sigmoid_focal_loss(jnp.array([0.0]), jnp.array([1.0]))   # 0.25 · log 2
    Array([0.1732868], dtype=float32)
    """
    x = upcast(float_array(logits, "logits"))
    y = jnp.asarray(labels)
    check_broadcast(y, "labels", x.shape, "logits")
    y = jnp.broadcast_to(y.astype(x.dtype), x.shape)
    mask = element_mask(x.shape, weights=weights, where=where)
    x, y = sanitize(x, mask), sanitize(y, mask)
    softplus_x, softplus_neg_x, p, q = sigmoid_terms(x)  # q = σ(-x) = 1 - p, accurately
    ce = y * softplus_neg_x + (1.0 - y) * softplus_x
    if _is_small_natural(gamma):
        # (1 - p_t)^γ = ((1-y)·p + y·(1-p))^γ as an integer power: no log, no exp, and finite
        # with a finite gradient everywhere (the base is in [0, 1]).
        per = ce * jax.lax.integer_pow((1.0 - y) * p + y * q, int(gamma))
    else:
        # log(1 - p_t) = log((1-y)·p + y·(1-p)), a two-term log-sum-exp of log σ(±x).
        log_one_minus_pt = jax.scipy.special.logsumexp(
            jnp.stack([-softplus_neg_x, -softplus_x], axis=-1),
            axis=-1,
            b=jnp.stack([1.0 - y, y], axis=-1),
        )
        per = ce * _focal_factor(log_one_minus_pt, gamma)
    if alpha is not None:
        per = (alpha * y + (1.0 - alpha) * (1.0 - y)) * per
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def softmax_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    axis: Axis = -1,
    gamma: float = 2.0,
    alpha: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Multi-class focal loss: cross-entropy scaled by ``(1 - p_c)^γ`` per class.

    .. math:: \ell = -\sum_c \alpha_c\, w_c\, y_c\, (1 - p_c)^\gamma \log p_c,
              \quad p = \mathrm{softmax}(x)

    ``labels`` may be integer class indices (``ignore_index`` supported) or probability /
    one-hot rows (an all-zero row is unlabeled). ``alpha`` is a scalar or a ``[C]`` per-class
    factor of the loss (it does not enter ``"weighted_mean"``'s denominator; ``class_weights``
    does). ``gamma=0`` and ``alpha=None`` give :func:`softmax_cross_entropy`. ``where`` is an
    element mask here.

    >>> import jax.numpy as jnp
    >>> softmax_focal_loss(jnp.array([[0.0, 0.0]]), jnp.array([1]))   # 0.5² · log 2
    Array([0.1732868], dtype=float32)
    """
    x, axes, loss_shape, _, _ = class_inputs(logits, axis, None)
    num_classes = x.shape[-1]
    labels = jnp.asarray(labels)
    integer = jnp.issubdtype(labels.dtype, jnp.integer)
    if integer:
        safe_labels, in_range, include = class_integer_labels(
            labels, loss_shape, num_classes, ignore_index
        )
    else:
        y = labels_last(labels, jnp.shape(logits), axes).astype(x.dtype)
        include = labeled_rows(y)
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    x = sanitize(x, mask)
    log_p = log_softmax_last(x, None)
    # (1 - p)^γ from -expm1(log p): accurate near p = 1, and 0 with zero gradient at p = 1.
    one_minus_p = -jnp.expm1(log_p)
    positive = one_minus_p > 0
    focal = jnp.where(positive, jnp.where(positive, one_minus_p, 1.0) ** gamma, 0.0)
    terms = -focal * log_p  # [..., C]
    factor = jnp.ones((num_classes,), x.dtype)
    if alpha is not None:
        factor = factor * jnp.broadcast_to(jnp.asarray(alpha, x.dtype), (num_classes,))
    cw = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, num_classes, x.dtype)
    if integer:
        per = pick_label(terms, safe_labels) * pick_label(factor, safe_labels)
        element_weight = None if cw is None else pick_label(cw, safe_labels)
        if cw is not None:
            per = per * element_weight
        per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    else:
        y = sanitize(y, mask)
        yw = y * factor if cw is None else y * factor * cw
        per = jnp.sum(jnp.where(yw != 0, yw * terms, 0), axis=-1)
        element_weight = None if cw is None else label_sums(y, cw)[0]
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )
