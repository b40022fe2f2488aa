"""KL divergences, poly loss, sparsemax and its losses, Fenchel-Young losses.

References are NumPy formulas written here (sparsemax by bisection on the threshold, a
different algorithm from the library's sort), finite differences in float64 for gradients.
Parity with optax itself lives in tests/test_optax_parity.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp

import jaxloss as jl

from helpers import float64, numeric_grad


def np_log_softmax(x, axis=-1):
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


def np_kl(log_q, t):
    safe = np.where(t > 0, t, 1.0)
    return np.sum(np.where(t > 0, t * (np.log(safe) - log_q), 0.0), axis=-1)


def np_sparsemax(z, iters=200):
    """Projection onto the simplex by bisection on τ in Σ max(z - τ, 0) = 1."""
    lo = z.max(-1, keepdims=True) - 1.0
    hi = z.max(-1, keepdims=True)
    for _ in range(iters):
        mid = (lo + hi) / 2
        too_much = np.maximum(z - mid, 0).sum(-1, keepdims=True) > 1
        lo, hi = np.where(too_much, mid, lo), np.where(too_much, hi, mid)
    return np.maximum(z - (lo + hi) / 2, 0)


@pytest.fixture
def data(rng):
    x = rng.normal(size=(6, 5))
    t = np.exp(rng.normal(size=(6, 5)))
    t /= t.sum(-1, keepdims=True)
    t[0, 2] = 0.0  # an exact zero target
    t[0] /= t[0].sum()
    return x, np_log_softmax(x), t


# ---------------------------------------------------------------------------------------------
# KL divergences.


def test_kl_values(data):
    x, log_q, t = data
    lq32, t32 = jnp.float32(log_q), jnp.float32(t)
    np.testing.assert_allclose(jl.kl_divergence(lq32, t32), np_kl(log_q, t), rtol=1e-5, atol=1e-6)
    log_t = np.log(np.where(t > 0, t, 1.0))
    ours = jl.kl_divergence_with_log_targets(lq32, jnp.float32(log_t))
    expected = np.sum(np.exp(log_t) * (log_t - log_q), -1)
    np.testing.assert_allclose(ours[1:], expected[1:], rtol=1e-5, atol=1e-6)
    m = np.exp(x)  # unnormalised measures
    expected = np.sum(t * np.log(np.where(t > 0, t, 1)) - t * x + m - t, -1)
    for fn in (jl.generalized_kl_divergence, jl.convex_kl_divergence):
        np.testing.assert_allclose(fn(jnp.float32(x), t32), expected, rtol=1e-5, atol=1e-5)


def test_kl_is_zero_at_equality_and_positive_elsewhere(data):
    _, log_q, t = data
    q = np.exp(log_q)
    np.testing.assert_allclose(jl.kl_divergence(jnp.log(q), q), 0.0, atol=1e-6)
    assert np.all(np.asarray(jl.kl_divergence(jnp.float32(log_q), jnp.float32(t))) > 0)


def test_kl_contract(data):
    _, log_q, t = data
    lq, tt = jnp.float32(log_q), jnp.float32(t)
    per = np_kl(log_q, t)
    w = np.array([1.0, 2.0, 0.0, 1.0, 3.0, 1.0])
    rows = np.array([True, True, True, False, True, True])
    got = jl.kl_divergence(
        lq, tt, where=jnp.asarray(rows), weights=jnp.float32(w), reduction="weighted_mean"
    )
    np.testing.assert_allclose(got, np.sum((w * per)[rows]) / np.sum(w[rows]), rtol=1e-5)
    got = jl.kl_divergence(lq, tt, where=jnp.asarray(rows), reduction="mean")
    np.testing.assert_allclose(got, per[rows].mean(), rtol=1e-5)
    # A component mask (the inputs' rank, optax's meaning) drops terms from the sum.
    comp = np.ones((6, 5), bool)
    comp[:, 0] = False
    comp[5] = False  # a row with no component left: excluded
    got = jl.kl_divergence(lq, tt, where=jnp.asarray(comp), reduction="none")
    expected = np_kl(log_q[:, 1:], t[:, 1:])
    expected[5] = 0.0
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    got = jl.kl_divergence(lq, tt, where=jnp.asarray(comp), reduction="mean")
    np.testing.assert_allclose(got, expected[:5].mean(), rtol=1e-5)


def test_kl_masked_nan_does_not_leak(data):
    _, log_q, t = data
    bad = jnp.float32(log_q).at[2, 1].set(jnp.nan)
    rows = jnp.arange(6) != 2
    value, grad = jax.value_and_grad(
        lambda a: jl.kl_divergence(a, jnp.float32(t), where=rows, reduction="sum")
    )(bad)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    np.testing.assert_array_equal(grad[2], 0.0)


def test_kl_gradients_match_finite_differences(data):
    _, log_q, t = data
    with float64():
        for fn, second in (
            (jl.kl_divergence, t + 0.05),
            (jl.generalized_kl_divergence, t + 0.1),
            (jl.kl_divergence_with_log_targets, np.log(t + 0.1)),
        ):
            f = jax.jit(lambda a, b, fn=fn: fn(a, b, reduction="sum"))
            for argnum in (0, 1):
                args = [log_q, second]

                def scalar(v, argnum=argnum, args=args, f=f):
                    a = list(args)
                    a[argnum] = v
                    return f(*a)

                analytic = jax.grad(f, argnums=argnum)(log_q, second)
                np.testing.assert_allclose(
                    analytic,
                    numeric_grad(scalar, args[argnum]),
                    rtol=1e-6,
                    atol=1e-7,
                    err_msg=fn.__name__,
                )


def test_kl_gradient_finite_at_zero_target():
    """optax's gradient with respect to a zero target is NaN (0/0 through where); ours is not."""
    g = jax.grad(lambda t: jl.kl_divergence(jnp.log(jnp.array([0.5, 0.5])), t))(
        jnp.array([1.0, 0.0])
    )
    assert np.all(np.isfinite(g))


def test_kl_bf16_accumulates_in_float32(data):
    _, log_q, t = data
    out = jl.kl_divergence(jnp.bfloat16(log_q), jnp.bfloat16(t))
    assert out.dtype == jnp.float32
    g = jax.grad(lambda a: jl.kl_divergence(a, jnp.bfloat16(t), reduction="sum"))(
        jnp.bfloat16(log_q)
    )
    assert g.dtype == jnp.bfloat16


def test_kl_shape_errors():
    with pytest.raises(ValueError, match="must broadcast together"):
        jl.kl_divergence(jnp.zeros((3, 4)), jnp.zeros((2, 4)))
    with pytest.raises(TypeError, match="log_predictions must be a floating-point"):
        jl.kl_divergence(jnp.zeros((3, 4), jnp.int32), jnp.zeros((3, 4)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        jl.kl_divergence(jnp.zeros((3, 4)), jnp.zeros((3, 4)), reduction="avg")


# ---------------------------------------------------------------------------------------------
# Poly loss.


def np_poly(x, y, eps, cw=None):
    log_p = np_log_softmax(x)
    yw = y if cw is None else y * cw
    return -np.sum(yw * log_p, -1) + eps * np.sum(yw * (1 - np.exp(log_p)), -1)


def test_poly_values_and_class_weights(data):
    x, _, t = data
    for eps in (2.0, -1.0, 0.0):
        np.testing.assert_allclose(
            jl.poly_loss_cross_entropy(jnp.float32(x), jnp.float32(t), epsilon=eps),
            np_poly(x, t, eps),
            rtol=1e-5,
            atol=1e-6,
        )
    np.testing.assert_allclose(
        jl.poly_loss_cross_entropy(jnp.float32(x), jnp.float32(t), epsilon=0.0),
        jl.softmax_cross_entropy(jnp.float32(x), jnp.float32(t)),
        rtol=1e-6,
    )
    cw = np.array([1.0, 2.0, 0.5, 3.0, 1.0])
    got = jl.poly_loss_cross_entropy(
        jnp.float32(x), jnp.float32(t), class_weights=cw, reduction="weighted_mean"
    )
    per = np_poly(x, t, 2.0, cw)
    np.testing.assert_allclose(got, per.sum() / np.sum(t * cw), rtol=1e-5)


def test_poly_unlabeled_rows_and_gradient(data):
    x, _, t = data
    y = t.copy()
    y[3] = 0.0
    got = jl.poly_loss_cross_entropy(jnp.float32(x), jnp.float32(y), reduction="mean")
    np.testing.assert_allclose(got, np.delete(np_poly(x, y, 2.0), 3).mean(), rtol=1e-5)
    with float64():
        f = jax.jit(lambda a: jl.poly_loss_cross_entropy(a, t, reduction="sum"))
        np.testing.assert_allclose(jax.grad(f)(x), numeric_grad(f, x), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Sparsemax and the sparsemax losses.


def test_sparsemax_matches_bisection(rng):
    z = rng.normal(size=(20, 7)) * 2
    np.testing.assert_allclose(jl.sparsemax(jnp.float32(z)), np_sparsemax(z), atol=1e-6)
    np.testing.assert_allclose(jl.sparsemax(jnp.float32(z.T), axis=0).T, np_sparsemax(z), atol=1e-6)
    z3 = rng.normal(size=(2, 3, 4))
    got = jl.sparsemax(jnp.float32(z3), axis=(1, 2))
    np.testing.assert_allclose(got.reshape(2, 12), np_sparsemax(z3.reshape(2, 12)), atol=1e-6)


def test_sparsemax_where_and_bf16(rng):
    z = rng.normal(size=(4, 6))
    keep = rng.random((4, 6)) < 0.6
    keep[0] = False
    got = np.asarray(jl.sparsemax(jnp.float32(z), where=jnp.asarray(keep)))
    np.testing.assert_array_equal(got[0], 0.0)
    for r in range(1, 4):
        expected = np.zeros(6)
        expected[keep[r]] = np_sparsemax(z[r][keep[r]])
        np.testing.assert_allclose(got[r], expected, atol=1e-6)
    g = jax.grad(lambda v: jnp.sum(jl.sparsemax(v, where=jnp.asarray(keep)) * jnp.arange(6.0)))(
        jnp.float32(z)
    )
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g)[~keep] == 0)
    out = jl.sparsemax(jnp.bfloat16(z))
    assert out.dtype == jnp.bfloat16


def test_sparsemax_jacobian_matches_finite_differences(rng):
    z = rng.normal(size=(6,)) * 0.5
    with float64():
        jac = jax.jacobian(jl.sparsemax)(z)
        weights = np.arange(1.0, 7.0)
        f = jax.jit(lambda v: jnp.sum(weights * jl.sparsemax(v)))
        np.testing.assert_allclose(weights @ jac, numeric_grad(f, z), atol=1e-6)
        np.testing.assert_allclose(jac, jac.T, atol=1e-12)  # a symmetric projection


def test_sparsemax_loss_values_and_gradient():
    x = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
    sp = lambda v: np.where(v <= -1, 0, np.where(v >= 1, v, (v + 1) ** 2 / 4))  # noqa: E731
    for label in (0, 1):
        got = jl.sparsemax_loss(jnp.float32(x), jnp.full(7, label))
        np.testing.assert_allclose(got, sp(-x if label else x), rtol=1e-6)
    with float64():
        y = np.array([0, 1, 1, 0, 1, 0, 1])
        f = jax.jit(lambda v: jl.sparsemax_loss(v, y, reduction="sum"))
        x_off = x + 0.01  # away from the kinks at ±1
        np.testing.assert_allclose(jax.grad(f)(x_off), numeric_grad(f, x_off), atol=1e-6)
    w = jnp.array([1.0, 0.0, 2.0, 1.0, 1.0, 1.0, 1.0])
    got = jl.sparsemax_loss(
        jnp.float32(x), jnp.ones(7, jnp.int32), weights=w, reduction="weighted_mean"
    )
    np.testing.assert_allclose(got, np.sum(np.asarray(w) * sp(-x)) / 7.0, rtol=1e-6)


def np_multiclass_sparsemax(x, y):
    p = np_sparsemax(x)
    xy = np.take_along_axis(x, y[..., None], -1)
    return np.sum(p * (x - xy), -1) + 0.5 * (1 - np.sum(p * p, -1))


def test_multiclass_sparsemax_values_gradient_and_contract(rng):
    x = rng.normal(size=(8, 5)) * 2
    y = rng.integers(0, 5, size=8)
    got = jl.multiclass_sparsemax_loss(jnp.float32(x), jnp.asarray(y))
    np.testing.assert_allclose(got, np_multiclass_sparsemax(x, y), rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(got) >= -1e-6)
    # Zero exactly when sparsemax(x) is the one-hot of y.
    sure = np.eye(5)[y] * 3.0
    np.testing.assert_allclose(
        jl.multiclass_sparsemax_loss(jnp.float32(sure), jnp.asarray(y)), 0.0, atol=1e-6
    )
    # Gradient: sparsemax(x) - onehot(y), and it matches finite differences.
    g = jax.grad(lambda v: jl.multiclass_sparsemax_loss(v, jnp.asarray(y), reduction="sum"))(
        jnp.float32(x)
    )
    np.testing.assert_allclose(g, np_sparsemax(x) - np.eye(5)[y], atol=1e-5)
    with float64():
        f = jax.jit(lambda v: jl.multiclass_sparsemax_loss(v, y, reduction="sum"))
        np.testing.assert_allclose(jax.grad(f)(x), numeric_grad(f, x), atol=1e-6)
    # Leading axes, class weights, ignore_index, out-of-range labels.
    x3 = jnp.float32(x.reshape(2, 4, 5))
    np.testing.assert_allclose(
        jl.multiclass_sparsemax_loss(x3, jnp.asarray(y.reshape(2, 4))),
        np_multiclass_sparsemax(x, y).reshape(2, 4),
        rtol=1e-5,
        atol=1e-6,
    )
    cw = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    yi = y.copy()
    yi[0] = -1
    got = jl.multiclass_sparsemax_loss(
        jnp.float32(x),
        jnp.asarray(yi),
        class_weights=cw,
        ignore_index=-1,
        reduction="weighted_mean",
    )
    per = np_multiclass_sparsemax(x, y)
    np.testing.assert_allclose(got, np.sum((cw[y] * per)[1:]) / np.sum(cw[y][1:]), rtol=1e-5)
    bad = jl.multiclass_sparsemax_loss(jnp.float32(x), jnp.asarray(yi))
    assert np.isnan(bad[0]) and np.all(np.isfinite(bad[1:]))
    with pytest.raises(Exception, match="labels must lie in"):
        jl.checked(jl.multiclass_sparsemax_loss)(jnp.float32(x), jnp.asarray(yi))


# ---------------------------------------------------------------------------------------------
# Fenchel-Young losses.


def test_fenchel_young_logsumexp_is_cross_entropy(data):
    x, _, t = data
    loss = jl.make_fenchel_young_loss(logsumexp)
    np.testing.assert_allclose(
        loss(jnp.float32(x), jnp.float32(t)),
        -np.sum(t * np_log_softmax(x), -1),
        rtol=1e-5,
        atol=1e-6,
    )
    perceptron = jl.make_fenchel_young_loss(jnp.max)
    y = np.eye(5)[np.argmin(x, -1)]
    np.testing.assert_allclose(
        perceptron(jnp.float32(x), jnp.float32(y)), x.max(-1) - x.min(-1), rtol=1e-6
    )
    rows = jnp.array([True, False, True, True, True, False])
    np.testing.assert_allclose(
        loss(jnp.float32(x), jnp.float32(t), where=rows, reduction="mean"),
        np.mean((-np.sum(t * np_log_softmax(x), -1))[np.asarray(rows)]),
        rtol=1e-5,
    )
    with float64():
        f = jax.jit(lambda v: loss(v, t, reduction="sum"))
        np.testing.assert_allclose(jax.grad(f)(x), numeric_grad(f, x), rtol=1e-6, atol=1e-7)
    with pytest.raises(TypeError, match="max_fun must be callable"):
        jl.make_fenchel_young_loss(3.0)


# ---------------------------------------------------------------------------------------------
# Composition with jit, vmap and grad.


@pytest.mark.parametrize(
    "name",
    [
        "kl_divergence",
        "kl_divergence_with_log_targets",
        "generalized_kl_divergence",
        "poly_loss_cross_entropy",
        "sparsemax_loss",
        "multiclass_sparsemax_loss",
        "fenchel_young",
    ],
)
def test_jit_vmap_grad_compose(name, rng):
    x = jnp.float32(rng.normal(size=(3, 4, 5)))
    t = jax.nn.softmax(jnp.float32(rng.normal(size=(3, 4, 5))))
    special = {
        "fenchel_young": lambda a, b: jl.make_fenchel_young_loss(logsumexp)(a, b),
        "sparsemax_loss": lambda a, b: jl.sparsemax_loss(a, b > 0.2),
        "multiclass_sparsemax_loss": lambda a, b: jl.multiclass_sparsemax_loss(
            a, jnp.argmax(b, -1)
        ),
    }
    fn = special[name] if name in special else getattr(jl, name)
    batched = fn(x, t)
    np.testing.assert_allclose(jax.jit(jax.vmap(fn))(x, t), batched, rtol=1e-5, atol=1e-6)
    g = jax.jit(jax.grad(lambda a: jnp.sum(jax.vmap(fn)(a, t))))(x)
    assert g.shape == x.shape and np.all(np.isfinite(g))
