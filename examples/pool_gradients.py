"""Finishing back-propagation from an intermediate result, and per-example weighting by VJP.

Two questions users ask about back-propagation, answered on scikit-learn's digits:

1. *"I have a gradient for an intermediate representation — how do I push it the rest of the
   way to the parameters?"* (Theano's ``known_grads``.) Here the head of the network is treated
   as a black box: its gradient with respect to the encoder output ``h`` is replaced by a
   **sampled** two-point estimate (random directions, finite differences, no backward pass
   through the head), and :func:`jaxloss.backprop_from` finishes back-propagation to the
   encoder's parameters. With the exact ``∂L/∂h`` it reproduces ``jax.grad`` end to end; with
   the sampled one it trains nearly as well. :func:`jaxloss.inject_grad` does the same inside
   one ``jax.grad``.
2. *"How do I weight examples when back-propagating?"* (PyTorch's ``loss.backward(weights)``.)
   :func:`jaxloss.weighted_grad` is one VJP with cotangent ``weights``; it equals the gradient of
   the weighted loss and the weighted sum of per-example gradients.

Run: ``.venv/bin/python examples/pool_gradients.py``
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from sklearn.datasets import load_digits

import jaxloss as jl

HIDDEN = 32
DIRECTIONS = 16  # random directions per example for the sampled gradient estimate
SIGMA = 1e-2  # finite-difference step of the estimate
STEPS = 100
LEARNING_RATE = 0.5
SEED = 0


def init(key):
    k1, k2 = jax.random.split(key)
    encoder = {"w": jax.random.normal(k1, (64, HIDDEN)) / 8.0, "b": jnp.zeros(HIDDEN)}
    head = {"w": jax.random.normal(k2, (HIDDEN, 10)) / jnp.sqrt(HIDDEN), "b": jnp.zeros(10)}
    return encoder, head


def encode(encoder, x):
    return jnp.tanh(x @ encoder["w"] + encoder["b"])  # h: [B, HIDDEN]


def per_example_head_loss(head, h, y):
    return jl.softmax_cross_entropy_with_integer_labels(h @ head["w"] + head["b"], y)  # [B]


def head_loss(head, h, y):
    return jnp.mean(per_example_head_loss(head, h, y))


def sampled_grad_h(key, head, h, y):
    """Two-point estimate of ∂L/∂h from head *values* only (the head is a black box).

    g_i ≈ mean_k [(l_i(h_i + σu_k) - l_i(h_i - σu_k)) / 2σ] u_k, u_k ~ N(0, I), per example.
    """
    u = jax.random.normal(key, (DIRECTIONS, *h.shape))
    plus = jax.vmap(lambda d: per_example_head_loss(head, h + SIGMA * d, y))(u)
    minus = jax.vmap(lambda d: per_example_head_loss(head, h - SIGMA * d, y))(u)
    coeff = (plus - minus) / (2 * SIGMA)  # [K, B]
    return jnp.einsum("kb,kbd->bd", coeff, u) / DIRECTIONS / h.shape[0]  # mean over the batch


def cosine(a, b):
    a, b = ravel_pytree(a)[0], ravel_pytree(b)[0]
    return float(jnp.dot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b)))


def max_diff(a, b):
    return max(
        float(jnp.max(jnp.abs(u - v)))
        for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@jax.jit
def known_gradient_demo(encoder, head, x, y):
    h = encode(encoder, x)
    g_h = jax.grad(head_loss, argnums=1)(head, h, y)  # ∂L/∂h, [B, HIDDEN]
    end_to_end = jax.grad(lambda e: head_loss(head, encode(e, x), y))(encoder)
    via_h = jl.backprop_from(encode, encoder, g_h, x)
    via_inject = jax.grad(lambda e: jl.inject_grad(encode(e, x), g_h))(encoder)
    estimate = sampled_grad_h(jax.random.key(1), head, h, y)
    sampled = jl.backprop_from(encode, encoder, estimate, x)
    return g_h, end_to_end, via_h, via_inject, estimate, sampled


def train_step(encoder, head, x, y, key, sampled):
    h = encode(encoder, x)
    g_head, g_h = jax.grad(head_loss, argnums=(0, 1))(head, h, y)
    if sampled:
        g_h = sampled_grad_h(key, head, h, y)  # replace ∂L/∂h
    g_encoder = jl.backprop_from(encode, encoder, g_h, x)  # finish back-prop
    step = lambda p, g: p - LEARNING_RATE * g  # noqa: E731
    return jax.tree.map(step, encoder, g_encoder), jax.tree.map(step, head, g_head)


@jax.jit(static_argnames="sampled")
def train(encoder, head, x, y, key, sampled):
    def body(carry, key):
        return train_step(*carry, x, y, key, sampled), None

    (encoder, head), _ = jax.lax.scan(body, (encoder, head), jax.random.split(key, STEPS))
    loss = head_loss(head, encode(encoder, x), y)
    accuracy = jnp.mean(jnp.argmax(encode(encoder, x) @ head["w"] + head["b"], -1) == y)
    return loss, accuracy


def per_example_loss(p, x, y):
    return per_example_head_loss(p["head"], encode(p["encoder"], x), y)


@jax.jit
def weighting_demo(params, weights, x, y):
    by_vjp = jl.weighted_grad(per_example_loss, params, weights, x, y)
    weighted_loss = jax.grad(
        lambda p: jl.softmax_cross_entropy_with_integer_labels(
            encode(p["encoder"], x) @ p["head"]["w"] + p["head"]["b"],
            y,
            weights=weights,
            reduction="sum",
        )
    )(params)
    per_example = jl.per_example_grads(
        lambda p, x, y: per_example_loss(p, x[None], y[None])[0], params, x, y
    )
    summed = jax.tree.map(lambda g: jnp.tensordot(weights, g, axes=1), per_example)
    return by_vjp, weighted_loss, summed


def main():
    digits = load_digits()
    x = jnp.asarray(digits.data / 16.0, jnp.float32)
    y = jnp.asarray(digits.target)
    encoder, head = init(jax.random.key(SEED))

    print("1. Back-propagating from the encoder output h")
    g_h, end_to_end, via_h, via_inject, estimate, sampled = known_gradient_demo(encoder, head, x, y)
    print(
        f"   backprop_from(encode, encoder, ∂L/∂h, x) vs jax.grad end to end: max |diff| = "
        f"{max_diff(via_h, end_to_end):.1e}"
    )
    print(
        f"   jax.grad(inject_grad(encode(e, x), ∂L/∂h))  vs jax.grad end to end: max |diff| = "
        f"{max_diff(via_inject, end_to_end):.1e}"
    )
    print(
        f"   sampled ∂L/∂h ({DIRECTIONS} random directions per example): cosine with the exact "
        f"∂L/∂h {cosine(estimate, g_h):.3f};\n   the encoder gradient it implies has cosine "
        f"{cosine(sampled, end_to_end):.3f} with the exact one"
    )
    assert max_diff(via_h, end_to_end) < 1e-6 and max_diff(via_inject, end_to_end) < 1e-6

    print(
        f"\n   training {STEPS} full-batch SGD steps (head: its exact gradient; encoder: "
        "backprop_from the given ∂L/∂h)"
    )
    for label, use_sampled in (("exact ∂L/∂h  ", False), ("sampled ∂L/∂h", True)):
        loss, acc = train(encoder, head, x, y, jax.random.key(2), use_sampled)
        print(f"   {label}: final loss {float(loss):.4f}, training accuracy {float(acc):.3f}")

    print("\n2. Per-example weights by VJP (PyTorch's loss.backward(weights))")
    params = {"encoder": encoder, "head": head}
    weights = jnp.where(y == 3, 5.0, 1.0) / x.shape[0]  # digit 3 weighs 5x
    by_vjp, weighted_loss, summed = weighting_demo(params, weights, x, y)
    print(
        f"   weighted_grad (one VJP, cotangent = weights) vs grad of the weighted loss "
        f"(weights=, reduction='sum'): max |diff| = {max_diff(by_vjp, weighted_loss):.1e}"
    )
    print(
        f"   weighted_grad vs Σ_i w_i · per_example_grads_i: max |diff| = "
        f"{max_diff(by_vjp, summed):.1e}"
    )
    assert max_diff(by_vjp, weighted_loss) < 1e-5 and max_diff(by_vjp, summed) < 1e-5
    print("   One backward pass gives the weighted gradient; no per-example gradients needed.")


if __name__ == "__main__":
    main()
