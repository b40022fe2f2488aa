"""Generalised Dice losses: Sudre et al.'s class-weighted ratio of sums, and Fidon et al.'s
Wasserstein Dice with a distance matrix between the classes (MONAI's ``GeneralizedDiceLoss`` and
``GeneralizedWassersteinDiceLoss``).

Both pool the classes of an image into one ratio, so they give one loss per image (``[B]``,
``per_image=True``) or one for the whole batch (``[1]``), and ``reduction`` reduces those; an
image counts when it has an included pixel. Inputs, targets, pixel ``weights`` and ``where`` /
``ignore_index`` are as for the Dice family (:mod:`jaxloss.segmentation`): channels-last
``[B, H, W(, D), C]`` with the class axis ``axis``, and the pixel weights and masks act inside
the sums. optax's ``multiclass_generalized_dice_loss`` is a different definition (a weighted mean
of per-class Dice losses) and keeps its name and results.

Under ``shard_map`` with ``axis_name``: per-image losses are local to the device holding the
image and their reduction is summed over the mesh axes; with ``per_image=False`` the overlap
sums themselves are summed over the mesh axes first, so every device gets the loss of the whole
batch.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from jaxloss._checks import Array, ArrayLike, float_array
from jaxloss._reduction import AxisName, Reduction
from jaxloss.segmentation import (
    _global_sums,
    _prepare,
    _ratio,
    _reduce_images,
    _Region,
    _region_overlaps,
    _smoothing,
    _sum_axes,
)

__all__ = ["generalized_dice_loss", "generalized_wasserstein_dice_loss"]

_W_TYPES = ("square", "simple", "uniform")
_WEIGHTING_MODES = ("default", "GDL")


def generalized_dice_loss(
    probs_or_logits: ArrayLike,
    targets: ArrayLike,
    *,
    w_type: Literal["square", "simple", "uniform"] = "square",
    from_logits: bool = True,
    smooth: float | ArrayLike = 1e-5,
    smooth_nr: float | ArrayLike | None = None,
    smooth_dr: float | ArrayLike | None = None,
    soft_label: bool = False,
    per_image: bool = True,
    include_background: bool = True,
    ignore_index: int | None = None,
    axis: int = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: Reduction = "mean",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Generalised Dice loss (Sudre et al. 2017): one ratio of class-weighted sums per image.

    .. math::
        \ell_b = 1 - \frac{2 \sum_c \omega_c I_{bc} + s_{nr}}
                          {\sum_c \omega_c (P_{bc} + T_{bc}) + s_{dr}}, \qquad
        \omega_c = \begin{cases} T_{bc}^{-2} & \text{"square"} \\ T_{bc}^{-1} & \text{"simple"}
                   \\ 1 & \text{"uniform"} \end{cases}

    with ``I = Σ w p t``, ``P = Σ w p``, ``T = Σ w t`` over the pixels of image ``b`` (over the
    batch too with ``per_image=False``; ``w`` the pixel weights), MONAI's
    ``GeneralizedDiceLoss`` definition: a class absent from the target (``T_c = 0``, infinite
    weight) gets the largest weight of the present classes; with no class present all weights
    are 0 and the loss is ``1 - s_nr / s_dr`` (0 by default). The inverse-volume weights
    balance small structures against large ones; they are computed from the targets (and
    differentiable in them, as in MONAI). optax's ``multiclass_generalized_dice_loss`` (a
    weighted *mean of per-class Dice losses*) is a different loss.

    Reproducing MONAI: ``GeneralizedDiceLoss(softmax=True, to_onehot_y=True)`` is the default
    (``w_type``, ``include_background``, ``smooth_nr``, ``smooth_dr``, ``soft_label`` map one to
    one; its ``batch=True`` is ``per_image=False``).

    Args:
      probs_or_logits: ``[B, ..., C]`` (class axis ``axis``); one channel means binary (sigmoid).
      targets: integer labels ``[B, ...]`` or one-hot / probability maps of the predictions'
        shape.
      w_type: ``"square"`` (default), ``"simple"`` or ``"uniform"``.
      from_logits: apply softmax (sigmoid for one channel) first.
      smooth: added to the numerator and the denominator; ``smooth_nr`` / ``smooth_dr`` set
        them apart (MONAI's defaults are both 1e-5).
      soft_label: Wang et al.'s semimetric intersection ``I = (P + T - Σ w |p - t|) / 2``
        (for soft targets; equal to ``Σ w p t`` for 0/1 targets), as in
        :func:`jaxloss.soft_dice_loss`.
      per_image: one loss per image (MONAI's ``batch=False``) or one for the batch.
      include_background: keep class 0 in the sums (when ``C > 1``); without it the weights
        are taken over the other classes.
      ignore_index: integer label of pixels to leave out of every sum.
      axis: the class axis.
      where: boolean pixel mask broadcastable to ``[B, ...]``.
      weights: pixel weight map broadcastable to ``[B, ...]``, inside the sums (and the
        volumes ``T_c``).
      reduction: over the ``[B]`` (or ``[1]``) losses; default ``"mean"``; ``"none"`` returns
        them.
      axis_name: mesh axes inside ``shard_map`` (see the module docstring).

    Returns:
      A scalar, or ``[B]`` / ``[1]`` for ``reduction="none"``.

    Edges: out-of-range integer labels make their image's loss NaN (:func:`jaxloss.checked`
    raises); an image with no included pixel counts in no mean.

    >>> import jax.numpy as jnp
    >>> probs = jnp.array([[[0.8, 0.2], [0.6, 0.4], [0.3, 0.7]]])   # [B=1, N=3, C=2]
    >>> labels = jnp.array([[0, 0, 1]])    # T = (2, 1), ω = (1/4, 1), I = (1.4, 0.7)
    >>> generalized_dice_loss(probs, labels, from_logits=False, smooth=0.0)  # 1 - 2.1/3.225
    Array(0.3488372, dtype=float32)
    >>> generalized_dice_loss(probs, labels, w_type="uniform", from_logits=False,
    ...                       smooth=0.0)                                    # 1 - 4.2/6
    Array(0.29999995, dtype=float32)
    """
    if w_type not in _W_TYPES:
        raise ValueError(f"w_type must be one of 'square', 'simple', 'uniform'; got {w_type!r}.")
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
    sums = _region_overlaps(r, axes, soft_label=soft_label)
    inter, pred_sum, target_sum = _global_sums(sums, per_image, axis_name)
    if not include_background and inter.shape[-1] > 1:
        inter, pred_sum, target_sum = inter[..., 1:], pred_sum[..., 1:], target_sum[..., 1:]
    omega = _volume_weights(target_sum, w_type)
    numerator = 2.0 * jnp.sum(omega * inter, axis=-1) + nr
    denominator = jnp.sum(omega * (pred_sum + target_sum), axis=-1) + dr
    per = (1.0 - _ratio(numerator, denominator)).reshape(-1)
    return _reduce_images(
        per, r, axes, per_image=per_image, reduction=reduction, axis_name=axis_name
    )


def _volume_weights(target_sum: Array, w_type: str) -> Array:
    """Sudre's class weights from the target volumes ``[..., C]``; an absent class (infinite
    weight) gets the largest finite weight along the class axis (MONAI's rule)."""
    if w_type == "uniform":
        return jnp.ones_like(target_sum)
    power = 2 if w_type == "square" else 1
    volume = jax.lax.stop_gradient(target_sum)
    finite = (volume > 0) & jnp.isfinite(1.0 / volume**power)
    safe = jnp.where(finite, target_sum, 1.0)
    omega = jnp.where(finite, 1.0 / safe**power, 0.0)
    largest = jnp.max(omega, axis=-1, keepdims=True)
    return jnp.where(finite, omega, largest)


def generalized_wasserstein_dice_loss(
    probs_or_logits: ArrayLike,
    labels: ArrayLike,
    distance_matrix: ArrayLike,
    *,
    weighting_mode: Literal["default", "GDL"] = "default",
    from_logits: bool = True,
    smooth: float | ArrayLike = 1e-5,
    smooth_nr: float | ArrayLike | None = None,
    smooth_dr: float | ArrayLike | None = None,
    per_image: bool = True,
    ignore_index: int | None = None,
    axis: int = -1,
    where: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    reduction: Reduction = "mean",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Generalised Wasserstein Dice loss (Fidon et al. 2017): Dice with a distance between classes.

    .. math::
        W_i = \sum_c M_{y_i c}\, p_{ic}, \qquad
        \mathrm{TP}_b = \sum_i w_i\, \alpha_{y_i} (1 - W_i), \qquad
        \ell_b = 1 - \frac{2\,\mathrm{TP}_b + s_{nr}}{D_b + s_{dr}}

    ``W_i`` is the Wasserstein distance between pixel ``i``'s predicted distribution and its
    label under the class-distance matrix ``M`` (divided by its largest entry, as MONAI
    does), so a confusion between close classes costs less than one between distant classes.
    ``weighting_mode="default"`` (Fidon et al.): ``α_c = 0`` for the background class 0 and 1
    for the others, ``D = 2 TP + Σ_i w_i W_i``; ``"GDL"`` (Tilborghs et al. 2020):
    ``α_c = 1 / (V_c + 1)`` with ``V_c = Σ_i w_i [y_i = c]`` the class volume, and
    ``D = Σ_i w_i α_{y_i} (2 - W_i)``. This is MONAI's ``GeneralizedWassersteinDiceLoss``;
    the label's row of ``M`` and ``α`` are picked with a one-hot contraction, not a gather.

    Args:
      probs_or_logits: ``[B, ..., C]`` (class axis ``axis``), ``C ≥ 2``.
      labels: integer labels ``[B, ...]`` (hard labels: the Wasserstein distance to a soft
        target is not this closed form).
      distance_matrix: ``[C, C]`` distances between the classes (0 on the diagonal), for
        instance 1 between the background and every class and 0.5 between two related classes.
      weighting_mode: ``"default"`` or ``"GDL"``.
      from_logits: apply softmax first (MONAI always does).
      smooth, smooth_nr, smooth_dr: smoothing of the numerator and denominator (MONAI's
        ``smooth_nr = smooth_dr = 1e-5``).
      per_image: one loss per image (MONAI's) or one for the batch.
      ignore_index: integer label of pixels to leave out.
      axis: the class axis.
      where: boolean pixel mask broadcastable to ``[B, ...]``.
      weights: pixel weight map broadcastable to ``[B, ...]``, inside every sum.
      reduction: over the ``[B]`` (or ``[1]``) losses; default ``"mean"``.
      axis_name: mesh axes inside ``shard_map`` (see the module docstring).

    Returns:
      A scalar, or ``[B]`` / ``[1]`` for ``reduction="none"``.

    Edges: an image whose pixels are all background and predicted so has ``0/0 = 1`` (loss 0)
    with ``s = 0``; out-of-range labels make their image's loss NaN.

    >>> import jax.numpy as jnp
    >>> m = jnp.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5], [1.0, 0.5, 0.0]])
    >>> logits = 1000.0 * jnp.eye(3)[:, None, :]       # 3 images of one pixel, MONAI's example
    >>> generalized_wasserstein_dice_loss(logits, jnp.array([[0], [1], [2]]), m)
    Array(0., dtype=float32)
    >>> probs = jnp.array([[[0.1, 0.6, 0.3], [0.2, 0.2, 0.6]]])  # labels 1, 2: W = 0.25, 0.3
    >>> generalized_wasserstein_dice_loss(probs, jnp.array([[1, 2]]), m, from_logits=False,
    ...                                   smooth=0.0)    # 1 - 2·1.45 / (2·1.45 + 0.55)
    Array(0.15942, dtype=float32)
    """
    if weighting_mode not in _WEIGHTING_MODES:
        raise ValueError(f"weighting_mode must be 'default' or 'GDL'; got {weighting_mode!r}.")
    y = jnp.asarray(labels)
    if not jnp.issubdtype(y.dtype, jnp.integer):
        raise TypeError(
            f"labels must be integer class labels; got dtype {y.dtype}. The Wasserstein Dice "
            "loss is defined for hard labels."
        )
    nr, dr = _smoothing(smooth, smooth_nr, smooth_dr)
    r = _prepare(
        probs_or_logits,
        y,
        axis=axis,
        from_logits=from_logits,
        weights=weights,
        where=where,
        ignore_index=ignore_index,
        pred_name="probs_or_logits",
    )
    num_classes = r.probs.shape[-1]
    if isinstance(num_classes, int) and num_classes < 2:  # symbolic class counts pass
        raise ValueError(
            f"generalized_wasserstein_dice_loss needs at least 2 classes; got {num_classes}."
        )
    m = float_array(distance_matrix, "distance_matrix")
    if m.shape != (num_classes, num_classes):
        raise ValueError(
            f"distance_matrix has shape {tuple(m.shape)}; expected ({num_classes}, "
            f"{num_classes}), the distances between the {num_classes} classes."
        )
    m = m.astype(r.probs.dtype)
    largest = jnp.max(m)
    m = m / jnp.where(largest > 0, largest, 1.0)
    axes = _sum_axes(r.probs.ndim, per_image)
    onehot = r.targets  # [..., C], 0 on excluded pixels
    distance = jnp.sum(jnp.einsum("...k,kc->...c", onehot, m) * r.probs, axis=-1)  # W_i
    if weighting_mode == "GDL":
        (volumes,) = _global_sums(
            (_weighted_sum(r, onehot, axes, keepdims=True),), per_image, axis_name
        )
        alpha = 1.0 / (volumes + 1.0)
    else:
        alpha = (jnp.arange(num_classes) > 0).astype(r.probs.dtype)
    alpha_label = jnp.sum(onehot * alpha, axis=-1)  # α_{y_i}, 0 on excluded pixels
    true_pos = _weighted_sum(r, alpha_label * (1.0 - distance), axes)
    if weighting_mode == "GDL":
        denominator = _weighted_sum(r, alpha_label * (2.0 - distance), axes)
        true_pos, denominator = _global_sums((true_pos, denominator), per_image, axis_name)
    else:
        all_error = _weighted_sum(r, distance, axes)
        true_pos, all_error = _global_sums((true_pos, all_error), per_image, axis_name)
        denominator = 2.0 * true_pos + all_error
    per = (1.0 - _ratio(2.0 * true_pos + nr, denominator + dr)).reshape(-1)
    return _reduce_images(
        per, r, axes, per_image=per_image, reduction=reduction, axis_name=axis_name
    )


def _weighted_sum(r: _Region, x: Array, axes: tuple[int, ...], keepdims: bool = False) -> Array:
    """``Σ w x`` over the pixel ``axes`` of a ``[B, ..., C]`` layout, for ``x`` with or without
    the class axis (``w`` the region's pixel weight, if any)."""
    w = r.pixel_weight
    if w is not None:
        x = x * (w if x.ndim == w.ndim else w[..., None])
    return jnp.sum(x, axis=axes, keepdims=keepdims)  # pixel axes never include the class axis
