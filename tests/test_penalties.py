"""Penalties over parameter pytrees, against NumPy and scikit-learn's Lasso / ElasticNet."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet, Lasso

import jaxloss as jl

from helpers import float64, numeric_grad


def _params():
    rng = np.random.default_rng(0)
    return {
        "dense": {"kernel": rng.normal(size=(3, 4)), "bias": rng.normal(size=4)},
        "norm": {"scale": rng.normal(size=4)},
    }


def _np_penalty(params, alpha, rho, keep):
    flat = np.concatenate([np.ravel(np.where(keep[k], v, 0.0)) for k, v in params.items()])
    return alpha * rho * np.abs(flat).sum() + 0.5 * alpha * (1 - rho) * (flat**2).sum()


def test_values_with_masks_of_every_kind():
    p = _params()
    flat = {
        "kernel": p["dense"]["kernel"],
        "bias": p["dense"]["bias"],
        "scale": p["norm"]["scale"],
    }
    kernel_only = {"kernel": True, "bias": False, "scale": False}
    all_in = dict.fromkeys(flat, True)
    masks = [
        {"dense": {"kernel": True, "bias": False}, "norm": False},  # a prefix for "norm"
        lambda params: jax.tree.map(lambda a: a.ndim > 1, params),  # optax's callable form
    ]
    for alpha, rho in [(0.3, 0.5), (1.0, 1.0), (2.0, 0.0)]:
        expected_all = _np_penalty(flat, alpha, rho, all_in)
        expected_kernel = _np_penalty(flat, alpha, rho, kernel_only)
        got_all = jl.elastic_net_penalty(p, alpha, rho)
        np.testing.assert_allclose(got_all, expected_all, rtol=1e-6)
        for mask in masks:
            np.testing.assert_allclose(
                jl.elastic_net_penalty(p, alpha, rho, where=mask), expected_kernel, rtol=1e-6
            )
    np.testing.assert_allclose(jl.l1_penalty(p, 0.7), _np_penalty(flat, 0.7, 1.0, all_in), 1e-6)
    np.testing.assert_allclose(jl.l2_penalty(p, 0.7), _np_penalty(flat, 0.7, 0.0, all_in), 1e-6)
    # An element mask inside a leaf: only the first row of the kernel.
    rows = np.zeros((3, 1), bool)
    rows[0] = True
    got = jl.l1_penalty(p, where={"dense": {"kernel": rows, "bias": False}, "norm": False})
    np.testing.assert_allclose(got, np.abs(p["dense"]["kernel"][0]).sum(), rtol=1e-6)


def test_gradients_match_finite_differences_and_masked_leaves_get_zero():
    with float64():
        w = np.array([0.7, -1.3, 2.0, -0.4])
        for fn in (
            lambda v, a: jl.l1_penalty(v, a),
            lambda v, a: jl.l2_penalty(v, a),
            lambda v, a: jl.elastic_net_penalty(v, a, 0.3),
        ):
            g = jax.grad(fn)(jnp.asarray(w), 0.8)
            np.testing.assert_allclose(g, numeric_grad(lambda v, fn=fn: fn(v, 0.8), w), rtol=1e-6)
            g_alpha = jax.grad(fn, argnums=1)(jnp.asarray(w), 0.8)
            np.testing.assert_allclose(
                g_alpha, numeric_grad(lambda a, fn=fn: fn(w, a), 0.8), rtol=1e-6
            )
        # l1_ratio is differentiable too.
        g = jax.grad(lambda r: jl.elastic_net_penalty(jnp.asarray(w), 0.8, r))(0.3)
        np.testing.assert_allclose(
            g, numeric_grad(lambda r: jl.elastic_net_penalty(w, 0.8, float(r)), 0.3), rtol=1e-6
        )
    p = jax.tree.map(jnp.asarray, _params())
    grads = jax.grad(
        lambda q: jl.elastic_net_penalty(q, 1.0, 0.5, where={"dense": True, "norm": False})
    )(p)
    assert np.all(np.asarray(grads["norm"]["scale"]) == 0.0)
    np.testing.assert_allclose(
        grads["dense"]["bias"],
        0.5 * np.sign(p["dense"]["bias"]) + 0.5 * np.asarray(p["dense"]["bias"]),
        rtol=1e-6,
    )
    # The subgradient at exactly 0 is 0: a zero weight is not pushed off by the penalty.
    assert float(jax.grad(jl.l1_penalty)(jnp.zeros(2))[0]) == 0.0


def test_dtypes_jit_and_errors():
    half = {"w": jnp.ones(3, jnp.bfloat16)}
    assert jl.l2_penalty(half).dtype == jnp.float32
    assert jax.grad(jl.l2_penalty)(half)["w"].dtype == jnp.bfloat16
    np.testing.assert_allclose(jax.jit(jl.elastic_net_penalty)(jnp.arange(3.0), 2.0, 0.5), 5.5)
    assert float(jl.l1_penalty({})) == 0.0
    with pytest.raises(TypeError, match="every leaf of params must be a floating-point array"):
        jl.l1_penalty({"w": jnp.arange(3)})
    with pytest.raises(ValueError, match="where must have the structure of params"):
        jl.l1_penalty({"a": jnp.ones(2)}, where={"b": True})
    with pytest.raises(ValueError, match=r"does not broadcast to its parameter of shape \(2,\)"):
        jl.l1_penalty({"a": jnp.ones(2)}, where={"a": jnp.ones(3, bool)})
    with pytest.raises(TypeError, match="where's leaves must be booleans"):
        jl.l1_penalty({"a": jnp.ones(2)}, where={"a": jnp.ones(2)})
    with pytest.raises(ValueError, match=r"l1_ratio must lie in \[0.0, 1.0\]"):
        jl.elastic_net_penalty(jnp.ones(2), 1.0, 1.5)
    with pytest.raises(ValueError, match="alpha must lie in"):
        jl.l2_penalty(jnp.ones(2), -1.0)


def _diabetes():
    x, y = load_diabetes(return_X_y=True)
    return x - x.mean(0), y - y.mean()


def _lasso_objective(w, x, y, alpha):
    """scikit-learn's Lasso objective times n: ½‖Xw − y‖² + n·α‖w‖₁, with jaxloss."""
    n = x.shape[0]
    return jl.l2_loss(x @ w, y, reduction="sum") + jl.l1_penalty(w, n * alpha)


def _proximal_fit(smooth, l1_strength, lipschitz, w0, steps=20000):
    """FISTA on ``smooth(w) + l1_strength‖w‖₁`` with the soft-threshold proximal step."""
    step = 1.0 / lipschitz
    grad = jax.grad(smooth)

    def body(_, state):
        w, v, t = state
        z = v - step * grad(v)
        w_new = jnp.sign(z) * jnp.maximum(jnp.abs(z) - step * l1_strength, 0.0)
        t_new = (1 + jnp.sqrt(1 + 4 * t * t)) / 2
        return w_new, w_new + (t - 1) / t_new * (w_new - w), t_new

    w, _, _ = jax.lax.fori_loop(0, steps, body, (w0, w0, jnp.ones((), w0.dtype)))
    return w


def test_lasso_objective_and_laplace_likelihood_at_sklearns_solution():
    x, y = _diabetes()
    n, d = x.shape
    alpha = 0.05
    model = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(x, y)
    w = model.coef_
    with float64():
        objective = _lasso_objective(jnp.asarray(w), x, y, alpha)
        expected = 0.5 * np.sum((x @ w - y) ** 2) + n * alpha * np.abs(w).sum()
        np.testing.assert_allclose(objective, expected, rtol=1e-12)
        # The same point as a MAP estimate: Gaussian noise of variance σ² and a Laplace prior
        # of scale b = σ² / (nα): -log posterior = objective / σ² + constants.
        sigma2 = np.mean((x @ w - y) ** 2)
        b = sigma2 / (n * alpha)
        neg_log_post = (
            jl.l2_loss(x @ w, y, reduction="sum") / sigma2
            + 0.5 * n * np.log(2 * np.pi * sigma2)
            + jl.l1_penalty(jnp.asarray(w), 1.0 / b)
            + d * np.log(2 * b)
        )
        np_neg_log_post = np.sum(
            0.5 * np.log(2 * np.pi * sigma2) + (y - x @ w) ** 2 / (2 * sigma2)
        ) + np.sum(np.log(2 * b) + np.abs(w) / b)
        np.testing.assert_allclose(neg_log_post, np_neg_log_post, rtol=1e-12)


def test_proximal_fits_reach_sklearns_lasso_and_elastic_net_objectives():
    x, y = _diabetes()
    n, d = x.shape
    with float64():
        xj, yj = jnp.asarray(x), jnp.asarray(y)
        alpha = 0.05
        sk = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(x, y)
        lipschitz = np.linalg.norm(x, 2) ** 2  # of the gradient of ½‖Xw − y‖²
        w = _proximal_fit(
            lambda v: jl.l2_loss(xj @ v, yj, reduction="sum"), n * alpha, lipschitz, jnp.zeros(d)
        )
        ours = float(_lasso_objective(w, xj, yj, alpha))
        theirs = float(_lasso_objective(jnp.asarray(sk.coef_), xj, yj, alpha))
        assert abs(ours - theirs) <= 1e-6 * theirs
        # Elastic net: the L2 part is smooth, the L1 part gets the proximal step.
        alpha, rho = 0.02, 0.6
        en = ElasticNet(
            alpha=alpha, l1_ratio=rho, fit_intercept=False, tol=1e-12, max_iter=100_000
        ).fit(x, y)

        def en_objective(v):
            return jl.l2_loss(xj @ v, yj, reduction="mean") + jl.elastic_net_penalty(v, alpha, rho)

        def smooth(v):
            return jl.l2_loss(xj @ v, yj, reduction="sum") + n * jl.l2_penalty(v, alpha * (1 - rho))

        w = _proximal_fit(smooth, n * alpha * rho, lipschitz + n * alpha * (1 - rho), jnp.zeros(d))
        ours, theirs = float(en_objective(w)), float(en_objective(jnp.asarray(en.coef_)))
        assert abs(ours - theirs) <= 1e-6 * theirs
