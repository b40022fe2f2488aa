"""Mergeable metric states: metrics accumulated over batches, devices and hosts.

A per-batch metric cannot be combined: a mean of per-batch F1 scores is not the F1 of the data,
and AUC or R² of two halves do not give the AUC or R² of the whole. Each family here is three
pure functions over a *state*, a pytree of arrays with static shapes made only of sums:

* ``<family>_init(...)`` → the empty state (zeros);
* ``<family>_update(state, ..., *, weights=None, where=None[, ignore_index=None])`` → the state
  plus this batch's sums (the contract's arguments, as the per-batch metrics);
* ``<family>_compute(state, ...)`` → the metrics, a ``NamedTuple``;

and :func:`merge_states` (a leafwise sum). Because every leaf is a sum, states merge in any order
and any grouping: ``lax.scan`` over batches, ``jax.lax.psum(state, axis_name)`` inside
``shard_map`` over a mesh, or a sum over hosts; the merged state is the state of the
concatenated data. No class holds state and nothing is cached: the state is an ordinary value
that ``jit``, ``vmap``, ``scan`` and ``shard_map`` carry.

=================  ==================================  =======================================
family             state                               computes
=================  ==================================  =======================================
``confusion``      ``[C, C]`` (or ``[L, 2, 2]``)       accuracy, precision / recall / F-β, IoU,
                   confusion matrix                    Dice, specificity, MCC, Cohen's κ
``ranking``        Keras-style counts at a fixed       ROC AUC (partial too), average
                   threshold grid                      precision, ROC and PR curves
``regression``     sums of errors and shifted          MSE, RMSE, MAE, MAPE, R², adjusted R²
                   target moments
``calibration``    per-bin counts, confidence and      ECE, MCE, RMS calibration error,
                   accuracy sums                       reliability diagram
=================  ==================================  =======================================

Every update counts by one-hot sums (compares with an iota or a threshold grid, reduced over
the batch axes), with no sort, scatter or gather, so it runs under ``jit`` on inputs sharded
over an explicit-axes mesh. States are float32 by default (``dtype=`` at init; float64 under
x64): counts are exact up to 2**24 per cell, beyond that each update rounds at float32's
relative 6e-8.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, TypeVar

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
from jaxloss._reduction import element_mask, safe_divide, sanitize
from jaxloss.metrics import (
    _AVERAGES,
    _MAPE_EPSILON,
    Average,
    KappaWeights,
    OvrAverage,
    _check_average,
    _check_ignore_index,
    _check_kappa_weights,
    _check_max_fpr,
    _check_positive_int,
    _class_average,
    _class_counts,
    _confusion_array,
    _dice,
    _element_weights,
    _jaccard,
    _kappa,
    _matthews,
    _one_hot,
    _per_sample_or_element,
    _per_sample_or_element_mask,
    _prf,
    _regression_inputs,
    _roc_area,
    _specificity,
    _true_classes,
    confusion_matrix,
    multilabel_confusion_matrix,
)

__all__ = [
    "merge_states",
    "ConfusionMetrics",
    "confusion_init",
    "confusion_update",
    "confusion_compute",
    "RankingState",
    "RankingMetrics",
    "ranking_init",
    "ranking_update",
    "ranking_compute",
    "RegressionState",
    "RegressionMetrics",
    "regression_init",
    "regression_update",
    "regression_compute",
    "CalibrationState",
    "CalibrationMetrics",
    "calibration_init",
    "calibration_update",
    "calibration_compute",
]

State = TypeVar("State")
MultiOutput = Literal["uniform_average", "variance_weighted", "raw_values"]

# Keras's backend.epsilon(): the outer thresholds sit just outside [0, 1].
_KERAS_EPSILON = 1e-7


def merge_states(a: State, b: State) -> State:
    r"""Merge two metric states: the leafwise sum.

    .. math:: \mathrm{merge}(a, b) = a + b \quad\text{leaf by leaf}

    Every state of this module is made of sums, so the merge of the states of two data sets is
    the state of their union, in any order and grouping; ``jax.lax.psum(state, axis_name)``
    does the same over a mesh axis inside ``shard_map``, and
    ``jax.tree.map(lambda x: x.sum(0), stacked)`` over a stack of states.

    Args:
      a, b: states of the same family and shape (e.g. two :func:`confusion_init` results
        updated on different data).

    Returns:
      The merged state, of the same structure.

    Raises:
      ValueError: when the two states differ in structure (family, ``num_classes``,
        ``target_shift``) or in leaf shapes.

    >>> import jax.numpy as jnp
    >>> a = confusion_update(confusion_init(2), jnp.array([0, 1]), jnp.array([0, 0]))
    >>> b = confusion_update(confusion_init(2), jnp.array([1]), jnp.array([1]))
    >>> merge_states(a, b)
    Array([[1., 0.],
           [1., 1.]], dtype=float32)
    """
    structure_a, structure_b = jax.tree.structure(a), jax.tree.structure(b)
    if structure_a != structure_b:
        raise ValueError(
            f"cannot merge states of different structure: {structure_a} and {structure_b}."
        )
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if jnp.shape(x) != jnp.shape(y):
            raise ValueError(
                f"cannot merge states whose leaves have shapes {jnp.shape(x)} and {jnp.shape(y)}."
            )
    return jax.tree.map(jnp.add, a, b)


# ---------------------------------------------------------------------------------------------
# Confusion matrix.


class ConfusionMetrics(NamedTuple):
    """Result of :func:`confusion_compute`; each field is a scalar, or ``[C]`` for
    ``average=None`` (``support`` is always the per-class true counts)."""

    accuracy: Array
    precision: Array
    recall: Array
    fscore: Array
    specificity: Array
    jaccard: Array
    dice: Array
    matthews_corrcoef: Array
    cohen_kappa: Array
    support: Array


def confusion_init(num_classes: int, *, multilabel: bool = False, dtype: Any = None) -> Array:
    r"""The empty confusion-matrix state: ``[C, C]`` zeros (``[L, 2, 2]`` for multi-label).

    .. math:: M^{(0)} = 0, \qquad M^{(t+1)} = M^{(t)} + \mathrm{confusion\_matrix}(\text{batch}_t)

    The state *is* the confusion matrix (rows true class, columns predicted), so it is also
    what :func:`jaxloss.confusion_matrix` / :func:`jaxloss.multilabel_confusion_matrix` return
    for one batch, and :func:`jaxloss.precision_recall_fscore` or
    :func:`jaxloss.normalize_confusion` take it directly.

    Args:
      num_classes: ``C`` (or the number of labels ``L`` with ``multilabel=True``).
      multilabel: one ``2 × 2`` matrix per label of multi-label indicator data, in
        scikit-learn's ``multilabel_confusion_matrix`` layout ``[[TN, FP], [FN, TP]]``.
      dtype: the counts' float dtype; default float32 (float64 under x64).

    >>> confusion_init(3).shape, confusion_init(4, multilabel=True).shape
    ((3, 3), (4, 2, 2))
    """
    num_classes = _check_positive_int(num_classes, "num_classes")
    dtype = _state_dtype(dtype)
    shape = (num_classes, 2, 2) if multilabel else (num_classes, num_classes)
    return jnp.zeros(shape, dtype)


def confusion_update(
    state: ArrayLike,
    labels: ArrayLike,
    predictions: ArrayLike,
    *,
    top_k: int = 1,
    threshold: float = 0.5,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> Array:
    r"""Add a batch to a confusion-matrix state.

    .. math:: M_{ab} \mathrel{+}= \sum_i w_i\, [y_i = a]\, [\hat y_i = b]

    Args:
      state: from :func:`confusion_init` (or a previous update).
      labels, predictions: as :func:`jaxloss.confusion_matrix` (integer labels; predicted
        labels or scores with a trailing class axis), or for a multi-label state as
        :func:`jaxloss.multilabel_confusion_matrix` (indicators ``[..., L]``).
      top_k: torchmetrics' ``top_k`` for scores (see :func:`jaxloss.confusion_matrix`).
      threshold: decision threshold for float multi-label predictions.
      weights, where, ignore_index: the contract, per element (per sample or per label entry
        for multi-label).

    Returns:
      The new state. An out-of-range label or prediction makes it NaN (never a plausible
      count; :func:`jaxloss.checked` raises).

    >>> import jax.numpy as jnp
    >>> state = confusion_init(3)
    >>> state = confusion_update(state, jnp.array([0, 1, -1]), jnp.array([0, 2, 1]),
    ...                          ignore_index=-1)
    >>> confusion_update(state, jnp.array([2]), jnp.array([[0.1, 0.2, 0.7]]))
    Array([[1., 0., 0.],
           [0., 0., 1.],
           [0., 0., 1.]], dtype=float32)
    """
    m = _state_matrix(state)
    if m.ndim == 3:
        if top_k != 1:
            raise ValueError("top_k applies to multi-class scores; the state is multi-label.")
        batch = multilabel_confusion_matrix(
            labels,
            predictions,
            threshold=threshold,
            weights=weights,
            where=where,
            ignore_index=ignore_index,
        )
        if batch.shape != m.shape:
            raise ValueError(f"labels have {batch.shape[0]} labels; the state holds {m.shape[0]}.")
    else:
        batch = confusion_matrix(
            labels,
            predictions,
            m.shape[0],
            top_k=top_k,
            weights=weights,
            where=where,
            ignore_index=ignore_index,
        )
    return m + batch.astype(m.dtype)


def confusion_compute(
    state: ArrayLike,
    *,
    average: Average = "macro",
    beta: float = 1.0,
    pos_label: int = 1,
    kappa_weights: KappaWeights = None,
) -> ConfusionMetrics:
    r"""Every confusion-matrix metric of an accumulated state.

    .. math::
        \mathrm{acc} = \frac{\sum_c \mathrm{TP}_c}{\sum M}, \quad
        \mathrm{IoU}_c = \frac{\mathrm{TP}_c}{\mathrm{TP}_c + \mathrm{FP}_c + \mathrm{FN}_c},
        \quad \mathrm{Dice}_c = \frac{2\mathrm{TP}_c}{2\mathrm{TP}_c + \mathrm{FP}_c +
        \mathrm{FN}_c}, \quad \mathrm{TNR}_c = \frac{\mathrm{TN}_c}{\mathrm{TN}_c +
        \mathrm{FP}_c}

    with ``TP_c = M_cc``, ``FP_c`` / ``FN_c`` the rest of column / row ``c``. The per-batch
    functions of the same name compute the same numbers for one batch:
    :func:`jaxloss.accuracy`, :func:`jaxloss.precision_recall_fscore`,
    :func:`jaxloss.specificity`, :func:`jaxloss.jaccard_index`, :func:`jaxloss.dice_score`,
    :func:`jaxloss.matthews_corrcoef`, :func:`jaxloss.cohen_kappa` (scikit-learn's
    definitions; see each for the edges).

    For a multi-label ``[L, 2, 2]`` state, ``accuracy`` is the fraction of correct label
    entries (``1 - hamming_loss``), the per-class metrics are per label (``"macro"`` over every
    label, as scikit-learn's multi-label), and MCC / κ are those of the pooled ``2 × 2`` matrix
    (torchmetrics' multi-label MCC).

    Args:
      state: a ``[C, C]`` or ``[L, 2, 2]`` state (or any confusion matrix).
      average: for precision, recall, F-β, specificity, IoU, Dice: ``"macro"``,
        ``"weighted"``, ``"micro"``, ``"binary"`` (class ``pos_label``) or ``None``.
      beta: the F-β weight of recall.
      pos_label: the class for ``average="binary"``.
      kappa_weights: κ's disagreement weighting, ``None``, ``"linear"`` or ``"quadratic"``.

    >>> import jax.numpy as jnp
    >>> state = confusion_update(confusion_init(2), jnp.array([0, 0, 1, 1]),
    ...                          jnp.array([0, 1, 1, 1]))
    >>> result = confusion_compute(state, average=None)
    >>> result.accuracy, result.jaccard, result.specificity
    (Array(0.75, dtype=float32), Array([0.5       , 0.6666667], dtype=float32),
     Array([1. , 0.5], dtype=float32))
    """
    m = _confusion_array(state, "state")
    _check_average(average, _AVERAGES)
    _check_kappa_weights(kappa_weights)
    static_float(beta, "beta", low=0.0)
    return _confusion_metrics(m, beta, average, pos_label, kappa_weights)


@functools.partial(jax.jit, static_argnames=("average", "pos_label", "kappa_weights"))
def _confusion_metrics(
    m: Array, beta: Any, average: Average, pos_label: int, kappa_weights: KappaWeights
) -> ConfusionMetrics:
    # Compiled once per configuration: called outside jit, one executable instead of dozens
    # of op-by-op dispatches; inside jit it is inlined.
    counts = _class_counts(m, "state")
    precision, recall, fscore = _averaged_prf(counts, average, beta, pos_label)
    if counts.multilabel:
        correct = jnp.sum(counts.tp + counts.tn)
    else:
        correct = jnp.sum(counts.tp)
    return ConfusionMetrics(
        accuracy=safe_divide(correct, jnp.sum(m)),
        precision=precision,
        recall=recall,
        fscore=fscore,
        specificity=_specificity(counts, average, pos_label),
        jaccard=_jaccard(counts, average, pos_label),
        dice=_dice(counts, average, pos_label),
        matthews_corrcoef=_matthews(m),
        cohen_kappa=_kappa(m, kappa_weights),
        support=counts.support,
    )


# ---------------------------------------------------------------------------------------------
# Ranking: counts at a fixed threshold grid (Keras's AUC metric).


class RankingState(NamedTuple):
    """Weighted counts at each threshold of the grid, Keras's ``AUC`` variables: ``[T]``, or
    ``[C, T]`` one-vs-rest per class. An element counts as predicted positive at threshold
    ``t`` when its (clipped) score is ``> t``."""

    true_positives: Array
    false_positives: Array
    true_negatives: Array
    false_negatives: Array


class RankingMetrics(NamedTuple):
    """Result of :func:`ranking_compute`. ``roc_auc`` / ``average_precision`` (and their
    ``*_bound``) are scalars, or ``[C]`` for ``average=None``; the curves are ``[T]`` (``[C,
    T]`` per class), one point per threshold of ``thresholds`` (ascending)."""

    roc_auc: Array
    average_precision: Array
    roc_auc_bound: Array
    average_precision_bound: Array
    thresholds: Array
    fpr: Array
    tpr: Array
    precision: Array
    recall: Array


def ranking_init(
    num_thresholds: int = 200, *, num_classes: int | None = None, dtype: Any = None
) -> RankingState:
    r"""The empty ranking state: counts at Keras's grid of ``num_thresholds`` thresholds.

    .. math:: t_0 = -\epsilon, \quad t_j = \frac{j}{T - 1}\ (0 < j < T - 1), \quad
              t_{T-1} = 1 + \epsilon, \qquad \epsilon = 10^{-7}

    the grid of ``keras.metrics.AUC(num_thresholds=T)``. Each update adds, at every threshold,
    the weighted true / false positives and negatives of the batch; AUC and average precision
    are then computed from these counts (:func:`ranking_compute`). The state has ``4 T``
    numbers (``4 C T`` one-vs-rest), whatever the amount of data.

    Args:
      num_thresholds: ``T >= 2`` (Keras's default 200).
      num_classes: ``None`` for binary scores; ``C`` for ``[..., C]`` multi-class scores
        (one-vs-rest) or multi-label scores.
      dtype: the counts' float dtype; default float32 (float64 under x64).

    >>> state = ranking_init(5)
    >>> state.true_positives
    Array([0., 0., 0., 0., 0.], dtype=float32)
    >>> ranking_compute(state).thresholds
    Array([-1.0000e-07,  2.5000e-01,  5.0000e-01,  7.5000e-01,  1.0000e+00], dtype=float32)
    """
    if (
        isinstance(num_thresholds, bool)
        or not isinstance(num_thresholds, int | np.integer)
        or num_thresholds < 2
    ):
        raise ValueError(f"num_thresholds must be a Python int >= 2; got {num_thresholds!r}.")
    dtype = _state_dtype(dtype)
    shape: tuple[int, ...] = (int(num_thresholds),)
    if num_classes is not None:
        shape = (_check_positive_int(num_classes, "num_classes"), *shape)
    zeros = jnp.zeros(shape, dtype)
    return RankingState(zeros, zeros, zeros, zeros)


def ranking_update(
    state: RankingState,
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> RankingState:
    r"""Add a batch of scores to a ranking state.

    .. math:: \mathrm{TP}_j \mathrel{+}= \sum_i w_i\, y_i\, [s_i > t_j], \qquad
              \mathrm{FP}_j \mathrel{+}= \sum_i w_i\, (1 - y_i)\, [s_i > t_j]

    and FN, TN likewise with ``[s_i ≤ t_j]``, as Keras's ``AUC.update_state``. Scores are
    clipped to ``[0, 1]`` first (pass probabilities; the clip keeps the curve's ends at
    (0, 0) and (1, 1)). Computed as a compare with the ``[T]`` grid reduced over the batch
    axes: no sort, so batches sharded over a mesh need no gathering.

    Args:
      state: from :func:`ranking_init`.
      scores: binary state: any shape ``S``. Per-class state: ``S + (C,)``.
      labels: binary: 0/1 (or boolean) broadcastable to ``S``; soft labels in ``[0, 1]``
        count fractionally, as in Keras. Per-class state: integer class labels of shape
        ``S`` (one-vs-rest) or multi-label indicators ``S + (C,)``.
      weights, where: per element of ``S`` (for multi-label also per label entry,
        ``S + (C,)``).
      ignore_index: integer labels equal to it are left out.

    Returns:
      The new state; an included label outside ``[0, 1]`` (binary / multi-label) or
      ``[0, C)`` (multi-class) makes it NaN.

    >>> import jax.numpy as jnp
    >>> state = ranking_update(ranking_init(3), jnp.array([0.2, 0.6, 0.9]), jnp.array([0, 1, 1]))
    >>> state.true_positives, state.false_positives   # thresholds -1e-7, 0.5, 1 + 1e-7
    (Array([2., 2., 0.], dtype=float32), Array([1., 0., 0.], dtype=float32))
    """
    _check_ranking_state(state)
    _check_ignore_index(ignore_index)
    tp0 = state.true_positives
    dtype = tp0.dtype
    num_thresholds = tp0.shape[-1]
    thresholds = jnp.asarray(_keras_thresholds(num_thresholds), dtype)
    s = upcast(float_array(scores, "scores"))
    s = s.astype(jnp.promote_types(s.dtype, dtype))  # a float64 state counts in float64
    if tp0.ndim == 1:
        positive, negative, s, ok = _binary_ranking_inputs(s, labels, weights, where, ignore_index)
    else:
        positive, negative, s, ok = _class_ranking_inputs(
            s, labels, tp0.shape[0], weights, where, ignore_index
        )
    above = jnp.clip(s, 0.0, 1.0)[..., None] > thresholds
    axes = tuple(range(above.ndim - tp0.ndim))

    def count(mass: Array) -> Array:
        return jnp.sum(jnp.where(above, mass[..., None], 0), axis=axes)

    tp, fp = count(positive), count(negative)
    fn = jnp.sum(positive, axis=axes)[..., None] - tp
    tn = jnp.sum(negative, axis=axes)[..., None] - fp
    nan_if_bad = jnp.where(ok, 0.0, jnp.nan).astype(dtype)
    batch = RankingState(tp, fp, tn, fn)
    return RankingState(
        *(a + b.astype(dtype) + nan_if_bad for a, b in zip(state, batch, strict=True))
    )


def ranking_compute(
    state: RankingState,
    *,
    average: OvrAverage = "macro",
    max_fpr: float | None = None,
) -> RankingMetrics:
    r"""ROC AUC, average precision and the ROC / PR curves of a ranking state.

    .. math:: \mathrm{AUC} = \sum_j (\mathrm{fpr}_j - \mathrm{fpr}_{j+1})\,
              \frac{\mathrm{tpr}_j + \mathrm{tpr}_{j+1}}{2}, \qquad
              \mathrm{AP} = \sum_j (R_j - R_{j+1})\, P_j

    over the thresholds ``t_j`` (ascending; ``R_T = 0``): Keras's
    ``AUC(num_thresholds=T, curve="ROC", summation_method="interpolation")`` for the ROC AUC,
    and scikit-learn's step-function average precision on the grid's PR points.

    **Exactness.** All scores in one cell ``(t_j, t_{j+1}]`` of the grid are treated as tied
    (Keras's counting: positive at ``t`` when ``s > t``). When every score lies on the grid,
    i.e. is one of ``1/(T−1), 2/(T−1), …, 1`` (the values of ``thresholds[1:-1]``, and 1), no
    two different scores share a cell, and both numbers equal the exact
    :func:`jaxloss.roc_auc` / :func:`jaxloss.average_precision` of the data (ties included).
    Scores below ``1/(T−1)``, 0 included, share the lowest cell with ``1/(T−1)``, as in
    Keras. Otherwise the exact values lie within the returned bounds, computed from the state
    itself (``p_b``, ``n_b``: the positive / negative weight of cell ``b``; ``P``, ``N``: the
    totals; ``tp_b``, ``fp_b``: the weights above the cell):

    .. math:: |\mathrm{AUC} - \mathrm{AUC}_{\mathrm{exact}}| \le
              \frac{1}{2PN} \sum_b p_b\, n_b, \qquad
              |\mathrm{AP} - \mathrm{AP}_{\mathrm{exact}}| \le
              \sum_b \frac{p_b}{P}\Bigl(\frac{tp_b + p_b}{tp_b + fp_b + p_b} -
              \frac{tp_b}{tp_b + fp_b + n_b}\Bigr)

    (a pair split by no threshold counts ½ here and 0 or 1 exactly; the precision at any
    positive inside a cell lies between the two fractions). They are worst cases (every pair
    inside a cell ordered against the grid) and shrink as the grid gets finer; the actual
    difference is usually far smaller (for 400 softmax scores of 3 classes and 200
    thresholds: AUC bounds of 0.02, differences below 2e-3). The bounds are for non-negative
    weights and the full AUC (not ``max_fpr``); they count the pairs of a cell whether or not
    their scores are tied, so they stay positive on tied on-grid data whose values are exact.

    Args:
      state: a ranking state.
      average: for a per-class state: ``"macro"`` (default), ``"weighted"`` (by each class's
        positive weight), ``"micro"`` (the classes' counts pooled, i.e. every (sample, class)
        pair one binary decision) or ``None`` (per class), as
        :func:`jaxloss.multiclass_roc_auc`. Ignored for a binary state.
      max_fpr: partial AUC over ``fpr ≤ max_fpr``, McClish-standardised as
        :func:`jaxloss.roc_auc`.

    Returns:
      :class:`RankingMetrics`. AUC is NaN when one class is absent (as
      :func:`jaxloss.roc_auc`); AP is 0 without positives (as scikit-learn).

    >>> import jax.numpy as jnp
    >>> state = ranking_update(ranking_init(11), jnp.array([0.1, 0.4, 0.4, 0.8]),
    ...                        jnp.array([0, 0, 1, 1]))
    >>> result = ranking_compute(state)   # scores on the grid: exact
    >>> result.roc_auc, result.roc_auc_bound
    (Array(0.875, dtype=float32), Array(0., dtype=float32))
    """
    _check_ranking_state(state)
    _check_average(average, ("macro", "weighted", "micro", None))
    return _ranking_metrics(state, average, _check_max_fpr(max_fpr))


@functools.partial(jax.jit, static_argnames=("average", "max_fpr"))
def _ranking_metrics(
    state: RankingState, average: OvrAverage, max_fpr: float | None
) -> RankingMetrics:
    tp, fp, tn, fn = state
    num_thresholds = tp.shape[-1]
    thresholds = jnp.asarray(_keras_thresholds(num_thresholds), tp.dtype)
    if tp.ndim == 2 and average == "micro":
        tp, fp, tn, fn = (jnp.sum(a, axis=0) for a in (tp, fp, tn, fn))
    curves = _grid_curves(tp, fp, tn, fn, max_fpr)
    fpr, tpr, precision, recall, auc, ap, auc_bound, ap_bound = curves
    if tp.ndim == 2 and average in ("macro", "weighted"):
        support = tp[:, 0] + fn[:, 0]
        auc, ap, auc_bound, ap_bound = (
            _class_mean(v, support, average) for v in (auc, ap, auc_bound, ap_bound)
        )
    return RankingMetrics(auc, ap, auc_bound, ap_bound, thresholds, fpr, tpr, precision, recall)


# ---------------------------------------------------------------------------------------------
# Regression.


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=[
        "count",
        "weight",
        "squared_error",
        "absolute_error",
        "relative_error",
        "target_sum",
        "target_squared_sum",
    ],
    meta_fields=["target_shift"],
)
@dataclasses.dataclass(frozen=True)
class RegressionState:
    """Per-output sums (each ``[D]``): included count, weight ``Σw``, ``Σw e²``, ``Σw|e|``,
    ``Σw|e|/max(|t|, ε)`` for the errors ``e = p − t``, and the shifted target moments
    ``Σw (t − K)``, ``Σw (t − K)²``. ``target_shift`` (``K`` per output) is static pytree
    metadata, not a leaf: ``psum`` and :func:`merge_states` leave it alone, and states with
    different shifts refuse to merge."""

    count: Array
    weight: Array
    squared_error: Array
    absolute_error: Array
    relative_error: Array
    target_sum: Array
    target_squared_sum: Array
    target_shift: tuple[float, ...]


class RegressionMetrics(NamedTuple):
    """Result of :func:`regression_compute`: scalars, or ``[D]`` for
    ``multioutput="raw_values"``."""

    mean_squared_error: Array
    root_mean_squared_error: Array
    mean_absolute_error: Array
    mean_absolute_percentage_error: Array
    r2: Array
    adjusted_r2: Array


def regression_init(
    num_outputs: int = 1,
    *,
    target_shift: float | Sequence[float] = 0.0,
    dtype: Any = None,
) -> RegressionState:
    r"""The empty regression state, with the targets' moments taken about ``target_shift``.

    .. math:: S_0 = \sum_i w_i, \quad S_1 = \sum_i w_i (t_i - K), \quad
              S_2 = \sum_i w_i (t_i - K)^2, \qquad
              \mathrm{SS}_{\mathrm{tot}} = S_2 - S_1^2 / S_0

    **Why a shift.** R² needs ``SS_tot = Σ w (t − t̄)²``, and a state made of plain sums
    cannot hold ``t̄`` before it has seen the data. The raw form ``Σ w t² − (Σ w t)²/Σ w``
    cancels catastrophically: for targets of mean ``1e4`` and spread 1 both terms are ``1e8``
    per sample and float32 keeps 7 digits, so ``SS_tot`` is noise. The identity above is exact
    for any constant ``K``, and its rounding error is relative to ``Σ w (t − K)²`` instead of
    ``Σ w t²``: with ``K`` within a few spreads of the mean, no digits are lost. ``K`` must be
    the same in every state that is merged, so it is fixed at init (static, not data) and
    carried as pytree metadata; a typical target value (the training targets' mean, a known
    offset) is enough. The errors ``e = p − t`` need no shift.

    Args:
      num_outputs: ``D``; the last axis of the predictions when ``D > 1``.
      target_shift: ``K``: one Python float, or one per output.
      dtype: the sums' float dtype; default float32 (float64 under x64).

    >>> state = regression_init(2, target_shift=(1e4, 0.0))
    >>> state.target_shift, state.weight
    ((10000.0, 0.0), Array([0., 0.], dtype=float32))
    """
    num_outputs = _check_positive_int(num_outputs, "num_outputs")
    dtype = _state_dtype(dtype)
    shift = np.asarray(target_shift, dtype=np.float64)
    if shift.shape not in ((), (num_outputs,)) or not np.all(np.isfinite(shift)):
        raise ValueError(
            f"target_shift must be a finite float or {num_outputs} floats; got {target_shift!r}."
        )
    shift = np.broadcast_to(shift, (num_outputs,))
    zeros = jnp.zeros((num_outputs,), dtype)
    return RegressionState(
        zeros, zeros, zeros, zeros, zeros, zeros, zeros, tuple(float(k) for k in shift)
    )


def regression_update(
    state: RegressionState,
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> RegressionState:
    r"""Add a batch of predictions and targets to a regression state.

    .. math:: e_i = p_i - t_i: \quad \sum w e^2,\ \sum w |e|,\
              \sum w \frac{|e|}{\max(|t|, \epsilon)},\ \sum w (t - K),\ \sum w (t - K)^2

    Args:
      state: from :func:`regression_init`.
      predictions: float; any shape when ``D = 1`` (every element is a sample), else
        ``S + (D,)``.
      targets: broadcastable to the predictions.
      weights, where: per element, broadcastable to the predictions (per-sample weights of
        ``[N, D]`` predictions are ``[N, 1]``).

    >>> import jax.numpy as jnp
    >>> state = regression_update(regression_init(), jnp.array([2.5, 0.0, 2.0, 8.0]),
    ...                           jnp.array([3.0, -0.5, 2.0, 7.0]))
    >>> regression_compute(state).r2
    Array(0.9486081, dtype=float32)
    """
    _check_regression_state(state)
    num_outputs = state.count.shape[0]
    dtype = state.count.dtype
    p, t, mask = _regression_inputs(predictions, targets, weights, where)
    compute = jnp.promote_types(p.dtype, dtype)  # a float64 state sums in float64
    p, t = p.astype(compute), t.astype(compute)
    if num_outputs > 1 and (p.ndim == 0 or p.shape[-1] != num_outputs):
        raise ValueError(
            f"predictions has shape {tuple(p.shape)}; the state has {num_outputs} outputs, "
            "expected a trailing axis of that size."
        )
    w = _element_weights(p.shape, mask, weights, p.dtype)
    included = jnp.ones(p.shape, p.dtype) if mask is None else mask.astype(p.dtype)
    shift = jnp.asarray(state.target_shift, p.dtype)
    if num_outputs == 1:
        shift = shift[0]
    e = p - t
    centred = t - shift
    axes = tuple(range(p.ndim - 1)) if num_outputs > 1 else None

    def total(x: Array) -> Array:
        return jnp.reshape(jnp.sum(x, axis=axes), (num_outputs,)).astype(dtype)

    relative = jnp.abs(e) / jnp.maximum(jnp.abs(t), jnp.asarray(_MAPE_EPSILON, t.dtype))
    return RegressionState(
        count=state.count + total(included),
        weight=state.weight + total(w),
        squared_error=state.squared_error + total(w * e * e),
        absolute_error=state.absolute_error + total(w * jnp.abs(e)),
        relative_error=state.relative_error + total(w * relative),
        target_sum=state.target_sum + total(w * centred),
        target_squared_sum=state.target_squared_sum + total(w * centred * centred),
        target_shift=state.target_shift,
    )


def regression_compute(
    state: RegressionState,
    *,
    multioutput: MultiOutput = "uniform_average",
    num_regressors: int = 0,
) -> RegressionMetrics:
    r"""MSE, RMSE, MAE, MAPE, R² and adjusted R² of a regression state.

    .. math:: R^2 = 1 - \frac{\sum w e^2}{\mathrm{SS}_{\mathrm{tot}}}, \qquad
              \bar R^2 = 1 - (1 - R^2) \frac{n - 1}{n - k - 1}

    scikit-learn's ``mean_squared_error``, ``root_mean_squared_error``,
    ``mean_absolute_error``, ``mean_absolute_percentage_error`` and ``r2_score``
    (``force_finite=True``: constant targets give R² = 1 for a perfect prediction, else 0) of
    the accumulated data with ``sample_weight=w``; adjusted R² is torchmetrics'
    ``R2Score(adjusted=k)`` (``n`` the number of included samples; for ``k ≥ n − 1`` it falls
    back to R², as torchmetrics does with a warning). ``SS_tot`` is evaluated from the shifted
    sums (see :func:`regression_init`); a value below the sums' rounding level
    (``4 ε Σw(t − K)²``) counts as constant targets.

    Args:
      state: a regression state.
      multioutput: ``"uniform_average"`` (every metric averaged over the outputs; RMSE as the
        mean of per-output roots, as scikit-learn), ``"variance_weighted"`` (R² weighted by
        each output's ``SS_tot``; the error metrics uniformly, scikit-learn offers it for R²
        only) or ``"raw_values"`` (``[D]``).
      num_regressors: ``k`` for the adjusted R², a non-negative Python int.

    Edges: no included sample gives 0 errors and R² = 1 (a "perfect" empty prediction, as
    :func:`jaxloss.r2_score`'s constant-target rule).

    >>> import jax.numpy as jnp
    >>> state = regression_update(regression_init(), jnp.array([1.0, 2.0, 4.0]),
    ...                           jnp.array([1.0, 1.0, 1.0]))
    >>> regression_compute(state).mean_squared_error   # (0 + 1 + 9) / 3
    Array(3.3333333, dtype=float32)
    """
    _check_regression_state(state)
    allowed = ("uniform_average", "variance_weighted", "raw_values")
    if multioutput not in allowed:
        raise ValueError(f"multioutput must be one of {allowed}; got {multioutput!r}.")
    if (
        isinstance(num_regressors, bool)
        or not isinstance(num_regressors, int | np.integer)
        or num_regressors < 0
    ):
        raise ValueError(f"num_regressors must be a Python int >= 0; got {num_regressors!r}.")
    return _regression_metrics(state, multioutput, int(num_regressors))


@functools.partial(jax.jit, static_argnames=("multioutput", "num_regressors"))
def _regression_metrics(
    state: RegressionState, multioutput: MultiOutput, num_regressors: int
) -> RegressionMetrics:
    weight = state.weight
    mse = safe_divide(state.squared_error, weight)
    positive = mse > 0
    rmse = jnp.where(positive, jnp.sqrt(jnp.where(positive, mse, 1.0)), 0.0)
    mae = safe_divide(state.absolute_error, weight)
    mape = safe_divide(state.relative_error, weight)
    total = state.target_squared_sum - safe_divide(state.target_sum**2, weight)
    floor = 4.0 * jnp.finfo(total.dtype).eps * state.target_squared_sum
    total = jnp.where(total > floor, total, 0.0)
    perfect = state.squared_error == 0
    r2 = jnp.where(
        total > 0,
        1.0 - safe_divide(state.squared_error, total),
        jnp.where(perfect, 1.0, 0.0).astype(total.dtype),
    )
    count = state.count
    if multioutput != "raw_values":
        if multioutput == "variance_weighted":
            r2 = jnp.where(
                jnp.any(total > 0),
                safe_divide(jnp.sum(total * r2), jnp.sum(total)),
                jnp.where(jnp.all(perfect), 1.0, 0.0).astype(total.dtype),
            )
        else:
            r2 = jnp.mean(r2)
        mse, rmse, mae, mape, count = (jnp.mean(v) for v in (mse, rmse, mae, mape, count))
    k = float(num_regressors)
    fits = count - k - 1.0 > 0
    adjusted = jnp.where(
        fits, 1.0 - (1.0 - r2) * safe_divide(count - 1.0, jnp.where(fits, count - k - 1, 1)), r2
    )
    return RegressionMetrics(mse, rmse, mae, mape, r2, adjusted)


# ---------------------------------------------------------------------------------------------
# Calibration.


class CalibrationState(NamedTuple):
    """Per-bin sums, each ``[B]``: the weight of the elements whose confidence falls in the
    bin, the sum of their confidences and the sum of their accuracies (0/1 correctness, or
    the binary label)."""

    count: Array  # pyright: ignore[reportIncompatibleMethodOverride] (shadows tuple.count)
    confidence_sum: Array
    accuracy_sum: Array


class CalibrationMetrics(NamedTuple):
    """Result of :func:`calibration_compute`: the three calibration errors (scalars) and the
    reliability diagram, per bin (``[B]``; ``bin_edges`` is ``[B + 1]``). Empty bins have
    accuracy and confidence 0 and count 0."""

    expected_calibration_error: Array
    maximum_calibration_error: Array
    rms_calibration_error: Array
    accuracy: Array
    confidence: Array
    count: Array  # pyright: ignore[reportIncompatibleMethodOverride] (shadows tuple.count)
    bin_edges: Array


def calibration_init(num_bins: int = 15, *, dtype: Any = None) -> CalibrationState:
    r"""The empty calibration state: ``num_bins`` equal-width confidence bins on ``[0, 1]``.

    .. math:: I_1 = [0, \tfrac1B], \qquad I_b = \bigl(\tfrac{b-1}{B}, \tfrac{b}{B}\bigr]
              \quad (b = 2, \dots, B)

    the right-closed bins of Guo et al. (2017) and of ``sklearn.calibration.calibration_curve(
    strategy="uniform")`` (confidence 0 falls in the first bin). The default 15 is
    torchmetrics' ``n_bins``.

    Args:
      num_bins: ``B``, a positive Python int.
      dtype: the sums' float dtype; default float32 (float64 under x64).

    >>> calibration_init(4).count
    Array([0., 0., 0., 0.], dtype=float32)
    """
    num_bins = _check_positive_int(num_bins, "num_bins")
    dtype = _state_dtype(dtype)
    zeros = jnp.zeros((num_bins,), dtype)
    return CalibrationState(zeros, zeros, zeros)


def calibration_update(
    state: CalibrationState,
    probs: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
) -> CalibrationState:
    r"""Add a batch of probabilities to a calibration state.

    .. math:: n_b \mathrel{+}= \sum_{i:\,c_i \in I_b} w_i, \quad
              C_b \mathrel{+}= \sum_{i:\,c_i \in I_b} w_i c_i, \quad
              A_b \mathrel{+}= \sum_{i:\,c_i \in I_b} w_i a_i

    Two kinds of input, as torchmetrics' calibration errors:

    * binary: ``probs`` of any shape ``S`` (the positive class's probability) and 0/1 labels
      broadcastable to ``S``: ``c = p`` and ``a = y`` (``sklearn.calibration.calibration_curve``
      and ``BinaryCalibrationError``);
    * multi-class: ``probs`` ``S + (C,)`` and integer labels of shape ``S``: the top-1
      confidence ``c = max_k p_k`` and ``a = [argmax_k p_k = y]`` (``MulticlassCalibrationError``).

    The bin of each confidence is found by comparing with the ``B − 1`` inner edges (as
    float64 values, so an edge like 0.2 splits exactly as scikit-learn's float64 edges do)
    and summed as a one-hot: no scatter.

    Args:
      state: from :func:`calibration_init`.
      probs: probabilities (binary: any shape; multi-class: trailing class axis).
      labels: binary 0/1 labels, or integer class labels.
      weights, where, ignore_index: the contract, per element of ``S``.

    Returns:
      The new state. An included label out of range (binary: outside ``[0, 1]``) makes it NaN.

    >>> import jax.numpy as jnp
    >>> state = calibration_update(calibration_init(2), jnp.array([0.2, 0.3, 0.9]),
    ...                            jnp.array([0, 1, 1]))
    >>> state.count, state.accuracy_sum
    (Array([2., 1.], dtype=float32), Array([1., 1.], dtype=float32))
    """
    _check_calibration_state(state)
    _check_ignore_index(ignore_index)
    dtype = state.count.dtype
    num_bins = state.count.shape[0]
    p = upcast(float_array(probs, "probs"))
    p = p.astype(jnp.promote_types(p.dtype, dtype))  # a float64 state sums in float64
    y = jnp.asarray(labels)
    multiclass = (
        p.ndim >= 1
        and y.ndim == p.ndim - 1
        and (jnp.issubdtype(y.dtype, jnp.integer) or y.dtype == jnp.bool_)
    )
    if multiclass:
        shape = p.shape[:-1]
        num_classes = p.shape[-1]
        true, include, in_range = _true_classes(y, shape, num_classes, p.ndim - 1, ignore_index)
        mask = element_mask(shape, weights=weights, where=where, include=include)
        p = sanitize(p, mask)
        confidence = jnp.max(p, axis=-1)
        correct = (jnp.argmax(p, axis=-1) == true).astype(p.dtype)
    else:
        if not (jnp.issubdtype(y.dtype, jnp.number) or y.dtype == jnp.bool_):
            raise TypeError(f"labels must be a numeric or boolean array; got dtype {y.dtype}.")
        shape = p.shape
        check_broadcast(y, "labels", shape, "probs")
        y = jnp.broadcast_to(y, shape)
        include = None if ignore_index is None else y != ignore_index
        mask = element_mask(shape, weights=weights, where=where, include=include, what="probs")
        confidence = sanitize(p, mask)
        correct = sanitize(y.astype(p.dtype), mask)
        in_range = (correct >= 0) & (correct <= 1)
    ok = in_range if mask is None else in_range | ~mask
    value_check(ok, "labels out of range (binary labels must lie in [0, 1]); got another value.")
    w = jnp.where(ok, _element_weights(shape, mask, weights, p.dtype), 0)
    in_bin = _one_hot(_calibration_bin(confidence, num_bins), num_bins, p.dtype)
    axes = tuple(range(len(shape)))

    def per_bin(x: Array) -> Array:
        return jnp.sum(in_bin * (w * x)[..., None], axis=axes).astype(dtype)

    nan_if_bad = jnp.where(jnp.all(ok), 0.0, jnp.nan).astype(dtype)
    return CalibrationState(
        state.count + per_bin(jnp.ones_like(confidence)) + nan_if_bad,
        state.confidence_sum + per_bin(confidence) + nan_if_bad,
        state.accuracy_sum + per_bin(correct) + nan_if_bad,
    )


def calibration_compute(state: CalibrationState) -> CalibrationMetrics:
    r"""Expected, maximum and RMS calibration error and the reliability diagram of a state.

    .. math:: \mathrm{ECE} = \sum_b \frac{n_b}{n} |\bar a_b - \bar c_b|, \quad
              \mathrm{MCE} = \max_{b:\, n_b > 0} |\bar a_b - \bar c_b|, \quad
              \mathrm{RMSCE} = \sqrt{\sum_b \frac{n_b}{n} (\bar a_b - \bar c_b)^2}

    with ``ā_b``, ``c̄_b`` the bin's mean accuracy and confidence: torchmetrics'
    ``calibration_error`` with ``norm="l1"``, ``"max"`` and ``"l2"`` (binned as
    :func:`calibration_init`; torchmetrics puts a confidence of exactly 1.0 in a bin of its
    own and left-closes its bins, which changes values only for confidences on a bin edge).
    The diagram's ``accuracy`` / ``confidence`` of the non-empty bins are
    ``sklearn.calibration.calibration_curve``'s ``prob_true`` / ``prob_pred`` for binary
    inputs (and their weighted versions).

    Returns:
      :class:`CalibrationMetrics`; everything 0 for an empty state.

    >>> import jax.numpy as jnp
    >>> state = calibration_update(calibration_init(2), jnp.array([0.2, 0.3, 0.9]),
    ...                            jnp.array([0, 1, 1]))
    >>> result = calibration_compute(state)   # bins: |0.5 - 0.25| (2 of 3), |1 - 0.9| (1 of 3)
    >>> result.expected_calibration_error, result.maximum_calibration_error
    (Array(0.2, dtype=float32), Array(0.25, dtype=float32))
    """
    _check_calibration_state(state)
    return _calibration_metrics(state)


@jax.jit
def _calibration_metrics(state: CalibrationState) -> CalibrationMetrics:
    count = state.count
    total = jnp.sum(count)
    accuracy = safe_divide(state.accuracy_sum, count)
    confidence = safe_divide(state.confidence_sum, count)
    gap = jnp.abs(accuracy - confidence)
    ece = safe_divide(jnp.sum(jnp.abs(state.accuracy_sum - state.confidence_sum)), total)
    mce = jnp.max(jnp.where(count > 0, gap, 0.0))
    mean_square = safe_divide(jnp.sum(count * gap * gap), total)
    positive = mean_square > 0
    rms = jnp.where(positive, jnp.sqrt(jnp.where(positive, mean_square, 1.0)), 0.0)
    edges = jnp.asarray(np.linspace(0.0, 1.0, count.shape[0] + 1), count.dtype)
    return CalibrationMetrics(ece, mce, rms, accuracy, confidence, count, edges)


# ---------------------------------------------------------------------------------------------
# Helpers.


def _state_dtype(dtype: Any) -> Any:
    """The state's float dtype: the default float (float32, float64 under x64) or ``dtype``."""
    if dtype is None:
        return jnp.zeros(()).dtype
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype; got {dtype!r}.")
    return jnp.dtype(dtype)


def _state_matrix(state: ArrayLike) -> Array:
    dtype = jnp.asarray(state).dtype
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"state must be a float array (from confusion_init); got {dtype}.")
    return _confusion_array(state, "state")


def _averaged_prf(
    counts: Any, average: Average, beta: float, pos_label: int
) -> tuple[Array, Array, Array]:
    tp = counts.tp
    per_class = _prf(tp, counts.support, counts.predicted, beta)
    micro = _prf(jnp.sum(tp), jnp.sum(counts.support), jnp.sum(counts.predicted), beta)
    p, r, f = (
        _class_average(v, m, counts, average, pos_label)
        for v, m in zip(per_class, micro, strict=True)
    )
    return p, r, f


def _check_ranking_state(state: RankingState) -> None:
    if not isinstance(state, RankingState):
        raise TypeError(f"state must be a RankingState (from ranking_init); got {type(state)}.")
    shapes = {jnp.shape(a) for a in state}
    if len(shapes) != 1 or len(next(iter(shapes))) not in (1, 2):
        raise ValueError(f"RankingState leaves must share a [T] or [C, T] shape; got {shapes}.")


def _check_regression_state(state: RegressionState) -> None:
    if not isinstance(state, RegressionState):
        raise TypeError(
            f"state must be a RegressionState (from regression_init); got {type(state)}."
        )


def _check_calibration_state(state: CalibrationState) -> None:
    if not isinstance(state, CalibrationState):
        raise TypeError(
            f"state must be a CalibrationState (from calibration_init); got {type(state)}."
        )


@functools.lru_cache(maxsize=64)
def _keras_thresholds(num_thresholds: int) -> np.ndarray:
    """Keras's ``AUC`` grid: ``[-ε, 1/(T-1), …, (T-2)/(T-1), 1 + ε]`` (ascending)."""
    inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    grid = np.array([0.0 - _KERAS_EPSILON, *inner, 1.0 + _KERAS_EPSILON], np.float32)
    grid.setflags(write=False)
    return grid


def _binary_ranking_inputs(
    s: Array,
    labels: ArrayLike,
    weights: ArrayLike | None,
    where: ArrayLike | None,
    ignore_index: int | None,
) -> tuple[Array, Array, Array, Array]:
    """Positive and negative weight of each element, sanitised scores and an ok flag."""
    y = jnp.asarray(labels)
    if not (jnp.issubdtype(y.dtype, jnp.number) or y.dtype == jnp.bool_):
        raise TypeError(f"labels must be a numeric or boolean array; got dtype {y.dtype}.")
    check_broadcast(y, "labels", s.shape, "scores")
    y = jnp.broadcast_to(y, s.shape)
    include = None if ignore_index is None else y != ignore_index
    mask = element_mask(s.shape, weights=weights, where=where, include=include, what="scores")
    w = _element_weights(s.shape, mask, weights, s.dtype)
    value = sanitize(y.astype(s.dtype), mask)
    in_range = (value >= 0) & (value <= 1)
    ok = in_range if mask is None else in_range | ~mask
    value_check(ok, "binary labels must lie in [0, 1]; got another value.")
    w = jnp.where(in_range, w, 0)
    return w * value, w * (1.0 - value), sanitize(s, mask), jnp.all(ok)


def _class_ranking_inputs(
    s: Array,
    labels: ArrayLike,
    num_classes: int,
    weights: ArrayLike | None,
    where: ArrayLike | None,
    ignore_index: int | None,
) -> tuple[Array, Array, Array, Array]:
    """One-vs-rest ``[..., C]`` positive / negative weights for a per-class ranking state."""
    if s.ndim == 0 or s.shape[-1] != num_classes:
        raise ValueError(
            f"scores has shape {tuple(s.shape)}; the state has {num_classes} classes, expected "
            "a trailing class axis of that size."
        )
    y = jnp.asarray(labels)
    if y.shape == s.shape:  # multi-label indicators (or soft labels)
        if not (jnp.issubdtype(y.dtype, jnp.number) or y.dtype == jnp.bool_):
            raise TypeError(f"labels must be a numeric or boolean array; got dtype {y.dtype}.")
        include = None if ignore_index is None else y != ignore_index
        mask = _per_sample_or_element_mask(s.shape, weights, where, include)
        w = _element_weights(s.shape, mask, _per_sample_or_element(weights, s.shape), s.dtype)
        value = sanitize(y.astype(s.dtype), mask)
        in_range = (value >= 0) & (value <= 1)
        ok = in_range if mask is None else in_range | ~mask
        value_check(ok, "multi-label labels must lie in [0, 1]; got another value.")
        w = jnp.where(in_range, w, 0)
        return w * value, w * (1.0 - value), sanitize(s, mask), jnp.all(ok)
    shape = s.shape[:-1]
    if y.shape != shape:
        raise ValueError(
            f"labels has shape {tuple(y.shape)}; expected integer labels of shape "
            f"{tuple(shape)} or indicators of shape {tuple(s.shape)}."
        )
    true, include, in_range = _true_classes(y, shape, num_classes, s.ndim - 1, ignore_index)
    mask = element_mask(shape, weights=weights, where=where, include=include)
    ok = in_range if mask is None else in_range | ~mask
    value_check(ok, f"labels must lie in [0, {num_classes}) or equal ignore_index={ignore_index}")
    w = jnp.where(in_range, _element_weights(shape, mask, weights, s.dtype), 0)[..., None]
    hot = _one_hot(jnp.where(in_range, true, -1), num_classes, s.dtype)
    return w * hot, w * (1.0 - hot), sanitize(s, mask), jnp.all(ok)


def _grid_curves(
    tp: Array, fp: Array, tn: Array, fn: Array, max_fpr: float | None
) -> tuple[Array, ...]:
    """Curves, AUC, AP and their bounds from grid counts ``[..., T]`` (thresholds ascending)."""
    positives = tp[..., :1] + fn[..., :1]
    negatives = fp[..., :1] + tn[..., :1]
    tpr = tp / (tp + fn)
    fpr = fp / (fp + tn)
    precision = safe_divide(tp, tp + fp)
    recall = safe_divide(tp, tp + fn)
    # Descending thresholds: the curve from (0, 0) to (1, 1).
    auc = _roc_area(fpr[..., ::-1], tpr[..., ::-1], max_fpr)
    recall_down = recall[..., ::-1]
    zero = jnp.zeros_like(recall_down[..., :1])
    step = jnp.diff(jnp.concatenate([zero, recall_down], axis=-1), axis=-1)
    ap = jnp.sum(step * precision[..., ::-1], axis=-1)
    # Cells between consecutive thresholds, from the top: the weight above each threshold is
    # tp (fp); prepend the totals (below the lowest threshold) and append 0 (above the top).
    above_pos = jnp.concatenate([positives, tp, jnp.zeros_like(positives)], axis=-1)
    above_neg = jnp.concatenate([negatives, fp, jnp.zeros_like(negatives)], axis=-1)
    cell_pos = above_pos[..., :-1] - above_pos[..., 1:]
    cell_neg = above_neg[..., :-1] - above_neg[..., 1:]
    tp_above, fp_above = above_pos[..., 1:], above_neg[..., 1:]
    p_total, n_total = positives[..., 0], negatives[..., 0]
    auc_bound = 0.5 * safe_divide(jnp.sum(cell_pos * cell_neg, axis=-1), p_total * n_total)
    auc_bound = jnp.where((p_total > 0) & (n_total > 0), auc_bound, jnp.nan)
    high = safe_divide(tp_above + cell_pos, tp_above + fp_above + cell_pos)
    low_denominator = tp_above + fp_above + cell_neg
    low = jnp.where(low_denominator == 0, 1.0, safe_divide(tp_above, low_denominator))
    ap_bound = jnp.sum(safe_divide(cell_pos, p_total[..., None]) * (high - low), axis=-1)
    return fpr, tpr, precision, recall, auc, ap, auc_bound, jnp.maximum(ap_bound, 0.0)


def _class_mean(values: Array, support: Array, average: str) -> Array:
    if average == "macro":
        return jnp.mean(values, axis=-1)
    scored = jnp.where(support == 0, 0.0, values)
    return safe_divide(jnp.sum(support * scored), jnp.sum(support))


def _calibration_bin(confidence: Array, num_bins: int) -> Array:
    """Index of the right-closed bin ``((b-1)/B, b/B]`` (``[0, 1/B]`` first) of each confidence.

    Compares with the inner edges as float64 numbers: for float32 confidences, an edge whose
    float32 rounding lies above the float64 value is compared with ``>=`` instead of ``>``,
    which is the same test exactly.
    """
    edges64 = np.linspace(0.0, 1.0, num_bins + 1)[1:-1]
    if confidence.dtype == jnp.float64:
        above = confidence[..., None] > jnp.asarray(edges64)
    else:
        edges = edges64.astype(np.float32)
        rounded_up = jnp.asarray(edges.astype(np.float64) > edges64)
        c = confidence.astype(jnp.float32)[..., None]
        e = jnp.asarray(edges)
        above = jnp.where(rounded_up, c >= e, c > e)
    return jnp.sum(above, axis=-1, dtype=jnp.int32)
