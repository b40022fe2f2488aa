"""Generalised Dice, generalised Wasserstein Dice, Lovász-softmax and the Dice-family options
(split smoothing, soft labels, Tversky's smp options, focal Tversky's exponent placement,
Dice + CE with MONAI's class weighting), against NumPy ports of the libraries' definitions
(MONAI 1.x ``monai/losses/dice.py``, ``monai/losses/utils.py``; segmentation_models_pytorch 0.6
``losses/_functional.py`` and ``dice.py``; Berman et al.'s ``lovasz_losses.py``), hand values,
and float64 finite differences."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss as jl

from helpers import float64, numeric_grad

B, H, W, C = 2, 4, 5, 3


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _data(rng, b=B, h=H, w=W, c=C):
    logits = (rng.normal(size=(b, h, w, c)) * 2).astype(np.float32)
    labels = rng.integers(0, c, size=(b, h, w))
    return logits, labels, np.eye(c)[labels]


# ---------------------------------------------------------------------------------------------
# NumPy references


def np_sums(p, t, w=None, per_image=True, soft=False):
    """I, P, T over the pixel axes of [B, ..., C] arrays (MONAI's compute_tp_fp_fn, ord 1)."""
    w = np.ones(p.shape[:-1]) if w is None else np.broadcast_to(w, p.shape[:-1])
    axes = tuple(range(1 if per_image else 0, p.ndim - 1))
    wi = w[..., None]
    ps, ts = (wi * p).sum(axes), (wi * t).sum(axes)
    if soft:  # Wang et al.: tp = (|p|_1 + |t|_1 - |p - t|_1) / 2
        inter = 0.5 * (ps + ts - (wi * np.abs(p - t)).sum(axes))
    else:
        inter = (wi * p * t).sum(axes)
    return inter, ps, ts


def np_monai_gdl(p, t, w_type="square", batch=False, include_background=True, nr=1e-5, dr=1e-5,
                 soft=False, w=None):  # fmt: skip
    """MONAI's GeneralizedDiceLoss.forward (reduction='none'), channels last."""
    if not include_background:
        p, t = p[..., 1:], t[..., 1:]
    inter, pred_o, ground_o = np_sums(p, t, w, per_image=not batch, soft=soft)
    with np.errstate(divide="ignore"):
        if w_type == "simple":
            omega = 1.0 / ground_o
        elif w_type == "square":
            omega = 1.0 / (ground_o * ground_o)
        else:
            omega = np.ones_like(ground_o)
    infs = np.isinf(omega)
    omega[infs] = 0.0
    omega = omega + infs * omega.max(-1, keepdims=True)
    f = 1.0 - (2.0 * (inter * omega).sum(-1) + nr) / (((pred_o + ground_o) * omega).sum(-1) + dr)
    return np.atleast_1d(f)


def np_monai_gwdl(p, labels, m, mode="default", nr=1e-5, dr=1e-5):
    """MONAI's GeneralizedWassersteinDiceLoss.forward (reduction='none'); p [B, N, C]."""
    m = m / m.max() if m.max() != 1 else m
    out = []
    for b in range(p.shape[0]):
        y = labels[b]
        wass = np.array([m[y[i]] @ p[b, i] for i in range(len(y))])
        if mode == "GDL":
            volumes = np.array([(y == c).sum() for c in range(m.shape[0])])
            alpha = 1.0 / (volumes + 1.0)
        else:
            alpha = np.ones(m.shape[0])
            alpha[0] = 0.0
        a = alpha[y]
        tp = np.sum(a * (1.0 - wass))
        denom = np.sum(a * (2.0 - wass)) if mode == "GDL" else 2 * tp + wass.sum()
        out.append(1.0 - (2.0 * tp + nr) / (denom + dr))
    return np.array(out)


def np_lovasz_grad(gt_sorted):
    gts = gt_sorted.sum()
    intersection = gts - np.cumsum(gt_sorted)
    union = gts + np.cumsum(1.0 - gt_sorted)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def np_lovasz_softmax_flat(probas, labels, classes):
    """Berman et al.'s lovasz_softmax_flat on [P, C] probabilities."""
    losses = []
    for c in range(probas.shape[1]):
        fg = (labels == c).astype(float)
        if classes == "present" and fg.sum() == 0:
            continue
        errors = np.abs(fg - probas[:, c])
        perm = np.argsort(-errors, kind="stable")
        losses.append(errors[perm] @ np_lovasz_grad(fg[perm]))
    return np.mean(losses) if losses else 0.0


def np_lovasz_softmax(probas, labels, classes="present", per_image=False, ignore=None):
    """Berman et al.'s lovasz_softmax (flatten_probas drops ignored pixels); images with no
    pixel left are skipped (jaxloss's convention; Berman's code has no value for them)."""
    c = probas.shape[-1]

    def flat(p, lab):
        p, lab = p.reshape(-1, c), lab.reshape(-1)
        keep = np.ones(lab.shape, bool) if ignore is None else lab != ignore
        return p[keep], lab[keep]

    if per_image:
        images = [flat(p, lab) for p, lab in zip(probas, labels, strict=True)]
        return np.array([np_lovasz_softmax_flat(*im, classes) for im in images if im[1].size])
    return np.array([np_lovasz_softmax_flat(*flat(probas, labels), classes)])


def np_smp_tversky(p, t, alpha, beta, smooth=0.0, eps=1e-7, log_loss=False, gamma=1.0):
    """smp ≥ 0.4 TverskyLoss / DiceLoss (α = β = ½) forward, dims=(0, 2), channels last."""
    inter, ps, ts = np_sums(p, t, per_image=False, soft=True)
    fp, fn = ps - inter, ts - inter
    score = (inter + smooth) / np.maximum(inter + alpha * fp + beta * fn + smooth, eps)
    loss = -np.log(np.maximum(score, eps)) if log_loss else 1.0 - score
    loss = loss * (ts > 0)
    return loss.mean() ** gamma


# ---------------------------------------------------------------------------------------------
# Generalised Dice


def test_generalized_dice_matches_monai_formula(rng):
    logits, labels, onehot = _data(rng)
    labels[1] = np.where(labels[1] == 2, 0, labels[1])  # class 2 absent from image 1
    onehot = np.eye(C)[labels]
    soft = rng.dirichlet(np.ones(C), size=(B, H, W))
    w = rng.uniform(0.5, 2.0, size=(B, H, W))
    cases = [
        ({"w_type": wt, "per_image": pi}, {"w_type": wt, "batch": not pi})
        for wt in ("square", "simple", "uniform")
        for pi in (True, False)
    ] + [
        ({"include_background": False}, {"include_background": False}),
        ({"smooth_nr": 0.0, "smooth_dr": 1e-3}, {"nr": 0.0, "dr": 1e-3}),
        ({"weights": w}, {"w": w}),
    ]

    @jax.jit
    def run(x):
        return [jl.generalized_dice_loss(x, labels, reduction="none", **kw) for kw, _ in cases]

    p = np_softmax(logits.astype(np.float64))
    for out, (kw, ref_kw) in zip(run(logits), cases, strict=True):
        np.testing.assert_allclose(out, np_monai_gdl(p, onehot, **ref_kw), rtol=2e-5, err_msg=kw)
    # One-hot targets give the integer-label values; the mean is over images.
    np.testing.assert_allclose(
        jl.generalized_dice_loss(logits, onehot.astype(np.float32)),
        np_monai_gdl(p, onehot).mean(),
        rtol=2e-5,
    )
    # Soft targets: the product form by default, Wang et al.'s semimetric with soft_label.
    for soft_label in (False, True):
        np.testing.assert_allclose(
            jl.generalized_dice_loss(
                p, soft, from_logits=False, soft_label=soft_label, reduction="none"
            ),
            np_monai_gdl(p, soft, soft=soft_label),
            rtol=1e-5,
        )


def test_generalized_dice_hand_values_and_edges():
    # 2 pixels, 3 classes, labels (0, 1): T = (1, 1, 0), ω = (1, 1, max = 1) (square),
    # I = (0.7, 0.5, 0), P + T = (1.8, 1.6, 0.6): 1 - 2.4 / 4.0.
    probs = jnp.array([[[0.7, 0.1, 0.2], [0.1, 0.5, 0.4]]])
    labels = jnp.array([[0, 1]])
    np.testing.assert_allclose(
        jl.generalized_dice_loss(probs, labels, from_logits=False, smooth=0.0), 0.4, rtol=1e-6
    )
    # Every class absent (all pixels ignored but one image kept): that image is out of the mean.
    lab = jnp.array([[0, 1], [-1, -1]])
    two = jnp.concatenate([probs, probs])
    np.testing.assert_allclose(
        jl.generalized_dice_loss(two, lab, from_logits=False, smooth=0.0, ignore_index=-1),
        0.4,
        rtol=1e-6,
    )
    # Perfect prediction: loss ~0, finite gradient even with an absent class.
    g = jax.grad(lambda z: jl.generalized_dice_loss(z, labels, smooth=0.0))(
        30.0 * jnp.eye(3)[labels]
    )
    assert np.all(np.isfinite(g))
    # Out-of-range labels NaN their image.
    out = jl.generalized_dice_loss(two, jnp.array([[0, 1], [0, 5]]), reduction="none")
    assert np.isfinite(out[0]) and np.isnan(out[1])


# ---------------------------------------------------------------------------------------------
# Generalised Wasserstein Dice


def test_generalized_wasserstein_dice_matches_monai_formula(rng):
    logits, labels, _ = _data(rng)
    m = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [1.0, 0.5, 0.0]])
    m2 = 3.0 * m  # MONAI divides by the largest distance
    p = np_softmax(logits.astype(np.float64)).reshape(B, -1, C)
    flat = labels.reshape(B, -1)

    @jax.jit
    def run(x):
        return [
            jl.generalized_wasserstein_dice_loss(x, labels, m, reduction="none"),
            jl.generalized_wasserstein_dice_loss(x, labels, m2, reduction="none"),
            jl.generalized_wasserstein_dice_loss(x, labels, m, weighting_mode="GDL"),
            jl.generalized_wasserstein_dice_loss(x, labels, m, per_image=False, reduction="none"),
        ]

    default, scaled, gdl, batch = run(logits)
    np.testing.assert_allclose(default, np_monai_gwdl(p, flat, m), rtol=1e-5)
    np.testing.assert_allclose(scaled, default, rtol=1e-6)
    np.testing.assert_allclose(gdl, np_monai_gwdl(p, flat, m, "GDL").mean(), rtol=1e-5)
    np.testing.assert_allclose(
        batch, np_monai_gwdl(p.reshape(1, -1, C), flat.reshape(1, -1), m), rtol=1e-5
    )
    # ignore_index / where leave pixels out of every sum (= the reference on the kept pixels).
    keep = rng.random((B, H, W)) > 0.3
    lab = np.where(keep, labels, 255)
    out = jl.generalized_wasserstein_dice_loss(
        logits, lab, m, ignore_index=255, weighting_mode="GDL", reduction="none"
    )
    ref = [
        np_monai_gwdl(p[b][keep[b].ravel()][None], flat[b][keep[b].ravel()][None], m, "GDL")[0]
        for b in range(B)
    ]
    np.testing.assert_allclose(out, ref, rtol=1e-5)
    np.testing.assert_allclose(
        jl.generalized_wasserstein_dice_loss(logits, labels, m, where=keep, reduction="none"),
        [
            np_monai_gwdl(p[b][keep[b].ravel()][None], flat[b][keep[b].ravel()][None], m)[0]
            for b in range(B)
        ],
        rtol=1e-5,
    )


# ---------------------------------------------------------------------------------------------
# Lovász-softmax


def test_lovasz_softmax_matches_berman_reference(rng):
    logits, labels, _ = _data(rng, b=3)
    lab = np.where(rng.random(labels.shape) < 0.25, 255, labels)
    lab[2] = 255  # an image with no labeled pixel
    labels[1] = np.where(labels[1] == 1, 0, labels[1])  # class 1 absent from image 1
    cases = [{"classes": cl, "per_image": pi} for cl in ("present", "all") for pi in (False, True)]

    @jax.jit
    def run(x):
        plain = [jl.lovasz_softmax_loss(x, labels, reduction="none", **kw) for kw in cases]
        ignored = [
            jl.lovasz_softmax_loss(x, lab, ignore_index=255, reduction="none", **kw) for kw in cases
        ]
        return plain, ignored

    p = np_softmax(logits.astype(np.float64))
    plain, ignored = run(logits)
    for kw, out, out_ignored in zip(cases, plain, ignored, strict=True):
        np.testing.assert_allclose(out, np_lovasz_softmax(p, labels, **kw), rtol=1e-5, atol=1e-7)
        ref = np_lovasz_softmax(p, lab, ignore=255, **kw)
        got = np.asarray(out_ignored)
        if kw["per_image"]:  # the empty image is 0 in "none" and left out of the mean
            assert got[2] == 0.0
            got = got[:2]
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-7, err_msg=str(kw))
    np.testing.assert_allclose(
        jl.lovasz_softmax_loss(logits, lab, ignore_index=255, per_image=True),
        np_lovasz_softmax(p, lab, per_image=True, ignore=255).mean(),
        rtol=1e-5,
    )
    # Per-image weights; where= equals ignore_index.
    np.testing.assert_allclose(
        jl.lovasz_softmax_loss(
            logits, labels, per_image=True, weights=np.array([1.0, 2.0, 0.0]),
            reduction="weighted_mean",
        ),
        np.average(np_lovasz_softmax(p, labels, per_image=True)[:2], weights=[1.0, 2.0]),
        rtol=1e-5,
    )  # fmt: skip
    np.testing.assert_allclose(
        jl.lovasz_softmax_loss(logits, np.where(lab != 255, lab, 0), where=lab != 255),
        jl.lovasz_softmax_loss(logits, lab, ignore_index=255),
        rtol=1e-6,
    )


def test_lovasz_softmax_compiles_without_gather_or_scatter(rng):
    logits, labels, _ = _data(rng)
    fn = jax.jit(jax.value_and_grad(lambda x: jl.lovasz_softmax_loss(x, labels, ignore_index=0)))
    hlo = fn.lower(logits).compile().as_text()
    ops = set(re.findall(r" ([a-z][a-z-]*)\(%", hlo))  # "%x = f32[..] op(%operand, ..."
    assert "sort" in ops and not ops & {"gather", "scatter"}, ops
    value, grad = fn(logits)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


# ---------------------------------------------------------------------------------------------
# Dice / Tversky / Jaccard options


def test_split_smoothing_matches_monai(rng):
    logits, labels, onehot = _data(rng)
    p = np_softmax(logits.astype(np.float64))
    i, ps, ts = np_sums(p, onehot)
    a, b = 1e-2, 0.3
    # MONAI DiceLoss: 1 - (2I + nr) / (P + T + dr)
    np.testing.assert_allclose(
        jl.soft_dice_loss(logits, labels, smooth_nr=a, smooth_dr=b, reduction="none"),
        1 - (2 * i + a) / (ps + ts + b),
        rtol=1e-5,
    )
    # MONAI TverskyLoss: 1 - (tp + nr) / (tp + α fp + β fn + dr)
    np.testing.assert_allclose(
        jl.tversky_loss(logits, labels, alpha=0.3, beta=0.7, smooth_nr=a, smooth_dr=b,
                        reduction="none"),
        1 - (i + a) / (i + 0.3 * (ps - i) + 0.7 * (ts - i) + b),
        rtol=1e-5,
    )  # fmt: skip
    # MONAI DiceLoss(jaccard=True): 1 - (2I + nr) / (2 (P + T - I) + dr)
    np.testing.assert_allclose(
        jl.jaccard_loss(logits, labels, smooth_nr=a / 2, smooth_dr=b / 2, reduction="none"),
        1 - (2 * i + a) / (2 * (ps + ts - i) + b),
        rtol=1e-5,
    )
    # smooth_nr = 0 < smooth_dr: an empty prediction on an empty target has loss 1 (MONAI).
    empty = jl.soft_dice_loss(
        jnp.zeros((1, 3, 1)), jnp.zeros((1, 3), int), from_logits=False, smooth_nr=0.0
    )
    assert empty == 1.0
    # smooth alone still means both.
    np.testing.assert_array_equal(
        jl.soft_dice_loss(logits, labels, smooth=0.2),
        jl.soft_dice_loss(logits, labels, smooth_nr=0.2, smooth_dr=0.2),
    )
    with pytest.raises(ValueError, match="smooth_dr must lie"):
        jl.soft_dice_loss(logits, labels, smooth_dr=-1.0)


def test_soft_label_reproduces_smp_with_soft_targets(rng):
    # smp 0.6 DiceLoss("binary", from_logits=False, smooth=0) by hand: p = (0.9, 0.2, 0.6),
    # t = (0.5, 0.5, 1.0). P = 1.7, T = 2.0, Σ|p - t| = 1.1, so I = (1.7 + 2.0 - 1.1) / 2 = 1.3
    # and the loss is 1 - 1.3 / (1.3 + 0.5·0.4 + 0.5·0.7) = 11/37. The product form
    # (I = 1.15) gives 1 - 2.3/3.7 = 14/37.
    p = jnp.array([[[0.9], [0.2], [0.6]]])
    t = jnp.array([[[0.5], [0.5], [1.0]]])
    smp = {"from_logits": False, "smooth": 0.0, "per_image": False, "zero_empty_targets": True}
    np.testing.assert_allclose(jl.soft_dice_loss(p, t, soft_label=True, **smp), 11 / 37, 1e-6)
    np.testing.assert_allclose(jl.soft_dice_loss(p, t, **smp), 14 / 37, rtol=1e-6)
    # Multi-class soft targets vs the NumPy port of smp's soft_tversky_score and forward.
    logits, labels, _ = _data(rng)
    probs = np_softmax(logits.astype(np.float64))
    soft = rng.dirichlet(np.ones(C), size=(B, H, W))
    for a, b in ((0.5, 0.5), (0.3, 0.7), (1.0, 1.0)):
        ref = np_smp_tversky(probs, soft, a, b)
        if a == b == 0.5:
            ours = jl.soft_dice_loss(probs, soft, soft_label=True, **smp)
        elif a == b == 1.0:
            ours = jl.jaccard_loss(probs, soft, soft_label=True, **smp)
        else:
            ours = jl.tversky_loss(probs, soft, alpha=a, beta=b, soft_label=True, **smp)
        np.testing.assert_allclose(ours, ref, rtol=1e-5, err_msg=str((a, b)))
    # p = t is a perfect match only in the semimetric form.
    for fn in (jl.soft_dice_loss, jl.jaccard_loss, jl.tversky_loss):
        assert abs(fn(soft, soft, from_logits=False, smooth=0.0, soft_label=True)) < 1e-6
        assert fn(soft, soft, from_logits=False, smooth=0.0) > 0.2
    # Hard labels: both forms agree (integer and one-hot).
    for fn in (jl.soft_dice_loss, jl.jaccard_loss, jl.tversky_loss, jl.focal_tversky_loss):
        np.testing.assert_allclose(
            fn(logits, labels, soft_label=True, reduction="none"),
            fn(logits, labels, reduction="none"),
            rtol=1e-5,
            atol=1e-6,
        )


def test_tversky_smp_options_and_focal_gamma_on(rng):
    logits, labels, onehot = _data(rng)
    labels[labels == 2] = 1  # class 2 absent from the batch: zero_empty_targets matters
    onehot = np.eye(C)[labels]
    p = np_softmax(logits.astype(np.float64))
    smp = {"per_image": False, "smooth": 0.0, "zero_empty_targets": True, "soft_label": True}
    for log_loss in (False, True):
        np.testing.assert_allclose(
            jl.tversky_loss(logits, labels, alpha=0.3, beta=0.7, log_loss=log_loss, **smp),
            np_smp_tversky(p, onehot, 0.3, 0.7, log_loss=log_loss),
            rtol=1e-5,
        )
        # smp's TverskyLoss(gamma=) raises the class mean: gamma_on="mean".
        np.testing.assert_allclose(
            jl.focal_tversky_loss(logits, labels, gamma=1.5, gamma_on="mean", log_loss=log_loss,
                                  **smp),
            np_smp_tversky(p, onehot, 0.3, 0.7, log_loss=log_loss, gamma=1.5),
            rtol=1e-5,
        )  # fmt: skip
    # gamma_on="class" (default, unchanged): each class's loss to the γ, then the mean.
    i, ps, ts = np_sums(p, onehot)
    one_minus = 1 - (i + 1e-5) / (i + 0.3 * (ps - i) + 0.7 * (ts - i) + 1e-5)
    np.testing.assert_allclose(
        jl.focal_tversky_loss(logits, labels, gamma=2.0), np.mean(one_minus**2), rtol=1e-5
    )
    np.testing.assert_allclose(
        jl.focal_tversky_loss(logits, labels, gamma=2.0, gamma_on="mean"),
        np.mean(one_minus) ** 2,
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="gamma_on must be"):
        jl.focal_tversky_loss(logits, labels, gamma_on="image")
    with pytest.raises(ValueError, match="reduction must reduce to a number"):
        jl.focal_tversky_loss(logits, labels, gamma_on="mean", reduction="none")


def test_dice_ce_equals_monai_dice_ce_with_class_weights(rng):
    logits, labels, onehot = _data(rng)
    cw = np.array([0.5, 1.0, 3.0])
    x = logits.astype(np.float64)
    p = np_softmax(x)
    logp = x - x.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    i, ps, ts = np_sums(p, onehot)
    dice = np.mean(cw * (1 - (2 * i + 1e-5) / (ps + ts + 1e-5)))  # DiceLoss(weight=cw), mean
    ce_pixel = -(onehot * logp).sum(-1)
    w_y = cw[labels]
    ce_int = (w_y * ce_pixel).sum() / w_y.sum()  # CrossEntropyLoss(weight) on class indices
    ce_prob = -(cw * onehot * logp).sum(-1).mean()  # ... on class probabilities
    # MONAI: DiceCELoss(softmax=True, weight=cw) = dice + ce (λ's of 1) = 2 × dice_weight=½.
    np.testing.assert_allclose(
        2 * jl.dice_ce_loss(logits, labels, class_weights=cw, ce_reduction="weighted_mean"),
        dice + ce_int,
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        2 * jl.dice_ce_loss(logits, onehot.astype(np.float32), class_weights=cw),
        dice + ce_prob,
        rtol=1e-5,
    )
    # The one-call form equals composing the two jaxloss calls.
    np.testing.assert_allclose(
        jl.dice_ce_loss(logits, labels, class_weights=cw, ce_reduction="weighted_mean"),
        0.5 * jl.soft_dice_loss(logits, labels, class_weights=cw)
        + 0.5
        * jl.softmax_cross_entropy_with_integer_labels(
            logits, labels, class_weights=cw, reduction="weighted_mean"
        ),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="not available for a combined loss"):
        jl.dice_ce_loss(logits, labels, ce_reduction="none")


# ---------------------------------------------------------------------------------------------
# Gradients, sharded reductions, dtypes, errors


def test_gradients_match_finite_differences(rng):
    shape = (2, 3, 2, 3)
    logits = rng.normal(size=shape)
    labels = rng.integers(0, 3, size=shape[:-1])
    labels[1, 0, 0] = 2  # every class in image 1
    onehot = np.eye(3)[labels]
    soft = rng.dirichlet(np.ones(3), size=shape[:-1])
    w = rng.uniform(0.5, 2.0, size=shape[:-1])
    m = np.array([[0.0, 1.0, 0.8], [1.0, 0.0, 0.4], [0.8, 0.4, 0.0]])
    s = 1e-2

    def np_dice_soft(x, t):
        i, ps, ts = np_sums(np_softmax(x), t, w, soft=True)
        return np.mean(1 - (2 * i + s) / (ps + ts + 0.5))

    def np_tversky_mean(x):
        i, ps, ts = np_sums(np_softmax(x), onehot, per_image=False)
        return np.mean(1 - (i + s) / (i + 0.3 * (ps - i) + 0.7 * (ts - i) + 0.5)) ** 0.75

    # (jax function of the differentiated argument, NumPy reference, the argument)
    checks = {
        "gdl": (
            lambda z: jl.generalized_dice_loss(z, labels, weights=w, smooth=s),
            lambda z: np_monai_gdl(np_softmax(z), onehot, w=w, nr=s, dr=s).mean(),
            logits,
        ),
        "gdl_simple_targets": (
            lambda t: jl.generalized_dice_loss(
                logits, t, w_type="simple", per_image=False, soft_label=True, smooth=s
            ),
            lambda t: np_monai_gdl(np_softmax(logits), t, "simple", True, nr=s, dr=s, soft=True)[0],
            soft,
        ),
        "gwdl": (
            lambda z: jl.generalized_wasserstein_dice_loss(z, labels, m, smooth=s),
            lambda z: np_monai_gwdl(
                np_softmax(z).reshape(2, -1, 3), labels.reshape(2, -1), m, nr=s, dr=s
            ).mean(),
            logits,
        ),
        "gwdl_gdl": (
            lambda z: jl.generalized_wasserstein_dice_loss(z, labels, m, weighting_mode="GDL"),
            lambda z: np_monai_gwdl(
                np_softmax(z).reshape(2, -1, 3), labels.reshape(2, -1), m, "GDL"
            ).mean(),
            logits,
        ),
        "lovasz": (
            lambda z: jl.lovasz_softmax_loss(z, labels, per_image=True, classes="all"),
            lambda z: np_lovasz_softmax(np_softmax(z), labels, "all", True).mean(),
            logits,
        ),
        "dice_soft_logits": (
            lambda z: jl.soft_dice_loss(
                z, soft, weights=w, soft_label=True, smooth_nr=s, smooth_dr=0.5
            ),
            lambda z: np_dice_soft(z, soft),
            logits,
        ),
        "dice_soft_targets": (
            lambda t: jl.soft_dice_loss(
                logits, t, weights=w, soft_label=True, smooth_nr=s, smooth_dr=0.5
            ),
            lambda t: np_dice_soft(logits, t),
            soft,
        ),
        "focal_mean": (
            lambda z: jl.focal_tversky_loss(
                z, labels, per_image=False, gamma_on="mean", smooth_nr=s, smooth_dr=0.5
            ),
            np_tversky_mean,
            logits,
        ),
    }
    with float64():
        for name, (fn, ref, arg) in checks.items():
            g = jax.grad(fn)(jnp.asarray(arg))
            num = numeric_grad(ref, arg)
            np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8, err_msg=name)


def test_axis_name_gives_the_global_value(rng):
    logits, labels, _ = _data(rng, b=4)
    m = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [1.0, 0.5, 0.0]], np.float32)
    keep = rng.random(labels.shape) > 0.2
    keep[3] = False  # a shard with one image fully excluded
    fns = {
        "gdl": lambda x, y, k, **kw: jl.generalized_dice_loss(x, y, where=k, **kw),
        "gdl_batch": lambda x, y, k, **kw: jl.generalized_dice_loss(
            x, y, where=k, per_image=False, **kw
        ),
        "gwdl_batch": lambda x, y, k, **kw: jl.generalized_wasserstein_dice_loss(
            x, y, m, where=k, per_image=False, weighting_mode="GDL", **kw
        ),
        "gwdl": lambda x, y, k, **kw: jl.generalized_wasserstein_dice_loss(x, y, m, where=k, **kw),
        "lovasz": lambda x, y, k, **kw: jl.lovasz_softmax_loss(x, y, where=k, per_image=True, **kw),
        "focal_mean": lambda x, y, k, **kw: jl.focal_tversky_loss(
            x, y, where=k, gamma_on="mean", **kw
        ),
    }
    halves = [a.reshape(2, 2, *a.shape[1:]) for a in (logits, labels, keep)]

    @jax.jit
    def run():
        out = {}
        for name, fn in fns.items():
            for red in ("mean", "sum"):
                full = fn(logits, labels, keep, reduction=red)
                sharded = jax.vmap(
                    lambda x, y, k, fn=fn, red=red: fn(x, y, k, reduction=red, axis_name="d"),
                    axis_name="d",
                )(*halves)
                out[name, red] = (full, sharded)
        return out

    for key, (full, sharded) in run().items():
        np.testing.assert_allclose(sharded, np.full(2, full), rtol=1e-5, err_msg=str(key))


def test_16_bit_inputs_and_errors(rng):
    logits, labels, onehot = _data(rng)
    x16 = jnp.asarray(logits, jnp.bfloat16)
    m = np.ones((C, C)) - np.eye(C)
    for out in (
        jl.generalized_dice_loss(x16, labels),
        jl.generalized_wasserstein_dice_loss(x16, labels, m),
        jl.lovasz_softmax_loss(x16, labels),
    ):
        assert out.dtype == jnp.float32 and np.isfinite(out)
    with pytest.raises(ValueError, match="w_type must be one of"):
        jl.generalized_dice_loss(logits, labels, w_type="cube")
    with pytest.raises(ValueError, match="weighting_mode must be"):
        jl.generalized_wasserstein_dice_loss(logits, labels, m, weighting_mode="gdl")
    with pytest.raises(ValueError, match=r"distance_matrix has shape \(2, 2\)"):
        jl.generalized_wasserstein_dice_loss(logits, labels, np.ones((2, 2)))
    with pytest.raises(TypeError, match="integer class labels"):
        jl.generalized_wasserstein_dice_loss(logits, onehot, m)
    with pytest.raises(TypeError, match="integer class labels"):
        jl.lovasz_softmax_loss(logits, onehot)
    with pytest.raises(ValueError, match="at least 2 classes"):
        jl.lovasz_softmax_loss(logits[..., :1], labels)
    with pytest.raises(ValueError, match="classes must be"):
        jl.lovasz_softmax_loss(logits, labels, classes="some")
    with pytest.raises(ValueError, match="per-image weights"):
        jl.lovasz_softmax_loss(logits, labels, weights=np.ones(B))
    out = jl.lovasz_softmax_loss(
        logits, np.where(labels == 0, 9, labels), per_image=True, reduction="none"
    )
    assert np.all(np.isnan(out))
    with pytest.raises(Exception, match="out-of-range"):
        jl.checked(jl.generalized_dice_loss)(logits, np.where(labels == 0, 9, labels))
