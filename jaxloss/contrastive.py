"""Contrastive and pair-similarity losses: circle loss, supervised contrastive, CLIP / InfoNCE.

Each loss works on a batch of embeddings ``[B, D]``, compares every pair by cosine similarity
(the embeddings are L2-normalised inside; a zero vector has similarity 0) and returns one loss
per anchor, ``[B]``, reduced by the contract (see :func:`jaxloss.reduce`): ``weights`` of shape
``[B]`` weigh anchors, and ``where=[B]`` removes embeddings from the batch altogether (as anchor
and as the partner of every other anchor). The similarity matrix is an ``[B, B]`` matrix
product in ``HIGHEST`` precision (no TF32/bf16 rounding of the similarities on GPUs and TPUs).

Under ``shard_map`` the pairs are those of the local batch; ``axis_name=`` makes the reduction
over anchors global, but gathering the other devices' embeddings as extra partners (the usual
large-batch setup) is the caller's ``jax.lax.all_gather``: circle loss takes them as
``ref_embeddings``.

ntxent (SimCLR), the pair loss optax ships, is :func:`jaxloss.ntxent`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxloss._checks import Array, ArrayLike, float_array, static_float, upcast
from jaxloss._reduction import AxisName, Reduction, element_mask, reduce_elements, where_mask

__all__ = ["circle_loss", "supervised_contrastive_loss", "clip_loss"]


def circle_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    *,
    gamma: float | ArrayLike = 80.0,
    margin: float | ArrayLike = 0.4,
    ref_embeddings: ArrayLike | None = None,
    ref_labels: ArrayLike | None = None,
    remove_diagonal: bool = True,
    stop_gradient_weights: bool = True,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Circle loss (Sun et al. 2020) with class labels: Keras's ``circle``, per anchor.

    .. math::
        \ell_i = \log\Bigl(1 + \sum_{n} e^{\gamma \alpha_n (s_n - m)}
                           \sum_{p} e^{-\gamma \alpha_p (s_p - 1 + m)}\Bigr),
        \quad \alpha_p = [1 + m - s_p]_+, \quad \alpha_n = [s_n + m]_+

    over the anchor's positives ``p`` (same label, itself excluded when ``remove_diagonal``) and
    negatives ``n`` (other labels), ``s = cos(z_i, z_j)`` clipped to 1 (Keras clamps the cosine
    distance at 0). Each similarity is pushed towards its own optimum (``1 + m`` for positives,
    ``-m`` for negatives) with a weight that grows with its distance from it.

    The values are Keras's ``keras.losses.circle`` on unit embeddings; Keras's ``"mean"``
    leaves out anchors whose loss is 0, which are those without a positive or without a
    negative: here such anchors are excluded (``reduction="mean"`` is Keras's default
    reduction). ``stop_gradient_weights=True`` (default) treats ``α_p, α_n`` as constants in
    the gradient, as the paper's analysis and its reference implementations do; ``False``
    differentiates through them, as Keras does (the same value).

    Args:
      embeddings: ``[B, D]`` (normalised inside).
      labels: ``[B]`` class labels; equal labels are positive pairs.
      gamma: the scale ``γ`` (Keras's 80; the paper uses 256 for face recognition).
      margin: the relaxation ``m`` (Keras's 0.4; the paper's 0.25).
      ref_embeddings, ref_labels: ``[R, D]`` and ``[R]`` partners other than the batch (a
        memory bank, or the embeddings of every device); both or neither. ``remove_diagonal``
        then removes the pairs ``(i, i)``, meaningful when the references start with the batch.
      remove_diagonal: leave the pair of an embedding with itself out of its positives.
      stop_gradient_weights: see above.
      weights: ``[B]`` anchor weights.
      where: ``[B]`` boolean; ``False`` removes the embedding as an anchor (and, without
        ``ref_embeddings``, as a partner).
      reduction, axis_name: see :func:`jaxloss.reduce`.

    Edges: an anchor without a positive or without a negative gives 0 and is left out of
    every denominator; gradients are finite for any finite input.

    >>> import jax.numpy as jnp
    >>> z = jnp.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    >>> circle_loss(z, jnp.array([0, 0, 1]), gamma=1.0, margin=0.25)
    Array([0.65155005, 0.8400707 , 0.        ], dtype=float32)
    """
    z = _batch_embeddings(embeddings, "embeddings")
    batch = z.shape[0]
    labels = _batch_labels(labels, batch, "labels")
    static_float(gamma, "gamma", low=0.0, low_open=True)
    if (ref_embeddings is None) != (ref_labels is None):
        raise ValueError(
            "ref_embeddings and ref_labels go together: pass both or neither; got "
            f"ref_embeddings={'None' if ref_embeddings is None else 'an array'} and "
            f"ref_labels={'None' if ref_labels is None else 'an array'}."
        )
    row = None if where is None else where_mask(where, (batch,), "embeddings batch")
    if ref_embeddings is None or ref_labels is None:  # both None (checked above)
        ref, ref_lab, ref_present = z, labels, row
    else:
        ref = _batch_embeddings(ref_embeddings, "ref_embeddings")
        if ref.shape[1] != z.shape[1]:
            raise ValueError(
                f"ref_embeddings has shape {tuple(ref.shape)}; expected [R, {z.shape[1]}], "
                "the embedding size of embeddings."
            )
        ref_lab, ref_present = _batch_labels(ref_labels, ref.shape[0], "ref_labels"), None
    s = jnp.minimum(_cosine_matrix(z, ref, row, ref_present), 1.0)
    partner = jnp.ones(s.shape, bool) if ref_present is None else ref_present[None, :]
    same = labels[:, None] == ref_lab[None, :]
    positive = same & partner
    if remove_diagonal:
        positive = positive & ~jnp.eye(*s.shape, dtype=bool)
    negative = ~same & partner
    m = jnp.asarray(margin, s.dtype)
    gamma = jnp.asarray(gamma, s.dtype)
    held = jax.lax.stop_gradient(s) if stop_gradient_weights else s
    alpha_p = jnp.maximum(1.0 + m - held, 0.0)
    alpha_n = jnp.maximum(held + m, 0.0)
    lse_p, has_p = _masked_logsumexp(-gamma * alpha_p * (s - (1.0 - m)), positive)
    lse_n, has_n = _masked_logsumexp(gamma * alpha_n * (s - m), negative)
    include = has_p & has_n
    per = jnp.where(include, jax.nn.softplus(lse_p + lse_n), 0.0)
    mask = element_mask((batch,), weights=weights, where=row, include=include)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def supervised_contrastive_loss(
    embeddings: ArrayLike,
    labels: ArrayLike,
    temperature: float | ArrayLike = 0.07,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Supervised contrastive loss (Khosla et al. 2020), the ``L_out`` form, per anchor.

    .. math::
        \ell_i = -\frac{1}{|P(i)|} \sum_{p \in P(i)}
                 \log \frac{e^{s_{ip}}}{\sum_{a \ne i} e^{s_{ia}}},
        \qquad s_{ij} = \cos(z_i, z_j) / \tau

    with ``P(i)`` the other embeddings of anchor ``i``'s class and the denominator over every
    other embedding in the batch. Several views of an image are several rows with the same
    label (the reference code's ``[bsz, n_views, D]`` is ``features.reshape(-1, D)`` here with
    the labels repeated per view, its ``contrast_mode="all"``). With one label per image and two
    views this is SimCLR's NT-Xent. The reference code's extra factor ``τ / τ_base`` is 1 at its
    defaults (both 0.07); multiply the loss by it for other choices.

    Args:
      embeddings: ``[B, D]`` (normalised inside).
      labels: ``[B]`` class labels.
      temperature: ``τ > 0``.
      weights: ``[B]`` anchor weights.
      where: ``[B]`` boolean; ``False`` removes an embedding from the batch altogether.
      reduction, axis_name: see :func:`jaxloss.reduce`.

    Edges: an anchor without positives gives 0 and is left out of every denominator (the
    reference code gives it 0 and counts it in its mean).

    >>> import jax.numpy as jnp
    >>> z = jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> supervised_contrastive_loss(z, jnp.array([0, 0, 1]), 1.0)   # log(1 + e⁻¹), -, -
    Array([0.3132616, 0.3132616, 0.       ], dtype=float32)
    """
    z = _batch_embeddings(embeddings, "embeddings")
    batch = z.shape[0]
    labels = _batch_labels(labels, batch, "labels")
    static_float(temperature, "temperature", low=0.0, low_open=True)
    row = None if where is None else where_mask(where, (batch,), "embeddings batch")
    s = _cosine_matrix(z, z, row, row) / jnp.asarray(temperature, z.dtype)
    others = ~jnp.eye(batch, dtype=bool)
    if row is not None:
        others = others & row[None, :]
    positive = others & (labels[:, None] == labels[None, :])
    log_denominator, _ = _masked_logsumexp(s, others)
    count = jnp.sum(positive, axis=1)
    include = count > 0
    log_prob = jnp.where(positive, s - log_denominator[:, None], 0.0)
    per = -jnp.sum(log_prob, axis=1) / jnp.maximum(count, 1).astype(s.dtype)
    mask = element_mask((batch,), weights=weights, where=row, include=include)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def clip_loss(
    embeddings_a: ArrayLike,
    embeddings_b: ArrayLike,
    temperature: float | ArrayLike = 0.07,
    *,
    symmetric: bool = True,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""The symmetric InfoNCE loss of CLIP (Radford et al. 2021) over a batch of pairs, per pair.

    .. math::
        \ell_i = \tfrac12 \Bigl(-\log \frac{e^{s_{ii}}}{\sum_j e^{s_{ij}}}
                               - \log \frac{e^{s_{ii}}}{\sum_j e^{s_{ji}}}\Bigr),
        \qquad s_{ij} = \cos(a_i, b_j) / \tau

    Row ``i`` of ``embeddings_a`` (an image) and row ``i`` of ``embeddings_b`` (its caption) are
    a positive pair, every other row of the other side a negative: CLIP's
    ``(cross_entropy(logits, arange) + cross_entropy(logits.T, arange)) / 2``, whose mean is
    ``reduction="mean"``. CLIP learns ``τ`` as ``logit_scale = log(1/τ)``, initialised at
    ``τ = 0.07``: pass ``temperature=jnp.exp(-logit_scale)`` (it may be traced and
    differentiated). ``symmetric=False`` keeps the first term only: InfoNCE from ``a`` to ``b``
    with in-batch negatives (CPC, MoCo without a queue).

    Args:
      embeddings_a, embeddings_b: ``[B, D]`` each (normalised inside).
      temperature: ``τ > 0``.
      symmetric: average both directions (default) or only ``a → b``.
      weights: ``[B]`` pair weights.
      where: ``[B]`` boolean; ``False`` removes pair ``i`` (as positive and as negative).
      reduction, axis_name: see :func:`jaxloss.reduce`.

    >>> import jax.numpy as jnp
    >>> a = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    >>> clip_loss(a, a, temperature=1.0)               # log(1 + e⁻¹) both ways
    Array([0.3132616, 0.3132616], dtype=float32)
    """
    a = _batch_embeddings(embeddings_a, "embeddings_a")
    b = _batch_embeddings(embeddings_b, "embeddings_b")
    if a.shape != b.shape:
        raise ValueError(
            f"embeddings_a has shape {tuple(a.shape)} but embeddings_b has shape "
            f"{tuple(b.shape)}; they must be equal (row i of each is a pair)."
        )
    batch = a.shape[0]
    static_float(temperature, "temperature", low=0.0, low_open=True)
    row = None if where is None else where_mask(where, (batch,), "embeddings batch")
    s = _cosine_matrix(a, b, row, row) / jnp.asarray(temperature, a.dtype)
    partner = jnp.ones((batch, batch), bool) if row is None else row[None, :] & row[:, None]
    s_pair = jnp.sum(jnp.where(jnp.eye(batch, dtype=bool), s, 0.0), axis=1)
    a_to_b = _masked_logsumexp(s, partner)[0] - s_pair
    if symmetric:
        b_to_a = _masked_logsumexp(s.T, partner.T)[0] - s_pair
        per = 0.5 * (a_to_b + b_to_a)
    else:
        per = a_to_b
    mask = element_mask((batch,), weights=weights, where=row)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


# ---------------------------------------------------------------------------------------------


def _batch_embeddings(x: ArrayLike, name: str) -> Array:
    z = upcast(float_array(x, name))
    if z.ndim != 2:
        raise ValueError(f"{name} must have shape [B, D]; got shape {tuple(z.shape)}.")
    return z


def _batch_labels(labels: ArrayLike, batch: int, name: str) -> Array:
    labels = jnp.asarray(labels)
    if labels.shape != (batch,):
        raise ValueError(
            f"{name} has shape {tuple(labels.shape)}; expected ({batch},), one label per embedding."
        )
    return labels


def _unit_rows(z: Array, present: Array | None) -> Array:
    """Rows scaled to unit norm; zero rows (and rows not ``present``) become zero vectors."""
    if present is not None:
        z = jnp.where(present[:, None], z, jnp.zeros((), z.dtype))
    norm2 = jnp.sum(z * z, axis=-1, keepdims=True)
    positive = norm2 > 0
    return z / jnp.sqrt(jnp.where(positive, norm2, 1.0))


def _cosine_matrix(a: Array, b: Array, a_present: Array | None, b_present: Array | None) -> Array:
    """``[A, B]`` cosine similarities; rows of absent embeddings are 0 (and get no gradient)."""
    return jnp.matmul(
        _unit_rows(a, a_present),
        _unit_rows(b, b_present).T,
        precision=jax.lax.Precision.HIGHEST,
    )


def _masked_logsumexp(z: Array, mask: Array) -> tuple[Array, Any]:
    """``log Σ_{j: mask} exp(z_ij)`` per row, stably, and whether the row has any such ``j``.

    Empty rows give 0 with zero gradients (the caller masks them out).
    """
    has = jnp.any(mask, axis=-1, keepdims=True)
    top = jnp.max(jnp.where(mask, z, -jnp.inf), axis=-1, keepdims=True, initial=-jnp.inf)
    top = jax.lax.stop_gradient(jnp.where(has, top, 0.0))
    total = jnp.sum(jnp.where(mask, jnp.exp(jnp.where(mask, z - top, 0.0)), 0.0), axis=-1)
    return top[..., 0] + jnp.log(jnp.where(has[..., 0], total, 1.0)), has[..., 0]
