"""Lovász-softmax: Berman et al.'s convex surrogate of the multi-class Jaccard (IoU) loss.

(The binary Lovász hinge, :func:`jaxloss.lovasz_hinge_loss`, lives in
:mod:`jaxloss.segmentation`.)

The Lovász extension needs the pixels of an image sorted by their error, so this loss sorts
along the pixel axis. The sort is written with :func:`jax.lax.sort` carrying its operands along
(no gather, no scatter), and the gradient flows through the errors elementwise; but a sort is
not shard-local: see the sharding notes of :func:`lovasz_softmax_loss`.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from jaxloss._checks import Array, ArrayLike, explicit_spec, reshard_like
from jaxloss._reduction import AxisName, Reduction
from jaxloss.segmentation import _prepare, _reduce_images

__all__ = ["lovasz_softmax_loss"]


def lovasz_softmax_loss(
    probs_or_logits: ArrayLike,
    labels: ArrayLike,
    *,
    classes: Literal["present", "all"] = "present",
    per_image: bool = False,
    from_logits: bool = True,
    ignore_index: int | None = None,
    axis: int = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: Reduction = "mean",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Lovász-softmax loss (Berman et al. 2018): a convex surrogate of the mean 1 - IoU.

    .. math::
        \ell = \frac{1}{|K|} \sum_{c \in K} \sum_{k=1}^{N} e_{c,(k)}\, g_{c,k}, \qquad
        e_{ic} = |[y_i = c] - p_{ic}|

    For each class ``c`` the errors are sorted in decreasing order and ``g_c`` is the gradient
    of the Lovász extension of the Jaccard loss at the labels so sorted (Berman's
    ``lovasz_grad``: the increments of ``1 - (G - Σ_{j≤k} f_j) / (G + Σ_{j≤k} (1 - f_j))`` with
    ``f`` the sorted foreground indicator and ``G`` its sum), held without gradient. ``K`` is
    the set of classes present in the labels (``classes="present"``, the default) or all
    ``C`` classes (``"all"``: an absent class then costs its largest probability). This is
    Berman's ``lovasz_softmax`` and segmentation_models_pytorch's multiclass ``LovaszLoss``
    (``per_image``, ``ignore_index`` as theirs).

    Args:
      probs_or_logits: ``[B, ..., C]`` (class axis ``axis``), ``C ≥ 2``.
      labels: integer labels ``[B, ...]``.
      classes: ``"present"`` or ``"all"``.
      per_image: one loss per image, then reduced (Berman's ``per_image=True``), or one loss
        over all the batch's pixels (the default, Berman's and smp's).
      from_logits: apply softmax first (smp's ``from_logits=True``).
      ignore_index: integer label of pixels to leave out (Berman's ``ignore``).
      axis: the class axis.
      where: boolean pixel mask broadcastable to ``[B, ...]``: False pixels are left out.
      weights: per-*image* weights broadcastable to ``[B]`` (``per_image=True`` only): the
        loss is not a sum over pixels, so pixel weights have no meaning here.
      reduction: over the ``[B]`` per-image losses (``[1]`` with ``per_image=False``);
        default ``"mean"`` (Berman's mean over images).
      axis_name: mesh axes inside ``shard_map``: the reduction over images is global.

    Returns:
      A scalar, or ``[B]`` / ``[1]`` for ``reduction="none"``.

    Sharding: the sort runs along the pixel axis of each image (of the whole batch with
    ``per_image=False``). With only the batch axis sharded and ``per_image=True`` every device
    sorts its own images; under ``jit`` with the pixel axes sharded, or with
    ``per_image=False`` and a sharded batch, XLA gathers those axes for the sort. Inside
    ``shard_map`` each device sorts only its own pixels: with ``per_image=True`` the result is
    exact (and ``axis_name`` makes the mean over images global), but with ``per_image=False``
    each device computes the Lovász loss of its own part of the batch and ``axis_name``
    averages those, which is not the Lovász loss of the global batch.

    Edges: an image with no included pixel counts in no mean (Berman's code has no value for
    it); with ``classes="present"`` every included image has a present class. An out-of-range
    label that is not ``ignore_index`` makes its image's loss NaN.

    >>> import jax.numpy as jnp
    >>> probs = jnp.array([[[0.9, 0.1], [0.4, 0.6], [0.3, 0.7]]])     # [B=1, N=3, C=2]
    >>> lovasz_softmax_loss(probs, jnp.array([[0, 0, 1]]), from_logits=False)
    Array(0.416667, dtype=float32)
    >>> lovasz_softmax_loss(probs, jnp.array([[0, 0, 0]]), from_logits=False)  # class 0 only
    Array(0.466667, dtype=float32)
    >>> lovasz_softmax_loss(probs, jnp.array([[0, 0, 0]]), from_logits=False, classes="all")
    Array(0.583333, dtype=float32)
    """
    if classes not in ("present", "all"):
        raise ValueError(f"classes must be 'present' or 'all'; got {classes!r}.")
    y = jnp.asarray(labels)
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(f"labels must be integer class labels; got dtype {y.dtype}.")
    r = _prepare(
        probs_or_logits,
        y,
        axis=axis,
        from_logits=from_logits,
        weights=None,
        where=where,
        ignore_index=ignore_index,
        pred_name="probs_or_logits",
    )
    num_classes = r.probs.shape[-1]
    if isinstance(num_classes, int) and num_classes < 2:  # symbolic class counts pass
        raise ValueError(
            f"lovasz_softmax_loss needs at least 2 classes; got {num_classes}. For binary "
            "segmentation use lovasz_hinge_loss."
        )
    if weights is not None and not per_image:
        raise ValueError(
            "weights are per-image weights; with per_image=False there is one loss for the "
            "batch: scale it yourself."
        )
    groups = r.probs.shape[0] if per_image else 1
    # [G, C, N]: classes before pixels, so each (group, class) row sorts on its own.
    probs = jnp.moveaxis(r.probs.reshape(groups, -1, num_classes), -1, 1)
    fg = jnp.moveaxis(r.targets.reshape(groups, -1, num_classes), -1, 1)
    included = None if r.mask is None else r.mask.reshape(groups, 1, -1)
    errors = jnp.abs(fg - probs)
    if included is not None:
        errors = jnp.where(included, errors, 0.0)
    per_class = _lovasz_softmax_flat(errors, fg, included)  # [G, C]
    if classes == "present":
        counted = (jnp.sum(fg, axis=-1) > 0).astype(per_class.dtype)
        per = jnp.sum(per_class * counted, axis=-1) / jnp.maximum(jnp.sum(counted, axis=-1), 1.0)
    else:
        per = jnp.mean(per_class, axis=-1)
    axes = tuple(range(1 if per_image else 0, r.probs.ndim - 1))
    return _reduce_images(
        per,
        r,
        axes,
        per_image=True,  # a per-shard loss: the reduction over images is summed over the mesh
        reduction=reduction,
        axis_name=axis_name,
        image_weights=weights,
    )


def _lovasz_softmax_flat(errors: Array, fg: Array, included: Array | None) -> Array:
    """``Σ_k e_(k) g_k`` for every row of ``[..., N]`` errors, ``g`` Berman's ``lovasz_grad``.

    One sort orders the errors (decreasing) carrying the foreground indicator and the pixel
    index along; ``g`` is computed in that order and a second sort, by pixel index, takes it
    back to the pixels' order, so the loss is ``Σ_i e_i g_{rank(i)}``: its gradient flows
    through ``e`` elementwise, with no gather and no sort in the backward pass. Excluded pixels
    (``errors`` 0, ``fg`` 0) are sorted last, where their ``g`` is 0.
    """
    key = jax.lax.stop_gradient(errors)
    if included is not None:
        key = jnp.where(included, key, -1.0)
    index = jax.lax.broadcasted_iota(jnp.int32, errors.shape, errors.ndim - 1)
    # A sort's operands must share one sharding on explicit-axes meshes: that of the errors.
    spec = explicit_spec(errors)
    operands = [reshard_like(a, spec) for a in (-key, jax.lax.stop_gradient(fg), index)]
    _, fg_sorted, order = jax.lax.sort(tuple(operands), dimension=errors.ndim - 1, num_keys=1)
    grad_sorted = _lovasz_grad(fg_sorted)
    _, grad = jax.lax.sort((order, grad_sorted), dimension=errors.ndim - 1, num_keys=1)
    return jnp.sum(errors * jax.lax.stop_gradient(grad), axis=-1)


def _lovasz_grad(fg_sorted: Array) -> Array:
    """Berman's ``lovasz_grad`` along the last axis: increments of the Jaccard loss of the
    first ``k`` pixels predicted foreground, for foreground indicators in sorted order."""
    total = jnp.sum(fg_sorted, axis=-1, keepdims=True)
    intersection = total - jnp.cumsum(fg_sorted, axis=-1)
    union = total + jnp.cumsum(1.0 - fg_sorted, axis=-1)  # ≥ 1 wherever it is used
    jaccard = 1.0 - intersection / jnp.maximum(union, 1.0)
    return jnp.concatenate([jaccard[..., :1], jnp.diff(jaccard, axis=-1)], axis=-1)
