"""Errors that teach: the mistakes users bring from PyTorch, Keras and Flax get a message that
names the fix, raised at the call (trace time under ``jit``), never an XLA trace."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss as jl

X = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
Y = jnp.array([0, 2])


def test_pytorch_weight_names_class_weights():
    with pytest.raises(TypeError, match=r"PyTorch's weight= .* is class_weights= in jaxloss"):
        jl.softmax_cross_entropy_with_integer_labels(X, Y, weight=jnp.ones(3))
    # a function without class weights points to weights=
    with pytest.raises(TypeError, match=r"is weights= in jaxloss"):
        jl.huber_loss(X, weight=jnp.ones(3))


def test_keras_sample_weight_names_weights():
    with pytest.raises(TypeError, match=r"Keras's sample_weight= .* is weights= in jaxloss"):
        jl.sigmoid_binary_cross_entropy(X, jnp.ones_like(X), sample_weight=jnp.ones(2))
    # cohen_kappa has its own sample_weight= (scikit-learn's): accepted there
    assert np.isfinite(jl.cohen_kappa(Y, Y, 3, sample_weight=jnp.ones(2)))


@pytest.mark.parametrize(
    ("keyword", "fix"),
    [("mask", "where="), ("dim", "axis="), ("size_average", "reduction="), ("wieghts", "weights=")],
)
def test_other_keywords_name_the_fix(keyword, fix):
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{keyword}'.*{fix}"):
        jl.softmax_cross_entropy_with_integer_labels(X, Y, **{keyword: 1})


def test_the_hints_keep_signatures_docs_and_jit():
    fn = jl.softmax_cross_entropy_with_integer_labels
    assert "class_weights" in inspect.signature(fn).parameters
    assert fn.__doc__ and fn.__module__ == "jaxloss.classification"
    assert fn is jl.classification.softmax_cross_entropy_with_integer_labels
    jitted = jax.jit(fn, static_argnames=("reduction",))
    np.testing.assert_allclose(jitted(X, Y, reduction="sum"), jnp.sum(fn(X, Y)), rtol=1e-6)
    with pytest.raises(TypeError, match="class_weights="):
        jax.jit(lambda x, y: fn(x, y, weight=jnp.ones(3)))(X, Y)


def test_every_public_function_teaches_its_keywords():
    for name in jl.__all__:
        fn = getattr(jl, name)
        if not inspect.isfunction(fn):
            continue
        params = inspect.signature(fn).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            continue
        assert hasattr(fn, "__wrapped__"), f"{name}: unknown keywords get no hint"


@pytest.mark.parametrize("fn", [jl.dropout, jl.alpha_dropout])
def test_dropout_in_the_wrong_order_names_the_order(fn):
    key, x = jax.random.key(0), jnp.ones((2, 3))
    name = fn.__name__
    with pytest.raises(TypeError, match=rf"{name} takes \(key, x, rate\).*PRNG key as rate"):
        fn(x, 0.5, key)
    with pytest.raises(TypeError, match=rf"{name} takes \(key, x, rate\).*PRNG key as x"):
        fn(x, key, 0.5)
    with pytest.raises(TypeError, match=r"PRNG key as rate"):
        fn(x, 0.5, jax.random.PRNGKey(0))  # a legacy raw key too
    assert fn(key, x, 0.5).shape == (2, 3)
    with pytest.raises(TypeError, match=r"dropout_mask takes \(key, shape, rate\)"):
        jl.dropout_mask((2, 3), key, 0.5)


def test_integer_labels_to_softmax_cross_entropy_name_the_integer_function():
    for fn in (jl.softmax_cross_entropy, jl.safe_softmax_cross_entropy):
        with pytest.raises(TypeError, match="use softmax_cross_entropy_with_integer_labels"):
            fn(X, Y)
    # square logits: integer labels [B] would broadcast to [B, C] silently; refused too
    with pytest.raises(TypeError, match="softmax_cross_entropy_with_integer_labels"):
        jl.softmax_cross_entropy(jnp.zeros((3, 3)), jnp.array([0, 1, 2]))
    with pytest.raises(TypeError, match=r"jax.nn.one_hot\(labels, 3\)"):
        jl.poly_loss_cross_entropy(X, Y)
    # integer one-hot labels of the logits' shape are probabilities: accepted, as in optax
    onehot = jax.nn.one_hot(Y, 3, dtype=jnp.int32)
    np.testing.assert_allclose(
        jl.softmax_cross_entropy(X, onehot), jl.softmax_cross_entropy_with_integer_labels(X, Y)
    )


def test_where_is_boolean_or_integer_zero_one_and_a_float_where_is_refused():
    losses = jnp.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(jl.reduce(losses, where=jnp.array([True, False, True])), 2.0)
    np.testing.assert_allclose(jl.reduce(losses, where=jnp.array([1, 0, 1])), 2.0)
    for fn in (
        lambda w: jl.reduce(losses, where=w),
        lambda w: jl.softmax(losses, where=w),
        lambda w: jl.sparsemax(losses, where=w),
        lambda w: jl.squared_error(losses, where=w),
    ):
        with pytest.raises(TypeError, match=r"where must be a boolean mask \(or integer 0/1\)"):
            fn(jnp.array([1.0, 0.0, 1.0]))
