"""Circle loss, supervised contrastive and CLIP against Keras, NumPy references and optax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import keras_reference as keras
import numpy as np
import optax
import pytest

import jaxloss as jl

from helpers import assert_grads_match_fd, float64, numeric_grad

LABELS = np.array([0, 0, 1, 1, 1, 2, 3])  # the last two anchors have no positive


def unit(z):
    return z / np.linalg.norm(z, axis=-1, keepdims=True)


@pytest.fixture
def z(rng):
    return rng.normal(size=(7, 3))


def np_circle(z, labels, gamma, margin, z_alpha=None):
    """Sun et al.'s circle loss per anchor, with the weights α taken from ``z_alpha``."""
    s = unit(z) @ unit(z).T
    s_alpha = s if z_alpha is None else unit(z_alpha) @ unit(z_alpha).T
    out = np.zeros(len(labels))
    for i in range(len(labels)):
        pos = (labels == labels[i]) & (np.arange(len(labels)) != i)
        neg = labels != labels[i]
        if pos.any() and neg.any():
            a_p = np.maximum(1 + margin - s_alpha[i, pos], 0)
            a_n = np.maximum(s_alpha[i, neg] + margin, 0)
            total = (
                np.exp(gamma * a_n * (s[i, neg] - margin)).sum()
                * np.exp(-gamma * a_p * (s[i, pos] - 1 + margin)).sum()
            )
            out[i] = np.log1p(total)
    return out


def np_supcon(z, labels, temperature):
    """Khosla et al.'s L_out per anchor (anchors without positives: 0)."""
    s = unit(z) @ unit(z).T / temperature
    out = np.zeros(len(labels))
    for i in range(len(labels)):
        others = np.arange(len(labels)) != i
        pos = (labels == labels[i]) & others
        if pos.any():
            log_den = np.log(np.exp(s[i, others]).sum())
            out[i] = -(s[i, pos] - log_den).mean()
    return out


def np_clip(a, b, temperature):
    s = unit(a) @ unit(b).T / temperature
    rows = np.log(np.exp(s).sum(1)) - np.diag(s)
    cols = np.log(np.exp(s).sum(0)) - np.diag(s)
    return 0.5 * (rows + cols), rows


def test_circle_loss_is_keras(z):
    u = unit(z).astype(np.float32)
    for gamma, margin in [(80.0, 0.4), (4.0, 0.25)]:
        expected = keras.circle(LABELS, u, gamma, margin)
        got = jl.circle_loss(u, LABELS, gamma=gamma, margin=margin)
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-5)
        # Keras's mean leaves out the anchors of loss 0 (here the one without a positive).
        np.testing.assert_allclose(
            jl.circle_loss(u, LABELS, gamma=gamma, margin=margin, reduction="mean"),
            expected[expected > 0].mean(),
            rtol=2e-5,
        )
    # Normalised inside: the scale of the embeddings does not matter; refs = the batch by default.
    np.testing.assert_allclose(jl.circle_loss(3 * z, LABELS), jl.circle_loss(u, LABELS), rtol=1e-5)
    np.testing.assert_allclose(
        jl.circle_loss(z, LABELS, ref_embeddings=z, ref_labels=LABELS),
        jl.circle_loss(z, LABELS),
        rtol=1e-6,
    )


def test_circle_loss_gradients(z):
    with float64():
        for stop in (False, True):

            def f(v, stop=stop):
                return jl.circle_loss(
                    v,
                    LABELS,
                    gamma=4.0,
                    margin=0.25,
                    stop_gradient_weights=stop,
                    reduction="sum",
                )

            if stop:  # α constant: the gradient of the loss with α frozen at z
                ref = lambda v: np_circle(v, LABELS, 4.0, 0.25, z_alpha=z).sum()  # noqa: E731
            else:
                ref = lambda v: np_circle(v, LABELS, 4.0, 0.25).sum()  # noqa: E731
            np.testing.assert_allclose(f(z), ref(z), rtol=1e-10)
            np.testing.assert_allclose(
                jax.jit(jax.grad(f))(z), numeric_grad(ref, z), rtol=1e-6, atol=1e-9
            )


def test_supervised_contrastive_matches_definition_and_ntxent(z, rng):
    expected = np_supcon(z, LABELS, 0.1)
    per, mean = jax.jit(
        lambda v: (
            jl.supervised_contrastive_loss(v, LABELS, 0.1),
            jl.supervised_contrastive_loss(v, LABELS, 0.1, reduction="mean"),
        )
    )(z)
    np.testing.assert_allclose(per, expected, rtol=1e-5, atol=2e-6)
    # The anchors without positives are left out of the mean.
    np.testing.assert_allclose(mean, expected[:5].mean(), rtol=1e-5)
    # Two views per image, one label per image: SimCLR's NT-Xent (optax's).
    views = rng.normal(size=(8, 4)).astype(np.float32)
    pairs = np.repeat(np.arange(4), 2)
    np.testing.assert_allclose(
        jl.supervised_contrastive_loss(views, pairs, 0.5, reduction="mean"),
        optax.losses.ntxent(views, pairs, 0.5),
        rtol=1e-5,
    )
    with float64():
        f = jax.jit(lambda v: jl.supervised_contrastive_loss(v, LABELS, 0.5, reduction="mean"))
        np.testing.assert_allclose(jax.grad(f)(z), numeric_grad(f, z), rtol=1e-6, atol=1e-9)


def test_clip_loss_matches_cross_entropy_both_ways(rng):
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    both, one_way = np_clip(a, b, 0.3)
    np.testing.assert_allclose(jl.clip_loss(a, b, 0.3), both, rtol=1e-5)
    np.testing.assert_allclose(jl.clip_loss(a, b, 0.3, symmetric=False), one_way, rtol=1e-5)
    logits = jnp.asarray(unit(a) @ unit(b).T / 0.3, jnp.float32)
    ce = optax.losses.softmax_cross_entropy_with_integer_labels
    np.testing.assert_allclose(
        jl.clip_loss(a, b, 0.3, reduction="mean"),
        (ce(logits, jnp.arange(5)).mean() + ce(logits.T, jnp.arange(5)).mean()) / 2,
        rtol=1e-5,
    )
    with float64():
        assert_grads_match_fd(
            lambda u, v, t: jl.clip_loss(u, v, t, reduction="mean"),
            [a, b, np.array(0.3)],
            [0, 1, 2],
        )


@pytest.mark.parametrize("name", ["circle", "supcon", "clip"])
def test_where_removes_embeddings_and_contract(name, z):
    partner = z[::-1] + 0.5  # clip's second side; its rows move with the pairs
    keep = np.array([True, True, False, True, True, True, False])
    loss = {
        "circle": lambda v, p, **kw: jl.circle_loss(v, LABELS, gamma=4.0, **kw),
        "supcon": lambda v, p, **kw: jl.supervised_contrastive_loss(v, LABELS, 0.5, **kw),
        "clip": lambda v, p, **kw: jl.clip_loss(v, p, 0.5, **kw),
    }[name]
    sub = {
        "circle": lambda: jl.circle_loss(z[keep], LABELS[keep], gamma=4.0),
        "supcon": lambda: jl.supervised_contrastive_loss(z[keep], LABELS[keep], 0.5),
        "clip": lambda: jl.clip_loss(z[keep], partner[keep], 0.5),
    }[name]()
    w = np.linspace(0.5, 2.0, 7)
    nan = np.where(keep[:, None], 0.0, np.nan)  # NaN embeddings where excluded

    @jax.jit
    def run(v, p):
        per = loss(v + nan, p + nan, where=keep)
        value, grad = jax.value_and_grad(
            lambda u: loss(u + nan, p + nan, where=keep, weights=w, reduction="weighted_mean")
        )(v)
        # axis_name: each member of the named axis weighs half of the anchors (a zero weight
        # leaves the embedding in the batch as a partner); every member gets the global value.
        halves = jnp.stack([w * (np.arange(7) < 4), w * (np.arange(7) >= 4)])
        split = jax.vmap(
            lambda h: loss(v, p, weights=h, reduction="weighted_mean", axis_name="d"),
            axis_name="d",
        )(halves)
        return per, value, grad, split, loss(v, p, weights=w, reduction="weighted_mean")

    per, value, grad, split, full = run(z, partner)
    np.testing.assert_allclose(per[keep], sub, rtol=1e-5, atol=1e-6)
    assert np.all(per[~keep] == 0)
    counted = np.asarray(sub) > 0 if name != "clip" else np.ones(keep.sum(), bool)
    np.testing.assert_allclose(value, (w[keep] * sub).sum() / w[keep][counted].sum(), rtol=1e-5)
    assert np.all(np.isfinite(grad)) and np.all(grad[~keep] == 0)
    np.testing.assert_allclose(split, [full, full], rtol=1e-5)


def test_errors():
    z = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"embeddings must have shape \[B, D\]"):
        jl.circle_loss(np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"labels has shape \(2,\); expected \(3,\)"):
        jl.supervised_contrastive_loss(z, np.zeros(2))
    with pytest.raises(ValueError, match="ref_embeddings and ref_labels go together"):
        jl.circle_loss(z, np.zeros(3), ref_embeddings=z)
    with pytest.raises(ValueError, match="embeddings_b has shape"):
        jl.clip_loss(z, np.ones((4, 2)))
    with pytest.raises(ValueError, match="temperature must lie in"):
        jl.clip_loss(z, z, 0.0)


def test_jit_vmap_dtypes_and_no_gathers(rng):
    z = jnp.float32(rng.normal(size=(2, 6, 3)))
    labels = jnp.array([[0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1]])
    fns = [
        lambda u, lab: jl.circle_loss(u, lab, gamma=4.0),
        lambda u, lab: jl.supervised_contrastive_loss(u, lab, 0.5),
        lambda u, lab: jl.clip_loss(u, u[::-1], 0.5),
    ]
    for fn in fns:
        one = jax.jit(fn)
        looped = jnp.stack([one(z[i], labels[i]) for i in range(2)])
        np.testing.assert_allclose(jax.jit(jax.vmap(fn))(z, labels), looped, rtol=1e-5, atol=1e-6)
        g = jax.jit(jax.grad(lambda u, fn=fn: jnp.sum(jax.vmap(fn)(u, labels))))(z)
        assert np.all(np.isfinite(g))
        assert jax.eval_shape(fn, z[0].astype(jnp.bfloat16), labels[0]).dtype == jnp.float32
        with float64():
            assert jax.eval_shape(fn, np.ones((6, 3)), labels[0]).dtype == jnp.float64
        # Pairs by masks over the [B, B] similarities: no gather in the loss or its gradient.
        jaxpr = str(
            jax.make_jaxpr(jax.value_and_grad(lambda u, fn=fn: fn(u, labels[0]).sum()))(z[0])
        )
        assert "gather" not in jaxpr and "scatter" not in jaxpr
