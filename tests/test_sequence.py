"""CTC loss against a brute-force sum over every alignment, and finite differences."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss as jl

from helpers import float64, numeric_grad

# Eager calls would re-compile CTC's scan every time; one jitted entry point compiles per shape.
ctc_loss = jax.jit(jl.ctc_loss, static_argnames=("blank_id", "reduction"))


def brute_force_ctc(logits, frames, label, blank):
    """-log Σ over all paths of length ``frames`` that collapse to ``label``."""
    log_p = logits[:frames] - np.log(np.exp(logits[:frames]).sum(-1, keepdims=True))
    total = 0.0
    for path in itertools.product(range(logits.shape[-1]), repeat=frames):
        collapsed = [k for i, k in enumerate(path) if i == 0 or k != path[i - 1]]
        if [k for k in collapsed if k != blank] == list(label):
            total += np.exp(sum(log_p[t, k] for t, k in enumerate(path)))
    return -np.log(total)


def make_batch(rng):
    """Four sequences over K=3 classes (blank 0), T=5 frames, N=3 labels, with padding."""
    logits = rng.normal(size=(4, 5, 3)) * 1.5
    frames = np.array([5, 4, 5, 3])
    labels = np.array([[1, 2, 1], [1, 1, 0], [2, 0, 0], [2, 1, 0]])  # row 1 repeats a label
    lengths = np.array([3, 2, 1, 2])
    logit_pad = (np.arange(5)[None] >= frames[:, None]).astype(np.float32)
    label_pad = (np.arange(3)[None] >= lengths[:, None]).astype(np.float32)
    expected = np.array(
        [brute_force_ctc(logits[b], frames[b], labels[b, : lengths[b]], 0) for b in range(4)]
    )
    return logits, logit_pad, labels, label_pad, expected


def test_ctc_matches_brute_force(rng):
    logits, logit_pad, labels, label_pad, expected = make_batch(rng)
    got = ctc_loss(jnp.float32(logits), logit_pad, labels, label_pad)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    with_probs = jax.jit(jl.ctc_loss_with_forward_probs)
    loss, blank, label = with_probs(jnp.float32(logits), logit_pad, labels, label_pad)
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    assert blank.shape == (5, 4, 4) and label.shape == (5, 4, 3)


def test_ctc_other_blank_id(rng):
    logits, logit_pad, labels, label_pad, _ = make_batch(rng)
    relabel = np.array([2, 0, 1])  # blank 0 -> 2, 1 -> 0, 2 -> 1
    moved = np.empty_like(logits)
    moved[..., relabel] = logits
    expected = [
        brute_force_ctc(
            moved[b],
            5 - int(logit_pad[b].sum()),
            relabel[labels[b, : 3 - int(label_pad[b].sum())]],
            2,
        )
        for b in range(4)
    ]
    got = ctc_loss(jnp.float32(moved), logit_pad, relabel[labels], label_pad, blank_id=2)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_ctc_gradient_matches_finite_differences(rng):
    logits, logit_pad, labels, label_pad, _ = make_batch(rng)
    with float64():
        f = jax.jit(lambda x: jl.ctc_loss(x, logit_pad, labels, label_pad, reduction="sum"))
        grad = jax.grad(f)(logits)
        np.testing.assert_allclose(grad, numeric_grad(f, logits), rtol=1e-5, atol=1e-6)
    # Padded frames get exactly zero gradient; each real frame's gradient sums to 0.
    np.testing.assert_array_equal(np.asarray(grad)[logit_pad > 0], 0.0)
    np.testing.assert_allclose(np.asarray(grad).sum(-1), 0.0, atol=1e-9)


def test_ctc_contract(rng):
    logits, logit_pad, labels, label_pad, expected = make_batch(rng)
    x = jnp.float32(logits)
    keep = jnp.array([True, False, True, True])
    w = jnp.array([1.0, 5.0, 2.0, 0.5])
    got = ctc_loss(
        x, logit_pad, labels, label_pad, where=keep, weights=w, reduction="weighted_mean"
    )
    k, wn = np.asarray(keep), np.asarray(w)
    np.testing.assert_allclose(got, np.sum((wn * expected)[k]) / np.sum(wn[k]), rtol=1e-5)
    np.testing.assert_allclose(
        ctc_loss(x, logit_pad, labels, label_pad, reduction="mean"), expected.mean(), rtol=1e-5
    )
    # Excluded sequences: NaN logits do not leak into the value or the gradient.
    bad = x.at[1].set(jnp.nan)
    value, grad = jax.jit(
        jax.value_and_grad(
            lambda v: jl.ctc_loss(v, logit_pad, labels, label_pad, where=keep, reduction="sum")
        )
    )(bad)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


def test_ctc_out_of_range_labels(rng):
    logits, logit_pad, labels, label_pad, expected = make_batch(rng)
    x = jnp.float32(logits)
    padded_garbage = np.where(label_pad > 0, -1, labels)  # out of range, but padded: fine
    np.testing.assert_allclose(
        ctc_loss(x, logit_pad, padded_garbage, label_pad), expected, rtol=1e-5
    )
    wrong = labels.copy()
    wrong[2, 0] = 7
    got = np.asarray(ctc_loss(x, logit_pad, wrong, label_pad))
    assert np.isnan(got[2]) and np.all(np.isfinite(np.delete(got, 2)))
    with pytest.raises(Exception, match="labels must lie in"):
        jl.checked(jl.ctc_loss)(x, logit_pad, wrong, label_pad)


def test_ctc_jit_vmap_and_dtypes(rng):
    logits, logit_pad, labels, label_pad, expected = make_batch(rng)
    x = jnp.float32(logits)
    stacked = [
        jnp.stack([a, a])
        for a in (x, jnp.asarray(logit_pad), jnp.asarray(labels), jnp.asarray(label_pad))
    ]
    got = jax.jit(jax.vmap(jl.ctc_loss))(*stacked)
    np.testing.assert_allclose(got, np.stack([expected, expected]), rtol=1e-5)
    out = ctc_loss(x.astype(jnp.bfloat16), logit_pad, labels, label_pad)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, expected, rtol=3e-2)
    g = jax.jit(jax.grad(lambda v: ctc_loss(v, logit_pad, labels, label_pad, reduction="sum")))(
        x.astype(jnp.bfloat16)
    )
    assert g.dtype == jnp.bfloat16


def test_ctc_argument_errors():
    x = jnp.zeros((2, 5, 3))
    pad = jnp.zeros((2, 5))
    with pytest.raises(ValueError, match=r"logits must have shape \[B, T, K\]"):
        jl.ctc_loss(jnp.zeros((5, 3)), pad, jnp.zeros((2, 2), int), jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="labels must have shape"):
        jl.ctc_loss(x, pad, jnp.zeros((3, 2), int), jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="logit_paddings has shape"):
        jl.ctc_loss(x, jnp.zeros((2, 4)), jnp.zeros((2, 2), int), jnp.zeros((2, 2)))
    with pytest.raises(TypeError, match="labels must be an integer array"):
        jl.ctc_loss(x, pad, jnp.zeros((2, 2)), jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="blank_id"):
        jl.ctc_loss(x, pad, jnp.zeros((2, 2), int), jnp.zeros((2, 2)), blank_id=3)
