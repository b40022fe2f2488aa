"""Sparse and Fenchel–Young losses: the binary and multiclass sparsemax losses and
:func:`make_fenchel_young_loss` (Blondel et al. 2020).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    check_broadcast,
    float_array,
    nan_if_out_of_range,
    pick_label,
    upcast,
)
from jaxloss._class_axis import (
    apply_class_weights,
    class_integer_labels,
)
from jaxloss._reduction import AxisName, Reduction, element_mask, reduce_elements, sanitize
from jaxloss.activations import sparsemax

__all__ = [
    "sparsemax_loss",
    "multiclass_sparsemax_loss",
    "make_fenchel_young_loss",
]


def _sparse_plus(x: Array) -> Array:
    """``0`` below -1, ``(x + 1)² / 4`` on [-1, 1], ``x`` above 1 (continuous derivative)."""
    inner = jnp.clip(x + 1, 0, 2)
    return 0.25 * inner**2 + jnp.maximum(x - 1, 0)


def sparsemax_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Binary sparsemax loss: the Fenchel-Young loss of the sparse sigmoid.

    .. math:: \ell = \mathrm{sparse\_plus}(-x) \text{ if } y \ne 0 \text{ else }
              \mathrm{sparse\_plus}(x), \quad
              \mathrm{sparse\_plus}(z) = \begin{cases} 0 & z \le -1 \\ (z+1)^2/4 & |z| < 1
              \\ z & z \ge 1 \end{cases}

    optax's ``sparsemax_loss`` (Blondel et al. 2020, §4.4): zero exactly when
    ``jax.nn.sparse_sigmoid(logits)`` equals the label, i.e. when ``x ≥ 1`` for a positive and
    ``x ≤ -1`` for a negative. Element-wise; ``labels`` are 0/1 (any non-zero counts as 1).

    Args:
      logits: any shape.
      labels: broadcastable to ``logits``.
      weights, where, reduction, axis_name: the contract, against ``logits.shape``.

    >>> import jax.numpy as jnp
    >>> sparsemax_loss(jnp.array([0.0, 2.0, 2.0]), jnp.array([1, 1, 0]))
    Array([0.25, 0.  , 2.  ], dtype=float32)
    """
    x = upcast(float_array(logits, "logits"))
    y = jnp.asarray(labels)
    check_broadcast(y, "labels", x.shape, "logits")
    y = jnp.broadcast_to(y, x.shape)
    mask = element_mask(x.shape, weights=weights, where=where)
    x = sanitize(x, mask)
    per = _sparse_plus(jnp.where(y != 0, -x, x))
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


def multiclass_sparsemax_loss(
    scores: ArrayLike,
    labels: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Multiclass sparsemax loss (Martins & Astudillo 2016), integer labels.

    .. math:: \ell = \sum_j p_j\,(x_j - x_y) + \tfrac12\bigl(1 - \lVert p\rVert^2\bigr),
              \quad p = \mathrm{sparsemax}(x)

    The Fenchel-Young loss of the Gini entropy: non-negative, zero exactly when
    ``sparsemax(x)`` is the one-hot of ``y``, with gradient ``sparsemax(x) - onehot(y)``.
    optax's ``multiclass_sparsemax_loss`` (same values), generalised from ``[B, C]`` to any
    ``[..., C]`` with the class axis last.

    Args:
      scores: ``[..., C]`` scores.
      labels: ``[...]`` integer labels.
      weights, where: the contract, against the loss shape ``[...]``.
      class_weights: ``[C]``; the element's weight is ``class_weights[label]``.
      ignore_index: a label value whose elements act as ``where=False``.
      reduction, axis_name: see :func:`jaxloss.reduce`.

    Edges: an out-of-range label that is not ``ignore_index`` gives NaN for its element
    (optax indexes out of bounds instead); :func:`jaxloss.checked` raises.

    Sharding: :func:`sparsemax` sorts each row, so a sharded class axis is all-gathered (a
    sharded batch is not); the label pick itself moves nothing.

    >>> import jax.numpy as jnp
    >>> multiclass_sparsemax_loss(jnp.array([[0.0, 0.0], [3.0, 0.0]]), jnp.array([0, 0]))
    Array([0.25, 0.  ], dtype=float32)
    """
    x = upcast(float_array(scores, "scores"))
    if x.ndim < 1:
        raise ValueError("scores must have a class axis (last); got a scalar.")
    num_classes = x.shape[-1]
    loss_shape = x.shape[:-1]
    safe_labels, in_range, include = class_integer_labels(
        labels, loss_shape, num_classes, ignore_index
    )
    mask = element_mask(loss_shape, weights=weights, where=where, include=include)
    x = sanitize(x, mask)
    per = _gini_fenchel_young(x, safe_labels)
    per, element_weight = apply_class_weights(per, None, safe_labels, class_weights, num_classes)
    per = nan_if_out_of_range(per, in_range, mask, num_classes, ignore_index)
    return reduce_elements(
        per,
        mask=mask,
        weights=weights,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=axis_name,
    )


@jax.custom_jvp
def _gini_fenchel_young(x: Array, labels: Array) -> Array:
    """``Σ_j p_j (x_j - x_y) + ½(1 - ‖p‖²)``, ``p = sparsemax(x)`` over the last axis.

    Its gradient is ``p - onehot(y)``, given directly: through ``p`` it would be formed as
    ``(p + x) - x``, which loses ``p`` to rounding once scores pass ~1e7 in float32.
    """
    p = sparsemax(x, axis=-1)
    label_score = pick_label(x, labels)[..., None]
    return jnp.sum(p * (x - label_score), axis=-1) + 0.5 * (1 - jnp.sum(p * p, axis=-1))


@_gini_fenchel_young.defjvp
def _gini_fenchel_young_jvp(primals: tuple[Array, Array], tangents: tuple[Any, Any]) -> Any:
    (x, labels), (dx, _) = primals, tangents
    p = sparsemax(x, axis=-1)
    label_score = pick_label(x, labels)
    value = jnp.sum(p * (x - label_score[..., None]), axis=-1) + 0.5 * (1 - jnp.sum(p * p, -1))
    return value, jnp.sum(p * dx, axis=-1) - pick_label(dx, labels)


def make_fenchel_young_loss(max_fun: Callable[..., ArrayLike]) -> Callable[..., Array]:
    r"""Build the Fenchel-Young loss of a "max" function (a convex regulariser's conjugate).

    .. math:: \ell(s, t) = \mathrm{max\_fun}(s) - \langle t, s \rangle

    over the last axis (Blondel et al. 2020). ``max_fun=jax.scipy.special.logsumexp`` gives the
    softmax cross-entropy with probability targets; a plain ``max`` gives the perceptron loss.
    As in optax, ``max_fun`` maps a vector ``[C]`` to a scalar and is vectorised over the
    leading axes, and extra ``*args`` / ``**kwargs`` of the loss are passed to it.

    The returned ``fenchel_young_loss(scores, targets, *args, weights=None, where=None,
    reduction="none", **kwargs)`` adds the contract: ``weights`` and ``where`` (element mask)
    broadcast to the loss shape (``scores`` less the last axis). Those three keyword names are
    taken by the contract and never forwarded to ``max_fun``. 16-bit scores are passed to
    ``max_fun`` upcast to float32.

    >>> import jax.numpy as jnp
    >>> from jax.scipy.special import logsumexp
    >>> loss = make_fenchel_young_loss(logsumexp)
    >>> loss(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]))   # log 2, the cross-entropy
    Array([0.6931472], dtype=float32)
    """
    if not callable(max_fun):
        raise TypeError(f"max_fun must be callable; got {max_fun!r}.")
    max_last = jnp.vectorize(max_fun, signature="(n)->()")

    def fenchel_young_loss(
        scores: ArrayLike,
        targets: ArrayLike,
        *args: Any,
        weights: ArrayLike | None = None,
        where: ArrayLike | None = None,
        reduction: Reduction = "none",
        axis_name: AxisName | None = None,
        **kwargs: Any,
    ) -> Array:
        s = upcast(float_array(scores, "scores"))
        t = jnp.asarray(targets)
        try:
            shape = jnp.broadcast_shapes(s.shape, t.shape)
        except ValueError:
            raise ValueError(
                f"targets has shape {tuple(t.shape)}, which does not broadcast "
                f"with the scores shape {tuple(s.shape)}."
            ) from None
        if not shape:
            raise ValueError("scores must have a last axis; got a scalar.")
        s = jnp.broadcast_to(s, shape)
        t = jnp.broadcast_to(t, shape).astype(s.dtype)
        mask = element_mask(shape[:-1], weights=weights, where=where)
        s, t = sanitize(s, mask), sanitize(t, mask)
        per = max_last(s, *args, **kwargs) - jnp.sum(t * s, axis=-1)
        return reduce_elements(
            jnp.asarray(per, s.dtype),
            mask=mask,
            weights=weights,
            reduction=reduction,
            axis_name=axis_name,
        )

    fenchel_young_loss.__doc__ = (
        f"Fenchel-Young loss of ``{getattr(max_fun, '__name__', repr(max_fun))}`` over the last "
        "axis: ``max_fun(scores) - <targets, scores>``; see :func:`make_fenchel_young_loss`."
    )
    return fenchel_young_loss
