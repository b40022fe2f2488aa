"""ranking_softmax_loss against a NumPy loop over lists, and finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss as jl

from helpers import float64, numeric_grad


def np_ranking(scores, labels, where=None, weights=None):
    """Per-list loss: softmax cross-entropy over the valid items, labels times weights."""
    out = []
    for i in range(scores.shape[0]):
        valid = np.ones(scores.shape[1], bool) if where is None else where[i]
        if not valid.any():
            out.append(0.0)
            continue
        s = scores[i][valid]
        y = labels[i][valid] * (1.0 if weights is None else weights[i][valid])
        log_p = s - np.log(np.exp(s - s.max()).sum()) - s.max()
        out.append(-(y * log_p).sum())
    return np.array(out)


@pytest.fixture
def lists(rng):
    scores = rng.normal(size=(4, 6))
    labels = rng.integers(0, 3, size=(4, 6)).astype(float)
    where = rng.random((4, 6)) < 0.7
    where[2] = False  # a list with no valid item
    weights = rng.random((4, 6))
    return scores, labels, where, weights


def test_values_masks_weights_and_reduce_fn(lists):
    scores, labels, where, weights = lists
    s, y = jnp.float32(scores), jnp.float32(labels)
    per = np_ranking(scores, labels)
    np.testing.assert_allclose(jl.ranking_softmax_loss(s, y), per.mean(), rtol=1e-5)
    np.testing.assert_allclose(
        jl.ranking_softmax_loss(s, y, reduce_fn=jnp.sum), per.sum(), rtol=1e-5
    )
    per = np_ranking(scores, labels, where, weights)
    kw = {"where": jnp.asarray(where), "weights": jnp.float32(weights)}
    np.testing.assert_allclose(
        jl.ranking_softmax_loss(s, y, reduce_fn=None, **kw), per, rtol=1e-5, atol=1e-6
    )
    # The mean is over lists with at least one valid item.
    np.testing.assert_allclose(
        jl.ranking_softmax_loss(s, y, **kw), np.delete(per, 2).mean(), rtol=1e-5
    )

    # A custom reduce_fn is called with where= (optax's convention).
    def largest(v, where):
        return jnp.max(v, where=where, initial=-jnp.inf)

    np.testing.assert_allclose(
        jl.ranking_softmax_loss(s, y, reduce_fn=largest, **kw), np.delete(per, 2).max(), rtol=1e-5
    )


def test_contract_reduction_and_list_weights(lists):
    scores, labels, where, _ = lists
    s, y = jnp.float32(scores), jnp.float32(labels)
    per = np_ranking(scores, labels, where)
    lw = np.array([1.0, 2.0, 5.0, 0.5])
    got = jl.ranking_softmax_loss(
        s, y, where=jnp.asarray(where), reduction="weighted_mean", list_weights=jnp.float32(lw)
    )
    keep = np.array([True, True, False, True])
    np.testing.assert_allclose(got, np.sum((lw * per)[keep]) / lw[keep].sum(), rtol=1e-5)
    with pytest.raises(ValueError, match="not both"):
        jl.ranking_softmax_loss(s, y, reduce_fn=jnp.sum, reduction="sum")
    with pytest.raises(ValueError, match="list_weights needs reduction"):
        jl.ranking_softmax_loss(s, y, list_weights=jnp.ones(4))
    with pytest.raises(ValueError, match="reduction must be one of"):
        jl.ranking_softmax_loss(s, y, reduction="avg")


def test_gradient_and_masked_items(lists):
    scores, labels, where, weights = lists
    with float64():
        f = jax.jit(lambda v: jl.ranking_softmax_loss(v, labels, where=where, weights=weights))
        grad = jax.grad(f)(scores)
        np.testing.assert_allclose(grad, numeric_grad(f, scores), rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(np.asarray(grad)[~where], 0.0)
    # NaN scores of masked items do not leak.
    bad = jnp.float32(scores).at[~where].set(jnp.nan)
    value, g = jax.value_and_grad(
        lambda v: jl.ranking_softmax_loss(v, jnp.float32(labels), where=jnp.asarray(where))
    )(bad)
    assert np.isfinite(value) and np.all(np.isfinite(g))


def test_jit_vmap_and_bf16(lists):
    scores, labels, _, _ = lists
    s, y = jnp.float32(scores), jnp.float32(labels)
    per_list = jax.jit(jax.vmap(lambda a, b: jl.ranking_softmax_loss(a, b)))(s, y)
    np.testing.assert_allclose(per_list, np_ranking(scores, labels), rtol=1e-5)
    out = jl.ranking_softmax_loss(s.astype(jnp.bfloat16), y)
    assert out.dtype == jnp.float32
    g = jax.grad(jl.ranking_softmax_loss)(s.astype(jnp.bfloat16), y)
    assert g.dtype == jnp.bfloat16


def test_margin_ranking_loss_against_numpy_and_finite_differences():
    rng = np.random.default_rng(13)
    a, b = rng.normal(size=(2, 6)).astype(np.float32)
    t = np.where(rng.random(6) > 0.5, 1.0, -1.0).astype(np.float32)
    per = np.maximum(0.0, -t * (a - b) + 0.4)
    np.testing.assert_allclose(jl.margin_ranking_loss(a, b, t, margin=0.4), per, rtol=1e-6)
    keep = np.array([True, True, False, True, False, True])
    np.testing.assert_allclose(
        jl.margin_ranking_loss(a, b, t, margin=0.4, where=keep, reduction="mean"),
        per[keep].mean(),
        rtol=1e-6,
    )
    with float64():
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        ga, gb = jax.grad(
            lambda u, v: jl.margin_ranking_loss(u, v, t, margin=0.4, reduction="sum"), (0, 1)
        )(a64, b64)
        np.testing.assert_allclose(
            ga,
            numeric_grad(
                lambda u: jl.margin_ranking_loss(u, b64, t, margin=0.4, reduction="sum"), a64
            ),
            atol=1e-8,
        )
        np.testing.assert_allclose(gb, -ga, atol=1e-12)
    with pytest.raises(ValueError, match="must broadcast together"):
        jl.margin_ranking_loss(a, b[:3], t)
