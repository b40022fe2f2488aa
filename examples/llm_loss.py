"""A causal language-model step with a 32K vocabulary: the fused linear cross-entropy.

A tiny causal model (tied input/output embeddings ``E [V, D]``, one causal mixing layer) reads a
synthetic packed token stream: documents of random lengths drawn from a Zipf-like distribution
over a 32000-token vocabulary, packed back to back into rows of 128 tokens; the tail of the last
row is padding whose labels are ``-100``. One training step (the mean next-token loss and its
gradients with respect to every parameter) is computed two ways:

* **naive**: ``softmax_cross_entropy_with_integer_labels(hidden @ E.T, labels)``, which holds
  the ``[tokens, V]`` logits and their gradient;
* **fused**: ``linear_softmax_cross_entropy(hidden, E, labels, weight_layout="vd")``, which
  computes the same loss in chunks of tokens and never holds the logits.

It prints both losses, the largest gradient difference, the compiled temporary memory of each
step (``memory_analysis()``) and its time on this machine. Then the same fused step runs on 8
host devices inside ``shard_map``: tokens split over a ``data`` axis of 2, the vocabulary (the
rows of ``E``) over a ``model`` axis of 4, with ``axis_name="data"`` for the exact global token
mean and ``vocab_axis_name="model"``; the embedding lookup is vocab-parallel too (each shard
looks up the tokens it owns, a ``psum`` adds them). The script checks that loss and gradients
equal the one-device step and counts the all-gathers in the compiled program (none: the
logits' vocabulary axis is never gathered). Run from the repository root (it sets up the
8 host devices itself)::

    .venv/bin/python examples/llm_loss.py
"""

from __future__ import annotations

import os
import re
import time

# Before JAX is imported: 8 CPU devices (the flag only affects the CPU backend).
flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=8".strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import AxisType  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import jaxloss as jl  # noqa: E402

VOCAB, WIDTH, ROWS, LENGTH, PAD = 32000, 64, 4, 128, -100


def packed_stream(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and next-token labels ``[ROWS, LENGTH]`` from packed documents; tail padded."""
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, VOCAB + 1)
    zipf = 1.0 / ranks**1.1
    zipf /= zipf.sum()
    docs, total = [], 0
    while total < ROWS * LENGTH - 40:  # leave a padded tail
        n = int(rng.integers(8, 96))
        docs.append(rng.choice(VOCAB, size=n, p=zipf))
        total += n
    stream = np.concatenate(docs)[: ROWS * LENGTH - 40]
    tokens = np.zeros(ROWS * LENGTH + 1, np.int32)
    tokens[: len(stream)] = stream
    labels = tokens[1:].copy()
    labels[len(stream) - 1 :] = PAD  # no next token past the stream's end
    return tokens[:-1].reshape(ROWS, LENGTH), labels.reshape(ROWS, LENGTH)


def init(seed: int = 1) -> dict[str, jax.Array]:
    rng = np.random.default_rng(seed)
    return {
        "embed": jnp.asarray(rng.normal(size=(VOCAB, WIDTH)) * 0.3, jnp.float32),
        "mix": jnp.asarray(rng.normal(size=(WIDTH, WIDTH)) / np.sqrt(WIDTH), jnp.float32),
    }


def hidden_states(params: dict[str, jax.Array], embedded: jax.Array) -> jax.Array:
    """One causal layer: each position adds a projection of the mean of the ones before it."""
    counts = jnp.arange(1, embedded.shape[1] + 1, dtype=embedded.dtype)[None, :, None]
    causal_mean = jnp.cumsum(embedded, axis=1) / counts
    return jnp.tanh(embedded + causal_mean @ params["mix"])


def naive_loss(params, tokens, labels):
    h = hidden_states(params, params["embed"][tokens])
    logits = h @ params["embed"].T
    return jl.softmax_cross_entropy_with_integer_labels(
        logits, labels, ignore_index=PAD, reduction="mean"
    )


def fused_loss(params, tokens, labels):
    h = hidden_states(params, params["embed"][tokens])
    # 128 tokens per chunk (the default would take all 512 of this small batch at once).
    return jl.linear_softmax_cross_entropy(
        h, params["embed"], labels, weight_layout="vd", ignore_index=PAD, chunk_size=128
    )


def sharded_loss(params, tokens, labels):
    """Inside shard_map: ``embed`` is this device's block of rows (vocabulary shard)."""
    table = params["embed"]
    local = tokens - jax.lax.axis_index("model") * table.shape[0]
    owned = (local >= 0) & (local < table.shape[0])
    picked = table[jnp.clip(local, 0, table.shape[0] - 1)]
    embedded = jax.lax.psum(jnp.where(owned[..., None], picked, 0.0), "model")
    h = hidden_states(params, embedded)
    return jl.linear_softmax_cross_entropy(
        h,
        table,
        labels,
        weight_layout="vd",
        ignore_index=PAD,
        axis_name="data",
        vocab_axis_name="model",
        chunk_size=128,
    )


def timed(compiled, *args, repeats: int = 3) -> float:
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def max_relative(a, b) -> float:
    return max(
        float(jnp.max(jnp.abs(x - y)) / jnp.max(jnp.abs(y)))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def main() -> None:
    tokens, labels = packed_stream()
    params = init()
    real = int((labels != PAD).sum())
    print(f"{ROWS}×{LENGTH} tokens, {real} with a label, vocabulary {VOCAB}, width {WIDTH}")

    steps = {}
    for name, fn in (("naive", naive_loss), ("fused", fused_loss)):
        compiled = jax.jit(jax.value_and_grad(fn)).lower(params, tokens, labels).compile()
        temp = compiled.memory_analysis().temp_size_in_bytes / 2**20
        (loss, grads), seconds = (
            compiled(params, tokens, labels),
            timed(compiled, params, tokens, labels),
        )
        steps[name] = (loss, grads)
        print(
            f"{name:6s} loss {float(loss):.6f}  temp memory {temp:7.1f} MiB  "
            f"step {seconds * 1e3:6.0f} ms"
        )
    (loss_n, grads_n), (loss_f, grads_f) = steps["naive"], steps["fused"]
    print(
        f"loss difference {abs(float(loss_f - loss_n)):.1e}, gradients differ by at most "
        f"{max_relative(grads_f, grads_n):.1e} (relative to their largest entry)"
    )
    assert abs(float(loss_f - loss_n)) < 1e-5 and max_relative(grads_f, grads_n) < 1e-4

    mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    param_specs = {"embed": P("model", None), "mix": P()}
    step = jax.jit(
        jax.shard_map(
            jax.value_and_grad(sharded_loss),
            mesh=mesh,
            in_specs=(param_specs, P("data", None), P("data", None)),
            out_specs=(P(), param_specs),
        )
    )
    compiled = step.lower(params, tokens, labels).compile()
    loss_s, grads_s = compiled(params, tokens, labels)
    gathers = len(re.findall(r"\ball-gather(?:-start)?\(", compiled.as_text()))
    print(
        f"8 devices (data 2 × model 4): loss {float(loss_s):.6f}, gradients differ from one "
        f"device by at most {max_relative(grads_s, grads_n):.1e}; all-gathers: {gathers}"
    )
    assert abs(float(loss_s - loss_n)) < 1e-5 and max_relative(grads_s, grads_n) < 1e-4
    assert gathers == 0


if __name__ == "__main__":
    main()
