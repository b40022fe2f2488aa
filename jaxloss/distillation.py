"""Knowledge distillation (Hinton et al. 2015): a student matches a teacher's softened outputs.

Takes the contract arguments (see :func:`jaxloss.reduce`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxloss._checks import Array, ArrayLike, Axis, check_same_shape, float_array, static_float
from jaxloss._class_axis import class_inputs, log_softmax_last
from jaxloss._reduction import AxisName, Reduction, element_mask, reduce_elements, sanitize

__all__ = ["distillation_loss"]


def distillation_loss(
    student_logits: ArrayLike,
    teacher_logits: ArrayLike,
    temperature: float | ArrayLike,
    *,
    axis: Axis = -1,
    stop_gradient_teacher: bool = True,
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    reduction: Reduction = "none",
    axis_name: AxisName | None = None,
) -> Array:
    r"""Hinton's distillation loss: ``T²`` times the KL divergence of the softened distributions.

    .. math:: \ell = T^2 \sum_c q_c \,(\log q_c - \log p_c), \qquad
              q = \mathrm{softmax}(z^{teacher} / T), \quad p = \mathrm{softmax}(z^{student} / T)

    The ``T²`` keeps the gradient's scale independent of the temperature (Hinton et al. 2015,
    §2): ``∂ℓ/∂z^{student} = T (p - q)``. With PyTorch, the same number is
    ``kl_div(log_softmax(s / T), softmax(t / T), reduction="batchmean") * T**2`` for
    ``reduction="mean"`` here. Add the hard-label cross-entropy yourself, weighted as you like.
    Classes with ``q_c = 0`` contribute 0 (``0 log 0 = 0``).

    Args:
      student_logits: ``[..., C, ...]``, the logits that receive the gradient.
      teacher_logits: the teacher's logits, the same shape.
      temperature: ``T > 0`` (a Python number or an array, e.g. a schedule's value).
      axis: class axis (or axes).
      stop_gradient_teacher: put the teacher under ``stop_gradient`` (default). ``False`` lets
        the gradient flow into the teacher as well (mutual / online distillation).
      weights: per-example weights broadcastable to the loss shape (logits less ``axis``).
      where: of the logits' rank, a class mask (masked classes are left out of both softmaxes;
        a row with none left is excluded); of lower rank, an element mask.
      reduction, axis_name: see :func:`jaxloss.reduce`.

    Returns:
      The loss, shape ``student_logits.shape`` less ``axis`` (or a scalar when reduced),
      float32 for 16-bit logits.

    >>> import jax.numpy as jnp
    >>> student = jnp.array([[0.0, 0.0]])
    >>> teacher = jnp.array([[2 * jnp.log(3.0), 0.0]])          # q = (0.75, 0.25) at T = 2
    >>> distillation_loss(student, teacher, 2.0)                # 4 · (0.75 log 1.5 + 0.25 log 0.5)
    Array([0.5232482], dtype=float32)
    """
    student = float_array(student_logits, "student_logits")
    teacher = float_array(teacher_logits, "teacher_logits")
    check_same_shape(student, "student_logits", teacher, "teacher_logits")
    static_float(temperature, "temperature", low=0.0, low_open=True)
    s, _, loss_shape, class_mask, element_where = class_inputs(student, axis, where)
    t, _, _, _, _ = class_inputs(teacher, axis, None)
    if stop_gradient_teacher:
        t = jax.lax.stop_gradient(t)
    include = None if class_mask is None else jnp.any(class_mask, axis=-1)
    mask = element_mask(loss_shape, weights=weights, where=element_where, include=include)
    s, t = sanitize(s, mask), sanitize(t, mask)
    dtype = jnp.promote_types(s.dtype, t.dtype)
    temperature = jnp.asarray(temperature, dtype)
    log_p = log_softmax_last(s.astype(dtype) / temperature, class_mask)
    log_q = log_softmax_last(t.astype(dtype) / temperature, class_mask)
    q = jnp.exp(log_q)
    present = q > 0  # masked classes and underflow: 0 log 0 = 0, with zero gradients
    zero = jnp.zeros((), dtype)
    terms = q * (jnp.where(present, log_q, zero) - jnp.where(present, log_p, zero))
    per = temperature**2 * jnp.sum(jnp.where(present, terms, zero), axis=-1)
    return reduce_elements(
        per, mask=mask, weights=weights, reduction=reduction, axis_name=axis_name
    )
