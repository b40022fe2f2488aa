"""Margin losses (hinge, squared hinge, perceptron, Crammer–Singer, PyTorch's multi_margin_loss)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss as jl

from helpers import float64, numeric_grad


def np_multi_margin(x, y, margin=1.0, p=1, weight=None):
    """PyTorch's multi_margin_loss(reduction='none') written from its documented formula."""
    x = np.asarray(x, np.float64)
    n, c = x.shape
    out = np.zeros(n)
    for i in range(n):
        terms = [max(0.0, margin - x[i, y[i]] + x[i, j]) ** p for j in range(c) if j != y[i]]
        out[i] = sum(terms) / c * (1.0 if weight is None else weight[y[i]])
    return out


def test_optax_parity_values_and_gradients(rng):
    s = rng.normal(size=(6, 5)).astype(np.float32) * 2
    labels = rng.integers(0, 5, size=6)
    pm = np.where(rng.random(6) > 0.5, 1.0, -1.0).astype(np.float32)
    out = rng.normal(size=6).astype(np.float32) * 2
    cases = [
        (jl.hinge_loss, optax.losses.hinge_loss, (out, pm)),
        (jl.perceptron_loss, optax.losses.perceptron_loss, (out, pm)),
        (jl.multiclass_hinge_loss, optax.losses.multiclass_hinge_loss, (s, labels)),
        (jl.multiclass_perceptron_loss, optax.losses.multiclass_perceptron_loss, (s, labels)),
    ]
    for ours, theirs, (a, b) in cases:
        np.testing.assert_allclose(ours(a, b), theirs(a, b), rtol=1e-6, atol=1e-7)
        g1 = jax.grad(lambda z, ours=ours, b=b: ours(z, b).sum())(a)
        g2 = jax.grad(lambda z, theirs=theirs, b=b: theirs(z, b).sum())(a)
        np.testing.assert_allclose(g1, g2, rtol=1e-6, atol=1e-7)


def test_binary_variants_hand_values():
    s = jnp.array([2.0, 0.5, 0.5, -0.3])
    pm = jnp.array([1.0, 1.0, -1.0, -1.0])
    y01 = jnp.array([1, 1, 0, 0])
    hinge = np.array([0.0, 0.5, 1.5, 0.7])
    np.testing.assert_allclose(jl.hinge_loss(s, pm), hinge, rtol=1e-6)
    np.testing.assert_allclose(jl.binary_hinge_loss(s, y01), hinge, rtol=1e-6)
    np.testing.assert_allclose(jl.binary_hinge_loss(s, y01.astype(bool)), hinge, rtol=1e-6)
    np.testing.assert_allclose(jl.binary_hinge_loss(s, y01, squared=True), hinge**2, rtol=1e-6)
    np.testing.assert_allclose(jl.squared_hinge_loss(s, pm), hinge**2, rtol=1e-6)
    # margin 0.5: max(0, 0.5 - s t) = [0, 0, 1, 0.2]
    np.testing.assert_allclose(
        jl.binary_hinge_loss(s, y01, margin=0.5), [0, 0, 1.0, 0.2], rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(
        jl.squared_hinge_loss(s, pm, margin=0.5), [0, 0, 1.0, 0.04], rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(jl.perceptron_loss(s, pm), [0.0, 0.0, 0.5, 0.0])
    # Keras's squared_hinge is the mean over the last axis.
    np.testing.assert_allclose(
        jl.squared_hinge_loss(s, pm, reduction="mean"), np.mean(hinge**2), rtol=1e-6
    )


def test_multiclass_hinge_and_perceptron_hand_values():
    s = jnp.array([[2.0, 1.5, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 4.0]])
    y = jnp.array([0, 0, 2])
    # Crammer–Singer: max_j(s_j + 1 - [j=y]) - s_y
    np.testing.assert_allclose(jl.multiclass_hinge_loss(s, y), [0.5, 4.0, 0.0])
    np.testing.assert_allclose(jl.multiclass_perceptron_loss(s, y), [0.0, 3.0, 0.0])
    # class axis first
    np.testing.assert_allclose(jl.multiclass_hinge_loss(s.T, y, axis=0), [0.5, 4.0, 0.0])
    # class weights by the true class; weighted_mean divides by Σ w_y
    cw = jnp.array([2.0, 1.0, 3.0])
    np.testing.assert_allclose(jl.multiclass_hinge_loss(s, y, class_weights=cw), [1.0, 8.0, 0.0])
    np.testing.assert_allclose(
        jl.multiclass_hinge_loss(s, y, class_weights=cw, reduction="weighted_mean"),
        9.0 / 7.0,
        rtol=1e-6,
    )
    # ignore_index: excluded everywhere
    yi = jnp.array([0, -1, 2])
    np.testing.assert_allclose(jl.multiclass_hinge_loss(s, yi, ignore_index=-1), [0.5, 0.0, 0.0])
    np.testing.assert_allclose(
        jl.multiclass_perceptron_loss(s, yi, ignore_index=-1, reduction="mean"), 0.0
    )
    np.testing.assert_allclose(
        jl.multiclass_hinge_loss(s, yi, ignore_index=-1, reduction="mean"), 0.25
    )


def test_multi_margin_loss_pytorch_literals():
    x = jnp.array([[0.1, 0.2, 0.4, 0.8], [1.0, -0.5, 0.3, 0.1]])
    y = jnp.array([3, 0])
    # By hand from PyTorch's formula Σ_{j≠y} max(0, margin - x_y + x_j)^p / C (· weight[y]):
    # row 0: (0.3 + 0.4 + 0.6) / 4; row 1: (0 + 0.3 + 0.1) / 4.
    np.testing.assert_allclose(jl.multi_margin_loss(x, y), [0.325, 0.1], rtol=1e-6)
    # p=2: (0.09 + 0.16 + 0.36) / 4, (0.09 + 0.01) / 4
    np.testing.assert_allclose(jl.multi_margin_loss(x, y, p=2), [0.1525, 0.025], rtol=1e-5)
    # margin=0.5: row 0 only 0.5 - 0.8 + 0.4 = 0.1 survives; row 1 nothing.
    np.testing.assert_allclose(
        jl.multi_margin_loss(x, y, margin=0.5), [0.025, 0.0], rtol=1e-5, atol=1e-8
    )
    w = jnp.array([2.0, 1.0, 1.0, 0.5])
    np.testing.assert_allclose(
        jl.multi_margin_loss(x, y, class_weights=w), [0.1625, 0.2], rtol=1e-6
    )
    # PyTorch's reduction="mean" divides by N even with weight (0.1625 + 0.2) / 2.
    np.testing.assert_allclose(
        jl.multi_margin_loss(x, y, class_weights=w, reduction="mean"), 0.18125, rtol=1e-6
    )
    np.testing.assert_allclose(
        jl.multi_margin_loss(x, y, class_weights=w, reduction="sum"), 0.3625, rtol=1e-6
    )
    np.testing.assert_allclose(
        jl.multi_margin_loss(x, y, class_weights=w, reduction="weighted_mean"),
        0.3625 / 2.5,
        rtol=1e-6,
    )


def test_multi_margin_loss_random_vs_numpy_formula(rng):
    x = rng.normal(size=(8, 5)).astype(np.float32)
    y = rng.integers(0, 5, size=8)
    w = rng.uniform(0.5, 2.0, size=5).astype(np.float32)
    for p in (1, 2):
        for margin in (1.0, 0.3):
            np.testing.assert_allclose(
                jl.multi_margin_loss(x, y, p=p, margin=margin, class_weights=w),
                np_multi_margin(x, y, margin, p, w),
                rtol=1e-5,
                atol=1e-7,
            )


def test_gradients_match_finite_differences(rng):
    x = rng.normal(size=(4, 5)) * 1.5
    y = np.array([0, 3, 2, 4])
    t = np.array([1.0, -1.0, 1.0, -1.0, 1.0])
    s = rng.normal(size=5) * 1.5
    with float64():
        for p in (1, 2):
            g = jax.grad(lambda z, p=p: jl.multi_margin_loss(z, y, p=p, margin=0.7).sum())(x)
            num = numeric_grad(lambda z, p=p: np_multi_margin(z, y, 0.7, p).sum(), x)
            np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)
        g = jax.grad(lambda z: jl.multiclass_hinge_loss(z, y).sum())(x)
        num = numeric_grad(
            lambda z: np.sum(np.max(z + 1 - np.eye(5)[y], -1) - z[np.arange(4), y]), x
        )
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)
        g = jax.grad(lambda z: jl.squared_hinge_loss(z, t, margin=0.8).sum())(s)
        num = numeric_grad(lambda z: np.sum(np.maximum(0, 0.8 - z * t) ** 2), s)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)
        g = jax.grad(lambda z: jl.binary_hinge_loss(z, (t + 1) / 2).sum())(s)
        num = numeric_grad(lambda z: np.sum(np.maximum(0, 1 - z * t)), s)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


def test_out_of_range_labels_give_nan_and_checked_raises():
    s = jnp.zeros((2, 3))
    for fn in (jl.multiclass_hinge_loss, jl.multiclass_perceptron_loss, jl.multi_margin_loss):
        out = fn(s, jnp.array([0, 5]))
        assert np.isfinite(out[0]) and np.isnan(out[1]), fn.__name__
        with pytest.raises(Exception, match="labels must lie in"):
            jl.checked(fn)(s, jnp.array([0, 5]))


def test_contract_where_weights_and_nan_isolation():
    s = jnp.array([[1.0, 0.0, 2.0], [jnp.nan, 0.0, 0.0], [0.0, 2.0, 0.5]])
    y = jnp.array([0, 1, 1])
    where = jnp.array([True, False, True])
    for fn in (jl.multiclass_hinge_loss, jl.multiclass_perceptron_loss, jl.multi_margin_loss):
        val, g = jax.value_and_grad(
            lambda z, fn=fn: fn(
                z, y, where=where, weights=jnp.array([2.0, 1.0, 1.0]), reduction="weighted_mean"
            )
        )(s)
        per = fn(s, y, where=where)
        np.testing.assert_allclose(val, (2 * per[0] + per[2]) / 3, rtol=1e-6)
        assert np.all(np.isfinite(g)) and np.all(g[1] == 0), fn.__name__
    out = jnp.array([0.5, jnp.nan, -1.0])
    pm = jnp.array([1.0, 1.0, -1.0])
    for fn in (jl.hinge_loss, jl.perceptron_loss, jl.squared_hinge_loss):
        val, g = jax.value_and_grad(lambda z, fn=fn: fn(z, pm, where=where, reduction="mean"))(out)
        assert np.isfinite(val) and np.all(np.isfinite(g)) and g[1] == 0, fn.__name__


def test_jit_vmap_grad_compose(rng):
    s = jnp.asarray(rng.normal(size=(4, 5)).astype(np.float32))
    y = jnp.asarray(rng.integers(0, 5, size=4))
    pm = jnp.asarray(np.where(rng.random((4, 5)) > 0.5, 1.0, -1.0).astype(np.float32))
    multi = {
        "multiclass_hinge_loss": jl.multiclass_hinge_loss,
        "multiclass_perceptron_loss": jl.multiclass_perceptron_loss,
        "multi_margin_loss": jl.multi_margin_loss,
    }
    binary = {
        "hinge_loss": jl.hinge_loss,
        "perceptron_loss": jl.perceptron_loss,
        "squared_hinge_loss": jl.squared_hinge_loss,
        "binary_hinge_loss": lambda a, b: jl.binary_hinge_loss(a, (b + 1) / 2),
    }

    @jax.jit
    def run(s, y, pm):
        out = {}
        for n, f in multi.items():
            out[n] = (
                f(s, y),
                jax.vmap(lambda a, b, f=f: f(a[None], b[None])[0])(s, y),
                jax.grad(lambda z, f=f: f(z, y, reduction="mean"))(s),
            )
        for n, f in binary.items():
            out[n] = (f(s, pm), jax.vmap(f)(s, pm), jax.grad(lambda z, f=f: f(z, pm).sum())(s))
        return out

    out = run(s, y, pm)
    for n, f in multi.items():
        np.testing.assert_allclose(out[n][0], f(s, y), rtol=1e-6)
        np.testing.assert_allclose(out[n][1], out[n][0], rtol=1e-6)
        assert np.all(np.isfinite(out[n][2]))
    for n, f in binary.items():
        np.testing.assert_allclose(out[n][0], f(s, pm), rtol=1e-6)
        np.testing.assert_allclose(out[n][1], out[n][0], rtol=1e-6)
        assert np.all(np.isfinite(out[n][2]))


def test_errors():
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        jl.multi_margin_loss(jnp.zeros((2, 3)), jnp.array([0, 1]), p=3)
    with pytest.raises(TypeError, match="labels must be an integer array"):
        jl.multiclass_hinge_loss(jnp.zeros((2, 3)), jnp.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="labels has shape"):
        jl.multiclass_hinge_loss(jnp.zeros((2, 3)), jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match="targets has shape"):
        jl.hinge_loss(jnp.zeros(3), jnp.ones(4))
    with pytest.raises(ValueError, match="class_weights has shape"):
        jl.multi_margin_loss(jnp.zeros((2, 3)), jnp.array([0, 1]), class_weights=jnp.ones(2))


# --- hinge_embedding_loss, multilabel_margin_loss (PyTorch's; its own numbers are replayed in
# test_compat_torch.py) ------------------------------------------------------------------------


def test_hinge_embedding_loss_against_numpy_with_the_contract():
    rng = np.random.default_rng(11)
    x = np.abs(rng.normal(size=(4, 3))).astype(np.float32) * 2
    t = np.where(rng.random((4, 3)) > 0.5, 1.0, -1.0).astype(np.float32)
    w = rng.uniform(0.5, 2.0, size=(4, 1)).astype(np.float32)
    per = np.where(t == 1, x, np.maximum(0.0, 1.3 - x))
    np.testing.assert_allclose(jl.hinge_embedding_loss(x, t, margin=1.3), per, rtol=1e-6)
    np.testing.assert_allclose(
        jl.hinge_embedding_loss(x, t, margin=1.3, weights=w, reduction="weighted_mean"),
        (per * w).sum() / (w.sum() * 3),
        rtol=1e-6,
    )
    with float64():
        x64 = x.astype(np.float64) + 0.01  # away from the kink at x = m
        g = jax.grad(lambda v: jl.hinge_embedding_loss(v, t, margin=1.3, reduction="sum"))(x64)
        fd = numeric_grad(lambda v: jl.hinge_embedding_loss(v, t, margin=1.3, reduction="sum"), x64)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_multilabel_margin_loss_against_a_double_loop():
    rng = np.random.default_rng(12)
    s = rng.normal(size=(5, 4)).astype(np.float32)
    y = rng.random((5, 4)) > 0.6
    y[0] = False  # no true class: loss 0

    def reference(scores, sets, margin):
        out = []
        for row, members in zip(scores, sets, strict=True):
            c = len(row)
            total = sum(
                max(0.0, margin - (row[j] - row[i]))
                for j in range(c)
                for i in range(c)
                if members[j] and not members[i]
            )
            out.append(total / c)
        return np.array(out)

    np.testing.assert_allclose(
        jl.multilabel_margin_loss(s, y, margin=0.8), reference(s, y, 0.8), rtol=1e-5, atol=1e-7
    )
    # The class axis may be elsewhere; where= excludes rows.
    np.testing.assert_allclose(
        jl.multilabel_margin_loss(s.T, y.T, axis=0), reference(s, y, 1.0), rtol=1e-5, atol=1e-7
    )
    keep = np.array([True, False, True, True, False])
    np.testing.assert_allclose(
        jl.multilabel_margin_loss(s, y, where=keep, reduction="mean"),
        reference(s, y, 1.0)[keep].mean(),
        rtol=1e-5,
    )
    with float64():
        s64 = s.astype(np.float64)
        g = jax.grad(lambda v: jl.multilabel_margin_loss(v, y, reduction="sum"))(s64)
        fd = numeric_grad(lambda v: jl.multilabel_margin_loss(v, y, reduction="sum"), s64)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="label_sets has shape"):
        jl.multilabel_margin_loss(s, y[:, :2])
