"""Tests for jaxloss.metric_states: states accumulated over a ``lax.scan`` of 7 unequal batches
(padding marked by ``where``), merged with ``merge_states`` and with ``psum`` over 8 host
devices, equal the metric of the concatenated data (scikit-learn; NumPy versions of the
torchmetrics / Keras definitions where scikit-learn has none)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

import jaxloss as jl

SIZES = (5, 13, 1, 9, 16, 3, 11)  # 7 unequal batches
PAD = max(SIZES)


@pytest.fixture(autouse=True)
def _quiet_sklearn():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _batched(data, fill):
    """Split a flat array into the 7 batches of SIZES, padded to PAD with ``fill``."""
    out, start = [], 0
    for n in SIZES:
        chunk = data[start : start + n]
        pad = np.full((PAD - n, *data.shape[1:]), fill, dtype=data.dtype)
        out.append(np.concatenate([chunk, pad]))
        start += n
    return np.stack(out)


def _padding_mask():
    return np.stack([np.arange(PAD) < n for n in SIZES])


def _scan(update, state, batches, **kwargs):
    """``lax.scan`` of ``update(state, *batch, where=..., weights=...)`` over the batches."""

    def step(state, xs):
        *arrays, w, m = xs
        return update(state, *arrays, weights=w, where=m, **kwargs), None

    return jax.jit(lambda s, b: jax.lax.scan(step, s, b)[0])(state, batches)


def _stream(seed, num_classes=4):
    """Concatenated data of the 7 batches plus their padded, batched form (garbage padding)."""
    rng = np.random.default_rng(seed)
    n = sum(SIZES)
    labels = rng.integers(0, num_classes, n)
    labels[rng.random(n) < 0.1] = -1  # ignore_index
    logits = rng.normal(size=(n, num_classes)).astype(np.float32)
    weights = rng.uniform(0.2, 2.0, n).astype(np.float32)
    keep = rng.random(n) < 0.85
    batched = {
        "labels": _batched(labels, 99),  # padding holds out-of-range labels ...
        "logits": _batched(logits, np.nan),  # ... and NaN scores: `where` must drop them
        "weights": _batched(weights, 1.0),
        "where": _batched(keep, True) & _padding_mask(),
    }
    return labels, logits, weights, keep, batched


# ---------------------------------------------------------------------------------------------
# confusion


def test_confusion_state_over_scan_equals_sklearn_on_concatenated_data():
    c = 4
    labels, logits, weights, keep, b = _stream(0, c)
    state = _scan(
        jl.confusion_update,
        jl.confusion_init(c),
        (b["labels"], b["logits"], b["weights"], b["where"]),
        ignore_index=-1,
    )
    inc = keep & (labels >= 0)
    y, p, w = labels[inc], logits[inc].argmax(-1), weights[inc]
    np.testing.assert_allclose(
        state, skm.confusion_matrix(y, p, labels=range(c), sample_weight=w), rtol=1e-5
    )
    compute = jax.jit(jl.confusion_compute, static_argnames=("average", "beta", "kappa_weights"))
    mcm = skm.multilabel_confusion_matrix(y, p, labels=range(c), sample_weight=w)
    tn, fp, fn, tp = (mcm[:, i, j] for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    present = (tp + fp + fn) > 0
    tnr = tn / (tn + fp)
    specificity = {  # torchmetrics' MulticlassSpecificity, by hand
        None: tnr,
        "macro": tnr[present].mean(),
        "weighted": np.sum((tp + fn) * tnr) / np.sum(tp + fn),
        "micro": tn.sum() / (tn + fp).sum(),
    }
    for average in ("macro", "weighted", "micro", None):
        got = compute(state, average=average, beta=2.0, kappa_weights="quadratic")
        labels_arg = range(c) if average is None else None
        kw = {"average": average, "sample_weight": w, "labels": labels_arg, "zero_division": 0}
        want_prf = skm.precision_recall_fscore_support(y, p, beta=2.0, **kw)[:3]
        for g, want in zip(got[1:4], want_prf, strict=True):
            np.testing.assert_allclose(g, want, rtol=1e-5, err_msg=str(average))
        np.testing.assert_allclose(got.jaccard, skm.jaccard_score(y, p, **kw), rtol=1e-5)
        np.testing.assert_allclose(got.dice, skm.f1_score(y, p, **kw), rtol=1e-5)
        np.testing.assert_allclose(got.specificity, specificity[average], rtol=1e-5)
    np.testing.assert_allclose(got.accuracy, skm.accuracy_score(y, p, sample_weight=w), rtol=1e-6)
    np.testing.assert_allclose(
        got.matthews_corrcoef, skm.matthews_corrcoef(y, p, sample_weight=w), rtol=1e-5
    )
    want_kappa = skm.cohen_kappa_score(y, p, labels=range(c), weights="quadratic", sample_weight=w)
    np.testing.assert_allclose(got.cohen_kappa, want_kappa, rtol=1e-5)
    np.testing.assert_allclose(got.support, tp + fn, rtol=1e-5)


def test_confusion_state_multilabel_and_top_k_streams():
    rng = np.random.default_rng(1)
    n, num_labels = sum(SIZES), 5
    truth = (rng.random((n, num_labels)) < 0.4).astype(np.int32)
    probs = rng.random((n, num_labels)).astype(np.float32)
    w = rng.uniform(0.2, 2.0, n).astype(np.float32)
    b = [_batched(truth, 7), _batched(probs, np.nan), _batched(w, 1.0), _padding_mask()]
    state = _scan(jl.confusion_update, jl.confusion_init(num_labels, multilabel=True), b)
    pred = (probs > 0.5).astype(np.int32)
    np.testing.assert_allclose(
        state, skm.multilabel_confusion_matrix(truth, pred, sample_weight=w), rtol=1e-5
    )
    for average in ("macro", "weighted", "micro", None):
        got = jl.confusion_compute(state, average=average)
        want = skm.precision_recall_fscore_support(truth, pred, average=average, sample_weight=w)
        np.testing.assert_allclose(got[1:4], want[:3], rtol=1e-5, err_msg=str(average))
        want_iou = skm.jaccard_score(truth, pred, average=average, sample_weight=w)
        np.testing.assert_allclose(got.jaccard, want_iou, rtol=1e-5)
    np.testing.assert_allclose(
        got.accuracy, 1 - skm.hamming_loss(truth, pred, sample_weight=w), rtol=1e-6
    )
    # torchmetrics' multi-label MCC: the MCC of the pooled 2 x 2 matrix.
    want = skm.matthews_corrcoef(truth.ravel(), pred.ravel(), sample_weight=np.repeat(w, 5))
    np.testing.assert_allclose(got.matthews_corrcoef, want, rtol=1e-5)

    # top_k over a stream: torchmetrics' rule (true class if in the top k, else the argmax).
    c = 6
    labels = rng.integers(0, c, n)
    scores = rng.integers(0, 4, (n, c)).astype(np.float32)  # many ties
    b = [_batched(labels, 0), _batched(scores, 0.0), _batched(w, 1.0), _padding_mask()]
    state = _scan(jl.confusion_update, jl.confusion_init(c), b, top_k=3)
    top3 = np.argsort(-scores, axis=1, kind="stable")[:, :3]  # ties: lower index first
    refined = np.where((top3 == labels[:, None]).any(1), labels, scores.argmax(1))
    np.testing.assert_allclose(
        state, skm.confusion_matrix(labels, refined, labels=range(c), sample_weight=w), rtol=1e-5
    )


def test_merge_states_equals_state_of_all_data_and_checks_structure():
    labels, logits, weights, keep, _ = _stream(2)

    @jax.jit
    def states(y, x, w, m):
        kw = {"weights": w, "where": m, "ignore_index": -1}
        return (
            jl.confusion_update(jl.confusion_init(4), y, x, **kw),
            jl.ranking_update(jl.ranking_init(num_classes=4), jax.nn.softmax(x), y, **kw),
            jl.calibration_update(jl.calibration_init(), jax.nn.softmax(x), y, **kw),
        )

    ones = np.ones_like(weights)
    whole = states(labels, logits, ones, keep)
    halves = [
        states(labels[i], logits[i], ones[i], keep[i]) for i in (slice(0, 30), slice(30, None))
    ]
    merged = jl.merge_states(*halves)
    for got, want in zip(jax.tree.leaves(merged), jax.tree.leaves(whole), strict=True):
        if got.ndim == 2 and got.shape[0] == got.shape[1]:  # confusion: integer counts, exact
            np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="different structure"):
        jl.merge_states(jl.regression_init(target_shift=1.0), jl.regression_init())
    with pytest.raises(ValueError, match="shapes"):
        jl.merge_states(jl.confusion_init(3), jl.confusion_init(4))


def test_confusion_state_vmaps_over_independent_streams():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, (4, 10))
    preds = rng.integers(0, 3, (4, 10))
    states = jax.jit(jax.vmap(lambda y, p: jl.confusion_update(jl.confusion_init(3), y, p)))(
        labels, preds
    )
    for s, y, p in zip(states, labels, preds, strict=True):
        np.testing.assert_array_equal(s, skm.confusion_matrix(y, p, labels=range(3)))
    kappa = jax.jit(jax.vmap(lambda s: jl.confusion_compute(s).cohen_kappa))(states)
    want = [
        skm.cohen_kappa_score(y, p, labels=range(3)) for y, p in zip(labels, preds, strict=True)
    ]
    np.testing.assert_allclose(kappa, want, rtol=1e-5, atol=1e-6)


def test_confusion_state_errors():
    with pytest.raises(ValueError, match="num_classes"):
        jl.confusion_init(0)
    with pytest.raises(ValueError, match="square"):
        jl.confusion_update(jnp.zeros((2, 3)), jnp.array([0]), jnp.array([0]))
    with pytest.raises(TypeError, match="float"):
        jl.confusion_update(jnp.zeros((2, 2), jnp.int32), jnp.array([0]), jnp.array([0]))
    with pytest.raises(ValueError, match="top_k"):
        jl.confusion_update(
            jl.confusion_init(2, multilabel=True), jnp.ones((1, 2)), jnp.ones((1, 2)), top_k=2
        )
    with pytest.raises(ValueError, match="2 labels"):
        jl.confusion_update(
            jl.confusion_init(3, multilabel=True), jnp.ones((1, 2)), jnp.ones((1, 2))
        )
    bad = jl.confusion_update(jl.confusion_init(2), jnp.array([0, 5]), jnp.array([0, 1]))
    assert np.all(np.isnan(bad))


# ---------------------------------------------------------------------------------------------
# ranking


def _keras_auc(scores, labels, weights, num_thresholds):
    """keras.metrics.AUC(num_thresholds) (ROC, interpolation), transcribed in NumPy."""
    eps = 1e-7
    inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    t = np.array([0.0 - eps, *inner, 1.0 + eps], np.float32)
    above = scores[:, None] > t[None, :]
    tp = np.sum(weights[:, None] * labels[:, None] * above, 0)
    fp = np.sum(weights[:, None] * (1 - labels[:, None]) * above, 0)
    fn = np.sum(weights * labels) - tp
    tn = np.sum(weights * (1 - labels)) - fp
    tpr, fpr = tp / (tp + fn), fp / (fp + tn)
    return np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2)


def test_ranking_state_exact_on_grid_scores_over_scan():
    num_thresholds = 21
    rng = np.random.default_rng(4)
    n = sum(SIZES)
    grid = np.array([k / (num_thresholds - 1) for k in range(num_thresholds)], np.float32)
    scores = grid[rng.integers(1, num_thresholds, n)]  # on the grid, with many ties
    labels = (rng.random(n) < 0.2 + 0.6 * scores).astype(np.int32)
    w = rng.uniform(0.2, 2.0, n).astype(np.float32)
    keep = rng.random(n) < 0.85
    b = [
        _batched(scores, np.nan),
        _batched(labels, 5),
        _batched(w, 1.0),
        _batched(keep, True) & _padding_mask(),
    ]
    state = _scan(jl.ranking_update, jl.ranking_init(num_thresholds), b)
    got = jl.ranking_compute(state)
    s, y, ww = scores[keep], labels[keep], w[keep]
    np.testing.assert_allclose(got.roc_auc, skm.roc_auc_score(y, s, sample_weight=ww), rtol=1e-5)
    np.testing.assert_allclose(
        got.average_precision, skm.average_precision_score(y, s, sample_weight=ww), rtol=1e-5
    )
    np.testing.assert_allclose(got.roc_auc, _keras_auc(s, y, ww, num_thresholds), rtol=1e-5)
    # The bounds count the tied pairs of a cell too (they cannot tell ties from near-ties).
    assert 0 < float(got.roc_auc_bound) < 0.1
    # The curves on the grid are scikit-learn's points (every distinct score is a threshold).
    fpr, tpr, _ = skm.roc_curve(y, s, sample_weight=ww, drop_intermediate=False)
    distance = np.abs(fpr[:, None] - np.asarray(got.fpr)) + np.abs(tpr[:, None] - got.tpr)
    assert distance.min(axis=1).max() < 1e-5
    # Partial AUC from the state: scikit-learn's McClish-corrected value.
    np.testing.assert_allclose(
        jl.ranking_compute(state, max_fpr=0.3).roc_auc,
        skm.roc_auc_score(y, s, sample_weight=ww, max_fpr=0.3),
        rtol=1e-5,
    )


def test_ranking_state_off_grid_stays_within_its_bounds():
    rng = np.random.default_rng(5)
    n, c = 400, 3
    logits = rng.normal(size=(n, c)) * 2
    labels = rng.integers(0, c, n)
    logits[np.arange(n), labels] += 1.0
    probs = np.asarray(jax.nn.softmax(jnp.asarray(logits, jnp.float32)))
    w = rng.uniform(0.2, 2.0, n).astype(np.float32)
    averages = ("macro", "weighted", "micro", None)

    def evaluate(num_thresholds, probs, labels, w):
        init = jl.ranking_init(num_thresholds, num_classes=c)
        state = jl.ranking_update(init, probs, labels, weights=w)
        return {str(a): jl.ranking_compute(state, average=a) for a in averages}

    evaluate = jax.jit(evaluate, static_argnums=0)
    for num_thresholds in (50, 200):
        results = evaluate(num_thresholds, probs, labels, w)
        got = results["None"]
        hot = np.eye(c)[labels]
        want_auc = skm.roc_auc_score(hot, probs, sample_weight=w, average=None)
        want_ap = skm.average_precision_score(hot, probs, sample_weight=w, average=None)
        keras = [_keras_auc(probs[:, k], hot[:, k], w, num_thresholds) for k in range(c)]
        np.testing.assert_allclose(got.roc_auc, keras, rtol=1e-5)
        assert np.all(np.abs(got.roc_auc - want_auc) <= got.roc_auc_bound + 1e-6)
        assert np.all(np.abs(got.average_precision - want_ap) <= got.average_precision_bound + 1e-6)
        assert np.all(got.roc_auc_bound < 0.1) and np.all(got.average_precision_bound < 0.3)
        # The averages of the state follow scikit-learn's one-vs-rest averages.
        for average in averages[:3]:
            avg = results[average]
            want = skm.roc_auc_score(hot, probs, sample_weight=w, average=average)
            assert abs(float(avg.roc_auc) - want) <= float(avg.roc_auc_bound) + 1e-6, average
    # With 200 thresholds the AUCs are within 2e-3 of the exact ones (bounds: 0.02).
    assert np.all(np.abs(got.roc_auc - want_auc) < 2e-3)


def test_ranking_state_multilabel_stream_and_edges():
    rng = np.random.default_rng(6)
    n, num_labels = sum(SIZES), 3
    grid = np.array([k / 10 for k in range(11)], np.float32)
    scores = grid[rng.integers(1, 11, (n, num_labels))]
    truth = (rng.random((n, num_labels)) < 0.5).astype(np.int32)
    truth[:, 2] = 0  # a label without positives: AUC NaN, AP 0
    b = [_batched(scores, np.nan), _batched(truth, 3), _padding_mask()]

    def update(state, s, y, where, weights):
        del weights
        return jl.ranking_update(state, s, y, where=where)

    state = _scan(update, jl.ranking_init(11, num_classes=num_labels), [*b[:2], b[2], b[2]])
    per_label = jl.ranking_compute(state, average=None)
    want = skm.roc_auc_score(truth, scores, average=None)
    np.testing.assert_allclose(per_label.roc_auc, want, rtol=1e-5, equal_nan=True)
    np.testing.assert_allclose(
        per_label.average_precision,
        skm.average_precision_score(truth, scores, average=None),
        rtol=1e-5,
    )
    assert np.isnan(jl.ranking_compute(state).roc_auc)  # macro, as scikit-learn
    for average in ("weighted", "micro"):
        np.testing.assert_allclose(
            jl.ranking_compute(state, average=average).roc_auc,
            skm.roc_auc_score(truth, scores, average=average),
            rtol=1e-5,
        )
    with pytest.raises(ValueError, match="num_thresholds"):
        jl.ranking_init(1)
    with pytest.raises(ValueError, match="trailing class axis"):
        jl.ranking_update(jl.ranking_init(num_classes=3), jnp.ones((4, 2)), jnp.zeros(4, int))
    bad = jl.ranking_update(jl.ranking_init(5), jnp.array([0.5, 0.2]), jnp.array([1, 2]))
    assert np.all(np.isnan(bad.true_positives))


# ---------------------------------------------------------------------------------------------
# regression


def test_regression_state_over_scan_equals_sklearn_with_large_means():
    rng = np.random.default_rng(7)
    n = sum(SIZES)
    means, spreads = np.array([0.0, 1e4, -50.0]), np.array([1.0, 1.0, 10.0])
    t = (means + spreads * rng.normal(size=(n, 3))).astype(np.float32)
    p = (t + 0.3 * spreads * rng.normal(size=(n, 3))).astype(np.float32)
    w = rng.uniform(0.2, 2.0, n).astype(np.float32)
    keep = rng.random(n) < 0.85
    b = [
        _batched(p, np.nan),
        _batched(t, np.nan),
        _batched(w[:, None], 1.0),
        (_batched(keep, True) & _padding_mask())[..., None],
    ]
    # Shifts near, not at, the means: mean 1e4 with spread 1 keeps its R² in float32.
    init = jl.regression_init(3, target_shift=(0.5, 10003.0, -48.0))
    state = _scan(jl.regression_update, init, b)
    tt, pp, ww = t[keep].astype(np.float64), p[keep].astype(np.float64), w[keep]
    for multioutput in ("raw_values", "uniform_average", "variance_weighted"):
        got = jl.regression_compute(state, multioutput=multioutput, num_regressors=4)
        want_r2 = skm.r2_score(tt, pp, sample_weight=ww, multioutput=multioutput)
        np.testing.assert_allclose(got.r2, want_r2, rtol=2e-4, err_msg=multioutput)
        n_obs = keep.sum()
        np.testing.assert_allclose(
            got.adjusted_r2, 1 - (1 - want_r2) * (n_obs - 1) / (n_obs - 4 - 1), rtol=2e-4
        )
        if multioutput == "variance_weighted":
            continue
        for name, ref in (
            ("mean_squared_error", skm.mean_squared_error),
            ("root_mean_squared_error", skm.root_mean_squared_error),
            ("mean_absolute_error", skm.mean_absolute_error),
            ("mean_absolute_percentage_error", skm.mean_absolute_percentage_error),
        ):
            want = ref(tt, pp, sample_weight=ww, multioutput=multioutput)
            np.testing.assert_allclose(getattr(got, name), want, rtol=2e-4, err_msg=name)
    # Without a shift, the same float32 sums of t² lose the output of mean 1e4 entirely.
    naive = _scan(jl.regression_update, jl.regression_init(3), b)
    raw = jl.regression_compute(naive, multioutput="raw_values").r2
    want_raw = skm.r2_score(tt, pp, sample_weight=ww, multioutput="raw_values")
    assert abs(float(raw[1]) - want_raw[1]) > 0.05
    np.testing.assert_allclose(np.asarray(raw)[[0, 2]], want_raw[[0, 2]], rtol=2e-4)


def test_states_follow_x64_and_regression_is_exact_in_float64():
    from helpers import float64

    rng = np.random.default_rng(11)
    t = 1e4 + rng.normal(size=200)
    p = t + 0.3 * rng.normal(size=200)
    with float64():
        for state in (
            jl.confusion_init(2),
            jl.ranking_init(),
            jl.regression_init(),
            jl.calibration_init(),
        ):
            assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(state))
        state = jax.jit(jl.regression_update)(jl.regression_init(), p, t)  # shift 0
        np.testing.assert_allclose(jl.regression_compute(state).r2, skm.r2_score(t, p), rtol=1e-6)
    assert jl.confusion_init(2, dtype=jnp.bfloat16).dtype == jnp.bfloat16
    with pytest.raises(TypeError, match="floating"):
        jl.calibration_init(dtype=jnp.int32)


def test_regression_state_edges_and_errors():
    state = jl.regression_update(jl.regression_init(), jnp.full(4, 2.0), jnp.full(4, 2.0))
    out = jl.regression_compute(state)
    assert float(out.r2) == 1.0 and float(out.mean_squared_error) == 0.0
    state = jl.regression_update(jl.regression_init(), jnp.full(4, 2.5), jnp.full(4, 2.0))
    assert float(jl.regression_compute(state).r2) == 0.0  # constant targets, imperfect
    empty = jl.regression_compute(jl.regression_init())
    assert all(np.isfinite(v) for v in empty)
    # num_regressors >= n - 1 falls back to R², as torchmetrics.
    state = jl.regression_update(
        jl.regression_init(), jnp.array([1.0, 2.0, 2.5]), jnp.array([1.0, 2.0, 3.0])
    )
    out = jl.regression_compute(state, num_regressors=2)
    assert float(out.adjusted_r2) == float(out.r2)
    with pytest.raises(ValueError, match="target_shift"):
        jl.regression_init(2, target_shift=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="trailing axis"):
        jl.regression_update(jl.regression_init(2), jnp.ones((4, 3)), jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="multioutput"):
        jl.regression_compute(state, multioutput="mean")
    with pytest.raises(TypeError, match="RegressionState"):
        jl.regression_compute(jl.confusion_init(2))


# ---------------------------------------------------------------------------------------------
# calibration


def _calibration_reference(conf, acc, w, num_bins):
    """Right-closed equal-width bins as sklearn's calibration_curve; torchmetrics' formulas."""
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    bins = np.searchsorted(edges[1:-1], conf)
    count = np.bincount(bins, weights=w, minlength=num_bins)
    acc_bin = np.bincount(bins, weights=w * acc, minlength=num_bins) / np.maximum(count, 1e-30)
    conf_bin = np.bincount(bins, weights=w * conf, minlength=num_bins) / np.maximum(count, 1e-30)
    prop = count / count.sum()
    gap = np.abs(acc_bin - conf_bin)
    return {
        "ece": np.sum(prop * gap),
        "mce": gap[count > 0].max(),
        "rms": np.sqrt(np.sum(prop * gap**2)),
        "count": count,
    }


def test_calibration_state_over_scan_multiclass_and_binary():
    c = 5
    labels, logits, weights, keep, b = _stream(8, c)
    probs_b = np.asarray(jax.nn.softmax(jnp.asarray(b["logits"]), axis=-1))
    state = _scan(
        jl.calibration_update,
        jl.calibration_init(),
        (probs_b, b["labels"], b["weights"], b["where"]),
        ignore_index=-1,
    )
    got = jl.calibration_compute(state)
    inc = keep & (labels >= 0)
    probs = np.asarray(jax.nn.softmax(jnp.asarray(logits), axis=-1))[inc].astype(np.float64)
    conf, acc = probs.max(1), (probs.argmax(1) == labels[inc]).astype(float)
    want = _calibration_reference(conf, acc, weights[inc], 15)
    np.testing.assert_allclose(got.expected_calibration_error, want["ece"], rtol=1e-5)
    np.testing.assert_allclose(got.maximum_calibration_error, want["mce"], rtol=1e-5)
    np.testing.assert_allclose(got.rms_calibration_error, want["rms"], rtol=1e-5)
    np.testing.assert_allclose(got.count, want["count"], rtol=1e-5)

    # Binary, unweighted: the diagram is scikit-learn's calibration_curve; values on bin edges
    # (float32 0.2, 0.4, ... and 0, 1) fall in the bins scikit-learn's float64 edges give.
    rng = np.random.default_rng(9)
    n = sum(SIZES)
    p = rng.random(n).astype(np.float32)
    p[:12] = np.array([0, 0.2, 0.4, 0.6, 0.8, 1, 0.1, 0.3, 0.5, 0.7, 0.9, 0.2], np.float32)
    y = (rng.random(n) < p).astype(np.int32)
    bb = [_batched(p, np.nan), _batched(y, 9), _batched(np.ones(n, np.float32), 1.0)]
    state = _scan(jl.calibration_update, jl.calibration_init(5), [*bb, _padding_mask()])
    got = jl.calibration_compute(state)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=5)
    nonempty = np.asarray(got.count) > 0
    np.testing.assert_allclose(got.accuracy[nonempty], prob_true, rtol=1e-5)
    np.testing.assert_allclose(got.confidence[nonempty], prob_pred, rtol=1e-5)
    want = _calibration_reference(p.astype(np.float64), y, np.ones(n), 5)
    np.testing.assert_allclose(got.expected_calibration_error, want["ece"], rtol=1e-5)
    np.testing.assert_allclose(got.bin_edges, np.linspace(0, 1, 6), rtol=1e-6)


def test_calibration_state_edges_and_errors():
    empty = jl.calibration_compute(jl.calibration_init())
    assert float(empty.expected_calibration_error) == 0.0
    bad = jl.calibration_update(jl.calibration_init(), jnp.array([0.5]), jnp.array([2]))
    assert np.isnan(bad.count).all()
    with pytest.raises(ValueError, match="num_bins"):
        jl.calibration_init(0)
    with pytest.raises(TypeError, match="CalibrationState"):
        jl.calibration_update(jl.ranking_init(), jnp.array([0.5]), jnp.array([1]))


# ---------------------------------------------------------------------------------------------
# 8 host devices: explicit-axes sharding, and psum of states inside shard_map.

_SHARDED = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P
    import jaxloss as jl

    assert jax.device_count() == 8
    rng = np.random.default_rng(0)
    n, c = 64, 8
    y = rng.integers(0, c, n); y[::7] = -1
    x = rng.integers(0, 3, (n, c)).astype(np.float32)  # ties
    w = rng.uniform(0.5, 2, n).astype(np.float32)
    m = rng.random(n) < 0.8
    q = x[:, :2].copy()
    t = (q + rng.normal(size=(n, 2))).astype(np.float32)
    prob = np.asarray(jax.nn.softmax(jnp.asarray(x)))
    kw = dict(weights=w, where=m, ignore_index=-1)

    def close(a, b):
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            u, v = np.asarray(u), np.asarray(v)
            tol = 1e-5 * max(1.0, float(np.nanmax(np.abs(v))))
            assert np.allclose(u, v, rtol=1e-5, atol=tol, equal_nan=True), (u, v)

    def fns(y, x, w, m, q, t, prob):
        kw = dict(weights=w, where=m, ignore_index=-1)
        return {
            "confusion_matrix": jl.confusion_matrix(y, x, c, top_k=2, **kw),
            "top_k_accuracy": jl.top_k_accuracy(x, y, 3, **kw),
            "confusion_update": jl.confusion_update(jl.confusion_init(c), y, x, **kw),
            "jaccard_index": jl.jaccard_index(y, x, c, **kw),
            "ranking_update": jl.ranking_update(jl.ranking_init(32, num_classes=c), prob, y, **kw),
            "calibration_update": jl.calibration_update(jl.calibration_init(), prob, y, **kw),
            "regression_update": jl.regression_update(
                jl.regression_init(2), q, t, weights=w[:, None], where=m[:, None]
            ),
        }

    one = jax.jit(fns)(y, x, w, m, q, t, prob)

    # Explicit axes (the default of jax.make_mesh here): batch sharded over 8 devices, and a
    # 2 x 4 mesh that also shards the class axis.
    for shape, names, spec in (((8,), ("data",), P("data", None)),
                               ((2, 4), ("data", "model"), P("data", "model"))):
        mesh = jax.make_mesh(shape, names)
        assert all(a == jax.sharding.AxisType.Explicit for a in mesh.axis_types), mesh
        with jax.set_mesh(mesh):
            rows = NamedSharding(mesh, P("data"))
            xs = jax.device_put(x, NamedSharding(mesh, spec))
            ys, ws, ms = (jax.sharding.reshard(jnp.asarray(a), P("data")) for a in (y, w, m))
            qs, ts = jax.device_put(q, rows), jax.device_put(t, rows)
            ps = jax.device_put(prob, NamedSharding(mesh, spec))
            close(jax.jit(fns)(ys, xs, ws, ms, qs, ts, ps), one)

    # psum of states inside shard_map equals the state of all the data.
    mesh = jax.make_mesh((8,), ("data",))

    def local(y, x, w, m, q, t, prob):
        kw = dict(weights=w, where=m, ignore_index=-1)
        states = (
            jl.confusion_update(jl.confusion_init(c), y, x, **kw),
            jl.ranking_update(jl.ranking_init(32, num_classes=c), prob, y, **kw),
            jl.regression_update(jl.regression_init(2), q, t,
                                 weights=w[:, None], where=m[:, None]),
            jl.calibration_update(jl.calibration_init(), prob, y, **kw),
        )
        return jax.lax.psum(states, "data")

    with jax.set_mesh(mesh):
        rows = NamedSharding(mesh, P("data"))
        shards = [jax.device_put(a, rows) for a in (y, x, w, m, q, t, prob)]
        merged = jax.jit(jax.shard_map(local, in_specs=P("data"), out_specs=P()))(*shards)
    alone = tuple(one[k] for k in ("confusion_update", "ranking_update", "regression_update",
                                    "calibration_update"))
    close(merged, alone)

    @jax.jit
    def compute(states):
        return (jl.confusion_compute(states[0]), jl.ranking_compute(states[1]),
                jl.regression_compute(states[2]), jl.calibration_compute(states[3]))

    close(compute(merged), compute(alone))
    print("sharded ok")
    """
)


def test_states_and_counts_on_8_devices_sharded_and_merged_by_psum():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    env.pop("JAX_PLATFORMS", None)
    result = subprocess.run(
        [sys.executable, "-c", _SHARDED],
        env={**env, "JAX_PLATFORMS": "cpu"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sharded ok" in result.stdout


def test_computes_are_differentiable_and_return_named_results():
    """Each compute is smooth in the accumulated sums (and R² in the predictions); the results
    are the documented NamedTuples."""
    from helpers import float64, numeric_grad

    rng = np.random.default_rng(10)
    with float64():
        cm0 = rng.uniform(0.5, 5.0, (3, 3))

        def scores(cm):
            result = jl.confusion_compute(cm, beta=2.0, kappa_weights="quadratic")
            return result.fscore + result.cohen_kappa + result.matthews_corrcoef

        scores = jax.jit(scores)
        np.testing.assert_allclose(
            jax.jit(jax.grad(scores))(cm0), numeric_grad(scores, cm0), rtol=1e-5, atol=1e-9
        )
        t = rng.normal(size=9)
        p0 = t + 0.5 * rng.normal(size=9)
        init = jl.regression_init(dtype=jnp.float64)
        r2 = jax.jit(lambda p: jl.regression_compute(jl.regression_update(init, p, t)).r2)
        np.testing.assert_allclose(
            jax.jit(jax.grad(r2))(p0), numeric_grad(r2, p0), rtol=1e-5, atol=1e-9
        )
        state = jl.ranking_update(
            jl.ranking_init(11, dtype=jnp.float64), rng.random(20), rng.integers(0, 2, 20)
        )
        tp0 = np.asarray(state.true_positives)
        auc = jax.jit(lambda tp: jl.ranking_compute(state._replace(true_positives=tp)).roc_auc)
        np.testing.assert_allclose(
            jax.jit(jax.grad(auc))(tp0), numeric_grad(auc, tp0), rtol=1e-4, atol=1e-8
        )
    results = (
        jl.confusion_compute(jl.confusion_init(2)),
        jl.ranking_compute(jl.ranking_init(5)),
        jl.regression_compute(jl.regression_init()),
        jl.calibration_compute(jl.calibration_init()),
    )
    kinds = (jl.ConfusionMetrics, jl.RankingMetrics, jl.RegressionMetrics, jl.CalibrationMetrics)
    for result, kind in zip(results, kinds, strict=True):
        assert isinstance(result, kind) and result._fields == kind._fields
    assert isinstance(jl.ranking_init(), jl.RankingState)
    assert isinstance(jl.regression_init(), jl.RegressionState)
    assert isinstance(jl.calibration_init(), jl.CalibrationState)
