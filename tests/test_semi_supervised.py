"""Tests of jaxloss.semi_supervised against NumPy / hand computations and scikit-learn."""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss as jl

from helpers import float64, numeric_grad

# ---------------------------------------------------------------------------------------------
# NumPy references.


def np_log_softmax(z):
    z = np.asarray(z, np.float64)
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def np_softmax(z):
    return np.exp(np_log_softmax(z))


def np_pseudo_label(weak, strong, tau, temp, hard):
    q = np_softmax(np.asarray(weak) / temp)
    conf = q.max(-1) >= tau
    t = np.eye(q.shape[-1])[q.argmax(-1)] if hard else q
    per = -(t * np_log_softmax(strong)).sum(-1)
    return np.where(conf, per, 0.0), conf


def np_kl(q, log_p):
    q = np.asarray(q, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, q * (np.log(np.where(q > 0, q, 1)) - log_p), 0.0)
    return terms.sum(-1)


RNG = np.random.default_rng(0)
WEAK = (RNG.normal(size=(6, 4)) * 2).astype(np.float32)
STRONG = RNG.normal(size=(6, 4)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Labeled / unlabeled rows and the core cross-entropies.


def test_labeled_mask():
    np.testing.assert_array_equal(
        jl.labeled_mask(jnp.array([2, -1, 0, -1])), [True, False, True, False]
    )
    np.testing.assert_array_equal(
        jl.labeled_mask(jnp.array([5, -100]), unlabeled=-100), [True, False]
    )
    rows = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.2, 0.0, 0.8]])
    np.testing.assert_array_equal(jl.labeled_mask(rows), [True, False, True])
    with pytest.raises(TypeError, match="labels"):
        jl.labeled_mask(jnp.array([1j, 0j]))


def test_core_cross_entropies_leave_unlabeled_rows_out():
    """label -1 / zero rows: no loss, no gradient, out of the mean (optax wraps -1 instead)."""
    logits = RNG.normal(size=(5, 3)).astype(np.float32)
    labels = np.array([0, -1, 2, -1, 1])
    lab = labels >= 0
    ref_per = -np_log_softmax(logits)[np.arange(5), np.where(lab, labels, 0)]
    ref_mean = ref_per[lab].mean()

    def sup_int(z):
        return jl.softmax_cross_entropy_with_integer_labels(
            z, labels, ignore_index=-1, reduction="mean"
        )

    one_hot = np.eye(3, dtype=np.float32)[np.where(lab, labels, 0)] * lab[:, None]

    def sup_rows(z):
        return jl.softmax_cross_entropy(z, one_hot, reduction="mean")

    for fn in (sup_int, sup_rows):
        value, grad = jax.value_and_grad(fn)(jnp.asarray(logits))
        np.testing.assert_allclose(value, ref_mean, rtol=1e-5)
        np.testing.assert_array_equal(np.asarray(grad)[~lab], 0.0)
        ref_grad = (np_softmax(logits) - np.eye(3)[np.where(lab, labels, 0)]) / lab.sum()
        np.testing.assert_allclose(np.asarray(grad)[lab], ref_grad[lab], atol=1e-6)
    # ... and out of every denominator.
    w = np.linspace(1.0, 3.0, 5).astype(np.float32)
    for reduction, denominator in (
        ("weighted_mean", w[lab].sum()),
        ("sum_by_nonzero_weights", lab.sum()),
    ):
        got = jl.softmax_cross_entropy_with_integer_labels(
            logits, labels, ignore_index=-1, weights=w, reduction=reduction
        )
        np.testing.assert_allclose(got, (w * ref_per)[lab].sum() / denominator, rtol=1e-5)
        got = jl.softmax_cross_entropy(logits, one_hot, weights=w, reduction=reduction)
        np.testing.assert_allclose(got, (w * ref_per)[lab].sum() / denominator, rtol=1e-5)
    # The trap jaxloss avoids: optax gives the -1 rows the loss of the last class.
    trap = optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)
    np.testing.assert_allclose(trap[1], -np_log_softmax(logits)[1, 2], rtol=1e-5)
    # All rows unlabeled: 0 and zero gradient, not NaN.
    none = np.full(5, -1)
    v, g = jax.value_and_grad(
        lambda z: jl.softmax_cross_entropy_with_integer_labels(
            z, none, ignore_index=-1, reduction="mean"
        )
    )(jnp.asarray(logits))
    assert float(v) == 0.0 and not np.any(np.asarray(g))


# ---------------------------------------------------------------------------------------------
# pseudo_label_loss


@pytest.mark.parametrize("hard", [True, False])
def test_pseudo_label_values(hard):
    tau, temp = 0.8, 0.7
    per, conf = np_pseudo_label(WEAK, STRONG, tau, temp, hard)
    assert 0 < conf.sum() < len(conf)  # the case is non-trivial
    fn = functools.partial(jl.pseudo_label_loss, threshold=tau, temperature=temp, hard=hard)
    got, rate = fn(WEAK, STRONG)
    np.testing.assert_allclose(got, per, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rate, conf.mean(), rtol=1e-6)
    np.testing.assert_allclose(fn(WEAK, STRONG, reduction="mean")[0], per.mean(), rtol=1e-5)
    np.testing.assert_allclose(
        fn(WEAK, STRONG, normalize="selected", reduction="mean")[0],
        per.sum() / conf.sum(),
        rtol=1e-5,
    )
    # where picks the unlabeled rows: the others are out of every denominator and the rate.
    where = np.array([True, False, True, True, False, True])
    np.testing.assert_allclose(
        fn(WEAK, STRONG, where=where, reduction="mean")[0], per[where].mean(), rtol=1e-5
    )
    np.testing.assert_allclose(fn(WEAK, STRONG, where=where)[1], conf[where].mean(), rtol=1e-6)
    np.testing.assert_allclose(
        fn(WEAK, STRONG, where=where, normalize="selected", reduction="mean")[0],
        per[where].sum() / conf[where].sum(),
        rtol=1e-5,
    )
    w = np.linspace(0.5, 2.0, 6).astype(np.float32)
    np.testing.assert_allclose(
        fn(WEAK, STRONG, weights=w, reduction="weighted_mean")[0],
        (w * per).sum() / w.sum(),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        fn(WEAK, STRONG, weights=w, normalize="selected", reduction="weighted_mean")[0],
        (w * per).sum() / w[conf].sum(),
        rtol=1e-5,
    )


def test_pseudo_label_gradients_and_stop_gradient():
    with float64():
        weak = jnp.asarray(WEAK, jnp.float64)
        strong = jnp.asarray(STRONG, jnp.float64)

        def loss(weak, strong):
            return jl.pseudo_label_loss(weak, strong, threshold=0.8, hard=False, reduction="mean")[
                0
            ]

        g_weak, g_strong = jax.grad(loss, argnums=(0, 1))(weak, strong)
        np.testing.assert_array_equal(g_weak, 0.0)  # targets under stop_gradient
        ref = numeric_grad(
            lambda s: np_pseudo_label(WEAK.astype(np.float64), s, 0.8, 1.0, False)[0].mean(), STRONG
        )
        np.testing.assert_allclose(g_strong, ref, atol=1e-7)


@pytest.mark.parametrize("normalize", ["all", "selected"])
def test_pseudo_label_empty_mask_is_zero_not_nan(normalize):
    weak = jnp.zeros((4, 3))  # confidence 1/3 < τ everywhere
    strong = jnp.asarray(STRONG[:4, :3])
    for reduction in ("mean", "weighted_mean", "sum_by_nonzero_weights", "sum"):
        (v, rate), g = jax.value_and_grad(
            lambda s, r=reduction: jl.pseudo_label_loss(weak, s, normalize=normalize, reduction=r),
            has_aux=True,
        )(strong)
        assert float(v) == 0.0 and float(rate) == 0.0
        assert not np.any(np.asarray(g)) and np.all(np.isfinite(g))
    # Nothing included at all: still 0.
    v, rate = jl.pseudo_label_loss(weak, strong, where=jnp.zeros(4, bool), reduction="mean")
    assert float(v) == 0.0 and float(rate) == 0.0


def test_pseudo_label_masked_nan_rows_do_not_leak():
    strong = jnp.asarray(STRONG).at[1].set(jnp.nan)
    where = jnp.arange(6) != 1
    v, g = jax.value_and_grad(
        lambda s: jl.pseudo_label_loss(WEAK, s, threshold=0.0, where=where, reduction="mean")[0]
    )(strong)
    assert np.isfinite(v) and np.all(np.isfinite(g)) and not np.any(np.asarray(g)[1])


# ---------------------------------------------------------------------------------------------
# consistency_loss


def np_consistency(s, t, kind, temp, tau):
    q = np_softmax(np.asarray(t) / temp)
    log_p = np_log_softmax(s)
    per = ((np.exp(log_p) - q) ** 2).mean(-1) if kind == "mse" else np_kl(q, log_p)
    conf = np.ones(len(per), bool) if tau is None else np_softmax(t).max(-1) >= tau
    return np.where(conf, per, 0.0), conf


@pytest.mark.parametrize("kind", ["mse", "kl"])
def test_consistency_values(kind):
    for temp, tau in [(1.0, None), (0.4, 0.8)]:
        per, conf = np_consistency(STRONG, WEAK, kind, temp, tau)
        fn = functools.partial(jl.consistency_loss, kind=kind, temperature=temp, threshold=tau)
        np.testing.assert_allclose(fn(STRONG, WEAK), per, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(fn(STRONG, WEAK, reduction="mean"), per.mean(), rtol=1e-5)
        np.testing.assert_allclose(
            fn(STRONG, WEAK, normalize="selected", reduction="mean"),
            per.sum() / conf.sum(),
            rtol=1e-5,
        )
        where = np.array([True, True, False, True, False, True])
        np.testing.assert_allclose(
            fn(STRONG, WEAK, where=where, reduction="mean"), per[where].mean(), rtol=1e-5
        )


@pytest.mark.parametrize("kind", ["mse", "kl"])
def test_consistency_gradients_and_stop_gradient(kind):
    with float64():
        s64, t64 = STRONG.astype(np.float64), WEAK.astype(np.float64)

        def loss(s, t, sg):
            return jl.consistency_loss(
                s,
                t,
                kind=kind,
                temperature=0.5,
                threshold=0.7,
                stop_gradient_teacher=sg,
                reduction="mean",
            )

        g_s, g_t = jax.grad(loss, argnums=(0, 1))(jnp.asarray(s64), jnp.asarray(t64), True)
        np.testing.assert_array_equal(g_t, 0.0)
        ref_s = numeric_grad(lambda s: np_consistency(s, t64, kind, 0.5, 0.7)[0].mean(), s64)
        np.testing.assert_allclose(g_s, ref_s, atol=1e-7)
        # Π-model without stop_gradient: the teacher branch gets its gradient too.
        g_t = jax.grad(loss, argnums=1)(jnp.asarray(s64), jnp.asarray(t64), False)
        ref_t = numeric_grad(lambda t: np_consistency(s64, t, kind, 0.5, 0.7)[0].mean(), t64)
        # The threshold is piecewise constant: away from it the central difference is exact.
        np.testing.assert_allclose(g_t, ref_t, atol=1e-7)
        assert np.any(np.asarray(g_t))


def test_consistency_empty_mask_and_errors():
    s = jnp.asarray(STRONG)
    v, g = jax.value_and_grad(
        lambda s: jl.consistency_loss(
            s, jnp.zeros_like(s), kind="kl", threshold=0.9, normalize="selected", reduction="mean"
        )
    )(s)
    assert float(v) == 0.0 and not np.any(np.asarray(g))
    with pytest.raises(ValueError, match="kind"):
        jl.consistency_loss(s, s, kind="l1")
    with pytest.raises(ValueError, match="shape"):
        jl.consistency_loss(s, s[:, :2])
    with pytest.raises(ValueError, match="normalize"):
        jl.pseudo_label_loss(s, s, normalize="some")


# ---------------------------------------------------------------------------------------------
# entropy_loss


def test_entropy_values_gradients_and_extremes():
    def ref(z):
        p = np_softmax(z)
        return -(p * np_log_softmax(z)).sum(-1)

    np.testing.assert_allclose(jl.entropy_loss(STRONG), ref(STRONG), rtol=1e-5)
    w = np.arange(6.0)
    np.testing.assert_allclose(
        jl.entropy_loss(STRONG, weights=w, reduction="weighted_mean"),
        (w * ref(STRONG)).sum() / w.sum(),
        rtol=1e-5,
    )
    with float64():
        s64 = STRONG.astype(np.float64)
        g = jax.grad(lambda z: jl.entropy_loss(z, reduction="sum"))(jnp.asarray(s64))
        np.testing.assert_allclose(g, numeric_grad(lambda z: ref(z).sum(), s64), atol=1e-7)
    big = jnp.array([[1e4, -1e4, 0.0], [0.0, -jnp.inf, 0.0]])
    v, g = jax.value_and_grad(lambda z: jl.entropy_loss(z, reduction="sum"))(big)
    np.testing.assert_allclose(v, np.log(2.0), rtol=1e-6)
    assert np.all(np.isfinite(g))


# ---------------------------------------------------------------------------------------------
# vat_loss


def _np_unit(d):
    d = d / (1e-12 + np.abs(d).max(axis=1, keepdims=True))
    return d / np.sqrt(1e-6 + (d * d).sum(axis=1, keepdims=True))


def test_vat_matches_numpy_reference_for_a_linear_model():
    """One power iteration, in NumPy: g = (q - p) Wᵀ at r = ξd; loss and dloss/dW."""
    with float64():
        rng = np.random.default_rng(1)
        x = rng.normal(size=(5, 4))
        w = rng.normal(size=(4, 3))
        key = jax.random.key(3)
        xi, eps = 1e-3, 0.7
        d0 = np.asarray(jax.random.normal(key, x.shape, jnp.float64))

        def np_loss(w, with_grad=False):
            p = np_softmax(x @ w)
            q = np_softmax((x + xi * _np_unit(d0)) @ w)
            r = eps * _np_unit((q - p) @ w.T)
            log_qa = np_log_softmax((x + r) @ w)
            loss = np_kl(p, log_qa).mean()
            if not with_grad:
                return loss
            grad = (x + r).T @ (np.exp(log_qa) - p) / len(x)  # p and r held constant
            return loss, grad

        def loss(w):
            return jl.vat_loss(
                lambda w, x: x @ w, w, jnp.asarray(x), key, xi=xi, epsilon=eps, reduction="mean"
            )

        value, grad = jax.value_and_grad(loss)(jnp.asarray(w))
        ref_value, ref_grad = np_loss(w, with_grad=True)
        np.testing.assert_allclose(value, ref_value, rtol=1e-8)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-7, atol=1e-10)
        # r_adv is under stop_gradient: the full derivative (through r) is a different number.
        full = numeric_grad(np_loss, w)
        assert not np.allclose(grad, full, rtol=1e-3)


def test_vat_power_iteration_finds_the_most_sensitive_direction():
    """Linear model: many iterations give r_adv ∥ the top eigenvector of W(diag p - ppᵀ)Wᵀ."""
    with float64():
        x = np.array([[0.3, -0.2, 0.5]])
        w = np.array([[2.0, 0.0, -1.0], [0.5, 0.1, 0.0], [0.0, 1.5, 0.3]])
        p = np_softmax(x @ w)[0]
        h = w @ (np.diag(p) - np.outer(p, p)) @ w.T
        v = np.linalg.eigh(h)[1][:, -1]
        eps = 0.1
        got = jl.vat_loss(
            lambda w, x: x @ w,
            jnp.asarray(w),
            jnp.asarray(x),
            jax.random.key(0),
            xi=1e-4,
            epsilon=eps,
            power_iterations=30,
        )
        cands = [np_kl(p[None], np_log_softmax((x + s * eps * v) @ w))[0] for s in (1, -1)]
        assert abs(cands[0] - cands[1]) > 1e-2 * max(cands)  # the sign matters
        assert min(abs(float(got[0]) - c) for c in cands) < 1e-5 * max(cands)


def test_vat_where_weights_and_composition():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(4, 3)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 2)), jnp.float32)
    key = jax.random.key(1)
    apply_fn = lambda w, x: jnp.tanh(x @ w) * 3.0  # noqa: E731
    per = jl.vat_loss(apply_fn, w, x, key, epsilon=0.5)
    assert per.shape == (4,) and np.all(np.asarray(per) >= 0)
    where = jnp.array([True, False, True, True])
    masked = jl.vat_loss(apply_fn, w, x.at[1].set(jnp.nan), key, epsilon=0.5, where=where)
    assert float(masked[1]) == 0.0 and np.all(np.isfinite(masked))
    m = jl.vat_loss(apply_fn, w, x, key, epsilon=0.5, where=where, reduction="mean")
    np.testing.assert_allclose(m, masked.sum() / 3, rtol=1e-5)
    # clean logits passed in: same result
    np.testing.assert_allclose(
        jl.vat_loss(apply_fn, w, x, key, epsilon=0.5, logits=apply_fn(w, x)), per, rtol=1e-6
    )
    f = jax.jit(jax.grad(lambda w: jl.vat_loss(apply_fn, w, x, key, reduction="mean")))
    assert np.all(np.isfinite(f(w)))
    # An exactly saturated model (zero gradient direction) gives 0, not NaN.
    sat = jl.vat_loss(lambda w, x: jnp.zeros((4, 2)) + w[0, 0] * 0, w, x, key, reduction="mean")
    assert float(sat) == 0.0
    with pytest.raises(ValueError, match="power_iterations"):
        jl.vat_loss(apply_fn, w, x, key, power_iterations=0)


# ---------------------------------------------------------------------------------------------
# mixup, sharpen, sigmoid_rampup


def test_mixup_is_a_convex_combination_with_one_permutation():
    x = jnp.asarray(RNG.normal(size=(8, 3)), jnp.float32)
    y = jnp.eye(8)  # identity rows reveal λ and π
    mix = jax.jit(functools.partial(jl.mixup, alpha=0.75))
    xm, ym = mix(jax.random.key(0), x, y)
    ym = np.asarray(ym)
    # Row i is λ e_i + (1 - λ) e_π(i): one λ for the batch, π a permutation.
    partners = [
        int(np.argmax(np.where(np.arange(8) == i, -1, ym[i]))) if ym[i, i] < 1 else i
        for i in range(8)
    ]
    assert sorted(partners) == list(range(8))
    lams = [ym[i, i] for i in range(8) if partners[i] != i]
    lam = lams[0]
    np.testing.assert_allclose(lams, lam, rtol=1e-6)
    for i in range(8):
        np.testing.assert_allclose(
            xm[i], lam * x[i] + (1 - lam) * x[partners[i]], rtol=1e-5, atol=1e-6
        )
    assert np.allclose(ym.sum(1), 1.0)
    xm2, _ = jl.mixup(jax.random.key(0), x, y, alpha=0.75)  # eager = jit
    np.testing.assert_allclose(xm, xm2, rtol=1e-6)  # the key decides: same λ and π


def test_mixup_lambda_distribution_and_keep_first():
    n, alpha = 4000, 0.5
    x = jnp.zeros((n, 1))
    y = jnp.concatenate([jnp.ones((n, 1)), jnp.zeros((n, 1))], axis=1)
    y = y.at[:, :].set(jnp.eye(2)[jnp.arange(n) % 2])
    mix = jax.jit(
        functools.partial(jl.mixup, alpha=alpha, per_example=True), static_argnames="keep_first"
    )
    _, ym = mix(jax.random.key(1), x, y)
    # Rows mixed with a partner of the other class reveal λ: y[i, own] = λ.
    own = np.asarray(ym)[np.arange(n), np.arange(n) % 2]
    lam = own[own < 1.0]
    assert abs(lam.mean() - 0.5) < 0.03
    assert abs(lam.var() - 1 / (4 * (2 * alpha + 1))) < 0.02  # Beta(α, α) variance
    _, ym = mix(jax.random.key(1), x, y, keep_first=True)
    assert np.all(np.asarray(ym)[np.arange(n), np.arange(n) % 2] >= 0.5 - 1e-6)
    with pytest.raises(TypeError, match="One-hot"):
        jl.mixup(jax.random.key(0), x, jnp.zeros(n, jnp.int32), alpha=1.0)


def test_sharpen():
    p = np.array([[0.5, 0.3, 0.2, 0.0]])
    for t in (0.5, 1.0, 2.0):
        ref = p ** (1 / t) / (p ** (1 / t)).sum(-1, keepdims=True)
        np.testing.assert_allclose(jl.sharpen(p, t), ref, rtol=1e-5, atol=1e-8)
    with float64():
        g = jax.jacfwd(lambda q: jl.sharpen(q, 0.5))(jnp.asarray(p[0]))
        assert np.all(np.isfinite(g))
        q = p[0, :3]
        ref = numeric_grad(lambda q: (q**2 / (q**2).sum())[0], q)
        np.testing.assert_allclose(
            jax.grad(lambda q: jl.sharpen(q, 0.5)[0])(jnp.asarray(q)), ref, atol=1e-7
        )
    np.testing.assert_allclose(jl.sharpen(jnp.array([1e-30, 1.0]), 0.01), [0.0, 1.0])


def test_sigmoid_rampup():
    steps = np.array([0, 10, 50, 99, 100, 150])
    t = np.clip(steps / 100, 0, 1)
    np.testing.assert_allclose(
        jax.vmap(lambda s: jl.sigmoid_rampup(s, 100))(steps), np.exp(-5 * (1 - t) ** 2), rtol=1e-6
    )
    assert float(jl.sigmoid_rampup(0, 0)) == 1.0
    schedule = functools.partial(jl.sigmoid_rampup, rampup_steps=100)
    np.testing.assert_allclose(jax.jit(schedule)(jnp.asarray(100)), 1.0)
    # The linear ramp is optax's.
    np.testing.assert_allclose(optax.linear_schedule(0.0, 1.0, 100)(50), 0.5)


# ---------------------------------------------------------------------------------------------
# Composition of the objectives.


def test_objectives_jit_vmap_grad():
    weak, strong = jnp.asarray(WEAK), jnp.asarray(STRONG)

    def objectives(s, t):
        return (
            jl.pseudo_label_loss(t, s, threshold=0.5, reduction="mean")[0]
            + jl.consistency_loss(s, t, kind="kl", reduction="mean")
            + jl.entropy_loss(s, reduction="mean")
        )

    batched = jax.jit(jax.vmap(objectives))(strong[:, None], weak[:, None])
    direct = jnp.stack([objectives(strong[i : i + 1], weak[i : i + 1]) for i in range(6)])
    np.testing.assert_allclose(batched, direct, rtol=1e-5)
    g = jax.jit(jax.grad(objectives))(strong, weak)
    g_ckpt = jax.grad(jax.checkpoint(objectives))(strong, weak)
    np.testing.assert_allclose(g, g_ckpt, rtol=1e-6)
    # bfloat16 logits: a float32 loss.
    v = jl.entropy_loss(strong.astype(jnp.bfloat16), reduction="mean")
    assert v.dtype == jnp.float32


# ---------------------------------------------------------------------------------------------
# label_spreading / label_propagation


def _blobs(n_per=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    x = np.concatenate([rng.normal(c, 0.35, (n_per, 2)) for c in centres])
    y = np.repeat([0, 1, 2], n_per)
    labels = np.where(rng.random(len(y)) < 0.2, y, -1)
    labels[[0, n_per, 2 * n_per]] = [0, 1, 2]
    return x, y, labels


@pytest.mark.parametrize("kernel,kw", [("rbf", {"gamma": 2.0}), ("knn", {"n_neighbors": 5})])
def test_label_spreading_and_propagation_equal_sklearn(kernel, kw):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.semi_supervised import LabelPropagation, LabelSpreading

    x, _, labels = _blobs()
    with float64(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # One compilation each: max_iter, tol and alpha are traced.
        spread = jax.jit(functools.partial(jl.label_spreading, kernel=kernel, num_classes=3, **kw))
        prop = jax.jit(functools.partial(jl.label_propagation, kernel=kernel, num_classes=3, **kw))
        for max_iter, tol, alpha in [(30, 1e-3, 0.2), (3, 1e-3, 0.5), (1000, 1e-10, 0.8)]:
            ref = (
                LabelSpreading(kernel=kernel, alpha=alpha, max_iter=max_iter, tol=tol, **kw)
                .fit(x, labels)
                .label_distributions_
            )
            got = spread(x, labels, alpha=alpha, max_iter=max_iter, tol=tol)
            assert got.dtype == jnp.float64
            np.testing.assert_allclose(got, ref, atol=1e-6)
            ref = (
                LabelPropagation(kernel=kernel, max_iter=max_iter, tol=tol, **kw)
                .fit(x, labels)
                .label_distributions_
            )
            np.testing.assert_allclose(prop(x, labels, max_iter=max_iter, tol=tol), ref, atol=1e-6)
        # The log-domain iteration is the same iteration.
        ref = LabelSpreading(kernel=kernel, max_iter=30, **kw).fit(x, labels).label_distributions_
        np.testing.assert_allclose(
            jl.label_spreading(x, labels, kernel=kernel, log_domain=True, **kw), ref, atol=1e-6
        )
        ref = LabelPropagation(kernel=kernel, **kw).fit(x, labels).label_distributions_
        np.testing.assert_allclose(
            jl.label_propagation(x, labels, kernel=kernel, log_domain=True, **kw), ref, atol=1e-6
        )
        # The closed form is the converged iteration.
        ref = (
            LabelSpreading(kernel=kernel, alpha=0.2, max_iter=100000, tol=1e-13, **kw)
            .fit(x, labels)
            .label_distributions_
        )
        np.testing.assert_allclose(
            jl.label_spreading(x, labels, kernel=kernel, method="solve", **kw), ref, atol=1e-6
        )
        ref = (
            LabelPropagation(kernel=kernel, max_iter=100000, tol=1e-13, **kw)
            .fit(x, labels)
            .label_distributions_
        )
        np.testing.assert_allclose(
            jl.label_propagation(x, labels, kernel=kernel, method="solve", **kw), ref, atol=1e-6
        )


def test_label_spreading_inputs_precomputed_rows_and_solve_gradient():
    x, y, labels = _blobs()
    with float64():
        spread = jax.jit(
            functools.partial(jl.label_spreading, num_classes=3), static_argnames=("kernel",)
        )
        prop = jax.jit(functools.partial(jl.label_propagation, num_classes=3))
        d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
        base = spread(x, labels, gamma=2.0)
        np.testing.assert_allclose(
            spread(np.exp(-2.0 * d2), labels, kernel="precomputed"), base, atol=1e-10
        )
        rows = np.eye(3)[np.where(labels >= 0, labels, 0)] * (labels >= 0)[:, None]
        np.testing.assert_allclose(spread(x, rows, gamma=2.0), base, atol=1e-12)
        np.testing.assert_allclose(prop(x, rows, gamma=2.0), prop(x, labels, gamma=2.0), atol=1e-12)
        # gamma_scale: γ = c / median of the pairwise squared distances.
        med = np.median(d2[np.triu_indices(len(x), 1)])
        np.testing.assert_allclose(
            jl.label_spreading(x, labels, gamma_scale=3.0),
            spread(x, labels, gamma=3.0 / med),
            atol=1e-10,
        )
        assert (np.asarray(base).argmax(1) == y).mean() > 0.95

        # The closed form is differentiable w.r.t. the inputs and γ.
        @jax.jit
        def score(x, gamma):
            return jnp.sum(
                jl.label_spreading(x, labels, gamma=gamma, method="solve", num_classes=3)[:, 0]
                * jnp.arange(len(x))
            )

        gx, gg = jax.grad(score, argnums=(0, 1))(jnp.asarray(x), 2.0)
        ref_g = numeric_grad(lambda g: score(jnp.asarray(x), g), np.array(2.0))
        np.testing.assert_allclose(gg, ref_g, rtol=1e-5)
        sub = (slice(0, 3), slice(None))
        ref_x = numeric_grad(lambda xs: score(jnp.asarray(x).at[sub].set(xs), 2.0), x[sub])
        np.testing.assert_allclose(np.asarray(gx)[sub], ref_x, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="num_classes"):
        jax.jit(jl.label_spreading)(x, labels)
    with pytest.raises(ValueError, match="kernel"):
        jl.label_spreading(x, labels, kernel="poly")
    with pytest.raises(ValueError, match="alpha"):
        jl.label_spreading(x, labels, alpha=1.0)
    with pytest.raises(ValueError, match="log_domain"):
        jl.label_spreading(x, labels, method="solve", log_domain=True)


def test_label_spreading_on_raw_digits_does_not_underflow():
    """Raw pixels (0–16), γ = 20: every RBF affinity underflows in scikit-learn."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = x[:1000].astype(np.float32), y[:1000]
    rng = np.random.RandomState(0)
    labels = np.full(len(y), -1)
    for c in range(10):
        idx = rng.choice(np.flatnonzero(y == c), 10, replace=False)
        labels[idx] = c
    unl = labels < 0
    for fn in (jl.label_spreading, jl.label_propagation):
        fn = jax.jit(
            functools.partial(fn, num_classes=10, max_iter=30), static_argnames="log_domain"
        )
        dist = np.asarray(fn(x, labels, gamma=20.0))
        assert np.all(np.isfinite(dist)) and np.all(dist >= 0)
        sums = dist.sum(1)
        assert np.all(np.isclose(sums, 1.0, atol=1e-5) | (sums == 0))
        assert np.sum(sums == 0) > 0.5 * len(x)  # most normalised links underflow in float32
        # scale-aware γ classifies sensibly; the log-domain iteration does so even at γ = 20.
        for kwargs in ({"gamma_scale": 20.0}, {"gamma": 20.0, "log_domain": True}):
            dist = np.asarray(fn(x, labels, **kwargs))
            assert np.all(np.isfinite(dist)) and np.allclose(dist.sum(1), 1.0, atol=1e-5)
            acc = (dist.argmax(1)[unl] == y[unl]).mean()
            assert acc > 0.9, (kwargs, acc)


def test_mixup_and_rampup_gradients_and_label_spreading_vmap():
    with float64():
        x = RNG.normal(size=(5, 2))
        y = np.eye(5)
        c = RNG.normal(size=(5, 2))
        key = jax.random.key(4)

        def f(x):
            xm, _ = jl.mixup(key, x, y, alpha=0.5, per_example=True)
            return jnp.sum(jnp.asarray(c) * xm**2)

        np.testing.assert_allclose(jax.grad(f)(jnp.asarray(x)), numeric_grad(f, x), atol=1e-7)
        np.testing.assert_allclose(
            jax.grad(lambda s: jl.sigmoid_rampup(s, 100.0))(30.0),
            numeric_grad(lambda s: float(jl.sigmoid_rampup(s, 100.0)), np.array(30.0)),
            rtol=1e-6,
        )
        # vmap over label sets (e.g. seeds) equals one call per label set.
        xs, _, labels = _blobs(10)
        other = np.where(np.arange(len(labels)) % 4 == 0, labels, -1)
        other[[0, 10, 20]] = [0, 1, 2]
        stacked = np.stack([labels, other])
        fn = functools.partial(jl.label_spreading, gamma=2.0, num_classes=3)
        batched = jax.jit(jax.vmap(fn, in_axes=(None, 0)))(xs, stacked)
        for i in range(2):
            np.testing.assert_allclose(batched[i], fn(xs, stacked[i]), atol=1e-12)
