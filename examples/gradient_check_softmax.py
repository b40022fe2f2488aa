"""Checking a softmax cross-entropy gradient with finite differences — and the classic mistake.

The analytic gradient of ``L(z) = -log softmax(z)[y]`` is ``softmax(z) - onehot(y)``. A finite
difference check must move **one logit at a time**:

    ∂L/∂z_i ≈ (L(z + h e_i) - L(z - h e_i)) / 2h.

A common mistake is to move every logit at once, ``(L(z + h·1) - L(z - h·1)) / 2h``. Softmax is
shift invariant (``softmax(z + c) = softmax(z)``), so that difference is ~0 whatever the
gradient is: it measures the directional derivative along (1, …, 1), which is
``Σ_i (p_i - y_i) = 0``, not the gradient.

The script prints the analytic gradient, ``jax.grad``, ``jaxloss.check_grads``'s report, the
all-at-once "check", and shows ``check_grads`` catching a deliberately wrong gradient.

Run: ``.venv/bin/python examples/gradient_check_softmax.py``
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jaxloss as jl

LOGITS = np.array([2.0, -1.0, 0.5, 1.5, -0.3])
LABEL = 3


def loss(z, y):
    return jl.softmax_cross_entropy_with_integer_labels(z, y)


def fmt(v):
    return "[" + ", ".join(f"{x:+.6f}" for x in np.asarray(v, np.float64)) + "]"


@jax.custom_vjp
def buggy_loss(z):
    """The same loss with a hand-written backward pass that forgets to subtract onehot(y)."""
    return loss(z, LABEL)


buggy_loss.defvjp(
    lambda z: (buggy_loss(z), z), lambda z, g: (g * jax.nn.softmax(z),)
)  # should be softmax(z) - onehot


def main():
    with jax.enable_x64(True):  # finite differences need float64
        z = jnp.asarray(LOGITS)
        p = jax.nn.softmax(z)
        analytic = np.asarray(p - jax.nn.one_hot(LABEL, len(LOGITS), dtype=z.dtype))
        print(
            f"logits z = {LOGITS.tolist()}, label y = {LABEL}, L = -log softmax(z)[y] = "
            f"{float(loss(z, LABEL)):.6f}\n"
        )
        print(f"analytic softmax(z) - onehot(y) = {fmt(analytic)}")
        print(f"jax.grad                        = {fmt(jax.grad(loss)(z, LABEL))}")

        h = 1e-6
        one_at_a_time = np.array(
            [
                (loss(z.at[i].add(h), LABEL) - loss(z.at[i].add(-h), LABEL)) / (2 * h)
                for i in range(len(LOGITS))
            ]
        )
        print(f"central differences, one logit  = {fmt(one_at_a_time)}")
        all_at_once = float((loss(z + h, LABEL) - loss(z - h, LABEL)) / (2 * h))
        print(f"all logits shifted at once      = {all_at_once:+.2e}   <- the classic mistake\n")

    report = jl.check_grads(loss, (LOGITS, LABEL))
    print(f"jaxloss.check_grads: {report}\n")

    print("Why the all-at-once number is ~0: softmax(z + c) = softmax(z), so moving every logit")
    print("by the same h leaves the loss unchanged. That difference is the derivative along")
    print(
        f"(1, ..., 1), i.e. the sum of the gradient's entries: Σ(p - y) = "
        f"{float(np.sum(analytic)):+.1e}."
    )
    print("It is ~0 for every softmax loss, right or wrong, so it checks nothing.\n")

    print("A backward pass that forgets '- onehot(y)' (gradient = softmax(z)):")
    try:
        jl.check_grads(buggy_loss, (LOGITS,))
    except jl.GradCheckError as err:
        print(f"  check_grads raised GradCheckError:\n  {err}")
        assert err.report.index == (LABEL,)
    print("  It names the coordinate (the true class), both values and the error; the")
    print("  all-at-once difference is the same ~0 for this buggy loss and for the correct one.")


if __name__ == "__main__":
    main()
