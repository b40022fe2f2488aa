"""The fused log-sum-exp behind the cross-entropies (jaxloss/_fused.py).

Values and gradients against a plain JAX formulation, NumPy in float64 and central finite
differences, on short rows and on the long-row chunked forward path (rows longer than
``CHUNK_ABOVE``: a length cut into 16 chunks, and a prime length that keeps the plain sum).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss
from jaxloss import _fused
from jaxloss._fused import logsumexp_last

from helpers import float64, numeric_grad

LONG = [16 * _fused.CHUNK_MIN, 12289]  # 16 chunks of 1024 classes, and a prime: not chunked


def np_logsumexp(x):
    x = np.asarray(x, np.float64)
    m = x.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))[..., 0]


def plain_logsumexp(x):
    m = jax.lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True))
    return (m + jnp.log(jnp.sum(jnp.exp(x - m), axis=-1, keepdims=True)))[..., 0]


@pytest.mark.parametrize("v", [7, 1000, *LONG])
def test_value_matches_numpy_and_plain(v):
    x = np.random.default_rng(v).normal(size=(3, v)).astype(np.float32) * 4
    got = jax.jit(logsumexp_last)(x)
    np.testing.assert_allclose(got, np_logsumexp(x), rtol=2e-6)
    np.testing.assert_allclose(got, plain_logsumexp(jnp.asarray(x)), rtol=2e-6)


@pytest.mark.parametrize("v", [7, LONG[1]])
def test_gradient_is_softmax_and_matches_plain(v):
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 3, v)).astype(np.float32) * 3)
    ct = jnp.asarray([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]])
    g = jax.grad(lambda x: jnp.sum(ct * logsumexp_last(x)))(x)
    g_plain = jax.grad(lambda x: jnp.sum(ct * plain_logsumexp(x)))(x)
    np.testing.assert_allclose(g, g_plain, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(g, ct[..., None] * jax.nn.softmax(x, axis=-1), rtol=1e-5, atol=1e-9)


def test_gradient_finite_differences_float64():
    with float64():
        x = np.random.default_rng(2).normal(size=(2, 5)) * 2
        w = np.array([0.3, -1.2])

        def f(x):
            return float(jnp.sum(w * logsumexp_last(jnp.asarray(x))))

        g = jax.grad(lambda x: jnp.sum(w * logsumexp_last(x)))(jnp.asarray(x))
        np.testing.assert_allclose(g, numeric_grad(f, x), rtol=1e-6, atol=1e-9)


def test_long_row_directional_derivative_float64():
    """Chunked path in float64: grad·d equals the central difference along a direction d."""
    with float64():
        rng = np.random.default_rng(3)
        x = rng.normal(size=(2, LONG[1])) * 3
        d = rng.normal(size=x.shape)
        f = jax.jit(lambda x: jnp.sum(logsumexp_last(x)))
        g = jax.grad(lambda x: jnp.sum(logsumexp_last(x)))(jnp.asarray(x))
        eps = 1e-5
        fd = (float(f(x + eps * d)) - float(f(x - eps * d))) / (2 * eps)
        np.testing.assert_allclose(float(jnp.sum(g * d)), fd, rtol=1e-7)
        np.testing.assert_allclose(f(x), np_logsumexp(x).sum(), rtol=1e-12)


def test_forward_mode_vmap_and_second_order():
    x = jnp.asarray(np.random.default_rng(4).normal(size=(4, 6)).astype(np.float32))
    dx = jnp.ones_like(x).at[:, 0].set(2.0)
    _, tangent = jax.jvp(logsumexp_last, (x,), (dx,))
    np.testing.assert_allclose(tangent, jnp.sum(jax.nn.softmax(x) * dx, axis=-1), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(logsumexp_last)(x), logsumexp_last(x), rtol=1e-6)
    h = jax.hessian(lambda r: logsumexp_last(r))(x[0])
    p = jax.nn.softmax(x[0])
    np.testing.assert_allclose(h, jnp.diag(p) - jnp.outer(p, p), atol=1e-6)
    np.testing.assert_allclose(
        jax.jit(jax.checkpoint(logsumexp_last))(x), logsumexp_last(x), rtol=1e-6
    )


@pytest.mark.parametrize("v", [4, LONG[0]])
def test_non_finite_rows_as_before(v):
    x = np.zeros((4, v), np.float32)
    x[0] = -np.inf  # all -inf: -inf
    x[1, 1] = np.inf  # an +inf: +inf
    x[2, 2] = np.nan  # NaN propagates
    x[3, :2] = [1e4, -1e4]  # huge but finite: exact
    got = np.asarray(logsumexp_last(jnp.asarray(x)))
    assert got[0] == -np.inf and got[1] == np.inf and np.isnan(got[2])
    np.testing.assert_allclose(got[3], 1e4, rtol=1e-7)
    g = np.asarray(jax.grad(lambda x: jnp.sum(logsumexp_last(x)))(jnp.asarray(x)))
    g_plain = np.asarray(jax.grad(lambda x: jnp.sum(plain_logsumexp(x)))(jnp.asarray(x)))
    # Rows 0 and 2 (all -inf, a NaN) are NaN as before. Row 1 (an +inf logit): the inf entry's
    # gradient is NaN as before, the finite entries get 0, the limit (the plain formula's
    # autodiff made the whole row NaN).
    np.testing.assert_array_equal(np.isnan(g[[0, 2]]), np.isnan(g_plain[[0, 2]]))
    assert np.isnan(g[1, 1]) and np.all(np.delete(g[1], 1) == 0)
    np.testing.assert_allclose(g[3], g_plain[3])
    assert g[3, 0] == pytest.approx(1.0) and np.all(np.isfinite(g[3]))


@pytest.mark.parametrize("v", [50, LONG[1]])
def test_cross_entropies_value_and_grad_vs_optax(v):
    """The public losses on the fused path: optax's values and gradients."""
    rng = np.random.default_rng(5)
    x = jnp.asarray(rng.normal(size=(6, v)).astype(np.float32) * 3)
    y = jnp.asarray(rng.integers(0, v, 6).astype(np.int32))
    yp = jax.nn.one_hot(y, v) * 0.7 + 0.3 / v

    def ours(x):
        return jaxloss.softmax_cross_entropy_with_integer_labels(
            x, y, reduction="mean"
        ) + jaxloss.softmax_cross_entropy(x, yp, reduction="sum")

    def ref(x):
        return (
            optax.losses.softmax_cross_entropy_with_integer_labels(x, y).mean()
            + optax.losses.softmax_cross_entropy(x, yp).sum()
        )

    (v1, g1), (v2, g2) = (jax.jit(jax.value_and_grad(ours))(x), jax.jit(jax.value_and_grad(ref))(x))
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-8)
    np.testing.assert_allclose(jax.jit(ours)(x), v2, rtol=1e-5)  # forward-only path


def test_cross_entropy_contract_on_fused_path():
    """Class weights, weights, where, ignore_index, smoothing: as the plain formula says."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(5, 4)).astype(np.float32) * 2
    y = np.array([0, 3, -1, 1, 2])
    cw = rng.uniform(0.5, 2, 4).astype(np.float32)
    w = np.array([1.0, 0.5, 2.0, 0.0, 1.5], np.float32)
    eps = 0.1

    def loss(x):
        return jaxloss.softmax_cross_entropy_with_integer_labels(
            x,
            jnp.asarray(y),
            class_weights=cw,
            weights=w,
            ignore_index=-1,
            label_smoothing=eps,
            reduction="weighted_mean",
        )

    logp = x - np_logsumexp(x)[:, None]
    keep = (y != -1) & (w != 0)
    num = den = 0.0
    for i in np.flatnonzero(keep):
        per = (1 - eps) * cw[y[i]] * -logp[i, y[i]] + eps / 4 * np.sum(cw * -logp[i])
        num += w[i] * per
        den += w[i] * cw[y[i]]
    np.testing.assert_allclose(loss(jnp.asarray(x)), num / den, rtol=1e-5)
    with float64():
        g = jax.grad(loss)(jnp.asarray(x, jnp.float64))
        loss64 = jax.jit(loss)
        fd = numeric_grad(lambda z: float(loss64(jnp.asarray(z))), x.astype(np.float64))
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)
        assert np.all(np.asarray(g)[~keep] == 0)


def test_out_of_range_label_still_nan_and_bf16_dtypes():
    x = jnp.asarray(np.random.default_rng(7).normal(size=(3, LONG[0])), jnp.bfloat16)
    y = jnp.array([1, LONG[0], 5])
    per = jax.jit(jaxloss.softmax_cross_entropy_with_integer_labels)(x, y)
    per = np.asarray(per) if per.dtype == jnp.float32 else None
    assert per is not None and np.isnan(per[1]) and np.isfinite(per[[0, 2]]).all()
    y = jnp.array([1, 2, 5])
    ce = jaxloss.softmax_cross_entropy_with_integer_labels
    loss, g = jax.jit(jax.value_and_grad(lambda x: ce(x, y, reduction="sum")))(x)
    assert g.dtype == jnp.bfloat16 and loss.dtype == jnp.float32
    ref = np.sum(
        np_logsumexp(np.asarray(x, np.float32))
        - np.asarray(x, np.float64)[np.arange(3), np.asarray(y)]
    )
    np.testing.assert_allclose(loss, ref, rtol=1e-5)


def test_probability_cross_entropy_fused_gradients_and_excluded_rows():
    """Excluded rows (unlabeled, where=False) with NaN/inf logits and labels give exactly 0."""
    rng = np.random.default_rng(8)
    x = rng.normal(size=(5, 6)).astype(np.float32) * 2
    y = rng.dirichlet(np.ones(6), size=5).astype(np.float32)
    y[1] = 0.0  # unlabeled row
    x[1, 2] = np.nan
    x[3, 0], y[3, 4] = np.inf, np.nan  # excluded by where below
    where = np.array([True, True, True, False, True])
    cw = rng.uniform(0.5, 2, 6).astype(np.float32)

    def loss(x, y):
        return jaxloss.softmax_cross_entropy(
            x, y, where=where, class_weights=cw, label_smoothing=0.1, reduction="sum"
        )

    def ref(x, y):  # optax on the included rows only, smoothing and class weights by hand
        keep = np.array([0, 2, 4])
        ys = 0.9 * y[keep] + 0.1 / 6
        return -jnp.sum(cw * ys * jax.nn.log_softmax(x[keep], axis=-1))

    val, (gx, gy) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(x, y)
    rval, (rgx, rgy) = jax.value_and_grad(ref, argnums=(0, 1))(x, y)
    rgx, rgy = np.asarray(rgx), np.asarray(rgy)
    np.testing.assert_allclose(val, rval, rtol=1e-5)
    gx, gy = np.asarray(gx), np.asarray(gy)
    assert np.all(gx[[1, 3]] == 0) and np.all(gy[[1, 3]] == 0)
    np.testing.assert_allclose(gx[[0, 2, 4]], rgx[[0, 2, 4]], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gy[[0, 2, 4]], rgy[[0, 2, 4]], rtol=1e-5, atol=1e-7)
    # Forward mode agrees with reverse mode.
    d = jnp.asarray(rng.normal(size=x.shape).astype(np.float32)).at[np.array([1, 3])].set(0.0)
    _, tangent = jax.jvp(lambda x: loss(x, y), (jnp.asarray(x),), (d,))
    np.testing.assert_allclose(tangent, np.sum(gx * np.asarray(d)), rtol=1e-5)


def test_probability_cross_entropy_finite_differences_float64():
    with float64():
        rng = np.random.default_rng(9)
        x = rng.normal(size=(3, 4)) * 2
        y = rng.dirichlet(np.ones(4), size=3)
        w = np.array([1.0, 0.0, 2.0])
        f = jax.jit(
            lambda x, y: jaxloss.softmax_cross_entropy(x, y, weights=w, reduction="weighted_mean")
        )
        gx, gy = jax.grad(f, argnums=(0, 1))(jnp.asarray(x), jnp.asarray(y))
        np.testing.assert_allclose(gx, numeric_grad(lambda z: float(f(z, y)), x), atol=1e-8)
        np.testing.assert_allclose(gy, numeric_grad(lambda z: float(f(x, z)), y), atol=1e-8)


def test_probability_cross_entropy_nan_conventions_and_long_rows():
    x = np.zeros((2, LONG[1]), np.float32)
    x[0, 0] = -np.inf  # -inf logit with label 0: NaN, as optax
    y = np.zeros_like(x)
    y[:, 1] = 1.0
    got = np.asarray(jax.jit(jaxloss.softmax_cross_entropy)(x, y))
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1], np.log(LONG[1]), rtol=1e-6)
    np.testing.assert_allclose(
        jax.jit(jaxloss.safe_softmax_cross_entropy)(x, y)[0], np.log(LONG[1] - 1), rtol=1e-6
    )


@pytest.mark.parametrize("v", [9, LONG[0]])
def test_integer_core_bf16_gradient_and_masked_rows(v):
    """bf16 logits: float32 loss of the bf16 values, gradient softmax - onehot in bf16; rows
    excluded by ignore_index get exactly 0 even with NaN logits."""
    rng = np.random.default_rng(10)
    x32 = rng.normal(size=(4, v)).astype(np.float32) * 3
    x32[2, 1] = np.nan
    x = jnp.asarray(x32, jnp.bfloat16)
    y = jnp.array([1, v - 1, -1, 0])
    ce = jaxloss.softmax_cross_entropy_with_integer_labels
    loss, g = jax.jit(jax.value_and_grad(lambda x: ce(x, y, ignore_index=-1, reduction="sum")))(x)
    xf = np.asarray(x, np.float64)
    keep = np.array([0, 1, 3])
    ref = np.sum(np_logsumexp(xf[keep]) - xf[keep, np.asarray(y)[keep]])
    np.testing.assert_allclose(loss, ref, rtol=1e-5)
    p = np.exp(xf[keep] - np_logsumexp(xf[keep])[:, None])
    p[np.arange(3), np.asarray(y)[keep]] -= 1.0
    assert g.dtype == jnp.bfloat16
    g = np.asarray(g, np.float32)
    np.testing.assert_allclose(g[keep], p, rtol=1e-2, atol=1e-3)
    assert np.all(g[2] == 0)


def test_integer_core_directly_float64_finite_differences():
    from jaxloss._fused import integer_label_cross_entropy

    with float64():
        rng = np.random.default_rng(11)
        x = rng.normal(size=(3, 5)) * 2
        y = jnp.array([4, 0, 2])
        mask = jnp.array([True, False, True])
        w = np.array([0.5, 0.0, 2.0])

        def f(x):
            return jnp.sum(w * integer_label_cross_entropy(jnp.asarray(x), y, mask))

        g = jax.grad(f)(jnp.asarray(x))
        np.testing.assert_allclose(g, numeric_grad(lambda z: float(jax.jit(f)(z)), x), atol=1e-8)
        ref = np_logsumexp(x) - x[np.arange(3), np.asarray(y)]
        np.testing.assert_allclose(integer_label_cross_entropy(jnp.asarray(x), y), ref, rtol=1e-12)
        _, t = jax.jvp(f, (jnp.asarray(x),), (jnp.ones_like(jnp.asarray(x)),))
        np.testing.assert_allclose(t, np.sum(g), atol=1e-12)  # Σ (softmax - onehot) = 0


# --- sigmoid_terms: softplus(±x) and sigmoid(±x) from one exp ------------------------------------


def test_sigmoid_terms_match_float64_numpy_across_the_range():
    # ±80: exp(-80) ≈ 1.8e-35 is still a normal float32 (XLA:CPU flushes denormals to 0).
    x = np.array([-1e4, -80.0, -30.0, -5.0, -1e-3, 0.0, 1e-3, 5.0, 30.0, 80.0, 1e4], np.float32)
    xd = x.astype(np.float64)
    softplus = lambda z: np.logaddexp(z, 0.0)  # noqa: E731
    expected = [softplus(xd), softplus(-xd), np.exp(-softplus(-xd)), np.exp(-softplus(xd))]
    got = jax.jit(_fused.sigmoid_terms)(x)
    for g, e in zip(got, expected, strict=True):
        # Relative accuracy also where sigmoid(-x) ~ 1e-35 (1 - sigmoid(x) would round to 0).
        np.testing.assert_allclose(np.asarray(g, np.float64), e, rtol=2e-6, atol=1e-37)
    assert float(got[3][-2]) > 0.0  # sigmoid(-80), computed as e/(1+e), not 1 - sigmoid(80)


def test_sigmoid_terms_gradients_match_finite_differences_and_are_exact_at_zero():
    with float64():
        x = np.random.default_rng(0).normal(size=7) * 3
        for i in range(4):
            f = lambda z, i=i: jnp.sum(_fused.sigmoid_terms(z)[i] ** 2)  # noqa: E731
            np.testing.assert_allclose(jax.grad(f)(x), numeric_grad(f, x), rtol=1e-6)
            g2 = jax.grad(lambda z, i=i: jax.grad(lambda s: _fused.sigmoid_terms(s)[i])(z))
            h = 1e-4
            first = jax.grad(lambda s, i=i: _fused.sigmoid_terms(s)[i])
            np.testing.assert_allclose(
                g2(0.7), (first(0.7 + h) - first(0.7 - h)) / (2 * h), rtol=1e-6
            )
    # |x| has no derivative at 0, the functions do: σ(0) = 1/2 and σ'(0) = 1/4.
    grads = [jax.grad(lambda s, i=i: _fused.sigmoid_terms(s)[i])(0.0) for i in range(4)]
    np.testing.assert_allclose(grads, [0.5, -0.5, 0.25, -0.25])


@pytest.mark.parametrize("v", [6, LONG[0], _fused.SPLIT_ABOVE + 4464, 65537])
@pytest.mark.parametrize("weighted", [False, True])
def test_probability_cross_entropy_every_row_length_path(v, weighted):
    """Short rows (one fused expression), long rows, and rows past SPLIT_ABOVE (chunked row
    sums; 65537 is prime, so it takes the head + tail split): value, forward-only value and
    gradient against the log-softmax formula, in float64 NumPy for the value."""
    rng = np.random.default_rng(v)
    x = (rng.normal(size=(3, v)) * 3).astype(np.float32)
    y = rng.dirichlet(np.ones(v) * 0.05, size=3).astype(np.float32)
    y[1] = 0.0  # unlabeled: 0, left out of the mean
    cw = rng.uniform(0.5, 2.0, v).astype(np.float32) if weighted else None
    eps = 0.1 if weighted else 0.0
    xd = x.astype(np.float64)
    logp = xd - np_logsumexp(xd)[:, None]
    ys = (1 - eps) * y.astype(np.float64) + eps / v
    expected = -np.sum((1.0 if cw is None else cw) * ys * logp, axis=-1)[[0, 2]].sum() / 2

    def loss(x):
        return jaxloss.softmax_cross_entropy(
            x, y, class_weights=cw, label_smoothing=eps, reduction="mean"
        )

    def ref(x):
        rows = np.array([0, 2])
        terms = (1.0 if cw is None else cw) * ys[rows] * jax.nn.log_softmax(x[rows])
        return -jnp.sum(terms) / 2

    np.testing.assert_allclose(jax.jit(loss)(x), expected, rtol=2e-5)
    val, g = jax.jit(jax.value_and_grad(loss))(x)
    np.testing.assert_allclose(val, expected, rtol=2e-5)
    np.testing.assert_allclose(g, jax.grad(ref)(jnp.asarray(x)), rtol=1e-4, atol=1e-9)
    assert np.all(np.asarray(g)[1] == 0)
