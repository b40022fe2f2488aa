"""Segmentation losses: Dice and its relatives (Tversky, focal Tversky, Jaccard), Lovász hinge,
and Dice + cross-entropy combinations. (The generalised Dice losses are in
:mod:`jaxloss.generalized_dice`, Lovász-softmax in :mod:`jaxloss.lovasz`.)

Inputs are channels-last, ``[B, H, W(, D), C]``, with the class axis chosen by ``axis`` (the
optax-named functions keep optax's conventions: class axis last, ``axis`` = the summed axes).
Targets are integer labels ``[B, H, W(, D)]`` (``ignore_index`` supported) or one-hot /
probability maps of the predictions' shape. With one channel (``C = 1``) the task is binary:
the activation is a sigmoid and an integer label 1 marks the foreground.

Region losses are not sums over pixels, so the contract arguments act at two levels:

* ``weights`` (a pixel weight map broadcastable to ``[B, H, W]``) and ``where`` / ``ignore_index``
  (pixels to leave out) act *inside* the overlap sums: ``I = Σ w·p·t``, ``P = Σ w·p``,
  ``T = Σ w·t``; an excluded pixel contributes to no sum and receives zero gradient.
* ``class_weights`` (``[C]``) scale the per-class losses, and ``reduction`` reduces the
  per-(image, class) losses, shape ``[B, C]`` (``per_image=True``) or ``[C]`` (batch-global),
  through :func:`jaxloss.reduce`'s contract. An (image, class) pair counts in ``"mean"`` when the
  image has an included pixel and the class is included (``include_background``).

To weight whole images, take ``reduction="none"`` and call
``jaxloss.reduce(loss.mean(-1), weights=image_weights)``.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import jax
import jax.core
import jax.numpy as jnp

from jaxloss._checks import (
    Array,
    ArrayLike,
    Axis,
    canonical_axes,
    check_broadcast,
    class_weight_vector,
    float_array,
    is_python_number,
    static_float,
    upcast,
    value_check,
)
from jaxloss._reduction import (
    REDUCTIONS,
    AxisName,
    Reduction,
    check_axis_name,
    check_reduction,
    element_mask,
    psum_axes,
    reduce_elements,
    sanitize,
    weight_array,
)
from jaxloss.classification import (
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
    softmax_cross_entropy_with_integer_labels,
)

__all__ = [
    "dice_loss",
    "binary_dice_loss",
    "multiclass_generalized_dice_loss",
    "soft_dice_loss",
    "tversky_loss",
    "focal_tversky_loss",
    "jaccard_loss",
    "lovasz_hinge_loss",
    "dice_bce_loss",
    "dice_ce_loss",
]

_LOG_EPS = 1e-7  # segmentation_models_pytorch's clamp of the coefficient in log_loss


# ---------------------------------------------------------------------------------------------
# Shared preparation: probabilities, one-hot targets, pixel weights, overlap sums.


class _Region(NamedTuple):
    """Prepared inputs of a region loss."""

    probs: Array  # [..., C] probabilities, class axis last
    targets: Array  # [..., C] target maps (one-hot for integer labels), 0 if excluded
    pixel_weight: Array | None  # [...] w·[included], or None for "all pixels, weight 1"
    mask: Array | None  # [...] included pixels, or None for all
    bad: Array | None  # [...] included pixels with an out-of-range integer label


def _prepare(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    axis: int,
    from_logits: bool,
    weights: ArrayLike | None,
    where: ArrayLike | None,
    ignore_index: int | None,
    pred_name: str = "predictions",
) -> _Region:
    x = upcast(float_array(predictions, pred_name))
    if not isinstance(axis, int):
        raise TypeError(f"axis must be a single int (the class axis); got {axis!r}.")
    (ax,) = canonical_axes(axis, x.ndim)
    x = jnp.moveaxis(x, ax, -1)
    num_classes = x.shape[-1]
    pixel_shape = x.shape[:-1]
    t = jnp.asarray(targets)
    include = bad = None
    if jnp.issubdtype(t.dtype, jnp.integer):
        if tuple(t.shape) != pixel_shape:
            raise ValueError(
                f"targets (integer labels) has shape {tuple(t.shape)}; expected {pixel_shape}, "
                f"the shape of {pred_name} without its class axis."
            )
        if ignore_index is not None:
            if not isinstance(ignore_index, int):
                raise TypeError(f"ignore_index must be a Python int or None; got {ignore_index!r}.")
            include = t != ignore_index
        if num_classes == 1:
            in_range = (t == 0) | (t == 1)
            onehot = (t == 1)[..., None].astype(x.dtype)
        else:
            in_range = (t >= 0) & (t < num_classes)
            onehot = jax.nn.one_hot(t, num_classes, dtype=x.dtype)
        bad = ~in_range if include is None else ~in_range & include
    else:
        if ignore_index is not None:
            raise ValueError(
                "ignore_index needs integer targets; got floating-point targets "
                f"of dtype {t.dtype}. Use where= to leave pixels out."
            )
        if not (jnp.issubdtype(t.dtype, jnp.number) or t.dtype == jnp.bool_):
            raise TypeError(f"targets must be a numeric array; got dtype {t.dtype}.")
        orig_shape = jnp.shape(predictions)
        if num_classes == 1 and tuple(t.shape) == pixel_shape and t.ndim == x.ndim - 1:
            t = t[..., None]
            onehot = t.astype(x.dtype)
        else:
            check_broadcast(t, "targets", orig_shape, pred_name)
            onehot = jnp.moveaxis(jnp.broadcast_to(t, orig_shape), ax, -1).astype(x.dtype)
    mask = element_mask(
        pixel_shape,
        weights=weights,
        where=where,
        include=include,
        what=f"{pred_name} without its class axis",
    )
    if bad is not None and mask is not None:
        bad = bad & mask  # an out-of-range label in an excluded pixel is excluded with it
    x = sanitize(x, mask)
    onehot = sanitize(onehot, mask)
    if from_logits:
        probs = jax.nn.sigmoid(x) if num_classes == 1 else jax.nn.softmax(x, axis=-1)
    else:
        probs = x
    pixel_weight = None
    if weights is not None:
        pixel_weight = jnp.broadcast_to(jnp.asarray(weights).astype(x.dtype), pixel_shape)
    if mask is not None:
        pixel_weight = (
            mask.astype(x.dtype) if pixel_weight is None else jnp.where(mask, pixel_weight, 0)
        )
    return _Region(probs, onehot, pixel_weight, mask, bad)


def _sum_axes(ndim: int, per_image: bool) -> tuple[int, ...]:
    """Pixel axes of a ``[B, ..., C]`` array to sum: all but batch and class, or all but class."""
    return tuple(range(1 if per_image else 0, ndim - 1))


def _overlaps(
    r: _Region, axes: tuple[int, ...], squared: bool = False
) -> tuple[Array, Array, Array]:
    """``I = Σ w p t``, ``P = Σ w p^k``, ``T = Σ w t^k`` over ``axes`` (k = 2 if squared)."""
    p, t = r.probs, r.targets
    inter, pred, target = _pixel_sums(r, axes, p * t, *((p * p, t * t) if squared else (p, t)))
    return inter, pred, target


def _overlap_and_total(r: _Region, axes: tuple[int, ...]) -> tuple[Array, Array]:
    """``I = Σ w p t`` and ``P + T = Σ w (p + t)`` over ``axes``."""
    p, t = r.probs, r.targets
    inter, total = _pixel_sums(r, axes, p * t, p + t)
    return inter, total


def _pixel_sums(r: _Region, axes: tuple[int, ...], *terms: Array) -> tuple[Array, ...]:
    """``Σ w · term`` over ``axes`` for each term, ``w`` the region's pixel weight (if any)."""
    w = None if r.pixel_weight is None else r.pixel_weight[..., None]
    return tuple(jnp.sum(term if w is None else w * term, axis=axes) for term in terms)


def _same_number(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` are Python numbers (static under ``jit``) and equal."""
    return is_python_number(a) and is_python_number(b) and a == b


def _ratio(numerator: Array, denominator: Array) -> Array:
    """``numerator / denominator`` with ``0 / 0 = 1`` (an empty prediction on an empty target is
    a perfect match), and zero gradient there."""
    zero = denominator == 0
    return jnp.where(zero, 1.0, numerator / jnp.where(zero, 1.0, denominator))


def _safe_power(x: Array, gamma: Any) -> Array:
    """``x ** gamma`` for ``x ≥ 0`` with a finite (zero) gradient at ``x = 0`` for any γ > 0."""
    positive = x > 0
    return jnp.where(positive, jnp.where(positive, x, 1.0) ** gamma, 0.0)


def _reduce_region(
    per: Array,
    r: _Region,
    axes: tuple[int, ...],
    *,
    class_weights: ArrayLike | None,
    include_background: bool,
    zero_empty_targets: bool,
    target_sum: Array,
    reduction: Reduction,
    axis_name: AxisName | None = None,
    per_image: bool = True,
) -> Array:
    """Class weights, inclusion of (image, class) pairs, NaN for bad labels, then the contract.

    A batch-global loss (``per_image=False``) under ``axis_name`` was computed from global
    sums (:func:`_region_overlaps`): its ``[C]`` losses are already the whole batch's, so its
    inclusion and NaN flags are made global and the reduction is not summed again.
    """
    check_reduction(reduction)
    num_classes = per.shape[-1]
    global_batch = not per_image and axis_name is not None
    if zero_empty_targets:
        per = jnp.where(target_sum > 0, per, 0.0)
    include = None
    if r.mask is not None:
        any_pixel = jnp.any(r.mask, axis=axes)
        if global_batch:
            any_pixel = psum_axes(any_pixel.astype(per.dtype), axis_name) > 0
        include = jnp.broadcast_to(any_pixel[..., None], per.shape)
    if not include_background and num_classes > 1:
        classes = jnp.broadcast_to(jnp.arange(num_classes) > 0, per.shape)
        include = classes if include is None else include & classes
    element_weight = None
    if class_weights is not None:
        cw = class_weight_vector(class_weights, num_classes, per.dtype)
        element_weight = jnp.broadcast_to(cw, per.shape)
        per = per * element_weight
    if r.bad is not None:
        bad = jnp.any(r.bad, axis=axes)
        if global_batch:
            bad = psum_axes(bad.astype(per.dtype), axis_name) > 0
        bad = bad[..., None]
        value_check(
            ~bad,
            "targets must lie in [0, C) (be 0 or 1 for one channel) or equal "
            "ignore_index; got an out-of-range label.",
        )
        per = jnp.where(bad, jnp.nan, per)
    return reduce_elements(
        per,
        mask=include,
        element_weight=element_weight,
        reduction=reduction,
        axis_name=None if global_batch else axis_name,
    )


# ---------------------------------------------------------------------------------------------
# Options shared by the region losses: split smoothing, the semimetric (soft-label) overlaps,
# the per-image reduction of losses that pool their classes.


def _smoothing(smooth: Any, smooth_nr: Any, smooth_dr: Any) -> tuple[Any, Any]:
    """The numerator's and the denominator's smoothing: ``smooth`` unless overridden."""
    static_float(smooth, "smooth", low=0.0)
    nr = smooth if smooth_nr is None else smooth_nr
    dr = smooth if smooth_dr is None else smooth_dr
    static_float(nr, "smooth_nr", low=0.0)
    static_float(dr, "smooth_dr", low=0.0)
    return nr, dr


def _semimetric_overlaps(r: _Region, axes: tuple[int, ...]) -> tuple[Array, Array, Array]:
    """``I = (P + T - Σ w |p - t|) / 2``, ``P = Σ w p``, ``T = Σ w t`` (Wang et al.'s form).

    Equal to ``Σ w p t`` when ``t`` is 0/1 and ``0 ≤ p ≤ 1``; with soft targets the losses built
    on it are 0 exactly when ``p = t``.
    """
    p, t = r.probs, r.targets
    pred_sum, target_sum, distance = _pixel_sums(r, axes, p, t, jnp.abs(p - t))
    return 0.5 * (pred_sum + target_sum - distance), pred_sum, target_sum


def _region_overlaps(
    r: _Region,
    axes: tuple[int, ...],
    *,
    soft_label: bool,
    squared: bool = False,
    per_image: bool = True,
    axis_name: AxisName | None = None,
) -> tuple[Array, Array, Array]:
    """``I, P, T`` in the product form, or the semimetric one with ``soft_label``.

    With squared sums the semimetric intersection ``(Σp² + Σt² - Σ(p - t)²) / 2`` is ``Σ p t``,
    so ``soft_label`` changes nothing there. Batch-global sums (``per_image=False``) are summed
    over ``axis_name`` too (:func:`_global_sums`).
    """
    if soft_label and not squared:
        sums = _semimetric_overlaps(r, axes)
    else:
        sums = _overlaps(r, axes, squared)
    inter, pred_sum, target_sum = _global_sums(sums, per_image, axis_name)
    return inter, pred_sum, target_sum


def _coefficient_loss(coeff: Array, log_loss: bool) -> Array:
    """``1 - coefficient``, or ``-log(max(coefficient, 1e-7))`` (smp's ``log_loss``)."""
    return -jnp.log(jnp.maximum(coeff, _LOG_EPS)) if log_loss else 1.0 - coeff


def _global_sums(sums: tuple[Array, ...], per_image: bool, axis_name: Any) -> tuple[Array, ...]:
    """Batch-global sums are summed over the mesh axes too (one ``psum``), so a batch-global
    region loss under ``shard_map`` is the loss of the whole batch on every device."""
    if per_image or axis_name is None:
        return sums
    check_axis_name(axis_name)
    return psum_axes(sums, axis_name)


def _reduce_images(
    per: Array,
    r: _Region,
    axes: tuple[int, ...],
    *,
    per_image: bool,
    reduction: Reduction,
    axis_name: AxisName | None,
    image_weights: ArrayLike | None = None,
) -> Array:
    """Reduce per-image losses ``[B]`` (or the batch's ``[1]``) of a loss that pools its classes.

    An image counts when it has an included pixel; an out-of-range label NaNs its image. For a
    batch-global loss whose sums were made global (:func:`_global_sums`) the inclusion and the
    NaN are global too, and the reduction is not summed over the mesh axes again.
    """
    check_reduction(reduction)
    include = None if r.mask is None else jnp.any(r.mask, axis=axes).reshape(per.shape)
    bad = None if r.bad is None else jnp.any(r.bad, axis=axes).reshape(per.shape)
    global_batch = not per_image and axis_name is not None
    if global_batch:
        if include is not None:
            include = psum_axes(include.astype(per.dtype), axis_name) > 0
        if bad is not None:
            bad = psum_axes(bad.astype(per.dtype), axis_name) > 0
    if bad is not None:
        value_check(
            ~bad,
            "targets must lie in [0, C) or equal ignore_index; got an out-of-range label.",
        )
        per = jnp.where(bad, jnp.nan, per)
    if image_weights is not None:
        image_weights = weight_array(image_weights, per.shape, "per-image loss")
    mask = element_mask(per.shape, weights=image_weights, include=include)
    per = sanitize(per, mask)
    return reduce_elements(
        per,
        mask=mask,
        weights=image_weights,
        reduction=reduction,
        axis_name=None if global_batch else axis_name,
    )


# ---------------------------------------------------------------------------------------------
# optax's Dice losses (optax's names, signatures, defaults and results).


def dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    class_weights: ArrayLike | None = None,
    smooth: float | ArrayLike = 1.0,
    alpha: float | ArrayLike = 0.5,
    beta: float | ArrayLike = 0.5,
    apply_softmax: bool = True,
    reduction: str = "mean",
    ignore_background: bool = False,
    axis: Axis | None = None,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""optax's ``dice_loss``: per-image, per-class Tversky-form Dice, reduced across classes.

    .. math::
        \ell_c = 1 - \frac{I_c + s}{I_c + \alpha (P_c - I_c) + \beta (T_c - I_c) + s},
        \quad I_c = \textstyle\sum_i w_i p_{ic} t_{ic},\
        P_c = \sum_i w_i p_{ic},\ T_c = \sum_i w_i t_{ic}

    optax's definition and results (with ``α = β = ½`` this is Dice with smoothing ``2s`` in
    the ``(2I + s')/(P + T + s')`` form). With ``apply_softmax=False`` an eager call raises
    ``ValueError`` ("valid probability distributions") when the class sums of included pixels
    are not 1, as optax does; unlike optax it also works under ``jit``, where the values are
    unknown at trace time and the check runs under :func:`jaxloss.checked`. The check is
    skipped for one channel, where the probabilities need not sum to 1 (optax's check rejects
    every binary probability map). Where ``P_c + T_c = 0`` and ``s = 0`` the coefficient is
    taken as 1 (loss 0; optax gives NaN).

    Args:
      predictions: logits (or probabilities) ``[B, ..., C]``, class axis last; ``[B, ..., 1]``
        or a target-shaped ``[B, ...]`` for binary segmentation (sigmoid).
      targets: one-hot ``[B, ..., C]`` (or ``[B, ...]`` for binary), as optax.
      class_weights: ``[C]``, multiplies the per-class losses (before ``ignore_background``).
      smooth: ``s``.
      alpha: weight of false positives ``P - I``; beta: of false negatives ``T - I``.
      apply_softmax: softmax over the classes (sigmoid for one channel) first.
      reduction: optax's meaning, across classes only: ``"mean"``, ``"sum"`` or ``"none"``.
      ignore_background: drop class 0 (when ``C > 1``).
      axis: the *summed* axes (optax's meaning; default all but the first and last).
      weights: pixel weights broadcastable to ``predictions.shape[:-1]`` (an addition), inside
        the sums.
      where: boolean pixel mask of that shape (an addition): excluded pixels enter no sum.

    Returns:
      ``[B]`` for ``"mean"``/``"sum"`` (the shape less the summed and class axes), ``[B, C]``
      (or ``[B, C-1]``) for ``"none"``.

    >>> import jax, jax.numpy as jnp
    >>> logits = jnp.array([[[2.0, -2.0], [-1.0, 1.0]]])          # [B=1, N=2, C=2]
    >>> targets = jax.nn.one_hot(jnp.array([[0, 1]]), 2)
    >>> dice_loss(logits, targets)
    Array([0.034319], dtype=float32)
    >>> jax.jit(lambda p, t: dice_loss(p, t, apply_softmax=False))(
    ...     jax.nn.softmax(logits), targets)
    Array([0.034319], dtype=float32)
    """
    p, t = jnp.asarray(predictions), jnp.asarray(targets)
    if p.ndim == t.ndim - 1:
        p = p[..., None]
    if t.ndim == p.ndim - 1:
        t = t[..., None]
    if p.shape != t.shape:
        raise ValueError(
            f"predictions has shape {tuple(p.shape)} but targets has shape "
            f"{tuple(t.shape)}; they must be equal (class axis last)."
        )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            "dice_loss's reduction reduces across classes, as in optax: it must be "
            f"one of 'mean', 'sum', 'none'; got {reduction!r}."
        )
    t = t.astype(upcast(float_array(p, "predictions")).dtype)
    r = _prepare(
        p, t, axis=-1, from_logits=apply_softmax, weights=weights, where=where, ignore_index=None
    )
    if not apply_softmax and p.shape[-1] > 1:
        sums = jnp.sum(r.probs, axis=-1)
        ok = jnp.abs(sums - 1.0) <= 1e-5 + 1e-8  # optax's allclose
        if r.mask is not None:
            ok = ok | ~r.mask
        message = (
            "With apply_softmax=False, predictions must be valid probability distributions "
            "that sum to 1 along the class axis"
        )
        if not isinstance(ok, jax.core.Tracer) and not bool(jnp.all(ok)):
            # An eager call knows the values: raise at once, as optax does.
            bad = sums if r.mask is None else jnp.where(r.mask, sums, 1.0)
            raise ValueError(
                f"{message}; found sums in [{float(jnp.min(bad)):.6f}, {float(jnp.max(bad)):.6f}]."
            )
        value_check(ok, message + ".")
    ndim = r.probs.ndim
    if axis is None:
        axes = tuple(range(1, ndim - 1))
    else:
        axes = () if axis == () else canonical_axes(axis, ndim, "axis")
        if ndim - 1 in axes:
            raise ValueError(
                f"axis={axis!r} includes the class axis (the last); dice_loss sums "
                "over pixel axes only."
            )
    if _same_number(alpha, beta):
        # α = β (the default ½): the denominator needs only P + T, one sum instead of two
        # (value+grad ~7% faster on CPU); the same formula otherwise.
        inter, total = _overlap_and_total(r, axes)
        denominator = inter + alpha * (total - 2.0 * inter) + smooth
    else:
        inter, pred_sum, target_sum = _overlaps(r, axes)
        denominator = inter + alpha * (pred_sum - inter) + beta * (target_sum - inter) + smooth
    per = 1.0 - _ratio(inter + smooth, denominator)
    if class_weights is not None:
        cw = jnp.asarray(class_weights)
        if cw.ndim != 1 or cw.shape[0] not in (1, per.shape[-1]):
            raise ValueError(
                f"class_weights has shape {tuple(cw.shape)}; expected "
                f"({per.shape[-1]},), one weight per class."
            )
        per = per * cw.astype(per.dtype)
    if ignore_background and per.shape[-1] > 1:
        per = per[..., 1:]
    if reduction == "mean":
        return jnp.mean(per, axis=-1)
    if reduction == "sum":
        return jnp.sum(per, axis=-1)
    return per


def binary_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: float | ArrayLike = 1.0,
    apply_sigmoid: bool = True,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""optax's ``binary_dice_loss``: :func:`dice_loss` on one sigmoid channel, per image.

    .. math:: \ell = 1 - \frac{I + s}{\tfrac12 (P + T) + s}, \quad p = \sigma(x)

    Args:
      predictions: logits (or probabilities with ``apply_sigmoid=False``) ``[B, ...]`` or
        ``[B, ..., 1]``.
      targets: 0/1 maps of the same shape.
      smooth: ``s``.
      apply_sigmoid: apply the sigmoid first (with ``False`` this works, unlike optax's, whose
        probability check rejects single-channel maps).
      weights, where: pixel weights / mask (additions), see :func:`dice_loss`.

    Returns:
      ``[B]``, one loss per image.

    >>> import jax.numpy as jnp
    >>> binary_dice_loss(jnp.array([[4.0, -4.0, 4.0]]), jnp.array([[1.0, 0.0, 1.0]]))
    Array([0.00902021], dtype=float32)
    """
    p, t = jnp.asarray(predictions), jnp.asarray(targets)
    if p.ndim == t.ndim and p.shape[-1] != 1:
        p, t = p[..., None], t[..., None]
    return dice_loss(
        p,
        t,
        smooth=smooth,
        apply_softmax=apply_sigmoid,
        reduction="mean",
        weights=weights,
        where=where,
    )


def multiclass_generalized_dice_loss(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    smooth: float | ArrayLike = 1.0,
    apply_softmax: bool = True,
    ignore_background: bool = False,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> Array:
    r"""optax's ``multiclass_generalized_dice_loss``: Dice with inverse-squared-frequency weights.

    .. math::
        \omega_c = \frac{1}{F_c^2 + 10^{-7}},\quad
        w_c = C \frac{\omega_c}{\sum_k \omega_k},\quad
        \ell = \operatorname{mean}_{b,c}\ w_c\, \ell^{\text{dice}}_{bc}

    with ``F_c`` the batch-wide target mass of class ``c`` and ``ℓ^dice`` the per-image,
    per-class :func:`dice_loss`. This is optax's form (a weighted mean of per-class Dice
    losses, normalised so the weights sum to C), not the ratio-of-sums form of Sudre et al.;
    the weights are computed from the targets and carry no gradient of their own.

    Args:
      predictions: logits ``[B, ..., C]``.
      targets: one-hot ``[B, ..., C]``.
      smooth, apply_softmax, ignore_background: as :func:`dice_loss`.
      weights, where: pixel weights / mask (additions); they also weight ``F_c``, and images
        with no included pixel are left out of the mean.

    Returns:
      A scalar.

    >>> import jax, jax.numpy as jnp
    >>> logits = jnp.array([[[2.0, -2.0], [-1.0, 1.0]]])
    >>> multiclass_generalized_dice_loss(logits, jax.nn.one_hot(jnp.array([[0, 1]]), 2))
    Array(0.034319, dtype=float32)
    """
    p, t = jnp.asarray(predictions), jnp.asarray(targets)
    if p.shape != t.shape:
        raise ValueError(
            f"predictions has shape {tuple(p.shape)} but targets has shape "
            f"{tuple(t.shape)}; they must be equal (one-hot targets)."
        )
    t = t.astype(upcast(float_array(p, "predictions")).dtype)
    r = _prepare(p, t, axis=-1, from_logits=False, weights=weights, where=where, ignore_index=None)
    tw = r.targets if r.pixel_weight is None else r.targets * r.pixel_weight[..., None]
    frequencies = jnp.sum(tw, axis=tuple(range(t.ndim - 1)))
    omega = 1.0 / (frequencies**2 + 1e-7)
    class_weights = omega / jnp.sum(omega) * omega.shape[0]
    per = dice_loss(
        p,
        t,
        class_weights=class_weights,
        smooth=smooth,
        apply_softmax=apply_softmax,
        reduction="none",
        ignore_background=ignore_background,
        weights=weights,
        where=where,
    )
    include = None
    if r.mask is not None:
        include = jnp.broadcast_to(
            jnp.any(r.mask, axis=tuple(range(1, r.mask.ndim))).reshape(
                (-1,) + (1,) * (per.ndim - 1)
            ),
            per.shape,
        )
    return reduce_elements(per, mask=include, reduction="mean")


# ---------------------------------------------------------------------------------------------
# Region losses with the contract (MONAI / segmentation_models_pytorch conventions).


def soft_dice_loss(
    probs_or_logits: ArrayLike,
    targets: ArrayLike,
    *,
    from_logits: bool = True,
    smooth: float | ArrayLike = 1e-5,
    smooth_nr: float | ArrayLike | None = None,
    smooth_dr: float | ArrayLike | None = None,
    soft_label: bool = False,
    squared_denominator: bool = False,
    per_image: bool = True,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    include_background: bool = True,
    log_loss: bool = False,
    zero_empty_targets: bool = False,
    axis: int = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: Reduction = "mean",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Soft Dice loss with MONAI's and segmentation_models_pytorch's options.

    .. math::
        \ell_{bc} = 1 - \frac{2 I_{bc} + s_{nr}}{P_{bc} + T_{bc} + s_{dr}}, \quad
        I = \textstyle\sum_i w_i p_{ic} t_{ic},\ P = \sum_i w_i p_{ic}^k,\ T = \sum_i w_i t_{ic}^k

    with ``k = 2`` when ``squared_denominator`` (V-Net, MONAI's ``squared_pred``), else 1. By
    default the same ``s`` is added to numerator and denominator (MONAI's
    ``smooth_nr = smooth_dr = s``, whose default 1e-5 is the default here); ``smooth_nr`` /
    ``smooth_dr`` set them apart, as MONAI's. ``0/0`` (``s = 0``, empty prediction and target)
    counts as a perfect match, so **an empty prediction on an empty target has loss 0** for
    every ``s`` (with ``smooth_nr = 0 < smooth_dr`` it has loss 1, as in MONAI); an empty
    target with a non-empty prediction has loss ≈ 1.

    ``soft_label=True`` uses Wang et al.'s semimetric intersection (Dice semimetric loss, 2023;
    MONAI's ``soft_label=True``, segmentation_models_pytorch ≥ 0.4 always):

    .. math:: I = \tfrac12 \big(P + T - \textstyle\sum_i w_i |p_{ic} - t_{ic}|\big)

    It equals ``Σ w p t`` for 0/1 targets (so integer and one-hot labels give the same loss
    either way), and with soft targets (label smoothing, averaged annotations) the loss is 0
    exactly when ``p = t``, which the product form is not. With ``squared_denominator`` the
    semimetric form is the product form, so ``soft_label`` changes nothing there.

    Summed axes: ``per_image=True`` sums over the pixels of each image (MONAI's default,
    ``batch=False``), giving ``[B, C]`` losses; ``per_image=False`` sums over the batch too
    (batch-global Dice: MONAI's ``batch=True`` and segmentation_models_pytorch's ``DiceLoss``),
    giving ``[C]``. The leading axis is the batch.

    Reproducing the libraries: MONAI ``DiceLoss(softmax=True, reduction="mean")`` is the
    default; ``DiceLoss(batch=True)`` is ``per_image=False``; ``include_background=False``
    and ``weight=`` are ``include_background`` and ``class_weights``. smp's
    ``DiceLoss("multiclass", smooth=0)`` is ``per_image=False, smooth=0.0,
    zero_empty_targets=True`` (and ``log_loss=True`` for its ``log_loss``; ``soft_label=True``
    with soft targets, which smp 0.6 always uses; its ``smooth=s`` is ``smooth=2s`` here, as
    smp computes Dice as a Tversky index with ``α = β = ½``).

    Args:
      probs_or_logits: ``[B, ..., C]`` (class axis ``axis``). One channel means binary
        (sigmoid).
      targets: integer labels ``[B, ...]`` or one-hot / probability maps of the predictions'
        shape (for one channel, ``[B, ...]`` 0/1 maps also work).
      from_logits: apply softmax (sigmoid for one channel) first; ``False`` takes
        probabilities (for multi-label sigmoid outputs pass ``jax.nn.sigmoid(logits)``).
      smooth: ``s ≥ 0``.
      smooth_nr, smooth_dr: the numerator's and the denominator's smoothing (default ``smooth``).
      soft_label: the semimetric intersection (for soft targets), see above.
      squared_denominator: square ``p`` and ``t`` in the denominator.
      per_image: Dice per image (True) or over the whole batch (False).
      class_weights: ``[C]``, scales each class's loss (and its weight in ``"weighted_mean"``).
      ignore_index: integer label of unlabeled pixels: they enter no sum.
      include_background: keep class 0 (when ``C > 1``).
      log_loss: ``-log(max(coefficient, 1e-7))`` instead of ``1 - coefficient`` (smp).
      zero_empty_targets: a class absent from the (image's or batch's) target contributes 0
        but still counts in the mean (smp's convention).
      axis: the class axis (one int).
      where: boolean pixel mask broadcastable to ``[B, ...]``: False pixels enter no sum.
      weights: pixel weight map broadcastable to ``[B, ...]``, inside the sums.
      reduction: over the ``[B, C]`` (or ``[C]``) losses, see :func:`jaxloss.reduce`;
        default ``"mean"`` (MONAI's and smp's). ``"none"`` returns them, class axis last.

    Edges: an out-of-range integer label that is not ``ignore_index`` makes its image's losses
    NaN (:func:`jaxloss.checked` raises instead).

    >>> import jax.numpy as jnp
    >>> probs = jnp.array([[[0.9], [0.2], [0.0]]])               # [B=1, N=3, C=1]
    >>> soft_dice_loss(probs, jnp.array([[1, 0, 0]]), from_logits=False, smooth=0.0)
    Array(0.14285713, dtype=float32)
    >>> soft_dice_loss(jnp.zeros((1, 3, 1)), jnp.array([[0, 0, 0]]), from_logits=False)
    Array(0., dtype=float32)
    >>> soft = jnp.array([[[0.5], [0.5]]])                        # p = t: loss 0 only if soft
    >>> soft_dice_loss(soft, soft, from_logits=False, smooth=0.0)  # 1 - 2·0.5 / 2
    Array(0.5, dtype=float32)
    >>> soft_dice_loss(soft, soft, from_logits=False, smooth=0.0, soft_label=True)
    Array(0., dtype=float32)
    """
    nr, dr = _smoothing(smooth, smooth_nr, smooth_dr)
    r = _prepare(
        probs_or_logits,
        targets,
        axis=axis,
        from_logits=from_logits,
        weights=weights,
        where=where,
        ignore_index=ignore_index,
        pred_name="probs_or_logits",
    )
    axes = _sum_axes(r.probs.ndim, per_image)
    inter, pred_sum, target_sum = _region_overlaps(
        r,
        axes,
        soft_label=soft_label,
        squared=squared_denominator,
        per_image=per_image,
        axis_name=axis_name,
    )
    coeff = _ratio(2.0 * inter + nr, pred_sum + target_sum + dr)
    per = _coefficient_loss(coeff, log_loss)
    return _reduce_region(
        per,
        r,
        axes,
        class_weights=class_weights,
        include_background=include_background,
        zero_empty_targets=zero_empty_targets,
        target_sum=target_sum,
        reduction=reduction,
        axis_name=axis_name,
        per_image=per_image,
    )


def _tversky_index(
    r: _Region,
    axes: tuple[int, ...],
    alpha: Any,
    beta: Any,
    smooth: tuple[Any, Any],
    soft_label: bool = False,
    per_image: bool = True,
    axis_name: AxisName | None = None,
) -> tuple[Array, Array]:
    nr, dr = smooth
    inter, pred_sum, target_sum = _region_overlaps(
        r, axes, soft_label=soft_label, per_image=per_image, axis_name=axis_name
    )
    fp, fn = pred_sum - inter, target_sum - inter
    return _ratio(inter + nr, inter + alpha * fp + beta * fn + dr), target_sum


def tversky_loss(
    probs_or_logits: ArrayLike,
    targets: ArrayLike,
    *,
    alpha: float | ArrayLike = 0.5,
    beta: float | ArrayLike = 0.5,
    from_logits: bool = True,
    smooth: float | ArrayLike = 1e-5,
    smooth_nr: float | ArrayLike | None = None,
    smooth_dr: float | ArrayLike | None = None,
    soft_label: bool = False,
    per_image: bool = True,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    include_background: bool = True,
    log_loss: bool = False,
    zero_empty_targets: bool = False,
    axis: int = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: Reduction = "mean",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Tversky loss (Salehi et al. 2017): Dice with separate costs for FP and FN.

    .. math::
        \ell_{bc} = 1 - \frac{I + s_{nr}}{I + \alpha\,(P - I) + \beta\,(T - I) + s_{dr}}

    ``α`` weights false positives ``P - I`` and ``β`` false negatives ``T - I`` (MONAI's and
    smp's convention); ``β > α`` favours recall, useful for small structures. ``α = β = ½``
    is Dice (with smoothing ``2s``), ``α = β = 1`` is :func:`jaccard_loss`. Sums, smoothing
    (``smooth``, or ``smooth_nr`` / ``smooth_dr`` apart, MONAI's ``TverskyLoss``), the
    semimetric ``soft_label`` intersection, ``0/0 = 1`` and the contract arguments as
    :func:`soft_dice_loss`. ``log_loss`` gives ``-log(max(TI, 1e-7))`` and
    ``zero_empty_targets`` zeroes classes absent from the target (both smp's).

    Reproducing the libraries: MONAI's ``TverskyLoss(alpha, beta, softmax=True)`` is the
    default form (``soft_label=True`` for its ``soft_label``); smp's
    ``TverskyLoss("multiclass", alpha, beta, smooth=0)`` (gamma 1) is ``per_image=False,
    smooth=0.0, zero_empty_targets=True, soft_label=True``, with ``log_loss`` for its own.

    >>> import jax.numpy as jnp
    >>> probs = jnp.array([[[0.9], [0.2], [0.0]]])
    >>> tversky_loss(probs, jnp.array([[1, 0, 0]]), alpha=0.3, beta=0.7, from_logits=False,
    ...              smooth=0.0)   # 1 - 0.9 / (0.9 + 0.3·0.2 + 0.7·0.1)
    Array(0.12621361, dtype=float32)
    >>> tversky_loss(probs, jnp.array([[1, 0, 0]]), alpha=0.3, beta=0.7, from_logits=False,
    ...              smooth=0.0, log_loss=True)   # -log(0.9 / 1.03)
    Array(0.13491935, dtype=float32)
    """
    nr, dr = _smoothing(smooth, smooth_nr, smooth_dr)
    r = _prepare(
        probs_or_logits,
        targets,
        axis=axis,
        from_logits=from_logits,
        weights=weights,
        where=where,
        ignore_index=ignore_index,
        pred_name="probs_or_logits",
    )
    axes = _sum_axes(r.probs.ndim, per_image)
    ti, target_sum = _tversky_index(
        r, axes, alpha, beta, (nr, dr), soft_label, per_image, axis_name
    )
    return _reduce_region(
        _coefficient_loss(ti, log_loss),
        r,
        axes,
        class_weights=class_weights,
        include_background=include_background,
        zero_empty_targets=zero_empty_targets,
        target_sum=target_sum,
        reduction=reduction,
        axis_name=axis_name,
        per_image=per_image,
    )


def focal_tversky_loss(
    probs_or_logits: ArrayLike,
    targets: ArrayLike,
    *,
    alpha: float | ArrayLike = 0.3,
    beta: float | ArrayLike = 0.7,
    gamma: float | ArrayLike = 0.75,
    gamma_on: Literal["class", "mean"] = "class",
    from_logits: bool = True,
    smooth: float | ArrayLike = 1e-5,
    smooth_nr: float | ArrayLike | None = None,
    smooth_dr: float | ArrayLike | None = None,
    soft_label: bool = False,
    per_image: bool = True,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    include_background: bool = True,
    log_loss: bool = False,
    zero_empty_targets: bool = False,
    axis: int = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: Reduction = "mean",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Focal Tversky loss (Abraham & Khan 2019): the Tversky loss raised to ``γ``.

    .. math::
        \text{gamma\_on="class"}:\ \ell_{bc} = (1 - \mathrm{TI}_{bc})^{\gamma}
        \qquad
        \text{gamma\_on="mean"}:\ \ell = \Big(\operatorname{reduce}_{bc}\,
        (1 - \mathrm{TI}_{bc})\Big)^{\gamma}

    with ``TI`` the Tversky index of :func:`tversky_loss` (and its options: split smoothing,
    ``soft_label``, ``log_loss`` replacing ``1 - TI`` by ``-log(max(TI, 1e-7))``,
    ``zero_empty_targets``). Where the exponent goes:

    * ``gamma_on="class"`` (default): each (image, class) loss is raised to ``γ``, then
      reduced — Abraham & Khan's per-class focal term (the paper writes the exponent ``1/γ``
      and recommends ``γ = 4/3``, hence the default ``gamma=0.75`` with its ``α = 0.3`` (FP)
      and ``β = 0.7`` (FN)).
    * ``gamma_on="mean"``: the reduced loss (the ``reduction`` of the per-(image, class)
      ``1 - TI``) is raised to ``γ``: segmentation_models_pytorch's ``TverskyLoss(gamma=)``,
      ``loss.mean() ** gamma`` (``per_image=False, smooth=0.0, zero_empty_targets=True,
      soft_label=True`` for its conventions). ``reduction`` must then reduce to a number (not
      ``"none"`` or ``"parts"``); with ``axis_name`` the global value is raised to ``γ``.

    ``γ < 1`` keeps gradients large for nearly-solved classes; the gradient at a perfect match
    (where ``x^γ`` has infinite slope) is taken as 0, so it is finite.

    >>> import jax.numpy as jnp
    >>> probs = jnp.array([[[0.9], [0.2], [0.0]]])
    >>> focal_tversky_loss(probs, jnp.array([[1, 0, 0]]), gamma=1.0, from_logits=False,
    ...                    smooth=0.0)
    Array(0.12621361, dtype=float32)
    >>> two = jnp.array([[[0.9, 0.1], [0.2, 0.8]]])              # 2 pixels, 2 classes
    >>> labels = jnp.array([[0, 0]])        # 1 - TI: class 0 1 - 1.1/1.73, class 1 1 (empty)
    >>> focal_tversky_loss(two, labels, gamma=2.0, from_logits=False, smooth=0.0)
    Array(0.56630695, dtype=float32)
    >>> focal_tversky_loss(two, labels, gamma=2.0, gamma_on="mean", from_logits=False,
    ...                    smooth=0.0)           # ((0.3642 + 1) / 2)² (smp's)
    Array(0.4652344, dtype=float32)
    """
    nr, dr = _smoothing(smooth, smooth_nr, smooth_dr)
    static_float(gamma, "gamma", low=0.0, low_open=True)
    if gamma_on not in ("class", "mean"):
        raise ValueError(f"gamma_on must be 'class' or 'mean'; got {gamma_on!r}.")
    if gamma_on == "mean" and reduction in ("none", "parts"):
        raise ValueError(
            f"gamma_on='mean' raises the reduced loss to gamma, so reduction must reduce to a "
            f"number ('sum', 'mean', 'weighted_mean' or 'sum_by_nonzero_weights'); got "
            f"{reduction!r}."
        )
    r = _prepare(
        probs_or_logits,
        targets,
        axis=axis,
        from_logits=from_logits,
        weights=weights,
        where=where,
        ignore_index=ignore_index,
        pred_name="probs_or_logits",
    )
    axes = _sum_axes(r.probs.ndim, per_image)
    ti, target_sum = _tversky_index(
        r, axes, alpha, beta, (nr, dr), soft_label, per_image, axis_name
    )
    per = _coefficient_loss(ti, log_loss)
    if gamma_on == "class":
        per = _safe_power(per, gamma)
    reduced = _reduce_region(
        per,
        r,
        axes,
        class_weights=class_weights,
        include_background=include_background,
        zero_empty_targets=zero_empty_targets,
        target_sum=target_sum,
        reduction=reduction,
        axis_name=axis_name,
        per_image=per_image,
    )
    return _safe_power(reduced, gamma) if gamma_on == "mean" else reduced


def jaccard_loss(
    probs_or_logits: ArrayLike,
    targets: ArrayLike,
    *,
    from_logits: bool = True,
    smooth: float | ArrayLike = 1e-5,
    smooth_nr: float | ArrayLike | None = None,
    smooth_dr: float | ArrayLike | None = None,
    soft_label: bool = False,
    per_image: bool = True,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    include_background: bool = True,
    log_loss: bool = False,
    zero_empty_targets: bool = False,
    axis: int = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: Reduction = "mean",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Soft Jaccard (IoU) loss.

    .. math:: \ell_{bc} = 1 - \frac{I + s_{nr}}{P + T - I + s_{dr}}

    segmentation_models_pytorch's ``JaccardLoss`` form (``per_image=False, smooth=0.0,
    zero_empty_targets=True`` reproduces it, with ``soft_label=True`` for soft targets: smp
    ≥ 0.4 always uses the semimetric intersection); MONAI's ``DiceLoss(jaccard=True,
    smooth_nr=a, smooth_dr=b)`` is ``smooth_nr=a/2, smooth_dr=b/2`` here (MONAI's ratio is
    ``(2I + a) / (2(P + T - I) + b)``). Arguments (``smooth_nr`` / ``smooth_dr``,
    ``soft_label``), sums and edges as :func:`soft_dice_loss`.

    >>> import jax.numpy as jnp
    >>> probs = jnp.array([[[0.9], [0.2], [0.0]]])
    >>> jaccard_loss(probs, jnp.array([[1, 0, 0]]), from_logits=False, smooth=0.0)  # 1 - .9/1.2
    Array(0.25, dtype=float32)
    >>> jaccard_loss(probs, jnp.array([[1, 0, 0]]), from_logits=False, smooth_nr=0.0,
    ...              smooth_dr=0.3)                                                # 1 - .9/1.5
    Array(0.4, dtype=float32)
    """
    nr, dr = _smoothing(smooth, smooth_nr, smooth_dr)
    r = _prepare(
        probs_or_logits,
        targets,
        axis=axis,
        from_logits=from_logits,
        weights=weights,
        where=where,
        ignore_index=ignore_index,
        pred_name="probs_or_logits",
    )
    axes = _sum_axes(r.probs.ndim, per_image)
    inter, pred_sum, target_sum = _region_overlaps(
        r, axes, soft_label=soft_label, per_image=per_image, axis_name=axis_name
    )
    coeff = _ratio(inter + nr, pred_sum + target_sum - inter + dr)
    per = _coefficient_loss(coeff, log_loss)
    return _reduce_region(
        per,
        r,
        axes,
        class_weights=class_weights,
        include_background=include_background,
        zero_empty_targets=zero_empty_targets,
        target_sum=target_sum,
        reduction=reduction,
        axis_name=axis_name,
        per_image=per_image,
    )


def _lovasz_grad(gt_sorted: Array) -> Array:
    """Gradient of the Lovász extension of the Jaccard loss w.r.t. sorted errors (Berman et al.)."""
    gts = jnp.sum(gt_sorted)
    intersection = gts - jnp.cumsum(gt_sorted)
    union = gts + jnp.cumsum(1.0 - gt_sorted)
    jaccard = 1.0 - intersection / union
    return jnp.concatenate([jaccard[:1], jaccard[1:] - jaccard[:-1]])


def _lovasz_flat(logits: Array, labels: Array, mask: Array) -> Array:
    """Lovász hinge of one flattened image; excluded pixels are sorted last and cost nothing."""
    signs = 2.0 * labels - 1.0
    errors = jnp.where(mask, 1.0 - logits * signs, -jnp.inf)
    order = jnp.argsort(-jax.lax.stop_gradient(errors))
    errors_sorted = errors[order]
    grad = jax.lax.stop_gradient(_lovasz_grad(jnp.where(mask, labels, 0.0)[order]))
    return jnp.sum(jax.nn.relu(errors_sorted) * grad)


def lovasz_hinge_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    per_image: bool = True,
    ignore_index: int | None = None,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: Reduction = "mean",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Binary Lovász hinge loss (Berman et al. 2018): a convex surrogate of 1 - IoU.

    .. math::
        \ell = \sum_k \max(0, e_{(k)})\, g_k, \qquad e_i = 1 - x_i (2 y_i - 1)

    with the errors sorted in decreasing order and ``g`` the Lovász-extension gradient of the
    Jaccard loss at the sorted labels (Berman's ``lovasz_grad``, computed without gradient).
    An image with no foreground pixel gets ``max(0, max_i e_i)``, as in the reference code.

    Args:
      logits: binary logits ``[B, ...]`` (no class axis; squeeze a trailing 1 first).
      labels: 0/1 labels of the same shape (integer or float).
      per_image: one loss per image (Berman's ``per_image=True``) or one over the whole batch.
      ignore_index: integer label of pixels to leave out (Berman's ``ignore``).
      where: boolean pixel mask broadcastable to ``[B, ...]``: False pixels are left out.
      weights: per-*image* weights broadcastable to ``[B]`` (the loss is not a sum over
        pixels, so pixel weights have no meaning here).
      reduction: over the ``[B]`` per-image losses; default ``"mean"`` (Berman's). An image
        with no included pixel counts in no mean.

    Sharding: each image's errors are sorted, so a ``jit`` whose pixel axes are sharded
    all-gathers the image (with ``per_image=False``, the batch); a sharded batch moves nothing.

    >>> import jax.numpy as jnp
    >>> lovasz_hinge_loss(jnp.array([[2.0, -2.0, 0.5]]), jnp.array([[1, 0, 0]]))
    Array(0.75, dtype=float32)
    """
    x = upcast(float_array(logits, "logits"))
    if x.ndim < 2:
        raise ValueError(f"logits must be [B, ...] with a batch axis; got shape {x.shape}.")
    y = jnp.asarray(labels)
    if tuple(y.shape) != tuple(x.shape):
        raise ValueError(
            f"labels has shape {tuple(y.shape)} but logits has shape "
            f"{tuple(x.shape)}; they must be equal (binary, no class axis)."
        )
    include = None
    if ignore_index is not None:
        if not jnp.issubdtype(y.dtype, jnp.integer):
            raise ValueError("ignore_index needs integer labels; use where= for float labels.")
        include = y != ignore_index
    pixel_mask = element_mask(x.shape, where=where, include=include, what="logits")
    # Sizes spelled out (not -1): an empty batch must reshape too.
    if per_image:
        flat_shape = (x.shape[0], math.prod(x.shape[1:]))
    else:
        flat_shape = (1, math.prod(x.shape))
    m = jnp.ones_like(x, dtype=bool) if pixel_mask is None else pixel_mask
    xs = sanitize(x, pixel_mask).reshape(flat_shape)
    ys = sanitize(y.astype(x.dtype), pixel_mask).reshape(flat_shape)
    ms = m.reshape(flat_shape)
    per = jax.vmap(_lovasz_flat)(xs, ys, ms)
    if weights is not None:
        if not per_image:
            raise ValueError(
                "weights are per-image weights; with per_image=False there is one "
                "loss for the batch: scale it yourself."
            )
        weights = weight_array(weights, per.shape, "per-image loss")
    image_mask = element_mask(
        per.shape, weights=weights, include=None if pixel_mask is None else jnp.any(ms, axis=1)
    )
    per = sanitize(per, image_mask)
    return reduce_elements(
        per, mask=image_mask, weights=weights, reduction=reduction, axis_name=axis_name
    )


# ---------------------------------------------------------------------------------------------
# Dice + cross-entropy in one call.


def _check_mix(dice_weight: Any, reduction: str) -> None:
    static_float(dice_weight, "dice_weight", low=0.0, high=1.0)
    check_reduction(reduction)
    if reduction in ("none", "parts"):
        raise ValueError(
            f"reduction={reduction!r} is not available for a combined loss (the Dice part "
            "is per image and class, the cross-entropy per pixel, each with its own "
            "denominator); choose one of "
            f"{', '.join(repr(x) for x in REDUCTIONS if x not in ('none', 'parts'))}, or call "
            "the two losses yourself."
        )


def dice_bce_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    dice_weight: float | ArrayLike = 0.5,
    smooth: float | ArrayLike = 1e-5,
    squared_denominator: bool = False,
    per_image: bool = True,
    pos_weight: ArrayLike | None = None,
    axis: int = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: Reduction = "mean",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Dice + binary cross-entropy on sigmoid channels, in one call.

    .. math:: \ell = \lambda\, \mathrm{Dice}(\sigma(x), y) + (1 - \lambda)\, \mathrm{BCE}(x, y)

    Each of the ``C`` channels (one for binary segmentation) is an independent sigmoid. The
    Dice part is :func:`soft_dice_loss` on ``σ(x)`` per channel, the BCE part
    :func:`jaxloss.sigmoid_binary_cross_entropy` per pixel and channel; both get the same
    ``where`` / ``weights`` (pixel weights: inside the Dice sums, multiplying the BCE) and the
    same ``reduction``, so each is reduced exactly once. MONAI's ``DiceCELoss(sigmoid=True)``
    with ``lambda_dice = lambda_ce = 1`` is twice ``dice_weight=0.5``.

    Args:
      logits: ``[B, ..., C]`` (class axis ``axis``); ``C = 1`` for binary.
      labels: 0/1 (or soft) maps of the logits' shape; for ``C = 1``, ``[B, ...]`` also works.
      dice_weight: ``λ`` in [0, 1].
      smooth, squared_denominator, per_image: the Dice part's, see :func:`soft_dice_loss`.
      pos_weight: the BCE's positive-class weight, broadcastable to the logits.
      axis: the channel axis.
      where, weights: pixel mask and pixel weight map broadcastable to ``[B, ...]``.
      reduction: any reduction but ``"none"``, applied to both parts; default ``"mean"``.

    >>> import jax.numpy as jnp
    >>> logits = jnp.array([[[3.0], [-3.0], [-3.0], [3.0]]])
    >>> dice_bce_loss(logits, jnp.array([[1.0, 0.0, 0.0, 1.0]]))
    Array(0.04800655, dtype=float32)
    """
    _check_mix(dice_weight, reduction)
    x = upcast(float_array(logits, "logits"))
    if not isinstance(axis, int):
        raise TypeError(f"axis must be a single int (the channel axis); got {axis!r}.")
    (ax,) = canonical_axes(axis, x.ndim)
    y = jnp.asarray(labels)
    if x.shape[ax] == 1 and y.ndim == x.ndim - 1:
        y = jnp.expand_dims(y, ax)
    check_broadcast(y, "labels", x.shape, "logits")
    y = jnp.broadcast_to(y, x.shape).astype(x.dtype)
    pixel_shape = tuple(d for i, d in enumerate(x.shape) if i != ax)
    mask = element_mask(pixel_shape, weights=weights, where=where, what="logits without channels")
    x = sanitize(jnp.moveaxis(x, ax, -1), mask)
    y = jnp.moveaxis(y, ax, -1)
    dice = soft_dice_loss(
        jax.nn.sigmoid(x),
        y,
        from_logits=False,
        smooth=smooth,
        squared_denominator=squared_denominator,
        per_image=per_image,
        where=where,
        weights=weights,
        reduction=reduction,
        axis_name=axis_name,
    )
    pixel_weights = None if weights is None else jnp.asarray(weights)[..., None]
    pixel_where = None if mask is None else mask[..., None]
    pw = None
    if pos_weight is not None:
        pw = jnp.asarray(pos_weight)
        check_broadcast(pw, "pos_weight", jnp.shape(logits), "logits")
        pw = jnp.moveaxis(jnp.broadcast_to(pw, jnp.shape(logits)), ax, -1)
    bce = sigmoid_binary_cross_entropy(
        x,
        y,
        pos_weight=pw,
        weights=pixel_weights,
        where=pixel_where,
        reduction=reduction,
        axis_name=axis_name,
    )
    return jnp.asarray(dice_weight * dice + (1.0 - dice_weight) * bce)


def dice_ce_loss(
    logits: ArrayLike,
    labels: ArrayLike,
    *,
    dice_weight: float | ArrayLike = 0.5,
    smooth: float | ArrayLike = 1e-5,
    squared_denominator: bool = False,
    per_image: bool = True,
    include_background: bool = True,
    class_weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    axis: int = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: Reduction = "mean",
    ce_reduction: Reduction | None = None,
    axis_name: AxisName | None = None,
) -> Array:
    r"""Dice + softmax cross-entropy for multi-class segmentation, in one call.

    .. math::
        \ell = \lambda\, \mathrm{Dice}(\mathrm{softmax}(x), y) + (1 - \lambda)\, \mathrm{CE}(x, y)

    The Dice part is :func:`soft_dice_loss` (``include_background`` applies to it only), the
    CE part :func:`jaxloss.softmax_cross_entropy_with_integer_labels` (integer labels) or
    :func:`jaxloss.softmax_cross_entropy` (one-hot / probability labels). Both get the same
    ``where``, ``weights``, ``class_weights``, ``ignore_index`` and ``reduction`` (the CE part
    ``ce_reduction`` when given), so each is reduced exactly once.

    MONAI's ``DiceCELoss(softmax=True)`` (λ's of 1) is twice ``dice_weight=0.5``. With class
    weights, ``DiceCELoss(weight=w)`` weights both parts: its Dice part is the mean of the
    weighted per-(image, class) losses (``reduction="mean"``), its CE part PyTorch's
    ``CrossEntropyLoss(weight=w)``, which for integer labels (MONAI's ``to_onehot_y=True``)
    divides by the summed weights of the true classes and for one-hot labels by the number of
    pixels. So for integer labels it is ``2 * dice_ce_loss(x, y, class_weights=w,
    ce_reduction="weighted_mean")``, and for one-hot labels the default (both ``"mean"``);
    ``reduction="weighted_mean"`` for both parts would also weight-average the Dice part,
    which MONAI does not.

    Args:
      logits: ``[B, ..., C]`` with ``C ≥ 2`` (class axis ``axis``).
      labels: integer labels ``[B, ...]`` or one-hot maps of the logits' shape.
      dice_weight: ``λ`` in [0, 1].
      smooth, squared_denominator, per_image, include_background: the Dice part's.
      class_weights: ``[C]``, by true class in both parts.
      ignore_index: unlabeled pixels (integer labels), left out of both parts.
      axis: the class axis.
      where, weights: pixel mask and pixel weight map broadcastable to ``[B, ...]``.
      reduction: any reduction but ``"none"``, applied to both parts; default ``"mean"``.
      ce_reduction: the CE part's reduction, if it differs (any but ``"none"``); default
        ``reduction``.

    >>> import jax.numpy as jnp
    >>> logits = jnp.array([[[3.0, -3.0], [-3.0, 3.0]]])          # [B=1, N=2, C=2]
    >>> dice_ce_loss(logits, jnp.array([[0, 1]]))
    Array(0.00247416, dtype=float32)
    >>> w = jnp.array([1.0, 3.0])                  # MONAI's DiceCELoss(weight=w) is twice this
    >>> dice_ce_loss(logits, jnp.array([[0, 1]]), class_weights=w, ce_reduction="weighted_mean")
    Array(0.00371045, dtype=float32)
    """
    _check_mix(dice_weight, reduction)
    if ce_reduction is None:
        ce_reduction = reduction
    else:
        _check_mix(dice_weight, ce_reduction)
    x = float_array(logits, "logits")
    if not isinstance(axis, int):
        raise TypeError(f"axis must be a single int (the class axis); got {axis!r}.")
    canonical_axes(axis, x.ndim)  # a ValueError naming axis, not an IndexError
    if isinstance(x.shape[axis], int) and x.shape[axis] < 2:  # (a symbolic size passes)
        raise ValueError(
            f"dice_ce_loss needs at least 2 classes on axis {axis}; got "
            f"{x.shape[axis]}. For one sigmoid channel use dice_bce_loss."
        )
    if where is not None and jnp.ndim(where) == x.ndim:
        raise ValueError(
            "where is a pixel mask here, broadcastable to the logits' shape "
            "without the class axis; got one of the logits' rank."
        )
    dice = soft_dice_loss(
        x,
        labels,
        from_logits=True,
        smooth=smooth,
        squared_denominator=squared_denominator,
        per_image=per_image,
        class_weights=class_weights,
        ignore_index=ignore_index,
        include_background=include_background,
        axis=axis,
        where=where,
        weights=weights,
        reduction=reduction,
        axis_name=axis_name,
    )
    y = jnp.asarray(labels)
    if jnp.issubdtype(y.dtype, jnp.integer):
        ce = softmax_cross_entropy_with_integer_labels(
            x,
            y,
            axis,
            weights=weights,
            where=where,
            class_weights=class_weights,
            ignore_index=ignore_index,
            reduction=ce_reduction,
            axis_name=axis_name,
        )
    else:
        if ignore_index is not None:
            raise ValueError("ignore_index needs integer labels; use where= with one-hot labels.")
        ce = softmax_cross_entropy(
            x,
            y,
            axis,
            where,
            weights=weights,
            class_weights=class_weights,
            reduction=ce_reduction,
            axis_name=axis_name,
        )
    return jnp.asarray(dice_weight * dice + (1.0 - dice_weight) * ce)
