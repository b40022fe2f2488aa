"""Metrics that compile: accuracy, confusion matrix, precision/recall/F, ROC / AUC, average
precision, regression metrics, and differentiable surrogates of precision, recall and F1.

Every metric is a pure function of arrays with static output shapes, so it runs inside
``jax.jit`` and ``jax.vmap`` (evaluate a whole stack of batches in one call). They take the
contract's ``weights`` (scikit-learn's ``sample_weight``) and ``where`` (``False`` elements are
left out entirely, as if they were not in the batch); class-label metrics also take
``ignore_index`` and treat an all-zero one-hot row as unlabeled. Weighted means go through
:func:`jaxloss.reduce`'s machinery (``reduction="weighted_mean"``: ``Σ w·x / Σ w`` over the
included elements).

Conventions (each matches scikit-learn 1.9 unless stated in the function):

* a mean over nothing (every element excluded) is ``0.0``, the contract's rule (scikit-learn
  raises instead);
* a ratio with a zero denominator (precision with no predicted positives, ...) is ``0.0``:
  scikit-learn's ``zero_division="warn"`` value, without the warning;
* ROC quantities that scikit-learn leaves undefined stay undefined: ``roc_curve``'s ``fpr`` is
  NaN when there are no negatives (``tpr`` when no positives) and ``roc_auc`` is NaN when only
  one class is present, exactly as ``sklearn.metrics.roc_curve`` / ``roc_auc_score`` return;
* an out-of-range integer label (not ``ignore_index``) where the number of classes is known
  makes the metric NaN, never a plausible number; :func:`jaxloss.checked` raises instead.

Unlike scikit-learn's ``(y_true, y_pred)``, predictions come first, as in the losses; the one
exception is :func:`confusion_matrix`, whose ``(labels, predictions, num_classes)`` order keeps
scikit-learn's rows-are-truth layout obvious.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxloss._checks import (
    Array,
    ArrayLike,
    check_broadcast,
    float_array,
    static_float,
    upcast,
    value_check,
)
from jaxloss._reduction import element_mask, reduce_elements, safe_divide, sanitize

__all__ = [
    "accuracy",
    "top_k_accuracy",
    "confusion_matrix",
    "PrecisionRecallFscore",
    "precision_recall_fscore",
    "roc_curve",
    "roc_auc",
    "average_precision",
    "mean_squared_error",
    "root_mean_squared_error",
    "mean_absolute_error",
    "mean_absolute_percentage_error",
    "r2_score",
    "soft_precision",
    "soft_recall",
    "soft_f1_loss",
]

Average = Literal["macro", "micro", "weighted", "binary"] | None
SoftAverage = Literal["binary", "macro", "micro"] | None

# scikit-learn's MAPE floor, float64 machine epsilon whatever the input dtype.
_MAPE_EPSILON = float(np.finfo(np.float64).eps)


# ---------------------------------------------------------------------------------------------
# Classification: accuracy and the confusion matrix.


def accuracy(
    logits_or_labels_pred: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    axis: int = -1,
) -> Array:
    r"""Fraction of correctly classified elements, weighted and masked.

    .. math:: \mathrm{acc} = \frac{\sum_i w_i\, [\hat y_i = y_i]}{\sum_i w_i}
              \quad\text{over the included elements } i

    ``sklearn.metrics.accuracy_score(y_true, y_pred, sample_weight=w)`` on the included
    elements.

    Args:
      logits_or_labels_pred: either scores / logits with a class axis ``axis`` (shape
        ``S`` with ``C`` inserted at ``axis``; the prediction is their argmax, the first
        maximum on ties), or integer (or boolean) predicted labels of shape ``S``.
      labels: integer labels of shape ``S``, or one-hot / probability rows with the class axis
        at ``axis`` (their argmax is the true class; an all-zero row is unlabeled and left out).
      where: boolean, broadcastable to ``S``; ``False`` elements are left out.
      weights: per-element weights broadcastable to ``S`` (``sample_weight``); weight-0
        elements are left out.
      ignore_index: integer labels equal to it are left out (e.g. ``-1`` for unlabeled).
      axis: the class axis of logits / one-hot labels.

    Returns:
      A scalar in the compute dtype (float32 for integer or 16-bit inputs).

    Edges: no included element gives ``0.0``. With logits, an included label outside
    ``[0, C)`` makes the result NaN (:func:`jaxloss.checked` raises); with predicted labels the
    number of classes is unknown and labels are compared as they are.

    >>> import jax.numpy as jnp
    >>> logits = jnp.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0], [5.0, 0.0]])
    >>> accuracy(logits, jnp.array([0, 0, 0, -1]), ignore_index=-1)   # 2 right of 3 labeled
    Array(0.6666667, dtype=float32)
    >>> accuracy(jnp.array([1, 2, 2]), jnp.array([1, 2, 0]), weights=jnp.array([1.0, 1.0, 2.0]))
    Array(0.5, dtype=float32)
    """
    pred, true, shape, include, in_range, dtype = _class_predictions(
        logits_or_labels_pred, labels, axis, ignore_index, "logits_or_labels_pred"
    )
    mask = element_mask(shape, weights=weights, where=where, include=include)
    correct = (pred == true).astype(dtype)
    correct = _nan_if_bad(
        correct,
        in_range,
        mask,
        f"labels must lie in [0, num_classes) or equal ignore_index={ignore_index}",
    )
    return reduce_elements(correct, mask=mask, weights=weights, reduction="weighted_mean")


def top_k_accuracy(
    logits: ArrayLike,
    labels: ArrayLike,
    k: int,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    axis: int = -1,
) -> Array:
    r"""Fraction of elements whose true class is among the ``k`` highest scores.

    .. math:: \mathrm{rank}_i = \#\{c : x_{ic} > x_{iy_i}\} + \#\{c > y_i : x_{ic} = x_{iy_i}\},
              \qquad \mathrm{acc}_k = \frac{\sum_i w_i [\mathrm{rank}_i < k]}{\sum_i w_i}

    ``sklearn.metrics.top_k_accuracy_score(y_true, logits, k=k, labels=range(C),
    sample_weight=w)`` for multi-class scores, including its tie rule: among equal scores the
    higher class index ranks first (scikit-learn reverses a stable ascending sort). Computed
    by counting, not sorting: ``O(C)`` per element. ``k >= C`` gives 1 for every labeled element.

    Args:
      logits: scores with a class axis ``axis``, shape ``S`` with ``C`` inserted.
      labels: integer labels of shape ``S``, or one-hot rows like ``logits`` (all-zero rows are
        unlabeled and left out).
      k: a positive Python int.
      where, weights, ignore_index, axis: as in :func:`accuracy`.

    >>> import jax.numpy as jnp
    >>> logits = jnp.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.4, 0.4, 0.2]])
    >>> top_k_accuracy(logits, jnp.array([1, 0, 0]), 2)   # ranks 1, 2, 1 (tie: class 1 first)
    Array(0.6666667, dtype=float32)
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive Python int; got {k!r}.")
    x = upcast(float_array(logits, "logits"))
    if x.ndim == 0:
        raise ValueError("logits must have a class axis; got a scalar.")
    ax = axis % x.ndim
    x = jnp.moveaxis(x, ax, -1)
    num_classes = x.shape[-1]
    shape = x.shape[:-1]
    true, include, in_range = _true_classes(labels, shape, num_classes, ax, ignore_index)
    mask = element_mask(shape, weights=weights, where=where, include=include)
    x = sanitize(x, mask)
    safe_true = jnp.where(in_range, true, 0)
    true_score = jnp.take_along_axis(x, safe_true[..., None], axis=-1)
    classes = jnp.arange(num_classes)
    above = (x > true_score) | ((x == true_score) & (classes > safe_true[..., None]))
    hit = (jnp.sum(above, axis=-1) < k).astype(x.dtype)
    hit = _nan_if_bad(
        hit,
        in_range,
        mask,
        f"labels must lie in [0, {num_classes}) or equal ignore_index={ignore_index}",
    )
    return reduce_elements(hit, mask=mask, weights=weights, reduction="weighted_mean")


def confusion_matrix(
    labels: ArrayLike,
    predictions: ArrayLike,
    num_classes: int,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""The ``[C, C]`` confusion matrix: row = true class, column = predicted class.

    .. math:: M_{ab} = \sum_i w_i\, [y_i = a]\, [\hat y_i = b] \quad\text{over included } i

    ``sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(C), sample_weight=w)``,
    with a static shape for ``jit``. The argument order is scikit-learn's ``(y_true, y_pred)``.

    Args:
      labels: integer true labels, any shape ``S``.
      predictions: integer predicted labels of shape ``S``, or scores with a trailing class
        axis (shape ``S + (C,)``; their argmax is the prediction).
      num_classes: ``C``, a Python int.
      weights: per-element weights broadcastable to ``S``.
      where: boolean, broadcastable to ``S``.
      ignore_index: labels equal to it are left out.

    Returns:
      A float ``[C, C]`` array (float32 unless weights are float64): weighted counts.
      Unweighted counts are exact up to 2**24 per cell in float32.

    Edges: an included label or prediction outside ``[0, C)`` makes the whole matrix NaN
    (scikit-learn would silently drop it); :func:`jaxloss.checked` raises instead.

    >>> import jax.numpy as jnp
    >>> confusion_matrix(jnp.array([0, 1, 2, 2]), jnp.array([0, 2, 2, 1]), 3)
    Array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 1., 1.]], dtype=float32)
    """
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, int | np.integer)
        or num_classes < 1
    ):
        raise ValueError(f"num_classes must be a positive Python int; got {num_classes!r}.")
    num_classes = int(num_classes)
    true = _int_labels(labels, "labels")
    shape = true.shape
    pred = jnp.asarray(predictions)
    if jnp.issubdtype(pred.dtype, jnp.floating):
        if pred.shape != (*shape, num_classes):
            raise ValueError(
                f"predictions has shape {tuple(pred.shape)}; expected {tuple(shape)} (predicted "
                f"labels) or {(*shape, num_classes)} (scores with a trailing class axis)."
            )
        pred = jnp.argmax(pred, axis=-1)
    else:
        pred = _int_labels(pred, "predictions")
        if pred.shape != shape:
            raise ValueError(
                f"predictions has shape {tuple(pred.shape)} but labels has shape "
                f"{tuple(shape)}; they must be equal."
            )
    _check_ignore_index(ignore_index)
    include = None if ignore_index is None else true != ignore_index
    mask = element_mask(shape, weights=weights, where=where, include=include)
    dtype = (
        jnp.float32
        if weights is None
        else jnp.promote_types(jnp.asarray(weights).dtype, jnp.float32)
    )
    w = reduce_elements(jnp.ones(shape, dtype), mask=mask, weights=weights, reduction="none")
    w = jnp.broadcast_to(w, shape)
    in_range = (true >= 0) & (true < num_classes) & (pred >= 0) & (pred < num_classes)
    ok = in_range if mask is None else in_range | ~mask
    value_check(
        ok,
        f"labels and predictions must lie in [0, {num_classes}) (or the label equal "
        f"ignore_index={ignore_index}); got an out-of-range value.",
    )
    cell = jnp.where(in_range, true * num_classes + pred, 0)
    counts = (
        jnp.zeros((num_classes * num_classes,), dtype)
        .at[cell.ravel()]
        .add(jnp.where(in_range, w, 0).ravel())
    )
    counts = counts.reshape(num_classes, num_classes)
    return jnp.where(jnp.all(ok), counts, jnp.nan)


class PrecisionRecallFscore(NamedTuple):
    """Result of :func:`precision_recall_fscore` (unpacks like scikit-learn's 4-tuple)."""

    precision: Array
    recall: Array
    fscore: Array
    support: Array


def precision_recall_fscore(
    confusion: ArrayLike,
    *,
    beta: float = 1.0,
    average: Average = "macro",
    pos_label: int = 1,
) -> PrecisionRecallFscore:
    r"""Precision, recall and F-beta from a confusion matrix (rows true, columns predicted).

    .. math::
        P_c = \frac{M_{cc}}{\sum_a M_{ac}}, \quad R_c = \frac{M_{cc}}{\sum_b M_{cb}}, \quad
        F_c = \frac{(1+\beta^2)\, M_{cc}}{\beta^2 \sum_b M_{cb} + \sum_a M_{ac}}

    ``sklearn.metrics.precision_recall_fscore_support(y_true, y_pred, beta=beta,
    average=average, sample_weight=w)`` when ``confusion`` is
    :func:`confusion_matrix` ``(y_true, y_pred, C, weights=w)``. Masking and weighting happen in
    the confusion matrix. A zero denominator gives 0 (scikit-learn's ``zero_division`` default,
    without its warning).

    Args:
      confusion: ``[C, C]`` (weighted) counts.
      beta: weight of recall in the F-score, ``>= 0`` (``beta=0`` gives precision).
      average:
        * ``"macro"``: unweighted mean over the classes that occur in the truth or the
          predictions (non-zero row or column), which is scikit-learn's default label set;
        * ``"weighted"``: mean weighted by each class's support (row sum);
        * ``"micro"``: from the summed counts (equals accuracy for single-label data);
        * ``"binary"``: the scores of class ``pos_label``;
        * ``None``: per-class ``[C]`` arrays.
      pos_label: the positive class for ``average="binary"``.

    Returns:
      ``PrecisionRecallFscore(precision, recall, fscore, support)``: scalars (``[C]`` for
      ``average=None``); ``support`` is always the per-class ``[C]`` true counts (scikit-learn
      returns ``None`` when averaging; a static-shape result cannot).

    >>> import jax.numpy as jnp
    >>> m = jnp.array([[2.0, 1.0], [0.0, 1.0]])
    >>> precision_recall_fscore(m, average=None).precision   # [2/2, 1/2]
    Array([1. , 0.5], dtype=float32)
    >>> precision_recall_fscore(m).fscore                    # mean(0.8, 2/3)
    Array(0.73333335, dtype=float32)
    """
    m = jnp.asarray(confusion)
    if not jnp.issubdtype(m.dtype, jnp.number):
        raise TypeError(f"confusion must be a numeric array; got dtype {m.dtype}.")
    m = upcast(m)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"confusion has shape {tuple(m.shape)}; expected a square [C, C] matrix.")
    allowed = ("macro", "micro", "weighted", "binary", None)
    if average not in allowed:
        raise ValueError(f"average must be one of {allowed}; got {average!r}.")
    static_float(beta, "beta", low=0.0)
    num_classes = m.shape[0]
    tp = jnp.diagonal(m)
    true_count = jnp.sum(m, axis=1)  # support: tp + fn
    pred_count = jnp.sum(m, axis=0)  # tp + fp
    if average == "micro":
        tp, t_sum, p_sum = jnp.sum(tp), jnp.sum(true_count), jnp.sum(pred_count)
        return PrecisionRecallFscore(*_prf(tp, t_sum, p_sum, beta), true_count)
    precision, recall, fscore = _prf(tp, true_count, pred_count, beta)
    if average is None:
        return PrecisionRecallFscore(precision, recall, fscore, true_count)
    if average == "binary":
        if (
            isinstance(pos_label, bool)
            or not isinstance(pos_label, int | np.integer)
            or not 0 <= pos_label < num_classes
        ):
            raise ValueError(
                f"pos_label must be a class index in [0, {num_classes}); got {pos_label!r}."
            )
        return PrecisionRecallFscore(
            precision[pos_label], recall[pos_label], fscore[pos_label], true_count
        )
    if average == "macro":
        present = (true_count != 0) | (pred_count != 0)
        mean = [
            reduce_elements(v, mask=present, reduction="mean") for v in (precision, recall, fscore)
        ]
    else:  # "weighted"
        mask = element_mask(true_count.shape, weights=true_count)
        mean = [
            reduce_elements(v, mask=mask, weights=true_count, reduction="weighted_mean")
            for v in (precision, recall, fscore)
        ]
    return PrecisionRecallFscore(*mean, true_count)


# ---------------------------------------------------------------------------------------------
# Ranking: ROC curve, ROC AUC, average precision.


def roc_curve(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    pos_label: int | float = 1,
) -> tuple[Array, Array, Array, Array]:
    r"""Receiver operating characteristic with a static size: one point per score, plus the origin.

    For each distinct threshold ``t`` (the included scores, from high to low), predicting
    "positive" for ``score >= t`` gives

    .. math:: \mathrm{tpr}(t) = \frac{\sum_{i:\,s_i \ge t,\ y_i = +} w_i}{\sum_{i:\,y_i = +} w_i},
              \qquad
              \mathrm{fpr}(t) = \frac{\sum_{i:\,s_i \ge t,\ y_i = -} w_i}{\sum_{i:\,y_i = -} w_i}

    Inputs of any shape are flattened (``N`` scores). The output has ``N + 1`` points: point 0
    is the origin ``(0, 0)`` with threshold ``+inf``; point ``j ≥ 1`` belongs to the ``j``-th
    highest score. Where several scores tie (or an element is excluded), only the last point of
    the tie group is ``valid``; the others repeat a valid point's ``fpr``, ``tpr`` and threshold
    (the next one; excluded elements repeat the final point), so plotting or integrating every
    point draws the same curve.

    ``fpr[valid], tpr[valid], thresholds[valid]`` equal
    ``sklearn.metrics.roc_curve(labels, scores, pos_label=pos_label, sample_weight=w,
    drop_intermediate=False)`` on the included elements (zero weights are left out there too).
    With ``drop_intermediate=True`` (scikit-learn's default) collinear points are dropped as
    well; the area is the same.

    Args:
      scores: float scores, higher means more positive; any shape ``S``.
      labels: broadcastable to ``S``; an element is positive iff ``labels == pos_label``.
      weights: per-element weights broadcastable to ``S`` (``sample_weight``).
      where: boolean, broadcastable to ``S``.
      pos_label: the label value of the positive class.

    Returns:
      ``(fpr, tpr, thresholds, valid)``, each ``[N + 1]``; ``fpr``/``tpr``/``thresholds`` in
      the scores' compute dtype, ``valid`` boolean.

    Edges: no included negative makes ``fpr`` NaN, no included positive makes ``tpr`` NaN
    (scikit-learn's values, without its warning). Scores have no gradient here (the curve is
    piecewise constant in them).

    >>> import jax.numpy as jnp
    >>> fpr, tpr, thr, valid = roc_curve(jnp.array([0.1, 0.4, 0.4, 0.8]), jnp.array([0, 0, 1, 1]))
    >>> valid
    Array([ True,  True, False,  True,  True], dtype=bool)
    >>> fpr[valid], tpr[valid]
    (Array([0. , 0. , 0.5, 1. ], dtype=float32), Array([0. , 0.5, 1. , 1. ], dtype=float32))
    >>> thr
    Array([inf, 0.8, 0.4, 0.4, 0.1], dtype=float32)
    """
    tps, fps, thresholds, valid = _ranked_counts(scores, labels, weights, where, pos_label)
    fpr = fps / fps[-1]
    tpr = tps / tps[-1]
    return fpr, tpr, thresholds, valid


def roc_auc(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    pos_label: int | float = 1,
) -> Array:
    r"""Area under the ROC curve, with exact handling of tied scores.

    .. math:: \mathrm{AUC} = \sum_j (\mathrm{fpr}_{j+1} - \mathrm{fpr}_j)\,
              \frac{\mathrm{tpr}_{j+1} + \mathrm{tpr}_j}{2}

    over :func:`roc_curve`'s points: a group of tied scores is one straight segment, so a
    positive and a negative with the same score count ½, the Mann–Whitney statistic
    ``P(s_+ > s_-) + ½ P(s_+ = s_-)`` (weighted by ``w_+ w_-``). This is
    ``sklearn.metrics.roc_auc_score(labels == pos_label, scores, sample_weight=w)`` on the
    included elements.

    Args: as :func:`roc_curve`.

    Returns:
      A scalar; NaN when the included elements hold only one class (scikit-learn returns NaN
      with a warning there).

    >>> import jax.numpy as jnp
    >>> roc_auc(jnp.array([0.1, 0.4, 0.4, 0.8]), jnp.array([0, 0, 1, 1]))   # 1 - ½·¼
    Array(0.875, dtype=float32)
    """
    fpr, tpr, _, _ = roc_curve(scores, labels, weights=weights, where=where, pos_label=pos_label)
    return jnp.sum(jnp.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2


def average_precision(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    pos_label: int | float = 1,
) -> Array:
    r"""Average precision: the precision-recall curve summarised as a step function.

    .. math:: \mathrm{AP} = \sum_n (R_n - R_{n-1})\, P_n

    with ``P_n``, ``R_n`` the (weighted) precision and recall at the ``n``-th distinct
    threshold, from high to low, and ``R_0 = 0``. No interpolation, ties grouped:
    ``sklearn.metrics.average_precision_score(labels == pos_label, scores, sample_weight=w)``
    on the included elements.

    Args: as :func:`roc_curve`.

    Returns:
      A scalar; ``0.0`` when no included element is positive (as scikit-learn, which sets
      recall to 1 there).

    >>> import jax.numpy as jnp
    >>> average_precision(jnp.array([0.1, 0.4, 0.35, 0.8]), jnp.array([0, 0, 1, 1]))
    Array(0.8333334, dtype=float32)
    """
    tps, fps, _, _ = _ranked_counts(scores, labels, weights, where, pos_label)
    precision = safe_divide(tps, tps + fps)
    recall = safe_divide(tps, jnp.broadcast_to(tps[-1], tps.shape))
    return jnp.sum(jnp.diff(recall) * precision[1:])


# ---------------------------------------------------------------------------------------------
# Regression metrics.


def mean_squared_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Weighted mean of squared errors over the included elements.

    .. math:: \mathrm{MSE} = \frac{\sum_i w_i (p_i - t_i)^2}{\sum_i w_i}

    ``sklearn.metrics.mean_squared_error(targets, predictions, sample_weight=w)``. For
    ``[N, D]`` inputs every element is pooled, which equals scikit-learn's
    ``multioutput="uniform_average"`` when weights are per row (pass them as ``[N, 1]``: the
    contract broadcasts from the right) and nothing is masked.

    Args:
      predictions: float, any shape ``S``.
      targets: broadcastable to ``S``.
      weights, where: the contract, against ``S``.

    Edges: no included element gives 0.0 (zero gradient).

    >>> import jax.numpy as jnp
    >>> mean_squared_error(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.0, 1.0, 1.0]))   # (0+1+9)/3
    Array(3.3333333, dtype=float32)
    """
    p, t, mask = _regression_inputs(predictions, targets, weights, where)
    return reduce_elements((p - t) ** 2, mask=mask, weights=weights, reduction="weighted_mean")


def root_mean_squared_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Square root of :func:`mean_squared_error`: an error in the targets' units.

    .. math:: \mathrm{RMSE} = \sqrt{\frac{\sum_i w_i (p_i - t_i)^2}{\sum_i w_i}}

    ``sklearn.metrics.root_mean_squared_error`` for single-output targets. For ``[N, D]``
    inputs this is the root of the pooled MSE; scikit-learn averages the ``D`` per-output
    roots instead (``jax.vmap`` over the output axis gives those). The gradient at zero error
    is 0, not NaN.

    >>> import jax.numpy as jnp
    >>> root_mean_squared_error(jnp.array([3.0, 0.0]), jnp.array([0.0, 4.0]))   # √12.5
    Array(3.535534, dtype=float32)
    """
    mse = mean_squared_error(predictions, targets, weights=weights, where=where)
    positive = mse > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, mse, 1.0)), 0.0)


def mean_absolute_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Weighted mean of absolute errors over the included elements.

    .. math:: \mathrm{MAE} = \frac{\sum_i w_i |p_i - t_i|}{\sum_i w_i}

    ``sklearn.metrics.mean_absolute_error(targets, predictions, sample_weight=w)`` (pooled over
    every element, see :func:`mean_squared_error`). Scales with the targets: rescaling
    predictions and targets by ``a`` multiplies it by ``|a|``.

    >>> import jax.numpy as jnp
    >>> mean_absolute_error(jnp.array([1.0, 2.0, 4.0]), jnp.array([1.0, 1.0, 1.0]))
    Array(1.3333334, dtype=float32)
    """
    p, t, mask = _regression_inputs(predictions, targets, weights, where)
    return reduce_elements(jnp.abs(p - t), mask=mask, weights=weights, reduction="weighted_mean")


def mean_absolute_percentage_error(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Weighted mean of relative errors (a fraction, not a percentage).

    .. math:: \mathrm{MAPE} = \frac{\sum_i w_i\, |p_i - t_i| / \max(|t_i|, \epsilon)}{\sum_i w_i},
              \quad \epsilon = 2.22 \times 10^{-16}

    ``sklearn.metrics.mean_absolute_percentage_error(targets, predictions, sample_weight=w)``,
    including its ``ε`` (float64 machine epsilon, whatever the dtype): ``0.25`` means 25 %.
    Unlike MAE and RMSE it does not change when predictions and targets are rescaled together,
    but a target near 0 makes it huge.

    >>> import jax.numpy as jnp
    >>> mean_absolute_percentage_error(jnp.array([110.0, 1.5]), jnp.array([100.0, 2.0]))
    Array(0.175, dtype=float32)
    """
    p, t, mask = _regression_inputs(predictions, targets, weights, where)
    relative = jnp.abs(p - t) / jnp.maximum(jnp.abs(t), jnp.asarray(_MAPE_EPSILON, t.dtype))
    return reduce_elements(relative, mask=mask, weights=weights, reduction="weighted_mean")


def r2_score(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    multioutput: Literal["uniform_average", "raw_values"] = "uniform_average",
) -> Array:
    r"""Coefficient of determination, per output, then averaged.

    .. math:: R^2 = 1 - \frac{\sum_i w_i (t_i - p_i)^2}{\sum_i w_i (t_i - \bar t)^2},
              \qquad \bar t = \frac{\sum_i w_i t_i}{\sum_i w_i}

    ``sklearn.metrics.r2_score(targets, predictions, sample_weight=w, multioutput=...)``
    (``force_finite=True``): constant included targets give 1.0 for a perfect prediction and
    0.0 otherwise. Axis 0 holds the samples; every other position is an output with its own
    ``R²`` (masks and weights are per element, so outputs may include different samples).

    Args:
      predictions: float, shape ``[N]`` or ``[N, ...]``.
      targets: broadcastable to the predictions.
      weights, where: the contract, against the predictions' shape (per-sample weights of
        ``[N, D]`` targets are ``[N, 1]``).
      multioutput: ``"uniform_average"`` (mean over outputs) or ``"raw_values"`` (one ``R²``
        per output, shape ``predictions.shape[1:]``).

    >>> import jax.numpy as jnp
    >>> r2_score(jnp.array([2.5, 0.0, 2.0, 8.0]), jnp.array([3.0, -0.5, 2.0, 7.0]))
    Array(0.9486081, dtype=float32)
    """
    if multioutput not in ("uniform_average", "raw_values"):
        raise ValueError(
            f"multioutput must be 'uniform_average' or 'raw_values'; got {multioutput!r}."
        )
    p, t, mask = _regression_inputs(predictions, targets, weights, where)
    if p.ndim == 0:
        raise ValueError("predictions must have a sample axis; got a scalar.")
    shape = p.shape
    w = None if weights is None else jnp.broadcast_to(jnp.asarray(weights).astype(p.dtype), shape)
    m = None if mask is None else jnp.broadcast_to(mask, shape)

    def column(p_col: Array, t_col: Array, m_col: Array | None, w_col: Array | None) -> Array:
        # Centre on one included target first, so constant targets give exactly total = 0.
        ref = t_col[0] if m_col is None else t_col[jnp.argmax(m_col)]
        mean_t = ref + reduce_elements(
            t_col - ref, mask=m_col, weights=w_col, reduction="weighted_mean"
        )
        residual = reduce_elements(
            (t_col - p_col) ** 2, mask=m_col, weights=w_col, reduction="weighted_mean"
        )
        total = reduce_elements(
            (t_col - mean_t) ** 2, mask=m_col, weights=w_col, reduction="weighted_mean"
        )
        finite = 1.0 - safe_divide(residual, total)
        return jnp.where(total != 0, finite, jnp.where(residual == 0, 1.0, 0.0).astype(p.dtype))

    flat = (shape[0], -1)
    cols = [a if a is None else a.reshape(flat) for a in (p, t, m, w)]
    axes = [None if a is None else 1 for a in cols]
    r2 = jax.vmap(column, in_axes=axes)(*cols).reshape(shape[1:])
    if multioutput == "raw_values":
        return r2
    return reduce_elements(r2, reduction="mean")


# ---------------------------------------------------------------------------------------------
# Differentiable surrogates.


def soft_precision(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    average: SoftAverage = "binary",
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""Precision computed from probabilities instead of argmax, so it has a gradient.

    .. math:: \mathrm{TP} = \sum_i w_i\, p_i y_i, \quad \mathrm{FP} = \sum_i w_i\, p_i (1 - y_i),
              \quad P = \frac{\mathrm{TP}}{\mathrm{TP} + \mathrm{FP}}

    Hard precision is piecewise constant in the model's outputs (argmax / thresholding), so
    its gradient is 0 almost everywhere; replacing the 0/1 predictions by probabilities gives
    the "soft" counts above, which equal the hard ones when ``probs`` are exactly 0/1.

    Args:
      probs: probabilities. ``average="binary"``: the probability of the positive class, any
        shape ``S``, every element one binary decision. Otherwise: class probabilities (e.g. a
        softmax) with a class axis ``axis``.
      labels: ``"binary"``: 0/1 (or soft) labels broadcastable to ``S``. Otherwise: integer
        labels (shape of ``probs`` less ``axis``) or one-hot / probability rows like ``probs``
        (all-zero rows unlabeled).
      average: ``"binary"`` (default, as scikit-learn's ``precision_score``), ``"macro"`` (mean
        over all ``C`` classes, absent ones included), ``"micro"`` (from the summed counts) or
        ``None`` (per-class ``[C]``).
      axis: the class axis for the multi-class averages.
      weights: per-element (per-example) weights; where: boolean element mask.
      ignore_index: integer labels equal to it are left out (multi-class).

    Edges: a zero denominator gives 0 with zero gradient; an included out-of-range integer
    label gives NaN.

    >>> import jax.numpy as jnp
    >>> soft_precision(jnp.array([0.9, 0.6, 0.2]), jnp.array([1, 0, 1]))   # 1.1 / (1.1 + 0.6)
    Array(0.64705884, dtype=float32)
    """
    tp, fp, _ = _soft_counts(probs, labels, average, axis, weights, where, ignore_index)
    return _soft_average(safe_divide(tp, tp + fp), average)


def soft_recall(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    average: SoftAverage = "binary",
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""Recall computed from probabilities instead of argmax, so it has a gradient.

    .. math:: \mathrm{TP} = \sum_i w_i\, p_i y_i, \quad \mathrm{FN} = \sum_i w_i\, (1 - p_i) y_i,
              \quad R = \frac{\mathrm{TP}}{\mathrm{TP} + \mathrm{FN}}

    Arguments, averages and edges as :func:`soft_precision`.

    >>> import jax.numpy as jnp
    >>> soft_recall(jnp.array([0.9, 0.6, 0.2]), jnp.array([1, 0, 1]))   # (0.9 + 0.2) / 2
    Array(0.55, dtype=float32)
    """
    tp, _, fn = _soft_counts(probs, labels, average, axis, weights, where, ignore_index)
    return _soft_average(safe_divide(tp, tp + fn), average)


def soft_f1_loss(
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    average: SoftAverage = "binary",
    axis: int = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""``1 - soft F1``: a differentiable loss for when the F1 score is the goal.

    .. math:: F_1 = \frac{2\,\mathrm{TP}}{2\,\mathrm{TP} + \mathrm{FP} + \mathrm{FN}}, \qquad
              \ell = 1 - F_1

    with the soft counts of :func:`soft_precision` / :func:`soft_recall`. ``"macro"`` averages
    the per-class F1 before subtracting from 1 (per-class losses for ``average=None``). The
    loss is a statistic of the whole batch, not a per-element loss, so there is no
    ``reduction``. Arguments and edges as :func:`soft_precision` (an all-zero denominator, no
    positives predicted or present, gives F1 = 0, loss 1, zero gradient).

    >>> import jax.numpy as jnp
    >>> soft_f1_loss(jnp.array([0.9, 0.6, 0.2]), jnp.array([1, 0, 1]))   # 1 - 2.2 / 3.7
    Array(0.40540546, dtype=float32)
    """
    tp, fp, fn = _soft_counts(probs, labels, average, axis, weights, where, ignore_index)
    return 1.0 - _soft_average(safe_divide(2.0 * tp, 2.0 * tp + fp + fn), average)


# ---------------------------------------------------------------------------------------------
# Helpers.


def _check_ignore_index(ignore_index: int | None) -> None:
    if ignore_index is not None and (
        isinstance(ignore_index, bool) or not isinstance(ignore_index, int | np.integer)
    ):
        raise TypeError(f"ignore_index must be a Python int or None; got {ignore_index!r}.")


def _int_labels(x: ArrayLike, name: str) -> Array:
    """Integer (or boolean) labels as an integer array; anything else raises ``TypeError``."""
    x = jnp.asarray(x)
    if x.dtype == jnp.bool_:
        return x.astype(jnp.int32)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(
            f"{name} must be an integer (or boolean) array of class labels; got dtype {x.dtype}."
        )
    return x


def _true_classes(
    labels: ArrayLike,
    shape: tuple[int, ...],
    num_classes: int | None,
    axis: int,
    ignore_index: int | None,
) -> tuple[Array, Array | None, Array]:
    """The true class of each element from integer labels or one-hot rows.

    Returns ``(true, include, in_range)``; ``include`` is ``None`` when every element counts.
    """
    _check_ignore_index(ignore_index)
    y = jnp.asarray(labels)
    if jnp.issubdtype(y.dtype, jnp.floating):
        if y.ndim != len(shape) + 1:
            raise ValueError(
                f"labels has shape {tuple(y.shape)}; float labels must be one-hot or probability "
                f"rows with a class axis, i.e. shape {tuple(shape)} with the class axis inserted."
            )
        y = jnp.moveaxis(y, axis % y.ndim, -1)
        if y.shape[:-1] != tuple(shape) or (num_classes is not None and y.shape[-1] != num_classes):
            raise ValueError(
                f"labels (class axis last) has shape {tuple(y.shape)}; expected "
                f"{(*shape, num_classes or y.shape[-1])}."
            )
        return jnp.argmax(y, axis=-1), jnp.any(y != 0, axis=-1), jnp.ones(shape, bool)
    y = _int_labels(y, "labels")
    if y.shape != tuple(shape):
        raise ValueError(
            f"labels has shape {tuple(y.shape)}; expected {tuple(shape)}, the "
            "predictions' shape without the class axis."
        )
    include = None if ignore_index is None else y != ignore_index
    if num_classes is None:
        in_range = jnp.ones(shape, bool)
    else:
        in_range = (y >= 0) & (y < num_classes)
    return y, include, in_range


def _class_predictions(
    predictions: ArrayLike, labels: ArrayLike, axis: int, ignore_index: int | None, name: str
):
    """Predicted and true classes for accuracy: from logits (argmax) or predicted labels."""
    pred = jnp.asarray(predictions)
    if jnp.issubdtype(pred.dtype, jnp.floating):
        if pred.ndim == 0:
            raise ValueError(
                f"{name} is a float scalar; pass scores with a class axis or integer "
                "predicted labels."
            )
        ax = axis % pred.ndim
        num_classes = pred.shape[ax]
        pred_labels = jnp.argmax(pred, axis=ax)
        shape = pred_labels.shape
        labels_arr = jnp.asarray(labels)
        if not jnp.issubdtype(labels_arr.dtype, jnp.floating) and labels_arr.shape == pred.shape:
            raise ValueError(
                f"{name} holds float scores of shape {tuple(pred.shape)} and labels are integers "
                "of the same shape: pass scores with a class axis (integer labels have one axis "
                "fewer), or threshold binary scores into predicted labels first, e.g. "
                "(scores > 0.5).astype(int)."
            )
        true, include, in_range = _true_classes(labels, shape, num_classes, ax, ignore_index)
        dtype = upcast(pred).dtype
        return pred_labels, true, shape, include, in_range, dtype
    pred_labels = _int_labels(pred, name)
    shape = pred_labels.shape
    true, include, in_range = _true_classes(labels, shape, None, axis, ignore_index)
    return pred_labels, true, shape, include, in_range, jnp.float32


def _nan_if_bad(values: Array, in_range: Array | None, mask: Array | None, message: str) -> Array:
    """NaN for included elements whose label is out of range (raises under ``checked``)."""
    if in_range is None:
        return values
    ok = in_range if mask is None else in_range | ~mask
    value_check(ok, message + "; got an out-of-range label.")
    return jnp.where(ok, values, jnp.nan)


def _prf(tp: Array, true_count: Array, pred_count: Array, beta: float) -> tuple[Array, ...]:
    precision = safe_divide(tp, pred_count)
    recall = safe_divide(tp, true_count)
    b2 = beta * beta
    fscore = safe_divide((1.0 + b2) * tp, b2 * true_count + pred_count)
    return precision, recall, fscore


def _ranked_counts(
    scores: ArrayLike,
    labels: ArrayLike,
    weights: ArrayLike | None,
    where: ArrayLike | None,
    pos_label: int | float,
) -> tuple[Array, Array, Array, Array]:
    """Cumulative weighted positives / negatives at each score, highest first, plus the origin.

    Returns ``(tps, fps, thresholds, valid)`` of size ``N + 1``: invalid points (inside a tie
    group, or excluded) carry the counts and threshold of the valid point that ends their
    group (excluded elements: the last valid point).
    """
    s = upcast(float_array(scores, "scores"))
    shape = s.shape
    y = jnp.asarray(labels)
    if not (jnp.issubdtype(y.dtype, jnp.number) or y.dtype == jnp.bool_):
        raise TypeError(f"labels must be a numeric or boolean array; got dtype {y.dtype}.")
    check_broadcast(y, "labels", shape, "scores")
    positive = jnp.broadcast_to(y == pos_label, shape)
    mask = element_mask(shape, weights=weights, where=where, what="scores")
    w = reduce_elements(jnp.ones(shape, s.dtype), mask=mask, weights=weights, reduction="none")
    w = jnp.broadcast_to(w, shape)
    included = jnp.ones(shape, bool) if mask is None else mask
    s = sanitize(s, mask)
    n = s.size
    # Included elements first, then by decreasing score.
    excluded_key = (~included).ravel().astype(jnp.int32)
    _, _, s_sorted, pos_w, neg_w, inc = jax.lax.sort(
        (
            excluded_key,
            -s.ravel(),
            s.ravel(),
            jnp.where(positive, w, 0).ravel(),
            jnp.where(positive, 0, w).ravel(),
            included.ravel(),
        ),
        num_keys=2,
    )
    tps = jnp.cumsum(pos_w)
    fps = jnp.cumsum(neg_w)
    index = jnp.arange(n)
    next_differs = jnp.concatenate(
        [(s_sorted[1:] != s_sorted[:-1]) | ~inc[1:], jnp.ones((1,), bool)]
    )
    valid = inc & next_differs
    # Each point takes the values of the valid point ending its tie group; excluded ones the last.
    group_end = jax.lax.cummin(jnp.where(valid, index, n), reverse=True)
    last_valid = jnp.max(jnp.where(valid, index, 0))
    at = jnp.where(group_end == n, last_valid, group_end)
    zero = jnp.zeros((1,), s.dtype)
    tps = jnp.concatenate([zero, tps[at]])
    fps = jnp.concatenate([zero, fps[at]])
    thresholds = jnp.concatenate([jnp.full((1,), jnp.inf, s.dtype), s_sorted[at]])
    valid = jnp.concatenate([jnp.ones((1,), bool), valid])
    return tps, fps, thresholds, valid


def _regression_inputs(
    predictions: ArrayLike, targets: ArrayLike, weights: ArrayLike | None, where: ArrayLike | None
) -> tuple[Array, Array, Array | None]:
    """Upcast predictions, broadcast targets to them, mask and sanitise both."""
    p = upcast(float_array(predictions, "predictions"))
    t = jnp.asarray(targets)
    if not jnp.issubdtype(t.dtype, jnp.number):
        raise TypeError(f"targets must be a numeric array; got dtype {t.dtype}.")
    check_broadcast(t, "targets", p.shape, "predictions")
    t = jnp.broadcast_to(t.astype(p.dtype), p.shape)
    mask = element_mask(p.shape, weights=weights, where=where, what="predictions")
    return sanitize(p, mask), sanitize(t, mask), mask


def _soft_counts(
    probs: ArrayLike,
    labels: ArrayLike,
    average: SoftAverage,
    axis: int,
    weights: ArrayLike | None,
    where: ArrayLike | None,
    ignore_index: int | None,
) -> tuple[Array, Array, Array]:
    """Soft TP, FP, FN: scalars for ``"binary"``/``"micro"``, ``[C]`` otherwise."""
    allowed = ("binary", "macro", "micro", None)
    if average not in allowed:
        raise ValueError(f"average must be one of {allowed}; got {average!r}.")
    p = upcast(float_array(probs, "probs"))
    if average == "binary":
        y = jnp.asarray(labels)
        if not (jnp.issubdtype(y.dtype, jnp.number) or y.dtype == jnp.bool_):
            raise TypeError(f"labels must be a numeric array; got dtype {y.dtype}.")
        if jnp.issubdtype(y.dtype, jnp.integer) and y.ndim == p.ndim - 1 and p.ndim > 0:
            raise ValueError(
                f"probs has shape {tuple(p.shape)} and labels {tuple(y.shape)}: that looks like "
                "multi-class input; pass average='macro' (or 'micro' / None), or the positive "
                "class's probabilities for average='binary'."
            )
        check_broadcast(y, "labels", p.shape, "probs")
        y = jnp.broadcast_to(y.astype(p.dtype), p.shape)
        mask = element_mask(p.shape, weights=weights, where=where, what="probs")
        p, y = sanitize(p, mask), sanitize(y, mask)
        w = reduce_elements(
            jnp.ones(p.shape, p.dtype), mask=mask, weights=weights, reduction="none"
        )
        return (jnp.sum(w * p * y), jnp.sum(w * p * (1.0 - y)), jnp.sum(w * (1.0 - p) * y))
    if p.ndim == 0:
        raise ValueError("probs must have a class axis for a multi-class average.")
    ax = axis % p.ndim
    p = jnp.moveaxis(p, ax, -1)
    num_classes = p.shape[-1]
    shape = p.shape[:-1]
    y = jnp.asarray(labels)
    bad = None
    if jnp.issubdtype(y.dtype, jnp.floating):
        y = jnp.moveaxis(y, ax, -1) if y.ndim == p.ndim else y
        if y.shape != p.shape:
            raise ValueError(
                f"labels (class axis last) has shape {tuple(y.shape)}; expected "
                f"{tuple(p.shape)} like probs, or integer labels of shape "
                f"{tuple(shape)}."
            )
        include = jnp.any(y != 0, axis=-1)
        mask = element_mask(shape, weights=weights, where=where, include=include, what="labels")
        y = y.astype(p.dtype)
    else:
        true, include, in_range = _true_classes(y, shape, num_classes, ax, ignore_index)
        mask = element_mask(shape, weights=weights, where=where, include=include, what="labels")
        y = jax.nn.one_hot(jnp.where(in_range, true, 0), num_classes, dtype=p.dtype)
        bad = in_range
    p, y = sanitize(p, mask), sanitize(y, mask)
    w = reduce_elements(jnp.ones(shape, p.dtype), mask=mask, weights=weights, reduction="none")
    w = jnp.broadcast_to(w, shape)[..., None]
    sum_axes = tuple(range(len(shape)))
    tp = jnp.sum(w * p * y, axis=sum_axes)
    fp = jnp.sum(w * p * (1.0 - y), axis=sum_axes)
    fn = jnp.sum(w * (1.0 - p) * y, axis=sum_axes)
    if bad is not None:
        ok = bad if mask is None else bad | ~mask
        value_check(
            ok,
            f"labels must lie in [0, {num_classes}) or equal "
            f"ignore_index={ignore_index}; got an out-of-range label.",
        )
        nan_if_bad = jnp.where(jnp.all(ok), 0.0, jnp.nan).astype(p.dtype)
        tp, fp, fn = tp + nan_if_bad, fp + nan_if_bad, fn + nan_if_bad
    if average == "micro":
        return jnp.sum(tp), jnp.sum(fp), jnp.sum(fn)
    return tp, fp, fn


def _soft_average(per_class: Array, average: SoftAverage) -> Array:
    if average == "macro":
        return reduce_elements(per_class, reduction="mean")
    return per_class
