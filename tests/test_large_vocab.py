"""jaxloss.large_vocab: the fused linear + cross-entropy and the vocab-parallel cross-entropy.

References: the naive formulation (``hidden @ weight`` then the integer-label cross-entropy of
classification.py, differentiated by JAX), a NumPy float64 computation written out here, and
central finite differences in float64. The multi-device forms run in a subprocess with 8 host
devices (``large_vocab_worker.py``) against one device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss as jl
import jaxloss.large_vocab as large_vocab

from helpers import assert_grads_match_fd, float64, large_vocab_schedule

HERE = Path(__file__).resolve().parent
N, D, V = 37, 6, 29  # 37 tokens: never a multiple of the chunks used below


def _data(seed=0, n=N, d=D, v=V, ignored=(3, 10)):
    r = np.random.default_rng(seed)
    h = r.standard_normal((n, d)).astype(np.float32)
    w = r.standard_normal((d, v)).astype(np.float32)
    b = r.standard_normal((v,)).astype(np.float32)
    y = r.integers(0, v, n).astype(np.int32)
    y[list(ignored)] = -100
    return h, w, b, y


#: The schedules: "recompute-vb" is mode="recompute" with its backward pass over blocks of
#: the vocabulary, forced at these sizes (large_vocab.VBLOCK_MIN = 1; at the defaults it runs
#: when a block holds at least VBLOCK_MIN classes, e.g. N = 4096 tokens at V = 128000).
#: "store" forms each chunk's tile gradient over blocks of classes, forced here to 8 classes
#: (V = 29: three blocks and a tail of 5; at the defaults 4096 classes at D = 1024), while
#: "recompute" (token-chunked) keeps the default, one block of all V classes.
MODES = ("store", "recompute", "recompute-vb")
STORE_BLOCK = 8


def _fused(h, w, y, *, mode, **kw):
    """``linear_softmax_cross_entropy`` under one of :data:`MODES`."""
    with large_vocab_schedule(mode, np.shape(h)[-1], store_block=STORE_BLOCK) as forced:
        return jl.linear_softmax_cross_entropy(h, w, y, mode=forced, **kw)


def _naive(h, w, b, y, *, layout="dv", **kw):
    logits = (h @ w if layout == "dv" else h @ w.T) + (0.0 if b is None else b)
    return jl.softmax_cross_entropy_with_integer_labels(logits, y, **kw)


def _both(kw, layout="dv", chunk=8, bias=True, seed=0):
    """Value and gradients (hidden, weight, bias) of both fused modes and of the naive form,
    in one compiled program: ``(store, recompute, recompute-vb), naive``."""
    h, w, b, y = _data(seed)
    if layout == "vd":
        w = np.ascontiguousarray(w.T)
    b = b if bias else None
    argnums = (0, 1, 2) if bias else (0, 1)

    def fused(mode):
        def loss(h, w, b):
            return _fused(h, w, y, bias=b, chunk_size=chunk, mode=mode, weight_layout=layout, **kw)

        return jax.value_and_grad(loss, argnums)

    def naive(h, w, b):
        return _naive(h, w, b, y, layout=layout, **kw)

    def everything(h, w, b):
        want = jax.value_and_grad(naive, argnums)(h, w, b)
        return tuple(fused(m)(h, w, b) for m in MODES), (want,) * len(MODES)

    return jax.jit(everything)(h, w, b)


def _close(got, want, rtol=2e-5, atol=2e-6):
    for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=rtol, atol=atol)


R = np.random.default_rng(5)
SAMPLE_WEIGHTS = R.uniform(0.0, 2.0, N).astype(np.float32)
SAMPLE_WEIGHTS[7] = 0.0
CLASS_WEIGHTS = R.uniform(0.5, 2.0, V).astype(np.float32)
WHERE = R.uniform(size=N) < 0.8

CONTRACT_CASES = {
    "mean": dict(ignore_index=-100, reduction="mean"),
    "sum+weights": dict(ignore_index=-100, weights=SAMPLE_WEIGHTS, reduction="sum"),
    "weighted_mean+cw+smoothing": dict(
        ignore_index=-100,
        class_weights=CLASS_WEIGHTS,
        label_smoothing=0.1,
        weights=SAMPLE_WEIGHTS,
        reduction="weighted_mean",
    ),
    "nonzero+where+zloss+cap": dict(
        ignore_index=-100,
        where=WHERE,
        weights=SAMPLE_WEIGHTS,
        z_loss=1e-2,
        logit_soft_cap=3.0,
        reduction="sum_by_nonzero_weights",
    ),
    "mean+all": dict(
        ignore_index=-100,
        class_weights=CLASS_WEIGHTS,
        label_smoothing=0.2,
        z_loss=1e-3,
        logit_soft_cap=2.0,
        reduction="mean",
    ),
}


@pytest.mark.parametrize("case", sorted(CONTRACT_CASES))
def test_value_and_grads_equal_the_naive_formulation(case):
    _close(*_both(CONTRACT_CASES[case]))


def test_the_recompute_backward_schedule_is_planned_from_the_forward_tile():
    # N = 4096 tokens, V = 128000: chunk 128 (a [128, V] tile), so the [4096, V_b] tiles of the
    # vocabulary-blocked backward hold 128 · 128000 / 4096 = 4000 classes (32 blocks, no tail).
    assert large_vocab._chunk_size(None, 4096, 128000, "recompute") == 128
    assert large_vocab._vocab_block(128, 4096, 128000) == 4000
    # V = 130000: 4062 classes would leave a tail block; the fewest blocks that divide V
    # (40 of 3250) are taken instead.
    assert large_vocab._vocab_block(128, 4096, 130000) == 3250
    # Too many tokens for a block of VBLOCK_MIN classes, or one chunk: the token chunks.
    assert large_vocab._vocab_block(16, 65536, 1000) == 0
    assert large_vocab._vocab_block(512, 512, 32000) == 0


def test_default_chunks_as_documented():
    # The largest power of two with a [chunk, V] tile of at most 2^24 elements, >= 512 tokens
    # in store mode, at most the token count.
    chunk = large_vocab._chunk_size
    assert [chunk(None, 4096, v, "store") for v in (32000, 128000, 256000)] == [512] * 3
    assert [chunk(None, 4096, v, "recompute") for v in (32000, 128000, 256000)] == [512, 128, 64]
    assert chunk(None, 4096, 1000, "store") == 1024  # CHUNK_MAX
    assert chunk(None, 300, 128000, "store") == 300
    assert chunk(256, 4096, 128000, "store") == 256


def test_the_tile_gradient_blocks():
    # 16 MiB of float32 dW per block: 4096 classes at D = 1024 (31.25 of them at V = 128000:
    # the fewest blocks that divide V, 32 of 4000); never fewer than DW_BLOCK_MIN classes.
    assert large_vocab._dw_block(32768, 1024) == 4096
    assert large_vocab._dw_block(128000, 1024) == 4000
    assert large_vocab._dw_block(128000, 65536) == large_vocab.DW_BLOCK_MIN == 128
    assert large_vocab._dw_block(29, 6) == 29


def test_vd_layout_and_no_bias():
    kw = dict(ignore_index=-100, label_smoothing=0.1, z_loss=1e-2, reduction="mean")
    _close(*_both(kw, layout="vd", chunk=5))
    _close(*_both(kw, layout="vd", bias=False, chunk=64))  # one chunk, N < chunk


def test_reduction_none_with_a_non_uniform_cotangent():
    h, w, b, y = _data()
    kw = dict(ignore_index=-100, weights=SAMPLE_WEIGHTS, z_loss=1e-2, logit_soft_cap=4.0)
    ct = np.random.default_rng(9).standard_normal(N).astype(np.float32)

    def fused(mode):
        return lambda h, w, b: _fused(
            h, w, y, bias=b, reduction="none", chunk_size=8, mode=mode, **kw
        )

    def naive(h, w, b):
        return _naive(h, w, b, y, reduction="none", **kw)

    def pulled(fn):
        out, vjp = jax.vjp(fn, h, w, b)
        return out, vjp(jnp.asarray(ct))

    got, want = jax.jit(
        lambda: (tuple(pulled(fused(m)) for m in MODES), (pulled(naive),) * len(MODES))
    )()
    _close(got, want)


@pytest.mark.parametrize("mode", MODES)
def test_parts_add_over_microbatches(mode):
    h, w, b, y = _data()
    kw = dict(ignore_index=-100, class_weights=CLASS_WEIGHTS)

    def parts(h, y):
        return _fused(h, w, y, bias=b, reduction="parts", mode=mode, chunk_size=4, **kw)

    def run():
        acc = parts(h[:20], y[:20]) + parts(h[20:], y[20:])
        # The gradient of the total of a microbatch is the naive gradient of its sum.
        g = jax.grad(lambda h: parts(h, y).total)(h)
        g_naive = jax.grad(lambda h: _naive(h, w, b, y, reduction="sum", **kw))(h)
        return acc, g, g_naive

    acc, g, g_naive = jax.jit(run)()
    want = _naive(h, w, b, y, reduction="weighted_mean", **kw)
    np.testing.assert_allclose(acc.value("weighted_mean"), want, rtol=1e-5)
    np.testing.assert_allclose(g, g_naive, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("mode", MODES)
def test_all_ignored_chunks_and_all_ignored_batch(mode):
    h, w, b, y = _data(ignored=range(8, 24))  # chunks 1 and 2 (of 8 tokens) wholly ignored
    h[10] = np.nan  # an ignored token's NaN reaches nothing
    kw = dict(ignore_index=-100, reduction="mean")

    def fused(h, w, b, y):
        return _fused(h, w, y, bias=b, chunk_size=8, mode=mode, **kw)

    vg = jax.jit(jax.value_and_grad(fused, (0, 1, 2)))
    got = vg(h, w, b, y)
    h_clean = np.where(np.isnan(h), 0.0, h)
    want = jax.value_and_grad(lambda h, w, b: _naive(h, w, b, y, **kw), (0, 1, 2))(h_clean, w, b)
    _close(got, want)
    value, grads = vg(h, w, b, np.full(N, -100, np.int32))
    assert float(value) == 0.0
    assert all(not np.any(np.asarray(g)) for g in grads)


def _numpy_loss(z, y, *, smoothing, z_loss, cap, cw):
    """The per-token loss of logits ``z`` in float64 NumPy, written out from the formula."""
    s = cap * np.tanh(z / cap) if cap else z
    m = s.max(axis=-1, keepdims=True)
    lse = (m + np.log(np.exp(s - m).sum(axis=-1, keepdims=True)))[:, 0]
    rows = np.arange(len(y))
    ce = cw[y] * (lse - s[rows, y])
    smooth = (cw * (lse[:, None] - s)).sum(axis=-1)
    return (1 - smoothing) * ce + smoothing / s.shape[-1] * smooth + z_loss * cw[y] * lse**2


@pytest.mark.parametrize("smoothing", [0.15, 1.0])
@pytest.mark.parametrize("mode", MODES)
def test_against_numpy_and_finite_differences_in_float64(mode, smoothing):
    h, w, b, y = _data(seed=3, n=9, d=3, v=7, ignored=())
    cw = CLASS_WEIGHTS[:7].astype(np.float64)
    opts = dict(smoothing=smoothing, z_loss=0.05, cap=1.5, cw=cw)
    h64, w64, b64 = (a.astype(np.float64) for a in (h, w, b))
    want = np.mean(_numpy_loss(h64 @ w64 + b64, y, **opts))
    with float64():
        args = tuple(jnp.asarray(a, jnp.float64) for a in (h, w, b))

        def fused(h, w, b):
            return _fused(
                h,
                w,
                y,
                bias=b,
                class_weights=opts["cw"],
                label_smoothing=smoothing,
                z_loss=0.05,
                logit_soft_cap=1.5,
                chunk_size=4,
                mode=mode,
            )

        got = jax.jit(fused)(*args)
        assert got.dtype == jnp.float64
        np.testing.assert_allclose(float(got), want, rtol=1e-12)
        assert_grads_match_fd(fused, args, wrt=(0, 1, 2), rtol=1e-6, atol=1e-9)


def test_plain_cross_entropy_z_loss_and_soft_cap():
    h, w, b, y = _data(seed=4, n=6, d=3, v=5, ignored=())
    logits = (h @ w + b).astype(np.float64)
    cw = CLASS_WEIGHTS[:5].astype(np.float64)
    opts = dict(smoothing=0.1, z_loss=0.02, cap=2.0, cw=cw)
    want = _numpy_loss(logits, y, **opts)
    with float64():

        def plain(x, reduction="none"):
            return jl.softmax_cross_entropy_with_integer_labels(
                x,
                y,
                class_weights=cw,
                label_smoothing=0.1,
                z_loss=0.02,
                logit_soft_cap=2.0,
                reduction=reduction,
            )

        np.testing.assert_allclose(plain(jnp.asarray(logits)), want, rtol=1e-12)
        assert_grads_match_fd(lambda x: plain(x, "mean"), (jnp.asarray(logits),), wrt=(0,))
    # Off by default, and off means the very same numbers.
    x = jnp.asarray(logits, jnp.float32)
    default = jl.softmax_cross_entropy_with_integer_labels(x, y)
    explicit = jl.softmax_cross_entropy_with_integer_labels(x, y, z_loss=0.0, logit_soft_cap=None)
    np.testing.assert_array_equal(default, explicit)
    # bfloat16 logits with the new options: float32 loss, bf16 gradient.
    xb = x.astype(jnp.bfloat16)
    value = jl.softmax_cross_entropy_with_integer_labels(xb, y, z_loss=0.1, logit_soft_cap=3.0)
    assert value.dtype == jnp.float32
    g = jax.grad(
        lambda x: jl.softmax_cross_entropy_with_integer_labels(x, y, z_loss=0.1, reduction="sum")
    )(xb)
    assert g.dtype == jnp.bfloat16
    with pytest.raises(ValueError, match="logit_soft_cap"):
        jl.softmax_cross_entropy_with_integer_labels(x, y, logit_soft_cap=0.0)


def test_aux_values():
    h, w, b, y = _data()
    kw = dict(ignore_index=-100, z_loss=1e-2, weights=SAMPLE_WEIGHTS)
    fused = jax.jit(
        jl.linear_softmax_cross_entropy,
        static_argnames=("chunk_size", "return_aux", "reduction", "z_loss", "ignore_index"),
    )
    loss, aux = fused(h, w, y, bias=b, chunk_size=8, return_aux=True, **kw)
    logits = (h @ w + b).astype(np.float64)
    lse = np.log(np.exp(logits).sum(-1))
    keep = (y != -100) & (SAMPLE_WEIGHTS != 0)
    wk = SAMPLE_WEIGHTS * keep
    count = keep.sum()
    np.testing.assert_allclose(aux["num_tokens"], count)
    np.testing.assert_allclose(aux["log_sum_exp"], (wk * lse).sum() / count, rtol=1e-5)
    np.testing.assert_allclose(aux["z_loss"], (wk * 1e-2 * lse**2).sum() / count, rtol=1e-5)
    correct = logits.argmax(-1) == y
    np.testing.assert_allclose(aux["accuracy"], (wk * correct).sum() / count, rtol=1e-5)
    ce = _naive(h, w, b, y, ignore_index=-100, weights=SAMPLE_WEIGHTS, reduction="mean")
    np.testing.assert_allclose(loss, ce + aux["z_loss"], rtol=1e-5)  # z-loss is in the loss
    # Per token for reduction="none"; LossParts for "parts".
    per, aux = jax.eval_shape(
        lambda h: jl.linear_softmax_cross_entropy(h, w, y, reduction="none", return_aux=True, **kw),
        h,
    )
    assert per.shape == aux["log_sum_exp"].shape == (N,)
    _, aux = jax.eval_shape(
        lambda h: jl.linear_softmax_cross_entropy(
            h, w, y, reduction="parts", return_aux=True, **kw
        ),
        h,
    )
    assert isinstance(aux["accuracy"], jl.LossParts)


def test_out_of_range_label_is_nan_and_shapes_and_errors():
    h, w, b, y = _data()
    y[0] = V  # out of range, not ignored
    h3, y3 = h[:36].reshape(4, 9, D), _data()[3][:36].reshape(4, 9)

    def run():
        out = [
            jl.linear_softmax_cross_entropy(h, w, y, ignore_index=-100, reduction=reduction)
            for reduction in ("mean", "none")
        ]
        # Leading batch axes: [B, T, D] hidden, [B, T] labels.
        per = jl.linear_softmax_cross_entropy(h3, w, y3, ignore_index=-100, reduction="none")
        return out, per

    out, per = jax.jit(run)()
    assert all(np.isnan(np.asarray(o).ravel()[0]) for o in out)
    want = _naive(h3, w, None, y3, ignore_index=-100)
    np.testing.assert_allclose(per, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="weight_layout"):
        jl.linear_softmax_cross_entropy(h, w.T, y, ignore_index=-100)
    with pytest.raises(ValueError, match="mode"):
        jl.linear_softmax_cross_entropy(h, w, y, mode="fast")
    with pytest.raises(ValueError, match="labels has shape"):
        jl.linear_softmax_cross_entropy(h, w, y[:5])
    with pytest.raises(ValueError, match="bias"):
        jl.linear_softmax_cross_entropy(h, w, y, bias=b[:3])
    with pytest.raises(ValueError, match="chunk_size"):
        jl.linear_softmax_cross_entropy(h, w, y, chunk_size=0)
    for eps in (-0.1, 1.5):
        with pytest.raises(ValueError, match="label_smoothing"):
            jl.linear_softmax_cross_entropy(h, w, y, label_smoothing=eps)


def _dots(jaxpr):
    """Every dot_general equation of a (closed) jaxpr, sub-jaxprs included."""
    out = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            out.append(eqn)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            out.extend(_dots(sub))
    return out


@pytest.mark.parametrize("mode", MODES)
def test_bfloat16_rules(mode):
    h, w, _b, y = _data()
    hb, wb = jnp.asarray(h, jnp.bfloat16), jnp.asarray(w, jnp.bfloat16)

    def fused(h, w):
        return _fused(h, w, y, ignore_index=-100, mode=mode, chunk_size=8)

    out = jax.eval_shape(jax.value_and_grad(fused, (0, 1)), hb, wb)
    assert out[0].dtype == jnp.float32
    assert out[1][0].dtype == out[1][1].dtype == jnp.bfloat16
    # Every matrix product reads bf16 operands and accumulates in float32: no float32 copy of
    # hidden, weight or the tile gradient is made.
    dots = _dots(jax.make_jaxpr(jax.value_and_grad(fused, (0, 1)))(hb, wb).jaxpr)
    assert len(dots) >= 3
    for eqn in dots:
        assert all(v.aval.dtype == jnp.bfloat16 for v in eqn.invars), eqn
        assert eqn.params["preferred_element_type"] == jnp.float32, eqn
    # Close to the float32 computation on the same bf16 values.
    ref = _naive(
        np.asarray(hb, np.float32),
        np.asarray(wb, np.float32),
        None,
        y,
        ignore_index=-100,
        reduction="mean",
    )
    np.testing.assert_allclose(fused(hb, wb), ref, rtol=1e-5)


def test_vocab_parallel_cross_entropy_under_vmap():
    """The collectives under ``vmap(axis_name=)`` (one device): equal to the gathered loss."""
    h, w, _b, y = _data()
    logits = (h @ w)[:, :28]  # 28 classes in 4 shards of 7
    y = np.where(y >= 28, 0, y)
    cw = CLASS_WEIGHTS[:28]
    kw = dict(
        ignore_index=-100,
        class_weights=cw,
        label_smoothing=0.1,
        z_loss=1e-2,
        logit_soft_cap=3.0,
        reduction="weighted_mean",
    )
    shards = logits.reshape(N, 4, 7).transpose(1, 0, 2)

    def sharded(x):
        return jax.vmap(
            lambda xs, c: jl.vocab_parallel_cross_entropy(
                xs, y, axis_name="v", **{**kw, "class_weights": c}
            ),
            axis_name="v",
        )(x, cw.reshape(4, 7))[0]

    want, g_want = jax.jit(
        jax.value_and_grad(lambda x: jl.softmax_cross_entropy_with_integer_labels(x, y, **kw))
    )(logits)
    got, g_got = jax.jit(jax.value_and_grad(sharded))(shards)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(
        g_got.transpose(1, 0, 2).reshape(N, 28), g_want, rtol=1e-4, atol=1e-6
    )


def test_sharded_forms_on_a_2x4_mesh_equal_one_device():
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, str(HERE / "large_vocab_worker.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=HERE.parent,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [json.loads(line[7:]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(rows) == 6, proc.stdout[-2000:]
    bad = [r for r in rows if r.get("error") or r["max_error"] > r["rtol"]]
    assert not bad, bad


def test_gradient_with_respect_to_the_sample_weights():
    h, w, b, y = _data()
    kw = dict(ignore_index=-100, class_weights=CLASS_WEIGHTS, reduction="weighted_mean")

    def fused(mode):
        return jax.grad(
            lambda wt: _fused(h, w, y, bias=b, weights=wt, chunk_size=8, mode=mode, **kw)
        )

    naive = jax.grad(lambda wt: _naive(h, w, b, y, weights=wt, **kw))
    got, want = jax.jit(lambda wt: (tuple(fused(m)(wt) for m in MODES), (naive(wt),) * len(MODES)))(
        SAMPLE_WEIGHTS
    )
    _close(got, want)


def test_composes_with_vmap_and_checkpoint():
    h, w, b, y = _data()
    h2, y2 = h[:36].reshape(4, 9, D), y[:36].reshape(4, 9)

    def fused(h, y, mode):
        return _fused(h, w, y, bias=b, ignore_index=-100, chunk_size=4, mode=mode)

    def run():
        out = []
        for mode in MODES:
            per_row = jax.vmap(jax.value_and_grad(lambda h, y, m=mode: fused(h, y, m)))(h2, y2)
            remat = jax.grad(jax.checkpoint(lambda h, m=mode: fused(h, y2, m)))(h2)
            out.append((per_row, remat))
        naive = lambda h, y: _naive(h, w, b, y, ignore_index=-100, reduction="mean")  # noqa: E731
        want = (jax.vmap(jax.value_and_grad(naive))(h2, y2), jax.grad(naive)(h2, y2))
        return out, [want] * len(MODES)

    got, want = jax.jit(run)()
    _close(got, want)
