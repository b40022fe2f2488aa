"""Tests for jaxloss.dropout: statistics, exact edges, broadcast masks, keys, dtypes, jit/vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss as jl

from helpers import float64, numeric_grad

KEY = jax.random.key(0)
RATES = np.array([0.1, 0.3, 0.5, 0.7, 0.9], np.float32)
N = 1_000_000

# SELU constants, written out independently of the module.
SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772


@pytest.fixture(scope="module")
def many_draws():
    """dropout of a ones vector of length N at each rate (one compiled call, rate traced)."""
    keys = jax.random.split(KEY, len(RATES))
    f = jax.jit(jax.vmap(lambda k, r: jl.dropout(k, jnp.ones(N), r)))
    return np.asarray(f(keys, jnp.asarray(RATES)))


def test_kept_fraction_within_5_sigma(many_draws):
    for rate, y in zip(RATES, many_draws, strict=True):
        keep = 1.0 - float(rate)
        kept = np.count_nonzero(y)
        sigma = np.sqrt(N * keep * (1 - keep))
        assert abs(kept - N * keep) < 5 * sigma, (rate, kept)


def test_kept_values_scaled_and_mean_preserved(many_draws):
    for rate, y in zip(RATES, many_draws, strict=True):
        keep = 1.0 - float(rate)
        kept = y[y != 0]
        np.testing.assert_allclose(kept, np.float32(1.0) / np.float32(keep), rtol=1e-6)
        # E[y] = 1 and Var[y] = rate / keep per element: 5-sigma bound on the mean.
        sigma = np.sqrt(float(rate) / keep / N)
        assert abs(y.mean() - 1.0) < 5 * sigma, (rate, y.mean())


def test_mean_preserved_for_nonconstant_input():
    x = jnp.linspace(-2.0, 3.0, 200)
    keys = jax.random.split(jax.random.key(3), 4000)
    ys = jax.jit(jax.vmap(lambda k: jl.dropout(k, x, 0.4)))(keys)
    per_element_sigma = np.abs(np.asarray(x)) * np.sqrt(0.4 / 0.6 / 4000)
    err = np.abs(np.asarray(ys.mean(0)) - np.asarray(x))
    assert np.all(err <= 5 * per_element_sigma + 1e-6)


def test_broadcast_masks_constant_along_broadcast_axes():
    x = jnp.ones((8, 5, 6, 16))
    y = np.asarray(jl.dropout(jax.random.key(1), x, 0.5, broadcast_dims=(1, 2)))
    assert np.all(y == y[:, :1, :1, :])  # shared over H, W
    assert 0 < np.count_nonzero(y[:, 0, 0, :]) < 8 * 16  # varies over B and C
    y2 = np.asarray(jl.dropout(jax.random.key(1), x, 0.5, broadcast_dims=(-3, -2)))
    np.testing.assert_array_equal(y, y2)  # negative axes mean the same
    m = np.asarray(jl.dropout_mask(jax.random.key(1), x.shape, 0.5, broadcast_dims=(1, 2)))
    assert m.shape == x.shape
    np.testing.assert_array_equal(m, y)


def test_kept_fraction_of_broadcast_mask():
    # 20_000 independent mask values, each shared along an axis of 50.
    y = np.asarray(jl.dropout(jax.random.key(2), jnp.ones((20_000, 50)), 0.25, broadcast_dims=1))
    kept = np.count_nonzero(y[:, 0])
    assert abs(kept - 15_000) < 5 * np.sqrt(20_000 * 0.75 * 0.25)


def test_edge_rates_exact():
    x = jnp.arange(6.0).reshape(2, 3) - 2.5
    assert jl.dropout(None, x, 0.0) is x
    assert jl.dropout(None, x, 0, broadcast_dims=1) is x
    assert jl.dropout(None, x, 0.5, deterministic=True) is x
    assert jl.dropout(None, x, np.float32(0.5), deterministic=np.bool_(True)) is x
    np.testing.assert_array_equal(jl.dropout(KEY, x, 1.0), np.zeros((2, 3)))
    np.testing.assert_array_equal(jl.dropout(None, x, 1), np.zeros((2, 3)))
    np.testing.assert_array_equal(jl.alpha_dropout(None, x, 1.0), np.zeros((2, 3)))
    assert jl.alpha_dropout(None, x, 0.0) is x
    np.testing.assert_array_equal(jl.dropout_mask(KEY, (2, 3), 0.0), np.ones((2, 3)))
    np.testing.assert_array_equal(jl.dropout_mask(KEY, (2, 3), 1.0), np.zeros((2, 3)))


def test_traced_edge_rates_give_no_nan():
    x = jnp.arange(6.0).reshape(2, 3) - 2.5

    @jax.jit
    def f(rate):
        y = jl.dropout(KEY, x, rate)
        g = jax.grad(lambda x: jnp.sum(jl.dropout(KEY, x, rate)))(x)
        a = jl.alpha_dropout(KEY, x, rate)
        m = jl.dropout_mask(KEY, x.shape, rate)
        return y, g, a, m

    y, g, a, m = f(1.0)
    for arr in (y, g, a, m):
        np.testing.assert_array_equal(arr, np.zeros((2, 3)))
    y, g, a, m = f(0.0)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(g, np.ones((2, 3)))
    np.testing.assert_array_equal(a, x)  # q = 1: a = 1, b = 0, nothing dropped
    np.testing.assert_array_equal(m, np.ones((2, 3)))


def test_traced_deterministic():
    x = jnp.linspace(1.0, 2.0, 50)
    f = jax.jit(lambda d: jl.dropout(KEY, x, 0.5, deterministic=d))
    np.testing.assert_array_equal(f(True), x)
    np.testing.assert_array_equal(f(False), jl.dropout(KEY, x, 0.5))
    g = jax.jit(lambda d: jl.alpha_dropout(KEY, x, 0.5, deterministic=d))
    np.testing.assert_array_equal(g(True), x)
    np.testing.assert_allclose(g(False), jl.alpha_dropout(KEY, x, 0.5), rtol=1e-6)


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan"), np.float32("nan"), np.float32(1.01)])
def test_rate_out_of_range_raises(rate):
    with pytest.raises(ValueError, match="rate"):
        jl.dropout(KEY, jnp.ones(3), rate)
    with pytest.raises(ValueError, match="rate"):
        jl.alpha_dropout(KEY, jnp.ones(3), rate)
    with pytest.raises(ValueError, match="rate"):
        jl.dropout_mask(KEY, (3,), rate)


def test_argument_errors():
    with pytest.raises(ValueError, match="key is None"):
        jl.dropout(None, jnp.ones(3), 0.5)
    with pytest.raises(TypeError, match="x must be a floating-point array"):
        jl.dropout(KEY, jnp.arange(3), 0.5)
    with pytest.raises(ValueError, match="broadcast_dims"):
        jl.dropout(KEY, jnp.ones((2, 3)), 0.5, broadcast_dims=2)
    with pytest.raises(ValueError, match="rate must be a scalar"):
        jl.dropout(KEY, jnp.ones(3), jnp.array([0.1, 0.2]))
    with pytest.raises(TypeError, match="dtype"):
        jl.dropout_mask(KEY, (3,), 0.5, dtype=jnp.int32)


def test_dtype_preserved_bf16():
    x = jax.random.normal(jax.random.key(5), (64, 64)).astype(jnp.bfloat16)
    y = jl.dropout(KEY, x, 0.3)
    assert y.dtype == jnp.bfloat16
    keep = np.asarray(jl.dropout_mask(KEY, x.shape, 0.3)) != 0
    expected = np.where(keep, np.asarray(x, np.float32) / np.float32(0.7), 0.0)
    expected = np.asarray(jnp.asarray(expected).astype(jnp.bfloat16), np.float32)
    np.testing.assert_array_equal(np.asarray(y, np.float32), expected)
    assert jl.alpha_dropout(KEY, x, 0.3).dtype == jnp.bfloat16
    g = jax.grad(lambda x: jnp.sum(jl.dropout(KEY, x, 0.3).astype(jnp.float32)))(x)
    assert g.dtype == jnp.bfloat16


def test_float64_stays_float64():
    with float64():
        x = jnp.ones(10, jnp.float64)
        assert jl.dropout(KEY, x, 0.3).dtype == jnp.float64
        assert jl.alpha_dropout(KEY, x, 0.3).dtype == jnp.float64


def test_mask_matches_bernoulli_and_dropout():
    x = jnp.linspace(-1.0, 1.0, 300).reshape(3, 100)
    keep = np.asarray(jax.random.bernoulli(KEY, 0.8, (3, 100)))
    m = np.asarray(jl.dropout_mask(KEY, x.shape, 0.2))
    np.testing.assert_array_equal(m != 0, keep)
    np.testing.assert_allclose(m[keep], 1 / 0.8, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jl.dropout(KEY, x, 0.2)), np.asarray(x) * m, rtol=1e-6)
    assert jl.dropout_mask(KEY, (2, 2), 0.5, dtype=jnp.bfloat16).dtype == jnp.bfloat16


def test_same_key_same_mask_with_and_without_jit_and_under_vmap():
    x = jnp.ones((4, 33))
    eager = jl.dropout(KEY, x, 0.5)
    jitted = jax.jit(jl.dropout, static_argnames="rate")(KEY, x, rate=0.5)
    np.testing.assert_array_equal(eager, jitted)
    keys = jax.random.split(jax.random.key(7), 6)
    xs = jnp.ones((6, 4, 33))
    batched = jax.vmap(lambda k, x: jl.dropout(k, x, 0.5))(keys, xs)
    loop = np.stack([np.asarray(jl.dropout(k, x, 0.5)) for k, x in zip(keys, xs, strict=True)])
    np.testing.assert_array_equal(batched, loop)
    a_batched = jax.jit(jax.vmap(lambda k, x: jl.alpha_dropout(k, x, 0.5)))(keys, xs)
    a_loop = np.stack(
        [np.asarray(jl.alpha_dropout(k, x, 0.5)) for k, x in zip(keys, xs, strict=True)]
    )
    np.testing.assert_allclose(a_batched, a_loop, rtol=1e-6)
    # legacy uint32 keys work too
    legacy = jl.dropout(jax.random.PRNGKey(0), x, 0.5)
    assert legacy.shape == x.shape


def test_gradient_is_the_scaled_mask_finite_differences():
    with float64():
        x0 = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
        c = np.arange(12.0).reshape(3, 4)

        def f(x):
            return jnp.sum(jnp.asarray(c) * jl.dropout(KEY, jnp.asarray(x), 0.4) ** 2)

        g = jax.grad(f)(jnp.asarray(x0))
        np.testing.assert_allclose(g, numeric_grad(f, x0), rtol=1e-6, atol=1e-8)
        ga = jax.grad(lambda x: jnp.sum(jnp.asarray(c) * jl.alpha_dropout(KEY, x, 0.4) ** 2))
        num = numeric_grad(
            lambda x: jnp.sum(jnp.asarray(c) * jl.alpha_dropout(KEY, x, 0.4) ** 2), x0
        )
        np.testing.assert_allclose(ga(jnp.asarray(x0)), num, rtol=1e-6, atol=1e-8)


def test_alpha_dropout_values_and_statistics():
    rate = 0.2
    q = 1 - rate
    alpha_p = -SELU_LAMBDA * SELU_ALPHA
    a = (q + alpha_p**2 * q * (1 - q)) ** -0.5
    b = -a * (1 - q) * alpha_p
    x = jax.random.normal(jax.random.key(11), (400_000,))
    y = np.asarray(jl.alpha_dropout(jax.random.key(12), x, rate))
    keep = np.asarray(jax.random.bernoulli(jax.random.key(12), q, x.shape))
    np.testing.assert_allclose(y[keep], a * np.asarray(x)[keep] + b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y[~keep], a * alpha_p + b, rtol=1e-6)
    # mean 0 and variance 1 for standard-normal inputs (sampling error ~ 1/sqrt(N) ≈ 0.0016)
    assert abs(y.mean()) < 0.01 and abs(y.var() - 1.0) < 0.01
    assert abs(np.count_nonzero(keep) - q * x.size) < 5 * np.sqrt(x.size * q * (1 - q))


def test_composition_jit_vmap_grad():
    def loss(w, key, x):
        h = jnp.tanh(x @ w)
        return jnp.mean(jl.dropout(key, h, 0.3, broadcast_dims=0) ** 2)

    w = jnp.eye(4) * 0.5
    xs = jax.random.normal(jax.random.key(9), (5, 3, 4))
    keys = jax.random.split(jax.random.key(10), 5)
    per_example = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, 0)))(w, keys, xs)
    loop = np.stack([np.asarray(jax.grad(loss)(w, k, x)) for k, x in zip(keys, xs, strict=True)])
    np.testing.assert_allclose(per_example, loop, rtol=1e-5, atol=1e-7)
    ck = jax.checkpoint(lambda x: jl.dropout(KEY, x, 0.5))
    np.testing.assert_array_equal(ck(jnp.ones(8)), jl.dropout(KEY, jnp.ones(8), 0.5))


# --- the fused threefry draw reproduces jax.random bit for bit ------------------------------------


@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 100), (2, 5, 1, 9), (64, 4097)])
def test_fused_threefry_bits_equal_jax_random_bits(shape):
    from jaxloss.dropout import _threefry_bits

    for seed in [0, 1, 2**31 + 5]:
        key = jax.random.key(seed)
        data = jax.random.key_data(key)
        got = jax.jit(_threefry_bits, static_argnums=2)(data[0], data[1], shape)
        np.testing.assert_array_equal(got, jax.random.bits(key, shape, jnp.uint32))


@pytest.mark.parametrize(
    "key",
    [jax.random.key(3), jax.random.PRNGKey(3), jax.random.key(3, impl="rbg")],
    ids=["key", "PRNGKey", "rbg"],
)
def test_fused_bernoulli_equals_jax_random_bernoulli(key):
    from jaxloss.dropout import _bernoulli

    for p in [0.0, 1e-7, 0.1, 0.5, 0.9, 1.0 - 2**-24, 1.0]:
        p32 = jnp.float32(p)
        for shape in [(5,), (3, 100), (2, 1, 33)]:
            np.testing.assert_array_equal(
                jax.jit(_bernoulli, static_argnums=2)(key, p32, shape),
                jax.random.bernoulli(key, p32, shape),
            )
    keys = jax.random.split(key, 4)
    batched = jax.vmap(lambda k: _bernoulli(k, jnp.float32(0.3), (50,)))(keys)
    np.testing.assert_array_equal(
        batched, jax.vmap(lambda k: jax.random.bernoulli(k, jnp.float32(0.3), (50,)))(keys)
    )


def test_dropout_fuses_the_draw_for_default_keys_and_falls_back_otherwise():
    x = jnp.ones((8, 8))
    prims = lambda k: str(jax.make_jaxpr(lambda k: jl.dropout(k, x, 0.1))(k))  # noqa: E731
    assert "random_bits" not in prims(KEY)  # the hash is written out in jnp
    assert "random_bits" in prims(jax.random.key(0, impl="rbg"))  # jax.random itself
    rbg = jax.random.key(1, impl="rbg")
    np.testing.assert_array_equal(
        jl.dropout_mask(rbg, (4, 9), 0.4) != 0, jax.random.bernoulli(rbg, 0.6, (4, 9))
    )


def test_non_partitionable_threefry_falls_back_to_jax_random():
    # The other threefry counter layout: jaxloss must not use its own hash then.
    with jax.threefry_partitionable(False):
        x = jnp.ones((6, 7))
        assert "random_bits" in str(jax.make_jaxpr(lambda k: jl.dropout(k, x, 0.3))(KEY))
        np.testing.assert_array_equal(
            jl.dropout_mask(KEY, (6, 7), 0.3) != 0, jax.random.bernoulli(KEY, 0.7, (6, 7))
        )
