"""Ranking losses: listwise objectives over the last axis (the items of one list), and the
pairwise margin ranking loss.

optax's ``ranking_softmax_loss`` with the same arguments, defaults and results. Leading axes
are lists; ``where`` marks valid items; optax's ``reduce_fn`` reduces over lists, and the
contract's ``reduction`` is accepted as an alternative.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp

from jaxloss._checks import Array, ArrayLike, check_broadcast, float_array, upcast
from jaxloss._reduction import (
    AxisName,
    Reduction,
    check_reduction,
    element_mask,
    reduce_elements,
    sanitize,
    where_mask,
)
from jaxloss.activations import log_softmax

__all__ = ["ranking_softmax_loss", "margin_ranking_loss"]


def ranking_softmax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduce_fn: Callable[..., ArrayLike] | None = jnp.mean,
    reduction: Reduction | None = None,
    axis_name: AxisName | None = None,
    list_weights: ArrayLike | None = None,
) -> Array:
    r"""Listwise softmax cross-entropy between item scores and relevance labels.

    .. math:: \ell(s, y) = -\sum_i w_i\, y_i \log \frac{e^{s_i}}{\sum_{j\ \text{valid}} e^{s_j}}

    optax's ``ranking_softmax_loss`` (ListNet-style softmax loss): same arguments, defaults
    and results. Here, as in optax, ``weights`` and ``where`` are *per item* (this is one of
    the contract's documented exceptions: optax's meaning wins), and ``reduce_fn`` (default
    :func:`jax.numpy.mean`) reduces the per-list losses over the lists that have at least one
    valid item; a mean over no such list is 0.

    Args:
      logits: ``[..., list_size]`` item scores.
      labels: ``[..., list_size]`` relevance labels (graded or binary).
      where: ``[..., list_size]`` boolean; ``False`` items leave the softmax and the sum.
      weights: ``[..., list_size]`` item weights; they multiply the labels.
      reduce_fn: ``jnp.mean`` (default), ``jnp.sum``, ``None`` (per-list losses, 0 for lists
        without valid items), or any function called as ``reduce_fn(losses, where=lists)``.
      reduction: a contract reduction over the lists (``"none"``, ``"sum"``, ``"mean"``,
        ``"weighted_mean"``, ``"sum_by_nonzero_weights"``); when given, it replaces
        ``reduce_fn`` (passing both a non-default ``reduce_fn`` and ``reduction`` is an error).
      list_weights: ``[...]`` per-list weights for ``reduction`` (the contract's ``weights``
        for the per-list loss; a list of weight 0 is excluded).

    Returns:
      A scalar, or the ``[...]`` per-list losses for ``reduce_fn=None`` /
      ``reduction="none"``; float32 for 16-bit logits.

    >>> import jax.numpy as jnp
    >>> ranking_softmax_loss(jnp.array([2.0, 1.0, 3.0]), jnp.array([1.0, 0.0, 0.0]))
    Array(1.4076059, dtype=float32)
    """
    x = upcast(float_array(logits, "logits"))
    if x.ndim < 1:
        raise ValueError("logits must have a list axis (last); got a scalar.")
    y = jnp.asarray(labels)
    if not (jnp.issubdtype(y.dtype, jnp.number) or y.dtype == jnp.bool_):
        raise TypeError(f"labels must be a numeric array; got dtype {y.dtype}.")
    check_broadcast(y, "labels", x.shape, "logits")
    y = jnp.broadcast_to(y, x.shape).astype(x.dtype)
    if reduction is not None:
        check_reduction(reduction)
        if reduce_fn is not jnp.mean:
            raise ValueError(
                "pass either reduce_fn (optax's) or reduction (the contract's), "
                f"not both; got reduce_fn={reduce_fn!r} and "
                f"reduction={reduction!r}."
            )
    elif list_weights is not None:
        raise ValueError("list_weights needs reduction=...; reduce_fn does not take weights.")

    item_mask = None if where is None else where_mask(where, x.shape, "logits")
    if weights is not None:
        w = jnp.asarray(weights)
        check_broadcast(w, "weights", x.shape, "logits")
        y = y * w.astype(x.dtype)
    list_shape = x.shape[:-1]
    valid_list = None if item_mask is None else jnp.any(item_mask, axis=-1)
    mask = element_mask(list_shape, weights=list_weights, include=valid_list, what="per-list loss")
    x, y = sanitize(x, mask), sanitize(y, mask)
    log_p = log_softmax(x, axis=-1, where=item_mask)
    if item_mask is not None:
        y = jnp.where(item_mask, y, 0)
        log_p = jnp.where(item_mask, log_p, 0)
    per = -jnp.sum(y * log_p, axis=-1)

    if reduction is not None:
        return reduce_elements(
            per, mask=mask, weights=list_weights, reduction=reduction, axis_name=axis_name
        )
    if reduce_fn is None:
        return reduce_elements(per, mask=mask, reduction="none")
    if reduce_fn is jnp.mean:
        return reduce_elements(per, mask=mask, reduction="mean")
    if reduce_fn is jnp.sum:
        return reduce_elements(per, mask=mask, reduction="sum")
    return jnp.asarray(reduce_fn(per, where=mask))


def margin_ranking_loss(
    scores1: ArrayLike,
    scores2: ArrayLike,
    targets: ArrayLike,
    *,
    margin: float | ArrayLike = 0.0,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Pairwise margin ranking loss: ``scores1`` should rank above ``scores2`` where ``t = 1``.

    .. math:: \ell = \max\bigl(0,\ -t\,(x_1 - x_2) + m\bigr), \qquad t \in \{-1, +1\}

    PyTorch's ``margin_ranking_loss`` with ``reduction="none"`` (its ``"mean"`` is ``"mean"``
    here); with ``m = 1`` it is the hinge of the score difference. Element-wise over the
    broadcast shape of the three inputs. The gradient at the kink is half the slope
    (``jnp.maximum``).

    Args:
      scores1, scores2: scores of the first and second item of each pair.
      targets: ±1 per pair (1: the first should rank higher).
      margin: ``m``.
      weights, where, reduction, axis_name: the contract over the per-pair loss.

    >>> import jax.numpy as jnp
    >>> margin_ranking_loss(jnp.array([2.0, 0.5]), jnp.array([1.0, 1.0]), jnp.array([1, 1]),
    ...                     margin=0.5)
    Array([0., 1.], dtype=float32)
    """
    x1 = upcast(float_array(scores1, "scores1"))
    x2 = upcast(float_array(scores2, "scores2"))
    t = jnp.asarray(targets)
    if not (jnp.issubdtype(t.dtype, jnp.number) or t.dtype == jnp.bool_):
        raise TypeError(f"targets must be a numeric array; got dtype {t.dtype}.")
    try:
        shape = jnp.broadcast_shapes(x1.shape, x2.shape, t.shape)
    except ValueError:
        raise ValueError(
            f"scores1 {tuple(x1.shape)}, scores2 {tuple(x2.shape)} and targets "
            f"{tuple(t.shape)} must broadcast together."
        ) from None
    dtype = jnp.promote_types(x1.dtype, x2.dtype)
    diff = jnp.broadcast_to(x1.astype(dtype) - x2.astype(dtype), shape)
    t = jnp.broadcast_to(t.astype(dtype), shape)
    mask = element_mask(shape, weights=weights, where=where)
    diff, t = sanitize(diff, mask), sanitize(t, mask)
    per = jnp.maximum(0.0, -t * diff + margin)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )
