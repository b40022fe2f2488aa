"""Worker for tests/test_large_vocab.py: the sharded large-vocabulary forms on a 2×4 mesh.

Run with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``. Tokens are split over
``data`` (2), the vocabulary over ``model`` (4), inside ``shard_map``; every value and gradient
is compared with the same call on one device (the naive formulation). Prints one
``RESULT {json}`` line per case.
"""

from __future__ import annotations

import json
import traceback

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P

import jaxloss as jl

from helpers import large_vocab_schedule

N, D, V = 44, 8, 64  # 22 tokens per data shard (chunks of 8: padded), 16 classes per shard


def emit(**row):
    print("RESULT " + json.dumps(row), flush=True)


def max_error(got, want):
    err = 0.0
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        err = max(err, float(np.max(np.abs(g - w) / (np.abs(w) + 1e-3))))
    return err


def data():
    r = np.random.default_rng(0)
    h = r.standard_normal((N, D)).astype(np.float32)
    w = (r.standard_normal((D, V)) * 0.5).astype(np.float32)
    b = r.standard_normal(V).astype(np.float32)
    y = r.integers(0, V, N).astype(np.int32)
    y[[1, 5, 30]] = -100
    weights = r.uniform(0.2, 2.0, N).astype(np.float32)
    cw = r.uniform(0.5, 2.0, V).astype(np.float32)
    return h, w, b, y, weights, cw


def main():
    mesh = jax.make_mesh((2, 4), ("data", "model"), axis_types=(AxisType.Auto,) * 2)
    h, w, b, y, weights, cw = data()
    kw = dict(
        ignore_index=-100,
        label_smoothing=0.1,
        z_loss=1e-2,
        logit_soft_cap=5.0,
    )

    # One device: the naive formulation.
    def naive(h, w, b, reduction):
        return jl.softmax_cross_entropy_with_integer_labels(
            h @ w + b, y, weights=weights, class_weights=cw, reduction=reduction, **kw
        )

    want = jax.value_and_grad(naive, (0, 1, 2))(h, w, b, "weighted_mean")
    # Both modes and both weight layouts, in three programs (store with [D, V] and its tile
    # gradient over blocks of 4 local classes, forced by DW_BLOCK_BYTES; recompute with
    # [V, D]; and recompute with its backward pass over blocks of the local vocabulary, forced
    # by VBLOCK_MIN = 1: 4 blocks of 4 classes per shard): the layouts share every collective,
    # the modes do not.
    for mode, layout in (("store", "dv"), ("recompute", "vd"), ("recompute-vb", "dv")):
        name = f"linear_softmax_cross_entropy/{mode}/{layout}"
        try:
            w_spec = P(None, "model") if layout == "dv" else P("model", None)

            def local(h, w, b, y, weights, cw, mode=mode, layout=layout):
                def loss(h, w, b):
                    return jl.linear_softmax_cross_entropy(
                        h,
                        w,
                        y,
                        bias=b,
                        weights=weights,
                        class_weights=cw,
                        reduction="weighted_mean",
                        axis_name="data",
                        vocab_axis_name="model",
                        chunk_size=8,
                        mode="recompute" if mode == "recompute-vb" else mode,
                        weight_layout=layout,
                        **kw,
                    )

                return jax.value_and_grad(loss, (0, 1, 2))(h, w, b)

            fn = jax.jit(
                jax.shard_map(
                    local,
                    mesh=mesh,
                    in_specs=(
                        P("data", None),
                        w_spec,
                        P("model"),
                        P("data"),
                        P("data"),
                        P("model"),
                    ),
                    out_specs=(P(), (P("data", None), w_spec, P("model"))),
                )
            )
            wl = w if layout == "dv" else np.ascontiguousarray(w.T)
            with large_vocab_schedule(mode, D, store_block=4):
                value, (dh, dw, db) = fn(h, wl, b, y, weights, cw)
            dw = dw if layout == "dv" else dw.T
            emit(case=name, max_error=max_error((value, dh, dw, db), want), rtol=1e-4)
        except Exception:
            emit(case=name, error=traceback.format_exc()[-1500:])

    # reduction="none": per-token losses, tokens over data, vocabulary over model.
    name = "linear_softmax_cross_entropy/none"
    try:

        def local_none(h, w, b, y, weights, cw):
            return jl.linear_softmax_cross_entropy(
                h,
                w,
                y,
                bias=b,
                weights=weights,
                class_weights=cw,
                reduction="none",
                vocab_axis_name="model",
                chunk_size=8,
                **kw,
            )

        fn = jax.jit(
            jax.shard_map(
                local_none,
                mesh=mesh,
                in_specs=(
                    P("data", None),
                    P(None, "model"),
                    P("model"),
                    P("data"),
                    P("data"),
                    P("model"),
                ),
                out_specs=P("data"),
            )
        )
        emit(
            case=name,
            max_error=max_error(fn(h, w, b, y, weights, cw), naive(h, w, b, "none")),
            rtol=1e-4,
        )
    except Exception:
        emit(case=name, error=traceback.format_exc()[-1500:])

    # vocab_parallel_cross_entropy: logits [N, V] over (data, model).
    logits = (h @ w + b).astype(np.float32)
    for reduction in ("weighted_mean", "none"):
        name = f"vocab_parallel_cross_entropy/{reduction}"
        try:

            def plain(x, reduction=reduction):
                return jl.softmax_cross_entropy_with_integer_labels(
                    x, y, weights=weights, class_weights=cw, reduction=reduction, **kw
                )

            def local_vp(x, y, weights, cw, reduction=reduction):
                def loss(x):
                    out = jl.vocab_parallel_cross_entropy(
                        x,
                        y,
                        axis_name="model",
                        weights=weights,
                        class_weights=cw,
                        reduction=reduction,
                        batch_axis_name="data",
                        **kw,
                    )
                    if reduction == "none":  # a non-uniform cotangent per token
                        return jnp.sum(out * jnp.arange(1.0, 23.0)), out
                    return out, out

                (_, out), grad = jax.value_and_grad(loss, has_aux=True)(x)
                return out, grad

            out_spec = P() if reduction != "none" else P("data")
            fn = jax.jit(
                jax.shard_map(
                    local_vp,
                    mesh=mesh,
                    in_specs=(P("data", "model"), P("data"), P("data"), P("model")),
                    out_specs=(out_spec, P("data", "model")),
                )
            )
            got = fn(logits, y, weights, cw)
            if reduction == "none":
                ramp = jnp.asarray(np.tile(np.arange(1.0, 23.0), 2), jnp.float32)
                per, vjp = jax.vjp(plain, logits)
                expected = (per, vjp(ramp)[0])
            else:
                expected = jax.value_and_grad(plain)(logits)
            emit(case=name, max_error=max_error(got, expected), rtol=1e-4)
        except Exception:
            emit(case=name, error=traceback.format_exc()[-1500:])


if __name__ == "__main__":
    main()
