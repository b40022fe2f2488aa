"""The one weighting / masking / reduction contract.

Every loss in jaxloss computes a per-element loss (per example, pixel or token) and hands it
here. Nothing else in the package multiplies by weights, masks, or divides by a count.

The reducer works on two arrays:

* the *numerator terms* ``n_i``: the per-element loss times its sample weight (and, inside the
  loss formula, its class weights), exactly 0 for excluded elements;
* the *denominator terms* ``d_i``: the element's total weight ``weights_i × class_weight_i``,
  0 for excluded elements.

and an *included* mask (``where`` and not ``ignore_index`` and, for losses with such a notion,
not an unlabeled row). The reductions are

==========================  ====================================================
``"none"``                  the array ``n`` (optax-compatible per-element output)
``"sum"``                   ``Σ n_i``
``"mean"``                  ``Σ n_i / #included`` (a zero sample weight excludes)
``"weighted_mean"``         ``Σ n_i / Σ d_i`` (PyTorch's ``mean`` with ``weight=``)
``"sum_by_nonzero_weights"`` ``Σ n_i / #{d_i ≠ 0}`` (TensorFlow's ``SUM_BY_NONZERO_WEIGHTS``)
==========================  ====================================================

A mean over nothing (empty mask, all weights zero) is ``0.0`` with zero gradients, never NaN.
"""

from __future__ import annotations

from typing import Literal, get_args

import jax.numpy as jnp

from jaxloss._checks import Array, ArrayLike, canonical_axes, check_broadcast

Reduction = Literal["none", "sum", "mean", "weighted_mean", "sum_by_nonzero_weights"]
REDUCTIONS: tuple[str, ...] = get_args(Reduction)

__all__ = ["Reduction", "reduce"]


def reduce(
    losses: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
    sum_axes: int | tuple[int, ...] | None = None,
) -> Array:
    r"""Reduce your own per-element losses with jaxloss's weighting contract.

    .. math::
        n_i = w_i\,\ell_i\,[\text{where}_i], \qquad
        \text{mean} = \frac{\sum_i n_i}{\#\{i : \text{where}_i\}}, \qquad
        \text{weighted\_mean} = \frac{\sum_i n_i}{\sum_i w_i [\text{where}_i]}

    Args:
      losses: per-element losses, any shape ``S``.
      weights: float array broadcastable to ``S`` (per-example weights, a ``[B, H, W]`` pixel
        weight map, token weights). Multiplies the loss.
      where: boolean array broadcastable to ``S``. ``False`` elements contribute exactly 0 to
        the value and every gradient (even if their loss is NaN or inf) and are left out of every
        denominator.
      reduction: ``"none"``, ``"sum"``, ``"mean"`` (default here), ``"weighted_mean"`` or
        ``"sum_by_nonzero_weights"``; see the module docstring. A Python string, static under jit.
      sum_axes: axes summed *within* each example before ``reduction`` is applied to the rest,
        the "sum per example, then mean over the batch" pattern of segmentation losses. After
        the sum, an example's weight is the sum of its elements' weights and it counts as
        included when any of its elements is, so ``reduction="mean"`` divides by the number of
        examples that have at least one included pixel.

    Returns:
      A scalar, or for ``reduction="none"`` the weighted losses (shape ``S`` less ``sum_axes``).

    Edges: a mean over nothing is 0.0 with zero gradient. An element whose sample weight is
    exactly 0 is excluded like ``where=False``: it contributes exactly 0 (even with NaN inputs)
    and ``"mean"`` does not count it. ``"mean"`` and ``"sum_by_nonzero_weights"`` differ once a
    loss has class weights: ``"mean"`` counts every included element, whatever its class
    weight, ``"sum_by_nonzero_weights"`` only those whose total weight is non-zero.

    >>> import jax.numpy as jnp
    >>> reduce(jnp.array([1.0, 2.0, 3.0, 4.0]), where=jnp.array([True, True, False, True]))
    Array(2.3333333, dtype=float32)
    >>> pixel_losses = jnp.ones((2, 4, 4))        # [B, H, W]: sum per image, mean over images
    >>> reduce(pixel_losses, sum_axes=(1, 2), reduction="mean")
    Array(16., dtype=float32)
    >>> reduce(jnp.array([1.0, 3.0]), weights=jnp.array([0.0, 0.0]), reduction="weighted_mean")
    Array(0., dtype=float32)
    """
    losses = jnp.asarray(losses)
    if not jnp.issubdtype(losses.dtype, jnp.floating):
        losses = losses.astype(jnp.float32)
    mask = element_mask(losses.shape, weights=weights, where=where)
    return reduce_elements(
        losses, mask=mask, weights=weights, reduction=reduction, sum_axes=sum_axes
    )


# ---------------------------------------------------------------------------------------------
# The pieces every loss uses.


def check_reduction(reduction: str) -> None:
    """Raise ``ValueError`` for anything but the five reduction names."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction must be one of {', '.join(repr(r) for r in REDUCTIONS)}; got {reduction!r}."
        )


def where_mask(where: ArrayLike, shape: tuple[int, ...], what: str = "per-element loss") -> Array:
    """Validate a boolean ``where`` against the loss shape and broadcast it there."""
    where = jnp.asarray(where)
    if where.dtype != jnp.bool_:
        if jnp.issubdtype(where.dtype, jnp.floating):
            raise TypeError(f"where must be a boolean array; got dtype {where.dtype}.")
        where = where != 0
    check_broadcast(where, "where", shape, what)
    return jnp.broadcast_to(where, shape)


def weight_array(
    weights: ArrayLike, shape: tuple[int, ...], what: str = "per-element loss"
) -> Array:
    """Validate ``weights`` against the loss shape (no broadcast yet: the caller multiplies)."""
    weights = jnp.asarray(weights)
    if not jnp.issubdtype(weights.dtype, jnp.number) and weights.dtype != jnp.bool_:
        raise TypeError(f"weights must be a numeric array; got dtype {weights.dtype}.")
    check_broadcast(weights, "weights", shape, what)
    return weights


def element_mask(
    shape: tuple[int, ...],
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    include: Array | None = None,
    what: str = "per-element loss",
) -> Array | None:
    """The included-elements mask of a loss of shape ``shape``, or ``None`` for "all".

    An element is excluded when ``where`` is false there, its weight is exactly 0, or the loss's
    own ``include`` mask (``ignore_index``, unlabeled rows) is false. Losses use this mask twice:
    to sanitise their inputs *before* computing (so NaN inputs of excluded elements cannot leak
    into gradients) and to reduce.
    """
    shape = tuple(shape)
    mask = None if include is None else jnp.broadcast_to(include, shape)
    if where is not None:
        w = where_mask(where, shape, what)
        mask = w if mask is None else mask & w
    if weights is not None:
        nonzero = jnp.broadcast_to(weight_array(weights, shape, what) != 0, shape)
        mask = nonzero if mask is None else mask & nonzero
    return mask


def sanitize(x: Array, mask: Array | None, fill: float = 0.0) -> Array:
    """Replace the inputs of excluded elements by ``fill`` (mask broadcast from the left)."""
    if mask is None:
        return x
    mask = mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))
    return jnp.where(mask, x, jnp.asarray(fill, x.dtype))


def reduce_elements(
    per_element: Array,
    *,
    mask: Array | None = None,
    weights: ArrayLike | None = None,
    element_weight: Array | None = None,
    reduction: Reduction = "none",
    sum_axes: int | tuple[int, ...] | None = None,
) -> Array:
    """Weight, mask and reduce a per-element loss: the single implementation of the contract.

    Args:
      per_element: the loss of each element, class weights already applied inside the loss
        formula where the loss has a class axis.
      mask: included elements (from :func:`element_mask`), or ``None`` for all.
      weights: sample weights broadcastable to ``per_element``.
      element_weight: the class-derived weight of each element (``class_weights[label]``, or
        ``Σ_c w_c y_c`` for probability labels), used by the weighted denominators only.
      reduction: one of :data:`REDUCTIONS`.
      sum_axes: axes summed within each example first (see :func:`reduce`).
    """
    check_reduction(reduction)
    shape = per_element.shape
    dtype = per_element.dtype
    total_weight = None
    if weights is not None:
        total_weight = jnp.asarray(weights).astype(dtype)
    if element_weight is not None:
        ew = element_weight.astype(dtype)
        total_weight = ew if total_weight is None else total_weight * ew

    numerator = per_element if weights is None else per_element * jnp.asarray(weights).astype(dtype)
    if mask is not None:
        numerator = jnp.where(mask, numerator, jnp.zeros((), dtype))

    axes = None if sum_axes is None else canonical_axes(sum_axes, len(shape), "sum_axes")
    if axes is not None:
        numerator = jnp.sum(numerator, axis=axes)
    if reduction == "none":
        return numerator
    if reduction == "sum":
        return jnp.sum(numerator)

    if reduction == "mean":
        if mask is None:
            count = numerator.size
            return jnp.sum(numerator) / jnp.asarray(max(count, 1), dtype)
        included = mask if axes is None else jnp.any(mask, axis=axes)
        return safe_divide(jnp.sum(numerator), jnp.sum(included, dtype=dtype))

    if total_weight is None:
        denominator = jnp.ones(shape, dtype)
    else:
        denominator = jnp.broadcast_to(total_weight, shape)
    if mask is not None:
        denominator = jnp.where(mask, denominator, jnp.zeros((), dtype))
    if axes is not None:
        denominator = jnp.sum(denominator, axis=axes)
    if reduction == "weighted_mean":
        return safe_divide(jnp.sum(numerator), jnp.sum(denominator))
    # "sum_by_nonzero_weights"
    return safe_divide(jnp.sum(numerator), jnp.sum(denominator != 0, dtype=dtype))


def safe_divide(numerator: Array, denominator: Array) -> Array:
    """``numerator / denominator``, and 0 with zero gradient where the denominator is 0."""
    zero = denominator == 0
    return jnp.where(
        zero,
        jnp.zeros((), numerator.dtype),
        numerator / jnp.where(zero, jnp.ones((), denominator.dtype), denominator),
    )
