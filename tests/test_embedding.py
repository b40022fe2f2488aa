"""Cosine similarity/distance, NT-Xent and the triplet margin loss against NumPy loops."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxloss as jl

from helpers import float64, numeric_grad

ntxent = jax.jit(jl.ntxent, static_argnames=("reduction",))


def np_cos(a, b, eps=0.0):
    na = np.sqrt(np.maximum((a * a).sum(-1), eps))
    nb = np.sqrt(np.maximum((b * b).sum(-1), eps))
    return (a * b).sum(-1) / (na * nb)


def np_ntxent(z, labels, temperature):
    """The definition, pair by pair: each positive against the anchor's negatives."""
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    s = z @ z.T / temperature
    losses = []
    for i in range(len(z)):
        negatives = [k for k in range(len(z)) if labels[k] != labels[i]]
        for j in range(len(z)):
            if j != i and labels[j] == labels[i]:
                denominator = np.exp(s[i, j]) + sum(np.exp(s[i, k]) for k in negatives)
                losses.append(-(s[i, j] - np.log(denominator)))
    return np.mean(losses)


def test_cosine_values_contract_and_zero_vector(rng):
    a, b = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    np.testing.assert_allclose(
        jl.cosine_similarity(jnp.float32(a), jnp.float32(b)), np_cos(a, b), rtol=1e-5
    )
    np.testing.assert_allclose(
        jl.cosine_distance(jnp.float32(a), jnp.float32(b)), 1 - np_cos(a, b), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        jl.cosine_similarity(jnp.float32(a), jnp.float32(b), epsilon=4.0),
        np_cos(a, b, 4.0),
        rtol=1e-5,
    )
    keep = jnp.array([True, True, False, True, True])
    w = jnp.array([1.0, 2.0, 9.0, 0.5, 1.0])
    got = jl.cosine_distance(
        jnp.float32(a), jnp.float32(b), where=keep, weights=w, reduction="weighted_mean"
    )
    d, k, wn = 1 - np_cos(a, b), np.asarray(keep), np.asarray(w)
    np.testing.assert_allclose(got, np.sum((wn * d)[k]) / wn[k].sum(), rtol=1e-5)
    # A zero vector: similarity 0 and a finite gradient (optax: NaN).
    value, grad = jax.value_and_grad(lambda v: jl.cosine_similarity(v, jnp.ones(3)))(jnp.zeros(3))
    assert value == 0 and np.all(np.isfinite(grad))


def test_cosine_gradient_matches_finite_differences(rng):
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    with float64():
        f = jax.jit(lambda v: jl.cosine_distance(v, b, reduction="sum"))
        np.testing.assert_allclose(jax.grad(f)(a), numeric_grad(f, a), rtol=1e-6, atol=1e-8)


def test_ntxent_values_and_gradient(rng):
    z = rng.normal(size=(6, 3))
    labels = np.array([0, 0, 1, 1, 1, 2])  # a triple and a singleton
    for temperature in (0.07, 0.5):
        np.testing.assert_allclose(
            ntxent(jnp.float32(z), jnp.asarray(labels), temperature),
            np_ntxent(z, labels, temperature),
            rtol=1e-5,
        )
    with float64():
        f = jax.jit(lambda v: jl.ntxent(v, labels, 0.5))
        np.testing.assert_allclose(jax.grad(f)(z), numeric_grad(f, z), rtol=1e-5, atol=1e-7)


def test_ntxent_contract_and_edges(rng):
    z = jnp.float32(rng.normal(size=(6, 3)))
    labels = jnp.array([0, 0, 1, 1, 2, 2])
    # where=[B] removes embeddings from the batch entirely.
    keep = jnp.array([True, True, True, True, False, False])
    np.testing.assert_allclose(
        ntxent(z, labels, 0.5, where=keep),
        np_ntxent(np.asarray(z)[:4], np.asarray(labels)[:4], 0.5),
        rtol=1e-5,
    )
    # reduction="none": the [B, B] pair losses, zero off the positive pairs.
    pairs = ntxent(z, labels, 0.5, reduction="none")
    positive = (labels[:, None] == labels[None, :]) & ~jnp.eye(6, dtype=bool)
    assert pairs.shape == (6, 6) and np.all(np.asarray(pairs)[~np.asarray(positive)] == 0)
    np.testing.assert_allclose(pairs.sum() / positive.sum(), ntxent(z, labels, 0.5), rtol=1e-6)
    # No positive pair: 0 with zero gradient, not NaN.
    value, grad = jax.jit(jax.value_and_grad(jl.ntxent))(z, jnp.arange(6))
    assert value == 0 and np.all(grad == 0)
    # All one class (no negatives): each pair's loss is log 1 = 0.
    np.testing.assert_allclose(ntxent(z, jnp.zeros(6, jnp.int32)), 0.0, atol=1e-7)
    with pytest.raises(ValueError, match="labels has shape"):
        ntxent(z, jnp.zeros(5, jnp.int32))


def test_triplet_values_gradient_and_contract(rng):
    a, p, n = (rng.normal(size=(5, 4)) for _ in range(3))

    def np_triplet(q=2, margin=1.0, eps=1e-6):
        d = lambda u, v: (np.sum(np.abs(u - v) ** q, -1) + eps) ** (1 / q)  # noqa: E731
        return np.maximum(d(a, p) - d(a, n) + margin, 0)

    for kw in ({}, {"norm_degree": 1}, {"norm_degree": 3, "margin": 0.5}, {"eps": 0.0}):
        got = jl.triplet_margin_loss(jnp.float32(a), jnp.float32(p), jnp.float32(n), **kw)
        np.testing.assert_allclose(
            got,
            np_triplet(kw.get("norm_degree", 2), kw.get("margin", 1.0), kw.get("eps", 1e-6)),
            rtol=1e-5,
            atol=1e-6,
            err_msg=str(kw),
        )
    got = jl.triplet_margin_loss(jnp.float32(a.T), jnp.float32(p.T), jnp.float32(n.T), axis=0)
    np.testing.assert_allclose(got, np_triplet(), rtol=1e-5, atol=1e-6)
    w = jnp.array([1.0, 0.0, 2.0, 1.0, 1.0])
    got = jl.triplet_margin_loss(
        jnp.float32(a),
        jnp.float32(p),
        jnp.float32(n),
        weights=w,
        reduction="sum_by_nonzero_weights",
    )
    np.testing.assert_allclose(got, np.sum(np.asarray(w) * np_triplet()) / 4, rtol=1e-5)
    with float64():
        f = jax.jit(lambda v: jl.triplet_margin_loss(v, p, n, margin=5.0, reduction="sum"))
        np.testing.assert_allclose(jax.grad(f)(a), numeric_grad(f, a), rtol=1e-6, atol=1e-8)
    # Coinciding anchor and positive: finite gradient (eps inside the root).
    g = jax.grad(lambda v: jl.triplet_margin_loss(v, v, jnp.ones((1, 2)), reduction="sum"))(
        jnp.zeros((1, 2))
    )
    assert np.all(np.isfinite(g))


def test_triplet_swap_against_numpy_and_finite_differences(rng):
    a, p = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    n = p + 0.3 * rng.normal(size=(6, 3))  # negatives near the positives: the swap matters

    def np_swap(q=2, margin=1.0, eps=1e-6):
        d = lambda u, v: (np.sum(np.abs(u - v) ** q, -1) + eps) ** (1 / q)  # noqa: E731
        return np.maximum(d(a, p) - np.minimum(d(a, n), d(p, n)) + margin, 0)

    swapped = np_swap()
    plain = jl.triplet_margin_loss(jnp.float32(a), jnp.float32(p), jnp.float32(n))
    assert not np.allclose(swapped, plain)  # the case exercises the swap
    for kw in ({}, {"norm_degree": 1, "margin": 0.5}, {"norm_degree": 3, "eps": 0.0}):
        got = jl.triplet_margin_loss(
            jnp.float32(a), jnp.float32(p), jnp.float32(n), swap=True, **kw
        )
        want = np_swap(kw.get("norm_degree", 2), kw.get("margin", 1.0), kw.get("eps", 1e-6))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=str(kw))
    with float64():
        for i in range(3):

            def f(v, i=i):
                args = [a, p, n]
                args[i] = v
                return jl.triplet_margin_loss(*args, margin=2.0, swap=True, reduction="sum")

            x = (a, p, n)[i]
            np.testing.assert_allclose(
                jax.grad(f)(x), numeric_grad(f, x), rtol=1e-6, atol=1e-8, err_msg=f"input {i}"
            )
    with pytest.raises(TypeError, match="swap"):
        jl.triplet_margin_loss(jnp.ones((1, 2)), jnp.ones((1, 2)), jnp.ones((1, 2)), swap=1)


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("p_norm", [1.0, 2.0, 3.0])
def test_compat_triplet_margin_loss_equals_pytorch(rng, swap, p_norm):
    torch = pytest.importorskip("torch")
    import jaxloss.compat.torch as F

    a, p, n = (rng.normal(size=(5, 4)).astype(np.float32) for _ in range(3))
    for reduction in ("none", "mean", "sum"):
        tensors = [torch.tensor(v, requires_grad=True) for v in (a, p, n)]
        want = torch.nn.functional.triplet_margin_loss(
            *tensors, margin=0.7, p=p_norm, eps=1e-3, swap=swap, reduction=reduction
        )
        want.sum().backward()

        def total(*xs, reduction=reduction):
            out = F.triplet_margin_loss(
                *xs, margin=0.7, p=p_norm, eps=1e-3, swap=swap, reduction=reduction
            )
            return out.sum(), out

        (_, got), grads = jax.value_and_grad(total, (0, 1, 2), has_aux=True)(a, p, n)
        np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-5, atol=1e-6)
        for g, t in zip(grads, tensors, strict=True):
            np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "name", ["cosine_similarity", "cosine_distance", "triplet_margin_loss", "ntxent"]
)
def test_jit_vmap_grad_compose(name, rng):
    x = jnp.float32(rng.normal(size=(2, 6, 3)))
    y = jnp.float32(rng.normal(size=(2, 6, 3)))
    labels = jnp.array([[0, 0, 1, 1, 2, 2], [0, 1, 0, 1, 0, 1]])
    fn = {
        "cosine_similarity": lambda u, v, _: jl.cosine_similarity(u, v),
        "cosine_distance": lambda u, v, _: jl.cosine_distance(u, v),
        "triplet_margin_loss": lambda u, v, _: jl.triplet_margin_loss(u, v, -v),
        "ntxent": lambda u, _, lab: jl.ntxent(u, lab),
    }[name]
    looped = jnp.stack([fn(x[i], y[i], labels[i]) for i in range(2)])
    np.testing.assert_allclose(jax.jit(jax.vmap(fn))(x, y, labels), looped, rtol=1e-5, atol=1e-6)
    g = jax.jit(jax.grad(lambda u: jnp.sum(jax.vmap(fn)(u, y, labels))))(x)
    assert np.all(np.isfinite(g))


def test_cosine_embedding_loss_against_numpy_and_finite_differences():
    rng = np.random.default_rng(14)
    a, b = rng.normal(size=(2, 5, 3)).astype(np.float32)
    t = np.array([1, -1, 1, -1, -1])
    cos = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    per = np.where(t == 1, 1 - cos, np.maximum(0.0, cos - 0.1))
    np.testing.assert_allclose(jl.cosine_embedding_loss(a, b, t, margin=0.1), per, rtol=1e-5)
    w = rng.uniform(0.5, 2.0, size=5).astype(np.float32)
    np.testing.assert_allclose(
        jl.cosine_embedding_loss(a, b, t, margin=0.1, weights=w, reduction="weighted_mean"),
        (w * per).sum() / w.sum(),
        rtol=1e-5,
    )
    with float64():
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        for arg in (0, 1):
            g = jax.grad(
                lambda u, v: jl.cosine_embedding_loss(u, v, t, margin=0.1, reduction="sum"), arg
            )(a64, b64)
            fd = numeric_grad(
                lambda z, arg=arg: jl.cosine_embedding_loss(
                    *((z, b64) if arg == 0 else (a64, z)), t, margin=0.1, reduction="sum"
                ),
                (a64, b64)[arg],
            )
            np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match=r"targets has shape \(4,\); expected \(5,\)"):
        jl.cosine_embedding_loss(a, b, t[:4])


# --- additive-margin softmax (ArcFace, CosFace) --------------------------------------------------


def np_margin_softmax(cos, labels, kind, scale, margin):
    """The papers' definitions: ArcFace's cos(θ + m) from θ = arccos(cos θ_y) (InsightFace's
    fallback cos θ - m sin m past θ + m = π), CosFace's cos θ - m; then cross-entropy."""
    cos = np.asarray(cos, np.float64)
    c = np.clip(cos[np.arange(len(labels)), labels], -1, 1)
    theta = np.arccos(c)
    if kind == "arcface":
        psi = np.where(theta + margin < np.pi, np.cos(theta + margin), c - margin * np.sin(margin))
    else:
        psi = c - margin
    logits = scale * cos.copy()
    logits[np.arange(len(labels)), labels] = scale * psi
    m = logits.max(1)
    return m + np.log(np.exp(logits - m[:, None]).sum(1)) - scale * psi


def test_additive_margin_softmax_matches_the_definitions(rng):
    cos = rng.uniform(-1, 1, size=(8, 5)).astype(np.float32)
    labels = rng.integers(0, 5, size=8)
    cos[0, labels[0]] = -0.95  # θ + m > π: the fallback branch
    for kind, scale, margin in [
        ("arcface", 64.0, 0.5),
        ("cosface", 30.0, 0.35),
        ("arcface", 8.0, 0.2),
    ]:
        np.testing.assert_allclose(
            jl.additive_margin_softmax_loss(cos, labels, kind=kind, scale=scale, margin=margin),
            np_margin_softmax(cos, labels, kind, scale, margin),
            rtol=2e-5,
            atol=1e-4,
            err_msg=kind,
        )
    # The defaults are the papers': ArcFace m = 0.5, CosFace m = 0.35, s = 64.
    np.testing.assert_allclose(
        jl.additive_margin_softmax_loss(cos, labels, kind="cosface"),
        np_margin_softmax(cos, labels, "cosface", 64.0, 0.35),
        rtol=2e-5,
        atol=1e-4,
    )
    # m = 0 is the cross-entropy of the scaled cosines; CosFace is CE of s(cos - m·onehot).
    onehot = np.eye(5, dtype=np.float32)[labels]
    for kind in ("arcface", "cosface"):
        np.testing.assert_allclose(
            jl.additive_margin_softmax_loss(cos, labels, kind=kind, scale=10.0, margin=0.0),
            optax.losses.softmax_cross_entropy_with_integer_labels(10.0 * cos, labels),
            rtol=1e-5,
            atol=1e-6,
        )
    np.testing.assert_allclose(
        jl.additive_margin_softmax_loss(cos, labels, kind="cosface", scale=10.0, margin=0.3),
        optax.losses.softmax_cross_entropy_with_integer_labels(10.0 * (cos - 0.3 * onehot), labels),
        rtol=1e-5,
        atol=1e-6,
    )


def test_additive_margin_softmax_axis_gradients_and_edges(rng):
    # class_weights, ignore_index, where and weights: tests/test_contract.py.
    cos = rng.uniform(-0.9, 0.9, size=(2, 5, 3)).astype(np.float32)  # class axis 1
    labels = rng.integers(0, 5, size=(2, 3))
    np.testing.assert_allclose(
        jl.additive_margin_softmax_loss(cos, labels, scale=8.0, axis=1).ravel(),
        np_margin_softmax(
            np.moveaxis(cos, 1, -1).reshape(6, 5), labels.ravel(), "arcface", 8.0, 0.5
        ),
        rtol=2e-5,
        atol=1e-5,
    )
    with float64():
        c = rng.uniform(-0.9, 0.9, size=(4, 3))
        lab = jnp.array([0, 1, 2, 1])
        f = jax.jit(lambda v: jl.additive_margin_softmax_loss(v, lab, scale=4.0, reduction="sum"))
        np.testing.assert_allclose(jax.grad(f)(c), numeric_grad(f, c), rtol=1e-6, atol=1e-9)
    # cos θ_y = ±1 (sin θ = 0) and beyond: finite values and gradients.
    edge = jnp.array([[1.0, 0.0], [-1.0, 0.5], [1.2, 0.0]])
    value, grad = jax.value_and_grad(
        lambda v: jl.additive_margin_softmax_loss(v, jnp.array([0, 0, 0])).sum()
    )(edge)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    with pytest.raises(ValueError, match="kind must be 'arcface' or 'cosface'"):
        jl.additive_margin_softmax_loss(edge, jnp.array([0, 0, 0]), kind="sphereface")
