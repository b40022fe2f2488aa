"""Classification losses: cross-entropies, focal losses, cost-sensitive losses, margin losses.

Every loss returns the per-element loss by default (``reduction="none"``, as optax does) and
takes the contract arguments ``weights``, ``where``, ``class_weights``, ``ignore_index`` (integer
labels) and ``reduction`` described in :func:`jaxloss.reduce`.

``where`` for losses with a class axis follows optax: a mask with the rank of ``logits`` masks
*classes* (masked classes are left out of the softmax; a row with no class left is excluded); a
mask of lower rank masks *elements* and broadcasts against the loss shape (``logits.shape``
without the class axis). To mask the same classes in every row pass shape ``[1, C]``.

16-bit logits are accumulated in float32 and give a float32 loss (their gradient comes back in
the input dtype); float64 stays float64.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    Axis,
    canonical_axes,
    check_broadcast,
    check_labels_shape,
    class_weight_vector,
    float_array,
    integer_array,
    move_axes_last,
    static_float,
    upcast,
    value_check,
)
from jaxloss._reduction import Reduction, element_mask, reduce_elements, sanitize, where_mask

__all__ = [
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "safe_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "softmax_focal_loss",
    "sigmoid_focal_loss",
    "smooth_labels",
    "expected_cost_loss",
    "confusion_weighted_cross_entropy",
]

_INT_HINT = " For probability or one-hot labels use softmax_cross_entropy."


# ---------------------------------------------------------------------------------------------
# Shared preparation of class-axis losses.


def _class_inputs(
    logits: ArrayLike, axis: Axis, where: ArrayLike | None
) -> tuple[Array, tuple[int, ...], tuple[int, ...], Array | None, Array | None]:
    """Upcast logits, move the class axes last; split ``where`` into class and element masks.

    Returns ``(x, axes, loss_shape, class_mask, element_where)`` with ``x`` of shape
    ``loss_shape + (C,)``.
    """
    logits = upcast(float_array(logits, "logits"))
    axes = canonical_axes(axis, logits.ndim)
    loss_shape = tuple(d for i, d in enumerate(logits.shape) if i not in axes)
    x = move_axes_last(logits, axes)
    class_mask = element_where = None
    if where is not None:
        where = jnp.asarray(where)
        if where.ndim == logits.ndim:
            class_mask = move_axes_last(where_mask(where, logits.shape, "logits"), axes)
        else:
            element_where = where
    return x, axes, loss_shape, class_mask, element_where


def _labels_last(labels: ArrayLike, logits_shape: tuple[int, ...], axes: tuple[int, ...]) -> Array:
    """Probability labels broadcast to the logits' shape and laid out like ``_class_inputs``."""
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.number):
        raise TypeError(f"labels must be a numeric array; got dtype {labels.dtype}.")
    check_broadcast(labels, "labels", logits_shape, "logits")
    return move_axes_last(jnp.broadcast_to(labels, logits_shape), axes)


def _logsumexp_last(x: Array, class_mask: Array | None) -> Array:
    """Stable log-sum-exp over the last axis; masked classes excluded; empty rows give 0."""
    if class_mask is None:
        m = jax.lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True))
        m = jnp.where(jnp.isfinite(m), m, jnp.zeros((), x.dtype))
        return (m + jnp.log(jnp.sum(jnp.exp(x - m), axis=-1, keepdims=True)))[..., 0]
    m = jnp.max(x, axis=-1, keepdims=True, where=class_mask, initial=-jnp.inf)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros((), x.dtype)))
    e = jnp.where(class_mask, jnp.exp(jnp.where(class_mask, x - m, 0)), 0)
    total = jnp.sum(e, axis=-1, keepdims=True)
    return (m + jnp.log(jnp.where(total == 0, 1, total)))[..., 0]


def _log_softmax_last(x: Array, class_mask: Array | None) -> Array:
    """log-softmax over the last axis (masked classes: ``-inf``)."""
    out = x - _logsumexp_last(x, class_mask)[..., None]
    if class_mask is not None:
        out = jnp.where(class_mask, out, -jnp.inf)
    return out


def _num_classes_in_row(x: Array, class_mask: Array | None) -> Array | int:
    return x.shape[-1] if class_mask is None else jnp.sum(class_mask, axis=-1)


def _integer_labels(labels: ArrayLike, loss_shape: tuple[int, ...], num_classes: int,
                    ignore_index: int | None) -> tuple[Array, Array, Array | None]:
    """Validate integer labels; returns ``(safe_labels, in_range, include)``."""
    labels = integer_array(labels, "labels", hint=_INT_HINT)
    check_labels_shape(labels, loss_shape)
    if ignore_index is not None and not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index must be a Python int or None; got {ignore_index!r}.")
    in_range = (labels >= 0) & (labels < num_classes)
    include = None if ignore_index is None else labels != ignore_index
    return jnp.where(in_range, labels, 0), in_range, include


def _nan_if_out_of_range(per: Array, in_range: Array, mask: Array | None, num_classes: int,
                         ignore_index: int | None) -> Array:
    """Out-of-range labels that are not excluded give NaN (and raise under ``checked``)."""
    bad_ok = in_range if mask is None else in_range | ~mask
    value_check(bad_ok, f"labels must lie in [0, {num_classes}) or equal "
                        f"ignore_index={ignore_index}; got an out-of-range label.")
    return jnp.where(bad_ok, per, jnp.nan)


def _check_smoothing(label_smoothing: Any) -> None:
    static_float(label_smoothing, "label_smoothing", low=0.0, high=1.0)


def _is_zero(x: Any) -> bool:
    return isinstance(x, int | float) and x == 0


# ---------------------------------------------------------------------------------------------
# Cross-entropies.


def softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    label_smoothing: float | ArrayLike = 0.0,
    reduction: Reduction = "none",
) -> Array:
    r"""Softmax cross-entropy with probability (or one-hot) labels.

    .. math::
        \ell = -\sum_c w_c\, \tilde y_c \log \mathrm{softmax}(x)_c, \qquad
        \tilde y = (1-\varepsilon)\, y + \varepsilon / C

    optax's ``softmax_cross_entropy`` with the contract added: for optax's own arguments the
    results are optax's. The gradient is ``softmax(x)·Σ_c ỹ_c - ỹ`` (``softmax(x) - y`` for
    normalised labels, unweighted).

    Args:
      logits: ``[..., C, ...]`` unnormalised log-probabilities.
      labels: probabilities or one-hot rows, broadcastable to ``logits``. An all-zero row marks
        an unlabeled example: it contributes 0 and is left out of every denominator.
      axis: class axis (or axes).
      where: class mask of the logits' rank (optax's meaning), or element mask of lower rank.
      weights: per-element weights broadcastable to the loss shape (``logits`` less ``axis``).
      class_weights: ``[C]`` weights inside the sum (PyTorch's definition); the element's
        weight for ``"weighted_mean"`` is ``Σ_c w_c y_c`` (before smoothing).
      label_smoothing: ``ε`` in [0, 1], optax's :func:`smooth_labels` applied to labeled rows.
      reduction: see :func:`jaxloss.reduce`.

    Returns:
      The loss, shape ``logits.shape`` less ``axis`` (or a scalar when reduced), float32 for
      16-bit logits.

    Edges: a ``-inf`` logit with label 0 gives NaN as in optax (``0·log 0``); use
    :func:`safe_softmax_cross_entropy` for that convention.

    >>> import jax.numpy as jnp
    >>> logits = jnp.array([[0.0, jnp.log(3.0)], [5.0, 1.0]])
    >>> labels = jnp.array([[0.0, 1.0], [0.0, 0.0]])       # second row unlabeled
    >>> softmax_cross_entropy(logits, labels)
    Array([0.2876821, 0.       ], dtype=float32)
    >>> softmax_cross_entropy(logits, labels, reduction="mean")   # unlabeled row left out
    Array(0.2876821, dtype=float32)
    """
    return _probability_cross_entropy(
        logits, labels, axis, where, weights=weights, class_weights=class_weights,
        label_smoothing=label_smoothing, reduction=reduction, zero_label_is_zero=False)


def safe_softmax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    label_smoothing: float | ArrayLike = 0.0,
    reduction: Reduction = "none",
) -> Array:
    r"""Softmax cross-entropy where ``0 · log 0 = 0``: ``-inf`` logits with label 0 are safe.

    .. math:: \ell = -\sum_{c:\, \tilde y_c \ne 0} w_c\, \tilde y_c \log \mathrm{softmax}(x)_c

    optax's ``safe_softmax_cross_entropy`` (same values and finite gradients for ``-inf``
    logits whose label is 0), extended with ``axis``, ``where`` and the contract arguments of
    :func:`softmax_cross_entropy`.

    >>> import jax.numpy as jnp
    >>> safe_softmax_cross_entropy(jnp.array([[-jnp.inf, 0.0]]), jnp.array([[0.0, 1.0]]))
    Array([0.], dtype=float32)
    """
    return _probability_cross_entropy(
        logits, labels, axis, where, weights=weights, class_weights=class_weights,
        label_smoothing=label_smoothing, reduction=reduction, zero_label_is_zero=True)


def _probability_cross_entropy(
    logits: ArrayLike, labels: ArrayLike, axis: Axis, where: ArrayLike | None, *,
    weights: ArrayLike | None, class_weights: ArrayLike | None,
    label_smoothing: float | ArrayLike, reduction: Reduction, zero_label_is_zero: bool,
) -> Array:
    x, axes, loss_shape, class_mask, element_where = _class_inputs(logits, axis, where)
    y = _labels_last(labels, jnp.shape(logits), axes).astype(x.dtype)
    _check_smoothing(label_smoothing)
    include = jnp.any(y != 0, axis=-1)
    if class_mask is not None:
        include = include & jnp.any(class_mask, axis=-1)
    mask = element_mask(loss_shape, weights=weights, where=element_where, include=include)
    x, y = sanitize(x, mask), sanitize(y, mask)

    cw = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, x.shape[-1], x.dtype)
    element_weight = None if cw is None else jnp.sum(y * cw, axis=-1)
    if not _is_zero(label_smoothing):
        k = _num_classes_in_row(x, class_mask)
        k = k if isinstance(k, int) else k[..., None]
        y = (1.0 - label_smoothing) * y + label_smoothing / k
    yw = y if cw is None else y * cw
    log_p = _log_softmax_last(x, class_mask)
    terms = yw * log_p
    if zero_label_is_zero:
        terms = jnp.where(yw != 0, terms, 0)
    if class_mask is not None:
        terms = jnp.where(class_mask, terms, 0)
    per = -jnp.sum(terms, axis=-1)
    return reduce_elements(per, mask=mask, weights=weights, element_weight=element_weight,
                           reduction=reduction)


def softmax_cross_entropy_with_integer_labels(
    logits: ArrayLike,
    labels: ArrayLike,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float | ArrayLike = 0.0,
    reduction: Reduction = "none",
) -> Array:
    r"""Softmax cross-entropy with integer labels; no one-hot is materialised.

    .. math::
        \ell = (1-\varepsilon)\, w_y \bigl(\mathrm{lse}(x) - x_y\bigr)
             + \frac{\varepsilon}{C} \sum_c w_c \bigl(\mathrm{lse}(x) - x_c\bigr)

    optax's ``softmax_cross_entropy_with_integer_labels`` with the contract added; with
    ``class_weights`` and ``label_smoothing`` it is PyTorch's
    ``cross_entropy(weight=w, label_smoothing=ε)``, and ``reduction="weighted_mean"`` divides by
    ``Σ w_y`` over included elements, as PyTorch's ``reduction="mean"`` does.

    Args:
      logits: ``[..., C, ...]`` unnormalised log-probabilities.
      labels: integer class indices, shape ``logits.shape`` less ``axis``.
      axis: class axis (or axes, flattened in order).
      where: class mask of the logits' rank (optax's meaning), or element mask of lower rank.
      weights: per-element weights broadcastable to ``labels``.
      class_weights: ``[C]``; the element's weight is ``class_weights[label]``.
      ignore_index: a label value (e.g. -1 or -100) whose elements act as ``where=False``.
      label_smoothing: ``ε`` in [0, 1]; mass ``ε`` spread uniformly over the classes.
      reduction: see :func:`jaxloss.reduce`.

    Edges: an out-of-range label that is not ``ignore_index`` gives NaN for its element only
    (optax silently wraps -1 to the last class); :func:`jaxloss.checked` raises instead.
    Excluded elements contribute exactly 0 to the value and gradients even if their logits
    are NaN.

    >>> import jax.numpy as jnp
    >>> logits = jnp.array([[0.0, jnp.log(3.0)], [2.0, 0.0], [1.0, 1.0]])
    >>> softmax_cross_entropy_with_integer_labels(logits, jnp.array([1, 0, -1]), ignore_index=-1)
    Array([0.28768206, 0.12692809, 0.        ], dtype=float32)
    >>> softmax_cross_entropy_with_integer_labels(
    ...     logits, jnp.array([1, 0, 1]), class_weights=jnp.array([1.0, 3.0]),
    ...     reduction="weighted_mean")   # (3·0.2877 + 0.1269 + 3·0.6931) / 7
    Array(0.438488, dtype=float32)
    """
    x, _, loss_shape, class_mask, element_where = _class_inputs(logits, axis, where)
    num_classes = x.shape[-1]
    _check_smoothing(label_smoothing)
    safe_labels, in_range, include = _integer_labels(labels, loss_shape, num_classes, ignore_index)
    if class_mask is not None:
        has_class = jnp.any(class_mask, axis=-1)
        include = has_class if include is None else include & has_class
    mask = element_mask(loss_shape, weights=weights, where=element_where, include=include)
    x = sanitize(x, mask)

    lse = _logsumexp_last(x, class_mask)
    label_logit = jnp.take_along_axis(x, safe_labels[..., None], axis=-1)[..., 0]
    per = lse - label_logit
    element_weight = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, num_classes, x.dtype)
        element_weight = cw[safe_labels]
        per = element_weight * per
    if not _is_zero(label_smoothing):
        k = _num_classes_in_row(x, class_mask)
        # Σ_c w_c (lse - x_c) over the (unmasked) classes, without forming log-probabilities.
        cw_row = jnp.ones((num_classes,), x.dtype) if class_weights is None else cw
        cw_row = cw_row if class_mask is None else jnp.where(class_mask, cw_row, 0)
        smooth = lse * jnp.sum(jnp.broadcast_to(cw_row, x.shape), axis=-1) - jnp.sum(
            jnp.where(cw_row != 0, cw_row * x, 0), axis=-1)
        per = (1.0 - label_smoothing) * per + label_smoothing / k * smooth
    per = _nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(per, mask=mask, weights=weights, element_weight=element_weight,
                           reduction=reduction)


def sigmoid_binary_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    pos_weight: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Element-wise sigmoid (logistic) cross-entropy from logits, in the stable log-sigmoid form.

    .. math:: \ell = -\bigl(p\, y \log\sigma(x) + (1 - y) \log\sigma(-x)\bigr)

    optax's ``sigmoid_binary_cross_entropy`` (``pos_weight=None``) and PyTorch's
    ``binary_cross_entropy_with_logits(pos_weight=p)``. Labels are in [0, 1] (soft labels
    allowed). Finite value and gradient for logits of any finite size.

    Args:
      logits: any shape.
      labels: broadcastable to ``logits``.
      pos_weight: weight of the positive term, broadcastable to ``logits`` (per class).
      weights, where, reduction: the contract, against ``logits.shape``.

    >>> import jax.numpy as jnp
    >>> sigmoid_binary_cross_entropy(jnp.array([0.0, 1e4, -1e4]), jnp.array([1.0, 1.0, 1.0]))
    Array([6.931472e-01, 0.000000e+00, 1.000000e+04], dtype=float32)
    """
    x = upcast(float_array(logits, "logits"))
    y = jnp.asarray(labels)
    check_broadcast(y, "labels", x.shape, "logits")
    y = jnp.broadcast_to(y.astype(x.dtype), x.shape)
    mask = element_mask(x.shape, weights=weights, where=where)
    x, y = sanitize(x, mask), sanitize(y, mask)
    log_p, log_not_p = jax.nn.log_sigmoid(x), jax.nn.log_sigmoid(-x)
    pos = y * log_p
    if pos_weight is not None:
        pw = jnp.asarray(pos_weight, x.dtype)
        check_broadcast(pw, "pos_weight", x.shape, "logits")
        pos = pw * pos
    per = -pos - (1.0 - y) * log_not_p
    return reduce_elements(per, mask=mask, weights=weights, reduction=reduction)


def binary_cross_entropy(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: float = 1e-7,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Binary cross-entropy from probabilities, clipped to ``[ε, 1 - ε]`` (Keras semantics).

    .. math:: \ell = -\bigl(y \log \hat p + (1 - y) \log(1 - \hat p)\bigr),
              \quad \hat p = \mathrm{clip}(p, \varepsilon, 1 - \varepsilon)

    For users who hold probabilities; from logits prefer :func:`sigmoid_binary_cross_entropy`
    (more accurate near 0 and 1). The clip bounds the loss by ``-log ε`` (≈ 16.1) and its
    gradient is 0 outside ``[ε, 1-ε]``. Unlike Keras's ``binary_crossentropy`` this does not
    average over the last axis: it is per element, reduce with ``reduction``.

    >>> import jax.numpy as jnp
    >>> binary_cross_entropy(jnp.array([0.5, 0.0]), jnp.array([1.0, 1.0]))
    Array([ 0.6931472, 16.118095 ], dtype=float32)
    """
    p = upcast(float_array(probs, "probs"))
    static_float(epsilon, "epsilon", low=0.0, high=0.5, high_open=True)
    y = jnp.asarray(labels)
    check_broadcast(y, "labels", p.shape, "probs")
    y = jnp.broadcast_to(y.astype(p.dtype), p.shape)
    mask = element_mask(p.shape, weights=weights, where=where)
    p, y = sanitize(p, mask, 0.5), sanitize(y, mask)
    p = jnp.clip(p, epsilon, 1.0 - epsilon)
    per = -(y * jnp.log(p) + (1.0 - y) * jnp.log1p(-p))
    return reduce_elements(per, mask=mask, weights=weights, reduction=reduction)


def categorical_cross_entropy(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    axis: Axis = -1,
    epsilon: float = 1e-7,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Categorical cross-entropy from probabilities (Keras semantics).

    .. math:: \ell = -\sum_c w_c\, y_c \log \hat p_c, \quad
              \hat p = \mathrm{clip}(p / \textstyle\sum_c p_c,\ \varepsilon,\ 1 - \varepsilon)

    As Keras's ``categorical_crossentropy(from_logits=False)``: the probabilities are
    renormalised along ``axis`` and clipped. Labels are probabilities or one-hot; an all-zero
    row is unlabeled (contributes 0, left out of means). From logits prefer
    :func:`softmax_cross_entropy`. ``where`` is an element mask (rank of the loss).

    >>> import jax.numpy as jnp
    >>> categorical_cross_entropy(jnp.array([[0.2, 0.8]]), jnp.array([[0.0, 1.0]]))
    Array([0.22314353], dtype=float32)
    """
    p = upcast(float_array(probs, "probs"))
    static_float(epsilon, "epsilon", low=0.0, high=0.5, high_open=True)
    axes = canonical_axes(axis, p.ndim)
    loss_shape = tuple(d for i, d in enumerate(p.shape) if i not in axes)
    y = _labels_last(labels, p.shape, axes).astype(p.dtype)
    p = move_axes_last(p, axes)
    mask = element_mask(loss_shape, weights=weights, where=where,
                        include=jnp.any(y != 0, axis=-1))
    p, y = sanitize(p, mask, 1.0), sanitize(y, mask)
    p = p / jnp.sum(p, axis=-1, keepdims=True)
    p = jnp.clip(p, epsilon, 1.0 - epsilon)
    element_weight = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, p.shape[-1], p.dtype)
        element_weight = jnp.sum(y * cw, axis=-1)
        y = y * cw
    per = -jnp.sum(y * jnp.log(p), axis=-1)
    return reduce_elements(per, mask=mask, weights=weights, element_weight=element_weight,
                           reduction=reduction)


# ---------------------------------------------------------------------------------------------
# Focal losses.


def _focal_factor(log_one_minus_p: Array, gamma: Any) -> Array:
    """``(1 - p)^γ`` as ``exp(γ log(1 - p))``: finite, with a finite gradient, even at p = 1."""
    return jnp.exp(gamma * log_one_minus_p)


def sigmoid_focal_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    alpha: float | None = None,
    gamma: float = 2.0,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Sigmoid focal loss (Lin et al. 2017), optax's signature and results.

    .. math:: \ell = \alpha_t\, (1 - p_t)^\gamma\, \mathrm{BCE}(x, y), \quad
              p_t = p y + (1-p)(1-y), \quad \alpha_t = \alpha y + (1-\alpha)(1-y)

    ``alpha=None`` means no α-balancing. ``(1 - p_t)^γ`` is computed in log space, so extreme
    logits give finite values and gradients.

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
    log_p, log_q = jax.nn.log_sigmoid(x), jax.nn.log_sigmoid(-x)
    ce = -y * log_p - (1.0 - y) * log_q
    # log(1 - p_t) = log((1-y)·p + y·(1-p)), a two-term log-sum-exp.
    log_one_minus_pt = jax.scipy.special.logsumexp(
        jnp.stack([log_p, log_q], axis=-1), axis=-1, b=jnp.stack([1.0 - y, y], axis=-1))
    per = ce * _focal_factor(log_one_minus_pt, gamma)
    if alpha is not None:
        per = (alpha * y + (1.0 - alpha) * (1.0 - y)) * per
    return reduce_elements(per, mask=mask, weights=weights, reduction=reduction)


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
    x, axes, loss_shape, _, _ = _class_inputs(logits, axis, None)
    num_classes = x.shape[-1]
    labels = jnp.asarray(labels)
    integer = jnp.issubdtype(labels.dtype, jnp.integer)
    if integer:
        safe_labels, in_range, include = _integer_labels(labels, loss_shape, num_classes,
                                                         ignore_index)
    else:
        y = _labels_last(labels, jnp.shape(logits), axes).astype(x.dtype)
        include = jnp.any(y != 0, axis=-1)
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    x = sanitize(x, mask)
    log_p = _log_softmax_last(x, None)
    # (1 - p)^γ from -expm1(log p): accurate near p = 1, and 0 with zero gradient at p = 1.
    one_minus_p = -jnp.expm1(log_p)
    positive = one_minus_p > 0
    focal = jnp.where(positive, jnp.where(positive, one_minus_p, 1.0) ** gamma, 0.0)
    terms = -focal * log_p                                        # [..., C]
    factor = jnp.ones((num_classes,), x.dtype)
    if alpha is not None:
        factor = factor * jnp.broadcast_to(jnp.asarray(alpha, x.dtype), (num_classes,))
    cw = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, num_classes, x.dtype)
    if integer:
        per = jnp.take_along_axis(terms, safe_labels[..., None], axis=-1)[..., 0]
        per = per * factor[safe_labels]
        element_weight = None if cw is None else cw[safe_labels]
        if cw is not None:
            per = per * element_weight
        per = _nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    else:
        y = sanitize(y, mask)
        yw = y * factor if cw is None else y * factor * cw
        per = jnp.sum(jnp.where(yw != 0, yw * terms, 0), axis=-1)
        element_weight = None if cw is None else jnp.sum(y * cw, axis=-1)
    return reduce_elements(per, mask=mask, weights=weights, element_weight=element_weight,
                           reduction=reduction)


def smooth_labels(
    labels: ArrayLike,
    alpha: float | ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
) -> Array:
    r"""Label smoothing, optax's: ``(1 - α)·y + α / K`` with ``K`` the number of classes.

    .. math:: \tilde y_c = (1 - \alpha)\, y_c + \alpha / K

    ``where`` (a class mask broadcastable to ``labels``) makes ``K`` the number of unmasked
    classes per row, as in optax. Note that an all-zero (unlabeled) row becomes ``α/K``
    everywhere: smooth inside the loss (``label_smoothing=``) to keep such rows unlabeled.

    >>> import jax.numpy as jnp
    >>> smooth_labels(jnp.array([0.0, 1.0]), 0.2)
    Array([0.1       , 0.90000004], dtype=float32)
    """
    labels = float_array(labels, "labels")
    axes = canonical_axes(axis, labels.ndim)
    if where is None:
        k = 1
        for a in axes:
            k *= labels.shape[a]
    else:
        k = jnp.sum(where_mask(where, labels.shape, "labels"), axis=axes, keepdims=True)
    return (1.0 - alpha) * labels + alpha / k


# ---------------------------------------------------------------------------------------------
# Cost-sensitive classification.


def _cost_rows(labels: Array, cost: Array, safe_labels: Array | None) -> Array:
    """``C[y, :]`` for integer labels, ``y @ C`` for probability labels."""
    if safe_labels is not None:
        return cost[safe_labels]
    return labels @ cost


def _cost_matrix(cost_matrix: ArrayLike, num_classes: int, dtype: Any) -> Array:
    cost = float_array(jnp.asarray(cost_matrix, dtype=jnp.result_type(cost_matrix, float)),
                       "cost_matrix")
    if cost.shape != (num_classes, num_classes):
        raise ValueError(f"cost_matrix has shape {tuple(cost.shape)}; expected "
                         f"({num_classes}, {num_classes}), C[true, predicted].")
    return cost.astype(dtype)


def expected_cost_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    cost_matrix: ArrayLike,
    *,
    axis: Axis = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Expected misclassification cost under the softmax: differentiable cost-sensitive loss.

    .. math:: \ell = \sum_j C_{y j}\, \mathrm{softmax}(x)_j

    ``C[i, j]`` is the cost of predicting ``j`` when the truth is ``i`` (usually 0 on the
    diagonal). Integer labels (``ignore_index`` supported) or probability rows (then the row of
    costs is ``y @ C``; an all-zero row is unlabeled). Minimised by putting the mass on the
    cheapest class for the truth.

    >>> import jax.numpy as jnp
    >>> cost = jnp.array([[0.0, 1.0], [5.0, 0.0]])   # missing class 1 costs 5
    >>> expected_cost_loss(jnp.array([[0.0, 0.0]]), jnp.array([1]), cost)
    Array([2.5], dtype=float32)
    """
    x, axes, loss_shape, _, _ = _class_inputs(logits, axis, None)
    num_classes = x.shape[-1]
    cost = _cost_matrix(cost_matrix, num_classes, x.dtype)
    labels = jnp.asarray(labels)
    integer = jnp.issubdtype(labels.dtype, jnp.integer)
    safe_labels = in_range = None
    if integer:
        safe_labels, in_range, include = _integer_labels(labels, loss_shape, num_classes,
                                                         ignore_index)
        y = labels
    else:
        y = _labels_last(labels, jnp.shape(logits), axes).astype(x.dtype)
        include = jnp.any(y != 0, axis=-1)
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    x = sanitize(x, mask)
    if not integer:
        y = sanitize(y, mask)
    per = jnp.sum(_cost_rows(y, cost, safe_labels) * jax.nn.softmax(x, axis=-1), axis=-1)
    per, element_weight = _apply_class_weights(per, y, safe_labels, class_weights, num_classes)
    if integer:
        per = _nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(per, mask=mask, weights=weights, element_weight=element_weight,
                           reduction=reduction)


def confusion_weighted_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    cost_matrix: ArrayLike,
    *,
    axis: Axis = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Cross-entropy scaled by the cost of the current mistake, ``C[y, argmax x]``.

    .. math:: \ell = C_{y,\ \arg\max_j x_j} \cdot \bigl(-\log \mathrm{softmax}(x)_y\bigr)

    The recipe Keras users build by hand: the factor is computed from the current prediction
    under ``stop_gradient`` (argmax has no gradient), so the gradient is the cross-entropy's
    scaled by the cost. With a zero diagonal, correctly classified examples contribute nothing;
    use 1 on the diagonal to keep training them. Labels are integer (``ignore_index``
    supported) or probability rows (the true class is their argmax; all-zero rows are
    unlabeled).

    >>> import jax.numpy as jnp
    >>> cost = jnp.array([[1.0, 1.0], [4.0, 1.0]])
    >>> confusion_weighted_cross_entropy(jnp.array([[1.0, 0.0]]), jnp.array([1]), cost)
    Array([5.2530465], dtype=float32)
    """
    x, axes, loss_shape, _, _ = _class_inputs(logits, axis, None)
    num_classes = x.shape[-1]
    cost = _cost_matrix(cost_matrix, num_classes, x.dtype)
    labels = jnp.asarray(labels)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        safe_labels, in_range, include = _integer_labels(labels, loss_shape, num_classes,
                                                         ignore_index)
        y = None
    else:
        y = _labels_last(labels, jnp.shape(logits), axes).astype(x.dtype)
        include = jnp.any(y != 0, axis=-1)
        safe_labels = jnp.argmax(y, axis=-1)
        in_range = None
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    x = sanitize(x, mask)
    log_p = _log_softmax_last(x, None)
    if y is None:
        ce = -jnp.take_along_axis(log_p, safe_labels[..., None], axis=-1)[..., 0]
    else:
        ce = -jnp.sum(sanitize(y, mask) * log_p, axis=-1)
    predicted = jnp.argmax(jax.lax.stop_gradient(x), axis=-1)
    factor = jax.lax.stop_gradient(cost[safe_labels, predicted])
    per, element_weight = _apply_class_weights(ce * factor, y, safe_labels, class_weights,
                                               num_classes)
    if in_range is not None:
        per = _nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(per, mask=mask, weights=weights, element_weight=element_weight,
                           reduction=reduction)


def _apply_class_weights(per: Array, y: Array | None, safe_labels: Array | None,
                         class_weights: ArrayLike | None, num_classes: int
                         ) -> tuple[Array, Array | None]:
    """Multiply a loss by its element's class weight (by the true class) and return that weight.

    Used by losses whose class weight is a factor of the whole element loss: integer labels use
    ``class_weights[y]``; probability labels ``Σ_c w_c y_c``.
    """
    if class_weights is None:
        return per, None
    cw = class_weight_vector(class_weights, num_classes, per.dtype)
    if safe_labels is not None and (y is None or jnp.issubdtype(y.dtype, jnp.integer)):
        element_weight = cw[safe_labels]
    else:
        element_weight = jnp.sum(y * cw, axis=-1)
    return per * element_weight, element_weight


# ---------------------------------------------------------------------------------------------
# Margin losses (hinge, perceptron) — see the regression/margin/segmentation issue.


# ---------------------------------------------------------------------------------------------
# Divergences and the remaining optax losses — see the optax-superset issue.
