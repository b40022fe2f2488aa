"""Exact reductions across microbatches and mesh axes: ``reduction="parts"``, ``LossParts`` and
``axis_name=`` (the reducer's own tests; every loss goes through them in ``test_contract.py``).

References are full-batch calls of the same loss (whose values are checked against PyTorch's
formula and optax in ``test_classification.py``) and NumPy sums written out by hand.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss as jl

NUMBER_REDUCTIONS = ("sum", "mean", "weighted_mean", "sum_by_nonzero_weights")
IGNORE = -100


def _token_batch(valid_counts=(23, 1, 5, 24), tokens=32, features=6, classes=11, seed=0):
    """Microbatches of ``tokens`` tokens with exactly ``valid_counts`` non-ignored labels."""
    rng = np.random.default_rng(seed)
    n = len(valid_counts)
    hidden = rng.normal(size=(n, tokens, features)).astype(np.float32)
    labels = rng.integers(0, classes, size=(n, tokens))
    for b, valid in enumerate(valid_counts):
        ignored = rng.permutation(tokens)[valid:]
        labels[b, ignored] = IGNORE
    token_weights = rng.uniform(0.5, 2.0, size=(n, tokens)).astype(np.float32)
    class_weights = rng.uniform(0.2, 3.0, size=classes).astype(np.float32)
    params = (rng.normal(size=(features, classes)) * 0.5).astype(np.float32)
    return hidden, labels, token_weights, class_weights, params


def _loss(params, hidden, labels, token_weights, class_weights, reduction):
    return jl.softmax_cross_entropy_with_integer_labels(
        hidden @ params,
        labels,
        weights=token_weights,
        class_weights=class_weights,
        ignore_index=IGNORE,
        label_smoothing=0.1,
        reduction=reduction,
    )


def _accumulate(params, hidden, labels, token_weights, class_weights):
    """Summed parts and summed gradients of ``parts.total`` over the microbatches, in a scan."""

    def total_and_parts(p, h, y, w):
        parts = _loss(p, h, y, w, class_weights, "parts")
        return parts.total, parts

    grad_fn = jax.grad(total_and_parts, has_aux=True)

    def step(carry, batch):
        parts_sum, grad_sum = carry
        grads, parts = grad_fn(params, *batch)
        return (parts_sum + parts, jax.tree.map(jnp.add, grad_sum, grads)), None

    init = (jl.LossParts.zeros(), jnp.zeros_like(params))
    (parts, grads), _ = jax.lax.scan(step, init, (hidden, labels, token_weights))
    return parts, grads


def test_microbatch_accumulation_equals_the_full_batch_in_value_and_gradient():
    hidden, labels, token_weights, class_weights, params = _token_batch()
    parts, summed_grads = jax.jit(_accumulate)(params, hidden, labels, token_weights, class_weights)
    flat = [a.reshape(-1, *a.shape[2:]) for a in (hidden, labels, token_weights)]
    assert float(parts.count) == 23 + 1 + 5 + 24
    for reduction in ("weighted_mean", "mean"):
        full, full_grad = jax.value_and_grad(_loss)(params, *flat, class_weights, reduction)
        np.testing.assert_allclose(parts.value(reduction), full, rtol=1e-5)
        np.testing.assert_allclose(
            parts.normalize(summed_grads, reduction), full_grad, rtol=1e-4, atol=1e-7
        )
    # The bug this replaces: the mean of per-microbatch means is not the mean of the data.
    means = [
        _loss(params, hidden[b], labels[b], token_weights[b], class_weights, "weighted_mean")
        for b in range(4)
    ]
    full = _loss(params, *flat, class_weights, "weighted_mean")
    assert abs(float(np.mean(means)) - float(full)) > 1e-3


def test_parts_hold_the_sums_every_reduction_divides():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(10, 4)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, IGNORE, 1, 2, 0, IGNORE, 3])
    w = rng.uniform(0.0, 2.0, size=10).astype(np.float32)
    w[2] = 0.0
    cw = np.array([1.0, 0.0, 2.0, 0.5], np.float32)  # class 1 weighs nothing
    parts = jl.softmax_cross_entropy_with_integer_labels(
        logits, labels, weights=w, class_weights=cw, ignore_index=IGNORE, reduction="parts"
    )
    # By hand, in float64: the unweighted per-token loss is lse - x_y.
    x = logits.astype(np.float64)
    lse = np.log(np.exp(x).sum(-1))
    included = (labels != IGNORE) & (w != 0)
    safe = np.where(labels == IGNORE, 0, labels)
    d = np.where(included, w * cw[safe], 0.0)
    n = np.where(included, d * (lse - x[np.arange(10), safe]), 0.0)
    np.testing.assert_allclose(parts.total, n.sum(), rtol=1e-5)
    assert float(parts.count) == included.sum() == 7
    np.testing.assert_allclose(parts.weight, d.sum(), rtol=1e-6)
    assert float(parts.nonzero) == (d != 0).sum() == 5
    for reduction in NUMBER_REDUCTIONS:
        direct = jl.softmax_cross_entropy_with_integer_labels(
            logits, labels, weights=w, class_weights=cw, ignore_index=IGNORE, reduction=reduction
        )
        np.testing.assert_allclose(parts.value(reduction), direct, rtol=1e-6, err_msg=reduction)
    np.testing.assert_allclose(parts.denominator("sum"), 1.0)


def test_parts_of_nothing_are_zero_and_divide_to_zero_with_zero_gradient():
    empty = jl.reduce(jnp.array([1.0, 2.0]), where=jnp.zeros(2, bool), reduction="parts")
    assert all(float(v) == 0.0 for v in jax.tree.leaves(empty))
    for reduction in NUMBER_REDUCTIONS:
        assert float(empty.value(reduction)) == 0.0
    grads = empty.normalize({"w": jnp.ones(3)}, "weighted_mean")
    assert np.all(np.asarray(grads["w"]) == 0.0)
    zeros = jl.LossParts.zeros(jnp.float32)
    assert jax.tree.map(float, zeros + empty) == jax.tree.map(float, empty)


def test_parts_are_a_pytree_that_crosses_jit_and_psum():
    parts = jax.jit(lambda x: jl.reduce(x, reduction="parts"))(jnp.arange(4.0))
    assert isinstance(parts, jl.LossParts)
    assert float(parts.total) == 6.0 and float(parts.count) == 4.0
    stacked = jax.vmap(lambda x: jl.reduce(x, reduction="parts").psum("i"), axis_name="i")(
        jnp.arange(6.0).reshape(2, 3)
    )
    np.testing.assert_allclose(stacked.total, [15.0, 15.0])
    np.testing.assert_allclose(stacked.count, [6.0, 6.0])


@pytest.mark.parametrize("reduction", NUMBER_REDUCTIONS)
def test_axis_name_gives_the_global_value_and_gradient(reduction):
    """``vmap(axis_name=)`` stands in for the mesh axis (shard_map runs in test_scale)."""
    hidden, labels, token_weights, class_weights, params = _token_batch()
    flat = [a.reshape(-1, *a.shape[2:]) for a in (hidden, labels, token_weights)]

    def sharded(p):
        def per_shard(h, y, w):
            return jl.softmax_cross_entropy_with_integer_labels(
                h @ p,
                y,
                weights=w,
                class_weights=class_weights,
                ignore_index=IGNORE,
                label_smoothing=0.1,
                reduction=reduction,
                axis_name="shards",
            )

        values = jax.vmap(per_shard, axis_name="shards")(hidden, labels, token_weights)
        return values[0], values

    (value, values), grad = jax.value_and_grad(sharded, has_aux=True)(params)
    full, full_grad = jax.value_and_grad(_loss)(params, *flat, class_weights, reduction)
    np.testing.assert_allclose(values, np.full(4, full), rtol=1e-5)  # the same on every shard
    np.testing.assert_allclose(value, full, rtol=1e-5)
    np.testing.assert_allclose(grad, full_grad, rtol=1e-4, atol=1e-7)


def test_axis_name_over_two_named_axes_and_none_is_unchanged():
    x = jnp.arange(12.0).reshape(2, 3, 2)
    f = jax.vmap(
        jax.vmap(lambda v: jl.reduce(v, reduction="mean", axis_name=("a", "b")), axis_name="b"),
        axis_name="a",
    )
    np.testing.assert_allclose(f(x), np.full((2, 3), x.mean()))
    per = jax.vmap(lambda v: jl.reduce(v, reduction="none", axis_name="a"), axis_name="a")(x)
    np.testing.assert_array_equal(per, x)


def test_axis_name_and_parts_errors():
    with pytest.raises(ValueError, match=r"axis_name='data' is not a bound mesh axis"):
        jl.reduce(jnp.ones(3), axis_name="data")
    with pytest.raises(TypeError, match="axis_name must be a mesh axis name"):
        jl.reduce(jnp.ones(3), axis_name=["data"])
    parts = jl.reduce(jnp.ones(3), reduction="parts")
    with pytest.raises(ValueError, match="needs a reduction to a number"):
        parts.value("none")
    with pytest.raises(ValueError, match="reduction must be one of"):
        parts.value("average")
    with pytest.raises(ValueError, match="not available for a combined loss"):
        jl.dice_ce_loss(jnp.zeros((1, 2, 2, 3)), jnp.zeros((1, 2, 2), int), reduction="parts")


def _takes_reduction(fn):
    try:
        return "reduction" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


# optax's dice losses reduce across classes only (their ``reduction`` is optax's).
CLASS_REDUCING = {"dice_loss", "binary_dice_loss", "multiclass_generalized_dice_loss"}


def test_every_loss_with_a_reduction_takes_axis_name():
    names = [
        n
        for n in jl.__all__
        if callable(getattr(jl, n)) and _takes_reduction(getattr(jl, n)) and n not in CLASS_REDUCING
    ]
    assert len(names) > 50
    missing = [n for n in names if "axis_name" not in inspect.signature(getattr(jl, n)).parameters]
    assert not missing, missing
    fy = jl.make_fenchel_young_loss(jax.scipy.special.logsumexp)
    assert "axis_name" in inspect.signature(fy).parameters
