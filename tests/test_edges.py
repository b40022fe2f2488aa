"""The edges, on every public function: one table row per name in ``jaxloss.__all__``.

Each row says how to call the function on a small batch (the first input is the one that is
scaled, masked and differentiated; every input is batch-first, so a batch can be sliced, emptied
and stacked) and which promises apply. For each row, one jitted function checks at once:

* ``jit`` and ``vmap`` (over a batch of batches) agree with the eager call, and the gradient of
  the summed output is finite;
* extreme inputs: logits of ±1e4 and ±1e30, probabilities of exactly 0 and 1, embeddings of
  norm 1e20, all-tied inputs and zero targets give no NaN (and finite values where the exact
  value is finite);
* NaN isolation: a NaN in example 0 changes example 0 only; an example excluded by ``where``
  changes nothing, even when it holds NaN inputs and an out-of-range label, and gets a zero
  gradient;

and outside ``jit``: zero-size batches (``(0, C)``, an empty image batch, ``D = 0`` features)
give finite results and gradients (a mean over nothing is 0); the dtype rule (16-bit in, float32
out; float64 kept under x64) by ``jax.eval_shape``; bad input raises ``ValueError``/``TypeError``.

A new public name without a row fails :func:`test_every_public_name_has_a_row`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss as jl

B, C, D, H, W, T, L = 3, 4, 2, 3, 3, 5, 2  # all but H, W distinct: no accidental broadcast
KEY = jax.random.key(0)
NaN = float("nan")


# ---------------------------------------------------------------------------------------------
# Inputs: each a function of (rng, batch size, feature size) -> batch-first array.


def _normal(*tail, scale=1.0):
    return lambda r, b, d: (r.normal(size=(b, *_tail(tail, d))) * scale).astype(np.float32)


def _tail(tail, d):
    return tuple(d if t == "D" else t for t in tail)


def _probs(*tail):
    def make(r, b, d):
        shape = (b, *_tail(tail, d))
        return r.dirichlet(np.ones(shape[-1]), size=shape[:-1]).astype(np.float32)

    return make


def _ints(*tail, high=C, low=0):
    return lambda r, b, d: r.integers(low, high, size=(b, *_tail(tail, d))).astype(np.int32)


def _binary(*tail):
    return lambda r, b, d: (r.random((b, *tail)) > 0.5).astype(np.float32)


def _positive(*tail):
    return lambda r, b, d: r.uniform(0.5, 2.0, size=(b, *_tail(tail, d))).astype(np.float32)


def _pm1(*tail):
    return lambda r, b, d: np.where(r.random((b, *tail)) > 0.5, 1.0, -1.0).astype(np.float32)


def _onehot(*tail):
    return lambda r, b, d: np.eye(C, dtype=np.float32)[r.integers(0, C, size=(b, *tail))]


LOGITS, LABELS, PROBS, ONEHOT = _normal(C, scale=2), _ints(), _probs(C), _onehot()
LOG_PROBS = lambda r, b, d: np.log(_probs(C)(r, b, d))  # noqa: E731
COSINES = lambda r, b, d: np.tanh(_normal(C)(r, b, d))  # noqa: E731
SCORES, BINARY, PM1 = _normal(scale=2), _binary(), _pm1()
REAL, TARGETS, POSITIVE = _normal("D"), _normal("D"), _positive("D")
FEATURES = _normal("D")
IMG, IMG_LABELS, IMG_PROBS = _normal(H, W, C, scale=2), _ints(H, W), _probs(H, W, C)
BIMG, BIMG_LABELS = _normal(H, W, scale=2), _binary(H, W)
SEQ_LOGITS = _normal(T, C)
SEQ_PAD = lambda r, b, d: np.zeros((b, T), np.float32)  # noqa: E731
SEQ_LABELS = _ints(L, low=1)
LABEL_PAD = lambda r, b, d: np.zeros((b, L), np.float32)  # noqa: E731
CENTROIDS = np.random.default_rng(1).normal(size=(C, D)).astype(np.float32)
COST = (1.0 - np.eye(C) + 0.1).astype(np.float32)


def _centroids(x):
    return CENTROIDS[:, : x.shape[-1]]  # the points' feature size (D = 0 included)


def _linear_ce(h, y, **k):
    """The fused linear + CE of hidden states ``[B, D]`` and the weight ``[D, C]`` (the
    features' D, 0 included), per token, in chunks of 2 (a padded last chunk)."""
    w = CENTROIDS[:, : h.shape[-1]].T
    return jl.linear_softmax_cross_entropy(h, w, y, reduction="none", chunk_size=2, **k)


def _vocab_parallel(x, y, **k):
    """``vocab_parallel_cross_entropy`` over 2 vocabulary shards of the logits: a named
    ``vmap`` axis stands in for the mesh axis (pmax, psum and axis_index work the same)."""
    shards = jnp.moveaxis(x.reshape(x.shape[0], 2, x.shape[-1] // 2), 1, 0)
    per_shard = jax.vmap(
        lambda xs: jl.vocab_parallel_cross_entropy(xs, y, axis_name="vocab", **k),
        axis_name="vocab",
    )(shards)
    return per_shard[0]


@dataclass(frozen=True)
class Row:
    """A public function, called as ``fn(*inputs)`` on batch-first inputs.

    kind: how the first input is pushed to the edges: ``"logits"`` (×1e4, ×1e30, finite),
      ``"probs"`` (exact one-hot 0/1), ``"features"`` (norm 1e20, and ``D = 0``),
      ``"real"`` (×1e4 finite, ×1e30 no NaN), ``"none"`` (not a float input).
    per_example: output leaves lead with the batch axis, example ``i`` depending on inputs
      ``i`` only (NaN isolation is checked).
    where: how an element is excluded: ``"rows"`` (``where=[B]``), ``"elems"`` (the input's
      shape), ``"pixels"`` (the input less its class axis), or ``None`` (no ``where``).
    dtype: the rule for 16-bit inputs: ``"f32"`` (float32 out), ``"same"`` (the input's dtype),
      or ``None`` (outputs not floating).
    """

    fn: Callable[..., Any]
    inputs: tuple[Callable, ...]
    kind: str = "logits"
    per_example: bool = True
    where: str | None = "rows"
    grad: bool = True
    dtype: str | None = "f32"
    empty: bool = True
    bad: tuple[Callable[[], Any], ...] = ()
    finite_1e30: bool = True
    finite_1e4: bool = True
    masked_finite: bool = True
    value_finite: bool = True
    undefined: str = ""  # when set: where the values may be NaN by a documented convention
    note: str = ""


@dataclass(frozen=True)
class NotAFunction:
    """A public type: what it is and which rows produce and consume it."""

    note: str


@dataclass(frozen=True)
class Custom:
    """A function whose edges need their own check (a higher-order tool)."""

    check: Callable[[], None]
    note: str
    tags: tuple[str, ...] = field(default=())


def _raises(fn, *args, **kwargs):
    return lambda: fn(*args, **kwargs)


def _cls(fn, labels=LABELS, **kw):
    """A class-axis loss of logits ``[B, C]`` and integer labels ``[B]``."""
    return Row(lambda x, y, **k: fn(x, y, **kw, **k), (LOGITS, labels))


def _two(fn, a, b, kind="logits", **row):
    return Row(fn, (a, b), kind=kind, **row)


def _region(fn, **kw):
    """A region loss of ``[B, H, W, C]`` logits and ``[B, H, W]`` labels, per image."""
    return Row(
        lambda x, y, **k: fn(x, y, reduction="none", **kw, **k),
        (IMG, IMG_LABELS),
        where="pixels",
        bad=(
            _raises(fn, jnp.zeros((1, 2, 2, 3)), jnp.zeros((1, 2, 2), int), axis=5),
            _raises(fn, jnp.zeros((1, 2, 2, 3)), jnp.zeros((1, 3, 2), int)),
        ),
    )


def _metric(fn, inputs, kind="logits", where="rows", **row):
    row.setdefault("grad", False)
    return Row(fn, inputs, kind=kind, per_example=False, where=where, **row)


def _check_checked():
    f = jl.checked(jl.softmax_cross_entropy_with_integer_labels)
    np.testing.assert_allclose(f(jnp.zeros((2, 2)), jnp.array([0, 1])), [np.log(2)] * 2, rtol=1e-6)
    assert f(jnp.zeros((0, 2)), jnp.zeros((0,), int)).shape == (0,)
    with pytest.raises(Exception, match="labels must lie in"):
        f(jnp.zeros((2, 2)), jnp.array([0, 7]))


def _check_check_grads():
    with jax.enable_x64(True):
        report = jl.check_grads(lambda x: jnp.sum(jnp.sin(x)), (jnp.arange(3.0),))
        assert report is not None
        jl.check_grads(lambda x: jnp.sum(x**2), (jnp.zeros((0,)),))  # an empty argument
    with pytest.raises((ValueError, TypeError)):
        jl.check_grads(3, (jnp.ones(2),))


def _check_make_fenchel_young_loss():
    loss = jl.make_fenchel_young_loss(jl.logsumexp)
    _run_row(Row(lambda x, y, **k: loss(x, y, **k), (LOGITS, PROBS)))
    with pytest.raises((ValueError, TypeError)):
        jl.make_fenchel_young_loss(3)


def _linear(p, x):
    return x @ p


W_PARAMS = jnp.asarray(np.random.default_rng(2).normal(size=(D, C)), jnp.float32)


def _per_example_sq(p, x):
    return jnp.sum(_linear(p, x) ** 2)


def _per_example_sq_batched(p, x):
    return jnp.sum(_linear(p, x) ** 2, axis=-1)


TABLE: dict[str, Row | NotAFunction | Custom] = {
    # --- types
    "AxisName": NotAFunction("type alias of axis_name= (checked by every row's reducer)"),
    "Reduction": NotAFunction("type alias of reduction= (the reduce row)"),
    "LossParts": NotAFunction("the result of reduction='parts' (tests/test_reduction.py)"),
    "GradCheckError": NotAFunction("raised by check_grads (the check_grads row)"),
    "GradCheckReport": NotAFunction("returned by check_grads (the check_grads row)"),
    "CalibrationMetrics": NotAFunction("returned by calibration_compute (its row)"),
    "CalibrationState": NotAFunction("calibration_init/update's state (their rows)"),
    "ConfusionMetrics": NotAFunction("returned by confusion_compute (its row)"),
    "PrecisionRecallFscore": NotAFunction("returned by precision_recall_fscore (its row)"),
    "RankingMetrics": NotAFunction("returned by ranking_compute (its row)"),
    "RankingState": NotAFunction("ranking_init/update's state (their rows)"),
    "RegressionMetrics": NotAFunction("returned by regression_compute (its row)"),
    "RegressionState": NotAFunction("regression_init/update's state (their rows)"),
    # --- activations
    "softmax": Row(
        lambda x, **k: jl.softmax(x, **k),
        (LOGITS,),
        where="elems",
        dtype="same",
        bad=(_raises(jl.softmax, jnp.ones(3), axis=3),),
    ),
    "log_softmax": Row(
        lambda x, **k: jl.log_softmax(x, **k),
        (LOGITS,),
        where="elems",
        dtype="same",
        finite_1e30=False,  # log p of a class 2e30 below the top is -2e30·… (-inf in f32)
        masked_finite=False,  # a masked class has log-probability -inf
    ),
    "logsumexp": Row(lambda x, **k: jl.logsumexp(x, **k), (LOGITS,), where="elems", dtype="same"),
    "sparsemax": Row(
        lambda x, **k: jl.sparsemax(x, **k),
        (LOGITS,),
        where="elems",
        dtype="same",
        bad=(_raises(jl.sparsemax, jnp.ones(3), axis=(0, 0)),),
    ),
    "sigmoid": Row(jl.sigmoid, (LOGITS,), where=None, dtype="same"),
    "log_sigmoid": Row(jl.log_sigmoid, (LOGITS,), where=None, dtype="same", finite_1e30=True),
    "one_hot": Row(
        lambda y: jl.one_hot(y, C),
        (LABELS,),
        kind="none",
        where=None,
        grad=False,
        dtype="same",
        bad=(
            _raises(jl.one_hot, jnp.array([1]), 3, axis="bogus"),
            _raises(jl.one_hot, jnp.array([1]), 3, axis=4),
            _raises(jl.one_hot, jnp.array([1.0]), 3),
        ),
    ),
    # --- classification
    "softmax_cross_entropy_with_integer_labels": _cls(jl.softmax_cross_entropy_with_integer_labels),
    "softmax_cross_entropy": Row(
        lambda x, y, **k: jl.softmax_cross_entropy(x, y, **k), (LOGITS, PROBS)
    ),
    "linear_softmax_cross_entropy": Row(_linear_ce, (FEATURES, LABELS), kind="features"),
    "vocab_parallel_cross_entropy": Row(_vocab_parallel, (LOGITS, LABELS)),
    "safe_softmax_cross_entropy": Row(
        lambda x, y, **k: jl.safe_softmax_cross_entropy(x, y, **k), (LOGITS, PROBS)
    ),
    "sigmoid_binary_cross_entropy": Row(
        lambda x, y, **k: jl.sigmoid_binary_cross_entropy(x, y, **k), (SCORES, BINARY)
    ),
    "poly_loss_cross_entropy": Row(
        lambda x, y, **k: jl.poly_loss_cross_entropy(x, y, **k), (LOGITS, ONEHOT)
    ),
    "smooth_labels": Row(
        lambda y: jl.smooth_labels(y, 0.1),
        (PROBS,),
        kind="probs",
        where=None,
        dtype="same",
        bad=(_raises(jl.smooth_labels, jnp.ones(3), 0.1, axis=2),),
    ),
    "binary_cross_entropy": Row(
        lambda p, y, **k: jl.binary_cross_entropy(p, y, **k),
        (_positive(), BINARY),
        kind="probs01",
    ),
    "categorical_cross_entropy": Row(
        lambda p, y, **k: jl.categorical_cross_entropy(p, y, **k), (PROBS, ONEHOT), kind="probs"
    ),
    "negative_log_likelihood": Row(
        lambda x, y, **k: jl.negative_log_likelihood(x, y, **k),
        (LOG_PROBS, LABELS),
        kind="logprobs",
    ),
    "generalized_cross_entropy": _cls(jl.generalized_cross_entropy),
    "confusion_weighted_cross_entropy": _cls(
        lambda x, y, **k: jl.confusion_weighted_cross_entropy(x, y, COST, **k)
    ),
    "expected_cost_loss": _cls(lambda x, y, **k: jl.expected_cost_loss(x, y, COST, **k)),
    # --- focal
    "sigmoid_focal_loss": Row(lambda x, y, **k: jl.sigmoid_focal_loss(x, y, **k), (SCORES, BINARY)),
    "binary_focal_loss": Row(
        lambda p, y, **k: jl.binary_focal_loss(p, y, **k), (_positive(), BINARY), kind="probs01"
    ),
    "categorical_focal_loss": Row(
        lambda p, y, **k: jl.categorical_focal_loss(p, y, **k), (PROBS, ONEHOT), kind="probs"
    ),
    "softmax_focal_loss": _cls(jl.softmax_focal_loss),
    # --- margin
    "hinge_loss": Row(lambda x, y, **k: jl.hinge_loss(x, y, **k), (SCORES, PM1)),
    "perceptron_loss": Row(lambda x, y, **k: jl.perceptron_loss(x, y, **k), (SCORES, PM1)),
    "squared_hinge_loss": Row(
        lambda x, y, **k: jl.squared_hinge_loss(x, y, **k), (SCORES, PM1), finite_1e30=False
    ),
    "binary_hinge_loss": Row(lambda x, y, **k: jl.binary_hinge_loss(x, y, **k), (SCORES, BINARY)),
    "multiclass_hinge_loss": _cls(jl.multiclass_hinge_loss),
    "multiclass_perceptron_loss": _cls(jl.multiclass_perceptron_loss),
    "multi_margin_loss": _cls(jl.multi_margin_loss),
    "multilabel_margin_loss": Row(
        lambda x, y, **k: jl.multilabel_margin_loss(x, y, **k),
        (LOGITS, _ints(C, low=-1)),
    ),
    "margin_ranking_loss": Row(
        lambda x, y, t, **k: jl.margin_ranking_loss(x, y, t, **k), (SCORES, SCORES, PM1)
    ),
    "hinge_embedding_loss": Row(
        lambda x, t, **k: jl.hinge_embedding_loss(x, t, **k), (SCORES, PM1)
    ),
    "additive_margin_softmax_loss": Row(
        lambda x, y, **k: jl.additive_margin_softmax_loss(x, y, **k),
        (COSINES, LABELS),
        kind="cosines",
    ),
    # --- sparse
    "sparsemax_loss": Row(lambda x, y, **k: jl.sparsemax_loss(x, y, **k), (SCORES, BINARY)),
    "multiclass_sparsemax_loss": _cls(jl.multiclass_sparsemax_loss),
    "make_fenchel_young_loss": Custom(
        _check_make_fenchel_young_loss, "the loss it builds (from logsumexp) runs as a row"
    ),
    # --- divergences
    "kl_divergence": Row(
        lambda x, y, **k: jl.kl_divergence(x, y, **k), (LOG_PROBS, PROBS), kind="logprobs"
    ),
    "kl_divergence_with_log_targets": Row(
        lambda x, y, **k: jl.kl_divergence_with_log_targets(x, y, **k),
        (LOG_PROBS, LOG_PROBS),
        kind="logprobs",
    ),
    "generalized_kl_divergence": Row(
        lambda x, y, **k: jl.generalized_kl_divergence(x, y, **k),
        (LOG_PROBS, PROBS),
        kind="logprobs",
    ),
    "convex_kl_divergence": Row(
        lambda x, y, **k: jl.convex_kl_divergence(x, y, **k),
        (LOG_PROBS, PROBS),
        kind="logprobs",
    ),
    # --- regression
    "squared_error": Row(
        lambda x, t, **k: jl.squared_error(x, t, **k),
        (REAL, TARGETS),
        kind="real",
        where="elems",
        finite_1e30=False,  # (1e30)² overflows float32: inf is the value
        bad=(_raises(jl.squared_error, jnp.ones(4), jnp.ones(3)),),
    ),
    "l2_loss": Row(
        lambda x, t, **k: jl.l2_loss(x, t, **k),
        (REAL, TARGETS),
        kind="real",
        where="elems",
        finite_1e30=False,  # (1e30)² overflows float32: inf is the value
    ),
    "absolute_error": Row(
        lambda x, t, **k: jl.absolute_error(x, t, **k),
        (REAL, TARGETS),
        kind="real",
        where="elems",
    ),
    "huber_loss": Row(
        lambda x, t, **k: jl.huber_loss(x, t, **k), (REAL, TARGETS), kind="real", where="elems"
    ),
    "smooth_l1_loss": Row(
        lambda x, t, **k: jl.smooth_l1_loss(x, t, **k),
        (REAL, TARGETS),
        kind="real",
        where="elems",
    ),
    "log_cosh": Row(
        lambda x, t, **k: jl.log_cosh(x, t, **k), (REAL, TARGETS), kind="real", where="elems"
    ),
    "quantile_loss": Row(
        lambda x, t, **k: jl.quantile_loss(x, t, 0.3, **k),
        (REAL, TARGETS),
        kind="real",
        where="elems",
    ),
    "absolute_percentage_error": Row(
        lambda x, t, **k: jl.absolute_percentage_error(x, t, **k),
        (REAL, POSITIVE),
        kind="real",
        where="elems",
    ),
    "squared_log_error": Row(
        lambda x, t, **k: jl.squared_log_error(x, t, **k),
        (POSITIVE, POSITIVE),
        kind="real",
        where="elems",
    ),
    "poisson_loss": Row(
        lambda x, t, **k: jl.poisson_loss(x, t, **k),
        (REAL, POSITIVE),
        kind="real",
        where="elems",
        finite_1e4=False,  # exp(1e4): the log-input Poisson loss overflows where its value does
        finite_1e30=False,
    ),
    "gaussian_nll_loss": Row(
        lambda x, t, v, **k: jl.gaussian_nll_loss(x, t, v, **k),
        (REAL, TARGETS, POSITIVE),
        kind="real",
        where="elems",
        finite_1e30=False,  # (1e30)² / var
    ),
    # --- embedding
    "cosine_similarity": Row(
        lambda x, y, **k: jl.cosine_similarity(x, y, **k),
        (FEATURES, FEATURES),
        kind="features",
    ),
    "cosine_distance": Row(
        lambda x, y, **k: jl.cosine_distance(x, y, **k), (FEATURES, FEATURES), kind="features"
    ),
    "cosine_embedding_loss": Row(
        lambda x, y, t, **k: jl.cosine_embedding_loss(x, y, t, **k),
        (FEATURES, FEATURES, PM1),
        kind="features",
    ),
    "triplet_margin_loss": Row(
        lambda a, p, n, **k: jl.triplet_margin_loss(a, p, n, **k),
        (FEATURES, FEATURES, FEATURES),
        kind="features",
        bad=(
            _raises(
                jl.triplet_margin_loss, jnp.ones((2, 3)), jnp.ones((2, 3)), jnp.ones((2, 3)), swap=1
            ),
        ),
    ),
    "ntxent": Row(
        lambda x, y, **k: jl.ntxent(x, y, reduction="none", **k),
        (FEATURES, _ints(high=2)),
        kind="features",
        per_example=False,
    ),
    # --- ranking, sequence
    "ranking_softmax_loss": Row(
        lambda x, y, **k: jl.ranking_softmax_loss(x, y, **k),
        (LOGITS, _binary(C)),
        per_example=False,
        where=None,
    ),
    "ctc_loss": Row(
        lambda x, xp, y, yp, **k: jl.ctc_loss(x, xp, y, yp, **k),
        (SEQ_LOGITS, SEQ_PAD, SEQ_LABELS, LABEL_PAD),
    ),
    "ctc_loss_with_forward_probs": Row(
        lambda x, xp, y, yp, **k: jl.ctc_loss_with_forward_probs(x, xp, y, yp, **k)[0],
        (SEQ_LOGITS, SEQ_PAD, SEQ_LABELS, LABEL_PAD),
    ),
    # --- segmentation
    "dice_loss": Row(
        lambda x, y, **k: jl.dice_loss(x, y, **k),
        (IMG, _onehot(H, W)),
        where=None,
    ),
    "binary_dice_loss": Row(
        lambda x, y, **k: jl.binary_dice_loss(x, y, **k),
        (BIMG, BIMG_LABELS),
        where=None,
    ),
    "multiclass_generalized_dice_loss": Row(
        lambda x, y, **k: jl.multiclass_generalized_dice_loss(x, y, **k),
        (IMG, _onehot(H, W)),
        where=None,
    ),
    "soft_dice_loss": _region(jl.soft_dice_loss),
    "tversky_loss": _region(jl.tversky_loss),
    "focal_tversky_loss": _region(jl.focal_tversky_loss),
    "jaccard_loss": _region(jl.jaccard_loss),
    "generalized_dice_loss": _region(jl.generalized_dice_loss),
    "lovasz_softmax_loss": _region(jl.lovasz_softmax_loss),
    "generalized_wasserstein_dice_loss": _region(
        lambda x, y, **k: jl.generalized_wasserstein_dice_loss(x, y, COST - 0.1, **k)
    ),
    "dice_ce_loss": Row(
        lambda x, y, **k: jl.dice_ce_loss(x, y, **k),
        (IMG, IMG_LABELS),
        where="pixels",
        per_example=False,
        bad=(_raises(jl.dice_ce_loss, jnp.zeros((1, 2, 2, 3)), jnp.zeros((1, 2, 2), int), axis=5),),
    ),
    "dice_bce_loss": Row(
        lambda x, y, **k: jl.dice_bce_loss(x, y, **k),
        (BIMG, BIMG_LABELS),
        where="pixels",  # the last axis is dice_bce_loss's channel axis
        per_example=False,
    ),
    "lovasz_hinge_loss": Row(
        lambda x, y, **k: jl.lovasz_hinge_loss(x, y, reduction="none", **k),
        (BIMG, BIMG_LABELS),
        where="elems",
    ),
    "soft_f1_loss": Row(
        lambda p, y, **k: jl.soft_f1_loss(p, y, **k),
        (_positive(), BINARY),
        kind="probs01",
        per_example=False,
    ),
    "soft_precision": Row(
        lambda p, y, **k: jl.soft_precision(p, y, **k),
        (_positive(), BINARY),
        kind="probs01",
        per_example=False,
    ),
    "soft_recall": Row(
        lambda p, y, **k: jl.soft_recall(p, y, **k),
        (_positive(), BINARY),
        kind="probs01",
        per_example=False,
    ),
    # --- contrastive, distillation
    "supervised_contrastive_loss": Row(
        lambda x, y, **k: jl.supervised_contrastive_loss(x, y, **k),
        (FEATURES, _ints(high=2)),
        kind="features",
        per_example=False,
    ),
    "circle_loss": Row(
        lambda x, y, **k: jl.circle_loss(x, y, **k),
        (FEATURES, _ints(high=2)),
        kind="features",
        per_example=False,
    ),
    "clip_loss": Row(
        lambda x, y, **k: jl.clip_loss(x, y, **k),
        (FEATURES, FEATURES),
        kind="features",
        per_example=False,
    ),
    "distillation_loss": Row(
        lambda x, t, **k: jl.distillation_loss(x, t, 2.0, **k), (LOGITS, LOGITS)
    ),
    # --- semi-supervised
    "consistency_loss": Row(
        lambda x, t, **k: jl.consistency_loss(x, t, **k),
        (LOGITS, LOGITS),
        per_example=False,
    ),
    "entropy_loss": Row(lambda x, **k: jl.entropy_loss(x, **k), (LOGITS,)),
    "pseudo_label_loss": Row(
        lambda x, t, **k: jl.pseudo_label_loss(t, x, threshold=0.0, **k)[0],
        (LOGITS, LOGITS),
        per_example=False,
    ),
    "vat_loss": Row(
        lambda x, **k: jl.vat_loss(_linear, W_PARAMS[: x.shape[-1]], x, KEY, **k),
        (FEATURES,),
        kind="features",
    ),
    "sharpen": Row(lambda p: jl.sharpen(p, 0.5), (PROBS,), kind="probs", where=None),
    "mixup": Row(
        lambda x, y: jl.mixup(KEY, x, y, alpha=0.4),
        (FEATURES, ONEHOT),
        kind="real",
        per_example=False,
        where=None,
        dtype=None,  # x keeps its dtype, the labels theirs,
    ),
    "label_propagation": _metric(
        lambda x, y: jl.label_propagation(x, y, num_classes=2, max_iter=20),
        (FEATURES, _ints(high=2, low=-1)),
        kind="features",
        where=None,
    ),
    "label_spreading": _metric(
        lambda x, y: jl.label_spreading(x, y, num_classes=2),
        (FEATURES, _ints(high=2, low=-1)),
        kind="features",
        where=None,
    ),
    "labeled_mask": _metric(
        jl.labeled_mask, (_ints(high=2, low=-1),), kind="none", where=None, dtype=None
    ),
    "sigmoid_rampup": Row(
        lambda x: jl.sigmoid_rampup(x, 10),
        (_positive(),),
        kind="real",
        where=None,
        finite_1e30=True,
    ),
    # --- clustering
    "kmeans_loss": Row(
        lambda x, **k: jl.kmeans_loss(x, _centroids(x), **k),
        (FEATURES,),
        kind="features",
        finite_1e30=False,  # squared distances of norm-1e20 points overflow float32
    ),
    "soft_kmeans_loss": Row(
        lambda x, **k: jl.soft_kmeans_loss(x, _centroids(x), temperature=1.0, **k),
        (FEATURES,),
        kind="features",
        finite_1e30=False,
    ),
    "kmeans_assign": Row(
        lambda x: jl.kmeans_assign(x, _centroids(x)),
        (FEATURES,),
        kind="features",
        where=None,
        grad=False,
        dtype=None,
    ),
    "soft_kmeans_assign": Row(
        lambda x: jl.soft_kmeans_assign(x, _centroids(x), temperature=1.0),
        (FEATURES,),
        kind="real",
        where=None,
    ),
    "pairwise_sq_distances": Row(
        lambda x: jl.pairwise_sq_distances(x, _centroids(x)),
        (FEATURES,),
        kind="real",
        where=None,
        finite_1e30=False,
    ),
    "lloyd_step": _metric(
        lambda x, **k: jl.lloyd_step(x, _centroids(x), **k),
        (FEATURES,),
        kind="features",
        grad=False,
    ),
    "class_centroids": _metric(
        lambda x, y, **k: jl.class_centroids(x, y, C, **k),
        (FEATURES, LABELS),
        kind="features",
    ),
    "center_loss": Row(
        lambda x, y, **k: jl.center_loss(x, y, CENTROIDS, **k),
        (FEATURES, LABELS),
        kind="real",
        finite_1e30=False,
    ),
    "center_loss_update": _metric(
        lambda x, y, **k: jl.center_loss_update(CENTROIDS, x, y, **k),
        (FEATURES, LABELS),
        kind="real",
        finite_1e30=False,
    ),
    "centroid_hinge_loss": Row(
        lambda x, y, **k: jl.centroid_hinge_loss(x, y, C, delta=1.0, **k),
        (FEATURES, LABELS),
        kind="real",
        per_example=False,
        finite_1e30=False,
    ),
    # --- metrics
    "accuracy": _metric(lambda x, y, **k: jl.accuracy(x, y, **k), (LOGITS, LABELS)),
    "top_k_accuracy": _metric(lambda x, y, **k: jl.top_k_accuracy(x, y, 2, **k), (LOGITS, LABELS)),
    "average_precision": _metric(
        lambda x, y, **k: jl.average_precision(x, y, **k), (SCORES, BINARY)
    ),
    "roc_auc": _metric(
        lambda x, y, **k: jl.roc_auc(x, y, **k),
        (SCORES, BINARY),
        undefined="an AUC without both classes is NaN (scikit-learn raises)",
    ),
    "roc_curve": _metric(
        lambda x, y, **k: jl.roc_curve(x, y, **k),
        (SCORES, BINARY),
        undefined="the first threshold is +inf and rates over an absent class are NaN "
        "(scikit-learn's)",
    ),
    "precision_recall_curve": _metric(
        lambda x, y, **k: jl.precision_recall_curve(x, y, **k),
        (SCORES, BINARY),
        undefined="the first threshold is +inf and recall without positives is NaN "
        "(scikit-learn's)",
    ),
    "multiclass_average_precision": _metric(
        lambda x, y, **k: jl.multiclass_average_precision(x, y, **k), (LOGITS, LABELS)
    ),
    "multiclass_roc_auc": _metric(
        lambda x, y, **k: jl.multiclass_roc_auc(x, y, **k),
        (LOGITS, LABELS),
        undefined="an AUC without both classes is NaN (scikit-learn raises)",
    ),
    "multilabel_average_precision": _metric(
        lambda x, y, **k: jl.multilabel_average_precision(x, y, **k), (LOGITS, _binary(C))
    ),
    "multilabel_roc_auc": _metric(
        lambda x, y, **k: jl.multilabel_roc_auc(x, y, **k),
        (LOGITS, _binary(C)),
        undefined="an AUC without both classes is NaN (scikit-learn raises)",
    ),
    "confusion_matrix": _metric(
        lambda y, p, **k: jl.confusion_matrix(y, p, C, **k), (LABELS, LABELS), kind="none"
    ),
    "cohen_kappa": _metric(
        lambda y, p, **k: jl.cohen_kappa(y, p, C, **k),
        (LABELS, LABELS),
        kind="none",
        undefined="kappa without chance disagreement is NaN (scikit-learn's)",
    ),
    "matthews_corrcoef": _metric(
        lambda y, p, **k: jl.matthews_corrcoef(y, p, C, **k), (LABELS, LABELS), kind="none"
    ),
    "dice_score": _metric(
        lambda y, p, **k: jl.dice_score(y, p, C, **k), (LABELS, LABELS), kind="none"
    ),
    "jaccard_index": _metric(
        lambda y, p, **k: jl.jaccard_index(y, p, C, **k), (LABELS, LABELS), kind="none"
    ),
    "specificity": _metric(
        lambda y, p, **k: jl.specificity(y, p, C, **k), (LABELS, LABELS), kind="none"
    ),
    "multilabel_confusion_matrix": _metric(
        lambda p, y, **k: jl.multilabel_confusion_matrix(y, p, **k),
        (_positive(C), _binary(C)),
        kind="probs01",
        where="elems",
        dtype=None,  # weighted counts
    ),
    "normalize_confusion": _metric(
        jl.normalize_confusion,
        (lambda r, b, d: r.uniform(0.0, 5.0, size=(C, C)).astype(np.float32),),
        kind="none",
        where=None,
        empty=False,
        note="a confusion matrix is [C, C], never empty",
    ),
    "precision_recall_fscore": _metric(
        jl.precision_recall_fscore,
        (lambda r, b, d: r.uniform(0.0, 5.0, size=(C, C)).astype(np.float32),),
        kind="none",
        where=None,
        empty=False,
        note="a confusion matrix is [C, C], never empty",
    ),
    "mean_squared_error": _metric(
        lambda x, t, **k: jl.mean_squared_error(x, t, **k),
        (REAL, TARGETS),
        kind="real",
        where="elems",
        finite_1e30=False,
    ),
    "root_mean_squared_error": _metric(
        lambda x, t, **k: jl.root_mean_squared_error(x, t, **k),
        (REAL, TARGETS),
        kind="real",
        where="elems",
        finite_1e30=False,
    ),
    "mean_absolute_error": _metric(
        lambda x, t, **k: jl.mean_absolute_error(x, t, **k),
        (REAL, TARGETS),
        kind="real",
        where="elems",
    ),
    "mean_absolute_percentage_error": _metric(
        lambda x, t, **k: jl.mean_absolute_percentage_error(x, t, **k),
        (REAL, POSITIVE),
        kind="real",
        where="elems",
        finite_1e30=False,  # 1e30 / machine epsilon at zero targets
    ),
    "r2_score": _metric(
        lambda x, t, **k: jl.r2_score(x, t, **k),
        (REAL, TARGETS),
        kind="real",
        where="elems",
        finite_1e30=False,
    ),
    # --- accumulated metric states
    "calibration_init": _metric(
        lambda p, y, **k: jl.calibration_compute(
            jl.calibration_update(jl.calibration_init(5), p, y, **k)
        ),
        (PROBS, LABELS),
        kind="probs",
    ),
    "calibration_update": NotAFunction("exercised by the calibration_init row"),
    "calibration_compute": NotAFunction("exercised by the calibration_init row"),
    "confusion_init": _metric(
        lambda x, y, **k: jl.confusion_compute(
            jl.confusion_update(jl.confusion_init(C), y, x, **k)
        ),
        (LOGITS, LABELS),
        undefined="kappa and MCC without chance disagreement are NaN (scikit-learn's)",
    ),
    "confusion_update": NotAFunction("exercised by the confusion_init row"),
    "confusion_compute": NotAFunction("exercised by the confusion_init row"),
    "ranking_init": _metric(
        lambda x, y, **k: jl.ranking_compute(jl.ranking_update(jl.ranking_init(8), x, y, **k)),
        (SCORES, BINARY),
        undefined="an AUC without both classes is NaN (scikit-learn raises)",
    ),
    "ranking_update": NotAFunction("exercised by the ranking_init row"),
    "ranking_compute": NotAFunction("exercised by the ranking_init row"),
    "regression_init": _metric(
        lambda x, t, **k: jl.regression_compute(
            jl.regression_update(jl.regression_init(D), x, t, **k)
        ),
        (REAL, TARGETS),
        kind="real",
        where="elems",
        finite_1e30=False,
    ),
    "regression_update": NotAFunction("exercised by the regression_init row"),
    "regression_compute": NotAFunction("exercised by the regression_init row"),
    "merge_states": _metric(
        lambda x, t, **k: jl.regression_compute(
            jl.merge_states(
                jl.regression_update(jl.regression_init(D), x, t, **k), jl.regression_init(D)
            )
        ),
        (REAL, TARGETS),
        kind="real",
        where="elems",
        finite_1e30=False,
    ),
    # --- weighting
    "class_counts": _metric(lambda y, **k: jl.class_counts(y, C, **k), (LABELS,), kind="none"),
    "class_image_counts": _metric(
        lambda y, **k: jl.class_image_counts(y, C, **k),
        (IMG_LABELS,),
        kind="none",
        where="elems",
    ),
    "class_weight_map": Row(
        lambda y: jl.class_weight_map(y, jnp.arange(1.0, C + 1)),
        (LABELS,),
        kind="none",
        where=None,
        grad=False,
    ),
    "class_weights": Row(
        lambda n: jl.class_weights(n),
        (_positive(),),
        kind="real",
        per_example=False,
        where=None,
        finite_1e30=False,
        bad=(_raises(jl.class_weights, jnp.ones(3), method="bogus"),),
    ),
    "weighted_sample": Row(
        lambda w: jl.weighted_sample(KEY, w, 4),
        (_positive(),),
        kind="real",
        per_example=False,
        where=None,
        grad=False,
        dtype=None,
        empty=False,
        note="sampling from an empty population has no result: a ValueError (bad input)",
        bad=(_raises(jl.weighted_sample, KEY, jnp.ones((0,)), 4),),
    ),
    # --- penalties
    "l1_penalty": Row(
        lambda x, **k: jl.l1_penalty({"w": x}, **k),
        (REAL,),
        kind="real",
        per_example=False,
        where="elems",
    ),
    "l2_penalty": Row(
        lambda x, **k: jl.l2_penalty({"w": x}, **k),
        (REAL,),
        kind="real",
        per_example=False,
        where="elems",
        finite_1e30=False,
    ),
    "elastic_net_penalty": Row(
        lambda x, **k: jl.elastic_net_penalty({"w": x}, **k),
        (REAL,),
        kind="real",
        per_example=False,
        where="elems",
        finite_1e30=False,
    ),
    # --- dropout
    "dropout": Row(
        lambda x: jl.dropout(KEY, x, 0.5),
        (REAL,),
        kind="real",
        where=None,
        dtype="same",
        per_example=False,
        bad=(
            _raises(jl.dropout, KEY, jnp.ones(3), 1.5),
            lambda: jax.jit(lambda r: jl.dropout(KEY, jnp.ones(2), r))(jnp.array([0.1, 0.2])),
        ),
    ),
    "dropout_mask": Row(
        lambda x: x * jl.dropout_mask(KEY, x.shape, 0.5, dtype=x.dtype),
        (REAL,),
        kind="real",
        where=None,
        dtype="same",
        per_example=False,
    ),
    "alpha_dropout": Row(
        lambda x: jl.alpha_dropout(KEY, x, 0.5),
        (REAL,),
        kind="real",
        where=None,
        dtype="same",
        per_example=False,
    ),
    # --- gradient tools
    "straight_through": Row(
        lambda x: jl.straight_through(jnp.round(x), x),
        (REAL,),
        kind="real",
        where=None,
        dtype="same",
    ),
    "straight_through_round": Row(
        jl.straight_through_round, (REAL,), kind="real", where=None, dtype="same"
    ),
    "straight_through_argmax": Row(
        jl.straight_through_argmax,
        (LOGITS,),
        where=None,
        dtype="same",
        bad=(_raises(jl.straight_through_argmax, jnp.ones((2, 3)), axis=(0, 1)),),
    ),
    "soft_argmax": Row(
        jl.soft_argmax,
        (LOGITS,),
        where=None,
        bad=(_raises(jl.soft_argmax, jnp.ones((2, 3)), axis=(0, 1)),),
    ),
    "inject_grad": Row(
        lambda x: jl.inject_grad(x, jnp.ones_like(x)),  # a scalar 0 carrying the gradient
        (REAL,),
        kind="real",
        where=None,
        per_example=False,
    ),
    "backprop_from": Row(
        lambda x: jl.backprop_from(
            lambda p, x: _linear(p, x), W_PARAMS, jnp.ones((x.shape[0], C)), x
        ),
        (FEATURES,),
        kind="real",
        per_example=False,
        where=None,
        grad=False,
        finite_1e30=False,
        dtype=None,  # gradients in the parameters' dtype,
    ),
    "per_example_grads": Row(
        lambda x: jl.per_example_grads(_per_example_sq, W_PARAMS, x),
        (FEATURES,),
        kind="real",
        where=None,
        finite_1e30=False,
        dtype=None,  # gradients in the parameters' dtype
    ),
    "per_example_value_and_grad": Row(
        lambda x: jl.per_example_value_and_grad(_per_example_sq, W_PARAMS, x),
        (FEATURES,),
        kind="real",
        where=None,
        finite_1e30=False,
        dtype=None,  # gradients in the parameters' dtype
    ),
    "weighted_grad": Row(
        lambda x: jl.weighted_grad(_per_example_sq_batched, W_PARAMS, jnp.ones(x.shape[0]), x),
        (FEATURES,),
        kind="real",
        per_example=False,
        where=None,
        finite_1e30=False,
        dtype=None,  # gradients in the parameters' dtype
    ),
    "weighted_value_and_grad": Row(
        lambda x: jl.weighted_value_and_grad(
            _per_example_sq_batched, W_PARAMS, jnp.ones(x.shape[0]), x
        ),
        (FEATURES,),
        kind="real",
        per_example=False,
        where=None,
        finite_1e30=False,
        dtype=None,  # gradients in the parameters' dtype
    ),
    "check_grads": Custom(_check_check_grads, "a NumPy finite-difference tool: eager only"),
    "checked": Custom(
        _check_checked,
        "eager here (values, an empty batch, the raise); its composition with jit/vmap/grad "
        "is the checked suite's",
    ),
    "reduce": Row(
        lambda x, **k: jl.reduce(x, reduction="none", **k),
        (REAL,),
        kind="real",
        where="elems",
        bad=(_raises(jl.reduce, jnp.ones(3), reduction="average"),),
    ),
}


# ---------------------------------------------------------------------------------------------
# The runner.


def _floats(tree):
    return [
        x
        for x in jax.tree.leaves(tree)
        if jnp.issubdtype(np.result_type(getattr(x, "dtype", x)), jnp.floating)
    ]


def _total(fn):
    """The summed float output of ``fn`` (a scalar to differentiate)."""

    def total(x, *rest, **kw):
        return sum(
            (jnp.sum(v.astype(jnp.float32)) for v in _floats(fn(x, *rest, **kw))),
            jnp.zeros((), jnp.float32),
        )

    return total


def _make(row: Row, b: int, d: int = D, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [make(rng, b, d) for make in row.inputs]


def _extremes(row: Row, x: np.ndarray) -> dict[str, tuple[np.ndarray, bool]]:
    """Edge versions of the first input: name -> (array, whether the output must be finite)."""
    signs = np.where(np.arange(x.size).reshape(x.shape) % 2 == 0, 1.0, -1.0).astype(x.dtype)
    out = {"ties": (np.zeros_like(x), True)}
    if row.kind == "logits":
        out["1e4"] = (signs * 1e4, row.finite_1e4)
        out["1e30"] = (signs * np.float32(1e30), row.finite_1e30)
    elif row.kind == "real":
        out["1e4"] = (signs * 1e4 if x.min() < 0 else np.abs(signs) * 1e4, row.finite_1e4)
        big = signs * np.float32(1e30) if x.min() < 0 else np.abs(signs) * np.float32(1e30)
        out["1e30"] = (big.astype(np.float32), row.finite_1e30)
        out["ties"] = (np.ones_like(x), True)
    elif row.kind == "features":
        norm = np.sqrt(np.sum(x * x, axis=-1, keepdims=True))
        out["norm1e20"] = ((x / np.where(norm > 0, norm, 1) * np.float32(1e20)), row.finite_1e30)
        out["ties"] = (np.ones_like(x), True)
    elif row.kind == "probs":
        onehot = np.eye(x.shape[-1], dtype=x.dtype)[np.argmax(x, axis=-1)]
        out["exact01"] = (onehot, True)
        out["ties"] = (np.full_like(x, 1.0 / x.shape[-1]), True)
    elif row.kind == "logprobs":  # logs of exact 0 and 1: -inf and 0 (an infinite KL is the value)
        onehot = np.eye(x.shape[-1], dtype=x.dtype)[np.argmax(x, axis=-1)]
        with np.errstate(divide="ignore"):
            out["exact01"] = (np.log(onehot), False)
        out["ties"] = (np.full_like(x, -np.log(x.shape[-1])), True)
    elif row.kind == "cosines":  # exactly -1, 0 and 1
        out["exact"] = (np.clip(np.round(x * 2), -1, 1), True)
    elif row.kind == "probs01":
        out["exact01"] = ((signs > 0).astype(x.dtype), False)  # -log 0 = inf is the value
        out["ties"] = (np.full_like(x, 0.5), True)
    else:  # not a float input
        out = {}
    return out


def _where_shape(row: Row, x: np.ndarray) -> tuple[int, ...]:
    return {"rows": x.shape[:1], "elems": x.shape, "pixels": x.shape[:-1]}[row.where]


def _corrupt_first(row: Row, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """NaN in the first element of the first input (the whole class row) and an out-of-range
    label in the first element of every integer input."""
    out = []
    for i, a in enumerate(inputs):
        a = a.copy()
        index = (0,) * (len(_where_shape(row, inputs[0])) if row.where else 1)
        if i == 0 and jnp.issubdtype(a.dtype, jnp.floating):
            a[index] = np.nan
        elif jnp.issubdtype(a.dtype, jnp.integer):
            a[index[: a.ndim]] = 99
        out.append(a)
    return out


def _call(row: Row):
    """``fn(*inputs, where=w)``, or ``fn(*inputs)`` for rows without ``where``."""
    if row.where is None:
        return lambda inputs, w: row.fn(*inputs)
    return lambda inputs, w: row.fn(*inputs, where=w)


def _variants(row: Row, inputs: list[np.ndarray]):
    """Every traced check's inputs, stacked on a new leading axis (one ``vmap`` runs them all).

    Returns the names, the stacked inputs, the stacked ``where`` masks and, per name, whether
    its outputs must be finite.
    """
    x0 = inputs[0]
    all_true = np.ones(_where_shape(row, x0) if row.where else (1,), bool)
    keep = all_true.copy()
    keep[(0,) * keep.ndim] = False
    names, stacks, wheres, finite = [], [], [], {}

    def add(name, ins, where=all_true, must_be_finite=True):
        names.append(name)
        stacks.append(ins)
        wheres.append(where)
        finite[name] = must_be_finite

    add("clean", inputs, must_be_finite=row.kind != "probs01")
    zeroed = [np.zeros_like(a) if np.issubdtype(a.dtype, np.floating) else a for a in inputs[1:]]
    for name, (x, ok) in _extremes(row, x0).items():
        add(f"edge {name}", [x.astype(x0.dtype), *inputs[1:]], must_be_finite=ok)
        add(f"edge {name}, zero targets", [x.astype(x0.dtype), *zeroed], must_be_finite=ok)
    if row.per_example and np.issubdtype(x0.dtype, np.floating):
        bad = [a.copy() for a in inputs]
        bad[0][0] = np.nan
        add("nan in example 0", bad, must_be_finite=False)
    if row.where is not None:
        add("masked", inputs, keep, row.masked_finite)
        add("masked, corrupted", _corrupt_first(row, inputs), keep, row.masked_finite)
    stacked = [jnp.asarray(np.stack([ins[i] for ins in stacks])) for i in range(len(inputs))]
    return names, stacked, jnp.asarray(np.stack(wheres)), finite


def _traced(row: Row):
    """One jitted function: vmapped over the variants, the values and (one forward pass for
    both) the gradients of their sums."""
    call = _call(row)

    def value_and_total(x, rest, w):
        out = call((x, *rest), w)
        return _total(lambda *_: out)(x), out

    def run(stacked, wheres):
        if not row.grad:
            return {"vmap": jax.vmap(call)(stacked, wheres)}
        grad = jax.grad(value_and_total, has_aux=True)
        g, out = jax.vmap(grad)(stacked[0], stacked[1:], wheres)
        return {"vmap": out, "grad": g}

    return jax.jit(run)


def _assert_close(a, b, what, rtol=2e-5, atol=1e-6):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(
            np.asarray(u, np.float64),
            np.asarray(v, np.float64),
            rtol=rtol,
            atol=atol,
            err_msg=what,
        )


def _assert_no_nan(tree, what, finite=True):
    for v in _floats(tree):
        v = np.asarray(v, np.float64)
        assert not np.isnan(v).any(), f"{what}: NaN in {v}"
        if finite:
            assert np.isfinite(v).all(), f"{what}: not finite: {v}"


def _run_row(row: Row) -> None:
    inputs = _make(row, B)
    names, stacked, wheres, finite = _variants(row, inputs)
    eager = row.fn(*[jnp.asarray(a) for a in inputs])
    r = _traced(row)(stacked, wheres)
    at = {name: jax.tree.map(lambda v, i=i: v[i], r["vmap"]) for i, name in enumerate(names)}
    grads = {name: r["grad"][i] for i, name in enumerate(names)} if row.grad else {}
    _assert_close(at["clean"], eager, "jit of vmap (and an all-true where) vs eager")
    for name in names:
        if name == "nan in example 0":
            continue
        if not row.undefined:
            _assert_no_nan(at[name], f"value, {name}", finite[name] and row.value_finite)
        if row.grad:
            _assert_no_nan(grads[name], f"gradient, {name}", finite[name])
    if "nan in example 0" in at:
        for u, v in zip(
            jax.tree.leaves(at["nan in example 0"]), jax.tree.leaves(eager), strict=True
        ):
            if jnp.ndim(v) and jnp.shape(v)[0] == B:
                np.testing.assert_allclose(
                    np.asarray(u, np.float64)[1:],
                    np.asarray(v, np.float64)[1:],
                    rtol=2e-5,
                    atol=1e-6,
                    err_msg="a NaN in example 0 changed another example",
                )
    if row.where is not None:
        _assert_close(
            at["masked, corrupted"],
            at["masked"],
            "an excluded element (NaN inputs, out-of-range label) changed the result",
        )
        if row.grad:
            g = np.asarray(grads["masked, corrupted"])
            index = (0,) * len(_where_shape(row, inputs[0]))
            assert np.all(g[index] == 0), f"excluded element's gradient is {g[index]}"


def _run_empty(row: Row) -> None:
    cases = [_make(row, 0)]
    if row.kind == "features":
        cases.append(_make(row, B, d=0))

    def run(inputs):
        out = row.fn(*inputs)
        return out, (jax.grad(_total(row.fn))(*inputs) if row.grad else None)

    for inputs in cases:
        out, grad = jax.jit(run)([jnp.asarray(a) for a in inputs])
        if not row.undefined:
            _assert_no_nan(out, f"empty inputs {[a.shape for a in inputs]}", row.value_finite)
        _assert_no_nan(grad, "gradient, empty inputs")


def _run_dtypes(row: Row) -> None:
    inputs = _make(row, B)
    float_input = jnp.issubdtype(inputs[0].dtype, jnp.floating)
    for dtype in (jnp.float16, jnp.bfloat16, jnp.float32):
        cast = [
            jax.ShapeDtypeStruct(a.shape, dtype if i == 0 and float_input else a.dtype)
            for i, a in enumerate(inputs)
        ]
        outs = _floats(jax.eval_shape(row.fn, *cast))
        want = {"f32": jnp.promote_types(dtype, jnp.float32), "same": dtype}.get(row.dtype)
        if want is not None and float_input:
            assert all(o.dtype == want for o in outs), (dtype, [o.dtype for o in outs])
    with jax.enable_x64(True):
        cast = [
            jax.ShapeDtypeStruct(
                a.shape, np.float64 if jnp.issubdtype(a.dtype, jnp.floating) else a.dtype
            )
            for a in inputs
        ]
        outs = _floats(jax.eval_shape(row.fn, *cast))
        if row.dtype is not None and float_input:
            assert all(o.dtype == jnp.float64 for o in outs), [o.dtype for o in outs]


def _run_bad(row: Row) -> None:
    for bad in row.bad:
        with pytest.raises((ValueError, TypeError)):
            bad()
    inputs = [jnp.asarray(a) for a in _make(row, B)]
    if len(inputs) > 1 and row.inputs[1] is not LABEL_PAD:
        mismatched = [inputs[0]] + [jnp.asarray(a) for a in _make(row, B + 1)[1:]]
        with pytest.raises((ValueError, TypeError)):  # at trace time: nothing is computed
            jax.eval_shape(row.fn, *mismatched)


ROWS = sorted(n for n, r in TABLE.items() if isinstance(r, Row))


def test_every_public_name_has_a_row():
    missing = sorted(set(jl.__all__) - set(TABLE))
    stale = sorted(set(TABLE) - set(jl.__all__))
    assert not missing, f"public names without a row in tests/test_edges.py: {missing}"
    assert not stale, f"rows for names that are not public: {stale}"
    for name, row in TABLE.items():
        if not isinstance(row, Row):
            assert row.note, f"{name}: a row that is not run must say why"


@pytest.mark.parametrize("name", ROWS)
def test_edges(name):
    row = TABLE[name]
    _run_row(row)
    if row.empty:
        _run_empty(row)
    _run_dtypes(row)
    _run_bad(row)


@pytest.mark.parametrize("name", sorted(n for n, r in TABLE.items() if isinstance(r, Custom)))
def test_custom(name):
    TABLE[name].check()


# ---------------------------------------------------------------------------------------------
# The edges issue 15 found, each against a hand-computed value.


def test_sparsemax_support_at_large_scores():
    np.testing.assert_array_equal(jl.sparsemax(jnp.array([1e8, 0.0, 0.0])), [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(jl.sparsemax(jnp.array([1e30, 1e30 - 2e23])), [1.0, 0.0])
    # [1e30, -1e30, 0], label 1: p = e_0, loss = x_0 - x_1 = 2e30; gradient p - e_1.
    x, y = jnp.array([[1e30, -1e30, 0.0]]), jnp.array([1])
    np.testing.assert_allclose(jl.multiclass_sparsemax_loss(x, y), [2e30], rtol=1e-6)
    g = jax.grad(lambda x: jl.multiclass_sparsemax_loss(x, y).sum())(x)
    np.testing.assert_array_equal(g, [[1.0, -1.0, 0.0]])


@pytest.mark.parametrize(
    "call, expected",
    [
        (lambda: jl.sparsemax(jnp.zeros((0, 3))), np.zeros((0, 3))),
        (lambda: jl.smooth_labels(jnp.zeros((2, 0)), 0.1), np.zeros((2, 0))),
        (lambda: jl.smooth_labels(jnp.zeros((0, 3)), 0.1), np.zeros((0, 3))),
        (
            lambda: jl.multiclass_sparsemax_loss(
                jnp.zeros((0, 3)), jnp.zeros((0,), int), reduction="mean"
            ),
            0.0,
        ),
        (lambda: jl.lovasz_hinge_loss(jnp.zeros((0, 4, 4)), jnp.zeros((0, 4, 4))), 0.0),
        (lambda: jl.lovasz_hinge_loss(jnp.zeros((2, 0)), jnp.zeros((2, 0))), 0.0),
        (
            lambda: jl.r2_score(
                jnp.zeros((0, 2)), jnp.zeros((0, 2)), where=jnp.zeros((0, 2), bool)
            ),
            1.0,
        ),
        (lambda: jl.class_centroids(jnp.zeros((4, 0)), jnp.zeros(4, int), 2)[0], np.zeros((2, 0))),
        (lambda: jl.class_centroids(jnp.zeros((0, 3)), jnp.zeros(0, int), 2)[1], np.zeros(2)),
        (lambda: jl.centroid_hinge_loss(jnp.zeros((0, 3)), jnp.zeros(0, int), 2, delta=1.0), 0.0),
    ],
)
def test_zero_size_inputs(call, expected):
    np.testing.assert_array_equal(call(), expected)


@pytest.mark.parametrize(
    "name",
    ["soft_dice_loss", "tversky_loss", "focal_tversky_loss", "jaccard_loss", "dice_ce_loss"],
)
def test_region_losses_exclude_an_out_of_range_label_in_an_excluded_pixel(name):
    fn = getattr(jl, name)
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(1, 2, 2, 3)), jnp.float32)
    keep = jnp.array([[[True, True], [False, True]]])
    good = fn(logits, jnp.array([[[0, 1], [2, 2]]]), where=keep)
    for kw in (dict(where=keep), dict(weights=keep.astype(jnp.float32))):
        bad = fn(logits, jnp.array([[[0, 1], [7, 2]]]), **kw)  # 7: out of range, but excluded
        np.testing.assert_allclose(bad, good, rtol=1e-6)
    assert np.isnan(fn(logits, jnp.array([[[0, 1], [7, 2]]])))  # included: NaN, as promised


def test_cosine_similarity_of_huge_and_tiny_vectors():
    for scale in (1e20, 1e-30, 1.0):
        a = jnp.array([1.0, 1.0]) * scale
        assert float(jl.cosine_similarity(a, a)) == 1.0
        np.testing.assert_allclose(
            jl.cosine_similarity(a, jnp.array([1.0, 0.0])), 2**-0.5, rtol=1e-6
        )
    g = jax.grad(lambda a: jl.cosine_similarity(a, jnp.array([1e20, 0.0])))(jnp.array([1e20, 1e20]))
    np.testing.assert_allclose(g, [0.5**1.5 * 1e-20, -(0.5**1.5) * 1e-20], rtol=1e-5)


def test_triplet_margin_loss_at_1e30():
    a, p, n = jnp.array([[1e30, 0.0]]), jnp.array([[-1e30, 0.0]]), jnp.array([[0.0, 1e30]])
    # d(a, p) = 2e30, d(a, n) = √2·1e30: the loss is (2 - √2)·1e30 + 1.
    np.testing.assert_allclose(jl.triplet_margin_loss(a, p, n), [(2 - 2**0.5) * 1e30], rtol=1e-6)
    g = jax.grad(lambda a: jl.triplet_margin_loss(a, p, n).sum())(a)
    # ∂/∂a [|a - p| - |a - n|] = (a - p)/|a - p| - (a - n)/|a - n| = (1, 0) - (1, -1)/√2
    np.testing.assert_allclose(g, [[1 - 2**-0.5, 2**-0.5]], rtol=1e-6)


def test_absolute_percentage_error_keeps_small_targets_next_to_huge_predictions():
    p, t = jnp.array([1e30]), jnp.array([1.0])
    np.testing.assert_allclose(jl.absolute_percentage_error(p, t), [1e30], rtol=1e-6)
    gp, gt = jax.grad(lambda p, t: jl.absolute_percentage_error(p, t).sum(), (0, 1))(p, t)
    # |p - t| / |t|: ∂/∂p = 1, ∂/∂t = -1/t - |p - t|/t² = -(1 + 1e30)
    np.testing.assert_allclose(gp, [1.0])
    np.testing.assert_allclose(gt, [-1e30], rtol=1e-6)


def test_class_weights_gradient_at_zero_counts():
    for counts in (jnp.zeros(3), jnp.array([0.0, 3.0, 5.0])):
        for method in ("balanced", "inverse", "effective_number"):
            g = jax.grad(lambda c, m=method: jl.class_weights(c, method=m).sum())(counts)
            assert np.isfinite(g).all(), (method, counts, g)
    # balanced, counts (0, 3, 5): w_c = 8 / (2 n_c) for present classes; Σ w = 4/3 + 4/5.
    # ∂Σw/∂n_1 = 1/(2·3) + 1/(2·5) - 8/(2·9) ; absent classes: ∂/∂n_0 = 1/6 + 1/10.
    g = jax.grad(lambda c: jl.class_weights(c).sum())(jnp.array([0.0, 3.0, 5.0]))
    np.testing.assert_allclose(
        g, [1 / 6 + 1 / 10, 1 / 6 + 1 / 10 - 8 / 18, 1 / 6 + 1 / 10 - 8 / 50], rtol=1e-5
    )


def test_reduce_gives_float32_for_16_bit_losses():
    for dtype in (jnp.bfloat16, jnp.float16):
        x = jnp.array([1.0, 2.0, 4.0], dtype)
        out = jl.reduce(x)
        assert out.dtype == jnp.float32
        np.testing.assert_allclose(out, 7 / 3, rtol=1e-6)
        assert jax.grad(lambda x: jl.reduce(x))(x).dtype == dtype


def test_errors_name_the_argument():
    with pytest.raises(TypeError, match="axis"):
        jl.one_hot(jnp.array([1]), 3, axis="bogus")
    with pytest.raises(ValueError, match="axis=5"):
        jl.dice_ce_loss(jnp.zeros((1, 4, 4, 3)), jnp.zeros((1, 4, 4), int), axis=5)
    with pytest.raises(TypeError, match="axis must be a single int"):
        jl.soft_argmax(jnp.zeros((3, 4)), axis=(0, 1))
    with pytest.raises(ValueError, match="rate must be a scalar"):
        jax.jit(lambda r: jl.dropout(KEY, jnp.ones(2), r))(jnp.array([0.1, 0.2]))
    np.testing.assert_array_equal(jl.one_hot(jnp.array([1]), 3, axis=0), [[0.0], [1.0], [0.0]])


# ---------------------------------------------------------------------------------------------
# The promises of docs/numerics.md that the table does not state one by one.


@pytest.mark.parametrize(
    "what, fn, x, expected",
    [
        (
            "huber at |d| = delta",
            lambda d: jl.huber_loss(d, delta=1.0).sum(),
            jnp.array([1.0, -1.0]),
            [1.0, -1.0],
        ),
        ("absolute error at 0", lambda d: jl.absolute_error(d).sum(), jnp.array([0.0]), [0.0]),
        (
            "sqrt at 0: the cosine of a zero vector",
            lambda a: jl.cosine_similarity(a, jnp.array([1.0, 0.0])),
            jnp.zeros(2),
            [1.0, 0.0],
        ),
        (
            "sqrt at 0: RMSE of a perfect prediction",
            lambda p: jl.root_mean_squared_error(p, jnp.ones(2)),
            jnp.ones(2),
            [0.0, 0.0],
        ),
        (
            "log of a zero probability",
            lambda p: jl.binary_cross_entropy(p, jnp.array([0.0, 1.0])).sum(),
            jnp.array([0.0, 1.0]),
            None,  # the probability is clipped at ε there: a zero, finite gradient
        ),
        (
            "kl with a zero target",
            lambda lp: jl.kl_divergence(lp, jnp.array([1.0, 0.0])),
            jnp.log(jnp.array([0.5, 0.5])),
            [-1.0, 0.0],
        ),
        (
            "dice with an empty target",
            lambda x: jl.soft_dice_loss(x, jnp.zeros((1, 2, 2), int), include_background=False),
            jnp.zeros((1, 2, 2, 2)),
            None,
        ),
        (
            "a fully masked softmax row",
            lambda x: jl.softmax(x, where=jnp.array([False, False])).sum(),
            jnp.array([1.0, 2.0]),
            [0.0, 0.0],
        ),
        (
            "a fully masked cross-entropy row",
            lambda x: jl.softmax_cross_entropy(
                x, jnp.array([0.5, 0.5]), where=jnp.array([False, False])
            ),
            jnp.array([1.0, 2.0]),
            [0.0, 0.0],
        ),
    ],
)
def test_no_nan_gradient_at_a_kink_or_boundary(what, fn, x, expected):
    g = jax.grad(fn)(x)
    assert np.isfinite(np.asarray(g)).all(), (what, g)
    if expected is not None:
        np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-7, err_msg=what)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_16_bit_inputs_give_float32_losses_and_input_dtype_gradients(dtype):
    x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 4)), dtype)
    y = jnp.array([0, 3, 1])
    for fn in (
        lambda x: jl.softmax_cross_entropy_with_integer_labels(x, y, reduction="mean"),
        lambda x: jl.multiclass_sparsemax_loss(x, y, reduction="sum"),
        lambda x: jl.squared_error(x, reduction="mean"),
        lambda x: jl.cosine_similarity(x, jnp.ones(4), reduction="mean"),
        lambda x: jl.reduce(x),
    ):
        value, g = jax.value_and_grad(fn)(x)
        assert value.dtype == jnp.float32
        assert g.dtype == dtype


@pytest.mark.parametrize("dtype", [jnp.int8, jnp.uint8, jnp.int16, jnp.int32])
def test_integer_labels_of_any_integer_dtype(dtype):
    logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    got = jl.softmax_cross_entropy_with_integer_labels(logits, jnp.array([0, 1], dtype))
    log_p = np.asarray(jax.nn.log_softmax(logits))
    want = -np.array([log_p[0, 0], log_p[1, 1]])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_mean_over_nothing_is_zero_with_zero_gradients():
    logits, labels = jnp.ones((2, 3)), jnp.array([-1, -1])
    for reduction in ("mean", "weighted_mean", "sum_by_nonzero_weights"):

        def f(x, reduction=reduction):
            return jl.softmax_cross_entropy_with_integer_labels(
                x, labels, ignore_index=-1, reduction=reduction
            )

        value, g = jax.value_and_grad(f)(logits)
        assert float(value) == 0.0
        np.testing.assert_array_equal(g, np.zeros((2, 3)))
