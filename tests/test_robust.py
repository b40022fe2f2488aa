"""Generalised cross-entropy against Keras's definition and literal, and its limits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras_reference as keras
import numpy as np
import optax

import jaxloss as jl

from helpers import accelerator_hlo, assert_grads_match_fd, float64, numeric_grad


def test_keras_literal_and_definition(rng):
    # keras.losses.CategoricalGeneralizedCrossEntropy(q=0.7) on Keras's documented example.
    probs = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4], [0.4, 0.6]], np.float32)
    labels = np.array([0, 1, 0, 1])
    got = jl.generalized_cross_entropy(jnp.log(probs), labels, q=0.7, reduction="mean")
    np.testing.assert_allclose(got, 0.34529287, rtol=1e-6)
    logits = (rng.normal(size=(6, 5)) * 2).astype(np.float32)
    labels = rng.integers(0, 5, size=6)
    for q in (0.1, 0.5, 0.7, 1.0):
        expected = keras.categorical_generalized_cross_entropy(labels, keras.softmax(logits), q)
        np.testing.assert_allclose(
            jl.generalized_cross_entropy(logits, labels, q=q), expected, rtol=2e-5
        )
    # q -> 0 is the cross-entropy, q = 1 the MAE 1 - p_y.
    np.testing.assert_allclose(
        jl.generalized_cross_entropy(logits, labels, q=1e-6),
        optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels),
        rtol=1e-4,
    )
    p_y = keras.softmax(logits)[np.arange(6), labels]
    np.testing.assert_allclose(
        jl.generalized_cross_entropy(logits, labels, q=1.0), 1 - p_y, rtol=1e-5
    )


def test_labels_class_weights_and_ignore_index(rng):
    logits = (rng.normal(size=(2, 5, 4)) * 2).astype(np.float32)  # class axis 1
    labels = rng.integers(0, 5, size=(2, 4))
    labels[0, 0] = -1
    cw = np.linspace(0.5, 2.0, 5).astype(np.float32)
    per = np.asarray(jl.generalized_cross_entropy(logits, labels, q=0.7, axis=1, ignore_index=-1))
    assert per[0, 0] == 0.0
    onehot = np.moveaxis(np.eye(5, dtype=np.float32)[np.maximum(labels, 0)], -1, 1)
    onehot[0, :, 0] = 0.0  # unlabeled row
    np.testing.assert_allclose(
        jl.generalized_cross_entropy(logits, onehot, q=0.7, axis=1), per, rtol=1e-6
    )
    w_y = np.where(labels >= 0, cw[np.maximum(labels, 0)], 0.0)
    for lab in (labels, onehot):
        np.testing.assert_allclose(
            jl.generalized_cross_entropy(
                logits,
                lab,
                q=0.7,
                axis=1,
                class_weights=cw,
                ignore_index=-1,
                reduction="weighted_mean",
            ),
            (w_y * per).sum() / w_y.sum(),
            rtol=1e-5,
        )
    # Out-of-range labels give NaN for their element only.
    out = np.asarray(jl.generalized_cross_entropy(logits, labels, axis=1))
    assert np.isnan(out[0, 0]) and np.all(np.isfinite(out.ravel()[1:]))


def test_gradients_and_extreme_logits(rng):
    with float64():
        x = rng.normal(size=(4, 3))
        labels = jnp.asarray(rng.integers(0, 3, size=4))
        soft = rng.dirichlet(np.ones(3), size=4)
        cw = jnp.array([1.0, 2.0, 0.5])
        f_int = jax.jit(
            lambda z: jl.generalized_cross_entropy(
                z, labels, q=0.7, class_weights=cw, reduction="sum"
            )
        )
        np.testing.assert_allclose(jax.grad(f_int)(x), numeric_grad(f_int, x), rtol=1e-6, atol=1e-9)
        assert_grads_match_fd(
            lambda z, y: jl.generalized_cross_entropy(z, y, q=0.3, reduction="sum"),
            [x, soft],
            [0, 1],
        )
    z = jnp.array([[1e4, -1e4, 0.0]])
    for label in (0, 1):
        value, grad = jax.value_and_grad(
            lambda v, label=label: jl.generalized_cross_entropy(v, jnp.array([label])).sum()
        )(z)
        assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_label_pick_without_gathers_and_dtypes():
    """The true class is picked by an iota compare (DESIGN "Scale"): no gather, no scatter in
    the accelerator lowering (on CPU, ``pick_label`` may choose a gather)."""
    x = jnp.zeros((4, 6))
    labels = jnp.array([0, 5, 2, -1])
    fns = [
        lambda v: jl.generalized_cross_entropy(
            v, labels, class_weights=jnp.ones(6), ignore_index=-1
        ),
        lambda v: jl.additive_margin_softmax_loss(
            v, labels, class_weights=jnp.ones(6), ignore_index=-1
        ),
    ]
    for fn in fns:
        hlo = accelerator_hlo(jax.value_and_grad(lambda v, fn=fn: fn(v).sum()), x)
        assert "gather" not in hlo and "scatter" not in hlo
        assert jax.eval_shape(fn, x.astype(jnp.bfloat16)).dtype == jnp.float32
        with float64():
            assert jax.eval_shape(fn, np.zeros((4, 6))).dtype == jnp.float64
