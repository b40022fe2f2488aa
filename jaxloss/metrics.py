"""Metrics that compile: accuracy, confusion matrices and everything computed from them
(precision / recall / F-β, specificity, IoU, Dice, MCC, Cohen's κ), ROC / PR curves, AUC,
average precision (binary, multi-class and multi-label one-vs-rest), regression metrics, and
differentiable surrogates of precision, recall and F1.

Every metric is a pure function of arrays with static output shapes, so it runs inside
``jax.jit`` and ``jax.vmap`` (evaluate a whole stack of batches in one call). They take the
contract's ``weights`` (scikit-learn's ``sample_weight``) and ``where`` (``False`` elements are
left out entirely, as if they were not in the batch); class-label metrics also take
``ignore_index`` and treat an all-zero one-hot row as unlabeled. Weighted means go through
:func:`jaxloss.reduce`'s machinery (``reduction="weighted_mean"``: ``Σ w·x / Σ w`` over the
included elements). For metrics accumulated over many batches and devices, see
:mod:`jaxloss.metric_states`, whose states are sums of the counts these functions use.

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

Sharding: every count is a one-hot sum (a compare with an iota, reduced over the batch axes),
never a scatter or a gather, so the class-count metrics run under ``jit`` on inputs sharded
over an explicit-axes mesh and inside ``shard_map``. The exact ranking metrics (ROC, AP) sort
the scores, which needs the scores unsharded along the sorted axis; the grid-based ranking
state of :mod:`jaxloss.metric_states` has no sort.

Unlike scikit-learn's ``(y_true, y_pred)``, predictions come first, as in the losses; the
exceptions are the confusion-matrix family (:func:`confusion_matrix`, :func:`jaccard_index`,
:func:`dice_score`, :func:`specificity`, :func:`matthews_corrcoef`, :func:`cohen_kappa`,
:func:`multilabel_confusion_matrix`), whose ``(labels, predictions, ...)`` order keeps
scikit-learn's rows-are-truth layout obvious.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Literal, NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np

from jaxloss._checks import (
    Array,
    ArrayLike,
    broadcasts_to,
    check_broadcast,
    explicit_spec,
    float_array,
    is_label,
    labels_ok,
    remember_labels,
    static_float,
    upcast,
    value_check,
)
from jaxloss._reduction import element_mask, reduce_elements, safe_divide, sanitize

__all__ = [
    "accuracy",
    "top_k_accuracy",
    "confusion_matrix",
    "normalize_confusion",
    "multilabel_confusion_matrix",
    "PrecisionRecallFscore",
    "precision_recall_fscore",
    "specificity",
    "jaccard_index",
    "dice_score",
    "matthews_corrcoef",
    "cohen_kappa",
    "roc_curve",
    "precision_recall_curve",
    "roc_auc",
    "average_precision",
    "multiclass_roc_auc",
    "multilabel_roc_auc",
    "multiclass_average_precision",
    "multilabel_average_precision",
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
OvrAverage = Literal["macro", "weighted", "micro"] | None
SoftAverage = Literal["binary", "macro", "micro"] | None
Normalize = Literal["true", "pred", "all"] | None
KappaWeights = Literal["linear", "quadratic"] | None

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
    pred, true, shape, include, in_range, dtype, num_classes = _class_predictions(
        logits_or_labels_pred, labels, axis, ignore_index, "logits_or_labels_pred"
    )
    mask = element_mask(shape, weights=weights, where=where, include=include)
    correct = (pred == true).astype(dtype)
    correct = _nan_if_bad(correct, in_range, mask, num_classes, ignore_index)
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
    by counting, not sorting: ``O(C)`` per element, and the true class's score is picked by a
    compare with an iota inside a sum (no gather), so sharded inputs need no annotation.
    ``k >= C`` gives 1 for every labeled element.

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
    _check_positive_int(k, "k")
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
    rank = _rank_of_true_class(x, jnp.where(in_range, true, 0), higher_index_first=True)
    hit = (rank < k).astype(x.dtype)
    hit = _nan_if_bad(hit, in_range, mask, num_classes, ignore_index)
    return reduce_elements(hit, mask=mask, weights=weights, reduction="weighted_mean")


def confusion_matrix(
    labels: ArrayLike,
    predictions: ArrayLike,
    num_classes: int,
    *,
    normalize: Normalize = None,
    top_k: int = 1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""The ``[C, C]`` confusion matrix: row = true class, column = predicted class.

    .. math:: M_{ab} = \sum_i w_i\, [y_i = a]\, [\hat y_i = b] \quad\text{over included } i

    ``sklearn.metrics.confusion_matrix(y_true, y_pred, labels=range(C), sample_weight=w,
    normalize=normalize)``, with a static shape for ``jit``. The argument order is
    scikit-learn's ``(y_true, y_pred)``. Counted as one matrix product of one-hot rows (a
    compare with an iota) contracting the batch axes, with no scatter: on a mesh each device
    counts its shard and XLA adds the ``[C, C]`` partial counts, under explicit-axes sharding
    too (the result is replicated).

    Args:
      labels: integer true labels, any shape ``S``.
      predictions: integer predicted labels of shape ``S``, or scores with a trailing class
        axis (shape ``S + (C,)``; their argmax is the prediction, the first maximum on ties).
      num_classes: ``C``, a Python int.
      normalize: ``None`` (counts), ``"true"`` (each row sums to 1: recall per class on the
        diagonal), ``"pred"`` (each column sums to 1) or ``"all"`` (the matrix sums to 1); an
        empty row / column / matrix stays 0, as scikit-learn.
      top_k: with scores, torchmetrics' ``top_k`` rule (1.9): the prediction is the true
        class when it is among the ``top_k`` highest scores (ties: the lower class index
        ranks first, as ``argmax``), else the argmax. ``top_k=1`` is the argmax. Every metric
        computed from this matrix then has torchmetrics' ``top_k`` meaning (torchmetrics'
        ``"macro"`` with ``top_k > 1`` leaves out classes that are never true; here the macro
        average keeps scikit-learn's rule, the classes that occur in truth or predictions).
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
    >>> confusion_matrix(jnp.array([0, 1, 2, 2]), jnp.array([0, 2, 2, 1]), 3, normalize="true")
    Array([[1. , 0. , 0. ],
           [0. , 0. , 1. ],
           [0. , 0.5, 0.5]], dtype=float32)
    """
    num_classes = _check_positive_int(num_classes, "num_classes")
    top_k = _check_positive_int(top_k, "top_k")
    _check_normalize(normalize)
    true = _int_labels(labels, "labels")
    shape = true.shape
    pred = jnp.asarray(predictions)
    _check_ignore_index(ignore_index)
    include = None if ignore_index is None else true != ignore_index
    mask = element_mask(shape, weights=weights, where=where, include=include)
    if jnp.issubdtype(pred.dtype, jnp.floating):
        if pred.shape != (*shape, num_classes):
            raise ValueError(
                f"predictions has shape {tuple(pred.shape)}; expected {tuple(shape)} (predicted "
                f"labels) or {(*shape, num_classes)} (scores with a trailing class axis)."
            )
        pred = _top_k_prediction(sanitize(upcast(pred), mask), true, top_k)
    else:
        if top_k != 1:
            raise ValueError(
                f"top_k={top_k} needs scores with a trailing class axis; predictions are "
                f"integer labels of dtype {pred.dtype}."
            )
        pred = _int_labels(pred, "predictions")
        if pred.shape != shape:
            raise ValueError(
                f"predictions has shape {tuple(pred.shape)} but labels has shape "
                f"{tuple(shape)}; they must be equal."
            )
    dtype = _count_dtype(weights)
    w = _element_weights(shape, mask, weights, dtype)
    in_range = (true >= 0) & (true < num_classes) & (pred >= 0) & (pred < num_classes)
    ok = in_range if mask is None else in_range | ~mask
    value_check(
        ok,
        f"labels and predictions must lie in [0, {num_classes}) (or the label equal "
        f"ignore_index={ignore_index}); got an out-of-range value.",
    )
    rows = _one_hot(true, num_classes, dtype) * jnp.where(in_range, w, 0)[..., None]
    counts = _outer_sum(rows, _one_hot(pred, num_classes, dtype))
    counts = jnp.where(jnp.all(ok), counts, jnp.nan)
    return normalize_confusion(counts, normalize)


def normalize_confusion(confusion: ArrayLike, normalize: Normalize = "true") -> Array:
    r"""Normalise a confusion matrix over its rows, its columns or all its cells.

    .. math:: \text{true: } \frac{M_{ab}}{\sum_{b'} M_{ab'}}, \qquad
              \text{pred: } \frac{M_{ab}}{\sum_{a'} M_{a'b}}, \qquad
              \text{all: } \frac{M_{ab}}{\sum_{a'b'} M_{a'b'}}

    scikit-learn's ``confusion_matrix(..., normalize=...)`` applied to counts you already
    have, e.g. an accumulated :func:`jaxloss.confusion_init` state. A zero row / column / total
    gives zeros (scikit-learn's ``nan_to_num``).

    Args:
      confusion: ``[C, C]`` counts, rows true classes.
      normalize: ``"true"`` (default), ``"pred"``, ``"all"``, or ``None`` (returned as is).

    >>> import jax.numpy as jnp
    >>> normalize_confusion(jnp.array([[3.0, 1.0], [0.0, 0.0]]), "all")
    Array([[0.75, 0.25],
           [0.  , 0.  ]], dtype=float32)
    """
    _check_normalize(normalize)
    m = upcast(_confusion_array(confusion, "confusion", allow_multilabel=False))
    if normalize is None:
        return m
    if normalize == "true":
        return safe_divide(m, jnp.sum(m, axis=1, keepdims=True))
    if normalize == "pred":
        return safe_divide(m, jnp.sum(m, axis=0, keepdims=True))
    return safe_divide(m, jnp.sum(m))


def multilabel_confusion_matrix(
    labels: ArrayLike,
    predictions: ArrayLike,
    *,
    threshold: float = 0.5,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""One ``2 × 2`` confusion matrix per label of multi-label data: ``[L, 2, 2]``.

    .. math:: M_{l} = \begin{pmatrix} \mathrm{TN}_l & \mathrm{FP}_l \\
              \mathrm{FN}_l & \mathrm{TP}_l \end{pmatrix}, \qquad
              \mathrm{TP}_l = \sum_i w_{il}\, [y_{il} = 1]\, [\hat y_{il} = 1], \ \ldots

    ``sklearn.metrics.multilabel_confusion_matrix(Y, P, sample_weight=w)`` (the same layout),
    for indicator arrays. :func:`precision_recall_fscore` and :func:`jaxloss.confusion_compute`
    take the result for multi-label precision / recall / F-β / specificity / IoU.

    Args:
      labels: 0/1 (or boolean) indicators, shape ``S + (L,)``.
      predictions: the same shape: 0/1 (or boolean) predictions, or float scores /
        probabilities, positive where ``> threshold`` (torchmetrics' multi-label rule).
      threshold: the decision threshold for float predictions.
      weights, where: per sample (broadcastable to ``S``, at most ``len(S)`` dimensions) or per
        element (``len(S) + 1`` dimensions, broadcastable to ``S + (L,)``).
      ignore_index: label entries equal to it are left out (torchmetrics' multi-label
        ``ignore_index``).

    Returns:
      A float ``[L, 2, 2]`` array of weighted counts (float32 unless weights are float64).

    Edges: an included label entry other than 0 and 1 makes the whole result NaN
    (:func:`jaxloss.checked` raises).

    >>> import jax.numpy as jnp
    >>> y = jnp.array([[1, 0], [1, 1], [0, 0]])
    >>> p = jnp.array([[0.9, 0.2], [0.3, 0.8], [0.6, 0.1]])
    >>> multilabel_confusion_matrix(y, p)[0]   # label 0: tn fp / fn tp
    Array([[0., 1.],
           [1., 1.]], dtype=float32)
    """
    static_float(threshold, "threshold")
    _check_ignore_index(ignore_index)
    y = jnp.asarray(labels)
    if not (jnp.issubdtype(y.dtype, jnp.number) or y.dtype == jnp.bool_):
        raise TypeError(f"labels must be a numeric or boolean array; got dtype {y.dtype}.")
    p = jnp.asarray(predictions)
    if not (jnp.issubdtype(p.dtype, jnp.number) or p.dtype == jnp.bool_):
        raise TypeError(f"predictions must be a numeric or boolean array; got dtype {p.dtype}.")
    if y.ndim == 0 or y.shape != p.shape:
        raise ValueError(
            f"labels has shape {tuple(y.shape)} and predictions {tuple(p.shape)}; multi-label "
            "indicators need equal shapes with a trailing label axis."
        )
    include = None if ignore_index is None else y != ignore_index
    mask = _per_sample_or_element_mask(y.shape, weights, where, include)
    dtype = _count_dtype(weights)
    w = _element_weights(y.shape, mask, _per_sample_or_element(weights, y.shape), dtype)
    if jnp.issubdtype(p.dtype, jnp.floating):
        predicted = sanitize(upcast(p), mask) > threshold
    else:
        predicted = p != 0
    positive = y == 1
    ok = positive | (y == 0)
    ok = ok if mask is None else ok | ~mask
    value_check(ok, "multi-label labels must be 0 or 1 (or ignore_index); got another value.")
    w = jnp.where(ok, w, 0)
    axes = tuple(range(y.ndim - 1))

    def count(truth: Array, pred: Array) -> Array:
        return jnp.sum(jnp.where(truth & pred, w, 0), axis=axes)

    tn = count(~positive, ~predicted)
    fp = count(~positive, predicted)
    fn = count(positive, ~predicted)
    tp = count(positive, predicted)
    out = jnp.stack([jnp.stack([tn, fp], -1), jnp.stack([fn, tp], -1)], -2)
    return jnp.where(jnp.all(ok), out, jnp.nan)


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
    r"""Precision, recall and F-beta from a confusion matrix (multi-class or multi-label).

    .. math::
        P_c = \frac{\mathrm{TP}_c}{\mathrm{TP}_c + \mathrm{FP}_c}, \quad
        R_c = \frac{\mathrm{TP}_c}{\mathrm{TP}_c + \mathrm{FN}_c}, \quad
        F_c = \frac{(1+\beta^2)\, \mathrm{TP}_c}{(1+\beta^2)\,\mathrm{TP}_c + \beta^2
              \mathrm{FN}_c + \mathrm{FP}_c}

    ``sklearn.metrics.precision_recall_fscore_support(y_true, y_pred, beta=beta,
    average=average, sample_weight=w)`` when ``confusion`` is :func:`confusion_matrix`
    ``(y_true, y_pred, C, weights=w)`` (``[C, C]``, rows true, columns predicted), or
    :func:`multilabel_confusion_matrix` ``(Y, P, weights=w)`` for multi-label indicators
    (``[L, 2, 2]``). Masking and weighting happen in the confusion matrix. A zero denominator
    gives 0 (scikit-learn's ``zero_division`` default, without its warning).

    Args:
      confusion: ``[C, C]`` or ``[L, 2, 2]`` (weighted) counts.
      beta: weight of recall in the F-score, ``>= 0`` (``beta=0`` gives precision).
      average:
        * ``"macro"``: unweighted mean over the classes; for ``[C, C]`` those that occur in
          the truth or the predictions (non-zero row or column), which is scikit-learn's
          default label set; for ``[L, 2, 2]`` every label, as scikit-learn's multi-label;
        * ``"weighted"``: mean weighted by each class's support (true count);
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
    counts = _class_counts(confusion, "confusion")
    _check_average(average, ("macro", "micro", "weighted", "binary", None))
    static_float(beta, "beta", low=0.0)
    tp, fp, fn = counts.tp, counts.fp, counts.fn
    per_class = _prf(tp, tp + fn, tp + fp, beta)
    micro = _prf(jnp.sum(tp), jnp.sum(tp + fn), jnp.sum(tp + fp), beta)
    averaged = [
        _class_average(v, m, counts, average, pos_label)
        for v, m in zip(per_class, micro, strict=True)
    ]
    precision, recall, fscore = averaged
    return PrecisionRecallFscore(precision, recall, fscore, counts.tp + counts.fn)


def specificity(
    labels: ArrayLike,
    predictions: ArrayLike,
    num_classes: int,
    *,
    average: Average = "macro",
    pos_label: int = 1,
    top_k: int = 1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""Specificity (true negative rate) per class, one-vs-rest, then averaged.

    .. math:: \mathrm{TNR}_c = \frac{\mathrm{TN}_c}{\mathrm{TN}_c + \mathrm{FP}_c}

    scikit-learn has no specificity; this is torchmetrics' ``MulticlassSpecificity``
    (``average`` ``"macro"`` over the classes that occur in truth or predictions,
    ``"weighted"`` by support, ``"micro"`` from the summed counts) with sample weights, and
    equals scikit-learn's recall of "not ``c``" for each class ``c``. From an accumulated state:
    :func:`jaxloss.confusion_compute`.

    Args:
      labels, predictions, num_classes, top_k, weights, where, ignore_index: as
        :func:`confusion_matrix`.
      average: as :func:`precision_recall_fscore` (``"binary"``: class ``pos_label``).
      pos_label: the class for ``average="binary"``.

    Returns:
      A scalar, or ``[C]`` for ``average=None``; a zero denominator gives 0.

    >>> import jax.numpy as jnp
    >>> specificity(jnp.array([0, 0, 1, 1]), jnp.array([0, 1, 1, 1]), 2, average=None)
    Array([1. , 0.5], dtype=float32)
    """
    cm = confusion_matrix(
        labels,
        predictions,
        num_classes,
        top_k=top_k,
        weights=weights,
        where=where,
        ignore_index=ignore_index,
    )
    return _specificity(_class_counts(cm, "confusion"), average, pos_label)


def jaccard_index(
    labels: ArrayLike,
    predictions: ArrayLike,
    num_classes: int,
    *,
    average: Average = "macro",
    pos_label: int = 1,
    top_k: int = 1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""Intersection over union per class (Jaccard index); ``"macro"`` is the mean IoU.

    .. math:: \mathrm{IoU}_c = \frac{\mathrm{TP}_c}{\mathrm{TP}_c + \mathrm{FP}_c +
              \mathrm{FN}_c} = \frac{M_{cc}}{\sum_b M_{cb} + \sum_a M_{ac} - M_{cc}}

    ``sklearn.metrics.jaccard_score(y_true, y_pred, average=average, sample_weight=w)``
    (``zero_division=0``) and torchmetrics' ``MulticlassJaccardIndex``: ``"macro"`` averages the
    classes that occur in truth or predictions, so a class absent from both does not drag the
    mean IoU down. Labels of any shape (``[B, H, W]`` segmentation maps included) are pooled.
    ``ignore_index`` leaves those elements out (a prediction of that class elsewhere still
    counts as a false positive; torchmetrics also drops an in-range ``ignore_index`` class from
    its macro mean). From an accumulated state: :func:`jaxloss.confusion_compute`.

    Args:
      labels, predictions, num_classes, top_k, weights, where, ignore_index: as
        :func:`confusion_matrix`.
      average: ``"macro"`` (default), ``"weighted"``, ``"micro"``, ``"binary"`` (class
        ``pos_label``) or ``None`` (per class).
      pos_label: the class for ``average="binary"``.

    >>> import jax.numpy as jnp
    >>> y = jnp.array([[0, 0, 1], [1, 2, 2]])   # a tiny 2 x 3 label map
    >>> p = jnp.array([[0, 1, 1], [1, 2, 0]])
    >>> jaccard_index(y, p, 3, average=None)     # 1/3, 2/3, 1/2
    Array([0.33333334, 0.6666667 , 0.5       ], dtype=float32)
    """
    cm = confusion_matrix(
        labels,
        predictions,
        num_classes,
        top_k=top_k,
        weights=weights,
        where=where,
        ignore_index=ignore_index,
    )
    return _jaccard(_class_counts(cm, "confusion"), average, pos_label)


def dice_score(
    labels: ArrayLike,
    predictions: ArrayLike,
    num_classes: int,
    *,
    average: Average = "macro",
    pos_label: int = 1,
    top_k: int = 1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""Hard Dice score (Sørensen–Dice, F1) per class from predicted labels.

    .. math:: \mathrm{Dice}_c = \frac{2\,\mathrm{TP}_c}{2\,\mathrm{TP}_c + \mathrm{FP}_c +
              \mathrm{FN}_c}

    The evaluation counterpart of :func:`jaxloss.dice_loss` (which is soft, on
    probabilities): counts over every element of every sample (the dataset-level Dice of
    segmentation benchmarks, torchmetrics' ``DiceScore`` with global aggregation), equal to
    ``sklearn.metrics.f1_score(y_true, y_pred, average=average, sample_weight=w)`` per class
    and for each average. ``Dice = 2 IoU / (1 + IoU)`` class by class. From an accumulated
    state: :func:`jaxloss.confusion_compute`.

    Args: as :func:`jaccard_index`.

    >>> import jax.numpy as jnp
    >>> y = jnp.array([[0, 0, 1], [1, 2, 2]])
    >>> p = jnp.array([[0, 1, 1], [1, 2, 0]])
    >>> dice_score(y, p, 3, average=None)         # 2/4, 4/5, 2/3
    Array([0.5       , 0.8       , 0.6666667], dtype=float32)
    """
    cm = confusion_matrix(
        labels,
        predictions,
        num_classes,
        top_k=top_k,
        weights=weights,
        where=where,
        ignore_index=ignore_index,
    )
    return _dice(_class_counts(cm, "confusion"), average, pos_label)


def matthews_corrcoef(
    labels: ArrayLike,
    predictions: ArrayLike,
    num_classes: int,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""Matthews correlation coefficient (multi-class ``R_K`` statistic), in ``[-1, 1]``.

    .. math:: \mathrm{MCC} = \frac{c\,s - \sum_k p_k t_k}
              {\sqrt{(s^2 - \sum_k p_k^2)(s^2 - \sum_k t_k^2)}}

    with ``c`` the correct (diagonal) mass, ``s`` the total, ``t_k`` / ``p_k`` the true /
    predicted mass of class ``k``. ``sklearn.metrics.matthews_corrcoef(y_true, y_pred,
    sample_weight=w)``, including its edge: a zero denominator (one true class, or one
    predicted class) gives 0. Computed on the matrix divided by its total, so float32 counts
    in the millions do not overflow the squares. From a state:
    :func:`jaxloss.confusion_compute`.

    Args: as :func:`confusion_matrix` (predicted labels or scores).

    >>> import jax.numpy as jnp
    >>> matthews_corrcoef(jnp.array([0, 0, 1, 1]), jnp.array([0, 1, 1, 1]), 2)   # 1/√3
    Array(0.57735026, dtype=float32)
    """
    cm = confusion_matrix(
        labels, predictions, num_classes, weights=weights, where=where, ignore_index=ignore_index
    )
    return _matthews(cm)


def cohen_kappa(
    labels: ArrayLike,
    predictions: ArrayLike,
    num_classes: int,
    *,
    weights: KappaWeights = None,
    sample_weight: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""Cohen's kappa: agreement between two labelings beyond chance, optionally weighted.

    .. math:: \kappa = 1 - \frac{\sum_{ab} v_{ab} M_{ab}}{\sum_{ab} v_{ab} E_{ab}}, \qquad
              E_{ab} = \frac{(\sum_{a'} M_{a'a}) (\sum_{b'} M_{bb'})}{\sum M}

    with disagreement weights ``v_ab = [a ≠ b]`` (``weights=None``), ``|a − b|``
    (``"linear"``) or ``(a − b)²`` (``"quadratic"``, the usual choice for ordinal grades).
    ``sklearn.metrics.cohen_kappa_score(y1, y2, labels=range(C), weights=weights,
    sample_weight=w)``: the class indices ``0 … C−1`` are the ordinal scale, so for the linear
    and quadratic forms pass scikit-learn ``labels=range(C)`` when a class may be absent.

    ``weights`` keeps scikit-learn's name and meaning (the disagreement weighting), so the
    contract's per-element weights are ``sample_weight`` here.

    Args:
      labels, predictions, num_classes, where, ignore_index: as :func:`confusion_matrix`.
      weights: ``None``, ``"linear"`` or ``"quadratic"``.
      sample_weight: per-element weights broadcastable to the labels' shape.

    Returns:
      A scalar; NaN where κ is undefined (the expected disagreement is 0, e.g. both labelings
      use one and the same class, or nothing is included), scikit-learn's
      ``replace_undefined_by=np.nan``. From a state: :func:`jaxloss.confusion_compute`.

    >>> import jax.numpy as jnp
    >>> y1, y2 = jnp.array([0, 1, 2, 2, 1]), jnp.array([0, 2, 2, 2, 1])
    >>> cohen_kappa(y1, y2, 3)
    Array(0.6875, dtype=float32)
    >>> cohen_kappa(y1, y2, 3, weights="quadratic")
    Array(0.8, dtype=float32)
    """
    _check_kappa_weights(weights)
    cm = confusion_matrix(
        labels,
        predictions,
        num_classes,
        weights=sample_weight,
        where=where,
        ignore_index=ignore_index,
    )
    return _kappa(cm, weights)


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


def precision_recall_curve(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    pos_label: int | float = 1,
) -> tuple[Array, Array, Array, Array]:
    r"""Precision-recall curve with a static size: one point per score, plus the start.

    .. math:: P(t) = \frac{\sum_{i:\,s_i \ge t,\ y_i = +} w_i}{\sum_{i:\,s_i \ge t} w_i},
              \qquad R(t) = \frac{\sum_{i:\,s_i \ge t,\ y_i = +} w_i}{\sum_{i:\,y_i = +} w_i}

    The points are :func:`roc_curve`'s, from the highest threshold to the lowest: point 0 is
    scikit-learn's final point ``(recall 0, precision 1)`` with threshold ``+inf``; tied and
    excluded elements repeat a ``valid`` point. Reversed, the valid points are
    ``sklearn.metrics.precision_recall_curve(labels, scores, pos_label=pos_label,
    sample_weight=w)``: ``precision[valid][::-1]``, ``recall[valid][::-1]``,
    ``thresholds[valid][1:][::-1]``.

    Args: as :func:`roc_curve`.

    Returns:
      ``(precision, recall, thresholds, valid)``, each ``[N + 1]``.

    Edges: a threshold with nothing predicted positive has precision 0 (except the start,
    1); no included positive gives recall 1 at every point but the start, as scikit-learn.

    >>> import jax.numpy as jnp
    >>> p, r, t, valid = precision_recall_curve(jnp.array([0.1, 0.4, 0.35, 0.8]),
    ...                                         jnp.array([0, 0, 1, 1]))
    >>> p[valid], r[valid]
    (Array([1.       , 1.       , 0.5      , 0.6666667, 0.5      ], dtype=float32),
     Array([0. , 0.5, 0.5, 1. , 1. ], dtype=float32))
    """
    tps, fps, thresholds, valid = _ranked_counts(scores, labels, weights, where, pos_label)
    start = jnp.arange(tps.shape[0]) == 0
    precision = jnp.where(start, 1.0, safe_divide(tps, tps + fps)).astype(tps.dtype)
    recall = jnp.where(tps[-1] == 0, 1.0, safe_divide(tps, jnp.broadcast_to(tps[-1], tps.shape)))
    recall = jnp.where(start, 0.0, recall).astype(tps.dtype)
    return precision, recall, thresholds, valid


def roc_auc(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    pos_label: int | float = 1,
    max_fpr: float | None = None,
) -> Array:
    r"""Area under the ROC curve, with exact handling of tied scores; optionally partial.

    .. math:: \mathrm{AUC} = \sum_j (\mathrm{fpr}_{j+1} - \mathrm{fpr}_j)\,
              \frac{\mathrm{tpr}_{j+1} + \mathrm{tpr}_j}{2}

    over :func:`roc_curve`'s points: a group of tied scores is one straight segment, so a
    positive and a negative with the same score count ½, the Mann–Whitney statistic
    ``P(s_+ > s_-) + ½ P(s_+ = s_-)`` (weighted by ``w_+ w_-``). This is
    ``sklearn.metrics.roc_auc_score(labels == pos_label, scores, sample_weight=w,
    max_fpr=max_fpr)`` on the included elements.

    With ``max_fpr = m < 1`` the area is taken over ``fpr ≤ m`` only (the segment that crosses
    ``m`` cut by linear interpolation, as scikit-learn) and standardised with McClish's
    correction, so chance is 0.5 and a perfect ranking 1:

    .. math:: \mathrm{pAUC}_{\mathrm{McClish}} = \frac12 \Bigl(1 + \frac{A_m - m^2/2}
              {m - m^2/2}\Bigr), \qquad A_m = \int_0^m \mathrm{tpr}\, d\,\mathrm{fpr}

    Args:
      scores, labels, weights, where, pos_label: as :func:`roc_curve`.
      max_fpr: ``None`` (the full area) or a Python float in ``(0, 1]``.

    Returns:
      A scalar; NaN when the included elements hold only one class (scikit-learn returns NaN
      with a warning there).

    >>> import jax.numpy as jnp
    >>> roc_auc(jnp.array([0.1, 0.4, 0.4, 0.8]), jnp.array([0, 0, 1, 1]))   # 1 - ½·¼
    Array(0.875, dtype=float32)
    >>> roc_auc(jnp.array([0.1, 0.4, 0.4, 0.8]), jnp.array([0, 0, 1, 1]), max_fpr=0.5)
    Array(0.8333334, dtype=float32)
    """
    max_fpr = _check_max_fpr(max_fpr)
    fpr, tpr, _, _ = roc_curve(scores, labels, weights=weights, where=where, pos_label=pos_label)
    return _roc_area(fpr, tpr, max_fpr)


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


def multiclass_roc_auc(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    average: OvrAverage = "macro",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""One-vs-rest ROC AUC of multi-class scores, averaged over the classes, in one call.

    .. math:: \mathrm{AUC}_c = \mathrm{AUC}(x_{\cdot c},\ [y = c]), \qquad
              \text{macro} = \frac1C \sum_c \mathrm{AUC}_c, \quad
              \text{weighted} = \frac{\sum_c n_c \mathrm{AUC}_c}{\sum_c n_c}

    ``sklearn.metrics.roc_auc_score(y, scores, multi_class="ovr", average=average,
    labels=range(C), sample_weight=w)`` (torchmetrics' ``MulticlassAUROC``): each class's AUC
    is :func:`roc_auc` of its column against "is class ``c``", ties exact. ``"weighted"``
    weighs by support ``n_c`` (the weighted count of class ``c``); ``"micro"`` pools every
    (element, class) pair into one binary problem.

    Args:
      scores: float scores ``S + (C,)`` (probabilities or logits; only their order matters).
      labels: integer labels of shape ``S``.
      average: ``"macro"`` (default), ``"weighted"``, ``"micro"`` or ``None`` (``[C]``).
      weights, where, ignore_index: per element of ``S``, as :func:`accuracy`.

    Returns:
      A scalar (``[C]`` for ``average=None``). A class with no included positive or no
      negative has an undefined (NaN) AUC, which makes ``"macro"`` NaN, as scikit-learn;
      ``"weighted"`` gives it weight 0. An out-of-range label makes the result NaN.

    >>> import jax.numpy as jnp
    >>> s = jnp.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4], [0.1, 0.4, 0.5]])
    >>> multiclass_roc_auc(s, jnp.array([0, 1, 2, 1]), average=None)   # class 2: 2 of 3 pairs
    Array([1.       , 1.       , 0.6666667], dtype=float32)
    """
    s, y, w, ok = _one_vs_rest_inputs(scores, labels, weights, where, ignore_index, True)
    return _one_vs_rest_score(s, y, w, ok, average, True)


def multilabel_roc_auc(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    average: OvrAverage = "macro",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""ROC AUC of each label of multi-label data, averaged, in one call.

    .. math:: \mathrm{AUC}_l = \mathrm{AUC}(x_{\cdot l},\ y_{\cdot l})

    ``sklearn.metrics.roc_auc_score(Y, scores, average=average, sample_weight=w)`` for
    indicator ``Y`` (torchmetrics' ``MultilabelAUROC``), averages as
    :func:`multiclass_roc_auc` (``"weighted"`` by each label's positive count).

    Args:
      scores: float ``S + (L,)``.
      labels: 0/1 (or boolean) indicators of the same shape.
      average: ``"macro"``, ``"weighted"``, ``"micro"`` or ``None``.
      weights, where: per sample (at most ``len(S)`` dimensions) or per element
        (``len(S) + 1``), as :func:`multilabel_confusion_matrix`.

    >>> import jax.numpy as jnp
    >>> s = jnp.array([[0.9, 0.1], [0.6, 0.8], [0.2, 0.7], [0.4, 0.3]])
    >>> multilabel_roc_auc(s, jnp.array([[1, 0], [1, 1], [0, 1], [0, 0]]), average=None)
    Array([1., 1.], dtype=float32)
    """
    s, y, w, ok = _one_vs_rest_inputs(scores, labels, weights, where, None, False)
    return _one_vs_rest_score(s, y, w, ok, average, True)


def multiclass_average_precision(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    average: OvrAverage = "macro",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""One-vs-rest average precision of multi-class scores, averaged, in one call.

    .. math:: \mathrm{AP}_c = \mathrm{AP}(x_{\cdot c},\ [y = c])

    ``sklearn.metrics.average_precision_score(y, scores, average=average, sample_weight=w)``
    for integer ``y`` with ``C`` classes (label-binarised, as scikit-learn does), torchmetrics'
    ``MulticlassAveragePrecision``. Arguments and averages as :func:`multiclass_roc_auc`; a
    class with no positive has AP 0 and counts in ``"macro"`` (scikit-learn's rule).

    >>> import jax.numpy as jnp
    >>> s = jnp.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4], [0.1, 0.8, 0.1]])
    >>> multiclass_average_precision(s, jnp.array([0, 1, 2, 1]), average=None)
    Array([1., 1., 1.], dtype=float32)
    """
    s, y, w, ok = _one_vs_rest_inputs(scores, labels, weights, where, ignore_index, True)
    return _one_vs_rest_score(s, y, w, ok, average, False)


def multilabel_average_precision(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    average: OvrAverage = "macro",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""Average precision of each label of multi-label data, averaged, in one call.

    .. math:: \mathrm{AP}_l = \mathrm{AP}(x_{\cdot l},\ y_{\cdot l})

    ``sklearn.metrics.average_precision_score(Y, scores, average=average, sample_weight=w)``
    (torchmetrics' ``MultilabelAveragePrecision``). Arguments as :func:`multilabel_roc_auc`,
    averages as :func:`multiclass_average_precision`.

    >>> import jax.numpy as jnp
    >>> s = jnp.array([[0.9, 0.1], [0.6, 0.8], [0.2, 0.7], [0.4, 0.3]])
    >>> multilabel_average_precision(s, jnp.array([[1, 0], [0, 1], [1, 1], [0, 0]]))   # (¾ + 1)/2
    Array(0.875, dtype=float32)
    """
    s, y, w, ok = _one_vs_rest_inputs(scores, labels, weights, where, None, False)
    return _one_vs_rest_score(s, y, w, ok, average, False)


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
    multioutput: Literal["uniform_average", "variance_weighted", "raw_values"] = "uniform_average",
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
      multioutput: ``"uniform_average"`` (mean over outputs), ``"variance_weighted"`` (mean
        weighted by each output's weighted target variance sum, ``Σ w (t − t̄)²``; 1.0 / 0.0
        as above when every output is constant) or ``"raw_values"`` (one ``R²`` per output,
        shape ``predictions.shape[1:]``).

    >>> import jax.numpy as jnp
    >>> r2_score(jnp.array([2.5, 0.0, 2.0, 8.0]), jnp.array([3.0, -0.5, 2.0, 7.0]))
    Array(0.9486081, dtype=float32)
    """
    allowed = ("uniform_average", "variance_weighted", "raw_values")
    if multioutput not in allowed:
        raise ValueError(f"multioutput must be one of {allowed}; got {multioutput!r}.")
    p, t, mask = _regression_inputs(predictions, targets, weights, where)
    if p.ndim == 0:
        raise ValueError("predictions must have a sample axis; got a scalar.")
    shape = p.shape
    w = None if weights is None else jnp.broadcast_to(jnp.asarray(weights).astype(p.dtype), shape)
    m = None if mask is None else jnp.broadcast_to(mask, shape)

    def column(
        p_col: Array, t_col: Array, m_col: Array | None, w_col: Array | None
    ) -> tuple[Array, Array, Array]:
        # Centre on one included target first, so constant targets give exactly total = 0.
        # (A cumulative count, not argmax, so that an empty column works too.)
        if m_col is None:
            first = jnp.arange(t_col.shape[0]) == 0
        else:
            first = m_col & (jnp.cumsum(m_col) == 1)
        ref = jnp.sum(jnp.where(first, t_col, 0))
        centred = t_col - ref
        mean_t = ref + reduce_elements(
            centred, mask=m_col, weights=w_col, reduction="weighted_mean"
        )
        residual = reduce_elements((t_col - p_col) ** 2, mask=m_col, weights=w_col, reduction="sum")
        total = reduce_elements((t_col - mean_t) ** 2, mask=m_col, weights=w_col, reduction="sum")
        finite = 1.0 - safe_divide(residual, total)
        r2 = jnp.where(total != 0, finite, jnp.where(residual == 0, 1.0, 0.0).astype(p.dtype))
        return r2, residual, total

    flat = (shape[0], math.prod(shape[1:]))  # not -1: an empty batch must reshape too
    cols = [a if a is None else a.reshape(flat) for a in (p, t, m, w)]
    axes = [None if a is None else 1 for a in cols]
    r2, residual, total = jax.vmap(column, in_axes=axes)(*cast(list[Any], cols))
    if multioutput == "raw_values":
        return r2.reshape(shape[1:])
    if multioutput == "variance_weighted":
        constant = jnp.where(jnp.all(residual == 0), 1.0, 0.0).astype(p.dtype)
        return jnp.where(
            jnp.any(total != 0), safe_divide(jnp.sum(total * r2), jnp.sum(total)), constant
        )
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
        remember_labels(in_range, y)  # for checked's message: the first bad label, quoted
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
        return pred_labels, true, shape, include, in_range, dtype, num_classes
    pred_labels = _int_labels(pred, name)
    shape = pred_labels.shape
    true, include, in_range = _true_classes(labels, shape, None, axis, ignore_index)
    return pred_labels, true, shape, include, in_range, jnp.float32, None


def _nan_if_bad(
    values: Array,
    in_range: Array,
    mask: Array | None,
    num_classes: int | None,
    ignore_index: int | None,
) -> Array:
    """NaN for included elements whose label is out of range; under ``checked`` it raises
    with the first bad label (and "did you mean ignore_index=-100?" for PyTorch's ignore
    label), as the losses do."""
    if num_classes is None:  # predicted labels: no class count to check against
        return values
    return jnp.where(labels_ok(in_range, mask, num_classes, ignore_index), values, jnp.nan)


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
    next_differs = jnp.concatenate(
        [(s_sorted[1:] != s_sorted[:-1]) | ~inc[1:], jnp.ones((1,), bool)]
    )
    valid = inc & next_differs
    # Each point takes the values of the valid point ending its tie group; excluded ones (at
    # the end) the last valid point's. No gather: running sums of non-negative parts never
    # decrease and the sorted scores never increase, so "the value at the next valid point" is
    # a reverse running min (max) over the valid points.
    has_next = jax.lax.cummax(valid.astype(jnp.int32), reverse=True) > 0
    signed = weights is not None  # only given weights can be negative
    tps = _cumsum_at_group_end(pos_w, valid, has_next, signed)
    fps = _cumsum_at_group_end(neg_w, valid, has_next, signed)
    next_score = jax.lax.cummax(jnp.where(valid, s_sorted, -jnp.inf), reverse=True)
    last_score = jnp.min(jnp.where(valid, s_sorted, jnp.inf), initial=jnp.inf)  # (may be empty)
    s_at = jnp.where(has_next, next_score, jnp.where(jnp.any(valid), last_score, s_sorted))
    zero = jnp.zeros((1,), s.dtype)
    tps = jnp.concatenate([zero, tps])
    fps = jnp.concatenate([zero, fps])
    thresholds = jnp.concatenate([jnp.full((1,), jnp.inf, s.dtype), s_at])
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


# Argument checks.


def _check_positive_int(x: object, name: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int | np.integer) or x < 1:
        raise ValueError(f"{name} must be a positive Python int; got {x!r}.")
    return int(x)


def _check_average(average: object, allowed: tuple) -> None:
    if average not in allowed:
        raise ValueError(f"average must be one of {allowed}; got {average!r}.")


def _check_normalize(normalize: object) -> None:
    allowed = ("true", "pred", "all", None)
    if normalize not in allowed:
        raise ValueError(f"normalize must be one of {allowed}; got {normalize!r}.")


def _check_kappa_weights(weights: object) -> None:
    allowed = (None, "linear", "quadratic")
    if weights not in allowed:
        raise ValueError(
            f"weights (the kappa disagreement weighting) must be one of {allowed}; got "
            f"{weights!r}. Per-element weights are sample_weight here."
        )


def _check_max_fpr(max_fpr: float | None) -> float | None:
    """``None`` for the full area (``max_fpr`` of ``None`` or 1), else a float in ``(0, 1)``."""
    if max_fpr is None:
        return None
    if isinstance(max_fpr, bool) or not isinstance(max_fpr, int | float | np.floating):
        raise TypeError(f"max_fpr must be a Python float in (0, 1] or None; got {max_fpr!r}.")
    if not 0.0 < float(max_fpr) <= 1.0:
        raise ValueError(f"max_fpr must lie in (0, 1]; got {max_fpr!r}.")
    return None if float(max_fpr) == 1.0 else float(max_fpr)


# One-hot counting (no scatter, no gather: sharding-safe).


def _count_dtype(weights: ArrayLike | None) -> jnp.dtype:
    """float32 counts, or the weights' wider float dtype (float64 under x64)."""
    if weights is None:
        return jnp.dtype(jnp.float32)
    return jnp.promote_types(jnp.asarray(weights).dtype, jnp.float32)


def _element_weights(
    shape: tuple[int, ...], mask: Array | None, weights: ArrayLike | None, dtype: jnp.dtype
) -> Array:
    """Each element's weight, 0 where excluded, broadcast to ``shape``."""
    w = reduce_elements(jnp.ones(shape, dtype), mask=mask, weights=weights, reduction="none")
    return jnp.broadcast_to(w, shape)


def _one_hot(labels: Array, num_classes: int, dtype: jnp.dtype) -> Array:
    """``[..., C]`` one-hot rows by a compare with an iota; an out-of-range label gives zeros."""
    return is_label(labels, num_classes).astype(dtype)


def _outer_sum(rows: Array, cols: Array) -> Array:
    """``Σ_i rows_i ⊗ cols_i`` over every leading axis: ``[..., A]``, ``[..., B]`` → ``[A, B]``.

    One matrix product contracting the batch axes (``HIGHEST`` precision, so weighted counts
    are not rounded to TF32 on GPUs). When the batch axes are sharded over an explicit-axes
    mesh, the contraction's output sharding is ambiguous to JAX, so it is named: replicated
    (an all-reduce of the ``[A, B]`` partial sums, as the scatter-free count needs).
    """
    letters = "abcdefghijklmnopqrstuvw"[: rows.ndim - 1]
    spec = f"{letters}y,{letters}z->yz"
    return jnp.einsum(
        spec,
        rows,
        cols,
        precision=jax.lax.Precision.HIGHEST,
        out_sharding=_replicated_if_explicit(rows, cols),
    )


def _replicated_if_explicit(*arrays: Array) -> Any:
    """``PartitionSpec()`` (replicated) when an operand is sharded over explicit mesh axes."""
    if any(s is not None for a in arrays for s in explicit_spec(a)):
        return jax.sharding.PartitionSpec()
    return None


def _rank_of_true_class(x: Array, true: Array, *, higher_index_first: bool) -> Array:
    """Number of classes ranked above the true one; ties broken by the class index.

    The true class's score is picked by a compare with an iota inside a sum (no gather).
    """
    classes = jnp.arange(x.shape[-1], dtype=true.dtype)
    is_true = classes == true[..., None]
    true_score = jnp.sum(jnp.where(is_true, x, 0), axis=-1, keepdims=True)
    if higher_index_first:
        tie_wins = classes > true[..., None]
    else:
        tie_wins = classes < true[..., None]
    above = (x > true_score) | ((x == true_score) & tie_wins)
    return jnp.sum(above, axis=-1)


def _top_k_prediction(x: Array, true: Array, k: int) -> Array:
    """torchmetrics' top-k prediction: the true class if it is in the top ``k``, else argmax."""
    argmax = jnp.argmax(x, axis=-1)
    if k == 1:
        return argmax
    num_classes = x.shape[-1]
    in_range = (true >= 0) & (true < num_classes)
    safe_true = jnp.where(in_range, true, 0)
    rank = _rank_of_true_class(x, safe_true, higher_index_first=False)
    return jnp.where(in_range & (rank < k), true, argmax)


def _per_sample_or_element(x: ArrayLike | None, shape: tuple[int, ...]) -> ArrayLike | None:
    """A per-sample array (at most ``len(shape) - 1`` dims, broadcastable to ``shape[:-1]``)
    gets a trailing unit axis; anything else is taken as per element of ``shape``."""
    if x is None:
        return None
    x = jnp.asarray(x)
    sample_shape = tuple(shape[:-1])
    if x.ndim <= len(sample_shape) and broadcasts_to(x.shape, sample_shape):
        return jnp.broadcast_to(x, sample_shape)[..., None]
    return x


def _per_sample_or_element_mask(
    shape: tuple[int, ...],
    weights: ArrayLike | None,
    where: ArrayLike | None,
    include: Array | None,
) -> Array | None:
    return element_mask(
        shape,
        weights=_per_sample_or_element(weights, shape),
        where=_per_sample_or_element(where, shape),
        include=include,
    )


# Metrics from a confusion matrix.


class _ClassCounts(NamedTuple):
    """One-vs-rest counts of each class, from a ``[C, C]`` or ``[L, 2, 2]`` matrix."""

    tp: Array
    fp: Array
    fn: Array
    tn: Array
    support: Array  # tp + fn, the true count
    predicted: Array  # tp + fp
    multilabel: bool


def _confusion_array(confusion: ArrayLike, name: str, *, allow_multilabel: bool = True) -> Array:
    m = jnp.asarray(confusion)
    if not jnp.issubdtype(m.dtype, jnp.number):
        raise TypeError(f"{name} must be a numeric array; got dtype {m.dtype}.")
    square = m.ndim == 2 and m.shape[0] == m.shape[1]
    multilabel = allow_multilabel and m.ndim == 3 and m.shape[1:] == (2, 2)
    if not (square or multilabel):
        expected = "a square [C, C] matrix" + (
            " or [L, 2, 2] per-label matrices" if allow_multilabel else ""
        )
        raise ValueError(f"{name} has shape {tuple(m.shape)}; expected {expected}.")
    return upcast(m)


def _class_counts(confusion: ArrayLike, name: str) -> _ClassCounts:
    m = _confusion_array(confusion, name)
    if m.ndim == 3:
        tn, fp, fn, tp = m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1]
        return _ClassCounts(tp, fp, fn, tn, tp + fn, tp + fp, True)
    eye = jnp.eye(m.shape[0], dtype=bool)
    tp = jnp.sum(jnp.where(eye, m, 0), axis=1)
    support = jnp.sum(m, axis=1)
    predicted = jnp.sum(m, axis=0)
    tn = jnp.sum(m) - support - predicted + tp
    return _ClassCounts(tp, predicted - tp, support - tp, tn, support, predicted, False)


def _class_average(
    per_class: Array, micro: Array, counts: _ClassCounts, average: Average, pos_label: int
) -> Array:
    """Average per-class scores the scikit-learn way (see :func:`precision_recall_fscore`)."""
    if average is None:
        return per_class
    if average == "micro":
        return micro
    num_classes = per_class.shape[0]
    if average == "binary":
        if (
            isinstance(pos_label, bool)
            or not isinstance(pos_label, int | np.integer)
            or not 0 <= pos_label < num_classes
        ):
            raise ValueError(
                f"pos_label must be a class index in [0, {num_classes}); got {pos_label!r}."
            )
        return per_class[int(pos_label)]
    if average == "macro":
        if counts.multilabel:
            return reduce_elements(per_class, reduction="mean")
        present = (counts.support != 0) | (counts.predicted != 0)
        return reduce_elements(per_class, mask=present, reduction="mean")
    # "weighted"
    mask = element_mask(counts.support.shape, weights=counts.support)
    return reduce_elements(per_class, mask=mask, weights=counts.support, reduction="weighted_mean")


_AVERAGES = ("macro", "micro", "weighted", "binary", None)


def _specificity(counts: _ClassCounts, average: Average, pos_label: int) -> Array:
    _check_average(average, _AVERAGES)
    per_class = safe_divide(counts.tn, counts.tn + counts.fp)
    micro = safe_divide(jnp.sum(counts.tn), jnp.sum(counts.tn + counts.fp))
    return _class_average(per_class, micro, counts, average, pos_label)


def _jaccard(counts: _ClassCounts, average: Average, pos_label: int) -> Array:
    _check_average(average, _AVERAGES)
    union = counts.support + counts.predicted - counts.tp
    per_class = safe_divide(counts.tp, union)
    micro = safe_divide(jnp.sum(counts.tp), jnp.sum(union))
    return _class_average(per_class, micro, counts, average, pos_label)


def _dice(counts: _ClassCounts, average: Average, pos_label: int) -> Array:
    _check_average(average, _AVERAGES)
    both = counts.support + counts.predicted
    per_class = safe_divide(2.0 * counts.tp, both)
    micro = safe_divide(2.0 * jnp.sum(counts.tp), jnp.sum(both))
    return _class_average(per_class, micro, counts, average, pos_label)


def _single_label_matrix(confusion: ArrayLike) -> Array:
    """``[C, C]`` as is; ``[L, 2, 2]`` pooled into one ``2 × 2`` matrix (torchmetrics' rule)."""
    m = _confusion_array(confusion, "confusion")
    return jnp.sum(m, axis=0) if m.ndim == 3 else m


def _matthews(confusion: ArrayLike) -> Array:
    """scikit-learn's multi-class MCC, on the matrix divided by its total."""
    m = _single_label_matrix(confusion)
    q = safe_divide(m, jnp.sum(m))
    true = jnp.sum(q, axis=1)
    pred = jnp.sum(q, axis=0)
    correct = jnp.sum(jnp.where(jnp.eye(m.shape[0], dtype=bool), q, 0))
    cov_tp = correct - jnp.sum(true * pred)
    cov_pp = 1.0 - jnp.sum(pred * pred)
    cov_tt = 1.0 - jnp.sum(true * true)
    denominator = cov_pp * cov_tt
    positive = denominator > 0
    return jnp.where(positive, cov_tp / jnp.sqrt(jnp.where(positive, denominator, 1.0)), 0.0)


def _kappa(confusion: ArrayLike, weights: KappaWeights) -> Array:
    """scikit-learn's Cohen's kappa (classes ``0 … C−1`` as the scale); NaN where undefined."""
    _check_kappa_weights(weights)
    m = _single_label_matrix(confusion)
    q = safe_divide(m, jnp.sum(m))
    expected = jnp.sum(q, axis=0)[:, None] * jnp.sum(q, axis=1)[None, :]
    index = jnp.arange(m.shape[0], dtype=m.dtype)
    diff = index[:, None] - index[None, :]
    if weights is None:
        disagreement = (diff != 0).astype(m.dtype)
    elif weights == "linear":
        disagreement = jnp.abs(diff)
    else:
        disagreement = diff * diff
    observed = jnp.sum(disagreement * q)
    chance = jnp.sum(disagreement * expected)
    defined = chance != 0
    return jnp.where(defined, 1.0 - observed / jnp.where(defined, chance, 1.0), jnp.nan)


# Ranking.


def _cumsum_at_group_end(weights: Array, valid: Array, has_next: Array, signed: bool) -> Array:
    """``cumsum(weights)`` read at the next valid position (its own value past the last one).

    With ``signed``, the sum is split into its non-negative and non-positive parts, each
    non-decreasing in magnitude, so the next valid value is a reverse running min for any real
    weights.
    """

    def at_next_valid(part: Array) -> Array:
        running = jnp.cumsum(part)
        following = jax.lax.cummin(jnp.where(valid, running, jnp.inf), reverse=True)
        return jnp.where(has_next, following, running)

    if not signed:
        return at_next_valid(weights)
    return at_next_valid(jnp.maximum(weights, 0)) - at_next_valid(jnp.maximum(-weights, 0))


def _roc_area(fpr: Array, tpr: Array, max_fpr: float | None) -> Array:
    """Trapezoidal area under ``(fpr, tpr)``; with ``max_fpr``, the McClish-standardised part."""
    if max_fpr is None:
        return jnp.sum(jnp.diff(fpr, axis=-1) * (tpr[..., 1:] + tpr[..., :-1]), axis=-1) / 2
    x0, x1, y0, y1 = fpr[..., :-1], fpr[..., 1:], tpr[..., :-1], tpr[..., 1:]
    a = jnp.minimum(x0, max_fpr)
    b = jnp.minimum(x1, max_fpr)
    slope = safe_divide(y1 - y0, x1 - x0)
    area = jnp.sum((b - a) * (2.0 * y0 + slope * (a - x0 + b - x0)), axis=-1) / 2
    min_area = 0.5 * max_fpr**2
    return 0.5 * (1.0 + (area - min_area) / (max_fpr - min_area))


def _one_vs_rest_inputs(
    scores: ArrayLike,
    labels: ArrayLike,
    weights: ArrayLike | None,
    where: ArrayLike | None,
    ignore_index: int | None,
    multiclass: bool,
) -> tuple[Array, Array, Array, Array]:
    """Flattened ``[M, C]`` scores, 0/1 targets and weights (0 = excluded), and an ok flag."""
    s = upcast(float_array(scores, "scores"))
    if s.ndim == 0:
        raise ValueError("scores must have a trailing class axis; got a scalar.")
    num_classes = s.shape[-1]
    if multiclass:
        shape = s.shape[:-1]
        true, include, in_range = _true_classes(
            labels, shape, num_classes, s.ndim - 1, ignore_index
        )
        mask = element_mask(shape, weights=weights, where=where, include=include)
        w = jnp.where(in_range, _element_weights(shape, mask, weights, s.dtype), 0)
        ok = in_range if mask is None else in_range | ~mask
        message = f"labels must lie in [0, {num_classes}) or equal ignore_index={ignore_index}"
        y = _one_hot(jnp.where(in_range, true, -1), num_classes, s.dtype)
        w = jnp.broadcast_to(w[..., None], s.shape)
    else:
        y = jnp.asarray(labels)
        if not (jnp.issubdtype(y.dtype, jnp.number) or y.dtype == jnp.bool_):
            raise TypeError(f"labels must be a numeric or boolean array; got dtype {y.dtype}.")
        if y.shape != s.shape:
            raise ValueError(
                f"labels has shape {tuple(y.shape)}; multi-label indicators must have the "
                f"scores' shape {tuple(s.shape)}."
            )
        mask = _per_sample_or_element_mask(s.shape, weights, where, None)
        w = _element_weights(s.shape, mask, _per_sample_or_element(weights, s.shape), s.dtype)
        positive = y == 1
        in_range = positive | (y == 0)
        ok = in_range if mask is None else in_range | ~mask
        message = "multi-label labels must be 0 or 1"
        y = positive.astype(s.dtype)
        w = jnp.where(in_range, w, 0)
    value_check(ok, message + "; got another value.")
    flat = (-1, num_classes)
    return s.reshape(flat), y.reshape(flat), w.reshape(flat), jnp.all(ok)


def _binary_auc(s: Array, y: Array, w: Array) -> Array:
    return roc_auc(s, y, weights=w)


def _binary_ap(s: Array, y: Array, w: Array) -> Array:
    return average_precision(s, y, weights=w)


def _one_vs_rest_score(
    s: Array, y: Array, w: Array, ok: Array, average: OvrAverage, is_auc: bool
) -> Array:
    """Per-class AUC / AP of ``[M, C]`` one-vs-rest inputs, averaged (compiled once per
    configuration, so an eager call is one executable, not hundreds of dispatches)."""
    _check_average(average, ("macro", "weighted", "micro", None))
    return _one_vs_rest_compiled(s, y, w, ok, average, is_auc)


@functools.partial(jax.jit, static_argnames=("average", "is_auc"))
def _one_vs_rest_compiled(
    s: Array, y: Array, w: Array, ok: Array, average: OvrAverage, is_auc: bool
) -> Array:
    """Average one-vs-rest scores as scikit-learn's ``_average_binary_score``."""
    metric = _binary_auc if is_auc else _binary_ap
    nan_if_bad = jnp.where(ok, 0.0, jnp.nan).astype(s.dtype)
    if average == "micro":
        return metric(s.ravel(), y.ravel(), w.ravel()) + nan_if_bad
    per_class = jax.vmap(metric, in_axes=-1)(s, y, w)
    if average is None:
        return per_class + nan_if_bad
    if average == "macro":
        return jnp.mean(per_class) + nan_if_bad
    support = jnp.sum(w * y, axis=0)
    scored = jnp.where(support == 0, 0.0, per_class)
    return safe_divide(jnp.sum(support * scored), jnp.sum(support)) + nan_if_bad
