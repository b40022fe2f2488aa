"""Tests for jaxloss.metrics: agreement with scikit-learn on many random (masked, weighted,
tied) inputs, each metric jitted once per shape and vmapped over a stack of cases."""

from __future__ import annotations

import warnings

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from sklearn import metrics as skm

import jaxloss as jl

from helpers import float64, numeric_grad

B = 80  # random cases per comparison, one vmapped call each


@pytest.fixture(autouse=True)
def _quiet_sklearn():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _cases(seed, n=16, c=4, ties=False, cases=B):
    """A stack of classification cases: logits, labels (-1 = unlabeled), weights, where."""
    rng = np.random.default_rng(seed)
    if ties:
        logits = rng.integers(0, 3, size=(cases, n, c)).astype(np.float32)
    else:
        logits = rng.normal(size=(cases, n, c)).astype(np.float32)
    labels = rng.integers(0, c, size=(cases, n))
    labels = np.where(rng.random((cases, n)) < 0.15, -1, labels)
    weights = rng.uniform(0.1, 2.0, size=(cases, n)).astype(np.float32)
    where = rng.random((cases, n)) < 0.8
    return logits, labels, weights, where


def _one_hot_or_zero(labels, c):
    """One-hot rows; label -1 becomes an all-zero (unlabeled) row."""
    return np.where(labels[..., None] >= 0, np.eye(c)[np.clip(labels, 0, None)], 0.0).astype(
        np.float32
    )


# ---------------------------------------------------------------------------------------------
# accuracy / top-k


def test_accuracy_matches_sklearn_masked_weighted_and_one_hot():
    logits, labels, weights, where = _cases(0)
    pred = logits.argmax(-1)
    f_int = jax.jit(
        jax.vmap(lambda x, y, w, m: jl.accuracy(x, y, weights=w, where=m, ignore_index=-1))
    )
    f_hot = jax.jit(jax.vmap(lambda x, y, w, m: jl.accuracy(x, y, weights=w, where=m)))
    f_lab = jax.jit(jax.vmap(lambda p, y, m: jl.accuracy(p, y, where=m, ignore_index=-1)))
    got_int = np.asarray(f_int(logits, labels, weights, where))
    got_hot = np.asarray(f_hot(logits, _one_hot_or_zero(labels, 4), weights, where))
    got_lab = np.asarray(f_lab(pred, labels, where))
    for b in range(B):
        keep = where[b] & (labels[b] >= 0)
        want_w = skm.accuracy_score(labels[b][keep], pred[b][keep], sample_weight=weights[b][keep])
        want = skm.accuracy_score(labels[b][keep], pred[b][keep])
        np.testing.assert_allclose(got_int[b], want_w, rtol=1e-6)
        np.testing.assert_allclose(got_hot[b], want_w, rtol=1e-6)
        np.testing.assert_allclose(got_lab[b], want, rtol=1e-6)


def test_accuracy_unmasked_class_axis_and_edges():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 7, 5)).astype(np.float32)  # class axis 1
    labels = rng.integers(0, 7, size=(3, 5))
    want = skm.accuracy_score(labels.ravel(), logits.argmax(1).ravel())
    np.testing.assert_allclose(jl.accuracy(logits, labels, axis=1), want, rtol=1e-6)
    # Nothing included: 0.0, not NaN.
    assert float(jl.accuracy(logits, labels, axis=1, where=jnp.zeros((3, 5), bool))) == 0.0
    # bf16 logits give a float32 result.
    out = jl.accuracy(jnp.asarray(logits, jnp.bfloat16), labels, axis=1)
    assert out.dtype == jnp.float32
    # The gradient through argmax is zero (and finite).
    g = jax.grad(lambda x: jl.accuracy(x, labels, axis=1))(jnp.asarray(logits))
    assert np.all(np.asarray(g) == 0)


def test_accuracy_out_of_range_label_is_nan_and_checked_raises():
    logits = jnp.zeros((3, 4))
    labels = jnp.array([0, 9, -1])
    assert np.isnan(jl.accuracy(logits, labels, ignore_index=-1))
    # Excluded out-of-range labels are harmless.
    assert (
        float(jl.accuracy(logits, labels, ignore_index=-1, where=jnp.array([True, False, True])))
        == 1.0
    )
    with pytest.raises(Exception, match="out-of-range"):
        jl.checked(jl.accuracy)(logits, labels, ignore_index=-1)


@pytest.mark.parametrize("ties", [False, True])
def test_top_k_accuracy_matches_sklearn_with_ties(ties):
    c = 5
    logits, labels, weights, where = _cases(2 + ties, n=20, c=c, ties=ties)
    ks = (1, 2, 3)
    f = jax.jit(
        jax.vmap(
            lambda x, y, w, m: jnp.stack(
                [jl.top_k_accuracy(x, y, k, weights=w, where=m, ignore_index=-1) for k in ks]
            )
        )
    )
    got = np.asarray(f(logits, labels, weights, where))
    checked = 0
    for b in range(B):
        keep = where[b] & (labels[b] >= 0)
        if len(np.unique(labels[b][keep])) < 3:  # sklearn then treats y_true as binary
            continue
        for j, k in enumerate(ks):
            want = skm.top_k_accuracy_score(
                labels[b][keep],
                logits[b][keep],
                k=k,
                labels=range(c),
                sample_weight=weights[b][keep],
            )
            np.testing.assert_allclose(got[b, j], want, rtol=1e-6, err_msg=f"case {b}, k={k}")
            checked += 1
    assert checked > 3 * B // 2
    # One-hot labels (all-zero rows unlabeled) give the same numbers.
    f_hot = jax.jit(jax.vmap(lambda x, y, w, m: jl.top_k_accuracy(x, y, 2, weights=w, where=m)))
    np.testing.assert_allclose(
        f_hot(logits, _one_hot_or_zero(labels, c), weights, where), got[:, 1], rtol=1e-6
    )


def test_top_k_accuracy_k_at_least_classes_and_errors():
    x = jnp.array([[0.1, 0.9], [0.8, 0.2]])
    assert float(jl.top_k_accuracy(x, jnp.array([0, 1]), 2)) == 1.0
    with pytest.raises(ValueError, match="k must be a positive"):
        jl.top_k_accuracy(x, jnp.array([0, 1]), 0)
    with pytest.raises(ValueError, match="labels has shape"):
        jl.top_k_accuracy(x, jnp.array([0, 1, 1]), 1)


# ---------------------------------------------------------------------------------------------
# confusion matrix and precision / recall / F


def test_confusion_matrix_matches_sklearn():
    c = 5
    logits, labels, weights, where = _cases(4, n=24, c=c)
    pred = logits.argmax(-1)
    f = jax.jit(
        jax.vmap(
            lambda y, p, w, m: jl.confusion_matrix(y, p, c, weights=w, where=m, ignore_index=-1)
        )
    )
    f_logits = jax.jit(
        jax.vmap(lambda y, x, m: jl.confusion_matrix(y, x, c, where=m, ignore_index=-1))
    )
    got = np.asarray(f(labels, pred, weights, where))
    got_logits = np.asarray(f_logits(labels, logits, where))
    for b in range(B):
        keep = where[b] & (labels[b] >= 0)
        want = skm.confusion_matrix(
            labels[b][keep], pred[b][keep], labels=range(c), sample_weight=weights[b][keep]
        )
        np.testing.assert_allclose(got[b], want, rtol=1e-5, atol=1e-6)
        want = skm.confusion_matrix(labels[b][keep], pred[b][keep], labels=range(c))
        np.testing.assert_array_equal(got_logits[b], want)


def test_confusion_matrix_out_of_range_and_errors():
    m = jl.confusion_matrix(jnp.array([0, 1, 3]), jnp.array([0, 1, 1]), 3)
    assert np.all(np.isnan(m))
    m = jl.confusion_matrix(
        jnp.array([0, 1, 3]), jnp.array([0, 1, 1]), 3, where=jnp.array([True, True, False])
    )
    np.testing.assert_array_equal(m, [[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    with pytest.raises(Exception, match="out-of-range"):
        jl.checked(jl.confusion_matrix)(jnp.array([0, -2]), jnp.array([0, 1]), num_classes=3)
    with pytest.raises(ValueError, match="num_classes"):
        jl.confusion_matrix(jnp.array([0]), jnp.array([0]), 0)
    with pytest.raises(ValueError, match="predictions has shape"):
        jl.confusion_matrix(jnp.array([0, 1]), jnp.array([0]), 2)
    with pytest.raises(TypeError, match="labels must be an integer"):
        jl.confusion_matrix(jnp.array([0.0, 1.0]), jnp.array([0, 1]), 2)


_AVERAGES = ("macro", "micro", "weighted", None)


def test_precision_recall_fscore_matches_sklearn():
    c = 6  # few samples per case: absent classes and zero denominators
    logits, labels, weights, where = _cases(5, n=12, c=c)
    pred = logits.argmax(-1)
    betas = (0.5, 1.0, 2.0)

    def all_averages(y, p, w, m):
        cm = jl.confusion_matrix(y, p, c, weights=w, where=m, ignore_index=-1)
        return {
            (beta, str(a)): jl.precision_recall_fscore(cm, beta=beta, average=a)[:3]
            for beta in betas
            for a in _AVERAGES
        }

    got = jax.jit(jax.vmap(all_averages))(labels, pred, weights, where)
    pairs = [(beta, a) for beta in betas for a in _AVERAGES]
    for b in range(B):
        keep = where[b] & (labels[b] >= 0)
        if not keep.any():
            continue
        for beta, a in (pairs[b % len(pairs)], (1.0, "macro")):  # a cycled pair, and F1 macro
            want = skm.precision_recall_fscore_support(
                labels[b][keep],
                pred[b][keep],
                beta=beta,
                average=a,
                sample_weight=weights[b][keep],
                zero_division=0.0,
                labels=range(c) if a is None else None,
            )[:3]
            for g, w_ in zip(got[(beta, str(a))], want, strict=True):
                np.testing.assert_allclose(
                    np.asarray(g)[b], w_, rtol=1e-5, atol=1e-6, err_msg=f"case {b}, average={a}"
                )


def test_precision_recall_fscore_binary_and_support():
    rng = np.random.default_rng(6)
    y, p = rng.integers(0, 2, 40), rng.integers(0, 2, 40)
    w = rng.uniform(0.1, 3.0, 40)
    cm = jl.confusion_matrix(jnp.asarray(y), jnp.asarray(p), 2, weights=jnp.asarray(w))
    for pos in (0, 1):
        got = jl.precision_recall_fscore(cm, beta=2.0, average="binary", pos_label=pos)
        want = skm.precision_recall_fscore_support(
            y, p, beta=2.0, pos_label=pos, sample_weight=w, average="binary"
        )
        np.testing.assert_allclose(got[:3], want[:3], rtol=1e-5)
    assert isinstance(got, jl.PrecisionRecallFscore)  # a NamedTuple, so a pytree
    np.testing.assert_allclose(got.support, [w[y == 0].sum(), w[y == 1].sum()], rtol=1e-5)
    # Integer confusion matrices (e.g. from scikit-learn) are accepted.
    got = jl.precision_recall_fscore(skm.confusion_matrix(y, p), average="micro")
    np.testing.assert_allclose(got.fscore, skm.accuracy_score(y, p), rtol=1e-6)


def test_precision_recall_fscore_zero_division_and_errors():
    # Class 1 is never predicted and never true; class 2 is predicted but never true.
    cm = jnp.array([[2.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    p, r, _, s = jl.precision_recall_fscore(cm, average=None)
    np.testing.assert_allclose(p, [1.0, 0.0, 0.0])
    np.testing.assert_allclose(r, [2 / 3, 0.0, 0.0])
    np.testing.assert_allclose(s, [3.0, 0.0, 0.0])
    # macro: over the classes present in truth or predictions (0 and 2), as scikit-learn.
    np.testing.assert_allclose(jl.precision_recall_fscore(cm).precision, 0.5)
    assert float(jl.precision_recall_fscore(jnp.zeros((3, 3))).fscore) == 0.0
    with pytest.raises(ValueError, match="average must be one of"):
        jl.precision_recall_fscore(cm, average="samples")
    with pytest.raises(ValueError, match="square"):
        jl.precision_recall_fscore(jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="beta"):
        jl.precision_recall_fscore(cm, beta=-1.0)
    with pytest.raises(ValueError, match="pos_label"):
        jl.precision_recall_fscore(cm, average="binary", pos_label=3)


CASES = 24  # random cases per comparison in the tests of the newer metrics


def _keep(labels, where):
    return where & (labels >= 0)


def test_confusion_matrix_normalize_and_top_k():
    c = 5
    logits, labels, weights, where = _cases(30, n=24, c=c, ties=True, cases=CASES)
    pred = logits.argmax(-1)

    def run(y, x, w, m):
        kw = {"weights": w, "where": m, "ignore_index": -1}
        counts = jl.confusion_matrix(y, x, c, **kw)
        return (
            {n: jl.confusion_matrix(y, x, c, normalize=n, **kw) for n in ("true", "pred", "all")},
            {n: jl.normalize_confusion(counts, n) for n in ("true", "pred", "all")},
            jl.confusion_matrix(y, x, c, top_k=2, **kw),
        )

    normalized, from_counts, top2 = jax.jit(jax.vmap(run))(labels, logits, weights, where)
    for b in range(CASES):
        keep = _keep(labels[b], where[b])
        y, p, w = labels[b][keep], pred[b][keep], weights[b][keep]
        for n, got in normalized.items():
            want = skm.confusion_matrix(y, p, labels=range(c), sample_weight=w, normalize=n)
            np.testing.assert_allclose(got[b], want, rtol=1e-5, atol=1e-6, err_msg=n)
            np.testing.assert_allclose(from_counts[n][b], want, rtol=1e-5, atol=1e-6, err_msg=n)
        # torchmetrics' top-k rule by hand: the label if among the 2 highest (a stable
        # descending sort: lower index first on ties), else the argmax.
        top = np.argsort(-logits[b][keep], axis=1, kind="stable")[:, :2]
        refined = np.where((top == y[:, None]).any(1), y, p)
        want = skm.confusion_matrix(y, refined, labels=range(c), sample_weight=w)
        np.testing.assert_allclose(top2[b], want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="normalize"):
        jl.confusion_matrix(labels[0], pred[0], c, normalize="rows")
    with pytest.raises(ValueError, match="top_k=2 needs scores"):
        jl.confusion_matrix(labels[0], pred[0], c, top_k=2)


def test_jaccard_dice_specificity_match_sklearn():
    c = 5
    logits, labels, weights, where = _cases(31, n=20, c=c, cases=CASES)
    pred = logits.argmax(-1)
    averages = ("macro", "weighted", "micro", None)

    def run(y, x, w, m):
        kw = {"weights": w, "where": m, "ignore_index": -1}
        return {
            str(a): (
                jl.jaccard_index(y, x, c, average=a, **kw),
                jl.dice_score(y, x, c, average=a, **kw),
                jl.specificity(y, x, c, average=a, **kw),
            )
            for a in averages
        }

    got = jax.jit(jax.vmap(run))(labels, logits, weights, where)
    for b in range(CASES):
        keep = _keep(labels[b], where[b])
        if not keep.any():
            continue
        y, p, w = labels[b][keep], pred[b][keep], weights[b][keep]
        mcm = skm.multilabel_confusion_matrix(y, p, labels=range(c), sample_weight=w)
        tn, fp, fn, tp = mcm[:, 0, 0], mcm[:, 0, 1], mcm[:, 1, 0], mcm[:, 1, 1]
        tnr = np.where(tn + fp > 0, tn / np.where(tn + fp > 0, tn + fp, 1), 0)
        present = tp + fp + fn > 0
        want_tnr = {  # torchmetrics' MulticlassSpecificity, by hand
            "None": tnr,
            "macro": tnr[present].mean(),
            "weighted": np.sum((tp + fn) * tnr) / np.sum(tp + fn),
            "micro": tn.sum() / (tn + fp).sum(),
        }
        for a in averages:
            kw = {"average": a, "sample_weight": w, "zero_division": 0}
            kw["labels"] = range(c) if a is None else None
            iou, dice, spec = (np.asarray(v)[b] for v in got[str(a)])
            msg = f"case {b}, average={a}"
            np.testing.assert_allclose(iou, skm.jaccard_score(y, p, **kw), rtol=1e-5, err_msg=msg)
            np.testing.assert_allclose(dice, skm.f1_score(y, p, **kw), rtol=1e-5, err_msg=msg)
            np.testing.assert_allclose(spec, want_tnr[str(a)], rtol=1e-5, err_msg=msg)
        # Specificity of class k is scikit-learn's recall of "not k".
        k = b % c
        np.testing.assert_allclose(
            np.asarray(got["None"][2])[b][k],
            skm.recall_score(y != k, p != k, sample_weight=w, zero_division=0),
            rtol=1e-5,
        )
    # Binary, and a label map of any shape (segmentation): Dice = 2 IoU / (1 + IoU).
    y2, p2 = labels[:4].reshape(2, 2, 20), pred[:4].reshape(2, 2, 20)
    iou = jl.jaccard_index(y2, p2, c, average=None, ignore_index=-1)
    np.testing.assert_allclose(
        jl.dice_score(y2, p2, c, average=None, ignore_index=-1), 2 * iou / (1 + iou), rtol=1e-6
    )
    np.testing.assert_allclose(
        jl.jaccard_index(y2, p2, c, average="binary", pos_label=3, ignore_index=-1), iou[3]
    )
    with pytest.raises(ValueError, match="average must be one of"):
        jl.specificity(y2, p2, c, average="samples")


def test_matthews_and_cohen_kappa_match_sklearn():
    c = 4
    logits, labels, weights, where = _cases(32, n=16, c=c, ties=True, cases=CASES)
    pred = logits.argmax(-1)

    def run(y, p, w, m):
        kw = {"where": m, "ignore_index": -1}
        return (
            jl.matthews_corrcoef(y, p, c, weights=w, **kw),
            {str(k): jl.cohen_kappa(y, p, c, weights=k, sample_weight=w, **kw) for k in _KAPPA},
        )

    mcc, kappa = jax.jit(jax.vmap(run))(labels, pred, weights, where)
    for b in range(CASES):
        keep = _keep(labels[b], where[b])
        if keep.sum() < 2:
            continue
        y, p, w = labels[b][keep], pred[b][keep], weights[b][keep]
        np.testing.assert_allclose(
            mcc[b], skm.matthews_corrcoef(y, p, sample_weight=w), rtol=1e-5, atol=1e-6
        )
        for k in _KAPPA:
            want = skm.cohen_kappa_score(y, p, labels=range(c), weights=k, sample_weight=w)
            np.testing.assert_allclose(
                kappa[str(k)][b], want, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=str(k)
            )
    # Edges: one class everywhere: MCC 0 (scikit-learn), kappa undefined (NaN).
    same = jnp.zeros(6, jnp.int32)
    assert float(jl.matthews_corrcoef(same, same, 3)) == 0.0
    assert np.isnan(jl.cohen_kappa(same, same, 3))
    perfect = jnp.array([0, 1, 2, 1])
    assert float(jl.matthews_corrcoef(perfect, perfect, 3)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="sample_weight"):
        jl.cohen_kappa(perfect, perfect, 3, weights=jnp.ones(4))


_KAPPA = (None, "linear", "quadratic")


def test_multilabel_confusion_matrix_and_precision_recall_fscore_match_sklearn():
    rng = np.random.default_rng(33)
    n, num_labels = 30, 4
    truth = (rng.random((CASES, n, num_labels)) < 0.4).astype(np.int32)
    probs = rng.random((CASES, n, num_labels)).astype(np.float32)
    w = rng.uniform(0.2, 2.0, (CASES, n)).astype(np.float32)
    m = rng.random((CASES, n)) < 0.8

    def run(y, p, w, m):
        mcm = jl.multilabel_confusion_matrix(y, p, weights=w, where=m)
        return mcm, {
            str(a): jl.precision_recall_fscore(mcm, beta=0.5, average=a)[:3] for a in _AVERAGES
        }

    mcm, prf = jax.jit(jax.vmap(run))(truth, probs, w, m)
    for b in range(CASES):
        y, p, sw = truth[b][m[b]], (probs[b][m[b]] > 0.5).astype(int), w[b][m[b]]
        np.testing.assert_allclose(
            mcm[b], skm.multilabel_confusion_matrix(y, p, sample_weight=sw), rtol=1e-5
        )
        a = _AVERAGES[b % len(_AVERAGES)]
        want = skm.precision_recall_fscore_support(
            y, p, beta=0.5, average=a, sample_weight=sw, zero_division=0
        )[:3]
        for g, w_ in zip(prf[str(a)], want, strict=True):
            np.testing.assert_allclose(np.asarray(g)[b], w_, rtol=1e-5, err_msg=f"{b} {a}")
    # A per-entry mask drops single label entries; integer predictions work as they are.
    entry = rng.random((n, num_labels)) < 0.7
    got = jl.multilabel_confusion_matrix(truth[0], (probs[0] > 0.5).astype(int), where=entry)
    hard = probs[0] > 0.5
    for k in range(num_labels):
        y, p = truth[0][entry[:, k], k] == 1, hard[entry[:, k], k]
        want = [[np.sum(~y & ~p), np.sum(~y & p)], [np.sum(y & ~p), np.sum(y & p)]]
        np.testing.assert_array_equal(got[k], want)
    assert np.isnan(jl.multilabel_confusion_matrix(jnp.array([[2, 0]]), jnp.array([[1, 0]]))).all()
    with pytest.raises(ValueError, match="equal shapes"):
        jl.multilabel_confusion_matrix(jnp.ones((3, 2)), jnp.ones((3, 3)))


# ---------------------------------------------------------------------------------------------
# ROC curve, AUC, average precision


def _binary_cases(seed, n=20, cases=B):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=(cases, n)), 1).astype(np.float32)  # many ties
    scores[: cases // 4] = rng.integers(0, 3, size=(cases // 4, n))  # heavy ties
    labels = (rng.random((cases, n)) < rng.uniform(0.2, 0.8, size=(cases, 1))).astype(np.int32)
    weights = rng.uniform(0.1, 2.0, size=(cases, n)).astype(np.float32)
    weights[: cases // 8, :3] = 0.0  # zero weights
    where = rng.random((cases, n)) < 0.75
    where[cases - 3] = labels[cases - 3] == 1  # one class only
    where[cases - 2] = False  # nothing at all
    return scores, labels, weights, where


def _pairwise_auc(s, y, w):
    """Weighted Mann–Whitney: P(s+ > s-) + ½ P(s+ = s-)."""
    pos, neg = y == 1, y == 0
    sp, sn = s[pos][:, None], s[neg][None, :]
    ww = w[pos][:, None] * w[neg][None, :]
    return float(np.sum(ww * ((sp > sn) + 0.5 * (sp == sn))) / np.sum(ww))


@pytest.mark.parametrize("weighted", [False, True])
def test_roc_curve_auc_ap_match_sklearn(weighted):
    scores, labels, weights, where = _binary_cases(7 + weighted)
    w_arg = weights if weighted else np.ones_like(weights)

    def all_three(s, y, w, m):
        kw = {"weights": w} if weighted else {}
        return (
            jl.roc_curve(s, y, where=m, **kw),
            jl.roc_auc(s, y, where=m, **kw),
            jl.average_precision(s, y, where=m, **kw),
        )

    (fpr, tpr, thr, valid), auc, ap = jax.jit(jax.vmap(all_three))(scores, labels, weights, where)
    fpr, tpr, thr, valid = map(np.asarray, (fpr, tpr, thr, valid))
    auc, ap = np.asarray(auc), np.asarray(ap)
    assert fpr.shape == (B, scores.shape[1] + 1)
    for b in range(CASES):
        keep = where[b] & (w_arg[b] != 0)
        s, y, w = scores[b][keep], labels[b][keep], w_arg[b][keep]
        sw = w if weighted else None
        if not keep.any():
            assert valid[b].sum() == 1 and np.all(np.isnan(fpr[b])) and np.isnan(auc[b])
            continue
        want = skm.roc_curve(y, s, sample_weight=sw, drop_intermediate=False)
        v = valid[b]
        for g, w_, name in zip(
            (fpr[b][v], tpr[b][v], thr[b][v]), want, ("fpr", "tpr", "thr"), strict=True
        ):
            np.testing.assert_allclose(
                g, w_, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=f"case {b}: {name}"
            )
        # Invalid points repeat valid ones: the unmasked curve is the same polyline.
        pts = {(a, c) for a, c in zip(fpr[b][v].round(5), tpr[b][v].round(5), strict=True)}
        assert (
            all((a, c) in pts for a, c in zip(fpr[b].round(5), tpr[b].round(5), strict=True))
            or np.isnan(fpr[b]).any()
            or np.isnan(tpr[b]).any()
        )
        np.testing.assert_allclose(
            ap[b],
            skm.average_precision_score(y, s, sample_weight=sw),
            rtol=1e-5,
            atol=1e-6,
            err_msg=f"case {b}: AP",
        )
        if len(np.unique(y)) < 2:
            assert np.isnan(auc[b])
            continue
        want_auc = skm.roc_auc_score(y, s, sample_weight=sw)
        np.testing.assert_allclose(auc[b], want_auc, rtol=1e-5, err_msg=f"case {b}: AUC")
        np.testing.assert_allclose(auc[b], _pairwise_auc(s, y, w), rtol=1e-5)
        # Integrating every point (duplicates included) gives the same area.
        np.testing.assert_allclose(np.trapezoid(tpr[b], fpr[b]), want_auc, rtol=1e-5)


def test_roc_drop_intermediate_same_area_and_pos_label():
    rng = np.random.default_rng(9)
    s = rng.normal(size=200).astype(np.float32)
    y = np.where(rng.random(200) < 1 / (1 + np.exp(-2 * s)), 2, 5)  # positive label is 2
    fpr, tpr, _, valid = jax.jit(jl.roc_curve, static_argnames="pos_label")(s, y, pos_label=2)
    want_fpr, want_tpr, _ = skm.roc_curve(y, s, pos_label=2)  # drop_intermediate=True
    assert valid.sum() == 201
    np.testing.assert_allclose(np.trapezoid(tpr, fpr), np.trapezoid(want_tpr, want_fpr), rtol=1e-6)
    want_auc = skm.roc_auc_score(y == 2, s)
    np.testing.assert_allclose(
        jax.jit(jl.roc_auc, static_argnames="pos_label")(s, y, pos_label=2), want_auc, rtol=1e-6
    )
    # Any input shape is flattened; boolean labels work.
    np.testing.assert_allclose(
        jax.jit(jl.roc_auc)(s.reshape(10, 20), (y == 2).reshape(10, 20)), want_auc, rtol=1e-6
    )


def test_roc_and_ap_errors_and_no_positive():
    s = jnp.array([0.3, 0.2, 0.1])
    assert float(jl.average_precision(s, jnp.array([0, 0, 0]))) == 0.0
    _, tpr, _, _ = jl.roc_curve(s, jnp.array([0, 0, 0]))
    assert np.all(np.isnan(tpr))
    with pytest.raises(TypeError, match="scores must be a floating"):
        jl.roc_curve(jnp.array([1, 2]), jnp.array([0, 1]))
    with pytest.raises(ValueError, match="labels has shape"):
        jl.roc_auc(s, jnp.array([0, 1]))
    with pytest.raises(ValueError, match="weights has shape"):
        jl.average_precision(s, jnp.array([0, 1, 1]), weights=jnp.ones(2))


def test_precision_recall_curve_and_partial_auc_match_sklearn():
    scores, labels, weights, where = _binary_cases(34, cases=CASES)

    def run(s, y, w, m):
        return (
            jl.precision_recall_curve(s, y, weights=w, where=m),
            [jl.roc_auc(s, y, weights=w, where=m, max_fpr=f) for f in _MAX_FPR],
        )

    (precision, recall, thr, valid), partial = jax.jit(jax.vmap(run))(
        scores, labels, weights, where
    )
    for b in range(CASES):
        keep = where[b] & (weights[b] != 0)
        if not keep.any():
            continue
        s, y, w = scores[b][keep], labels[b][keep], weights[b][keep]
        v = np.asarray(valid[b])
        want = skm.precision_recall_curve(y, s, sample_weight=w)
        np.testing.assert_allclose(np.asarray(precision[b])[v][::-1], want[0], rtol=1e-5)
        np.testing.assert_allclose(np.asarray(recall[b])[v][::-1], want[1], rtol=1e-5)
        np.testing.assert_allclose(np.asarray(thr[b])[v][1:][::-1], want[2], rtol=1e-6)
        if len(np.unique(y)) < 2:
            continue
        for f, got in zip(_MAX_FPR, partial, strict=True):
            want = skm.roc_auc_score(y, s, sample_weight=w, max_fpr=f)
            np.testing.assert_allclose(got[b], want, rtol=1e-5, err_msg=f"case {b}, {f}")
    with pytest.raises(ValueError, match="max_fpr"):
        jl.roc_auc(scores[0], labels[0], max_fpr=0.0)


_MAX_FPR = (0.1, 0.37, 1.0)


def test_one_vs_rest_auc_and_ap_match_sklearn():
    c = 4
    logits, labels, weights, where = _cases(35, n=30, c=c, ties=True, cases=CASES)
    probs = np.asarray(jax.nn.softmax(jnp.asarray(logits), axis=-1))
    averages = ("macro", "weighted", "micro", None)

    def run(s, y, w, m):
        kw = {"weights": w, "where": m, "ignore_index": -1}
        return {
            str(a): (
                jl.multiclass_roc_auc(s, y, average=a, **kw),
                jl.multiclass_average_precision(s, y, average=a, **kw),
            )
            for a in averages
        }

    got = jax.jit(jax.vmap(run))(probs, labels, weights, where)
    for b in range(CASES):
        keep = _keep(labels[b], where[b])
        y, s, w = labels[b][keep], probs[b][keep], weights[b][keep]
        hot = np.eye(c)[y]
        for a in averages:
            auc, ap = (np.asarray(v)[b] for v in got[str(a)])
            if len(np.unique(y)) == c:  # scikit-learn's multi-class AUC needs every class
                want = skm.roc_auc_score(y, s, multi_class="ovr", average=a, sample_weight=w)
                np.testing.assert_allclose(auc, want, rtol=1e-5, err_msg=f"{b} {a}")
            # The label-binarised (multi-label) form covers absent classes too.
            want = skm.roc_auc_score(hot, s, average=a, sample_weight=w)
            np.testing.assert_allclose(auc, want, rtol=1e-5, equal_nan=True, err_msg=f"{b} {a}")
            want = skm.average_precision_score(hot, s, average=a, sample_weight=w)
            np.testing.assert_allclose(ap, want, rtol=1e-5, atol=1e-7, err_msg=f"{b} {a}")

    # Multi-label, per-sample weights; a label without positives.
    rng = np.random.default_rng(36)
    truth = (rng.random((CASES, 25, 3)) < 0.5).astype(np.int32)
    truth[:, :, 2] *= (np.arange(CASES) % 4 != 0)[:, None]
    scores = np.round(rng.random((CASES, 25, 3)), 1).astype(np.float32)
    sw = rng.uniform(0.2, 2.0, (CASES, 25)).astype(np.float32)

    def run_ml(s, y, w):
        return {
            str(a): (
                jl.multilabel_roc_auc(s, y, average=a, weights=w),
                jl.multilabel_average_precision(s, y, average=a, weights=w),
            )
            for a in averages
        }

    got = jax.jit(jax.vmap(run_ml))(scores, truth, sw)
    for b in range(CASES):
        for a in averages:
            auc, ap = (np.asarray(v)[b] for v in got[str(a)])
            want = skm.roc_auc_score(truth[b], scores[b], average=a, sample_weight=sw[b])
            np.testing.assert_allclose(auc, want, rtol=1e-5, equal_nan=True, err_msg=f"{b} {a}")
            want = skm.average_precision_score(truth[b], scores[b], average=a, sample_weight=sw[b])
            np.testing.assert_allclose(ap, want, rtol=1e-5, atol=1e-7, err_msg=f"{b} {a}")
    assert np.isnan(jl.multiclass_roc_auc(probs[0], jnp.full(30, 7)))
    with pytest.raises(ValueError, match="scores' shape"):
        jl.multilabel_roc_auc(scores[0], truth[0, :, :2])


# ---------------------------------------------------------------------------------------------
# Regression metrics


def _regression_cases(seed, shape=(30,)):
    rng = np.random.default_rng(seed)
    targets = rng.normal(size=(B, *shape)).astype(np.float32) * 3
    predictions = (targets + rng.normal(size=(B, *shape))).astype(np.float32)
    weights = rng.uniform(0.1, 2.0, size=(B, *shape)).astype(np.float32)
    where = rng.random((B, *shape)) < 0.8
    return predictions, targets, weights, where


_REGRESSION = {
    "mse": (jl.mean_squared_error, skm.mean_squared_error),
    "rmse": (jl.root_mean_squared_error, skm.root_mean_squared_error),
    "mae": (jl.mean_absolute_error, skm.mean_absolute_error),
    "mape": (jl.mean_absolute_percentage_error, skm.mean_absolute_percentage_error),
    "r2": (jl.r2_score, skm.r2_score),
}


def test_regression_metrics_match_sklearn_masked_weighted():
    p, t, w, m = _regression_cases(10)
    t[:5, :4] = 0.0  # MAPE's epsilon floor
    t[5] = 1.5  # constant targets: r2 force_finite
    p[6] = t[6]  # perfect prediction
    t[7], p[7] = 2.0, 2.0  # constant and perfect: r2 = 1

    def run(p, t, w, m):
        return {k: (f(p, t, weights=w, where=m), f(p, t)) for k, (f, _) in _REGRESSION.items()}

    got = jax.jit(jax.vmap(run))(p, t, w, m)
    for b in range(B):
        keep = m[b]
        for k, (_, ref) in _REGRESSION.items():
            want_w = ref(t[b][keep], p[b][keep], sample_weight=w[b][keep])
            want = ref(t[b], p[b])
            if k == "r2" and np.ptp(t[b]) == 0:
                # Constant targets: scikit-learn's rule (force_finite) is 1 for a perfect
                # prediction, else 0; on these float32 inputs its weighted mean of equal values
                # rounds, leaves a tiny variance and gives -1.2e15 instead (case 5), so state
                # the rule directly.
                want_w = float(np.all(p[b][keep] == t[b][keep]))
                want = float(np.all(p[b] == t[b]))
            for g, want_, tag in ((got[k][0], want_w, "weighted"), (got[k][1], want, "plain")):
                np.testing.assert_allclose(
                    np.asarray(g)[b], want_, rtol=2e-5, atol=1e-6, err_msg=f"case {b}: {k} {tag}"
                )


def test_multioutput_regression_matches_sklearn():
    p, t, _, _ = _regression_cases(11, shape=(25, 3))
    rng = np.random.default_rng(12)
    w = rng.uniform(0.1, 2.0, size=(B, 25, 1)).astype(np.float32)  # per-row weights

    t[:4, :, 2] = 1.5  # a constant output: weight 0 in "variance_weighted"

    def run(p, t, w):
        return (
            jl.r2_score(p, t, weights=w, multioutput="raw_values"),
            jl.r2_score(p, t, weights=w),
            jl.mean_squared_error(p, t, weights=w),
            jl.mean_absolute_error(p, t, weights=w),
            jl.r2_score(p, t, weights=w, multioutput="variance_weighted"),
        )

    raw, uniform, mse, mae, variance = map(np.asarray, jax.jit(jax.vmap(run))(p, t, w))
    for b in range(B):
        sw = w[b, :, 0]
        t64 = t[b].astype(np.float64)  # in float32 scikit-learn's constant column is not 0
        want_raw = skm.r2_score(t64, p[b], sample_weight=sw, multioutput="raw_values")
        np.testing.assert_allclose(raw[b], want_raw, rtol=2e-5)
        want_var = skm.r2_score(t64, p[b], sample_weight=sw, multioutput="variance_weighted")
        np.testing.assert_allclose(variance[b], want_var, rtol=2e-5)
        np.testing.assert_allclose(uniform[b], want_raw.mean(), rtol=2e-5)
        np.testing.assert_allclose(
            mse[b], skm.mean_squared_error(t[b], p[b], sample_weight=sw), rtol=2e-5
        )
        np.testing.assert_allclose(
            mae[b], skm.mean_absolute_error(t[b], p[b], sample_weight=sw), rtol=2e-5
        )
    with pytest.raises(ValueError, match="multioutput"):
        jl.r2_score(p[0], t[0], multioutput="variance")


def test_mape_is_scale_invariant_while_rmse_and_mae_scale():
    """The question users asked: which metric survives rescaling the targets (e.g. k€ → €)?"""
    p, t, w, m = _regression_cases(13)
    p, t = jnp.asarray(p[0]), jnp.asarray(t[0])
    kw = {"weights": jnp.asarray(w[0]), "where": jnp.asarray(m[0])}
    fs = (
        jl.mean_absolute_percentage_error,
        jl.root_mean_squared_error,
        jl.mean_absolute_error,
        jl.mean_squared_error,
        jl.r2_score,
    )
    with float64():
        p, t = p.astype(jnp.float64), t.astype(jnp.float64)
        run = jax.jit(lambda a: [f(a * p, a * t, **kw) for f in fs])
        base = dict(zip(fs, map(float, run(1.0)), strict=True))
        for a in (1e-3, 7.0, -2.5, 1e4):
            scaled = dict(zip(fs, map(float, run(a)), strict=True))
            np.testing.assert_allclose(
                scaled[jl.mean_absolute_percentage_error],
                base[jl.mean_absolute_percentage_error],
                rtol=1e-12,
            )
            np.testing.assert_allclose(scaled[jl.r2_score], base[jl.r2_score], rtol=1e-10)
            np.testing.assert_allclose(
                scaled[jl.root_mean_squared_error],
                abs(a) * base[jl.root_mean_squared_error],
                rtol=1e-12,
            )
            np.testing.assert_allclose(
                scaled[jl.mean_absolute_error], abs(a) * base[jl.mean_absolute_error], rtol=1e-12
            )
            np.testing.assert_allclose(
                scaled[jl.mean_squared_error], a * a * base[jl.mean_squared_error], rtol=1e-12
            )


def test_regression_gradients_match_finite_differences():
    rng = np.random.default_rng(14)
    t = rng.normal(size=7) * 2
    p0 = t + rng.normal(size=7)
    w = rng.uniform(0.5, 2.0, size=7)
    m = np.array([1, 1, 0, 1, 1, 1, 1], bool)
    with float64():
        for name, (f, _) in _REGRESSION.items():
            fn = jax.jit(
                lambda p, f=f: f(p, jnp.asarray(t), weights=jnp.asarray(w), where=jnp.asarray(m))
            )
            g = np.asarray(jax.grad(fn)(jnp.asarray(p0)))
            np.testing.assert_allclose(g, numeric_grad(fn, p0), rtol=1e-5, atol=1e-8, err_msg=name)
            assert g[2] == 0.0


def test_regression_edges_no_nan():
    t = jnp.array([1.0, 2.0, jnp.nan])
    p = jnp.array([1.0, 2.0, jnp.nan])
    where = jnp.array([True, True, False])
    for f, _ in _REGRESSION.values():
        value, g = jax.jit(jax.value_and_grad(lambda p, f=f: f(p, t, where=where)))(p)
        assert np.isfinite(value) and np.all(np.isfinite(g)), f.__name__
    # RMSE at zero error: value 0 and gradient 0, not NaN.
    g = jax.grad(lambda p: jl.root_mean_squared_error(p, t, where=where))(p)
    np.testing.assert_array_equal(g, 0.0)
    # A mean over nothing is 0.
    assert float(jl.mean_squared_error(p, t, where=jnp.zeros(3, bool))) == 0.0
    with pytest.raises(ValueError, match="targets has shape"):
        jl.mean_absolute_error(jnp.ones(3), jnp.ones(2))
    with pytest.raises(TypeError, match="predictions must be a floating"):
        jl.mean_squared_error(jnp.array([1, 2]), jnp.ones(2))


# ---------------------------------------------------------------------------------------------
# Differentiable surrogates


def test_soft_metrics_equal_hard_metrics_on_hard_binary_probabilities():
    rng = np.random.default_rng(15)
    y = rng.integers(0, 2, size=(B, 20))
    pred = rng.integers(0, 2, size=(B, 20))
    w = rng.uniform(0.1, 2.0, size=(B, 20)).astype(np.float32)
    m = rng.random((B, 20)) < 0.8

    def run(p, y, w, m):
        kw = {"weights": w, "where": m}
        return (
            jl.soft_precision(p, y, **kw),
            jl.soft_recall(p, y, **kw),
            1.0 - jl.soft_f1_loss(p, y, **kw),
        )

    got = np.asarray(jax.jit(jax.vmap(run))(pred.astype(np.float32), y, w, m))
    for b in range(B):
        k = m[b]
        want = skm.precision_recall_fscore_support(
            y[b][k], pred[b][k], sample_weight=w[b][k], average="binary", zero_division=0.0
        )[:3]
        np.testing.assert_allclose(got[:, b], want, rtol=1e-5, atol=1e-7, err_msg=f"case {b}")


@pytest.mark.parametrize("average", ["macro", "micro", None])
def test_soft_metrics_equal_hard_metrics_on_one_hot_multiclass(average):
    c = 4
    logits, labels, weights, where = _cases(16, n=20, c=c)
    hard = np.eye(c, dtype=np.float32)[logits.argmax(-1)]
    pred = logits.argmax(-1)

    def run(p, y, w, m):
        kw = {"weights": w, "where": m, "average": average, "ignore_index": -1}
        return (
            jl.soft_precision(p, y, **kw),
            jl.soft_recall(p, y, **kw),
            1.0 - jl.soft_f1_loss(p, y, **kw),
        )

    got = [np.asarray(g) for g in jax.jit(jax.vmap(run))(hard, labels, weights, where)]
    for b in range(B):
        k = where[b] & (labels[b] >= 0)
        if not k.any():
            continue
        want = skm.precision_recall_fscore_support(
            labels[b][k],
            pred[b][k],
            labels=range(c),
            sample_weight=weights[b][k],
            average=average,
            zero_division=0.0,
        )[:3]
        for g, w_ in zip(got, want, strict=True):
            np.testing.assert_allclose(g[b], w_, rtol=1e-5, atol=1e-7, err_msg=f"case {b}")


def test_soft_metrics_one_hot_labels_and_class_axis():
    rng = np.random.default_rng(17)
    probs = jax.nn.softmax(jnp.asarray(rng.normal(size=(12, 3))), axis=-1)
    labels = rng.integers(0, 3, 12)
    labels[:2] = -1
    hot = _one_hot_or_zero(labels, 3)
    a = jl.soft_f1_loss(probs, labels, average="macro", ignore_index=-1)
    np.testing.assert_allclose(jl.soft_f1_loss(probs, hot, average="macro"), a, rtol=1e-6)
    np.testing.assert_allclose(
        jl.soft_f1_loss(probs.T, hot.T, average="macro", axis=0), a, rtol=1e-6
    )
    # Hand computation of the macro soft F1 on the labeled rows.
    p, y = np.asarray(probs)[2:], np.eye(3)[labels[2:]]
    tp, fp, fn = (p * y).sum(0), (p * (1 - y)).sum(0), ((1 - p) * y).sum(0)
    np.testing.assert_allclose(a, 1 - np.mean(2 * tp / (2 * tp + fp + fn)), rtol=1e-5)
    assert np.isnan(
        jl.soft_f1_loss(probs, jnp.asarray(labels).at[5].set(7), average="macro", ignore_index=-1)
    )
    with pytest.raises(ValueError, match="average='macro'"):
        jl.soft_f1_loss(probs, labels)
    with pytest.raises(ValueError, match="average must be one of"):
        jl.soft_recall(probs, labels, average="weighted")


@pytest.mark.parametrize("average", ["binary", "macro"])
def test_soft_f1_gradient_matches_finite_differences(average):
    rng = np.random.default_rng(18)
    with float64():
        if average == "binary":
            x0 = rng.normal(size=9)
            y = jnp.asarray(rng.integers(0, 2, 9))

            def probs(x):
                return jax.nn.sigmoid(x)
        else:
            x0 = rng.normal(size=(9, 3))
            y = jnp.asarray(rng.integers(0, 3, 9))

            def probs(x):
                return jax.nn.softmax(x, axis=-1)

        w = jnp.asarray(rng.uniform(0.5, 2.0, 9))
        for f in (jl.soft_f1_loss, jl.soft_precision, jl.soft_recall):
            fn = jax.jit(lambda x, f=f: f(probs(x), y, average=average, weights=w))
            g = jax.jit(jax.grad(fn))(jnp.asarray(x0))
            np.testing.assert_allclose(
                g, numeric_grad(fn, x0), rtol=1e-5, atol=1e-8, err_msg=f.__name__
            )


def test_soft_f1_loss_trains_toward_better_f1():
    """A few gradient steps on soft F1 raise the hard F1 of an imbalanced problem."""
    rng = np.random.default_rng(19)
    x = rng.normal(size=(200, 2)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 1.2).astype(np.int32)  # ~14 % positives
    params = (jnp.zeros(2), jnp.asarray(-3.0))  # starts predicting all negative

    def loss(params):
        return jl.soft_f1_loss(jax.nn.sigmoid(x @ params[0] + params[1]), y)

    step = jax.jit(lambda p: jax.tree.map(lambda a, g: a - 2.0 * g, p, jax.grad(loss)(p)))
    f1_before = skm.f1_score(y, np.asarray(x @ params[0] + params[1] > 0))
    for _ in range(200):
        params = step(params)
    f1_after = skm.f1_score(y, np.asarray(x @ params[0] + params[1] > 0))
    assert f1_before == 0.0 and f1_after > 0.8


# ---------------------------------------------------------------------------------------------
# Properties (hypothesis), one fixed shape so each jitted function compiles once.

N_PROP = 12
_auc = jax.jit(lambda s, y, w, m: jl.roc_auc(s, y, weights=w, where=m))
_auc_plain = jax.jit(lambda s, y: jl.roc_auc(s, y))
_acc = jax.jit(lambda x, y, w, m: jl.accuracy(x, y, weights=w, where=m))
_acc_plain = jax.jit(lambda x, y: jl.accuracy(x, y))
_mse = jax.jit(lambda p, t, w, m: jl.mean_squared_error(p, t, weights=w, where=m))
_mse_plain = jax.jit(lambda p, t: jl.mean_squared_error(p, t))


@given(
    st.lists(st.integers(0, 5), min_size=N_PROP, max_size=N_PROP),
    st.lists(st.integers(0, 1), min_size=N_PROP, max_size=N_PROP),
)
def test_roc_auc_properties_with_ties(scores, labels):
    s, y = np.asarray(scores, np.float32), np.asarray(labels, np.int32)
    hypothesis.assume(0 < y.sum() < N_PROP)
    auc = float(_auc_plain(s, y))
    # Strictly increasing maps leave the AUC unchanged; reversing the order gives 1 - AUC; so
    # does swapping the classes (ties count ½ either way).
    np.testing.assert_allclose(_auc_plain(3.0 * s + 5.0, y), auc, rtol=1e-6)
    np.testing.assert_allclose(_auc_plain(-s, y), 1.0 - auc, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_auc_plain(s, 1 - y), 1.0 - auc, rtol=1e-6, atol=1e-6)
    # weights = 1 and an all-true mask change nothing.
    ones, true = np.ones(N_PROP, np.float32), np.ones(N_PROP, bool)
    np.testing.assert_allclose(_auc(s, y, ones, true), auc, rtol=1e-6)
    # An integer weight k equals repeating the element k times.
    k = np.arange(N_PROP) % 3 + 1
    np.testing.assert_allclose(
        _auc(s, y, k.astype(np.float32), true),
        skm.roc_auc_score(np.repeat(y, k), np.repeat(s, k)),
        rtol=1e-5,
        atol=1e-6,
    )


@given(
    st.lists(st.integers(0, 2), min_size=N_PROP * 3, max_size=N_PROP * 3),
    st.lists(st.integers(0, 2), min_size=N_PROP, max_size=N_PROP),
    st.lists(st.floats(-3, 3, width=32), min_size=N_PROP, max_size=N_PROP),
)
def test_weights_one_and_all_true_where_change_nothing(logit_ints, labels, preds):
    x = np.asarray(logit_ints, np.float32).reshape(N_PROP, 3)
    y = np.asarray(labels, np.int32)
    p = np.asarray(preds, np.float32)
    t = np.linspace(-1, 1, N_PROP, dtype=np.float32)
    ones, true = np.ones(N_PROP, np.float32), np.ones(N_PROP, bool)
    np.testing.assert_allclose(_acc(x, y, ones, true), _acc_plain(x, y), rtol=1e-6)
    np.testing.assert_allclose(_mse(p, t, ones, true), _mse_plain(p, t), rtol=1e-6)
    # Scaling all weights by a constant changes nothing either (a weighted mean).
    w = np.linspace(0.5, 2.0, N_PROP, dtype=np.float32)
    np.testing.assert_allclose(_acc(x, y, 3 * w, true), _acc(x, y, w, true), rtol=1e-6)
    np.testing.assert_allclose(_mse(p, t, 3 * w, true), _mse(p, t, w, true), rtol=1e-5)


def test_weight_gradients_of_ranking_and_count_metrics_match_finite_differences():
    """Scores and argmax have no gradient, but the metrics are smooth in the weights (and
    precision/recall/F in the confusion counts): those gradients match central differences."""
    rng = np.random.default_rng(20)
    s = np.round(rng.normal(size=10), 1)
    s[3] = s[4]  # a tie
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0])
    logits = rng.normal(size=(10, 3))
    labels = rng.integers(0, 3, 10)
    w0 = rng.uniform(0.5, 2.0, size=10)
    cm0 = rng.uniform(0.5, 5.0, size=(3, 3))
    with float64():
        s_, y_, x_, l_ = map(jnp.asarray, (s, y, logits, labels))
        fns = {
            "roc_auc": lambda w: jl.roc_auc(s_, y_, weights=w),
            "average_precision": lambda w: jl.average_precision(s_, y_, weights=w),
            "accuracy": lambda w: jl.accuracy(x_, l_, weights=w),
            "top_k_accuracy": lambda w: jl.top_k_accuracy(x_, l_, 2, weights=w),
            "confusion_matrix": lambda w: jnp.sum(
                jl.confusion_matrix(l_, x_, 3, weights=w) * jnp.arange(9.0).reshape(3, 3)
            ),
        }
        names = list(fns)
        stacked = jax.jit(lambda w: jnp.stack([fns[n](w) for n in names]))
        jacobian = np.asarray(jax.jit(jax.jacrev(stacked))(jnp.asarray(w0)))
        eps = 1e-6
        for i in range(len(w0)):  # central differences, one weight at a time
            up, down = w0.copy(), w0.copy()
            up[i] += eps
            down[i] -= eps
            numeric = (np.asarray(stacked(up)) - np.asarray(stacked(down))) / (2 * eps)
            for j, name in enumerate(names):
                np.testing.assert_allclose(
                    jacobian[j, i], numeric[j], rtol=1e-5, atol=1e-9, err_msg=f"{name}, w[{i}]"
                )
        for average in ("macro", "weighted", "micro"):
            fn = jax.jit(
                lambda cm, a=average: sum(jl.precision_recall_fscore(cm, beta=2.0, average=a)[:3])
            )
            np.testing.assert_allclose(
                jax.grad(fn)(jnp.asarray(cm0)),
                numeric_grad(fn, cm0),
                rtol=1e-5,
                atol=1e-9,
                err_msg=average,
            )


def test_half_precision_inputs_give_float32_results():
    rng = np.random.default_rng(21)
    s = rng.normal(size=16).astype(np.float32)
    y = rng.integers(0, 2, 16)
    t = rng.normal(size=16).astype(np.float32)
    probs = jax.nn.softmax(jnp.asarray(rng.normal(size=(16, 3))), axis=-1)
    fns = {
        "roc_auc": lambda s: jl.roc_auc(s, y),
        "average_precision": lambda s: jl.average_precision(s, y),
        "mape": lambda s: jl.mean_absolute_percentage_error(s, t),
        "r2": lambda s: jl.r2_score(s, t),
        "soft_f1": lambda p: jl.soft_f1_loss(p, y),
    }
    inputs = {name: s for name in fns} | {"soft_f1": rng.uniform(size=16).astype(np.float32)}
    for dtype in (jnp.bfloat16, jnp.float16):
        for name, fn in fns.items():
            half = jnp.asarray(inputs[name]).astype(dtype)
            out = jax.jit(fn)(half)
            assert out.dtype == jnp.float32, name
            np.testing.assert_allclose(out, fn(half.astype(jnp.float32)), rtol=1e-6, err_msg=name)
        out = jl.soft_recall(probs.astype(dtype), y % 3, average="macro")
        assert out.dtype == jnp.float32
    _, _, thresholds, _ = jl.roc_curve(jnp.asarray(s).astype(jnp.bfloat16), y)
    assert thresholds.dtype == jnp.float32


def test_weight_gradients_of_class_count_and_one_vs_rest_metrics_match_finite_differences():
    """jaccard / Dice / specificity / MCC / κ / one-vs-rest and partial AUC are smooth in the
    sample weights (the scores enter through comparisons only)."""
    rng = np.random.default_rng(37)
    logits = rng.normal(size=(12, 3))
    labels = rng.integers(0, 3, 12)
    w0 = rng.uniform(0.5, 2.0, size=12)
    with float64():
        x_, l_ = jnp.asarray(logits), jnp.asarray(labels)
        fns = {
            "jaccard_index": lambda w: jl.jaccard_index(l_, x_, 3, weights=w),
            "dice_score": lambda w: jl.dice_score(l_, x_, 3, average="weighted", weights=w),
            "specificity": lambda w: jl.specificity(l_, x_, 3, top_k=2, weights=w),
            "matthews_corrcoef": lambda w: jl.matthews_corrcoef(l_, x_, 3, weights=w),
            "cohen_kappa": lambda w: jl.cohen_kappa(l_, x_, 3, weights="linear", sample_weight=w),
            "multiclass_roc_auc": lambda w: jl.multiclass_roc_auc(x_, l_, weights=w),
            "partial roc_auc": lambda w: jl.roc_auc(x_[:, 1], l_ == 1, weights=w, max_fpr=0.4),
        }
        names = list(fns)
        stacked = jax.jit(lambda w: jnp.stack([fns[n](w) for n in names]))
        jacobian = np.asarray(jax.jit(jax.jacrev(stacked))(jnp.asarray(w0)))
        eps = 1e-6
        for i in range(len(w0)):  # central differences, one weight at a time
            up, down = w0.copy(), w0.copy()
            up[i] += eps
            down[i] -= eps
            numeric = (np.asarray(stacked(up)) - np.asarray(stacked(down))) / (2 * eps)
            for j, name in enumerate(names):
                np.testing.assert_allclose(
                    jacobian[j, i], numeric[j], rtol=1e-5, atol=1e-9, err_msg=f"{name}, w[{i}]"
                )
