"""Shared preparation of class-axis losses (private).

Upcasting logits and moving the class axes last, splitting ``where`` into class and element
masks, validating integer and probability labels, the masked log-softmax, and class weights
chosen by the true class. Used by the classification family modules (cross-entropies, focal,
cost-sensitive, margin, sparse) and segmentation.
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
    class_weight_vector,
    float_array,
    integer_labels,
    move_axes_last,
    pick_label,
    static_float,
    upcast,
)
from jaxloss._fused import (
    label_sums,
    logsumexp_last,
)
from jaxloss._reduction import where_mask

INT_HINT = " For probability or one-hot labels use softmax_cross_entropy."


def class_inputs(
    logits: ArrayLike, axis: Axis, where: ArrayLike | None
) -> tuple[Array, tuple[int, ...], tuple[int, ...], Array | None, Array | None]:
    """Upcast logits, move the class axes last; split ``where`` into class and element masks.

    Returns ``(x, axes, loss_shape, class_mask, element_where)`` with ``x`` of shape
    ``loss_shape + (C,)``.
    """
    logits = upcast(float_array(logits, "logits"))
    axes = canonical_axes(axis, logits.ndim, ordered=True)
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


def labels_last(
    labels: ArrayLike,
    logits_shape: tuple[int, ...],
    axes: tuple[int, ...],
    *,
    integer_alternative: str | None = None,
) -> Array:
    """Probability labels broadcast to the logits' shape and laid out like ``class_inputs``.

    Integer labels of lower rank than the logits are class indices, not probabilities: a
    ``TypeError`` names ``integer_alternative`` (the integer-label function) or ``one_hot``.
    """
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.number):
        raise TypeError(f"labels must be a numeric array; got dtype {labels.dtype}.")
    if jnp.issubdtype(labels.dtype, jnp.integer) and labels.ndim < len(logits_shape):
        num_classes = 1
        for a in axes:
            num_classes *= logits_shape[a]
        fix = (
            f"use {integer_alternative} for class indices, or "
            if integer_alternative
            else "for class indices use "
        )
        raise TypeError(
            f"labels has integer dtype {labels.dtype} and shape {tuple(labels.shape)}, a rank "
            f"below the logits {tuple(logits_shape)}: class indices? This function takes "
            f"probability or one-hot labels of the logits' shape; {fix}"
            f"jax.nn.one_hot(labels, {num_classes})."
        )
    check_broadcast(labels, "labels", logits_shape, "logits")
    return move_axes_last(jnp.broadcast_to(labels, logits_shape), axes)


def logsumexp_classes(x: Array, class_mask: Array | None) -> Array:
    """Stable log-sum-exp over the last axis; masked classes excluded; empty rows give 0."""
    if class_mask is None:  # same formula, scheduled for speed: see jaxloss/_fused.py
        return logsumexp_last(x)
    m = jnp.max(x, axis=-1, keepdims=True, where=class_mask, initial=-jnp.inf)
    m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, jnp.zeros((), x.dtype)))
    e = jnp.where(class_mask, jnp.exp(jnp.where(class_mask, x - m, 0)), 0)
    total = jnp.sum(e, axis=-1, keepdims=True)
    return (m + jnp.log(jnp.where(total == 0, 1, total)))[..., 0]


def log_softmax_last(x: Array, class_mask: Array | None) -> Array:
    """log-softmax over the last axis (masked classes: ``-inf``)."""
    out = x - logsumexp_classes(x, class_mask)[..., None]
    if class_mask is not None:
        out = jnp.where(class_mask, out, -jnp.inf)
    return out


def num_classes_in_row(x: Array, class_mask: Array | None) -> Array | int:
    return x.shape[-1] if class_mask is None else jnp.sum(class_mask, axis=-1)


def class_integer_labels(
    labels: ArrayLike, loss_shape: tuple[int, ...], num_classes: int, ignore_index: int | None
) -> tuple[Array, Array, Array | None]:
    """Validate integer labels; returns ``(safe_labels, in_range, include)``."""
    return integer_labels(labels, loss_shape, num_classes, ignore_index, hint=INT_HINT)


def check_smoothing(label_smoothing: Any) -> None:
    static_float(label_smoothing, "label_smoothing", low=0.0, high=1.0)


def is_zero(x: Any) -> bool:
    return isinstance(x, int | float) and x == 0


# ---------------------------------------------------------------------------------------------
def labeled_rows(y: Array) -> Array:
    """Rows with label mass, ``Σ_c y_c ≠ 0``; the others (all-zero rows) are unlabeled.

    For labels that are probabilities (nonnegative) this is ``any(y != 0)``; a NaN label makes
    its row labeled (and its loss NaN). It is a plain sum of the labels, which XLA:CPU runs at
    memory speed even over rows of 10⁵ classes (``any(y != 0)`` or ``Σ|y|`` put an elementwise
    op inside the reduction and measured 2-4× slower there), and the loss needs ``Σ_c y_c``
    anyway.
    """
    return jnp.sum(y, axis=-1) != 0


def apply_class_weights(
    per: Array,
    y: Array | None,
    safe_labels: Array | None,
    class_weights: ArrayLike | None,
    num_classes: int,
) -> tuple[Array, Array | None]:
    """Multiply a loss by its element's class weight (by the true class) and return that weight.

    Used by losses whose class weight is a factor of the whole element loss: integer labels use
    ``class_weights[y]`` (picked by :func:`~jaxloss._checks.pick_label`, no gather on a sharded
    batch); probability labels ``Σ_c w_c y_c``.
    """
    if class_weights is None:
        return per, None
    cw = class_weight_vector(class_weights, num_classes, per.dtype)
    if safe_labels is not None and (y is None or jnp.issubdtype(y.dtype, jnp.integer)):
        element_weight = pick_label(cw, safe_labels)
    else:
        assert y is not None, "probability labels or integer labels are required"
        element_weight = label_sums(y, cw)[0]
    return per * element_weight, element_weight
