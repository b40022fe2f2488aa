"""Binary-label helpers shared by the loss families (private; label picks are
:func:`jaxloss._checks.pick_label`).

* :func:`smooth_binary_labels` — Keras's binary label smoothing ``y(1 − ε) + ε/2``.
* :func:`binary_class_weights` and :func:`binary_label_weight` — class weights ``(w_neg, w_pos)``
  of binary / multi-label losses, chosen by the ground truth.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from jaxloss._checks import Array, ArrayLike, broadcasts_to, float_array
from jaxloss._class_axis import check_smoothing, is_zero

__all__: list[str] = []


def smooth_binary_labels(y: Array, label_smoothing: Any) -> Array:
    r"""Keras's binary label smoothing, ``ỹ = y (1 − ε) + ε / 2`` (``y`` itself for ``ε = 0``).

    Each entry is its own two-class distribution ``(1 − y, y)``, so the mass ``ε`` is spread
    over its two classes: ``ε = 0.2`` turns targets 1 and 0 into 0.9 and 0.1.
    """
    check_smoothing(label_smoothing)
    if is_zero(label_smoothing):
        return y
    eps = jnp.asarray(label_smoothing, y.dtype)
    return y * (1.0 - eps) + 0.5 * eps


def binary_class_weights(
    class_weights: ArrayLike | None, shape: tuple[int, ...], what: str = "logits"
) -> tuple[Array, Array] | None:
    """Validate binary class weights; returns ``(w_neg, w_pos)`` broadcastable to ``shape``.

    ``class_weights`` is ``(w_neg, w_pos)`` (shape ``(2,)``) or ``[..., 2]`` whose leading shape
    broadcasts to ``shape`` — ``[C, 2]`` for ``C`` labels of a multi-label ``[B, C]`` output.
    """
    if class_weights is None:
        return None
    w = jnp.asarray(class_weights)
    if not jnp.issubdtype(w.dtype, jnp.floating):
        w = w.astype(jnp.float32) if jnp.issubdtype(w.dtype, jnp.number) else w
    w = float_array(w, "class_weights")
    if w.ndim == 0 or w.shape[-1] != 2 or not broadcasts_to(w.shape[:-1], shape):
        raise ValueError(
            f"class_weights has shape {tuple(w.shape)}; expected (2,), the weights "
            f"(w_neg, w_pos) of labels 0 and 1, or [..., 2] (e.g. [C, 2] for C labels) whose "
            f"leading shape broadcasts to the {what} shape {tuple(shape)}."
        )
    return w[..., 0], w[..., 1]


def binary_label_weight(y: Array, w: tuple[Array, Array]) -> Array:
    """The element's class weight chosen by the (unsmoothed) label: ``w_neg (1 − y) + w_pos y``.

    ``w_y`` for hard labels; for a soft label, the class weight expected under it.
    """
    w_neg, w_pos = (v.astype(y.dtype) for v in w)
    return jnp.broadcast_to(w_neg * (1.0 - y) + w_pos * y, y.shape)
