"""Why inverted dropout scales kept activations by 1/keep_prob.

A linear unit ``y = w · x`` receives dropped-out inputs. Without scaling, the expected
activation during training is ``keep_prob · (w · x)`` — smaller than at evaluation time, when
nothing is dropped — so the network sees a different scale in training and in use. Inverted
dropout (``jaxloss.dropout``) divides the kept inputs by ``keep_prob``, so the expectation over
masks equals the no-dropout activation and evaluation needs no correction.

For keep probabilities 1.0, 0.7, 0.5 and 0.3 the script averages the activation over 20,000
random masks, with and without the 1/keep_prob scaling, and prints both next to the
no-dropout value (with the Monte-Carlo standard error).

Run: ``.venv/bin/python examples/dropout_expectation.py``
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jaxloss as jl

NUM_INPUTS = 256
NUM_MASKS = 20_000
KEEP_PROBS = (1.0, 0.7, 0.5, 0.3)
SEED = 0


@jax.jit
def activations(keys, x, w, rate):
    """``w · dropout(x)`` for each key: inverted (scaled) and plain (unscaled) dropout."""

    def one(key):
        scaled = jl.dropout(key, x, rate)  # kept inputs × 1/keep_prob
        unscaled = scaled * (1.0 - rate)  # the same mask, no rescaling
        return jnp.dot(w, scaled), jnp.dot(w, unscaled)

    return jax.vmap(one)(keys)


def main():
    kx, kw, kmask = jax.random.split(jax.random.key(SEED), 3)
    x = jax.random.uniform(kx, (NUM_INPUTS,), minval=0.0, maxval=2.0)
    w = jax.random.normal(kw, (NUM_INPUTS,)) / jnp.sqrt(NUM_INPUTS) + 0.05
    reference = float(jnp.dot(w, x))
    keys = jax.random.split(kmask, NUM_MASKS)

    print(
        f"linear unit y = w·x with {NUM_INPUTS} inputs; no-dropout activation y = {reference:.4f}"
    )
    print(f"mean activation over {NUM_MASKS:,} dropout masks:\n")
    print(
        f"{'keep_prob':>9} | {'scaled by 1/keep':>17} | {'unscaled':>9} | "
        f"{'unscaled/no-dropout':>19} | {'scaled - no-dropout':>19}"
    )
    print("-" * 85)
    for keep in KEEP_PROBS:
        scaled, unscaled = activations(keys, x, w, 1.0 - keep)
        scaled, unscaled = np.asarray(scaled, np.float64), np.asarray(unscaled, np.float64)
        stderr = scaled.std() / np.sqrt(NUM_MASKS)
        diff = scaled.mean() - reference
        print(
            f"{keep:9.1f} | {scaled.mean():17.4f} | {unscaled.mean():9.4f} | "
            f"{unscaled.mean() / reference:19.3f} | {diff:+10.4f} (±{stderr:.4f})"
        )
        assert abs(diff) < 5 * stderr + 1e-6, "the scaled mean should match no-dropout"
        assert abs(unscaled.mean() / reference - keep) < 0.02
    print()
    print("The unscaled activation shrinks to keep_prob × the no-dropout value (last-but-one")
    print("column ≈ keep_prob), so a network trained that way sees larger activations at test")
    print("time. With the 1/keep_prob scaling the mean matches the no-dropout activation within")
    print("Monte-Carlo error at every keep probability, and evaluation is simply")
    print("dropout(..., deterministic=True), the identity.")


if __name__ == "__main__":
    main()
