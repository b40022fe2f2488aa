"""Clustering objectives against NumPy loops, scikit-learn and finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import logsumexp as np_logsumexp
from scipy.special import softmax as np_softmax
from sklearn.cluster import KMeans

import jaxloss

from helpers import float64, numeric_grad


class _JitEveryCall:
    """``jaxloss`` with every call compiled as one program.

    Op-by-op (eager) execution compiles each primitive for each new shape, which costs several
    times one ``jit`` of the whole function; the tests call each function on many small
    shapes, so they go through this proxy. Python scalars among the positional arguments
    (``num_classes``) stay static; keyword arguments are closed over.
    """

    def __getattr__(self, name):
        fn = getattr(jaxloss, name)

        def call(*args, **kwargs):
            traced = [i for i, a in enumerate(args) if not isinstance(a, int | float | str)]

            def inner(*values):
                full = list(args)
                for i, v in zip(traced, values, strict=True):
                    full[i] = v
                return fn(*full, **kwargs)

            return jax.jit(inner)(*(args[i] for i in traced))

        return call


jl = _JitEveryCall()

# --- NumPy references (float64, explicit loops over points / classes) ----------------------------


def np_sq_dist(x, c):
    x, c = np.asarray(x, np.float64), np.asarray(c, np.float64)
    out = np.zeros((*x.shape[:-1], len(c)))
    for idx in np.ndindex(*x.shape[:-1]):
        for k in range(len(c)):
            out[(*idx, k)] = np.sum((x[idx] - c[k]) ** 2)
    return out


def np_lloyd(x, c, w=None):
    x, c = np.asarray(x, np.float64), np.asarray(c, np.float64)
    w = np.ones(len(x)) if w is None else np.asarray(w, np.float64)
    a = np_sq_dist(x, c).argmin(-1)
    new = c.copy()
    for k in range(len(c)):
        members = (a == k) & (w > 0)
        if members.any():
            new[k] = (w[members, None] * x[members]).sum(0) / w[members].sum()
    return new


def np_class_centroids(f, y, num_classes):
    f = np.asarray(f, np.float64)
    cent, counts = np.zeros((num_classes, f.shape[-1])), np.zeros(num_classes)
    for c in range(num_classes):
        members = f[y == c]
        counts[c] = len(members)
        if len(members):
            cent[c] = members.mean(0)
    return cent, counts


def np_centroid_hinge(f, y, num_classes, delta):
    """The straightforward per-class loop: mean over members, then mean over present classes."""
    f = np.asarray(f, np.float64)
    per_class = []
    for c in range(num_classes):
        members = f[y == c]
        if len(members) == 0:
            continue
        mu = members.mean(0)
        dist = np.sqrt(((members - mu) ** 2).sum(-1))
        per_class.append(np.mean(np.maximum(dist - delta, 0.0) ** 2))
    return float(np.mean(per_class)) if per_class else 0.0


@pytest.fixture
def data(rng):
    x = rng.normal(size=(40, 3)).astype(np.float32) * 2
    c = rng.normal(size=(4, 3)).astype(np.float32) * 2
    return x, c


# --- distances and assignments -------------------------------------------------------------------


def test_pairwise_sq_distances_match_loop_and_are_clamped(rng, data):
    x, c = data
    np.testing.assert_allclose(
        jl.pairwise_sq_distances(x, c), np_sq_dist(x, c), rtol=1e-5, atol=1e-4
    )
    xb = rng.normal(size=(2, 5, 3)).astype(np.float32)  # leading batch dims
    np.testing.assert_allclose(
        jl.pairwise_sq_distances(xb, c), np_sq_dist(xb, c), rtol=1e-5, atol=1e-4
    )
    # Points on far-away centroids: the expansion cancels catastrophically, the clamp keeps ≥ 0.
    far = (1e3 + rng.normal(size=(50, 3))).astype(np.float32)
    d = np.asarray(jl.pairwise_sq_distances(far, far))
    assert d.min() >= 0.0 and np.all(np.isfinite(d))
    with float64():
        x64 = np.asarray(x, np.float64)
        np.testing.assert_allclose(
            jl.pairwise_sq_distances(x64, c.astype(np.float64)),
            np_sq_dist(x, c),
            rtol=1e-12,
            atol=1e-10,
        )


def test_kmeans_assign_matches_argmin_and_sklearn(data):
    x, c = data
    np.testing.assert_array_equal(jl.kmeans_assign(x, c), np_sq_dist(x, c).argmin(-1))
    km = KMeans(4, init=c.astype(np.float64), n_init=1, max_iter=5).fit(x.astype(np.float64))
    np.testing.assert_array_equal(
        jl.kmeans_assign(x, km.cluster_centers_.astype(np.float32)),
        km.predict(x.astype(np.float64)),
    )
    # ties go to the lowest index
    assert int(jl.kmeans_assign(jnp.array([1.0]), jnp.array([[2.0], [0.0]]))) == 0


def test_soft_kmeans_assign_is_softmax_of_negative_distances(data):
    x, c = data
    r = jl.soft_kmeans_assign(x, c, temperature=3.0)
    np.testing.assert_allclose(r, np_softmax(-np_sq_dist(x, c) / 3.0, axis=-1), atol=1e-6)
    hard = jl.soft_kmeans_assign(x, c, temperature=1e-4)
    np.testing.assert_allclose(hard, np.eye(4)[np_sq_dist(x, c).argmin(-1)], atol=1e-5)


# --- k-means loss --------------------------------------------------------------------------------


def test_kmeans_loss_values_match_numpy_for_every_reduction(rng, data):
    x, c = data
    per = np_sq_dist(x, c).min(-1)
    w = rng.random(40).astype(np.float32)
    where = rng.random(40) > 0.3
    np.testing.assert_allclose(jl.kmeans_loss(x, c), per.sum(), rtol=1e-5)
    np.testing.assert_allclose(jl.kmeans_loss(x, c, reduction="none"), per, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(jl.kmeans_loss(x, c, reduction="mean"), per.mean(), rtol=1e-5)
    np.testing.assert_allclose(jl.kmeans_loss(x, c, weights=w), (w * per).sum(), rtol=1e-5)
    np.testing.assert_allclose(
        jl.kmeans_loss(x, c, weights=w, reduction="weighted_mean"),
        (w * per).sum() / w.sum(),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        jl.kmeans_loss(x, c, where=where, reduction="mean"), per[where].mean(), rtol=1e-5
    )


def test_kmeans_loss_is_sklearn_inertia():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(loc=m, size=(50, 2)) for m in (-5, 0, 5)])
    km = KMeans(3, n_init=3, random_state=0).fit(x)
    np.testing.assert_allclose(
        jl.kmeans_loss(x.astype(np.float32), km.cluster_centers_.astype(np.float32)),
        km.inertia_,
        rtol=1e-5,
    )
    sw = rng.random(len(x))
    kmw = KMeans(3, n_init=3, random_state=0).fit(x, sample_weight=sw)
    with float64():
        np.testing.assert_allclose(
            jl.kmeans_loss(x, kmw.cluster_centers_, weights=sw), kmw.inertia_, rtol=1e-10
        )


def test_kmeans_loss_gradient_is_fixed_assignment_gradient(rng, data):
    x, c = data
    with float64():
        x64, c64 = x.astype(np.float64), c.astype(np.float64)
        w = rng.random(40)

        @jax.jit
        def f(cc):
            return jl.kmeans_loss(x64, cc, weights=w)

        g = np.asarray(jax.grad(f)(c64))
        np.testing.assert_allclose(g, numeric_grad(f, c64), rtol=1e-6, atol=1e-6)
        a = np_sq_dist(x64, c64).argmin(-1)  # 2 Σ_{a_i=k} w_i (c_k - x_i)
        expected = np.stack(
            [2 * (w[a == k, None] * (c64[k] - x64[a == k])).sum(0) for k in range(4)]
        )
        np.testing.assert_allclose(g, expected, rtol=1e-10, atol=1e-10)
        fx = jax.jit(lambda xx: jl.kmeans_loss(xx, c64))
        np.testing.assert_allclose(jax.grad(fx)(x64), numeric_grad(fx, x64), rtol=1e-6, atol=1e-6)


def test_newton_step_on_kmeans_loss_is_lloyd_and_sklearn(data):
    x, c = data
    with float64():
        x64, c64 = x.astype(np.float64), c.astype(np.float64)
        grad = jax.grad(jl.kmeans_loss, argnums=1)
        g = grad(x64, c64)
        h = jax.jvp(lambda cc: grad(x64, cc), (c64,), (jnp.ones_like(c64),))[1]  # diag 2 n_k
        newton = np.where(h > 0, c64 - g / np.where(h > 0, h, 1), c64)
        np.testing.assert_allclose(newton, jl.lloyd_step(x64, c64), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(newton, np_lloyd(x64, c64), rtol=1e-12, atol=1e-12)
        km = KMeans(4, init=c64, n_init=1, max_iter=1).fit(x64)
        np.testing.assert_allclose(newton, km.cluster_centers_, rtol=1e-10, atol=1e-10)


def test_kmeans_loss_where_blocks_nan_points():
    x = jnp.array([[0.0, 0.0], [jnp.nan, 1.0], [4.0, 0.0]])
    c = jnp.array([[1.0, 0.0], [5.0, 0.0]])
    where = jnp.array([True, False, True])
    value, g = jax.value_and_grad(lambda cc: jl.kmeans_loss(x, cc, where=where))(c)
    assert float(value) == 2.0
    np.testing.assert_allclose(g, [[2.0, 0.0], [2.0, 0.0]])
    gx = jax.grad(lambda xx: jl.kmeans_loss(xx, c, where=where, reduction="mean"))(x)
    assert np.all(np.isfinite(gx)) and np.all(np.asarray(gx)[1] == 0)
    assert float(jl.kmeans_loss(x, c, where=jnp.zeros(3, bool), reduction="mean")) == 0.0


# --- soft k-means --------------------------------------------------------------------------------


def test_soft_kmeans_loss_matches_numpy_and_tends_to_kmeans(rng, data):
    x, c = data
    d = np_sq_dist(x, c)
    soft_at = jax.jit(lambda t: jaxloss.soft_kmeans_loss(x, c, temperature=t))  # traced T
    for t in (0.3, 2.0, 50.0):
        np.testing.assert_allclose(
            soft_at(t), (-t * np_logsumexp(-d / t, axis=-1)).sum(), rtol=2e-5
        )
    hard = float(jl.kmeans_loss(x, c))
    gaps = []
    for t in (1.0, 1e-1, 1e-2, 1e-3):
        soft = float(soft_at(t))
        # min_k d - T log K ≤ soft-min ≤ min_k d, summed over the 40 points
        assert hard - 40 * t * np.log(4) - 1e-3 <= soft <= hard + 1e-3
        gaps.append(hard - soft)
    assert gaps[-1] < 1e-2 and gaps == sorted(gaps, reverse=True)
    w = rng.random(40).astype(np.float32)
    np.testing.assert_allclose(
        jl.soft_kmeans_loss(x, c, temperature=2.0, weights=w, reduction="none"),
        w * -2.0 * np_logsumexp(-d / 2.0, axis=-1),
        rtol=2e-5,
        atol=1e-5,
    )


def test_soft_kmeans_gradient_and_em_step(data):
    x, c = data
    with float64():
        x64, c64 = x.astype(np.float64), c.astype(np.float64)

        @jax.jit
        def f(cc):
            return jl.soft_kmeans_loss(x64, cc, temperature=1.5)

        g = np.asarray(jax.grad(f)(c64))
        np.testing.assert_allclose(g, numeric_grad(f, c64), rtol=1e-6, atol=1e-6)
        r = np_softmax(-np_sq_dist(x64, c64) / 1.5, axis=-1)  # [N, K]
        np.testing.assert_allclose(g, 2 * (r.sum(0)[:, None] * c64 - r.T @ x64), rtol=1e-9)
        em = (r.T @ x64) / r.sum(0)[:, None]  # the mixture's M-step = preconditioned step
        np.testing.assert_allclose(c64 - g / (2 * r.sum(0)[:, None]), em, rtol=1e-9)


def test_soft_kmeans_traced_temperature_and_bad_temperature(data):
    x, c = data
    annealed = jax.jit(lambda t: jl.soft_kmeans_loss(x, c, temperature=t))
    np.testing.assert_allclose(annealed(2.0), jl.soft_kmeans_loss(x, c, temperature=2.0), rtol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        jl.soft_kmeans_loss(x, c, temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        jl.soft_kmeans_assign(x, c, temperature=-1.0)


# --- Lloyd step ----------------------------------------------------------------------------------


def test_lloyd_step_matches_loop_with_weights_and_empty_clusters(rng, data):
    x, c = data
    far = np.concatenate([c, [[100.0, 100.0, 100.0]]]).astype(np.float32)  # an empty cluster
    w = rng.random(40).astype(np.float32)
    w[:5] = 0.0
    np.testing.assert_allclose(
        jl.lloyd_step(x, far, weights=w), np_lloyd(x, far, w), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(np.asarray(jl.lloyd_step(x, far))[-1], far[-1])
    where = rng.random(40) > 0.5
    np.testing.assert_allclose(
        jl.lloyd_step(x, c, where=where), np_lloyd(x[where], c), rtol=1e-5, atol=1e-5
    )
    # Iterated to convergence it reaches scikit-learn's fixed point from the same init.
    step = jax.jit(jl.lloyd_step)
    cc = c
    for _ in range(30):
        cc = step(x, cc)
    km = KMeans(4, init=c.astype(np.float64), n_init=1, tol=0).fit(x.astype(np.float64))
    np.testing.assert_allclose(cc, km.cluster_centers_, rtol=1e-4, atol=1e-4)


# --- class centroids, center loss, centroid hinge ------------------------------------------------


def test_class_centroids_match_loop_and_handle_empty_classes(rng):
    f = rng.normal(size=(30, 4)).astype(np.float32)
    y = rng.choice([0, 2, 3], size=30)  # classes 1 and 4 are absent
    cent, counts = jl.class_centroids(f, y, 5)
    ref, ref_counts = np_class_centroids(f, y, 5)
    np.testing.assert_allclose(cent, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(counts, ref_counts)
    assert np.all(np.asarray(cent)[[1, 4]] == 0)
    g = jax.grad(lambda ff: jl.class_centroids(ff, y, 5)[0].sum())(f)
    np.testing.assert_allclose(g, np.broadcast_to(1.0 / ref_counts[y][:, None], g.shape), rtol=1e-6)
    # weights, where and ignore_index
    w = rng.random(30).astype(np.float32)
    cw, nw = jl.class_centroids(f, y, 5, weights=w)
    for k in (0, 2, 3):
        np.testing.assert_allclose(
            cw[k], (w[y == k, None] * f[y == k]).sum(0) / w[y == k].sum(), rtol=1e-5
        )
        np.testing.assert_allclose(nw[k], w[y == k].sum(), rtol=1e-6)
    keep = rng.random(30) > 0.4
    y_pad = np.where(keep, y, -1)
    np.testing.assert_allclose(
        jl.class_centroids(f, y_pad, 5, ignore_index=-1)[0],
        np_class_centroids(f[keep], y[keep], 5)[0],
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        jl.class_centroids(f, y, 5, where=keep)[0],
        np_class_centroids(f[keep], y[keep], 5)[0],
        rtol=1e-5,
        atol=1e-6,
    )
    # nothing included: zeros, no NaN, zero gradient
    none_cent, none_counts = jl.class_centroids(f, y, 5, where=np.zeros(30, bool))
    assert np.all(np.asarray(none_cent) == 0) and np.all(np.asarray(none_counts) == 0)
    g0 = jax.grad(lambda ff: jl.class_centroids(ff, y, 5, where=np.zeros(30, bool))[0].sum())(f)
    assert np.all(np.asarray(g0) == 0)


def test_out_of_range_labels_give_nan_and_checked_raises(rng):
    f = rng.normal(size=(6, 2)).astype(np.float32)
    y = np.array([0, 1, 1, 7, 0, 1])
    assert np.all(np.isnan(jl.class_centroids(f, y, 2)[0]))
    assert np.isnan(float(jl.centroid_hinge_loss(f, y, 2, delta=0.1)))
    per = np.asarray(jl.center_loss(f, y, np.zeros((2, 2), np.float32)))
    assert np.isnan(per[3]) and np.all(np.isfinite(np.delete(per, 3)))
    ok = jl.class_centroids(f, y, 2, where=y < 2)[0]  # masked: fine
    assert np.all(np.isfinite(ok))
    with pytest.raises(Exception, match="out-of-range"):
        jaxloss.checked(jaxloss.center_loss)(f, y, np.zeros((2, 2), np.float32))


def test_class_centroids_vmap_over_ragged_batch(rng):
    b, n, num_classes = 5, 12, 6
    f = rng.normal(size=(b, n, 3)).astype(np.float32)
    y = np.full((b, n), -1)
    for i in range(b):
        size = rng.integers(1, n + 1)
        classes = rng.choice(num_classes, size=rng.integers(1, num_classes + 1), replace=False)
        y[i, :size] = rng.choice(classes, size=size)
    cent, counts = jax.vmap(
        lambda ff, yy: jl.class_centroids(ff, yy, num_classes, ignore_index=-1)
    )(f, y)
    for i in range(b):
        keep = y[i] >= 0
        ref, ref_counts = np_class_centroids(f[i][keep], y[i][keep], num_classes)
        np.testing.assert_allclose(cent[i], ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(counts[i], ref_counts)


def test_center_loss_values_gradients_and_contract(rng):
    f = rng.normal(size=(10, 3)).astype(np.float32)
    y = rng.integers(0, 4, size=10)
    y[2] = -100
    cent = rng.normal(size=(4, 3)).astype(np.float32)
    ref = np.array(
        [0.5 * np.sum((f[i] - cent[y[i]]) ** 2) if y[i] >= 0 else 0.0 for i in range(10)]
    )
    np.testing.assert_allclose(jl.center_loss(f, y, cent, ignore_index=-100), ref, rtol=1e-5)
    np.testing.assert_allclose(
        jl.center_loss(f, y, cent, ignore_index=-100, reduction="mean"), ref.sum() / 9, rtol=1e-5
    )
    cw = np.array([1.0, 2.0, 0.5, 3.0], np.float32)
    ew = np.where(y >= 0, cw[np.maximum(y, 0)], 0)
    np.testing.assert_allclose(
        jl.center_loss(f, y, cent, ignore_index=-100, class_weights=cw, reduction="weighted_mean"),
        (ew * ref).sum() / ew.sum(),
        rtol=1e-5,
    )
    with float64():
        f64, c64 = f.astype(np.float64), cent.astype(np.float64)

        @jax.jit
        def loss(cc):
            return jl.center_loss(f64, y, cc, ignore_index=-100, reduction="sum")

        np.testing.assert_allclose(
            jax.grad(loss)(c64), numeric_grad(loss, c64), rtol=1e-6, atol=1e-6
        )
        lf = jax.jit(lambda ff: jl.center_loss(ff, y, c64, ignore_index=-100, reduction="sum"))
        np.testing.assert_allclose(jax.grad(lf)(f64), numeric_grad(lf, f64), rtol=1e-6, atol=1e-6)


def test_center_loss_update_matches_wen_et_al(rng):
    f = rng.normal(size=(12, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=12)
    y[y == 2] = 0  # class 2 absent: stays put
    c = rng.normal(size=(3, 2)).astype(np.float32)
    expected = c.astype(np.float64).copy()
    for j in range(3):
        members = f[y == j]
        delta = (c[j] - members).sum(0) / (1 + len(members)) if len(members) else 0.0
        expected[j] = c[j] - 0.3 * delta
    np.testing.assert_allclose(
        jl.center_loss_update(c, f, y, alpha=0.3), expected, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(np.asarray(jl.center_loss_update(c, f, y, alpha=0.3))[2], c[2])


def test_centroid_hinge_loss_equals_per_class_loop_on_ragged_batches(rng):
    b, n, num_classes, delta = 8, 16, 5, 0.6
    f = rng.normal(size=(b, n, 3)).astype(np.float32)
    y = np.full((b, n), -1)
    for i in range(b - 1):  # the last item is all padding
        size = rng.integers(1, n + 1)
        classes = rng.choice(num_classes, size=rng.integers(1, num_classes + 1), replace=False)
        y[i, :size] = rng.choice(classes, size=size)
    batched = jax.jit(
        jax.vmap(
            lambda ff, yy: jl.centroid_hinge_loss(ff, yy, num_classes, delta=delta, ignore_index=-1)
        )
    )
    got = np.asarray(batched(f, y))
    expected = [
        np_centroid_hinge(f[i][y[i] >= 0], y[i][y[i] >= 0], num_classes, delta) for i in range(b)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got[-1] == 0.0
    # the same with a where mask instead of ignore_index, and per-class "none" output
    where = y >= 0
    np.testing.assert_allclose(
        jax.jit(
            jax.vmap(
                lambda ff, yy, ww: jl.centroid_hinge_loss(
                    ff, jnp.maximum(yy, 0), num_classes, delta=delta, where=ww
                )
            )
        )(f, y, where),
        expected,
        rtol=1e-5,
        atol=1e-6,
    )
    per_class = jl.centroid_hinge_loss(
        f[0], y[0], num_classes, delta=delta, ignore_index=-1, reduction="none"
    )
    present = np.isin(np.arange(num_classes), y[0])
    assert np.all(np.asarray(per_class)[~present] == 0)
    np.testing.assert_allclose(np.asarray(per_class)[present].mean(), expected[0], rtol=1e-5)


def test_centroid_hinge_loss_class_weights_and_point_weights(rng):
    f = rng.normal(size=(20, 2)).astype(np.float32) * 2
    y = rng.integers(0, 3, size=20)
    w = rng.random(20).astype(np.float32) + 0.1
    cw = np.array([1.0, 3.0, 0.5], np.float32)
    per_class = []
    for k in range(3):
        fk, wk = f[y == k].astype(np.float64), w[y == k]
        mu = (wk[:, None] * fk).sum(0) / wk.sum()
        h = np.maximum(np.sqrt(((fk - mu) ** 2).sum(-1)) - 0.5, 0) ** 2
        per_class.append((wk * h).sum() / wk.sum())
    per_class = np.array(per_class)
    np.testing.assert_allclose(
        jl.centroid_hinge_loss(f, y, 3, delta=0.5, weights=w, reduction="none"),
        per_class,
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        jl.centroid_hinge_loss(
            f, y, 3, delta=0.5, weights=w, class_weights=cw, reduction="weighted_mean"
        ),
        (cw * per_class).sum() / cw.sum(),
        rtol=1e-5,
    )


def test_centroid_hinge_loss_gradient(rng):
    f = rng.normal(size=(9, 2)) * 2
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    with float64():
        for stop in (False, True):

            @jax.jit
            def loss(ff, stop=stop):
                return jl.centroid_hinge_loss(ff, y, 4, delta=0.5, stop_centroid_gradient=stop)

            g = np.asarray(jax.grad(loss)(f))
            if not stop:
                np.testing.assert_allclose(g, numeric_grad(loss, f), rtol=1e-6, atol=1e-6)
            else:  # centroids held at their value: differentiate that
                mu = np_class_centroids(f, y, 4)[0]

                def frozen(ff, mu=mu):
                    d = np.sqrt(((ff - mu[y]) ** 2).sum(-1))
                    h = np.maximum(d - 0.5, 0) ** 2
                    return np.mean([h[y == k].mean() for k in range(3)])

                np.testing.assert_allclose(g, numeric_grad(frozen, f), rtol=1e-6, atol=1e-6)
    # A member sitting on its centroid (single-member class) with delta=0: zero, not NaN.
    g1 = jax.grad(lambda ff: jl.centroid_hinge_loss(ff, jnp.array([0, 1, 1]), 2, delta=0.0))(
        jnp.array([[1.0, 2.0], [0.0, 0.0], [2.0, 0.0]])
    )
    assert np.all(np.isfinite(g1)) and np.all(np.asarray(g1)[0] == 0)
    with pytest.raises(ValueError, match="delta"):
        jl.centroid_hinge_loss(f, y, 4, delta=-1.0)


# --- properties -----------------------------------------------------------------------------------

_points = hnp.arrays(np.float32, (12, 2), elements=st.floats(-10, 10, width=32))
_centers = hnp.arrays(np.float32, (3, 2), elements=st.floats(-10, 10, width=32))


@jax.jit
def _invariants(x, c, perm, t):
    """Values that the properties below compare, computed in one compiled call."""
    return dict(
        hard=jaxloss.kmeans_loss(x, c),
        hard_permuted=jaxloss.kmeans_loss(x, c[perm]),
        hard_weights1=jaxloss.kmeans_loss(x, c, weights=jnp.ones(12)),
        hard_where_all=jaxloss.kmeans_loss(x, c, where=jnp.ones(12, bool)),
        per=jaxloss.kmeans_loss(x, c, reduction="none"),
        per_vmap=jax.vmap(lambda p: jaxloss.kmeans_loss(p, c))(x),
        soft=jaxloss.soft_kmeans_loss(x, c, temperature=t),
        lloyd_loss=jaxloss.kmeans_loss(x, jaxloss.lloyd_step(x, c)),
    )


@given(_points, _centers, st.permutations(range(3)), st.floats(0.01, 100.0))
def test_kmeans_properties(x, c, perm, t):
    v = {k: np.asarray(a, np.float64) for k, a in _invariants(x, c, np.array(perm), t).items()}
    tol = 1e-4 * (1 + v["hard"])
    assert abs(v["hard_permuted"] - v["hard"]) <= tol  # centroid order is irrelevant
    assert v["hard_weights1"] == v["hard"] and v["hard_where_all"] == v["hard"]
    np.testing.assert_allclose(v["per_vmap"], v["per"], rtol=1e-6, atol=1e-6)
    assert v["hard"] - 12 * t * np.log(3) - tol <= v["soft"] <= v["hard"] + tol
    assert v["lloyd_loss"] <= v["hard"] + tol  # a Lloyd step never increases it


# --- memory: no [K, N, D] intermediate -----------------------------------------------------------


def _all_avals(jaxpr):
    for eqn in jaxpr.eqns:
        for v in eqn.outvars:
            yield v.aval
        for param in eqn.params.values():
            for sub in param if isinstance(param, list | tuple) else [param]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    yield from _all_avals(inner)


def test_no_n_by_k_by_d_intermediate():
    n, k, d = 4096, 64, 32  # N·K·D = 8.4M floats = 32 MiB
    x = jax.ShapeDtypeStruct((n, d), jnp.float32)
    c = jax.ShapeDtypeStruct((k, d), jnp.float32)
    fns = {
        "pairwise_sq_distances": lambda x, c: jaxloss.pairwise_sq_distances(x, c).sum(),
        "kmeans_loss": jaxloss.kmeans_loss,
        "soft_kmeans_loss": lambda x, c: jaxloss.soft_kmeans_loss(x, c, temperature=0.5),
        "lloyd_step": lambda x, c: jaxloss.lloyd_step(x, c).sum(),
    }
    for name, fn in fns.items():
        for label, g in ((name, fn), (f"grad {name}", jax.grad(fn, argnums=(0, 1)))):
            if label == "grad lloyd_step":
                continue
            largest = max(int(np.prod(a.shape)) for a in _all_avals(jax.make_jaxpr(g)(x, c).jaxpr))
            assert largest <= n * k, f"{label}: an intermediate of {largest} elements"
            temp = jax.jit(g).lower(x, c).compile().memory_analysis().temp_size_in_bytes
            assert temp < n * k * d * 4 // 8, f"{label}: {temp} bytes of temporaries"
    labels = jax.ShapeDtypeStruct((n,), jnp.int32)
    per_class = {
        "class_centroids": lambda f, y: jaxloss.class_centroids(f, y, k)[0].sum(),
        "centroid_hinge_loss": lambda f, y: jaxloss.centroid_hinge_loss(f, y, k, delta=0.5),
    }
    for name, fn in per_class.items():
        for label, g in ((name, fn), (f"grad {name}", jax.grad(fn))):
            jaxpr = jax.make_jaxpr(g)(x, labels).jaxpr
            largest = max(int(np.prod(a.shape)) for a in _all_avals(jaxpr))
            assert largest <= n * max(k, d), f"{label}: an intermediate of {largest} elements"


# --- composition, dtypes, errors -----------------------------------------------------------------


def test_jit_vmap_grad_composition(rng):
    x = rng.normal(size=(3, 20, 2)).astype(np.float32)
    c = rng.normal(size=(3, 4, 2)).astype(np.float32)

    def objective(xx, cc):
        return jl.kmeans_loss(xx, cc, reduction="mean") + jl.soft_kmeans_loss(
            xx, cc, temperature=0.5, reduction="mean"
        )

    g = jax.jit(jax.vmap(jax.grad(objective, argnums=1)))(x, c)
    single = jax.jit(jax.grad(objective, argnums=1))
    for i in range(3):
        np.testing.assert_allclose(g[i], single(x[i], c[i]), rtol=1e-5, atol=1e-6)
    per = jax.jit(jax.vmap(lambda xx: jl.kmeans_loss(xx, c[0], reduction="none")))(x)
    np.testing.assert_allclose(per, np_sq_dist(x, c[0]).min(-1), rtol=1e-5, atol=1e-5)
    steps = jax.jit(jax.vmap(jl.lloyd_step))(x, c)
    np.testing.assert_allclose(steps[1], np_lloyd(x[1], c[1]), rtol=1e-5, atol=1e-6)
    ckpt = jax.jit(jax.grad(jax.checkpoint(lambda cc: jl.kmeans_loss(x[0], cc))))(c[0])
    a = np_sq_dist(x[0], c[0]).argmin(-1)
    np.testing.assert_allclose(
        ckpt, [2 * (c[0][k] - x[0][a == k]).sum(0) for k in range(4)], rtol=1e-5, atol=1e-5
    )


def test_dtypes(data):
    x, c = data
    loss16 = jl.kmeans_loss(x.astype(jnp.bfloat16), c.astype(jnp.bfloat16))
    assert loss16.dtype == jnp.float32
    g = jax.grad(lambda cc: jl.kmeans_loss(x.astype(jnp.bfloat16), cc))(c.astype(jnp.bfloat16))
    assert g.dtype == jnp.bfloat16
    assert jl.class_centroids(x.astype(jnp.float16), np.zeros(40, int), 2)[0].dtype == jnp.float32
    with float64():
        assert (
            jl.soft_kmeans_loss(x.astype(np.float64), c.astype(np.float64), temperature=1.0).dtype
            == jnp.float64
        )


def test_errors_name_the_argument(data):
    x, c = data
    with pytest.raises(ValueError, match=r"points has shape \(40, 3\).*centroids has shape"):
        jl.kmeans_loss(x, c[:, :2])
    with pytest.raises(ValueError, match="centroids has shape"):
        jl.kmeans_loss(x, c[0])
    with pytest.raises(TypeError, match="points must be a floating-point array"):
        jl.kmeans_loss(np.ones((4, 3), int), c)
    with pytest.raises(ValueError, match="weights has shape"):
        jl.kmeans_loss(x, c, weights=np.ones(7))
    with pytest.raises(ValueError, match="reduction must be one of"):
        jl.kmeans_loss(x, c, reduction="avg")
    with pytest.raises(ValueError, match=r"labels has shape \(39,\)"):
        jl.class_centroids(x, np.zeros(39, int), 3)
    with pytest.raises(TypeError, match="labels must be an integer array"):
        jl.center_loss(x, np.zeros(40), c)
    with pytest.raises(ValueError, match="num_classes"):
        jl.centroid_hinge_loss(x, np.zeros(40, int), 0, delta=1.0)
