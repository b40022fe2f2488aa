"""Focal losses from probabilities (Keras's ``from_logits=False``) against Keras's definitions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras_reference as keras
import numpy as np
import pytest

import jaxloss as jl

from helpers import assert_grads_match_fd, float64


def test_binary_focal_loss_is_keras(rng):
    p = rng.uniform(0.0, 1.0, size=(5, 4)).astype(np.float32)
    p[0, :2] = [0.0, 1.0]  # the clip is active
    y = (rng.random((5, 4)) > 0.5).astype(np.float32)
    for alpha, gamma, ls in [(None, 2.0, 0.0), (0.25, 2.0, 0.1), (0.7, 0.5, 0.0), (None, 0, 0.3)]:
        np.testing.assert_allclose(
            jl.binary_focal_loss(p, y, alpha=alpha, gamma=gamma, label_smoothing=ls),
            keras.binary_focal_crossentropy(y, p, gamma, alpha, label_smoothing=ls),
            rtol=2e-5,
            atol=1e-7,
            err_msg=f"{alpha}, {gamma}, {ls}",
        )
    # γ = 0 is binary_cross_entropy; from sigmoid(x) it is the logits form.
    np.testing.assert_allclose(jl.binary_focal_loss(p, y, gamma=0), jl.binary_cross_entropy(p, y))
    x = rng.normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(
        jl.binary_focal_loss(jax.nn.sigmoid(x), y, alpha=0.25, label_smoothing=0.1),
        jl.sigmoid_focal_loss(x, y, alpha=0.25, label_smoothing=0.1),
        rtol=1e-5,
    )


def test_categorical_focal_loss_is_keras(rng):
    p = rng.dirichlet(np.ones(4), size=6).astype(np.float32) * 2  # renormalised inside
    y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=6)]
    y[5] = 0.0  # unlabeled: 0, left out of means
    alpha = np.array([0.25, 0.5, 1.0, 0.75], np.float32)
    cw = np.array([1.0, 2.0, 0.5, 3.0], np.float32)
    for gamma, ls in [(2.0, 0.0), (1.5, 0.2)]:
        expected = keras.categorical_focal_crossentropy(y, p, gamma, alpha * cw, label_smoothing=ls)
        expected[5] = 0.0
        kw = dict(alpha=alpha, gamma=gamma, class_weights=cw, label_smoothing=ls)
        np.testing.assert_allclose(jl.categorical_focal_loss(p, y, **kw), expected, rtol=2e-5)
        np.testing.assert_allclose(
            jl.categorical_focal_loss(p, y, reduction="weighted_mean", **kw),
            expected.sum() / (y @ cw).sum(),
            rtol=2e-5,
        )
        np.testing.assert_allclose(
            jl.categorical_focal_loss(p, y, reduction="mean", **kw), expected.sum() / 5, rtol=2e-5
        )
    # The class axis may be anywhere; from softmax(x) it is softmax_focal_loss.
    np.testing.assert_allclose(
        jl.categorical_focal_loss(p.T, y.T, axis=0), jl.categorical_focal_loss(p, y), rtol=1e-6
    )
    x = rng.normal(size=(6, 4)).astype(np.float32)
    np.testing.assert_allclose(
        jl.categorical_focal_loss(jax.nn.softmax(x), y, alpha=alpha, label_smoothing=0.1),
        jl.softmax_focal_loss(x, y, alpha=alpha, label_smoothing=0.1),
        rtol=1e-5,
        atol=1e-7,
    )


def test_edges_give_finite_values_and_gradients():
    p = jnp.array([0.0, 1.0, 0.0, 1.0, 0.5])
    y = jnp.array([0.0, 1.0, 1.0, 0.0, 1.0])
    for gamma in (2.0, 0.5):
        for fn in (
            lambda q, g=gamma: jl.binary_focal_loss(q, y, gamma=g),
            lambda q, g=gamma: jl.categorical_focal_loss(
                jnp.stack([1 - q, q], -1), jax.nn.one_hot(y.astype(int), 2), gamma=g
            ),
        ):
            value, grad = jax.value_and_grad(lambda q, fn=fn: fn(q).sum())(p)
            assert np.isfinite(value) and np.all(np.isfinite(grad)), gamma
    # Confident and right: 0; confident and wrong: bounded by -log ε.
    bound = -np.log(1e-7), -np.log1p(-keras.HIGH)  # -log ε, and -log(1 - (1 - ε)) in float32
    np.testing.assert_allclose(jl.binary_focal_loss(p, y)[:4], [0, 0, *bound], rtol=1e-5)


def test_gradients_match_central_differences(rng):
    """With respect to the probabilities and to soft labels, in float64."""
    with float64():
        p = rng.uniform(0.1, 0.9, size=(3, 4))
        y = rng.uniform(0.0, 1.0, size=(3, 4))
        yc = rng.dirichlet(np.ones(4), size=3)
        cases = [
            (
                lambda a, b: jl.binary_focal_loss(
                    a,
                    b,
                    alpha=0.3,
                    gamma=1.5,
                    class_weights=(0.5, 2.0),
                    label_smoothing=0.1,
                    reduction="weighted_mean",
                ),
                y,
            ),
            (
                lambda a, b: jl.categorical_focal_loss(
                    a,
                    b,
                    gamma=2.0,
                    class_weights=jnp.array([1.0, 2.0, 0.5, 3.0]),
                    label_smoothing=0.1,
                    reduction="sum",
                ),
                yc,
            ),
        ]
        for fn, labels in cases:
            assert_grads_match_fd(fn, [p, labels], [0, 1], rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_16_bit_probabilities_give_float32(dtype):
    p = jnp.array([[0.2, 0.8], [0.6, 0.4]], dtype)
    y = jnp.array([[0.0, 1.0], [1.0, 0.0]])
    assert jl.binary_focal_loss(p, y).dtype == jnp.float32
    assert jl.categorical_focal_loss(p, y).dtype == jnp.float32
