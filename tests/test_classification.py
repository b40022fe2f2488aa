"""Cross-entropies, focal and cost-sensitive losses against optax, NumPy and PyTorch's formulas."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss as jl

from helpers import float64, numeric_grad

C = 5


def np_log_softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


@pytest.fixture
def batch(rng):
    logits = rng.normal(size=(6, C)).astype(np.float32) * 3
    labels = rng.integers(0, C, size=6)
    return logits, labels


# --- optax parity -------------------------------------------------------------------------------


def test_integer_and_probability_cross_entropy_equal_optax(rng):
    for shape, axis in [((6, C), -1), ((2, 3, C), -1), ((2, C, 3), 1), ((C,), 0)]:
        x = rng.normal(size=shape).astype(np.float32)
        loss_shape = tuple(d for i, d in enumerate(shape) if i != axis % len(shape))
        y = rng.integers(0, C, size=loss_shape)
        np.testing.assert_allclose(
            jl.softmax_cross_entropy_with_integer_labels(x, y, axis=axis),
            optax.losses.softmax_cross_entropy_with_integer_labels(x, y, axis=axis),
            rtol=1e-6,
            atol=1e-6,
        )
        p = rng.dirichlet(np.ones(C), size=loss_shape).astype(np.float32)
        p = np.moveaxis(p, -1, axis)
        np.testing.assert_allclose(
            jl.softmax_cross_entropy(x, p, axis=axis),
            optax.losses.softmax_cross_entropy(x, p, axis=axis),
            rtol=1e-6,
            atol=1e-6,
        )


def test_where_has_optax_meaning_for_class_masks(rng):
    x = rng.normal(size=(6, C)).astype(np.float32)
    mask = rng.random((6, C)) > 0.4
    mask[:, 0] = True
    y = np.zeros(6, int)
    np.testing.assert_allclose(
        jl.softmax_cross_entropy_with_integer_labels(x, y, where=mask),
        optax.losses.softmax_cross_entropy_with_integer_labels(x, y, where=mask),
        rtol=1e-6,
    )
    p = np.where(mask, rng.random((6, C)), 0).astype(np.float32)
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(
        jl.softmax_cross_entropy(x, p, where=mask),
        optax.losses.softmax_cross_entropy(x, p, where=mask),
        rtol=1e-6,
    )
    # A lower-rank where masks elements, as optax's [batch_size] where does.
    row = np.array([True, False, True, True, False, True])
    np.testing.assert_allclose(
        jl.softmax_cross_entropy_with_integer_labels(x, y, where=row),
        optax.losses.softmax_cross_entropy_with_integer_labels(x, y, where=row),
        rtol=1e-6,
    )


def test_sigmoid_losses_and_smoothing_equal_optax(rng):
    x = (rng.normal(size=(4, 3)) * 4).astype(np.float32)
    y = (rng.random((4, 3)) > 0.5).astype(np.float32)
    np.testing.assert_allclose(
        jl.sigmoid_binary_cross_entropy(x, y),
        optax.losses.sigmoid_binary_cross_entropy(x, y),
        rtol=1e-6,
    )
    for alpha, gamma in [(None, 2.0), (0.25, 2.0), (0.75, 0.5)]:
        np.testing.assert_allclose(
            jl.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma),
            optax.losses.sigmoid_focal_loss(x, y, alpha=alpha, gamma=gamma),
            rtol=1e-5,
            atol=1e-7,
        )
    np.testing.assert_allclose(jl.smooth_labels(y, 0.2), optax.losses.smooth_labels(y, 0.2))
    ninf = np.array([[-np.inf, 0.0, 1.0]], np.float32)
    lab = np.array([[0.0, 0.3, 0.7]], np.float32)
    np.testing.assert_allclose(
        jl.safe_softmax_cross_entropy(ninf, lab),
        optax.losses.safe_softmax_cross_entropy(ninf, lab),
        rtol=1e-6,
    )
    g = jax.grad(lambda z: jl.safe_softmax_cross_entropy(z, lab).sum())(ninf)
    assert np.all(np.isfinite(g))


# --- PyTorch's definitions, pinned by literal values computed from the formula -------------------

# x, y, w below; values from  (1-ε)·w_y·nll + ε/C·Σ_c w_c·(-log p_c)  in float64 NumPy, and the
# weighted mean  Σ / Σ w_y  over non-ignored elements (PyTorch's cross_entropy(weight=w,
# label_smoothing=ε, ignore_index=-100, reduction="mean")).
PT_X = np.array([[2.0, -1.0, 0.5], [0.0, 1.0, 3.0], [-2.0, 0.5, 0.5], [1.0, 1.0, 1.0]], np.float32)
PT_Y = np.array([0, 2, 1, -100])
PT_W = np.array([1.0, 2.0, 0.5], np.float32)


def test_label_smoothing_with_class_weights_is_pytorchs():
    per = jl.softmax_cross_entropy_with_integer_labels(
        PT_X, PT_Y, class_weights=PT_W, label_smoothing=0.1, ignore_index=-100
    )
    np.testing.assert_allclose(per, [0.47033315, 0.32957941, 1.48895877, 0.0], rtol=1e-6)
    mean = jl.softmax_cross_entropy_with_integer_labels(
        PT_X,
        PT_Y,
        class_weights=PT_W,
        label_smoothing=0.1,
        ignore_index=-100,
        reduction="weighted_mean",
    )
    np.testing.assert_allclose(mean, 0.6539632388863313, rtol=1e-6)
    # The probability-label form with one-hot labels gives the same numbers.
    onehot = jl.one_hot(PT_Y, 3, ignore_index=-100)
    mean_p = jl.softmax_cross_entropy(
        PT_X, onehot, class_weights=PT_W, label_smoothing=0.1, reduction="weighted_mean"
    )
    np.testing.assert_allclose(mean_p, 0.6539632388863313, rtol=1e-6)
    # No weights, no smoothing: PyTorch's mean over non-ignored elements.
    np.testing.assert_allclose(
        jl.softmax_cross_entropy_with_integer_labels(
            PT_X, PT_Y, ignore_index=-100, reduction="mean"
        ),
        0.3815090370135514,
        rtol=1e-6,
    )


def test_weighted_mean_with_class_weights_is_pytorch_mean(batch):
    logits, labels = batch
    w = np.linspace(0.5, 2.5, C).astype(np.float32)
    nll = -np_log_softmax(logits)[np.arange(6), labels]
    expected = (w[labels] * nll).sum() / w[labels].sum()
    got = jl.softmax_cross_entropy_with_integer_labels(
        logits, labels, class_weights=w, reduction="weighted_mean"
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # "mean" divides by the number of elements instead.
    got_mean = jl.softmax_cross_entropy_with_integer_labels(
        logits, labels, class_weights=w, reduction="mean"
    )
    np.testing.assert_allclose(got_mean, (w[labels] * nll).mean(), rtol=1e-5)


def test_pos_weight_is_pytorchs_bce_with_logits(rng):
    x = rng.normal(size=(4, 3)) * 3
    y = rng.random((4, 3))
    pw = np.array([1.0, 3.0, 0.5])
    sig = 1 / (1 + np.exp(-x))
    expected = -(pw * y * np.log(sig) + (1 - y) * np.log(1 - sig))
    got = jl.sigmoid_binary_cross_entropy(x.astype(np.float32), y.astype(np.float32), pos_weight=pw)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


# --- Keras-style probability losses --------------------------------------------------------------


def test_binary_and_categorical_cross_entropy_from_probabilities(rng):
    p = np.array([0.0, 0.3, 0.9, 1.0], np.float32)
    y = np.array([1.0, 0.0, 1.0, 0.0], np.float32)
    eps = 1e-7
    # The clip happens in float32, where 1 - 1e-7 rounds to 1 - 2**-23 (as in Keras).
    pc = np.clip(p, np.float32(eps), np.float32(1 - eps)).astype(np.float64)
    expected = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))
    np.testing.assert_allclose(jl.binary_cross_entropy(p, y), expected, rtol=1e-5)
    assert np.all(np.isfinite(jax.grad(lambda q: jl.binary_cross_entropy(q, y).sum())(p)))

    probs = rng.random((4, C)).astype(np.float32) * 2  # unnormalised, as Keras renormalises
    labels = np.eye(C, dtype=np.float32)[[0, 3, 1, 2]]
    labels[2] = 0.0  # unlabeled row
    q = np.clip(probs / probs.sum(-1, keepdims=True), eps, 1 - eps)
    per = -(labels * np.log(q)).sum(-1)
    np.testing.assert_allclose(jl.categorical_cross_entropy(probs, labels), per, rtol=1e-5)
    np.testing.assert_allclose(
        jl.categorical_cross_entropy(probs, labels, reduction="mean"), per.sum() / 3, rtol=1e-5
    )


# --- focal and cost-sensitive losses --------------------------------------------------------------


def test_softmax_focal_loss_matches_numpy_and_reduces_to_cross_entropy(batch):
    logits, labels = batch
    lp = np_log_softmax(logits)
    p = np.exp(lp)
    alpha = np.linspace(0.2, 1.0, C)
    expected = -(alpha[labels] * (1 - p[np.arange(6), labels]) ** 2 * lp[np.arange(6), labels])
    np.testing.assert_allclose(
        jl.softmax_focal_loss(logits, labels, alpha=alpha), expected, rtol=1e-5, atol=1e-7
    )
    soft = np.random.default_rng(1).dirichlet(np.ones(C), size=6)
    expected_soft = -(soft * (1 - p) ** 1.5 * lp).sum(-1)
    np.testing.assert_allclose(
        jl.softmax_focal_loss(logits, soft.astype(np.float32), gamma=1.5), expected_soft, rtol=1e-5
    )
    np.testing.assert_allclose(
        jl.softmax_focal_loss(logits, labels, gamma=0.0),
        jl.softmax_cross_entropy_with_integer_labels(logits, labels),
        rtol=1e-6,
    )
    # p = 1 exactly: value 0, finite gradient even for gamma < 1.
    sure = jnp.array([[100.0, 0.0, 0.0]])
    g = jax.grad(lambda z: jl.softmax_focal_loss(z, jnp.array([0]), gamma=0.5).sum())(sure)
    assert np.all(np.isfinite(g))


def test_cost_sensitive_losses(batch):
    logits, labels = batch
    cost = np.arange(C * C, dtype=np.float32).reshape(C, C) % 7
    p = np.exp(np_log_softmax(logits))
    np.testing.assert_allclose(
        jl.expected_cost_loss(logits, labels, cost), (cost[labels] * p).sum(-1), rtol=1e-5
    )
    onehot = np.eye(C, dtype=np.float32)[labels]
    np.testing.assert_allclose(
        jl.expected_cost_loss(logits, onehot, cost), (cost[labels] * p).sum(-1), rtol=1e-5
    )
    factor = cost[labels, logits.argmax(-1)]
    ce = -np_log_softmax(logits)[np.arange(6), labels]
    np.testing.assert_allclose(
        jl.confusion_weighted_cross_entropy(logits, labels, cost), factor * ce, rtol=1e-5
    )
    # No gradient flows through the argmax: the gradient is the cost times CE's gradient.
    g = jax.grad(lambda z: jl.confusion_weighted_cross_entropy(z, labels, cost).sum())(logits)
    expected_g = factor[:, None] * (p - onehot)
    np.testing.assert_allclose(g, expected_g, rtol=1e-4, atol=1e-6)


# --- gradients --------------------------------------------------------------------------------


def test_analytic_gradient_is_softmax_minus_labels(batch):
    logits, labels = batch
    onehot = np.eye(C, dtype=np.float32)[labels]
    expected = np.exp(np_log_softmax(logits)) - onehot
    for fn, lab in [
        (jl.softmax_cross_entropy_with_integer_labels, labels),
        (jl.softmax_cross_entropy, onehot),
    ]:
        g = jax.grad(lambda z, fn=fn, lab=lab: fn(z, lab).sum())(logits)
        np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-6)


GRAD_CASES = {
    "int_ce_smooth_cw": lambda x, y, p, m: jl.softmax_cross_entropy_with_integer_labels(
        x,
        y,
        class_weights=jnp.linspace(0.5, 2.0, C),
        label_smoothing=0.2,
        weights=jnp.linspace(0.1, 1.0, 4),
        reduction="weighted_mean",
    ),
    "int_ce_class_mask": lambda x, y, p, m: jl.softmax_cross_entropy_with_integer_labels(
        x, jnp.zeros(4, int), where=m, reduction="mean"
    ),
    "prob_ce_smooth_cw": lambda x, y, p, m: jl.softmax_cross_entropy(
        x,
        p,
        class_weights=jnp.linspace(0.5, 2.0, C),
        label_smoothing=0.1,
        reduction="sum_by_nonzero_weights",
    ),
    "safe_ce": lambda x, y, p, m: jl.safe_softmax_cross_entropy(x, p, reduction="sum"),
    "sigmoid_bce": lambda x, y, p, m: jl.sigmoid_binary_cross_entropy(
        x, p, pos_weight=2.0, reduction="mean"
    ),
    "sigmoid_focal": lambda x, y, p, m: jl.sigmoid_focal_loss(x, p, alpha=0.3, reduction="sum"),
    "softmax_focal": lambda x, y, p, m: jl.softmax_focal_loss(x, y, gamma=2.0, reduction="sum"),
    "binary_ce": lambda x, y, p, m: jl.binary_cross_entropy(jax.nn.sigmoid(x), p, reduction="sum"),
    "categorical_ce": lambda x, y, p, m: jl.categorical_cross_entropy(
        jax.nn.softmax(x), p, reduction="sum"
    ),
    "expected_cost": lambda x, y, p, m: jl.expected_cost_loss(
        x, y, jnp.ones((C, C)) - jnp.eye(C), reduction="sum"
    ),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_gradients_match_central_differences(name, rng):
    with float64():
        x = rng.normal(size=(4, C))
        y = jnp.asarray(rng.integers(0, C, size=4))
        p = jnp.asarray(rng.dirichlet(np.ones(C), size=4))
        m = rng.random((4, C)) > 0.3
        m[:, 0] = True
        f = lambda z: GRAD_CASES[name](z, y, p, jnp.asarray(m))  # noqa: E731
        np.testing.assert_allclose(jax.grad(f)(x), numeric_grad(f, x), rtol=1e-5, atol=1e-7)


# --- stability, dtypes and NaN rules -------------------------------------------------------------


def test_extreme_logits_give_finite_values_and_gradients():
    x = jnp.array([[1e4, -1e4, 0.0, 5e3, -5e3]] * 2)
    y = jnp.array([1, 0])
    p = jax.nn.one_hot(y, C)
    fns = [
        lambda z: jl.softmax_cross_entropy_with_integer_labels(z, y, label_smoothing=0.1),
        lambda z: jl.softmax_cross_entropy(z, p),
        lambda z: jl.sigmoid_binary_cross_entropy(z, p),
        lambda z: jl.sigmoid_focal_loss(z, p),
        lambda z: jl.softmax_focal_loss(z, y),
        lambda z: jl.expected_cost_loss(z, y, jnp.ones((C, C))),
    ]
    for f in fns:
        assert np.all(np.isfinite(f(x)))
        assert np.all(np.isfinite(jax.grad(lambda z, f=f: f(z).sum())(x)))
    np.testing.assert_allclose(jl.softmax_cross_entropy_with_integer_labels(x, y)[0], 2e4)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_16_bit_inputs_accumulate_in_float32(dtype, rng):
    x32 = rng.normal(size=(8, 1000)).astype(np.float32) * 4
    x = jnp.asarray(x32, dtype)
    y = jnp.asarray(rng.integers(0, 1000, size=8))
    out = jl.softmax_cross_entropy_with_integer_labels(x, y)
    assert out.dtype == jnp.float32
    reference = optax.losses.softmax_cross_entropy_with_integer_labels(x.astype(jnp.float32), y)
    np.testing.assert_allclose(out, reference, rtol=1e-6)
    g = jax.grad(lambda z: jl.softmax_cross_entropy_with_integer_labels(z, y).sum())(x)
    assert g.dtype == dtype and np.all(np.isfinite(np.asarray(g, np.float32)))
    onehot = jax.nn.one_hot(y, 1000, dtype=dtype)
    assert jl.softmax_cross_entropy(x, onehot).dtype == jnp.float32
    assert jl.sigmoid_binary_cross_entropy(x, onehot, reduction="mean").dtype == jnp.float32


def test_float64_stays_float64(rng):
    with float64():
        x = jnp.asarray(rng.normal(size=(3, C)))
        assert (
            jl.softmax_cross_entropy_with_integer_labels(x, jnp.array([0, 1, 2])).dtype
            == jnp.float64
        )


def test_out_of_range_label_gives_nan_for_that_element_only(batch):
    logits, labels = batch
    bad = labels.copy()
    bad[2] = C
    bad[4] = -1
    out = np.asarray(jl.softmax_cross_entropy_with_integer_labels(logits, bad))
    assert np.isnan(out[2]) and np.isnan(out[4])
    assert np.all(np.isfinite(np.delete(out, [2, 4])))
    # ignore_index takes precedence over the range check.
    out = jl.softmax_cross_entropy_with_integer_labels(logits, bad, ignore_index=-1)
    assert out[4] == 0 and np.isnan(out[2])
    with pytest.raises(Exception, match="out-of-range label"):
        jl.checked(jl.softmax_cross_entropy_with_integer_labels)(logits, bad, ignore_index=-1)
    np.testing.assert_allclose(
        jl.checked(jl.softmax_cross_entropy_with_integer_labels)(logits, labels, reduction="sum"),
        jl.softmax_cross_entropy_with_integer_labels(logits, labels, reduction="sum"),
        rtol=1e-6,
    )


def test_excluded_elements_with_nan_inputs_contribute_nothing(batch):
    logits, labels = batch
    logits = logits.copy()
    logits[1] = np.nan
    labels = labels.copy()
    labels[1] = -1
    for kwargs in [
        dict(ignore_index=-1),
        dict(where=np.arange(6) != 1),
        dict(weights=(np.arange(6) != 1).astype(np.float32)),
    ]:
        lab = labels if "ignore_index" in kwargs else np.where(labels < 0, 7, labels)

        def f(z, lab=lab, kwargs=kwargs):
            return jl.softmax_cross_entropy_with_integer_labels(z, lab, reduction="mean", **kwargs)

        value, grad = jax.value_and_grad(f)(logits)
        assert np.isfinite(value), kwargs
        assert np.all(np.isfinite(grad)) and np.all(np.asarray(grad)[1] == 0), kwargs
    onehot = np.eye(C, dtype=np.float32)[np.maximum(labels, 0)]
    onehot[1] = 0.0  # unlabeled row with NaN logits
    value, grad = jax.value_and_grad(
        lambda z: jl.softmax_cross_entropy(z, onehot, reduction="mean")
    )(logits)
    assert np.isfinite(value) and np.all(np.isfinite(grad)) and np.all(np.asarray(grad)[1] == 0)


# --- composition ------------------------------------------------------------------------------


def test_jit_vmap_grad_compose(rng):
    x = rng.normal(size=(3, 4, C)).astype(np.float32)
    y = rng.integers(-1, C, size=(3, 4))
    w = rng.random((3, 4)).astype(np.float32)

    def per_batch(z, t, v):
        return jl.softmax_cross_entropy_with_integer_labels(
            z, t, weights=v, ignore_index=-1, label_smoothing=0.1, reduction="sum"
        )

    looped = np.array([per_batch(x[i], y[i], w[i]) for i in range(3)])
    np.testing.assert_allclose(jax.jit(jax.vmap(per_batch))(x, y, w), looped, rtol=1e-5)
    g_vmap = jax.vmap(jax.grad(per_batch))(x, y, w)
    g_loop = np.stack([jax.grad(per_batch)(x[i], y[i], w[i]) for i in range(3)])
    np.testing.assert_allclose(g_vmap, g_loop, rtol=1e-5, atol=1e-7)


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda x, y: jl.softmax_cross_entropy_with_integer_labels(x, y.astype(np.float32)),
            "labels must be an integer array",
        ),
        (
            lambda x, y: jl.softmax_cross_entropy_with_integer_labels(x, y[:3]),
            r"labels has shape \(3,\); expected \(6,\)",
        ),
        (
            lambda x, y: jl.softmax_cross_entropy_with_integer_labels(x[0], y),
            r"labels has shape \(6,\); expected \(\)",
        ),
        (
            lambda x, y: jl.softmax_cross_entropy_with_integer_labels(x, y, reduction="avg"),
            "reduction must be one of",
        ),
        (
            lambda x, y: jl.softmax_cross_entropy_with_integer_labels(
                x, y, class_weights=np.ones(3)
            ),
            r"class_weights has shape \(3,\); expected \(5,\)",
        ),
        (
            lambda x, y: jl.softmax_cross_entropy_with_integer_labels(x, y, weights=np.ones(4)),
            r"weights has shape \(4,\), which does not broadcast to the "
            r"per-element loss shape \(6,\)",
        ),
        (lambda x, y: jl.softmax_cross_entropy(x, np.ones((6, 4))), "labels has shape"),
        (
            lambda x, y: jl.softmax_cross_entropy(x.astype(int), np.ones((6, 5))),
            "logits must be a floating-point array",
        ),
        (
            lambda x, y: jl.softmax_cross_entropy_with_integer_labels(x, y, label_smoothing=1.5),
            "label_smoothing must lie in",
        ),
        (lambda x, y: jl.softmax_cross_entropy_with_integer_labels(x, y, axis=3), "axis=3"),
        (lambda x, y: jl.sigmoid_binary_cross_entropy(x, np.ones(4)), "labels has shape"),
        (lambda x, y: jl.expected_cost_loss(x, y, np.ones((5, 4))), "cost_matrix has shape"),
        (
            lambda x, y: jl.softmax_cross_entropy(x, np.ones((6, 5)), where=np.ones(5, float)),
            "where must be a boolean mask",
        ),
    ],
)
def test_bad_input_raises_with_a_clear_message(call, match, batch):
    logits, labels = batch
    with pytest.raises((ValueError, TypeError), match=match):
        call(logits, labels)


def test_checked_takes_python_scalars_positionally_or_by_keyword():
    counts = jl.checked(jl.class_counts)(jnp.array([0, 1, 1, 2]), 3)  # num_classes positional
    np.testing.assert_array_equal(counts, [1, 2, 1])
    with pytest.raises(Exception, match="out-of-range label"):
        jl.checked(jl.class_counts)(jnp.array([0, 1, 5]), 3)
    loss = jl.checked(jl.softmax_cross_entropy_with_integer_labels)
    np.testing.assert_allclose(
        loss(jnp.zeros((2, 3)), jnp.array([0, 2]), -1, reduction="sum"), 2 * np.log(3), rtol=1e-6
    )


def test_sigmoid_focal_integer_and_fractional_gamma_agree_with_float64_reference():
    # A whole-number Python γ takes the integer-power path, a traced γ the log-space path.
    x = np.array([-1e4, -60.0, -8.0, -0.5, 0.0, 0.5, 8.0, 60.0, 1e4], np.float32)
    y = np.array([1.0, 0.0, 1.0, 0.3, 1.0, 0.0, 0.7, 1.0, 0.0], np.float32)
    xd, yd = x.astype(np.float64), y.astype(np.float64)
    ce = yd * np.logaddexp(0.0, -xd) + (1 - yd) * np.logaddexp(0.0, xd)
    p = np.exp(-np.logaddexp(0.0, -xd))
    q = np.exp(-np.logaddexp(0.0, xd))
    for gamma in [0.0, 1.0, 2.0, 3.0]:
        expected = ce * ((1 - yd) * p + yd * q) ** gamma
        fast = jl.sigmoid_focal_loss(x, y, gamma=gamma)
        logspace = jax.jit(lambda z, g: jl.sigmoid_focal_loss(z, y, gamma=g))(x, gamma)
        np.testing.assert_allclose(fast, expected, rtol=1e-5, atol=1e-30)
        np.testing.assert_allclose(logspace, expected, rtol=1e-5, atol=1e-30)
    for gamma in [2.0, 0.5]:
        g = jax.grad(lambda z, gamma=gamma: jl.sigmoid_focal_loss(z, y, gamma=gamma).sum())(x)
        assert np.all(np.isfinite(g))


def test_negative_log_likelihood_equals_the_ce_of_log_softmax_and_numpy():
    rng = np.random.default_rng(15)
    logits = rng.normal(size=(2, 4, 3, 3)).astype(np.float32)  # [N, C, H, W], class axis 1
    labels = rng.integers(0, 4, size=(2, 3, 3))
    labels[0, 0, 0] = -100
    cw = rng.uniform(0.5, 2.0, size=4).astype(np.float32)
    log_p = np.asarray(jax.nn.log_softmax(logits, axis=1))
    got = jl.negative_log_likelihood(
        log_p, labels, 1, class_weights=cw, ignore_index=-100, reduction="weighted_mean"
    )
    ce = jl.softmax_cross_entropy_with_integer_labels(
        logits, labels, 1, class_weights=cw, ignore_index=-100, reduction="weighted_mean"
    )
    np.testing.assert_allclose(got, ce, rtol=1e-5)
    lp = np.moveaxis(log_p, 1, -1)
    safe = np.where(labels == -100, 0, labels)
    picked = np.take_along_axis(lp, safe[..., None], -1)[..., 0]
    w = np.where(labels == -100, 0.0, cw[safe])
    np.testing.assert_allclose(got, -(w * picked).sum() / w.sum(), rtol=1e-5)
    # Not normalised: the input is taken as given; -inf elsewhere does not leak.
    x = np.array([[0.3, -np.inf, 2.0]], np.float32)
    np.testing.assert_allclose(jl.negative_log_likelihood(x, np.array([2])), [-2.0])
    g = jax.grad(lambda v: jl.negative_log_likelihood(v, np.array([2]), reduction="sum"))(x)
    np.testing.assert_array_equal(g, [[0.0, 0.0, -1.0]])
    with float64():
        x64 = rng.normal(size=(3, 4))
        y = np.array([0, 3, 1])
        g = jax.grad(lambda v: jl.negative_log_likelihood(v, y, class_weights=cw, reduction="sum"))(
            x64
        )
        fd = numeric_grad(
            lambda v: jl.negative_log_likelihood(v, y, class_weights=cw, reduction="sum"), x64
        )
        np.testing.assert_allclose(g, fd, atol=1e-8)
    assert np.isnan(np.asarray(jl.negative_log_likelihood(x, np.array([5])))[0])


def test_binary_cross_entropy_log_min_is_pytorchs_clamp():
    p = np.array([0.0, 1.0, 0.3, 1e-30, 0.999], np.float32)
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.0], np.float32)
    with np.errstate(divide="ignore"):
        logs = (
            np.maximum(np.log(p.astype(np.float64)), -100),
            np.maximum(np.log1p(-p.astype(np.float64)), -100),
        )
    expected = -(y * logs[0] + (1 - y) * logs[1])
    got = jl.binary_cross_entropy(p, y, epsilon=0.0, log_min=-100.0)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    grad = jax.grad(lambda q: jnp.sum(jl.binary_cross_entropy(q, y, epsilon=0.0, log_min=-100.0)))(
        p
    )
    assert np.all(np.isfinite(grad)) and grad[0] == 0.0 and grad[1] == 0.0
    np.testing.assert_allclose(grad[2], -1 / 0.3, rtol=1e-5)
