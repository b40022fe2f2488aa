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
