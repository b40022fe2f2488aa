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
``"parts"``                 the sums themselves, a :class:`LossParts`
==========================  ====================================================

A mean over nothing (empty mask, all weights zero) is ``0.0`` with zero gradients, never NaN.

**Global reductions.** Every reduction is a ratio of sums, so it is exact over any split of
the batch when the numerator and the denominator are summed over the split *separately* and
divided once. ``axis_name=`` does that over mesh axes inside ``shard_map``; ``"parts"`` hands
the sums to the caller, who adds them over microbatches (gradient accumulation) and divides
with :meth:`LossParts.value`. A mean of per-device or per-microbatch means is not the mean of
the data whenever the denominators differ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from typing import Any, Literal, TypeVar, get_args

import jax
import jax.numpy as jnp

from jaxloss._checks import Array, ArrayLike, boolean_mask, canonical_axes, check_broadcast

Reduction = Literal["none", "sum", "mean", "weighted_mean", "sum_by_nonzero_weights", "parts"]
REDUCTIONS: tuple[str, ...] = get_args(Reduction)
#: A mesh axis name (``"data"``) or a tuple of them (``("data", "fsdp")``).
AxisName = Hashable | tuple[Hashable, ...]

__all__ = ["AxisName", "LossParts", "Reduction", "reduce"]

T = TypeVar("T")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LossParts:
    r"""The four sums every reduction is a ratio of: ``reduction="parts"`` of any loss.

    ============  ===========================================  ==============================
    field         sum                                          denominator of
    ============  ===========================================  ==============================
    ``total``     ``Σ n_i`` (weighted losses, 0 if excluded)   (the numerator of all)
    ``count``     ``#{i included}``                            ``"mean"``
    ``weight``    ``Σ d_i`` (total weights of included)        ``"weighted_mean"``
    ``nonzero``   ``#{i : d_i ≠ 0}``                           ``"sum_by_nonzero_weights"``
    ============  ===========================================  ==============================

    A pytree of scalars (a frozen dataclass registered with JAX): it crosses ``jit``,
    ``lax.scan`` carries, ``shard_map`` outputs and ``jax.lax.psum`` like any pytree, and two
    of them add field by field (``a + b``; :meth:`zeros` starts a sum). Adding the parts of
    microbatches (or devices) and dividing once gives the exact reduction of the whole batch:

    .. math:: \text{value} = \frac{\sum_b \text{total}_b}{\sum_b \text{denominator}_b}

    The gradient of a ratio whose denominator does not depend on the parameters is the summed
    gradient of ``total`` divided by the summed denominator: :meth:`normalize` divides a
    pytree of summed gradients by it (0 where the denominator is 0, as the value).

    Counts are held in the loss's float dtype (exact up to 2²⁴ ≈ 1.7·10⁷ elements in float32).

    >>> import jax, jax.numpy as jnp, jaxloss as jl
    >>> logits = jnp.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 3.0]])
    >>> labels = jnp.array([0, 1, -100, 1])
    >>> w = jnp.array([1.0, 4.0])
    >>> def parts(x, y):
    ...     return jl.softmax_cross_entropy_with_integer_labels(
    ...         x, y, class_weights=w, ignore_index=-100, reduction="parts")
    >>> acc = parts(logits[:1], labels[:1]) + parts(logits[1:], labels[1:])  # two microbatches
    >>> acc.value("weighted_mean")         # (0.1269 + 4·0.3133 + 4·0.0486) / (1 + 4 + 4)
    Array(0.1749249, dtype=float32)
    >>> jl.softmax_cross_entropy_with_integer_labels(
    ...     logits, labels, class_weights=w, ignore_index=-100, reduction="weighted_mean")
    Array(0.1749249, dtype=float32)
    >>> acc.count, acc.value("mean")      # the ignored token is in neither
    (Array(3., dtype=float32), Array(0.5247746, dtype=float32))
    """

    total: Array
    count: Array
    weight: Array
    nonzero: Array

    @classmethod
    def zeros(cls, dtype: Any = jnp.float32) -> LossParts:
        """Parts of an empty batch: the start of a sum over microbatches."""
        z = jnp.zeros((), dtype)
        return cls(total=z, count=z, weight=z, nonzero=z)

    def __add__(self, other: LossParts) -> LossParts:
        if not isinstance(other, LossParts):
            return NotImplemented
        return jax.tree.map(jnp.add, self, other)

    def denominator(self, reduction: Reduction) -> Array:
        """The denominator of ``reduction``: count, weight, nonzero, or 1 for ``"sum"``."""
        check_reduction(reduction)
        if reduction in ("none", "parts"):
            raise ValueError(
                f"LossParts.denominator needs a reduction to a number ('sum', 'mean', "
                f"'weighted_mean' or 'sum_by_nonzero_weights'); got {reduction!r}."
            )
        if reduction == "sum":
            return jnp.ones((), self.total.dtype)
        return {"mean": self.count, "weighted_mean": self.weight}.get(reduction, self.nonzero)

    def value(self, reduction: Reduction) -> Array:
        """The reduced loss, ``total / denominator(reduction)``; 0 over nothing."""
        if reduction == "sum":
            check_reduction(reduction)
            return self.total
        return safe_divide(self.total, self.denominator(reduction))

    def normalize(self, tree: T, reduction: Reduction) -> T:
        """Divide every leaf of ``tree`` (e.g. summed gradients of ``total``) by the denominator.

        Leaves become 0 where the denominator is 0 (nothing was included), matching
        :meth:`value`.
        """
        denominator = self.denominator(reduction)

        def divide(g: Array) -> Array:
            return safe_divide(g, denominator.astype(g.dtype))

        return jax.tree.map(divide, tree)

    def psum(self, axis_name: AxisName) -> LossParts:
        """The parts summed over the mesh axes ``axis_name`` (inside ``shard_map``)."""
        check_axis_name(axis_name)
        return psum_axes(self, axis_name)


def reduce(
    losses: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "mean",
    sum_axes: int | tuple[int, ...] | None = None,
    axis_name: AxisName | None = None,
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
      where: boolean array broadcastable to ``S`` (or integer 0/1, read as ``!= 0``; a float
        array is refused with a ``TypeError``: weights go in ``weights``). ``False`` elements
        contribute exactly 0 to the value and every gradient (even if their loss is NaN or inf)
        and are left out of every denominator.
      reduction: ``"none"``, ``"sum"``, ``"mean"`` (default here), ``"weighted_mean"`` or
        ``"sum_by_nonzero_weights"``; see the module docstring. A Python string, static under jit.
        ``"parts"`` returns the sums instead, a :class:`LossParts`, for accumulating over
        microbatches.
      sum_axes: axes summed *within* each example before ``reduction`` is applied to the rest,
        the "sum per example, then mean over the batch" pattern of segmentation losses. After
        the sum, an example's weight is the sum of its elements' weights and it counts as
        included when any of its elements is, so ``reduction="mean"`` divides by the number of
        examples that have at least one included pixel.
      axis_name: inside ``shard_map`` (or ``pmap``, or ``vmap(..., axis_name=)``), the mesh
        axis name or tuple of names the batch is split over. The numerator and the denominator
        are summed over those axes separately (one ``psum``), so every reduction is the exact
        value over the whole batch, on every device, with the gradient of the unsharded loss —
        never a mean of per-device means. Ignored by ``reduction="none"``. Not needed (and an
        error, since no axis is bound) under plain ``jit`` with sharded inputs: there the
        reductions are global already.

    Returns:
      A scalar; for ``reduction="none"`` the weighted losses (shape ``S`` less ``sum_axes``);
      for ``reduction="parts"`` a :class:`LossParts`.

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
    >>> import jax                       # a global mean over 2 shards of a batch of 4
    >>> shards = jnp.array([[1.0, 2.0], [3.0, 6.0]])
    >>> keep = jnp.array([[True, True], [True, False]])
    >>> jax.vmap(lambda l, m: reduce(l, where=m, axis_name="d"), axis_name="d")(shards, keep)
    Array([2., 2.], dtype=float32)
    """
    losses = jnp.asarray(losses)
    if not jnp.issubdtype(losses.dtype, jnp.floating):
        losses = losses.astype(jnp.float32)
    # 16-bit losses are accumulated in float32 and give a float32 result, like every loss
    # (the gradient still comes back in the input's dtype through the cast).
    losses = losses.astype(jnp.promote_types(losses.dtype, jnp.float32))
    mask = element_mask(losses.shape, weights=weights, where=where)
    return reduce_elements(
        losses,
        mask=mask,
        weights=weights,
        reduction=reduction,
        sum_axes=sum_axes,
        axis_name=axis_name,
    )


# ---------------------------------------------------------------------------------------------
# The pieces every loss uses.


def check_reduction(reduction: str) -> None:
    """Raise ``ValueError`` for anything but the reduction names (the five and ``"parts"``)."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction must be one of {', '.join(repr(r) for r in REDUCTIONS)}; got {reduction!r}."
        )


def where_mask(where: ArrayLike, shape: tuple[int, ...], what: str = "per-element loss") -> Array:
    """Validate ``where`` (boolean, or integer 0/1: :func:`~jaxloss._checks.boolean_mask`)
    against the loss shape and broadcast it there."""
    where = boolean_mask(where)
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
    axis_name: AxisName | None = None,
) -> Any:
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
      axis_name: mesh axes over which the sums are global (see :func:`reduce`).

    Returns an array, or a :class:`LossParts` for ``reduction="parts"`` (hence ``Any``: every
    public loss is typed by its usual result, an array).
    """
    check_reduction(reduction)
    check_axis_name(axis_name)
    shape = per_element.shape
    dtype = per_element.dtype
    numerator = per_element if weights is None else per_element * jnp.asarray(weights).astype(dtype)
    if mask is not None:
        numerator = jnp.where(mask, numerator, jnp.zeros((), dtype))
    axes = None if sum_axes is None else canonical_axes(sum_axes, len(shape), "sum_axes")
    if axes is not None:
        numerator = jnp.sum(numerator, axis=axes)
    if reduction == "none":
        return numerator

    # The sums every reduction is made of; only those the reduction needs are traced.
    need = _NEEDS[reduction]
    total = jnp.sum(numerator)
    zero = jnp.zeros((), dtype)
    count = weight = nonzero = zero
    if "count" in need:
        if mask is None:
            count = jnp.asarray(numerator.size, dtype)
        else:
            count = jnp.sum(mask if axes is None else jnp.any(mask, axis=axes), dtype=dtype)
    if "weight" in need or "nonzero" in need:
        denominator = _denominator_terms(shape, dtype, mask, weights, element_weight, axes)
        if "weight" in need:
            weight = jnp.sum(denominator)
        if "nonzero" in need:
            nonzero = jnp.sum(denominator != 0, dtype=dtype)
    parts = LossParts(total=total, count=count, weight=weight, nonzero=nonzero)
    if axis_name is not None:
        parts = parts.psum(axis_name)
    return parts if reduction == "parts" else parts.value(reduction)


_NEEDS: dict[str, tuple[str, ...]] = {
    "sum": (),
    "mean": ("count",),
    "weighted_mean": ("weight",),
    "sum_by_nonzero_weights": ("nonzero",),
    "parts": ("count", "weight", "nonzero"),
}


def _denominator_terms(
    shape: tuple[int, ...],
    dtype: Any,
    mask: Array | None,
    weights: ArrayLike | None,
    element_weight: Array | None,
    axes: tuple[int, ...] | None,
) -> Array:
    """Each element's total weight ``weights × class weight``, 0 where excluded (``d_i``)."""
    total_weight = None
    if weights is not None:
        total_weight = jnp.asarray(weights).astype(dtype)
    if element_weight is not None:
        ew = element_weight.astype(dtype)
        total_weight = ew if total_weight is None else total_weight * ew
    if total_weight is None:
        denominator = jnp.ones(shape, dtype)
    else:
        denominator = jnp.broadcast_to(total_weight, shape)
    if mask is not None:
        denominator = jnp.where(mask, denominator, jnp.zeros((), dtype))
    if axes is not None:
        denominator = jnp.sum(denominator, axis=axes)
    return denominator


def check_axis_name(axis_name: Any) -> None:
    """``axis_name`` must be ``None``, a hashable mesh axis name or a tuple of them."""
    if axis_name is None:
        return
    names = axis_name if isinstance(axis_name, tuple) else (axis_name,)
    for name in names:
        if isinstance(name, tuple | list | dict | set) or not isinstance(name, Hashable):
            raise TypeError(
                "axis_name must be a mesh axis name (e.g. 'data') or a tuple of names; "
                f"got {axis_name!r}."
            )


def psum_axes(x: Any, axis_name: AxisName) -> Any:
    """``jax.lax.psum`` over ``axis_name`` with an error that says where such names exist."""
    try:
        return jax.lax.psum(x, axis_name)
    except NameError as error:
        raise ValueError(
            f"axis_name={axis_name!r} is not a bound mesh axis here: axis_name= is for calls "
            "inside shard_map (or pmap / vmap with axis_name=), where each device holds part of "
            "the batch. Under plain jit with sharded inputs the reductions are already global; "
            f"leave axis_name out. ({error})"
        ) from None


def safe_divide(numerator: Array, denominator: Array) -> Array:
    """``numerator / denominator``, and 0 with zero gradient where the denominator is 0."""
    zero = denominator == 0
    return jnp.where(
        zero,
        jnp.zeros((), numerator.dtype),
        numerator / jnp.where(zero, jnp.ones((), denominator.dtype), denominator),
    )
