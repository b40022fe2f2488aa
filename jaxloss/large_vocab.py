r"""Large vocabularies: the cross-entropy of ``hidden @ weight`` without materialising the logits.

At language-model scale the logits ``[tokens, vocab]`` dominate training memory: the naive step
``softmax_cross_entropy_with_integer_labels(hidden @ weight, labels)`` holds the logits and their
gradient (two ``[N, V]`` arrays, about 1000 MiB at 4096 tokens and V = 32000 in float32).
:func:`linear_softmax_cross_entropy` computes the same loss and the same gradients with respect
to ``hidden``, ``weight`` and ``bias`` over chunks of tokens (a :func:`jax.lax.scan`), so that at
most one ``[chunk, V]`` tile of logits exists at a time; :func:`vocab_parallel_cross_entropy` is
the cross-entropy of logits whose class axis is sharded over a mesh axis inside ``shard_map``.

**The loss of one token.** With logits ``z = h W + b``, optionally soft-capped
``s = c · tanh(z / c)`` (Gemma 2), ``lse = log Σ_c exp(s_c)``, label ``y``, class weights ``w``
(``w = 1`` without), label smoothing ``ε`` and z-loss coefficient ``λ`` (PaLM):

.. math::
    \ell = (1-\varepsilon)\, w_y (\mathrm{lse} - s_y)
         + \frac{\varepsilon}{V} \sum_c w_c (\mathrm{lse} - s_c)
         + \lambda\, w_y\, \mathrm{lse}^2

the definition of :func:`jaxloss.softmax_cross_entropy_with_integer_labels` with the same
``z_loss`` and ``logit_soft_cap`` arguments (the z-loss term is weighted by the element's weight,
sample weight × ``w_y``, like the unsmoothed cross-entropy). Its gradient with respect to the
capped logits is ``(a + 2 λ w_y lse) · softmax(s) − (1-ε) w_y · onehot(y) − (ε/V) w`` with
``a = (1-ε) w_y + (ε/V) Σ_c w_c``, times ``1 − (s/c)²`` for the cap; the one-hot is a compare
with an iota, never a scatter.

**The contract** enters as a per-row scale of that tile gradient: the reducer of
:mod:`jaxloss._reduction` (``weights``, ``where``, ``ignore_index``, ``class_weights``,
``reduction`` including ``"parts"``, ``axis_name``) is linear in the per-token losses, so the
reduced loss is ``Σ_t r_t ℓ_t`` with ``r_t`` its derivative with respect to ``ℓ_t``.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Literal, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
from jax import lax

from jaxloss._checks import (
    Array,
    ArrayLike,
    class_weight_vector,
    compute_dtype,
    float_array,
    integer_labels,
    is_label,
    labels_ok,
)
from jaxloss._class_axis import INT_HINT
from jaxloss._reduction import (
    AxisName,
    LossParts,
    Reduction,
    check_axis_name,
    check_reduction,
    element_mask,
    psum_axes,
    reduce_elements,
    safe_divide,
)

__all__ = ["linear_softmax_cross_entropy", "vocab_parallel_cross_entropy"]

#: Default tile budget: the token chunk is the largest power of two whose ``[chunk, V]``
#: float32 tile has at most this many elements (2²⁴ elements = 64 MiB), within
#: ``[CHUNK_MIN, CHUNK_MAX]`` tokens, and at least ``STORE_CHUNK_MIN`` in ``mode="store"``.
#: The chunk is the contraction length of every ``dW`` product, and store mode reads and
#: writes the whole ``dW`` once per chunk: on a 2-core Xeon at N = 4096, D = 1024 (float32,
#: side by side) store mode took 0.86× the naive step's time at 256 tokens per chunk and 0.83×
#: at 512 at V = 128000 (171 and 309 MB of temporary memory), 0.80× and 0.80× at V = 256000.
TILE_ELEMENTS = 2**24
CHUNK_MIN, CHUNK_MAX, STORE_CHUNK_MIN = 16, 1024, 512
#: The tile gradient is formed and applied in blocks of about this many bytes of ``dW``
#: (float32), at least ``DW_BLOCK_MIN`` classes: per token chunk only the logits tile, one
#: ``[chunk, block]`` gradient and one ``[D, block]`` product exist, never a second
#: ``[chunk, V]`` tile or a ``[D, V]`` product besides the accumulator.
DW_BLOCK_BYTES, DW_BLOCK_MIN = 16 * 2**20, 128
#: The recompute backward pass (``mode="recompute"``, and ``reduction="none"``) runs over
#: blocks of the vocabulary, all tokens at once, when a ``[N, V_block]`` tile the size of the
#: forward pass's ``[chunk, V]`` tile holds at least this many classes; otherwise over the
#: token chunks. Blocked by classes, every product contracts over ``D``, ``N`` or
#: ``V_block`` and each block of ``dW`` is written once, where the token-chunked schedule
#: contracts ``dW`` over the chunk and reads and writes the whole of it per chunk (on a 2-core
#: CPU at N = 4096, D = 1024, V = 128000, side by side: 1.21× the naive step's time blocked,
#: 1.37× token-chunked).
VBLOCK_MIN = 256

Mode = Literal["store", "recompute"]
WeightLayout = Literal["dv", "vd"]


def linear_softmax_cross_entropy(
    hidden: ArrayLike,
    weight: ArrayLike,
    labels: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
    class_weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    logit_soft_cap: float | None = None,
    reduction: Reduction = "mean",
    axis_name: AxisName | None = None,
    chunk_size: int | None = None,
    mode: Mode = "store",
    return_aux: bool = False,
    weight_layout: WeightLayout = "dv",
    vocab_axis_name: AxisName | None = None,
) -> Any:
    r"""Cross-entropy of ``hidden @ weight (+ bias)`` with integer labels, logits never stored.

    The value and the gradients with respect to ``hidden``, ``weight``, ``bias`` (and
    ``weights``) equal those of the naive
    ``softmax_cross_entropy_with_integer_labels(hidden @ weight + bias, labels, ...)`` with the
    same arguments, to float32 rounding, but the tokens are processed in chunks of
    ``chunk_size`` (a :func:`jax.lax.scan` under a :func:`jax.custom_vjp`) and the
    ``[tokens, V]`` logits are never held: per chunk, the ``[chunk, V]`` logits tile, its
    log-sum-exp and the loss (see :mod:`jaxloss.large_vocab` for the formula).

    Modes (the memory / time trade-off):

    * ``mode="store"`` (default): the forward pass also forms each tile's gradient
      ``dlogits`` (softmax minus the iota-compared one-hot, scaled per row by the contract),
      accumulates ``dW`` and ``dbias`` and stores ``dhidden``; the backward pass only multiplies
      them by the cotangent. Three matrix products in all, like the naive step; temporary
      memory is ``dW`` (float32, the size of ``weight``) + one ``[chunk, V]`` logits tile +
      ``O(N·D)``: the tile's gradient is formed and applied over blocks of classes (about
      16 MiB of ``dW`` each, ``DW_BLOCK_BYTES``), never as a second ``[chunk, V]`` array.
      With ``reduction="none"`` the per-token cotangent is only known in the backward pass and
      ``dW = Σ_t g_t h_t ⊗ dlogits_t`` cannot be formed ahead of it, so ``"none"`` runs the
      ``"recompute"`` schedule (correct for any cotangent).
    * ``mode="recompute"``: the forward pass keeps only ``lse [N]``; the backward pass
      recomputes the logits (Cut Cross-Entropy's schedule). Four matrix products (the logits
      twice), no ``dW`` buffer besides the gradient itself: for when the accumulator is too
      much memory. With ``lse`` known, the backward pass runs over blocks of the vocabulary,
      all tokens at once, when an ``[N, V_block]`` tile no larger than the forward's
      ``[chunk, V]`` holds at least ``VBLOCK_MIN`` (256) classes (each block of ``dW`` is
      written once; 4000 classes per block at N = 4096, V = 128000), and over the token
      chunks otherwise (too many tokens for the tile budget).

    Args:
      hidden: ``[..., D]`` hidden states (float32, bfloat16, float16 or float64).
      weight: the output projection, ``[D, V]`` (``weight_layout="dv"``, ``logits = hidden @
        weight``) or ``[V, D]`` (``weight_layout="vd"``: an embedding table, as tied embeddings
        are stored; ``logits = hidden @ weight.T``).
      labels: integer class indices, shape ``hidden.shape[:-1]``.
      bias: optional ``[V]`` added to the logits.
      weights, where: per-token weights and boolean mask broadcastable to ``labels`` (element
        masks only; there is no class mask).
      ignore_index: a label value (e.g. -100) whose tokens act as ``where=False``.
      class_weights: ``[V]``; the token's weight is ``class_weights[label]`` (PyTorch's
        ``weight=``, with smoothing inside the sum). Treated as constants: no gradient.
      label_smoothing: ``ε`` in [0, 1], a Python number; mass ``ε`` spread over all ``V``
        classes (the global vocabulary under ``vocab_axis_name``). ``ε = 1`` (a uniform
        target, allowed as by the plain cross-entropy, optax and PyTorch) leaves no term on
        the label.
      z_loss: ``λ ≥ 0``, a Python number: adds ``λ · lse²`` per token (PaLM's z-loss), weighted
        and masked like the loss and included in the returned loss; ``aux["z_loss"]`` reports
        it apart. ``0`` (default) adds nothing.
      logit_soft_cap: ``c > 0`` or ``None``: the logits are ``c · tanh(z / c)`` (Gemma 2); the
        gradient carries the cap's derivative ``1 − tanh²(z / c)``.
      reduction, axis_name: see :func:`jaxloss.reduce` (default ``"mean"`` here: the mean over
        included tokens). ``axis_name`` names the mesh axes the *tokens* are split over.
      chunk_size: tokens per chunk (a Python int). Default: the largest power of two whose
        ``[chunk, V]`` float32 tile has at most 2²⁴ elements (64 MiB), between 16 and 1024
        tokens, at least 512 in ``mode="store"``, and not more than the token count: 512 at
        V = 32000; 512 (store) or 128 (recompute) at V = 128000; 512 or 64 at V = 256000.
        Temporary memory grows with the chunk (one ``[chunk, V]`` float32 tile besides
        ``O(N·D)``); the time falls with it in store mode, which reads and writes ``dW`` once
        per chunk (at V = 128000 on a 2-core CPU, 256 tokens took ~4% more time than 512 with
        ~45% less temporary memory: pass ``chunk_size=256`` to trade that way). ``N`` need
        not be a multiple: the last chunk is padded with excluded tokens.
      mode: ``"store"`` or ``"recompute"``, see above.
      return_aux: also return a dict of logging values, each weighted and reduced like the
        loss (same reduction and denominator; per token for ``"none"``, :class:`LossParts` for
        ``"parts"``), without gradient: ``"z_loss"`` (the z-loss term, already part of the
        loss), ``"log_sum_exp"`` (``lse``), ``"accuracy"`` (1 where the label's logit is the
        row maximum; ties count as correct), and ``"num_tokens"`` (a scalar: the number of
        included tokens, summed over ``axis_name``).
      weight_layout: ``"dv"`` (default) or ``"vd"``, the layout of ``weight``.
      vocab_axis_name: inside ``shard_map`` with ``weight`` (and ``bias``, ``class_weights``)
        sharded along V over this mesh axis (or tuple of axes), each device holding
        ``V / shards`` consecutive classes (shard ``k`` holds classes ``[k·V_l, (k+1)·V_l)``):
        the row maximum and sum of exponentials are combined with ``pmax`` / ``psum``, the
        label's logit comes from the shard that owns it, ``dweight`` stays local and
        ``dhidden`` is summed across the shards (``hidden`` and ``labels`` are the same on
        every shard of this axis). Labels are global class indices. Needs ``shard_map``'s
        default ``check_vma=True``.

    Returns:
      The loss (float32 for 16-bit inputs): a scalar, the per-token array of shape
      ``labels.shape`` for ``"none"``, or a :class:`LossParts` for ``"parts"``; with
      ``return_aux=True`` the pair ``(loss, aux)``.

    Shapes are static (the chunking is planned at trace time): symbolic dimensions of
    :func:`jax.export` are not supported.

    Numerics: the matrix products accumulate in float32 (``preferred_element_type``) whatever
    the input dtype; each tile gradient is cast to the activation dtype before the ``dW`` and
    ``dhidden`` products (so that no float32 copy of ``weight`` or ``hidden`` is made), ``dW`` is
    accumulated in float32 and returned in ``weight``'s dtype; the loss is float32.
    Excluded tokens contribute exactly 0 (even with NaN hidden states: their rows are zeroed).
    An out-of-range label that is not ``ignore_index`` gives NaN (for its token, or for a
    reduced loss). A mean over nothing is 0 with zero gradients.

    >>> import jax, jax.numpy as jnp
    >>> h = jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> w = jnp.array([[2.0, 0.0, -1.0], [0.0, 1.0, 1.0]])       # [D=2, V=3]
    >>> y = jnp.array([0, 2, -100])
    >>> linear_softmax_cross_entropy(h, w, y, ignore_index=-100)
    Array(0.5159204, dtype=float32)
    >>> import jaxloss as jl                                    # the naive formulation
    >>> jl.softmax_cross_entropy_with_integer_labels(h @ w, y, ignore_index=-100, reduction="mean")
    Array(0.5159204, dtype=float32)
    >>> loss, aux = linear_softmax_cross_entropy(h, w, y, ignore_index=-100, z_loss=1e-4,
    ...                                          return_aux=True, chunk_size=2)
    >>> float(aux["num_tokens"]), float(aux["accuracy"])
    (2.0, 1.0)
    """
    check_reduction(reduction)
    check_axis_name(axis_name)
    check_axis_name(vocab_axis_name)
    if mode not in ("store", "recompute"):
        raise ValueError(f"mode must be 'store' or 'recompute'; got {mode!r}.")
    if weight_layout not in ("dv", "vd"):
        raise ValueError(
            f"weight_layout must be 'dv' ([D, V]) or 'vd' ([V, D]); got {weight_layout!r}."
        )
    h = float_array(hidden, "hidden")
    w = float_array(weight, "weight")
    if h.ndim < 1:
        raise ValueError(f"hidden must have shape [..., D]; got shape {tuple(h.shape)}.")
    if w.ndim != 2:
        raise ValueError(
            f"weight must be a 2-D [D, V] (weight_layout='dv') or [V, D] ('vd') array; got shape "
            f"{tuple(w.shape)}."
        )
    d = h.shape[-1]
    d_w, v_local = (w.shape[0], w.shape[1]) if weight_layout == "dv" else (w.shape[1], w.shape[0])
    if d_w != d:
        raise ValueError(
            f"hidden has shape {tuple(h.shape)} (D = {d}) but weight has shape {tuple(w.shape)}, "
            f"whose {'first' if weight_layout == 'dv' else 'second'} axis is {d_w} "
            f"(weight_layout={weight_layout!r} expects "
            f"{'[D, V]' if weight_layout == 'dv' else '[V, D]'})."
        )
    b = None
    if bias is not None:
        b = float_array(bias, "bias")
        if b.shape != (v_local,):
            raise ValueError(
                f"bias has shape {tuple(b.shape)}; expected ({v_local},), one per class."
            )
    smoothing = _static_number(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    zl, cap = _z_loss_and_cap(z_loss, logit_soft_cap)
    shards = 1 if vocab_axis_name is None else _axis_size(vocab_axis_name)
    num_classes = v_local * shards
    loss_shape = tuple(h.shape[:-1])
    safe_labels, in_range, include = integer_labels(
        labels,
        loss_shape,
        num_classes,
        ignore_index,
        of="hidden without its last axis",
        hint=INT_HINT,
    )
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    cw = None
    if class_weights is not None:
        cw = lax.stop_gradient(class_weight_vector(class_weights, v_local, jnp.float32))

    ct = compute_dtype(jnp.result_type(h.dtype, w.dtype))
    dtype = jnp.dtype(ct)
    n = math.prod(loss_shape)
    chunk = _chunk_size(chunk_size, n, v_local, mode)
    static: dict[str, Any] = dict(
        chunk=chunk,
        layout=weight_layout,
        smoothing=smoothing,
        z_loss=zl,
        cap=cap,
        vocab_axis=vocab_axis_name,
        num_classes=num_classes,
        block=_dw_block(v_local, d),
        vblock=_vocab_block(chunk, n + (-n) % chunk, v_local),
        compute=dtype,
        act=jnp.dtype(jnp.result_type(h.dtype, w.dtype)),
        h_dtype=jnp.dtype(h.dtype),
        w_dtype=jnp.dtype(w.dtype),
        b_dtype=None if b is None else jnp.dtype(b.dtype),
    )
    valid = jnp.ones(loss_shape, jnp.bool_) if mask is None else jnp.broadcast_to(mask, loss_shape)
    pad = (-n) % chunk
    flat_h = _pad(h.reshape(n, d), pad)
    flat_labels = _pad(safe_labels.reshape(n), pad)
    flat_valid = _pad(valid.reshape(n), pad)
    ok = labels_ok(in_range, mask, num_classes, ignore_index)

    if mode == "store" and reduction != "none":
        # The per-row scale r_t = ∂(reduced loss)/∂ℓ_t, from the contract itself: each token's
        # numerator weight (the reducer's numerator at ℓ = 1: weights × where) over the
        # reduction's denominator (global over axis_name).
        ones = jnp.ones(loss_shape, dtype)
        numerator_weight = reduce_elements(ones, mask=mask, weights=weights, reduction="none")
        cw_y = None
        if cw is not None:
            probe = _Config(**static, vary=frozenset(), targets=(), dh_extra=())
            cw_y = _owned_pick(probe, cw, safe_labels)
        parts = reduce_elements(
            ones, mask=mask, weights=weights, element_weight=cw_y, reduction="parts"
        )
        if axis_name is not None:
            parts = parts.psum(axis_name)
        denominator = jnp.ones((), dtype) if reduction == "parts" else parts.denominator(reduction)
        r = safe_divide(jnp.broadcast_to(numerator_weight, loss_shape), denominator.astype(dtype))
        flat_r = _pad(r.reshape(n), pad)
        cfg = _config(static, flat_h, w, b, flat_r, flat_labels, flat_valid, cw)
        stored: Any = _store_total(cfg, flat_h, w, b, flat_r, flat_labels, flat_valid, cw)
        total, stats = stored
        total = total + jnp.sum(jnp.where(ok, 0.0, jnp.nan)).astype(total.dtype)
        if axis_name is not None:
            total = psum_axes(total, axis_name)
        if reduction == "parts":
            loss: Any = LossParts(
                total=total, count=parts.count, weight=parts.weight, nonzero=parts.nonzero
            )
        else:
            loss = total
    else:
        cfg = _config(static, flat_h, w, b, None, flat_labels, flat_valid, cw)
        per_token: Any = _per_token(cfg, flat_h, w, b, flat_labels, flat_valid, cw)
        per, stats = per_token
        per = jnp.where(ok, per[:n].reshape(loss_shape), jnp.nan)
        cw_y = None if cw is None else stats.cw_y[:n].reshape(loss_shape)
        loss = reduce_elements(
            per,
            mask=mask,
            weights=weights,
            element_weight=cw_y,
            reduction=reduction,
            axis_name=axis_name,
        )
    if not return_aux:
        return loss
    stats = jax.tree.map(lambda a: lax.stop_gradient(a[:n].reshape(loss_shape)), stats)
    cw_y = None if cw is None else stats.cw_y
    scale = jnp.ones((), dtype) if cw_y is None else cw_y

    def reduced(per_token: Array) -> Any:
        return reduce_elements(
            per_token * scale,
            mask=mask,
            weights=None if weights is None else lax.stop_gradient(jnp.asarray(weights)),
            element_weight=cw_y,
            reduction=reduction,
            axis_name=axis_name,
        )

    count = reduce_elements(
        jnp.zeros(loss_shape, dtype),
        mask=mask,
        weights=weights,
        reduction="parts",
        axis_name=axis_name,
    ).count
    aux = {
        "z_loss": reduced(zl * stats.lse**2),
        "log_sum_exp": reduced(stats.lse),
        "accuracy": reduced(stats.correct.astype(dtype)),
        "num_tokens": lax.stop_gradient(count),
    }
    return loss, aux


def vocab_parallel_cross_entropy(
    logits_shard: ArrayLike,
    labels: ArrayLike,
    *,
    axis_name: AxisName,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    ignore_index: int | None = None,
    class_weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    logit_soft_cap: float | None = None,
    reduction: Reduction = "none",
    batch_axis_name: AxisName | None = None,
) -> Array:
    r"""Integer-label cross-entropy of logits whose class axis is sharded, inside ``shard_map``.

    Each device along ``axis_name`` holds ``V_l`` consecutive classes of the logits
    (``logits_shard [..., V_l]``, shard ``k`` holding classes ``[k·V_l, (k+1)·V_l)``) and the
    full (global) integer labels. The loss is that of
    :func:`jaxloss.softmax_cross_entropy_with_integer_labels` on the gathered ``[..., V]``
    logits, formula for formula (class weights, label smoothing, ``z_loss``,
    ``logit_soft_cap``), without gathering them: the row maximum by ``pmax``, the sum of
    exponentials by ``psum``, the label's logit from the shard that owns it (an iota compare
    against the shard's own class range, summed over the shards), and label smoothing over the
    *global* vocabulary (``ε / V`` with ``V = V_l × shards``, exact, where Megatron averages over
    the local shard). Gradients flow to every shard's logits.

    Args:
      logits_shard: ``[..., V_l]`` this device's block of the logits.
      labels: ``[...]`` global integer class indices (the same on every shard of ``axis_name``).
      axis_name: the mesh axis (or tuple of axes) the class axis is sharded over.
      weights, where, ignore_index, reduction: the contract (see :func:`jaxloss.reduce`),
        against ``labels``'s shape. Default ``reduction="none"`` (per token, as optax).
      class_weights: ``[V_l]``, this shard's block of the ``[V]`` class weights (sharded like the
        classes); the token's weight is ``class_weights[label]`` from the owning shard.
      label_smoothing: ``ε`` in [0, 1], a Python number.
      z_loss, logit_soft_cap: as in :func:`jaxloss.softmax_cross_entropy_with_integer_labels`.
      batch_axis_name: the mesh axes the *tokens* are split over, the reducer's ``axis_name``
        (global means over the data-parallel devices).

    Returns:
      The per-token loss (or the reduced value), the same on every shard of ``axis_name``.

    Needs ``shard_map``'s default ``check_vma=True`` for its gradients (the transposes of the
    collectives).

    >>> import jax, jax.numpy as jnp, numpy as np
    >>> logits = jnp.array([[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 3.0, 1.0]])
    >>> labels = jnp.array([1, 2])
    >>> shards = logits.reshape(2, 2, 2).transpose(1, 0, 2)      # 2 shards of 2 classes
    >>> per = jax.vmap(lambda x: vocab_parallel_cross_entropy(x, labels, axis_name="v"),
    ...                axis_name="v")(shards)
    >>> per[0]
    Array([0.4401896 , 0.23681545], dtype=float32)
    >>> import jaxloss as jl
    >>> jl.softmax_cross_entropy_with_integer_labels(logits, labels)
    Array([0.4401896 , 0.23681545], dtype=float32)
    """
    check_reduction(reduction)
    check_axis_name(axis_name)
    check_axis_name(batch_axis_name)
    if axis_name is None:
        raise ValueError("vocab_parallel_cross_entropy needs axis_name, the vocabulary mesh axis.")
    x = float_array(logits_shard, "logits_shard")
    x = x.astype(compute_dtype(x.dtype))
    if x.ndim < 1:
        raise ValueError(f"logits_shard must have shape [..., V_l]; got {tuple(x.shape)}.")
    v_local = x.shape[-1]
    num_classes = v_local * _axis_size(axis_name)
    smoothing = _static_number(label_smoothing, "label_smoothing", low=0.0, high=1.0)
    zl, cap = _z_loss_and_cap(z_loss, logit_soft_cap)
    loss_shape = tuple(x.shape[:-1])
    safe_labels, in_range, include = integer_labels(
        labels, loss_shape, num_classes, ignore_index, hint=INT_HINT
    )
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    if mask is not None:
        x = jnp.where(mask[..., None], x, jnp.zeros((), x.dtype))
    if cap is not None:
        x = cap * jnp.tanh(x / cap)
    local = safe_labels - lax.axis_index(axis_name) * v_local
    hot = is_label(local, v_local)
    zero = jnp.zeros((), x.dtype)
    m = lax.pmax(lax.stop_gradient(jnp.max(x, axis=-1)), axis_name)
    lse = m + jnp.log(lax.psum(jnp.sum(jnp.exp(x - m[..., None]), axis=-1), axis_name))
    x_y = lax.psum(jnp.sum(jnp.where(hot, x, zero), axis=-1), axis_name)
    per = lse - x_y
    cw_y = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, v_local, x.dtype)
        cw_y = lax.psum(jnp.sum(jnp.where(hot, cw, zero), axis=-1), axis_name)
        per = cw_y * per
    if smoothing:
        if class_weights is None:
            smooth = num_classes * lse - lax.psum(jnp.sum(x, axis=-1), axis_name)
        else:
            cw_sum = lax.psum(jnp.sum(cw), axis_name)
            smooth = cw_sum * lse - lax.psum(x @ cw, axis_name)
        per = (1.0 - smoothing) * per + smoothing / num_classes * smooth
    if zl:
        per = per + zl * (lse**2 if cw_y is None else cw_y * lse**2)
    per = jnp.where(labels_ok(in_range, mask, num_classes, ignore_index), per, jnp.nan)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=cw_y,
        reduction=reduction,
        axis_name=batch_axis_name,
    )


# ---------------------------------------------------------------------------------------------
# Validation and static choices.


def _z_loss_and_cap(z_loss: Any, logit_soft_cap: Any) -> tuple[float, float | None]:
    """``z_loss ≥ 0`` and ``logit_soft_cap > 0`` (or ``None``) as Python floats."""
    zl = _static_number(z_loss, "z_loss", low=0.0)
    if logit_soft_cap is None:
        return zl, None
    cap = _static_number(logit_soft_cap, "logit_soft_cap", low=0.0)
    if cap <= 0:
        raise ValueError(f"logit_soft_cap must be > 0 or None; got {cap}.")
    return zl, cap


def _static_number(
    x: Any, name: str, *, low: float | None = None, high: float | None = None
) -> float:
    """A hyper-parameter that selects the formulation: a concrete number, range-checked."""
    if isinstance(x, jax.core.Tracer):
        raise TypeError(f"{name} must be a Python number (it is static under jit); got a tracer.")
    try:
        value = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a Python number; got {x!r}.") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(
            f"{name} must lie in [{low}, {high if high is not None else 'inf'}]; got {value}."
        )
    return value


def _axis_size(axis_name: AxisName) -> int:
    """The number of devices along ``axis_name`` (inside ``shard_map``)."""
    try:
        return int(lax.axis_size(axis_name))
    except NameError as error:
        raise ValueError(
            f"vocabulary axis {axis_name!r} is not a bound mesh axis here: it names the axis the "
            f"classes are sharded over, inside shard_map. ({error})"
        ) from None


def _chunk_size(chunk_size: int | None, n: int, v: int, mode: str) -> int:
    """Tokens per chunk: the given one, or the default tile budget (module constants)."""
    if chunk_size is None:
        fit = max(1, TILE_ELEMENTS // max(v, 1))
        low = STORE_CHUNK_MIN if mode == "store" else CHUNK_MIN
        chunk = min(max(2 ** int(math.log2(fit)), low), CHUNK_MAX)
    else:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(
                f"chunk_size must be a positive Python int or None; got {chunk_size!r}."
            )
        chunk = chunk_size
    return max(1, min(chunk, n))


def _dw_block(v: int, d: int) -> int:
    """Classes per block of a chunk's tile gradient (``DW_BLOCK_BYTES`` of float32 ``dW``, at
    least ``DW_BLOCK_MIN``), a divisor of ``v`` if any."""
    return _divisor_block(v, max(DW_BLOCK_MIN, DW_BLOCK_BYTES // (4 * max(d, 1))))


def _vocab_block(chunk: int, n_pad: int, v: int) -> int:
    """Classes per block of the vocabulary-blocked recompute backward pass (a ``[N, block]``
    tile no larger than the forward's ``[chunk, V]``), or 0 for the token-chunked one."""
    target = (chunk * v) // max(n_pad, 1)
    if n_pad <= chunk or target < VBLOCK_MIN:
        return 0
    return _divisor_block(v, target)


def _divisor_block(v: int, target: int) -> int:
    """At most ``target`` classes per block: ``v`` itself, a divisor of ``v`` near ``target``
    (no tail block) if there is one, else ``target``."""
    if target >= v:
        return v
    first = -(-v // target)
    for blocks in range(first, 2 * first + 1):
        if v % blocks == 0:
            return v // blocks
    return target


def _pad(a: Array, pad: int) -> Array:
    """``a`` with ``pad`` zero (False) rows appended along axis 0."""
    if not pad:
        return a
    return jnp.concatenate([a, jnp.zeros((pad, *a.shape[1:]), a.dtype)])


# ---------------------------------------------------------------------------------------------
# Mesh-axis bookkeeping inside shard_map (varying manual axes).


def _varying(x: Any) -> frozenset:
    """The manual mesh axes ``x`` varies over (inside ``shard_map`` with ``check_vma``)."""
    if x is None:
        return frozenset()
    aval = jax.typeof(x)
    mat = getattr(aval, "manual_axis_type", None)
    if mat is not None:
        return frozenset(mat.varying)
    return frozenset(getattr(aval, "vma", frozenset()))


def _names(axis_name: AxisName | None) -> tuple:
    if axis_name is None:
        return ()
    return axis_name if isinstance(axis_name, tuple) else (axis_name,)


def _varies(x: Any, axis_name: AxisName) -> bool:
    return set(_names(axis_name)) <= _varying(x)


def _to_varying(x: Array, axes: frozenset) -> Array:
    """``x`` cast to vary over ``axes`` too (a no-op outside ``shard_map``)."""
    missing = tuple(sorted(axes - _varying(x), key=str))
    return lax.pcast(x, missing, to="varying") if missing else x


def _match(ct: Array, target: frozenset, extra_sum: tuple = ()) -> Array:
    """A cotangent with the varying axes of its primal: summed over the axes it varies over in
    excess (the transposes of the implicit casts), cast over the ones it lacks."""
    excess = tuple(sorted(_varying(ct) - target, key=str)) + tuple(extra_sum)
    if excess:
        ct = lax.psum(ct, excess)
    return _to_varying(ct, target)


# ---------------------------------------------------------------------------------------------
# The chunked core.


class _Config(NamedTuple):
    chunk: int
    layout: str
    smoothing: float
    z_loss: float
    cap: float | None
    vocab_axis: Any
    num_classes: int
    block: int
    vblock: int  # 0: the token-chunked recompute backward; else classes per block
    compute: Any
    act: Any
    h_dtype: Any
    w_dtype: Any
    b_dtype: Any
    vary: frozenset
    targets: tuple  # the varying axes of (h, w, b, r)
    dh_extra: tuple  # axes dhidden is summed over besides its excess ones (check_vma off)


class _Stats(NamedTuple):
    lse: Array
    correct: Array
    cw_y: Array


def _config(
    cfg: dict[str, Any], h: Array, w: Array, b: Array | None, r: Array | None, *rest: Any
) -> _Config:
    vary = frozenset().union(*(_varying(a) for a in (h, w, b, r, *rest)))
    vocab = cfg["vocab_axis"]
    extra = ()
    if vocab is not None and not _varies(w, vocab):
        extra = _names(vocab)  # check_vma off: no varying types, sum the partial dhidden here
    targets = tuple(_varying(a) for a in (h, w, b, r))
    return _Config(**cfg, vary=vary, targets=targets, dh_extra=extra)


def _psum_vocab(cfg: _Config, x: Array) -> Array:
    return x if cfg.vocab_axis is None else lax.psum(x, cfg.vocab_axis)


def _logits(cfg: _Config, h_c: Array, w: Array, b: Array | None) -> Array:
    """The (soft-capped) logits tile ``[C, V_l]`` in the compute dtype."""
    dims = (((1,), (0,)), ((), ())) if cfg.layout == "dv" else (((1,), (1,)), ((), ()))
    z = lax.dot_general(h_c, w.astype(cfg.act), dims, preferred_element_type=cfg.compute)
    if b is not None:
        z = z + b.astype(cfg.compute)
    if cfg.cap is not None:
        z = cfg.cap * jnp.tanh(z / cfg.cap)
    return z


def _tile_loss(
    cfg: _Config, s: Array, local: Array, cw: Array | None
) -> tuple[Array, Array, Array, Array]:
    """Per-row ``(loss, lse, correct, w_y)`` of a logits tile (global over the vocab shards);
    ``local`` holds the labels among this shard's classes.

    The label's logit and class weight are gathered (one element per row, from the shard
    that owns the label), not summed out of a one-hot select: that select is a second
    ``[C, V]`` tile that XLA:CPU materialises before its reduction."""
    ct = s.dtype
    m = jnp.max(s, axis=-1)
    if cfg.vocab_axis is not None:
        m = lax.pmax(m, cfg.vocab_axis)
    lse = m + jnp.log(_psum_vocab(cfg, jnp.sum(jnp.exp(s - m[:, None]), axis=-1)))
    owned, at = _ownership(local, s.shape[-1])
    picked = jnp.take_along_axis(s, at[:, None], axis=-1, mode="clip")[:, 0]
    s_y = _psum_vocab(cfg, jnp.where(owned, picked, jnp.zeros((), ct)))
    if cw is None:
        cw_y = jnp.ones_like(lse)
    else:
        cw_y = _psum_vocab(cfg, jnp.where(owned, jnp.take(cw.astype(ct), at), jnp.zeros((), ct)))
    eps = cfg.smoothing
    per = cw_y * (lse - s_y)
    if eps:
        if cw is None:
            smooth = cfg.num_classes * lse - _psum_vocab(cfg, jnp.sum(s, axis=-1))
        else:
            cw_sum = _psum_vocab(cfg, jnp.sum(cw.astype(ct)))
            smooth = cw_sum * lse - _psum_vocab(cfg, s @ cw.astype(ct))
        per = (1.0 - eps) * per + eps / cfg.num_classes * smooth
    if cfg.z_loss:
        per = per + cfg.z_loss * cw_y * lse**2
    correct = (s_y >= m).astype(ct)
    return per, lse, correct, cw_y


def _tile_grad(
    cfg: _Config,
    s: Array,
    hot: Array,
    lse: Array,
    cw_y: Array,
    r: Array,
    cw: Array | None,
    cw_sum: Array | None,
) -> Array:
    """``r_t · ∂ℓ_t/∂z`` for a tile of (a block of) the classes, cast to the activation dtype
    (see the module docstring).

    ``cw`` holds the class weights of the tile's classes; ``cw_sum`` is their sum over the
    whole vocabulary (:func:`_class_weight_total`), which the smoothed gradient needs."""
    ct = s.dtype
    eps = cfg.smoothing
    coef = (1.0 - eps) * cw_y
    if eps:
        total: Array | int = cfg.num_classes
        if cw is not None:
            assert cw_sum is not None, "a smoothed, class-weighted tile needs Σ_c w_c"
            total = cw_sum
        coef = coef + eps / cfg.num_classes * total
    if cfg.z_loss:
        coef = coef + 2.0 * cfg.z_loss * cw_y * lse
    p = jnp.exp(s - lse[:, None])
    g = (r * coef)[:, None] * p - jnp.where(hot, (r * (1.0 - eps) * cw_y)[:, None], 0.0)
    if eps:
        spread = (r * (eps / cfg.num_classes))[:, None]
        g = g - (spread if cw is None else spread * cw.astype(ct))
    if cfg.cap is not None:
        g = g * (1.0 - jnp.square(s / cfg.cap))
    return g.astype(cfg.act)


def _hidden_grad(cfg: _Config, g: Array, w: Array) -> Array:
    """``g @ Wᵀ`` (``[C, D]``, compute dtype): this shard's part of ``dhidden``."""
    dims = (((1,), (1,)), ((), ())) if cfg.layout == "dv" else (((1,), (0,)), ((), ()))
    return lax.dot_general(g, w.astype(cfg.act), dims, preferred_element_type=cfg.compute)


def _weight_grad(cfg: _Config, h_c: Array, g: Array) -> Array:
    """``h_cᵀ g`` in ``weight``'s layout (``[D, V_b]`` or ``[V_b, D]``), compute dtype."""
    contract = (((0,), (0,)), ((), ()))
    if cfg.layout == "dv":
        return lax.dot_general(h_c, g, contract, preferred_element_type=cfg.compute)
    return lax.dot_general(g, h_c, contract, preferred_element_type=cfg.compute)


def _chunk_grads(
    cfg: _Config,
    h_c: Array,
    s: Array,
    local: Array,
    lse: Array,
    cw_y: Array,
    r: Array,
    w: Array,
    cw: Array | None,
    cw_sum: Array | None,
    dw: Array,
    db: Array | None,
) -> tuple[Array, Array, Array | None]:
    """One token chunk's gradients from its logits tile ``s`` (``[C, V_l]``): its ``dhidden``
    rows, and ``dW`` and ``dbias`` with the chunk's part added (the carries of both chunked
    schedules; ``local`` holds the labels among this shard's classes).

    The tile gradient is formed over blocks of ``cfg.block`` classes, each applied at once
    (``dW[:, block] += h_cᵀ g_b``, ``dh_c += g_b W[:, block]ᵀ``), so that besides ``s`` only a
    ``[C, block]`` gradient and a ``[D, block]`` product exist, never a second ``[C, V]`` tile
    or a ``[D, V]`` product."""
    v = s.shape[-1]
    w_axis = 1 if cfg.layout == "dv" else 0

    def put(carry: tuple[Array, Array, Array | None], start: Any, size: int) -> Any:
        dh_c, dw, db = carry
        cw_b = None if cw is None else lax.dynamic_slice_in_dim(cw, start, size)
        s_b = lax.dynamic_slice_in_dim(s, start, size, axis=1)
        g = _tile_grad(cfg, s_b, is_label(local - start, size), lse, cw_y, r, cw_b, cw_sum)
        w_b = lax.dynamic_slice_in_dim(w, start, size, axis=w_axis)
        dh_c = _to_varying(dh_c + _hidden_grad(cfg, g, w_b), cfg.vary)
        cur = lax.dynamic_slice_in_dim(dw, start, size, axis=w_axis)
        dw_b = _to_varying(cur + _weight_grad(cfg, h_c, g), cfg.vary)
        dw = lax.dynamic_update_slice_in_dim(dw, dw_b, start, axis=w_axis)
        if db is not None:
            db_b = lax.dynamic_slice_in_dim(db, start, size) + jnp.sum(g, 0, dtype=cfg.compute)
            db = lax.dynamic_update_slice_in_dim(db, _to_varying(db_b, cfg.vary), start, 0)
        return dh_c, dw, db

    vb = cfg.block  # at most v (_dw_block)
    carry = (_zeros(cfg, h_c.shape), dw, db)
    blocks = v // vb
    if blocks == 1:
        carry = put(carry, 0, vb)
    else:
        carry = lax.fori_loop(0, blocks, lambda j, c: put(c, j * vb, vb), carry)
    if v % vb:
        carry = put(carry, blocks * vb, v % vb)
    return carry


def _local_labels(cfg: _Config, labels: Array, v_local: int) -> Array:
    """The labels among this shard's ``v_local`` classes (themselves without a vocab axis)."""
    if cfg.vocab_axis is None:
        return labels
    return labels - lax.axis_index(cfg.vocab_axis) * v_local


def _class_weight_total(cfg: _Config, cw: Array | None) -> Array | None:
    """``Σ_c w_c`` over the whole vocabulary where the smoothed gradient of a block needs it."""
    if cw is None or not cfg.smoothing:
        return None
    return _psum_vocab(cfg, jnp.sum(cw.astype(cfg.compute)))


def _chunks(cfg: _Config, *arrays: Array) -> tuple[Array, ...]:
    """``[N_pad, ...]`` arrays as ``[N_pad / C, C, ...]`` scan inputs."""
    return tuple(a.reshape(a.shape[0] // cfg.chunk, cfg.chunk, *a.shape[1:]) for a in arrays)


def _flat(a: Array) -> Array:
    return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])


def _sanitize(cfg: _Config, h_c: Array, valid_c: Array) -> Array:
    """Zero the hidden rows of excluded (and padding) tokens: NaN there reaches nothing."""
    return jnp.where(valid_c[:, None], h_c, jnp.zeros((), h_c.dtype)).astype(cfg.act)


def _zeros(cfg: _Config, shape: tuple[int, ...]) -> Array:
    return _to_varying(jnp.zeros(shape, cfg.compute), cfg.vary)


# mode="store" with a reduction to a number: Σ_t r_t ℓ_t and its gradients in one pass.


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _store_total(
    cfg: _Config,
    h: Array,
    w: Array,
    b: Array | None,
    r: Array,
    labels: Array,
    valid: Array,
    cw: Array | None,
) -> tuple[Array, _Stats]:
    return _store_fwd(cfg, h, w, b, r, labels, valid, cw)[0]


def _store_fwd(
    cfg: _Config,
    h: Array,
    w: Array,
    b: Array | None,
    r: Array,
    labels: Array,
    valid: Array,
    cw: Array | None,
) -> tuple[tuple[Array, _Stats], tuple[Any, ...]]:
    v = w.shape[1] if cfg.layout == "dv" else w.shape[0]
    cw_sum = _class_weight_total(cfg, cw)

    def body(carry: tuple[Array, Array | None], xs: tuple[Array, ...]) -> Any:
        dw, db = carry
        h_c, y_c, valid_c, r_c = xs
        h_c = _sanitize(cfg, h_c, valid_c)
        s = _logits(cfg, h_c, w, b)
        local = _local_labels(cfg, y_c, v)
        per, lse, correct, cw_y = _tile_loss(cfg, s, local, cw)
        dh_c, dw, db = _chunk_grads(cfg, h_c, s, local, lse, cw_y, r_c, w, cw, cw_sum, dw, db)
        return (dw, db), (dh_c, per, lse, correct, cw_y)

    init = (_zeros(cfg, w.shape), None if b is None else _zeros(cfg, b.shape))
    (dw, db), ys = lax.scan(body, init, _chunks(cfg, h, labels, valid, r))
    dh, per, lse, correct, cw_y = map(_flat, ys)
    total = jnp.sum(r.astype(per.dtype) * per)
    return (total, _Stats(lse, correct, cw_y)), (dh, dw, db, per)


def _store_bwd(cfg: _Config, res: tuple[Array, ...], cts: tuple[Array, Any]) -> tuple[Any, ...]:
    dh, dw, db, per = res
    g = cts[0]
    t_h, t_w, t_b, t_r = cfg.targets
    dh = _match((g * dh).astype(cfg.h_dtype), t_h, cfg.dh_extra)
    dw = _match((g * dw).astype(cfg.w_dtype), t_w)
    db = None if db is None else _match((g * db).astype(cfg.b_dtype), t_b)
    dr = _match(g * per, t_r)
    return dh, dw, db, dr, None, None, None


_store_total.defvjp(_store_fwd, _store_bwd)


# The per-token losses; the backward pass recomputes the tiles (mode="recompute", and "none").


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _per_token(
    cfg: _Config,
    h: Array,
    w: Array,
    b: Array | None,
    labels: Array,
    valid: Array,
    cw: Array | None,
) -> tuple[Array, _Stats]:
    return _per_token_fwd(cfg, h, w, b, labels, valid, cw)[0]


def _per_token_fwd(
    cfg: _Config,
    h: Array,
    w: Array,
    b: Array | None,
    labels: Array,
    valid: Array,
    cw: Array | None,
) -> tuple[tuple[Array, _Stats], tuple[Any, ...]]:
    v = w.shape[1] if cfg.layout == "dv" else w.shape[0]

    def body(carry: None, xs: tuple[Array, ...]) -> Any:
        h_c, y_c, valid_c = xs
        s = _logits(cfg, _sanitize(cfg, h_c, valid_c), w, b)
        return None, _tile_loss(cfg, s, _local_labels(cfg, y_c, v), cw)

    _, ys = lax.scan(body, None, _chunks(cfg, h, labels, valid))
    per, lse, correct, cw_y = map(_flat, ys)
    return (per, _Stats(lse, correct, cw_y)), (h, w, b, labels, valid, cw, lse, cw_y)


def _per_token_bwd(cfg: _Config, res: tuple[Any, ...], cts: tuple[Array, Any]) -> tuple[Any, ...]:
    h, w, b, labels, valid, cw, lse, cw_y = res
    r = jnp.where(valid, cts[0], jnp.zeros((), cts[0].dtype))
    grads = _vocab_blocked_grads if cfg.vblock else _token_chunked_grads
    dh, dw, db = grads(cfg, h, w, b, labels, valid, cw, lse, cw_y, r)
    t_h, t_w, t_b, _ = cfg.targets
    dh = _match(dh.astype(cfg.h_dtype), t_h, cfg.dh_extra)
    dw = _match(dw.astype(cfg.w_dtype), t_w)
    db = None if db is None else _match(db.astype(cfg.b_dtype), t_b)
    return dh, dw, db, None, None, None


def _token_chunked_grads(
    cfg: _Config,
    h: Array,
    w: Array,
    b: Array | None,
    labels: Array,
    valid: Array,
    cw: Array | None,
    lse: Array,
    cw_y: Array,
    r: Array,
) -> tuple[Array, Array, Array | None]:
    """The recompute backward pass over the token chunks: ``dW`` and ``dbias`` accumulated
    chunk by chunk, ``dhidden`` emitted per chunk."""
    v = w.shape[1] if cfg.layout == "dv" else w.shape[0]
    cw_sum = _class_weight_total(cfg, cw)

    def body(carry: tuple[Array, Array | None], xs: tuple[Array, ...]) -> Any:
        dw, db = carry
        h_c, y_c, valid_c, r_c, lse_c, cw_y_c = xs
        h_c = _sanitize(cfg, h_c, valid_c)
        s = _logits(cfg, h_c, w, b)
        local = _local_labels(cfg, y_c, v)
        dh_c, dw, db = _chunk_grads(cfg, h_c, s, local, lse_c, cw_y_c, r_c, w, cw, cw_sum, dw, db)
        return (dw, db), dh_c

    init = (_zeros(cfg, w.shape), None if b is None else _zeros(cfg, b.shape))
    (dw, db), dh = lax.scan(body, init, _chunks(cfg, h, labels, valid, r, lse, cw_y))
    return _flat(dh), dw, db


_per_token.defvjp(_per_token_fwd, _per_token_bwd)


def _vocab_blocked_grads(
    cfg: _Config,
    h: Array,
    w: Array,
    b: Array | None,
    labels: Array,
    valid: Array,
    cw: Array | None,
    lse: Array,
    cw_y: Array,
    r: Array,
) -> tuple[Array, Array, Array | None]:
    """The recompute backward pass over blocks of ``cfg.vblock`` classes, all tokens at once.

    With ``lse`` known from the forward pass, each ``[N, V_b]`` tile's gradient needs only its
    own classes: ``dW`` and ``dbias`` are written block by block (once), ``dhidden`` is summed
    over the blocks (``[N, D]``)."""
    v = w.shape[1] if cfg.layout == "dv" else w.shape[0]
    w_axis = 1 if cfg.layout == "dv" else 0
    vb = cfg.vblock
    hs = _sanitize(cfg, h, valid)
    local = _local_labels(cfg, labels, v)
    cw_sum = _class_weight_total(cfg, cw)

    def block(start: Any, size: int) -> tuple[Array, Array, Array | None]:
        w_j = lax.dynamic_slice_in_dim(w, start, size, axis=w_axis)
        b_j = None if b is None else lax.dynamic_slice_in_dim(b, start, size)
        cw_j = None if cw is None else lax.dynamic_slice_in_dim(cw, start, size)
        s = _logits(cfg, hs, w_j, b_j)
        g = _tile_grad(cfg, s, is_label(local - start, size), lse, cw_y, r, cw_j, cw_sum)
        db_j = None if b is None else jnp.sum(g, axis=0, dtype=cfg.compute)
        return _hidden_grad(cfg, g, w_j), _weight_grad(cfg, hs, g), db_j

    def put(carry: tuple[Array, Array, Array | None], start: Any, size: int) -> Any:
        dh, dw, db = carry
        dh_j, dw_j, db_j = block(start, size)
        dh = _to_varying(dh + dh_j, cfg.vary)
        dw = lax.dynamic_update_slice_in_dim(dw, _to_varying(dw_j, cfg.vary), start, w_axis)
        if db is not None and db_j is not None:
            db = lax.dynamic_update_slice_in_dim(db, _to_varying(db_j, cfg.vary), start, 0)
        return dh, dw, db

    init = (
        _zeros(cfg, hs.shape),
        _zeros(cfg, w.shape),
        None if b is None else _zeros(cfg, b.shape),
    )
    blocks = v // vb
    carry = lax.fori_loop(0, blocks, lambda j, c: put(c, j * vb, vb), init)
    if v % vb:
        carry = put(carry, blocks * vb, v % vb)
    return carry


def _owned_pick(cfg: _Config, table: Array, labels: Array) -> Array:
    """``table[label]`` for a ``[V_l]`` table sharded like the classes: from the owning shard."""
    owned, at = _ownership(_local_labels(cfg, labels, table.shape[0]), table.shape[0])
    return _psum_vocab(cfg, jnp.where(owned, jnp.take(table, at), 0.0))


def _ownership(local: Array, v_local: int) -> tuple[Array, Array]:
    """Whether this shard owns each local label, and the label clipped into its classes (a
    safe index where it does not)."""
    return (local >= 0) & (local < v_local), jnp.clip(local, 0, v_local - 1)
