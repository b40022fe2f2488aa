"""Cross-entropies: softmax (probability and integer labels), sigmoid and binary, categorical,
label smoothing and the poly-1 loss.

Every loss returns the per-element loss by default (``reduction="none"``, as optax does) and
takes the contract arguments ``weights``, ``where``, ``class_weights``, ``ignore_index`` (integer
labels), ``reduction`` and ``axis_name`` described in :func:`jaxloss.reduce`.

``where`` for losses with a class axis follows optax: a mask with the rank of ``logits`` masks
*classes* (masked classes are left out of the softmax; a row with no class left is excluded); a
mask of lower rank masks *elements* and broadcasts against the loss shape (``logits.shape``
without the class axis). To mask the same classes in every row pass shape ``[1, C]``.

16-bit logits are accumulated in float32 and give a float32 loss (their gradient comes back in
the input dtype); float64 stays float64. The focal, cost-sensitive, margin, divergence and
sparsemax families live in their own modules (:mod:`jaxloss.focal`, :mod:`jaxloss.cost_sensitive`,
:mod:`jaxloss.margin`, :mod:`jaxloss.divergences`, :mod:`jaxloss.sparse`).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    Axis,
    canonical_axes,
    check_broadcast,
    class_weight_vector,
    float_array,
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
    logsumexp_classes,
    num_classes_in_row,
)
from jaxloss._fused import (
    integer_label_cross_entropy,
    label_sums,
    logsumexp_last,
    masked_label_cross_entropy,
    sigmoid_terms,
)
from jaxloss._labels import binary_class_weights, binary_label_weight, smooth_binary_labels
from jaxloss._reduction import (
    AxisName,
    Reduction,
    element_mask,
    reduce_elements,
    sanitize,
    where_mask,
)

__all__ = [
    "softmax_cross_entropy",
    "safe_softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "sigmoid_binary_cross_entropy",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "smooth_labels",
    "poly_loss_cross_entropy",
    "negative_log_likelihood",
]


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
    axis_name: AxisName | None = None,
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
      reduction, axis_name: see :func:`jaxloss.reduce`.

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
        axis_name=axis_name,
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
    axis_name: AxisName | None = None,
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
        axis_name=axis_name,
        zero_label_is_zero=True,
    )


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
    axis_name: AxisName | None = None,
    zero_label_is_zero: bool,
) -> Array:
    x, axes, loss_shape, class_mask, element_where = class_inputs(logits, axis, where)
    y = labels_last(
        labels,
        jnp.shape(logits),
        axes,
        integer_alternative="softmax_cross_entropy_with_integer_labels",
    ).astype(x.dtype)
    check_smoothing(label_smoothing)
    cw = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, x.shape[-1], x.dtype)
        # Σ w y (the element's weight) and Σ y (labeled or not) in one pass over the labels.
        element_weight, label_mass = label_sums(y, cw)
        include = label_mass != 0
    else:
        element_weight, include = None, labeled_rows(y)
    if class_mask is not None:
        include = include & jnp.any(class_mask, axis=-1)
    mask = element_mask(loss_shape, weights=weights, where=element_where, include=include)
    fused = class_mask is None and not zero_label_is_zero and jnp.ndim(label_smoothing) == 0
    if not fused:  # the fused form below is NaN-safe for excluded rows without copies
        x, y = sanitize(x, mask), sanitize(y, mask)
    if fused:  # -Σ w ỹ log softmax(x) without materialising ỹ, w ỹ or log p (jaxloss/_fused.py)
        eps: Any = 0.0 if is_zero(label_smoothing) else label_smoothing
        assert mask is not None  # include is always set above
        per = masked_label_cross_entropy(
            x,
            y,
            jnp.broadcast_to(mask, loss_shape),
            class_weights=cw,
            scale=1.0 - eps,
            shift=eps / x.shape[-1],
        )
        return reduce_elements(
            per,
            mask=mask,
            weights=weights,
            element_weight=element_weight,
            reduction=reduction,
            axis_name=axis_name,
        )
    if not is_zero(label_smoothing):
        k = num_classes_in_row(x, class_mask)
        k = k if isinstance(k, int) else k[..., None]
        y = (1.0 - label_smoothing) * y + label_smoothing / k
    yw = y if cw is None else y * cw
    log_p = log_softmax_last(x, class_mask)
    # Masked classes (log p = -inf) are zeroed *before* the product, so neither the value nor
    # the label gradient sees 0·inf; the label gradient there is exactly 0.
    if class_mask is not None:
        log_p = jnp.where(class_mask, log_p, 0)
    if zero_label_is_zero:
        # 0·log 0 = 0: a -inf log-probability whose label is 0 contributes 0 with a finite
        # gradient. Where log p is finite, the label's gradient is -log p = lse - x (as optax),
        # also where the label is 0: soft targets learned jointly get their gradient.
        log_p = jnp.where((yw != 0) | jnp.isfinite(log_p), log_p, 0)
    per = -jnp.sum(yw * log_p, axis=-1)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
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
    axis_name: AxisName | None = None,
    z_loss: float | ArrayLike = 0.0,
    logit_soft_cap: float | None = None,
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
      reduction, axis_name: see :func:`jaxloss.reduce`.
      z_loss: ``λ ≥ 0``: adds PaLM's z-loss ``λ · w_y · lse(x)²`` to each element (``w_y`` the
        class weight, 1 without), which keeps the log-normaliser near 0; weighted, masked and
        reduced with the loss. ``0`` (default) adds nothing.
      logit_soft_cap: ``c > 0`` or ``None`` (default): the logits are first soft-capped to
        ``c · tanh(x / c)`` (Gemma 2), the gradient carrying the cap's derivative.
        :func:`jaxloss.linear_softmax_cross_entropy` takes the same two arguments with the same
        definitions.

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
    >>> softmax_cross_entropy_with_integer_labels(   # + 0.01·lse², logits capped at ±5·tanh
    ...     logits, jnp.array([1, 0, 1]), z_loss=0.01, logit_soft_cap=5.0)
    Array([0.31090647, 0.18100172, 0.721372  ], dtype=float32)
    """
    x, axes, loss_shape, class_mask, element_where = class_inputs(logits, axis, where)
    num_classes = x.shape[-1]
    check_smoothing(label_smoothing)
    static_float(z_loss, "z_loss", low=0.0)
    capped = logit_soft_cap is not None
    if capped:
        static_float(logit_soft_cap, "logit_soft_cap", low=0.0, low_open=True)
        x = logit_soft_cap * jnp.tanh(x / logit_soft_cap)
    safe_labels, in_range, include = class_integer_labels(
        labels, loss_shape, num_classes, ignore_index
    )
    if class_mask is not None:
        has_class = jnp.any(class_mask, axis=-1)
        include = has_class if include is None else include & has_class
    mask = element_mask(loss_shape, weights=weights, where=element_where, include=include)
    # No sanitised copy of the logits on the fused paths: excluded rows get 0 gradients there.
    row_mask = None if mask is None else jnp.broadcast_to(mask, loss_shape)
    raw = jnp.asarray(logits)
    plain = not capped and is_zero(z_loss)
    if class_mask is None and is_zero(label_smoothing) and plain and raw.dtype != x.dtype:
        # 16-bit logits: one fused core upcasting inside each pass (jaxloss/_fused.py).
        per = integer_label_cross_entropy(move_axes_last(raw, axes), safe_labels, row_mask)
    else:
        if class_mask is None:
            lse = logsumexp_last(x, row_mask)
        else:
            x = sanitize(x, mask)
            lse = logsumexp_classes(x, class_mask)
        per = lse - pick_label(x, safe_labels)
    element_weight = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, num_classes, x.dtype)
        element_weight = pick_label(cw, safe_labels)
        per = element_weight * per
    if not is_zero(label_smoothing):
        k = num_classes_in_row(x, class_mask)
        # Σ_c w_c (lse - x_c) over the (unmasked) classes, without forming log-probabilities.
        cw_row = jnp.ones((num_classes,), x.dtype) if class_weights is None else cw
        cw_row = cw_row if class_mask is None else jnp.where(class_mask, cw_row, 0)
        smooth = lse * jnp.sum(jnp.broadcast_to(cw_row, x.shape), axis=-1) - jnp.sum(
            jnp.where(cw_row != 0, cw_row * x, 0), axis=-1
        )
        per = (1.0 - label_smoothing) * per + label_smoothing / k * smooth
    if not is_zero(z_loss):
        z_term = z_loss * lse**2
        per = per + (z_term if element_weight is None else element_weight * z_term)
    per = nan_if_out_of_range(jnp.asarray(per), in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )


def sigmoid_binary_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    pos_weight: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    label_smoothing: float | ArrayLike = 0.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Element-wise sigmoid (logistic) cross-entropy from logits, in the stable log-sigmoid form.

    .. math:: \ell = -\bigl(w_1\, p\, \tilde y \log\sigma(x)
              + w_0 (1 - \tilde y) \log\sigma(-x)\bigr), \qquad
              \tilde y = (1 - \varepsilon)\, y + \varepsilon / 2

    optax's ``sigmoid_binary_cross_entropy`` (``pos_weight=None``) and PyTorch's
    ``binary_cross_entropy_with_logits(pos_weight=p)``. Labels are in [0, 1] (soft labels
    allowed). Finite value and gradient for logits of any finite size.

    Args:
      logits: any shape.
      labels: broadcastable to ``logits``.
      pos_weight: weight of the positive term, broadcastable to ``logits`` (per class). Unlike
        ``class_weights`` it does not enter ``"weighted_mean"``'s denominator (PyTorch's).
      class_weights: ``(w_0, w_1)``, the weights of labels 0 and 1 chosen by the ground truth
        (the class imbalance of binary segmentation), or ``[..., 2]`` broadcasting to
        ``logits`` (``[C, 2]``: one pair per label of a multi-label ``[B, C]`` output). Each
        term is weighted inside the loss, as above; the element's weight for
        ``"weighted_mean"`` is ``w_0 (1 - y) + w_1 y`` of the unsmoothed label, so for hard
        labels the loss is ``w_y · BCE`` and ``"weighted_mean"`` divides by ``Σ w_y``, as for
        integer labels. A soft label weights each term by its class's weight (PyTorch's rule for
        probability labels) and counts the class weight expected under it.
      label_smoothing: ``ε`` in [0, 1], Keras's binary smoothing towards 1/2 (``ε = 0.2``:
        targets 0.9 and 0.1).
      weights, where, reduction, axis_name: the contract, against ``logits.shape``.

    >>> import jax.numpy as jnp
    >>> sigmoid_binary_cross_entropy(jnp.array([0.0, 1e4, -1e4]), jnp.array([1.0, 1.0, 1.0]))
    Array([6.931472e-01, 0.000000e+00, 1.000000e+04], dtype=float32)
    >>> x, y = jnp.array([0.0, 0.0, 2.0]), jnp.array([0.0, 1.0, 1.0])
    >>> sigmoid_binary_cross_entropy(x, y, class_weights=(1.0, 4.0))   # w_y · BCE
    Array([0.6931472, 2.7725887, 0.507712 ], dtype=float32)
    >>> sigmoid_binary_cross_entropy(x, y, class_weights=(1.0, 4.0), reduction="weighted_mean")
    Array(0.4414942, dtype=float32)
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
    # -log σ(x) = softplus(-x), -log σ(-x) = softplus(x), sharing one exp (jaxloss/_fused.py).
    softplus_x, softplus_neg_x, _, _ = sigmoid_terms(x)
    pos = y * softplus_neg_x
    if pos_weight is not None:
        pw = jnp.asarray(pos_weight, x.dtype)
        check_broadcast(pw, "pos_weight", x.shape, "logits")
        pos = pw * pos
    neg = (1.0 - y) * softplus_x
    if cw is not None:
        pos, neg = cw[1].astype(x.dtype) * pos, cw[0].astype(x.dtype) * neg
    per = pos + neg
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )


def binary_cross_entropy(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    epsilon: float = 1e-7,
    class_weights: ArrayLike | None = None,
    label_smoothing: float | ArrayLike = 0.0,
    log_min: float | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Binary cross-entropy from probabilities, clipped to ``[ε, 1 - ε]`` (Keras semantics).

    .. math:: \ell = -\bigl(w_1 \tilde y \log \hat p + w_0 (1 - \tilde y) \log(1 - \hat p)\bigr),
              \quad \hat p = \mathrm{clip}(p, \varepsilon, 1 - \varepsilon), \quad
              \tilde y = (1 - \varepsilon_{ls})\, y + \varepsilon_{ls} / 2

    For users who hold probabilities; from logits prefer :func:`sigmoid_binary_cross_entropy`
    (more accurate near 0 and 1). The clip bounds the loss by ``-log ε`` (≈ 16.1) and its
    gradient is 0 outside ``[ε, 1-ε]``. Unlike Keras's ``binary_crossentropy`` this does not
    average over the last axis: it is per element, reduce with ``reduction``.

    ``class_weights`` (``(w_0, w_1)`` or ``[..., 2]``) and ``label_smoothing`` (Keras's
    ``label_smoothing``) mean what they mean in :func:`sigmoid_binary_cross_entropy`: the
    element's weight for ``"weighted_mean"`` is ``w_0 (1 - y) + w_1 y``.

    ``log_min`` bounds each log from below instead of (or as well as) the clip: PyTorch's
    ``binary_cross_entropy`` is ``epsilon=0.0, log_min=-100.0`` (a probability of exactly 0
    or 1 then costs at most 100, with gradient 0 through the clamped log, where PyTorch's is
    ``∓1e12``).

    >>> import jax.numpy as jnp
    >>> binary_cross_entropy(jnp.array([0.0]), jnp.array([1.0]), epsilon=0.0, log_min=-100.0)
    Array([100.], dtype=float32)
    >>> binary_cross_entropy(jnp.array([0.5, 0.0]), jnp.array([1.0, 1.0]))
    Array([ 0.6931472, 16.118095 ], dtype=float32)
    >>> binary_cross_entropy(jnp.array([0.8]), jnp.array([1.0]), label_smoothing=0.2)
    Array([0.3617729], dtype=float32)
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
    p = jnp.clip(p, epsilon, 1.0 - epsilon)
    if log_min is None:
        log_p, log_q = jnp.log(p), jnp.log1p(-p)
    else:
        log_p, log_q = _clamped_log(p, log_min), _clamped_log(1.0 - p, log_min)
    pos, neg = -y * log_p, -(1.0 - y) * log_q
    if cw is not None:
        pos, neg = cw[1].astype(p.dtype) * pos, cw[0].astype(p.dtype) * neg
    per = pos + neg
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )


def _clamped_log(p: Array, log_min: float) -> Array:
    """``max(log p, log_min)`` with a finite (zero) gradient at ``p = 0``."""
    positive = p > 0
    log_p = jnp.where(positive, jnp.log(jnp.where(positive, p, 1.0)), -jnp.inf)
    return jnp.maximum(log_p, jnp.asarray(log_min, p.dtype))


def categorical_cross_entropy(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    axis: Axis = -1,
    epsilon: float = 1e-7,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    label_smoothing: float | ArrayLike = 0.0,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Categorical cross-entropy from probabilities (Keras semantics).

    .. math:: \ell = -\sum_c w_c\, \tilde y_c \log \hat p_c, \quad
              \hat p = \mathrm{clip}(p / \textstyle\sum_c p_c,\ \varepsilon,\ 1 - \varepsilon),
              \quad \tilde y = (1 - \varepsilon_{ls})\, y + \varepsilon_{ls} / C

    As Keras's ``categorical_crossentropy(from_logits=False, label_smoothing=ε_ls)``: the
    probabilities are renormalised along ``axis`` and clipped, the labels smoothed over the
    ``C`` classes. Labels are probabilities or one-hot; an all-zero row is unlabeled
    (contributes 0, left out of means, not smoothed into a label). From logits prefer
    :func:`softmax_cross_entropy`. ``where`` is an element mask (rank of the loss).
    ``class_weights`` weight each class's term (PyTorch's rule, smoothing included); the
    element's weight for ``"weighted_mean"`` is ``Σ_c w_c y_c`` of the unsmoothed labels.

    >>> import jax.numpy as jnp
    >>> categorical_cross_entropy(jnp.array([[0.2, 0.8]]), jnp.array([[0.0, 1.0]]))
    Array([0.22314353], dtype=float32)
    >>> categorical_cross_entropy(jnp.array([[0.2, 0.8]]), jnp.array([[0.0, 1.0]]),
    ...                           label_smoothing=0.2)   # -(0.1 log 0.2 + 0.9 log 0.8)
    Array([0.361773], dtype=float32)
    """
    p = upcast(float_array(probs, "probs"))
    static_float(epsilon, "epsilon", low=0.0, high=0.5, high_open=True)
    axes = canonical_axes(axis, p.ndim, ordered=True)
    loss_shape = tuple(d for i, d in enumerate(p.shape) if i not in axes)
    y = labels_last(labels, p.shape, axes).astype(p.dtype)
    p = move_axes_last(p, axes)
    mask = element_mask(loss_shape, weights=weights, where=where, include=jnp.any(y != 0, axis=-1))
    p, y = sanitize(p, mask, 1.0), sanitize(y, mask)
    p = p / jnp.sum(p, axis=-1, keepdims=True)
    p = jnp.clip(p, epsilon, 1.0 - epsilon)
    check_smoothing(label_smoothing)
    element_weight = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, p.shape[-1], p.dtype)
        element_weight = label_sums(y, cw)[0]
    if not is_zero(label_smoothing):
        y = (1.0 - label_smoothing) * y + label_smoothing / p.shape[-1]
    if class_weights is not None:
        y = y * cw
    per = -jnp.sum(y * jnp.log(p), axis=-1)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )


def smooth_labels(
    labels: ArrayLike,
    alpha: float | ArrayLike,
    *,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    binary: bool = False,
) -> Array:
    r"""Label smoothing, optax's: ``(1 - α)·y + α / K`` with ``K`` the number of classes.

    .. math:: \tilde y_c = (1 - \alpha)\, y_c + \alpha / K

    ``where`` (a class mask broadcastable to ``labels``) makes ``K`` the number of unmasked
    classes per row, as in optax. Note that an all-zero (unlabeled) row becomes ``α/K``
    everywhere: smooth inside the loss (``label_smoothing=``) to keep such rows unlabeled.

    ``binary=True`` is for binary and multi-label targets (``[B]``, ``[B, D]``, pixel masks):
    each entry is its own two-class distribution ``(1 - y, y)``, so ``K = 2`` whatever the shape,
    ``ỹ = (1 - α) y + α/2`` (Keras's binary smoothing, the ``label_smoothing=`` of the sigmoid
    losses). ``axis`` is not used then, and ``where`` (which counts classes along ``axis``) is
    an error. The default, ``binary=False``, is optax's: it spreads ``α`` over the ``D`` entries
    of the last axis, right for one-hot rows and wrong for multi-label ones.

    >>> import jax.numpy as jnp
    >>> smooth_labels(jnp.array([0.0, 1.0]), 0.2)
    Array([0.1       , 0.90000004], dtype=float32)
    >>> smooth_labels(jnp.array([[0.0, 1.0, 1.0]]), 0.2, binary=True)   # multi-label
    Array([[0.1       , 0.90000004, 0.90000004]], dtype=float32)
    """
    labels = float_array(labels, "labels")
    if binary:
        if where is not None:
            raise ValueError(
                "where counts the classes along axis; smooth_labels(binary=True) smooths each "
                "entry towards 1/2 on its own and takes no where."
            )
        return jnp.asarray((1.0 - alpha) * labels + 0.5 * alpha)
    axes = canonical_axes(axis, labels.ndim)
    if where is None:
        k = 1
        for a in axes:
            k *= labels.shape[a]
    else:
        k = jnp.sum(where_mask(where, labels.shape, "labels"), axis=axes, keepdims=True)
    # (No ZeroDivisionError for an empty class axis: the result is empty anyway.)
    return jnp.asarray((1.0 - alpha) * labels + alpha / jnp.maximum(k, 1))


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
    axis_name: AxisName | None = None,
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
      reduction, axis_name: see :func:`jaxloss.reduce`.

    >>> import jax.numpy as jnp
    >>> poly_loss_cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]))  # log 2 + 1
    Array([1.6931472], dtype=float32)
    """
    x, axes, loss_shape, class_mask, element_where = class_inputs(logits, axis, where)
    y = labels_last(labels, jnp.shape(logits), axes).astype(x.dtype)
    include = labeled_rows(y)
    if class_mask is not None:
        include = include & jnp.any(class_mask, axis=-1)
    mask = element_mask(loss_shape, weights=weights, where=element_where, include=include)
    x, y = sanitize(x, mask), sanitize(y, mask)
    element_weight = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, x.shape[-1], x.dtype)
        element_weight = label_sums(y, cw)[0]
        y = y * cw
    log_p = log_softmax_last(x, class_mask)
    if class_mask is not None:
        y = jnp.where(class_mask, y, 0)
        log_p = jnp.where(class_mask, log_p, 0)
    cross_entropy = -jnp.sum(y * log_p, axis=-1)
    one_minus_pt = jnp.sum(y * -jnp.expm1(log_p), axis=-1)
    per = cross_entropy + jnp.asarray(epsilon, x.dtype) * one_minus_pt
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )


def negative_log_likelihood(
    log_probs: ArrayLike,
    labels: ArrayLike,
    axis: Axis = -1,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Negative log-likelihood of integer labels under given log-probabilities.

    .. math:: \ell = -w_y \log p_y

    PyTorch's ``nll_loss`` (``reduction="none"``; its ``"mean"`` is ``"weighted_mean"`` here,
    dividing by ``Σ w_y`` over included elements). The input is *not* normalised here:
    ``log_probs`` are taken as given (e.g. from :func:`jaxloss.log_softmax`), so for logits use
    :func:`softmax_cross_entropy_with_integer_labels`, which equals this on
    ``log_softmax(logits)``. The label's entry is picked by
    :func:`jaxloss._checks.pick_label` (sharding-safe), so NaN or ``-inf`` in other classes
    does not reach the loss or its gradient.

    Args:
      log_probs: ``[..., C, ...]`` log-probabilities (class axis ``axis``).
      labels: integer labels, the shape of ``log_probs`` less ``axis``.
      axis: the class axis (or axes, flattened in the order given).
      weights, where: the contract against the loss shape (``where`` is an element mask).
      class_weights: ``[C]``; the element's weight is ``class_weights[label]``.
      ignore_index: a label value whose elements act as ``where=False`` (PyTorch: -100).
      reduction, axis_name: see :func:`jaxloss.reduce`.

    Edges: an out-of-range label that is not ``ignore_index`` gives NaN for its element;
    :func:`jaxloss.checked` raises.

    >>> import jax.numpy as jnp
    >>> log_p = jnp.log(jnp.array([[0.25, 0.75], [0.5, 0.5]]))
    >>> negative_log_likelihood(log_p, jnp.array([1, -100]), ignore_index=-100)   # -log 0.75
    Array([0.2876821, 0.       ], dtype=float32)
    """
    x, _, loss_shape, _, _ = class_inputs(log_probs, axis, None)
    num_classes = x.shape[-1]
    safe_labels, in_range, include = class_integer_labels(
        labels, loss_shape, num_classes, ignore_index
    )
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    per = -pick_label(x, safe_labels)
    element_weight = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, num_classes, x.dtype)
        element_weight = pick_label(cw, safe_labels)
        per = element_weight * per
    per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )
