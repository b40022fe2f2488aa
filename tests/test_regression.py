"""Regression losses against NumPy, optax, scikit-learn and PyTorch's published formulas."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.metrics import (
    mean_absolute_percentage_error,
    mean_pinball_loss,
    mean_squared_log_error,
)

import jaxloss as jl

from helpers import assert_grads_match_fd, float64, numeric_grad

# Residuals away from every kink (0, ±1, ±0.7, ±2) for finite-difference checks.
D = np.array([-3.1, -1.3, -0.45, 0.2, 0.55, 1.6, 2.7])


def np_huber(d, delta):
    a = np.abs(d)
    return np.where(a <= delta, 0.5 * d**2, delta * (a - 0.5 * delta))


# name -> (jaxloss call on (p, t), NumPy reference on (p, t))
REFERENCES = {
    "squared_error": (jl.squared_error, lambda p, t: (p - t) ** 2),
    "l2_loss": (jl.l2_loss, lambda p, t: 0.5 * (p - t) ** 2),
    "absolute_error": (jl.absolute_error, lambda p, t: np.abs(p - t)),
    "huber_loss": (lambda p, t: jl.huber_loss(p, t, delta=0.7), lambda p, t: np_huber(p - t, 0.7)),
    "smooth_l1_loss": (
        lambda p, t: jl.smooth_l1_loss(p, t, beta=0.7),
        lambda p, t: np_huber(p - t, 0.7) / 0.7,
    ),
    "log_cosh": (jl.log_cosh, lambda p, t: np.log(np.cosh(p - t))),
    "quantile_loss": (
        lambda p, t: jl.quantile_loss(p, t, 0.8),
        lambda p, t: np.maximum(0.8 * (t - p), -0.2 * (t - p)),
    ),
    "absolute_percentage_error": (
        jl.absolute_percentage_error,
        lambda p, t: np.abs(p - t) / np.abs(t),
    ),
    "squared_log_error": (
        lambda p, t: jl.squared_log_error(jnp.abs(p), jnp.abs(t)),
        lambda p, t: (np.log1p(np.abs(p)) - np.log1p(np.abs(t))) ** 2,
    ),
    "poisson_loss": (jl.poisson_loss, lambda p, t: np.exp(p) - t * p),
}


def _inputs():
    t = np.array([0.5, 2.0, -1.0, 1.5, -2.5, 0.9, 1.1])
    return D + t, t


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_values_and_gradients_match_numpy(name):
    fn, ref = REFERENCES[name]
    p, t = _inputs()
    np.testing.assert_allclose(
        fn(p.astype(np.float32), t.astype(np.float32)), ref(p, t), rtol=2e-5, atol=1e-6
    )
    with float64():
        g = jax.grad(lambda q: jnp.sum(fn(q, jnp.asarray(t)) * jnp.arange(1.0, 8.0)))(
            jnp.asarray(p)
        )
        num = numeric_grad(lambda q: np.sum(ref(q, t) * np.arange(1.0, 8.0)), p)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


def test_optax_parity_values_and_gradients(rng):
    p = rng.normal(size=(3, 5)).astype(np.float32) * 2
    t = rng.normal(size=(3, 5)).astype(np.float32)
    cases = [
        (jl.squared_error, optax.losses.squared_error, {}),
        (jl.l2_loss, optax.losses.l2_loss, {}),
        (jl.huber_loss, optax.losses.huber_loss, {}),
        (jl.huber_loss, optax.losses.huber_loss, {"delta": 0.3}),
        (jl.log_cosh, optax.losses.log_cosh, {}),
    ]
    for ours, theirs, kw in cases:
        np.testing.assert_allclose(ours(p, t, **kw), theirs(p, t, **kw), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(ours(p, **kw), theirs(p, **kw), rtol=1e-6, atol=1e-7)
        g1 = jax.grad(lambda q, ours=ours, kw=kw: ours(q, t, **kw).sum())(p)
        g2 = jax.grad(lambda q, theirs=theirs, kw=kw: theirs(q, t, **kw).sum())(p)
        np.testing.assert_allclose(g1, g2, rtol=1e-6, atol=1e-7)


def test_pytorch_huber_and_smooth_l1_literals():
    d = jnp.array([-3.0, -1.0, -0.5, 0.0, 0.25, 1.5, 2.0])
    # torch.nn.functional.huber_loss(d, 0, reduction="none", delta=1.5), from the formula:
    # 0.5 d² for |d| ≤ 1.5, else 1.5 (|d| - 0.75).
    huber = [3.375, 0.5, 0.125, 0.0, 0.03125, 1.125, 1.875]
    np.testing.assert_allclose(jl.huber_loss(d, delta=1.5), huber, rtol=1e-6)
    # torch.nn.functional.smooth_l1_loss(d, 0, reduction="none", beta=1.5):
    # 0.5 d² / 1.5 for |d| < 1.5, else |d| - 0.75.
    smooth = [2.25, 1 / 3, 0.25 / 3, 0.0, 0.0625 / 3, 0.75, 1.25]
    np.testing.assert_allclose(jl.smooth_l1_loss(d, beta=1.5), smooth, rtol=1e-6)
    # beta=0 is L1 (also traced); with beta = delta = 1 smooth L1 and Huber coincide.
    np.testing.assert_allclose(jl.smooth_l1_loss(d, beta=0.0), np.abs(d))
    np.testing.assert_allclose(jax.jit(lambda b: jl.smooth_l1_loss(d, beta=b))(0.0), np.abs(d))
    np.testing.assert_allclose(jl.smooth_l1_loss(d), jl.huber_loss(d))
    # Mean reduction as PyTorch's default reduction="mean".
    np.testing.assert_allclose(
        jl.huber_loss(d, delta=1.5, reduction="mean"), np.mean(huber), rtol=1e-6
    )


def test_gradients_at_kinks_are_finite_subgradients():
    big = jnp.array([1e4, -3e4, 80.0])
    # (function, kwargs, inputs, expected gradient of the sum)
    cases = [
        (jl.absolute_error, {}, [0.0, 2.0, -2.0], [0.0, 1.0, -1.0]),
        (jl.huber_loss, {}, [1.0, -1.0, 0.0], [1.0, -1.0, 0.0]),
        (jl.huber_loss, {"delta": 2.0}, [2.0, -2.0], [2.0, -2.0]),
        (jl.smooth_l1_loss, {"beta": 0.5}, [0.5, 0.0, -0.5], [1.0, 0.0, -1.0]),
        (jl.smooth_l1_loss, {"beta": 0.0}, [0.0, 1.0], [0.0, 1.0]),
        (jl.quantile_loss, {"targets": 0.0, "quantile": 0.9}, [0.0, 1.0, -1.0], [0.0, 0.1, -0.9]),
        (jl.absolute_percentage_error, {"targets": 2.0}, [2.0], [0.0]),
        # log_cosh at huge residuals: gradient tanh(d) = ±1, no overflow.
        (jl.log_cosh, {}, big, [1.0, -1.0, 1.0]),
    ]
    grads = jax.jit(
        lambda xs: [
            jax.grad(lambda z, fn=fn, kw=kw: fn(z, **kw).sum())(x)
            for (fn, kw, _, _), x in zip(cases, xs, strict=True)
        ]
    )([jnp.asarray(c[2], jnp.float32) for c in cases])
    for (fn, kw, _, expected), g in zip(cases, grads, strict=True):
        np.testing.assert_allclose(g, expected, rtol=1e-6, err_msg=f"{fn.__name__} {kw}")
    np.testing.assert_allclose(jl.log_cosh(big), np.abs(big) - np.log(2), rtol=1e-6)


def test_sklearn_parity_quantile_mape_msle(rng):
    y = rng.uniform(0.5, 5.0, size=40)
    p = y + rng.normal(size=40)
    for tau in (0.1, 0.5, 0.9):
        np.testing.assert_allclose(
            jl.quantile_loss(p, y, tau, reduction="mean"),
            mean_pinball_loss(y, p, alpha=tau),
            rtol=1e-5,
        )
    np.testing.assert_allclose(
        jl.absolute_percentage_error(p, y, reduction="mean"),
        mean_absolute_percentage_error(y, p),
        rtol=1e-5,
    )
    pp = np.abs(p)
    np.testing.assert_allclose(
        jl.squared_log_error(pp, y, reduction="mean"), mean_squared_log_error(y, pp), rtol=1e-5
    )
    # Multi-quantile regression: one column per quantile.
    taus = np.array([0.1, 0.5, 0.9])
    preds = rng.normal(size=(40, 3))
    per = jl.quantile_loss(preds, y[:, None], taus, reduction="none")
    for j, tau in enumerate(taus):
        np.testing.assert_allclose(
            per[:, j].mean(), mean_pinball_loss(y, preds[:, j], alpha=tau), rtol=1e-5
        )


def test_percentage_and_log_edges():
    # Zero target: bounded by epsilon, large but finite.
    np.testing.assert_allclose(
        jl.absolute_percentage_error(jnp.array([1.0]), jnp.array([0.0])), [1e7], rtol=1e-6
    )
    # Keras clipping: negative values count as 0, with zero gradient.
    np.testing.assert_allclose(jl.squared_log_error(jnp.array([-3.0]), jnp.array([0.0])), [0.0])
    g = jax.grad(lambda z: jl.squared_log_error(z, jnp.array([1.0])).sum())(jnp.array([-3.0]))
    np.testing.assert_array_equal(g, [0.0])


def test_poisson_variants_match_pytorch_formulas():
    x = np.array([0.2, 1.5, 3.0, 0.0])
    y = np.array([0.0, 1.0, 4.0, 2.0])
    np.testing.assert_allclose(jl.poisson_loss(x, y), np.exp(x) - y * x, rtol=1e-6)
    np.testing.assert_allclose(
        jl.poisson_loss(x, y, log_input=False), x - y * np.log(x + 1e-8), rtol=1e-6
    )
    stirling = np.where(
        y > 1, y * np.log(np.maximum(y, 1)) - y + 0.5 * np.log(2 * np.pi * np.maximum(y, 1)), 0.0
    )
    np.testing.assert_allclose(
        jl.poisson_loss(x, y, full=True), np.exp(x) - y * x + stirling, rtol=1e-6
    )
    # Literal: PyTorch poisson_nll_loss(log(2), 2, full=True) = 2 - 2 log 2 + 2 log 2 - 2
    # + 0.5 log(4π) = 0.5 log(4π) ≈ 1.2655121.
    np.testing.assert_allclose(jl.poisson_loss(jnp.log(2.0), 2.0, full=True), 1.2655121, rtol=1e-6)


def test_contract_weights_where_reductions_and_nan_isolation():
    p = jnp.array([[1.0, 2.0, jnp.nan], [0.0, 3.0, 1.0]])
    t = jnp.zeros((2, 3))
    where = jnp.array([[True, True, False], [True, True, True]])
    w = jnp.array([[1.0, 2.0, 5.0], [0.5, 1.0, 0.0]])
    sq = np.array([[1.0, 4.0, 0.0], [0.0, 9.0, 1.0]])
    included = np.asarray(where) & (np.asarray(w) != 0)
    num = np.sum(np.where(included, sq * np.asarray(w), 0))
    np.testing.assert_allclose(
        jl.squared_error(p, t, where=where, reduction="none")[0], [1.0, 4.0, 0.0]
    )
    np.testing.assert_allclose(jl.squared_error(p, t, where=where, weights=w, reduction="sum"), num)
    np.testing.assert_allclose(
        jl.squared_error(p, t, where=where, weights=w, reduction="mean"),
        num / included.sum(),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        jl.squared_error(p, t, where=where, weights=w, reduction="weighted_mean"),
        num / np.sum(np.where(included, w, 0)),
        rtol=1e-6,
    )
    # A NaN in an excluded element leaks into neither value nor gradient, for every loss.
    names = sorted(REFERENCES)
    results = jax.jit(
        lambda q: [
            jax.value_and_grad(lambda z, n=n: _call(n, z, jnp.ones_like(z) * 1.5, where))(q)
            for n in names
        ]
    )(p)
    for name, (val, g) in zip(names, results, strict=True):
        assert np.isfinite(val), name
        assert np.all(np.isfinite(g)) and g[0, 2] == 0, name
    # All excluded: 0 with zero gradients, never NaN.
    val, g = jax.value_and_grad(
        lambda q: jl.huber_loss(q, where=jnp.zeros((2, 3), bool), reduction="mean")
    )(p)
    assert val == 0 and np.all(g == 0)


def _call(name, p, t, where):
    fn = getattr(jl, name)
    if name == "quantile_loss":
        return fn(p, t, 0.3, where=where, reduction="mean")
    return fn(p, t, where=where, reduction="mean")


def test_jit_vmap_grad_compose(rng):
    p = jnp.asarray(rng.normal(size=(4, 6)).astype(np.float32))
    t = jnp.asarray(rng.uniform(0.5, 2.0, size=(4, 6)).astype(np.float32))
    names = sorted(REFERENCES)

    @jax.jit
    def everything(p, t):
        per = {n: _call(n, p, t, None) for n in names}
        batched = {n: jax.vmap(lambda a, b, n=n: _call(n, a, b, None))(p, t) for n in names}
        grads = {n: jax.grad(lambda a, n=n: _call(n, a, t, None))(p) for n in names}
        return per, batched, grads

    per, batched, grads = everything(p, t)
    for n in names:
        eager = _call(n, p, t, None)
        np.testing.assert_allclose(per[n], eager, rtol=1e-5)
        # vmap over rows of per-row means, averaged, equals the overall mean (equal row sizes).
        np.testing.assert_allclose(jnp.mean(batched[n]), eager, rtol=1e-5)
        assert np.all(np.isfinite(grads[n])), n


def test_dtypes_and_errors():
    x16 = jnp.array([0.5, 3.0], jnp.bfloat16)
    out = jl.huber_loss(x16)
    assert out.dtype == jnp.float32
    g = jax.grad(lambda z: jl.huber_loss(z).sum())(x16)
    assert g.dtype == jnp.bfloat16
    with float64():
        assert jl.squared_error(jnp.ones(2, jnp.float64)).dtype == jnp.float64
    with pytest.raises(TypeError, match="predictions"):
        jl.squared_error(jnp.array([1, 2]))
    with pytest.raises(ValueError, match="targets has shape"):
        jl.squared_error(jnp.ones(3), jnp.ones(4))
    with pytest.raises(ValueError, match="delta"):
        jl.huber_loss(jnp.ones(3), delta=-1.0)
    with pytest.raises(ValueError, match="quantile"):
        jl.quantile_loss(jnp.ones(3), jnp.ones(3), 1.5)
    with pytest.raises(ValueError, match="reduction must be one of"):
        jl.log_cosh(jnp.ones(3), reduction="avg")
    with pytest.raises(ValueError, match="weights has shape"):
        jl.absolute_error(jnp.ones(4), weights=jnp.ones(3))


# --- Gaussian NLL: PyTorch's gaussian_nll_loss ---------------------------------------------------


def test_gaussian_nll_matches_pytorch():
    # torch.nn.functional.gaussian_nll_loss(x, t, v, full=..., reduction="none") in float64
    # (torch 2.13), and the gradient of its sum with respect to v: the clamp at eps = 1e-6
    # changes the value of v = 1e-8 but not the gradient's path.
    x = np.array([0.5, -1.0, 2.0, 0.0])
    t = np.array([1.0, 0.0, 1.5, -2.0])
    v = np.array([0.5, 2.0, 1e-8, 1.0])
    with float64():
        np.testing.assert_allclose(
            jl.gaussian_nll_loss(x, t, v),
            [-0.09657359027997264, 0.5965735902799727, 124993.09224472102, 2.0],
            rtol=1e-12,
        )
        np.testing.assert_allclose(
            jl.gaussian_nll_loss(x, t, v, full=True),
            [0.8223649429247, 1.5155121234846454, 124994.01118325422, 2.9189385332046727],
            rtol=1e-12,
        )
        np.testing.assert_allclose(
            jl.gaussian_nll_loss(x, t, v, reduction="mean"), 31248.898061180254, rtol=1e-12
        )
        grad = jax.grad(lambda var: jl.gaussian_nll_loss(x, t, var, reduction="sum"))(v)
        np.testing.assert_allclose(grad, [0.5, 0.125, -124999500000.0, -1.5], rtol=1e-10)
    # One variance per example of a [B, D] output: shape [B, 1] (PyTorch's [B] or [B, 1]).
    xb, vb = np.array([[0.0, 1.0], [2.0, -1.0]], np.float32), np.array([[0.5], [2.0]])
    np.testing.assert_allclose(
        jl.gaussian_nll_loss(xb, np.zeros((2, 2)), vb),
        [[-0.34657359027997264, 0.6534264097200273], [1.3465735902799727, 0.5965735902799727]],
        rtol=1e-6,
    )


def test_gaussian_nll_gradients_edges_and_contract(rng):
    with float64():
        x, t = rng.normal(size=5), rng.normal(size=5)
        v = rng.uniform(0.2, 2.0, size=5)
        w = rng.uniform(0.5, 1.5, size=5)
        assert_grads_match_fd(
            lambda a, b, c: jl.gaussian_nll_loss(a, b, c, weights=w, reduction="weighted_mean"),
            [x, t, v],
            [0, 1, 2],
            rtol=1e-6,
            atol=0,
        )
    # A negative variance gives NaN (PyTorch raises); checked raises; excluded ones are inert.
    v = jnp.array([1.0, -1.0, jnp.nan])
    out = jl.gaussian_nll_loss(jnp.zeros(3), jnp.ones(3), v)
    assert np.isfinite(out[0]) and np.isnan(out[1])
    with pytest.raises(Exception, match="variance must be nonnegative"):
        jl.checked(jl.gaussian_nll_loss)(jnp.zeros(3), jnp.ones(3), v)
    keep = jnp.array([True, False, False])
    value, grad = jax.value_and_grad(
        lambda var: jl.gaussian_nll_loss(
            jnp.zeros(3), jnp.ones(3), var, where=keep, reduction="mean"
        )
    )(v)
    np.testing.assert_allclose(value, 0.5)
    np.testing.assert_array_equal(grad, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"variance has shape \(2,\)"):
        jl.gaussian_nll_loss(jnp.zeros(3), jnp.ones(3), jnp.ones(2))
    assert jl.gaussian_nll_loss(jnp.zeros(2, jnp.bfloat16), jnp.ones(2), jnp.ones(2)).dtype == (
        jnp.float32
    )
