"""Tests for jaxloss.gradients against loops of jax.grad, hand values and finite differences."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss as jl

from helpers import float64, numeric_grad


def mlp_init(key, sizes=(5, 4, 3)):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w1": jax.random.normal(k1, sizes[:2]),
        "b1": jax.random.normal(k3, sizes[1:2]),
        "w2": jax.random.normal(k2, sizes[1:]),
    }


def mlp_loss(p, x, y):
    h = jnp.tanh(x @ p["w1"] + p["b1"])
    return -jax.nn.log_softmax(h @ p["w2"])[y]


@pytest.fixture(scope="module")
def problem():
    params = mlp_init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (7, 5))
    y = jnp.array([0, 1, 2, 0, 1, 2, 2])
    grad = jax.jit(jax.grad(mlp_loss))
    loop = [grad(params, x[i], y[i]) for i in range(7)]
    expected = jax.tree.map(lambda *g: np.stack(g), *loop)
    return params, x, y, expected


def assert_tree_close(a, b, rtol=1e-5, atol=1e-6):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------------
# per-example gradients


@pytest.mark.parametrize(
    "method, batch_size", [("auto", None), ("vmap", None), ("map", None), ("map", 3), ("auto", 2)]
)
def test_per_example_grads_equal_a_loop_of_grad(problem, method, batch_size):
    params, x, y, expected = problem
    f = jax.jit(
        lambda p, x, y: jl.per_example_grads(
            mlp_loss, p, x, y, method=method, batch_size=batch_size
        )
    )
    assert_tree_close(f(params, x, y), expected)


def test_per_example_value_and_grad_and_aux(problem):
    params, x, y, expected = problem
    values, grads = jl.per_example_value_and_grad(mlp_loss, params, x, y)
    np.testing.assert_allclose(values, [mlp_loss(params, x[i], y[i]) for i in range(7)], rtol=1e-6)
    assert_tree_close(grads, expected)

    def with_aux(p, x, y):
        return mlp_loss(p, x, y), {"double_label": 2 * y}

    for method in ("vmap", "map"):
        (values2, aux), grads2 = jl.per_example_value_and_grad(
            with_aux, params, x, y, has_aux=True, method=method
        )
        np.testing.assert_allclose(values2, values, rtol=1e-6)
        np.testing.assert_array_equal(aux["double_label"], 2 * np.asarray(y))
        assert_tree_close(grads2, expected)
        grads3, aux3 = jl.per_example_grads(with_aux, params, x, y, has_aux=True, method=method)
        assert_tree_close(grads3, expected)
        np.testing.assert_array_equal(aux3["double_label"], 2 * np.asarray(y))


def test_per_example_grads_in_axes_and_pytree_batches(problem):
    params, x, y, expected = problem

    def loss(p, batch, scale):
        assert isinstance(scale, float)  # an unbatched Python number reaches fn as itself
        return scale * mlp_loss(p, batch["x"], batch["y"])

    for method in ("vmap", "map"):
        g = jl.per_example_grads(
            loss, params, {"x": x, "y": y}, 2.0, in_axes=(0, None), method=method
        )
        assert_tree_close(g, jax.tree.map(lambda e: 2.0 * e, expected))
        # batch along axis 1
        g1 = jl.per_example_grads(mlp_loss, params, x.T, y, in_axes=(1, 0), method=method)
        assert_tree_close(g1, expected)


def _outer_product_transposes(f, *args):
    """The ``transpose`` equations of ``f``'s jaxpr that swap the last two axes of a 3-D array
    (how vmap-of-grad lays out ``x_i ⊗ g_i`` weight gradients)."""
    text = str(jax.make_jaxpr(f)(*args))
    return text.count("transpose[permutation=(0, 2, 1)]")


def test_per_example_grads_fold_the_transposed_outer_products():
    rng = np.random.default_rng(0)
    params = {
        "w1": jnp.asarray(rng.normal(size=(784, 256)) * 0.05, jnp.float32),
        "b1": jnp.zeros(256),
        "w2": jnp.asarray(rng.normal(size=(256, 10)), jnp.float32),
        "b2": jnp.zeros(10),
    }
    x = jnp.asarray(rng.normal(size=(16, 784)), jnp.float32)
    y = jnp.arange(16) % 10

    @jax.jit  # a jit-ed piece of the model is inlined and folded too
    def hidden(p, x):
        return jnp.tanh(x @ p["w1"] + p["b1"])

    def loss(p, x, y):
        return -jax.nn.log_softmax(hidden(p, x) @ p["w2"] + p["b2"])[y]

    plain = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))
    assert _outer_product_transposes(plain, params, x, y) == 2  # vmap's own layout
    for method, size in [("auto", None), ("map", 4), ("map", 5)]:
        ours = lambda p, x, y, m=method, b=size: jl.per_example_grads(  # noqa: E731
            loss, p, x, y, method=m, batch_size=b
        )
        assert _outer_product_transposes(ours, params, x, y) == 0
        got, want = jax.jit(ours)(params, x, y), jax.jit(plain)(params, x, y)
        for k in params:
            if method == "auto":  # bit for bit: each entry is the same single product
                np.testing.assert_array_equal(got[k], want[k])
            else:  # chunks of 4 or 5 (+ 1) examples compile differently
                np.testing.assert_allclose(got[k], want[k], rtol=2e-4, atol=1e-6)


def test_per_example_grads_keep_sharded_jit_calls_and_other_primitives():
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    w = jnp.asarray(np.random.default_rng(1).normal(size=(5, 3)), jnp.float32)
    x = jnp.asarray(np.random.default_rng(2).normal(size=(6, 5)), jnp.float32)

    @functools.partial(jax.jit, out_shardings=sharding)
    def layer(w, x):
        return jnp.sin(x @ w)

    def loss(w, x):  # a scan and a cond inside the loss are bound as traced
        h = jax.lax.scan(lambda c, _: (jnp.cos(c), None), layer(w, x), None, length=2)[0]
        return jax.lax.cond(jnp.sum(h) > 0, jnp.sum, lambda v: -jnp.sum(v), h**2)

    expected = np.stack([jax.grad(loss)(w, x[i]) for i in range(6)])
    np.testing.assert_allclose(jl.per_example_grads(loss, w, x), expected, rtol=1e-5, atol=1e-7)


def test_per_example_grads_errors(problem):
    params, x, y, _ = problem
    with pytest.raises(ValueError, match="batch size"):
        jl.per_example_grads(mlp_loss, params, x, y[:3])
    with pytest.raises(ValueError, match="method must be one of"):
        jl.per_example_grads(mlp_loss, params, x, y, method="pmap")
    with pytest.raises(ValueError, match="in_axes has 1 entries"):
        jl.per_example_grads(mlp_loss, params, x, y, in_axes=(0,))
    with pytest.raises(ValueError, match="batch_size"):
        jl.per_example_grads(mlp_loss, params, x, y, method="map", batch_size=0)
    with pytest.raises(ValueError, match="at least one batch argument"):
        jl.per_example_grads(mlp_loss, params)
    with pytest.raises(ValueError, match="no axis 2"):
        jl.per_example_grads(mlp_loss, params, x, y, in_axes=(2, 0))


# ---------------------------------------------------------------------------------------------
# weighted VJPs


def test_weighted_grad_equals_gradient_of_weighted_sum(problem):
    params, x, y, expected = problem
    w = jnp.array([1.0, 0.0, 2.0, 0.5, -1.0, 3.0, 0.25])
    per_example = jax.vmap(mlp_loss, in_axes=(None, 0, 0))
    direct = jax.grad(lambda p: jnp.sum(w * per_example(p, x, y)))(params)
    g = jax.jit(lambda p, w: jl.weighted_grad(per_example, p, w, x, y))(params, w)
    assert_tree_close(g, direct)
    # ... and equals weighting the per-example gradients
    assert_tree_close(
        g,
        jax.tree.map(lambda e: np.tensordot(np.asarray(w), e, axes=1), expected),
        rtol=1e-5,
        atol=1e-5,
    )
    value, g2 = jl.weighted_value_and_grad(per_example, params, w, x, y)
    np.testing.assert_allclose(value, np.dot(w, per_example(params, x, y)), rtol=1e-6)
    assert_tree_close(g2, direct)


def test_weighted_grad_broadcast_weights_and_aux():
    def token_losses(p, x):  # [B, T] per-token losses
        return (x * p) ** 2, jnp.sum(x)

    p = jnp.float32(0.5)
    x = jnp.arange(6.0).reshape(2, 3)
    w = jnp.array([[1.0], [2.0]])  # one weight per sequence
    g, aux = jl.weighted_grad(token_losses, p, w, x, has_aux=True)
    # d/dp Σ w_b Σ_t (x p)^2 = 2 p Σ_b w_b Σ_t x^2 = 2·0.5·(1·5 + 2·50)
    np.testing.assert_allclose(g, 105.0, rtol=1e-6)
    assert float(aux) == 15.0
    (value, _), g2 = jl.weighted_value_and_grad(token_losses, p, w, x, has_aux=True)
    np.testing.assert_allclose(value, 0.25 * (5 + 2 * 50), rtol=1e-6)
    np.testing.assert_allclose(g2, 105.0, rtol=1e-6)


def test_weighted_grad_errors():
    losses = lambda p, x: (x * p) ** 2  # noqa: E731
    with pytest.raises(ValueError, match=r"weights has shape \(3,\).*\(2,\)"):
        jl.weighted_grad(losses, 1.0, jnp.ones(3), jnp.ones(2))
    with pytest.raises(TypeError, match="has_aux=True"):
        jl.weighted_grad(lambda p, x: ((x * p) ** 2, 0), 1.0, jnp.ones(2), jnp.ones(2))


# ---------------------------------------------------------------------------------------------
# backprop_from / inject_grad


def test_backprop_from_is_the_chain_rule(problem):
    params, x, _, _ = problem

    def encoder(p, x):
        return {"h": jnp.tanh(x @ p["w1"] + p["b1"]), "s": jnp.sum(p["w2"])}

    def head(h):
        return jnp.sum(jnp.sin(h["h"])) * h["s"]

    direct = jax.grad(lambda p: head(encoder(p, x)))(params)
    g_h = jax.grad(head)(encoder(params, x))
    assert_tree_close(jl.backprop_from(encoder, params, g_h, x), direct)
    # an edited (here: halved) gradient propagates linearly
    half = jax.tree.map(lambda t: 0.5 * t, g_h)
    assert_tree_close(
        jl.backprop_from(encoder, params, half, x), jax.tree.map(lambda t: 0.5 * t, direct)
    )
    # has_aux
    g, aux = jl.backprop_from(lambda p, x: (encoder(p, x), 7), params, g_h, x, has_aux=True)
    assert aux == 7
    assert_tree_close(g, direct)


def test_backprop_from_hand_value_and_errors():
    # h = W x, g = dL/dh: dL/dW = g x^T
    w = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    x = jnp.array([1.0, -2.0])
    g = jnp.array([0.5, 1.0])
    np.testing.assert_allclose(
        jl.backprop_from(lambda w, x: w @ x, w, g, x), [[0.5, -1.0], [1.0, -2.0]]
    )
    with pytest.raises(ValueError, match=r"shape \(3,\).*\(2,\)"):
        jl.backprop_from(lambda w, x: w @ x, w, jnp.ones(3), x)
    with pytest.raises(ValueError, match="tree structure"):
        jl.backprop_from(lambda w, x: (w @ x, x), w, (g, g, g), x)


def test_inject_grad_value_zero_and_gradient_g():
    x = jnp.array([1.0, jnp.inf, -2.0])
    g = jnp.array([3.0, 0.0, -1.0])
    out = jl.inject_grad(x, g)
    assert out.shape == () and float(out) == 0.0
    np.testing.assert_array_equal(jax.grad(jl.inject_grad)(jnp.array([1.0, 5.0, -2.0]), g), g)
    # no gradient flows into g
    np.testing.assert_array_equal(jax.grad(jl.inject_grad, argnums=1)(x, g), np.zeros(3))

    # added to a loss: value unchanged, gradient gains g at x
    def loss(w):
        h = w * jnp.array([1.0, 2.0, 3.0])
        return jnp.sum(h**2) + jl.inject_grad(h, g)

    w = jnp.float32(0.5)
    np.testing.assert_allclose(loss(w), 0.25 * 14, rtol=1e-7)
    # d/dw [Σ (w c)^2] + g·c = 2 w Σc^2 + (3·1 + 0·2 - 1·3) = 14 + 0
    np.testing.assert_allclose(jax.grad(loss)(w), 14.0, rtol=1e-6)


def test_inject_grad_equals_backprop_from_pytrees_jit(problem):
    params, x, _, _ = problem

    def encoder(p, x):
        return {"a": jnp.tanh(x @ p["w1"]), "b": p["b1"] * 2.0}

    g = {"a": jax.random.normal(jax.random.key(3), (7, 4)), "b": jnp.arange(4.0)}
    via_inject = jax.jit(jax.grad(lambda p: jl.inject_grad(encoder(p, x), g)))(params)
    assert_tree_close(via_inject, jl.backprop_from(encoder, params, g, x))
    # g broadcasts: one gradient row for every example
    row = jnp.arange(4.0)
    a = jax.grad(lambda p: jl.inject_grad(encoder(p, x)["a"], row))(params)
    b = jax.grad(lambda p: jl.inject_grad(encoder(p, x)["a"], jnp.tile(row, (7, 1))))(params)
    assert_tree_close(a, b)
    with pytest.raises(ValueError, match="does not broadcast"):
        jl.inject_grad(jnp.ones(3), jnp.ones(4))
    with pytest.raises(TypeError, match="floating-point"):
        jl.inject_grad(jnp.arange(3), jnp.ones(3))


def test_inject_grad_float64():
    with float64():
        out = jl.inject_grad(jnp.ones(2, jnp.float64), jnp.ones(2))
        assert out.dtype == jnp.float64


# ---------------------------------------------------------------------------------------------
# straight-through estimators


def test_straight_through_value_exact_gradient_of_surrogate():
    x = jnp.array([1e8, -3.0, 0.25])
    forward = jnp.array([1e-8, 7.0, -0.0])
    y = jl.straight_through(forward, x)
    np.testing.assert_array_equal(y, forward)  # exact (the idiom gives 0 for 1e-8)
    idiom = x + jax.lax.stop_gradient(forward - x)  # the common idiom rounds it away
    assert float(idiom[0]) == 0.0
    cot = jnp.array([1.0, 2.0, 3.0])
    g = jax.grad(lambda x: jnp.vdot(cot, jl.straight_through(jnp.sign(x), jnp.sin(x))))(x)
    np.testing.assert_allclose(g, np.asarray(cot) * np.cos(np.asarray(x, np.float64)), rtol=1e-5)
    # no gradient reaches forward
    gf = jax.grad(lambda f: jnp.sum(jl.straight_through(f, x)))(forward)
    np.testing.assert_array_equal(gf, np.zeros(3))
    # infinite surrogate: still the forward value, no NaN
    np.testing.assert_array_equal(jl.straight_through(jnp.ones(1), jnp.array([jnp.inf])), [1.0])
    with pytest.raises(ValueError, match="does not broadcast"):
        jl.straight_through(jnp.ones(4), jnp.ones(3))


def test_straight_through_argmax():
    logits = jax.random.normal(jax.random.key(4), (6, 5))
    y = jl.straight_through_argmax(logits)
    expected = np.eye(5)[np.argmax(np.asarray(logits), axis=-1)]
    np.testing.assert_array_equal(y, expected)
    cot = jax.random.normal(jax.random.key(5), (6, 5))

    @jax.jit
    def grads(z, t):
        g = jax.grad(lambda z: jnp.vdot(cot, jl.straight_through_argmax(z, temperature=t)))(z)
        ref = jax.grad(lambda z: jnp.vdot(cot, jax.nn.softmax(z / t)))(z)
        return g, ref

    for t in (1.0, 0.5):
        g, ref = grads(logits, t)
        np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-6)
    # class axis 0, ties go to the first maximum
    y0 = jl.straight_through_argmax(jnp.array([[1.0, 2.0], [1.0, 0.0], [0.0, 2.0]]), axis=0)
    np.testing.assert_array_equal(y0, [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    assert jl.straight_through_argmax(logits.astype(jnp.bfloat16)).dtype == jnp.bfloat16


def test_straight_through_round():
    x = jnp.array([-1.5, -0.5, 0.49, 0.5, 1.5, 2.51])
    np.testing.assert_array_equal(jl.straight_through_round(x), [-2.0, -0.0, 0.0, 0.0, 2.0, 3.0])
    np.testing.assert_array_equal(
        jax.grad(lambda x: jnp.sum(jl.straight_through_round(x)))(x), np.ones(6)
    )
    vm = jax.jit(jax.vmap(jax.grad(lambda x: 2.0 * jl.straight_through_round(x))))(x)
    np.testing.assert_array_equal(vm, 2 * np.ones(6))


def test_soft_argmax_value_limit_and_gradient():
    logits = np.array([[0.3, 2.0, -1.0, 1.5], [4.0, 0.0, 0.0, 4.0]], np.float32)
    for t in (1.0, 0.3):
        z = logits / t
        p = np.exp(z - z.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        np.testing.assert_allclose(jl.soft_argmax(logits, t), p @ np.arange(4), rtol=1e-5)
    np.testing.assert_allclose(jl.soft_argmax(logits[:1], 0.01), [1.0], atol=1e-6)
    np.testing.assert_allclose(jl.soft_argmax(logits.T, axis=0), jl.soft_argmax(logits), rtol=1e-6)
    assert jl.soft_argmax(jnp.asarray(logits, jnp.bfloat16)).dtype == jnp.float32
    with pytest.raises(ValueError, match="temperature"):
        jl.soft_argmax(logits, 0.0)
    with float64():
        x0 = logits.astype(np.float64)[0]
        f = jax.jit(lambda z: jl.soft_argmax(z, 0.7))
        g = jax.jit(jax.grad(f))(jnp.asarray(x0))
        np.testing.assert_allclose(g, numeric_grad(f, x0), rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# check_grads


def test_check_grads_passes_correct_gradients():
    logits = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], np.float32)
    labels = np.array([2, 1])
    report = jl.check_grads(
        lambda z, y: jnp.sum(jl.softmax_cross_entropy_with_integer_labels(z, y)), (logits, labels)
    )
    assert report.ok and report.num_failed == 0 and report.num_checked == 6
    assert report.max_abs_error < 1e-8
    # pytree arguments and a non-scalar output (whole Jacobian)
    params = {"w": np.ones((3, 2), np.float32), "b": np.array([0.1, -0.2], np.float32)}
    report = jl.check_grads(
        lambda p, x: jnp.tanh(x @ p["w"] + p["b"]),
        (params, np.array([[0.5, -1.0, 2.0]], np.float32)),
    )
    assert report.ok and report.num_checked == 2 * (6 + 2 + 3)
    assert jl.check_grads(jnp.sin, np.float32(0.3)).ok  # a single non-tuple argument


@jax.custom_vjp
def planted(x):
    return jnp.sum(x**2)


def _planted_fwd(x):
    return planted(x), x


def _planted_bwd(x, g):
    grad = 2 * x
    grad = grad.at[1, 2].set(grad[1, 2] + 0.01)  # a wrong gradient in one coordinate
    return (g * grad,)


planted.defvjp(_planted_fwd, _planted_bwd)


def test_check_grads_catches_a_planted_wrong_gradient():
    x = np.arange(6.0, dtype=np.float32).reshape(2, 3) / 4
    with pytest.raises(jl.GradCheckError) as info:
        jl.check_grads(lambda a, b: jnp.sum(a) + planted(b), (np.ones(2, np.float32), x))
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    assert "args[1][1, 2]" in message and "1 of 8 coordinates" in message
    assert "analytic 2.51" in message and "numeric 2.5" in message
    report = jl.check_grads(planted, (x,), raise_on_error=False)
    assert isinstance(report, jl.GradCheckReport) and info.value.report.index == (1, 2)
    assert not report.ok and report.num_failed == 1
    assert report.argument == 0 and report.index == (1, 2)
    np.testing.assert_allclose(report.analytic, 2.51, rtol=1e-12)
    np.testing.assert_allclose(report.numeric, 2.5, rtol=1e-9)
    np.testing.assert_allclose(report.rel_error, 0.01 / 2.51, rtol=1e-6)
    # pytree path in the report
    report = jl.check_grads(lambda p: planted(p["w"]), ({"w": x},), raise_on_error=False)
    assert report.path == "['w']" and report.index == (1, 2)


def test_check_grads_x64_handling():
    assert not jax.config.jax_enable_x64
    seen = []

    def f(x):
        seen.append(x.dtype)
        return jnp.sum(jnp.exp(x))

    assert jl.check_grads(f, (np.ones(3, np.float32),)).ok
    assert all(d == jnp.float64 for d in seen)
    assert jnp.ones(1).dtype == jnp.float32  # x64 is off again afterwards
    with pytest.raises(RuntimeError, match="x64 is off"):
        jl.check_grads(f, (np.ones(3),), enable_x64=False)
    with float64():
        assert jl.check_grads(f, (np.ones(3),), enable_x64=False).ok
    with pytest.raises(TypeError, match="returned float32"):
        jl.check_grads(lambda x: jnp.sum(x.astype(jnp.float32) ** 2), (np.ones(3),))


def test_check_grads_argument_errors():
    with pytest.raises(TypeError, match="outside"):
        jax.jit(lambda x: jl.check_grads(jnp.sum, (x,)).ok)(jnp.ones(2))
    with pytest.raises(ValueError, match="no floating-point"):
        jl.check_grads(lambda y: jnp.sum(y) * 1.0, (np.arange(3),))
    with pytest.raises(ValueError, match="eps"):
        jl.check_grads(jnp.sum, (np.ones(2),), eps=0.0)


def test_shifting_all_logits_at_once_measures_nothing():
    """The classic mistake the issue describes: a directional derivative along (1, ..., 1)."""
    z = np.array([1.0, -2.0, 0.5])
    f = lambda z: float(jl.softmax_cross_entropy_with_integer_labels(jnp.asarray(z), 2))  # noqa: E731
    with float64():
        h = 1e-6
        all_at_once = (f(z + h) - f(z - h)) / (2 * h)
        one_by_one = numeric_grad(f, z)
    assert abs(all_at_once) < 1e-8
    p = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(one_by_one, p - np.eye(3)[2], rtol=1e-6)
