"""Margin losses: binary hinge, squared hinge and perceptron; multiclass hinge (Crammer–Singer),
perceptron and PyTorch's ``multi_margin_loss`` (Weston–Watkins).

Element-wise binary losses take ±1 (or 0/1) targets; the multiclass ones integer labels with
``ignore_index`` and ``class_weights`` chosen by the true class. All take the contract arguments
(see :func:`jaxloss.reduce`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    Axis,
    canonical_axes,
    check_broadcast,
    explicit_spec,
    float_array,
    is_label,
    move_axes_last,
    nan_if_out_of_range,
    pick_label,
    reshard_like,
    upcast,
)
from jaxloss._class_axis import (
    apply_class_weights,
    class_integer_labels,
)
from jaxloss._reduction import AxisName, Reduction, element_mask, reduce_elements, sanitize

__all__ = [
    "hinge_loss",
    "squared_hinge_loss",
    "binary_hinge_loss",
    "perceptron_loss",
    "multiclass_hinge_loss",
    "multiclass_perceptron_loss",
    "multi_margin_loss",
    "hinge_embedding_loss",
    "multilabel_margin_loss",
]


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
    axis_name: AxisName | None = None,
) -> Array:
    r"""Binary hinge loss with ±1 targets, optax's ``hinge_loss``.

    .. math:: \ell = \max(0,\ 1 - s\,t), \qquad t \in \{-1, +1\}

    Element-wise; targets must be -1 or +1 (use :func:`binary_hinge_loss` for {0, 1} labels).
    At the kink ``s·t = 1`` the gradient is half the slope, as ``jnp.maximum`` (and optax) give.

    Args:
      predictor_outputs: decision-function values, any shape ``S``.
      targets: ±1, broadcastable to ``S``.
      weights, where, reduction, axis_name: the contract (see :func:`jaxloss.reduce`),
        against ``S``.

    >>> import jax.numpy as jnp
    >>> hinge_loss(jnp.array([2.0, 0.5, 0.5]), jnp.array([1.0, 1.0, -1.0]))
    Array([0. , 0.5, 1.5], dtype=float32)
    """
    s, t, mask = _binary_margin_inputs(
        predictor_outputs, targets, "predictor_outputs", "targets", weights, where
    )
    per = jnp.maximum(0, 1 - s * t)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def squared_hinge_loss(
    predictor_outputs: ArrayLike,
    targets: ArrayLike,
    *,
    margin: float | ArrayLike = 1.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Squared hinge loss with ±1 targets (Keras's ``squared_hinge``, per element).

    .. math:: \ell = \max(0,\ m - s\,t)^2, \qquad t \in \{-1, +1\}

    Differentiable everywhere (the gradient is 0 at the kink). Keras averages over the last
    axis; here the loss is per element: use ``reduction="mean"`` for Keras's value.

    Args:
      predictor_outputs: any shape ``S``.
      targets: ±1, broadcastable to ``S``.
      margin: ``m`` (1 in Keras).
      weights, where, reduction, axis_name: the contract.

    >>> import jax.numpy as jnp
    >>> squared_hinge_loss(jnp.array([2.0, 0.5, 0.5]), jnp.array([1.0, 1.0, -1.0]))
    Array([0.  , 0.25, 2.25], dtype=float32)
    """
    s, t, mask = _binary_margin_inputs(
        predictor_outputs, targets, "predictor_outputs", "targets", weights, where
    )
    per = jax.nn.relu(margin - s * t) ** 2
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def binary_hinge_loss(
    scores: ArrayLike,
    labels01: ArrayLike,
    *,
    margin: float | ArrayLike = 1.0,
    squared: bool = False,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
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
      weights, where, reduction, axis_name: the contract.

    >>> import jax.numpy as jnp
    >>> binary_hinge_loss(jnp.array([2.0, 0.5, 0.5]), jnp.array([1, 1, 0]))
    Array([0. , 0.5, 1.5], dtype=float32)
    """
    s, y, mask = _binary_margin_inputs(scores, labels01, "scores", "labels01", weights, where)
    per = jax.nn.relu(margin - s * (2 * y - 1))
    if squared:
        per = per**2
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def perceptron_loss(
    predictor_outputs: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
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
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


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
    axes = canonical_axes(axis, s.ndim, ordered=True)
    loss_shape = tuple(d for i, d in enumerate(s.shape) if i not in axes)
    s = move_axes_last(s, axes)
    num_classes = s.shape[-1]
    safe_labels, in_range, include = class_integer_labels(
        labels, loss_shape, num_classes, ignore_index
    )
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
    axis_name: AxisName | None = None,
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
      reduction, axis_name: see :func:`jaxloss.reduce`.

    Edges: an out-of-range label that is not ``ignore_index`` gives NaN (optax treats it as
    "no true class"); :func:`jaxloss.checked` raises instead.

    >>> import jax.numpy as jnp
    >>> multiclass_hinge_loss(jnp.array([[2.0, 1.5, 0.0], [0.0, 3.0, 1.0]]), jnp.array([0, 0]))
    Array([0.5, 4. ], dtype=float32)
    """
    s, safe_labels, in_range, mask, num_classes = _multiclass_margin_inputs(
        scores, labels, axis, weights, where, ignore_index
    )
    one_hot = is_label(safe_labels, num_classes).astype(s.dtype)
    per = jnp.max(s + 1.0 - one_hot, axis=-1) - pick_label(s, safe_labels)
    per, element_weight = apply_class_weights(per, None, safe_labels, class_weights, num_classes)
    per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
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
    axis_name: AxisName | None = None,
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
    per = jnp.max(s, axis=-1) - pick_label(s, safe_labels)
    per, element_weight = apply_class_weights(per, None, safe_labels, class_weights, num_classes)
    per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
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
    axis_name: AxisName | None = None,
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
      axis, weights, where, ignore_index, reduction, axis_name: as :func:`multiclass_hinge_loss`.

    >>> import jax.numpy as jnp
    >>> multi_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([3]))  # PyTorch's example
    Array([0.325], dtype=float32)
    """
    if p not in (1, 2) or isinstance(p, bool):
        raise ValueError(f"p must be 1 or 2, as in PyTorch's multi_margin_loss; got {p!r}.")
    s, safe_labels, in_range, mask, num_classes = _multiclass_margin_inputs(
        scores, labels, axis, weights, where, ignore_index
    )
    true_score = pick_label(s, safe_labels)[..., None]
    terms = jax.nn.relu(margin - true_score + s)
    if p == 2:
        terms = terms**2
    wrong = ~is_label(safe_labels, num_classes)
    per = jnp.sum(jnp.where(wrong, terms, 0), axis=-1) / num_classes
    per, element_weight = apply_class_weights(per, None, safe_labels, class_weights, num_classes)
    per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )


def hinge_embedding_loss(
    scores: ArrayLike,
    targets: ArrayLike,
    *,
    margin: float | ArrayLike = 1.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Hinge embedding loss: the score itself for similar pairs, a hinge for dissimilar ones.

    .. math:: \ell = \begin{cases} x & t = 1 \\ \max(0,\ m - x) & t = -1 \end{cases}

    PyTorch's ``hinge_embedding_loss`` with ``reduction="none"``: ``x`` is usually a distance
    between two embeddings (e.g. the L1 distance), ``t = 1`` marks a similar pair (pulled
    together), ``t = -1`` a dissimilar one (pushed beyond the margin). Element-wise; PyTorch's
    ``reduction="mean"`` is ``"mean"`` here.

    Args:
      scores: any shape ``S`` (distances).
      targets: ±1, broadcastable to ``S`` (any value other than 1 counts as -1, as in PyTorch).
      margin: ``m``.
      weights, where, reduction, axis_name: the contract (see :func:`jaxloss.reduce`).

    The gradient at the kink ``x = m`` (for ``t = -1``) is half the slope (``jnp.maximum``).

    >>> import jax.numpy as jnp
    >>> hinge_embedding_loss(jnp.array([0.3, 0.3, 2.0]), jnp.array([1, -1, -1]))
    Array([0.3, 0.7, 0. ], dtype=float32)
    """
    x, t, mask = _binary_margin_inputs(scores, targets, "scores", "targets", weights, where)
    per = jnp.where(t == 1, x, jnp.maximum(0.0, margin - x))
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def multilabel_margin_loss(
    scores: ArrayLike,
    label_sets: ArrayLike,
    *,
    margin: float | ArrayLike = 1.0,
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Multi-label margin loss: every true class must beat every other class by ``margin``.

    .. math:: \ell = \frac{1}{C} \sum_{j \in Y} \sum_{i \notin Y}
              \max\bigl(0,\ m - (x_j - x_i)\bigr)

    PyTorch's ``multilabel_margin_loss`` (with ``m = 1``), whose targets are class indices
    padded with -1; here the set ``Y`` is a multi-hot ``[..., C]`` array (nonzero = in ``Y``),
    the form the other multi-label losses take (``jaxloss.compat.torch`` converts PyTorch's
    index lists). An example with no true class contributes 0 (and still counts for
    ``"mean"``, as in PyTorch). The gradient at a kink is half the slope. Every class is
    compared with every other (``[..., C, C]`` terms), so with the class axis sharded the
    rows are gathered (the sharding tests record it).

    Args:
      scores: ``[..., C]`` scores (class axis ``axis``).
      label_sets: ``[..., C]`` multi-hot membership of each class in ``Y``.
      margin: ``m`` (1 in PyTorch).
      axis: the class axis.
      weights, where, reduction, axis_name: the contract against the loss shape (``scores``
        less ``axis``).

    >>> import jax.numpy as jnp   # PyTorch's documented example: classes 3 and 0 are true
    >>> multilabel_margin_loss(jnp.array([[0.1, 0.2, 0.4, 0.8]]), jnp.array([[1, 0, 0, 1]]))
    Array([0.85], dtype=float32)
    """
    s = upcast(float_array(scores, "scores"))
    axes = canonical_axes(axis, s.ndim)
    y = jnp.asarray(label_sets)
    if y.shape != s.shape:
        raise ValueError(
            f"label_sets has shape {tuple(y.shape)}; expected the scores shape "
            f"{tuple(s.shape)} (a multi-hot [..., C] set of true classes)."
        )
    s, y = move_axes_last(s, axes), move_axes_last(y, axes) != 0
    mask = element_mask(s.shape[:-1], weights=weights, where=where)
    s, y = sanitize(s, mask), sanitize(y, mask, False)
    # [..., C_true, C_other] hinge terms over (true j, non-true i) pairs: every class meets
    # every other, so a class axis sharded over explicit mesh axes is gathered first.
    spec = (*explicit_spec(s)[:-1], None)
    s, y = reshard_like(s, spec), reshard_like(y, spec)
    pair = jnp.maximum(0.0, margin - (s[..., :, None] - s[..., None, :]))
    valid = y[..., :, None] & ~y[..., None, :]
    per = jnp.sum(jnp.where(valid, pair, 0.0), axis=(-2, -1)) / s.shape[-1]
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )
