"""Focal losses (Lin et al. 2017): cross-entropy scaled by ``(1 - p)^γ``.

From logits (sigmoid and softmax; optax's) and from probabilities (binary and categorical;
Keras's ``from_logits=False``). All take the contract arguments (see :func:`jaxloss.reduce`); the
softmax form takes integer or probability labels.
"""

from __future__ import annotations

from typing import Any, cast

import jax
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    Axis,
    canonical_axes,
    check_broadcast,
    class_weight_vector,
    float_array,
    is_python_number,
    move_axes_last,
    nan_if_out_of_range,
    pick_label,
    static_float,
    upcast,
)
from jaxloss._class_axis import (
    check_smoothing,
    class_inputs,
    class_integer_labels,
    is_zero,
    labeled_rows,
    labels_last,
    log_softmax_last,
)
from jaxloss._fused import (
    label_sums,
    sigmoid_terms,
)
from jaxloss._labels import binary_class_weights, binary_label_weight, smooth_binary_labels
from jaxloss._reduction import AxisName, Reduction, element_mask, reduce_elements, sanitize

__all__ = [
    "sigmoid_focal_loss",
    "softmax_focal_loss",
    "binary_focal_loss",
    "categorical_focal_loss",
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
    class_weights: ArrayLike | None = None,
    label_smoothing: float | ArrayLike = 0.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Sigmoid focal loss (Lin et al. 2017), optax's signature and results.

    .. math:: \ell = \alpha_t\, (1 - p_t)^\gamma\, \mathrm{BCE}_w(x, \tilde y), \quad
              p_t = p \tilde y + (1-p)(1-\tilde y), \quad
              \alpha_t = \alpha \tilde y + (1-\alpha)(1-\tilde y)

    ``alpha=None`` means no α-balancing. Extreme logits give finite values and gradients:
    ``p`` and ``1 - p`` are both computed without cancellation from one ``exp(-|x|)``, and for a
    Python ``γ`` that is a whole number (0 … 16, the default 2.0 included) ``(1 - p_t)^γ`` is an
    integer power of a number in [0, 1]; any other ``γ`` (fractional, or traced) goes through
    log space, ``exp(γ log(1 - p_t))``. Both equal optax's ``(1 - p_t) ** γ`` up to rounding.

    ``label_smoothing`` ``ε`` gives ``ỹ = (1 - ε) y + ε/2``, used everywhere ``y`` is (Keras's
    ``binary_focal_crossentropy(label_smoothing=ε)``). ``class_weights`` ``(w_0, w_1)`` (or
    ``[..., 2]``, as in :func:`sigmoid_binary_cross_entropy`) weight the two terms of the BCE,
    ``BCE_w = -(w_1 ỹ log p + w_0 (1 - ỹ) log(1 - p))``, and give the element the weight
    ``w_0 (1 - y) + w_1 y`` in ``"weighted_mean"``: for hard labels the loss is ``w_y`` times the
    focal loss. Unlike ``alpha`` (a factor of the loss only), they enter the denominator.

    >>> import jax.numpy as jnp
    >>> sigmoid_focal_loss(jnp.array([0.0]), jnp.array([1.0]))   # 0.25 · log 2
    Array([0.1732868], dtype=float32)
    >>> sigmoid_focal_loss(jnp.array([0.0, 0.0]), jnp.array([0.0, 1.0]), class_weights=(1.0, 3.0),
    ...                    reduction="weighted_mean")            # (1 + 3) · 0.25 log 2 / (1 + 3)
    Array(0.1732868, dtype=float32)
    """
    x = upcast(float_array(logits, "logits"))
    y = jnp.asarray(labels)
    check_broadcast(y, "labels", x.shape, "logits")
    y = jnp.broadcast_to(y.astype(x.dtype), x.shape)
    mask = element_mask(x.shape, weights=weights, where=where)
    x, y = sanitize(x, mask), sanitize(y, mask)
    cw = binary_class_weights(class_weights, x.shape)
    element_weight = None if cw is None else binary_label_weight(y, cw)
    y = smooth_binary_labels(y, label_smoothing)
    softplus_x, softplus_neg_x, p, q = sigmoid_terms(x)  # q = σ(-x) = 1 - p, accurately
    if cw is None:
        ce = y * softplus_neg_x + (1.0 - y) * softplus_x
    else:
        w_neg, w_pos = (w.astype(x.dtype) for w in cw)
        ce = w_pos * y * softplus_neg_x + w_neg * (1.0 - y) * softplus_x
    if _is_small_natural(gamma):
        # (1 - p_t)^γ = ((1-y)·p + y·(1-p))^γ as an integer power: no log, no exp, and finite
        # with a finite gradient everywhere (the base is in [0, 1]).
        per = ce * jax.lax.integer_pow((1.0 - y) * p + y * q, int(cast(float, gamma)))
    else:
        # log(1 - p_t) = log((1-y)·p + y·(1-p)), a two-term log-sum-exp of log σ(±x).
        log_one_minus_pt = jax.scipy.special.logsumexp(
            jnp.stack([-softplus_neg_x, -softplus_x], axis=-1),
            axis=-1,
            b=jnp.stack([1.0 - y, y], axis=-1),
        )
        per = ce * _focal_factor(log_one_minus_pt, gamma)
    if alpha is not None:
        per = jnp.asarray((alpha * y + (1.0 - alpha) * (1.0 - y)) * per)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
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
    label_smoothing: float | ArrayLike = 0.0,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Multi-class focal loss: cross-entropy scaled by ``(1 - p_c)^γ`` per class.

    .. math:: \ell = -\sum_c \alpha_c\, w_c\, \tilde y_c\, (1 - p_c)^\gamma \log p_c,
              \quad p = \mathrm{softmax}(x), \quad
              \tilde y = (1 - \varepsilon)\, y + \varepsilon / C

    ``labels`` may be integer class indices (``ignore_index`` supported) or probability /
    one-hot rows (an all-zero row is unlabeled). ``alpha`` is a scalar or a ``[C]`` per-class
    factor of the loss (it does not enter ``"weighted_mean"``'s denominator; ``class_weights``
    does). ``gamma=0`` and ``alpha=None`` give :func:`softmax_cross_entropy`. ``where`` is an
    element mask here. ``label_smoothing`` ``ε`` spreads mass ``ε`` uniformly over the ``C``
    classes (Keras's ``CategoricalFocalCrossentropy(label_smoothing=ε)``); with class weights
    each class's term keeps its own weight and the element's weight stays that of its label
    (``w_y``, or ``Σ_c w_c y_c``), as in :func:`softmax_cross_entropy_with_integer_labels`.

    >>> import jax.numpy as jnp
    >>> softmax_focal_loss(jnp.array([[0.0, 0.0]]), jnp.array([1]))   # 0.5² · log 2
    Array([0.1732868], dtype=float32)
    """
    x, axes, loss_shape, _, _ = class_inputs(logits, axis, None)
    num_classes = x.shape[-1]
    check_smoothing(label_smoothing)
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
        element_weight = None
        if cw is not None:
            element_weight = pick_label(cw, safe_labels)
            per = per * element_weight
        if not is_zero(label_smoothing):  # the ε/C share of every class, each with its weight
            class_factor = factor if cw is None else factor * cw
            spread = jnp.sum(jnp.where(class_factor != 0, class_factor * terms, 0), axis=-1)
            per = (1.0 - label_smoothing) * per + label_smoothing / num_classes * spread
        per = nan_if_out_of_range(jnp.asarray(per), in_range, mask, num_classes, ignore_index)
    else:
        y = sanitize(y, mask)
        element_weight = None if cw is None else label_sums(y, cw)[0]
        if not is_zero(label_smoothing):
            y = (1.0 - label_smoothing) * y + label_smoothing / num_classes
        yw = y * factor if cw is None else y * factor * cw
        per = jnp.sum(jnp.where(yw != 0, yw * terms, 0), axis=-1)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )


def _power_of_unit(base: Array, gamma: Any) -> Array:
    """``base^γ`` for ``base`` in [0, 1]: an integer power for whole Python ``γ``, else ``0`` at
    ``base = 0`` with a zero (not infinite or NaN) gradient there."""
    if _is_small_natural(gamma):
        return jax.lax.integer_pow(base, int(gamma))
    positive = base > 0
    return jnp.where(positive, jnp.where(positive, base, 1.0) ** gamma, 0.0)


def binary_focal_loss(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    alpha: float | ArrayLike | None = None,
    gamma: float | ArrayLike = 2.0,
    epsilon: float = 1e-7,
    class_weights: ArrayLike | None = None,
    label_smoothing: float | ArrayLike = 0.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Binary focal loss from probabilities (Keras's ``binary_focal_crossentropy``).

    .. math:: \ell = \alpha_t\, (1 - p_t)^\gamma\,
              \bigl(-w_1 \tilde y \log \hat p - w_0 (1 - \tilde y) \log(1 - \hat p)\bigr), \quad
              p_t = \tilde y p + (1 - \tilde y)(1 - p)

    with ``p̂ = clip(p, ε, 1 - ε)``, ``ỹ = (1 - ε_ls) y + ε_ls/2`` and
    ``α_t = α ỹ + (1 - α)(1 - ỹ)``: Keras's ``from_logits=False`` form, per element (Keras
    averages over the last axis; reduce with ``reduction``). Keras's
    ``apply_class_balancing=True, alpha=a`` is ``alpha=a`` here; ``alpha=None`` (default) means
    no α-balancing. ``class_weights`` and ``label_smoothing`` mean what they mean in
    :func:`sigmoid_focal_loss`, the logits form, which is more accurate near 0 and 1.

    Args:
      probs: probabilities in [0, 1], any shape.
      labels: in [0, 1], broadcastable to ``probs``.
      alpha, gamma: the balancing factor and the focusing exponent ``γ ≥ 0``.
      epsilon: the clip of the probabilities inside the logarithms (Keras's 1e-7).
      class_weights: ``(w_0, w_1)`` or ``[..., 2]``; the element's weight for
        ``"weighted_mean"`` is ``w_0 (1 - y) + w_1 y``.
      label_smoothing: ``ε_ls`` in [0, 1].
      weights, where, reduction, axis_name: the contract, against ``probs.shape``.

    Edges: the loss is bounded by ``-log ε``; a fractional ``γ`` has a zero gradient where
    ``p_t = 1``.

    >>> import jax.numpy as jnp
    >>> binary_focal_loss(jnp.array([0.6, 0.4]), jnp.array([0.0, 1.0]))  # 0.6² · -log 0.4
    Array([0.3298647, 0.3298647], dtype=float32)
    """
    p = upcast(float_array(probs, "probs"))
    static_float(epsilon, "epsilon", low=0.0, high=0.5, high_open=True)
    y = jnp.asarray(labels)
    check_broadcast(y, "labels", p.shape, "probs")
    y = jnp.broadcast_to(y.astype(p.dtype), p.shape)
    mask = element_mask(p.shape, weights=weights, where=where)
    p, y = sanitize(p, mask, 0.5), sanitize(y, mask)
    cw = binary_class_weights(class_weights, p.shape, "probs")
    element_weight = None if cw is None else binary_label_weight(y, cw)
    y = smooth_binary_labels(y, label_smoothing)
    clipped = jnp.clip(p, epsilon, 1.0 - epsilon)
    pos, neg = -y * jnp.log(clipped), -(1.0 - y) * jnp.log1p(-clipped)
    if cw is not None:
        pos, neg = cw[1].astype(p.dtype) * pos, cw[0].astype(p.dtype) * neg
    per = (pos + neg) * _power_of_unit(y * (1.0 - p) + (1.0 - y) * p, gamma)
    if alpha is not None:
        per = jnp.asarray((alpha * y + (1.0 - alpha) * (1.0 - y)) * per)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )


def categorical_focal_loss(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    axis: Axis = -1,
    alpha: ArrayLike | None = None,
    gamma: float | ArrayLike = 2.0,
    epsilon: float = 1e-7,
    class_weights: ArrayLike | None = None,
    label_smoothing: float | ArrayLike = 0.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Multi-class focal loss from probabilities (Keras's ``categorical_focal_crossentropy``).

    .. math:: \ell = -\sum_c \alpha_c\, w_c\, \tilde y_c\, (1 - \hat p_c)^\gamma \log \hat p_c,
              \quad \hat p = \mathrm{clip}(p / \textstyle\sum_c p_c,\
              \varepsilon,\ 1 - \varepsilon), \quad
              \tilde y = (1 - \varepsilon_{ls})\, y + \varepsilon_{ls} / C

    Keras's ``from_logits=False`` form: the probabilities are renormalised along ``axis`` and
    clipped, as in :func:`categorical_cross_entropy`. ``alpha`` (scalar or ``[C]``) is a factor of
    the loss only; ``alpha=None`` (default) is 1, Keras's default is ``alpha=0.25``. From logits
    use :func:`softmax_focal_loss` (the same loss, without the clip, and integer labels).

    Args:
      probs: ``[..., C, ...]`` probabilities (renormalised along ``axis``).
      labels: probabilities or one-hot rows broadcastable to ``probs``; an all-zero row is
        unlabeled (contributes 0, left out of means).
      axis: class axis (or axes).
      alpha, gamma: per-class factor and focusing exponent ``γ ≥ 0``.
      epsilon: the clip (Keras's 1e-7).
      class_weights: ``[C]`` weights inside the sum; the element's weight for
        ``"weighted_mean"`` is ``Σ_c w_c y_c`` of the unsmoothed labels.
      label_smoothing: ``ε_ls`` in [0, 1], spread uniformly over the ``C`` classes.
      weights, where, reduction, axis_name: the contract, against the loss shape (``probs``
        less ``axis``); ``where`` is an element mask.

    >>> import jax.numpy as jnp
    >>> categorical_focal_loss(jnp.array([[0.2, 0.8]]), jnp.array([[0.0, 1.0]]))  # 0.2² · -log 0.8
    Array([0.00892574], dtype=float32)
    """
    p = upcast(float_array(probs, "probs"))
    static_float(epsilon, "epsilon", low=0.0, high=0.5, high_open=True)
    check_smoothing(label_smoothing)
    axes = canonical_axes(axis, p.ndim, ordered=True)
    loss_shape = tuple(d for i, d in enumerate(p.shape) if i not in axes)
    y = labels_last(labels, p.shape, axes).astype(p.dtype)
    p = move_axes_last(p, axes)
    num_classes = p.shape[-1]
    mask = element_mask(loss_shape, weights=weights, where=where, include=labeled_rows(y))
    p, y = sanitize(p, mask, 1.0), sanitize(y, mask)
    p = jnp.clip(p / jnp.sum(p, axis=-1, keepdims=True), epsilon, 1.0 - epsilon)
    factor = jnp.ones((num_classes,), p.dtype)
    if alpha is not None:
        factor = factor * jnp.broadcast_to(jnp.asarray(alpha, p.dtype), (num_classes,))
    element_weight = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, num_classes, p.dtype)
        element_weight = label_sums(y, cw)[0]
        factor = factor * cw
    if not is_zero(label_smoothing):
        y = (1.0 - label_smoothing) * y + label_smoothing / num_classes
    per = -jnp.sum(factor * y * _power_of_unit(1.0 - p, gamma) * jnp.log(p), axis=-1)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )
