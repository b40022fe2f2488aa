"""Segmentation losses vs optax, NumPy ports of MONAI / smp / Berman's formulas, and edges."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss as jl

from helpers import float64, numeric_grad

B, H, W, C = 2, 4, 5, 3


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_sums(p, t, w=None, per_image=True, squared=False):
    """I, P, T over the pixel axes of [B, ..., C] arrays (and the batch when not per_image)."""
    w = np.ones(p.shape[:-1]) if w is None else np.broadcast_to(w, p.shape[:-1])
    axes = tuple(range(1 if per_image else 0, p.ndim - 1))
    k = 2 if squared else 1
    wi = w[..., None]
    return ((wi * p * t).sum(axes), (wi * p**k).sum(axes), (wi * t**k).sum(axes))


def _data(rng, c=C):
    logits = rng.normal(size=(B, H, W, c)).astype(np.float32) * 2
    labels = rng.integers(0, c, size=(B, H, W))
    return logits, labels, np.eye(c, dtype=np.float32)[labels]


# ---------------------------------------------------------------------------------------------
# optax parity


def test_optax_dice_parity(rng):
    logits, _, onehot = _data(rng)
    cw = np.array([0.5, 1.0, 2.0], np.float32)
    cases = [
        {},
        {"alpha": 0.3, "beta": 0.7},
        {"class_weights": cw},
        {"ignore_background": True},
        {"reduction": "none"},
        {"reduction": "sum", "smooth": 0.1},
        {"axis": (0, 1, 2)},
        {"axis": (1,)},
        {"class_weights": cw, "ignore_background": True, "reduction": "none"},
    ]

    @jax.jit
    def values_and_grads(z):
        # One compilation for every case: values of all, gradients of a weighted total.
        ours = [jl.dice_loss(z, onehot, **kw) for kw in cases]
        theirs = [optax.losses.dice_loss(z, onehot, **kw) for kw in cases]
        g1 = jax.grad(
            lambda x: sum(
                jnp.sum(jl.dice_loss(x, onehot, **kw)) * (i + 1) for i, kw in enumerate(cases)
            )
        )(z)
        g2 = jax.grad(
            lambda x: sum(
                jnp.sum(optax.losses.dice_loss(x, onehot, **kw)) * (i + 1)
                for i, kw in enumerate(cases)
            )
        )(z)
        return ours, theirs, g1, g2

    ours, theirs, g1, g2 = values_and_grads(logits)
    for kw, a, b in zip(cases, ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, err_msg=str(kw))
    np.testing.assert_allclose(g1, g2, rtol=1e-4, atol=1e-6)
    probs = np_softmax(logits).astype(np.float32)
    np.testing.assert_allclose(
        jl.dice_loss(probs, onehot, apply_softmax=False),
        optax.losses.dice_loss(probs, onehot, apply_softmax=False),
        rtol=1e-5,
    )
    # Binary: one channel with sigmoid, and targets with one dimension less.
    bl = logits[..., :1]
    bt = onehot[..., 1]
    np.testing.assert_allclose(jl.dice_loss(bl, bt), optax.losses.dice_loss(bl, bt), rtol=1e-5)
    np.testing.assert_allclose(
        jl.binary_dice_loss(logits[..., 0], bt),
        optax.losses.binary_dice_loss(logits[..., 0], bt),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        jl.binary_dice_loss(bl, bt[..., None], smooth=0.5),
        optax.losses.binary_dice_loss(bl, bt[..., None], smooth=0.5),
        rtol=1e-5,
    )
    for kw in ({}, {"ignore_background": True, "smooth": 0.3}):
        np.testing.assert_allclose(
            jl.multiclass_generalized_dice_loss(logits, onehot, **kw),
            optax.losses.multiclass_generalized_dice_loss(logits, onehot, **kw),
            rtol=1e-5,
        )


def test_dice_loss_apply_softmax_false_under_jit(rng):
    logits, _, onehot = _data(rng)
    probs = jax.nn.softmax(logits)
    f = jax.jit(lambda p, t: jl.dice_loss(p, t, apply_softmax=False))
    np.testing.assert_allclose(f(probs, onehot), jl.dice_loss(logits, onehot), rtol=1e-5)
    g = jax.jit(lambda p, t: jl.binary_dice_loss(p, t, apply_sigmoid=False))
    bp = jax.nn.sigmoid(logits[..., 0])
    np.testing.assert_allclose(
        g(bp, onehot[..., 0]), jl.binary_dice_loss(logits[..., 0], onehot[..., 0]), rtol=1e-5
    )
    h = jax.jit(lambda p, t: jl.multiclass_generalized_dice_loss(p, t, apply_softmax=False))
    np.testing.assert_allclose(
        h(probs, onehot), jl.multiclass_generalized_dice_loss(logits, onehot), rtol=1e-5
    )
    # The probability check runs under jaxloss.checked.
    with pytest.raises(Exception, match="sum to 1"):
        jl.checked(jl.dice_loss)(probs * 0.5, onehot, apply_softmax=False)
    jl.checked(jl.dice_loss)(probs, onehot, apply_softmax=False)


def test_dice_loss_pixel_weights_and_where(rng):
    logits, _, onehot = _data(rng)
    w = rng.uniform(0, 2, size=(B, H, W)).astype(np.float32)
    where = rng.random((B, H, W)) > 0.3
    p = np_softmax(logits.astype(np.float64))
    ww = w * where
    i, ps, ts = np_sums(p, onehot, ww)
    ref = np.mean(1 - (i + 1) / (0.5 * ps + 0.5 * ts + 1), axis=-1)
    np.testing.assert_allclose(jl.dice_loss(logits, onehot, weights=w, where=where), ref, rtol=1e-5)
    # where=False pixels are inert: NaN logits there change nothing.
    bad = np.where(where[..., None], logits, np.nan)
    np.testing.assert_allclose(
        jl.dice_loss(bad, onehot, where=where), jl.dice_loss(logits, onehot, where=where), rtol=1e-6
    )
    g = jax.grad(lambda z: jl.dice_loss(z, onehot, where=where).sum())(bad)
    assert np.all(np.isfinite(g)) and np.all(np.asarray(g)[~where] == 0)


# ---------------------------------------------------------------------------------------------
# Soft Dice / Tversky / Jaccard with the contract


def test_soft_dice_matches_monai_formula(rng):
    logits, labels, onehot = _data(rng)
    p = np_softmax(logits.astype(np.float64))
    for per_image in (True, False):
        for squared in (False, True):
            i, ps, ts = np_sums(p, onehot, per_image=per_image, squared=squared)
            ref = 1 - (2 * i + 1e-5) / (ps + ts + 1e-5)
            out = jl.soft_dice_loss(
                logits, labels, per_image=per_image, squared_denominator=squared, reduction="none"
            )
            np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(
                jl.soft_dice_loss(logits, onehot, per_image=per_image, squared_denominator=squared),
                ref.mean(),
                rtol=1e-5,
            )
    i, ps, ts = np_sums(p, onehot)
    per = 1 - (2 * i + 1e-5) / (ps + ts + 1e-5)
    # include_background=False: MONAI slices class 0 off, then means.
    np.testing.assert_allclose(
        jl.soft_dice_loss(logits, labels, include_background=False), per[:, 1:].mean(), rtol=1e-5
    )
    # class weights: weighted per-class losses; weighted_mean divides by Σ w.
    cw = np.array([0.2, 1.0, 3.0])
    np.testing.assert_allclose(
        jl.soft_dice_loss(logits, labels, class_weights=cw), (per * cw).mean(), rtol=1e-5
    )
    np.testing.assert_allclose(
        jl.soft_dice_loss(logits, labels, class_weights=cw, reduction="weighted_mean"),
        (per * cw).sum() / (B * cw.sum()),
        rtol=1e-5,
    )
    # log_loss (smp): -log(coefficient)
    np.testing.assert_allclose(
        jl.soft_dice_loss(logits, labels, log_loss=True, reduction="none"),
        -np.log(1 - per),
        rtol=1e-5,
    )
    # channels-first input with axis=1
    np.testing.assert_allclose(
        jl.soft_dice_loss(np.moveaxis(logits, -1, 1), labels, axis=1, reduction="none"),
        per,
        rtol=1e-5,
    )


def test_soft_dice_pixel_weights_where_and_ignore_index(rng):
    logits, labels, onehot = _data(rng)
    p = np_softmax(logits.astype(np.float64))
    w = rng.uniform(0.5, 2.0, size=(B, H, W))
    ignore = rng.random((B, H, W)) < 0.3
    lab = np.where(ignore, 255, labels)
    i, ps, ts = np_sums(p, onehot, w * ~ignore)
    ref = 1 - (2 * i + 1e-5) / (ps + ts + 1e-5)
    out = jl.soft_dice_loss(logits, lab, ignore_index=255, weights=w, reduction="none")
    np.testing.assert_allclose(out, ref, rtol=1e-5)
    out2 = jl.soft_dice_loss(logits, labels, where=~ignore, weights=w, reduction="none")
    np.testing.assert_allclose(out2, ref, rtol=1e-5)
    # An image with no labeled pixel is left out of the mean.
    lab2 = lab.copy()
    lab2[1] = 255
    i, ps, ts = np_sums(p[:1], onehot[:1], (~ignore)[:1])
    np.testing.assert_allclose(
        jl.soft_dice_loss(logits, lab2, ignore_index=255),
        np.mean(1 - (2 * i + 1e-5) / (ps + ts + 1e-5)),
        rtol=1e-5,
    )
    # "sum per image, then mean over the batch" with a [B, H, W] weight map is one call.
    per_pixel = jl.softmax_cross_entropy_with_integer_labels(logits, labels, weights=w)
    np.testing.assert_allclose(
        jl.reduce(per_pixel, sum_axes=(1, 2), reduction="mean"),
        np.asarray(per_pixel).sum((1, 2)).mean(),
        rtol=1e-5,
    )


def test_empty_target_edges():
    # An empty prediction on an empty target: loss 0, for any smoothing, with finite gradient.
    zeros = jnp.zeros((1, 4, 4, 1))
    empty = jnp.zeros((1, 4, 4), jnp.int32)
    fns = (jl.soft_dice_loss, jl.jaccard_loss, jl.tversky_loss, jl.focal_tversky_loss)

    @jax.jit
    def run(z):
        return [
            jax.value_and_grad(lambda x, fn=fn, s=s: fn(x, empty, from_logits=False, smooth=s))(z)
            for s in (0.0, 1.0)
            for fn in fns
        ]

    for val, g in run(zeros):
        assert val == 0.0
        assert np.all(np.isfinite(g))
    # From logits: a confident empty prediction on an empty target is ≈ 0, gradients finite.
    val, g = jax.value_and_grad(lambda z: jl.soft_dice_loss(z, empty))(
        jnp.full((1, 4, 4, 1), -30.0)
    )
    assert val < 1e-3 and np.all(np.isfinite(g))
    # A non-empty prediction on an empty target is penalised (≈ 1).
    assert jl.soft_dice_loss(jnp.full((1, 4, 4, 1), 0.5), empty, from_logits=False) > 0.99
    # optax's smooth=0 gives 0/0 = NaN here; ours is a perfect match.
    assert (
        jl.dice_loss(jnp.zeros((1, 4, 1)), jnp.zeros((1, 4, 1)), apply_softmax=False, smooth=0.0)
        == 0.0
    )
    # Multi-class: a class absent from image 0's target and prediction contributes 0.
    probs = jnp.zeros((1, 2, 2, 3)).at[..., 0].set(1.0)
    out = jl.soft_dice_loss(
        probs, jnp.zeros((1, 2, 2), jnp.int32), from_logits=False, smooth=0.0, reduction="none"
    )
    np.testing.assert_allclose(out, [[0.0, 0.0, 0.0]])


def test_smp_conventions_zero_empty_targets_literal():
    # smp DiceLoss("multiclass", from_logits=False, smooth=0): batch-global, classes absent
    # from the target give 0 but count in the mean. Probabilities for 2 pixels, 3 classes,
    # targets [0, 0]: class 0: I = 0.7 + 0.6 = 1.3, P = 1.3, T = 2 -> 1 - 2.6/3.3;
    # classes 1, 2 absent -> 0. Mean over 3 classes.
    probs = jnp.array([[[0.7, 0.2, 0.1], [0.6, 0.1, 0.3]]])
    labels = jnp.array([[0, 0]])
    expected = (1 - 2.6 / 3.3) / 3
    np.testing.assert_allclose(
        jl.soft_dice_loss(
            probs, labels, from_logits=False, smooth=0.0, per_image=False, zero_empty_targets=True
        ),
        expected,
        rtol=1e-6,
    )
    # smp JaccardLoss: I / (P + T - I) = 1.3 / 2
    np.testing.assert_allclose(
        jl.jaccard_loss(
            probs, labels, from_logits=False, smooth=0.0, per_image=False, zero_empty_targets=True
        ),
        (1 - 1.3 / 2.0) / 3,
        rtol=1e-6,
    )


def test_tversky_focal_tversky_jaccard_formulas(rng):
    logits, labels, onehot = _data(rng)
    p = np_softmax(logits.astype(np.float64))
    i, ps, ts = np_sums(p, onehot)
    s = 1e-5
    for a, b in ((0.3, 0.7), (0.5, 0.5), (1.0, 1.0)):
        ti = (i + s) / (i + a * (ps - i) + b * (ts - i) + s)
        np.testing.assert_allclose(
            jl.tversky_loss(logits, labels, alpha=a, beta=b, reduction="none"), 1 - ti, rtol=1e-5
        )
        for g in (0.75, 1.0, 2.0):
            np.testing.assert_allclose(
                jl.focal_tversky_loss(logits, labels, alpha=a, beta=b, gamma=g, reduction="none"),
                (1 - ti) ** g,
                rtol=1e-5,
            )
    jac = 1 - (i + s) / (ps + ts - i + s)
    np.testing.assert_allclose(jl.jaccard_loss(logits, labels, reduction="none"), jac, rtol=1e-5)
    # α = β = 1 is Jaccard; α = β = ½ is Dice with doubled smoothing.
    np.testing.assert_allclose(
        jl.tversky_loss(logits, labels, alpha=1.0, beta=1.0),
        jl.jaccard_loss(logits, labels),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        jl.tversky_loss(logits, labels, smooth=0.5),
        jl.soft_dice_loss(logits, labels, smooth=1.0),
        rtol=1e-5,
    )
    # Focal Tversky's gradient at a perfect match (x^0.75 has infinite slope at 0) is finite.
    perfect = jnp.asarray(onehot)
    g = jax.grad(lambda z: jl.focal_tversky_loss(z, labels, from_logits=False, smooth=0.0))(perfect)
    assert np.all(np.isfinite(g))


def test_gradients_match_finite_differences(rng):
    logits = rng.normal(size=(2, 3, 2, 3))
    labels = rng.integers(0, 3, size=(2, 3, 2))
    onehot = np.eye(3)[labels]
    w = rng.uniform(0.5, 2, size=(2, 3, 2))

    def np_loss(kind, x):
        p = np_softmax(x)
        i, ps, ts = np_sums(p, onehot, w)
        s = 1e-2
        if kind == "dice":
            return np.mean(1 - (2 * i + s) / (ps + ts + s))
        if kind == "tversky":
            return np.mean((1 - (i + s) / (i + 0.3 * (ps - i) + 0.7 * (ts - i) + s)) ** 0.75)
        return np.mean(1 - (i + s) / (ps + ts - i + s))

    fns = {
        "dice": lambda z: jl.soft_dice_loss(z, labels, weights=w, smooth=1e-2),
        "tversky": lambda z: jl.focal_tversky_loss(z, labels, weights=w, smooth=1e-2),
        "jaccard": lambda z: jl.jaccard_loss(z, labels, weights=w, smooth=1e-2),
    }
    with float64():
        for kind, fn in fns.items():
            g = jax.grad(fn)(jnp.asarray(logits))
            num = numeric_grad(lambda z, kind=kind: np_loss(kind, z), logits)
            np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8, err_msg=kind)


# ---------------------------------------------------------------------------------------------
# Lovász hinge


def np_lovasz_flat(logits, labels):
    """Port of Berman et al.'s reference lovasz_hinge_flat (NumPy)."""
    if len(labels) == 0:
        return 0.0
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    perm = np.argsort(-errors, kind="stable")
    errors_sorted = errors[perm]
    gt_sorted = labels[perm]
    gts = gt_sorted.sum()
    intersection = gts - np.cumsum(gt_sorted)
    union = gts + np.cumsum(1.0 - gt_sorted)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return float(np.dot(np.maximum(errors_sorted, 0), jaccard))


def test_lovasz_hinge_matches_reference_port(rng):
    logits = rng.normal(size=(3, 5, 4))
    labels = (rng.random((3, 5, 4)) > 0.6).astype(np.int32)
    labels[2] = 0  # an image with no foreground
    lab = np.where(rng.random((3, 5, 4)) < 0.25, 255, labels)
    where = np.ones((3, 5, 4), bool)
    where[1] = False

    @jax.jit
    def run(x):
        return (
            jl.lovasz_hinge_loss(x, labels, reduction="none"),
            jl.lovasz_hinge_loss(x, labels),
            jl.lovasz_hinge_loss(x, labels, per_image=False),
            jl.lovasz_hinge_loss(x, lab, ignore_index=255, reduction="none"),
            jl.lovasz_hinge_loss(
                x, labels, where=where, weights=np.array([1.0, 5.0, 3.0]), reduction="weighted_mean"
            ),
        )

    per, mean, batch, ignored, weighted = run(logits.astype(np.float32))
    ref = [np_lovasz_flat(logits[b].ravel(), labels[b].ravel().astype(float)) for b in range(3)]
    np.testing.assert_allclose(per, ref, rtol=1e-5)
    np.testing.assert_allclose(mean, np.mean(ref), rtol=1e-5)
    np.testing.assert_allclose(
        batch, np_lovasz_flat(logits.ravel(), labels.ravel().astype(float)), rtol=1e-5
    )
    # Per-image weights and a fully excluded image (left out of the mean).
    np.testing.assert_allclose(weighted, (ref[0] + 3 * ref[2]) / 4, rtol=1e-5)
    # ignore_index (Berman's `ignore`): ignored pixels are dropped from the image.
    ref = [
        np_lovasz_flat(logits[b][lab[b] != 255], lab[b][lab[b] != 255].astype(float))
        for b in range(3)
    ]
    np.testing.assert_allclose(ignored, ref, rtol=1e-5)
    with float64():
        g = jax.grad(lambda z: jl.lovasz_hinge_loss(z, labels))(jnp.asarray(logits))
        num = numeric_grad(
            lambda z: np.mean(
                [np_lovasz_flat(z[b].ravel(), labels[b].ravel().astype(float)) for b in range(3)]
            ),
            logits,
        )
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------------------------------------
# Combinations


def test_dice_bce_and_dice_ce_equal_their_pieces(rng):
    logits, labels, onehot = _data(rng)
    w = rng.uniform(0.5, 2.0, size=(B, H, W)).astype(np.float32)
    where = rng.random((B, H, W)) > 0.2
    bl = logits[..., :1]
    bt = (labels > 0).astype(np.float32)
    for red in ("mean", "sum", "weighted_mean"):
        dice = jl.soft_dice_loss(
            jax.nn.sigmoid(bl),
            bt[..., None],
            from_logits=False,
            weights=w,
            where=where,
            reduction=red,
        )
        bce = jl.sigmoid_binary_cross_entropy(
            bl, bt[..., None], weights=w[..., None], where=where[..., None], reduction=red
        )
        np.testing.assert_allclose(
            jl.dice_bce_loss(bl, bt, dice_weight=0.3, weights=w, where=where, reduction=red),
            0.3 * dice + 0.7 * bce,
            rtol=1e-5,
        )
    # Hand value for dice_bce_loss, λ = ½: dice on σ(±3) and BCE log(1 + e^-3).
    x = np.array([3.0, -3.0, -3.0, 3.0])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    s = 1 / (1 + np.exp(-x))
    dice = 1 - (2 * (s * y).sum() + 1e-5) / (s.sum() + y.sum() + 1e-5)
    np.testing.assert_allclose(
        jl.dice_bce_loss(x[None, :, None], y[None]),
        0.5 * dice + 0.5 * np.log1p(np.exp(-3.0)),
        rtol=1e-5,
    )
    cw = np.array([0.5, 1.0, 2.0], np.float32)
    lab = np.where(rng.random((B, H, W)) < 0.2, -1, labels)
    for red in ("mean", "weighted_mean"):
        dice = jl.soft_dice_loss(
            logits,
            lab,
            class_weights=cw,
            ignore_index=-1,
            weights=w,
            include_background=False,
            reduction=red,
        )
        ce = jl.softmax_cross_entropy_with_integer_labels(
            logits, lab, class_weights=cw, ignore_index=-1, weights=w, reduction=red
        )
        np.testing.assert_allclose(
            jl.dice_ce_loss(
                logits,
                lab,
                class_weights=cw,
                ignore_index=-1,
                weights=w,
                include_background=False,
                reduction=red,
            ),
            0.5 * dice + 0.5 * ce,
            rtol=1e-5,
        )
    # One-hot labels give the same as integer labels.
    np.testing.assert_allclose(
        jl.dice_ce_loss(logits, onehot, dice_weight=0.8),
        jl.dice_ce_loss(logits, labels, dice_weight=0.8),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="reduction='none' is not available"):
        jl.dice_ce_loss(logits, labels, reduction="none")
    with pytest.raises(ValueError, match="at least 2 classes"):
        jl.dice_ce_loss(bl, labels)


# ---------------------------------------------------------------------------------------------
# Labels, jit, errors


def test_out_of_range_labels_nan_the_image_and_checked_raises(rng):
    logits, labels, _ = _data(rng)
    bad = labels.copy()
    bad[1, 0, 0] = 7
    out = jl.soft_dice_loss(logits, bad, reduction="none")
    assert np.all(np.isfinite(out[0])) and np.all(np.isnan(out[1]))
    with pytest.raises(Exception, match="out-of-range"):
        jl.checked(jl.soft_dice_loss)(logits, bad)
    # One channel: integer labels must be 0/1.
    out = jl.soft_dice_loss(logits[..., :1], np.minimum(bad, 1) + (bad == 7) * 5, reduction="none")
    assert np.isnan(out[1, 0]) and np.isfinite(out[0, 0])


def test_every_function_under_jit_and_grad(rng):
    logits, labels, onehot = _data(rng)
    bl = logits[..., 0]
    bt = (labels > 0).astype(np.int32)

    def all_losses(x, xb):
        return {
            "dice_loss": jl.dice_loss(x, onehot),
            "dice_loss_probs": jl.dice_loss(jax.nn.softmax(x), onehot, apply_softmax=False),
            "binary_dice_loss": jl.binary_dice_loss(xb, bt.astype(np.float32)),
            "generalized": jl.multiclass_generalized_dice_loss(x, onehot),
            "soft_dice_loss": jl.soft_dice_loss(x, labels),
            "tversky_loss": jl.tversky_loss(x, labels),
            "focal_tversky_loss": jl.focal_tversky_loss(x, labels),
            "jaccard_loss": jl.jaccard_loss(x, labels),
            "lovasz_hinge_loss": jl.lovasz_hinge_loss(xb, bt),
            "dice_bce_loss": jl.dice_bce_loss(xb[..., None], bt),
            "dice_ce_loss": jl.dice_ce_loss(x, labels),
        }

    def total(x, xb):
        values = all_losses(x, xb)
        return sum(jnp.sum(v) for v in values.values()), values

    # One compilation: every loss's value and the gradient of their sum.
    (_, jitted), grads = jax.jit(jax.value_and_grad(total, argnums=(0, 1), has_aux=True))(
        logits, bl
    )
    # Eager values are checked against references above; compare with jit here.
    np.testing.assert_allclose(jitted["dice_loss_probs"], jl.dice_loss(logits, onehot), rtol=1e-5)
    np.testing.assert_allclose(
        jitted["soft_dice_loss"], jl.soft_dice_loss(logits, labels), rtol=1e-5
    )
    assert all(np.isfinite(v).all() for v in jitted.values())
    assert all(np.all(np.isfinite(g)) for g in grads)
    # vmap over images of the per-image losses equals the batched call.
    per = jax.vmap(lambda x, y: jl.soft_dice_loss(x[None], y[None], reduction="none")[0])(
        logits, labels
    )
    np.testing.assert_allclose(per, jl.soft_dice_loss(logits, labels, reduction="none"), rtol=1e-5)


def test_errors(rng):
    logits, labels, onehot = _data(rng)
    with pytest.raises(ValueError, match="targets has shape"):
        jl.dice_loss(logits, onehot[..., :2])
    with pytest.raises(ValueError, match="reduces across classes"):
        jl.dice_loss(logits, onehot, reduction="weighted_mean")
    with pytest.raises(ValueError, match="integer labels"):
        jl.soft_dice_loss(logits, labels[:, :2])
    with pytest.raises(ValueError, match="ignore_index needs integer"):
        jl.soft_dice_loss(logits, onehot, ignore_index=0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        jl.tversky_loss(logits, labels, reduction="avg")
    with pytest.raises(ValueError, match="weights has shape"):
        jl.soft_dice_loss(logits, labels, weights=np.ones((B, H, 7)))
    with pytest.raises(ValueError, match="labels has shape"):
        jl.lovasz_hinge_loss(logits[..., 0], labels[:, :2])
    with pytest.raises(ValueError, match="includes the class axis"):
        jl.dice_loss(logits, onehot, axis=(1, 3))
    with pytest.raises(ValueError, match="class_weights has shape"):
        jl.dice_loss(logits, onehot, class_weights=np.ones(2))


def test_16_bit_inputs_accumulate_in_float32(rng):
    logits, labels, onehot = _data(rng)
    x16 = jnp.asarray(logits, jnp.bfloat16)
    for out in (
        jl.soft_dice_loss(x16, labels),
        jl.dice_loss(x16, onehot),
        jl.lovasz_hinge_loss(x16[..., 0], (labels > 0).astype(np.int32)),
        jl.dice_ce_loss(x16, labels),
    ):
        assert out.dtype == jnp.float32
    np.testing.assert_allclose(
        jl.soft_dice_loss(x16, labels),
        jl.soft_dice_loss(np.asarray(x16, np.float32), labels),
        rtol=1e-6,
    )
    g = jax.grad(lambda z: jl.soft_dice_loss(z, labels))(x16)
    assert g.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(g, np.float32)))


@pytest.mark.parametrize(("alpha", "beta"), [(0.5, 0.5), (0.3, 0.3), (0.3, 0.7)])
def test_dice_loss_tversky_form_matches_numpy_on_both_paths(alpha, beta, rng):
    """α = β as Python numbers sums P + T once; any other α, β (or traced ones) sums P and T
    apart. Both give the formula, computed here in float64 NumPy, with pixel weights."""
    x = rng.normal(size=(2, 6, 5, 3)).astype(np.float32)
    t = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (2, 6, 5))]
    w = rng.uniform(0.0, 2.0, (2, 6, 5)).astype(np.float32)
    p = np.exp(x - x.max(-1, keepdims=True)).astype(np.float64)
    p /= p.sum(-1, keepdims=True)
    wd = w.astype(np.float64)[..., None]
    inter, psum, tsum = [np.sum(wd * a, axis=(1, 2)) for a in (p * t, p, t)]
    coeff = (inter + 1.0) / (inter + alpha * (psum - inter) + beta * (tsum - inter) + 1.0)
    expected = np.mean(1.0 - coeff, axis=-1)
    static = jl.dice_loss(x, t, alpha=alpha, beta=beta, weights=w)
    traced = jax.jit(lambda a, b: jl.dice_loss(x, t, alpha=a, beta=b, weights=w))(alpha, beta)
    np.testing.assert_allclose(static, expected, rtol=1e-5)
    np.testing.assert_allclose(traced, expected, rtol=1e-5)


@pytest.mark.parametrize(
    "loss", [jl.soft_dice_loss, jl.jaccard_loss, jl.tversky_loss, jl.focal_tversky_loss]
)
def test_batch_global_region_losses_are_global_over_axis_name(loss):
    """With ``per_image=False`` the overlap sums are the whole batch's on every shard."""
    rng = np.random.default_rng(21)
    logits = rng.normal(size=(4, 5, 5, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=(4, 5, 5))
    labels[3, :, :] = 255  # one image with no included pixel
    kw = dict(per_image=False, ignore_index=255)
    for reduction in ("mean", "sum", "weighted_mean"):
        full = loss(logits, labels, reduction=reduction, **kw)
        sharded = jax.vmap(
            lambda x, y, r=reduction: loss(x, y, reduction=r, axis_name="shards", **kw),
            axis_name="shards",
        )(logits.reshape(2, 2, 5, 5, 3), labels.reshape(2, 2, 5, 5))
        np.testing.assert_allclose(sharded, [full, full], rtol=1e-5, err_msg=reduction)
