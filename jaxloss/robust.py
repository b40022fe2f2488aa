"""Noise-robust classification losses: the generalised cross-entropy of Zhang & Sabuncu (2018).

Takes the contract arguments (see :func:`jaxloss.reduce`), integer or probability labels.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    Axis,
    class_weight_vector,
    nan_if_out_of_range,
    pick_label,
    static_float,
)
from jaxloss._class_axis import (
    class_inputs,
    class_integer_labels,
    labeled_rows,
    labels_last,
    log_softmax_last,
)
from jaxloss._fused import label_sums
from jaxloss._reduction import AxisName, Reduction, element_mask, reduce_elements, sanitize

__all__ = ["generalized_cross_entropy"]


def generalized_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    q: float | ArrayLike = 0.5,
    axis: Axis = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Generalised cross-entropy ``L_q`` (Zhang & Sabuncu 2018), robust to noisy labels.

    .. math:: \ell = \frac{1 - p_y^{\,q}}{q}, \qquad p = \mathrm{softmax}(x)

    and for probability labels ``ℓ = Σ_c w_c y_c (1 - p_c^q) / q``. It tends to the
    cross-entropy ``-log p_y`` as ``q → 0`` and is the mean absolute error ``1 - p_y`` at
    ``q = 1``; the paper uses ``q = 0.7``, Keras's ``CategoricalGeneralizedCrossEntropy``
    defaults to 0.5 (as here). Computed from logits as ``-expm1(q log p_y) / q``: no
    ``0 / 0`` for small ``q`` and finite gradients for logits of any finite size. Keras takes
    probabilities: pass ``jnp.log(probs)`` as the logits (their log-softmax is ``log p``).

    Args:
      logits: ``[..., C, ...]`` unnormalised log-probabilities.
      labels: integer class indices (shape ``logits`` less ``axis``) or probability / one-hot
        rows broadcastable to ``logits`` (an all-zero row is unlabeled: 0, left out of means).
      q: in ``(0, 1]``.
      axis: class axis (or axes).
      weights, where: the contract, against the loss shape (``where`` is an element mask).
      class_weights: ``[C]``, chosen by the true class: ``w_y`` for integer labels, inside the
        sum for probability labels (the element's weight for ``"weighted_mean"`` is
        ``Σ_c w_c y_c``).
      ignore_index: integer labels equal to it act as ``where=False``.
      reduction, axis_name: see :func:`jaxloss.reduce`.

    Edges: an out-of-range integer label that is not ``ignore_index`` gives NaN for its element.

    >>> import jax.numpy as jnp
    >>> logits = jnp.log(jnp.array([[0.7, 0.3], [0.2, 0.8]]))
    >>> generalized_cross_entropy(logits, jnp.array([0, 1]), q=0.7)   # (1 - p_y^0.7) / 0.7
    Array([0.31563437, 0.20658904], dtype=float32)
    """
    x, axes, loss_shape, _, _ = class_inputs(logits, axis, None)
    num_classes = x.shape[-1]
    static_float(q, "q", low=0.0, high=1.0, low_open=True)
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
    q = jnp.asarray(q, x.dtype)
    cw = None if class_weights is None else class_weight_vector(class_weights, num_classes, x.dtype)
    log_p = log_softmax_last(x, None)
    if integer:
        per = -jnp.expm1(q * pick_label(log_p, safe_labels)) / q
        element_weight = None
        if cw is not None:
            element_weight = pick_label(cw, safe_labels)
            per = per * element_weight
        per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    else:
        y = sanitize(y, mask)
        yw = y if cw is None else y * cw
        per = jnp.sum(yw * -jnp.expm1(q * log_p), axis=-1) / q
        element_weight = None if cw is None else label_sums(y, cw)[0]
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )
