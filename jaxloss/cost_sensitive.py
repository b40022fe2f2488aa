"""Cost-sensitive classification with a cost matrix ``C[true, predicted]``.

The expected cost under the softmax, and the cross-entropy scaled by the cost of the current
mistake. Both take integer or probability labels and the contract arguments (see
:func:`jaxloss.reduce`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    Axis,
    float_array,
    nan_if_out_of_range,
    one_hot_matmul,
    pick_label,
)
from jaxloss._class_axis import (
    apply_class_weights,
    class_inputs,
    class_integer_labels,
    labeled_rows,
    labels_last,
    log_softmax_last,
)
from jaxloss._reduction import AxisName, Reduction, element_mask, reduce_elements, sanitize

__all__ = [
    "expected_cost_loss",
    "confusion_weighted_cross_entropy",
]


def _cost_rows(labels: Array, cost: Array, safe_labels: Array | None) -> Array:
    """``C[y, :]`` for integer labels, ``y @ C`` for probability labels (no gather either way)."""
    if safe_labels is not None:
        return one_hot_matmul(safe_labels, cost)
    return jnp.matmul(labels, cost, precision=jax.lax.Precision.HIGHEST)


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
    axis_name: AxisName | None = None,
) -> Array:
    r"""Expected misclassification cost under the softmax: differentiable cost-sensitive loss.

    .. math:: \ell = \sum_j C_{y j}\, \mathrm{softmax}(x)_j

    ``C[i, j]`` is the cost of predicting ``j`` when the truth is ``i`` (usually 0 on the
    diagonal). Integer labels (``ignore_index`` supported) or probability rows (then the row of
    costs is ``y @ C``; an all-zero row is unlabeled). Minimised by putting the mass on the
    cheapest class for the truth.

    Sharding: with probability labels ``y @ C`` mixes every class of a row, so a sharded class
    axis is gathered (row by row); integer labels pick the row ``C[y]`` and move nothing.

    >>> import jax.numpy as jnp
    >>> cost = jnp.array([[0.0, 1.0], [5.0, 0.0]])   # missing class 1 costs 5
    >>> expected_cost_loss(jnp.array([[0.0, 0.0]]), jnp.array([1]), cost)
    Array([2.5], dtype=float32)
    """
    x, axes, loss_shape, _, _ = class_inputs(logits, axis, None)
    num_classes = x.shape[-1]
    cost = _cost_matrix(cost_matrix, num_classes, x.dtype)
    labels = jnp.asarray(labels)
    integer = jnp.issubdtype(labels.dtype, jnp.integer)
    safe_labels = in_range = None
    if integer:
        safe_labels, in_range, include = class_integer_labels(
            labels, loss_shape, num_classes, ignore_index
        )
        y = labels
    else:
        y = labels_last(labels, jnp.shape(logits), axes).astype(x.dtype)
        include = labeled_rows(y)
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    x = sanitize(x, mask)
    if not integer:
        y = sanitize(y, mask)
    per = jnp.sum(_cost_rows(y, cost, safe_labels) * jax.nn.softmax(x, axis=-1), axis=-1)
    per, element_weight = apply_class_weights(per, y, safe_labels, class_weights, num_classes)
    if integer:
        assert in_range is not None
        per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
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
    axis_name: AxisName | None = None,
) -> Array:
    r"""Cross-entropy scaled by the cost of the current mistake, ``C[y, argmax x]``.

    .. math:: \ell = C_{y,\ \arg\max_j x_j} \cdot \bigl(-\log \mathrm{softmax}(x)_y\bigr)

    The recipe Keras users build by hand: the factor is picked by the current prediction
    (argmax has no gradient), so the gradient with respect to the logits is the cross-entropy's
    scaled by the cost; the cost matrix's gradient is the cross-entropy at ``[y, argmax x]``.
    With a zero diagonal, correctly classified examples contribute nothing;
    use 1 on the diagonal to keep training them. Labels are integer (``ignore_index``
    supported) or probability rows (the true class is their argmax; all-zero rows are
    unlabeled).

    >>> import jax.numpy as jnp
    >>> cost = jnp.array([[1.0, 1.0], [4.0, 1.0]])
    >>> confusion_weighted_cross_entropy(jnp.array([[1.0, 0.0]]), jnp.array([1]), cost)
    Array([5.2530465], dtype=float32)
    """
    x, axes, loss_shape, _, _ = class_inputs(logits, axis, None)
    num_classes = x.shape[-1]
    cost = _cost_matrix(cost_matrix, num_classes, x.dtype)
    labels = jnp.asarray(labels)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        safe_labels, in_range, include = class_integer_labels(
            labels, loss_shape, num_classes, ignore_index
        )
        y = None
    else:
        y = labels_last(labels, jnp.shape(logits), axes).astype(x.dtype)
        include = labeled_rows(y)
        safe_labels = jnp.argmax(y, axis=-1)
        in_range = None
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    x = sanitize(x, mask)
    log_p = log_softmax_last(x, None)
    if y is None:
        ce = -pick_label(log_p, safe_labels)
    else:
        ce = -jnp.sum(sanitize(y, mask) * log_p, axis=-1)
    predicted = jnp.argmax(jax.lax.stop_gradient(x), axis=-1)
    # The factor depends on the logits only through the argmax (no gradient); the cost matrix
    # gets its gradient, ``ce`` at entry ``[y, argmax x]``.
    factor = pick_label(one_hot_matmul(safe_labels, cost), predicted)
    per, element_weight = apply_class_weights(
        ce * factor, y, safe_labels, class_weights, num_classes
    )
    if in_range is not None:
        per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )
