"""Class counts and class-weighting schemes vs scikit-learn, NumPy and the papers' formulas."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

import jaxloss as jl


def _seg_labels(rng, b=6, h=5, w=7, c=4):
    """Segmentation labels where not every class appears in every image."""
    labels = rng.integers(0, 2, size=(b, h, w))  # background / class 1 everywhere
    labels[0, :2, :2] = 2
    labels[3, 1:4, 2:5] = 2
    labels[5, 0, 0] = 3
    return labels


def test_class_counts_integer_onehot_where_ignore(rng):
    labels = rng.integers(0, 5, size=(4, 6))
    np.testing.assert_array_equal(
        jl.class_counts(labels, 5), np.bincount(labels.ravel(), minlength=5)
    )
    where = rng.random((4, 6)) > 0.4
    np.testing.assert_array_equal(
        jl.class_counts(labels, 5, where=where), np.bincount(labels[where], minlength=5)
    )
    lab = np.where(rng.random((4, 6)) < 0.3, 255, labels)
    np.testing.assert_array_equal(
        jl.class_counts(lab, 5, ignore_index=255), np.bincount(lab[lab != 255], minlength=5)
    )
    onehot = np.eye(5, dtype=np.float32)[labels]
    np.testing.assert_allclose(
        jl.class_counts(onehot, 5, where=where), np.bincount(labels[where], minlength=5)
    )
    # Out-of-range labels (not ignore_index) are not counted; checked raises.
    bad = labels.copy()
    bad[0, 0] = 9
    np.testing.assert_array_equal(jl.class_counts(bad, 5), np.bincount(bad[bad < 5], minlength=5))
    with pytest.raises(Exception, match="labels must lie in"):
        jl.checked(jl.class_counts)(bad, num_classes=5)


def test_class_image_counts_matches_loop(rng):
    labels = _seg_labels(rng)
    lab = np.where(rng.random(labels.shape) < 0.1, -1, labels)
    expected = np.zeros(4)
    for img in lab:
        valid = img[img != -1]
        counts = np.bincount(valid, minlength=4)
        expected += (counts > 0) * valid.size
    np.testing.assert_array_equal(jl.class_image_counts(lab, 4, ignore_index=-1), expected)
    onehot = np.eye(4, dtype=np.float32)[labels]
    np.testing.assert_allclose(jl.class_image_counts(onehot, 4), jl.class_image_counts(labels, 4))
    where = lab != -1
    np.testing.assert_array_equal(jl.class_image_counts(labels, 4, where=where), expected)


def test_balanced_equals_sklearn(rng):
    y = rng.integers(0, 6, size=200)
    y[y == 5] = rng.integers(0, 5, size=np.sum(y == 5))  # class 5 absent
    y = np.concatenate([y, [5] * 3])  # ... now rare
    counts = jl.class_counts(y, 6)
    np.testing.assert_allclose(
        jl.class_weights(counts),
        compute_class_weight("balanced", classes=np.arange(6), y=y),
        rtol=1e-6,
    )
    # A class absent everywhere gets 0, the others sklearn's weights over the present classes.
    y2 = y[y != 2]
    w = np.asarray(jl.class_weights(jl.class_counts(y2, 6)))
    present = np.array([0, 1, 3, 4, 5])
    np.testing.assert_allclose(
        w[present], compute_class_weight("balanced", classes=present, y=y2), rtol=1e-6
    )
    assert w[2] == 0.0


def test_inverse_median_frequency_effective_number(rng):
    counts = np.array([500.0, 30.0, 0.0, 4.0, 120.0])
    present = counts > 0
    inv = np.where(present, 1 / np.where(present, counts, 1), 0)
    np.testing.assert_allclose(jl.class_weights(counts, method="inverse"), inv, rtol=1e-6)
    np.testing.assert_allclose(
        jl.class_weights(counts, method="inverse", normalize="sum"), inv / inv.sum(), rtol=1e-6
    )
    np.testing.assert_allclose(
        jl.class_weights(counts, method="inverse", normalize="mean"), inv / inv.sum() * 5, rtol=1e-6
    )
    # Cui et al. 2019: (1 - β) / (1 - β^n), normalised to sum to the number of classes.
    for beta in (0.9, 0.999, 0.9999):
        raw = np.where(present, (1 - beta) / (1 - beta ** np.where(present, counts, 1)), 0)
        np.testing.assert_allclose(
            jl.class_weights(counts, method="effective_number", beta=beta),
            raw / raw.sum() * 5,
            rtol=1e-5,
        )
        np.testing.assert_allclose(
            jl.class_weights(counts, method="effective_number", beta=beta, normalize="none"),
            raw,
            rtol=1e-5,
        )
    # β = 0: equal weights for present classes.
    np.testing.assert_allclose(
        jl.class_weights(counts, method="effective_number", beta=0.0, normalize="none"),
        present.astype(float),
    )
    # Eigen & Fergus median frequency on segmentation labels.
    labels = _seg_labels(rng)
    n = jl.class_counts(labels, 4)
    big_n = jl.class_image_counts(labels, 4)
    freq = np.asarray(n) / np.asarray(big_n)
    np.testing.assert_allclose(
        jl.class_weights(n, method="median_frequency", image_counts=big_n),
        np.median(freq) / freq,
        rtol=1e-6,
    )
    # With an absent class (weight 0), the median is over the present ones (odd count here).
    n5 = np.append(np.asarray(n), 0)
    big5 = np.append(np.asarray(big_n), 0)
    np.testing.assert_allclose(
        jl.class_weights(n5, method="median_frequency", image_counts=big5),
        np.append(np.median(freq) / freq, 0.0),
        rtol=1e-6,
    )
    # No inf or NaN for absent classes in any method, and everything jits.
    f = jax.jit(
        lambda c, ic: [
            jl.class_weights(c, method=m, image_counts=ic)
            for m in ("balanced", "inverse", "median_frequency", "effective_number")
        ]
    )
    for w in f(jnp.array([3.0, 0.0, 5.0]), jnp.array([10.0, 0.0, 20.0])):
        assert np.all(np.isfinite(w)) and w[1] == 0
    for w in f(jnp.zeros(3), jnp.zeros(3)):  # nothing present at all
        np.testing.assert_array_equal(w, [0.0, 0.0, 0.0])


def test_class_weight_map_comes_from_the_ground_truth(rng):
    labels = rng.integers(0, 3, size=(2, 4, 5))
    w = np.array([0.2, 1.0, 5.0], np.float32)
    np.testing.assert_allclose(jl.class_weight_map(labels, w), w[labels])
    lab = np.where(rng.random(labels.shape) < 0.2, 255, labels)
    m = np.asarray(jl.class_weight_map(lab, w, ignore_index=255))
    np.testing.assert_allclose(m, np.where(lab == 255, 0.0, w[np.minimum(lab, 2)]))
    np.testing.assert_allclose(jl.class_weight_map(np.eye(3)[labels], w), w[labels], rtol=1e-6)
    out = jl.class_weight_map(np.array([0, 7]), w)
    assert out[0] == w[0] and np.isnan(out[1])
    # As pixel weights it reproduces class_weights= of a loss (which also selects by the truth).
    logits = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
    for red in ("none", "sum", "mean"):
        np.testing.assert_allclose(
            jl.softmax_cross_entropy_with_integer_labels(
                logits, labels, weights=jl.class_weight_map(labels, w), reduction=red
            ),
            jl.softmax_cross_entropy_with_integer_labels(
                logits, labels, class_weights=w, reduction=red
            ),
            rtol=1e-5,
        )


def test_pipeline_under_jit(rng):
    labels = jnp.asarray(_seg_labels(rng))

    @jax.jit
    def weights_from(labels):
        n = jl.class_counts(labels, 4)
        w = jl.class_weights(n)
        return (
            w,
            jl.class_weights(
                n, method="median_frequency", image_counts=jl.class_image_counts(labels, 4)
            ),
            jl.class_weight_map(labels, w),
        )

    a, b, m = weights_from(labels)
    np.testing.assert_allclose(a, jl.class_weights(jl.class_counts(labels, 4)), rtol=1e-6)
    assert np.all(np.isfinite(b)) and np.all(b > 0)
    np.testing.assert_allclose(m, np.asarray(a)[np.asarray(labels)], rtol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="method must be one of"):
        jl.class_weights(jnp.ones(3), method="sqrt")
    with pytest.raises(ValueError, match="needs image_counts"):
        jl.class_weights(jnp.ones(3), method="median_frequency")
    with pytest.raises(ValueError, match="counts must be 1-D"):
        jl.class_weights(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="beta"):
        jl.class_weights(jnp.ones(3), method="effective_number", beta=1.0)
    with pytest.raises(ValueError, match="normalize"):
        jl.class_weights(jnp.ones(3), normalize="max")
    with pytest.raises(ValueError, match="num_classes"):
        jl.class_counts(jnp.array([0, 1]), 0)
    with pytest.raises(ValueError, match="class axis last"):
        jl.class_counts(jnp.ones((4, 3)), 5)


# --- weighted_sample ---------------------------------------------------------------------------


def test_weighted_sample_frequencies_follow_the_weights():
    from scipy.stats import chi2

    w = np.array([1.0, 0.0, 3.0, 0.5, 5.5], np.float32)
    n = 40_000
    idx = np.asarray(jl.weighted_sample(jax.random.key(0), w, n))
    assert idx.dtype == np.int32 and idx.shape == (n,)
    counts = np.bincount(idx, minlength=5)
    assert counts[1] == 0  # a zero weight is never drawn
    p = w / w.sum()
    nz = p > 0
    stat = np.sum((counts[nz] - n * p[nz]) ** 2 / (n * p[nz]))
    assert stat < chi2.ppf(1 - 1e-6, df=nz.sum() - 1)  # fails by chance with p < 1e-6
    # Legacy keys and jit give the same draws as typed keys without jit.
    np.testing.assert_array_equal(
        jax.jit(jl.weighted_sample, static_argnums=(2, 3))(jax.random.PRNGKey(0), w, 64, True),
        jl.weighted_sample(jax.random.PRNGKey(0), w, 64),
    )


def test_weighted_sample_without_replacement_is_sequential_sampling():
    from scipy.stats import chi2

    w = np.array([2.0, 1.0, 0.0, 4.0, 1.0], np.float32)
    keys = jax.random.split(jax.random.key(1), 20_000)
    draws = np.asarray(jax.vmap(lambda k: jl.weighted_sample(k, w, 3, replace=False))(keys))
    assert all(len(set(row)) == 3 for row in draws[:500])  # distinct indices
    assert not np.any(draws == 2)  # three positive weights suffice: the zero one never comes
    # The first draw is categorical(w); the second, given the first i, is w without i.
    n = len(draws)
    p = w / w.sum()
    counts = np.bincount(draws[:, 0], minlength=5)
    nz = p > 0
    stat = np.sum((counts[nz] - n * p[nz]) ** 2 / (n * p[nz]))
    assert stat < chi2.ppf(1 - 1e-6, df=nz.sum() - 1)
    second_given_3 = draws[draws[:, 0] == 3, 1]
    q = np.where(np.arange(5) == 3, 0.0, w) / (w.sum() - w[3])
    counts = np.bincount(second_given_3, minlength=5)
    m = len(second_given_3)
    nz = q > 0
    stat = np.sum((counts[nz] - m * q[nz]) ** 2 / (m * q[nz]))
    assert stat < chi2.ppf(1 - 1e-6, df=nz.sum() - 1)
    with pytest.raises(ValueError, match="exceeds the 5 weights"):
        jl.weighted_sample(jax.random.key(0), w, 6, replace=False)
    with pytest.raises(ValueError, match="weights must be 1-D"):
        jl.weighted_sample(jax.random.key(0), np.ones((2, 2)), 3)
    with pytest.raises(ValueError, match="num_samples must be a non-negative Python int"):
        jl.weighted_sample(jax.random.key(0), w, 2.5)
    with pytest.raises(Exception, match="weights must be non-negative"):
        jl.checked(jl.weighted_sample)(jax.random.key(0), np.array([1.0, -1.0]), 2)


def test_sampled_batch_gradients_converge_to_the_weighted_loss_gradient():
    """E[mean gradient of a batch sampled ∝ w] = gradient of the w-weighted mean loss.

    The bound: the average over K batches of m draws has, per coordinate, the standard error
    σ/√(K·m) with σ² = Σ p_i (g_i − g*)² computed exactly; we allow 5 standard errors.
    """
    rng = np.random.default_rng(3)
    n, d = 200, 3
    x = jnp.asarray(rng.normal(size=(n, d)), jnp.float32)
    y = x @ jnp.array([1.0, -2.0, 0.5]) + jnp.asarray(rng.normal(size=n), jnp.float32)
    # Very uneven weights, heaviest on one region of the inputs: the weighted objective
    # differs from the plain one.
    w = (rng.gamma(0.5, size=n) * (1 + 20 * (np.asarray(x[:, 0]) > 0.8))).astype(np.float32)
    theta = np.zeros(d, np.float32)

    def per_example(t, xs, ys):
        return jl.squared_error(xs @ t, ys)

    target = jax.grad(
        lambda t: jl.reduce(per_example(t, x, y), weights=w, reduction="weighted_mean")
    )(theta)
    per_grads = np.asarray(
        jax.vmap(jax.grad(lambda t, xi, yi: per_example(t, xi, yi)), (None, 0, 0))(theta, x, y)
    )
    p = w / w.sum()
    sigma = np.sqrt(np.sum(p[:, None] * (per_grads - np.asarray(target)) ** 2, axis=0))

    k, m = 1600, 32

    def batch_gradient(key):
        idx = jl.weighted_sample(key, w, m)
        return jax.grad(lambda t: jnp.mean(per_example(t, x[idx], y[idx])))(theta)

    mean_grad = np.mean(jax.vmap(batch_gradient)(jax.random.split(jax.random.key(7), k)), axis=0)
    bound = 5 * sigma / np.sqrt(k * m)
    assert np.all(np.abs(mean_grad - np.asarray(target)) <= bound), (mean_grad, target, bound)
    # The unweighted batch mean is far from it: the test can tell the two apart.
    plain = np.asarray(jax.grad(lambda t: jnp.mean(per_example(t, x, y)))(theta))
    assert np.any(np.abs(plain - np.asarray(target)) > 3 * bound)
