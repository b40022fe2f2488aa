"""``jaxloss.checked`` on user functions built from jaxloss calls: eagerly and inside ``jit``,
``vmap`` and ``grad``; bad values raise with the message of the failed check."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jaxloss as jl

LOGITS = jnp.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
GOOD = jnp.array([0, 2])
BAD = jnp.array([0, 7])
MESSAGE = r"labels must lie in \[0, 3\) or equal ignore_index=None; got an out-of-range label, 7"


def user_loss(logits, labels):
    """A user's objective: two jaxloss calls and some arithmetic."""
    ce = jl.softmax_cross_entropy_with_integer_labels(logits, labels, reduction="mean")
    return ce + 0.1 * jl.entropy_loss(logits, reduction="mean")


def reference(logits, labels):
    """The same objective by hand (NumPy), for the value and the gradient."""
    lse = np.log(np.exp(logits).sum(-1))
    ce = np.mean(lse - logits[np.arange(len(labels)), labels])
    p = np.exp(logits - lse[:, None])
    return ce + 0.1 * np.mean(-(p * np.log(p)).sum(-1))


#: What ``checked`` raises: checkify's error when the values are known at the call, XLA's
#: runtime error (its message ends with the check's) from inside a compiled program.
ERRORS = (checkify.JaxRuntimeError, jax.errors.JaxRuntimeError)


TRANSFORMS = {
    "eager": lambda f: f,
    "jit": jax.jit,
    "grad": jax.grad,
    "jit(grad)": lambda f: jax.jit(jax.grad(f)),
    "grad(jit)": lambda f: jax.grad(jax.jit(f)),
    "vmap": lambda f: jax.vmap(f, in_axes=(None, 0)),
    "jit(vmap)": lambda f: jax.jit(jax.vmap(f, in_axes=(None, 0))),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_checked_passes_good_values_through_every_transform(name):
    wrap = TRANSFORMS[name]
    checked_fn = wrap(jl.checked(user_loss))
    plain_fn = wrap(user_loss)
    labels = GOOD if "vmap" not in name else jnp.stack([GOOD, GOOD[::-1]])
    np.testing.assert_allclose(checked_fn(LOGITS, labels), plain_fn(LOGITS, labels), rtol=1e-6)


def test_checked_value_and_gradient_match_a_hand_computation():
    value, grad = jax.value_and_grad(jl.checked(user_loss))(LOGITS, GOOD)
    x = np.asarray(LOGITS, np.float64)
    np.testing.assert_allclose(value, reference(x, np.asarray(GOOD)), rtol=1e-5)
    eps, numeric = 1e-5, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[i] = eps
        numeric[i] = (reference(x + d, GOOD) - reference(x - d, GOOD)) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_checked_raises_on_a_bad_label_in_every_transform(name):
    wrap = TRANSFORMS[name]
    fn = wrap(jl.checked(user_loss))
    labels = BAD if "vmap" not in name else jnp.stack([GOOD, BAD])
    with pytest.raises(ERRORS, match=MESSAGE):
        jax.block_until_ready(fn(LOGITS, labels))


def test_checked_without_a_bad_value_is_plain_nan_free_and_plain_calls_give_nan():
    # The contrast checked exists for: without it, the bad element is NaN, silently.
    assert np.isnan(jl.softmax_cross_entropy_with_integer_labels(LOGITS, BAD)[1])
    assert np.isfinite(jl.checked(user_loss)(LOGITS, GOOD))


def test_checked_inside_an_outer_checkify_still_raises():
    f = checkify.checkify(jax.jit(jl.checked(user_loss)))
    err, _ = f(LOGITS, GOOD)
    assert err.get() is None


def test_checked_rejects_a_non_function_at_once():
    with pytest.raises(TypeError, match=r"checked takes a function.*got 3 of type int"):
        jl.checked(3)
    with pytest.raises(TypeError, match="jit must be a bool"):
        jl.checked(user_loss, jit="yes")


def test_checked_says_did_you_mean_ignore_index_minus_100():
    labels = jnp.array([0, -100])
    loss = jl.checked(jl.softmax_cross_entropy_with_integer_labels)
    with pytest.raises(checkify.JaxRuntimeError, match=r"did you mean ignore_index=-100\?"):
        loss(LOGITS, labels)
    # with the ignore index, or with the element excluded by where, nothing is wrong
    np.testing.assert_allclose(loss(LOGITS, labels, ignore_index=-100)[1], 0.0)
    np.testing.assert_allclose(loss(LOGITS, labels, where=jnp.array([True, False]))[1], 0.0)
    # under jit too, and a -1 is reported with its value, not as -100
    with pytest.raises(jax.errors.JaxRuntimeError, match="did you mean ignore_index=-100"):
        jax.jit(loss)(LOGITS, labels).block_until_ready()
    with pytest.raises(checkify.JaxRuntimeError, match="out-of-range label, -1"):
        loss(LOGITS, jnp.array([0, -1]))


def test_checked_integer_where_must_hold_zero_and_one():
    loss = jl.checked(lambda x, w: jl.squared_error(x, where=w, reduction="mean"))
    x = jnp.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(loss(x, jnp.array([1, 0, 1])), (1.0 + 9.0) / 2)
    with pytest.raises(checkify.JaxRuntimeError, match="must hold only 0 and 1"):
        loss(x, jnp.array([1, 0, 2]))


def test_checked_metrics_quote_the_bad_label_as_the_losses_do():
    def top2(x, y, **kw):
        return jl.top_k_accuracy(x, y, k=2, **kw)

    for plain in (jl.accuracy, top2):
        metric = jl.checked(plain)
        with pytest.raises(checkify.JaxRuntimeError, match=r"did you mean ignore_index=-100\?"):
            metric(LOGITS, jnp.array([0, -100]))
        with pytest.raises(checkify.JaxRuntimeError, match=MESSAGE):
            metric(LOGITS, BAD)
        # Without checked the bad element makes the result NaN; excluded, it is fine.
        assert np.isnan(float(plain(LOGITS, BAD)))
        np.testing.assert_allclose(metric(LOGITS, BAD, where=jnp.array([True, False])), 1.0)
    acc = jl.checked(jl.accuracy)
    # [2, 0, -1] -> class 0 (right), [0.5, 0.5, 0] -> class 0 (wrong, label 2): 1 of 2.
    np.testing.assert_allclose(acc(LOGITS, jnp.array([0, 2])), 0.5)
    np.testing.assert_allclose(acc(LOGITS, jnp.array([0, -100]), ignore_index=-100), 1.0)
    # Predicted labels carry no class count: nothing to check, labels compared as they are.
    np.testing.assert_allclose(acc(jnp.array([7, 1]), jnp.array([7, 2])), 0.5)
