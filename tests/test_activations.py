"""Softmax family, sigmoid family and one_hot against NumPy references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jaxloss as jl

from helpers import float64, numeric_grad


def np_softmax(x, axis=-1, mask=None, t=1.0):
    x = np.asarray(x, np.float64) / t
    if mask is not None:
        x = np.where(mask, x, -np.inf)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    e = np.exp(x - m)
    s = e.sum(axis=axis, keepdims=True)
    return np.where(s == 0, 0, e / np.where(s == 0, 1, s))


def test_softmax_values_axis_temperature(rng):
    x = rng.normal(size=(3, 4, 5)).astype(np.float32)
    for axis in (-1, 1, 0):
        np.testing.assert_allclose(
            jl.softmax(x, axis=axis), np_softmax(x, axis), rtol=1e-5, atol=1e-7
        )
    np.testing.assert_allclose(jl.softmax(x, temperature=2.5), np_softmax(x, t=2.5), rtol=1e-5)
    np.testing.assert_allclose(
        jl.log_softmax(x, temperature=0.5), np.log(np_softmax(x, t=0.5)), rtol=1e-5, atol=1e-6
    )
    # Multiple axes: a joint distribution over axes (1, 2).
    joint = np_softmax(x.reshape(3, 20)).reshape(3, 4, 5)
    np.testing.assert_allclose(jl.softmax(x, axis=(1, 2)), joint, rtol=1e-5, atol=1e-7)


def test_masked_softmax_zero_probability_and_empty_rows(rng):
    x = rng.normal(size=(4, 6)).astype(np.float32)
    mask = rng.random((4, 6)) > 0.5
    mask[0] = False  # a fully masked row
    mask[1] = True
    p = np.asarray(jl.softmax(x, where=mask))
    np.testing.assert_allclose(p, np_softmax(x, mask=mask), rtol=1e-5, atol=1e-7)
    assert np.all(p[~mask] == 0.0)
    assert np.all(p[0] == 0.0)
    lp = np.asarray(jl.log_softmax(x, where=mask))
    assert np.all(lp[~mask] == -np.inf)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(lp[mask], np.log(np_softmax(x, mask=mask))[mask], rtol=1e-5)
    lse = np.asarray(jl.logsumexp(x, where=mask))
    assert lse[0] == -np.inf
    np.testing.assert_allclose(
        lse[1:], np.log(np.sum(np.exp(x[1:]) * mask[1:], axis=-1)), rtol=1e-5
    )
    # Gradients through masked and fully-masked rows are finite, and zero where masked.
    for fn in (jl.softmax, jl.log_softmax):
        g = jax.grad(lambda z, fn=fn: jnp.sum(jnp.where(mask, fn(z, where=mask), 0) * 1.3))(x)
        assert np.all(np.isfinite(g)) and np.all(np.asarray(g)[~mask] == 0)
    g = jax.grad(
        lambda z: jnp.sum(
            jnp.where(jnp.isfinite(jl.logsumexp(z, where=mask)), jl.logsumexp(z, where=mask), 0)
        )
    )(x)
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g)[0] == 0)


def test_extreme_logits_are_finite():
    x = jnp.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [3e38, -3e38, 0.0]])
    for fn in (jl.softmax, jl.log_softmax, jl.logsumexp):
        out = fn(x[:2])
        assert np.all(np.isfinite(out)), fn.__name__
        g = jax.grad(lambda z, fn=fn: jnp.sum(fn(z)[..., 0]))(x[:2])
        assert np.all(np.isfinite(g)), fn.__name__
    np.testing.assert_allclose(jl.logsumexp(x[1]), -1e4 + np.log(3), rtol=1e-6)
    np.testing.assert_allclose(jl.sigmoid(x[0]), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(jl.log_sigmoid(x[0]), [0.0, -1e4, -np.log(2)], rtol=1e-6)
    assert np.all(np.isfinite(jax.grad(lambda z: jl.log_sigmoid(z).sum())(x[0])))


def test_gradients_match_finite_differences(rng):
    with float64():
        x = rng.normal(size=(2, 5))
        mask = np.array([[True, False, True, True, False], [True] * 5])
        c = rng.normal(size=(2, 5))

        def f(z):
            return jnp.sum(c * jnp.where(mask, jl.log_softmax(z, where=mask, temperature=1.7), 0))

        np.testing.assert_allclose(jax.grad(f)(x), numeric_grad(f, x), rtol=1e-6, atol=1e-8)

        def g(z):
            return jnp.sum(c[:, 0] * jl.logsumexp(z, where=mask))

        np.testing.assert_allclose(jax.grad(g)(x), numeric_grad(g, x), rtol=1e-6, atol=1e-8)

        def h(z):
            return jnp.sum(c * jl.softmax(z, axis=0))

        np.testing.assert_allclose(jax.grad(h)(x), numeric_grad(h, x), rtol=1e-6, atol=1e-8)


@given(st.floats(-50, 50), st.lists(st.floats(-20, 20), min_size=2, max_size=8))
def test_softmax_shift_invariance(shift, values):
    x = jnp.asarray(values, jnp.float32)
    np.testing.assert_allclose(jl.softmax(x + shift), jl.softmax(x), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        jl.logsumexp(x + shift), jl.logsumexp(x) + shift, rtol=1e-5, atol=1e-4
    )


def test_one_hot_ignore_and_out_of_range():
    y = jnp.array([0, 2, -1, 3, 255])
    out = np.asarray(jl.one_hot(y, 3, ignore_index=255))
    np.testing.assert_array_equal(
        out, np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0], [0, 0, 0]], np.float32)
    )
    assert jl.one_hot(y, 3, dtype=jnp.bfloat16).dtype == jnp.bfloat16
    assert jl.one_hot(y.reshape(1, 5), 3, axis=1).shape == (1, 3, 5)
    # An all-zero one-hot row is an unlabeled example for the probability-label loss.
    logits = jnp.ones((5, 3))
    mean = jl.softmax_cross_entropy(logits, jl.one_hot(y, 3), reduction="mean")
    np.testing.assert_allclose(mean, np.log(3), rtol=1e-6)


def test_jit_and_vmap_compose(rng):
    x = rng.normal(size=(3, 4, 5)).astype(np.float32)
    mask = rng.random((3, 4, 5)) > 0.3
    f = jax.jit(lambda z, m: jl.log_softmax(z, where=m, temperature=0.7))
    v = jax.vmap(lambda z, m: jl.log_softmax(z, where=m, temperature=0.7))
    np.testing.assert_allclose(f(x, mask), v(x, mask), rtol=1e-6)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: jl.softmax(jnp.arange(3)),  # integer logits
        lambda: jl.softmax(jnp.ones(3), axis=2),  # axis out of range
        lambda: jl.softmax(jnp.ones((2, 3)), where=jnp.ones(4, bool)),
        lambda: jl.softmax(jnp.ones(3), temperature=0.0),
        lambda: jl.one_hot(jnp.ones(3), 3),  # float labels
        lambda: jl.one_hot(jnp.ones(3, int), 0),
    ],
)
def test_bad_input_raises(bad):
    with pytest.raises((ValueError, TypeError)):
        bad()
