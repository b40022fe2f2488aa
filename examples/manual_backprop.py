"""Manual back-propagation, reproduced with ``jax.grad`` and ``optax.sgd``.

The textbook exercise: a two-layer linear network ``out = W2 (W1 x)`` with

    W1 = [[0.11, 0.21],        W2 = [[0.14, 0.15]],      x = [2, 3],   target = 1,
          [0.12, 0.08]]

trained with an L1 loss ``|out - target|`` and SGD at learning rate 0.05. Worked by hand:

    h   = W1 x = [0.85, 0.48]               out = W2 h = 0.191
    dL/dout = sign(out - target) = -1       (L1: the *sign* of the error, not the error)
    dL/dW2  = dL/dout · hᵀ          = [[-0.85, -0.48]]
    dL/dW1  = (W2ᵀ dL/dout) xᵀ      = [[-0.28, -0.42], [-0.30, -0.45]]

The script computes the same numbers with ``jax.grad`` (checks them against the literals),
applies one ``optax.sgd(0.05)`` step, and then shows why many people expect a different update:
with the squared error ``½(out - target)²`` the output gradient is the error itself
(``-0.809``), so every gradient is "multiplied by the error" — that is MSE's rule, not L1's.

Run: ``.venv/bin/python examples/manual_backprop.py``
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxloss as jl

PARAMS = {"W1": jnp.array([[0.11, 0.21], [0.12, 0.08]]), "W2": jnp.array([[0.14, 0.15]])}
X = jnp.array([2.0, 3.0])
TARGET = jnp.array([1.0])
LEARNING_RATE = 0.05

# The hand-computed numbers the script must reproduce.
EXPECTED_GRADS_L1 = {"W1": [[-0.28, -0.42], [-0.30, -0.45]], "W2": [[-0.85, -0.48]]}
EXPECTED_UPDATED_L1 = {"W1": [[0.124, 0.231], [0.135, 0.1025]], "W2": [[0.1825, 0.174]]}


def forward(params, x):
    h = params["W1"] @ x  # hidden layer, no activation
    return params["W2"] @ h, h


def l1_loss(params, x, target):
    out, _ = forward(params, x)
    return jnp.sum(jl.absolute_error(out, target))  # |out - target|


def mse_loss(params, x, target):
    out, _ = forward(params, x)
    return 0.5 * jnp.sum(jl.squared_error(out, target))  # ½ (out - target)²


def sgd_step(loss_fn, params):
    grads = jax.grad(loss_fn)(params, X, TARGET)
    optimizer = optax.sgd(LEARNING_RATE)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    return grads, optax.apply_updates(params, updates)


def show(name, tree):
    for key in ("W1", "W2"):
        rows = np.asarray(tree[key], np.float64).round(5).tolist()
        print(f"  {name}[{key}] = {rows}")


def main():
    np.set_printoptions(suppress=True)
    out, h = forward(PARAMS, X)
    error = float(out[0] - TARGET[0])
    print(
        f"forward: h = W1 x = {np.asarray(h, np.float64).round(4).tolist()},  "
        f"out = W2 h = {float(out[0]):.4f},  error = out - target = {error:.4f}\n"
    )

    print("L1 loss |out - target|: dL/dout = sign(error) = -1")
    grads, updated = sgd_step(l1_loss, PARAMS)
    show("grad", grads)
    show("updated (W - 0.05·grad)", updated)
    for key in ("W1", "W2"):
        np.testing.assert_allclose(grads[key], EXPECTED_GRADS_L1[key], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(updated[key], EXPECTED_UPDATED_L1[key], rtol=1e-6, atol=1e-7)
    print(
        "  -> matches the hand computation: grads [[-0.28,-0.42],[-0.30,-0.45]] and "
        "[[-0.85,-0.48]]\n"
    )

    print(f"MSE loss ½(out - target)²: dL/dout = error = {error:.4f}")
    grads_mse, updated_mse = sgd_step(mse_loss, PARAMS)
    show("grad", grads_mse)
    show("updated", updated_mse)
    # "multiply by the error": every gradient is the L1 gradient (sign -1) times |error|...
    for key in ("W1", "W2"):
        np.testing.assert_allclose(
            grads_mse[key], error * -np.asarray(EXPECTED_GRADS_L1[key]), rtol=1e-5
        )
    print(
        f"  -> each MSE gradient = error ({error:.4f}) × ∂out/∂W: the 'multiply by the error' "
        "rule is MSE's."
    )
    print(
        "     L1 uses only the sign of the error, so its step does not shrink as out "
        "approaches the target."
    )
    print("     (without the ½, MSE's gradient is twice this.)")


if __name__ == "__main__":
    main()
