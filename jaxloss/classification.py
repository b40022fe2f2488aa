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

from collections.abc import Callable
from typing import Any

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
    integer_labels,
    is_python_number,
    move_axes_last,
    nan_if_out_of_range,
    static_float,
    upcast,
)
from jaxloss._fused import (
    integer_label_cross_entropy,
    label_sums,
    logsumexp_last,
    masked_label_cross_entropy,
    sigmoid_terms,
)
from jaxloss._reduction import Reduction, element_mask, reduce_elements, sanitize, where_mask
from jaxloss.activations import sparsemax

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
    "hinge_loss",
    "squared_hinge_loss",
    "binary_hinge_loss",
    "perceptron_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multi_margin_loss",
    "kl_divergence",
    "kl_divergence_with_log_targets",
    "generalized_kl_divergence",
    "convex_kl_divergence",
    "poly_loss_cross_entropy",
    "sparsemax_loss",
    "multiclass_sparsemax_loss",
    "make_fenchel_young_loss",
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
    if class_mask is None:  # same formula, scheduled for speed: see jaxloss/_fused.py
        return logsumexp_last(x)
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


def _integer_labels(
    labels: ArrayLike, loss_shape: tuple[int, ...], num_classes: int, ignore_index: int | None
) -> tuple[Array, Array, Array | None]:
    """Validate integer labels; returns ``(safe_labels, in_range, include)``."""
    return integer_labels(labels, loss_shape, num_classes, ignore_index, hint=_INT_HINT)


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
      labels: probabilities or one-hot rows, broadcastable to ``logits``. An all-zero row
        (``Σ_c y_c = 0``) marks an unlabeled example: it contributes 0 and is left out of every
        denominator.
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
        logits,
        labels,
        axis,
        where,
        weights=weights,
        class_weights=class_weights,
        label_smoothing=label_smoothing,
        reduction=reduction,
        zero_label_is_zero=False,
    )


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
        logits,
        labels,
        axis,
        where,
        weights=weights,
        class_weights=class_weights,
        label_smoothing=label_smoothing,
        reduction=reduction,
        zero_label_is_zero=True,
    )


def _labeled_rows(y: Array) -> Array:
    """Rows with label mass, ``Σ_c y_c ≠ 0``; the others (all-zero rows) are unlabeled.

    For labels that are probabilities (nonnegative) this is ``any(y != 0)``; a NaN label makes
    its row labeled (and its loss NaN). It is a plain sum of the labels, which XLA:CPU runs at
    memory speed even over rows of 10⁵ classes (``any(y != 0)`` or ``Σ|y|`` put an elementwise
    op inside the reduction and measured 2-4× slower there), and the loss needs ``Σ_c y_c``
    anyway.
    """
    return jnp.sum(y, axis=-1) != 0


def _probability_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    axis: Axis,
    where: ArrayLike | None,
    *,
    weights: ArrayLike | None,
    class_weights: ArrayLike | None,
    label_smoothing: float | ArrayLike,
    reduction: Reduction,
    zero_label_is_zero: bool,
) -> Array:
    x, axes, loss_shape, class_mask, element_where = _class_inputs(logits, axis, where)
    y = _labels_last(labels, jnp.shape(logits), axes).astype(x.dtype)
    _check_smoothing(label_smoothing)
    cw = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, x.shape[-1], x.dtype)
        # Σ w y (the element's weight) and Σ y (labeled or not) in one pass over the labels.
        element_weight, label_mass = label_sums(y, cw)
        include = label_mass != 0
    else:
        element_weight, include = None, _labeled_rows(y)
    if class_mask is not None:
        include = include & jnp.any(class_mask, axis=-1)
    mask = element_mask(loss_shape, weights=weights, where=element_where, include=include)
    fused = class_mask is None and not zero_label_is_zero and jnp.ndim(label_smoothing) == 0
    if not fused:  # the fused form below is NaN-safe for excluded rows without copies
        x, y = sanitize(x, mask), sanitize(y, mask)
    if fused:  # -Σ w ỹ log softmax(x) without materialising ỹ, w ỹ or log p (jaxloss/_fused.py)
        eps = 0.0 if _is_zero(label_smoothing) else label_smoothing
        per = masked_label_cross_entropy(
            x,
            y,
            jnp.broadcast_to(mask, loss_shape),
            class_weights=cw,
            scale=1.0 - eps,
            shift=eps / x.shape[-1],
        )
        return reduce_elements(
            per, mask=mask, weights=weights, element_weight=element_weight, reduction=reduction
        )
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
    return reduce_elements(
        per, mask=mask, weights=weights, element_weight=element_weight, reduction=reduction
    )


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
    x, axes, loss_shape, class_mask, element_where = _class_inputs(logits, axis, where)
    num_classes = x.shape[-1]
    _check_smoothing(label_smoothing)
    safe_labels, in_range, include = _integer_labels(labels, loss_shape, num_classes, ignore_index)
    if class_mask is not None:
        has_class = jnp.any(class_mask, axis=-1)
        include = has_class if include is None else include & has_class
    mask = element_mask(loss_shape, weights=weights, where=element_where, include=include)
    # No sanitised copy of the logits on the fused paths: excluded rows get 0 gradients there.
    row_mask = None if mask is None else jnp.broadcast_to(mask, loss_shape)
    raw = jnp.asarray(logits)
    if class_mask is None and _is_zero(label_smoothing) and raw.dtype != x.dtype:
        # 16-bit logits: one fused core upcasting inside each pass (jaxloss/_fused.py).
        per = integer_label_cross_entropy(move_axes_last(raw, axes), safe_labels, row_mask)
    else:
        if class_mask is None:
            lse = logsumexp_last(x, row_mask)
        else:
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
            jnp.where(cw_row != 0, cw_row * x, 0), axis=-1
        )
        per = (1.0 - label_smoothing) * per + label_smoothing / k * smooth
    per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per, mask=mask, weights=weights, element_weight=element_weight, reduction=reduction
    )


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
    # -log σ(x) = softplus(-x), -log σ(-x) = softplus(x), sharing one exp (jaxloss/_fused.py).
    softplus_x, softplus_neg_x, _, _ = sigmoid_terms(x)
    pos = y * softplus_neg_x
    if pos_weight is not None:
        pw = jnp.asarray(pos_weight, x.dtype)
        check_broadcast(pw, "pos_weight", x.shape, "logits")
        pos = pw * pos
    per = pos + (1.0 - y) * softplus_x
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
    mask = element_mask(loss_shape, weights=weights, where=where, include=jnp.any(y != 0, axis=-1))
    p, y = sanitize(p, mask, 1.0), sanitize(y, mask)
    p = p / jnp.sum(p, axis=-1, keepdims=True)
    p = jnp.clip(p, epsilon, 1.0 - epsilon)
    element_weight = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, p.shape[-1], p.dtype)
        element_weight = label_sums(y, cw)[0]
        y = y * cw
    per = -jnp.sum(y * jnp.log(p), axis=-1)
    return reduce_elements(
        per, mask=mask, weights=weights, element_weight=element_weight, reduction=reduction
    )


# ---------------------------------------------------------------------------------------------
# Focal losses.


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
        safe_labels, in_range, include = _integer_labels(
            labels, loss_shape, num_classes, ignore_index
        )
    else:
        y = _labels_last(labels, jnp.shape(logits), axes).astype(x.dtype)
        include = _labeled_rows(y)
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    x = sanitize(x, mask)
    log_p = _log_softmax_last(x, None)
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
        per = jnp.take_along_axis(terms, safe_labels[..., None], axis=-1)[..., 0]
        per = per * factor[safe_labels]
        element_weight = None if cw is None else cw[safe_labels]
        if cw is not None:
            per = per * element_weight
        per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    else:
        y = sanitize(y, mask)
        yw = y * factor if cw is None else y * factor * cw
        per = jnp.sum(jnp.where(yw != 0, yw * terms, 0), axis=-1)
        element_weight = None if cw is None else label_sums(y, cw)[0]
    return reduce_elements(
        per, mask=mask, weights=weights, element_weight=element_weight, reduction=reduction
    )


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
    cost = float_array(
        jnp.asarray(cost_matrix, dtype=jnp.result_type(cost_matrix, float)), "cost_matrix"
    )
    if cost.shape != (num_classes, num_classes):
        raise ValueError(
            f"cost_matrix has shape {tuple(cost.shape)}; expected "
            f"({num_classes}, {num_classes}), C[true, predicted]."
        )
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
        safe_labels, in_range, include = _integer_labels(
            labels, loss_shape, num_classes, ignore_index
        )
        y = labels
    else:
        y = _labels_last(labels, jnp.shape(logits), axes).astype(x.dtype)
        include = _labeled_rows(y)
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    x = sanitize(x, mask)
    if not integer:
        y = sanitize(y, mask)
    per = jnp.sum(_cost_rows(y, cost, safe_labels) * jax.nn.softmax(x, axis=-1), axis=-1)
    per, element_weight = _apply_class_weights(per, y, safe_labels, class_weights, num_classes)
    if integer:
        per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per, mask=mask, weights=weights, element_weight=element_weight, reduction=reduction
    )


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
        safe_labels, in_range, include = _integer_labels(
            labels, loss_shape, num_classes, ignore_index
        )
        y = None
    else:
        y = _labels_last(labels, jnp.shape(logits), axes).astype(x.dtype)
        include = _labeled_rows(y)
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
    per, element_weight = _apply_class_weights(
        ce * factor, y, safe_labels, class_weights, num_classes
    )
    if in_range is not None:
        per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per, mask=mask, weights=weights, element_weight=element_weight, reduction=reduction
    )


def _apply_class_weights(
    per: Array,
    y: Array | None,
    safe_labels: Array | None,
    class_weights: ArrayLike | None,
    num_classes: int,
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
        element_weight = label_sums(y, cw)[0]
    return per * element_weight, element_weight


# ---------------------------------------------------------------------------------------------
# Margin losses (hinge, perceptron) — see the regression/margin/segmentation issue.


def _binary_margin_inputs(
    outputs: ArrayLike,
    targets: ArrayLike,
    outputs_name: str,
    targets_name: str,
    weights: ArrayLike | None,
    where: ArrayLike | None,
) -> tuple[Array, Array, Array | None]:
    """Upcast scores, broadcast numeric targets to them, sanitise excluded elements."""
    s = upcast(float_array(outputs, outputs_name))
    t = jnp.asarray(targets)
    if not (jnp.issubdtype(t.dtype, jnp.number) or t.dtype == jnp.bool_):
        raise TypeError(f"{targets_name} must be a numeric array; got dtype {t.dtype}.")
    check_broadcast(t, targets_name, s.shape, outputs_name)
    t = jnp.broadcast_to(t.astype(s.dtype), s.shape)
    mask = element_mask(s.shape, weights=weights, where=where)
    return sanitize(s, mask), sanitize(t, mask), mask


def hinge_loss(
    predictor_outputs: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Binary hinge loss with ±1 targets, optax's ``hinge_loss``.

    .. math:: \ell = \max(0,\ 1 - s\,t), \qquad t \in \{-1, +1\}

    Element-wise; targets must be -1 or +1 (use :func:`binary_hinge_loss` for {0, 1} labels).
    At the kink ``s·t = 1`` the gradient is half the slope, as ``jnp.maximum`` (and optax) give.

    Args:
      predictor_outputs: decision-function values, any shape ``S``.
      targets: ±1, broadcastable to ``S``.
      weights, where, reduction: the contract (see :func:`jaxloss.reduce`), against ``S``.

    >>> import jax.numpy as jnp
    >>> hinge_loss(jnp.array([2.0, 0.5, 0.5]), jnp.array([1.0, 1.0, -1.0]))
    Array([0. , 0.5, 1.5], dtype=float32)
    """
    s, t, mask = _binary_margin_inputs(
        predictor_outputs, targets, "predictor_outputs", "targets", weights, where
    )
    per = jnp.maximum(0, 1 - s * t)
    return reduce_elements(per, mask=mask, weights=weights, reduction=reduction)


def squared_hinge_loss(
    predictor_outputs: ArrayLike,
    targets: ArrayLike,
    *,
    margin: float | ArrayLike = 1.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Squared hinge loss with ±1 targets (Keras's ``squared_hinge``, per element).

    .. math:: \ell = \max(0,\ m - s\,t)^2, \qquad t \in \{-1, +1\}

    Differentiable everywhere (the gradient is 0 at the kink). Keras averages over the last
    axis; here the loss is per element: use ``reduction="mean"`` for Keras's value.

    Args:
      predictor_outputs: any shape ``S``.
      targets: ±1, broadcastable to ``S``.
      margin: ``m`` (1 in Keras).
      weights, where, reduction: the contract.

    >>> import jax.numpy as jnp
    >>> squared_hinge_loss(jnp.array([2.0, 0.5, 0.5]), jnp.array([1.0, 1.0, -1.0]))
    Array([0.  , 0.25, 2.25], dtype=float32)
    """
    s, t, mask = _binary_margin_inputs(
        predictor_outputs, targets, "predictor_outputs", "targets", weights, where
    )
    per = jax.nn.relu(margin - s * t) ** 2
    return reduce_elements(per, mask=mask, weights=weights, reduction=reduction)


def binary_hinge_loss(
    scores: ArrayLike,
    labels01: ArrayLike,
    *,
    margin: float | ArrayLike = 1.0,
    squared: bool = False,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Hinge loss for {0, 1} labels: the label is mapped to ``t = 2y - 1``.

    .. math:: \ell = \max(0,\ m - s\,(2y - 1))^{\,1 \text{ or } 2}

    For users whose labels are booleans or 0/1 (scikit-learn's and PyTorch's convention).
    ``squared=True`` squares the hinge (:func:`squared_hinge_loss`). The gradient is 0 at the kink.

    Args:
      scores: any shape ``S``.
      labels01: 0/1 (or boolean) labels broadcastable to ``S``.
      margin: ``m``.
      squared: square the hinge.
      weights, where, reduction: the contract.

    >>> import jax.numpy as jnp
    >>> binary_hinge_loss(jnp.array([2.0, 0.5, 0.5]), jnp.array([1, 1, 0]))
    Array([0. , 0.5, 1.5], dtype=float32)
    """
    s, y, mask = _binary_margin_inputs(scores, labels01, "scores", "labels01", weights, where)
    per = jax.nn.relu(margin - s * (2 * y - 1))
    if squared:
        per = per**2
    return reduce_elements(per, mask=mask, weights=weights, reduction=reduction)


def perceptron_loss(
    predictor_outputs: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Binary perceptron loss with ±1 targets, optax's ``perceptron_loss``.

    .. math:: \ell = \max(0,\ -s\,t), \qquad t \in \{-1, +1\}

    A hinge with margin 0: correct predictions cost nothing, however close to the boundary.
    Arguments as :func:`hinge_loss` (optax requires equal shapes; broadcasting is an addition).

    >>> import jax.numpy as jnp
    >>> perceptron_loss(jnp.array([2.0, -0.5, 0.5]), jnp.array([1.0, 1.0, -1.0]))
    Array([0. , 0.5, 0.5], dtype=float32)
    """
    s, t, mask = _binary_margin_inputs(
        predictor_outputs, targets, "predictor_outputs", "targets", weights, where
    )
    per = jnp.maximum(0, -s * t)
    return reduce_elements(per, mask=mask, weights=weights, reduction=reduction)


def _multiclass_margin_inputs(
    scores: ArrayLike,
    labels: ArrayLike,
    axis: Axis,
    weights: ArrayLike | None,
    where: ArrayLike | None,
    ignore_index: int | None,
) -> tuple[Array, Array, Array, Array | None, int]:
    """Scores with the class axis last (sanitised), safe labels, in-range flags, mask, C."""
    s = upcast(float_array(scores, "scores"))
    axes = canonical_axes(axis, s.ndim)
    loss_shape = tuple(d for i, d in enumerate(s.shape) if i not in axes)
    s = move_axes_last(s, axes)
    num_classes = s.shape[-1]
    safe_labels, in_range, include = _integer_labels(labels, loss_shape, num_classes, ignore_index)
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    return sanitize(s, mask), safe_labels, in_range, mask, num_classes


def multiclass_hinge_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    axis: Axis = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Multiclass hinge loss (Crammer–Singer), optax's ``multiclass_hinge_loss``.

    .. math:: \ell = \max_j \bigl(s_j + 1 - [j = y]\bigr) - s_y

    The margin by which the best wrong class comes within 1 of the true class (0 once the true
    score leads every other by at least 1). For PyTorch's ``multi_margin_loss`` (Weston–Watkins,
    a sum over wrong classes) see :func:`multi_margin_loss`.

    Args:
      scores: ``[..., C]`` (class axis ``axis``).
      labels: integer labels, ``scores.shape`` less ``axis``.
      axis: class axis (an addition; optax uses the last).
      weights, where: the contract, against the loss shape (``scores`` less ``axis``).
      class_weights: ``[C]``; the element's loss and weight are scaled by ``class_weights[y]``.
      ignore_index: label value whose elements are excluded.
      reduction: see :func:`jaxloss.reduce`.

    Edges: an out-of-range label that is not ``ignore_index`` gives NaN (optax treats it as
    "no true class"); :func:`jaxloss.checked` raises instead.

    >>> import jax.numpy as jnp
    >>> multiclass_hinge_loss(jnp.array([[2.0, 1.5, 0.0], [0.0, 3.0, 1.0]]), jnp.array([0, 0]))
    Array([0.5, 4. ], dtype=float32)
    """
    s, safe_labels, in_range, mask, num_classes = _multiclass_margin_inputs(
        scores, labels, axis, weights, where, ignore_index
    )
    one_hot = jax.nn.one_hot(safe_labels, num_classes, dtype=s.dtype)
    true_score = jnp.sum(s * one_hot, axis=-1)
    per = jnp.max(s + 1.0 - one_hot, axis=-1) - true_score
    per, element_weight = _apply_class_weights(per, None, safe_labels, class_weights, num_classes)
    per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per, mask=mask, weights=weights, element_weight=element_weight, reduction=reduction
    )


def multiclass_perceptron_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    axis: Axis = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Multiclass perceptron loss, optax's ``multiclass_perceptron_loss``.

    .. math:: \ell = \max_j s_j - s_y

    0 when the true class has the top score. Arguments and edges as
    :func:`multiclass_hinge_loss`.

    >>> import jax.numpy as jnp
    >>> multiclass_perceptron_loss(jnp.array([[2.0, 1.5, 0.0], [0.0, 3.0, 1.0]]),
    ...                            jnp.array([0, 0]))
    Array([0., 3.], dtype=float32)
    """
    s, safe_labels, in_range, mask, num_classes = _multiclass_margin_inputs(
        scores, labels, axis, weights, where, ignore_index
    )
    true_score = jnp.take_along_axis(s, safe_labels[..., None], axis=-1)[..., 0]
    per = jnp.max(s, axis=-1) - true_score
    per, element_weight = _apply_class_weights(per, None, safe_labels, class_weights, num_classes)
    per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per, mask=mask, weights=weights, element_weight=element_weight, reduction=reduction
    )


def multi_margin_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    margin: float | ArrayLike = 1.0,
    p: int = 1,
    class_weights: ArrayLike | None = None,
    axis: Axis = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Multi-class margin loss (Weston–Watkins averaged over C), PyTorch's ``multi_margin_loss``.

    .. math:: \ell = \frac{w_y}{C} \sum_{j \ne y} \max(0,\ m - s_y + s_j)^p

    PyTorch's ``multi_margin_loss(scores, labels, p, margin, weight)`` with ``reduction="none"``;
    PyTorch's ``reduction="mean"`` (divide by the number of examples, even with ``weight``) is
    ``reduction="mean"`` here, and ``"weighted_mean"`` divides by ``Σ w_y`` instead. The
    gradient is 0 at the kink, as in PyTorch.

    Args:
      scores: ``[..., C]`` (class axis ``axis``).
      labels: integer labels, ``scores.shape`` less ``axis``.
      margin: ``m``.
      p: 1 or 2, as in PyTorch.
      class_weights: ``[C]`` (PyTorch's ``weight``), chosen by the true class.
      axis, weights, where, ignore_index, reduction: as :func:`multiclass_hinge_loss`.

    >>> import jax.numpy as jnp
    >>> multi_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))  # PyTorch's example
    Array([0.325], dtype=float32)
    """
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(f"p must be 1 or 2, as in PyTorch's multi_margin_loss; got {p!r}.")
    s, safe_labels, in_range, mask, num_classes = _multiclass_margin_inputs(
        scores, labels, axis, weights, where, ignore_index
    )
    true_score = jnp.take_along_axis(s, safe_labels[..., None], axis=-1)
    terms = jax.nn.relu(margin - true_score + s)
    if p == 2:
        terms = terms**2
    wrong = jnp.arange(num_classes) != safe_labels[..., None]
    per = jnp.sum(jnp.where(wrong, terms, 0), axis=-1) / num_classes
    per, element_weight = _apply_class_weights(per, None, safe_labels, class_weights, num_classes)
    per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per, mask=mask, weights=weights, element_weight=element_weight, reduction=reduction
    )


# ---------------------------------------------------------------------------------------------
# Divergences and the remaining optax losses — see the optax-superset issue.


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
    return reduce_elements(per, mask=mask, weights=weights, reduction=reduction)


def _xlogx_terms(targets: Array, log_predictions: Array) -> Array:
    """``t (log t - log q)`` with ``0 log 0 = 0``, finite gradients at ``t = 0``."""
    zero = targets == 0
    log_t = jnp.log(jnp.where(zero, 1, targets))
    return targets * (jnp.where(zero, 0, log_t) - log_predictions)


def kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis | None = -1,
    where: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    reduction: Reduction = "none",
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
      reduction: see :func:`jaxloss.reduce`.

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
    )


def kl_divergence_with_log_targets(
    log_predictions: ArrayLike,
    log_targets: ArrayLike,
    axis: Axis | None = -1,
    where: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    reduction: Reduction = "none",
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
    )


def generalized_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis | None = -1,
    where: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    reduction: Reduction = "none",
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
    )


def convex_kl_divergence(
    log_predictions: ArrayLike,
    targets: ArrayLike,
    axis: Axis | None = -1,
    where: ArrayLike | None = None,
    *,
    weights: ArrayLike | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""The former name of :func:`generalized_kl_divergence`; identical results.

    .. math:: \ell = \sum_c \bigl(t_c \log t_c - t_c \log q_c + q_c - t_c\bigr)

    Kept because ``optax.losses`` still exports it (there it warns that it is deprecated in
    favour of ``generalized_kl_divergence``; here it does not warn).

    >>> import jax.numpy as jnp
    >>> convex_kl_divergence(jnp.log(jnp.array([1.0, 2.0])), jnp.array([1.0, 1.0]))
    Array(0.30685282, dtype=float32)
    """
    return generalized_kl_divergence(
        log_predictions, targets, axis, where, weights=weights, reduction=reduction
    )


def poly_loss_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: float | ArrayLike = 2.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Poly-1 loss (Leng et al. 2022): cross-entropy plus ``ε`` times ``1 - p_t``.

    .. math:: \ell = -\sum_c w_c\, y_c \log p_c + \varepsilon \sum_c w_c\, y_c\,(1 - p_c),
              \quad p = \mathrm{softmax}(x)

    optax's ``poly_loss_cross_entropy``: same arguments, defaults and values. ``ε = 0`` is
    :func:`softmax_cross_entropy`; the paper recommends 2 for ImageNet classification and -1
    for detection. Labels are probabilities or one-hot rows; an all-zero row is unlabeled
    (contributes 0 and is left out of means), as in :func:`softmax_cross_entropy`.

    Args:
      logits: ``[..., C]`` unnormalised log-probabilities.
      labels: probabilities broadcastable to ``logits``.
      epsilon: coefficient of the first polynomial term.
      axis: class axis (or axes).
      where: class mask of the logits' rank (optax's meaning), or element mask of lower rank.
      weights: per-element weights broadcastable to the loss shape.
      class_weights: ``[C]`` weights inside both sums; the element's weight for
        ``"weighted_mean"`` is ``Σ_c w_c y_c``.
      reduction: see :func:`jaxloss.reduce`.

    >>> import jax.numpy as jnp
    >>> poly_loss_cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]))  # log 2 + 1
    Array([1.6931472], dtype=float32)
    """
    x, axes, loss_shape, class_mask, element_where = _class_inputs(logits, axis, where)
    y = _labels_last(labels, jnp.shape(logits), axes).astype(x.dtype)
    include = _labeled_rows(y)
    if class_mask is not None:
        include = include & jnp.any(class_mask, axis=-1)
    mask = element_mask(loss_shape, weights=weights, where=element_where, include=include)
    x, y = sanitize(x, mask), sanitize(y, mask)
    element_weight = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, x.shape[-1], x.dtype)
        element_weight = label_sums(y, cw)[0]
        y = y * cw
    log_p = _log_softmax_last(x, class_mask)
    if class_mask is not None:
        y = jnp.where(class_mask, y, 0)
        log_p = jnp.where(class_mask, log_p, 0)
    cross_entropy = -jnp.sum(y * log_p, axis=-1)
    one_minus_pt = jnp.sum(y * -jnp.expm1(log_p), axis=-1)
    per = cross_entropy + jnp.asarray(epsilon, x.dtype) * one_minus_pt
    return reduce_elements(
        per, mask=mask, weights=weights, element_weight=element_weight, reduction=reduction
    )


def _sparse_plus(x: Array) -> Array:
    """``0`` below -1, ``(x + 1)² / 4`` on [-1, 1], ``x`` above 1 (continuous derivative)."""
    inner = jnp.clip(x + 1, 0, 2)
    return 0.25 * inner**2 + jnp.maximum(x - 1, 0)


def sparsemax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Binary sparsemax loss: the Fenchel-Young loss of the sparse sigmoid.

    .. math:: \ell = \mathrm{sparse\_plus}(-x) \text{ if } y \ne 0 \text{ else }
              \mathrm{sparse\_plus}(x), \quad
              \mathrm{sparse\_plus}(z) = \begin{cases} 0 & z \le -1 \\ (z+1)^2/4 & |z| < 1
              \\ z & z \ge 1 \end{cases}

    optax's ``sparsemax_loss`` (Blondel et al. 2020, §4.4): zero exactly when
    ``jax.nn.sparse_sigmoid(logits)`` equals the label, i.e. when ``x ≥ 1`` for a positive and
    ``x ≤ -1`` for a negative. Element-wise; ``labels`` are 0/1 (any non-zero counts as 1).

    Args:
      logits: any shape.
      labels: broadcastable to ``logits``.
      weights, where, reduction: the contract, against ``logits.shape``.

    >>> import jax.numpy as jnp
    >>> sparsemax_loss(jnp.array([0.0, 2.0, 2.0]), jnp.array([1, 1, 0]))
    Array([0.25, 0.  , 2.  ], dtype=float32)
    """
    x = upcast(float_array(logits, "logits"))
    y = jnp.asarray(labels)
    check_broadcast(y, "labels", x.shape, "logits")
    y = jnp.broadcast_to(y, x.shape)
    mask = element_mask(x.shape, weights=weights, where=where)
    x = sanitize(x, mask)
    per = _sparse_plus(jnp.where(y != 0, -x, x))
    return reduce_elements(per, mask=mask, weights=weights, reduction=reduction)


def multiclass_sparsemax_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "none",
) -> Array:
    r"""Multiclass sparsemax loss (Martins & Astudillo 2016), integer labels.

    .. math:: \ell = \sum_j p_j\,(x_j - x_y) + \tfrac12\bigl(1 - \lVert p\rVert^2\bigr),
              \quad p = \mathrm{sparsemax}(x)

    The Fenchel-Young loss of the Gini entropy: non-negative, zero exactly when
    ``sparsemax(x)`` is the one-hot of ``y``, with gradient ``sparsemax(x) - onehot(y)``.
    optax's ``multiclass_sparsemax_loss`` (same values), generalised from ``[B, C]`` to any
    ``[..., C]`` with the class axis last.

    Args:
      scores: ``[..., C]`` scores.
      labels: ``[...]`` integer labels.
      weights, where: the contract, against the loss shape ``[...]``.
      class_weights: ``[C]``; the element's weight is ``class_weights[label]``.
      ignore_index: a label value whose elements act as ``where=False``.
      reduction: see :func:`jaxloss.reduce`.

    Edges: an out-of-range label that is not ``ignore_index`` gives NaN for its element
    (optax indexes out of bounds instead); :func:`jaxloss.checked` raises.

    >>> import jax.numpy as jnp
    >>> multiclass_sparsemax_loss(jnp.array([[0.0, 0.0], [3.0, 0.0]]), jnp.array([0, 0]))
    Array([0.25, 0.  ], dtype=float32)
    """
    x = upcast(float_array(scores, "scores"))
    if x.ndim < 1:
        raise ValueError("scores must have a class axis (last); got a scalar.")
    num_classes = x.shape[-1]
    loss_shape = x.shape[:-1]
    safe_labels, in_range, include = _integer_labels(labels, loss_shape, num_classes, ignore_index)
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    x = sanitize(x, mask)
    p = sparsemax(x, axis=-1)
    label_score = jnp.take_along_axis(x, safe_labels[..., None], axis=-1)
    per = jnp.sum(p * (x - label_score), axis=-1) + 0.5 * (1 - jnp.sum(p * p, axis=-1))
    per, element_weight = _apply_class_weights(per, None, safe_labels, class_weights, num_classes)
    per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per, mask=mask, weights=weights, element_weight=element_weight, reduction=reduction
    )


def make_fenchel_young_loss(max_fun: Callable[..., ArrayLike]) -> Callable[..., Array]:
    r"""Build the Fenchel-Young loss of a "max" function (a convex regulariser's conjugate).

    .. math:: \ell(s, t) = \mathrm{max\_fun}(s) - \langle t, s \rangle

    over the last axis (Blondel et al. 2020). ``max_fun=jax.scipy.special.logsumexp`` gives the
    softmax cross-entropy with probability targets; a plain ``max`` gives the perceptron loss.
    As in optax, ``max_fun`` maps a vector ``[C]`` to a scalar and is vectorised over the
    leading axes, and extra ``*args`` / ``**kwargs`` of the loss are passed to it.

    The returned ``fenchel_young_loss(scores, targets, *args, weights=None, where=None,
    reduction="none", **kwargs)`` adds the contract: ``weights`` and ``where`` (element mask)
    broadcast to the loss shape (``scores`` less the last axis). Those three keyword names are
    taken by the contract and never forwarded to ``max_fun``. 16-bit scores are passed to
    ``max_fun`` upcast to float32.

    >>> import jax.numpy as jnp
    >>> from jax.scipy.special import logsumexp
    >>> loss = make_fenchel_young_loss(logsumexp)
    >>> loss(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]))   # log 2, the cross-entropy
    Array([0.6931472], dtype=float32)
    """
    if not callable(max_fun):
        raise TypeError(f"max_fun must be callable; got {max_fun!r}.")
    max_last = jnp.vectorize(max_fun, signature="(n)->()")

    def fenchel_young_loss(
        scores: ArrayLike,
        targets: ArrayLike,
        *args: Any,
        weights: ArrayLike | None = None,
        where: ArrayLike | None = None,
        reduction: Reduction = "none",
        **kwargs: Any,
    ) -> Array:
        s = upcast(float_array(scores, "scores"))
        t = jnp.asarray(targets)
        try:
            shape = jnp.broadcast_shapes(s.shape, t.shape)
        except ValueError:
            raise ValueError(
                f"targets has shape {tuple(t.shape)}, which does not broadcast "
                f"with the scores shape {tuple(s.shape)}."
            ) from None
        if not shape:
            raise ValueError("scores must have a last axis; got a scalar.")
        s = jnp.broadcast_to(s, shape)
        t = jnp.broadcast_to(t, shape).astype(s.dtype)
        mask = element_mask(shape[:-1], weights=weights, where=where)
        s, t = sanitize(s, mask), sanitize(t, mask)
        per = max_last(s, *args, **kwargs) - jnp.sum(t * s, axis=-1)
        return reduce_elements(
            jnp.asarray(per, s.dtype), mask=mask, weights=weights, reduction=reduction
        )

    fenchel_young_loss.__doc__ = (
        f"Fenchel-Young loss of ``{getattr(max_fun, '__name__', repr(max_fun))}`` over the last "
        "axis: ``max_fun(scores) - <targets, scores>``; see :func:`make_fenchel_young_loss`."
    )
    return fenchel_young_loss
