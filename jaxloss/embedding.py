"""Embedding and metric-learning losses: cosine similarity and distance, NT-Xent (SimCLR),
triplet margin, PyTorch's cosine embedding loss, additive-margin softmax (ArcFace, CosFace).

optax's functions of the same names, with the same arguments, defaults and results, plus the
jaxloss contract (``weights``, ``where``, ``reduction``). 16-bit inputs are accumulated in
float32 and give a float32 result. Circle loss, supervised contrastive and CLIP live in
:mod:`jaxloss.contrastive`.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    Axis,
    canonical_axes,
    class_weight_vector,
    float_array,
    integer_labels,
    is_label,
    move_axes_last,
    nan_if_out_of_range,
    pick_label,
    upcast,
)
from jaxloss._reduction import (
    AxisName,
    Reduction,
    element_mask,
    reduce_elements,
    sanitize,
    where_mask,
)

__all__ = [
    "cosine_similarity",
    "cosine_distance",
    "ntxent",
    "triplet_margin_loss",
    "cosine_embedding_loss",
    "additive_margin_softmax_loss",
]


def cosine_similarity(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: float | ArrayLike = 0.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Cosine of the angle between ``predictions`` and ``targets`` along ``axis``.

    .. math:: \cos(a, b) = \frac{\langle a, b\rangle}
              {\sqrt{\max(\lVert a\rVert^2, \epsilon)}\,\sqrt{\max(\lVert b\rVert^2, \epsilon)}}

    optax's ``cosine_similarity``: same arguments, defaults and values (``epsilon`` bounds the
    *squared* norms from below). One deliberate difference: a zero vector with ``epsilon=0``
    has similarity 0 with a finite gradient here, where optax gives NaN.

    Args:
      predictions: ``[..., D]`` vectors.
      targets: ``[..., D]`` vectors, broadcastable with ``predictions``.
      epsilon: lower bound of the squared norms.
      axis: the vector axis (or axes).
      where: of the inputs' rank, a component mask (optax's meaning: masked components are
        left out of the norms and the dot product); of lower rank, an element mask of the
        result.
      weights: per-element weights broadcastable to the result shape.
      reduction, axis_name: see :func:`jaxloss.reduce`.

    Returns:
      The inputs' shape less ``axis`` (or a scalar when reduced).

    >>> import jax.numpy as jnp
    >>> cosine_similarity(jnp.array([[1.0, 0.0], [1.0, 1.0]]), jnp.array([[0.0, 2.0], [3.0, 3.0]]))
    Array([0., 1.], dtype=float32)
    """
    cos, mask, _ = _cosine(predictions, targets, epsilon, axis, where, weights)
    return reduce_elements(
        cos, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def cosine_distance(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    epsilon: float | ArrayLike = 0.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Cosine distance ``1 - cos(predictions, targets)``, in [0, 2].

    .. math:: d(a, b) = 1 - \cos(a, b)

    optax's ``cosine_distance``; arguments and the zero-vector convention as in
    :func:`cosine_similarity`. Excluded elements contribute 0 (not 1).

    >>> import jax.numpy as jnp
    >>> cosine_distance(jnp.array([1.0, 0.0]), jnp.array([-1.0, 0.0]))
    Array(2., dtype=float32)
    """
    cos, mask, _ = _cosine(predictions, targets, epsilon, axis, where, weights)
    return reduce_elements(
        1.0 - cos, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def _cosine(
    predictions: ArrayLike,
    targets: ArrayLike,
    epsilon: Any,
    axis: Axis,
    where: ArrayLike | None,
    weights: ArrayLike | None,
) -> tuple[Array, Array | None, tuple[int, ...]]:
    """Per-element cosine similarity, the element mask and the loss shape."""
    a = upcast(float_array(predictions, "predictions"))
    b = upcast(float_array(targets, "targets"))
    try:
        shape = jnp.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"predictions has shape {tuple(a.shape)} and targets has shape "
            f"{tuple(b.shape)}; they must broadcast together."
        ) from None
    dtype = jnp.promote_types(a.dtype, b.dtype)
    axes = canonical_axes(axis, len(shape))
    loss_shape = tuple(d for i, d in enumerate(shape) if i not in axes)
    a = move_axes_last(jnp.broadcast_to(a, shape).astype(dtype), axes)
    b = move_axes_last(jnp.broadcast_to(b, shape).astype(dtype), axes)
    component_mask = element_where = None
    if where is not None:
        where = jnp.asarray(where)
        if where.ndim == len(shape):
            component_mask = move_axes_last(where_mask(where, shape, "predictions"), axes)
            a, b = jnp.where(component_mask, a, 0), jnp.where(component_mask, b, 0)
        else:
            element_where = where
    mask = element_mask(loss_shape, weights=weights, where=element_where)
    a, b = sanitize(a, mask), sanitize(b, mask)
    (ua, qa), (ub, qb) = _scaled(a, epsilon), _scaled(b, epsilon)
    # One root of the product of the (scaled) squared norms: parallel vectors give exactly 1.
    cos = jnp.sum(ua * ub, axis=-1) / jnp.sqrt(qa[..., 0] * qb[..., 0])
    return cos, mask, loss_shape


def _scaled(v: Array, epsilon: Any) -> tuple[Array, Array]:
    """``(u, q)`` with ``v / sqrt(max(|v|², ε)) = u / sqrt(q)`` over the last axis.

    ``|v|²`` is never formed unscaled: ``u = v / s`` with ``s`` the largest magnitude (held
    constant for the gradient, which is exact since the unit vector does not depend on it), so
    vectors of norm 1e20 (whose square overflows float32) or 1e-30 (whose square underflows)
    normalise correctly. ``q = |u|²`` (in ``[1, D]``) when ``|v|² ≥ ε``, else ``ε / s²``; a
    zero vector with ``ε = 0`` gives ``u = 0``, ``q = 1``: it stays zero.
    """
    eps = jnp.asarray(epsilon, v.dtype)
    s = jax.lax.stop_gradient(jnp.max(jnp.abs(v), axis=-1, keepdims=True, initial=0))
    s = jnp.where((s > 0) & jnp.isfinite(s), s, 1)
    u = v / s
    u2 = jnp.sum(u * u, axis=-1, keepdims=True)
    q = jnp.where(s * s * u2 >= eps, u2, eps / (s * s))
    return u, jnp.where(q > 0, q, 1)


def _unit(v: Array, epsilon: Any) -> Array:
    """``v / sqrt(max(|v|², ε))`` over the last axis; a zero vector (ε = 0) stays zero."""
    u, q = _scaled(v, epsilon)
    return u / jnp.sqrt(q)


def ntxent(
    embeddings: ArrayLike,
    labels: ArrayLike,
    temperature: float | ArrayLike = 0.07,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
    axis_name: AxisName | None = None,
) -> Array:
    r"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al. 2020).

    .. math::
        \ell_{ij} = -\log \frac{e^{s_{ij}}}{e^{s_{ij}} + \sum_{k:\, y_k \ne y_i} e^{s_{ik}}},
        \qquad s_{ij} = \cos(z_i, z_j) / T

    for every positive pair ``(i, j)``: ``i ≠ j`` with ``y_i = y_j``. Each positive is
    contrasted with the anchor's negatives only (PyTorch-metric-learning's ``NTXentLoss``).
    optax's ``ntxent``: same arguments, default and value, the mean of ``ℓ_ij`` over the
    positive pairs, so the default ``reduction`` here is ``"mean"`` (the documented exception
    to the contract's ``"none"``).

    Args:
      embeddings: ``[B, D]``.
      labels: ``[B]``; equal labels mark positive pairs, e.g. ``[0, 0, 1, 1]`` for two views of
        two images.
      temperature: ``T``.
      weights: weights broadcastable to the ``[B, B]`` pair losses (``w[:, None]`` weighs
        anchors, ``w[None, :]`` positives).
      where: ``[B]`` boolean; ``False`` removes an embedding from the batch altogether (as
        anchor, positive and negative). A ``[B, B]`` mask selects pairs instead.
      reduction: ``"mean"`` (default: over positive pairs), ``"none"`` (the ``[B, B]`` pair
        losses, 0 off the positive pairs), or any other contract reduction over the pairs.

    Edges: a batch without positive pairs gives 0 with zero gradient (optax gives NaN); an
    anchor without negatives has loss 0 for its pairs (``log 1``), as in optax. The
    similarity uses ``epsilon = finfo(dtype).eps`` of the embeddings' dtype, as optax does.

    >>> import jax.numpy as jnp
    >>> z = jnp.array([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    >>> ntxent(z, jnp.array([0, 0, 1, 1]), temperature=1.0)  # (log 1.77811 + log 1.85906) / 2
    Array(0.5978082, dtype=float32)
    """
    z = float_array(embeddings, "embeddings")
    eps = float(jnp.finfo(z.dtype).eps)
    z = upcast(z)
    if z.ndim != 2:
        raise ValueError(f"embeddings must have shape [B, D]; got shape {tuple(z.shape)}.")
    labels = jnp.asarray(labels)
    if labels.shape != (z.shape[0],):
        raise ValueError(
            f"labels has shape {tuple(labels.shape)}; expected ({z.shape[0]},), "
            "one label per embedding."
        )
    batch = z.shape[0]
    pair_shape = (batch, batch)
    same = labels[:, None] == labels[None, :]
    present = jnp.ones(pair_shape, bool)
    pair_where = None
    if where is not None:
        where = jnp.asarray(where)
        if where.ndim == 1:
            row = where_mask(where, (batch,), "embeddings batch")
            present = row[:, None] & row[None, :]
            z = sanitize(z, row)
        else:
            pair_where = where
    positive = same & ~jnp.eye(batch, dtype=bool) & present
    negative = ~same & present
    mask = element_mask(pair_shape, weights=weights, where=pair_where, include=positive)

    s = jnp.sum(_unit(z[:, None, :], eps) * _unit(z[None, :, :], eps), axis=-1)
    s = s / jnp.asarray(temperature, s.dtype)
    # log Σ_{negatives k} exp(s_ik) per anchor, stably; anchors without negatives give 0 loss.
    top = jax.lax.stop_gradient(jnp.max(s, axis=1, keepdims=True, where=negative, initial=-jnp.inf))
    has_negative = jnp.any(negative, axis=1, keepdims=True)
    top = jnp.where(has_negative, top, 0)
    total = jnp.sum(
        jnp.where(negative, jnp.exp(jnp.where(negative, s - top, 0)), 0), axis=1, keepdims=True
    )
    log_negatives = top + jnp.log(jnp.where(has_negative, total, 1))
    per = jnp.where(has_negative, jax.nn.softplus(log_negatives - s), 0)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def triplet_margin_loss(
    anchors: ArrayLike,
    positives: ArrayLike,
    negatives: ArrayLike,
    axis: int = -1,
    norm_degree: float | ArrayLike = 2,
    margin: float | ArrayLike = 1.0,
    eps: float | ArrayLike = 1e-6,
    *,
    swap: bool = False,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Triplet margin loss (Balntas et al. 2016): the positive nearer than the negative by ``m``.

    .. math:: \ell = \max\bigl(d(a, p) - d(a, n) + m,\ 0\bigr), \qquad
              d(u, v) = \Bigl(\sum_k |u_k - v_k|^q + \epsilon\Bigr)^{1/q}

    optax's ``triplet_margin_loss``: same arguments, defaults and values for the default
    ``norm_degree=2`` and any even degree. For other degrees optax raises differences to the
    power without their absolute value (negative or NaN "distances"); here ``d`` is the true
    ``q``-norm distance — a deliberate difference.

    Args:
      anchors, positives, negatives: ``[..., D]`` embeddings (broadcastable together).
      axis: the embedding axis.
      norm_degree: ``q``.
      margin: ``m``.
      eps: added inside the root, keeping the gradient finite when two points coincide.
      swap: the distance swap of Balntas et al. (PyTorch's ``swap=True``): the negative's
        distance is ``min(d(a, n), d(p, n))``, the harder of the two.
      weights, where, reduction, axis_name: the contract over the per-triplet loss (inputs
        less ``axis``).

    >>> import jax.numpy as jnp
    >>> a, p, n = jnp.array([[0.0, 0.0]]), jnp.array([[0.0, 0.5]]), jnp.array([[0.0, 1.0]])
    >>> triplet_margin_loss(a, p, n, eps=0.0)    # 0.5 - 1.0 + 1.0
    Array([0.5], dtype=float32)
    """
    a = upcast(float_array(anchors, "anchors"))
    p = upcast(float_array(positives, "positives"))
    n = upcast(float_array(negatives, "negatives"))
    try:
        shape = jnp.broadcast_shapes(a.shape, p.shape, n.shape)
    except ValueError:
        raise ValueError(
            f"anchors, positives and negatives have shapes {tuple(a.shape)}, "
            f"{tuple(p.shape)} and {tuple(n.shape)}; they must broadcast "
            "together."
        ) from None
    if not isinstance(axis, int):
        raise TypeError(f"axis must be an int; got {axis!r}.")
    if not isinstance(swap, bool):
        raise TypeError(f"swap must be a Python bool; got {swap!r}.")
    (axis_,) = canonical_axes(axis, len(shape))
    loss_shape = tuple(d for i, d in enumerate(shape) if i != axis_)
    dtype = jnp.result_type(a.dtype, p.dtype, n.dtype)
    a, p, n = (
        move_axes_last(jnp.broadcast_to(v, shape).astype(dtype), (axis_,)) for v in (a, p, n)
    )
    mask = element_mask(loss_shape, weights=weights, where=where)
    a, p, n = sanitize(a, mask), sanitize(p, mask), sanitize(n, mask)
    per = jnp.maximum(_triplet_distances(a, p, n, norm_degree, eps, swap, inside=True) + margin, 0)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def _triplet_distances(
    a: Array, p: Array, n: Array, norm_degree: Any, eps: Any, swap: bool, *, inside: bool
) -> Array:
    """``d(a, p) - d(a, n)`` over the last axis, ``d(a, n)`` replaced by ``min(d(a, n), d(p, n))``
    with ``swap``.

    ``inside=True``: optax's ``(Σ|u - v|^q + eps)^(1/q)``; ``inside=False``: PyTorch's
    ``pairwise_distance``, ``‖u - v + eps‖_q``.
    """
    even = isinstance(norm_degree, int) and norm_degree % 2 == 0

    def distance(u: Array, v: Array) -> Array:
        diff = u - v if inside else u - v + jnp.asarray(eps, u.dtype)
        # Scaled by the largest difference when it exceeds 1 (held constant for the gradient,
        # algebraically exact): differences of 1e30 would overflow their square otherwise.
        big = jax.lax.stop_gradient(jnp.max(jnp.abs(diff), axis=-1, keepdims=True, initial=0))
        scale = jnp.where((big > 1) & jnp.isfinite(big), big, 1)
        r = diff / scale
        r = r if even else jnp.abs(r)
        inner = jnp.sum(jnp.power(r, norm_degree), axis=-1)
        if inside:
            inner = inner + eps / jnp.power(scale[..., 0], norm_degree)
        return scale[..., 0] * jnp.power(inner, 1.0 / norm_degree)

    negative = distance(a, n)
    if swap:
        negative = jnp.minimum(negative, distance(p, n))
    return distance(a, p) - negative


def cosine_embedding_loss(
    inputs1: ArrayLike,
    inputs2: ArrayLike,
    targets: ArrayLike,
    *,
    margin: float | ArrayLike = 0.0,
    epsilon: float | ArrayLike = 0.0,
    axis: Axis = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Cosine embedding loss: similar pairs toward cosine 1, dissimilar below ``margin``.

    .. math:: \ell = \begin{cases} 1 - \cos(a, b) & t = 1 \\
              \max(0,\ \cos(a, b) - m) & t = -1 \end{cases}

    PyTorch's ``cosine_embedding_loss`` with ``reduction="none"`` (PyTorch's ``"mean"`` is
    ``"mean"`` here). The cosine is :func:`cosine_similarity`'s (a zero vector has cosine 0
    with a finite gradient; PyTorch adds ``1e-12`` to the squared norms instead, which differs
    only for vectors of norm below ~1e-6).

    Args:
      inputs1, inputs2: ``[..., D]`` embeddings, broadcastable together.
      targets: ±1 per pair, the loss shape (inputs less ``axis``); any value other than 1
        counts as -1, as in PyTorch.
      margin: ``m`` in [-1, 1] (PyTorch suggests 0 to 0.5).
      epsilon: lower bound of the squared norms, as in :func:`cosine_similarity`.
      axis: the vector axis (or axes).
      where, weights, reduction, axis_name: the contract over the per-pair loss.

    >>> import jax.numpy as jnp
    >>> a = jnp.array([[1.0, 0.0], [1.0, 0.0]])
    >>> b = jnp.array([[1.0, 1.0], [1.0, 1.0]])
    >>> cosine_embedding_loss(a, b, jnp.array([1, -1]), margin=0.5)   # 1 - 0.7071, 0.7071 - 0.5
    Array([0.29289323, 0.20710677], dtype=float32)
    """
    cos, mask, loss_shape = _cosine(inputs1, inputs2, epsilon, axis, where, weights)
    t = jnp.asarray(targets)
    if not (jnp.issubdtype(t.dtype, jnp.number) or t.dtype == jnp.bool_):
        raise TypeError(f"targets must be a numeric array; got dtype {t.dtype}.")
    if tuple(t.shape) != tuple(loss_shape) and t.ndim != 0:
        raise ValueError(
            f"targets has shape {tuple(t.shape)}; expected {tuple(loss_shape)}, the inputs' "
            "shape less axis (one ±1 per pair)."
        )
    per = jnp.where(t == 1, 1.0 - cos, jnp.maximum(0.0, cos - margin))
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def additive_margin_softmax_loss(
    cosines: ArrayLike,
    labels: ArrayLike,
    *,
    kind: Literal["arcface", "cosface"] = "arcface",
    scale: float | ArrayLike = 64.0,
    margin: float | ArrayLike | None = None,
    axis: Axis = -1,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Additive-margin softmax on cosine logits: ArcFace, CosFace / AM-softmax.

    .. math::
        \ell = -\log \frac{e^{s\,\psi(\cos\theta_y)}}
                          {e^{s\,\psi(\cos\theta_y)} + \sum_{c \ne y} e^{s \cos\theta_c}},
        \qquad \psi(\cos\theta) = \begin{cases}
            \cos(\theta + m) & \texttt{"arcface"} \ \text{(Deng et al. 2019)} \\
            \cos\theta - m & \texttt{"cosface"} \ \text{(Wang et al. 2018; AM-softmax)}
        \end{cases}

    The cross-entropy of the scaled cosines with the true class's cosine made harder by a
    margin. ``cosines`` are ``⟨x̂, ŵ_c⟩`` of a normalised embedding and normalised class
    weights (``normalize(x) @ normalize(W).T``). ArcFace follows InsightFace's
    ``ArcMarginProduct(easy_margin=False)``: where ``θ + m > π`` (``cos θ ≤ cos(π - m)``) it
    uses ``cos θ - m sin m`` instead, which keeps ``ψ`` decreasing in ``θ``. The true class's
    cosine is clipped to [-1, 1] and ``sin θ = sqrt(1 - cos²θ)`` has a zero (not infinite)
    derivative at ``cos θ = ±1``. ``margin=0`` is the normalised-softmax (NormFace) loss,
    :func:`softmax_cross_entropy_with_integer_labels` of ``scale · cosines``.

    Args:
      cosines: ``[..., C, ...]`` cosine similarities to the class centres.
      labels: integer class indices, shape ``cosines`` less ``axis``.
      kind: ``"arcface"`` (additive angular margin) or ``"cosface"`` (additive cosine margin;
        AM-softmax is the same loss).
      scale: ``s`` (64 in ArcFace and CosFace, 30 in AM-softmax).
      margin: ``m``; ``None`` takes the paper's, 0.5 for ArcFace, 0.35 for CosFace.
      axis: class axis (or axes).
      weights, where: the contract, against the loss shape (``where`` is an element mask).
      class_weights: ``[C]``; the element's weight is ``class_weights[label]``.
      ignore_index: labels equal to it act as ``where=False``.
      reduction, axis_name: see :func:`jaxloss.reduce`.

    Edges: an out-of-range label that is not ``ignore_index`` gives NaN for its element. The
    true class is picked by comparing with an iota (no gather), so a class axis sharded over
    devices needs no all-gather.

    >>> import jax.numpy as jnp
    >>> cos = jnp.array([[1.0, 0.0]])
    >>> additive_margin_softmax_loss(cos, jnp.array([0]), kind="cosface", scale=1.0, margin=0.5)
    Array([0.474077], dtype=float32)
    """
    if kind not in ("arcface", "cosface"):
        raise ValueError(f"kind must be 'arcface' or 'cosface'; got {kind!r}.")
    c_all = upcast(float_array(cosines, "cosines"))
    axes = canonical_axes(axis, c_all.ndim)
    loss_shape = tuple(d for i, d in enumerate(c_all.shape) if i not in axes)
    c_all = move_axes_last(c_all, axes)
    num_classes = c_all.shape[-1]
    safe_labels, in_range, include = integer_labels(
        labels, loss_shape, num_classes, ignore_index, of="cosines without its class axis"
    )
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    c_all = sanitize(c_all, mask)
    dtype = c_all.dtype
    m = jnp.asarray((0.5 if kind == "arcface" else 0.35) if margin is None else margin, dtype)
    s = jnp.asarray(scale, dtype)
    hit = is_label(safe_labels, num_classes)
    c = jnp.clip(jnp.sum(jnp.where(hit, c_all, 0.0), axis=-1), -1.0, 1.0)
    if kind == "arcface":
        sin2 = 1.0 - c * c
        positive = sin2 > 0
        sin = jnp.where(positive, jnp.sqrt(jnp.where(positive, sin2, 1.0)), 0.0)
        psi = c * jnp.cos(m) - sin * jnp.sin(m)
        psi = jnp.where(c > jnp.cos(jnp.pi - m), psi, c - m * jnp.sin(m))
    else:
        psi = c - m
    logits = s * jnp.where(hit, psi[..., None], c_all)
    per = jax.nn.logsumexp(logits, axis=-1) - s * psi
    element_weight = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, num_classes, dtype)
        element_weight = pick_label(cw, safe_labels)
        per = per * element_weight
    per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )
