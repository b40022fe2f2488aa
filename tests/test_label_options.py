"""Label smoothing and binary class weights on the binary, categorical and focal losses.

References: Keras's definitions written in NumPy (float64) from its source and docs, Keras's
documented literals, and the two-class softmax identity: a sigmoid loss of ``x`` is the softmax
loss of the logits ``[0, x]``, whose class weights and smoothing are PyTorch's (tested against
PyTorch in ``test_classification.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras_reference as keras
import numpy as np
import optax
import pytest

import jaxloss as jl

from helpers import assert_grads_match_fd, float64

EPS = keras.EPS


@pytest.fixture
def binary(rng):
    x = (rng.normal(size=(4, 3)) * 2).astype(np.float32)
    y = (rng.random((4, 3)) > 0.5).astype(np.float32)
    return x, y


def two_class_logits(x):
    """Logits ``[0, x]`` whose softmax is ``(1 - σ(x), σ(x))``."""
    return jnp.stack([jnp.zeros_like(x), x], axis=-1)


# --- label smoothing ---------------------------------------------------------------------------


def test_binary_label_smoothing_is_keras(binary):
    x, y = binary
    ys = y * 0.8 + 0.1
    p = keras.sigmoid(x)
    np.testing.assert_allclose(
        jl.sigmoid_binary_cross_entropy(x, y, label_smoothing=0.2),
        -(ys * np.log(p) + (1 - ys) * np.log(1 - p)),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        jl.binary_cross_entropy(p.astype(np.float32), y, label_smoothing=0.2),
        keras.binary_crossentropy(ys, p),
        rtol=1e-5,
    )
    for alpha, gamma in [(None, 2.0), (0.25, 2.0), (0.6, 1.5)]:
        np.testing.assert_allclose(
            jl.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma, label_smoothing=0.2),
            keras.binary_focal_crossentropy(y, p, gamma, alpha, label_smoothing=0.2),
            rtol=2e-5,
        )
    # ε = 0 changes nothing (optax's results), and a traced ε is allowed.
    np.testing.assert_array_equal(
        jl.sigmoid_binary_cross_entropy(x, y, label_smoothing=0.0),
        optax.losses.sigmoid_binary_cross_entropy(x, y),
    )
    traced = jax.jit(lambda e: jl.sigmoid_focal_loss(x, y, label_smoothing=e))(0.2)
    np.testing.assert_allclose(traced, jl.sigmoid_focal_loss(x, y, label_smoothing=0.2), rtol=1e-6)


def test_binary_smoothing_and_class_weights_equal_two_class_softmax(binary):
    """σ-BCE(x) = CE([0, x]): Keras's ε/2 is the integer CE's ε/C with C = 2, and binary class
    weights with "weighted_mean" are PyTorch's cross_entropy(weight=, label_smoothing=)."""
    x, y = binary
    labels = y.astype(int)
    w = jnp.array([0.5, 3.0])
    where = np.array([[True, False, True]] * 4)
    sample = np.linspace(0.2, 1.0, 12).reshape(4, 3)
    for reduction in ("none", "mean", "weighted_mean", "sum_by_nonzero_weights"):
        kw = dict(weights=sample, where=where, reduction=reduction)
        expected = jl.softmax_cross_entropy_with_integer_labels(
            two_class_logits(x), labels, class_weights=w, label_smoothing=0.3, **kw
        )
        np.testing.assert_allclose(
            jl.sigmoid_binary_cross_entropy(x, y, class_weights=w, label_smoothing=0.3, **kw),
            expected,
            rtol=1e-5,
            atol=1e-7,
            err_msg=reduction,
        )
        probs = jax.nn.sigmoid(x)
        np.testing.assert_allclose(
            jl.binary_cross_entropy(probs, y, class_weights=w, label_smoothing=0.3, **kw),
            expected,
            rtol=1e-4,
            atol=1e-6,
            err_msg=reduction,
        )
        # Focal loss with hard labels and no smoothing: the two-class softmax focal loss.
        np.testing.assert_allclose(
            jl.sigmoid_focal_loss(x, y, class_weights=w, **kw),
            jl.softmax_focal_loss(two_class_logits(x), labels, class_weights=w, **kw),
            rtol=1e-5,
            atol=1e-7,
            err_msg=reduction,
        )


def test_categorical_label_smoothing_is_keras_and_weights_are_pytorchs(rng):
    logits = rng.normal(size=(5, 4)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    y = np.eye(4)[rng.integers(0, 4, size=5)]
    y[4] = 0.0  # an unlabeled row stays unlabeled
    ys = y * 0.9 + 0.1 / 4
    cw = np.array([1.0, 2.0, 0.5, 3.0])
    per = -(cw * ys * np.log(np.clip(probs, EPS, 1 - EPS))).sum(-1)
    per[4] = 0.0
    got = jl.categorical_cross_entropy(
        probs.astype(np.float32), y, label_smoothing=0.1, class_weights=cw
    )
    np.testing.assert_allclose(got, per, rtol=1e-5)
    np.testing.assert_allclose(
        jl.categorical_cross_entropy(
            probs.astype(np.float32),
            y,
            label_smoothing=0.1,
            class_weights=cw,
            reduction="weighted_mean",
        ),
        per.sum() / (y @ cw).sum(),
        rtol=1e-5,
    )
    # From logits it is softmax_cross_entropy's smoothing (no clip is active here).
    np.testing.assert_allclose(
        jl.categorical_cross_entropy(probs.astype(np.float32), y, label_smoothing=0.1),
        jl.softmax_cross_entropy(logits.astype(np.float32), y, label_smoothing=0.1),
        rtol=1e-5,
        atol=1e-7,
    )


def test_keras_documented_literals():
    y = np.array([[0.0, 1.0], [0.0, 0.0]])
    p = np.array([[0.6, 0.4], [0.4, 0.6]], np.float32)
    # keras.losses.binary_crossentropy(y, p) -> [0.916, 0.714] (mean over the last axis).
    np.testing.assert_allclose(jl.binary_cross_entropy(p, y).mean(-1), [0.916, 0.714], atol=5e-4)
    # keras.losses.binary_focal_crossentropy(y, p, gamma=2) -> [0.330, 0.206].
    np.testing.assert_allclose(
        jl.binary_focal_loss(p, y, gamma=2).mean(-1), [0.330, 0.206], atol=5e-4
    )
    # keras.metrics.CategoricalCrossentropy: 1.1769392, and 1.6271976 with weights [0.3, 0.7].
    y3 = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    p3 = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], np.float32)
    np.testing.assert_allclose(jl.categorical_cross_entropy(p3, y3, reduction="mean"), 1.1769392)
    np.testing.assert_allclose(
        jl.categorical_cross_entropy(
            p3, y3, weights=np.array([0.3, 0.7]), reduction="weighted_mean"
        ),
        1.6271976,
        rtol=1e-6,
    )


def test_softmax_focal_label_smoothing(rng):
    logits = (rng.normal(size=(6, 4)) * 2).astype(np.float32)
    labels = rng.integers(0, 4, size=6)
    onehot = np.eye(4, dtype=np.float32)[labels]
    cw = np.array([1.0, 2.0, 0.5, 3.0], np.float32)
    alpha = np.array([0.25, 0.5, 1.0, 0.75], np.float32)
    probs = np.exp(np.float64(logits))
    probs /= probs.sum(-1, keepdims=True)
    # Keras's CategoricalFocalCrossentropy(from_logits=True, label_smoothing=0.2) from NumPy.
    expected = keras.categorical_focal_crossentropy(
        onehot, probs, 2.0, alpha * cw, label_smoothing=0.2
    )
    for lab in (labels, onehot):
        got = jl.softmax_focal_loss(logits, lab, alpha=alpha, class_weights=cw, label_smoothing=0.2)
        np.testing.assert_allclose(got, expected, rtol=2e-5)
        np.testing.assert_allclose(
            jl.softmax_focal_loss(
                logits,
                lab,
                alpha=alpha,
                class_weights=cw,
                label_smoothing=0.2,
                reduction="weighted_mean",
            ),
            expected.sum() / cw[labels].sum(),
            rtol=2e-5,
        )
    # γ = 0 is the smoothed, class-weighted cross-entropy (PyTorch's definition).
    np.testing.assert_allclose(
        jl.softmax_focal_loss(
            logits, labels, gamma=0.0, class_weights=cw, label_smoothing=0.2, ignore_index=2
        ),
        jl.softmax_cross_entropy_with_integer_labels(
            logits, labels, class_weights=cw, label_smoothing=0.2, ignore_index=2
        ),
        rtol=1e-5,
        atol=1e-7,
    )


def test_smooth_labels_binary_spreads_over_two_classes():
    y = jnp.array([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(
        jl.smooth_labels(y, 0.2, binary=True), np.where(np.asarray(y) == 1, 0.9, 0.1), rtol=1e-6
    )
    # The default is optax's, spreading α over the D entries of the row.
    np.testing.assert_allclose(jl.smooth_labels(y, 0.2), optax.losses.smooth_labels(y, 0.2))
    np.testing.assert_allclose(jl.smooth_labels(y, 0.2), 0.8 * np.asarray(y) + 0.05)
    # Smoothing the targets first equals the loss's own label_smoothing.
    x = jnp.linspace(-2.0, 2.0, 8).reshape(2, 4)
    np.testing.assert_allclose(
        jl.sigmoid_binary_cross_entropy(x, jl.smooth_labels(y, 0.2, binary=True)),
        jl.sigmoid_binary_cross_entropy(x, y, label_smoothing=0.2),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="binary=True"):
        jl.smooth_labels(y, 0.2, binary=True, where=jnp.ones(4, bool))


# --- binary class weights ----------------------------------------------------------------------


def test_binary_class_weights_chosen_by_the_ground_truth(binary):
    x, y = binary
    w_neg, w_pos = 0.5, 4.0
    bce = np.asarray(jl.sigmoid_binary_cross_entropy(x, y))
    w_y = np.where(y == 1, w_pos, w_neg)
    got = jl.sigmoid_binary_cross_entropy(x, y, class_weights=(w_neg, w_pos))
    np.testing.assert_allclose(got, w_y * bce, rtol=1e-6)
    for reduction, den in [("weighted_mean", w_y.sum()), ("mean", y.size)]:
        np.testing.assert_allclose(
            jl.sigmoid_binary_cross_entropy(
                x, y, class_weights=(w_neg, w_pos), reduction=reduction
            ),
            (w_y * bce).sum() / den,
            rtol=1e-6,
        )
    # pos_weight multiplies the positive term but is not a class weight of the denominator.
    np.testing.assert_allclose(
        jl.sigmoid_binary_cross_entropy(
            x, y, pos_weight=2.0, class_weights=(w_neg, w_pos), reduction="weighted_mean"
        ),
        (w_y * np.asarray(jl.sigmoid_binary_cross_entropy(x, y, pos_weight=2.0))).sum() / w_y.sum(),
        rtol=1e-6,
    )


def test_multilabel_class_weights_and_soft_labels(rng):
    x = rng.normal(size=(5, 3)) * 2
    y = rng.random((5, 3))  # soft labels
    cw = np.array([[1.0, 2.0], [0.5, 0.5], [0.2, 5.0]])  # [C, 2]: (w_neg, w_pos) per label
    p = keras.sigmoid(x)
    per = -(cw[:, 1] * y * np.log(p) + cw[:, 0] * (1 - y) * np.log(1 - p))
    element_weight = cw[:, 0] * (1 - y) + cw[:, 1] * y
    for fn, inp in [
        (jl.sigmoid_binary_cross_entropy, x),
        (jl.binary_cross_entropy, p),
    ]:
        inp = inp.astype(np.float32)
        np.testing.assert_allclose(fn(inp, y, class_weights=cw), per, rtol=1e-5)
        np.testing.assert_allclose(
            fn(inp, y, class_weights=cw, reduction="weighted_mean"),
            per.sum() / element_weight.sum(),
            rtol=1e-5,
        )
    focal = (1 - (y * p + (1 - y) * (1 - p))) ** 2 * per
    np.testing.assert_allclose(
        jl.sigmoid_focal_loss(x.astype(np.float32), y, class_weights=cw), focal, rtol=1e-5
    )
    np.testing.assert_allclose(
        jl.binary_focal_loss(p.astype(np.float32), y, class_weights=cw), focal, rtol=1e-5
    )


@pytest.mark.parametrize(
    "cw", [np.ones(3), np.ones((4, 2)), np.ones((2, 3)), 1.0], ids=["3", "4x2", "2x3", "scalar"]
)
def test_bad_binary_class_weights_raise(cw, binary):
    x, y = binary
    with pytest.raises(ValueError, match=r"class_weights has shape .*expected \(2,\)"):
        jl.sigmoid_binary_cross_entropy(x, y, class_weights=cw)


# --- gradients ---------------------------------------------------------------------------------

W = np.array([[0.5, 2.0], [1.0, 1.0], [3.0, 0.2]])
GRAD_CASES = {
    "sigmoid_bce": lambda x, y, p, q: jl.sigmoid_binary_cross_entropy(
        x, y, class_weights=W, label_smoothing=0.2, pos_weight=1.5, reduction="weighted_mean"
    ),
    "binary_ce": lambda x, y, p, q: jl.binary_cross_entropy(
        jax.nn.sigmoid(x), y, class_weights=(0.5, 2.0), label_smoothing=0.1, reduction="sum"
    ),
    "sigmoid_focal": lambda x, y, p, q: jl.sigmoid_focal_loss(
        x, y, alpha=0.3, gamma=1.5, class_weights=W, label_smoothing=0.2, reduction="sum"
    ),
    "softmax_focal_int": lambda x, y, p, q: jl.softmax_focal_loss(
        x, q, class_weights=jnp.array([1.0, 2.0, 0.5]), label_smoothing=0.2, reduction="sum"
    ),
    "softmax_focal_prob": lambda x, y, p, q: jl.softmax_focal_loss(
        x, p, label_smoothing=0.2, reduction="sum"
    ),
    "categorical_ce": lambda x, y, p, q: jl.categorical_cross_entropy(
        jax.nn.softmax(x), p, class_weights=jnp.array([1.0, 2.0, 0.5]), label_smoothing=0.2
    ).sum(),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradients_match_central_differences(name, rng):
    """With respect to the logits and to the (soft) labels, in float64."""
    with float64():
        x = rng.normal(size=(4, 3))
        y = rng.uniform(0.1, 0.9, size=(4, 3))
        p = rng.dirichlet(np.ones(3), size=4)
        q = jnp.asarray(rng.integers(0, 3, size=4))
        soft = 2 if name in ("softmax_focal_prob", "categorical_ce") else 1
        wrt = [0] if name == "softmax_focal_int" else [0, soft]
        assert_grads_match_fd(GRAD_CASES[name], [x, y, p, q], wrt, rtol=1e-5, atol=1e-8)
